"""Retry decisions and the error boundary, over ``httpx.MockTransport``."""

from __future__ import annotations

import email.utils
import logging
import time

import httpx
import pytest

from bkbn_pipelines import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
)
from bkbn_pipelines._contract import SIZE_LIMITS
from bkbn_pipelines.client import RetryPolicy, parse_retry_after

from ._mock import SSE_HEADERS, Script, Sleeps, error_body, make_client, sse

OK = {"url": "http://api.test/v1/files/f", "ms": 1, "usage": {"tokens": 1}}


def err(status: int, type_: str, headers: dict | None = None) -> httpx.Response:
    h = {"content-type": "application/json", "request-id": f"req_{status}", **(headers or {})}
    return httpx.Response(status, headers=h, content=error_body(type_, f"status {status}"))


def test_case_08_retry_after_http_date_then_no_header_then_success():
    when = email.utils.formatdate(time.time() + 3, usegmt=True)
    script = Script(
        err(429, "rate_limit_error", {"retry-after": when}),
        err(429, "rate_limit_error"),
        httpx.Response(200, json=OK),
    )
    sleeps = Sleeps()
    with make_client(script, sleeps) as client:
        result = client.workflows.run("staging", input="data:,x")
    assert result.url == OK["url"]
    assert len(script.requests) == 3
    waits = [s for s in sleeps if s > 0.01]  # pacer waits after a 429 are ~0 with real time
    assert 1.9 < waits[0] <= 3.0  # HTTP dates have whole seconds
    assert 0.75 <= waits[1] <= 1.0  # backoff 0.5 * 2**1 minus up to 25 % jitter
    keys = {r.headers["idempotency-key"] for r in script.requests}
    assert len(keys) == 1  # one key for the logical call, reused by its retries


def test_retry_after_ms_wins_over_retry_after():
    script = Script(
        err(529, "overloaded_error", {"retry-after-ms": "250", "retry-after": "9"}),
        httpx.Response(200, json=OK),
    )
    sleeps = Sleeps()
    with make_client(script, sleeps) as client:
        client.workflows.run("staging", input="data:,x")
    assert sleeps == [0.25]


def test_retry_after_in_seconds_is_waited_exactly():
    script = Script(
        err(429, "rate_limit_error", {"retry-after": "2"}),
        httpx.Response(200, json=OK),
    )
    sleeps = Sleeps()
    with make_client(script, sleeps) as client:
        client.workflows.run("staging", input="data:,x")
    assert [s for s in sleeps if s > 0.01] == [2.0]
    assert len(script.requests) == 2


def test_backoff_is_jittered_down_by_up_to_a_quarter():
    assert RetryPolicy(jitter=lambda: 0.0).backoff(1) == 1.0
    assert RetryPolicy(jitter=lambda: 1.0).backoff(1) == 0.75
    waits = {RetryPolicy().backoff(1) for _ in range(50)}
    assert len(waits) > 40 and all(0.75 <= w <= 1.0 for w in waits)  # callers spread out


def test_retry_after_date_already_past_falls_back_to_backoff():
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}) is None
    policy = RetryPolicy(jitter=lambda: 0.0)
    assert policy.decide(1, status=429, headers={"retry-after": past}) == 1.0


def test_retry_after_over_the_cap_falls_back_to_backoff():
    assert parse_retry_after({"retry-after": "3600"}) == 3600
    policy = RetryPolicy(jitter=lambda: 0.0)
    assert policy.decide(0, status=429, headers={"retry-after": "3600"}) == 0.5


