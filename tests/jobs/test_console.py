"""The one-line console logger of ``bkbn nightly``: no stack traces on the terminal."""

from __future__ import annotations

import dagster as dg

from bkbn_pipelines.jobs._console import concise_console_logger

CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def _run(op_fn, capsys) -> tuple[dg.ExecuteInProcessResult, str]:
    op = dg.op(name="listing_media")(op_fn)

    @dg.job(logger_defs={"console": concise_console_logger})
    def job():
        op()

    result = job.execute_in_process(run_config=CONSOLE, raise_on_error=False)
    return result, capsys.readouterr().err


def test_a_failed_step_is_one_line_and_the_event_log_keeps_the_trace(capsys) -> None:
    def fails(context):
        raise dg.Failure("listing 'A-1', photo 'x.jpg': not an image")

    result, err = _run(fails, capsys)
    assert not result.success
    [line] = [line for line in err.splitlines() if 'step "listing_media" failed' in line]
    assert line.startswith("error   listing_media: ") and "not an image" in line
    assert "Stack Trace" not in err and 'File "' not in err
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_failure_data.error.stack  # the trace is kept for the UI


def test_each_line_of_a_message_gets_the_prefix(capsys) -> None:
    def logs(context):
        context.log.info("render step 1/2\nrender step 2/2")
        context.log.warning("did not yield or return expected outputs {'a_valid_polygons'}")
        context.log.warning("did not yield or return expected outputs {'staged_renders'}")

    _, err = _run(logs, capsys)
    lines = err.splitlines()
    assert "info    listing_media: render step 1/2" in lines
    assert "info    listing_media: render step 2/2" in lines
    # the warning about check outputs says nothing about the checks: dropped; others stay
    assert not any("a_valid_polygons" in line for line in lines)
    assert any("{'staged_renders'}" in line for line in lines)


def test_credentials_are_redacted(capsys) -> None:
    def leaks(context):
        context.log.info("key bkbn_sk_live_abcdefghijklmnopqrstuvwxyz0123 used")

    _, err = _run(leaks, capsys)
    assert "bkbn_sk_live_abcdefghijklmnopqrstuvwxyz0123" not in err
