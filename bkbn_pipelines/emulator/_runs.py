"""Runs, their event logs, and the result files they leave behind.

A :class:`Run` lives on the server's event loop: the render thread hands each event
over with ``loop.call_soon_threadsafe``, so the log is only ever changed on the loop
and readers need no lock.  Readers wait on :meth:`Run.wait_change`, which wakes every
stream following the run at once.  Logs are bounded (``max_events_per_run``: later
progress events are dropped, the final event always kept) and so is the number of
runs (``max_runs``: the oldest finished runs and their files go first).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._http import new_id

__all__ = ["FileStore", "Run", "RunStore", "Stats", "StoredEvent"]

logger = logging.getLogger("bkbn_pipelines.emulator")

TERMINAL = frozenset({"result", "error"})


@dataclass(frozen=True)
class StoredEvent:
    """One event of a run's log; ``seq`` counts from 1."""

    seq: int
    type: str
    data: Any

    def encode(self, run_id: str) -> bytes:
        payload = json.dumps(self.data, separators=(",", ":"), ensure_ascii=False)
        return f"id: {run_id}:{self.seq}\nevent: {self.type}\ndata: {payload}\n\n".encode()


@dataclass(eq=False)
class Run:
    id: str
    org: str
    credential: str
    graph: str
    loop: asyncio.AbstractEventLoop
    max_events: int = 10_000
    fingerprint: str | None = None
    created_at: float = field(default_factory=time.time)
    status: str = "queued"
    events: list[StoredEvent] = field(default_factory=list)
    file_ids: list[str] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def append(self, type_: str, data: Any) -> None:
        """Add an event (on the loop thread only) and wake every reader."""
        if self.finished:
            return
        if type_ in TERMINAL:
            self.status = "succeeded" if type_ == "result" else "failed"
        elif self.status == "queued":
            self.status = "running"
        if len(self.events) >= self.max_events and type_ not in TERMINAL:
            return
        self.events.append(StoredEvent(len(self.events) + 1, type_, data))
        if type_ in TERMINAL:
            self._done.set()
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def post(self, type_: str, data: Any) -> None:
        """Thread-safe :meth:`append`, for the render thread."""
        self.loop.call_soon_threadsafe(self.append, type_, data)

    async def wait_change(self, timeout: float) -> None:
        """Return when an event arrives or after ``timeout`` seconds."""
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)

    async def wait_done(self) -> StoredEvent:
        await self._done.wait()
        return self.events[-1]

    @property
    def terminal(self) -> StoredEvent | None:
        return self.events[-1] if self.finished else None

    def snapshot(self) -> dict[str, Any]:
        """The run-status JSON of ``GET /v1/workflows/runs/{run_id}``."""
        last = self.terminal
        return {
            "id": self.id,
            "graph": self.graph,
            "status": self.status,
            "created_at": self.created_at,
            "events": len(self.events),
            "result": last.data if last is not None and last.type == "result" else None,
            "error": last.data if last is not None and last.type == "error" else None,
        }


class FileStore:
    """Result files on disk, each owned by one organization."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def put(self, org: str, data: bytes, media_type: str) -> str:
        file_id = new_id("file_")
        (self.root / file_id).write_bytes(data)
        with self._lock:
            self._files[file_id] = (org, media_type)
        return file_id

    def get(self, file_id: str, org: str) -> tuple[Path, str] | None:
        """Path and media type, or ``None`` if unknown or another organization's."""
        with self._lock:
            entry = self._files.get(file_id)
        if entry is None or entry[0] != org:
            return None
        return self.root / file_id, entry[1]

    def delete(self, file_ids: list[str]) -> None:
        with self._lock:
            for file_id in file_ids:
                self._files.pop(file_id, None)
        for file_id in file_ids:
            (self.root / file_id).unlink(missing_ok=True)


@dataclass
class Stats:
    """Counters per organization, for ``GET /_test/stats``.

    ``requests`` counts admitted ``/v1`` requests, ``renders`` admitted runs, ``tokens``
    the tokens charged, ``rate_limited`` the 429s the limits (not test faults) gave.
    """

    renders: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    rate_limited: dict[str, int] = field(default_factory=dict)

    def add(self, counter: dict[str, int], org: str, amount: int = 1) -> None:
        counter[org] = counter.get(org, 0) + amount

    def for_org(self, org: str) -> dict[str, int]:
        return {
            "renders": self.renders.get(org, 0),
            "requests": self.requests.get(org, 0),
            "tokens": self.tokens.get(org, 0),
            "rate_limited": self.rate_limited.get(org, 0),
        }

    def orgs(self) -> set[str]:
        return set(self.renders) | set(self.requests) | set(self.tokens) | set(self.rate_limited)

    def clear(self) -> None:
        self.renders.clear()
        self.requests.clear()
        self.tokens.clear()
        self.rate_limited.clear()


class RunStore:
    """Runs by id, idempotency keys by ``(org, key)``; used on the event loop only."""

    def __init__(self, files: FileStore, max_runs: int, max_events: int) -> None:
        self.files = files
        self.max_runs = max_runs
        self.max_events = max_events
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._keys: dict[tuple[str, str], str] = {}
        self._key_locks: dict[tuple[str, str], asyncio.Lock] = {}

    def new_run(self, org: str, credential: str, graph: str, fingerprint: str | None) -> Run:
        run = Run(
            id=new_id("run_"),
            org=org,
            credential=credential,
            graph=graph,
            loop=asyncio.get_running_loop(),
            max_events=self.max_events,
            fingerprint=fingerprint,
        )
        self._runs[run.id] = run
        self._evict()
        return run

    def get(self, run_id: str, org: str) -> Run | None:
        """The run, or ``None`` if unknown or another organization's."""
        run = self._runs.get(run_id)
        return run if run is not None and run.org == org else None

    def key_lock(self, org: str, key: str) -> asyncio.Lock:
        return self._key_locks.setdefault((org, key), asyncio.Lock())

    def by_key(self, org: str, key: str) -> Run | None:
        run_id = self._keys.get((org, key))
        return self._runs.get(run_id) if run_id else None

    def bind_key(self, org: str, key: str, run: Run) -> None:
        self._keys[(org, key)] = run.id

    def all(self) -> list[Run]:
        return list(self._runs.values())

    def _evict(self) -> None:
        excess = len(self._runs) - self.max_runs
        if excess <= 0:
            return
        for run in [r for r in self._runs.values() if r.finished][:excess]:
            del self._runs[run.id]
            self.files.delete(run.file_ids)
            for key in [k for k, v in self._keys.items() if v == run.id]:
                del self._keys[key]
                self._key_locks.pop(key, None)
