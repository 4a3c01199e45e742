"""Fault injection for tests, kept per credential (API key, OAuth client or rule).

Only an emulator started in test mode accepts faults.  A fault set replaces the
credential's previous one and its request counter starts again at zero, so ``nth``
counts the requests made with that credential after the faults were set.  Stream
faults form a queue: each new event stream opened with the credential takes the next
one, so a resumed stream after a drop runs clean.  docs/emulator.md has examples.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FailRule", "FaultBook", "FaultSpec", "LatencyOverride", "RateLimitBurst", "StreamFault"]

_STRICT = ConfigDict(extra="forbid", frozen=True)


class FailRule(BaseModel):
    """Answer the ``nth`` request (1-based) with ``status`` and ``body``."""

    model_config = _STRICT

    nth: int = Field(ge=1)
    status: int = Field(ge=400, le=599)
    body: dict | None = Field(None, description="default: the contract error for status")
    headers: dict[str, str] = Field(default_factory=dict)
    retry_after: float | None = Field(None, ge=0, description="retry-after in seconds")
    retry_after_http_date: float | None = Field(
        None, ge=0, description="retry-after as an HTTP date this many seconds ahead"
    )
    retry_after_ms: int | None = Field(None, ge=0, description="retry-after-ms header")


class RateLimitBurst(BaseModel):
    """The next ``count`` requests answer 429 ``rate_limit_error``."""

    model_config = _STRICT

    count: int = Field(ge=1)
    retry_after: float | None = Field(1, ge=0, description="null: no retry-after header")


class StreamFault(BaseModel):
    """What the next event stream does wrong, after ``after_events`` good events.

    ``drop`` closes the connection; ``drop_mid_event`` writes the first half of the
    next event's bytes and then closes; ``stall`` waits ``seconds`` (no heartbeats)
    before the next event; ``malformed`` sends an event whose data is not JSON;
    ``first_byte_delay`` waits ``seconds`` before the stream's status line.
    """

    model_config = _STRICT

    action: Literal["drop", "drop_mid_event", "stall", "malformed", "first_byte_delay"]
    after_events: int = Field(0, ge=0)
    seconds: float = Field(0, ge=0, le=600)


class LatencyOverride(BaseModel):
    """Latency-model timings for this credential's runs."""

    model_config = _STRICT

    delay_ms: int | None = Field(None, ge=0)
    steps: int | None = Field(None, ge=1, le=1000)
    step_ms: int | None = Field(None, ge=0)
    max_side: int | None = Field(None, ge=16, le=8192)


class FaultSpec(BaseModel):
    """The faults of one credential."""

    model_config = _STRICT

    fail: tuple[FailRule, ...] = ()
    rate_limit_burst: RateLimitBurst | None = None
    streams: tuple[StreamFault, ...] = ()
    first_byte_delay_s: float = Field(0, ge=0, le=600, description="before every response")
    single_use_grants: bool = Field(
        False,
        description="refuse a token grant (400 invalid_grant) while the client holds a live token",
    )
    latency: LatencyOverride | None = None
    heartbeat_s: float | None = Field(None, gt=0, le=15)


@dataclass
class _State:
    spec: FaultSpec
    requests: int = 0
    burst_left: int = 0
    streams: list[StreamFault] = field(default_factory=list)


@dataclass
class FaultBook:
    """Faults and request counters per credential."""

    _states: dict[str, _State] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, credential: str, spec: FaultSpec) -> None:
        with self._lock:
            self._states[credential] = _State(
                spec=spec,
                burst_left=spec.rate_limit_burst.count if spec.rate_limit_burst else 0,
                streams=list(spec.streams),
            )

    def clear(self) -> None:
        with self._lock:
            self._states.clear()

    def spec(self, credential: str) -> FaultSpec | None:
        state = self._states.get(credential)
        return state.spec if state else None

    def on_request(self, credential: str) -> tuple[FailRule | None, RateLimitBurst | None]:
        """Count a request; the fail rule or burst that applies to it, if any."""
        with self._lock:
            state = self._states.get(credential)
            if state is None:
                return None, None
            state.requests += 1
            for rule in state.spec.fail:
                if rule.nth == state.requests:
                    return rule, None
            if state.burst_left > 0:
                state.burst_left -= 1
                return None, state.spec.rate_limit_burst
            return None, None

    def next_stream(self, credential: str) -> StreamFault | None:
        with self._lock:
            state = self._states.get(credential)
            if state is None or not state.streams:
                return None
            return state.streams.pop(0)
