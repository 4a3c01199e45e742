"""A small listing pipeline for the deployment tests, loaded by file path by Celery workers.

Shaped like the product's nightly job: per-listing partitions of one dynamic partitions
definition, photos made and stored per listing, two steps that run side by side after
them (so two idle workers both get work), a GPU step tagged for the ``gpu`` queue and a
last step that joins them. Each step does small real work on real images (Pillow) and
leaves a record of where it ran: worker name, pid, attempt.

The ``scratch`` resource tells steps where to write and which listings misbehave: one
fails its first attempt (the retry policy must carry it), one is slow on its first
attempt (so a test can kill the worker running it).
"""

import hashlib
import io
import json
import os
import time
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    ConfigurableResource,
    Definitions,
    DynamicPartitionsDefinition,
    MaterializeResult,
    RetryPolicy,
    asset,
)
from PIL import Image, ImageOps

from bkbn_pipelines.jobs._scaleout import (
    GpuPlacement,
    build_celery_job,
    build_k8s_job,
    gpu_op_tags,
    scaleout_assets,
)

listings = DynamicPartitionsDefinition(name="listings")


class Scratch(ConfigurableResource):
    root: str
    flaky_listing: str = ""
    slow_listing: str = ""
    slow_seconds: float = 4.0

    def record(self, context: AssetExecutionContext, **extra: object) -> dict[str, object]:
        row = {
            "step": context.op_handle.name,
            "listing": context.partition_key,
            "worker": os.environ.get("BKBN_WORKER_NAME", "orchestrator"),
            "pid": os.getpid(),
            "attempt": context.retry_number,
            "run_id": context.run_id,
            **extra,
        }
        folder = Path(self.root, "records")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{row['step']}-{row['listing']}-{os.getpid()}-{time.time_ns()}.json"
        tmp = folder / f".{name}"
        tmp.write_text(json.dumps(row))
        tmp.rename(folder / name)  # readers never see half a record
        return row

    def listing_dir(self, listing: str) -> Path:
        path = Path(self.root, "media", listing)
        path.mkdir(parents=True, exist_ok=True)
        return path


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@asset(partitions_def=listings, pool="bkbn_api")
def raw_listing_photos(context: AssetExecutionContext, scratch: Scratch) -> list[str]:
    """Three small photos per listing, coloured from the listing id."""
    seed = hashlib.sha256(context.partition_key.encode()).digest()
    paths = []
    for i in range(3):
        colour = (seed[i], seed[i + 3], seed[i + 6])
        img = Image.new("RGB", (64, 48), colour)
        img.paste((255 - colour[0], 40, 90), (8 * i, 8, 8 * i + 20, 30))
        path = scratch.listing_dir(context.partition_key) / f"photo-{i}.png"
        path.write_bytes(_png(img))
        paths.append(str(path))
    scratch.record(context)
    return paths


@asset(partitions_def=listings, retry_policy=RetryPolicy(max_retries=2, delay=0.2))
def enhanced_photos(
    context: AssetExecutionContext, scratch: Scratch, raw_listing_photos: list[str]
) -> list[str]:
    """Auto-contrast each photo; the flaky listing fails once, the slow one stalls once."""
    listing = context.partition_key
    marker = Path(scratch.root, f"seen-{context.op_handle.name}-{listing}")
    first_time = not marker.exists()
    marker.touch()
    row = scratch.record(context, phase="start")
    if listing == scratch.slow_listing and first_time:
        Path(scratch.root, "slow-step-started.json").write_text(json.dumps(row))
        time.sleep(scratch.slow_seconds)
    if listing == scratch.flaky_listing and first_time:
        raise RuntimeError(f"listing {listing}: transient failure (first attempt)")
    out = []
    for src in raw_listing_photos:
        img = ImageOps.autocontrast(Image.open(src).convert("RGB"))
        dst = Path(src).with_name(Path(src).stem + "-enhanced.png")
        dst.write_bytes(_png(img))
        out.append(str(dst))
    scratch.record(context, phase="done")
    return out


@asset(partitions_def=listings)
def photo_index(
    context: AssetExecutionContext, scratch: Scratch, raw_listing_photos: list[str]
) -> dict[str, str]:
    """Content hashes of the listing's photos (runs beside ``enhanced_photos``)."""
    time.sleep(1.0)  # long enough that the sibling step is taken by the other worker
    scratch.record(context)
    return {
        Path(p).name: hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in raw_listing_photos
    }


@asset(partitions_def=listings, op_tags=gpu_op_tags())
def staged_renders(
    context: AssetExecutionContext, scratch: Scratch, raw_listing_photos: list[str]
) -> list[str]:
    """Stands in for the diffusion step: tagged for the GPU queue and GPU nodes."""
    out = []
    for src in raw_listing_photos:
        img = ImageOps.posterize(Image.open(src).convert("RGB"), 3)
        dst = Path(src).with_name(Path(src).stem + "-staged.png")
        dst.write_bytes(_png(img))
        out.append(str(dst))
    scratch.record(context)
    return out


@asset(partitions_def=listings)
def brochures(
    context: AssetExecutionContext,
    scratch: Scratch,
    enhanced_photos: list[str],
    photo_index: dict[str, str],
    staged_renders: list[str],
) -> MaterializeResult:
    """A contact sheet of the listing's outputs."""
    images = [Image.open(p).convert("RGB") for p in [*enhanced_photos, *staged_renders]]
    sheet = Image.new("RGB", (64 * len(images), 48), "white")
    for i, img in enumerate(images):
        sheet.paste(img, (64 * i, 0))
    path = scratch.listing_dir(context.partition_key) / "sheet.png"
    path.write_bytes(_png(sheet))
    row = scratch.record(context)
    return MaterializeResult(
        metadata={"worker": str(row["worker"]), "photos": len(photo_index), "path": str(path)}
    )


ASSETS = [raw_listing_photos, enhanced_photos, photo_index, staged_renders, brochures]
SELECTION = [a.key.to_user_string() for a in ASSETS]
RESOURCES = {"scratch": Scratch.configure_at_launch()}


def celery_job():
    """The Celery job, resolved (what the workers load by file path)."""
    job = build_celery_job("deploy_test_celery", selection=SELECTION)
    defs = Definitions(assets=ASSETS, jobs=[job], resources=RESOURCES)
    return defs.resolve_job_def("deploy_test_celery")


def k8s_job():
    """The Kubernetes job over the same assets, GPU tags added by ``scaleout_assets``."""
    assets = scaleout_assets(
        ASSETS,
        placement=GpuPlacement(node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"}),
    )
    job = build_k8s_job(
        "deploy_test_k8s",
        selection=SELECTION,
        executor_config={"job_namespace": "bkbn", "max_concurrent": 8},
    )
    return Definitions(assets=assets, jobs=[job], resources=RESOURCES).resolve_job_def(
        "deploy_test_k8s"
    )


def real_listing_celery_job():
    """The project's own ``listing_media_job`` on Celery, settings from the environment."""
    from bkbn_pipelines.definitions import build_definitions
    from bkbn_pipelines.jobs._scaleout import with_engine

    return with_engine(build_definitions(), "celery").resolve_job_def("listing_media_job")
