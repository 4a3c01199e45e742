"""The request loop shared by every endpoint: auth, pacing, retries, errors, logging.

:class:`SyncTransport` and :class:`AsyncTransport` are twins; everything that does not
wait on the network lives in :class:`_Core` so that the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from .. import __version__ as _pkg_version
from .._contract import SIZE_LIMITS
from .._errors import APIError, RateLimitError, RequestTooLargeError
from ._auth import ApiKeyAuth, TokenCache
from ._errors import connection_error, oauth_error, status_error
from ._ratelimit import Pacer
from ._retry import RetryPolicy
from ._settings import ClientSettings

__all__ = ["AsyncTransport", "SyncTransport", "size_family"]

logger = logging.getLogger("bkbn_pipelines.client")

_HTTPX_ERRORS = (httpx.HTTPError, httpx.StreamError, httpx.InvalidURL)


def size_family(path: str) -> str | None:
    """The :data:`SIZE_LIMITS` entry for a POST path, or ``None``."""
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "v1" and parts[1] in SIZE_LIMITS:
        return parts[1]
    return None


class _Core:
    def __init__(
        self,
        settings: ClientSettings,
        *,
        pacer: Pacer | None,
        retry_policy: RetryPolicy | None,
        token_refresh_ahead: float,
        sleep: Callable[[float], Any] | None,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.retry = retry_policy or RetryPolicy(max_retries=settings.max_retries)
        fingerprint = f"{settings.base_url}|{settings.auth.fingerprint()}"
        self.pacer = pacer or Pacer.shared(fingerprint)
        self.tokens = (
            None
            if isinstance(settings.auth, ApiKeyAuth)
            else TokenCache(refresh_ahead=token_refresh_ahead, clock=clock)
        )
        self.clock = clock
        self._sleep_override = sleep
        self._origin = urlsplit(settings.base_url)[:2]

    # --- requests -------------------------------------------------------------

    def url(self, path_or_url: str) -> str:
        """An absolute http(s) URL, or a path below the base URL; anything else is refused."""
        if path_or_url.startswith(("http://", "https://")):
            url = path_or_url
        elif "://" in path_or_url.split("/", 1)[0] or ":" in path_or_url.split("/", 1)[0]:
            scheme = path_or_url.split(":", 1)[0]
            raise APIError(f"the client fetches only http(s) URLs, not {scheme}: URLs")
        else:
            url = self.settings.base_url + "/" + path_or_url.lstrip("/")
        try:
            httpx.URL(url)
        except (httpx.InvalidURL, ValueError):
            raise APIError("not a valid URL") from None
        return url

    def same_origin(self, url: str) -> bool:
        return urlsplit(url)[:2] == self._origin

    def encode(self, path: str, body: Any) -> bytes | None:
        if body is None:
            return None
        content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        family = size_family(path)
        if family is not None and len(content) > SIZE_LIMITS[family]:
            limit = SIZE_LIMITS[family]
            raise RequestTooLargeError(
                f"request body of {len(content)} bytes is over the {limit // (1024 * 1024)} MB "
                f"({limit} bytes) limit of the {family} endpoints; not sent",
                status_code=413,
            )
        return content

    def headers(
        self, method: str, accept: str, idempotency_key: str | None, extra: Mapping[str, str]
    ) -> dict[str, str]:
        headers = {
            "bkbn-version": self.settings.version,
            "accept": accept,
            "user-agent": f"bkbn-pipelines/{_pkg_version} httpx/{httpx.__version__}",
        }
        if method == "POST":
            headers["content-type"] = "application/json"
            if idempotency_key:
                headers["idempotency-key"] = idempotency_key
        headers.update(extra)
        return headers

    def log(self, request: httpx.Request, status: int | str, request_id: str | None, t0: float):
        url = request.url.copy_with(query=None)
        logger.debug(
            "%s %s -> %s request_id=%s elapsed=%.0fms",
            request.method,
            url,
            status,
            request_id or "-",
            (time.monotonic() - t0) * 1000,
        )

    def deadline_at(self) -> float | None:
        if self.settings.deadline is None:
            return None
        return time.monotonic() + self.settings.deadline

    @staticmethod
    def fits(deadline_at: float | None, delay: float) -> bool:
        return deadline_at is None or time.monotonic() + delay < deadline_at

    def pace(self, waited_until: float, deadline_at: float | None, what: str) -> float:
        """The pacer's wait before the next request; refused if it passes the deadline."""
        wait = self.pacer.reserve(waited_until=waited_until)
        if wait > 0 and not self.fits(deadline_at, wait):
            raise RateLimitError(
                f"{what}: not sent; the rate limit frees a request in {wait:.1f}s, "
                "after this call's deadline",
                status_code=429,
            )
        return wait

    def after_connection_error(
        self, exc: Exception, attempt: int, retries: int, what: str, deadline_at: float | None
    ) -> float:
        """The wait before retrying after a transport error; raises when it is final."""
        delay = (
            self.retry.decide(attempt, connection_error=True, what=what)
            if attempt < retries
            else None
        )
        if delay is None or not self.fits(deadline_at, delay):
            raise connection_error(exc, what) from exc
        return delay

    def after_status(
        self,
        response: httpx.Response,
        attempt: int,
        retries: int,
        what: str,
        deadline_at: float | None,
    ) -> float | None:
        """The wait before retrying after an error status, or ``None`` when it is final."""
        if attempt >= retries:
            logger.debug("%s: status %s, no retry left", what, response.status_code)
            return None
        delay = self.retry.decide(
            attempt, status=response.status_code, headers=response.headers, what=what
        )
        if delay is not None and not self.fits(deadline_at, delay):
            logger.debug("%s: a retry in %.2fs would pass the deadline", what, delay)
            return None
        return delay

    @staticmethod
    def token_answer(response: httpx.Response, content: bytes) -> tuple[str, float]:
        try:
            body = json.loads(content)
            return str(body["access_token"]), float(body.get("expires_in", 900))
        except (ValueError, KeyError, TypeError):
            raise APIError(
                "the token endpoint answered without an access_token",
                status_code=response.status_code,
                request_id=response.headers.get("request-id"),
            ) from None


