"""Content hashes of listings and the difference between two catalogues."""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ._slug import slugify_listing_id

__all__ = ["HASHED_FIELDS", "CatalogueDiff", "content_hash", "diff_catalogues"]

#: The facts a listing's content hash covers.  ``updated_at`` is left out on purpose:
#: a new timestamp on unchanged facts does not make a listing stale.
HASHED_FIELDS = (
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
)
_NUMERIC = frozenset({"price", "beds", "baths", "area_m2"})
_HASH_VERSION = 1


def content_hash(row: Mapping[str, Any] | pd.Series) -> str:
    """A stable SHA-256 (hex) of one listing's facts and photo list.

    Equal facts give equal hashes whatever their Python or pandas types: ``3``,
    ``3.0`` and ``numpy.int64(3)`` hash alike, missing values (``None``, ``NaN``,
    ``pd.NA``, ``""``) hash alike, and ``photos`` may be a list or a ``;``-joined string.
    """
    get = row.get
    canonical: dict[str, Any] = {"v": _HASH_VERSION}
    for name in HASHED_FIELDS:
        value = get(name)
        if name == "photos":
            canonical[name] = _photo_list(value)
        elif name in _NUMERIC:
            canonical[name] = _number(value)
        else:
            canonical[name] = _text(value)
    blob = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CatalogueDiff:
    """What changed between two catalogues, as sorted lists of partition keys (slugs)."""

    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def to_run(self) -> list[str]:
        """Partitions that need materialising: new and changed, sorted."""
        return sorted([*self.new, *self.changed])

    def counts(self) -> dict[str, int]:
        return {
            "new": len(self.new),
            "changed": len(self.changed),
            "removed": len(self.removed),
            "unchanged": len(self.unchanged),
        }


def diff_catalogues(previous: pd.DataFrame | None, current: pd.DataFrame) -> CatalogueDiff:
    """Compare two listings frames (``Catalogue.listings`` or snapshots) by content hash.

    Listings are matched by partition key: the ``slug`` column, or the slug of
    ``listing_id`` where a frame has none.  ``content_hash`` is used when present and
    computed otherwise.  ``previous=None`` (no earlier snapshot) makes everything new.
    """
    now = _hashes(current)
    before = _hashes(previous) if previous is not None else {}
    return CatalogueDiff(
        new=sorted(k for k in now if k not in before),
        changed=sorted(k for k in now if k in before and before[k] != now[k]),
        removed=sorted(k for k in before if k not in now),
        unchanged=sorted(k for k in now if k in before and before[k] == now[k]),
    )


def _hashes(frame: pd.DataFrame) -> dict[str, str]:
    frame = getattr(frame, "listings", frame)
    if {"slug", "content_hash"} <= set(frame.columns) and not (
        frame["slug"].isna().any() or frame["content_hash"].isna().any()
    ):
        return dict(zip(frame["slug"].astype(str), frame["content_hash"].astype(str), strict=True))
    result: dict[str, str] = {}
    for row in frame.to_dict(orient="records"):
        slug = row.get("slug")
        key = slug if isinstance(slug, str) and slug else slugify_listing_id(str(row["listing_id"]))
        digest = row.get("content_hash")
        result[key] = digest if isinstance(digest, str) and digest else content_hash(row)
    return result


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _text(value: Any) -> str | None:
    if _missing(value):
        return None
    return unicodedata.normalize("NFC", str(value).strip())


def _number(value: Any) -> float | str | None:
    if _missing(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return _text(value)


def _photo_list(value: Any) -> list[str]:
    if _missing(value):
        return []
    if isinstance(value, str):
        parts: Sequence[Any] = value.split(";")
    else:
        try:
            parts = list(value)
        except TypeError:
            parts = [value]
    return [text for part in parts if (text := _text(part)) is not None]
