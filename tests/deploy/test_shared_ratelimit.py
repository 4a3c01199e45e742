"""Two processes, one API key: with the shared pacer the emulator's limit is never hit.

The emulator runs in this process with 2-second rate-limit windows (so the test needs
seconds, not minutes) and a key allowed 8 requests per window. Two worker processes make
12 relight runs each through the api backend at the same moment, 3 windows' worth
together. Every 429 they receive is counted on the wire, before the client's retries
hide it.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import redis
from listing_support import make_defs, materializations, run_catalogue, tiny_jpeg, write_catalogue

from bkbn_pipelines.client._ratelimit import PacerState
from bkbn_pipelines.client._shared_ratelimit import RedisPacerStore, SharedPacer, pacer_key
from bkbn_pipelines.emulator._config import load_config
from bkbn_pipelines.emulator.testing import EmulatorAdmin, serve_in_thread

WORKER = Path(__file__).with_name("ratelimit_worker.py")
EMULATOR_CONFIG = Path(__file__).parents[1] / "emulator_test_config.yaml"
LIMIT = 8
WINDOW_S = 2.0
CALLS = 12


@pytest.fixture(scope="module")
def fast_windows() -> Iterator[tuple[str, EmulatorAdmin]]:
    config = load_config(EMULATOR_CONFIG).model_copy(update={"rate_limit_window_s": WINDOW_S})
    with serve_in_thread(config, test_mode=True) as url, EmulatorAdmin(url) as admin:
        yield url, admin


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    value = f"bkbn-test-{secrets.token_hex(4)}:pacer:"
    yield value
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{value}*"))
    if keys:
        client.delete(*keys)
    client.close()


def _start(url: str, api_key: str, mode: str, start_at: float, extra: list[str]):
    return subprocess.Popen(
        [sys.executable, str(WORKER), url, str(CALLS), mode, str(start_at), *extra],
        env={**os.environ, "BKBN_API_KEY": api_key},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_two_processes_share_one_budget(
    fast_windows: tuple[str, EmulatorAdmin], redis_url: str, prefix: str
) -> None:
    """Two processes on one key with the shared pacer and the key's limit: no 429. At the
    same time, as the control, two processes on another key (same limit) pacing alone,
    each from the headers it sees: together they overrun it."""
    url, admin = fast_windows
    shared = admin.new_key(requests_per_minute=LIMIT, tokens_per_minute=10**9)
    alone = admin.new_key(requests_per_minute=LIMIT, tokens_per_minute=10**9)
    start_at = time.time() + 3.0  # all four are running and have imported by then

    limit = [redis_url, prefix, str(LIMIT), str(WINDOW_S)]
    procs = [_start(url, shared.api_key, "shared", start_at, limit) for _ in "ab"]
    procs += [_start(url, alone.api_key, "local", start_at, []) for _ in "ab"]
    results = [_result(p) for p in procs]
    with_sharing, without = results[:2], results[2:]

    assert [r["ok"] for r in with_sharing] == [CALLS, CALLS]
    assert sum(r["statuses"].get("429", 0) for r in with_sharing) == 0, with_sharing
    assert admin.stats(shared.org)["renders"] == 2 * CALLS

    assert sum(r["statuses"].get("429", 0) for r in without) > 0, without


def test_state_in_redis_names_no_credential(redis_url: str, prefix: str) -> None:
    api_key = "bkbn_sk_live_" + secrets.token_hex(16)
    key = pacer_key("https://api.example", api_key)
    pacer = SharedPacer(key, redis_url=redis_url, prefix=prefix)
    pacer.update(
        {
            "bkbn-ratelimit-requests-limit": "10",
            "bkbn-ratelimit-requests-remaining": "7",
            "bkbn-ratelimit-requests-reset": "30",
        }
    )
    assert pacer.reserve() == 0.0

    client = redis.Redis.from_url(redis_url)
    stored = {k: client.get(k) for k in client.scan_iter(match=f"{prefix}*")}
    client.close()
    assert list(stored) == [f"{prefix}{key}".encode()]  # the lock is released and gone
    assert api_key.encode() not in b"".join([*stored, *stored.values()])
    assert api_key not in repr(pacer)

    # A second process (here: a second pacer) sees the request the first one counted.
    other = RedisPacerStore(redis.Redis.from_url(redis_url), prefix)
    state = other.load(key)
    assert isinstance(state, PacerState)
    assert state.requests_limit == 10 and state.requests_remaining == 6
    pacer.close()


def test_shared_schedule_never_crowds_a_window(redis_url: str, prefix: str) -> None:
    """Send times handed to two pacers of one key: no window holds more than the limit."""
    key = pacer_key("https://api.example", "bkbn_sk_test_" + secrets.token_hex(8))
    pacers = [
        SharedPacer(key, redis_url=redis_url, prefix=prefix, requests=5, window_s=1.0)
        for _ in range(2)
    ]
    sends = sorted(time.time() + pacers[i % 2].reserve() for i in range(20))
    horizon = 1.0 + 0.25  # the window and the slack for network delay
    for i, start in enumerate(sends):
        assert sum(1 for t in sends[i:] if t < start + horizon) <= 5
    # evenly spaced, (1.0 + 0.25) / (5 - 1) apart: no slower than needed
    assert abs((sends[-1] - sends[0]) - 19 * 1.25 / 4) < 0.3

    # a 429's retry-after moves the whole schedule on
    pacers[0].block(3.0)
    assert pacers[1].reserve() >= 2.9
    for pacer in pacers:
        pacer.close()


RUN_WORKER = Path(__file__).parents[1] / "listing_run_worker.py"
ENHANCE = "raw_listing_photos,enhanced_photos"


def test_two_dagster_runs_on_one_key_stay_under_the_limit(
    fast_windows: tuple[str, EmulatorAdmin], redis_url: str, tmp_path: Path
) -> None:
    """Two run workers (as the run launcher or Celery starts them) run the project's
    listing job at once on one key, each with ``BackboneResource``'s shared pacer: the
    emulator answers no 429, though together they need four windows' worth of calls."""
    url, admin = fast_windows
    key = admin.new_key(requests_per_minute=LIMIT, tokens_per_minute=10**9)
    listings = [
        {"listing_id": f"R{n}", "photos": [tiny_jpeg(n * 10 + p) for p in range(2)]}
        for n in range(1, 5)
    ]
    export = write_catalogue(tmp_path / "export", listings)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "BKBN_BASE_URL": url,
        "BKBN_API_KEY": key.api_key,
        "BKBN_STORAGE_ROOT": str(tmp_path / "media"),
        "BKBN_TEST_PACER_REDIS": redis_url,
        "BKBN_TEST_PACER_REQUESTS": str(LIMIT),
        "BKBN_TEST_PACER_WINDOW_S": str(WINDOW_S),
    }
    with dg.DagsterInstance.from_config(str(home)) as instance:
        defs = make_defs(tmp_path / "media")
        run_catalogue(defs, instance, export)
        procs = [
            subprocess.Popen(
                [sys.executable, str(RUN_WORKER), first, last, ENHANCE],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for first, last in (("r1", "r2"), ("r3", "r4"))
        ]
        results = [_result(p) for p in procs]
        assert [r["success"] for r in results] == [True, True]
        for slug in ("r1", "r2", "r3", "r4"):
            assert len(materializations(instance, "enhanced_photos", slug)) == 1
    stats = admin.stats(key.org)
    # 8 relights and 8 downloads of their results: 16 calls, 4 windows of 8
    assert stats["requests"] >= 2 * LIMIT
    assert stats["rate_limited"] == 0, stats
    assert stats["renders"] == 8