class SyncTransport(_Core):
    """Sends requests for :class:`~bkbn_pipelines.client.BackboneClient`."""

    def __init__(self, settings: ClientSettings, *, http_transport=None, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        limits = httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
        )
        self.http = httpx.Client(timeout=settings.timeout, limits=limits, transport=http_transport)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            sleep = self._sleep_override if self._sleep_override is not None else time.sleep
            sleep(seconds)

    def close(self) -> None:
        self.http.close()

    def auth_headers(self) -> tuple[dict[str, str], str | None]:
        auth = self.settings.auth
        if isinstance(auth, ApiKeyAuth):
            return auth.headers(), None
        assert self.tokens is not None
        token = self.tokens.get(self.fetch_token)
        return {"authorization": f"Bearer {token}"}, token

    def fetch_token(self) -> tuple[str, float]:
        grant = self.settings.auth.grant()  # type: ignore[union-attr]
        response = self.send("POST", "/v1/oauth/token", body=grant, auth=False, oauth=True)
        return self.token_answer(response, response.content)

    def send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        stream: bool = False,
        accept: str = "application/json",
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        auth: bool = True,
        oauth: bool = False,
        what: str | None = None,
        max_retries: int | None = None,
    ) -> httpx.Response:
        """Send with retries; return a successful response (open when ``stream``)."""
        content = self.encode(path, body)
        url = self.url(path)
        what = what or f"{method} {urlsplit(url).path}"
        if method == "POST" and idempotency_key is None:
            idempotency_key = str(uuid.uuid4())
        retries = self.retry.max_retries if max_retries is None else max_retries
        deadline_at = self.deadline_at()
        attempt = 0
        refreshed = False
        waited_until = 0.0
        while True:
            self.sleep(self.pace(waited_until, deadline_at, what))
            extra = dict(headers or {})
            used_token = None
            if auth:
                auth_extra, used_token = self.auth_headers()
                extra.update(auth_extra)
            request = self.http.build_request(
                method,
                url,
                content=content,
                headers=self.headers(method, accept, idempotency_key, extra),
            )
            t0 = time.monotonic()
            try:
                response = self.http.send(request, stream=True)
            except _HTTPX_ERRORS as exc:
                self.log(request, type(exc).__name__, None, t0)
                delay = self.after_connection_error(exc, attempt, retries, what, deadline_at)
                self.sleep(delay)
                attempt += 1
                continue
            request_id = response.headers.get("request-id")
            self.log(request, response.status_code, request_id, t0)
            self.pacer.update(response.headers)
            if response.status_code < 400:
                if stream:
                    return response
                try:
                    response.read()
                except _HTTPX_ERRORS as exc:
                    delay = self.after_connection_error(exc, attempt, retries, what, deadline_at)
                    self.sleep(delay)
                    attempt += 1
                    continue
                finally:
                    response.close()
                return response
            if (
                response.status_code == 401
                and used_token is not None
                and not refreshed
                and self.tokens is not None
            ):
                logger.debug("%s: 401 with a cached token, refreshing once", what)
                response.close()
                self.tokens.invalidate(used_token)
                refreshed = True
                continue
            delay = self.after_status(response, attempt, retries, what, deadline_at)
            if delay is not None:
                if response.status_code == 429:
                    waited_until = self.pacer.block(delay)
                response.close()
                self.sleep(delay)
                attempt += 1
                continue
            try:
                error_content = response.read()
            except _HTTPX_ERRORS:
                error_content = b""
            finally:
                response.close()
            raise (oauth_error if oauth else status_error)(response, error_content)


