"""Fetch listing photos from ``http(s)``, ``s3://``, ``data:`` or a local path, safely.

The URL comes from a catalogue export, so it is untrusted. Every download:

- uses a scheme from :attr:`FetchPolicy.allowed_schemes`;
- for ``http(s)``: resolves the host once, refuses private, loopback, link-local,
  multicast and reserved addresses (unless ``allow_private_networks``), then connects
  to exactly the address it checked (TLS still verifies the host name), so a second DNS
  answer cannot redirect the connection; follows at most ``max_redirects`` redirects by
  hand, checking every hop the same way;
- checks the status and the content type (``image/*`` or ``application/octet-stream``);
- streams the body and stops past ``max_bytes`` or the total deadline;
- reads local files only below ``local_roots`` (after resolving ``..`` and links).

Error messages name the listing and the photo, and show URLs without their query string,
fragment or user info, so signed URLs and credentials never reach a log.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import logging
import socket
import ssl
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .._errors import ConfigError, FetchError
from ._decode import DEFAULT_MAX_BYTES

__all__ = ["FetchPolicy", "afetch_photo", "fetch_photo", "photo_name", "safe_url"]

logger = logging.getLogger("bkbn_pipelines.media")

_REDIRECTS = {301, 302, 303, 307, 308}


@dataclass(frozen=True)
class FetchPolicy:
    """What a photo download may do. Frozen: one policy per run, written down once."""

    #: Largest body accepted, in bytes.
    max_bytes: int = DEFAULT_MAX_BYTES
    #: Seconds to open a connection.
    connect_timeout: float = 10.0
    #: Seconds to wait for each chunk of the body.
    read_timeout: float = 30.0
    #: Seconds for the whole download, redirects included (checked between chunks).
    total_timeout: float = 120.0
    allowed_schemes: frozenset[str] = frozenset({"http", "https", "s3", "file", "data"})
    #: Allow loopback, private, link-local and reserved addresses (tests, intranets).
    allow_private_networks: bool = False
    #: Networks allowed even though not public (``"10.1.0.0/16"``, ``"127.0.0.1/32"``).
    allowed_networks: tuple[str, ...] = ()
    #: When set, only these hosts (``http(s)``) or buckets (``s3``); ``*.example.com``
    #: matches sub-domains. ``None``: any host with a public address.
    allowed_hosts: frozenset[str] | None = None
    max_redirects: int = 5
    #: Content types accepted from ``http(s)`` (``type/*`` wildcards allowed); a missing
    #: content type is always accepted, the magic bytes decide later.
    accepted_content_types: frozenset[str] = frozenset(
        {"image/*", "application/octet-stream", "binary/octet-stream"}
    )
    #: A CA bundle file for ``https`` (an intranet CA); ``None``: the system's store.
    ca_bundle: str | None = None
    #: Folders that local paths and ``file://`` URLs must lie in; empty: none allowed.
    local_roots: tuple[Path, ...] = ()
    #: Passed to ``s3fs.S3FileSystem`` (``endpoint_url``, ``key``, ``secret``...).
    storage_options: Mapping[str, Any] = field(
        default_factory=dict, repr=False, compare=False, hash=False
    )
    user_agent: str = "bkbn-pipelines"

    def __post_init__(self) -> None:
        for name in ("max_bytes", "connect_timeout", "read_timeout", "total_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"FetchPolicy.{name} must be positive")
        if self.max_redirects < 0:
            raise ConfigError("FetchPolicy.max_redirects must not be negative")
        object.__setattr__(self, "allowed_schemes", frozenset(self.allowed_schemes))
        accepted = frozenset(t.lower() for t in self.accepted_content_types)
        object.__setattr__(self, "accepted_content_types", accepted)
        if self.allowed_hosts is not None:
            hosts = frozenset(h.lower().rstrip(".") for h in self.allowed_hosts)
            object.__setattr__(self, "allowed_hosts", hosts)
        roots = self.local_roots
        if isinstance(roots, str | Path):
            roots = (roots,)
        object.__setattr__(self, "local_roots", tuple(Path(r) for r in roots))
        if isinstance(self.allowed_networks, str):
            object.__setattr__(self, "allowed_networks", (self.allowed_networks,))
        object.__setattr__(self, "allowed_networks", tuple(self.allowed_networks))
        try:
            networks = tuple(ipaddress.ip_network(n, strict=False) for n in self.allowed_networks)
        except ValueError as exc:
            raise ConfigError(f"FetchPolicy.allowed_networks: {exc}") from None
        object.__setattr__(self, "_networks", networks)

    def address_allowed(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Whether a connection to ``address`` is allowed by this policy."""
        if self.allow_private_networks or _non_public(address) is None:
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self._networks)  # type: ignore[attr-defined]


