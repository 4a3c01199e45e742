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
* :func:`with_engine` - the project's whole ``Definitions`` on one of these engines:
  every job (the nightly catalogue job, ``listing_media_job`` and the runs the listing
  sensor requests) then runs its steps there. ``BKBN_EXECUTOR`` picks the engine.

Which assets count as GPU assets: those whose ``local`` backend runs a diffusion
pipeline - ``staged_renders`` and ``enhanced_photos`` (declutter inpainting). The
project computes all five media assets of a listing in one op (``listing_media``), so
that op, and with it the listing's whole chain, goes to the GPU queue. With the ``api``
backend nothing needs a GPU, and :func:`with_engine` leaves the tags off.

The deployment files (``deploy/dagster.yaml``, ``deploy/celery.yaml``,
``deploy/helm/values.yaml``) and docs/deploy.md describe the rest.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    Definitions,
    OpDefinition,
    define_asset_job,
)

from .._errors import ConfigError

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

__all__ = [
    "CELERY_QUEUE_TAG",
    "DEFAULT_QUEUE",
    "ENGINES",
    "EXECUTOR_ENV",
    "GPU_ASSET_KEYS",
    "GPU_QUEUE",
    "K8S_CONFIG_TAG",
    "MAIN_ASSET_KEYS",
    "GpuPlacement",
    "build_celery_job",
    "build_k8s_job",
    "engine_executor",
    "gpu_op_tags",
    "main_selection",
    "scaleout_assets",
    "with_engine",
    "with_op_tags",
]

CELERY_QUEUE_TAG = "dagster-celery/queue"
K8S_CONFIG_TAG = "dagster-k8s/config"

#: The queue of steps without a queue tag (dagster-celery's own default).
DEFAULT_QUEUE = "dagster"
GPU_QUEUE = "gpu"

#: The per-listing assets (partitioned by listing), the selection of the scale-out jobs.
MAIN_ASSET_KEYS: tuple[AssetKey, ...] = tuple(
    AssetKey(name)
    for name in (
        "raw_listing_photos",
        "enhanced_photos",
        "staged_renders",
        "floor_plans",
        "brochures",
    )
)

#: Values of ``BKBN_EXECUTOR``.
ENGINES = ("default", "celery", "k8s")
EXECUTOR_ENV = "BKBN_EXECUTOR"

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
    """The per-listing assets, raw photos to brochures (what ``listing_media_job`` runs)."""
    return AssetSelection.assets(*MAIN_ASSET_KEYS)


def _listings_partitions() -> Any:
    from ..assets import LISTINGS

    return LISTINGS


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


def _default_partitions(selection: Any) -> Any:
    # The default selection is the per-listing assets; a custom one brings its own.
    return _listings_partitions() if selection is None else None


def build_celery_job(
    name: str = "listing_media_celery_job",
    *,
    selection: AssetSelection | Sequence[str] | None = None,
    executor_config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    partitions_def: Any = None,
) -> UnresolvedAssetJobDefinition:
    """The per-listing assets as a job whose steps run on Celery workers.

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
        partitions_def=partitions_def
        if partitions_def is not None
        else _default_partitions(selection),
    )


def build_k8s_job(
    name: str = "listing_media_k8s_job",
    *,
    selection: AssetSelection | Sequence[str] | None = None,
    executor_config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    partitions_def: Any = None,
) -> UnresolvedAssetJobDefinition:
    """The per-listing assets as a job whose steps each run in their own Kubernetes Job.

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
        partitions_def=partitions_def
        if partitions_def is not None
        else _default_partitions(selection),
    )


def engine_executor(engine: str, executor_config: Mapping[str, Any] | None = None) -> Any:
    """The executor definition of ``engine`` (``celery`` or ``k8s``), configured if given."""
    if engine == "celery":
        from dagster_celery import celery_executor as executor
    elif engine == "k8s":
        from dagster_k8s import k8s_job_executor as executor
    else:
        raise ConfigError(f"{EXECUTOR_ENV}={engine!r}: expected one of {', '.join(ENGINES)}")
    return executor.configured(dict(executor_config)) if executor_config else executor


def with_engine(
    base: Definitions,
    engine: str | None = None,
    *,
    executor_config: Mapping[str, Any] | None = None,
    gpu_keys: Iterable[AssetKey] | None = None,
    placement: GpuPlacement | None = None,
) -> Definitions:
    """``base`` with every job on ``engine``: ``default``, ``celery`` or ``k8s``.

    ``engine`` defaults to ``BKBN_EXECUTOR`` (unset: ``default``, which returns ``base``
    unchanged). Without ``executor_config`` the jobs read the executor's settings from
    run config (``deploy/celery.yaml``, ``deploy/k8s/run_config.yaml``). GPU routing tags
    go on ``gpu_keys`` (default: :data:`GPU_ASSET_KEYS` when the ``backbone`` resource
    runs the ``local`` backend, none for ``api``).
    """
    engine = (engine or os.environ.get(EXECUTOR_ENV, "") or "default").strip().lower()
    if engine == "default":
        return base
    executor = engine_executor(engine, executor_config)
    if gpu_keys is None:
        backbone = (base.resources or {}).get("backbone")
        gpu_keys = GPU_ASSET_KEYS if getattr(backbone, "backend", None) == "local" else ()
    return Definitions(
        assets=scaleout_assets(base.assets or [], gpu_keys=gpu_keys, placement=placement),
        asset_checks=base.asset_checks,
        jobs=base.jobs,
        schedules=base.schedules,
        sensors=base.sensors,
        resources=base.resources,
        loggers=base.loggers,
        executor=executor,
        metadata=base.metadata,
    )
