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
        if not ctype.startswith("text/event-stream"):
            raise APIStreamError(
                f"{self.what}: expected an event stream, got {ctype or 'no content-type'!r}",
                status_code=response.status_code,
                request_id=response.headers.get("request-id"),
            )


class RunStream:
    """An iterator of typed events; a context manager that releases its connection.

    ``for event in stream`` yields :mod:`bkbn_pipelines._events` objects; the last is
    a ``Result`` or an ``ErrorEvent``.  :meth:`until_result` reads to the end and
    returns the ``Result`` or raises :class:`RunFailedError`.
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
        self._transport = transport
        self._open_first = open_first
        self._state = _StreamState(include_pings=include_pings, max_resumes=max_resumes, what=what)
        self._max_event_size = max_event_size
        self._response: httpx.Response | None = None
        self._iterator: Iterator[Event] | None = None
        self._closed = False

    # --- public surface --------------------------------------------------------

    @property
    def run_id(self) -> str | None:
        return self._state.run_id

    @property
    def request_id(self) -> str | None:
        return self._state.request_id

    @property
    def last_event_id(self) -> str | None:
        return self._state.last_event_id

    @property
    def resumes(self) -> int:
        return self._state.resumes

    def __enter__(self) -> RunStream:
        self._ensure_open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Event]:
        if self._iterator is None:
            self._iterator = self._events()
        return self._iterator

    def __next__(self) -> Event:
        return next(iter(self))

    def until_result(self) -> Result:
        """Read to the end; the ``Result``, or :class:`RunFailedError` for an error."""
        try:
            for _ in self:
                pass
            return self._state.result()
        finally:
            self.close()

    def final_result(self) -> Result:
        """Same as :meth:`until_result`; also usable after the events were read."""
        if self._state.terminal is not None:
            return self._state.result()
        return self.until_result()

    def close(self) -> None:
        """Release the connection.  Safe to call more than once."""
        self._closed = True
        response, self._response = self._response, None
        if response is not None:
            try:
                response.close()
            except Exception:  # closing must never raise over the caller's error
                logger.debug("%s: error while closing the response", self._state.what)
        iterator, self._iterator = self._iterator, None
        if iterator is not None and hasattr(iterator, "close"):
            iterator.close()

    def __del__(self) -> None:
        if self._response is not None:
            with contextlib.suppress(Exception):  # at shutdown nothing sensible is left
                self._response.close()

    # --- the loop --------------------------------------------------------------

    def _ensure_open(self) -> httpx.Response:
        if self._closed:
            raise APIStreamError(f"{self._state.what}: the stream is closed")
        if self._response is None:
            self._response = self._open_first()
            self._state.request_id = self._response.headers.get("request-id")
            self._state.check_type(self._response)
        return self._response

    def _resume(self) -> httpx.Response:
        state = self._state
        state.resumes += 1
        delay = state.reconnect_delay
        if delay is None:
            delay = self._transport.retry.backoff(state.resumes - 1)
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
        self._transport.sleep(delay)
        headers = {"last-event-id": state.last_event_id} if state.last_event_id else {}
        response = self._transport.send(
            "GET",
            f"/v1/workflows/runs/{state.run_id}/events",
            stream=True,
            accept="text/event-stream",
            headers=headers,
            what=f"resume {state.run_id}",
        )
        state.request_id = response.headers.get("request-id") or state.request_id
        state.check_type(response)
        return response

    def _events(self) -> Iterator[Event]:
        state = self._state
        deadline_at = self._transport.deadline_at()
        try:
            response = self._ensure_open()
            while True:
                decoder = SSEDecoder(max_event_size=self._max_event_size)
                try:
                    for chunk in response.iter_bytes():
                        if deadline_at is not None and time.monotonic() > deadline_at:
                            raise APITimeoutError(
                                f"{state.what}: the overall deadline passed",
                                request_id=state.request_id,
                            )
                        for sse in decoder.feed(chunk):
                            event = state.accept(sse)
                            if event is None:
                                continue
                            yield event
                            if state.terminal is not None:
                                return
                    for sse in decoder.close():
                        event = state.accept(sse)
                        if event is None:
                            continue
                        yield event
                        if state.terminal is not None:
                            return
                except _DROPS as exc:
                    response.close()
                    self._response = None
                    if state.can_resume():
                        response = self._response = self._resume()
                    elif state.may_reopen(self._transport.retry.max_retries):
                        response = self._ensure_open()
                    else:
                        raise connection_error(exc, state.what) from exc
                    continue
                raise state.ended()
        finally:
            response_ = self._response
            self._response = None
            if response_ is not None:
                response_.close()


class AsyncRunStream:
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
        self._transport = transport
        self._open_first = open_first
        self._state = _StreamState(include_pings=include_pings, max_resumes=max_resumes, what=what)
        self._max_event_size = max_event_size
        self._response: httpx.Response | None = None
        self._iterator: AsyncIterator[Event] | None = None
        self._closed = False

    @property
    def run_id(self) -> str | None:
        return self._state.run_id

    @property
    def request_id(self) -> str | None:
        return self._state.request_id

    @property
    def last_event_id(self) -> str | None:
        return self._state.last_event_id

    @property
    def resumes(self) -> int:
        return self._state.resumes

    async def __aenter__(self) -> AsyncRunStream:
        await self._ensure_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[Event]:
        if self._iterator is None:
            self._iterator = self._events()
        return self._iterator

    async def __anext__(self) -> Event:
        return await self.__aiter__().__anext__()

    async def until_result(self) -> Result:
        try:
            async for _ in self:
                pass
            return self._state.result()
        finally:
            await self.aclose()

    async def final_result(self) -> Result:
        if self._state.terminal is not None:
            return self._state.result()
        return await self.until_result()

    async def aclose(self) -> None:
        self._closed = True
        response, self._response = self._response, None
        if response is not None:
            try:
                await response.aclose()
            except Exception:  # closing must never raise over the caller's error
                logger.debug("%s: error while closing the response", self._state.what)
        iterator, self._iterator = self._iterator, None
        if iterator is not None and hasattr(iterator, "aclose"):
            await iterator.aclose()

    async def _ensure_open(self) -> httpx.Response:
        if self._closed:
            raise APIStreamError(f"{self._state.what}: the stream is closed")
        if self._response is None:
            self._response = await self._open_first()
            self._state.request_id = self._response.headers.get("request-id")
            self._state.check_type(self._response)
        return self._response

    async def _resume(self) -> httpx.Response:
        state = self._state
        state.resumes += 1
        delay = state.reconnect_delay
        if delay is None:
            delay = self._transport.retry.backoff(state.resumes - 1)
        logger.debug(
            "%s: connection dropped after %d events, resuming run %s from %s in %.2fs",
            state.what,
            state.events_seen,
            state.run_id,
            state.last_event_id,
            delay,
        )
        await self._transport.sleep(delay)
        headers = {"last-event-id": state.last_event_id} if state.last_event_id else {}
        response = await self._transport.send(
            "GET",
            f"/v1/workflows/runs/{state.run_id}/events",
            stream=True,
            accept="text/event-stream",
            headers=headers,
            what=f"resume {state.run_id}",
        )
        state.request_id = response.headers.get("request-id") or state.request_id
        state.check_type(response)
        return response

    async def _events(self) -> AsyncIterator[Event]:
        state = self._state
        deadline_at = self._transport.deadline_at()
        try:
            response = await self._ensure_open()
            while True:
                decoder = SSEDecoder(max_event_size=self._max_event_size)
                try:
                    async for chunk in response.aiter_bytes():
                        if deadline_at is not None and time.monotonic() > deadline_at:
                            raise APITimeoutError(
                                f"{state.what}: the overall deadline passed",
                                request_id=state.request_id,
                            )
                        for sse in decoder.feed(chunk):
                            event = state.accept(sse)
                            if event is None:
                                continue
                            yield event
                            if state.terminal is not None:
                                return
                    for sse in decoder.close():
                        event = state.accept(sse)
                        if event is None:
                            continue
                        yield event
                        if state.terminal is not None:
                            return
                except _DROPS as exc:
                    await response.aclose()
                    self._response = None
                    if state.can_resume():
                        response = self._response = await self._resume()
                    elif state.may_reopen(self._transport.retry.max_retries):
                        response = await self._ensure_open()
                    else:
                        raise connection_error(exc, state.what) from exc
                    continue
                raise state.ended()
        finally:
            response_ = self._response
            self._response = None
            if response_ is not None:
                await response_.aclose()
