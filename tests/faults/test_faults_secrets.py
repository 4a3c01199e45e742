"""No credential reaches the Dagster instance's storage, the logs or the media store.

The whole listing job runs three times against the emulator, once per way of
authenticating (API key, OAuth client credentials, workload identity with a JWT
assertion read from a file), with the media store on a moto S3 server and the package's
logger at DEBUG.  Afterwards every byte the Dagster instance wrote (run and event-log
databases, compute logs, whatever else lies under its folder), every captured log line
and every object in the bucket is searched for each secret and for any bearer token the
emulator issued (they all start ``bkbn_at_``).
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from pathlib import Path

import boto3
import jwt
import pytest
from fault_support import api_backbone, make_scenario, simple_listings
from listing_support import dagster_instance, failed_listings

from bkbn_pipelines.resources import MediaStoreResource

TOKEN_PREFIX = b"bkbn_at_"


def _bucket(endpoint: str, access_key: str, secret_key: str) -> list[bytes]:
    """Every key and object body of every bucket (moto keeps them in memory)."""
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
    )
    found: list[bytes] = []
    for bucket in s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                found.append(item["Key"].encode())
                found.append(s3.get_object(Bucket=name, Key=item["Key"])["Body"].read())
    return found


@pytest.mark.slow
def test_no_credential_is_stored_or_logged_anywhere(
    tmp_path: Path,
    emulator_url: str,
    emulator_admin,
    s3_endpoint: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG, logger="bkbn_pipelines")
    aws_key, aws_secret = "AKIA" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)
    bucket = f"bkbn-secrets-{uuid.uuid4().hex[:10]}"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=aws_key,
        aws_secret_access_key=aws_secret,
    ).create_bucket(Bucket=bucket)

    api = emulator_admin.new_key()
    oauth = emulator_admin.new_key(oauth_client=True)
    federated = emulator_admin.new_key()
    hs256 = "federation-" + secrets.token_hex(16)
    rule = emulator_admin.add_federation_rule(
        org=federated.org, issuer="https://issuer.test", audience="bkbn", hs256_secret=hs256
    )
    claims = {"iss": "https://issuer.test", "aud": "bkbn", "sub": "pod", "exp": time.time() + 600}
    assertion = jwt.encode(claims, hs256, algorithm="HS256")
    (tmp_path / "token").write_text(assertion)

    credentials = {
        "api key": {"api_key": api.api_key},
        "client credentials": {"client_id": oauth.client_id, "client_secret": oauth.client_secret},
        "workload identity": {},  # from BKBN_FEDERATION_RULE_ID and BKBN_ASSERTION_FILE
    }
    secrets_ = [api.api_key, oauth.client_secret, hs256, assertion, aws_secret]
    with dagster_instance() as instance:
        for n, (how, settings) in enumerate(credentials.items()):
            if how == "workload identity":
                monkeypatch.setenv("BKBN_FEDERATION_RULE_ID", rule)
                monkeypatch.setenv("BKBN_ASSERTION_FILE", str(tmp_path / "token"))
            media = MediaStoreResource(
                root=f"s3://{bucket}/media{n}",
                s3_endpoint_url=s3_endpoint,
                aws_access_key_id=aws_key,
                aws_secret_access_key=aws_secret,
            )
            scenario = make_scenario(
                tmp_path / f"run{n}",
                instance,
                api_backbone(emulator_url, **settings),
                simple_listings(1, 1, prefix=f"S{n}"),
                media=media,
            )
            scenario.catalogue()
            result = scenario.run()
            assert result.success, (how, failed_listings(result))
        root = Path(instance.root_directory)
        stored = [path.read_bytes() for path in root.rglob("*") if path.is_file()]
        assert stored, "the instance wrote its storage below its folder"
    # the scan reads what the runs wrote: their partition keys are there in plain bytes
    for n in range(3):
        assert any(f"s{n}1".encode() in blob for blob in stored), n

    logged = caplog.text.encode()
    objects = _bucket(s3_endpoint, aws_key, aws_secret)
    assert any(b"%PDF-" in body for body in objects), "the brochures are in the bucket"
    for where, blobs in (("instance storage", stored), ("logs", [logged]), ("bucket", objects)):
        # booleans, so that a failure does not print the blob that holds the secret
        for index, secret in enumerate(secrets_):
            leaked = any(secret.encode() in blob for blob in blobs)
            assert not leaked, f"secret {index} reached the {where}"
        token = any(TOKEN_PREFIX in blob for blob in blobs)
        assert not token, f"a bearer token reached the {where}"
    # the package did log, and said how it authenticated, without the credentials
    assert "/v1/oauth/token -> 200" in caplog.text
