"""Listing photos made safe: sniffed, checked, decoded to upright sRGB RGB, fetched safely.

See ``docs/media.md`` for every rule and limit.
"""

from ._decode import (
    DEFAULT_BOMB_PIXELS,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    JPEG_QUALITY,
    NormalisedPhoto,
    normalise_photo,
    open_image,
)
from ._fetch import FetchPolicy, afetch_photo, fetch_photo, photo_name, safe_url
from ._photo import load_photo
from ._sniff import IMAGE_MEDIA_TYPES, sniff

__all__ = [
    "DEFAULT_BOMB_PIXELS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_MEDIA_TYPES",
    "JPEG_QUALITY",
    "FetchPolicy",
    "NormalisedPhoto",
    "afetch_photo",
    "fetch_photo",
    "load_photo",
    "normalise_photo",
    "open_image",
    "photo_name",
    "safe_url",
    "sniff",
]
