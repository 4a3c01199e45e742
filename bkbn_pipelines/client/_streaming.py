"""Run streams: typed events from an SSE response, resumed when the connection drops.

A :class:`RunStream` opens its request when iteration (or ``with``) begins.  The
opening request is retried by the transport like any other, which is safe because it
carries an idempotency key: the server answers a repeated POST with the same run.
Once events have arrived the POST is never sent again; a dropped connection (a
transport error, an incomplete chunked body, a read timeout between events) is resumed
through ``GET /v1/workflows/runs/{run_id}/events`` with ``last-event-id``, a bounded
number of times, and events already seen are skipped.

A stream that closes cleanly without ``result`` or ``error`` raises
:class:`StreamEndedError`: a silent end is never a success.
"""

from __future__ import annotations

import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx

from .._errors import APIStreamError, APITimeoutError, RunFailedError, StreamEndedError
from .._events import ErrorEvent, Event, Ping, Result, RunStart, event_from_sse, is_terminal
from ._errors import connection_error
from ._sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEDecoder

__all__ = ["AsyncRunStream", "RunStream"]

logger = logging.getLogger("bkbn_pipelines.client")

_DROPS = (httpx.TransportError, httpx.StreamError)


def _split_id(event_id: str) -> tuple[str | None, int | None]:
    run_id, sep, seq = event_id.rpartition(":")
    if not sep or not seq.isdigit():
        return None, None
    return run_id, int(seq)


class _StreamState:
    """What both twins track: run id, last event id, sequence, terminal event."""

    def __init__(self, *, include_pings: bool, max_resumes: int, what: str) -> None:
        self.include_pings = include_pings
        self.max_resumes = max_resumes
        self.what = what
        self.run_id: str | None = None
        self.last_event_id: str | None = None
        self.request_id: str | None = None
        self.events_seen = 0
        self.resumes = 0
        self.reopens = 0
        self.reconnect_delay: float | None = None
        self.terminal: Event | None = None
        self._last_seq = 0

    def accept(self, sse: ServerSentEvent) -> Event | None:
        """The typed event to hand out, or ``None`` (a ping filtered out, a duplicate)."""
        if sse.retry is not None:
            self.reconnect_delay = sse.retry / 1000
        own_id = getattr(sse, "own_id", True)
        run_id, seq = _split_id(sse.id) if sse.id and own_id else (None, None)
        if seq is not None:
            if seq <= self._last_seq and run_id == self.run_id:
                return None  # already delivered before a resume
            self._last_seq = seq
        if sse.id:
            self.last_event_id = sse.id
        event = event_from_sse(sse.event, sse.data, sse.id or None)
        if isinstance(event, RunStart):
            self.run_id = event.run_id
        elif run_id and self.run_id is None:
            self.run_id = run_id
        if isinstance(event, Ping):
            return event if self.include_pings else None
        self.events_seen += 1
        if is_terminal(event):
            self.terminal = event
        return event

    def ended(self) -> StreamEndedError:
        return StreamEndedError(
            f"{self.what}: the stream ended before a result or error event "
            f"({self.events_seen} events received)",
            request_id=self.request_id,
        )

    def may_reopen(self, max_retries: int) -> bool:
        """Dropped before any event and before a run id: send the POST again.

        Safe because the POST repeats its idempotency key.
        """
        if self.run_id is not None or self.events_seen or self.reopens >= max_retries:
            return False
        self.reopens += 1
        logger.debug("%s: dropped before any event, sending again (%d)", self.what, self.reopens)
        return True

    def can_resume(self) -> bool:
        return self.run_id is not None and self.resumes < self.max_resumes

    def result(self) -> Result:
        event = self.terminal
        if isinstance(event, ErrorEvent):
            raise RunFailedError(
                event.message or "the run failed",
                error_type=event.error_type,
                request_id=self.request_id,
                body={"type": event.error_type, "message": event.message, "run_id": self.run_id},
            )
        if not isinstance(event, Result):
            raise self.ended()
        return event

    def check_type(self, response: httpx.Response) -> None:
        ctype = response.headers.get("content-type", "")
        if not ctype.strip().lower().startswith("text/event-stream"):  # media types ignore case
            raise APIStreamError(
                f"{self.what}: expected an event stream, got {ctype or 'no content-type'!r}",
                status_code=response.status_code,
                request_id=response.headers.get("request-id"),
            )


