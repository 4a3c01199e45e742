"""Reading the nightly export: ids stay strings, rows are cleaned or rejected with a reason."""

from __future__ import annotations

import gzip
import unicodedata
import uuid
from pathlib import Path

import boto3
import pandas as pd
import pytest

from bkbn_pipelines._errors import CatalogueError
from bkbn_pipelines.catalogue import LISTING_COLUMNS, read_catalogue

HEADER = "listing_id,address,city,price,currency,beds,baths,area_m2,style,photos,capture,updated_at"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write_csv(folder: Path, *rows: str, header: str = HEADER) -> Path:
    path = folder / "export.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("engine", ["c", "pyarrow", "python"])
def test_leading_zeros_survive_every_engine(tmp_path: Path, engine: str) -> None:
    path = write_csv(
        tmp_path,
        "000388907,1 A St,X,100,EUR,1,1,20,,a.jpg,,2026-01-01",
        "0150,2 B St,X,100,EUR,1,1,20,,b.jpg,,2026-01-01",
    )
    cat = read_catalogue(path, engine=engine)
    assert cat.listings["listing_id"].tolist() == ["000388907", "0150"]
    assert cat.partition_map == {"000388907": "000388907", "0150": "0150"}
    assert cat.rejected.empty


def test_columns_and_types(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "MLS/12345, 12  Main St ,Springfield,485000,usd,3,2.5,142,Coastal,"
        "photos/a.jpg; photos/b.jpg ;,captures/c.zip,2026-11-30T22:15:00Z",
    )
    cat = read_catalogue(path)
    assert list(cat.listings.columns) == list(LISTING_COLUMNS)
    row = cat.listing("mls-12345")
    assert row["address"] == "12 Main St"
    assert row["currency"] == "USD"
    assert row["style"] == "coastal"
    assert (row["beds"], row["baths"], row["area_m2"], row["price"]) == (3, 2.5, 142.0, 485000.0)
    assert row["photos"] == [str(tmp_path / "photos/a.jpg"), str(tmp_path / "photos/b.jpg")]
    assert row["capture"] == str(tmp_path / "captures/c.zip")
    assert str(cat.listings["updated_at"].dtype).endswith("UTC]")
    assert cat.facts("mls-12345")["address"] == "12 Main St"
    with pytest.raises(CatalogueError):
        cat.listing("nope")


def test_ids_with_slash_comma_pipe(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "MLS/12345,A,X,1,EUR,1,1,1,,a.jpg,,",
        '"12 Main St, Springfield",B,X,1,EUR,1,1,1,,b.jpg,,',
        "lot|7,C,X,1,EUR,1,1,1,,c.jpg,,",
    )
    cat = read_catalogue(path, engine="pyarrow")
    assert cat.partition_map == {
        "12-main-st-springfield": "12 Main St, Springfield",
        "lot-7": "lot|7",
        "mls-12345": "MLS/12345",
    }


def test_addresses_become_nfc(tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "12 Rue de la République, Besançon")
    path = write_csv(tmp_path, f'L1,"{decomposed}",Besançon,1,EUR,1,1,1,,a.jpg,,')
    address = read_catalogue(path).listings["address"].iloc[0]
    assert address == unicodedata.normalize("NFC", "12 Rue de la République, Besançon")
    assert address != decomposed


def test_timestamps_in_utc(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "a,A,X,1,EUR,1,1,1,,a.jpg,,2026-12-01T08:30:00+01:00",
        "b,B,X,1,EUR,1,1,1,,b.jpg,,2026-12-01 07:30:00",
        "c,C,X,1,EUR,1,1,1,,c.jpg,,2026-12-01T02:30:00-05:00",
        "d,D,X,1,EUR,1,1,1,,d.jpg,,",
    )
    stamps = read_catalogue(path).listings.set_index("listing_id")["updated_at"]
    expected = pd.Timestamp("2026-12-01 07:30:00", tz="UTC")
    assert stamps["a"] == stamps["b"] == stamps["c"] == expected
    assert pd.isna(stamps["d"])


def test_bad_rows_are_rejected_with_reasons(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "good,A,X,1,EUR,1,1,1,,a.jpg,,",
        ",B,X,1,EUR,1,1,1,,b.jpg,,",
        "nophoto,C,X,1,EUR,1,1,1,,,,",
        "noaddr,,X,1,EUR,1,1,1,,a.jpg,,",
        "badstyle,D,X,1,EUR,1,1,1,baroque,a.jpg,,",
        "badprice,E,X,cheap,EUR,1,1,1,,a.jpg,,",
        "badbeds,F,X,1,EUR,2.5,1,1,,a.jpg,,",
        "badtime,G,X,1,EUR,1,1,1,,a.jpg,,next tuesday",
        "badcur,H,X,1,euros,1,1,1,,a.jpg,,",
        "///,I,X,1,EUR,1,1,1,,a.jpg,,",
    )
    cat = read_catalogue(path)
    assert cat.listings["listing_id"].tolist() == ["good"]
    reasons = dict(zip(cat.rejected["row"], cat.rejected["reason"], strict=True))
    assert reasons[2] == "missing listing_id"
    assert reasons[3] == "listing 'nophoto': no photos"
    assert reasons[4] == "listing 'noaddr': missing address"
    assert "baroque" in reasons[5] and "scandi-warm" in reasons[5]
    assert "price 'cheap'" in reasons[6]
    assert "beds '2.5'" in reasons[7]
    assert "next tuesday" in reasons[8]
    assert "euros" in reasons[9].lower()
    assert "'///'" in reasons[10]
    assert cat.rejected["listing_id"].tolist()[1:4] == ["nophoto", "noaddr", "badstyle"]


