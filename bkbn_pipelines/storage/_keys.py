"""Object keys: what a key may look like, and how listing keys are built.

A key is a relative, ``/``-separated path below the store's root.  Validation is the
one place that keeps a listing id, an asset name or a file name from escaping the
root: absolute paths, ``..`` and ``.`` segments, empty segments, backslashes, colons
and control characters are all refused with :class:`StorageError`.
"""

from __future__ import annotations

import re

from .._errors import StorageError

__all__ = ["key_for", "validate_key", "validate_segment"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MAX_KEY = 1024


def validate_segment(segment: str, *, what: str = "key segment") -> str:
    """Return ``segment`` if it is one safe path component, else raise ``StorageError``."""
    if not isinstance(segment, str) or not segment:
        raise StorageError(f"{what} must be a non-empty string, got {segment!r}")
    if _CONTROL.search(segment):
        raise StorageError(f"{what} {segment!r} contains a control character")
    if "/" in segment or "\\" in segment:
        raise StorageError(f"{what} {segment!r} must not contain '/' or '\\'")
    if ":" in segment:
        raise StorageError(f"{what} {segment!r} must not contain ':'")
    if segment in {".", ".."}:
        raise StorageError(f"{what} {segment!r} is not allowed")
    return segment


def validate_key(key: str) -> str:
    """Return ``key`` if it stays below the root, else raise ``StorageError``.

    ``listings/mls-12345/raw/abc.jpg`` passes; ``../x``, ``/etc/passwd``,
    ``a/../../b``, ``a\\b``, ``a//b``, ``s3://x`` and keys with NUL fail.
    """
    if not isinstance(key, str) or not key:
        raise StorageError(f"a key must be a non-empty string, got {key!r}")
    if len(key) > _MAX_KEY:
        raise StorageError(f"key is longer than {_MAX_KEY} characters")
    if key.startswith("/"):
        raise StorageError(f"key {key!r} must be relative, not absolute")
    for segment in key.split("/"):
        validate_segment(segment, what=f"segment of key {key!r}")
    return key


def key_for(slug: str, asset: str, name: str) -> str:
    """The key of file ``name`` of ``asset`` for one listing: ``listings/{slug}/{asset}/{name}``.

    Each part must be a single safe segment, so a listing slug can never reach outside
    ``listings/{slug}/``.
    """
    validate_segment(slug, what="listing slug")
    validate_segment(asset, what="asset name")
    validate_segment(name, what="file name")
    return f"listings/{slug}/{asset}/{name}"
