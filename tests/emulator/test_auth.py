"""Keys, both OAuth grants with a real RS256 key pair, expiry and isolation."""

from __future__ import annotations

import logging
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bkbn_pipelines._contract import API_VERSION
from bkbn_pipelines.emulator import EmulatorConfig, load_config
from bkbn_pipelines.emulator.testing import EmulatorAdmin, TestKey, serve_in_thread

from .conftest import headers_for
from .test_basics import assert_error

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
VERSION = {"bkbn-version": API_VERSION}


def token(emulator_url: str, **body) -> httpx.Response:
    return httpx.post(f"{emulator_url}/v1/oauth/token", json=body, headers=VERSION)


def bearer(access_token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {access_token}", **VERSION}


@pytest.fixture(scope="module")
def rsa_pair() -> tuple[bytes, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, public.decode()


def assertion(private_pem: bytes, **claims) -> str:
    now = int(time.time())
    payload = {"iss": "https://issuer.test", "aud": "bkbn", "sub": "ci", "exp": now + 60, **claims}
    return jwt.encode(payload, private_pem, algorithm="RS256")


def test_bad_and_missing_keys_are_401(emulator_url):
    url = f"{emulator_url}/v1/workflows/runs/run_x"
    assert_error(httpx.get(url, headers=VERSION), 401, "authentication_error")
    wrong = {"x-api-key": "bkbn_sk_not_a_real_key", **VERSION}
    assert_error(httpx.get(url, headers=wrong), 401, "authentication_error")
    assert_error(httpx.get(url, headers=bearer("nonsense")), 401, "authentication_error")


def test_api_key_also_works_as_bearer(emulator_url, key: TestKey):
    response = httpx.get(f"{emulator_url}/v1/workflows/runs/run_x", headers=bearer(key.api_key))
    assert_error(response, 404, "not_found_error")
    assert response.headers["bkbn-organization-id"] == key.org


def test_client_credentials_grant(emulator_url, key: TestKey, photo_uri):
    response = token(
        emulator_url,
        grant_type="client_credentials",
        client_id=key.client_id,
        client_secret=key.client_secret,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert response.headers["bkbn-organization-id"] == key.org
    run = httpx.post(
        f"{emulator_url}/v1/workflows/relight/run",
        json={"input": photo_uri},
        headers=bearer(body["access_token"]),
        timeout=30,
    )
    assert run.status_code == 200, run.text
    assert run.headers["bkbn-organization-id"] == key.org


def test_token_endpoint_errors_follow_rfc_6749(emulator_url, key: TestKey):
    wrong = token(
        emulator_url, grant_type="client_credentials", client_id=key.client_id, client_secret="x"
    )
    body = assert_error(wrong, 401, "authentication_error")
    assert body["error"]["code"] == "invalid_client"
    assert body["error_description"]
    assert "x" not in body["error"]["message"].split()
    unknown = token(
        emulator_url, grant_type="client_credentials", client_id="nobody", client_secret="x"
    )
    assert assert_error(unknown, 401, "authentication_error")["error"]["code"] == "invalid_client"
    grant = token(emulator_url, grant_type="password")
    assert assert_error(grant, 400, "invalid_request_error")["error"]["code"] == (
        "unsupported_grant_type"
    )
    missing = token(emulator_url, grant_type="client_credentials")
    assert assert_error(missing, 400, "invalid_request_error")["error"]["code"] == (
        "invalid_request"
    )


def test_jwt_bearer_grant_with_rs256(emulator_url, emulator_admin: EmulatorAdmin, rsa_pair):
    private_pem, public_pem = rsa_pair
    org = emulator_admin.new_key().org
    rule = emulator_admin.add_federation_rule(
        org=org, issuer="https://issuer.test", audience="bkbn", public_key_pem=public_pem
    )
    good = token(
        emulator_url,
        grant_type=JWT_BEARER,
        federation_rule_id=rule,
        assertion=assertion(private_pem),
    )
    assert good.status_code == 200, good.text
    check = httpx.get(
        f"{emulator_url}/v1/workflows/runs/run_x", headers=bearer(good.json()["access_token"])
    )
    assert check.headers["bkbn-organization-id"] == org

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    bad_assertions = {
        "wrong audience": assertion(private_pem, aud="someone-else"),
        "wrong issuer": assertion(private_pem, iss="https://evil.test"),
        "expired": assertion(private_pem, exp=int(time.time()) - 120),
        "foreign signature": assertion(other_key),
        "not a jwt": "abc.def",
    }
    for reason, value in bad_assertions.items():
        response = token(
            emulator_url, grant_type=JWT_BEARER, federation_rule_id=rule, assertion=value
        )
        body = assert_error(response, 400, "invalid_request_error")
        assert body["error"]["code"] == "invalid_grant", reason
    unknown = token(
        emulator_url,
        grant_type=JWT_BEARER,
        federation_rule_id="rule_missing",
        assertion=assertion(private_pem),
    )
    assert assert_error(unknown, 401, "authentication_error")["error"]["code"] == "invalid_client"


def test_expired_token_is_401(emulator_url, key: TestKey, emulator_admin: EmulatorAdmin):
    access = token(
        emulator_url,
        grant_type="client_credentials",
        client_id=key.client_id,
        client_secret=key.client_secret,
    ).json()["access_token"]
    url = f"{emulator_url}/v1/workflows/runs/run_x"
    assert httpx.get(url, headers=bearer(access)).status_code == 404
    assert emulator_admin.expire_tokens(client_id=key.client_id) == 1
    body = assert_error(httpx.get(url, headers=bearer(access)), 401, "authentication_error")
    assert "expired" in body["error"]["message"]


def test_token_lifetime_comes_from_config(tmp_path):
    path = tmp_path / "emulator.yaml"
    path.write_text("token_lifetime_s: 5\n")
    assert load_config(path).token_lifetime_s == 5


def test_one_organization_never_sees_anothers_runs_or_files(
    emulator_url, emulator_admin: EmulatorAdmin, photo_uri
):
    owner, stranger = emulator_admin.new_key(), emulator_admin.new_key()
    run = httpx.post(
        f"{emulator_url}/v1/workflows/relight/run",
        json={"input": photo_uri},
        headers=headers_for(owner),
        timeout=30,
    )
    run_id, file_url = run.headers["bkbn-run-id"], run.json()["url"]
    for url in (
        f"{emulator_url}/v1/workflows/runs/{run_id}",
        f"{emulator_url}/v1/workflows/runs/{run_id}/events",
        file_url,
    ):
        assert httpx.get(url, headers=headers_for(owner)).status_code == 200
        assert_error(httpx.get(url, headers=headers_for(stranger)), 404, "not_found_error")
    assert_error(httpx.get(file_url, headers=VERSION), 401, "authentication_error")


SECRET_KEY = "bkbn_sk_secret_value_1"
SECRET_CLIENT = "s3cr3t-value-of-the-client"
SECRET_CONFIG = {
    "organizations": [{"id": "o"}],
    "api_keys": [{"key": SECRET_KEY, "org": "o"}],
    "oauth_clients": [{"client_id": "c", "client_secret": SECRET_CLIENT, "org": "o"}],
    "renderer": "latency",
    "latency": {"steps": 1, "step_ms": 0},
}


def test_secrets_stay_out_of_reprs(key: TestKey):
    config = EmulatorConfig.model_validate(SECRET_CONFIG)
    assert SECRET_KEY not in repr(config)
    assert SECRET_CLIENT not in repr(config)
    assert key.api_key not in repr(key)
    assert key.client_secret not in repr(key)


def logged_requests(url: str, photo_uri: str) -> list[str]:
    """Requests that each make the emulator log; the secrets they carried or earned."""
    good = {"x-api-key": SECRET_KEY, **VERSION}
    run = httpx.post(
        f"{url}/v1/workflows/relight/run", json={"input": photo_uri}, headers=good, timeout=30
    )
    assert run.status_code == 200, run.text
    wrong_key = "bkbn_sk_wrong_secret_value_2"
    refused = httpx.get(f"{url}/v1/workflows/runs/x", headers={"x-api-key": wrong_key, **VERSION})
    assert refused.status_code == 401
    grant = token(url, grant_type="client_credentials", client_id="c", client_secret=SECRET_CLIENT)
    assert grant.status_code == 200, grant.text
    access = grant.json()["access_token"]
    assert access.startswith("bkbn_at_")
    used = httpx.get(f"{url}/v1/workflows/runs/x", headers=bearer(access))
    assert used.status_code == 404
    wrong_secret = "wrong-client-secret-3"
    refused_grant = token(
        url, grant_type="client_credentials", client_id="c", client_secret=wrong_secret
    )
    assert refused_grant.status_code == 401
    return [SECRET_KEY, wrong_key, SECRET_CLIENT, access, wrong_secret]


def test_secrets_stay_out_of_logs(caplog, photo_uri):
    config = EmulatorConfig.model_validate(SECRET_CONFIG)
    with (
        caplog.at_level(logging.DEBUG, logger="bkbn_pipelines.emulator"),
        serve_in_thread(config, test_mode=False) as url,
    ):
        secrets = logged_requests(url, photo_uri)
    records = [r for r in caplog.records if r.name.startswith("bkbn_pipelines.emulator")]
    messages = [r.getMessage() for r in records]
    # Positive control: the admitted run, the refused key, the grant and the refused
    # grant each left a record, so a leak would have had somewhere to show.
    for expected in ("admitted", "invalid API key", "issued an access token", "invalid_client"):
        assert any(expected in m for m in messages), (expected, messages)
    logged = "\n".join(messages) + "\n" + caplog.text
    for secret in secrets:
        assert secret not in logged
    assert "bkbn_at_" not in logged


def test_token_endpoint_takes_form_bodies_and_basic_auth(emulator_url, key: TestKey):
    url = f"{emulator_url}/v1/oauth/token"
    form = httpx.post(
        url,
        data={
            "grant_type": "client_credentials",
            "client_id": key.client_id,
            "client_secret": key.client_secret,
        },
        headers=VERSION,
    )
    assert form.status_code == 200, form.text
    basic = httpx.post(
        url,
        data={"grant_type": "client_credentials"},
        auth=(key.client_id, key.client_secret),
        headers=VERSION,
    )
    assert basic.status_code == 200, basic.text
    assert basic.json()["access_token"] != form.json()["access_token"]
    garbage = httpx.post(
        url, content=b"\xff{", headers={"content-type": "application/json", **VERSION}
    )
    assert assert_error(garbage, 400, "invalid_request_error")["error"]["code"] == (
        "invalid_request"
    )


def test_key_check_compares_every_stored_digest(monkeypatch):
    import hmac

    from bkbn_pipelines.emulator import _auth

    store = _auth.CredentialStore(token_lifetime_s=60)
    keys = [f"bkbn_sk_key_{n}" for n in range(5)]
    for key_ in keys:
        store.add_key(key_, "o")
    calls = []
    real = hmac.compare_digest

    def counting(a, b):
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(_auth.hmac, "compare_digest", counting)
    for presented in (keys[0], keys[-1], "bkbn_sk_wrong"):
        calls.clear()
        store.principal_for_key(presented)
        assert len(calls) == len(keys), presented
    assert store.principal_for_key(keys[2]).org == "o"
    assert store.principal_for_key("bkbn_sk_wrong") is None
