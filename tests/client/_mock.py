"""Helpers for the byte-level tests: a scripted ``httpx.MockTransport`` server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx

from bkbn_pipelines.client import BackboneClient, Pacer

SSE_HEADERS = {"content-type": "text/event-stream", "request-id": "req_test123"}


def sse(event: str, data: Any, id: str | None = None) -> bytes:
    lines = []
    if id is not None:
        lines.append(f"id: {id}")
    lines.append(f"event: {event}")
    lines.append("data: " + (data if isinstance(data, str) else json.dumps(data)))
    return ("\n".join(lines) + "\n\n").encode()


def error_body(status_type: str, message: str, request_id: str = "req_err") -> bytes:
    return json.dumps(
        {
            "type": "error",
            "error": {"type": status_type, "message": message},
            "request_id": request_id,
        }
    ).encode()


def chunks(parts: Iterable[bytes], *, then: Exception | None = None) -> Iterator[bytes]:
    yield from parts
    if then is not None:
        raise then


class Script:
    """Answers requests in order from a list of callables or responses; records requests."""

    def __init__(self, *answers: httpx.Response | Callable[[httpx.Request], httpx.Response]):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.answers:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        answer = self.answers.pop(0)
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer


class Sleeps(list):
    """A fake ``sleep`` that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(script: Script, sleeps: Sleeps | None = None, **kwargs: Any) -> BackboneClient:
    kwargs.setdefault("api_key", "bkbn_sk_test_secret_value_123")
    return BackboneClient(
        base_url="http://api.test",
        transport=httpx.MockTransport(script),
        sleep=sleeps if sleeps is not None else Sleeps(),
        pacer=Pacer("test"),
        **kwargs,
    )
