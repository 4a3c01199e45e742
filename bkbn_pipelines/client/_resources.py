"""The endpoints of the contract, grouped as resources of a client (sync and async twins).

Every ``create``/``run`` method blocks and returns a typed
:class:`~bkbn_pipelines._events.Result`; every ``stream`` method returns a run stream
of typed events.  Arguments left :data:`NOT_GIVEN` are not sent.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin

import httpx

from .._errors import APIError, OAuthError
from .._events import Artifact, Result
from ._settings import NOT_GIVEN, NotGiven
from ._streaming import AsyncRunStream, RunStream

if TYPE_CHECKING:
    from ._base import AsyncTransport, SyncTransport

__all__ = [
    "AsyncBrochures",
    "AsyncFiles",
    "AsyncFloorPlans",
    "AsyncOAuth",
    "AsyncRuns",
    "AsyncStaging",
    "AsyncWorkflows",
    "Brochures",
    "Files",
    "FloorPlans",
    "OAuth",
    "Runs",
    "Staging",
    "Workflows",
]

SSE = "text/event-stream"


def _body(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if not isinstance(v, NotGiven)}


def _result(response: httpx.Response) -> Result:
    try:
        body = json.loads(response.content)
    except ValueError:
        raise APIError(
            "the API answered a run with a body that is not JSON",
            status_code=response.status_code,
            request_id=response.headers.get("request-id"),
        ) from None
    if isinstance(body, dict) and isinstance(body.get("result"), dict):
        body = body["result"]
    if not isinstance(body, dict):
        raise APIError(
            "the API answered a run with JSON that is not an object",
            status_code=response.status_code,
            request_id=response.headers.get("request-id"),
        )
    return Result(data=body)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise APIError(
            "the API answered with a body that is not a JSON object",
            status_code=response.status_code,
            request_id=response.headers.get("request-id"),
        )
    return body


def _graph_path(name: str) -> str:
    return f"/v1/workflows/{quote(name, safe='')}/run"


def _token_grant(
    grant_type: str,
    client_id: str | NotGiven,
    client_secret: str | NotGiven,
    assertion: str | NotGiven,
    federation_rule_id: str | NotGiven,
) -> dict[str, Any]:
    return _body(
        grant_type=grant_type,
        client_id=client_id,
        client_secret=client_secret,
        assertion=assertion,
        federation_rule_id=federation_rule_id,
    )


def _token_answer(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
        if not isinstance(body, dict) or "access_token" not in body:
            raise ValueError
    except ValueError:
        raise OAuthError(
            "the token endpoint answered without an access_token",
            status_code=response.status_code,
            request_id=response.headers.get("request-id"),
        ) from None
    return body


class _Sync:
    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def _run(self, path: str, body: Mapping[str, Any], key: str | None) -> Result:
        response = self._t.send("POST", path, body=body, idempotency_key=key)
        return _result(response)

    def _stream(
        self, path: str, body: Mapping[str, Any], key: str | None, include_pings: bool
    ) -> RunStream:
        key = key or str(uuid.uuid4())  # one key for every attempt of this call

        def open_first() -> httpx.Response:
            return self._t.send(
                "POST", path, body=body, stream=True, accept=SSE, idempotency_key=key
            )

        return RunStream(self._t, open_first, include_pings=include_pings, what=f"POST {path}")


class _Async:
    def __init__(self, transport: AsyncTransport) -> None:
        self._t = transport

    async def _run(self, path: str, body: Mapping[str, Any], key: str | None) -> Result:
        response = await self._t.send("POST", path, body=body, idempotency_key=key)
        return _result(response)

    def _stream(
        self, path: str, body: Mapping[str, Any], key: str | None, include_pings: bool
    ) -> AsyncRunStream:
        key = key or str(uuid.uuid4())

        async def open_first() -> httpx.Response:
            return await self._t.send(
                "POST", path, body=body, stream=True, accept=SSE, idempotency_key=key
            )

        return AsyncRunStream(self._t, open_first, include_pings=include_pings, what=f"POST {path}")


# --- workflows -------------------------------------------------------------------


class Workflows(_Sync):
    """``POST /v1/workflows/{name}/run``: any named graph, blocking or streaming."""

    def run(
        self,
        name: str,
        *,
        input: str | NotGiven = NOT_GIVEN,
        params: Mapping[str, Any] | NotGiven = NOT_GIVEN,
        idempotency_key: str | None = None,
    ) -> Result:
        return self._run(_graph_path(name), _body(input=input, params=params), idempotency_key)

    def stream(
        self,
        name: str,
        *,
        input: str | NotGiven = NOT_GIVEN,
        params: Mapping[str, Any] | NotGiven = NOT_GIVEN,
        idempotency_key: str | None = None,
        include_pings: bool = False,
    ) -> RunStream:
        body = _body(input=input, params=params)
        return self._stream(_graph_path(name), body, idempotency_key, include_pings)


class AsyncWorkflows(_Async):
    async def run(
        self,
        name: str,
        *,
        input: str | NotGiven = NOT_GIVEN,
        params: Mapping[str, Any] | NotGiven = NOT_GIVEN,
        idempotency_key: str | None = None,
    ) -> Result:
        body = _body(input=input, params=params)
        return await self._run(_graph_path(name), body, idempotency_key)

    def stream(
        self,
        name: str,
        *,
        input: str | NotGiven = NOT_GIVEN,
        params: Mapping[str, Any] | NotGiven = NOT_GIVEN,
        idempotency_key: str | None = None,
        include_pings: bool = False,
    ) -> AsyncRunStream:
        body = _body(input=input, params=params)
        return self._stream(_graph_path(name), body, idempotency_key, include_pings)


# --- staging ---------------------------------------------------------------------


class Staging(_Sync):
    """``POST /v1/staging``: one empty-room photo to a furnished render."""

    def create(
        self,
        *,
        image: str,
        style: str,
        room_type: str | NotGiven = NOT_GIVEN,
        keep_geometry: bool | NotGiven = NOT_GIVEN,
        resolution: str | NotGiven = NOT_GIVEN,
        seed: int | NotGiven = NOT_GIVEN,
        idempotency_key: str | None = None,
    ) -> Result:
        body = _body(
            image=image,
            style=style,
            room_type=room_type,
            keep_geometry=keep_geometry,
            resolution=resolution,
            seed=seed,
        )
        return self._run("/v1/staging", body, idempotency_key)

    def stream(
        self,
        *,
        image: str,
        style: str,
        room_type: str | NotGiven = NOT_GIVEN,
        keep_geometry: bool | NotGiven = NOT_GIVEN,
        resolution: str | NotGiven = NOT_GIVEN,
        seed: int | NotGiven = NOT_GIVEN,
        idempotency_key: str | None = None,
        include_pings: bool = False,
    ) -> RunStream:
        body = _body(
            image=image,
            style=style,
            room_type=room_type,
            keep_geometry=keep_geometry,
            resolution=resolution,
            seed=seed,
        )
        return self._stream("/v1/staging", body, idempotency_key, include_pings)


class AsyncStaging(_Async):
    async def create(
        self,
        *,
        image: str,
        style: str,
        room_type: str | NotGiven = NOT_GIVEN,
        keep_geometry: bool | NotGiven = NOT_GIVEN,
        resolution: str | NotGiven = NOT_GIVEN,
        seed: int | NotGiven = NOT_GIVEN,
        idempotency_key: str | None = None,
    ) -> Result:
        body = _body(
            image=image,
            style=style,
            room_type=room_type,
            keep_geometry=keep_geometry,
            resolution=resolution,
            seed=seed,
        )
        return await self._run("/v1/staging", body, idempotency_key)

    def stream(
        self,
        *,
        image: str,
        style: str,
        room_type: str | NotGiven = NOT_GIVEN,
        keep_geometry: bool | NotGiven = NOT_GIVEN,
        resolution: str | NotGiven = NOT_GIVEN,
        seed: int | NotGiven = NOT_GIVEN,
        idempotency_key: str | None = None,
        include_pings: bool = False,
    ) -> AsyncRunStream:
        body = _body(
            image=image,
            style=style,
            room_type=room_type,
            keep_geometry=keep_geometry,
            resolution=resolution,
            seed=seed,
        )
        return self._stream("/v1/staging", body, idempotency_key, include_pings)


# --- floor plans -------------------------------------------------------------------


class FloorPlans(_Sync):
    """``POST /v1/floor-plans``: a walk-through capture to an editable plan."""

    def create(
        self, *, video: str, units: str = "metric", idempotency_key: str | None = None
    ) -> Result:
        return self._run("/v1/floor-plans", _body(video=video, units=units), idempotency_key)

    def stream(
        self,
        *,
        video: str,
        units: str = "metric",
        idempotency_key: str | None = None,
        include_pings: bool = False,
    ) -> RunStream:
        body = _body(video=video, units=units)
        return self._stream("/v1/floor-plans", body, idempotency_key, include_pings)


class AsyncFloorPlans(_Async):
    async def create(
        self, *, video: str, units: str = "metric", idempotency_key: str | None = None
    ) -> Result:
        body = _body(video=video, units=units)
        return await self._run("/v1/floor-plans", body, idempotency_key)

    def stream(
        self,
        *,
        video: str,
        units: str = "metric",
        idempotency_key: str | None = None,
        include_pings: bool = False,
    ) -> AsyncRunStream:
        body = _body(video=video, units=units)
        return self._stream("/v1/floor-plans", body, idempotency_key, include_pings)


# --- brochures -------------------------------------------------------------------


class Brochures(_Sync):
    """``POST /v1/brochures`` (beta): listing facts and photos to a brochure."""

    def create(
        self,
        *,
        listing: Mapping[str, Any],
        photos: Sequence[str],
        template: str | None = None,
        idempotency_key: str | None = None,
    ) -> Result:
        body = {"listing": dict(listing), "photos": list(photos), "template": template}
        return self._run("/v1/brochures", body, idempotency_key)

    def stream(
        self,
        *,
        listing: Mapping[str, Any],
        photos: Sequence[str],
        template: str | None = None,
        idempotency_key: str | None = None,
        include_pings: bool = False,
    ) -> RunStream:
        body = {"listing": dict(listing), "photos": list(photos), "template": template}
        return self._stream("/v1/brochures", body, idempotency_key, include_pings)


class AsyncBrochures(_Async):
    async def create(
        self,
        *,
        listing: Mapping[str, Any],
        photos: Sequence[str],
        template: str | None = None,
        idempotency_key: str | None = None,
    ) -> Result:
        body = {"listing": dict(listing), "photos": list(photos), "template": template}
        return await self._run("/v1/brochures", body, idempotency_key)

    def stream(
        self,
        *,
        listing: Mapping[str, Any],
        photos: Sequence[str],
        template: str | None = None,
        idempotency_key: str | None = None,
        include_pings: bool = False,
    ) -> AsyncRunStream:
        body = {"listing": dict(listing), "photos": list(photos), "template": template}
        return self._stream("/v1/brochures", body, idempotency_key, include_pings)


# --- runs ------------------------------------------------------------------------


def _events_path(run_id: str) -> str:
    return f"/v1/workflows/runs/{quote(run_id, safe='')}/events"


class Runs(_Sync):
    """Stored runs: their status and their event log (replay, then follow live)."""

    def retrieve(self, run_id: str) -> dict[str, Any]:
        response = self._t.send("GET", f"/v1/workflows/runs/{quote(run_id, safe='')}")
        return _json_object(response)

    def events(
        self, run_id: str, *, last_event_id: str | None = None, include_pings: bool = False
    ) -> RunStream:
        headers = {"last-event-id": last_event_id} if last_event_id else {}
        path = _events_path(run_id)

        def open_first() -> httpx.Response:
            return self._t.send("GET", path, stream=True, accept=SSE, headers=headers)

        return RunStream(self._t, open_first, include_pings=include_pings, what=f"GET {path}")


class AsyncRuns(_Async):
    async def retrieve(self, run_id: str) -> dict[str, Any]:
        response = await self._t.send("GET", f"/v1/workflows/runs/{quote(run_id, safe='')}")
        return _json_object(response)

    def events(
        self, run_id: str, *, last_event_id: str | None = None, include_pings: bool = False
    ) -> AsyncRunStream:
        headers = {"last-event-id": last_event_id} if last_event_id else {}
        path = _events_path(run_id)

        async def open_first() -> httpx.Response:
            return await self._t.send("GET", path, stream=True, accept=SSE, headers=headers)

        return AsyncRunStream(self._t, open_first, include_pings=include_pings, what=f"GET {path}")


# --- files -----------------------------------------------------------------------


def _artifact(response: httpx.Response) -> Artifact:
    media_type = response.headers.get("content-type", "application/octet-stream")
    return Artifact(data=response.content, media_type=media_type.split(";")[0].strip())


_MAX_REDIRECTS = 5


def _next_hop(response: httpx.Response, url: str) -> str | None:
    location = response.headers.get("location")
    if response.is_redirect and location:
        return urljoin(url, location)
    return None


class Files(_Sync):
    """Result files.  Credentials go only to the API's own origin, also on redirects."""

    def download(self, url: str) -> bytes:
        return self.download_artifact(url).data

    def download_artifact(self, url: str) -> Artifact:
        full = self._t.url(url)
        for _ in range(_MAX_REDIRECTS + 1):
            response = self._t.send("GET", full, accept="*/*", auth=self._t.same_origin(full))
            hop = _next_hop(response, full)
            if hop is None:
                return _artifact(response)
            full = hop
        raise APIError(f"more than {_MAX_REDIRECTS} redirects downloading a file")


