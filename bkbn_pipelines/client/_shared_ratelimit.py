"""Rate-limit pacing shared by every process that uses one credential, through Redis.

A :class:`~bkbn_pipelines.client.Pacer` keeps what the ``bkbn-ratelimit-*`` headers
said in memory, so two Celery workers (or two Kubernetes step pods) sharing one API key
each believe they have the whole budget and together run into 429s. A
:class:`SharedPacer` is a pacer for all of them:

* its state (what the headers said, blocks after a 429 ``retry-after``) lives in Redis,
  read and written under a lock held in Redis, so every process learns from every
  answer and counts against one ``remaining``;
* given the credential's limit (``requests`` per ``window_s``), it also hands out send
  times from one schedule kept in Redis (GCRA, on Redis's own clock), spaced so that
  no window of ``window_s`` (plus ``slack_s`` for network delay) ever holds more than
  ``requests`` sends, whatever the number of processes. This is the mode that
  guarantees no 429 from the limit; without a limit the headers alone pace, as
  well as they can with many processes.

    from bkbn_pipelines.client import BackboneClient
    from bkbn_pipelines.client._shared_ratelimit import SharedPacer, pacer_key

    pacer = SharedPacer(
        pacer_key(base_url, api_key), redis_url="redis://redis:6379/2",
        requests=600, window_s=60,
    )
    client = BackboneClient(base_url=base_url, api_key=api_key, pacer=pacer)

The Redis keys carry a digest of base URL and credential; the credential itself is never
written to Redis.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import asdict, fields, replace
from types import TracebackType

from .._errors import ConfigError
from ._ratelimit import Pacer, PacerState

__all__ = ["RedisPacerStore", "SharedPacer", "pacer_key"]

logger = logging.getLogger("bkbn_pipelines.client")

_DEFAULT_PREFIX = "bkbn:pacer:"


def pacer_key(base_url: str, credential: str) -> str:
    """A key for one credential at one API, without the credential in it."""
    digest = hashlib.sha256(f"{base_url.rstrip('/')}|{credential}".encode()).hexdigest()
    return digest[:24]


class RedisPacerStore:
    """A :class:`~bkbn_pipelines.client.PacerStore` in Redis: one JSON value per key.

    Values expire an hour after their last write, so a credential no longer used
    leaves nothing behind.
    """

    def __init__(self, client: object, prefix: str = _DEFAULT_PREFIX, ttl_s: int = 3600) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl_s = ttl_s

    def load(self, key: str) -> PacerState:
        raw = self._redis.get(self._prefix + key)  # type: ignore[attr-defined]
        if not raw:
            return PacerState()
        try:
            data = json.loads(raw)
            known = {f.name for f in fields(PacerState)}
            return PacerState(**{k: v for k, v in data.items() if k in known})
        except (TypeError, ValueError, AttributeError):
            logger.warning("shared pacer state for %s unreadable; starting afresh", key)
            return PacerState()

    def save(self, key: str, state: PacerState) -> None:
        value = json.dumps(asdict(state))
        self._redis.set(self._prefix + key, value, ex=self._ttl_s)  # type: ignore[attr-defined]


# One schedule per key: the theoretical arrival time (TAT) of the next send, on Redis's
# clock. A send goes at max(now, not_before, TAT - tau); the next TAT is one interval on.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local delay = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local send = math.max(now + delay, tat - tau)
local next_tat = math.max(tat, send) + interval
redis.call('SET', KEYS[1], string.format('%.6f', next_tat), 'PX', ARGV[4])
return string.format('%.6f', send - now)
"""


class _SharedLock:
    """The pacer's lock: a thread lock in this process, then a lock in Redis.

    The Redis lock expires after ``timeout`` seconds, so a process killed while holding
    it blocks the others for at most that long.
    """

    def __init__(self, client: object, name: str, timeout: float, wait: float) -> None:
        self._local = threading.Lock()
        self._redis_lock = client.lock(  # type: ignore[attr-defined]
            name, timeout=timeout, blocking_timeout=wait, thread_local=False
        )

    def __enter__(self) -> _SharedLock:
        self._local.acquire()
        try:
            if not self._redis_lock.acquire():
                raise TimeoutError("could not take the shared rate-limit lock in Redis")
        except BaseException:
            self._local.release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._redis_lock.release()
        except Exception as err:  # the lock expired while held: the state is still valid
            logger.warning("shared rate-limit lock expired while held: %s", type(err).__name__)
        finally:
            self._local.release()


class SharedPacer(Pacer):
    """A :class:`~bkbn_pipelines.client.Pacer` whose state and lock live in Redis.

    ``key`` names the credential (see :func:`pacer_key`); every process built with the
    same ``key`` and Redis shares one budget. ``redis_url`` is any URL that
    ``redis.Redis.from_url`` accepts; ``prefix`` separates deployments sharing a server.

    ``requests`` and ``window_s`` (the credential's limit, e.g. 600 per 60 s) switch on
    the shared schedule: sends are then spaced ``(window_s + slack_s) / (requests - 1)``
    apart across all processes, and a ``retry-after`` block moves the schedule on.
    """

    def __init__(
        self,
        key: str,
        *,
        redis_url: str,
        prefix: str = _DEFAULT_PREFIX,
        requests: int | None = None,
        window_s: float | None = None,
        slack_s: float = 0.25,
        low_water: float = 0.1,
        lock_timeout_s: float = 5.0,
        lock_wait_s: float = 10.0,
    ) -> None:
        import redis

        if (requests is None) != (window_s is None):
            raise ConfigError("SharedPacer: give both requests and window_s, or neither")
        if requests is not None and (requests < 2 or window_s is None or window_s <= 0):
            raise ConfigError("SharedPacer: requests must be at least 2 and window_s positive")
        self._redis = redis.Redis.from_url(redis_url)
        super().__init__(key, store=RedisPacerStore(self._redis, prefix), low_water=low_water)
        self._lock = _SharedLock(  # type: ignore[assignment]
            self._redis, f"{prefix}{key}:lock", timeout=lock_timeout_s, wait=lock_wait_s
        )
        self._interval = (
            (window_s + slack_s) / (requests - 1) if requests is not None and window_s else None
        )
        self._schedule_key = f"{prefix}{key}:schedule"
        self._gcra = self._redis.register_script(_GCRA) if self._interval else None
        self._ttl_ms = int(max(60.0, (window_s or 0) * 4) * 1000)

    def __repr__(self) -> str:
        return f"SharedPacer(key={self.key!r})"

    def reserve(self, *, waited_until: float = 0.0) -> float:
        """Count one request and return the seconds to wait before sending it."""
        if self._gcra is None:
            return super().reserve(waited_until=waited_until)
        with self._lock:
            now = self._clock()
            state = self._store.load(self.key)
            if 0 < state.blocked_until <= waited_until:
                state = replace(state, blocked_until=0.0)
                self._store.save(self.key, state)
            blocked = max(0.0, state.blocked_until - now)
        wait = float(
            self._gcra(
                keys=[self._schedule_key],
                args=[f"{self._interval:.6f}", "0", f"{blocked:.6f}", self._ttl_ms],
            )
        )
        if wait > 0:
            logger.debug("rate limit pacing (shared schedule): waiting %.2fs", wait)
        return max(0.0, wait)

    def close(self) -> None:
        self._redis.close()
