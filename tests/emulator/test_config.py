"""Config files: the example and the suite's config load; bad ones name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from bkbn_pipelines._errors import ConfigError
from bkbn_pipelines.emulator import EmulatorConfig, FaultSpec, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_example_and_suite_configs_load():
    example = load_config(ROOT / "examples" / "emulator.yaml")
    assert example.renderer == "runtime"
    assert example.api_keys and example.federation_rules
    suite = load_config(ROOT / "tests" / "emulator_test_config.yaml")
    assert suite.renderer == "latency"
    assert load_config(None) == EmulatorConfig()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("api_keys: [{key: nope, org: o}]\norganizations: [{id: o}]", "bkbn_sk_"),
        ("api_keys: [{key: bkbn_sk_x, org: ghost}]", "ghost"),
        ("organizations: [{id: o, tier: gold}]", "gold"),
        ("heartbeat_s: 30", "heartbeat_s"),
        ("renderer: magic", "renderer"),
        ("- a list", "mapping"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path, text, field):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=field):
        load_config(path)


def test_config_is_frozen():
    config = EmulatorConfig()
    with pytest.raises(ValueError):
        config.renderer = "latency"  # type: ignore[misc]


def test_fault_examples_of_the_docs_are_valid():
    FaultSpec.model_validate({"streams": [{"action": "drop_mid_event", "after_events": 1}]})
    FaultSpec.model_validate(
        {"fail": [{"nth": 1, "status": 429, "retry_after_http_date": 3}, {"nth": 2, "status": 429}]}
    )
    FaultSpec.model_validate({"single_use_grants": True})
    with pytest.raises(ValueError):
        FaultSpec.model_validate({"streams": [{"action": "explode"}]})
