"""S3 refusing writes in the middle of the listing job (moto server on loopback).

moto enforces IAM policies once its authentication is switched on
(``POST /moto-api/reset-auth``), so a real ``AccessDenied`` on ``PutObject`` can be
aimed at one listing's folder while everything else works.  The switch is global to
the moto server: it is on only while the job runs and always switched off again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import dagster as dg
import httpx
from fault_support import (
    ASSETS,
    api_backbone,
    assert_listings_accounted_for,
    assert_store_consistent,
    error_log_lines,
    make_scenario,
    materialized_assets,
    renders_needed,
    simple_listings,
)
from listing_support import failed_listings

from bkbn_pipelines.resources import MediaStoreResource


@contextmanager
def iam_enforced(endpoint: str) -> Iterator[None]:
    """moto checks every request against IAM while inside the block."""
    answer = httpx.post(f"{endpoint}/moto-api/reset-auth", content=b"0")
    answer.raise_for_status()
    previous = answer.json()["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]
    try:
        yield
    finally:
        httpx.post(f"{endpoint}/moto-api/reset-auth", content=str(previous).encode())


def _user_with_policy(endpoint: str, bucket: str, deny_prefix: str) -> dict[str, str]:
    """An IAM user that may do anything in S3 except write below ``deny_prefix``."""
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
    name = f"writer-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/{deny_prefix}*",
            },
        ],
    }
    iam.put_user_policy(UserName=name, PolicyName="media", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def test_put_object_denied_for_one_listing_fails_it_alone_and_a_rerun_completes(
    tmp_path: Path,
    instance: dg.DagsterInstance,
    s3_endpoint: str,
    emulator_url: str,
    emulator_admin,
) -> None:
    bucket = f"bkbn-faults-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    creds = _user_with_policy(s3_endpoint, bucket, "media/listings/f2/enhanced_photos/")
    media = MediaStoreResource(
        root=f"s3://{bucket}/media",
        s3_endpoint_url=s3_endpoint,
        aws_access_key_id=creds["key"],
        aws_secret_access_key=creds["secret"],
    )
    key = emulator_admin.new_key()
    scenario = make_scenario(
        tmp_path,
        instance,
        api_backbone(emulator_url, api_key=key.api_key),
        simple_listings(2, 2),
        media=media,
        storage_options={"endpoint_url": s3_endpoint, **creds},
    )
    with iam_enforced(s3_endpoint):
        scenario.catalogue()
        result = scenario.run()
    assert not result.success
    assert_listings_accounted_for(instance, [result], ["f1"], expect_failed={"f2": "AccessDenied"})
    failure = failed_listings(result)["f2"]
    assert failure["asset"] == "enhanced_photos"
    assert "s3://" in failure["error"] and "listings/f2/enhanced_photos/" in failure["error"]
    assert materialized_assets(instance, "f2") == {
        name: int(name == "raw_listing_photos") for name in ASSETS
    }
    assert any("StorageError" in line for line in error_log_lines(instance, result.run_id))
    # the other listing was not touched; nothing half-written anywhere
    assert_store_consistent(scenario.store())
    # f2: its first relight was rendered, then its output could not be stored
    assert emulator_admin.renders(key.org) == renders_needed([2]) + 1

    # Writes are allowed again (auth off); the failed listing is run again alone.
    rerun = scenario.defs.resolve_job_def("listing_media_job").execute_in_process(
        instance=instance, partition_key="f2", raise_on_error=False
    )
    assert rerun.success, failed_listings(rerun)
    assert_listings_accounted_for(instance, [result, rerun], scenario.slugs)
    assert_store_consistent(scenario.store())
    # the rerun is a new Dagster run: it renders f2 in full; the one lost render is the
    # price of the refused write
    assert emulator_admin.renders(key.org) == renders_needed([2, 2]) + 1
    secrets = [creds["secret"]]
    stored = [line for r in (result, rerun) for line in error_log_lines(instance, r.run_id)]
    assert not [line for line in stored for s in secrets if s in line]


def test_a_missing_bucket_fails_the_catalogue_with_its_cause(
    tmp_path: Path, instance: dg.DagsterInstance, s3_endpoint: str
) -> None:
    bucket = f"bkbn-missing-{uuid.uuid4().hex[:10]}"
    export = tmp_path / "export"
    scenario = make_scenario(
        tmp_path,
        instance,
        api_backbone("http://127.0.0.1:9"),
        simple_listings(1, 1),
        media=MediaStoreResource(root=f"s3://{bucket}/media", s3_endpoint_url=s3_endpoint),
    )
    result = scenario.defs.resolve_job_def("nightly_catalogue_job").execute_in_process(
        instance=instance,
        run_config={
            "ops": {"listing_catalogue": {"config": {"source": str(export / "catalogue.csv")}}}
        },
        raise_on_error=False,
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.to_string()  # with its causes
    assert "StorageError" in message and bucket in message
    assert instance.get_dynamic_partitions("listings") == []  # nothing half-registered


def test_a_listing_racing_a_concurrent_write_never_names_a_folder(
    s3_endpoint: str, monkeypatch
) -> None:
    # Two listings write their manifests at once.  s3fs's find() lists the prefix, and
    # when that listing comes back empty it asks for the prefix itself, which by then
    # is a "directory" (the other listing's manifest has landed).  The store must not
    # report that folder as an object: reading it fails the listing (seen end to end
    # in the test above before the fix).
    from bkbn_pipelines.storage import MediaStore

    bucket = f"bkbn-race-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    store = MediaStore(f"s3://{bucket}/media", storage_options={"endpoint_url": s3_endpoint})
    store.write_manifest("raw_listing_photos", "a", [{"photo": "p.jpg", "key": "k"}])
    fs = store._fs
    real_lsdir = fs._lsdir

    async def empty_once(path, *args, **kwargs):  # the listing made just before the write
        fs._lsdir = real_lsdir
        return []

    monkeypatch.setattr(fs, "_lsdir", empty_once)
    listed = store.list("manifests/raw_listing_photos")
    assert "manifests/raw_listing_photos" not in listed
    assert listed in ([], ["manifests/raw_listing_photos/listing=a/part-0.parquet"])
    # the write path that met the race: a manifest whose column is all null reads the
    # types of the other listings' manifests (a new store, as in another run worker, has
    # none of them in memory and must list them)
    writer = MediaStore(f"s3://{bucket}/media", storage_options={"endpoint_url": s3_endpoint})
    writer._fs._lsdir = empty_once
    writer.write_manifest("raw_listing_photos", "b", [{"photo": "q.jpg", "key": None}])
    assert writer._fs._lsdir == real_lsdir  # the racing listing was the one it met
    assert sorted(store.read_manifest("raw_listing_photos")["listing"]) == ["a", "b"]
