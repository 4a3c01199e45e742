"""Each benchmark runs at its smoke size and writes the results it promises.

Correctness only: no figure is checked against a speed (benchmarks/ and
docs/performance.md are for that).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

# benchmarks/ is a folder of scripts at the root of the repository, not part of the
# installed package: make it importable however pytest was started.
REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import (  # noqa: E402
    BENCHMARKS,
    api_throughput,
    local_runtime,
    memory,
    orchestration_overhead,
)


def _read(out: Path, name: str) -> dict:
    data = json.loads((out / f"{name}.json").read_text())
    table = (out / f"{name}.md").read_text()
    assert data["benchmark"] == name
    assert data["quick"] is True
    assert {"cpus", "python", "processor"} <= set(data["machine"])
    assert "|---|" in table
    return data


def test_every_benchmark_is_listed():
    assert set(BENCHMARKS) == {
        "api_throughput",
        "orchestration_overhead",
        "local_runtime",
        "memory",
    }


def test_api_throughput(tmp_path: Path):
    api_throughput.main(["--quick", "--out-dir", str(tmp_path)])
    data = _read(tmp_path, "api_throughput")
    for side in ("pipeline", "baseline"):
        figures = data[side]
        assert figures["success"] is True, figures
        assert figures["listings_done"] == data["params"]["listings"]
        # 2 photos: relight and staging each (POST and download), brochure (POST, 6 files)
        assert figures["admitted"] == 4 * data["params"]["photos_per_listing"] + 7
        assert figures["requests"] == figures["admitted"] + figures["answered_429"]
        assert 0 <= figures["share_429"] <= 1
        assert figures["fraction_of_limit"] > 0
        assert figures["listing_p50_s"] <= figures["listing_p95_s"]
        assert figures["renders"] == 2 * data["params"]["photos_per_listing"] + 1
    assert set(data["goal"]) == {"fraction_of_limit_min", "share_429_max", "met"}


def test_orchestration_overhead(tmp_path: Path):
    orchestration_overhead.main(["--quick", "--out-dir", str(tmp_path)])
    data = _read(tmp_path, "orchestration_overhead")
    modes = {(row["instance"], row["mode"]): row for row in data["rows"]}
    assert set(modes) == {("sqlite", "per_listing"), ("sqlite", "range")}
    for row in modes.values():
        assert row["failed_runs"] == 0
        assert row["brochures"] == row["listings"]
        assert row["s_per_listing"] > 0
        assert row["work_s_per_listing"] > 0
    assert modes["sqlite", "range"]["runs"] == 1
    assert modes["sqlite", "per_listing"]["runs"] == modes["sqlite", "per_listing"]["listings"]


def test_local_runtime(tmp_path: Path):
    local_runtime.main(["--quick", "--out-dir", str(tmp_path)])
    data = _read(tmp_path, "local_runtime")
    cases = {row["case"] for row in data["images"]}
    assert cases == {"relight (graph)", "relight (array)", "palette"}
    assert all(row["mp_per_s"] > 0 for row in data["images"])
    assert [row["chunk_bytes"] for row in data["sse"]] == [64, 4096, 65536]
    assert all(row["events"] == 2000 and row["events_per_s"] > 0 for row in data["sse"])


def test_sse_stream_has_the_events_it_claims():
    from bkbn_pipelines.client._sse import SSEDecoder

    decoder = SSEDecoder()
    events = decoder.feed(local_runtime.synthetic_stream(45)) + decoder.close()
    assert [e.event for e in events] == ["render.progress"] * 45
    assert events[-1].id.endswith(":45")


@pytest.mark.parametrize("mode", ["library"])
def test_memory(tmp_path: Path, mode: str):
    memory.main(["--quick", "--modes", mode, "--out-dir", str(tmp_path)])
    data = _read(tmp_path, "memory")
    rows = data["rows"]
    assert [(r["mode"], r["catalogue_listings"]) for r in rows] == [(mode, 3), (mode, 10)]
    for row in rows:
        assert row["listings"] == row["catalogue_listings"]
        assert row["photos"] == 3 * row["listings"]
        assert row["peak_rss_mib"] >= row["before_mib"] > 0
    assert set(data["by_mode"][mode]) == {
        "peak_ratio",
        "growth_ratio",
        "extra_mib_per_100_listings",
    }
