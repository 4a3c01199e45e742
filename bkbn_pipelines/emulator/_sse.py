"""The event stream of a run, written as Server-Sent Events.

A stream replays the run's log after a given sequence number, then follows it live.
When nothing has been written for ``heartbeat_s`` it sends ``event: ping`` with
``data: {}`` and no ``id`` (so a reconnecting client's last event id stays the last
real event).  A client that goes away ends the stream, never the run.

Test faults act here: closing the connection after N events, or in the middle of an
event; a stall; a malformed event; a late first byte.  Closing is done by returning
without finishing the response, which makes the server abort the connection, so the
client sees a broken transfer rather than a clean end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

import anyio
from sse_starlette import ServerSentEvent
from starlette.responses import Response

from ._faults import StreamFault
from ._runs import Run

__all__ = ["EventStream"]

logger = logging.getLogger("bkbn_pipelines.emulator")

_PING = ServerSentEvent(data="{}", event="ping", sep="\n").encode()
_MALFORMED = b'event: render.progress\ndata: {"step": oops\n\n'


class EventStream(Response):
    """A streaming answer that follows ``run`` from after ``after_seq``."""

    media_type = "text/event-stream"

    def __init__(
        self,
        run: Run,
        *,
        after_seq: int = 0,
        heartbeat_s: float = 15.0,
        fault: StreamFault | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            status_code=200,
            headers={
                "cache-control": "no-cache",
                "x-accel-buffering": "no",
                **(headers or {}),
            },
            media_type="text/event-stream; charset=utf-8",
        )
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.run = run
        self.after_seq = after_seq
        self.heartbeat_s = heartbeat_s
        self.fault = fault

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        fault = self.fault
        if fault is not None and fault.action == "first_byte_delay":
            await asyncio.sleep(fault.seconds)
            fault = None
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        outcome = "disconnected"
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        group.cancel_scope.cancel()
                        return

            group.start_soon(watch)
            try:
                outcome = await self._pump(send, fault)
            except OSError:  # the client went away while we wrote
                outcome = "disconnected"
            group.cancel_scope.cancel()
        if outcome == "complete":
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        elif outcome == "abort":
            logger.info("test fault: aborting the stream of run %s", self.run.id)

    async def _pump(self, send: Callable, fault: StreamFault | None) -> str:
        run = self.run
        index = self.after_seq
        written = 0
        last_write = time.monotonic()

        async def write(data: bytes) -> None:
            nonlocal last_write
            await send({"type": "http.response.body", "body": data, "more_body": True})
            last_write = time.monotonic()

        while True:
            if index < len(run.events):
                event = run.events[index]
                index += 1
                payload = event.encode(run.id)
                if fault is not None and written == fault.after_events:
                    action, seconds, fault = fault.action, fault.seconds, None
                    if action == "drop":
                        return "abort"
                    if action == "drop_mid_event":
                        await write(payload[: max(1, len(payload) // 2)])
                        return "abort"
                    if action == "stall":
                        await asyncio.sleep(seconds)
                    elif action == "malformed":
                        await write(_MALFORMED)
                await write(payload)
                written += 1
                if event.type in ("result", "error"):
                    return "complete"
                continue
            if run.finished:
                return "complete"
            remaining = self.heartbeat_s - (time.monotonic() - last_write)
            if remaining <= 0:
                await write(_PING)
                continue
            await run.wait_change(remaining)
