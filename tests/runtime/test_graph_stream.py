"""The graph runner: event order, node timings, live progress, cancellation."""

from __future__ import annotations

import threading
import time

import pytest

from bkbn_pipelines._errors import InvalidParamsError, UnknownGraphError
from bkbn_pipelines._events import (
    ErrorEvent,
    NodeDone,
    NodeStart,
    RenderProgress,
    Result,
    RunStart,
)
from bkbn_pipelines.runtime import Graph, Node, get_graph, run_graph


def _slow_graph(steps: int, delay: float, started: threading.Event | None = None) -> Graph:
    def prepare(ctx):
        ctx.values["n"] = steps

    def render(ctx):
        for step in range(1, ctx.values["n"] + 1):
            if started is not None and step == 2:
                started.set()
            time.sleep(delay)
            ctx.progress(step, ctx.values["n"])
        ctx.values["done"] = True

    def encode(ctx):
        ctx.fields["steps_run"] = ctx.values["n"]

    return Graph(
        name="test-slow",
        version="0.1",
        nodes=(
            Node("prepare", prepare),
            Node("render", render, needs=("prepare",)),
            Node("encode", encode, needs=("render",)),
        ),
    )


def test_events_come_in_api_order_with_node_timings() -> None:
    events = list(run_graph(_slow_graph(3, 0.02), [], {}))
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "RunStart",
        "NodeStart",
        "NodeDone",
        "NodeStart",
        "RenderProgress",
        "RenderProgress",
        "RenderProgress",
        "NodeDone",
        "NodeStart",
        "NodeDone",
        "Result",
    ]
    assert isinstance(events[0], RunStart) and events[0].graph == "test-slow-v0.1"
    assert [e.node for e in events if isinstance(e, NodeStart)] == ["prepare", "render", "encode"]
    render_done = next(e for e in events if isinstance(e, NodeDone) and e.node == "render")
    assert render_done.ms >= 60  # three steps of 20 ms were measured
    assert [(e.step, e.total) for e in events if isinstance(e, RenderProgress)] == [
        (1, 3),
        (2, 3),
        (3, 3),
    ]
    result = events[-1]
    assert isinstance(result, Result)
    assert result.data["graph"] == "test-slow-v0.1" and result.data["steps_run"] == 3


def test_progress_streams_while_the_node_still_runs() -> None:
    stream = run_graph(_slow_graph(20, 0.05), [], {})
    first_progress_at = None
    t0 = time.perf_counter()
    for event in stream:
        if isinstance(event, RenderProgress) and first_progress_at is None:
            first_progress_at = time.perf_counter() - t0
        if isinstance(event, NodeDone) and event.node == "render":
            render_ms = event.ms
    assert first_progress_at is not None
    # The first step arrived long before the 20-step node finished.
    assert first_progress_at * 1000 < render_ms / 2


def test_cancel_stops_a_render_mid_way() -> None:
    cancel = threading.Event()
    events = []
    for event in run_graph(_slow_graph(50, 0.01), [], {}, cancel=cancel):
        events.append(event)
        if isinstance(event, RenderProgress) and event.step == 3:
            cancel.set()
    last = events[-1]
    assert isinstance(last, ErrorEvent) and last.error_type == "cancelled"
    steps = [e.step for e in events if isinstance(e, RenderProgress)]
    assert max(steps) < 50


def test_closing_the_stream_cancels_the_worker() -> None:
    cancel = threading.Event()
    stream = run_graph(_slow_graph(200, 0.01), [], {}, cancel=cancel)
    for event in stream:
        if isinstance(event, RenderProgress):
            break
    stream.close()
    assert cancel.is_set()


def test_errors_in_nodes_become_the_final_error_event() -> None:
    def bad_params(ctx):
        raise InvalidParamsError("style: 'baroque' is not one of the styles")

    def crash(ctx):
        raise ZeroDivisionError("boom")

    for fn, expected in ((bad_params, "invalid_request_error"), (crash, "api_error")):
        graph = Graph(name="test-fail", version="0.1", nodes=(Node("only", fn),))
        events = list(run_graph(graph, [], {}))
        assert isinstance(events[-1], ErrorEvent)
        assert events[-1].error_type == expected
        assert not any(isinstance(e, Result) for e in events)


def test_graph_names_resolve_to_versions() -> None:
    from bkbn_pipelines.runtime import LocalRuntime

    LocalRuntime()  # registers the graphs
    assert get_graph("relight").full_name == "relight-v1.2"
    assert get_graph("relight-v1.2") is get_graph("relight")
    with pytest.raises(UnknownGraphError, match=r"no graph named 'relight-v9\.9'"):
        get_graph("relight-v9.9")
    with pytest.raises(UnknownGraphError, match="known graphs"):
        get_graph("teleport")


def test_a_node_that_needs_a_later_node_is_refused() -> None:
    with pytest.raises(ValueError, match="needs"):
        Graph(name="x", version="1", nodes=(Node("a", lambda c: None, needs=("b",)),))


def _version(name: str, version: str) -> Graph:
    return Graph(name=name, version=version, nodes=(Node("only", lambda ctx: None),))


def test_a_bare_name_means_the_newest_registered_version(monkeypatch) -> None:
    from bkbn_pipelines._contract import GRAPHS
    from bkbn_pipelines.runtime import LocalRuntime, _graph

    LocalRuntime()  # registers the contract's versions
    for family, version in GRAPHS.items():  # only those so far: the contract's own
        assert get_graph(family).version == version
    contract = get_graph("relight")
    for version in ("1.9", "1.10", "1.2.1"):
        monkeypatch.setitem(_graph._REGISTRY, ("relight", version), _version("relight", version))
    assert get_graph("relight").full_name == "relight-v1.10"  # 1.10 > 1.9 > 1.2.1 > 1.2
    assert get_graph("relight-v1.2") is contract
    assert get_graph("relight-v1.9").version == "1.9"
    names = [n for n in _graph.graph_names() if n.startswith("relight-")]
    assert names == ["relight-v1.2", "relight-v1.2.1", "relight-v1.9", "relight-v1.10"]


def test_a_graph_whose_name_holds_v_resolves_by_its_name(monkeypatch) -> None:
    from bkbn_pipelines.runtime import _graph

    graph = _version("test-vivid", "0.3")
    monkeypatch.setitem(_graph._REGISTRY, ("test-vivid", "0.3"), graph)
    assert get_graph("test-vivid") is graph
    assert get_graph("test-vivid-v0.3") is graph
