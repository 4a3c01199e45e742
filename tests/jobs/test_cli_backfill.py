"""Backfills from the command line, as docs/operations.md shows them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
from listing_support import tiny_jpeg, write_catalogue

PROJECT = Path(__file__).resolve().parents[2]


def _dagster(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("dagster")
    return subprocess.run(
        [str(exe), *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=240
    )


def test_partition_range_from_the_command_line(tmp_path: Path) -> None:
    source = write_catalogue(
        tmp_path / "export",
        [{"listing_id": f"R{n}", "photos": [tiny_jpeg(n, (16, 16))]} for n in range(4)],
    )
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "BKBN_STORAGE_ROOT": str(tmp_path / "media"),
        "BKBN_BACKEND": "local",
    }
    config = {"ops": {"listing_catalogue": {"config": {"source": str(source)}}}}
    first = _dagster(
        [
            "asset",
            "materialize",
            "-m",
            "bkbn_pipelines.definitions",
            "--select",
            "listing_catalogue",
            "--config-json",
            json.dumps(config),
        ],
        env,
    )
    assert first.returncode == 0, first.stderr[-2000:]
    second = _dagster(
        [
            "asset",
            "materialize",
            "-m",
            "bkbn_pipelines.definitions",
            "--select",
            "raw_listing_photos",
            "--partition-range",
            "r0...r2",
        ],
        env,
    )
    assert second.returncode == 0, second.stderr[-2000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        done = {
            record.partition_key
            for record in instance.fetch_materializations(
                dg.AssetKey("raw_listing_photos"), limit=100
            ).records
        }
        runs = instance.get_runs()
    assert done == {"r0", "r1", "r2"}
    assert len(runs) == 2  # the range ran as one run
