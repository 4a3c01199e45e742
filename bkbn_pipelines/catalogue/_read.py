"""Reading the nightly listing export into a clean, typed catalogue.

docs/catalogue.md lists the columns and every rule applied here.
"""

from __future__ import annotations

import io
import math
import os
import posixpath
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from upath import UPath

from .._contract import STYLES
from .._errors import BkbnError, CatalogueError
from .._logging import get_logger, redact
from ._diff import _missing, content_hash
from ._slug import slugify_listing_id

__all__ = [
    "LISTING_COLUMNS",
    "OPTIONAL_COLUMNS",
    "REJECTED_COLUMNS",
    "REQUIRED_COLUMNS",
    "Catalogue",
    "read_catalogue",
]

logger = get_logger("catalogue")

REQUIRED_COLUMNS = ("listing_id", "address", "photos")
OPTIONAL_COLUMNS = (
    "city",
    "price",
    "currency",
    "beds",
    "baths",
    "area_m2",
    "style",
    "capture",
    "updated_at",
)
#: Columns of ``Catalogue.listings``, in this order.
LISTING_COLUMNS = (
    "listing_id",
    "slug",
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
    "content_hash",
)
#: Columns of ``Catalogue.rejected``.
REJECTED_COLUMNS = ("row", "listing_id", "reason")

_FACT_COLUMNS = ("address", "city", "price", "currency", "beds", "baths", "area_m2", "style")
_SPACES = re.compile(r"\s+")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_SECRET_OPTION_WORDS = ("key", "secret", "token", "password", "credential")


@dataclass(frozen=True)
class Catalogue:
    """A cleaned catalogue.

    ``listings`` has one row per listing (columns :data:`LISTING_COLUMNS`, sorted by
    slug); ``rejected`` has the rows that could not be used with the reason
    (columns :data:`REJECTED_COLUMNS`; ``row`` counts data rows from 1);
    ``partition_map`` maps slug -> listing id; ``duplicates`` counts the rows dropped
    as duplicates or superseded by a later ``updated_at``.
    """

    listings: pd.DataFrame
    rejected: pd.DataFrame
    partition_map: dict[str, str]
    source: str
    duplicates: int = 0
    warnings: tuple[str, ...] = field(default=())

    def listing(self, slug: str) -> dict[str, Any]:
        """One listing as plain Python values (``None`` for missing, photos a list)."""
        matches = self.listings[self.listings["slug"] == slug]
        if matches.empty:
            raise CatalogueError(f"no listing with partition key {slug!r} in {self.source}")
        return _plain(matches.iloc[0].to_dict())

    def facts(self, slug: str) -> dict[str, Any]:
        """The facts a brochure needs: address, city, price, currency, beds, baths,
        area_m2, style; missing ones left out."""
        row = self.listing(slug)
        return {name: row[name] for name in _FACT_COLUMNS if row.get(name) is not None}


def read_catalogue(
    source: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    engine: str | None = None,
    format: str | None = None,
) -> Catalogue:
    """Read a CSV or Parquet export from a local path or ``s3://`` URL.

    ``engine`` picks the CSV parser (``"c"``, ``"pyarrow"``, ``"python"``); listing
    ids stay strings with every engine.  ``format`` (``"csv"`` or ``"parquet"``)
    overrides the guess from the file name.  Raises :class:`CatalogueError` when the
    file cannot be read or lacks a required column; bad rows go to ``rejected``.
    """
    text = os.fspath(source)
    options = dict(storage_options or {})
    kind = _format_of(text, format)
    raw = _load(text, kind, options, engine)
    raw.columns = [str(name).strip().lower() for name in raw.columns]
    missing = [name for name in REQUIRED_COLUMNS if name not in raw.columns]
    if missing:
        raise CatalogueError(
            f"catalogue {text} lacks required column {missing[0]!r}"
            + (f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else "")
        )
    base = _base_of(text)
    updated = _parse_timestamps(raw["updated_at"]) if "updated_at" in raw.columns else None

    rows: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for position, record in enumerate(raw.to_dict(orient="records")):
        stamp = updated[position] if updated is not None else None
        try:
            rows.append(_clean_row(record, stamp, base, position + 1))
        except _RowRejected as exc:
            rejected.append({"row": position + 1, "listing_id": exc.listing_id, "reason": str(exc)})

    kept, duplicates = _resolve_duplicates(rows)
    kept, collisions = _reject_collisions(kept)
    rejected.extend(collisions)
    listings = _listings_frame(kept)
    rejected_frame = pd.DataFrame(rejected, columns=list(REJECTED_COLUMNS))
    rejected_frame["row"] = rejected_frame["row"].astype("int64")
    rejected_frame = rejected_frame.sort_values("row", kind="stable").reset_index(drop=True)
    partition_map = dict(zip(listings["slug"], listings["listing_id"], strict=True))
    logger.info(
        "catalogue %s: %d listings, %d rejected, %d duplicates",
        text,
        len(listings),
        len(rejected_frame),
        duplicates,
    )
    return Catalogue(listings, rejected_frame, partition_map, text, duplicates)


