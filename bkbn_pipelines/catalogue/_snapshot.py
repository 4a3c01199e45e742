"""Dated Parquet snapshots of the catalogue in the media store."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from .._errors import CatalogueError
from ..storage import MediaStore
from ._read import Catalogue

__all__ = ["LATEST_KEY", "read_snapshot", "snapshot_key", "write_snapshot"]

LATEST_KEY = "catalogue/latest.parquet"


def snapshot_key(day: dt.date) -> str:
    """``catalogue/snapshots/{YYYY-MM-DD}.parquet``."""
    return f"catalogue/snapshots/{day.isoformat()}.parquet"


def write_snapshot(
    store: MediaStore, catalogue: Catalogue | pd.DataFrame, *, day: dt.date | None = None
) -> tuple[str, str]:
    """Write the listings as the snapshot of ``day`` (default: today, UTC) and as latest.

    Both writes replace what was there, so writing the same catalogue again (a retried
    job) leaves the same rows.  Returns ``(snapshot_key, latest_key)``.
    """
    frame = catalogue.listings if isinstance(catalogue, Catalogue) else catalogue
    if "listing_id" not in frame.columns:
        raise CatalogueError("a catalogue snapshot needs a 'listing_id' column")
    day = day or dt.datetime.now(dt.UTC).date()
    key = snapshot_key(day)
    store.write_table(key, frame)
    store.write_table(LATEST_KEY, frame)
    return key, LATEST_KEY


def read_snapshot(store: MediaStore, key: str = LATEST_KEY) -> pd.DataFrame | None:
    """The snapshot at ``key`` (default: the latest), or ``None`` when there is none."""
    if not store.exists(key):
        return None
    frame = store.read_table(key)
    if "photos" in frame.columns:
        frame["photos"] = [[str(p) for p in value] for value in frame["photos"]]
    return frame
