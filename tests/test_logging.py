"""The package's logger tree: quiet by default, credentials redacted for any handler."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bkbn_pipelines import _logging

PACKAGE = Path(__file__).resolve().parents[1] / "bkbn_pipelines"


def test_the_package_is_quiet_until_told() -> None:
    root = logging.getLogger("bkbn_pipelines")
    assert [type(h) for h in root.handlers] == [logging.NullHandler]
    # a warning from deep inside, with no logging configured: nothing on stderr
    code = (
        "import logging, bkbn_pipelines.client\n"
        "from bkbn_pipelines._logging import configure_from_env\n"
        "configure_from_env()\n"
        "logging.getLogger('bkbn_pipelines.client').warning('a warning nobody asked for')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "BKBN_LOG"}
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert quiet.returncode == 0 and quiet.stderr == ""
    # BKBN_LOG=info: the package logs to stderr
    env["BKBN_LOG"] = "info"
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert "WARNING bkbn_pipelines.client: a warning nobody asked for" in loud.stderr


def test_every_logger_the_package_uses_redacts() -> None:
    used = set()
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        for marker in ('getLogger("bkbn_pipelines.', 'get_logger("'):
            start = 0
            while (start := text.find(marker, start)) >= 0:
                start += len(marker)
                used.add(text[start : text.index('"', start)])
    assert used <= set(_logging.LOGGERS), used - set(_logging.LOGGERS)


@pytest.mark.parametrize("name", ["bkbn_pipelines.client", "bkbn_pipelines.runtime.brochure"])
def test_a_credential_never_reaches_an_applications_handler(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = "bkbn_sk_live_" + "9" * 24
    with caplog.at_level(logging.DEBUG, logger=name):
        logging.getLogger(name).warning("sent x-api-key: %s with Bearer abc.def", key)
    assert key not in caplog.text and "abc.def" not in caplog.text
    assert "[redacted]" in caplog.text
