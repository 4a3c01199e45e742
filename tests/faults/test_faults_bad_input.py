"""Bad input through the whole nightly job: catalogue, then every per-listing asset.

The tests make every input themselves: broken and hostile photos beside photos that
are odd but legitimate (CMYK, 16-bit grey, palette, RGBA, animated GIF, HEIC under a
``.png`` name, every EXIF orientation, a panorama over the pixel budget), and catalogue
rows with missing fields, duplicate ids, awkward ids and non-ASCII addresses.  Each bad
photo is named with its listing in the event log and the metadata; every other photo
and listing goes on to its brochure.  The renders run on the local backend (relight
and brochure are real code on the CPU; staging is off), so the colours that reach the
brochure PDF are the real ones.
"""

from __future__ import annotations

import csv
import html
import io
import struct
import unicodedata
import zlib
from pathlib import Path

import numpy as np
import pytest
from fault_support import assert_store_consistent
from listing_support import (
    dagster_instance,
    failed_listings,
    latest_metadata,
    make_defs,
    run_catalogue,
    run_listings,
)
from PIL import Image
from pypdf import PdfReader

from bkbn_pipelines.storage import MediaStore

PHOTOS = Path(__file__).resolve().parents[2] / "examples" / "photos"
_MB = 1024 * 1024


def _real(size: tuple[int, int] = (240, 160)) -> Image.Image:
    with Image.open(PHOTOS / "int_pixabay_bedroom.jpg") as im:
        return im.convert("RGB").resize(size, Image.Resampling.LANCZOS)


def _encode(im: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **options)
    return buf.getvalue()


def _png_bomb(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height``, with no pixels behind it."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


T = Image.Transpose
#: The stored pixels of each orientation: what a camera writes so that applying the
#: EXIF orientation turns them upright again.
_STORED = {
    2: T.FLIP_LEFT_RIGHT,
    3: T.ROTATE_180,
    4: T.FLIP_TOP_BOTTOM,
    5: T.TRANSPOSE,
    6: T.ROTATE_90,
    7: T.TRANSVERSE,
    8: T.ROTATE_270,
}


def _oriented(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = _real((120, 80)).transpose(_STORED[orientation])
    return _encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def _heic() -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return _encode(_real(), "HEIF")


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (32, 24), c) for c in ((200, 60, 40), (40, 200, 60))]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def _sixteen_bit_grey() -> bytes:
    ramp = np.tile(np.linspace(0, 65535, 128).round().astype(np.uint16), (64, 1))
    return _encode(Image.fromarray(ramp), "PNG")


def _palette() -> bytes:
    im = Image.new("P", (40, 30), 0)
    im.putpalette([200, 40, 40, 40, 40, 200] + [0] * 762)
    im.paste(1, (20, 0, 40, 30))
    return _encode(im, "PNG", transparency=1)


def _rgba() -> bytes:
    im = Image.new("RGBA", (40, 30), (30, 60, 200, 255))
    im.paste((0, 0, 0, 0), (20, 0, 40, 30))
    return _encode(im, "PNG")


BAD = {
    "truncated.jpg": lambda: _encode(_real(), "JPEG")[:1500],
    "empty.jpg": lambda: b"",
    "page.jpg": lambda: b"<!DOCTYPE html><html><body>Moved</body></html>",
    "bomb.png": lambda: _png_bomb(40_000, 40_000),
    "huge.jpg": lambda: b"\xff\xd8\xff\xe0" + bytes(40 * _MB),  # 40 MB, over 32 MB
}
#: Photo URLs at hosts a nightly job must never reach: refused before any connection.
HOSTILE_URLS = {
    "creds.jpg": ("http://169.254.169.254/latest/meta-data/creds.jpg", "a link-local address"),
    "private.jpg": ("http://127.0.0.1:9/private.jpg", "a loopback address"),
}
ODD_BUT_FINE = {
    "grey16.png": _sixteen_bit_grey,
    "palette.png": _palette,
    "rgba.png": _rgba,
    "tour.gif": _animated_gif,
    "heic-photo.png": _heic,
    "panorama.jpg": lambda: _encode(_real((4000, 1000)), "JPEG", quality=85),
    **{f"orientation-{n}.jpg": (lambda n=n: _oriented(n)) for n in range(2, 9)},
}
ADDRESS_NFD = unicodedata.normalize("NFD", "Rue de l'Église 3, Besançon")


