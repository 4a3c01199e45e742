"""Client-side pacing from the ``bkbn-ratelimit-*`` headers.

Every answer tells how many requests and tokens are left in the current window and
when it resets.  A :class:`Pacer` keeps that state for one credential and, before each
request, says how long the caller should wait:

* while plenty is left, nothing;
* when few requests are left, the rest of the window is shared out evenly between
  them, so concurrent callers are spaced instead of bursting into 429s;
* when nothing is left, or a 429 said ``retry-after``, until the window resets; the
  callers that find a window spent book places in the next one, so they do not all
  wake at the reset together.

The pacer counts the requests it lets through against the last known ``remaining``,
so callers that start at the same moment do not all spend the same last request.
Its state lives in a :class:`PacerStore`; the default keeps it in memory and
:meth:`Pacer.shared` hands out one pacer per key per process.  A store shared
between processes can implement the same two methods.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

__all__ = ["MemoryPacerStore", "Pacer", "PacerState", "PacerStore"]

logger = logging.getLogger("bkbn_pipelines.client")

_PREFIX = "bkbn-ratelimit-"

#: Seconds added to a window's start, so that clocks a little apart do not send the
#: first request of a window while the server still counts the last one.
_MARGIN = 0.05


@dataclass(frozen=True)
class PacerState:
    """What is known of the current window; times are ``time.time()`` seconds."""

    requests_limit: int | None = None
    requests_remaining: int | None = None
    requests_reset: float | None = None
    tokens_remaining: int | None = None
    tokens_reset: float | None = None
    blocked_until: float = 0.0
    next_slot: float = 0.0
    not_before: float = 0.0
    window_s: float | None = None
    server_reset: float | None = None


class PacerStore(Protocol):
    """Where a pacer keeps its state; called under the pacer's lock."""

    def load(self, key: str) -> PacerState: ...

    def save(self, key: str, state: PacerState) -> None: ...


class MemoryPacerStore:
    """The in-process store."""

    def __init__(self) -> None:
        self._states: dict[str, PacerState] = {}

    def load(self, key: str) -> PacerState:
        return self._states.get(key, PacerState())

    def save(self, key: str, state: PacerState) -> None:
        self._states[key] = state


def _parse_reset(value: str | None, now: float) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        pass
    try:
        return now + float(value)  # some servers send seconds until reset
    except ValueError:
        return None


