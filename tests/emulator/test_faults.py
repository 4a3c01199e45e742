"""Fault injection per credential: statuses, 429 bursts, broken streams, grants, expiry."""

from __future__ import annotations

import json
import threading
import time
from email.utils import parsedate_to_datetime

import httpx
import pytest

from bkbn_pipelines._contract import API_VERSION
from bkbn_pipelines.emulator import EmulatorConfig, create_app
from bkbn_pipelines.emulator.testing import EmulatorAdmin, TestKey, serve_in_thread

from .conftest import headers_for, sse_events, stream
from .test_basics import assert_error

RUN = "/v1/workflows/relight/run"


def test_fail_the_nth_request(api, key: TestKey, emulator_admin: EmulatorAdmin, photo_uri):
    emulator_admin.set_faults(
        api_key=key.api_key,
        fail=[
            {"nth": 2, "status": 500},
            {"nth": 3, "status": 529, "body": {"custom": True}, "headers": {"x-fault": "yes"}},
        ],
    )
    assert api.post(RUN, json={"input": photo_uri}).status_code == 200
    assert_error(api.post(RUN, json={"input": photo_uri}), 500, "api_error")
    third = api.post(RUN, json={"input": photo_uri})
    assert third.status_code == 529
    assert third.json() == {"custom": True}
    assert third.headers["x-fault"] == "yes"
    assert third.headers["request-id"].startswith("req_")
    assert api.post(RUN, json={"input": photo_uri}).status_code == 200
    assert emulator_admin.renders(key.org) == 2


def test_faults_of_one_key_never_hit_another(
    emulator_url, emulator_admin: EmulatorAdmin, photo_uri
):
    faulty, clean = (
        emulator_admin.new_key(org="org_shared"),
        emulator_admin.new_key(org="org_shared"),
    )
    emulator_admin.set_faults(api_key=faulty.api_key, fail=[{"nth": 1, "status": 500}])
    url = f"{emulator_url}/v1/workflows/runs/run_x"
    assert httpx.get(url, headers=headers_for(clean)).status_code == 404
    assert httpx.get(url, headers=headers_for(faulty)).status_code == 500


def test_rate_limit_burst_with_and_without_retry_after(
    api, key: TestKey, emulator_admin: EmulatorAdmin
):
    url = "/v1/workflows/runs/run_x"
    emulator_admin.set_faults(api_key=key.api_key, rate_limit_burst={"count": 2, "retry_after": 3})
    for _ in range(2):
        response = api.get(url)
        assert_error(response, 429, "rate_limit_error")
        assert response.headers["retry-after"] == "3"
        assert "bkbn-ratelimit-requests-remaining" in response.headers
    assert api.get(url).status_code == 404
    emulator_admin.set_faults(
        api_key=key.api_key, rate_limit_burst={"count": 1, "retry_after": None}
    )
    response = api.get(url)
    assert response.status_code == 429
    assert "retry-after" not in response.headers


def test_retry_after_as_http_date_then_none_then_success(
    api, key: TestKey, emulator_admin: EmulatorAdmin
):
    emulator_admin.set_faults(
        api_key=key.api_key,
        fail=[
            {"nth": 1, "status": 429, "retry_after_http_date": 3},
            {"nth": 2, "status": 429},
        ],
    )
    first = api.get("/v1/workflows/runs/run_x")
    assert first.status_code == 429
    ahead = parsedate_to_datetime(first.headers["retry-after"]).timestamp() - time.time()
    assert 1.5 < ahead <= 3.5
    second = api.get("/v1/workflows/runs/run_x")
    assert second.status_code == 429 and "retry-after" not in second.headers
    assert api.get("/v1/workflows/runs/run_x").status_code == 404


def test_drop_stream_after_n_events_then_resume(
    api, key: TestKey, emulator_admin: EmulatorAdmin, photo_uri
):
    emulator_admin.set_faults(api_key=key.api_key, streams=[{"action": "drop", "after_events": 2}])
    lines: list[str] = []
    with (
        pytest.raises(httpx.TransportError),
        api.stream(
            "POST", RUN, json={"input": photo_uri}, headers={"accept": "text/event-stream"}
        ) as response,
    ):
        for line in response.iter_lines():
            lines.append(line)
    received = sse_events(lines)
    assert len(received) == 2
    run_id = received[0]["id"].split(":")[0]
    rest = stream(
        api,
        "GET",
        f"/v1/workflows/runs/{run_id}/events",
        headers={"last-event-id": received[-1]["id"]},
    )
    assert rest[0]["id"] == f"{run_id}:3"
    assert rest[-1]["event"] == "result"
    assert emulator_admin.renders(key.org) == 1


def test_drop_in_the_middle_of_an_event(
    api, key: TestKey, emulator_admin: EmulatorAdmin, photo_uri
):
    emulator_admin.set_faults(
        api_key=key.api_key, streams=[{"action": "drop_mid_event", "after_events": 1}]
    )
    received = b""
    with (
        pytest.raises(httpx.TransportError),
        api.stream(
            "POST", RUN, json={"input": photo_uri}, headers={"accept": "text/event-stream"}
        ) as response,
    ):
        for chunk in response.iter_raw():
            received += chunk
    whole, _, partial = received.rpartition(b"\n\n")
    assert whole.count(b"id: ") == 1
    assert partial.startswith(b"id: ") and partial
    assert received.endswith(b"\n\n") is False


