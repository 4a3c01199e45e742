"""Jobs for Dagster's distributed engines: Celery workers and Kubernetes pods.

Moving the pipeline off one machine is a configuration change, not a code change: the
same assets run under a different executor.

* :func:`build_celery_job` - every step becomes a Celery task; steps of GPU assets go to
  their own queue (``dagster-celery/queue``), served by workers on GPU hosts.
* :func:`build_k8s_job` - every step becomes a Kubernetes Job; steps of GPU assets ask
  for GPUs and land on GPU nodes (``dagster-k8s/config``).
* :func:`scaleout_assets` - the assets with the op tags that route their steps: GPU
  assets get :func:`gpu_op_tags` (both engines read only their own tag, so one set of
  tags serves both), others get the default queue.

Which assets count as GPU assets: those whose ``local`` backend runs a diffusion
pipeline - ``staged_renders`` and ``enhanced_photos`` (declutter inpainting). With the
``api`` backend nothing needs a GPU, so the GPU tags belong only in deployments whose
backend is ``local``; :func:`scaleout_assets` is where that choice is made.

The deployment files (``deploy/dagster.yaml``, ``deploy/celery.yaml``,
``deploy/helm/values.yaml``) and docs/deploy.md describe the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    OpDefinition,
    define_asset_job,
)

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

__all__ = [
    "BACKEND_TAG",
    "CELERY_QUEUE_TAG",
    "DEFAULT_QUEUE",
    "GPU_ASSET_KEYS",
    "GPU_QUEUE",
    "K8S_CONFIG_TAG",
    "MAIN_ASSET_KEYS",
    "GpuPlacement",
    "build_celery_job",
    "build_k8s_job",
    "gpu_op_tags",
    "main_selection",
    "scaleout_assets",
    "with_op_tags",
]

CELERY_QUEUE_TAG = "dagster-celery/queue"
K8S_CONFIG_TAG = "dagster-k8s/config"
BACKEND_TAG = "bkbn/backend"

#: The queue of steps without a queue tag (dagster-celery's own default).
DEFAULT_QUEUE = "dagster"
GPU_QUEUE = "gpu"

MAIN_ASSET_KEYS: tuple[AssetKey, ...] = tuple(
    AssetKey(name)
    for name in (
        "listing_catalogue",
        "raw_listing_photos",
        "staged_renders",
        "enhanced_photos",
        "floor_plans",
        "brochures",
    )
)

#: Assets whose ``local`` backend runs a diffusion pipeline on the GPU.
GPU_ASSET_KEYS: tuple[AssetKey, ...] = (AssetKey("staged_renders"), AssetKey("enhanced_photos"))


@dataclass(frozen=True)
class GpuPlacement:
    """Where a GPU step runs: its Celery queue, and its Kubernetes resources and nodes."""

    queue: str = GPU_QUEUE
    gpus: int = 1
    cpu: str = "4"
    memory: str = "24Gi"
    node_selector: Mapping[str, str] = field(
        default_factory=lambda: {"nvidia.com/gpu.present": "true"}
    )
    tolerations: Sequence[Mapping[str, str]] = (
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    )

    def k8s_config(self) -> dict[str, Any]:
        """The ``dagster-k8s/config`` value: GPU limits, node selector, tolerations.

        Its keys replace the same keys of the executor's ``step_k8s_config``
        (``resources``, ``node_selector``, ``tolerations``) instead of merging into them.
        """
        resources = {
            "limits": {"nvidia.com/gpu": self.gpus, "memory": self.memory},
            "requests": {"cpu": self.cpu, "memory": self.memory},
        }
        return {
            # Replace, not merge with, the executor's defaults for every step: a CPU pool
            # node selector merged with the GPU one would match no node.
            "merge_behavior": "SHALLOW",
            "container_config": {"resources": resources},
            "pod_spec_config": {
                "node_selector": dict(self.node_selector),
                "tolerations": [dict(t) for t in self.tolerations],
            },
        }


def gpu_op_tags(placement: GpuPlacement | None = None) -> dict[str, Any]:
    """Op tags that send a step to the GPU queue (Celery) and to a GPU node (Kubernetes)."""
    placement = placement or GpuPlacement()
    return {CELERY_QUEUE_TAG: placement.queue, K8S_CONFIG_TAG: placement.k8s_config()}


def main_selection() -> AssetSelection:
    """The assets of the nightly job, catalogue to brochures."""
    return AssetSelection.assets(*MAIN_ASSET_KEYS)


def with_op_tags(assets_def: AssetsDefinition, tags: Mapping[str, Any]) -> AssetsDefinition:
    """A copy of ``assets_def`` whose op carries ``tags`` on top of its own.

    Dagster has no public way to add op tags to an existing asset; this rebuilds the op
    with the same compute function, ins, outs, config, resources, retry policy, pool and
    code version (pinned to the Dagster version of this project, checked by a test).
    """
    node = assets_def.node_def
    if not isinstance(node, OpDefinition):
        raise TypeError(f"{assets_def.node_def.name}: only op-backed assets can be re-tagged")
    op = OpDefinition.dagster_internal_init(
        compute_fn=node.compute_fn,
        name=node.name,
        ins={d.name: _in_from(d) for d in node.input_defs},
        outs={d.name: _out_from(d) for d in node.output_defs},
        description=node.description,
        config_schema=node.config_schema,
        required_resource_keys=node.required_resource_keys,
        tags={**node.tags, **tags},
        version=None,
        retry_policy=node.retry_policy,
        code_version=node.version,
        pool=node.pool,
    )
    attributes = assets_def.get_attributes_dict()
    attributes["node_def"] = op
    return AssetsDefinition.dagster_internal_init(**attributes)


def _in_from(input_def: Any) -> Any:
    from dagster import In

    return In.from_definition(input_def)


def _out_from(output_def: Any) -> Any:
    from dagster import Out

    return Out.from_definition(output_def)


def scaleout_assets(
    assets: Iterable[Any],
    *,
    gpu_keys: Iterable[AssetKey] = GPU_ASSET_KEYS,
    placement: GpuPlacement | None = None,
) -> list[Any]:
    """``assets`` with GPU routing tags on the GPU assets; everything else unchanged.

    Pass ``gpu_keys=()`` for a deployment on the ``api`` backend, where no step needs a GPU.
    """
    gpu = set(gpu_keys)
    tags = gpu_op_tags(placement)
    out = []
    for item in assets:
        if isinstance(item, AssetsDefinition) and item.is_executable and gpu & set(item.keys):
            item = with_op_tags(item, tags)
        out.append(item)
    return out


def build_celery_job(
    name: str = "bkbn_nightly_celery",
    *,
    selection: AssetSelection | Sequence[str] | None = None,
    executor_config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    partitions_def: Any = None,
) -> UnresolvedAssetJobDefinition:
    """The nightly selection as a job whose steps run on Celery workers.

    ``executor_config`` is the ``execution: config:`` block of ``deploy/celery.yaml``
    (broker, backend, config_source); without it the job reads it from run config.
    """
    from dagster_celery import celery_executor

    executor = celery_executor.configured(dict(executor_config)) if executor_config else None
    return define_asset_job(
        name,
        selection=selection if selection is not None else main_selection(),
        executor_def=executor or celery_executor,
        tags=dict(tags or {}),
        partitions_def=partitions_def,
    )


def build_k8s_job(
    name: str = "bkbn_nightly_k8s",
    *,
    selection: AssetSelection | Sequence[str] | None = None,
    executor_config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    partitions_def: Any = None,
) -> UnresolvedAssetJobDefinition:
    """The nightly selection as a job whose steps each run in their own Kubernetes Job.

    ``executor_config`` follows dagster-k8s's ``k8s_job_executor`` schema
    (``job_namespace``, ``env_secrets``, ``max_concurrent``, ``step_k8s_config`` ...).
    GPU requests come from the GPU assets' ``dagster-k8s/config`` op tags.
    """
    from dagster_k8s import k8s_job_executor

    executor = k8s_job_executor.configured(dict(executor_config)) if executor_config else None
    return define_asset_job(
        name,
        selection=selection if selection is not None else main_selection(),
        executor_def=executor or k8s_job_executor,
        tags=dict(tags or {}),
        partitions_def=partitions_def,
    )
