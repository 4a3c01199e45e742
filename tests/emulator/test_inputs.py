"""Input URLs: data: URIs, own files, allowed hosts only, no redirects, S3 buckets."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .conftest import photo_bytes
from .test_basics import assert_error

RUN = "/v1/workflows/relight/run"


@pytest.fixture(scope="module")
def photo_server() -> Iterator[str]:
    """A loopback HTTP server: /photo.jpg is a photo, /moved redirects elsewhere."""
    photo = photo_bytes((40, 30))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/photo.jpg":
                self.send_response(200)
                self.send_header("content-type", "image/jpeg")
                self.send_header("content-length", str(len(photo)))
                self.end_headers()
                self.wfile.write(photo)
            elif self.path == "/moved":
                self.send_response(302)
                self.send_header("location", "http://example.com/photo.jpg")
                self.end_headers()
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_loopback_http_input_is_fetched(api, photo_server):
    response = api.post(RUN, json={"input": f"{photo_server}/photo.jpg"})
    assert response.status_code == 200, response.text
    assert (response.json()["width"], response.json()["height"]) == (40, 30)


def test_other_hosts_are_refused_and_named(api):
    for url, host in (
        ("https://example.com/a.jpg", "example.com"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
        ("http://10.0.0.8/a.jpg", "10.0.0.8"),
    ):
        body = assert_error(api.post(RUN, json={"input": url}), 400, "invalid_request_error")
        assert host in body["error"]["message"]
        assert "input" in body["error"]["message"]


def test_redirects_and_errors_are_not_followed(api, photo_server):
    moved = api.post(RUN, json={"input": f"{photo_server}/moved"})
    assert "302" in assert_error(moved, 400, "invalid_request_error")["error"]["message"]
    missing = api.post(RUN, json={"input": f"{photo_server}/nothing"})
    assert "404" in assert_error(missing, 400, "invalid_request_error")["error"]["message"]


def test_unsupported_schemes_and_bad_data_uris(api):
    for url in ("file:///etc/passwd", "ftp://127.0.0.1/a", "data:image/png;base64,@@@", "data:x"):
        assert_error(api.post(RUN, json={"input": url}), 400, "invalid_request_error")


def test_s3_buckets_must_be_allowed(api):
    body = assert_error(
        api.post(RUN, json={"input": "s3://private-bucket/photo.jpg"}), 400, "invalid_request_error"
    )
    assert "private-bucket" in body["error"]["message"]


def test_brochure_photo_errors_name_the_photo(api, photo_uri):
    response = api.post(
        "/v1/brochures",
        json={"listing": {"address": "x"}, "photos": [photo_uri, "https://example.com/b.jpg"]},
    )
    assert "photos[1]" in assert_error(response, 400, "invalid_request_error")["error"]["message"]


def test_s3_input_from_an_allowed_bucket(s3_endpoint):
    import httpx
    import s3fs

    from bkbn_pipelines.emulator import EmulatorConfig
    from bkbn_pipelines.emulator.testing import serve_in_thread

    from .conftest import headers_for

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_endpoint})
    if not fs.exists("emulator-inputs"):
        fs.mkdir("emulator-inputs")
    fs.pipe_file("emulator-inputs/photo.jpg", photo_bytes((50, 40)))
    config = EmulatorConfig.model_validate(
        {
            "organizations": [{"id": "o"}],
            "api_keys": [{"key": "bkbn_sk_s3_inputs", "org": "o"}],
            "renderer": "latency",
            "s3_endpoint_url": s3_endpoint,
            "allowed_s3_buckets": ["emulator-inputs"],
        }
    )
    with serve_in_thread(config) as url:
        response = httpx.post(
            f"{url}{RUN}",
            json={"input": "s3://emulator-inputs/photo.jpg"},
            headers=headers_for("bkbn_sk_s3_inputs"),
            timeout=30,
        )
        missing = httpx.post(
            f"{url}{RUN}",
            json={"input": "s3://emulator-inputs/absent.jpg"},
            headers=headers_for("bkbn_sk_s3_inputs"),
            timeout=30,
        )
    assert response.status_code == 200, response.text
    assert (response.json()["width"], response.json()["height"]) == (50, 40)
    assert_error(missing, 400, "invalid_request_error")
