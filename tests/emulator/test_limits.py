"""Rate limits per organization, and the 413 that comes before the body is read."""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime

import httpx

from bkbn_pipelines.emulator import EmulatorConfig
from bkbn_pipelines.emulator.testing import EmulatorAdmin, serve_in_thread

from .conftest import headers_for
from .test_basics import assert_error


def test_requests_per_minute(emulator_url, emulator_admin: EmulatorAdmin):
    key = emulator_admin.new_key(requests_per_minute=3)
    url = f"{emulator_url}/v1/workflows/runs/run_x"
    remaining = [
        int(httpx.get(url, headers=headers_for(key)).headers["bkbn-ratelimit-requests-remaining"])
        for _ in range(3)
    ]
    assert remaining == [2, 1, 0]
    refused = httpx.get(url, headers=headers_for(key))
    assert_error(refused, 429, "rate_limit_error")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["bkbn-ratelimit-requests-limit"] == "3"
    reset = datetime.fromisoformat(refused.headers["bkbn-ratelimit-requests-reset"])
    assert 0 < reset.timestamp() - time.time() <= 61
    assert emulator_admin.stats(key.org) == {
        "org": key.org,
        "renders": 0,
        "requests": 3,
        "tokens": 0,
        "rate_limited": 1,
    }
    other = emulator_admin.new_key(requests_per_minute=3)
    assert httpx.get(url, headers=headers_for(other)).status_code == 404


def test_tokens_per_minute(emulator_url, emulator_admin: EmulatorAdmin, photo_uri):
    key = emulator_admin.new_key(tokens_per_minute=10)
    body = {"image": photo_uri, "style": "japandi", "resolution": "4k"}
    first = httpx.post(f"{emulator_url}/v1/staging", json=body, headers=headers_for(key))
    assert first.status_code == 200, first.text
    # 4096 x 3072 pixels, 4 steps: ceil(12.58 * 4 / 10) = 6 tokens
    assert first.json()["usage"]["tokens"] == 6
    assert first.headers["bkbn-ratelimit-tokens-remaining"] == "4"
    second = httpx.post(f"{emulator_url}/v1/staging", json=body, headers=headers_for(key))
    assert "tokens" in assert_error(second, 429, "rate_limit_error")["error"]["message"]
    assert int(second.headers["retry-after"]) >= 1
    assert emulator_admin.renders(key.org) == 1
    assert emulator_admin.stats(key.org)["tokens"] == 6
    assert emulator_admin.stats(key.org)["rate_limited"] == 1


def test_window_reopens_after_reset(photo_uri):
    config = EmulatorConfig.model_validate(
        {
            "organizations": [{"id": "o", "tier": "t"}],
            "api_keys": [{"key": "bkbn_sk_window", "org": "o"}],
            "tiers": {"t": {"requests_per_minute": 2}},
            "rate_limit_window_s": 1.0,
            "renderer": "latency",
        }
    )
    with serve_in_thread(config) as url:
        target = f"{url}/v1/workflows/runs/run_x"
        statuses = [httpx.get(target, headers=headers_for("bkbn_sk_window")) for _ in range(3)]
        assert [r.status_code for r in statuses] == [404, 404, 429]
        time.sleep(float(statuses[-1].headers["retry-after"]) + 0.05)
        assert httpx.get(target, headers=headers_for("bkbn_sk_window")).status_code == 404


def _raw_request(url: str, head: str, body_chunks) -> bytes:
    """Send ``head`` then the chunks from a thread; return what the server answered."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)

    def send_body() -> None:
        try:
            sock.sendall(head.encode())
            for chunk in body_chunks:
                sock.sendall(chunk)
        except OSError:
            pass  # the server stopped reading: expected

    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    answer = b""
    try:
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    finally:
        sock.close()
    return answer


def test_413_from_content_length_before_the_body(emulator_url, key):
    head = (
        "POST /v1/staging HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"x-api-key: {key.api_key}\r\nbkbn-version: 2026-01-01\r\n"
        f"content-length: {40 * 1024 * 1024}\r\n\r\n"
    )
    started = time.monotonic()
    answer = _raw_request(emulator_url, head, [b'{"image": "'])  # never sends the rest
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"request_too_large"' in answer
    assert b"request-id: req_" in answer
    assert time.monotonic() - started < 5


def test_413_while_a_chunked_body_streams_in(emulator_url, key):
    head = (
        "POST /v1/brochures HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"x-api-key: {key.api_key}\r\nbkbn-version: 2026-01-01\r\n"
        "transfer-encoding: chunked\r\n\r\n"
    )
    piece = b"a" * (1024 * 1024)
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    answer = _raw_request(emulator_url, head, (chunk for _ in range(70)))  # 70 MB > 64 MB
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"67108864" in answer  # the limit is named


def test_small_endpoints_have_a_small_limit(emulator_url):
    response = httpx.post(
        f"{emulator_url}/v1/oauth/token",
        content=b"x" * (1024 * 1024 + 1),
        headers={"content-type": "application/json", "bkbn-version": "2026-01-01"},
    )
    assert_error(response, 413, "request_too_large")
