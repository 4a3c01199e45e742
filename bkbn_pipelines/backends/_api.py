"""The ``api`` backend: graph requests sent to the Backbone Lab API (or the emulator).

Inputs travel inline as ``data:`` URIs, so the backend needs no upload step and works
the same against the emulator and the real API.  The request's ``idempotency_key``
(or a fresh one per call) is sent with the POST, so a retried call never renders twice.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .._errors import InvalidParamsError, RunCancelledError
from .._events import Artifact, Event, Result
from ..client import BackboneClient
from ._base import GraphRequest, InputFile

__all__ = ["ApiBackend", "data_uri", "input_names", "primary_output", "with_photo_names"]

#: Output name of the main file of each graph family.
_PRIMARY = {"brochure": "pdf", "floor-plan": "plan"}


def data_uri(item: InputFile) -> str:
    """An input as a base64 ``data:`` URI."""
    return f"data:{item.media_type};base64,{base64.b64encode(item.data).decode('ascii')}"


def _family(graph: str) -> str:
    base, sep, version = graph.rpartition("-v")
    return base if sep and version.replace(".", "").isdigit() else graph


def input_names(inputs: Sequence[InputFile]) -> list[str]:
    """The inputs' names in order; one left at the default ``input`` becomes ``photo-N``."""
    return [
        item.name if item.name and item.name != InputFile.name else f"photo-{i + 1}"
        for i, item in enumerate(inputs)
    ]


def with_photo_names(
    graph: str, params: Mapping[str, Any], names: Sequence[str] | None
) -> dict[str, Any]:
    """``params``, plus ``photo_names`` for a brochure that has none: the brochure
    names its photos after them (room hints, error messages), not ``photo-1``..."""
    params = dict(params)
    if names is not None and _family(graph) == "brochure" and params.get("photo_names") is None:
        params["photo_names"] = list(names)
    return params


def primary_output(graph: str) -> str:
    """``image`` for the image graphs, ``pdf`` for brochures, ``plan`` for floor plans."""
    return _PRIMARY.get(_family(graph), "image")


class ApiBackend:
    """Runs graph requests through a :class:`BackboneClient`.

    Keyword settings are those of :class:`BackboneClient` (``api_key``, ``base_url``,
    ``max_retries``...); pass ``client=`` to share an existing client instead.
    """

    name = "api"

    def __init__(self, *, client: BackboneClient | None = None, **settings: Any) -> None:
        self._owns_client = client is None
        self.client = client if client is not None else BackboneClient(**settings)

    def __repr__(self) -> str:
        return f"ApiBackend(client={self.client!r})"

    def body(self, request: GraphRequest) -> dict[str, Any]:
        """The JSON body of ``POST /v1/workflows/{graph}/run`` for ``request``."""
        return self.body_for_urls(
            request.graph,
            [data_uri(item) for item in request.inputs],
            request.params,
            names=input_names(request.inputs),
        )

    @staticmethod
    def body_for_urls(
        graph: str,
        urls: Sequence[str],
        params: Mapping[str, Any],
        *,
        names: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """The body for inputs given as URLs (``https:``, ``s3:``, ``data:``).

        ``names`` (one per URL) become a brochure's ``photo_names`` unless ``params``
        has them; without names, the API names a brochure's photos after their URLs.
        """
        params = with_photo_names(graph, params, names)
        if _family(graph) == "brochure":
            params["photos"] = list(urls)
            return {"params": params}
        if len(urls) != 1:
            raise InvalidParamsError(f"graph {graph!r} takes one input, got {len(urls)}")
        return {"input": urls[0], "params": params}

    def stream(
        self, request: GraphRequest, *, cancel: threading.Event | None = None
    ) -> Iterator[Event]:
        """Run the graph and yield its events; the last is ``Result`` or ``ErrorEvent``.

        ``cancel``, when set, stops reading between two events and raises
        :class:`RunCancelledError`; the API has no cancel call, so the server's run
        finishes on its own (and a retry with the same idempotency key reuses it).
        """
        body = self.body(request)
        return self.stream_body(request.graph, body, request.idempotency_key, cancel=cancel)

    def stream_body(
        self,
        graph: str,
        body: Mapping[str, Any],
        idempotency_key: str | None = None,
        *,
        cancel: threading.Event | None = None,
    ) -> Iterator[Event]:
        """Run ``graph`` with a ready JSON body (see :meth:`body_for_urls`)."""
        with self.client.workflows.stream(graph, idempotency_key=idempotency_key, **body) as events:
            for event in events:
                if cancel is not None and cancel.is_set():
                    raise RunCancelledError(
                        f"run {events.run_id or ''} of {graph!r}: cancelled by the caller"
                    )
                if isinstance(event, Result) and "request_id" not in event.data:
                    # Callers record the request id with the result (Dagster metadata).
                    data = {**event.data, "request_id": events.request_id}
                    event = Result(data=data, artifacts=event.artifacts, id=event.id)
                yield event

    def outputs(self, result: Result) -> Mapping[str, Artifact]:
        """Download every file the result names, by output name."""
        urls: dict[str, str] = dict(result.data.get("outputs") or {})
        if not urls and result.url:
            urls = {"image": result.url}
        return {name: self.client.files.download_artifact(url) for name, url in urls.items()}

    def close(self) -> None:
        if self._owns_client:
            self.client.close()
