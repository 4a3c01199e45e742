"""Helpers shared by the runtime tests: example photos and image checks."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

PHOTOS = Path(__file__).resolve().parents[2] / "examples" / "photos"


def photo_bytes(name: str) -> bytes:
    return (PHOTOS / name).read_bytes()


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
