"""``bkbn emulator`` command-line checks that need no server."""

from __future__ import annotations

import pytest

from bkbn_pipelines.cli import EXIT_USAGE, main


@pytest.mark.parametrize(
    ("port", "message"),
    [("99999", "port 99999 is out of range 0-65535"), ("http", "'http' is not a port number")],
)
def test_a_bad_port_is_a_usage_error(port: str, message: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["emulator", "--port", port])
    assert info.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
