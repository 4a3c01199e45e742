"""The listing catalogue: partition keys, reading the nightly export, diffs, snapshots.

docs/catalogue.md describes the columns and the cleaning rules.
"""

from __future__ import annotations

from ._diff import CatalogueDiff, content_hash, diff_catalogues
from ._read import (
    LISTING_COLUMNS,
    OPTIONAL_COLUMNS,
    REJECTED_COLUMNS,
    REQUIRED_COLUMNS,
    Catalogue,
    read_catalogue,
)
from ._slug import MAX_SLUG_LENGTH, build_partition_map, slugify_listing_id
from ._snapshot import LATEST_KEY, read_snapshot, snapshot_key, write_snapshot

__all__ = [
    "LATEST_KEY",
    "LISTING_COLUMNS",
    "MAX_SLUG_LENGTH",
    "OPTIONAL_COLUMNS",
    "REJECTED_COLUMNS",
    "REQUIRED_COLUMNS",
    "Catalogue",
    "CatalogueDiff",
    "build_partition_map",
    "content_hash",
    "diff_catalogues",
    "read_catalogue",
    "read_snapshot",
    "slugify_listing_id",
    "snapshot_key",
    "write_snapshot",
]
