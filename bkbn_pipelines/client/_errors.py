"""The boundary where HTTP answers and httpx exceptions become the package's errors.

Nothing from httpx or h11 crosses this boundary: status errors become the class of
:func:`bkbn_pipelines._errors.status_error_class`, transport failures become
:class:`APIConnectionError` or :class:`APITimeoutError`.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from .._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    OAuthError,
    status_error_class,
)
from .._logging import redact
from ._retry import parse_retry_after

__all__ = ["connection_error", "oauth_error", "status_error"]


def _parse_body(content: bytes) -> Any:
    # The JSON error body is read whatever the content-type says (a streaming POST
    # that fails answers JSON although the client asked for an event stream).
    if not content:
        return None
    try:
        return json.loads(content.decode("utf-8", errors="replace"))
    except ValueError:
        return content.decode("utf-8", errors="replace")[:1000]


def status_error(response: httpx.Response, content: bytes) -> APIStatusError:
    """The typed error for an error response whose body has been read."""
    status = response.status_code
    body = _parse_body(content)
    cls = status_error_class(status)
    error_type = None
    message = None
    request_id = response.headers.get("request-id")
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            error_type = err.get("type")
            message = err.get("message")
        elif isinstance(err, str):  # RFC 6749 style: {"error": "...", "error_description"}
            error_type = err
            message = body.get("error_description")
        request_id = request_id or body.get("request_id")
    elif isinstance(body, str) and body.strip():
        message = body.strip()
    if not message:
        message = f"HTTP {status} {response.reason_phrase or ''}".strip()
    error = cls(
        redact(str(message)),
        status_code=status,
        error_type=str(error_type) if error_type else (cls.error_type or None),
        request_id=request_id,
        body=body,
    )
    error.headers = dict(response.headers)  # type: ignore[attr-defined]
    error.retry_after = parse_retry_after(response.headers)  # type: ignore[attr-defined]
    return error


def oauth_error(response: httpx.Response, content: bytes) -> OAuthError:
    """A refused grant: RFC 6749 §5.2 ``error`` codes or the API's error shape."""
    base = status_error(response, content)
    code = base.error_type
    body = base.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code") or code  # the RFC 6749 code, when given apart
    return OAuthError(
        f"token request refused: {base.message}",
        status_code=response.status_code,
        error_type=code,
        request_id=base.request_id,
        body=base.body,
    )


def connection_error(exc: Exception, what: str) -> APIConnectionError:
    """Map an httpx transport exception; the message names the kind, never a header."""
    if isinstance(exc, httpx.TimeoutException):
        kind = type(exc).__name__.replace("Timeout", " timeout").lower().strip()
        return APITimeoutError(f"{what}: {kind}")
    return APIConnectionError(f"{what}: {type(exc).__name__}: {redact(str(exc))}")
