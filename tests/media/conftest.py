"""A real photo server on loopback (HTTP, and HTTPS with a generated certificate)."""

from __future__ import annotations

import datetime as dt
import gzip
import http.server
import ipaddress
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# The helpers module sits next to this file; keep it importable whatever pytest's
# import mode is.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from _media_samples import sample_jpeg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PHOTO = sample_jpeg()
_SEEN: dict[str, list[str | None]] = {}


class PhotoHandler(http.server.BaseHTTPRequestHandler):
    """Routes: /photo.jpg, /octet, /untyped, /html, /missing, /redirect?to=URL,
    /loop, /big (chunked, no length), /declared-big, /gzip-bomb, /drip, /stall."""

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, ctype: str | None, **headers: str) -> None:
        self.send_response(status)
        if ctype:
            self.send_header("content-type", ctype)
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        self.server.seen.append(self.headers.get("host"))  # type: ignore[attr-defined]
        if path == "/photo.jpg":
            self._send(200, PHOTO, "image/jpeg", content_length=str(len(PHOTO)))
        elif path == "/octet":
            self._send(200, PHOTO, "application/octet-stream")
        elif path == "/untyped":
            self._send(200, PHOTO, None)
        elif path == "/html":
            self._send(200, b"<html>login</html>", "text/html; charset=utf-8")
        elif path == "/missing":
            self._send(404, b"not found", "text/plain")
        elif path == "/redirect":
            self._send(302, b"", None, location=query.removeprefix("to="))
        elif path == "/relative":
            self._send(301, b"", None, location="/photo.jpg")
        elif path == "/bad-redirect":
            self._send(302, b"", None, location="http://[::1/a")
        elif path == "/loop":
            self._send(302, b"", None, location="/loop")
        elif path == "/big":
            self._send(200, b"\xff\xd8\xff" + b"\0" * 200_000, "image/jpeg")
        elif path == "/declared-big":
            self._send(200, b"", "image/jpeg", content_length="999999999")
        elif path == "/gzip-bomb":
            body = gzip.compress(b"\0" * 5_000_000)
            self._send(200, body, "image/jpeg", content_encoding="gzip")
        elif path == "/drip":
            self.send_response(200)
            self.send_header("content-type", "image/jpeg")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"\0" * 100)
                self.wfile.flush()
                time.sleep(0.05)
        elif path == "/stall":
            self.send_response(200)
            self.send_header("content-type", "image/jpeg")
            self.end_headers()
            self.wfile.flush()
            time.sleep(1.5)
        else:
            self._send(500, b"", None)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address, handler, family: int = socket.AF_INET) -> None:
        self.address_family = family
        self.seen: list[str | None] = []
        super().__init__(address, handler)


def _serve(server: _Server) -> Iterator[_Server]:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def photo_server() -> Iterator[str]:
    """Base URL of the photo server on 127.0.0.1."""
    server = _Server(("127.0.0.1", 0), PhotoHandler)
    for running in _serve(server):
        url = f"http://127.0.0.1:{running.server_address[1]}"
        _SEEN[url] = running.seen
        yield url


@pytest.fixture(scope="module")
def photo_server_seen(photo_server: str) -> list[str | None]:
    """``Host`` headers received by :func:`photo_server`, oldest first."""
    return _SEEN[photo_server]


@pytest.fixture(scope="module")
def photo_server_v6() -> Iterator[str]:
    """Base URL of the photo server on [::1]."""
    server = _Server(("::1", 0), PhotoHandler, socket.AF_INET6)
    for running in _serve(server):
        yield f"http://[::1]:{running.server_address[1]}"


def _certificate(tmp: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory) -> Iterator[tuple[str, Path, Path]]:
    """(https base URL naming ``localhost``, its certificate, another host's certificate).

    The certificate names only ``localhost``, not 127.0.0.1: a download that connects to
    the checked address must still verify the host name.
    """
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = _certificate(tmp, "localhost")
    other_cert, _ = _certificate(tmp, "photos.example")
    server = _Server(("127.0.0.1", 0), PhotoHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    assert ipaddress.ip_address(server.server_address[0]).is_loopback
    for running in _serve(server):
        yield f"https://localhost:{running.server_address[1]}", cert, other_cert
