"""The ``listings`` partitions and the per-listing record the catalogue keeps.

Partition keys are the slugs of :func:`bkbn_pipelines.catalogue.slugify_listing_id`:
never ``/``, ``,``, ``|``, brackets, ``...`` or control characters, so each key is one
path segment in the media store and one selectable partition in Dagster.  The map
back to the source ids is the ``slug``/``listing_id`` pair of the catalogue snapshot.

``listing_records`` is an observable source asset with one data version per listing:
the listing's content hash.  The catalogue asset reports it for new and changed
listings only, so the downstream assets of exactly those listings become stale.
"""

import warnings

from dagster import (
    AssetObservation,
    BetaWarning,
    DataVersion,
    DataVersionsByPartition,
    DynamicPartitionsDefinition,
    observable_source_asset,
)
from dagster._core.definitions.data_version import (
    DATA_VERSION_IS_USER_PROVIDED_TAG,
    DATA_VERSION_TAG,
)

from ..catalogue import read_snapshot
from ..resources import MediaStoreResource

__all__ = ["LISTINGS", "listing_record_observation", "listing_records"]

LISTINGS = DynamicPartitionsDefinition(name="listings")

GROUP = "listings"


def listing_record_observation(slug: str, content_hash: str, listing_id: str) -> AssetObservation:
    """The observation that gives listing ``slug`` the data version ``content_hash``."""
    return AssetObservation(
        asset_key="listing_records",
        partition=slug,
        metadata={"listing_id": listing_id, "content_hash": content_hash},
        tags={DATA_VERSION_TAG: content_hash, DATA_VERSION_IS_USER_PROVIDED_TAG: "true"},
    )


# Dagster marks observable source assets as beta; this one is part of the design
# (architecture.md), so its warning is not repeated to every user at import.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", BetaWarning)

    @observable_source_asset(
        name="listing_records",
        partitions_def=LISTINGS,
        deps=["listing_catalogue"],
        group_name=GROUP,
        description=(
            "One row of the catalogue per listing partition; its data version is the "
            "listing's content hash. Reported by listing_catalogue for new and changed "
            "listings; observing it re-reads the latest snapshot."
        ),
    )
    def listing_records(context, media_store: MediaStoreResource) -> DataVersionsByPartition:
        snapshot = read_snapshot(media_store.store())
        versions: dict[str, DataVersion] = {}
        if snapshot is not None:
            known = set(context.instance.get_dynamic_partitions(LISTINGS.name))
            for slug, digest in zip(snapshot["slug"], snapshot["content_hash"], strict=True):
                if slug in known:
                    versions[str(slug)] = DataVersion(str(digest))
        return DataVersionsByPartition(versions)
