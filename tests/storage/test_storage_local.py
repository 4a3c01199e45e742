"""The media store on a local folder: objects, atomic writes, tables and manifests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from bkbn_pipelines._errors import StorageError
from bkbn_pipelines.storage import MediaStore, StoredObject


class FailingReader:
    """A binary file whose read fails after the first chunk has been handed out."""

    def __init__(self, check=None) -> None:
        self.calls = 0
        self.check = check

    def read(self, size: int = -1) -> bytes:
        self.calls += 1
        if self.calls == 1:
            return b"x" * 1000
        if self.check is not None:
            self.check()
        raise OSError("device unplugged mid-write")


def all_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_put_get_roundtrip(tmp_path: Path) -> None:
    store = MediaStore(str(tmp_path))
    obj = store.put("listings/a/raw/p.jpg", b"jpeg-bytes", media_type="image/jpeg")
    assert obj == StoredObject(
        key="listings/a/raw/p.jpg",
        uri=(tmp_path / "listings/a/raw/p.jpg").as_uri(),
        sha256=hashlib.sha256(b"jpeg-bytes").hexdigest(),
        size=10,
        media_type="image/jpeg",
    )
    assert store.get(obj.key) == b"jpeg-bytes"
    assert store.exists(obj.key)
    assert store.list("listings/a") == ["listings/a/raw/p.jpg"]
    assert store.local_path(obj.key) == tmp_path / "listings/a/raw/p.jpg"
    store.delete(obj.key)
    store.delete(obj.key)  # deleting twice is fine
    assert not store.exists(obj.key)
    with pytest.raises(StorageError, match=r"listings/a/raw/p\.jpg"):
        store.get(obj.key)


def test_relative_root_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = MediaStore("./.bkbn_media")
    assert store.root == str(tmp_path / ".bkbn_media")
    assert store.is_local


def test_failed_put_leaves_nothing(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    key = "listings/a/raw/p.jpg"
    with pytest.raises(StorageError, match="device unplugged") as info:
        store.put(key, FailingReader(), media_type="image/jpeg")
    assert isinstance(info.value.__cause__, OSError)
    assert not store.exists(key)
    assert store.list("") == []
    assert all_files(tmp_path) == []


def test_failed_put_keeps_the_previous_object(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    key = "listings/a/raw/p.jpg"
    store.put(key, b"version one", media_type="image/jpeg")
    with pytest.raises(StorageError):
        store.put(key, FailingReader(), media_type="image/jpeg")
    assert store.get(key) == b"version one"
    assert all_files(tmp_path) == [tmp_path / key]


def test_partial_object_is_never_visible_during_a_write(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    key = "listings/a/raw/p.jpg"
    seen: dict[str, object] = {}

    def look() -> None:
        seen["exists"] = store.exists(key)
        seen["listed"] = store.list("listings")
        seen["pandas"] = os.path.exists(tmp_path / key)

    with pytest.raises(StorageError):
        store.put(key, FailingReader(check=look), media_type="image/jpeg")
    assert seen == {"exists": False, "listed": [], "pandas": False}


def test_put_content_is_idempotent(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    first = store.put_content("mls-1", "raw", b"same", suffix=".jpg", media_type="image/jpeg")
    mtime = os.stat(tmp_path / first.key).st_mtime_ns
    again = store.put_content("mls-1", "raw", b"same", suffix=".jpg", media_type="image/jpeg")
    assert again == first
    assert first.key == f"listings/mls-1/raw/{hashlib.sha256(b'same').hexdigest()[:16]}.jpg"
    assert os.stat(tmp_path / first.key).st_mtime_ns == mtime
    assert store.list("listings/mls-1") == [first.key]
    with pytest.raises(StorageError):
        store.put_content("mls-1", "raw", b"x", suffix="jpg", media_type="image/jpeg")


def test_write_and_read_table(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    frame = pd.DataFrame({"a": ["0150", "000388907"], "b": [1, 2]})
    obj = store.write_table("catalogue/t.parquet", frame)
    assert obj.media_type == "application/vnd.apache.parquet"
    back = store.read_table("catalogue/t.parquet")
    assert back["a"].tolist() == ["0150", "000388907"]
    store.put("catalogue/bad.parquet", b"not parquet", media_type="x")
    with pytest.raises(StorageError, match="Parquet"):
        store.read_table("catalogue/bad.parquet")


def manifest_rows(slug: str, count: int) -> list[dict]:
    return [
        {"key": f"listings/{slug}/raw/{i}.jpg", "sha256": f"{i:064x}", "size": i, "note": None}
        for i in range(count)
    ]


def test_manifests_are_replaced_not_duplicated(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    slugs = {"0150": 2, "000388907": 3, "mls-12345": 1}
    for _ in range(3):  # three reruns of the same materialisation
        for slug, count in slugs.items():
            key = store.write_manifest("raw_listing_photos", slug, manifest_rows(slug, count))
            assert key == f"manifests/raw_listing_photos/listing={slug}/part-0.parquet"
    assert len(store.list("manifests")) == 3

    whole = pd.read_parquet(tmp_path / "manifests" / "raw_listing_photos")
    assert len(whole) == 6
    assert sorted(whole["listing_slug"].unique()) == sorted(slugs)
    assert not whole.duplicated(subset=["listing_slug", "key"]).any()

    table = ds.dataset(tmp_path / "manifests" / "raw_listing_photos", partitioning="hive")
    assert table.count_rows() == 6

    ours = store.read_manifest("raw_listing_photos")
    assert len(ours) == 6
    assert sorted(ours["listing"].unique()) == sorted(slugs)  # leading zeros kept
    one = store.read_manifest("raw_listing_photos", "0150")
    assert len(one) == 2
    assert set(one["listing"]) == {"0150"}

    store.write_manifest("raw_listing_photos", "000388907", manifest_rows("000388907", 1))
    assert len(store.read_manifest("raw_listing_photos")) == 4


def test_manifest_with_no_rows_removes_the_file(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    store.write_manifest("raw", "a", manifest_rows("a", 2))
    store.write_manifest("raw", "a", [])
    assert store.read_manifest("raw").empty
    assert store.read_manifest("raw", "a").empty
    assert store.read_manifest("never_written").empty


def test_manifests_with_differing_columns_read_together(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    store.write_manifest("renders", "a", [{"key": "k1", "width": 1024}])
    store.write_manifest("renders", "b", [{"key": "k2", "width": 2048.5, "extra": "x"}])
    frame = store.read_manifest("renders").sort_values("key")
    assert frame["width"].tolist() == [1024, 2048.5]
    assert frame["listing"].tolist() == ["a", "b"]


def test_manifest_rows_and_the_partition_column(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    with pytest.raises(StorageError, match="partition column"):
        store.write_manifest("raw", "a", [{"listing": "b", "key": "x"}])
    store.write_manifest("raw", "a", [{"key": "x"}])
    rows = store.read_manifest("raw", "a").to_dict(orient="records")
    store.write_manifest("raw", "a", rows)  # rows read back can be written back
    assert store.read_manifest("raw", "a").to_dict(orient="records") == rows
    with pytest.raises(StorageError):
        store.write_manifest("raw", "../a", [{"key": "x"}])


def test_failed_write_into_a_file_path_is_a_storage_error(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    store.put("listings/a", b"a file where a folder should be", media_type="text/plain")
    with pytest.raises(StorageError) as info:
        store.put("listings/a/raw/p.jpg", b"x", media_type="image/jpeg")
    assert info.value.__cause__ is not None
    assert store.list("listings") == ["listings/a"]


def test_sweep_removes_temporary_files_left_by_a_killed_write(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    store.put("listings/a/raw/p.jpg", b"kept", media_type="image/jpeg")
    leftover = tmp_path / "listings/a/raw/.bkbn-tmp-killed"
    leftover.write_bytes(b"half a photo")
    assert store.list("") == ["listings/a/raw/p.jpg"]  # never visible
    assert store.sweep_temporary(older_than=3600) == []  # too young to be abandoned
    assert store.sweep_temporary(older_than=0) == ["listings/a/raw/.bkbn-tmp-killed"]
    assert all_files(tmp_path) == [tmp_path / "listings/a/raw/p.jpg"]


def test_all_null_columns_take_the_type_of_other_listings(tmp_path: Path) -> None:
    MediaStore(tmp_path).write_manifest("renders", "b", [{"key": "k2", "width": 5, "err": "x"}])
    fresh = MediaStore(tmp_path)  # another process: learns the types from the stored files
    fresh.write_manifest("renders", "a", [{"key": "k1", "width": None, "err": None}])
    whole = pd.read_parquet(tmp_path / "manifests" / "renders")  # "a" is read first
    assert whole.sort_values("key")["width"].tolist()[1] == 5
    assert len(whole) == 2


def test_manifest_with_an_explicit_schema(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    schema = pa.schema([("key", pa.string()), ("width", pa.int32()), ("ms", pa.float64())])
    store.write_manifest("renders", "a", [{"key": "k1"}], schema=schema)
    frame = store.read_manifest("renders", "a")
    assert list(frame.columns) == ["key", "width", "ms", "listing_slug", "listing"]
    assert frame["width"].isna().all()


def test_incompatible_column_types_are_read_as_text(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    store.write_manifest("renders", "a", [{"key": "k1", "width": 5}])
    store.write_manifest("renders", "b", [{"key": "k2", "width": "wide"}])
    frame = store.read_manifest("renders").sort_values("key")
    assert frame["width"].tolist() == ["5", "wide"]
