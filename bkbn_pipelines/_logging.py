"""The package's quiet logger tree and the filter that keeps credentials out of logs.

Every module logs to a child of ``bkbn_pipelines`` with %-style arguments.  The
package adds a ``NullHandler`` and nothing else: applications decide what to show.
``BKBN_LOG=debug|info`` attaches a stderr handler for quick diagnosis.
"""

from __future__ import annotations

import logging
import os
import re

__all__ = ["RedactingFilter", "configure_from_env", "get_logger", "redact"]

ROOT = "bkbn_pipelines"

_SECRET_PATTERNS = (
    re.compile(r"bkbn_sk_[A-Za-z0-9_\-]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-~+/=]+"),
    re.compile(
        r"(?i)((?:x-api-key|authorization|client_secret|assertion|access_token"
        r"|aws_secret_access_key|api_key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"
    ),
    re.compile(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"),
)


def redact(text: str) -> str:
    """Replace API keys, bearer tokens, JWTs and named secrets with ``[redacted]``."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts credentials from the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def get_logger(name: str) -> logging.Logger:
    """``get_logger("client")`` is ``logging.getLogger("bkbn_pipelines.client")``."""
    return logging.getLogger(f"{ROOT}.{name}" if name else ROOT)


def configure_from_env() -> None:
    """Attach a stderr handler when ``BKBN_LOG`` is ``debug`` or ``info``."""
    level = os.environ.get("BKBN_LOG", "").strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING"}:
        return
    logger = logging.getLogger(ROOT)
    if any(getattr(h, "_bkbn", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler._bkbn = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


#: Every logger the package logs to.  A logger's filters see only the records made on
#: that logger (not those of its children), so each one carries the redacting filter:
#: whatever handler an application attaches, no credential gets through.
LOGGERS = (
    "",
    "catalogue",
    "client",
    "emulator",
    "media",
    "runtime",
    "runtime.brochure",
    "runtime.capture",
    "runtime.floorplan",
    "storage",
)

_root = logging.getLogger(ROOT)
_root.addHandler(logging.NullHandler())
for _name in LOGGERS:
    get_logger(_name).addFilter(RedactingFilter())
