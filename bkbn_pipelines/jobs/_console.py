"""A one-line-per-event console logger for ``bkbn nightly`` and ``bkbn demo``.

Dagster's own console logger prints a failed step with its whole stack trace. On the
command line that buries what matters (which listing, which photo, why) under dozens
of lines of frames. This logger prints each run-log record on one line, an error with
the first line of its message only; the full record, stack trace included, stays in
the Dagster event log, where ``dagster dev`` shows it.

One Dagster warning is left out here (not from the event log): "did not yield or
return expected outputs" naming only the asset checks of ``listing_media``.  The op
reports its checks per listing as check evaluations, not as the op's outputs, so the
warning says nothing about the checks' results and misled readers into thinking they
had not run.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from dagster import Field, logger

from .._logging import redact

__all__ = ["concise_console_logger", "one_line"]

_LOG_META = "dagster_meta"
_UNYIELDED = re.compile(r"did not yield or return expected outputs \{(?P<names>[^}]*)\}")
_MAX_LINES = 10
_CHECK_OUTPUTS = ("_render_resolution", "_valid_polygons", "_pdf_has_pages")


def _only_checks_unyielded(message: str) -> bool:
    match = _UNYIELDED.search(message)
    if match is None:
        return False
    names = [n.strip(" '\"") for n in match["names"].split(",")]
    return all(n.endswith(_CHECK_OUTPUTS) for n in names)


def one_line(record: logging.LogRecord) -> str:
    """``level  step: message``; an event's error is reduced to its first line, and a
    message of several lines gets the prefix on each (ten at most)."""
    meta: dict[str, Any] = getattr(record, _LOG_META, None) or {}
    message = str(meta.get("orig_message") or record.getMessage()).strip()
    event = meta.get("dagster_event")
    error = getattr(getattr(event, "event_specific_data", None), "error", None)
    if error is not None and getattr(error, "message", None):
        first = str(error.message).strip().splitlines()[0]
        message = message.splitlines()[0] if message else ""
        message = f"{message} {first}" if first not in message else message
    where = meta.get("step_key") or meta.get("job_name") or "run"
    prefix = f"{record.levelname.lower():<7} {where}:"
    lines = message.splitlines() or [""]
    shown = [f"{prefix} {line}" for line in lines[:_MAX_LINES]]
    if len(lines) > _MAX_LINES:
        shown.append(f"{prefix} (+{len(lines) - _MAX_LINES} more lines in the run log)")
    return redact("\n".join(shown))


class _OneLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return one_line(record)


class _DropCheckOutputWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        meta = getattr(record, _LOG_META, None) or {}
        return not _only_checks_unyielded(str(meta.get("orig_message") or record.getMessage()))


@logger(
    {
        "log_level": Field(str, is_required=False, default_value="INFO"),
        "name": Field(str, is_required=False, default_value="bkbn_pipelines.nightly"),
    },
    description="One line per run-log record on stderr; stack traces stay in the event log.",
)
def concise_console_logger(init_context: Any) -> logging.Logger:
    config = init_context.logger_config
    out = logging.Logger(config["name"], level=config["log_level"].upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter())
    handler.addFilter(_DropCheckOutputWarning())
    out.addHandler(handler)
    return out
