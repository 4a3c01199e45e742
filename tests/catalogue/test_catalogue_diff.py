"""Content hashes, diffs between catalogues and idempotent snapshots."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import boto3
import numpy as np
import pandas as pd

from bkbn_pipelines.catalogue import (
    LATEST_KEY,
    content_hash,
    diff_catalogues,
    read_catalogue,
    read_snapshot,
    write_snapshot,
)
from bkbn_pipelines.storage import MediaStore

HEADER = "listing_id,address,price,beds,photos,updated_at"


def catalogue_at(folder: Path, *rows: str):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "export.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return read_catalogue(path)


def test_content_hash_ignores_representation() -> None:
    base = {"listing_id": "a", "address": "1 A St", "price": 100, "beds": 2, "photos": ["x", "y"]}
    same = dict(base, price=100.0, beds=np.int64(2), photos="x; y", city=float("nan"))
    assert content_hash(base) == content_hash(same)
    assert content_hash(base) == content_hash(pd.Series(same))
    assert content_hash(base) == content_hash(dict(base, updated_at="2030-01-01"))
    for change in (
        {"price": 101},
        {"photos": ["y", "x"]},
        {"address": "1 B St"},
        {"style": "coastal"},
    ):
        assert content_hash(dict(base, **change)) != content_hash(base)
    assert len(content_hash(base)) == 64


def test_diff_reports_new_changed_removed(tmp_path: Path) -> None:
    before = catalogue_at(
        tmp_path / "d1",
        "MLS/1,A,100,1,a.jpg,2026-12-01",
        "keep,B,100,1,b.jpg,2026-12-01",
        "gone,C,100,1,c.jpg,2026-12-01",
    )
    after = catalogue_at(
        tmp_path / "d1",
        "MLS/1,A,110,1,a.jpg,2026-12-02",
        "keep,B,100,1,b.jpg,2026-12-02",
        "0150,D,100,1,d.jpg,2026-12-02",
    )
    diff = diff_catalogues(before.listings, after.listings)
    assert diff.new == ["0150"]
    assert diff.changed == ["mls-1"]
    assert diff.removed == ["gone"]
    assert diff.unchanged == ["keep"]
    assert diff.to_run == ["0150", "mls-1"]
    assert diff.counts() == {"new": 1, "changed": 1, "removed": 1, "unchanged": 1}
    assert diff_catalogues(None, after.listings).new == ["0150", "keep", "mls-1"]


def test_diff_without_hash_or_slug_columns() -> None:
    previous = pd.DataFrame({"listing_id": ["MLS/1"], "address": ["A"], "photos": ["a.jpg"]})
    current = pd.DataFrame({"listing_id": ["MLS/1"], "address": ["B"], "photos": ["a.jpg"]})
    assert diff_catalogues(previous, current).changed == ["mls-1"]


def test_snapshot_is_idempotent(tmp_path: Path) -> None:  # issue 5, case 6
    store = MediaStore(tmp_path / "media")
    cat = catalogue_at(
        tmp_path / "src", "000388907,A,1,1,a.jpg;b.jpg,2026-12-01", "MLS/1,B,2,2,c.jpg,"
    )
    day = dt.date(2026, 12, 3)
    for _ in range(3):  # the job retried after a failure
        keys = write_snapshot(store, cat, day=day)
    assert keys == ("catalogue/snapshots/2026-12-03.parquet", LATEST_KEY)
    assert store.list("catalogue") == [
        "catalogue/latest.parquet",
        "catalogue/snapshots/2026-12-03.parquet",
    ]
    latest = read_snapshot(store)
    assert len(latest) == 2
    assert latest["listing_id"].tolist() == ["000388907", "MLS/1"]
    assert latest["photos"].tolist() == cat.listings["photos"].tolist()
    assert len(pd.read_parquet(tmp_path / "media" / "catalogue" / "snapshots")) == 2
    assert diff_catalogues(latest, cat.listings).unchanged == ["000388907", "mls-1"]
    assert read_snapshot(MediaStore(tmp_path / "empty")) is None


def test_snapshot_on_s3(s3_endpoint: str, tmp_path: Path) -> None:
    bucket = f"bkbn-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    store = MediaStore(f"s3://{bucket}/m", storage_options={"endpoint_url": s3_endpoint})
    cat = catalogue_at(tmp_path, "0150,A,1,1,a.jpg,2026-12-01")
    write_snapshot(store, cat, day=dt.date(2026, 12, 3))
    write_snapshot(store, cat, day=dt.date(2026, 12, 3))
    assert len(read_snapshot(store)) == 1
    assert read_snapshot(store)["listing_id"].tolist() == ["0150"]


def test_hash_survives_the_snapshot_roundtrip(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "media")
    cat = catalogue_at(tmp_path / "src", "0150,A,1.5,2,a.jpg;b.jpg,2026-12-01", "x,B,,,c.jpg,")
    write_snapshot(store, cat)
    latest = read_snapshot(store)
    for row in latest.to_dict(orient="records"):
        assert content_hash(row) == row["content_hash"]
    for _, row in latest.iterrows():
        assert content_hash(row) == row["content_hash"]
