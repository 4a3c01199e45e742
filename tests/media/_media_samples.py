"""Inputs for the media tests, generated in memory (real photos only as colour sources)."""

from __future__ import annotations

import functools
import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

PHOTOS = Path(__file__).resolve().parents[2] / "examples" / "photos"
KITCHEN = PHOTOS / "int_cc0_kitchen.jpg"


def real_photo(size: tuple[int, int] | None = (320, 214)) -> Image.Image:
    """An upright real interior photo as RGB, optionally resized."""
    with Image.open(KITCHEN) as im:
        rgb = im.convert("RGB")
    return rgb.resize(size, Image.Resampling.LANCZOS) if size else rgb


@functools.cache
def sample_jpeg() -> bytes:
    """The photo the test server serves: a small real JPEG."""
    return encode(real_photo(), "JPEG", quality=90)


def encode(im: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **options)
    return buf.getvalue()


def asymmetric(width: int = 48, height: int = 32) -> Image.Image:
    """An image no flip or rotation maps onto itself: four solid, distinct quadrants."""
    arr = np.zeros((height, width, 3), dtype=np.uint8)
    h2, w2 = height // 2, width // 2
    arr[:h2, :w2] = (220, 30, 30)
    arr[:h2, w2:] = (30, 200, 30)
    arr[h2:, :w2] = (30, 30, 220)
    arr[h2:, w2:] = (240, 220, 40)
    arr[:4, :4] = (255, 255, 255)  # marks the top-left corner
    return Image.fromarray(arr, "RGB")


def stored_for_orientation(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores for ``orientation`` (EXIF 2.3, tag 0x0112).

    Written from the specification, not from Pillow: a viewer applying the tag to these
    pixels shows ``upright``.
    """
    transforms = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],  # mirrored horizontally
        3: lambda a: a[::-1, ::-1],  # rotated 180
        4: lambda a: a[::-1, :],  # mirrored vertically
        5: lambda a: a.transpose(1, 0, 2),  # mirrored along the main diagonal
        6: lambda a: np.rot90(a, 1),  # display needs 90 degrees clockwise
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # mirrored along the anti-diagonal
        8: lambda a: np.rot90(a, -1),  # display needs 90 degrees anticlockwise
    }
    return np.ascontiguousarray(transforms[orientation](upright))


def png_header_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def swapped_primaries_icc() -> bytes:
    """An RGB ICC v2 profile whose red and blue colorants are sRGB's blue and red.

    A pixel (255, 0, 0) tagged with it is blue once converted to sRGB, so a test can
    see that the profile was applied.
    """
    red, green, blue = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)
    d50 = (0.9642, 1.0, 0.8249)

    def xyz(v) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(_s15(c) for c in v)

    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, int(2.2 * 256)) + b"\0\0"
    text = b"swapped primaries\0"
    desc = (
        b"desc\0\0\0\0"
        + struct.pack(">I", len(text))
        + text
        + b"\0" * 8  # unicode language and count
        + b"\0" * 3  # scriptcode code and count
        + b"\0" * 67
    )
    desc += b"\0" * (-len(desc) % 4)
    cprt = b"text\0\0\0\0no copyright\0"
    cprt += b"\0" * (-len(cprt) % 4)
    tags = [
        (b"desc", desc),
        (b"cprt", cprt),
        (b"wtpt", xyz(d50)),
        (b"rXYZ", xyz(blue)),
        (b"gXYZ", xyz(green)),
        (b"bXYZ", xyz(red)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"\0" * 4  # platform
        + b"\0" * 4  # flags
        + b"\0" * 8  # manufacturer, model
        + b"\0" * 8  # attributes
        + struct.pack(">I", 0)  # rendering intent
        + b"".join(_s15(c) for c in d50)
        + b"lcms"
        + b"\0" * 44
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body
