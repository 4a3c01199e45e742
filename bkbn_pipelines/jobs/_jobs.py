"""Jobs, the nightly schedule and the listing sensor.

- ``nightly_catalogue_job`` materialises ``listing_catalogue``: it reads the export,
  adds a ``listings`` partition per new listing and reports which listings changed.
- ``listing_media_job`` materialises the per-listing assets for one listing or, in a
  backfill, for a range of listings in one run.
- ``nightly_schedule`` runs ``nightly_catalogue_job`` at 02:00 in ``BKBN_TIMEZONE`` on
  the export named by ``BKBN_CATALOGUE``.
- ``listing_partitions_sensor`` turns a new catalogue snapshot into partitions and one
  ``listing_media_job`` run per new or changed listing.
"""

import json
import os
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dagster import (
    AddDynamicPartitionsRequest,
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)
from dagster._core.definitions.data_version import get_input_data_version_tag

from .._errors import ConfigError
from ..assets import LISTING_ASSET_KEYS, LISTINGS
from ..catalogue import read_snapshot
from ..resources import MediaStoreResource

__all__ = [
    "CATALOGUE_ENV",
    "NIGHTLY_CRON",
    "TIMEZONE_ENV",
    "build_nightly_schedule",
    "listing_media_job",
    "listing_partitions_sensor",
    "nightly_catalogue_job",
    "nightly_run_config",
    "nightly_schedule",
    "nightly_timezone",
]

NIGHTLY_CRON = "0 2 * * *"
TIMEZONE_ENV = "BKBN_TIMEZONE"
CATALOGUE_ENV = "BKBN_CATALOGUE"
CATALOGUE_S3_ENV = "BKBN_CATALOGUE_S3_ENDPOINT_URL"

nightly_catalogue_job = define_asset_job(
    "nightly_catalogue_job",
    selection=AssetSelection.assets("listing_catalogue"),
    description="Read the nightly listing export, snapshot it and register its listings.",
)

listing_media_job = define_asset_job(
    "listing_media_job",
    selection=AssetSelection.assets(*LISTING_ASSET_KEYS),
    partitions_def=LISTINGS,
    description=(
        "Photos, renders, floor plans and brochures of one listing, or of a range of "
        "listings in one run (a failing listing never fails the others)."
    ),
)


def nightly_timezone(environ: Mapping[str, str] | None = None) -> str:
    """The schedule's IANA timezone: ``BKBN_TIMEZONE``, default ``UTC``."""
    name = (environ if environ is not None else os.environ).get(TIMEZONE_ENV, "").strip()
    name = name or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{TIMEZONE_ENV}={name!r} is not an IANA timezone name") from None
    return name


def nightly_run_config(environ: Mapping[str, str] | None = None) -> dict | None:
    """Run config of the nightly catalogue run from ``BKBN_CATALOGUE`` (a path or an
    ``s3://`` URL) and ``BKBN_CATALOGUE_S3_ENDPOINT_URL``; ``None`` when it is unset."""
    env = environ if environ is not None else os.environ
    source = env.get(CATALOGUE_ENV, "").strip()
    if not source:
        return None
    config: dict[str, str] = {"source": source}
    endpoint = env.get(CATALOGUE_S3_ENV, "").strip()
    if endpoint:
        config["s3_endpoint_url"] = endpoint
    return {"ops": {"listing_catalogue": {"config": config}}}


def build_nightly_schedule(timezone: str | None = None) -> ScheduleDefinition:
    """The 02:00 schedule in ``timezone``; Dagster's cron handling gives one tick per
    local day across DST changes (02:00 missing in spring runs at 03:00).

    Each tick reads ``BKBN_CATALOGUE`` then, so the export can move without a new
    deployment; a tick without it is skipped, saying which variable to set.
    """

    @schedule(
        name="nightly_schedule",
        job=nightly_catalogue_job,
        cron_schedule=NIGHTLY_CRON,
        execution_timezone=timezone or nightly_timezone(),
        default_status=DefaultScheduleStatus.STOPPED,
        description=(
            "Materialise the catalogue every night at 02:00 local time, from the export "
            f"named by {CATALOGUE_ENV}."
        ),
    )
    def nightly(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        run_config = nightly_run_config()
        if run_config is None:
            return SkipReason(
                f"{CATALOGUE_ENV} is not set: set it to the nightly export (a CSV or "
                "Parquet path, or an s3:// URL) in the environment of the daemon"
            )
        day = context.scheduled_execution_time
        key = day.strftime("%Y-%m-%d") if day is not None else None
        return RunRequest(run_key=key, run_config=run_config)

    return nightly


nightly_schedule = build_nightly_schedule()

_RAW = AssetKey("raw_listing_photos")
_RECORDS = AssetKey("listing_records")


@sensor(
    name="listing_partitions_sensor",
    job=listing_media_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description=(
        "Adds a partition per new listing of the latest catalogue snapshot and requests "
        "one run per new or changed listing (run key: listing and content hash)."
    ),
)
def listing_partitions_sensor(
    context: SensorEvaluationContext, media_store: MediaStoreResource
) -> SensorResult | SkipReason:
    snapshot = read_snapshot(media_store.store())
    if snapshot is None:
        return SkipReason("no catalogue snapshot yet: materialize listing_catalogue")
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    current = {
        str(slug): str(digest)
        for slug, digest in zip(snapshot["slug"], snapshot["content_hash"], strict=True)
    }
    known = set(context.instance.get_dynamic_partitions(LISTINGS.name))
    new_partitions = sorted(slug for slug in current if slug not in known)

    requests = []
    for slug, digest in sorted(current.items()):
        if seen.get(slug) == digest:
            continue
        if not context.cursor and _materialized_from(context, slug, digest):
            continue  # first tick: the listing is already done for this content
        requests.append(
            RunRequest(
                run_key=f"{slug}:{digest[:16]}",
                partition_key=slug,
                tags={"bkbn/listing": slug, "bkbn/content_hash": digest[:16]},
            )
        )
    removed = sorted(set(seen) - set(current))
    if removed:
        context.log.info(
            f"{len(removed)} listing(s) left the catalogue and get no new runs: "
            f"{', '.join(removed[:20])}"
        )
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=(
            [AddDynamicPartitionsRequest(LISTINGS.name, new_partitions)] if new_partitions else []
        ),
        cursor=json.dumps(current, sort_keys=True),
    )


def _materialized_from(context: SensorEvaluationContext, slug: str, digest: str) -> bool:
    """Whether raw photos of ``slug`` were last made from the listing with ``digest``."""
    record = context.instance.get_latest_data_version_record(
        _RAW, is_source=False, partition_key=slug
    )
    if record is None or record.event_log_entry.asset_materialization is None:
        return False
    tags = record.event_log_entry.asset_materialization.tags or {}
    return tags.get(get_input_data_version_tag(_RECORDS)) == digest
