"""Session-wide services for the suite: the emulator and a moto S3 server on loopback.

``.ci/run`` starts both and exports ``BKBN_TEST_EMULATOR_URL`` and
``BKBN_TEST_S3_ENDPOINT``; run alone, the suite starts its own.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """URL of a moto S3 server on loopback (shared by the session)."""
    url = os.environ.get("BKBN_TEST_S3_ENDPOINT")
    if url:
        yield url
        return
    port = free_port()
    # the moto of this environment first: another one on PATH may be another version
    beside = Path(sys.executable).with_name("moto_server")
    exe = str(beside) if beside.exists() else shutil.which("moto_server") or str(beside)
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(autouse=True)
def _s3_test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto accepts any credentials; these keep boto from looking elsewhere."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


EMULATOR_TEST_CONFIG = Path(__file__).with_name("emulator_test_config.yaml")


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    """Base URL of an emulator in test mode with ``tests/emulator_test_config.yaml``.

    ``BKBN_TEST_EMULATOR_URL`` (set by ``.ci/run``) wins; otherwise one runs in a thread.
    """
    url = os.environ.get("BKBN_TEST_EMULATOR_URL")
    if url:
        yield url.rstrip("/")
        return
    from bkbn_pipelines.emulator.testing import serve_in_thread

    with serve_in_thread(EMULATOR_TEST_CONFIG, test_mode=True) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def emulator_admin(emulator_url: str) -> Iterator[object]:
    """:class:`bkbn_pipelines.emulator.testing.EmulatorAdmin` for the session's emulator.

    ``emulator_admin.new_key()`` gives a fresh key in its own organization, so a test's
    faults, limits and counters touch no other test.
    """
    from bkbn_pipelines.emulator.testing import EmulatorAdmin

    with EmulatorAdmin(emulator_url) as admin:
        yield admin