def _parse_int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class Pacer:
    """Spaces requests of one credential so that they stay under its rate limit.

    Thread-safe and usable from asyncio: the decision is taken under a short lock and
    the wait happens outside it (``time.sleep`` or ``asyncio.sleep``).
    """

    _registry: weakref.WeakValueDictionary[str, Pacer] = weakref.WeakValueDictionary()
    _registry_lock = threading.Lock()

    def __init__(
        self,
        key: str = "default",
        *,
        store: PacerStore | None = None,
        low_water: float = 0.1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self._store = store or MemoryPacerStore()
        self._low_water = low_water
        self._clock = clock
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, key: str) -> Pacer:
        """The process-wide pacer for ``key`` (a fingerprint of base URL and credential)."""
        with cls._registry_lock:
            pacer = cls._registry.get(key)
            if pacer is None:
                pacer = cls(key)
                cls._registry[key] = pacer
            return pacer

    def state(self) -> PacerState:
        with self._lock:
            return self._store.load(self.key)

    def reserve(self, *, waited_until: float = 0.0) -> float:
        """Count one request and return the seconds to wait before sending it.

        ``waited_until`` is the block (from :meth:`block`) the caller already slept
        through itself, so that it does not wait for it twice.
        """
        with self._lock:
            now = self._clock()
            state = self._store.load(self.key)
            if 0 < state.blocked_until <= waited_until:
                state = replace(state, blocked_until=0.0)
            wait, state = self._plan(state, now)
            self._store.save(self.key, state)
        if wait > 0:
            logger.debug("rate limit pacing: waiting %.2fs", wait)
        return wait

    @staticmethod
    def _roll(s: PacerState, start: float) -> PacerState:
        """The next window begins at ``start`` with the full limit."""
        return replace(
            s,
            requests_remaining=s.requests_limit,
            requests_reset=start + s.window_s if s.window_s else None,
            next_slot=max(s.next_slot, start + _MARGIN),
            not_before=max(s.not_before, start + _MARGIN),
        )

    def _plan(self, s: PacerState, now: float) -> tuple[float, PacerState]:
        if s.blocked_until > now:
            return s.blocked_until - now, s
        while s.requests_reset is not None and s.requests_reset <= now:
            if not s.requests_limit:
                s = replace(s, requests_remaining=None, requests_reset=None)
                break
            s = self._roll(s, s.requests_reset)
        if s.tokens_reset is not None and s.tokens_reset <= now:
            s = replace(s, tokens_remaining=None, tokens_reset=None)
        if s.tokens_remaining is not None and s.tokens_remaining <= 0 and s.tokens_reset:
            return s.tokens_reset - now, s
        remaining = s.requests_remaining
        if remaining is None:
            return max(0.0, s.not_before - now), s
        if remaining <= 0:
            if s.requests_reset is None or not s.requests_limit:
                return max(0.0, s.not_before - now), s  # nothing known: the server decides
            # This window is spent: take a place in the next one, which begins at reset.
            s = self._roll(s, s.requests_reset)
            remaining = s.requests_remaining or 0
        start = max(now, s.not_before)
        limit = s.requests_limit or remaining
        if remaining > max(1, int(limit * self._low_water)) or s.requests_reset is None:
            return start - now, replace(s, requests_remaining=remaining - 1)
        # Few left: share the rest of the window evenly between them.
        slot = max(start, s.next_slot)
        interval = max(0.0, s.requests_reset - slot) / remaining
        return slot - now, replace(s, requests_remaining=remaining - 1, next_slot=slot + interval)

    def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            time.sleep(delay)

    async def await_turn(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)

    def update(self, headers: Mapping[str, str]) -> None:
        """Learn from an answer's ``bkbn-ratelimit-*`` headers."""
        if not any(name.startswith(_PREFIX) for name in headers):
            return
        with self._lock:
            now = self._clock()
            s = self._store.load(self.key)
            limit = _parse_int(headers.get(_PREFIX + "requests-limit"))
            remaining = _parse_int(headers.get(_PREFIX + "requests-remaining"))
            reset = _parse_reset(headers.get(_PREFIX + "requests-reset"), now)
            if remaining is not None and reset is not None and reset <= now:
                remaining = None  # an answer from a window that is already over
            if remaining is not None:
                newer = (
                    s.requests_reset is not None
                    and reset is not None
                    and reset > s.requests_reset + 1.0
                )
                # Within one window (or a window rolled over locally) keep the lower
                # count: requests already let through may not be counted by the server.
                if not newer and s.requests_remaining is not None:
                    remaining = min(remaining, s.requests_remaining)
                s = replace(s, requests_remaining=remaining, requests_reset=reset)
                if reset is not None:
                    if s.server_reset is not None and reset > s.server_reset + _MARGIN:
                        window = reset - s.server_reset  # two resets seen: the true period
                    else:
                        window = max(s.window_s or 0.0, reset - now)
                    s = replace(s, window_s=window, server_reset=reset)
            if limit is not None:
                s = replace(s, requests_limit=limit)
            tokens = _parse_int(headers.get(_PREFIX + "tokens-remaining"))
            if tokens is not None:
                s = replace(
                    s,
                    tokens_remaining=tokens,
                    tokens_reset=_parse_reset(headers.get(_PREFIX + "tokens-reset"), now),
                )
            self._store.save(self.key, s)

    def block(self, seconds: float) -> float:
        """Hold every caller of this pacer for ``seconds`` (after a 429); the end time."""
        with self._lock:
            s = self._store.load(self.key)
            until = self._clock() + seconds
            if until > s.blocked_until:
                self._store.save(self.key, replace(s, blocked_until=until))
                return until
            return s.blocked_until
