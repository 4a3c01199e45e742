"""``LocalRuntime``: the Backbone graphs run in this process.

``LocalRuntime(settings).run(graph, inputs, params)`` checks the request first and
raises at once for what the API would refuse before streaming (unknown graph:
:class:`UnknownGraphError`; bad parameter: :class:`InvalidParamsError`; missing model
folder: :class:`ModelNotFoundError`).  Then it yields the run's events, the same
sequence the API streams; a failure during the run is the final ``ErrorEvent``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .._events import Event
from ._device import resolve_device, resolve_dtype
from ._graph import get_graph, run_graph
from ._settings import RuntimeSettings

__all__ = ["LocalRuntime"]

logger = logging.getLogger("bkbn_pipelines.runtime")


class LocalRuntime:
    """Runs registered graphs in-process with the given settings."""

    def __init__(self, settings: RuntimeSettings | None = None) -> None:
        from . import graphs  # noqa: F401  (registers the graphs)

        self.settings = settings if settings is not None else RuntimeSettings.from_env()

    def __repr__(self) -> str:
        return f"LocalRuntime(device={self.settings.device!r})"

    @property
    def device(self) -> str:
        """The device runs use: ``cuda``, ``mps`` or ``cpu`` (resolves ``auto``)."""
        return resolve_device(self.settings.device)

    @property
    def dtype(self) -> str:
        """The torch dtype name for model weights on :attr:`device`."""
        return resolve_dtype(self.settings.dtype, self.device)

    def run(
        self,
        graph_name: str,
        inputs: Sequence[bytes],
        params: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[Event]:
        """Check the request, then return the iterator of the run's events.

        The checks run now, not at the first ``next()``: an unknown graph, a bad
        parameter or a missing model raises here.  Setting ``cancel`` (or closing
        the iterator) stops the run at its next node or render step; it then ends
        with an ``ErrorEvent`` of type ``cancelled``.
        """
        graph = get_graph(graph_name)
        checked: Mapping[str, Any] = dict(params or {})
        if graph.preflight is not None:
            checked = graph.preflight(checked, self.settings)
        logger.debug("running %s with %d input(s)", graph.full_name, len(inputs))
        return run_graph(
            graph,
            list(inputs),
            checked,
            settings=self.settings,
            run_id=run_id,
            cancel=cancel,
        )
