"""Shared pieces of the emulator tests: a sample photo as a data: URI, a key, a client."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from bkbn_pipelines._contract import API_VERSION
from bkbn_pipelines.emulator.testing import EmulatorAdmin, TestKey


def photo_bytes(size: tuple[int, int] = (64, 48), colour=(200, 120, 60)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG")
    return buf.getvalue()


def data_uri(data: bytes, media_type: str = "image/jpeg") -> str:
    return f"data:{media_type};base64," + base64.b64encode(data).decode()


@pytest.fixture(scope="session")
def photo_uri() -> str:
    return data_uri(photo_bytes())


@pytest.fixture
def key(emulator_admin: EmulatorAdmin) -> TestKey:
    """A fresh key in a fresh organization, with an OAuth client."""
    return emulator_admin.new_key(oauth_client=True)


def headers_for(key: TestKey | str, **extra: str) -> dict[str, str]:
    api_key = key.api_key if isinstance(key, TestKey) else key
    return {"x-api-key": api_key, "bkbn-version": API_VERSION, **extra}


@pytest.fixture
def api(emulator_url: str, key: TestKey) -> Iterator[httpx.Client]:
    """A plain httpx client with the fresh key's headers."""
    with httpx.Client(base_url=emulator_url, headers=headers_for(key), timeout=30) as client:
        yield client


def sse_events(lines) -> list[dict]:
    """Parse SSE lines (from ``iter_lines``) into dicts with ``id``, ``event``, ``data``."""
    events, current = [], {}
    for line in lines:
        if line == "":
            if current:
                events.append(current)
            current = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        current[name] = value[1:] if value.startswith(" ") else value
    if current:
        events.append(current)
    return events


def stream(client: httpx.Client, method: str, url: str, **kwargs) -> list[dict]:
    """Run one streaming request to the end; its events."""
    headers = {"accept": "text/event-stream", **kwargs.pop("headers", {})}
    with client.stream(method, url, headers=headers, **kwargs) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return sse_events(response.iter_lines())
