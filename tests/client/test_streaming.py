"""Run streams over ``httpx.MockTransport``: typed events, endings, drops, pings."""

from __future__ import annotations

import json

import httpx
import pytest

from bkbn_pipelines import (
    APIConnectionError,
    APIStreamError,
    NodeDone,
    Ping,
    RenderProgress,
    Result,
    RunFailedError,
    RunStart,
    StreamEndedError,
    UnknownEvent,
)

from ._mock import SSE_HEADERS, Script, Sleeps, chunks, make_client, sse

START = sse("run.start", {"run_id": "run_1", "graph": "staging-v2.4"}, "run_1:1")
PROGRESS1 = sse("render.progress", {"step": 1, "total": 2}, "run_1:2")
PROGRESS2 = sse("render.progress", {"step": 2, "total": 2}, "run_1:3")
RESULT = sse(
    "result", {"url": "http://api.test/v1/files/f1", "ms": 5, "usage": {"tokens": 3}}, "run_1:4"
)


def test_stream_yields_typed_events_and_sends_contract_headers():
    script = Script(httpx.Response(200, headers=SSE_HEADERS, content=START + PROGRESS1 + RESULT))
    with (
        make_client(script) as client,
        client.workflows.stream("staging", input="data:,x", params={"style": "coastal"}) as s,
    ):
        events = list(s)
        assert s.run_id == "run_1"
        assert s.request_id == "req_test123"
    assert [type(e) for e in events] == [RunStart, RenderProgress, Result]
    assert events[-1].url == "http://api.test/v1/files/f1" and events[-1].tokens == 3
    request = script.requests[0]
    assert request.url.path == "/v1/workflows/staging/run"
    assert request.headers["bkbn-version"] == "2026-01-01"
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["x-api-key"] == "bkbn_sk_test_secret_value_123"
    assert len(request.headers["idempotency-key"]) == 36
    assert json.loads(request.content) == {"input": "data:,x", "params": {"style": "coastal"}}


def test_case_05_clean_close_before_result_is_stream_ended_error():
    script = Script(httpx.Response(200, headers=SSE_HEADERS, content=START + PROGRESS1 + PROGRESS2))
    with make_client(script) as client:
        stream = client.workflows.stream("staging", input="data:,x")
        with pytest.raises(StreamEndedError) as info:
            stream.until_result()
    assert info.value.request_id == "req_test123"
    assert "req_test123" in str(info.value)
    assert len(script.requests) == 1  # a clean end is not retried or resumed


def test_unknown_event_type_passes_through():
    body = START + sse("render.preview", {"thumb": "abc"}, "run_1:2") + RESULT
    script = Script(httpx.Response(200, headers=SSE_HEADERS, content=body))
    with make_client(script) as client:
        events = list(client.workflows.stream("staging", input="data:,x"))
    unknown = events[1]
    assert isinstance(unknown, UnknownEvent)
    assert unknown.type == "render.preview" and unknown.data == {"thumb": "abc"}
    assert isinstance(events[-1], Result)


def test_error_event_is_yielded_and_until_result_raises_run_failed():
    body = START + sse(
        "error", {"type": "invalid_request_error", "message": "bad style"}, "run_1:2"
    )
    script = Script(
        httpx.Response(200, headers=SSE_HEADERS, content=body),
        httpx.Response(200, headers=SSE_HEADERS, content=body),
    )
    with make_client(script) as client:
        events = list(client.workflows.stream("staging", input="data:,x"))
        assert events[-1].type == "error"
        with pytest.raises(RunFailedError) as info:
            client.workflows.stream("staging", input="data:,x").until_result()
    assert info.value.error_type == "invalid_request_error"
    assert info.value.message == "bad style"


def test_pings_are_hidden_by_default_and_never_count_as_progress():
    body = START + sse("ping", {}, "run_1:2") + b": keepalive\n\n" + RESULT
    script = Script(
        httpx.Response(200, headers=SSE_HEADERS, content=body),
        httpx.Response(200, headers=SSE_HEADERS, content=body),
        httpx.Response(200, headers=SSE_HEADERS, content=START + sse("ping", {}, "run_1:2")),
    )
    with make_client(script) as client:
        assert [e.type for e in client.workflows.stream("staging")] == ["run.start", "result"]
        shown = list(client.workflows.stream("staging", include_pings=True))
        assert [type(e) for e in shown] == [RunStart, Ping, Result]
        with pytest.raises(StreamEndedError, match="1 events"):
            client.workflows.stream("staging").until_result()


def test_drop_after_events_resumes_from_last_event_id_without_second_post():
    dropped = httpx.Response(
        200,
        headers=SSE_HEADERS,
        content=chunks([START, PROGRESS1, b"event: render.pro"], then=httpx.ReadError("reset")),
    )
    replay = httpx.Response(200, headers=SSE_HEADERS, content=PROGRESS1 + PROGRESS2 + RESULT)
    script = Script(dropped, replay)
    sleeps = Sleeps()
    with make_client(script, sleeps) as client:
        stream = client.workflows.stream("staging", input="data:,x")
        events = list(stream)
        assert stream.resumes == 1
    assert [e.id for e in events] == ["run_1:1", "run_1:2", "run_1:3", "run_1:4"]  # no duplicate
    post, get = script.requests
    assert post.method == "POST"
    assert get.method == "GET" and get.url.path == "/v1/workflows/runs/run_1/events"
    assert get.headers["last-event-id"] == "run_1:2"
    assert "idempotency-key" not in get.headers


