"""Say what a byte string is from its first bytes, never from its name.

A photo named ``kitchen.jpg`` may be an HTML error page, a HEIC file or nothing at all;
the name and the server's content type are hints, the magic bytes decide.
"""

from __future__ import annotations

from .._errors import PhotoRejectedError

__all__ = ["IMAGE_MEDIA_TYPES", "sniff"]

#: Media types :func:`sniff` can return.
IMAGE_MEDIA_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "image/tiff",
        "image/heic",
        "image/heif",
        "image/avif",
    }
)

# ISO base media file brands (the `ftyp` box) of still-image formats.
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}
_HEIF_BRANDS = {b"mif1", b"msf1", b"mif2"}
_AVIF_BRANDS = {b"avif", b"avis"}

# Leading bytes of things that are often served in place of a photo.
_NOT_IMAGES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"{", "JSON"),
    (b"[", "JSON"),
)


def sniff(data: bytes, *, listing_id: str | None = None, photo: str | None = None) -> str:
    """Return the image media type of ``data`` (``"image/jpeg"``...) from its magic bytes.

    Raises :class:`PhotoRejectedError` naming ``listing_id`` and ``photo`` when the bytes
    are empty or are not one of :data:`IMAGE_MEDIA_TYPES` (an HTML page, text, a PDF...).
    """
    media_type = _image_type(data)
    if media_type is not None:
        return media_type
    raise PhotoRejectedError(_describe_non_image(data), listing_id=listing_id, photo=photo)


def _image_type(data: bytes) -> str | None:
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "image/tiff"
    if data[4:8] == b"ftyp":
        return _ftyp_type(data)
    return None


def _ftyp_type(data: bytes) -> str | None:
    """Media type from the brands of an ISO-BMFF ``ftyp`` box (HEIC, HEIF, AVIF)."""
    box_size = int.from_bytes(data[0:4], "big")
    box_size = min(max(box_size, 16), 256, len(data))
    major = data[8:12]
    compatible = [data[i : i + 4] for i in range(16, box_size - 3, 4)]
    # A specific brand (AVIF, HEIC) wins over the generic HEIF ones, the major brand
    # over the compatible ones.
    for brand in [major, *compatible]:
        if brand in _AVIF_BRANDS:
            return "image/avif"
        if brand in _HEIC_BRANDS:
            return "image/heic"
    if any(brand in _HEIF_BRANDS for brand in [major, *compatible]):
        return "image/heif"
    return None


def _describe_non_image(data: bytes) -> str:
    if not data:
        return "empty file (0 bytes), not an image"
    if data[4:8] == b"ftyp":
        brand = data[8:12].decode("ascii", "replace")
        return f"not an image (an ISO media file of brand {brand!r}, such as a video)"
    raw = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    stripped = raw.lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or (
        stripped.startswith(b"<") and b"<html" in stripped
    ):
        return "not an image (looks like HTML)"
    if stripped.startswith(b"<?xml") or stripped.startswith(b"<svg"):
        if b"<svg" in stripped:
            return "not a raster image (looks like SVG, which is not accepted)"
        return "not an image (looks like XML)"
    for magic, what in _NOT_IMAGES:
        if raw.startswith(magic):
            return f"not an image (looks like {what})"
    if _looks_like_text(data[:1024]):
        return "not an image (looks like text)"
    return f"not an image (unrecognised format, starts with {data[:8].hex(' ')})"


def _looks_like_text(sample: bytes) -> bool:
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\t\r\n" for ch in text)