@pytest.mark.parametrize(
    ("status", "type_", "cls"),
    [
        (400, "invalid_request_error", BadRequestError),
        (401, "authentication_error", AuthenticationError),
        (403, "permission_error", PermissionDeniedError),
        (404, "not_found_error", NotFoundError),
        (413, "request_too_large", RequestTooLargeError),
    ],
)
def test_client_errors_are_not_retried(status, type_, cls):
    script = Script(err(status, type_), httpx.Response(200, json=OK))
    sleeps = Sleeps()
    with make_client(script, sleeps) as client, pytest.raises(cls) as info:
        client.workflows.run("staging", input="data:,x")
    assert len(script.requests) == 1
    assert sleeps == []
    error = info.value
    assert (error.status_code, error.error_type, error.request_id) == (
        status,
        type_,
        f"req_{status}",
    )
    assert error.message == f"status {status}"


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (500, InternalServerError),
        (503, InternalServerError),
        (529, OverloadedError),
        (429, RateLimitError),
    ],
)
def test_retryable_statuses_retry_twice_then_raise(status, cls):
    script = Script(*[err(status, "x")] * 3)
    sleeps = Sleeps()
    with make_client(script, sleeps) as client, pytest.raises(cls) as info:
        client.workflows.run("staging", input="data:,x")
    assert len(script.requests) == 3
    assert info.value.status_code == status


def test_408_and_409_retry():
    script = Script(err(408, "timeout"), err(409, "conflict_error"), httpx.Response(200, json=OK))
    with make_client(script) as client:
        client.workflows.run("staging", input="data:,x")
    assert len(script.requests) == 3


def test_case_07_401_on_streaming_post_gives_status_and_type():
    script = Script(err(401, "authentication_error"))
    with (
        make_client(script) as client,
        pytest.raises(AuthenticationError) as info,
        client.workflows.stream("staging", input="data:,x"),
    ):
        pass
    assert info.value.status_code == 401
    assert info.value.error_type == "authentication_error"
    assert "content" not in info.value.message


def test_error_body_that_is_not_json_still_maps_the_status():
    script = Script(httpx.Response(404, text="<html>nope</html>", headers={"request-id": "r"}))
    with make_client(script) as client, pytest.raises(NotFoundError) as info:
        client.runs.retrieve("missing")
    assert info.value.error_type == "not_found_error" and info.value.request_id == "r"


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (httpx.ConnectError("refused"), APIConnectionError),
        (httpx.ReadTimeout("slow"), APITimeoutError),
        (httpx.ConnectTimeout("slow"), APITimeoutError),
        (httpx.RemoteProtocolError("h11 says no"), APIConnectionError),
        (httpx.PoolTimeout("pool"), APITimeoutError),
    ],
)
def test_no_raw_httpx_exception_escapes(exc, cls):
    def boom(request):
        raise exc

    script = Script(boom, boom, boom)
    sleeps = Sleeps()
    with make_client(script, sleeps) as client:
        with pytest.raises(APIError) as info:
            client.workflows.run("staging", input="data:,x")
        assert type(info.value) is cls
        assert not isinstance(info.value, httpx.HTTPError)
        assert len(script.requests) == 3 and len(sleeps) == 2
        for call in (
            lambda: list(client.workflows.stream("staging")),
            lambda: client.files.download("/v1/files/x"),
        ):
            script.answers = [boom] * 3
            with pytest.raises(APIError) as info:
                call()
            assert not isinstance(info.value, httpx.HTTPError)


def test_oversize_body_is_refused_before_sending():
    script = Script()
    with make_client(script) as client, pytest.raises(RequestTooLargeError) as info:
        client.workflows.run("staging", input="data:," + "x" * SIZE_LIMITS["workflows"])
    assert script.requests == []
    assert "32 MB" in str(info.value)
    with make_client(script) as client, pytest.raises(RequestTooLargeError, match="64 MB"):
        client.brochures.create(listing={}, photos=["x" * SIZE_LIMITS["brochures"]])


