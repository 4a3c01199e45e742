"""The format comes from the magic bytes, whatever the name says."""

from __future__ import annotations

import struct

import pytest

from bkbn_pipelines._errors import PhotoRejectedError
from bkbn_pipelines.media import IMAGE_MEDIA_TYPES, sniff


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\0\0\0\0" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\0\0\0\x08mdat"


@pytest.mark.parametrize(
    ("data", "media_type"),
    [
        (b"\xff\xd8\xff\xe0\0\x10JFIF", "image/jpeg"),
        (b"\xff\xd8\xff\xe1\0\x10Exif", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image/png"),
        (b"RIFF\x24\0\0\0WEBPVP8 ", "image/webp"),
        (b"GIF87a\x01\0", "image/gif"),
        (b"GIF89a\x01\0", "image/gif"),
        (b"II*\0\x08\0\0\0", "image/tiff"),
        (b"MM\0*\0\0\0\x08", "image/tiff"),
        (b"II+\0\x08\0\0\0", "image/tiff"),  # BigTIFF
        (ftyp(b"heic", b"mif1", b"heic"), "image/heic"),
        (ftyp(b"heix", b"mif1"), "image/heic"),
        (ftyp(b"mif1", b"heic"), "image/heic"),  # major brand generic, compatible says HEIC
        (ftyp(b"mif1", b"miaf"), "image/heif"),
        (ftyp(b"msf1"), "image/heif"),
        (ftyp(b"avif", b"mif1", b"miaf"), "image/avif"),
        (ftyp(b"mif1", b"avif"), "image/avif"),
    ],
)
def test_magic_bytes(data: bytes, media_type: str) -> None:
    assert sniff(data) == media_type
    assert media_type in IMAGE_MEDIA_TYPES


@pytest.mark.parametrize(
    "data",
    [
        ftyp(b"isom", b"mp41"),  # an MP4 video
        ftyp(b"qt  "),  # a QuickTime movie
        b"RIFF\x24\0\0\0WAVEfmt ",  # audio in a RIFF container
        b"BM\x36\0\0\0",  # BMP is not accepted
    ],
)
def test_near_misses_are_refused(data: bytes) -> None:
    with pytest.raises(PhotoRejectedError, match="not an image"):
        sniff(data, listing_id="L", photo="clip.jpg")


def test_sniff_error_names_listing_and_photo() -> None:
    with pytest.raises(PhotoRejectedError) as info:
        sniff(b"", listing_id="MLS-1", photo="kitchen.jpg")
    assert str(info.value) == (
        "listing 'MLS-1', photo 'kitchen.jpg': empty file (0 bytes), not an image"
    )
