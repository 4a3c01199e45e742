"""``BackboneClient`` and ``AsyncBackboneClient``: one surface, two ways to wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import SecretStr

from ._auth import Assertion
from ._base import AsyncTransport, SyncTransport
from ._ratelimit import Pacer
from ._resources import (
    AsyncBrochures,
    AsyncFiles,
    AsyncFloorPlans,
    AsyncOAuth,
    AsyncRuns,
    AsyncStaging,
    AsyncWorkflows,
    Brochures,
    Files,
    FloorPlans,
    OAuth,
    Runs,
    Staging,
    Workflows,
)
from ._retry import RetryPolicy
from ._settings import NOT_GIVEN, ClientSettings, NotGiven, resolve_settings

__all__ = ["AsyncBackboneClient", "BackboneClient"]


class _ClientBase:
    settings: ClientSettings

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"{type(self).__name__}(base_url={s.base_url!r}, version={s.version!r}, "
            f"auth={s.auth_mode!r}, max_retries={s.max_retries})"
        )

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    @property
    def pacer(self) -> Pacer:
        return self._transport.pacer  # type: ignore[attr-defined]

    @property
    def token_refreshes(self) -> int:
        """How many tokens this client has fetched (0 with an API key)."""
        tokens = self._transport.tokens  # type: ignore[attr-defined]
        return 0 if tokens is None else tokens.refreshes


class BackboneClient(_ClientBase):
    """A synchronous client of the Backbone Lab API.

    Every argument falls back to its environment variable, then to its default:
    ``api_key`` (``BKBN_API_KEY``), ``base_url`` (``BKBN_BASE_URL``), ``version``
    (``BKBN_VERSION``), ``client_id``/``client_secret`` (``BKBN_CLIENT_ID``,
    ``BKBN_CLIENT_SECRET``), ``federation_rule_id``/``assertion``
    (``BKBN_FEDERATION_RULE_ID``, ``BKBN_ASSERTION_FILE``; ``assertion`` may also be a
    callable returning the JWT).

    ``timeout`` applies per request; its ``read`` part is the longest silence allowed
    between two chunks of a stream.  ``deadline`` (seconds, default none) bounds a
    whole call including its retries and the stream.  ``transport``, ``pacer``,
    ``retry_policy``, ``sleep`` and ``clock`` are for tests and advanced use.
    """

    def __init__(
        self,
        *,
        api_key: str | SecretStr | NotGiven | None = NOT_GIVEN,
        base_url: str | NotGiven = NOT_GIVEN,
        version: str | NotGiven = NOT_GIVEN,
        client_id: str | NotGiven | None = NOT_GIVEN,
        client_secret: str | SecretStr | NotGiven | None = NOT_GIVEN,
        federation_rule_id: str | NotGiven | None = NOT_GIVEN,
        assertion: Assertion | NotGiven | None = NOT_GIVEN,
        max_retries: int = 2,
        timeout: float | httpx.Timeout | NotGiven = NOT_GIVEN,
        deadline: float | None = None,
        max_connections: int = 10,
        token_refresh_ahead: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        pacer: Pacer | None = None,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = resolve_settings(
            api_key=api_key,
            base_url=base_url,
            version=version,
            client_id=client_id,
            client_secret=client_secret,
            federation_rule_id=federation_rule_id,
            assertion=assertion,
            max_retries=max_retries,
            timeout=timeout,
            deadline=deadline,
            max_connections=max_connections,
        )
        self._transport = SyncTransport(
            self.settings,
            http_transport=transport,
            pacer=pacer,
            retry_policy=retry_policy,
            token_refresh_ahead=token_refresh_ahead,
            sleep=sleep,
            clock=clock,
        )
        self.workflows = Workflows(self._transport)
        self.staging = Staging(self._transport)
        self.floor_plans = FloorPlans(self._transport)
        self.brochures = Brochures(self._transport)
        self.runs = Runs(self._transport)
        self.files = Files(self._transport)
        self.oauth = OAuth(self._transport)

    def close(self) -> None:
        """Close every pooled connection."""
        self._transport.close()

    def __enter__(self) -> BackboneClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncBackboneClient(_ClientBase):
    """The asyncio twin of :class:`BackboneClient`; the same arguments and resources.

    ``create``/``run``/``retrieve``/``download``/``token`` are coroutines; ``stream``
    and ``events`` return an :class:`AsyncRunStream` for ``async with``/``async for``.
    """

    def __init__(
        self,
        *,
        api_key: str | SecretStr | NotGiven | None = NOT_GIVEN,
        base_url: str | NotGiven = NOT_GIVEN,
        version: str | NotGiven = NOT_GIVEN,
        client_id: str | NotGiven | None = NOT_GIVEN,
        client_secret: str | SecretStr | NotGiven | None = NOT_GIVEN,
        federation_rule_id: str | NotGiven | None = NOT_GIVEN,
        assertion: Assertion | NotGiven | None = NOT_GIVEN,
        max_retries: int = 2,
        timeout: float | httpx.Timeout | NotGiven = NOT_GIVEN,
        deadline: float | None = None,
        max_connections: int = 10,
        token_refresh_ahead: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        pacer: Pacer | None = None,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = resolve_settings(
            api_key=api_key,
            base_url=base_url,
            version=version,
            client_id=client_id,
            client_secret=client_secret,
            federation_rule_id=federation_rule_id,
            assertion=assertion,
            max_retries=max_retries,
            timeout=timeout,
            deadline=deadline,
            max_connections=max_connections,
        )
        self._transport = AsyncTransport(
            self.settings,
            http_transport=transport,
            pacer=pacer,
            retry_policy=retry_policy,
            token_refresh_ahead=token_refresh_ahead,
            sleep=sleep,
            clock=clock,
        )
        self.workflows = AsyncWorkflows(self._transport)
        self.staging = AsyncStaging(self._transport)
        self.floor_plans = AsyncFloorPlans(self._transport)
        self.brochures = AsyncBrochures(self._transport)
        self.runs = AsyncRuns(self._transport)
        self.files = AsyncFiles(self._transport)
        self.oauth = AsyncOAuth(self._transport)

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncBackboneClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