class _Session:
    """The connection side of one stream: open, resume, close.

    The event generators hold a session, never the stream object, so that a stream
    dropped by its caller (``for event in client.workflows.stream(...): break``) is
    freed at once and its generator closes the connection.
    """

    def __init__(
        self,
        transport: Any,
        open_first: Callable[[], Any],
        state: _StreamState,
        max_event_size: int,
    ) -> None:
        self.transport = transport
        self.open_first = open_first
        self.state = state
        self.max_event_size = max_event_size
        self.response: httpx.Response | None = None
        self.closed = False

    def resume_request(self) -> tuple[float, dict[str, Any]]:
        state = self.state
        state.resumes += 1
        delay = state.reconnect_delay
        if delay is None:
            delay = self.transport.retry.backoff(state.resumes - 1)
        logger.debug(
            "%s: connection dropped after %d events, resuming run %s from %s in %.2fs "
            "(resume %d of %d)",
            state.what,
            state.events_seen,
            state.run_id,
            state.last_event_id,
            delay,
            state.resumes,
            state.max_resumes,
        )
        headers = {"last-event-id": state.last_event_id} if state.last_event_id else {}
        return delay, {
            "method": "GET",
            "path": f"/v1/workflows/runs/{state.run_id}/events",
            "stream": True,
            "accept": "text/event-stream",
            "headers": headers,
            "what": f"resume {state.run_id}",
        }

    def opened(self, response: httpx.Response) -> httpx.Response:
        self.state.request_id = response.headers.get("request-id") or self.state.request_id
        try:
            self.state.check_type(response)
        except APIStreamError:
            response.close()
            raise
        self.response = response
        return response

    def check_deadline(self, deadline_at: float | None) -> None:
        if deadline_at is not None and time.monotonic() > deadline_at:
            raise APITimeoutError(
                f"{self.state.what}: the overall deadline passed",
                request_id=self.state.request_id,
            )


def _sync_events(session: _Session) -> Iterator[Event]:
    state = session.state
    transport = session.transport
    deadline_at = transport.deadline_at()
    try:
        response = session.response or _sync_open(session)
        while True:
            decoder = SSEDecoder(max_event_size=session.max_event_size)
            try:
                for chunk in response.iter_bytes():
                    session.check_deadline(deadline_at)
                    for sse in decoder.feed(chunk):
                        event = state.accept(sse)
                        if event is not None:
                            yield event
                            if state.terminal is not None:
                                return
                for sse in decoder.close():
                    event = state.accept(sse)
                    if event is not None:
                        yield event
                        if state.terminal is not None:
                            return
            except APIStreamError as exc:
                exc.request_id = exc.request_id or state.request_id
                raise
            except _DROPS as exc:
                response.close()
                session.response = None
                if session.closed:
                    return
                if state.can_resume():
                    delay, request = session.resume_request()
                    transport.sleep(delay)
                    response = session.opened(transport.send(**request))
                elif state.may_reopen(transport.retry.max_retries):
                    response = _sync_open(session)
                else:
                    raise connection_error(exc, state.what) from exc
                continue
            raise state.ended()
    finally:
        response_, session.response = session.response, None
        if response_ is not None:
            response_.close()


def _sync_open(session: _Session) -> httpx.Response:
    if session.closed:
        raise APIStreamError(f"{session.state.what}: the stream is closed")
    return session.opened(session.open_first())


async def _async_events(session: _Session) -> AsyncIterator[Event]:
    state = session.state
    transport = session.transport
    deadline_at = transport.deadline_at()
    try:
        response = session.response or await _async_open(session)
        while True:
            decoder = SSEDecoder(max_event_size=session.max_event_size)
            try:
                async for chunk in response.aiter_bytes():
                    session.check_deadline(deadline_at)
                    for sse in decoder.feed(chunk):
                        event = state.accept(sse)
                        if event is not None:
                            yield event
                            if state.terminal is not None:
                                return
                for sse in decoder.close():
                    event = state.accept(sse)
                    if event is not None:
                        yield event
                        if state.terminal is not None:
                            return
            except APIStreamError as exc:
                exc.request_id = exc.request_id or state.request_id
                raise
            except _DROPS as exc:
                await response.aclose()
                session.response = None
                if session.closed:
                    return
                if state.can_resume():
                    delay, request = session.resume_request()
                    await transport.sleep(delay)
                    response = session.opened(await transport.send(**request))
                elif state.may_reopen(transport.retry.max_retries):
                    response = await _async_open(session)
                else:
                    raise connection_error(exc, state.what) from exc
                continue
            raise state.ended()
    finally:
        response_, session.response = session.response, None
        if response_ is not None:
            await response_.aclose()


async def _async_open(session: _Session) -> httpx.Response:
    if session.closed:
        raise APIStreamError(f"{session.state.what}: the stream is closed")
    return session.opened(await session.open_first())


class _StreamBase:
    _session: _Session

    @property
    def run_id(self) -> str | None:
        """The run's id, known from ``run.start`` or from the event ids."""
        return self._session.state.run_id

    @property
    def request_id(self) -> str | None:
        """The ``request-id`` of the response being read (or last read)."""
        return self._session.state.request_id

    @property
    def last_event_id(self) -> str | None:
        return self._session.state.last_event_id

    @property
    def resumes(self) -> int:
        """How many times a dropped connection was resumed."""
        return self._session.state.resumes


