"""The ``local`` backend: graphs run in this process by :class:`LocalRuntime`.

Requests that the runtime refuses before starting (unknown graph, bad parameter,
missing model) raise the runtime's error; failures during a run arrive as the final
``ErrorEvent``, as with the ``api`` backend.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

from .._events import Artifact, Event, Result
from ..runtime._runtime import LocalRuntime
from ..runtime._settings import RuntimeSettings
from ._api import input_names, with_photo_names
from ._base import GraphRequest

__all__ = ["LocalBackend"]


class LocalBackend:
    """Runs graph requests with the in-process runtime."""

    name = "local"

    def __init__(
        self, settings: RuntimeSettings | None = None, *, runtime: LocalRuntime | None = None
    ) -> None:
        self.runtime = runtime if runtime is not None else LocalRuntime(settings)

    def __repr__(self) -> str:
        return f"LocalBackend(runtime={self.runtime!r})"

    def stream(
        self, request: GraphRequest, *, cancel: threading.Event | None = None
    ) -> Iterator[Event]:
        """Run ``request.graph`` on the request's inputs and yield its events.

        A brochure's photos are named after the inputs (``photo_names``), as with the
        ``api`` backend, unless the parameters name them.
        """
        return self.runtime.run(
            request.graph,
            [item.data for item in request.inputs],
            with_photo_names(request.graph, request.params, input_names(request.inputs)),
            cancel=cancel,
        )

    def outputs(self, result: Result) -> Mapping[str, Artifact]:
        """The files of a local result: ``image``, ``pdf``, ``plan``..."""
        return dict(result.artifacts)

    def close(self) -> None:
        """Nothing to release: models stay cached for the process."""