class AsyncFiles(_Async):
    async def download(self, url: str) -> bytes:
        return (await self.download_artifact(url)).data

    async def download_artifact(self, url: str) -> Artifact:
        full = self._t.url(url)
        for _ in range(_MAX_REDIRECTS + 1):
            response = await self._t.send("GET", full, accept="*/*", auth=self._t.same_origin(full))
            hop = _next_hop(response, full)
            if hop is None:
                return _artifact(response)
            full = hop
        raise APIError(f"more than {_MAX_REDIRECTS} redirects downloading a file")


# --- oauth -----------------------------------------------------------------------


class OAuth(_Sync):
    """``POST /v1/oauth/token``.  The client calls it itself; this is for inspection."""

    def token(
        self,
        *,
        grant_type: str = "client_credentials",
        client_id: str | NotGiven = NOT_GIVEN,
        client_secret: str | NotGiven = NOT_GIVEN,
        assertion: str | NotGiven = NOT_GIVEN,
        federation_rule_id: str | NotGiven = NOT_GIVEN,
    ) -> dict[str, Any]:
        grant = _token_grant(grant_type, client_id, client_secret, assertion, federation_rule_id)
        response = self._t.send("POST", "/v1/oauth/token", body=grant, auth=False, oauth=True)
        return _token_answer(response)


class AsyncOAuth(_Async):
    async def token(
        self,
        *,
        grant_type: str = "client_credentials",
        client_id: str | NotGiven = NOT_GIVEN,
        client_secret: str | NotGiven = NOT_GIVEN,
        assertion: str | NotGiven = NOT_GIVEN,
        federation_rule_id: str | NotGiven = NOT_GIVEN,
    ) -> dict[str, Any]:
        grant = _token_grant(grant_type, client_id, client_secret, assertion, federation_rule_id)
        response = await self._t.send("POST", "/v1/oauth/token", body=grant, auth=False, oauth=True)
        return _token_answer(response)
