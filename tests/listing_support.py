"""Helpers for the Dagster tests: tiny catalogues on disk and runs of the real jobs."""

import contextlib
import csv
import io
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from PIL import Image

from bkbn_pipelines.definitions import build_definitions
from bkbn_pipelines.resources import BackboneResource, MediaStoreResource

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

COLUMNS = (
    "listing_id",
    "address",
    "city",
    "price",
    "currency",
    "beds",
    "baths",
    "area_m2",
    "style",
    "photos",
    "capture",
    "updated_at",
)
LISTING_KEYS = [
    dg.AssetKey(n)
    for n in ("raw_listing_photos", "enhanced_photos", "staged_renders", "floor_plans", "brochures")
]


def tiny_jpeg(seed: int, size: tuple[int, int] = (48, 32)) -> bytes:
    """A small real JPEG whose colour depends on ``seed``."""
    colour = ((seed * 53) % 256, (seed * 97) % 256, (seed * 151) % 256)
    image = Image.new("RGB", size, colour)
    for x in range(0, size[0], 6):  # some structure, so relighting has work to do
        for y in range(size[1]):
            image.putpixel((x, y), (255 - colour[0], colour[1], 255 - colour[2]))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def corrupt_jpeg() -> bytes:
    """A JPEG cut off after its header: decoders must refuse it."""
    return tiny_jpeg(999, (64, 64))[:200]


def write_catalogue(folder: Path, listings: Sequence[Mapping[str, Any]]) -> Path:
    """Write photos and ``catalogue.csv`` under ``folder``.

    Each listing gives ``listing_id`` and ``photos`` (a list of bytes or of
    ``(name, bytes)``); other columns have defaults.
    """
    photos_dir = folder / "photos"
    photos_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, listing in enumerate(listings):
        names = []
        for number, item in enumerate(listing.get("photos", [])):
            name, data = item if isinstance(item, tuple) else (f"p{index}-{number}.jpg", item)
            (photos_dir / name).write_bytes(data)
            names.append(f"photos/{name}")
        row = {
            "listing_id": listing["listing_id"],
            "address": listing.get("address", f"{index + 1} Test Street"),
            "city": listing.get("city", "Testville"),
            "price": listing.get("price", 100000 + index),
            "currency": "EUR",
            "beds": 2,
            "baths": 1,
            "area_m2": 70,
            "style": listing.get("style", "scandi-warm"),
            "photos": ";".join(names),
            "capture": listing.get("capture", ""),
            "updated_at": "2026-12-01T08:00:00Z",
        }
        rows.append(row)
    path = folder / "catalogue.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


_TMPFS = Path("/dev/shm")


@contextlib.contextmanager
def dagster_instance() -> Iterator[dg.DagsterInstance]:
    """``dg.instance_for_test()``, with its SQLite files in memory-backed ``/dev/shm``
    where there is one: the same storage code, without waiting on disk syncs."""
    if _TMPFS.is_dir() and os.access(_TMPFS, os.W_OK):
        with (
            tempfile.TemporaryDirectory(dir=_TMPFS, prefix="bkbn-dagster-") as folder,
            dg.instance_for_test(temp_dir=folder) as instance,
        ):
            yield instance
    else:
        with dg.instance_for_test() as instance:
            yield instance


def make_defs(media_root: Path, backbone: BackboneResource | None = None) -> dg.Definitions:
    return build_definitions(
        backbone=backbone or BackboneResource(backend="local", device="cpu"),
        media_store=MediaStoreResource(root=str(media_root)),
    )


def run_catalogue(
    defs: dg.Definitions, instance: dg.DagsterInstance, source: Path | str, **config: Any
) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("nightly_catalogue_job").execute_in_process(
        instance=instance,
        run_config={"ops": {"listing_catalogue": {"config": {"source": str(source), **config}}}},
    )


def run_listings(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    first: str,
    last: str | None = None,
    *,
    selection: Iterable[str] | None = None,
    config: Mapping[str, Any] | None = None,
) -> dg.ExecuteInProcessResult:
    """``listing_media_job`` over the partition range ``first..last`` in one run."""
    job = defs.resolve_job_def("listing_media_job")
    if selection is not None:
        job = job.get_subset(asset_selection={dg.AssetKey(n) for n in selection})
    return job.execute_in_process(
        instance=instance,
        run_config={"ops": {"listing_media": {"config": dict(config or {})}}},
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last or first,
        },
        raise_on_error=False,
    )


def materializations(
    instance: dg.DagsterInstance, asset: str, partition: str | None = None
) -> list[dg.EventLogRecord]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(asset),
            asset_partitions=[partition] if partition is not None else None,
        ),
        limit=10_000,
    ).records
    return list(records)


def latest_metadata(instance: dg.DagsterInstance, asset: str, partition: str) -> dict[str, Any]:
    records = materializations(instance, asset, partition)
    assert records, f"{asset} {partition} was never materialized"
    metadata = records[0].asset_materialization.metadata
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def stale_status(
    defs: dg.Definitions, instance: dg.DagsterInstance, asset: str, partition: str
) -> str:
    """Dagster's own staleness of one listing of ``asset``: FRESH, STALE or MISSING."""
    from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
    from dagster._core.definitions.data_version import CachingStaleStatusResolver
    from dagster._time import get_current_datetime

    graph = defs.resolve_asset_graph()
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    resolver = CachingStaleStatusResolver(
        instance=instance, asset_graph=graph, loading_context=view
    )
    return resolver.get_status(dg.AssetKey(asset), partition).value


def step_failures(result: dg.ExecuteInProcessResult) -> list[dg.DagsterEvent]:
    return [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]


def failed_listings(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, str]]:
    """The ``failed_listings`` metadata of the step's ``Failure``."""
    out: dict[str, dict[str, str]] = {}
    for event in step_failures(result):
        data = event.step_failure_data.user_failure_data
        if data is not None and "failed_listings" in data.metadata:
            out.update(data.metadata["failed_listings"].value)
    return out


def reexecutable_listing_job() -> dg.JobDefinition:
    """``listing_media_job`` for ``dg.reconstructable``: local backend, store from
    ``BKBN_STORAGE_ROOT``."""
    defs = build_definitions(
        backbone=BackboneResource(backend="local", device="cpu"), media_store=MediaStoreResource()
    )
    return defs.resolve_job_def("listing_media_job")


def reexecute_from_failure(
    instance: dg.DagsterInstance,
    run_id: str,
    selection: Iterable[str] | None = None,
    *,
    job: Any = None,
) -> Any:
    """Re-execute the failed steps of ``run_id`` in this process, as the UI's
    "Re-execute from failure" does (the parent's partition range comes along).
    ``job``: a reconstructable job; by default :func:`reexecutable_listing_job`."""
    parent = instance.get_run_by_id(run_id)
    range_tags = {k: v for k, v in parent.tags.items() if "partition_range" in k}
    job = job or dg.reconstructable(reexecutable_listing_job)
    if selection is not None:
        job = job.get_subset(asset_selection={dg.AssetKey(n) for n in selection})
    return dg.execute_job(
        job,
        instance=instance,
        tags=range_tags,
        reexecution_options=dg.ReexecutionOptions.from_failure(run_id, instance),
        run_config={"execution": {"config": {"in_process": {}}}},
        raise_on_error=False,
    )