class AsyncTransport(_Core):
    """Sends requests for :class:`~bkbn_pipelines.client.AsyncBackboneClient`."""

    def __init__(self, settings: ClientSettings, *, http_transport=None, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        limits = httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_connections,
        )
        self.http = httpx.AsyncClient(
            timeout=settings.timeout, limits=limits, transport=http_transport
        )

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            if self._sleep_override is not None:
                result = self._sleep_override(seconds)
                if isinstance(result, Awaitable):
                    await result
            else:
                await asyncio.sleep(seconds)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def auth_headers(self) -> tuple[dict[str, str], str | None]:
        auth = self.settings.auth
        if isinstance(auth, ApiKeyAuth):
            return auth.headers(), None
        assert self.tokens is not None
        token = await self.tokens.aget(self.fetch_token)
        return {"authorization": f"Bearer {token}"}, token

    async def fetch_token(self) -> tuple[str, float]:
        grant = self.settings.auth.grant()  # type: ignore[union-attr]
        response = await self.send("POST", "/v1/oauth/token", body=grant, auth=False, oauth=True)
        return self.token_answer(response, response.content)

    async def send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        stream: bool = False,
        accept: str = "application/json",
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        auth: bool = True,
        oauth: bool = False,
        what: str | None = None,
        max_retries: int | None = None,
    ) -> httpx.Response:
        content = self.encode(path, body)
        url = self.url(path)
        what = what or f"{method} {urlsplit(url).path}"
        if method == "POST" and idempotency_key is None:
            idempotency_key = str(uuid.uuid4())
        retries = self.retry.max_retries if max_retries is None else max_retries
        deadline_at = self.deadline_at()
        attempt = 0
        refreshed = False
        waited_until = 0.0
        while True:
            await self.sleep(self.pace(waited_until, deadline_at, what))
            extra = dict(headers or {})
            used_token = None
            if auth:
                auth_extra, used_token = await self.auth_headers()
                extra.update(auth_extra)
            request = self.http.build_request(
                method,
                url,
                content=content,
                headers=self.headers(method, accept, idempotency_key, extra),
            )
            t0 = time.monotonic()
            try:
                response = await self.http.send(request, stream=True)
            except _HTTPX_ERRORS as exc:
                self.log(request, type(exc).__name__, None, t0)
                delay = self.after_connection_error(exc, attempt, retries, what, deadline_at)
                await self.sleep(delay)
                attempt += 1
                continue
            request_id = response.headers.get("request-id")
            self.log(request, response.status_code, request_id, t0)
            self.pacer.update(response.headers)
            if response.status_code < 400:
                if stream:
                    return response
                try:
                    await response.aread()
                except _HTTPX_ERRORS as exc:
                    delay = self.after_connection_error(exc, attempt, retries, what, deadline_at)
                    await self.sleep(delay)
                    attempt += 1
                    continue
                finally:
                    await response.aclose()
                return response
            if (
                response.status_code == 401
                and used_token is not None
                and not refreshed
                and self.tokens is not None
            ):
                logger.debug("%s: 401 with a cached token, refreshing once", what)
                await response.aclose()
                self.tokens.invalidate(used_token)
                refreshed = True
                continue
            delay = self.after_status(response, attempt, retries, what, deadline_at)
            if delay is not None:
                if response.status_code == 429:
                    waited_until = self.pacer.block(delay)
                await response.aclose()
                await self.sleep(delay)
                attempt += 1
                continue
            try:
                error_content = await response.aread()
            except _HTTPX_ERRORS:
                error_content = b""
            finally:
                await response.aclose()
            raise (oauth_error if oauth else status_error)(response, error_content)
