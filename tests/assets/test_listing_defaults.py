"""``BKBN_LISTING_DEFAULTS``: the standard run settings of every listing run, read when
the definitions load, and part of the definitions' code versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json
import dagster as dg
from bkbn_pipelines.assets import ListingMediaConfig, code_versions
from bkbn_pipelines.definitions import build_definitions
graph = build_definitions().resolve_asset_graph()
spec = graph.get(dg.AssetKey("staged_renders"))
config = ListingMediaConfig()
print(json.dumps({
    "resolution": config.resolution,
    "seed": config.seed,
    "spec_version": spec.code_version,
    "versions": code_versions(),
    "two_k": code_versions(ListingMediaConfig(resolution="2k", seed=7)),
}))
"""


def _probe(defaults: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "BKBN_LISTING_DEFAULTS"}
    if defaults is not None:
        env["BKBN_LISTING_DEFAULTS"] = defaults
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )


def test_defaults_from_the_environment_reach_runs_and_code_versions() -> None:
    plain = _probe(None)
    assert plain.returncode == 0, plain.stderr[-2000:]
    before = json.loads(plain.stdout.strip().splitlines()[-1])
    changed = _probe('{"resolution": "2k", "seed": 7}')
    assert changed.returncode == 0, changed.stderr[-2000:]
    after = json.loads(changed.stdout.strip().splitlines()[-1])

    assert (before["resolution"], before["seed"]) == ("1k", 0)
    assert (after["resolution"], after["seed"]) == ("2k", 7)  # a run without config
    # the definitions carry the code version of the new standard settings ...
    assert after["spec_version"] == after["versions"]["staged_renders"]
    assert after["spec_version"] == before["two_k"]["staged_renders"]
    assert after["spec_version"] != before["spec_version"]
    # ... and only the assets those settings shape change
    changed_assets = {k for k, v in after["versions"].items() if before["versions"][k] != v}
    assert changed_assets == {"staged_renders"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not json", "BKBN_LISTING_DEFAULTS is not JSON"),
        ('["2k"]', "must be a JSON object"),
        ('{"resolutoin": "2k"}', "unknown setting(s) resolutoin"),
        ('{"resolution": "8k"}', "BKBN_LISTING_DEFAULTS: "),
    ],
)
def test_a_bad_value_stops_loading_with_a_clear_error(value: str, message: str) -> None:
    result = _probe(value)
    assert result.returncode != 0
    assert "ConfigError" in result.stderr and message in result.stderr, result.stderr[-2000:]
