"""Keys stay below the root, whatever a listing id looks like."""

from __future__ import annotations

from pathlib import Path

import pytest

import bkbn_pipelines.storage as storage
from bkbn_pipelines._errors import CatalogueError, StorageError
from bkbn_pipelines.catalogue import slugify_listing_id
from bkbn_pipelines.storage import MediaStore, key_for, validate_key

ESCAPES = [
    "../x",
    "/etc/passwd",
    "a/../../b",
    "a/./b",
    "..",
    ".",
    "a//b",
    "a\\b",
    "..\\..\\windows",
    "a\x00b",
    "a\nb",
    "s3://other-bucket/x",
    "C:/x",
    "",
]


@pytest.mark.parametrize("key", ESCAPES)
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(StorageError):
        validate_key(key)


@pytest.mark.parametrize("key", ESCAPES)
def test_store_refuses_unsafe_keys_for_every_operation(tmp_path: Path, key: str) -> None:
    store = MediaStore(tmp_path / "root")
    for call in (
        lambda: store.put(key, b"x", media_type="text/plain"),
        lambda: store.get(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.uri(key),
    ):
        with pytest.raises(StorageError):
            call()
    assert not (tmp_path / "x").exists()
    assert list(tmp_path.rglob("*")) in ([], [tmp_path / "root"])


def test_safe_keys_pass() -> None:
    for key in ("listings/mls-12345/raw/a.jpg", "manifests/raw/listing=0150/part-0.parquet"):
        assert validate_key(key) == key


@pytest.mark.parametrize(
    ("slug", "asset", "name"),
    [("../x", "raw", "a.jpg"), ("a/b", "raw", "a.jpg"), ("ok", "..", "a"), ("ok", "raw", "")],
)
def test_key_for_refuses_unsafe_parts(slug: str, asset: str, name: str) -> None:
    with pytest.raises(StorageError):
        key_for(slug, asset, name)


NASTY_IDS = [
    "../../etc/passwd",
    "/etc/passwd",
    "..",
    "a/../../b",
    "..\\..\\boot.ini",
    "%2e%2e/%2e%2e/x",
    "MLS/12345",
    "12 Main St, Springfield",
    "x|y[1]",
    "\x00../evil",
    "~root/.ssh",
    "…/…/up",
    "C:\\Windows\\system32",
]


@pytest.mark.parametrize("listing_id", NASTY_IDS)
def test_a_listing_id_never_escapes_the_root(tmp_path: Path, listing_id: str) -> None:
    root = tmp_path / "root"
    store = MediaStore(root)
    try:
        slug = slugify_listing_id(listing_id)
    except CatalogueError:
        return  # nothing usable in the id: no key is ever made from it
    stored = store.put_content(slug, "raw", b"photo", suffix=".jpg", media_type="image/jpeg")
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) == 1
    assert written[0].resolve().is_relative_to((root / "listings" / slug).resolve())
    assert written[0].parent == root / "listings" / slug / "raw"
    assert stored.key == f"listings/{slug}/raw/{written[0].name}"


def test_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    (root / "listings").mkdir(parents=True)
    (root / "listings" / "evil").symlink_to(outside, target_is_directory=True)
    store = MediaStore(root)
    with pytest.raises(StorageError, match="outside"):
        store.put("listings/evil/raw.jpg", b"x", media_type="image/jpeg")
    assert list(outside.iterdir()) == []


def test_all_names_are_public_and_importable() -> None:
    for name in storage.__all__:
        assert not name.startswith("_")
        assert getattr(storage, name) is not None


def test_dotted_ids_stay_distinct(tmp_path: Path) -> None:  # issue 5, case 3
    store = MediaStore(tmp_path)
    stored = [
        store.put_content(
            slugify_listing_id(listing_id), "raw", b"same", suffix=".jpg", media_type="image/jpeg"
        )
        for listing_id in ("unit-4.1", "unit-4.2")
    ]
    name = stored[0].key.rsplit("/", 1)[1]
    assert [s.key for s in stored] == [
        f"listings/unit-4.1/raw/{name}",
        f"listings/unit-4.2/raw/{name}",
    ]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.jpg")) == [
        s.key for s in stored
    ]