# -- loading -------------------------------------------------------------------------


def _format_of(source: str, given: str | None) -> str:
    if given is not None:
        kind = given.lower()
        if kind not in {"csv", "parquet"}:
            raise CatalogueError(f"catalogue format must be 'csv' or 'parquet', not {given!r}")
        return kind
    name = source.lower().split("?", 1)[0]
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".csv.gz", ".txt")):
        return "csv"
    raise CatalogueError(f"cannot tell the format of {source}: name it .csv or .parquet")


def _load(source: str, kind: str, options: dict[str, Any], engine: str | None) -> pd.DataFrame:
    try:
        data = UPath(source, **options).read_bytes()
        if source.lower().endswith(".gz"):
            import gzip

            data = gzip.decompress(data)
        if kind == "parquet":
            return pd.read_parquet(io.BytesIO(data))
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, engine=engine or "c")
    except BkbnError:
        raise
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"
        for name, value in options.items():
            if isinstance(value, str) and value and _is_secret(name):
                detail = detail.replace(value, "[redacted]")
        raise CatalogueError(f"cannot read catalogue {source}: {redact(detail)}") from exc


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered != "endpoint_url" and any(word in lowered for word in _SECRET_OPTION_WORDS)


def _base_of(source: str) -> str:
    if "://" in source and not source.startswith("file://"):
        return posixpath.dirname(source)
    path = source[len("file://") :] if source.startswith("file://") else source
    return str(Path(path).expanduser().resolve().parent)


