"""The media store: atomic object writes, listing keys and Parquet manifests.

docs/storage.md describes the layout under the root and the guarantees.
"""

from __future__ import annotations

from ._keys import key_for, validate_key
from ._store import PARQUET_MEDIA_TYPE, MediaStore, StoredObject

__all__ = ["PARQUET_MEDIA_TYPE", "MediaStore", "StoredObject", "key_for", "validate_key"]
