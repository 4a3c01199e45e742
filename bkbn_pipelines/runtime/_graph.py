"""Versioned graphs of named nodes, and the loop that runs them as an event stream.

A :class:`Graph` is an ordered tuple of :class:`Node` objects (a topological order of
its DAG; ``Node.needs`` records the edges).  Each node is a function of a
:class:`RunContext`: it reads the run's inputs and earlier nodes' values from
``ctx.values`` and writes its own.  The last node puts files in ``ctx.artifacts`` and
result fields in ``ctx.fields``.  :func:`run_graph` turns one run into the event
sequence of the API: ``run.start``, ``node.start``/``node.done`` per node with
measured milliseconds, ``render.progress`` from inside nodes, then one ``result``
or ``error``.

The nodes run in a worker thread and hand their events to the caller through a
queue, so ``render.progress`` arrives while a render is still going, and a caller
that sets the run's cancel event (or stops iterating) stops the render at its next
step.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._errors import BkbnError, MediaError, RunCancelledError, UnknownGraphError
from .._events import (
    Artifact,
    ErrorEvent,
    Event,
    NodeDone,
    NodeStart,
    RenderProgress,
    Result,
    RunStart,
)

__all__ = [
    "Graph",
    "Node",
    "RunContext",
    "get_graph",
    "graph_names",
    "register",
    "run_graph",
]

logger = logging.getLogger("bkbn_pipelines.runtime")

NodeFn = Callable[["RunContext"], None]


@dataclass(frozen=True)
class Node:
    """One step of a graph. ``needs`` names the nodes whose values it reads."""

    name: str
    fn: NodeFn
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Graph:
    """A versioned DAG of nodes, e.g. ``staging`` version ``2.4``."""

    name: str
    version: str
    nodes: tuple[Node, ...]
    description: str = ""
    #: Checks and normalises a run's parameters before it starts:
    #: ``preflight(params, settings) -> params``; raises a :class:`GraphError`
    #: (``InvalidParamsError``, ``ModelNotFoundError``...) for a run that cannot work.
    preflight: Callable[[Mapping[str, Any], Any], Mapping[str, Any]] | None = None

    @property
    def full_name(self) -> str:
        return f"{self.name}-v{self.version}"

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for node in self.nodes:
            missing = [n for n in node.needs if n not in seen]
            if missing:
                raise ValueError(f"{self.full_name}: node {node.name!r} needs {missing} first")
            seen.add(node.name)


@dataclass
class RunContext:
    """What a node sees: inputs, parameters, earlier values, and where to put output."""

    run_id: str
    graph: Graph
    inputs: Sequence[bytes]
    params: Mapping[str, Any]
    settings: Any
    values: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)
    _emit: Callable[[Event], None] | None = field(default=None, repr=False)
    _progress: list[RenderProgress] = field(default_factory=list, repr=False)

    def progress(self, step: int, total: int) -> None:
        """Report a render step; also the point where a cancelled run stops."""
        self.check_cancelled()
        event = RenderProgress(step=step, total=total)
        if self._emit is not None:
            self._emit(event)
        else:
            self._progress.append(event)

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise RunCancelledError(f"run {self.run_id} was cancelled")


_REGISTRY: dict[tuple[str, str], Graph] = {}


def register(graph: Graph) -> Graph:
    """Add a graph version to the registry; returns it, so it can decorate a constant."""
    _REGISTRY[(graph.name, graph.version)] = graph
    return graph


def _version_key(version: str) -> tuple[int, ...]:
    """``"1.10"`` -> ``(1, 10)``: versions compare as numbers, so 1.10 is newer than 1.9.

    A part that is not a number (``"1.0rc1"``) counts as -1, older than any number.
    """
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


def graph_names() -> list[str]:
    """Every registered graph as ``name-vX.Y``, by name, then oldest version first."""
    keys = sorted(_REGISTRY, key=lambda key: (key[0], _version_key(key[1])))
    return [_REGISTRY[key].full_name for key in keys]


def _newest_version(name: str) -> str:
    """The newest registered version of graph ``name``, or ``""`` if it has none."""
    versions = [v for (n, v) in _REGISTRY if n == name]
    return max(versions, key=_version_key) if versions else ""


def _split_name(name: str) -> tuple[str, str]:
    """``staging-v2.4`` -> ``("staging", "2.4")``; a bare graph name has version ``""``."""
    if _newest_version(name):  # a registered name, even one holding "-v"
        return name, ""
    base, sep, version = name.rpartition("-v")
    if not sep or not base:
        return name, ""
    return base, version


def get_graph(name: str) -> Graph:
    """Resolve ``staging`` (the newest registered version) or ``staging-v2.4`` (that one)."""
    base, version = _split_name(name)
    graph = _REGISTRY.get((base, version or _newest_version(base)))
    if graph is None:
        raise UnknownGraphError(
            f"no graph named {name!r}; known graphs: {', '.join(graph_names()) or 'none'}"
        )
    return graph


_DONE = object()


def run_graph(
    graph: Graph,
    inputs: Sequence[bytes],
    params: Mapping[str, Any],
    *,
    settings: Any = None,
    run_id: str | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[Event]:
    """Run ``graph`` and yield its events; the last one is a ``Result`` or ``ErrorEvent``.

    Errors inside nodes become an ``ErrorEvent`` whose ``error_type`` comes from the
    error class (see :mod:`bkbn_pipelines._errors`); nothing is raised to the caller.
    A cancelled run ends with an ``ErrorEvent`` of type ``cancelled``.  Closing the
    iterator early cancels the run.
    """
    ctx = RunContext(
        run_id=run_id or f"run_{uuid.uuid4().hex[:24]}",
        graph=graph,
        inputs=inputs,
        params=params,
        settings=settings,
        cancel=cancel or threading.Event(),
    )
    events: queue.SimpleQueue[Any] = queue.SimpleQueue()
    ctx._emit = events.put
    worker = threading.Thread(
        target=_run_nodes, args=(ctx, events), name=f"bkbn-{ctx.run_id}", daemon=True
    )
    yield RunStart(run_id=ctx.run_id, graph=graph.full_name)
    worker.start()
    finished = False
    try:
        while True:
            item = events.get()
            if item is _DONE:
                finished = True
                break
            yield item
    finally:
        if not finished:  # the caller stopped iterating: stop the render
            ctx.cancel.set()


def _run_nodes(ctx: RunContext, events: queue.SimpleQueue[Any]) -> None:
    """The worker thread: run every node, put its events on ``events``, then ``_DONE``."""
    graph = ctx.graph
    started = time.perf_counter()
    try:
        for node in graph.nodes:
            ctx.check_cancelled()
            events.put(NodeStart(node=node.name))
            t0 = time.perf_counter()
            node.fn(ctx)
            ms = round((time.perf_counter() - t0) * 1000)
            logger.debug("run %s: node %s took %d ms", ctx.run_id, node.name, ms)
            events.put(NodeDone(node=node.name, ms=ms))
    except BkbnError as exc:
        error_type = getattr(exc, "error_type", None) or (
            "invalid_request_error" if isinstance(exc, MediaError) else "api_error"
        )
        logger.info("run %s of %s failed: %s", ctx.run_id, graph.full_name, exc)
        events.put(ErrorEvent(error_type=error_type, message=str(exc)))
    except Exception as exc:  # a bug in a node: report it as the API would, a 500
        logger.exception("run %s of %s crashed", ctx.run_id, graph.full_name)
        events.put(ErrorEvent(error_type="api_error", message=f"{type(exc).__name__}: {exc}"))
    else:
        data = {"graph": graph.full_name, "ms": round((time.perf_counter() - started) * 1000)}
        data.update(ctx.fields)
        events.put(Result(data=data, artifacts=dict(ctx.artifacts)))
    finally:
        events.put(_DONE)
