"""The nightly run outside the Dagster daemon: what ``bkbn nightly`` and ``bkbn demo`` do.

:func:`run_nightly` materialises ``listing_catalogue`` (which registers the listing
partitions), then runs ``listing_media_job`` over the listings that are new, changed
or not yet finished, one run per contiguous range of partitions (usually one run for
all), in the Dagster instance of ``DAGSTER_HOME``, so ``dagster dev`` shows the
history afterwards.  It returns a :class:`NightlySummary` read back from the
manifests the assets wrote.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import AssetKey, DagsterInstance
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from ..assets import LISTINGS
from ..assets._work import NO_WEIGHTS_HELP, REAL_WEIGHTS_HELP
from ..catalogue import read_snapshot
from ..resources import BackboneResource, MediaStoreResource
from ._console import concise_console_logger

__all__ = ["ListingSummary", "NightlySummary", "contiguous_ranges", "run_nightly"]

_BROCHURES = AssetKey("brochures")
#: Run-log lines shown on the console: INFO and above, one line each (the event log
#: keeps everything, stack traces included).
_QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
_CONSOLE = {"console": concise_console_logger}


@dataclass(frozen=True)
class ListingSummary:
    slug: str
    listing_id: str
    photos: int
    photo_failures: int
    enhanced: int
    renders: int
    render_weights: str
    floor_plan: bool
    brochure_pdf: str | None
    status: str
    #: ``(photo, error)`` of each photo that could not be used.
    photo_errors: tuple[tuple[str, str], ...] = ()


@dataclass
class NightlySummary:
    listings: list[ListingSummary] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    processed: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    staging_note: str | None = None
    #: Catalogue rows that were not used: ``{"row", "listing_id", "reason"}`` each.
    rejected: list[dict[str, Any]] = field(default_factory=list)
    #: Rejected rows beyond those listed in ``rejected``.
    more_rejected: int = 0

    @property
    def ok(self) -> bool:
        """No listing failed and no catalogue row was rejected."""
        return not self.failures and not self.rejected

    def totals(self) -> dict[str, int]:
        return {
            "listings": len(self.listings),
            "photos": sum(item.photos for item in self.listings),
            "renders": sum(item.renders for item in self.listings),
            "failed_listings": len(self.failures),
            "failed_photos": sum(item.photo_failures for item in self.listings),
            "rejected_rows": len(self.rejected) + self.more_rejected,
        }


def contiguous_ranges(keys: Sequence[str], wanted: set[str]) -> list[tuple[str, str]]:
    """Group ``wanted`` keys into runs of neighbours in partition order ``keys``."""
    ranges: list[tuple[str, str]] = []
    start = end = None
    for key in keys:
        if key in wanted:
            start = start or key
            end = key
        elif start is not None:
            ranges.append((start, end))  # type: ignore[arg-type]
            start = end = None
    if start is not None:
        ranges.append((start, end))  # type: ignore[arg-type]
    return ranges


def run_nightly(
    catalogue: str,
    *,
    backbone: BackboneResource,
    media_store: MediaStoreResource | None = None,
    instance: DagsterInstance | None = None,
    s3_endpoint_url: str | None = None,
    listing_config: Mapping[str, Any] | None = None,
    everything: bool = False,
    progress: Callable[[str], None] | None = None,
) -> NightlySummary:
    """Catalogue, partitions, then the per-listing assets; returns the summary.

    ``progress`` receives one line per stage (the CLI prints them).
    """
    say = progress or (lambda line: None)
    from ..definitions import build_definitions

    started = time.monotonic()
    media_store = media_store or MediaStoreResource()
    instance = instance or DagsterInstance.get()
    defs = build_definitions(backbone=backbone, media_store=media_store)
    summary = NightlySummary()

    catalogue_config: dict[str, Any] = {"source": catalogue}
    if s3_endpoint_url:
        catalogue_config["s3_endpoint_url"] = s3_endpoint_url
    result = _console(defs.resolve_job_def("nightly_catalogue_job")).execute_in_process(
        instance=instance,
        run_config={
            "ops": {"listing_catalogue": {"config": catalogue_config}},
            **_QUIET,
        },
    )
    summary.run_ids.append(result.run_id)
    summary.rejected, summary.more_rejected = _rejected(result)

    keys = list(instance.get_dynamic_partitions(LISTINGS.name))
    snapshot = read_snapshot(media_store.store())
    current = [str(s) for s in snapshot["slug"]] if snapshot is not None else []
    wanted = set(current) if everything else _to_run(instance, result, current)
    summary.processed = [k for k in keys if k in wanted]
    ranges = contiguous_ranges(keys, wanted)
    say(
        f"catalogue: {len(current)} listings; {len(summary.processed)} to process "
        f"in {len(ranges)} run(s)"
    )

    job = _console(defs.resolve_job_def("listing_media_job"))
    run_config = {"ops": {"listing_media": {"config": dict(listing_config or {})}}, **_QUIET}
    for first, last in ranges:
        span = f"listing {first}" if first == last else f"listings {first} ... {last}"
        say(f"{span}: running")
        media = job.execute_in_process(
            instance=instance,
            run_config=run_config,
            tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
            raise_on_error=False,
        )
        summary.run_ids.append(media.run_id)
        summary.failures.update(_failures(media))
        say(f"{span}: {'done' if media.success else 'some failed'}")

    summary.listings = _listing_summaries(media_store, snapshot, summary.failures)
    summary.seconds = time.monotonic() - started
    if any(item.render_weights == "untrained" for item in summary.listings):
        summary.staging_note = (
            "Staged renders were made WITHOUT real model weights, on an untrained model: "
            "they are noise and were left out of the brochures. For real staging, "
            f"{REAL_WEIGHTS_HELP}."
        )
    elif any(item.render_weights == "none" and item.renders == 0 for item in summary.listings):
        summary.staging_note = f"Staging was skipped: {NO_WEIGHTS_HELP}."
    return summary


def _console(job: Any) -> Any:
    """``job`` with the one-line console logger in place of Dagster's."""
    return job.with_logger_defs(_CONSOLE)


