"""Photos normalised from many threads at once give the same bytes as one at a time."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

from _media_samples import encode, real_photo

from bkbn_pipelines._errors import PhotoRejectedError
from bkbn_pipelines.media import normalise_photo


def _inputs() -> list[bytes]:
    photo = real_photo((160, 107))
    corrupt_exif = b"Exif\x00\x00II*\x00\xff\xff\xff\x7f"
    return [
        encode(photo, "JPEG"),
        encode(photo, "PNG"),
        encode(photo, "JPEG", exif=corrupt_exif),  # records a Pillow warning
        encode(photo.convert("CMYK"), "JPEG"),
        b"<html>not a photo</html>",
        encode(photo, "JPEG")[:900],
    ]


def _run(data: bytes) -> str:
    try:
        return normalise_photo(data, listing_id="L", photo="p").sha256
    except PhotoRejectedError as err:
        return err.reason


def test_threads_agree_with_a_single_thread_and_leave_warning_filters_alone() -> None:
    inputs = _inputs() * 8
    filters_before = list(warnings.filters)
    expected = [_run(data) for data in inputs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(_run, inputs)) == expected
    assert warnings.filters == filters_before
