"""Typed run events: the one event stream of the API and of the local runtime.

A run yields ``RunStart``, then ``NodeStart``/``NodeDone`` pairs and
``RenderProgress`` events, interleaved with ``Ping`` heartbeats, and ends with
exactly one ``Result`` or ``ErrorEvent``.  Event types this version does not know
become ``UnknownEvent`` instead of failing.

On the wire (Server-Sent Events) each event has ``event:`` set to :attr:`Event.type`,
``data:`` set to the JSON of :meth:`Event.to_data` and ``id:`` set to ``RUN_ID:SEQ``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ._errors import APIStreamError

__all__ = [
    "Artifact",
    "ErrorEvent",
    "Event",
    "NodeDone",
    "NodeStart",
    "Ping",
    "RenderProgress",
    "Result",
    "RunStart",
    "UnknownEvent",
    "event_from_sse",
    "is_terminal",
]


@dataclass(frozen=True)
class Artifact:
    """A file produced by a run: its bytes and media type.

    The local runtime puts artifacts on its ``Result``; the API serves them as URLs
    in the result's ``outputs`` instead.
    """

    data: bytes = field(repr=False)
    media_type: str

    def __repr__(self) -> str:
        return f"Artifact(media_type={self.media_type!r}, size={len(self.data)})"


@dataclass(frozen=True)
class Event:
    """Base of every event. ``id`` is ``RUN_ID:SEQ`` on the wire, or ``None``."""

    type: ClassVar[str] = ""
    id: str | None = field(default=None, kw_only=True)

    def to_data(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_json(self) -> str:
        return json.dumps(self.to_data(), separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class RunStart(Event):
    type: ClassVar[str] = "run.start"
    run_id: str
    graph: str

    def to_data(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "graph": self.graph}


@dataclass(frozen=True)
class NodeStart(Event):
    type: ClassVar[str] = "node.start"
    node: str

    def to_data(self) -> dict[str, Any]:
        return {"id": self.node}


@dataclass(frozen=True)
class NodeDone(Event):
    type: ClassVar[str] = "node.done"
    node: str
    ms: int

    def to_data(self) -> dict[str, Any]:
        return {"id": self.node, "ms": self.ms}


@dataclass(frozen=True)
class RenderProgress(Event):
    type: ClassVar[str] = "render.progress"
    step: int
    total: int

    def to_data(self) -> dict[str, Any]:
        return {"step": self.step, "total": self.total}


@dataclass(frozen=True)
class Ping(Event):
    type: ClassVar[str] = "ping"

    def to_data(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class Result(Event):
    """The run's result.

    ``data`` is the JSON object of the contract: ``url``, ``ms``, ``usage`` and the
    graph-specific fields (``outputs``, ``width``, ``height``, ``weights``...).
    ``artifacts`` holds the files themselves when the run was local; it is never
    serialised.
    """

    type: ClassVar[str] = "result"
    data: Mapping[str, Any]
    artifacts: Mapping[str, Artifact] = field(default_factory=dict, compare=False)

    def to_data(self) -> dict[str, Any]:
        return dict(self.data)

    @property
    def url(self) -> str | None:
        return self.data.get("url")

    @property
    def ms(self) -> int | None:
        return self.data.get("ms")

    @property
    def tokens(self) -> int | None:
        usage = self.data.get("usage") or {}
        return usage.get("tokens")


@dataclass(frozen=True)
class ErrorEvent(Event):
    type: ClassVar[str] = "error"
    error_type: str
    message: str

    def to_data(self) -> dict[str, Any]:
        return {"type": self.error_type, "message": self.message}


@dataclass(frozen=True)
class UnknownEvent(Event):
    """An event type this version does not know, passed through untouched."""

    event: str
    data: Any

    @property
    def type(self) -> str:  # type: ignore[override]
        return self.event

    def to_data(self) -> Any:
        return self.data


def is_terminal(event: Event) -> bool:
    """``True`` for the events that end a run: ``result`` and ``error``."""
    return isinstance(event, (Result, ErrorEvent))


def event_from_sse(event: str, data: str, id: str | None = None) -> Event:
    """Build a typed event from one SSE event's fields.

    Raises :class:`APIStreamError` when a known event carries malformed data.
    """
    name = event or "message"
    try:
        payload = json.loads(data) if data else {}
    except ValueError as exc:
        raise APIStreamError(f"event {name!r} has data that is not JSON") from exc
    try:
        if name == "run.start":
            return RunStart(run_id=payload["run_id"], graph=payload["graph"], id=id)
        if name == "node.start":
            return NodeStart(node=payload["id"], id=id)
        if name == "node.done":
            return NodeDone(node=payload["id"], ms=int(payload["ms"]), id=id)
        if name == "render.progress":
            return RenderProgress(step=int(payload["step"]), total=int(payload["total"]), id=id)
        if name == "ping":
            return Ping(id=id)
        if name == "result":
            if not isinstance(payload, dict):
                raise TypeError("result data must be an object")
            return Result(data=payload, id=id)
        if name == "error":
            return ErrorEvent(
                error_type=str(payload["type"]), message=str(payload.get("message", "")), id=id
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise APIStreamError(f"event {name!r} has malformed data") from exc
    return UnknownEvent(event=name, data=payload, id=id)
