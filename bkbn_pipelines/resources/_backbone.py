"""``BackboneResource``: one Dagster resource over both backends.

The resource builds its backend (``api`` or ``local``) when a run's execution starts
and closes it when the run ends.  :meth:`BackboneResource.run_graph` consumes the
backend's event stream, reports progress and node timings through ``context.log`` and
returns a :class:`GraphOutcome` whose fields become asset metadata.  Whichever backend
ran, Dagster sees the same events and the same outcome.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from .._errors import APIStreamError, ConfigError, RunFailedError, status_error_class
from .._events import Artifact, ErrorEvent, NodeDone, NodeStart, RenderProgress, Result, RunStart
from ..backends import Backend, GraphRequest

__all__ = ["BackboneResource", "GraphOutcome"]

_SECRET_FIELDS = frozenset({"api_key", "client_secret", "ratelimit_redis_url"})
#: Guards the first build of a resource's backend: one client (one token cache, one
#: connection pool) per execution however many threads ask at once.
_BACKEND_LOCK = threading.Lock()
#: Seconds between two progress lines in the run log, per graph run.
_PROGRESS_EVERY_S = 2.0


@dataclass(frozen=True)
class GraphOutcome:
    """What one graph run produced, whichever backend ran it."""

    run_id: str | None
    request_id: str | None
    graph: str
    data: Mapping[str, Any] = field(repr=False)
    outputs: Mapping[str, Artifact] = field(repr=False)
    node_ms: Mapping[str, int] = field(default_factory=dict)
    tokens: int | None = None
    weights: str | None = None
    ms: int | None = None

    @property
    def untrained(self) -> bool:
        return self.weights == "untrained"

    def metadata(self) -> dict[str, Any]:
        """Plain JSON-able fields for Dagster metadata (no credentials, no bytes)."""
        return {
            "run_id": self.run_id,
            "request_id": self.request_id,
            "graph": self.graph,
            "node_ms": dict(self.node_ms),
            "tokens": self.tokens,
            "weights": self.weights,
            "ms": self.ms,
        }


class BackboneResource(ConfigurableResource):
    """Runs Backbone graphs through the ``api`` backend or the ``local`` runtime.

    Secrets: set ``api_key`` from ``EnvVar("BKBN_API_KEY")``; Dagster keeps it out of
    the UI and the event log, and the resource never logs it.
    """

    backend: Literal["api", "local"] = Field(
        default="api", description="'api' calls the Backbone Lab API; 'local' runs in-process."
    )
    # -- api backend --
    base_url: str | None = Field(
        default=None, description="API base URL; None uses BKBN_BASE_URL or the default."
    )
    api_key: str | None = Field(
        default=None, description="API key (use EnvVar('BKBN_API_KEY')); never logged."
    )
    client_id: str | None = Field(
        default=None, description="OAuth client id (client-credentials grant), instead of a key."
    )
    client_secret: str | None = Field(
        default=None, description="OAuth client secret (use EnvVar); never logged."
    )
    version: str | None = Field(default=None, description="Pinned bkbn-version header.")
    max_retries: int = Field(default=2, description="Client retries of one HTTP request.")
    timeout_s: float = Field(default=600.0, description="Overall deadline of one graph run.")
    read_timeout_s: float = Field(default=60.0, description="Longest wait between events.")
    ratelimit_redis_url: str | None = Field(
        default=None,
        description="Redis URL of a pacer shared by every process that uses this key "
        "(run workers, Celery workers); None paces each process on its own. Its password, "
        "if any, is treated as a secret (use EnvVar).",
    )
    ratelimit_requests: int | None = Field(
        default=None,
        description="The key's request limit per window, for the shared pacer's schedule "
        "(e.g. 600); None paces from the rate-limit headers only.",
    )
    ratelimit_window_s: float = Field(
        default=60.0, description="The window of ratelimit_requests, in seconds."
    )
    # -- local backend --
    device: str | None = Field(
        default=None, description="auto, cuda, mps or cpu; None reads BKBN_DEVICE, else auto."
    )
    models_dir: str | None = Field(
        default=None, description="Folder holding model folders; None reads BKBN_MODELS_DIR."
    )
    staging_model: str | None = Field(
        default=None,
        description="Staging model folder (diffusers format), absolute or below models_dir; "
        "None reads BKBN_STAGING_MODEL.",
    )
    allow_untrained: bool | None = Field(
        default=None,
        description="Let staging run on a tiny untrained pipeline when no model is set; its "
        "outputs are labelled weights=untrained. None reads BKBN_ALLOW_UNTRAINED.",
    )
    steps: int | None = Field(default=None, description="Render steps; None reads BKBN_STEPS.")

    _backend: Backend | None = PrivateAttr(default=None)

    def __repr__(self) -> str:
        shown = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in _SECRET_FIELDS and value is not None:
                value = "[redacted]"
            shown.append(f"{name}={value!r}")
        return f"BackboneResource({', '.join(shown)})"

    __str__ = __repr__

    # -- lifecycle ---------------------------------------------------------------------

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._backend = None  # built on first use: a run that calls no graph opens nothing

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self.close()

    def close(self) -> None:
        if self._backend is not None:
            backend, self._backend = self._backend, None
            backend.close()

    def settings(self) -> dict[str, Any]:
        """The backend settings, secrets included: for ``make_backend`` only."""
        if self.backend == "api":
            settings = {
                "base_url": self.base_url,
                "api_key": self.api_key,
                "version": self.version,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "max_retries": self.max_retries,
                "timeout": self.read_timeout_s,
                "deadline": self.timeout_s,
            }
        else:
            settings = {
                "device": self.device,
                "models_dir": self.models_dir,
                "staging_model": self.staging_model,
                "allow_untrained": self.allow_untrained,
                "steps": self.steps,
            }
        return {k: v for k, v in settings.items() if v is not None}

    def staging_weights(self) -> str:
        """What staging would run on: ``"configured"``, ``"untrained"`` or ``"none"``.

        Only the local backend is known in advance; the API decides for itself, so
        ``api`` always answers ``"configured"``.
        """
        if self.backend == "api":
            return "configured"
        settings = self.runtime_settings()
        if settings.staging_model:
            return "configured"
        return "untrained" if settings.allow_untrained else "none"

    def runtime_settings(self) -> Any:
        """The local runtime's settings: these fields over the ``BKBN_*`` environment."""
        from ..runtime import RuntimeSettings

        return RuntimeSettings.from_env(**self.settings())

    def get_backend(self) -> Backend:
        """The backend of this execution, built on first use."""
        with _BACKEND_LOCK:  # the listings of a run share it from several threads
            if self._backend is None:
                self._backend = self._make_backend()
            return self._backend

    def _make_backend(self) -> Backend:
        from ..backends import make_backend

        if self.backend == "local":
            return make_backend("local", settings=self.runtime_settings())
        settings = self.settings()
        if self.ratelimit_redis_url:
            settings["pacer"] = self._shared_pacer(settings)
        return make_backend("api", **settings)

    def _shared_pacer(self, settings: dict[str, Any]) -> Any:
        """One budget in Redis for every process using this key at this API."""
        from ..client._settings import resolve_settings
        from ..client._shared_ratelimit import SharedPacer, pacer_key

        client = resolve_settings(
            **{k: v for k, v in settings.items() if k not in {"timeout", "deadline"}}
        )
        assert self.ratelimit_redis_url is not None
        limit = (
            {"requests": self.ratelimit_requests, "window_s": self.ratelimit_window_s}
            if self.ratelimit_requests
            else {}
        )
        return SharedPacer(
            pacer_key(client.base_url, client.auth.fingerprint()),
            redis_url=self.ratelimit_redis_url,
            **limit,
        )

    # -- running a graph ---------------------------------------------------------------

    def run_graph(self, context: Any, request: GraphRequest) -> GraphOutcome:
        """Run one graph, log its progress, and return its outcome.

        Raises the backend's errors unchanged (``RateLimitError``, ``BadRequestError``,
        ``ModelNotFoundError``...); an ``error`` event becomes :class:`RunFailedError`
        with the event's ``error_type``, or the API's class for that type.
        """
        backend = self.get_backend()
        log = getattr(context, "log", None)
        run_id: str | None = None
        graph = request.graph
        node_ms: dict[str, int] = {}
        last_progress = 0.0
        started = time.monotonic()
        for event in backend.stream(request):
            if isinstance(event, RunStart):
                run_id, graph = event.run_id, event.graph
                _debug(log, "%s: run %s started", graph, run_id)
            elif isinstance(event, NodeStart):
                _debug(log, "%s: node %s started", graph, event.node)
            elif isinstance(event, NodeDone):
                node_ms[event.node] = event.ms
                _debug(log, "%s: node %s done in %d ms", graph, event.node, event.ms)
            elif isinstance(event, RenderProgress):
                now = time.monotonic()
                if now - last_progress >= _PROGRESS_EVERY_S or event.step == event.total:
                    last_progress = now
                    if log is not None:
                        log.info(f"{graph}: render step {event.step}/{event.total}")
            elif isinstance(event, ErrorEvent):
                error = _run_failed(event, run_id, graph)
                error.from_error_event = True  # type: ignore[attr-defined]
                raise error
            elif isinstance(event, Result):
                return self._outcome(backend, event, run_id, graph, node_ms, started)
        raise APIStreamError(f"{graph}: the event stream ended without a result")

    @staticmethod
    def _outcome(
        backend: Backend,
        result: Result,
        run_id: str | None,
        graph: str,
        node_ms: dict[str, int],
        started: float,
    ) -> GraphOutcome:
        data = dict(result.data)
        outputs = dict(backend.outputs(result))
        return GraphOutcome(
            run_id=run_id or data.get("run_id"),
            request_id=data.get("request_id") or getattr(result, "request_id", None),
            graph=str(data.get("graph") or graph),
            data=data,
            outputs=outputs,
            node_ms=node_ms,
            tokens=result.tokens,
            weights=data.get("weights"),
            ms=data.get("ms") or round((time.monotonic() - started) * 1000),
        )


def _debug(log: Any, message: str, *args: Any) -> None:
    if log is not None:
        log.debug(message % args)


#: ``error`` event types that map to an API status class (and so to its retry rule).
_ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def _run_failed(event: ErrorEvent, run_id: str | None, graph: str) -> Exception:
    message = f"{graph} run {run_id or '?'} failed: {event.message}"
    if event.error_type == "config_error":
        return ConfigError(message)
    status = _ERROR_TYPE_STATUS.get(event.error_type)
    if status is not None:
        return status_error_class(status)(message, error_type=event.error_type)
    return RunFailedError(message, error_type=event.error_type)