def _write_export(folder: Path) -> Path:
    photos = folder / "photos"
    photos.mkdir(parents=True)
    for name, make in {**BAD, **ODD_BUT_FINE}.items():
        (photos / name).write_bytes(make())
    (photos / "bedroom.jpg").write_bytes(_encode(_real(), "JPEG", quality=95))
    (photos / "bedroom-cmyk.jpg").write_bytes(_encode(_real().convert("CMYK"), "JPEG", quality=95))
    (photos / "old.jpg").write_bytes(_encode(_real((100, 70)), "JPEG"))
    base = {
        "city": "Besançon",
        "price": "250000",
        "currency": "EUR",
        "beds": "2",
        "baths": "1",
        "area_m2": "70",
        "style": "scandi-warm",
        "capture": "",
        "updated_at": "2026-12-01T08:00:00Z",
    }
    mixed = ";".join(
        [*(f"photos/{n}" for n in [*BAD, *ODD_BUT_FINE]), *(u for u, _ in HOSTILE_URLS.values())]
    )
    rows = [
        {**base, "listing_id": "MLS/7", "address": "7 Test Street", "photos": mixed},
        {
            **base,
            "listing_id": "12 Main St, Springfield",
            "address": ADDRESS_NFD,
            "photos": "photos/bedroom.jpg",
        },
        {**base, "listing_id": "unit|9", "address": "9 Unit Row",
         "photos": "photos/bedroom-cmyk.jpg"},
        # a duplicate id: the later row wins, whatever its place in the file
        {**base, "listing_id": "0042", "address": "42 New Road", "photos": "photos/bedroom.jpg",
         "updated_at": "2026-12-02T08:00:00Z"},
        {**base, "listing_id": "0042", "address": "42 Old Road", "photos": "photos/old.jpg"},
        # missing fields: rejected with their reason, the others go on
        {**base, "listing_id": "", "address": "No Id Lane", "photos": "photos/bedroom.jpg"},
        {**base, "listing_id": "NOADDR-1", "address": "", "photos": "photos/bedroom.jpg"},
        {**base, "listing_id": "NOPHOTO-1", "address": "1 Empty Way", "photos": ""},
    ]  # fmt: skip
    path = folder / "catalogue.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _pdf_hero(store: MediaStore, slug: str) -> Image.Image:
    frame = store.read_manifest("brochures", slug)
    [key] = [k for k in frame["key"] if str(k).endswith(".pdf")]
    reader = PdfReader(io.BytesIO(store.get(key)))
    assert len(reader.pages) >= 1
    return reader.pages[0].images[0].image.convert("RGB")


def _mean_colour(im: Image.Image) -> np.ndarray:
    return np.asarray(im.resize((32, 32), Image.Resampling.BOX), float).mean(axis=(0, 1))


@pytest.mark.slow
def test_bad_photos_and_rows_are_named_and_everything_else_reaches_its_brochure(
    tmp_path: Path,
) -> None:
    export = _write_export(tmp_path / "export")
    media = tmp_path / "media"
    defs = make_defs(media)
    with dagster_instance() as instance:
        catalogue = run_catalogue(defs, instance, export)
        meta = catalogue.asset_materializations_for_node("listing_catalogue")[0].metadata
        assert meta["rejected"].value == 3
        reasons = meta["rejected_rows"].value  # a markdown table: row, listing id, reason
        for word in ("missing listing_id", "missing address", "no photos"):
            assert word in reasons, reasons
        assert "NOADDR-1" in reasons and "NOPHOTO-1" in reasons
        slugs = sorted(instance.get_dynamic_partitions("listings"))
        assert slugs == ["0042", "12-main-st-springfield", "mls-7", "unit-9"]

        result = run_listings(
            defs,
            instance,
            "0042",
            "unit-9",
            config={"staging_enabled": False, "photo_max_pixels": 1_000_000},
        )
        assert result.success, failed_listings(result)
        log = "\n".join(r.user_message for r in instance.all_logs(result.run_id))

        # every bad photo: named with its listing, in the log and in the metadata
        raw = latest_metadata(instance, "raw_listing_photos", "mls-7")
        failures = {f["photo"]: f["error"] for f in raw["failures"]}
        assert set(failures) == set(BAD) | set(HOSTILE_URLS)
        for name, (_, kind) in HOSTILE_URLS.items():
            assert kind in failures[name], failures[name]
        assert "over the limit of 33,554,432 bytes" in failures["huge.jpg"]  # 32 MiB
        assert "pixels" in failures["bomb.png"]
        for name in [*BAD, *HOSTILE_URLS]:
            assert any("MLS/7" in line and name in line for line in log.splitlines()), name
        # every odd but legitimate photo: stored, upright, the panorama downscaled
        assert raw["photos"] == len(ODD_BUT_FINE)
        store = MediaStore(media)
        photos = store.read_manifest("raw_listing_photos", "mls-7").set_index("photo")
        upright = np.asarray(_real((120, 80)), float)
        for n in range(2, 9):
            row = photos.loc[f"orientation-{n}.jpg"]
            assert (row["width"], row["height"]) == (120, 80), n  # EXIF applied
            stored = np.asarray(Image.open(io.BytesIO(store.get(row["key"]))), float)
            assert np.abs(stored - upright).mean() < 10, n  # turned the right way
        pano = photos.loc["panorama.jpg"]
        assert pano["width"] * pano["height"] <= 1_000_000 and pano["width"] >= 1990
        assert "downscaled from 4000x1000" in pano["note"]
        assert "first frame" in photos.loc["tour.gif"]["note"]
        grey = Image.open(io.BytesIO(store.get(photos.loc["grey16.png"]["key"]))).convert("L")
        assert np.asarray(grey).min() < 10 and np.asarray(grey).max() > 245  # not washed out

        # the bad photos never stopped anything: every listing has its brochure
        for slug in slugs:
            assert latest_metadata(instance, "brochures", slug), slug
        assert_store_consistent(store, local_root=media)
        # the duplicate id: the newest row won
        snapshot = store.read_table("catalogue/latest.parquet")
        [row] = snapshot[snapshot["listing_id"] == "0042"].to_dict("records")
        assert row["address"] == "42 New Road"
        addresses = set(snapshot["address"])
        assert unicodedata.normalize("NFC", ADDRESS_NFD) in addresses
        assert ADDRESS_NFD not in addresses
        html_key = next(
            k
            for k in store.read_manifest("brochures", "12-main-st-springfield")["key"]
            if str(k).endswith(".html")
        )
        assert "Rue de l'Église 3" in html.unescape(store.get(html_key).decode("utf-8"))

        # the CMYK photo reaches the PDF with the colours of its RGB twin
        want = _mean_colour(_pdf_hero(store, "12-main-st-springfield"))
        got = _mean_colour(_pdf_hero(store, "unit-9"))
        assert np.abs(want - got).max() < 8, (want, got)
