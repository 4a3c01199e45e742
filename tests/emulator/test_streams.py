"""Event streams: ids, heartbeats, replay with last-event-id, disconnects, idempotency."""

from __future__ import annotations

import json
import threading
import time

import httpx

from bkbn_pipelines.emulator.testing import EmulatorAdmin

from .conftest import sse_events, stream
from .test_basics import assert_error


def test_stream_has_ids_and_ends_with_one_result(api, photo_uri):
    events = stream(api, "POST", "/v1/workflows/relight/run", json={"input": photo_uri})
    real = [e for e in events if e["event"] != "ping"]
    run_id = json.loads(real[0]["data"])["run_id"]
    assert [e["id"] for e in real] == [f"{run_id}:{n}" for n in range(1, len(real) + 1)]
    assert real[0]["event"] == "run.start"
    assert [e["event"] for e in real].count("result") == 1
    assert real[-1]["event"] == "result"
    assert {"node.start", "node.done", "render.progress"} <= {e["event"] for e in real}
    progress = [json.loads(e["data"]) for e in real if e["event"] == "render.progress"]
    assert progress[-1] == {"step": 4, "total": 4}


def test_slow_run_gets_pings_without_ids(api, key, emulator_admin: EmulatorAdmin, photo_uri):
    emulator_admin.set_faults(
        api_key=key.api_key, heartbeat_s=0.1, latency={"steps": 2, "step_ms": 500}
    )
    events = stream(api, "POST", "/v1/workflows/relight/run", json={"input": photo_uri})
    pings = [e for e in events if e["event"] == "ping"]
    assert len(pings) >= 4
    assert all("id" not in p and p["data"] == "{}" for p in pings)
    assert events[-1]["event"] == "result"


def test_replay_after_last_event_id_of_a_finished_run(api, photo_uri):
    events = stream(api, "POST", "/v1/workflows/relight/run", json={"input": photo_uri})
    run_id = events[0]["id"].split(":")[0]
    replay = stream(
        api,
        "GET",
        f"/v1/workflows/runs/{run_id}/events",
        headers={"last-event-id": events[2]["id"]},
    )
    assert replay == events[3:]
    everything = stream(api, "GET", f"/v1/workflows/runs/{run_id}/events")
    assert everything == events


def test_disconnect_does_not_cancel_and_resume_follows_live(
    api, key, emulator_admin: EmulatorAdmin, photo_uri
):
    emulator_admin.set_faults(api_key=key.api_key, latency={"steps": 6, "step_ms": 150})
    headers = {"accept": "text/event-stream"}
    with api.stream(
        "POST", "/v1/workflows/relight/run", json={"input": photo_uri}, headers=headers
    ) as response:
        lines = response.iter_lines()
        first = sse_events(line for line, _ in zip(lines, range(4), strict=False))
    run_id, _seq = first[0]["id"].split(":")
    rest = stream(
        api, "GET", f"/v1/workflows/runs/{run_id}/events", headers={"last-event-id": f"{run_id}:1"}
    )
    assert rest[0]["id"] == f"{run_id}:2"
    assert rest[-1]["event"] == "result"
    assert api.get(f"/v1/workflows/runs/{run_id}").json()["status"] == "succeeded"
    assert emulator_admin.renders(key.org) == 1


