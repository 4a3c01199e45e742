"""HTTP plumbing shared by every route: request ids, the error shape, two middlewares.

:class:`RequestContext` is the outermost layer: it gives each request its
``request-id``, adds the organization and rate-limit headers once a route has learnt
them, and turns anything unhandled into a 500 ``api_error`` without a stack trace.
:class:`BodySizeLimit` answers 413 ``request_too_large`` from the ``content-length``
header, or while the body streams in, before the whole body is ever held in memory.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
from collections.abc import Callable, Mapping
from typing import Any

from .._contract import ERROR_TYPES, SIZE_LIMITS

__all__ = [
    "ApiProblem",
    "BodySizeLimit",
    "RequestContext",
    "error_body",
    "new_id",
    "size_limit_for",
]

logger = logging.getLogger("bkbn_pipelines.emulator")

_BASE62 = string.digits + string.ascii_letters

#: Limit for endpoints outside the contract's table (OAuth, test endpoints).
SMALL_BODY_LIMIT = 1024 * 1024


def new_id(prefix: str, length: int = 24) -> str:
    """``prefix`` + ``length`` random base62 characters, e.g. ``req_3kT...``."""
    return prefix + "".join(secrets.choice(_BASE62) for _ in range(length))


def error_body(status: int, message: str, request_id: str | None, **extra: Any) -> dict:
    """The contract's error object for ``status``."""
    error: dict[str, Any] = {"type": ERROR_TYPES.get(status, _fallback_type(status))}
    error["message"] = message
    error.update(extra)
    return {"type": "error", "error": error, "request_id": request_id}


def _fallback_type(status: int) -> str:
    if status >= 500:
        return "api_error"
    return "invalid_request_error"


class ApiProblem(Exception):
    """Raised by routes and dependencies; becomes a contract error response."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: dict | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.body = body
        self.extra = dict(extra or {})


def size_limit_for(path: str, limits: Mapping[str, int] = SIZE_LIMITS) -> int:
    """The body limit of the endpoint at ``path``."""
    if path.startswith("/v1/workflows/"):
        return limits["workflows"]
    for family in ("staging", "floor-plans", "brochures", "batches"):
        if path == f"/v1/{family}" or path.startswith(f"/v1/{family}/"):
            return limits[family]
    return SMALL_BODY_LIMIT


async def _send_json(send: Callable, status: int, body: dict, headers: list) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class _BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuse bodies over the endpoint's limit with 413, before reading them whole."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = size_limit_for(scope["path"])
        request_id = scope.setdefault("state", {}).get("request_id")
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit, request_id)
            return

        seen = 0
        over = False
        started = False

        async def counting_receive() -> dict:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: dict) -> None:
            nonlocal started
            if over:
                return  # the app's answer to a cut-off body is replaced by the 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            await self._refuse(send, limit, request_id)

    @staticmethod
    async def _refuse(send: Callable, limit: int, request_id: str | None) -> None:
        message = f"request body exceeds this endpoint's limit of {limit} bytes"
        await _send_json(
            send, 413, error_body(413, message, request_id), [(b"connection", b"close")]
        )


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class RequestContext:
    """Request ids, per-request response headers, and the last-resort 500."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        request_id = new_id("req_")
        state["request_id"] = request_id
        started = False

        async def send_with_headers(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in (b"request-id", b"bkbn-organization-id")
                ]
                headers.append((b"request-id", request_id.encode()))
                org = state.get("org_id")
                if org:
                    headers.append((b"bkbn-organization-id", org.encode()))
                present = {k.lower() for k, _ in headers}
                for name, value in state.get("extra_headers", {}).items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            logger.exception("unhandled error in %s %s", scope.get("method"), scope["path"])
            if not started:
                await _send_json(
                    send_with_headers,
                    500,
                    error_body(500, "internal error in the emulator", request_id),
                    [],
                )
