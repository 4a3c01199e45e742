"""The Kubernetes deployment, checked against dagster-k8s's own schemas (no cluster here).

The step pods are built with the functions the k8s_job_executor itself uses: the
executor's ``step_k8s_config`` merged with each step's ``dagster-k8s/config`` op tag,
then ``construct_dagster_k8s_job``.
"""

from __future__ import annotations

from pathlib import Path

import deploy_pipeline as pipe
import pytest
import yaml
from dagster import validate_run_config
from dagster._config import process_config
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.execution.api import create_execution_plan
from dagster_k8s import k8s_job_executor
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    DagsterK8sJobConfig,
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_user_defined_k8s_config,
)
from deploy_support import DEPLOY
from kubernetes.client import ApiClient

from bkbn_pipelines.jobs._scaleout import GpuPlacement, build_k8s_job, gpu_op_tags, scaleout_assets

GPU_STEPS = {"enhanced_photos", "staged_renders"}


@pytest.fixture(autouse=True)
def _run_pod_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the run pod has (from the Helm values) and passes on to its step pods."""
    monkeypatch.setenv("BKBN_STORAGE_ROOT", "s3://bkbn-media/test")


def _run_config(tmp_path: Path) -> dict:
    config = yaml.safe_load((DEPLOY / "k8s" / "run_config.yaml").read_text())
    config["resources"] = {"scratch": {"config": {"root": str(tmp_path)}}}
    return config


def _unconfigured_k8s_job():
    from dagster import Definitions

    assets = scaleout_assets(
        pipe.ASSETS,
        placement=GpuPlacement(node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"}),
    )
    job = build_k8s_job("k8s_from_run_config", selection=pipe.SELECTION)
    defs = Definitions(assets=assets, jobs=[job], resources=pipe.RESOURCES)
    return defs.resolve_job_def("k8s_from_run_config")


def test_executor_config_is_valid_for_k8s_job_executor(tmp_path: Path) -> None:
    run_config = _run_config(tmp_path)
    execution = run_config["execution"]["config"]
    processed = process_config(k8s_job_executor.config_schema.config_type, execution)
    assert processed.success, processed.errors
    assert processed.value["job_namespace"] == "bkbn"

    job = _unconfigured_k8s_job()
    assert job.executor_def.name == "k8s"
    assert validate_run_config(job, run_config)["execution"]["k8s"]["max_concurrent"] == 16

    # The same checks reject a misspelt key.
    bad = {**run_config, "execution": {"config": {**execution, "job_namepsace": "bkbn"}}}
    with pytest.raises(DagsterInvalidConfigError):
        validate_run_config(job, bad)

    # A job built with its executor config fixed also resolves.
    configured = pipe.k8s_job()
    assert configured.executor_def.name == "k8s"


def test_gpu_tags_validate_against_the_op_tag_schema() -> None:
    tags = gpu_op_tags(GpuPlacement(gpus=2, node_selector={"gpu": "a100"}))
    assert tags["dagster-celery/queue"] == "gpu"
    config = UserDefinedDagsterK8sConfig.from_dict(tags["dagster-k8s/config"])
    assert config.container_config["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert config.pod_spec_config["node_selector"] == {"gpu": "a100"}

    # As the executor reads them: op tags are JSON strings on the step.
    import json

    step_tags = {"dagster-k8s/config": json.dumps(tags["dagster-k8s/config"])}
    assert get_user_defined_k8s_config(step_tags) == config

    wrong = {"dagster-k8s/config": json.dumps({"container_config": {}, "pod_spec": {}})}
    with pytest.raises(DagsterInvalidConfigError):
        get_user_defined_k8s_config(wrong)


def test_step_pods_gpu_only_where_tagged(tmp_path: Path) -> None:
    run_config = _run_config(tmp_path)
    job = _unconfigured_k8s_job()
    plan = create_execution_plan(job, run_config=run_config)
    execution = process_config(
        k8s_job_executor.config_schema.config_type, run_config["execution"]["config"]
    ).value
    executor_context = K8sContainerContext(
        namespace=execution["job_namespace"],
        env_secrets=execution["env_secrets"],
        env_vars=execution["env_vars"],
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(execution["step_k8s_config"]),
    )

    seen = set()
    for step in plan.steps:
        step_config = get_user_defined_k8s_config(step.tags)
        context = executor_context.merge(K8sContainerContext(run_k8s_config=step_config))
        k8s_job = construct_dagster_k8s_job(
            job_config=DagsterK8sJobConfig(
                job_image="registry.example.com/bkbn-pipelines:0.1.0",
                dagster_home="/opt/dagster/dagster_home",
                instance_config_map="dagster-instance",
            ),
            args=["dagster", "api", "execute_step"],
            job_name=f"dagster-step-{step.key.replace('_', '-')}",
            user_defined_k8s_config=context.run_k8s_config,
        )
        pod = ApiClient().sanitize_for_serialization(k8s_job)["spec"]["template"]["spec"]
        container = pod["containers"][0]
        limits = container["resources"]["limits"]
        secret_refs = {e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e}
        assert secret_refs == {"bkbn-api", "bkbn-aws"}
        env_names = {e["name"] for e in container["env"]}
        assert {"BKBN_BACKEND", "HF_HUB_OFFLINE"} <= env_names
        if step.key in GPU_STEPS:
            assert str(limits["nvidia.com/gpu"]) == "1"
            assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
            assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
            assert "cpu" not in pod["nodeSelector"]
        else:
            assert "nvidia.com/gpu" not in limits
            assert pod["nodeSelector"] == {"bkbn.example/pool": "cpu"}
            assert container["resources"]["requests"]["memory"] == "2Gi"
        seen.add(step.key)
    assert seen == {"raw_listing_photos", "photo_index", "brochures"} | GPU_STEPS


def test_helm_values_have_the_essentials() -> None:
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())

    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "bkbn_pipelines.definitions"]
    assert deployment["image"]["tag"] not in ("", "latest")
    env = {e["name"]: e.get("value") for e in deployment["env"]}
    assert env["BKBN_STORAGE_ROOT"].startswith("s3://")
    assert {s["name"] for s in deployment["envSecrets"]} == {"bkbn-api", "bkbn-aws"}
    # No secret value is written in the values file.
    text = (DEPLOY / "helm" / "values.yaml").read_text()
    for name in ("BKBN_API_KEY", "AWS_SECRET_ACCESS_KEY", "postgresqlPassword:"):
        assert f"{name}: " not in text and f"name: {name}" not in text

    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    assert {s["name"] for s in launcher["config"]["k8sRunLauncher"]["envSecrets"]} == {
        "bkbn-api",
        "bkbn-aws",
    }

    pg = values["postgresql"]
    assert pg["enabled"] is False and pg["postgresqlHost"]
    assert values["global"]["postgresqlSecretName"]
    assert values["generatePostgresqlPasswordSecret"] is False

    daemon = values["dagsterDaemon"]
    assert daemon["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert daemon["runRetries"]["enabled"] is True
    assert values["concurrency"]["pools"]["defaultLimit"] >= 1
    assert values["telemetry"]["enabled"] is False
