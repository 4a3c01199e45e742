"""Partition keys from listing ids.

A slug is lower-case ASCII made of ``a-z``, ``0-9``, ``.``, ``_`` and ``-``: safe as a
Dagster partition key (no ``/ , | [ ]``, no ``...`` range syntax, no control
characters) and safe as one path segment in the media store.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

from .._errors import CatalogueError

__all__ = ["MAX_SLUG_LENGTH", "build_partition_map", "slugify_listing_id"]

MAX_SLUG_LENGTH = 100
_HASH_LENGTH = 8

# Letters NFKD does not decompose into ASCII.
_TRANSLITERATE = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "ø": "o",
        "Ø": "o",
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "Đ": "d",
        "ð": "d",
        "Ð": "d",
        "þ": "th",
        "Þ": "th",
        "\u0131": "i",  # dotless i
    }
)
_UNSAFE = re.compile(r"[^a-z0-9._-]+")
_DASHES = re.compile(r"-{2,}")
_DOTS = re.compile(r"\.{2,}")
_EDGES = "._-"


def slugify_listing_id(listing_id: str) -> str:
    """The partition key of a listing id.

    ``MLS/12345`` -> ``mls-12345``; ``12 Main St, Springfield`` ->
    ``12-main-st-springfield``; ``unit-4.1`` stays ``unit-4.1``; ``000388907`` keeps
    its zeros.  Non-ASCII letters are transliterated (``Besançon`` -> ``besancon``),
    other characters become ``-``, runs of ``-`` and of ``.`` shrink to one, and the
    slug never starts or ends with ``.``, ``_`` or ``-``.  Slugs longer than 100
    characters are cut and end in ``-`` plus 8 hex digits of the id's SHA-256.
    An id with nothing left raises :class:`CatalogueError`.
    """
    if not isinstance(listing_id, str):
        raise CatalogueError(f"listing id must be a string, got {type(listing_id).__name__}")
    text = unicodedata.normalize("NFKC", listing_id).translate(_TRANSLITERATE)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = _UNSAFE.sub("-", text)
    text = _DOTS.sub(".", _DASHES.sub("-", text)).strip(_EDGES)
    if not text:
        raise CatalogueError(f"listing id {listing_id!r} has no characters usable in a slug")
    if len(text) > MAX_SLUG_LENGTH:
        digest = hashlib.sha256(listing_id.encode("utf-8")).hexdigest()[:_HASH_LENGTH]
        head = text[: MAX_SLUG_LENGTH - _HASH_LENGTH - 1].rstrip(_EDGES)
        text = f"{head}-{digest}"
    return text


def build_partition_map(ids: Iterable[str]) -> dict[str, str]:
    """Map slug -> listing id for ``ids``; repeated ids count once.

    Two different ids with the same slug (``MLS/1`` and ``mls-1``) raise
    :class:`CatalogueError` naming both, as does an id that cannot be slugged.
    """
    mapping: dict[str, str] = {}
    for listing_id in ids:
        slug = slugify_listing_id(listing_id)
        other = mapping.setdefault(slug, listing_id)
        if other != listing_id:
            raise CatalogueError(
                f"listing ids {other!r} and {listing_id!r} both become partition key "
                f"{slug!r}; rename one of them in the catalogue"
            )
    return mapping
