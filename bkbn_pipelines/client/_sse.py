"""An incremental parser for Server-Sent Events, written to the WHATWG rules.

The parser takes the raw bytes of a response as they arrive and returns the
complete events each chunk finishes.  It does its own decoding and line splitting
instead of relying on ``httpx-sse`` because a stream from a real network breaks the
easy assumptions:

* the body may start with a byte-order mark, which must be stripped once;
* a line may end with CR, LF or CRLF, and a CRLF may be split across two chunks, so a
  CR at the end of a chunk cannot be treated as a line end until the next byte is seen;
* a multi-byte UTF-8 character may be split across chunks, and the event-stream format
  is always UTF-8 whatever ``charset`` the ``content-type`` claims;
* comments and blank dispatches with no data never become events;
* one event must not grow without bound.
"""

from __future__ import annotations

import codecs
import re

from httpx_sse import ServerSentEvent

from .._errors import APIStreamError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "SSEDecoder", "ServerSentEvent"]

#: Largest event (data and pending line) accepted, in characters.
DEFAULT_MAX_EVENT_SIZE = 16 * 1024 * 1024

_LINE_END = re.compile(r"\r\n|\r|\n")


class SSEDecoder:
    """Feed bytes with :meth:`feed`; each call returns the events it completed.

    ``last_event_id`` and ``retry`` keep the stream's state between events, as the
    WHATWG algorithm's "last event ID buffer" and "reconnection time" do.
    """

    def __init__(self, *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        # utf-8-sig drops one leading BOM, even one split across chunks, and only once.
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._max = max_event_size
        self._parts: list[str] = []  # the unfinished line, kept as pieces (no re-copying)
        self._parts_size = 0
        self._skip_lf = False  # the last chunk ended with CR: an LF next is the same line end
        self._event = ""
        self._data: list[str] = []
        self._size = 0
        self._own_id = False
        self.last_event_id = ""
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode one chunk of the body and return the events it completed."""
        return self._lines(self._decoder.decode(chunk))

    def close(self) -> list[ServerSentEvent]:
        """End of the body: an unfinished line or event is dropped, as the standard says."""
        events = self._lines(self._decoder.decode(b"", final=True))
        self._parts, self._parts_size = [], 0
        self._event, self._data, self._size, self._own_id = "", [], 0, False
        return events

    def _lines(self, text: str) -> list[ServerSentEvent]:
        if not text:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        events: list[ServerSentEvent] = []
        start = 0
        for match in _LINE_END.finditer(text):
            line = text[start : match.start()]
            if self._parts:
                line = "".join(self._parts) + line
                self._parts, self._parts_size = [], 0
            event = self._line(line)
            if event is not None:
                events.append(event)
            start = match.end()
        # A CR that ends the chunk ended a line; an LF opening the next chunk is its pair.
        self._skip_lf = text.endswith("\r")
        if start < len(text):
            self._parts.append(text[start:])
            self._parts_size += len(text) - start
            if self._size + self._parts_size > self._max:
                raise APIStreamError(f"an event is larger than the {self._max} character limit")
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._size += len(value) + 1
            if self._size > self._max:
                raise APIStreamError(f"an event is larger than the {self._max} character limit")
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
                self._own_id = True
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event, own_id = self._data, self._event, self._own_id
        self._event, self._data, self._size, self._own_id = "", [], 0, False
        if not data:
            return None  # no data: nothing to dispatch, no phantom event
        sse = ServerSentEvent(
            event=event or "message",
            data="\n".join(data),
            id=self.last_event_id,
            retry=self.retry,
        )
        # The id persists from event to event; whether this event set it itself
        # matters to the resume logic, which skips events it has already seen.
        sse.own_id = own_id  # type: ignore[attr-defined]
        return sse
