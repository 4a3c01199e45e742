"""Photos from s3:// (moto server on loopback), local paths, file:// and data: URIs."""

from __future__ import annotations

import base64
from pathlib import Path

import boto3
import pytest
import s3fs
from _media_samples import sample_jpeg

from bkbn_pipelines._errors import FetchError, PhotoRejectedError
from bkbn_pipelines.media import FetchPolicy, fetch_photo, load_photo

PHOTO = sample_jpeg()


def refused(source: str | Path, policy: FetchPolicy, photo: str = "p.jpg") -> str:
    with pytest.raises(FetchError) as info:
        fetch_photo(source, listing_id="000388907", photo=photo, policy=policy)
    assert str(info.value).startswith(f"listing '000388907', photo {photo!r}: ")
    return str(info.value)


@pytest.fixture(scope="module")
def s3_photos(s3_endpoint: str) -> dict:
    # moto accepts any credentials; given here because module fixtures run before the
    # suite's per-test environment is set.
    options = {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}
    bucket = "media-test-photos"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    if bucket not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
        client.create_bucket(Bucket=bucket)
    fs = s3fs.S3FileSystem(**options)
    fs.pipe(f"{bucket}/listings/MLS-1/front.jpg", PHOTO)
    fs.pipe(f"{bucket}/listings/MLS-1/huge.jpg", b"\xff\xd8\xff" + b"\0" * 300_000)
    return options


def test_s3_photo_is_read(s3_photos: dict) -> None:
    policy = FetchPolicy(storage_options=s3_photos)
    url = "s3://media-test-photos/listings/MLS-1/front.jpg"
    assert fetch_photo(url, listing_id="MLS-1", policy=policy) == PHOTO


def test_s3_size_limit_missing_object_and_bucket_allow_list(s3_photos: dict) -> None:
    small = FetchPolicy(storage_options=s3_photos, max_bytes=100_000)
    url = "s3://media-test-photos/listings/MLS-1/huge.jpg"
    assert "over the limit of 100,000 bytes (max_bytes)" in refused(url, small)

    policy = FetchPolicy(storage_options=s3_photos)
    missing = "s3://media-test-photos/listings/MLS-1/gone.jpg?versionId=secret"
    message = refused(missing, policy)
    assert "no such object: s3://media-test-photos/listings/MLS-1/gone.jpg" in message
    assert "secret" not in message

    only_other = FetchPolicy(storage_options=s3_photos, allowed_hosts={"other-bucket"})
    url = "s3://media-test-photos/listings/MLS-1/front.jpg"
    assert "bucket 'media-test-photos' is not in allowed_hosts" in refused(url, only_other)


def test_local_paths_only_below_the_roots(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    (root / "MLS-1").mkdir(parents=True)
    photo = root / "MLS-1" / "front.jpg"
    photo.write_bytes(PHOTO)
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(PHOTO)
    (root / "MLS-1" / "link.jpg").symlink_to(outside)
    policy = FetchPolicy(local_roots=(root,))

    assert fetch_photo(photo, listing_id="MLS-1", policy=policy) == PHOTO
    assert fetch_photo(photo.as_uri(), listing_id="MLS-1", policy=policy) == PHOTO
    assert "outside the allowed local_roots" in refused(
        root / "MLS-1" / ".." / ".." / "secret.jpg", policy
    )
    assert "outside the allowed local_roots" in refused(root / "MLS-1" / "link.jpg", policy)
    assert "outside the allowed local_roots" in refused("file:///etc/hostname", policy)
    assert "no such file: nope.jpg" in refused(root / "nope.jpg", policy)
    assert "is not a regular file" in refused(root / "MLS-1", policy)
    assert "no local_roots configured" in refused(photo, FetchPolicy())
    small = FetchPolicy(local_roots=(root,), max_bytes=1000)
    assert "over the limit of 1,000 bytes (max_bytes)" in refused(photo, small)


def test_data_uri() -> None:
    uri = "data:image/jpeg;base64," + base64.b64encode(PHOTO).decode()
    assert fetch_photo(uri, listing_id="1", policy=FetchPolicy()) == PHOTO
    assert "(max_bytes)" in refused(uri, FetchPolicy(max_bytes=1000))
    assert "no comma" in refused("data:image/png;base64", FetchPolicy())
    assert "scheme 'data' is not allowed" in refused(uri, FetchPolicy(allowed_schemes={"https"}))


def test_photo_name_defaults_to_the_file_name() -> None:
    with pytest.raises(FetchError) as info:
        fetch_photo(
            "https://photos.example/a/b/kitchen%201.jpg?sig=x",
            listing_id="1",
            policy=FetchPolicy(allowed_schemes={"s3"}),
        )
    assert info.value.photo == "kitchen 1.jpg"


def test_load_photo_fetches_and_normalises(tmp_path: Path) -> None:
    (tmp_path / "front.jpg").write_bytes(PHOTO)
    (tmp_path / "back.jpg").write_bytes(b"<!doctype html><title>Sign in</title>")
    policy = FetchPolicy(local_roots=(tmp_path,))
    result = load_photo(tmp_path / "front.jpg", listing_id="MLS-1", policy=policy)
    assert (result.width, result.height, result.source_format) == (320, 214, "image/jpeg")
    with pytest.raises(PhotoRejectedError) as info:
        load_photo(tmp_path / "back.jpg", listing_id="MLS-1", policy=policy)
    assert str(info.value) == "listing 'MLS-1', photo 'back.jpg': not an image (looks like HTML)"
