"""Credentials: an API key, or short-lived OAuth tokens fetched and cached.

Three modes, chosen from the settings:

* ``api_key`` -> ``x-api-key`` on every request;
* ``client_id`` + ``client_secret`` -> the ``client_credentials`` grant;
* ``federation_rule_id`` + an assertion (a file read at each refresh, such as a
  Kubernetes projected token, or a callable) -> the jwt-bearer grant.

A :class:`TokenCache` holds the current token and refreshes it ``refresh_ahead``
seconds before it expires.  One caller refreshes at a time: threads wait on a
``threading.Lock``, asyncio tasks on an ``asyncio.Lock`` (with the thread lock taken
only around the short state changes).  After a 401 the caller invalidates the token it
used; only the first caller to do so refreshes, the others pick up the new token.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from .._errors import ConfigError

__all__ = [
    "ApiKeyAuth",
    "Assertion",
    "ClientCredentials",
    "Token",
    "TokenCache",
    "WorkloadIdentity",
]

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

#: An assertion source: a path to a file or a callable returning the JWT.
Assertion = str | Path | Callable[[], str]


@dataclass(frozen=True)
class ApiKeyAuth:
    api_key: SecretStr

    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key.get_secret_value()}

    def fingerprint(self) -> str:
        return "key:" + _digest(self.api_key.get_secret_value())


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: SecretStr

    def grant(self) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret.get_secret_value(),
        }

    def fingerprint(self) -> str:
        return "client:" + self.client_id


@dataclass(frozen=True)
class WorkloadIdentity:
    federation_rule_id: str
    assertion: Assertion = field(repr=False)

    def grant(self) -> dict[str, str]:
        source = self.assertion
        if callable(source):
            jwt = source()
        else:
            try:
                jwt = Path(source).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"BKBN_ASSERTION_FILE {str(source)!r} cannot be read: {exc.strerror}"
                ) from None
        if not jwt:
            raise ConfigError("the workload identity assertion is empty")
        return {
            "grant_type": JWT_BEARER,
            "assertion": jwt,
            "federation_rule_id": self.federation_rule_id,
        }

    def fingerprint(self) -> str:
        return "rule:" + self.federation_rule_id


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Token:
    access_token: SecretStr
    expires_at: float  # time.monotonic() seconds
    refresh_at: float  # when a caller gets a new one instead

    def __repr__(self) -> str:
        return f"Token(expires_at={self.expires_at:.0f})"


class TokenCache:
    """The current token of one grant; refreshed by one caller at a time."""

    def __init__(
        self,
        *,
        refresh_ahead: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token: Token | None = None
        self._refresh_ahead = refresh_ahead
        self._clock = clock
        self._lock = threading.Lock()
        self._alock: asyncio.Lock | None = None
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"TokenCache(refreshes={self.refreshes})"

    def _fresh(self) -> str | None:
        token = self._token
        if token is not None and token.refresh_at > self._clock():
            return token.access_token.get_secret_value()
        return None

    def set(self, access_token: str, expires_in: float) -> None:
        """Store a token that expires in ``expires_in`` seconds from now.

        It is refreshed ``refresh_ahead`` seconds before it expires, or halfway
        through its life when that is shorter, so that a short-lived token is still
        used for a while instead of being refreshed before every call.
        """
        lifetime = max(0.0, float(expires_in))
        now = self._clock()
        ahead = min(self._refresh_ahead, lifetime / 2)
        self._token = Token(SecretStr(access_token), now + lifetime, now + lifetime - ahead)
        self.refreshes += 1

    def invalidate(self, used: str) -> None:
        """Forget the token ``used`` was given (after a 401) unless it already changed."""
        with self._lock:
            token = self._token
            if token is not None and token.access_token.get_secret_value() == used:
                self._token = None

    def get(self, fetch: Callable[[], tuple[str, float]]) -> str:
        """The current token, fetching one (once, whoever asks) when it is due."""
        current = self._fresh()
        if current is not None:
            return current
        with self._lock:
            current = self._fresh()
            if current is None:
                access_token, expires_in = fetch()
                self.set(access_token, expires_in)
                current = access_token
            return current

    async def aget(self, fetch: Callable[[], Awaitable[tuple[str, float]]]) -> str:
        current = self._fresh()
        if current is not None:
            return current
        if self._alock is None:
            self._alock = asyncio.Lock()
        async with self._alock:
            current = self._fresh()
            if current is None:
                access_token, expires_in = await fetch()
                with self._lock:
                    self.set(access_token, expires_in)
                current = access_token
            return current