def test_retry_field_sets_the_reconnect_delay():
    first = httpx.Response(
        200,
        headers=SSE_HEADERS,
        content=chunks([b"retry: 1500\n\n", START], then=httpx.RemoteProtocolError("incomplete")),
    )
    script = Script(first, httpx.Response(200, headers=SSE_HEADERS, content=RESULT))
    sleeps = Sleeps()
    with make_client(script, sleeps) as client:
        assert client.workflows.stream("staging").until_result().ms == 5
    assert sleeps == [1.5]


def test_drop_before_any_event_sends_the_post_again_with_the_same_key():
    first = httpx.Response(200, headers=SSE_HEADERS, content=chunks([], then=httpx.ReadError("x")))
    script = Script(first, httpx.Response(200, headers=SSE_HEADERS, content=START + RESULT))
    with make_client(script) as client:
        assert client.workflows.stream("staging").until_result().url
    a, b = script.requests
    assert a.method == b.method == "POST"
    assert a.headers["idempotency-key"] == b.headers["idempotency-key"]


def test_drop_without_run_id_after_events_is_a_connection_error_not_httpx():
    body = sse("node.done", {"id": "a", "ms": 1})  # no id: nothing to resume from
    first = httpx.Response(
        200, headers=SSE_HEADERS, content=chunks([body], then=httpx.ReadError("x"))
    )
    script = Script(first)
    with make_client(script) as client:
        stream = client.workflows.stream("staging")
        with pytest.raises(APIConnectionError) as info:
            list(stream)
    assert not isinstance(info.value, httpx.HTTPError)
    assert isinstance(info.value.__cause__, httpx.ReadError)


def test_resumes_are_bounded():
    def dropping(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers=SSE_HEADERS, content=chunks([START], then=httpx.ReadError("x"))
        )

    script = Script(*[dropping] * 10)
    with make_client(script) as client:
        stream = client.workflows.stream("staging")
        stream._session.state.max_resumes = 3
        with pytest.raises(APIConnectionError):
            stream.until_result()
    assert len(script.requests) == 4  # one POST, three resumes


def test_non_event_stream_success_is_a_stream_error():
    script = Script(httpx.Response(200, json={"url": "x"}))
    with make_client(script) as client, pytest.raises(APIStreamError, match="event stream"):
        list(client.workflows.stream("staging"))


def test_malformed_known_event_is_a_stream_error():
    script = Script(httpx.Response(200, headers=SSE_HEADERS, content=sse("node.done", "{oops")))
    with make_client(script) as client, pytest.raises(APIStreamError, match=r"node\.done") as info:
        list(client.workflows.stream("staging"))
    assert info.value.request_id == "req_test123"


def test_events_replay_endpoint():
    script = Script(httpx.Response(200, headers=SSE_HEADERS, content=PROGRESS2 + RESULT))
    with make_client(script) as client:
        stream = client.runs.events("run_1", last_event_id="run_1:2")
        events = list(stream)
    assert [type(e) for e in events] == [RenderProgress, Result]
    assert script.requests[0].headers["last-event-id"] == "run_1:2"
    assert stream.run_id == "run_1"  # learnt from the event ids


def test_node_done_event_types():
    body = START + sse("node.done", {"id": "segment", "ms": 12}, "run_1:2") + RESULT
    script = Script(httpx.Response(200, headers=SSE_HEADERS, content=body))
    with make_client(script) as client:
        events = list(client.workflows.stream("staging"))
    assert events[1] == NodeDone(node="segment", ms=12, id="run_1:2")


def test_case_04_through_the_client_whatever_the_charset_claims():
    raw = START + sse("result", '{"url": "u", "region": "Franche-Comté ✅"}', "run_1:2")
    cut = raw.index("é".encode()) + 1
    for ctype in (
        "text/event-stream",
        "text/event-stream; charset=iso-8859-1",
        "Text/Event-Stream; charset=UTF-8",  # media types are case-insensitive
    ):
        headers = {**SSE_HEADERS, "content-type": ctype}
        script = Script(
            httpx.Response(200, headers=headers, content=chunks([raw[:cut], raw[cut:]]))
        )
        with make_client(script) as client:
            result = client.workflows.stream("staging").until_result()
        assert result.data["region"] == "Franche-Comté ✅"


def test_a_stream_is_read_once_and_released_when_broken_off():
    script = Script(httpx.Response(200, headers=SSE_HEADERS, content=START + PROGRESS1 + RESULT))
    with make_client(script) as client:
        stream = client.workflows.stream("staging")
        for _event in stream:
            break
        assert stream._session.response is None  # the generator closed it
        with pytest.raises(APIStreamError, match="once"):
            list(stream)


def test_retrieve_with_a_body_that_is_not_json_is_an_api_error():
    from bkbn_pipelines import APIError

    script = Script(httpx.Response(200, text="<html>"))
    with make_client(script) as client, pytest.raises(APIError, match="JSON"):
        client.runs.retrieve("run_1")
