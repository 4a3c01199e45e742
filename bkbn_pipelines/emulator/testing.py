"""Helpers for tests that need an emulator: run one in a thread, drive ``/_test``.

``serve_in_thread`` starts uvicorn on a free loopback port in a daemon thread and
yields the base URL; :class:`EmulatorAdmin` wraps the test-mode endpoints (new keys
with their own tier, faults per key, statistics, token expiry)::

    with serve_in_thread("tests/emulator_test_config.yaml") as url:
        admin = EmulatorAdmin(url)
        key = admin.new_key(requests_per_minute=5)
        admin.set_faults(api_key=key.api_key, streams=[{"action": "drop", "after_events": 1}])
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from .._contract import API_VERSION
from ._app import create_app
from ._config import EmulatorConfig, load_config

__all__ = ["EmulatorAdmin", "TestKey", "serve_in_thread"]


@contextmanager
def serve_in_thread(
    config: EmulatorConfig | str | Path | None = None,
    *,
    test_mode: bool = True,
    host: str = "127.0.0.1",
    startup_timeout: float = 30.0,
) -> Iterator[str]:
    """Serve the emulator on ``host`` and a free port; yields ``http://host:port``."""
    if not isinstance(config, EmulatorConfig):
        config = load_config(config)
    app = create_app(config, test_mode=test_mode)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=0.5)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="bkbn-emulator", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the emulator did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@dataclass(frozen=True)
class TestKey:
    """A key made by ``POST /_test/keys``; secrets are kept out of the repr."""

    __test__ = False  # not a pytest test class

    api_key: str = field(repr=False)
    org: str
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)


class EmulatorAdmin:
    """Client of the test-mode endpoints of an emulator at ``base_url``."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EmulatorAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._http.post(path, json=body)
        response.raise_for_status()
        return response.json()

    def new_key(
        self,
        *,
        org: str | None = None,
        tier: str | None = None,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        oauth_client: bool = False,
    ) -> TestKey:
        """A fresh key (and optionally an OAuth client) in ``org`` or a new organization."""
        body = {
            "org": org,
            "tier": tier,
            "requests_per_minute": requests_per_minute,
            "tokens_per_minute": tokens_per_minute,
            "oauth_client": oauth_client,
        }
        return TestKey(
            **self._post("/_test/keys", {k: v for k, v in body.items() if v is not None})
        )

    def set_faults(
        self,
        *,
        api_key: str | None = None,
        client_id: str | None = None,
        federation_rule_id: str | None = None,
        **faults: Any,
    ) -> dict[str, Any]:
        """Replace the faults of one credential; ``faults`` are FaultSpec fields."""
        target = {
            "api_key": api_key,
            "client_id": client_id,
            "federation_rule_id": federation_rule_id,
        }
        body = {k: v for k, v in target.items() if v is not None}
        return self._post("/_test/faults", {**body, "faults": faults})

    def clear_faults(self, **target: str) -> None:
        self.set_faults(**target)

    def add_federation_rule(self, **rule: Any) -> str:
        return self._post("/_test/federation-rules", rule)["federation_rule_id"]

    def expire_tokens(self, **target: str) -> int:
        return self._post("/_test/expire-tokens", target or None)["expired"]

    def stats(self, org: str | None = None) -> dict[str, Any]:
        params = {"org": org} if org else None
        response = self._http.get("/_test/stats", params=params)
        response.raise_for_status()
        return response.json()

    def renders(self, org: str) -> int:
        """How many renders ``org`` has started."""
        return int(self.stats(org)["renders"])

    def grants(self, client_id: str) -> dict[str, int]:
        return self.stats()["grants"].get(client_id, {"accepted": 0, "refused": 0})

    def reset(self) -> None:
        self._post("/_test/reset")

    def headers(self, key: TestKey | str) -> dict[str, str]:
        """Request headers for ``key``: ``x-api-key`` and ``bkbn-version``."""
        api_key = key.api_key if isinstance(key, TestKey) else key
        return {"x-api-key": api_key, "bkbn-version": API_VERSION}
