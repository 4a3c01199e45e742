"""Input URLs of a run: ``data:`` URIs, the emulator's own files, allowed hosts only.

``http(s)`` URLs are fetched only from hosts in ``allowed_input_hosts`` (loopback by
default) and ``s3://`` URLs only from ``allowed_s3_buckets``; anything else is a 400
naming the host.  Redirects are not followed.  A URL whose path is
``/v1/files/{file_id}`` on the emulator's own address (or any loopback address) is
read from the file store directly, for the caller's organization only.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes, urlsplit

import httpx

from ._http import ApiProblem
from ._runs import FileStore

__all__ = ["InputResolver"]

_LOOPBACK_NAMES = {"localhost"}


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class InputResolver:
    files: FileStore
    allowed_hosts: tuple[str, ...]
    allowed_buckets: tuple[str, ...]
    s3_endpoint_url: str | None
    timeout_s: float
    max_bytes: int

    async def fetch(self, url: str, field: str, org: str, base_url: str) -> bytes:
        """The bytes behind ``url``; a 400 :class:`ApiProblem` names ``field`` otherwise."""
        if not isinstance(url, str) or not url:
            raise ApiProblem(400, f"{field}: expected a URL")
        scheme = url.split(":", 1)[0].lower()
        if scheme == "data":
            return self._data_uri(url, field)
        if scheme in ("http", "https"):
            return await self._http(url, field, org, base_url)
        if scheme == "s3":
            return await self._s3(url, field)
        raise ApiProblem(
            400, f"{field}: unsupported URL scheme {scheme!r}; use data:, https: or s3:"
        )

    def _data_uri(self, url: str, field: str) -> bytes:
        header, sep, payload = url[5:].partition(",")
        if not sep:
            raise ApiProblem(400, f"{field}: malformed data: URI (no comma)")
        try:
            if header.endswith(";base64"):
                data = base64.b64decode(payload, validate=True)
            else:
                data = unquote_to_bytes(payload)
        except (binascii.Error, ValueError):
            raise ApiProblem(400, f"{field}: data: URI is not valid base64") from None
        if not data:
            raise ApiProblem(400, f"{field}: data: URI is empty")
        return data

    async def _http(self, url: str, field: str, org: str, base_url: str) -> bytes:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        base = urlsplit(base_url)
        own = parts.netloc == base.netloc or _is_loopback(host)
        if own and parts.path.startswith("/v1/files/"):
            file_id = parts.path.removeprefix("/v1/files/")
            found = self.files.get(file_id, org)
            if found is None:
                raise ApiProblem(400, f"{field}: no file {file_id!r} in this organization")
            return await asyncio.to_thread(found[0].read_bytes)
        hostport = f"{host}:{parts.port}" if parts.port else host
        if host not in self.allowed_hosts and hostport not in self.allowed_hosts:
            raise ApiProblem(
                400,
                f"{field}: input host {host!r} is not allowed; the emulator fetches only "
                f"from: {', '.join(self.allowed_hosts) or 'no host'}",
            )
        try:
            async with (
                httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as http,
                http.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    raise ApiProblem(
                        400, f"{field}: fetching {host!r} answered {response.status_code}"
                    )
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise ApiProblem(400, f"{field}: input exceeds {self.max_bytes} bytes")
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise ApiProblem(
                400, f"{field}: fetching from {host!r} failed ({type(exc).__name__})"
            ) from None
        return b"".join(chunks)

    async def _s3(self, url: str, field: str) -> bytes:
        parts = urlsplit(url)
        bucket = parts.netloc
        if bucket not in self.allowed_buckets:
            raise ApiProblem(
                400,
                f"{field}: S3 bucket {bucket!r} is not allowed; allowed buckets: "
                f"{', '.join(self.allowed_buckets) or 'none'}",
            )

        def read() -> bytes:
            import s3fs

            kwargs = {"client_kwargs": {"endpoint_url": self.s3_endpoint_url}}
            fs = s3fs.S3FileSystem(**kwargs) if self.s3_endpoint_url else s3fs.S3FileSystem()
            path = f"{bucket}{parts.path}"
            if fs.size(path) > self.max_bytes:
                raise ApiProblem(400, f"{field}: input exceeds {self.max_bytes} bytes")
            return fs.cat_file(path)

        try:
            return await asyncio.to_thread(read)
        except ApiProblem:
            raise
        except (OSError, ImportError) as exc:
            raise ApiProblem(
                400, f"{field}: reading {url!r} failed ({type(exc).__name__})"
            ) from None
