"""The media store resource: configuration, one store per execution, no leaked secrets."""

# No `from __future__ import annotations`: Dagster reads the context annotation.

import uuid
from pathlib import Path

import boto3
import dagster as dg
import pytest

from bkbn_pipelines.resources._media_store import MediaStoreResource
from bkbn_pipelines.storage import MediaStore

SECRET = "wJalrXUtnFEMI-never-in-the-event-log"
KEY_ID = "AKIDRESOURCETEST0001"


def test_root_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BKBN_STORAGE_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    assert MediaStoreResource().store().root == str(tmp_path / ".bkbn_media")
    monkeypatch.setenv("BKBN_STORAGE_ROOT", str(tmp_path / "from-env"))
    assert MediaStoreResource().store().root == str(tmp_path / "from-env")
    assert MediaStoreResource(root=str(tmp_path / "given")).store().root == str(tmp_path / "given")


def test_store_is_created_once(tmp_path: Path) -> None:
    resource = MediaStoreResource(root=str(tmp_path))
    assert isinstance(resource.store(), MediaStore)
    assert resource.store() is resource.store()


def test_secrets_not_in_repr() -> None:
    resource = MediaStoreResource(
        root="s3://bucket/media",
        s3_endpoint_url="http://127.0.0.1:9",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )
    for text in (repr(resource), str(resource), repr(resource.store())):
        assert SECRET not in text and KEY_ID not in text
    assert "s3://bucket/media" in repr(resource)


def test_materialise_to_s3_with_env_credentials(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"bkbn-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    monkeypatch.setenv("TEST_BKBN_S3_KEY_ID", KEY_ID)
    monkeypatch.setenv("TEST_BKBN_S3_SECRET", SECRET)
    stores: list[MediaStore] = []

    @dg.asset(partitions_def=dg.StaticPartitionsDefinition(["mls-12345", "0150"]))
    def photos(context: dg.AssetExecutionContext, media: MediaStoreResource) -> None:
        store = media.store()
        stores.append(store)
        assert media.store() is store
        obj = store.put_content(
            context.partition_key, "raw", b"jpeg", suffix=".jpg", media_type="image/jpeg"
        )
        store.write_manifest("photos", context.partition_key, [obj.as_row()])
        context.add_output_metadata({"uri": obj.uri, "store": repr(store)})

    resource = MediaStoreResource(
        root=f"s3://{bucket}/media",
        s3_endpoint_url=s3_endpoint,
        aws_access_key_id=dg.EnvVar("TEST_BKBN_S3_KEY_ID"),
        aws_secret_access_key=dg.EnvVar("TEST_BKBN_S3_SECRET"),
    )
    with dg.instance_for_test() as instance:
        for key in ("mls-12345", "0150"):
            result = dg.materialize(
                [photos], resources={"media": resource}, partition_key=key, instance=instance
            )
            assert result.success
        records = instance.fetch_materializations(dg.AssetKey("photos"), limit=10).records
        assert len(records) == 2
        everything = [
            str(entry) for run in instance.get_runs() for entry in instance.all_logs(run.run_id)
        ]
        everything += [str(run.run_config) for run in instance.get_runs()]
    assert everything
    assert not [line for line in everything if SECRET in line or KEY_ID in line]
    manifest = stores[-1].read_manifest("photos")
    assert sorted(manifest["listing"]) == ["0150", "mls-12345"]
