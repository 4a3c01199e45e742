"""Credentials over ``httpx.MockTransport``: API key, OAuth grants, refresh, single flight."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from bkbn_pipelines import AuthenticationError, ConfigError, OAuthError
from bkbn_pipelines.client import BackboneClient, Pacer, TokenCache

from ._mock import error_body

OK = {"url": "http://api.test/v1/files/f", "ms": 1, "usage": {"tokens": 1}}


class TokenServer:
    """Issues ``tok-N`` tokens; accepts only tokens it has not revoked."""

    def __init__(self, expires_in: float = 900, grant_delay: float = 0.0) -> None:
        self.expires_in = expires_in
        self.grant_delay = grant_delay
        self.grants: list[dict] = []
        self.valid: set[str] = set()
        self.lock = threading.Lock()
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/oauth/token":
            time.sleep(self.grant_delay)
            grant = json.loads(request.content)
            with self.lock:
                self.grants.append(grant)
                if grant.get("client_secret") == "wrong":
                    body = {
                        "type": "error",
                        "request_id": "req_o",
                        "error": {
                            "type": "invalid_request_error",
                            "message": "bad client",
                            "code": "invalid_client",
                        },
                    }
                    return httpx.Response(401, json=body)
                token = f"tok-{len(self.grants)}"
                self.valid.add(token)
            return httpx.Response(
                200,
                json={"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in},
            )
        with self.lock:
            self.calls += 1
        auth = request.headers.get("authorization", "")
        if auth.removeprefix("Bearer ") not in self.valid:
            return httpx.Response(401, content=error_body("authentication_error", "expired"))
        return httpx.Response(200, json=OK)


def client_for(server: TokenServer, **kwargs) -> BackboneClient:
    kwargs.setdefault("client_id", "cid")
    kwargs.setdefault("client_secret", "csecret")
    return BackboneClient(
        base_url="http://api.test",
        transport=httpx.MockTransport(server),
        pacer=Pacer("t"),
        sleep=lambda s: None,
        **kwargs,
    )


def test_client_credentials_token_cached_and_sent_as_bearer():
    server = TokenServer()
    with client_for(server) as client:
        client.workflows.run("staging", input="data:,x")
        client.workflows.run("staging", input="data:,x")
        assert client.token_refreshes == 1
    assert server.grants == [
        {"grant_type": "client_credentials", "client_id": "cid", "client_secret": "csecret"}
    ]


def test_token_refreshed_ahead_of_expiry():
    server = TokenServer(expires_in=900)  # refreshed 60 s before it expires
    now = [1000.0]
    with client_for(server, clock=lambda: now[0]) as client:
        client.workflows.run("staging", input="data:,x")
        now[0] += 839
        client.workflows.run("staging", input="data:,x")
        assert client.token_refreshes == 1
        now[0] += 2
        client.workflows.run("staging", input="data:,x")
        assert client.token_refreshes == 2


def test_a_short_lived_token_is_used_for_half_its_life():
    # 30 s tokens are inside the 60 s margin from the start: they are refreshed halfway
    # instead, not before every call
    server = TokenServer(expires_in=30)
    now = [1000.0]
    with client_for(server, clock=lambda: now[0]) as client:
        for _ in range(5):
            client.workflows.run("staging", input="data:,x")
            now[0] += 2
        assert client.token_refreshes == 1
        now[0] += 6  # 16 s after the grant
        client.workflows.run("staging", input="data:,x")
        assert client.token_refreshes == 2


def test_401_leads_to_one_refresh_and_one_retry():
    server = TokenServer()
    with client_for(server) as client:
        client.workflows.run("staging", input="data:,x")
        server.valid.clear()  # the server revoked every token
        client.workflows.run("staging", input="data:,x")
        assert client.token_refreshes == 2
        # The server refuses every token: one refresh, one retry, then the 401.
        server.valid.clear()
        orig = server.__call__

        def refuse(request):
            response = orig(request)
            server.valid.clear()
            return response

        client._transport.http._transport = httpx.MockTransport(refuse)
        calls = server.calls
        with pytest.raises(AuthenticationError):
            client.workflows.run("staging", input="data:,x")
        assert server.calls - calls == 2


def test_api_key_401_is_not_retried():
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(401, content=error_body("authentication_error", "no"))

    client = BackboneClient(
        api_key="bkbn_sk_x",
        base_url="http://api.test",
        transport=httpx.MockTransport(handler),
        pacer=Pacer("t"),
    )
    with client, pytest.raises(AuthenticationError):
        client.workflows.run("staging", input="data:,x")
    assert len(calls) == 1


def test_refused_grant_is_oauth_error_with_rfc_code_and_no_secret():
    server = TokenServer()
    with client_for(server, client_secret="wrong") as client, pytest.raises(OAuthError) as info:
        client.workflows.run("staging", input="data:,x")
    assert info.value.error_type == "invalid_client"
    assert info.value.status_code == 401
    assert "wrong" not in str(info.value)


def test_single_flight_across_threads_with_mock():
    server = TokenServer(grant_delay=0.05)
    with client_for(server) as client:
        errors = []

        def work():
            try:
                client.workflows.run("staging", input="data:,x")
            except Exception as exc:  # collected for the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert len(server.grants) == 1


def test_workload_identity_reads_the_assertion_file_at_each_refresh(tmp_path):
    server = TokenServer(expires_in=30)  # refreshed after 15 s
    path = tmp_path / "token"
    path.write_text("eyJ.first.sig\n")
    now = [1000.0]
    with BackboneClient(
        base_url="http://api.test",
        federation_rule_id="rule-1",
        assertion=str(path),
        transport=httpx.MockTransport(server),
        pacer=Pacer("t"),
        clock=lambda: now[0],
    ) as client:
        client.workflows.run("staging", input="data:,x")
        path.write_text("eyJ.second.sig")  # the platform rotated the projected token
        now[0] += 16
        client.workflows.run("staging", input="data:,x")
    assert [g["assertion"] for g in server.grants] == ["eyJ.first.sig", "eyJ.second.sig"]
    assert server.grants[0]["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert server.grants[0]["federation_rule_id"] == "rule-1"


def test_workload_identity_from_a_callable_and_from_env(monkeypatch):
    server = TokenServer()
    with BackboneClient(
        base_url="http://api.test",
        federation_rule_id="r",
        assertion=lambda: "eyJ.cb.sig",
        transport=httpx.MockTransport(server),
        pacer=Pacer("t"),
    ) as client:
        client.workflows.run("staging", input="data:,x")
    assert server.grants[0]["assertion"] == "eyJ.cb.sig"
    monkeypatch.setenv("BKBN_FEDERATION_RULE_ID", "r2")
    monkeypatch.delenv("BKBN_API_KEY", raising=False)
    monkeypatch.delenv("BKBN_CLIENT_ID", raising=False)
    with pytest.raises(ConfigError, match="BKBN_ASSERTION_FILE"):
        BackboneClient(base_url="http://api.test")
    monkeypatch.setenv("BKBN_ASSERTION_FILE", "/nonexistent/token")
    with (
        BackboneClient(
            base_url="http://api.test", transport=httpx.MockTransport(server), pacer=Pacer("t")
        ) as client,
        pytest.raises(ConfigError, match="BKBN_ASSERTION_FILE"),
    ):
        client.workflows.run("staging", input="data:,x")


def test_settings_from_environment_and_arguments(monkeypatch):
    for name in ("BKBN_CLIENT_ID", "BKBN_FEDERATION_RULE_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BKBN_API_KEY", "bkbn_sk_env")
    monkeypatch.setenv("BKBN_BASE_URL", "http://env.test/")
    monkeypatch.setenv("BKBN_VERSION", "2025-06-01")
    client = BackboneClient()
    assert client.base_url == "http://env.test"
    assert client.settings.version == "2025-06-01"
    assert client.settings.auth_mode == "api_key"
    explicit = BackboneClient(client_id="c", client_secret="s", base_url="http://a.test")
    assert explicit.settings.auth_mode == "client_credentials"  # an argument beats the env
    monkeypatch.delenv("BKBN_API_KEY")
    with pytest.raises(ConfigError, match="BKBN_API_KEY"):
        BackboneClient()
    with pytest.raises(ConfigError, match="BKBN_CLIENT_SECRET"):
        BackboneClient(client_id="c")


def test_oauth_token_endpoint_directly():
    server = TokenServer()
    with client_for(server) as client:
        answer = client.oauth.token(client_id="cid", client_secret="csecret")
    assert answer["access_token"] == "tok-1" and answer["token_type"] == "Bearer"


def test_token_cache_repr_has_no_token():
    cache = TokenCache()
    cache.set("secret-token-value", 100)
    assert "secret-token-value" not in repr(cache) + repr(cache._token)


def test_api_key_none_ignores_the_environment_key(monkeypatch):
    monkeypatch.setenv("BKBN_API_KEY", "bkbn_sk_env")
    for name in ("BKBN_CLIENT_ID", "BKBN_FEDERATION_RULE_ID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError):
        BackboneClient(api_key=None, base_url="http://api.test")
    monkeypatch.setenv("BKBN_CLIENT_ID", "cid")
    monkeypatch.setenv("BKBN_CLIENT_SECRET", "csecret")
    client = BackboneClient(api_key=None, base_url="http://api.test")
    assert client.settings.auth_mode == "client_credentials"