def test_a_closed_stream_leaves_the_run_running(api, key, emulator_admin: EmulatorAdmin, photo_uri):
    emulator_admin.set_faults(api_key=key.api_key, latency={"steps": 4, "step_ms": 100})
    headers = {"accept": "text/event-stream"}
    with api.stream(
        "POST", "/v1/workflows/relight/run", json={"input": photo_uri}, headers=headers
    ) as response:
        run_id = response.headers["bkbn-run-id"]
    deadline = time.monotonic() + 10
    while api.get(f"/v1/workflows/runs/{run_id}").json()["status"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_bad_last_event_id_is_a_400(api, photo_uri):
    result = api.post("/v1/workflows/relight/run", json={"input": photo_uri})
    run_id = result.headers["bkbn-run-id"]
    for bad in ("nonsense", "run_other:3", f"{run_id}:x"):
        response = api.get(f"/v1/workflows/runs/{run_id}/events", headers={"last-event-id": bad})
        assert response.status_code == 400


def test_idempotency_key_blocking_renders_once(api, key, emulator_admin: EmulatorAdmin, photo_uri):
    body = {"image": photo_uri, "style": "coastal"}
    headers = {"idempotency-key": "call-1"}
    first = api.post("/v1/staging", json=body, headers=headers)
    second = api.post("/v1/staging", json=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert first.headers["bkbn-run-id"] == second.headers["bkbn-run-id"]
    assert emulator_admin.renders(key.org) == 1
    other = api.post("/v1/staging", json={**body, "style": "japandi"}, headers=headers)
    assert other.status_code == 400
    assert "idempotency" in other.json()["error"]["message"]


def test_idempotency_key_streaming_replays_the_same_run(
    api, key, emulator_admin: EmulatorAdmin, photo_uri
):
    body = {"input": photo_uri}
    headers = {"idempotency-key": "stream-1"}
    first = stream(api, "POST", "/v1/workflows/relight/run", json=body, headers=headers)
    again = stream(api, "POST", "/v1/workflows/relight/run", json=body, headers=headers)
    assert [e for e in again if e["event"] != "ping"] == [e for e in first if e["event"] != "ping"]
    blocking = api.post("/v1/workflows/relight/run", json=body, headers=headers)
    assert blocking.json() == json.loads(first[-1]["data"])
    assert emulator_admin.renders(key.org) == 1


def test_concurrent_retries_with_one_key_render_once(
    emulator_url, key, emulator_admin: EmulatorAdmin, photo_uri
):
    emulator_admin.set_faults(api_key=key.api_key, latency={"steps": 3, "step_ms": 50})
    results: list[int] = []

    def call() -> None:
        response = httpx.post(
            f"{emulator_url}/v1/workflows/relight/run",
            json={"input": photo_uri},
            headers={
                "x-api-key": key.api_key,
                "bkbn-version": "2026-01-01",
                "idempotency-key": "same",
            },
            timeout=30,
        )
        results.append(response.status_code)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 8
    assert emulator_admin.renders(key.org) == 1


def test_latency_model_can_cap_image_size(api, key, emulator_admin: EmulatorAdmin, photo_uri):
    emulator_admin.set_faults(api_key=key.api_key, latency={"max_side": 200})
    result = api.post("/v1/staging", json={"image": photo_uri, "style": "coastal"}).json()
    assert (result["width"], result["height"]) == (200, 150)


def test_a_waiting_blocking_call_does_not_hold_up_others(
    api, key, emulator_admin: EmulatorAdmin, photo_uri
):
    emulator_admin.set_faults(api_key=key.api_key, latency={"steps": 2, "step_ms": 1000})
    outcome: dict[str, float] = {}

    def blocking() -> None:
        started = time.monotonic()
        response = api.post("/v1/workflows/relight/run", json={"input": photo_uri})
        assert response.status_code == 200
        outcome["blocking"] = time.monotonic() - started

    thread = threading.Thread(target=blocking)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert api.get("/v1/workflows/runs/run_x").status_code == 404
    outcome["other"] = time.monotonic() - started
    thread.join()
    assert outcome["blocking"] >= 2.0
    assert outcome["other"] < 1.0  # answered while the blocking call still waited


def events_url(run_id: str) -> str:
    return f"/v1/workflows/runs/{run_id}/events"


def test_last_event_id_that_int_rejects_is_a_400(api, photo_uri):
    run_id = api.post("/v1/workflows/relight/run", json={"input": photo_uri}).headers["bkbn-run-id"]
    # Each passes str.isdigit() but not int(): 5000 digits (past Python's int-string
    # limit), and a superscript two sent as one latin-1 byte, as the server decodes it.
    for bad in (f"{run_id}:{'9' * 5000}".encode(), f"{run_id}:\xb2".encode("latin-1")):
        body = assert_error(
            api.get(events_url(run_id), headers={"last-event-id": bad}),
            400,
            "invalid_request_error",
        )
        assert "last-event-id" in body["error"]["message"]


def test_last_event_id_past_the_end_of_a_finished_run_is_a_400(api, photo_uri):
    events = stream(api, "POST", "/v1/workflows/relight/run", json={"input": photo_uri})
    run_id = events[0]["id"].split(":")[0]
    last = len([e for e in events if "id" in e])
    for seq in (last + 1, 999):
        response = api.get(events_url(run_id), headers={"last-event-id": f"{run_id}:{seq}"})
        body = assert_error(response, 400, "invalid_request_error")
        assert "past the run's last event" in body["error"]["message"]
    assert stream(api, "GET", events_url(run_id), headers={"last-event-id": f"{run_id}:0"}) == (
        events
    )


def test_last_event_id_ahead_of_a_live_run_is_a_400(
    api, key, emulator_admin: EmulatorAdmin, photo_uri
):
    emulator_admin.set_faults(api_key=key.api_key, latency={"steps": 6, "step_ms": 200})
    headers = {"accept": "text/event-stream"}
    with api.stream(
        "POST", "/v1/workflows/relight/run", json={"input": photo_uri}, headers=headers
    ) as live:
        run_id = live.headers["bkbn-run-id"]
        first = sse_events(line for line, _ in zip(live.iter_lines(), range(3), strict=False))
        assert first[0]["id"] == f"{run_id}:1"
        with api.stream(
            "GET", events_url(run_id), headers={"last-event-id": f"{run_id}:999"}
        ) as ahead:
            ahead.read()
            body = assert_error(ahead, 400, "invalid_request_error")
        assert "past the run's last event" in body["error"]["message"]
        assert api.get(f"/v1/workflows/runs/{run_id}").json()["status"] == "running"
