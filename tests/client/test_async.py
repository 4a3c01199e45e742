"""The asyncio twins of the main paths, over ``httpx.MockTransport``."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time

import httpx
import pytest

from bkbn_pipelines import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    Result,
    RunFailedError,
    RunStart,
    StreamEndedError,
)
from bkbn_pipelines.client import AsyncBackboneClient, Pacer

from ._mock import SSE_HEADERS, Script, Sleeps, error_body, sse

START = sse("run.start", {"run_id": "run_a", "graph": "staging-v2.4"}, "run_a:1")
PROGRESS = sse("render.progress", {"step": 1, "total": 1}, "run_a:2")
RESULT = sse("result", {"url": "u", "ms": 2, "usage": {"tokens": 1}}, "run_a:3")


def aclient(script, sleeps=None, **kwargs) -> AsyncBackboneClient:
    kwargs.setdefault("api_key", "bkbn_sk_async_secret")
    return AsyncBackboneClient(
        base_url="http://api.test",
        transport=httpx.MockTransport(script),
        sleep=sleeps if sleeps is not None else Sleeps(),
        pacer=Pacer("a"),
        **kwargs,
    )


async def achunks(parts, then=None):
    for part in parts:
        yield part
    if then is not None:
        raise then


def test_async_stream_typed_events_and_until_result():
    async def main():
        script = Script(
            httpx.Response(200, headers=SSE_HEADERS, content=START + PROGRESS + RESULT),
            httpx.Response(200, headers=SSE_HEADERS, content=START + RESULT),
        )
        async with aclient(script) as client:
            async with client.workflows.stream("staging", input="data:,x") as stream:
                events = [event async for event in stream]
            result = await client.staging.stream(image="data:,x", style="coastal").until_result()
        return script, events, result

    script, events, result = asyncio.run(main())
    assert isinstance(events[0], RunStart) and isinstance(events[-1], Result)
    assert result.ms == 2
    assert json.loads(script.requests[1].content) == {"image": "data:,x", "style": "coastal"}
    assert script.requests[1].headers["bkbn-version"] == "2026-01-01"


def test_async_case_05_stream_ended():
    async def main():
        script = Script(httpx.Response(200, headers=SSE_HEADERS, content=START + PROGRESS))
        async with aclient(script) as client:
            await client.workflows.stream("staging").until_result()

    with pytest.raises(StreamEndedError) as info:
        asyncio.run(main())
    assert info.value.request_id == "req_test123"


def test_async_drop_resumes_via_replay():
    async def main():
        script = Script(
            httpx.Response(
                200,
                headers=SSE_HEADERS,
                content=achunks([START, PROGRESS[:7]], then=httpx.ReadError("x")),
            ),
            httpx.Response(200, headers=SSE_HEADERS, content=PROGRESS + RESULT),
        )
        async with aclient(script) as client:
            stream = client.workflows.stream("staging")
            events = [e async for e in stream]
        return script, events

    script, events = asyncio.run(main())
    assert [e.id for e in events] == ["run_a:1", "run_a:2", "run_a:3"]
    assert script.requests[1].headers["last-event-id"] == "run_a:1"


def test_async_retry_after_and_errors():
    async def main():
        when = email.utils.formatdate(time.time() + 3, usegmt=True)
        sleeps = Sleeps()
        script = Script(
            httpx.Response(
                429, headers={"retry-after": when}, content=error_body("rate_limit_error", "slow")
            ),
            httpx.Response(429, content=error_body("rate_limit_error", "slow")),
            httpx.Response(200, json={"url": "u", "ms": 1}),
            httpx.Response(400, content=error_body("invalid_request_error", "bad")),
        )
        async with aclient(script, sleeps) as client:
            result = await client.workflows.run("staging", input="data:,x")
            with pytest.raises(BadRequestError):
                await client.workflows.run("staging", input="data:,x")
        return sleeps, result, script

    sleeps, result, script = asyncio.run(main())
    waits = [s for s in sleeps if s > 0.01]
    assert 1.9 < waits[0] <= 3.0 and 0.75 <= waits[1] <= 1.0
    assert result.url == "u" and len(script.requests) == 4


def test_async_error_event_and_connection_error():
    async def main():
        def boom(request):
            raise httpx.ConnectError("refused")

        script = Script(
            httpx.Response(
                200,
                headers=SSE_HEADERS,
                content=START + sse("error", {"type": "api_error", "message": "x"}),
            ),
            boom,
            boom,
            boom,
            httpx.Response(401, content=error_body("authentication_error", "no")),
        )
        async with aclient(script) as client:
            with pytest.raises(RunFailedError):
                await client.workflows.stream("staging").until_result()
            with pytest.raises(APIConnectionError) as info:
                await client.runs.retrieve("run_a")
            assert not isinstance(info.value, httpx.HTTPError)
            with pytest.raises(AuthenticationError):
                async with client.workflows.stream("staging"):
                    pass

    asyncio.run(main())


def test_async_single_flight_token_refresh():
    grants = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/oauth/token":
            grants.append(json.loads(request.content))
            await asyncio.sleep(0.05)
            return httpx.Response(200, json={"access_token": "t1", "expires_in": 900})
        assert request.headers["authorization"] == "Bearer t1"
        return httpx.Response(200, json={"url": "u"})

    async def main():
        async with AsyncBackboneClient(
            base_url="http://api.test",
            client_id="c",
            client_secret="s",
            transport=httpx.MockTransport(handler),
            pacer=Pacer("a2"),
        ) as client:
            await asyncio.gather(
                *[client.workflows.run("staging", input="data:,x") for _ in range(10)]
            )

    asyncio.run(main())
    assert len(grants) == 1


def test_async_files_and_oauth():
    async def main():
        script = Script(
            httpx.Response(200, content=b"\x89PNG", headers={"content-type": "image/png"}),
            httpx.Response(
                200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 5}
            ),
        )
        async with aclient(script) as client:
            art = await client.files.download_artifact("/v1/files/f")
            tok = await client.oauth.token(client_id="c", client_secret="s")
        return art, tok

    art, tok = asyncio.run(main())
    assert art.media_type == "image/png" and art.data == b"\x89PNG"
    assert tok["access_token"] == "t"