def _rejected(result: Any) -> tuple[list[dict[str, Any]], int]:
    """The rejected rows the catalogue run reported, and how many more it did not list."""
    materialization = next((m for m in result.get_asset_materialization_events()), None)
    metadata = materialization.materialization.metadata if materialization else {}
    count = getattr(metadata.get("rejected"), "value", 0) or 0
    listed = getattr(metadata.get("rejected_list"), "value", None) or []
    return list(listed), max(int(count) - len(listed), 0)


def _to_run(instance: DagsterInstance, result: Any, current: list[str]) -> set[str]:
    """New and changed listings, and those without a brochure yet."""
    materialization = next((m for m in result.get_asset_materialization_events()), None)
    metadata = materialization.materialization.metadata if materialization else {}
    wanted: set[str] = set()
    for name in ("new_listings", "changed_listings", "reported_listings"):
        value = metadata.get(name)
        data = getattr(value, "value", None) if value is not None else None
        if isinstance(data, dict):
            data = data.get("slugs", [])
        wanted.update(str(s) for s in data or [])
    for slug in current:
        if slug in wanted:
            continue
        record = instance.get_latest_data_version_record(
            _BROCHURES, is_source=False, partition_key=slug
        )
        if record is None:
            wanted.add(slug)
    return wanted & set(current)


def _failures(result: Any) -> dict[str, str]:
    failures: dict[str, str] = {}
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        data = event.step_failure_data
        metadata = getattr(getattr(data, "user_failure_data", None), "metadata", None) or {}
        listed = metadata.get("failed_listings")
        value = getattr(listed, "value", None)
        if isinstance(value, dict):
            for slug, info in value.items():
                failures[slug] = f"{info.get('asset')}: {info.get('error')}"
        elif data is not None and data.error is not None:
            failures["(run)"] = data.error.message.strip().splitlines()[0]
    return failures


def _listing_summaries(
    media_store: MediaStoreResource, snapshot: Any, failures: Mapping[str, str]
) -> list[ListingSummary]:
    if snapshot is None:
        return []
    store = media_store.store()
    frames = {
        name: store.read_manifest(name)
        for name in (
            "raw_listing_photos",
            "enhanced_photos",
            "staged_renders",
            "floor_plans",
            "brochures",
        )
    }

    def rows(name: str, slug: str) -> Any:
        frame = frames[name]
        if frame.empty or "listing" not in frame.columns:
            return frame.iloc[0:0]
        return frame[frame["listing"].astype(str) == slug]

    out = []
    for record in snapshot.to_dict(orient="records"):
        slug = str(record["slug"])
        raw = rows("raw_listing_photos", slug)
        ok = raw[raw["status"] == "ok"] if "status" in raw.columns else raw
        staged = rows("staged_renders", slug)
        weights = sorted({str(w) for w in staged.get("weights", []) if w is not None})
        brochures = rows("brochures", slug)
        pdf = brochures[brochures["output"] == "pdf"] if "output" in brochures.columns else None
        pdf_uri = str(pdf["uri"].iloc[0]) if pdf is not None and len(pdf) else None
        out.append(
            ListingSummary(
                slug=slug,
                listing_id=str(record["listing_id"]),
                photos=len(ok),
                photo_failures=len(raw) - len(ok),
                enhanced=len(rows("enhanced_photos", slug)),
                renders=len(staged),
                render_weights=", ".join(weights) if weights else "none",
                floor_plan=len(rows("floor_plans", slug)) > 0,
                brochure_pdf=_as_path(pdf_uri),
                status="failed: " + failures[slug] if slug in failures else "ok",
                photo_errors=_photo_errors(raw),
            )
        )
    return out


def _photo_errors(raw: Any) -> tuple[tuple[str, str], ...]:
    if "status" not in raw.columns or "error" not in raw.columns:
        return ()
    failed = raw[raw["status"] != "ok"]
    return tuple((str(r["photo"]), str(r["error"])) for r in failed.to_dict(orient="records"))


def _as_path(uri: str | None) -> str | None:
    if uri is None or not uri.startswith("file://"):
        return uri
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(uri).path)