def test_secrets_stay_out_of_repr_errors_and_logs(caplog, tmp_path):
    secret = "bkbn_sk_test_secret_value_123"
    caplog.set_level(logging.DEBUG, logger="bkbn_pipelines")
    script = Script(err(500, "api_error"), err(401, "authentication_error"))
    with make_client(script) as client:
        assert secret not in repr(client) and secret not in str(client.settings)
        with pytest.raises(AuthenticationError) as info:
            client.workflows.run("staging", input="data:,x")
    assert secret not in str(info.value) and secret not in repr(info.value)
    assert "x-api-key" not in caplog.text and secret not in caplog.text
    assert "POST http://api.test/v1/workflows/staging/run -> 500" in caplog.text
    assert "retry 1" in caplog.text  # every decision logged
    from bkbn_pipelines.client import BackboneClient

    oauth = BackboneClient(base_url="http://x", client_id="cid", client_secret="s3cr3t-value")
    assertion = tmp_path / "token"
    assertion.write_text("eyJhbGciOi.eyJzdWIi.sig")
    wif = BackboneClient(base_url="http://x", federation_rule_id="rule", assertion=str(assertion))
    for c in (oauth, wif):
        text = repr(c) + str(c.settings) + repr(c.settings.auth)
        assert "s3cr3t-value" not in text and "eyJ" not in text


def test_every_request_logged_once_at_debug_without_query(caplog):
    caplog.set_level(logging.DEBUG, logger="bkbn_pipelines.client")
    script = Script(httpx.Response(200, content=b"PNG", headers={"request-id": "req_dl"}))
    with make_client(script) as client:
        assert client.files.download("/v1/files/f1?sig=abc") == b"PNG"
    lines = [r.getMessage() for r in caplog.records if "->" in r.getMessage()]
    assert lines == [lines[0]] and "req_dl" in lines[0] and "sig=abc" not in lines[0]


def test_files_from_another_origin_get_no_credentials():
    script = Script(httpx.Response(200, content=b"a"), httpx.Response(200, content=b"b"))
    with make_client(script) as client:
        client.files.download("http://api.test/v1/files/f1")
        client.files.download("http://cdn.example/f1")
    assert "x-api-key" in script.requests[0].headers
    assert "x-api-key" not in script.requests[1].headers


def test_blocking_run_result_and_deadline():
    script = Script(httpx.Response(200, json={"type": "result", "result": OK}))
    with make_client(script) as client:
        assert client.workflows.run("staging", input="data:,x").tokens == 1
    # A deadline shorter than the server's retry-after: the error, not a long wait.
    script = Script(err(429, "rate_limit_error", {"retry-after": "30"}))
    with make_client(script, deadline=5) as client, pytest.raises(RateLimitError):
        client.workflows.run("staging", input="data:,x")
    assert len(script.requests) == 1


def test_stream_error_status_after_retries():
    script = Script(
        err(503, "api_error"),
        httpx.Response(200, headers=SSE_HEADERS, content=sse("result", OK, "r:1")),
    )
    with make_client(script) as client:
        assert client.workflows.stream("staging").until_result().ms == 1
    assert len(script.requests) == 2


def test_file_redirect_to_a_cdn_drops_credentials():
    script = Script(
        httpx.Response(302, headers={"location": "https://cdn.example/f1.png"}),
        httpx.Response(200, content=b"png", headers={"content-type": "image/png"}),
    )
    with make_client(script) as client:
        artifact = client.files.download_artifact("/v1/files/f1")
    assert artifact.data == b"png" and artifact.media_type == "image/png"
    first, second = script.requests
    assert "x-api-key" in first.headers
    assert str(second.url) == "https://cdn.example/f1.png"
    assert "x-api-key" not in second.headers and "authorization" not in second.headers


def test_pacing_wait_past_the_deadline_is_refused_without_sending():
    from bkbn_pipelines.client import Pacer

    pacer = Pacer("deadline")
    pacer.block(30.0)
    script = Script()
    with (
        make_client(script, deadline=2.0) as client,
        pytest.raises(RateLimitError, match="deadline"),
    ):
        client._transport.pacer = pacer
        client.workflows.run("staging", input="data:,x")
    assert script.requests == []


@pytest.mark.parametrize("url", ["s3://bucket/key.png", "http://[::1", "data:,x"])
def test_unusable_download_urls_are_api_errors_not_httpx(url):
    script = Script()
    with make_client(script) as client, pytest.raises(APIError) as info:
        client.files.download(url)
    assert not isinstance(info.value, httpx.HTTPError)
    assert script.requests == []
