"""Photos that must be refused, each with a message naming the listing and the photo."""

from __future__ import annotations

import io

import pytest
from _media_samples import encode, png_header_bomb, real_photo
from PIL import Image, ImageFile

from bkbn_pipelines._errors import MediaError, PhotoRejectedError
from bkbn_pipelines.media import DEFAULT_MAX_BYTES, normalise_photo, open_image, sniff

LISTING = "MLS-1"


def rejected(data: bytes, photo: str = "kitchen.jpg", **limits) -> PhotoRejectedError:
    with pytest.raises(PhotoRejectedError) as info:
        normalise_photo(data, listing_id=LISTING, photo=photo, **limits)
    err = info.value
    assert err.listing_id == LISTING
    assert err.photo == photo
    assert str(err).startswith(f"listing {LISTING!r}, photo {photo!r}: ")
    return err


def test_zero_byte_file() -> None:
    err = rejected(b"")
    assert "empty file (0 bytes)" in str(err)


def test_html_saved_as_jpg() -> None:
    page = b"\n  <!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>"
    err = rejected(page)
    assert str(err) == "listing 'MLS-1', photo 'kitchen.jpg': not an image (looks like HTML)"


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"Access denied\n", "looks like text"),
        (b'{"error": "expired"}', "looks like JSON"),
        (b"%PDF-1.7\n...", "looks like a PDF document"),
        (b"PK\x03\x04\x14\x00", "looks like a ZIP archive"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", "such as a video"),
        (b"\x00\x01\x02\x03\xfe\xfd\xfc\xfb", "unrecognised format, starts with 00 01 02"),
    ],
)
def test_other_things_served_as_photos(data: bytes, what: str) -> None:
    assert what in str(rejected(data))


def test_truncated_jpeg() -> None:
    whole = encode(real_photo(), "JPEG", quality=90)
    err = rejected(whole[: len(whole) // 2])
    assert "truncated" in str(err)
    # The refusal came from the decoder, not from a global switch someone flipped.
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_png() -> None:
    whole = encode(real_photo(), "PNG")
    assert "truncated or corrupt" in str(rejected(whole[: len(whole) * 2 // 3], "plan.png"))


def test_decompression_bomb_header_is_refused_before_decoding() -> None:
    # 100000 x 100000 claimed by a 100-byte file: refused from the header alone.
    bomb = png_header_bomb(100_000, 100_000)
    assert len(bomb) < 200
    err = rejected(bomb, "bomb.png")
    assert "decompression bomb" in str(err)
    assert "10,000,000,000 pixels" in str(err)
    assert "bomb_pixels" in str(err)


def test_bomb_limit_is_a_setting() -> None:
    # 12000 x 12000 is under Pillow's own limit; our setting refuses it first.
    err = rejected(png_header_bomb(12_000, 12_000), "pano.png", bomb_pixels=100_000_000)
    assert "12000x12000 (144,000,000 pixels)" in str(err)
    assert "over the limit of 100,000,000 pixels (bomb_pixels)" in str(err)


def test_photo_over_the_size_limit_names_the_limit() -> None:
    photo = encode(real_photo(), "JPEG")
    padded = photo + b"\0" * (40 * 1024 * 1024 - len(photo))
    assert DEFAULT_MAX_BYTES == 32 * 1024 * 1024
    err = rejected(padded, "drone.jpg")
    assert "40 MiB is over the 32 MiB limit on photo size (max_bytes)" in str(err)


def test_open_image_refuses_the_same_way() -> None:
    with pytest.raises(PhotoRejectedError) as info:
        open_image(b"<html></html>", name="hall.jpg", listing_id="0150")
    assert str(info.value) == "listing '0150', photo 'hall.jpg': not an image (looks like HTML)"


def test_errors_belong_to_the_media_branch() -> None:
    with pytest.raises(MediaError):
        sniff(b"", listing_id=LISTING, photo="a.jpg")


def test_frameless_gif_is_refused() -> None:
    assert isinstance(rejected(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "anim.gif"), MediaError)


def test_one_bad_photo_leaves_the_next_one_alone() -> None:
    good = encode(real_photo(), "JPEG")
    results = []
    for name, data in [("a.jpg", b""), ("b.jpg", good), ("c.jpg", good[:500])]:
        try:
            results.append(normalise_photo(data, listing_id=LISTING, photo=name).width)
        except PhotoRejectedError as err:
            results.append(err.photo)
    assert results == ["a.jpg", 320, "c.jpg"]


def test_corrupt_exif_does_not_reject_the_photo() -> None:
    im = real_photo()
    data = encode(im, "JPEG", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7f")
    result = normalise_photo(data, listing_id=LISTING, photo="x.jpg")
    assert result.image.size == im.size
    with Image.open(io.BytesIO(result.data)) as out:
        assert "exif" not in out.info
