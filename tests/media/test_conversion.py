"""Every accepted kind of photo comes out as upright 8-bit sRGB RGB with the right colours."""

from __future__ import annotations

import io

import numpy as np
import pillow_heif
import pytest
from _media_samples import encode, real_photo, swapped_primaries_icc
from PIL import ExifTags, Image

from bkbn_pipelines.media import JPEG_QUALITY, normalise_photo, open_image, sniff


def normalise(data: bytes, photo: str = "photo", **limits):
    return normalise_photo(data, listing_id="MLS-7", photo=photo, **limits)


def mean_error(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).mean())


def heic_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    pillow_heif.from_pillow(im).save(buf, format="HEIF", quality=90)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "media_type", "tolerance"),
    [
        ("JPEG", "image/jpeg", 4.0),
        ("PNG", "image/png", 0.0),
        ("WEBP", "image/webp", 4.0),
        ("TIFF", "image/tiff", 0.0),
        ("AVIF", "image/avif", 6.0),
    ],
)
def test_formats_decode_to_the_same_picture(fmt: str, media_type: str, tolerance: float) -> None:
    photo = real_photo()
    data = encode(photo, fmt, **({"quality": 90} if fmt in ("JPEG", "WEBP", "AVIF") else {}))
    assert sniff(data) == media_type
    image = open_image(data, name=f"kitchen.{fmt.lower()}")
    assert image.mode == "RGB"
    assert image.size == photo.size
    assert mean_error(image, photo) <= tolerance


def test_heic_named_png_is_decoded_as_heic() -> None:
    photo = real_photo()
    data = heic_bytes(photo)
    result = normalise(data, "kitchen.png")
    assert result.source_format == "image/heic"
    assert (result.width, result.height) == photo.size
    assert mean_error(result.image, photo) < 4.0


def test_cmyk_jpeg_with_adobe_marker_keeps_its_colours() -> None:
    # Pillow writes CMYK JPEGs the Adobe way: an APP14 "Adobe" segment, inverted values.
    red = Image.new("CMYK", (64, 64), (0, 255, 255, 0))
    data = encode(red, "JPEG", quality=95)
    assert b"Adobe" in data[:200]
    r, g, b = normalise(data, "red.jpg").image.getpixel((32, 32))
    assert r > 235 and g < 25 and b < 25

    photo = real_photo()
    result = normalise(encode(photo.convert("CMYK"), "JPEG", quality=95), "kitchen.jpg")
    assert result.image.mode == "RGB"
    assert mean_error(result.image, photo) < 4.0


def test_icc_profile_is_converted_to_srgb() -> None:
    # Under this profile the value (255, 0, 0) means sRGB blue.
    tagged = Image.new("RGB", (16, 16), (255, 0, 0))
    result = normalise(encode(tagged, "PNG", icc_profile=swapped_primaries_icc()), "p.png")
    assert result.icc_converted
    r, g, b = result.image.getpixel((8, 8))
    assert b > 240 and r < 15 and g < 15
    with Image.open(io.BytesIO(result.data)) as stored:
        assert "icc_profile" not in stored.info  # sRGB is implied


def test_sixteen_bit_greyscale_keeps_its_full_range() -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).round().astype(np.uint16), (16, 1))
    data = encode(Image.fromarray(ramp), "PNG")
    with Image.open(io.BytesIO(data)) as source:
        assert source.mode == "I;16"
        # Pillow's own conversion clips: nearly everything turns white.
        assert (np.asarray(source.convert("L")) == 255).mean() > 0.9
    out = np.asarray(open_image(data, name="plan.png"))[0, :, 0].astype(int)
    assert out.min() == 0 and out.max() == 255
    assert np.all(np.diff(out) >= 0)
    assert np.abs(out - np.arange(256)).max() <= 1
    assert out.mean() == pytest.approx(127.5, abs=1)


