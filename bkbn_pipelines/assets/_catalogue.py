"""``listing_catalogue``: the nightly export, read, cleaned, diffed and snapshotted."""

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    Config,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)
from dagster._core.definitions.data_version import extract_data_version_from_entry
from pydantic import Field

from .._errors import CatalogueError
from ..catalogue import diff_catalogues, read_catalogue, read_snapshot, write_snapshot
from ..resources import MediaStoreResource
from ._partitions import GROUP, LISTINGS, listing_record_observation

__all__ = ["CATALOGUE_STATE_KEY", "CatalogueConfig", "listing_catalogue", "read_catalogue_state"]

#: Small JSON document beside the snapshot: where the catalogue came from.
CATALOGUE_STATE_KEY = "catalogue/state.json"
_RECORDS_KEY = AssetKey("listing_records")
#: Longest list of slugs written into one metadata entry.
_MAX_LISTED = 200


class CatalogueConfig(Config):
    """Where the nightly export is and how to read it."""

    source: str = Field(
        default="examples/catalogue.csv",
        description="CSV or Parquet export: a local path or an s3:// URL.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="S3 endpoint for s3:// sources (MinIO, moto); credentials come from "
        "the usual AWS environment variables.",
    )
    csv_engine: str | None = Field(
        default=None, description="pandas CSV engine: c, pyarrow or python (ids stay strings)."
    )


@asset(
    group_name=GROUP,
    code_version="catalogue-1",
    description=(
        "The listing export, cleaned (ids as strings, NFC addresses, duplicates resolved, "
        "UTC timestamps) and written as a Parquet snapshot; adds a `listings` partition "
        "per listing and reports new, changed and removed listings."
    ),
)
def listing_catalogue(
    context: AssetExecutionContext, config: CatalogueConfig, media_store: MediaStoreResource
) -> Iterator[AssetObservation | MaterializeResult]:
    store = media_store.store()
    options = {"endpoint_url": config.s3_endpoint_url} if config.s3_endpoint_url else None
    catalogue = read_catalogue(config.source, storage_options=options, engine=config.csv_engine)
    if catalogue.listings.empty:
        raise CatalogueError(
            f"catalogue {config.source} has no usable listing "
            f"({len(catalogue.rejected)} rows rejected)"
        )
    previous = read_snapshot(store)
    diff = diff_catalogues(previous, catalogue.listings)
    write_snapshot(store, catalogue)
    store.put(
        CATALOGUE_STATE_KEY,
        json.dumps(
            {
                "source": catalogue.source,
                "s3_endpoint_url": config.s3_endpoint_url,
                "removed": diff.removed,
            }
        ).encode(),
        media_type="application/json",
    )

    slugs = [str(s) for s in catalogue.listings["slug"]]
    known = set(context.instance.get_dynamic_partitions(LISTINGS.name))
    added = [s for s in slugs if s not in known]
    if added:
        context.instance.add_dynamic_partitions(LISTINGS.name, added)

    # Report a listing record wherever Dagster's view differs from the export: new and
    # changed listings, and any whose report a failed earlier run never made.
    reported = []
    for row in catalogue.listings.itertuples(index=False):
        slug, digest = str(row.slug), str(row.content_hash)
        if _recorded_hash(context, slug) != digest:
            reported.append(slug)
            yield listing_record_observation(slug, digest, str(row.listing_id))

    for slug in diff.removed:
        context.log.warning(
            f"listing {slug!r} left the catalogue: its partition and outputs stay, "
            "and no new runs are requested for it"
        )
    for rejected in catalogue.rejected.itertuples(index=False):
        context.log.warning(
            f"catalogue row {rejected.row} (listing {rejected.listing_id!r}) rejected: "
            f"{rejected.reason}"
        )
    yield MaterializeResult(
        data_version=DataVersion(_catalogue_version(catalogue.listings)),
        metadata=_metadata(catalogue, diff, reported),
    )


def read_catalogue_state(store: Any) -> dict[str, Any]:
    """The state written beside the snapshot: ``source``, its ``s3_endpoint_url`` and
    the ``removed`` slugs (no credentials)."""
    if not store.exists(CATALOGUE_STATE_KEY):
        return {}
    return json.loads(store.get(CATALOGUE_STATE_KEY))


def _recorded_hash(context: AssetExecutionContext, slug: str) -> str | None:
    record = context.instance.get_latest_data_version_record(
        _RECORDS_KEY, is_source=True, partition_key=slug
    )
    if record is None:
        return None
    version = extract_data_version_from_entry(record.event_log_entry)
    return version.value if version is not None else None


def _catalogue_version(listings: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    for slug, content in sorted(zip(listings["slug"], listings["content_hash"], strict=True)):
        digest.update(f"{slug}\0{content}\n".encode())
    return digest.hexdigest()


def _slug_list(slugs: list[str]) -> MetadataValue:
    shown = slugs[:_MAX_LISTED]
    more = len(slugs) - len(shown)
    return MetadataValue.json({"slugs": shown, "more": more} if more else shown)


def _metadata(catalogue: Any, diff: Any, reported: list[str]) -> dict[str, Any]:
    listings = catalogue.listings
    rejected = catalogue.rejected
    rejected_md = "| row | listing id | reason |\n|---|---|---|\n" + "".join(
        f"| {r.row} | {_cell(r.listing_id)} | {_cell(r.reason)} |\n"
        for r in rejected.head(_MAX_LISTED).itertuples(index=False)
    )
    return {
        "source": catalogue.source,
        "listings": len(listings),
        "photos": int(sum(len(p) for p in listings["photos"])),
        "new": len(diff.new),
        "changed": len(diff.changed),
        "removed": len(diff.removed),
        "unchanged": len(diff.unchanged),
        "rejected": len(rejected),
        "duplicates": int(catalogue.duplicates),
        "new_listings": _slug_list(diff.new),
        "changed_listings": _slug_list(diff.changed),
        "removed_listings": _slug_list(diff.removed),
        "reported_listings": _slug_list(reported),
        "rejected_rows": MetadataValue.md(rejected_md if len(rejected) else "none"),
        "rejected_list": MetadataValue.json(
            [
                {"row": int(r.row), "listing_id": r.listing_id, "reason": str(r.reason)}
                for r in rejected.head(_MAX_LISTED).itertuples(index=False)
            ]
        ),
        "partition_map": MetadataValue.json(dict(catalogue.partition_map)),
    }


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
