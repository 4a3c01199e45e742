"""Untrusted photo bytes in, a safe upright sRGB RGB image out.

The steps, in order (each a small function below):

1. size cap on the bytes (``max_bytes``);
2. sniff the format from magic bytes;
3. read the header only and refuse decompression bombs (``bomb_pixels``);
4. decode fully, with truncated files refused (Pillow's ``LOAD_TRUNCATED_IMAGES`` is
   never touched), JPEGs above the pixel budget decoded at a reduced scale;
5. apply the EXIF orientation;
6. convert to sRGB RGB: ICC profiles, CMYK, 16-bit, palette and alpha;
7. downscale to the pixel budget (``max_pixels``).

:func:`open_image` stops there; :func:`normalise_photo` also re-encodes the image
without metadata (so no GPS position survives) as a deterministic JPEG.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import re
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pillow_heif
from PIL import Image, ImageCms, ImageOps

from .._errors import PhotoRejectedError
from ._sniff import sniff

__all__ = [
    "DEFAULT_BOMB_PIXELS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "JPEG_QUALITY",
    "NormalisedPhoto",
    "normalise_photo",
    "open_image",
]

logger = logging.getLogger("bkbn_pipelines.media")

pillow_heif.register_heif_opener()

#: Largest photo accepted, in bytes (32 MiB).
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
#: Pixel budget: larger photos are downscaled to fit (40 megapixels).
DEFAULT_MAX_PIXELS = 40_000_000
#: Header dimensions above this are refused as decompression bombs (150 megapixels).
#: Kept below Pillow's own hard limit so that the refusal is always ours.
DEFAULT_BOMB_PIXELS = 150_000_000
#: Quality of the stored JPEG.
JPEG_QUALITY = 92

_WHITE = (255, 255, 255)
_WARNINGS_LOCK = threading.Lock()
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
# What Pillow, its plugins and pillow-heif raise on bad input (libavif and libheif
# failures surface as RuntimeError); translated to PhotoRejectedError at this boundary.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    RuntimeError,
    struct.error,
    zlib.error,
)
# The formats Pillow may open for each sniffed media type; nothing else is tried.
_PIL_FORMATS = {
    "image/jpeg": ["JPEG", "MPO"],
    "image/png": ["PNG"],
    "image/webp": ["WEBP"],
    "image/gif": ["GIF"],
    "image/tiff": ["TIFF"],
    "image/heic": ["HEIF"],
    "image/heif": ["HEIF", "AVIF"],
    "image/avif": ["AVIF", "HEIF"],
}


@dataclass(frozen=True)
class NormalisedPhoto:
    """A photo made safe: upright sRGB RGB, within budget, re-encoded without metadata."""

    image: Image.Image = field(repr=False)
    #: The stored encoding: a baseline JPEG without EXIF, GPS, XMP or ICC data.
    data: bytes = field(repr=False)
    media_type: str
    width: int
    height: int
    #: Media type of the source as sniffed from its bytes (``"image/heic"``...).
    source_format: str
    #: sha256 of :attr:`data` (hex); the content hash used for lineage.
    sha256: str
    #: sha256 of the source bytes (hex).
    source_sha256: str
    source_width: int
    source_height: int
    #: The EXIF orientation tag that was applied (1 when upright or absent).
    orientation: int = 1
    downscaled: bool = False
    icc_converted: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def jpeg_bytes(self) -> bytes:
        return self.data


@dataclass
class _Decoded:
    image: Image.Image
    source_format: str
    source_size: tuple[int, int]
    orientation: int = 1
    downscaled: bool = False
    icc_converted: bool = False
    warnings: list[str] = field(default_factory=list)


def open_image(
    data: bytes,
    *,
    name: str = "input",
    listing_id: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int | None = None,
    bomb_pixels: int = DEFAULT_BOMB_PIXELS,
) -> Image.Image:
    """Decode photo bytes to an upright sRGB ``RGB`` image, without re-encoding.

    The same checks and conversions as :func:`normalise_photo`; ``max_pixels`` is off
    by default (the image keeps its size). Raises :class:`PhotoRejectedError` naming
    ``listing_id`` and ``name``.
    """
    return _decode(
        data,
        listing_id=listing_id,
        photo=name,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        bomb_pixels=bomb_pixels,
    ).image


def normalise_photo(
    data: bytes,
    *,
    listing_id: str | None,
    photo: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    bomb_pixels: int = DEFAULT_BOMB_PIXELS,
) -> NormalisedPhoto:
    """Check, decode, convert and re-encode one listing photo.

    The same bytes and settings always give the same output bytes and hash.
    Raises :class:`PhotoRejectedError` naming ``listing_id`` and ``photo``.
    """
    decoded = _decode(
        data,
        listing_id=listing_id,
        photo=photo,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        bomb_pixels=bomb_pixels,
    )
    encoded = _encode_jpeg(decoded.image)
    for warning in decoded.warnings:
        logger.warning("listing %r, photo %r: %s", listing_id, photo, warning)
    return NormalisedPhoto(
        image=decoded.image,
        data=encoded,
        media_type="image/jpeg",
        width=decoded.image.width,
        height=decoded.image.height,
        source_format=decoded.source_format,
        sha256=hashlib.sha256(encoded).hexdigest(),
        source_sha256=hashlib.sha256(data).hexdigest(),
        source_width=decoded.source_size[0],
        source_height=decoded.source_size[1],
        orientation=decoded.orientation,
        downscaled=decoded.downscaled,
        icc_converted=decoded.icc_converted,
        warnings=tuple(decoded.warnings),
    )


# -- the steps ----------------------------------------------------------------------------


def _decode(
    data: bytes,
    *,
    listing_id: str | None,
    photo: str,
    max_bytes: int,
    max_pixels: int | None,
    bomb_pixels: int,
) -> _Decoded:
    def reject(reason: str) -> PhotoRejectedError:
        return PhotoRejectedError(reason, listing_id=listing_id, photo=photo)

    _check_size(data, max_bytes, reject)
    media_type = sniff(data, listing_id=listing_id, photo=photo)
    im, notes = _open_header(data, media_type, bomb_pixels, reject)
    try:
        decoded = _Decoded(image=im, source_format=media_type, source_size=im.size)
        decoded.warnings.extend(notes)
        _note_frames(im, decoded)
        _load(im, max_pixels, reject)
        decoded.image = _apply_orientation(im, decoded, reject)
        decoded.image = _to_srgb_rgb(decoded.image, decoded, reject)
        decoded.image = _fit_budget(decoded.image, max_pixels, decoded)
        if decoded.image is im:
            decoded.image = im.copy()
    finally:
        im.close()
    decoded.image.info = {}
    return decoded


def _check_size(data: bytes, max_bytes: int, reject) -> None:
    if len(data) > max_bytes:
        raise reject(
            f"{_mib(len(data))} is over the {_mib(max_bytes)} limit on photo size (max_bytes)"
        )


def _open_header(
    data: bytes, media_type: str, bomb_pixels: int, reject
) -> tuple[Image.Image, list[str]]:
    """Open lazily (header only) and refuse dimensions no photo has."""
    try:
        with _recorded_warnings() as caught:
            im = Image.open(io.BytesIO(data), formats=_PIL_FORMATS[media_type])
    except Image.DecompressionBombError as exc:
        claimed = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"{int(claimed.group(1)):,}" if claimed else "too many"
        # Pillow refuses above twice its MAX_IMAGE_PIXELS (a global this module never sets).
        limit = min(bomb_pixels, 2 * (Image.MAX_IMAGE_PIXELS or bomb_pixels))
        raise reject(
            f"refused as a decompression bomb: its header claims {pixels} pixels, over the "
            f"limit of {limit:,} pixels (bomb_pixels)"
        ) from None
    except _DECODE_ERRORS as exc:
        raise reject(f"cannot be read as {media_type} ({_short(exc)})") from None
    width, height = im.size
    if width <= 0 or height <= 0:
        im.close()
        raise reject(f"has no pixels ({width}x{height})")
    if width * height > bomb_pixels:
        im.close()
        raise reject(
            f"refused as a decompression bomb: its header claims {width}x{height} "
            f"({width * height:,} pixels), over the limit of {bomb_pixels:,} pixels "
            "(bomb_pixels)"
        )
    notes = [
        f"decoder warning: {_short(w.message)}"
        for w in caught
        if not issubclass(w.category, Image.DecompressionBombWarning)
    ]
    return im, notes


def _note_frames(im: Image.Image, decoded: _Decoded) -> None:
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        kind = "animated" if getattr(im, "is_animated", False) else "multi-image"
        decoded.warnings.append(
            f"{kind} {decoded.source_format} with {frames} frames: the first frame is used"
        )


def _load(im: Image.Image, max_pixels: int | None, reject) -> None:
    """Decode the pixels; a JPEG over budget is decoded at 1/2, 1/4 or 1/8 scale."""
    if max_pixels and im.width * im.height > max_pixels and im.format in ("JPEG", "MPO"):
        scale = (im.width * im.height / max_pixels) ** 0.5
        im.draft(None, (max(1, int(im.width / scale)), max(1, int(im.height / scale))))
    try:
        im.load()
    except Image.DecompressionBombError as exc:
        raise reject(f"refused as a decompression bomb ({exc})") from None
    except _DECODE_ERRORS as exc:
        raise reject(f"is truncated or corrupt ({_short(exc)})") from None


def _apply_orientation(im: Image.Image, decoded: _Decoded, reject) -> Image.Image:
    try:
        with _recorded_warnings() as caught:
            orientation = int(im.getexif().get(0x0112, 1) or 1)
    except _DECODE_ERRORS:
        caught = [True]
        orientation = 1
    if caught:
        decoded.warnings.append("corrupt EXIF data: orientation not applied")
        return im
    if orientation not in range(2, 9):
        return im
    decoded.orientation = orientation
    upright = ImageOps.exif_transpose(im)
    return upright if upright is not None else im


def _to_srgb_rgb(im: Image.Image, decoded: _Decoded, reject) -> Image.Image:
    """Any mode in, 8-bit sRGB ``RGB`` out; alpha is flattened onto white."""
    icc = im.info.get("icc_profile")
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        im = _sixteen_to_eight(im)
    elif im.mode in ("P", "PA"):
        im = im.convert("RGBA")
    elif im.mode in ("1", "LA", "La", "RGBa"):
        im = im.convert("RGBA" if "A" in im.mode or "a" in im.mode else "L")
    if icc and im.mode in ("RGB", "RGBA", "CMYK", "L"):
        converted = _icc_to_srgb(im, icc, decoded)
        if converted is not None:
            im = converted
            decoded.icc_converted = True
    if im.mode == "RGBA":
        return _flatten(im)
    if im.mode != "RGB":
        try:
            im = im.convert("RGB")
        except ValueError as exc:
            raise reject(f"has a colour mode that cannot be converted ({im.mode})") from exc
    return im


def _sixteen_to_eight(im: Image.Image) -> Image.Image:
    """Scale 16-bit (or 32-bit) greyscale to 8-bit ``L``: 0..65535 maps to 0..255."""
    arr = np.asarray(im)
    if im.mode == "F":
        arr = np.nan_to_num(arr.astype(np.float64))
        top = 1.0 if arr.max(initial=0.0) <= 1.0 else 65535.0
        scaled = np.clip(arr / top * 255.0 + 0.5, 0, 255)
    else:
        arr = arr.astype(np.int64)
        top = 65535 if arr.max(initial=0) <= 65535 else int(arr.max())
        scaled = (np.clip(arr, 0, top) * 255 + top // 2) // top
    return Image.fromarray(scaled.astype(np.uint8), mode="L")


def _icc_to_srgb(im: Image.Image, icc: bytes, decoded: _Decoded) -> Image.Image | None:
    out_mode = "RGBA" if im.mode == "RGBA" else "RGB"
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(
            im,
            source,
            _SRGB,
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
            outputMode=out_mode,
        )
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        decoded.warnings.append(f"ICC profile ignored ({_short(exc)}); colours assumed sRGB")
        return None


def _flatten(im: Image.Image) -> Image.Image:
    background = Image.new("RGB", im.size, _WHITE)
    background.paste(im.convert("RGB"), mask=im.getchannel("A"))
    return background


def _fit_budget(im: Image.Image, max_pixels: int | None, decoded: _Decoded) -> Image.Image:
    w, h = decoded.source_size
    if max_pixels and w * h > max_pixels:
        decoded.downscaled = True
    if not max_pixels or im.width * im.height <= max_pixels:
        return im
    scale = (max_pixels / (im.width * im.height)) ** 0.5
    size = (max(1, int(im.width * scale)), max(1, int(im.height * scale)))
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _encode_jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling="4:4:4", optimize=True)
    return buf.getvalue()


@contextlib.contextmanager
def _recorded_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Collect Pillow's warnings about one photo instead of letting them escape.

    ``warnings.catch_warnings`` changes process-wide state, so the (short) sections that
    use it are serialised by a lock; pixel decoding is never inside one.
    """
    with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n % (1024 * 1024) else f"{n // (1024 * 1024)} MiB"


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
