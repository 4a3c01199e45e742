"""The backend protocol: one way to run a graph, whether over HTTP or in-process.

Both backends take a :class:`GraphRequest` and yield the same typed events
(:mod:`bkbn_pipelines._events`), ending with one ``Result`` or ``ErrorEvent``.
:meth:`Backend.outputs` then turns a ``Result`` into the files it names, so callers
(the Dagster resource, the CLI) never need to know which backend ran.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .._events import Artifact, Event, Result

__all__ = ["Backend", "GraphRequest", "InputFile"]


@dataclass(frozen=True)
class InputFile:
    """One input: a photo, or a capture bundle. ``name`` is for error messages."""

    data: bytes = field(repr=False)
    media_type: str
    name: str = "input"

    def __repr__(self) -> str:
        return (
            f"InputFile(name={self.name!r}, media_type={self.media_type!r}, size={len(self.data)})"
        )


@dataclass(frozen=True)
class GraphRequest:
    """A graph to run, its inputs and parameters.

    ``graph`` is ``staging``, ``relight``, ``declutter``, ``brochure`` or
    ``floor-plan``, optionally with a version (``staging-v2.4``).  ``inputs`` is one
    photo for the image graphs, the photos for ``brochure`` (whose ``params`` carry
    ``listing`` facts and an optional ``template``) and one capture bundle for
    ``floor-plan`` (``params``: ``units``).
    """

    graph: str
    inputs: Sequence[InputFile]
    params: Mapping[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None


@runtime_checkable
class Backend(Protocol):
    """What the resource and the CLI need from a backend."""

    name: str

    def stream(self, request: GraphRequest) -> Iterator[Event]:
        """Run the graph and yield its events; the last is ``Result`` or ``ErrorEvent``."""
        ...

    def outputs(self, result: Result) -> Mapping[str, Artifact]:
        """The files of a result, by output name (``image``, ``pdf``, ``plan``...)."""
        ...

    def close(self) -> None: ...
