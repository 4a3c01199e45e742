"""S3 answering errors mid-run: a failing proxy in front of the moto server."""

from __future__ import annotations

import http.client
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import boto3
import pytest

from bkbn_pipelines._errors import StorageError
from bkbn_pipelines.storage import MediaStore

SECRET = "proxy-test-secret-never-shown"
ERROR_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message></Error>"
)


class FailingProxy:
    """Forwards to S3, but answers 500 to PUTs of keys containing ``fail_on``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.fail_on: str | None = None
        self.failed_puts = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # answers "Expect: 100-continue"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                if self.command == "PUT" and proxy.fail_on and proxy.fail_on in self.path:
                    proxy.failed_puts += 1
                    self.send_response(500)
                    self.send_header("content-type", "application/xml")
                    self.send_header("content-length", str(len(ERROR_BODY)))
                    self.end_headers()
                    self.wfile.write(ERROR_BODY)
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["host"] = proxy.upstream.netloc
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                length_header = answer.getheader("content-length", str(len(data)))
                for name, value in answer.getheaders():
                    if name.lower() not in {"transfer-encoding", "connection", "content-length"}:
                        self.send_header(name, value)
                head = self.command == "HEAD"
                self.send_header("content-length", length_header if head else str(len(data)))
                self.end_headers()
                if not head:
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(s3_endpoint: str) -> Iterator[FailingProxy]:
    failing = FailingProxy(s3_endpoint)
    yield failing
    failing.close()


def test_a_500_on_write_is_a_storage_error_and_leaves_nothing(
    s3_endpoint: str, proxy: FailingProxy
) -> None:
    bucket = f"bkbn-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    store = MediaStore(
        f"s3://{bucket}/media",
        storage_options={
            "endpoint_url": proxy.url,
            "key": "AKIDPROXYTEST",
            "secret": SECRET,
            "config_kwargs": {"retries": {"max_attempts": 1, "mode": "standard"}},
        },
    )
    kept = store.put("listings/a/raw/ok.jpg", b"fine", media_type="image/jpeg")
    proxy.fail_on = "/listings/a/raw/broken.jpg"
    with pytest.raises(StorageError) as info:
        store.put("listings/a/raw/broken.jpg", b"never stored", media_type="image/jpeg")
    assert proxy.failed_puts >= 1
    message = str(info.value)
    assert "s3://" in message and "broken.jpg" in message
    assert SECRET not in message and "AKIDPROXYTEST" not in message
    listed = client.list_objects_v2(Bucket=bucket)["Contents"]
    assert [item["Key"] for item in listed] == [f"media/{kept.key}"]
    assert store.list("listings") == [kept.key]
    proxy.fail_on = None  # the service recovers: the retry of the step succeeds
    store.put("listings/a/raw/broken.jpg", b"stored now", media_type="image/jpeg")
    assert store.get("listings/a/raw/broken.jpg") == b"stored now"


def test_a_failed_manifest_write_keeps_the_previous_manifest(
    s3_endpoint: str, proxy: FailingProxy
) -> None:
    bucket = f"bkbn-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    store = MediaStore(
        f"s3://{bucket}/media",
        storage_options={
            "endpoint_url": proxy.url,
            "config_kwargs": {"retries": {"max_attempts": 1, "mode": "standard"}},
        },
    )
    store.write_manifest("renders", "0150", [{"key": "k1"}, {"key": "k2"}])
    proxy.fail_on = "/manifests/renders/"
    with pytest.raises(StorageError):
        store.write_manifest("renders", "0150", [{"key": "k3"}])
    assert store.read_manifest("renders")["key"].tolist() == ["k1", "k2"]
    proxy.fail_on = None
    for _ in range(2):  # the retried step writes again: replaced, not appended
        store.write_manifest("renders", "0150", [{"key": "k3"}])
    assert store.read_manifest("renders")["key"].tolist() == ["k3"]
