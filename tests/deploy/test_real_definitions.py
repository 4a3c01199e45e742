"""The project's own definitions moved onto Celery or Kubernetes by ``with_engine``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, validate_run_config
from dagster._core.execution.api import create_execution_plan
from dagster_k8s.job import get_user_defined_k8s_config
from deploy_support import DEPLOY

from bkbn_pipelines._errors import ConfigError
from bkbn_pipelines.definitions import build_definitions
from bkbn_pipelines.jobs._scaleout import (
    EXECUTOR_ENV,
    MAIN_ASSET_KEYS,
    build_celery_job,
    build_k8s_job,
    with_engine,
)
from bkbn_pipelines.resources import BackboneResource, MediaStoreResource


def _defs(tmp_path: Path, backend: str):
    backbone = (
        BackboneResource(backend="local", device="cpu")
        if backend == "local"
        else BackboneResource(backend="api", base_url="http://127.0.0.1:9", api_key="k")
    )
    return build_definitions(
        backbone=backbone, media_store=MediaStoreResource(root=str(tmp_path / "media"))
    )


def _media_op_tags(defs) -> dict[str, str]:
    job = defs.resolve_job_def("listing_media_job")
    return dict(job.graph.node_named("listing_media").definition.tags)


@pytest.mark.parametrize("engine", ["celery", "k8s"])
def test_every_job_runs_on_the_engine(tmp_path: Path, engine: str) -> None:
    base = _defs(tmp_path, "local")
    defs = with_engine(base, engine)
    for name in ("nightly_catalogue_job", "listing_media_job"):
        assert defs.resolve_job_def(name).executor_def.name == engine
    # schedule and sensor are kept, so the sensor's runs use the engine too
    assert {s.name for s in defs.schedules} == {s.name for s in base.schedules}
    assert {s.name for s in defs.sensors} == {s.name for s in base.sensors}

    tags = _media_op_tags(defs)
    assert tags["dagster-celery/queue"] == "gpu"
    config = get_user_defined_k8s_config(tags)
    assert config.container_config["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert tags["bkbn/uses_api"] == "true"  # the op's own tags are kept
    # the re-tagged op keeps its pool and retry policy
    op = defs.resolve_job_def("listing_media_job").graph.node_named("listing_media").definition
    assert op.pool == "bkbn_api" and op.retry_policy is not None


def test_api_backend_gets_no_gpu_tags_and_default_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = _defs(tmp_path, "api")
    tags = _media_op_tags(with_engine(base, "celery"))
    assert "dagster-celery/queue" not in tags and "dagster-k8s/config" not in tags

    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    assert with_engine(base) is base
    monkeypatch.setenv(EXECUTOR_ENV, "k8s")
    assert with_engine(base).resolve_job_def("listing_media_job").executor_def.name == "k8s"
    with pytest.raises(ConfigError, match="BKBN_EXECUTOR"):
        with_engine(base, "spark")


def test_listing_media_on_k8s_validates_and_asks_for_a_gpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BKBN_STORAGE_ROOT", "s3://bkbn-media/test")
    defs = with_engine(_defs(tmp_path, "local"), "k8s")
    job = defs.resolve_job_def("listing_media_job")
    run_config = yaml.safe_load((DEPLOY / "k8s" / "run_config.yaml").read_text())
    validated = validate_run_config(job, run_config)
    assert validated["execution"]["k8s"]["job_namespace"] == "bkbn"

    plan = create_execution_plan(job, run_config=run_config)
    (step,) = [s for s in plan.steps if s.key == "listing_media"]
    limits = get_user_defined_k8s_config(step.tags).container_config["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == 1
    assert json.loads(step.tags["dagster-k8s/config"])["merge_behavior"] == "SHALLOW"


def test_job_builders_default_to_the_listing_assets() -> None:
    for build, executor in ((build_celery_job, "celery"), (build_k8s_job, "k8s")):
        job = build()
        assert job.partitions_def is not None and job.partitions_def.name == "listings"
        assert job.executor_def.name == executor
    assert set(MAIN_ASSET_KEYS) == {
        AssetKey(n)
        for n in (
            "raw_listing_photos",
            "enhanced_photos",
            "staged_renders",
            "floor_plans",
            "brochures",
        )
    }


def test_workspace_definitions_follow_bkbn_executor() -> None:
    """``bkbn_pipelines.definitions.defs`` (what workspace.yaml loads) on each engine."""
    import os
    import subprocess
    import sys

    from bkbn_pipelines.definitions import defs

    if not os.environ.get(EXECUTOR_ENV):
        name = defs.resolve_job_def("listing_media_job").executor_def.name
        assert name == "multi_or_in_process_executor"
    code = (
        "from bkbn_pipelines.definitions import defs\n"
        "for job in ('listing_media_job', 'nightly_catalogue_job'):\n"
        "    print(defs.resolve_job_def(job).executor_def.name)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, EXECUTOR_ENV: "k8s"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["k8s", "k8s"]