def test_palette_png_with_transparency_is_flattened_onto_white() -> None:
    im = Image.new("P", (20, 10), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.paste(1, (10, 0, 20, 10))
    data = encode(im, "PNG", transparency=1)
    result = open_image(data, name="floor.png")
    assert result.getpixel((2, 2)) == (255, 0, 0)
    assert result.getpixel((15, 5)) == (255, 255, 255)


def test_rgba_and_la_png_are_flattened_onto_white() -> None:
    rgba = Image.new("RGBA", (20, 10), (0, 0, 255, 255))
    rgba.paste((0, 0, 255, 0), (10, 0, 20, 10))
    rgba.paste((0, 0, 0, 128), (0, 0, 5, 5))
    result = open_image(encode(rgba, "PNG"))
    assert result.getpixel((7, 7)) == (0, 0, 255)
    assert result.getpixel((15, 5)) == (255, 255, 255)
    assert all(abs(c - 127) <= 2 for c in result.getpixel((2, 2)))

    la = Image.new("LA", (8, 8), (0, 0))
    assert open_image(encode(la, "PNG")).getpixel((4, 4)) == (255, 255, 255)


def test_animated_gif_keeps_the_first_frame_and_warns(caplog) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    with caplog.at_level("WARNING", logger="bkbn_pipelines.media"):
        result = normalise(buf.getvalue(), "tour.gif")
    assert result.image.getpixel((8, 8)) == (255, 0, 0)
    assert result.warnings == ("animated image/gif with 3 frames: the first frame is used",)
    assert "tour.gif" in caplog.text and "first frame" in caplog.text


def test_panorama_over_the_pixel_budget_is_downscaled_not_refused() -> None:
    pano = real_photo((4000, 1000))
    for fmt in ("JPEG", "PNG"):  # JPEG decodes at reduced scale, PNG is resized
        data = encode(pano, fmt, **({"compress_level": 1} if fmt == "PNG" else {}))
        result = normalise(data, f"pano.{fmt.lower()}", max_pixels=1_000_000)
        assert result.downscaled
        assert (result.source_width, result.source_height) == (4000, 1000)
        assert result.width * result.height <= 1_000_000
        assert result.width >= 1990 and abs(result.width / result.height - 4.0) < 0.01
        assert mean_error(result.image, pano.resize(result.image.size)) < 6.0


def test_photo_within_the_budget_keeps_its_size() -> None:
    result = normalise(encode(real_photo(), "JPEG"), max_pixels=1_000_000)
    assert not result.downscaled
    assert (result.width, result.height) == (320, 214)


def test_gps_and_all_other_metadata_are_dropped() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneCo"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 36.0)
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">owner@example.com</x:xmpmeta>'
    source = encode(real_photo(), "JPEG", exif=exif, comment=b"shot at 12 Main St", xmp=xmp)
    with Image.open(io.BytesIO(source)) as check:
        assert check.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the input really has GPS
        assert check.info["comment"] and check.info["xmp"]

    result = normalise(source, "garden.jpg")
    assert result.media_type == "image/jpeg"
    with Image.open(io.BytesIO(result.data)) as stored:
        assert not stored.getexif()
        assert not stored.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert "exif" not in stored.info
        assert stored.format == "JPEG"
        assert stored.info.get("progressive", 0) == 0
    for secret in (b"Exif", b"PhoneCo", b"12 Main St", b"owner@example.com", b"xmpmeta"):
        assert secret not in result.data
    assert result.image.info == {}


def test_output_is_deterministic_and_hashed() -> None:
    import hashlib

    data = encode(real_photo(), "PNG")
    first, second = normalise(data), normalise(data)
    assert first.data == second.data
    assert first.sha256 == second.sha256 == hashlib.sha256(first.data).hexdigest()
    assert first.source_sha256 == hashlib.sha256(data).hexdigest()
    assert first.sha256 != first.source_sha256
    assert JPEG_QUALITY == 92
    assert "image=" not in repr(first) and "data=" not in repr(first)
