"""Every Dagster definition loads, and the pieces are wired as documented."""

import importlib
import os

import dagster as dg
import pytest

from bkbn_pipelines.definitions import build_definitions, defs

LISTING_ASSETS = {
    "raw_listing_photos",
    "enhanced_photos",
    "staged_renders",
    "floor_plans",
    "brochures",
}


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {"listing_catalogue", "listing_records", *LISTING_ASSETS}
    assert {j for j in ("nightly_catalogue_job", "listing_media_job")} <= {
        job.name for job in defs.resolve_all_job_defs()
    }
    assert defs.resolve_schedule_def("nightly_schedule").cron_schedule == "0 2 * * *"
    assert defs.resolve_sensor_def("listing_partitions_sensor").job_name == "listing_media_job"


def test_listing_assets_are_partitioned_versioned_pooled_and_retried() -> None:
    graph = defs.resolve_asset_graph()
    for name in LISTING_ASSETS:
        node = graph.get(dg.AssetKey(name))
        assert node.partitions_def.name == "listings"
        assert node.code_version
        assert node.automation_condition is not None
    media = next(
        a
        for a in defs.assets
        if isinstance(a, dg.AssetsDefinition) and dg.AssetKey("brochures") in a.keys
    )
    assert media.node_def.pool == "bkbn_api"
    policy = media.node_def.retry_policy
    assert policy.max_retries == 3 and policy.backoff == dg.Backoff.EXPONENTIAL
    assert policy.jitter == dg.Jitter.PLUS_MINUS
    checks = {(c.asset_key.to_user_string(), c.name): c for c in media.check_specs}
    assert set(checks) == {
        ("staged_renders", "render_resolution"),
        ("floor_plans", "valid_polygons"),
        ("brochures", "pdf_has_pages"),
    }
    assert all(spec.blocking for spec in checks.values())


def test_the_api_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BKBN_API_KEY", "bkbn_sk_from_env_0123456789")
    monkeypatch.setenv("BKBN_BACKEND", "api")
    backbone = build_definitions().resources["backbone"]
    assert "bkbn_sk_from_env" not in repr(backbone)
    monkeypatch.setenv("BKBN_BACKEND", "local")
    assert build_definitions().resources["backbone"].backend == "local"


def test_a_shared_rate_limit_budget_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    redis_url = os.environ.get("BKBN_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
    monkeypatch.setenv("BKBN_BACKEND", "api")
    monkeypatch.setenv("BKBN_API_KEY", "bkbn_sk_from_env_0123456789")
    monkeypatch.setenv("BKBN_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("BKBN_RATELIMIT_REDIS_URL", redis_url)
    monkeypatch.setenv("BKBN_RATELIMIT_REQUESTS", "600")
    backbone = build_definitions().resources["backbone"]
    with dg.build_resources({"backbone": backbone}) as resources:
        pacer = resources.backbone.get_backend().client.pacer
        assert type(pacer).__name__ == "SharedPacer"
        assert pacer._interval == pytest.approx((60 + 0.25) / 599)
        resources.backbone.close()


@pytest.mark.parametrize(
    "module", ["bkbn_pipelines.assets", "bkbn_pipelines.resources", "bkbn_pipelines.jobs"]
)
def test_public_names(module: str) -> None:
    package = importlib.import_module(module)
    assert package.__all__ == sorted(package.__all__, key=lambda n: (not n.isupper(), n))
    for name in package.__all__:
        assert not name.startswith("_")
        assert getattr(package, name) is not None
