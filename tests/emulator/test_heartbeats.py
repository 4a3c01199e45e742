"""Renders run off the event loop: 64 concurrent streams keep their heartbeats on time.

A correctness test of non-blocking serving, not a speed test: with a 0.5 s heartbeat,
no stream may go 1 s (twice the interval) without an event or a ping.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import httpx

from bkbn_pipelines._contract import API_VERSION
from bkbn_pipelines.emulator import EmulatorConfig
from bkbn_pipelines.emulator.testing import serve_in_thread

from .conftest import data_uri, photo_bytes

STREAMS = 64
HEARTBEAT = 0.5


async def _follow(client: httpx.AsyncClient, body: dict) -> tuple[float, list[str]]:
    arrivals, kinds = [], []
    async with client.stream(
        "POST", "/v1/workflows/relight/run", json=body, headers={"accept": "text/event-stream"}
    ) as response:
        assert response.status_code == 200
        arrivals.append(time.monotonic())
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                arrivals.append(time.monotonic())
                kinds.append(line.removeprefix("event: "))
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    return max(gaps), kinds


async def _many(url: str, body: dict) -> list[tuple[float, list[str]]]:
    limits = httpx.Limits(max_connections=STREAMS + 4)
    headers = {"x-api-key": "bkbn_sk_heartbeat", "bkbn-version": API_VERSION}
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=30
    ) as client:
        return await asyncio.gather(*(_follow(client, body) for _ in range(STREAMS)))


def test_64_streams_keep_heartbeats_on_time():
    config = EmulatorConfig.model_validate(
        {
            "organizations": [{"id": "o", "tier": "big"}],
            "api_keys": [{"key": "bkbn_sk_heartbeat", "org": "o"}],
            "tiers": {"big": {"requests_per_minute": 10_000, "tokens_per_minute": 10**9}},
            "renderer": "latency",
            "latency": {"delay_ms": 0, "steps": 3, "step_ms": 1000},
            "heartbeat_s": HEARTBEAT,
            "max_concurrent_renders": STREAMS,
        }
    )
    body = {"input": data_uri(photo_bytes((320, 240)))}
    with serve_in_thread(config) as url:
        results = asyncio.run(_many(url, body))
    assert len(results) == STREAMS
    for max_gap, kinds in results:
        assert kinds[-1] == "result"
        assert "ping" in kinds
        assert max_gap < 2 * HEARTBEAT, f"a stream waited {max_gap:.2f} s"