def test_duplicates_keep_the_latest_row(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "a,Old Street,X,100,EUR,1,1,1,,a.jpg,,2026-12-02T10:00:00Z",
        "a,New Street,X,120,EUR,1,1,1,,a.jpg,,2026-12-03T10:00:00Z",
        "a,Older Street,X,90,EUR,1,1,1,,a.jpg,,2026-12-01T10:00:00Z",
        "b,Same,X,1,EUR,1,1,1,,b.jpg,,2026-12-01T10:00:00Z",
        "b,Same,X,1,EUR,1,1,1,,b.jpg,,2026-12-01T10:00:00Z",
    )
    cat = read_catalogue(path)
    assert cat.listings["address"].tolist() == ["New Street", "Same"]
    assert cat.duplicates == 3
    assert cat.rejected.empty


def test_ids_that_collide_are_rejected_naming_both(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "MLS/1,A,X,1,EUR,1,1,1,,a.jpg,,",
        "mls-1,B,X,1,EUR,1,1,1,,b.jpg,,",
        "other,C,X,1,EUR,1,1,1,,c.jpg,,",
    )
    cat = read_catalogue(path)
    assert cat.listings["listing_id"].tolist() == ["other"]
    assert cat.rejected["listing_id"].tolist() == ["MLS/1", "mls-1"]
    assert all("'MLS/1', 'mls-1'" in r for r in cat.rejected["reason"])


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "a,X,a.jpg", header="listing_id,city,photos")
    with pytest.raises(CatalogueError, match="'address'"):
        read_catalogue(path)


def test_optional_columns_may_be_absent(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "a,A,a.jpg", header="listing_id,address,photos")
    cat = read_catalogue(path)
    assert cat.listing("a")["price"] is None
    assert cat.listing("a")["updated_at"] is None


def test_unreadable_sources(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="cannot read"):
        read_catalogue(tmp_path / "missing.csv")
    with pytest.raises(CatalogueError, match="format"):
        read_catalogue(tmp_path / "export.xlsx")


def test_parquet_source_with_bom_free_strings(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "listing_id": ["000388907", "MLS/12345"],
            "address": ["A", "B"],
            "photos": [["a.jpg", "b.jpg"], ["https://example.com/c.jpg"]],
            "updated_at": pd.to_datetime(["2026-12-01 07:30", "2026-12-01 08:00"]),
        }
    )
    frame.to_parquet(tmp_path / "export.parquet")
    cat = read_catalogue(tmp_path / "export.parquet")
    assert cat.listings["listing_id"].tolist() == ["000388907", "MLS/12345"]
    assert cat.listing("mls-12345")["photos"] == ["https://example.com/c.jpg"]
    assert cat.listing("000388907")["photos"][0] == str(tmp_path / "a.jpg")
    assert str(cat.listings["updated_at"].iloc[0]) == "2026-12-01 07:30:00+00:00"


def test_csv_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(b"\xef\xbb\xbflisting_id,address,photos\n0150,A,a.jpg\n")
    assert read_catalogue(path, engine="pyarrow").listings["listing_id"].tolist() == ["0150"]


def test_catalogue_on_s3(s3_endpoint: str) -> None:
    bucket = f"bkbn-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    body = "listing_id,address,photos\n000388907,A,photos/a.jpg;https://x.test/b.jpg\n"
    client.put_object(Bucket=bucket, Key="exports/nightly.csv", Body=body.encode())
    cat = read_catalogue(
        f"s3://{bucket}/exports/nightly.csv",
        storage_options={"endpoint_url": s3_endpoint, "key": "kid", "secret": "hush-hush"},
        engine="pyarrow",
    )
    assert cat.listing("000388907")["photos"] == [
        f"s3://{bucket}/exports/photos/a.jpg",
        "https://x.test/b.jpg",
    ]
    with pytest.raises(CatalogueError) as info:
        read_catalogue(
            f"s3://{bucket}/exports/missing.csv",
            storage_options={"endpoint_url": s3_endpoint, "key": "kid", "secret": "hush-hush"},
        )
    assert "hush-hush" not in str(info.value)


@pytest.mark.parametrize("engine", ["c", "pyarrow"])
def test_the_example_catalogue(engine: str) -> None:
    cat = read_catalogue(EXAMPLES / "catalogue.csv", engine=engine)
    assert cat.rejected.empty
    assert len(cat.listings) == 4
    assert {"000388907", "MLS/12345"} <= set(cat.listings["listing_id"])
    assert any(not a.isascii() for a in cat.listings["address"])
    for photos in cat.listings["photos"]:
        assert 2 <= len(photos) <= 4
        assert all(Path(p).is_file() for p in photos)
    captures = cat.listings["capture"].dropna().tolist()
    assert captures == [str(EXAMPLES / "captures" / "demo_walkthrough.zip")]


def test_gzipped_csv(tmp_path: Path) -> None:
    path = tmp_path / "export.csv.gz"
    path.write_bytes(gzip.compress(b"listing_id,address,photos\n000388907,A,a.jpg\n"))
    assert read_catalogue(path).listings["listing_id"].tolist() == ["000388907"]
