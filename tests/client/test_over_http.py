"""The client against the emulator over loopback HTTP: cases 6 to 10 and the endpoints."""

from __future__ import annotations

import base64
import io
import threading
import time

import jwt
import pytest
from PIL import Image

from bkbn_pipelines import (
    AuthenticationError,
    NotFoundError,
    OAuthError,
    RateLimitError,
    RenderProgress,
    Result,
    RunFailedError,
    RunStart,
)
from bkbn_pipelines.client import BackboneClient, Pacer


def _photo_uri() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 60)).save(buf, "JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


PHOTO = _photo_uri()
STAGING = {"style": "scandi-warm"}


@pytest.fixture
def key(emulator_admin):
    return emulator_admin.new_key(oauth_client=True)


@pytest.fixture
def client(emulator_url, key):
    with BackboneClient(api_key=key.api_key, base_url=emulator_url, pacer=Pacer(key.org)) as c:
        yield c


def test_stream_blocking_retrieve_download_over_http(client, emulator_admin, key):
    with client.workflows.stream("staging", input=PHOTO, params=STAGING) as stream:
        events = list(stream)
    assert isinstance(events[0], RunStart) and isinstance(events[-1], Result)
    assert any(isinstance(e, RenderProgress) for e in events)
    assert stream.request_id.startswith("req_")
    result = events[-1]
    assert client.runs.retrieve(stream.run_id)["status"] == "succeeded"
    image = client.files.download_artifact(result.data["outputs"]["image"])
    assert image.media_type == "image/png" and image.data.startswith(b"\x89PNG")
    blocking = client.workflows.run("relight", input=PHOTO)
    assert blocking.url and blocking.data["graph"].startswith("relight")
    staged = client.staging.create(image=PHOTO, style="coastal", resolution="1k", seed=3)
    assert staged.data["graph"].startswith("staging")
    replay = list(client.runs.events(stream.run_id, last_event_id=f"{stream.run_id}:2"))
    assert [e.id for e in replay] == [e.id for e in events[2:]]
    assert emulator_admin.renders(key.org) == 3
    with pytest.raises(NotFoundError):
        client.workflows.run("no-such-graph", input=PHOTO)


def test_case_06_drop_mid_event_resumes_and_renders_once(client, emulator_admin, key):
    emulator_admin.set_faults(
        api_key=key.api_key, streams=[{"action": "drop_mid_event", "after_events": 1}]
    )
    stream = client.workflows.stream("staging", input=PHOTO, params=STAGING)
    events = list(stream)
    assert isinstance(events[-1], Result)
    assert stream.resumes == 1
    ids = [e.id for e in events]
    assert ids == [f"{stream.run_id}:{n}" for n in range(1, len(ids) + 1)]  # none lost, none twice
    assert emulator_admin.renders(key.org) == 1


def test_drop_after_events_resumes_async_too(emulator_url, emulator_admin, key):
    import asyncio

    from bkbn_pipelines.client import AsyncBackboneClient

    emulator_admin.set_faults(api_key=key.api_key, streams=[{"action": "drop", "after_events": 3}])

    async def main():
        async with AsyncBackboneClient(api_key=key.api_key, base_url=emulator_url) as c:
            stream = c.workflows.stream("staging", input=PHOTO, params=STAGING)
            return await stream.until_result(), stream.resumes

    result, resumes = asyncio.run(main())
    assert result.url and resumes == 1
    assert emulator_admin.renders(key.org) == 1


def test_case_09_async_connections_released_on_break_and_raise(emulator_url, key):
    import asyncio
    import gc

    import httpx

    from bkbn_pipelines.client import AsyncBackboneClient

    async def main() -> list[str]:
        timeout = httpx.Timeout(10.0, pool=3.0)  # a leaked pool would time out here
        async with AsyncBackboneClient(
            api_key=key.api_key,
            base_url=emulator_url,
            max_connections=2,
            timeout=timeout,
            max_retries=0,
        ) as c:
            done = c.workflows.stream("staging", input=PHOTO, params=STAGING)
            assert [e async for e in done][-1].type == "result"
            broken = c.workflows.stream("staging", input=PHOTO, params=STAGING)
            async for _event in broken:
                break
            raising = c.workflows.stream("staging", input=PHOTO, params=STAGING)
            with pytest.raises(KeyError):
                async for _event in raising:
                    raise KeyError("consumer bug")
            # the third run succeeds, and so do two more at once: the pool is free
            third = await c.workflows.stream("staging", input=PHOTO, params=STAGING).until_result()
            async with c.workflows.stream("staging", input=PHOTO, params=STAGING) as s:
                await s.__anext__()
            first = c.workflows.stream("staging", input=PHOTO, params=STAGING)
            second = c.workflows.stream("staging", input=PHOTO, params=STAGING)
            async with first, second:
                assert (await first.__anext__()).type == "run.start"
                urls = [(await second.until_result()).url, (await first.until_result()).url]
            assert all(x is not None for x in (done, broken, raising))  # still referenced
            return [third.url, *urls]

    gc.disable()  # release must not wait for the cycle collector
    try:
        urls = asyncio.run(main())
    finally:
        gc.enable()
    assert all(urls)


def test_case_07_401_json_body_on_streaming_post(emulator_url):
    with (
        BackboneClient(api_key="bkbn_sk_not_a_real_key_000", base_url=emulator_url) as c,
        pytest.raises(AuthenticationError) as info,
    ):
        c.workflows.stream("staging", input=PHOTO, params=STAGING).until_result()
    assert info.value.status_code == 401
    assert info.value.error_type == "authentication_error"
    assert info.value.request_id.startswith("req_")
    assert "bkbn_sk_not_a_real_key_000" not in str(info.value)


def test_case_08_retry_after_date_then_bare_429_then_success(emulator_url, emulator_admin, key):
    emulator_admin.set_faults(
        api_key=key.api_key,
        fail=[
            {"nth": 1, "status": 429, "retry_after_http_date": 3},
            {"nth": 2, "status": 429},
        ],
    )
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with BackboneClient(
        api_key=key.api_key, base_url=emulator_url, sleep=sleep, pacer=Pacer(key.org)
    ) as c:
        t0 = time.monotonic()
        result = c.workflows.run("staging", input=PHOTO, params=STAGING)
        elapsed = time.monotonic() - t0
    assert result.url
    retry_waits = [w for w in waits if w > 0.05]
    assert 1.9 < retry_waits[0] <= 3.0  # the HTTP date, whole seconds
    assert 0.75 <= retry_waits[1] <= 1.0  # no header: backoff 0.5 * 2 minus jitter
    assert elapsed >= sum(retry_waits)
    assert emulator_admin.renders(key.org) == 1


def test_retries_exhausted_on_429_raise_rate_limit_error(client, emulator_admin, key):
    emulator_admin.set_faults(api_key=key.api_key, rate_limit_burst={"count": 3, "retry_after": 0})
    with pytest.raises(RateLimitError) as info:
        client.workflows.run("staging", input=PHOTO, params=STAGING)
    assert info.value.status_code == 429 and info.value.error_type == "rate_limit_error"


def test_case_09_connections_released_on_break_and_raise(emulator_url, key):
    import gc

    import httpx

    timeout = httpx.Timeout(10.0, pool=3.0)  # a leaked pool would time out here
    gc.disable()  # release must not wait for the cycle collector
    try:
        with BackboneClient(
            api_key=key.api_key,
            base_url=emulator_url,
            max_connections=2,
            timeout=timeout,
            pacer=Pacer(key.org),
            max_retries=0,
        ) as c:
            # 1: read to the end.
            done = c.workflows.stream("staging", input=PHOTO, params=STAGING)
            assert list(done)[-1].type == "result"
            # 2: broken off after the first event; the stream object stays referenced.
            broken = c.workflows.stream("staging", input=PHOTO, params=STAGING)
            for _event in broken:
                break
            # 3: the consumer raises; the stream object stays referenced.
            raising = c.workflows.stream("staging", input=PHOTO, params=STAGING)
            with pytest.raises(KeyError):
                for _event in raising:
                    raise KeyError("consumer bug")
            # The third run succeeds, and so do two more at once: the pool is free.
            assert c.workflows.stream("staging", input=PHOTO, params=STAGING).until_result()
            with c.workflows.stream("staging", input=PHOTO, params=STAGING) as s:
                next(iter(s))
            with (
                pytest.raises(ValueError),
                c.workflows.stream("staging", input=PHOTO, params=STAGING) as s,
            ):
                for _event in s:
                    raise ValueError("consumer bug")
            first = c.workflows.stream("staging", input=PHOTO, params=STAGING)
            second = c.workflows.stream("staging", input=PHOTO, params=STAGING)
            with first, second:
                assert next(iter(first)).type == "run.start"
                assert second.until_result().url
                assert first.until_result().url
            assert all(x is not None for x in (done, broken, raising))  # still referenced
    finally:
        gc.enable()


def test_case_10_ten_threads_one_refresh(emulator_url, emulator_admin, key):
    with BackboneClient(
        client_id=key.client_id,
        client_secret=key.client_secret,
        base_url=emulator_url,
        pacer=Pacer(key.org),
    ) as c:
        c.workflows.run("relight", input=PHOTO)  # earns the first token
        assert c.token_refreshes == 1
        assert emulator_admin.expire_tokens(client_id=key.client_id) >= 1
        emulator_admin.set_faults(client_id=key.client_id, single_use_grants=True)
        barrier = threading.Barrier(10)
        results, errors = [], []

        def work():
            barrier.wait()
            try:
                results.append(c.workflows.run("relight", input=PHOTO))
            except Exception as exc:  # collected for the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(results) == 10
        assert c.token_refreshes == 2  # one refresh for all ten


def test_idempotency_key_reuse_answers_the_same_run(client, emulator_admin, key):
    first = client.workflows.run("staging", input=PHOTO, params=STAGING, idempotency_key="k-1")
    again = client.workflows.run("staging", input=PHOTO, params=STAGING, idempotency_key="k-1")
    assert first.url == again.url
    stream = client.workflows.stream("staging", input=PHOTO, params=STAGING, idempotency_key="k-2")
    streamed = stream.until_result()
    replayed = client.workflows.stream(
        "staging", input=PHOTO, params=STAGING, idempotency_key="k-2"
    ).until_result()
    assert streamed.url == replayed.url
    assert emulator_admin.renders(key.org) == 2


def test_500_on_post_is_retried_without_second_render(client, emulator_admin, key):
    emulator_admin.set_faults(api_key=key.api_key, fail=[{"nth": 1, "status": 500}])
    client._transport._sleep_override = lambda s: None
    assert client.workflows.stream("staging", input=PHOTO, params=STAGING).until_result().url
    assert emulator_admin.renders(key.org) == 1


def test_oauth_client_credentials_and_refused_grant(emulator_url, key, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    with BackboneClient(
        client_id=key.client_id, client_secret=key.client_secret, base_url=emulator_url
    ) as c:
        token = c.oauth.token(client_id=key.client_id, client_secret=key.client_secret)
        assert token["token_type"].lower() == "bearer" and token["expires_in"] > 0
        assert c.workflows.run("relight", input=PHOTO).url
    with (
        BackboneClient(
            client_id=key.client_id, client_secret="wrong-secret-value", base_url=emulator_url
        ) as c,
        pytest.raises(OAuthError) as info,
    ):
        c.workflows.run("relight", input=PHOTO)
    assert info.value.error_type == "invalid_client"
    assert "wrong-secret-value" not in str(info.value)
    for secret in (key.client_secret, "wrong-secret-value", token["access_token"]):
        assert secret not in caplog.text
    assert "/v1/oauth/token -> 200" in caplog.text


def test_workload_identity_over_http(emulator_url, emulator_admin, key, tmp_path):
    secret = "federation-test-secret-0123456789abcdef"
    rule_id = emulator_admin.add_federation_rule(
        org=key.org, issuer="https://issuer.test", audience="bkbn", hs256_secret=secret
    )
    claims = {"iss": "https://issuer.test", "aud": "bkbn", "sub": "pod", "exp": time.time() + 600}
    path = tmp_path / "token"
    path.write_text(jwt.encode(claims, secret, algorithm="HS256"))
    with BackboneClient(
        federation_rule_id=rule_id, assertion=str(path), base_url=emulator_url
    ) as c:
        assert c.workflows.run("relight", input=PHOTO).url
    expired = jwt.encode({**claims, "exp": time.time() - 60}, secret, algorithm="HS256")
    with (
        BackboneClient(
            federation_rule_id=rule_id, assertion=lambda: expired, base_url=emulator_url
        ) as c,
        pytest.raises(OAuthError) as info,
    ):
        c.workflows.run("relight", input=PHOTO)
    assert info.value.error_type == "invalid_grant"


def test_error_event_becomes_run_failed(client):
    stream = client.workflows.stream("staging", input=PHOTO, params={"style": "baroque"})
    try:
        stream.until_result()
    except RunFailedError as exc:
        assert exc.error_type == "invalid_request_error"
    except Exception as exc:  # some servers refuse bad params before streaming
        assert getattr(exc, "status_code", None) == 400
    else:
        pytest.fail("an unknown style must fail")


def test_heartbeats_keep_a_slow_stream_alive(emulator_url, emulator_admin, key):
    import httpx

    from bkbn_pipelines import Ping

    # Each render step takes longer than the read timeout; only pings fill the gaps.
    emulator_admin.set_faults(
        api_key=key.api_key,
        latency={"delay_ms": 0, "steps": 2, "step_ms": 900},
        heartbeat_s=0.15,
    )
    with BackboneClient(
        api_key=key.api_key,
        base_url=emulator_url,
        timeout=httpx.Timeout(10.0, read=0.6),
        pacer=Pacer(key.org),
    ) as c:
        stream = c.workflows.stream("staging", input=PHOTO, params=STAGING, include_pings=True)
        events = list(stream)
    assert isinstance(events[-1], Result)
    assert sum(isinstance(e, Ping) for e in events) >= 2
    assert stream.resumes == 0


def test_stall_past_the_read_timeout_resumes(emulator_url, emulator_admin, key):
    import httpx

    emulator_admin.set_faults(
        api_key=key.api_key,
        streams=[{"action": "stall", "after_events": 2, "seconds": 2.0}],
        heartbeat_s=5.0,
    )
    with BackboneClient(
        api_key=key.api_key,
        base_url=emulator_url,
        timeout=httpx.Timeout(10.0, read=0.5),
        pacer=Pacer(key.org),
    ) as c:
        stream = c.workflows.stream("staging", input=PHOTO, params=STAGING)
        result = stream.until_result()
    assert result.url and stream.resumes == 1
    assert emulator_admin.renders(key.org) == 1


def test_malformed_event_is_a_stream_error(client, emulator_admin, key):
    from bkbn_pipelines import APIStreamError

    emulator_admin.set_faults(
        api_key=key.api_key, streams=[{"action": "malformed", "after_events": 1}]
    )
    with pytest.raises(APIStreamError) as info:
        client.workflows.stream("staging", input=PHOTO, params=STAGING).until_result()
    assert not isinstance(info.value, httpx_errors())


def test_overall_deadline_ends_a_slow_stream(emulator_url, emulator_admin, key):
    from bkbn_pipelines import APITimeoutError

    emulator_admin.set_faults(
        api_key=key.api_key,
        latency={"delay_ms": 0, "steps": 20, "step_ms": 100},
        heartbeat_s=0.1,
    )
    with BackboneClient(
        api_key=key.api_key, base_url=emulator_url, deadline=0.5, pacer=Pacer(key.org)
    ) as c:
        t0 = time.monotonic()
        with pytest.raises(APITimeoutError, match="deadline"):
            c.workflows.stream("staging", input=PHOTO, params=STAGING).until_result()
        assert time.monotonic() - t0 < 1.5


def httpx_errors():
    import httpx

    return (httpx.HTTPError, httpx.StreamError)


def test_floor_plans_and_brochures_endpoints(client):
    plan = client.floor_plans.create(video=PHOTO, units="imperial")
    assert plan.data["graph"].startswith("floor-plan") and plan.url
    streamed = client.floor_plans.stream(video=PHOTO).until_result()
    assert streamed.data["graph"].startswith("floor-plan")
    listing = {"address": "7 Grande Rue, Besançon", "price": 199000, "beds": 2}
    brochure = client.brochures.create(listing=listing, photos=[PHOTO, PHOTO])
    assert brochure.data["graph"].startswith("brochure")
    assert {"pdf", "html"} <= set(brochure.data["outputs"])
    events = list(client.brochures.stream(listing=listing, photos=[PHOTO]))
    assert isinstance(events[-1], Result)


def test_case_10_async_ten_tasks_one_refresh(emulator_url, emulator_admin, key):
    import asyncio

    from bkbn_pipelines.client import AsyncBackboneClient

    async def main():
        async with AsyncBackboneClient(
            client_id=key.client_id,
            client_secret=key.client_secret,
            base_url=emulator_url,
            pacer=Pacer(key.org),
        ) as c:
            await c.workflows.run("relight", input=PHOTO)
            emulator_admin.expire_tokens(client_id=key.client_id)
            emulator_admin.set_faults(client_id=key.client_id, single_use_grants=True)
            results = await asyncio.gather(
                *[c.workflows.run("relight", input=PHOTO) for _ in range(10)]
            )
            return results, c.token_refreshes

    results, refreshes = asyncio.run(main())
    assert len(results) == 10 and all(r.url for r in results)
    assert refreshes == 2


def test_version_header_is_pinned_and_checked(emulator_url, key):
    from bkbn_pipelines import BadRequestError

    with (
        BackboneClient(api_key=key.api_key, base_url=emulator_url, version="1999-01-01") as c,
        pytest.raises(BadRequestError) as info,
    ):
        c.workflows.run("relight", input=PHOTO)
    assert info.value.status_code == 400 and "version" in info.value.message


def test_blocking_post_retried_after_500_renders_once(client, emulator_admin, key):
    emulator_admin.set_faults(api_key=key.api_key, fail=[{"nth": 1, "status": 503}])
    client._transport._sleep_override = lambda s: None
    assert client.workflows.run("staging", input=PHOTO, params=STAGING).url
    assert emulator_admin.renders(key.org) == 1


def test_drop_before_the_first_event_reposts_with_the_same_key_and_renders_once(
    client, emulator_admin, key
):
    # The server has started the run when the connection drops before any event: the
    # POST is sent again with the same idempotency key and answered with that run.
    emulator_admin.set_faults(api_key=key.api_key, streams=[{"action": "drop", "after_events": 0}])
    client._transport._sleep_override = lambda s: None
    stream = client.workflows.stream("staging", input=PHOTO, params=STAGING)
    events = list(stream)
    assert isinstance(events[0], RunStart) and isinstance(events[-1], Result)
    assert stream.resumes == 0
    assert emulator_admin.renders(key.org) == 1