class RunStream(_StreamBase):
    """An iterator of typed events; a context manager that releases its connection.

    ``for event in stream`` yields :mod:`bkbn_pipelines._events` objects; the last is
    a ``Result`` or an ``ErrorEvent``.  :meth:`until_result` reads to the end and
    returns the ``Result`` or raises :class:`RunFailedError`.  The request is sent when
    iteration or the ``with`` block begins; HTTP errors are raised there.
    """

    def __init__(
        self,
        transport: Any,
        open_first: Callable[[], httpx.Response],
        *,
        include_pings: bool = False,
        max_resumes: int = 5,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        what: str = "stream",
    ) -> None:
        state = _StreamState(include_pings=include_pings, max_resumes=max_resumes, what=what)
        self._session = _Session(transport, open_first, state, max_event_size)
        self._iterator: weakref.ref[Iterator[Event]] | None = None
        self._next: Iterator[Event] | None = None
        self._started = False
        self._entered = False

    def __enter__(self) -> RunStream:
        self._entered = True
        if self._session.response is None:
            _sync_open(self._session)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Event]:
        # The stream keeps only a weak reference to its generator: a caller that
        # breaks out of ``for event in stream`` drops the generator, whose ``finally``
        # releases the connection even while ``stream`` itself is still referenced.
        live = self._iterator() if self._iterator is not None else None
        if live is not None:
            return live
        if self._started:
            raise APIStreamError(f"{self._session.state.what}: a stream is read only once")
        self._started = True
        generator = _sync_events(self._session)
        self._iterator = weakref.ref(generator)
        if self._entered:  # inside ``with``, the block owns the connection's lifetime
            self._next = generator
        return generator

    def __next__(self) -> Event:
        if self._next is None:
            self._next = iter(self)
        return next(self._next)

    def until_result(self) -> Result:
        """Read to the end; the ``Result``, or :class:`RunFailedError` for an error."""
        try:
            for _ in self:
                pass
            return self._session.state.result()
        finally:
            self.close()

    def final_result(self) -> Result:
        """Same as :meth:`until_result`; also usable after the events were read."""
        if self._session.state.terminal is not None:
            return self._session.state.result()
        return self.until_result()

    def close(self) -> None:
        """Release the connection.  Safe to call more than once."""
        session = self._session
        session.closed = True
        ref, self._iterator, self._next = self._iterator, None, None
        iterator = ref() if ref is not None else None
        if iterator is not None:
            with contextlib.suppress(ValueError):  # "generator already executing"
                iterator.close()  # type: ignore[attr-defined]
        response, session.response = session.response, None
        if response is not None:
            response.close()

    def __del__(self) -> None:
        # Last resort for a stream opened with ``with``-less ``__enter__`` and dropped;
        # a live generator closes its own response when it is collected.
        session = getattr(self, "_session", None)
        live = self._iterator() if getattr(self, "_iterator", None) is not None else None
        if session is not None and session.response is not None and live is None:
            with contextlib.suppress(Exception):
                session.response.close()


class AsyncRunStream(_StreamBase):
    """The asyncio twin of :class:`RunStream`: ``async with`` and ``async for``."""

    def __init__(
        self,
        transport: Any,
        open_first: Callable[[], Awaitable[httpx.Response]],
        *,
        include_pings: bool = False,
        max_resumes: int = 5,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        what: str = "stream",
    ) -> None:
        state = _StreamState(include_pings=include_pings, max_resumes=max_resumes, what=what)
        self._session = _Session(transport, open_first, state, max_event_size)
        self._iterator: weakref.ref[AsyncIterator[Event]] | None = None
        self._next: AsyncIterator[Event] | None = None
        self._started = False
        self._entered = False

    async def __aenter__(self) -> AsyncRunStream:
        self._entered = True
        if self._session.response is None:
            await _async_open(self._session)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[Event]:
        live = self._iterator() if self._iterator is not None else None
        if live is not None:
            return live
        if self._started:
            raise APIStreamError(f"{self._session.state.what}: a stream is read only once")
        self._started = True
        generator = _async_events(self._session)
        self._iterator = weakref.ref(generator)
        if self._entered:  # inside ``async with``, the block owns the connection
            self._next = generator
        return generator

    async def __anext__(self) -> Event:
        if self._next is None:
            self._next = self.__aiter__()
        return await self._next.__anext__()

    async def until_result(self) -> Result:
        try:
            async for _ in self:
                pass
            return self._session.state.result()
        finally:
            await self.aclose()

    async def final_result(self) -> Result:
        if self._session.state.terminal is not None:
            return self._session.state.result()
        return await self.until_result()

    async def aclose(self) -> None:
        session = self._session
        session.closed = True
        ref, self._iterator, self._next = self._iterator, None, None
        iterator = ref() if ref is not None else None
        if iterator is not None:
            with contextlib.suppress(RuntimeError):  # "already running"
                await iterator.aclose()  # type: ignore[attr-defined]
        response, session.response = session.response, None
        if response is not None:
            await response.aclose()