def test_stall_between_events(api, key: TestKey, emulator_admin: EmulatorAdmin, photo_uri):
    emulator_admin.set_faults(
        api_key=key.api_key,
        heartbeat_s=0.2,
        streams=[{"action": "stall", "after_events": 1, "seconds": 1.0}],
    )
    arrivals = []
    with api.stream(
        "POST", RUN, json={"input": photo_uri}, headers={"accept": "text/event-stream"}
    ) as response:
        for line in response.iter_lines():
            if line.startswith("event:"):
                arrivals.append((time.monotonic(), line))
    gap = arrivals[1][0] - arrivals[0][0]
    assert gap >= 0.9  # no heartbeat during a stall
    assert arrivals[-1][1] == "event: result"


def test_malformed_event_then_the_rest(api, key: TestKey, emulator_admin: EmulatorAdmin, photo_uri):
    emulator_admin.set_faults(
        api_key=key.api_key, streams=[{"action": "malformed", "after_events": 1}]
    )
    events = stream(api, "POST", RUN, json={"input": photo_uri})
    assert events[0]["event"] == "run.start"
    assert events[1]["event"] == "render.progress" and "id" not in events[1]
    with pytest.raises(ValueError):
        json.loads(events[1]["data"])
    assert events[-1]["event"] == "result"


def test_delay_first_byte(api, key: TestKey, emulator_admin: EmulatorAdmin, photo_uri):
    emulator_admin.set_faults(
        api_key=key.api_key, streams=[{"action": "first_byte_delay", "seconds": 0.8}]
    )
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        api.post(
            RUN,
            json={"input": photo_uri},
            headers={"accept": "text/event-stream"},
            timeout=httpx.Timeout(5, read=0.3),
        )
    assert time.monotonic() - started < 0.8
    emulator_admin.set_faults(api_key=key.api_key, first_byte_delay_s=0.5)
    started = time.monotonic()
    assert api.get("/v1/workflows/runs/run_x").status_code == 404
    assert time.monotonic() - started >= 0.45


def test_single_use_grants_allow_one_refresh(
    emulator_url, key: TestKey, emulator_admin: EmulatorAdmin
):
    body = {
        "grant_type": "client_credentials",
        "client_id": key.client_id,
        "client_secret": key.client_secret,
    }
    version = {"bkbn-version": API_VERSION}
    first = httpx.post(f"{emulator_url}/v1/oauth/token", json=body, headers=version)
    assert first.status_code == 200
    emulator_admin.set_faults(client_id=key.client_id, single_use_grants=True)
    refused = httpx.post(f"{emulator_url}/v1/oauth/token", json=body, headers=version)
    assert refused.json()["error"]["code"] == "invalid_grant"
    assert emulator_admin.expire_tokens(client_id=key.client_id) == 1
    statuses: list[int] = []

    def grant() -> None:
        statuses.append(
            httpx.post(f"{emulator_url}/v1/oauth/token", json=body, headers=version).status_code
        )

    threads = [threading.Thread(target=grant) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [400] * 9
    assert emulator_admin.grants(key.client_id) == {"accepted": 2, "refused": 10}


def test_test_endpoints_are_refused_outside_test_mode():
    with serve_in_thread(EmulatorConfig(renderer="latency"), test_mode=False) as url:
        for path in ("/_test/keys", "/_test/faults", "/_test/reset"):
            assert_error(httpx.post(f"{url}{path}", json={}), 403, "permission_error")
        assert_error(httpx.get(f"{url}/_test/stats"), 403, "permission_error")
    config = EmulatorConfig.model_validate(
        {"renderer": "latency", "faults": {"client:c": {"first_byte_delay_s": 1}}}
    )
    with pytest.raises(Exception, match="test mode"):
        create_app(config, test_mode=False)


def test_cli_refuses_fault_config_without_test_mode(tmp_path, capsys):
    import argparse

    from bkbn_pipelines.emulator import _cli

    path = tmp_path / "faults.yaml"
    path.write_text("renderer: latency\nfaults:\n  'client:c': {first_byte_delay_s: 1}\n")
    parser = argparse.ArgumentParser()
    _cli.add_arguments(parser)
    assert _cli.run(parser.parse_args(["--config", str(path)])) == 2
    assert "--test-mode" in capsys.readouterr().err
    broken = tmp_path / "broken.yaml"
    broken.write_text("tiers: {t: {requests_per_minute: 0}}\n")
    assert _cli.run(parser.parse_args(["--config", str(broken)])) == 2
    assert "requests_per_minute" in capsys.readouterr().err


def test_reset_clears_faults(emulator_url, key: TestKey, emulator_admin: EmulatorAdmin):
    emulator_admin.set_faults(api_key=key.api_key, fail=[{"nth": 1, "status": 500}])
    emulator_admin.reset()
    response = httpx.get(f"{emulator_url}/v1/workflows/runs/run_x", headers=headers_for(key))
    assert response.status_code == 404
