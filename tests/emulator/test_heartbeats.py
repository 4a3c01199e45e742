"""Renders run off the event loop: 64 concurrent streams keep their heartbeats on time.

A correctness test of non-blocking serving, not a speed test: with a 0.5 s heartbeat,
no stream may go 1 s (twice the interval) without an event or a ping.  The 64 streams
are read by a separate process, so the reader never competes with the server for this
process's interpreter lock.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bkbn_pipelines.emulator import EmulatorConfig
from bkbn_pipelines.emulator.testing import serve_in_thread

from .conftest import data_uri, photo_bytes

STREAMS = 64
HEARTBEAT = 0.5
KEY = "bkbn_sk_heartbeat"

READER = r"""
import asyncio, itertools, json, sys, time
import httpx

url, key, streams, body = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])

async def follow(client):
    arrivals, kinds = [], []
    async with client.stream(
        "POST", "/v1/workflows/relight/run", json=body, headers={"accept": "text/event-stream"}
    ) as response:
        assert response.status_code == 200, response.status_code
        arrivals.append(time.monotonic())
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                arrivals.append(time.monotonic())
                kinds.append(line.removeprefix("event: "))
    return {"max_gap": max(b - a for a, b in itertools.pairwise(arrivals)), "kinds": kinds}

async def main():
    headers = {"x-api-key": key, "bkbn-version": "2026-01-01"}
    limits = httpx.Limits(max_connections=streams + 4)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as c:
        return await asyncio.gather(*(follow(c) for _ in range(streams)))

print(json.dumps(asyncio.run(main())))
"""


def test_64_streams_keep_heartbeats_on_time():
    config = EmulatorConfig.model_validate(
        {
            "organizations": [{"id": "o", "tier": "big"}],
            "api_keys": [{"key": KEY, "org": "o"}],
            "tiers": {"big": {"requests_per_minute": 10_000, "tokens_per_minute": 10**9}},
            "renderer": "latency",
            "latency": {"delay_ms": 0, "steps": 3, "step_ms": 1000},
            "heartbeat_s": HEARTBEAT,
            "max_concurrent_renders": STREAMS,
        }
    )
    body = json.dumps({"input": data_uri(photo_bytes((320, 240)))})
    with serve_in_thread(config) as url:
        done = subprocess.run(
            [sys.executable, "-c", READER, url, KEY, str(STREAMS), body],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    assert len(results) == STREAMS
    for stream in results:
        assert stream["kinds"][-1] == "result"
        assert "ping" in stream["kinds"]
        assert stream["max_gap"] < 2 * HEARTBEAT, f"a stream waited {stream['max_gap']:.2f} s"
