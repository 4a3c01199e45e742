"""Damaged files of every format: accepted or refused cleanly, never a raw decoder error."""

from __future__ import annotations

import io
import random
import warnings

import pillow_heif
import pytest
from _media_samples import encode, real_photo

from bkbn_pipelines._errors import PhotoRejectedError
from bkbn_pipelines.media import normalise_photo


def _sample(fmt: str) -> bytes:
    im = real_photo((96, 64))
    if fmt == "HEIF":
        buf = io.BytesIO()
        pillow_heif.from_pillow(im).save(buf, format="HEIF")
        return buf.getvalue()
    return encode(im, fmt)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "TIFF", "AVIF", "HEIF"])
def test_truncated_and_corrupted_files_never_escape_as_other_errors(fmt: str) -> None:
    data = _sample(fmt)
    rng = random.Random(f"media-{fmt}")
    outcomes = {"ok": 0, "rejected": 0}
    for attempt in range(40):
        damaged = bytearray(data)
        if attempt % 2 == 0:
            damaged = damaged[: rng.randrange(1, len(damaged))]
        else:
            for _ in range(rng.randrange(1, 8)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing may leak out as a warning either
            try:
                result = normalise_photo(bytes(damaged), listing_id="L", photo=f"x.{fmt}")
            except PhotoRejectedError as err:
                assert str(err).startswith(f"listing 'L', photo 'x.{fmt}': ")
                outcomes["rejected"] += 1
            else:
                assert result.image.mode == "RGB" and result.data[:3] == b"\xff\xd8\xff"
                outcomes["ok"] += 1
    assert outcomes["rejected"] > 0