def _parse_timestamps(column: pd.Series) -> list[pd.Timestamp | str | None]:
    """UTC timestamps; ``None`` for empty cells; the original text when unparseable."""
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = (
            column.dt.tz_localize("UTC") if column.dt.tz is None else column.dt.tz_convert("UTC")
        )
        return [None if pd.isna(value) else value for value in parsed]
    result: list[pd.Timestamp | str | None] = []
    for value in column:
        if _missing(value):
            result.append(None)
            continue
        try:
            stamp = pd.Timestamp(str(value).strip())
        except (ValueError, TypeError):
            result.append(str(value))
            continue
        if pd.isna(stamp):
            result.append(None)
            continue
        result.append(stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC"))
    return result


# -- one row -------------------------------------------------------------------------


class _RowRejected(Exception):
    def __init__(self, reason: str, listing_id: str | None) -> None:
        super().__init__(reason)
        self.listing_id = listing_id


def _clean_row(record: dict[str, Any], stamp: Any, base: str, row_number: int) -> dict[str, Any]:
    listing_id = _id_text(record.get("listing_id"))
    if listing_id is None:
        raise _RowRejected("missing listing_id", None)
    try:
        slug = slugify_listing_id(listing_id)
    except CatalogueError as exc:
        raise _RowRejected(str(exc), listing_id) from exc

    def reject(reason: str) -> _RowRejected:
        return _RowRejected(f"listing {listing_id!r}: {reason}", listing_id)

    address = _text(record.get("address"))
    if address is None:
        raise reject("missing address")
    photos = _photos(record.get("photos"), base)
    if not photos:
        raise reject("no photos")
    style = _text(record.get("style"))
    if style is not None:
        style = style.lower()
        if style not in STYLES:
            raise reject(f"style {style!r} is not one of {', '.join(STYLES)}")
    currency = _text(record.get("currency"))
    if currency is not None:
        currency = currency.upper()
        if not _CURRENCY.match(currency):
            raise reject(f"currency {currency!r} is not a three-letter code")
    if isinstance(stamp, str):
        raise reject(f"updated_at {stamp!r} is not a timestamp")
    capture = _text(record.get("capture"))
    return {
        "listing_id": listing_id,
        "slug": slug,
        "address": address,
        "city": _text(record.get("city")),
        "price": _number(record.get("price"), "price", reject, minimum=0),
        "currency": currency,
        "beds": _integer(record.get("beds"), "beds", reject),
        "baths": _number(record.get("baths"), "baths", reject, minimum=0),
        "area_m2": _number(record.get("area_m2"), "area_m2", reject, minimum=0),
        "style": style,
        "photos": photos,
        "capture": _resolve(capture, base) if capture is not None else None,
        "updated_at": stamp,
        "_row": row_number,
    }


def _text(value: Any) -> str | None:
    if _missing(value):
        return None
    text = _SPACES.sub(" ", unicodedata.normalize("NFC", str(value))).strip()
    return text or None


def _id_text(value: Any) -> str | None:
    if _missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = unicodedata.normalize("NFC", str(value)).strip()
    return text or None


def _number(value: Any, name: str, reject: Any, *, minimum: float) -> float | None:
    if _missing(value):
        return None
    try:
        number = float(str(value).strip().replace("_", ""))
    except ValueError:
        raise reject(f"{name} {value!r} is not a number") from None
    if math.isnan(number) or math.isinf(number) or number < minimum:
        raise reject(f"{name} {value!r} is out of range")
    return number


def _integer(value: Any, name: str, reject: Any) -> int | None:
    number = _number(value, name, reject, minimum=0)
    if number is None:
        return None
    if not number.is_integer():
        raise reject(f"{name} {value!r} is not a whole number")
    return int(number)


def _photos(value: Any, base: str) -> list[str]:
    if _missing(value):
        return []
    parts = value.split(";") if isinstance(value, str) else list(value)
    return [_resolve(text, base) for part in parts if (text := _text(part)) is not None]


def _resolve(reference: str, base: str) -> str:
    """Resolve a relative photo or capture path against the catalogue's folder."""
    if _SCHEME.match(reference) and not re.match(r"^[A-Za-z]:[\\/]", reference):
        return reference
    if "://" in base:
        if reference.startswith("/"):
            return reference
        scheme, rest = base.split("://", 1)
        return f"{scheme}://{posixpath.normpath(posixpath.join(rest, reference))}"
    return os.path.normpath(os.path.join(base, os.path.expanduser(reference)))


# -- the whole table -----------------------------------------------------------------


def _resolve_duplicates(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """One row per listing id: the latest ``updated_at`` wins, ties go to the later row."""
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        current = best.get(row["listing_id"])
        if current is None or _stamp_key(row) >= _stamp_key(current):
            best[row["listing_id"]] = row
    return list(best.values()), len(rows) - len(best)


def _stamp_key(row: dict[str, Any]) -> pd.Timestamp:
    stamp = row["updated_at"]
    return stamp if stamp is not None else pd.Timestamp.min.tz_localize("UTC")


def _reject_collisions(
    rows: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    by_slug: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_slug.setdefault(row["slug"], []).append(row)
    kept: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for slug, group in by_slug.items():
        if len(group) == 1:
            kept.append(group[0])
            continue
        ids = sorted(row["listing_id"] for row in group)
        named = ", ".join(repr(i) for i in ids)
        for row in group:
            rejected.append(
                {
                    "row": row["_row"],
                    "listing_id": row["listing_id"],
                    "reason": f"listing ids {named} all become partition key {slug!r}",
                }
            )
    return kept, rejected


def _listings_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    for row in rows:
        row["content_hash"] = content_hash(row)
    frame = pd.DataFrame(rows, columns=[*LISTING_COLUMNS])
    frame = frame.sort_values("slug", kind="stable").reset_index(drop=True)
    frame["beds"] = frame["beds"].astype("Int64")
    for name in ("price", "baths", "area_m2"):
        frame[name] = frame[name].astype("float64")
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True)
    for name in ("listing_id", "slug", "address", "city", "currency", "style", "capture"):
        frame[name] = frame[name].astype("str").where(frame[name].notna(), None)
    return frame


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in row.items():
        if name == "photos":
            result[name] = [str(p) for p in value]
        elif isinstance(value, pd.Timestamp):
            result[name] = value.to_pydatetime()
        elif _missing(value):
            result[name] = None
        elif hasattr(value, "item"):
            result[name] = value.item()
        else:
            result[name] = value
    return result
