"""One call from a catalogue's photo reference to a stored-ready photo."""

from __future__ import annotations

from pathlib import Path

from ._decode import DEFAULT_BOMB_PIXELS, DEFAULT_MAX_PIXELS, NormalisedPhoto, normalise_photo
from ._fetch import FetchPolicy, fetch_photo, photo_name

__all__ = ["load_photo"]


def load_photo(
    source: str | Path,
    *,
    listing_id: str | None,
    photo: str | None = None,
    policy: FetchPolicy | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    bomb_pixels: int = DEFAULT_BOMB_PIXELS,
) -> NormalisedPhoto:
    """Fetch ``source`` within ``policy`` and normalise it (see :func:`normalise_photo`).

    ``photo`` defaults to the file name of ``source``. Raises :class:`FetchError` or
    :class:`PhotoRejectedError`, both naming the listing and the photo.
    """
    policy = policy or FetchPolicy()
    name = photo if photo is not None else photo_name(source)
    data = fetch_photo(source, listing_id=listing_id, photo=name, policy=policy)
    return normalise_photo(
        data,
        listing_id=listing_id,
        photo=name,
        max_bytes=policy.max_bytes,
        max_pixels=max_pixels,
        bomb_pixels=bomb_pixels,
    )
