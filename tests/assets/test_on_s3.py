"""Catalogue, photos and media store on S3 (a moto server on loopback)."""

import uuid
from pathlib import Path

import boto3
from listing_support import (
    dagster_instance,
    latest_metadata,
    run_catalogue,
    run_listings,
    tiny_jpeg,
    write_catalogue,
)

from bkbn_pipelines.definitions import build_definitions
from bkbn_pipelines.resources import BackboneResource, MediaStoreResource
from bkbn_pipelines.storage import MediaStore


def test_catalogue_and_photos_from_s3_into_an_s3_store(tmp_path: Path, s3_endpoint: str) -> None:
    bucket = f"bkbn-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=bucket)
    local = write_catalogue(
        tmp_path / "export",
        [{"listing_id": "S3/1", "photos": [("front.jpg", tiny_jpeg(7))]}],
    )
    s3.upload_file(str(local), bucket, "exports/catalogue.csv")
    s3.upload_file(
        str(tmp_path / "export" / "photos" / "front.jpg"), bucket, "exports/photos/front.jpg"
    )

    media = MediaStoreResource(root=f"s3://{bucket}/media", s3_endpoint_url=s3_endpoint)
    defs = build_definitions(
        backbone=BackboneResource(backend="local", device="cpu"), media_store=media
    )
    with dagster_instance() as instance:
        run_catalogue(
            defs, instance, f"s3://{bucket}/exports/catalogue.csv", s3_endpoint_url=s3_endpoint
        )
        result = run_listings(defs, instance, "s3-1", selection=["raw_listing_photos"])
        assert result.success
        metadata = latest_metadata(instance, "raw_listing_photos", "s3-1")
    assert metadata["photos"] == 1
    store = MediaStore(f"s3://{bucket}/media", storage_options={"endpoint_url": s3_endpoint})
    manifest = store.read_manifest("raw_listing_photos", "s3-1")
    assert list(manifest["source"]) == [f"s3://{bucket}/exports/photos/front.jpg"]
    assert manifest["uri"].iloc[0].startswith(f"s3://{bucket}/media/listings/s3-1/")
    assert store.get(manifest["key"].iloc[0])[:2] == b"\xff\xd8"
