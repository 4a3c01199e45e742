"""The Backbone Lab API client: sync and async, streaming, retrying, resuming.

See docs/client.md for usage, the error tree and the retry rules.
"""

from __future__ import annotations

from ._auth import ApiKeyAuth, ClientCredentials, TokenCache, WorkloadIdentity
from ._client import AsyncBackboneClient, BackboneClient
from ._ratelimit import MemoryPacerStore, Pacer, PacerState, PacerStore
from ._retry import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after
from ._settings import DEFAULT_TIMEOUT, NOT_GIVEN, ClientSettings, NotGiven
from ._sse import ServerSentEvent, SSEDecoder
from ._streaming import AsyncRunStream, RunStream

__all__ = [
    "DEFAULT_TIMEOUT",
    "NOT_GIVEN",
    "RETRYABLE_STATUSES",
    "ApiKeyAuth",
    "AsyncBackboneClient",
    "AsyncRunStream",
    "BackboneClient",
    "ClientCredentials",
    "ClientSettings",
    "MemoryPacerStore",
    "NotGiven",
    "Pacer",
    "PacerState",
    "PacerStore",
    "RetryPolicy",
    "RunStream",
    "SSEDecoder",
    "ServerSentEvent",
    "TokenCache",
    "WorkloadIdentity",
    "parse_retry_after",
]