def safe_url(url: str) -> str:
    """``url`` fit for a message or a log: no user info, query string or fragment."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.scheme == "data":
        return "data:..."
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    netloc = f"{host}{port}"
    query = "?..." if parts.query else ""
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", "")) + query


def fetch_photo(
    url_or_path: str | Path,
    *,
    listing_id: str | None,
    photo: str | None = None,
    policy: FetchPolicy | None = None,
) -> bytes:
    """Return the bytes of one listing photo, within ``policy``.

    Raises :class:`FetchError` naming ``listing_id`` and ``photo`` (by default the
    URL's file name) with the reason: scheme, address, redirect, status, content type,
    size, deadline, or the path outside the allowed roots.
    """
    policy = policy or FetchPolicy()
    source = str(url_or_path)
    photo = photo if photo is not None else photo_name(source)

    def fail(reason: str) -> FetchError:
        return FetchError(reason, listing_id=listing_id, photo=photo)

    scheme = _scheme(source)
    if scheme not in policy.allowed_schemes:
        raise fail(
            f"scheme {scheme!r} is not allowed (allowed_schemes: "
            f"{', '.join(sorted(policy.allowed_schemes))})"
        )
    if scheme in ("http", "https"):
        return _fetch_http(source, policy, fail)
    if scheme == "s3":
        return _fetch_s3(source, policy, fail)
    if scheme == "data":
        return _fetch_data(source, policy, fail)
    return _fetch_local(source, policy, fail)


async def afetch_photo(
    url_or_path: str | Path,
    *,
    listing_id: str | None,
    photo: str | None = None,
    policy: FetchPolicy | None = None,
) -> bytes:
    """:func:`fetch_photo` for async callers: the same rules, run in a worker thread."""
    return await asyncio.to_thread(
        fetch_photo, url_or_path, listing_id=listing_id, photo=photo, policy=policy
    )


# -- http(s) ------------------------------------------------------------------------------


def _fetch_http(url: str, policy: FetchPolicy, fail) -> bytes:
    deadline = time.monotonic() + policy.total_timeout
    timeout = httpx.Timeout(
        connect=policy.connect_timeout,
        read=policy.read_timeout,
        write=policy.read_timeout,
        pool=policy.connect_timeout,
    )
    verify: ssl.SSLContext | bool = True
    if policy.ca_bundle:
        try:
            verify = ssl.create_default_context(cafile=policy.ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"FetchPolicy.ca_bundle cannot be loaded ({exc})") from None
    with httpx.Client(
        timeout=timeout, follow_redirects=False, trust_env=False, verify=verify
    ) as client:
        for hop in range(policy.max_redirects + 1):
            try:
                target = httpx.URL(url)
            except (httpx.InvalidURL, ValueError):
                raise fail(f"malformed URL: {safe_url(url)}") from None
            addresses = _check_http_target(target, policy, fail)
            body, location = _get_first_answer(client, target, addresses, policy, deadline, fail)
            if location is None:
                logger.debug("fetched %s (%d bytes, %d redirects)", safe_url(url), len(body), hop)
                return body
            try:
                url = str(target.join(location))
            except (httpx.InvalidURL, ValueError):
                raise fail(f"malformed redirect from {safe_url(str(target))}") from None
            if _scheme(url) not in ("http", "https") or _scheme(url) not in policy.allowed_schemes:
                raise fail(f"redirect to a scheme that is not allowed: {safe_url(url)}")
    raise fail(f"more than {policy.max_redirects} redirects (max_redirects)")


def _get_first_answer(
    client: httpx.Client,
    target: httpx.URL,
    addresses: list[str],
    policy: FetchPolicy,
    deadline: float,
    fail,
) -> tuple[bytes, str | None]:
    """Try the checked addresses in turn until one accepts the connection."""
    where = safe_url(str(target))
    for index, address in enumerate(addresses):
        try:
            return _get_once(client, target, address, policy, deadline, fail)
        except httpx.ConnectError as exc:
            if index + 1 < len(addresses):
                continue
            reason = "TLS verification failed" if _is_tls(exc) else "connection failed"
            raise fail(f"could not fetch {where} ({reason})") from None
        except httpx.TimeoutException:
            raise fail(f"timed out fetching {where}") from None
        except httpx.HTTPError as exc:
            raise fail(f"could not fetch {where} ({type(exc).__name__})") from None
    raise fail(f"host of {where} has no address")


def _is_tls(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, ssl.SSLError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _check_http_target(target: httpx.URL, policy: FetchPolicy, fail) -> list[str]:
    """Check the host against the policy; return the addresses to connect to."""
    host = target.host.lower().rstrip(".")
    where = safe_url(str(target))
    if not host:
        raise fail(f"URL has no host: {where}")
    if not _host_allowed(host, policy.allowed_hosts):
        raise fail(f"host {host!r} is not in allowed_hosts ({where})")
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise fail(f"cannot resolve host {host!r} ({exc.__class__.__name__})") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise fail(f"host {host!r} has no address")
    for address in addresses:
        if not policy.address_allowed(address):
            raise fail(
                f"refused to connect to {host!r}: it resolves to {address}, "
                f"{_non_public(address)} (allow it with allowed_networks)"
            )
    return list(dict.fromkeys(str(address) for address in addresses))


def _non_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a reserved address"
    return None


def _host_allowed(host: str, allowed: frozenset[str] | None) -> bool:
    if allowed is None:
        return True
    if host in allowed:
        return True
    return any(p.startswith("*.") and host.endswith(p[1:]) for p in allowed)


def _get_once(
    client: httpx.Client,
    target: httpx.URL,
    address: str,
    policy: FetchPolicy,
    deadline: float,
    fail,
) -> tuple[bytes, str | None]:
    """One GET pinned to ``address``; returns (body, None) or (b"", redirect location)."""
    where = safe_url(str(target))
    pinned = target.copy_with(host=address)
    host_header = target.netloc.decode("ascii").rpartition("@")[2]
    headers = {"host": host_header, "user-agent": policy.user_agent, "accept": "image/*"}
    sni = target.raw_host.decode("ascii")
    extensions = {"sni_hostname": sni} if target.scheme == "https" else {}
    _check_deadline(deadline, policy, where, fail)
    request = client.build_request("GET", pinned, headers=headers, extensions=extensions)
    response = client.send(request, stream=True)
    try:
        if response.status_code in _REDIRECTS:
            location = response.headers.get("location")
            if not location:
                raise fail(f"HTTP {response.status_code} without a location from {where}")
            return b"", location
        if response.status_code != 200:
            raise fail(f"HTTP {response.status_code} from {where}")
        _check_content_type(
            response.headers.get("content-type"), policy.accepted_content_types, where, fail
        )
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > policy.max_bytes:
            raise fail(_too_large(int(declared), policy.max_bytes, where))
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > policy.max_bytes:
                raise fail(_too_large(size, policy.max_bytes, where, at_least=True))
            chunks.append(chunk)
            _check_deadline(deadline, policy, where, fail)
        return b"".join(chunks), None
    finally:
        response.close()


def _check_content_type(value: str | None, accepted: frozenset[str], where: str, fail) -> None:
    media_type = (value or "").split(";", 1)[0].strip().lower()
    if not media_type or media_type in accepted:
        return
    if f"{media_type.partition('/')[0]}/*" in accepted:
        return
    raise fail(
        f"content type {media_type!r} is not accepted ({where}; accepted_content_types: "
        f"{', '.join(sorted(accepted))})"
    )


def _check_deadline(deadline: float, policy: FetchPolicy, where: str, fail) -> None:
    if time.monotonic() > deadline:
        raise fail(f"took longer than {policy.total_timeout:g} s (total_timeout) for {where}")


def _too_large(size: int, limit: int, where: str, *, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return f"{more}{size:,} bytes, over the limit of {limit:,} bytes (max_bytes) for {where}"


# -- s3, data:, local ---------------------------------------------------------------------


def _fetch_s3(url: str, policy: FetchPolicy, fail) -> bytes:
    parts = urllib.parse.urlsplit(url)
    bucket = parts.netloc
    where = safe_url(url)
    if not bucket or not parts.path.strip("/"):
        raise fail(f"S3 URL needs a bucket and a key: {where}")
    if not _host_allowed(bucket.lower(), policy.allowed_hosts):
        raise fail(f"bucket {bucket!r} is not in allowed_hosts ({where})")
    try:
        import s3fs
    except ImportError:
        raise ConfigError("s3:// photos need the 's3' extra (pip install s3fs)") from None
    options = dict(policy.storage_options)
    config = dict(options.pop("config_kwargs", {}) or {})
    config.setdefault("connect_timeout", policy.connect_timeout)
    config.setdefault("read_timeout", policy.read_timeout)
    path = f"{bucket}{parts.path}"
    try:
        fs = s3fs.S3FileSystem(config_kwargs=config, **options)
        size = fs.info(path, refresh=True).get("size")
        if size is not None and size > policy.max_bytes:
            raise fail(_too_large(size, policy.max_bytes, where))
        with fs.open(path, "rb") as handle:
            data = handle.read(policy.max_bytes + 1)
    except FileNotFoundError:
        raise fail(f"no such object: {where}") from None
    except PermissionError:
        raise fail(f"access denied to {where}") from None
    except FetchError:
        raise
    except Exception as exc:  # translate botocore/aiohttp errors at this one boundary
        raise fail(f"could not read {where} ({type(exc).__name__})") from None
    if len(data) > policy.max_bytes:
        raise fail(_too_large(len(data), policy.max_bytes, where, at_least=True))
    return data


def _fetch_data(url: str, policy: FetchPolicy, fail) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep:
        raise fail("malformed data: URI (no comma)")
    if len(payload) > policy.max_bytes * 4 // 3 + 4:
        raise fail(f"data: URI is over the limit of {policy.max_bytes:,} bytes (max_bytes)")
    try:
        if header.endswith(";base64"):
            data = base64.b64decode(payload, validate=False)
        else:
            data = urllib.parse.unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        raise fail("malformed data: URI (bad base64)") from None
    if len(data) > policy.max_bytes:
        raise fail(_too_large(len(data), policy.max_bytes, "data: URI"))
    return data


def _fetch_local(source: str, policy: FetchPolicy, fail) -> bytes:
    if _scheme(source) == "file":
        parts = urllib.parse.urlsplit(source)
        if parts.netloc not in ("", "localhost"):
            raise fail("file:// URLs on another host are not allowed")
        source = urllib.parse.unquote(parts.path)
    if not policy.local_roots:
        raise fail("local paths are not allowed (no local_roots configured)")
    try:
        path = Path(source).resolve(strict=True)
    except (OSError, RuntimeError):
        raise fail(f"no such file: {Path(source).name}") from None
    roots = [root.resolve() for root in policy.local_roots]
    if not any(path.is_relative_to(root) for root in roots):
        raise fail(f"path {Path(source).name!r} is outside the allowed local_roots")
    if not path.is_file():
        raise fail(f"{path.name!r} is not a regular file")
    size = path.stat().st_size
    if size > policy.max_bytes:
        raise fail(_too_large(size, policy.max_bytes, path.name))
    with path.open("rb") as handle:
        data = handle.read(policy.max_bytes + 1)
    if len(data) > policy.max_bytes:
        raise fail(_too_large(len(data), policy.max_bytes, path.name, at_least=True))
    return data


# -- helpers ------------------------------------------------------------------------------


def _scheme(source: str) -> str:
    """The lower-case scheme; ``"file"`` for plain paths (also Windows drive paths)."""
    if source[:5].lower() == "data:":
        return "data"
    head, sep, _ = source.partition("://")
    if not sep or len(head) > 16 or not head[:1].isalpha():
        return "file"
    if not all(c.isalnum() or c in "+-." for c in head):
        return "file"
    return head.lower()


def photo_name(source: str | Path) -> str:
    """The name a photo goes by in messages: the file name of its path or URL."""
    source = str(source)
    if _scheme(source) == "data":
        return "data-uri"
    path = source
    if "://" in source:
        path = source.partition("://")[2].partition("/")[2]
        path = path.split("?", 1)[0].split("#", 1)[0]
    return Path(urllib.parse.unquote(path)).name or safe_url(source)
