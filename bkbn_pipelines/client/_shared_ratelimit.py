"""Rate-limit pacing shared by every process that uses one credential, through Redis.

A :class:`~bkbn_pipelines.client.Pacer` keeps what the ``bkbn-ratelimit-*`` headers
said in memory, so two Celery workers (or two Kubernetes step pods) sharing one API key
each believe they have the whole budget and together run into 429s. A
:class:`SharedPacer` is the same pacer with its state in Redis and its decisions taken
under a lock held in Redis: every process counts its requests against one shared
``remaining`` and learns from every answer any of them received.

    from bkbn_pipelines.client import BackboneClient
    from bkbn_pipelines.client._shared_ratelimit import SharedPacer, pacer_key

    pacer = SharedPacer(pacer_key(base_url, api_key), redis_url="redis://redis:6379/2")
    client = BackboneClient(base_url=base_url, api_key=api_key, pacer=pacer)

The Redis key is a digest of base URL and credential; the credential itself is never
written to Redis. Clocks of the processes are assumed to agree to well under a second
(NTP); the state stores wall-clock times.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from types import TracebackType

from ._ratelimit import Pacer, PacerState

__all__ = ["RedisPacerStore", "SharedPacer", "pacer_key"]

logger = logging.getLogger("bkbn_pipelines.client")

_DEFAULT_PREFIX = "bkbn:pacer:"


def pacer_key(base_url: str, credential: str) -> str:
    """A key for one credential at one API, without the credential in it."""
    digest = hashlib.sha256(f"{base_url.rstrip('/')}|{credential}".encode()).hexdigest()
    return digest[:24]


def _end_of_second_resets(headers: Mapping[str, str]) -> Mapping[str, str]:
    """Resets written to the second (``...T20:15:03Z``) as the end of that second.

    A server that drops the fraction announces its window's end up to a second early; a
    process that believed it would send a full window's worth of requests into the old
    window. One process alone recovers from that with one 429; many together would
    spend the next window's budget on retries.
    """
    changed = {}
    for name in ("bkbn-ratelimit-requests-reset", "bkbn-ratelimit-tokens-reset"):
        value = headers.get(name)
        if not value or "." in value:
            continue
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            continue  # seconds-until-reset or unknown: left to the pacer
        changed[name] = (moment + timedelta(seconds=1)).isoformat()
    return {**headers, **changed} if changed else headers


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
            return PacerState(**json.loads(raw))
        except (TypeError, ValueError):
            logger.warning("shared pacer state for %s unreadable; starting afresh", key)
            return PacerState()

    def save(self, key: str, state: PacerState) -> None:
        self._redis.set(self._prefix + key, json.dumps(asdict(state)), ex=self._ttl_s)  # type: ignore[attr-defined]


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
    """

    def __init__(
        self,
        key: str,
        *,
        redis_url: str,
        prefix: str = _DEFAULT_PREFIX,
        low_water: float = 0.1,
        lock_timeout_s: float = 5.0,
        lock_wait_s: float = 10.0,
    ) -> None:
        import redis

        self._redis = redis.Redis.from_url(redis_url)
        super().__init__(key, store=RedisPacerStore(self._redis, prefix), low_water=low_water)
        self._lock = _SharedLock(  # type: ignore[assignment]
            self._redis, f"{prefix}{key}:lock", timeout=lock_timeout_s, wait=lock_wait_s
        )

    def __repr__(self) -> str:
        return f"SharedPacer(key={self.key!r})"

    def update(self, headers: Mapping[str, str]) -> None:
        """Learn from an answer's headers, reading whole-second resets conservatively."""
        super().update(_end_of_second_resets(headers))

    def close(self) -> None:
        self._redis.close()
