"""Every EXIF orientation, written from the specification, comes back upright."""

from __future__ import annotations

import io

import numpy as np
import pillow_heif
import pytest
from _media_samples import PHOTOS, asymmetric, encode, stored_for_orientation
from PIL import ExifTags, Image

from bkbn_pipelines.media import normalise_photo, open_image

UPRIGHT = np.asarray(asymmetric())


def tagged(orientation: int, fmt: str) -> bytes:
    stored = Image.fromarray(stored_for_orientation(UPRIGHT, orientation), "RGB")
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    options = {"quality": 95, "subsampling": 0} if fmt == "JPEG" else {}
    return encode(stored, fmt, exif=exif, **options)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_png_orientation_is_applied_exactly(orientation: int) -> None:
    image = open_image(tagged(orientation, "PNG"), name=f"o{orientation}.png")
    assert np.array_equal(np.asarray(image), UPRIGHT)


@pytest.mark.parametrize("orientation", range(2, 9))
def test_jpeg_orientation_is_applied(orientation: int) -> None:
    result = normalise_photo(tagged(orientation, "JPEG"), listing_id="L", photo="o.jpg")
    assert result.orientation == orientation
    assert result.image.size == (UPRIGHT.shape[1], UPRIGHT.shape[0])
    error = np.abs(np.asarray(result.image, dtype=np.int16) - UPRIGHT).mean()
    assert error < 3.0
    with Image.open(io.BytesIO(result.data)) as stored:
        assert ExifTags.Base.Orientation not in stored.getexif()  # never applied twice


def test_a_real_camera_photo_rotated_by_its_tag() -> None:
    data = (PHOTOS / "exif6_pd_living_room.jpg").read_bytes()
    result = normalise_photo(data, listing_id="L", photo="living.jpg")
    assert result.orientation == 6
    assert (result.source_width, result.source_height) == (1283, 1920)
    assert (result.width, result.height) == (1920, 1283)


def test_heic_orientation_is_applied_once() -> None:
    # libheif stores the EXIF orientation as a rotation of the image itself and resets
    # the tag; the photo must come out upright, not rotated twice.
    stored = Image.fromarray(stored_for_orientation(UPRIGHT, 6), "RGB")
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    buf = io.BytesIO()
    pillow_heif.from_pillow(stored).save(buf, format="HEIF", exif=exif.tobytes(), quality=95)
    image = open_image(buf.getvalue(), name="o6.heic")
    assert image.size == (UPRIGHT.shape[1], UPRIGHT.shape[0])
    assert np.abs(np.asarray(image, dtype=np.int16) - UPRIGHT).mean() < 3.0
