"""Making photos safe for the models, and putting the results back in shape.

Every image graph decodes its input with :func:`load_rgb`: EXIF orientation applied,
transparent and palette images flattened onto white, the result 8-bit RGB.  Models
want sides that are a multiple of 8 or 16; :func:`pad_to_multiple` grows an image to
that multiple by mirroring its border and :func:`crop_back` removes the padding
afterwards, so a 427x640 photo comes back 427x640.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .._errors import PhotoRejectedError

__all__ = [
    "Padding",
    "crop_back",
    "encode_png",
    "fit_long_side",
    "load_rgb",
    "pad_to_multiple",
    "to_array",
    "to_image",
]

logger = logging.getLogger("bkbn_pipelines.runtime")

#: Largest photo, in pixels, that the runtime decodes (about 16k x 12k).
MAX_PIXELS = 200_000_000


def load_rgb(data: bytes, *, name: str = "input") -> Image.Image:
    """Decode ``data`` into an upright 8-bit RGB image.

    Uses the media package's ``open_image`` when it is installed (ICC profiles,
    CMYK, 16-bit, HEIC); otherwise decodes with Pillow here.  Either way the result
    is RGB with EXIF orientation applied and any transparency flattened onto white.
    """
    try:
        from ..media import open_image  # type: ignore[attr-defined]
    except ImportError:
        image = _open_with_pillow(data, name=name)
    else:
        image = open_image(data, name=name)
    return flatten(image)


def _open_with_pillow(data: bytes, *, name: str) -> Image.Image:
    if not data:
        raise PhotoRejectedError("empty file", photo=name)
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise PhotoRejectedError(
                    f"{opened.width}x{opened.height} pixels is over the limit of {MAX_PIXELS}",
                    photo=name,
                )
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except PhotoRejectedError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise PhotoRejectedError(f"not a readable image ({exc})", photo=name) from exc
    if image.mode in {"I;16", "I;16B", "I;16L", "I"}:
        array = np.asarray(image, dtype=np.float64)
        top = array.max() or 1.0
        image = Image.fromarray((array / top * 255.0).round().astype(np.uint8), "L")
    return image


def flatten(image: Image.Image) -> Image.Image:
    """RGB from any mode; transparent pixels (alpha, palette transparency) become white."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in {"RGBA", "LA", "PA", "RGBa", "La"}:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode != "RGB":
        return image.convert("RGB")
    return image


@dataclass(frozen=True)
class Padding:
    """How much :func:`pad_to_multiple` added at the right and at the bottom."""

    width: int
    height: int
    right: int
    bottom: int


def pad_to_multiple(image: Image.Image, multiple: int) -> tuple[Image.Image, Padding]:
    """Grow ``image`` to sides divisible by ``multiple`` by mirroring its right and
    bottom edges (edge replication where the image is thinner than the padding)."""
    width, height = image.size
    right, bottom = -width % multiple, -height % multiple
    padding = Padding(width, height, right, bottom)
    if not right and not bottom:
        return image, padding
    array = np.asarray(image)
    spec = [(0, bottom), (0, right)] + [(0, 0)] * (array.ndim - 2)
    mode = "reflect" if bottom < height and right < width else "edge"
    return Image.fromarray(np.pad(array, spec, mode=mode)), padding


def crop_back(image: Image.Image, padding: Padding) -> Image.Image:
    """Remove what :func:`pad_to_multiple` added; ``image`` may have been rescaled."""
    padded_w, padded_h = padding.width + padding.right, padding.height + padding.bottom
    if image.size == (padded_w, padded_h):
        return image.crop((0, 0, padding.width, padding.height))
    sx, sy = image.width / padded_w, image.height / padded_h
    return image.crop((0, 0, round(padding.width * sx), round(padding.height * sy)))


def fit_long_side(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """``size`` scaled so its longer side is ``long_side``, aspect ratio kept."""
    width, height = size
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def to_array(image: Image.Image) -> np.ndarray:
    """RGB image -> float32 array in [0, 1], shape (H, W, 3)."""
    return np.asarray(image, dtype=np.float32) / 255.0


def to_image(array: np.ndarray) -> Image.Image:
    """Float array in [0, 1] -> 8-bit RGB (or L for 2-D arrays) image."""
    return Image.fromarray((np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes of ``image``, without metadata."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue()
