"""The emulator's FastAPI application: routes of the API contract over the renderers.

:func:`create_app` builds an app from an :class:`EmulatorConfig`.  Every request of
``/v1`` passes one dependency (:func:`_Emulator.caller`) that authenticates, applies
test faults, checks ``bkbn-version`` and counts the request against the
organization's rate limit, in that order.  Runs are admitted by :meth:`_Emulator.admit`
and rendered in a thread pool; answers stream (``accept: text/event-stream``) or block
until the result.
"""

import asyncio
import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._contract import API_VERSION, ERROR_TYPES, SUPPORTED_VERSIONS
from .._errors import BkbnError, GraphError, UnknownGraphError
from .._events import ErrorEvent, Ping, Result
from ._auth import CredentialStore, OAuthProblem, Principal
from ._config import EmulatorConfig, LatencyConfig, TierConfig
from ._faults import FaultBook, FaultSpec
from ._http import ApiProblem, BodySizeLimit, RequestContext, error_body, size_limit_for
from ._inputs import InputResolver
from ._limits import RateLimiter
from ._models import (
    BrochureParams,
    BrochureRequest,
    ErrorResponse,
    FloorPlanParams,
    FloorPlanRequest,
    ImageParams,
    RunStatus,
    StagingParams,
    StagingRequest,
    TokenRequest,
    TokenResponse,
    WorkflowRunRequest,
)
from ._render import Renderer, RenderJob, make_renderer, resolve_graph
from ._runs import FileStore, Run, RunStore, Stats
from ._sse import EventStream
from ._testapi import test_router

__all__ = ["create_app"]

logger = logging.getLogger("bkbn_pipelines.emulator")

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

#: ``error`` event type -> status of a blocking answer.
_ERROR_STATUS = {v: k for k, v in ERROR_TYPES.items()}

_PRIMARY_OUTPUT = ("image", "pdf", "plan")
_FILE_MEDIA_TYPES = (
    "image/png",
    "application/pdf",
    "application/json",
    "image/svg+xml",
    "application/dxf",
    "text/html",
    "application/octet-stream",
)


def _error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": ErrorResponse, "description": ERROR_TYPES.get(status, "error")}
        for status in statuses
    }


_COMMON_ERRORS = (400, 401, 403, 404, 429, 500, 529)
_RUN_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The result (blocking), or with `accept: text/event-stream` the "
        "run's events as Server-Sent Events (`id: RUN_ID:SEQ`, `event: TYPE`, `data: JSON`; "
        "`ping` heartbeats without id).",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/RunResult"}},
            "text/event-stream": {"schema": {"type": "string"}},
        },
    },
    **_error_responses(*_COMMON_ERRORS, 413),
}

_api_key_scheme = APIKeyHeader(name="x-api-key", auto_error=False, description="bkbn_sk_... key")
_bearer_scheme = HTTPBearer(auto_error=False, description="access token from /v1/oauth/token")

#: Optional in the signature so that credentials are checked first; the OpenAPI
#: document marks it required, and :func:`_check_version` refuses a request without it.
VersionHeader = Annotated[
    str | None, Header(alias="bkbn-version", description=f"API version, e.g. {API_VERSION}")
]


def _check_version(version: str | None) -> None:
    if not version:
        raise ApiProblem(400, f"the bkbn-version header is required (e.g. {API_VERSION})")
    if version not in SUPPORTED_VERSIONS:
        raise ApiProblem(
            400,
            f"unknown bkbn-version {version[:40]!r}; supported: "
            f"{', '.join(sorted(SUPPORTED_VERSIONS))}",
        )


@dataclass(frozen=True)
class Caller:
    principal: Principal
    tier: TierConfig
    faults: FaultSpec | None

    @property
    def org(self) -> str:
        return self.principal.org

    def latency(self, base: LatencyConfig) -> LatencyConfig:
        override = self.faults.latency if self.faults else None
        if override is None:
            return base
        changes = {k: v for k, v in override.model_dump().items() if v is not None}
        return base.model_copy(update=changes)


class _Emulator:
    """The state behind the app: credentials, limits, runs, files, renderer."""

    def __init__(self, config: EmulatorConfig, test_mode: bool) -> None:
        self.config = config
        self.test_mode = test_mode
        self.renderer: Renderer = make_renderer(config)
        self.credentials = CredentialStore.from_config(config)
        self.tiers: dict[str, TierConfig] = {
            org.id: config.tiers[org.tier] for org in config.organizations
        }
        self.limiter = RateLimiter(window_s=config.rate_limit_window_s)
        self.faults = FaultBook()
        self.stats = Stats()
        self._tmp: str | None = None
        if config.data_dir is None:
            self._tmp = tempfile.mkdtemp(prefix="bkbn-emulator-")
            root = Path(self._tmp)
        else:
            root = config.data_dir
        self.files = FileStore(root)
        self.runs = RunStore(self.files, config.max_runs, config.max_events_per_run)
        self.inputs = InputResolver(
            files=self.files,
            allowed_hosts=tuple(h.lower() for h in config.allowed_input_hosts),
            allowed_buckets=config.allowed_s3_buckets,
            s3_endpoint_url=config.s3_endpoint_url,
            timeout_s=config.input_fetch_timeout_s,
            max_bytes=size_limit_for("/v1/brochures"),
        )
        for name, raw in config.faults.items():
            self.faults.set(self._credential_name(name), FaultSpec.model_validate(raw))
        self.executor = ThreadPoolExecutor(
            max_workers=config.max_concurrent_renders, thread_name_prefix="bkbn-render"
        )

    def _credential_name(self, name: str) -> str:
        if name.startswith("bkbn_sk_"):
            principal = self.credentials.principal_for_key(name)
            if principal is None:
                raise BkbnError("faults: a key that is not in api_keys")
            return principal.credential
        if name.startswith(("client:", "rule:")):
            return name
        raise BkbnError("faults: name an API key, 'client:ID' or 'rule:ID'")

    def close(self) -> None:
        for run in self.runs.all():
            run.cancel.set()
        self.executor.shutdown(wait=True, cancel_futures=True)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def tier_of(self, org: str) -> TierConfig:
        return self.tiers.get(org) or self.config.tiers.get("default") or TierConfig()

    # -- the dependency every /v1 route shares ------------------------------------

    async def identify(self, request: Request, principal: Principal) -> Caller:
        """Note the caller's organization and apply its test faults."""
        state = request.state
        state.org_id = principal.org
        tier = self.tier_of(principal.org)
        spec = self.faults.spec(principal.credential)
        state.extra_headers = self.limiter.headers(principal.org, tier)
        if spec is not None and spec.first_byte_delay_s:
            await asyncio.sleep(spec.first_byte_delay_s)
        rule, burst = self.faults.on_request(principal.credential)
        if rule is not None:
            headers = dict(rule.headers)
            if rule.retry_after is not None:
                headers["retry-after"] = _seconds(rule.retry_after)
            if rule.retry_after_http_date is not None:
                headers["retry-after"] = formatdate(
                    time.time() + rule.retry_after_http_date, usegmt=True
                )
            if rule.retry_after_ms is not None:
                headers["retry-after-ms"] = str(rule.retry_after_ms)
            raise ApiProblem(
                rule.status,
                f"injected fault: status {rule.status}",
                headers=headers,
                body=rule.body,
            )
        if burst is not None:
            headers = (
                {} if burst.retry_after is None else {"retry-after": _seconds(burst.retry_after)}
            )
            raise ApiProblem(429, "injected fault: rate limit burst", headers=headers)
        return Caller(principal, tier, spec)

    def count_request(self, request: Request, caller: Caller) -> None:
        """Count one request against the organization's limit; 429 past it."""
        wait = self.limiter.take_request(caller.org, caller.tier)
        request.state.extra_headers = self.limiter.headers(caller.org, caller.tier)
        if wait is not None:
            raise ApiProblem(
                429,
                f"requests per minute limit of {caller.tier.requests_per_minute} reached",
                headers={"retry-after": str(wait)},
            )
        self.stats.add(self.stats.requests, caller.org)

    # -- runs ---------------------------------------------------------------------

    async def start(
        self,
        request: Request,
        caller: Caller,
        graph_name: str,
        urls: list[tuple[str, str]],
        params: dict[str, Any],
    ) -> Response:
        """Admit a run (or find the one its idempotency key names) and answer."""
        try:
            graph = resolve_graph(graph_name, self.renderer.known_versions())
        except UnknownGraphError as exc:
            raise ApiProblem(404, str(exc)) from None
        key = request.headers.get("idempotency-key")
        fingerprint = _fingerprint(graph, urls, params)
        if key:
            async with self.runs.key_lock(caller.org, key):
                run = self.runs.by_key(caller.org, key)
                if run is not None:
                    if run.fingerprint != fingerprint:
                        raise ApiProblem(
                            400, "idempotency-key was already used with a different request"
                        )
                    logger.debug("idempotency key maps to run %s", run.id)
                else:
                    run = await self.admit(request, caller, graph, urls, params, fingerprint)
                    self.runs.bind_key(caller.org, key, run)
        else:
            run = await self.admit(request, caller, graph, urls, params, fingerprint)
        return await self.answer(request, caller, run)

    async def admit(
        self,
        request: Request,
        caller: Caller,
        graph: str,
        urls: list[tuple[str, str]],
        params: dict[str, Any],
        fingerprint: str,
    ) -> Run:
        base_url = str(request.base_url).rstrip("/")
        inputs = [await self.inputs.fetch(url, field, caller.org, base_url) for field, url in urls]
        latency = caller.latency(self.config.latency)
        base = graph.rpartition("-v")[0]
        try:
            tokens = self.renderer.tokens(base, inputs, params, self.renderer.steps(latency))
        except GraphError as exc:
            raise ApiProblem(400, f"{urls[0][0] if urls else 'input'}: {exc}") from None
        wait = self.limiter.take_tokens(caller.org, caller.tier, tokens)
        request.state.extra_headers = self.limiter.headers(caller.org, caller.tier)
        if wait is not None:
            raise ApiProblem(
                429,
                f"tokens per minute limit of {caller.tier.tokens_per_minute} reached "
                f"(this run costs {tokens})",
                headers={"retry-after": str(wait)},
            )
        run = self.runs.new_run(caller.org, caller.principal.credential, graph, fingerprint)
        job = RenderJob(run.id, graph, inputs, params, run.cancel, latency)
        try:
            if self.renderer.label == "runtime":
                events = await asyncio.to_thread(self.renderer.start, job)
            else:
                events = self.renderer.start(job)
        except BkbnError as exc:
            status = _ERROR_STATUS.get(getattr(exc, "error_type", ""), 500)
            run.append("error", {"type": ERROR_TYPES.get(status, "api_error"), "message": str(exc)})
            raise ApiProblem(status, str(exc)) from None
        logger.info("run %s admitted: %s for %s, %d token(s)", run.id, graph, caller.org, tokens)
        self.stats.add(self.stats.renders, caller.org)
        self.stats.add(self.stats.tokens, caller.org, tokens)
        asyncio.get_running_loop().run_in_executor(
            self.executor, self._drain, run, events, base_url, tokens
        )
        return run

    def _drain(self, run: Run, events: Iterator, base_url: str, tokens: int) -> None:
        """Render thread: pass each event to the run's log; store the result files."""
        try:
            for event in events:
                if run.cancel.is_set():
                    break
                if isinstance(event, Ping):
                    continue
                if isinstance(event, Result):
                    run.post("result", self._finish(run, event, base_url, tokens))
                    return
                if isinstance(event, ErrorEvent):
                    error_type = event.error_type
                    if error_type not in _ERROR_STATUS:
                        error_type = "api_error"
                    run.post("error", {"type": error_type, "message": event.message})
                    return
                run.post(event.type, event.to_data())
            run.post("error", {"type": "api_error", "message": "the run ended without a result"})
        except Exception:
            logger.exception("render of run %s crashed", run.id)
            run.post("error", {"type": "api_error", "message": "internal error during render"})
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    def _finish(self, run: Run, result: Result, base_url: str, tokens: int) -> dict[str, Any]:
        outputs = {}
        for name, artifact in result.artifacts.items():
            file_id = self.files.put(run.org, artifact.data, artifact.media_type)
            run.file_ids.append(file_id)
            outputs[name] = f"{base_url}/v1/files/{file_id}"
        data = dict(result.data)
        primary = next((outputs[n] for n in _PRIMARY_OUTPUT if n in outputs), None)
        data["url"] = primary or next(iter(outputs.values()), "")
        data["outputs"] = outputs
        data["usage"] = {"tokens": tokens}
        data.setdefault("graph", run.graph)
        data.setdefault("ms", 0)
        data["renderer"] = self.renderer.label
        return data

    async def answer(self, request: Request, caller: Caller, run: Run, after: int = 0) -> Response:
        if "text/event-stream" in request.headers.get("accept", ""):
            return self.stream(caller, run, after)
        last = await run.wait_done()
        run_header = {"bkbn-run-id": run.id}
        if last.type == "result":
            return JSONResponse(last.data, headers=run_header)
        status = _ERROR_STATUS.get(last.data.get("type"), 500)
        message = str(last.data.get("message", "the run failed"))
        raise ApiProblem(status, message, headers=run_header)

    def stream(self, caller: Caller, run: Run, after: int) -> EventStream:
        heartbeat = self.config.heartbeat_s
        if caller.faults is not None and caller.faults.heartbeat_s:
            heartbeat = caller.faults.heartbeat_s
        return EventStream(
            run,
            after_seq=after,
            heartbeat_s=heartbeat,
            fault=self.faults.next_stream(caller.principal.credential),
            headers={"bkbn-run-id": run.id},
        )


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _fingerprint(graph: str, urls: list[tuple[str, str]], params: dict[str, Any]) -> str:
    blob = json.dumps([graph, urls, params], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _validation_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _params(model: type[BaseModel], params: dict[str, Any]) -> dict[str, Any]:
    try:
        return model.model_validate(params).model_dump(exclude_none=True)
    except ValidationError as exc:
        errors = [{**e, "loc": ("params", *e["loc"])} for e in exc.errors(include_input=False)]
        raise ApiProblem(400, _validation_message(errors)) from None


def create_app(config: EmulatorConfig | None = None, *, test_mode: bool = False) -> FastAPI:
    """The emulator as an ASGI app.  ``test_mode`` enables ``/_test`` and faults."""
    config = config or EmulatorConfig()
    if config.faults and not test_mode:
        raise BkbnError("the config sets faults; faults need test mode (--test-mode)")
    emu = _Emulator(config, test_mode)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            emu.close()

    class _App(FastAPI):
        def build_middleware_stack(self):  # type: ignore[no-untyped-def]
            return RequestContext(BodySizeLimit(super().build_middleware_stack()))

    app = _App(
        title="Backbone Lab API (emulator)",
        version=API_VERSION,
        description=(
            "The Backbone Lab API served locally by bkbn_pipelines. Every error answer has "
            "the body `{type: error, error: {type, message}, request_id}`; every answer "
            "carries `request-id`, and once the caller is known `bkbn-organization-id` "
            "and the `bkbn-ratelimit-*` headers."
        ),
        lifespan=lifespan,
    )
    app.state.emulator = emu

    # -- error handlers -----------------------------------------------------------

    def _problem_response(request: Request, problem: ApiProblem) -> JSONResponse:
        request_id = getattr(request.state, "request_id", None)
        if problem.body is not None:
            body = problem.body
        else:
            body = error_body(problem.status, problem.message, request_id, **problem.extra)
            if isinstance(problem, OAuthProblem):
                body["error_description"] = problem.message
        return JSONResponse(body, status_code=problem.status, headers=problem.headers)

    @app.exception_handler(ApiProblem)
    async def _on_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return _problem_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _problem_response(request, ApiProblem(400, _validation_message(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = {404: "no such endpoint", 405: "method not allowed"}.get(
            exc.status_code, str(exc.detail)
        )
        return _problem_response(request, ApiProblem(exc.status_code, message, headers=exc.headers))

    @app.exception_handler(Exception)
    async def _on_crash(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled %s in %s", type(exc).__name__, request.url.path)
        return _problem_response(request, ApiProblem(500, "internal error in the emulator"))

    # -- dependencies -------------------------------------------------------------

    async def caller(
        request: Request,
        api_key: Annotated[str | None, Depends(_api_key_scheme)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)],
        bkbn_version: VersionHeader = None,
    ) -> Caller:
        principal = emu.credentials.authenticate(api_key, bearer.credentials if bearer else None)
        found = await emu.identify(request, principal)
        _check_version(bkbn_version)
        emu.count_request(request, found)
        return found

    CallerDep = Annotated[Caller, Depends(caller)]

    # -- routes -------------------------------------------------------------------

    @app.post(
        "/v1/workflows/{name}/run",
        responses=_RUN_RESPONSES,
        response_model=None,
        summary="Run a named graph",
        tags=["workflows"],
    )
    async def run_workflow(
        name: str, body: WorkflowRunRequest, request: Request, who: CallerDep
    ) -> Response:
        try:
            graph = resolve_graph(name, emu.renderer.known_versions())
        except UnknownGraphError as exc:
            raise ApiProblem(404, str(exc)) from None
        base = graph.rpartition("-v")[0]
        params = dict(body.params)
        urls: list[tuple[str, str]] = []
        if base == "brochure":
            params = _params(BrochureParams, params)
            urls = [(f"params.photos[{i}]", url) for i, url in enumerate(params["photos"])]
        else:
            if base == "staging":
                params = _params(StagingParams, params)
            elif base == "floor-plan":
                params = _params(FloorPlanParams, params)
            elif base in ("relight", "declutter"):
                params = _params(ImageParams, params)
            if body.input is None and base in ("staging", "relight", "declutter", "floor-plan"):
                raise ApiProblem(400, "input: required for this graph")
            if body.input is not None:
                urls = [("input", body.input)]
        return await emu.start(request, who, graph, urls, params)

    @app.post(
        "/v1/staging",
        responses=_RUN_RESPONSES,
        response_model=None,
        tags=["staging"],
        summary="Stage an empty room",
    )
    async def staging(body: StagingRequest, request: Request, who: CallerDep) -> Response:
        params = body.model_dump(exclude={"image"}, exclude_none=True)
        return await emu.start(request, who, "staging", [("image", body.image)], params)

    @app.post(
        "/v1/floor-plans",
        responses=_RUN_RESPONSES,
        response_model=None,
        tags=["floor-plans"],
        summary="Infer an editable floor plan from a walk-through capture",
    )
    async def floor_plans(body: FloorPlanRequest, request: Request, who: CallerDep) -> Response:
        return await emu.start(
            request, who, "floor-plan", [("video", body.video)], {"units": body.units}
        )

    @app.post(
        "/v1/brochures",
        responses=_RUN_RESPONSES,
        response_model=None,
        tags=["brochures"],
        summary="Compose a brochure from a listing (beta)",
    )
    async def brochures(body: BrochureRequest, request: Request, who: CallerDep) -> Response:
        params = body.model_dump(exclude_none=True)
        urls = [(f"photos[{i}]", url) for i, url in enumerate(body.photos)]
        return await emu.start(request, who, "brochure", urls, params)

    @app.get(
        "/v1/workflows/runs/{run_id}",
        response_model=RunStatus,
        responses=_error_responses(*_COMMON_ERRORS),
        tags=["workflows"],
        summary="Status of a run",
    )
    async def run_status(run_id: str, who: CallerDep) -> dict[str, Any]:
        run = emu.runs.get(run_id, who.org)
        if run is None:
            raise ApiProblem(404, f"no run {run_id[:40]!r}")
        return run.snapshot()

    @app.get(
        "/v1/workflows/runs/{run_id}/events",
        response_model=None,
        responses={
            200: {
                "description": "The run's events after `last-event-id`, then live ones.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            **_error_responses(*_COMMON_ERRORS),
        },
        tags=["workflows"],
        summary="Replay and follow a run's events",
    )
    async def run_events(
        run_id: str,
        request: Request,
        who: CallerDep,
        last_event_id: Annotated[
            str | None, Header(alias="last-event-id", description="RUN_ID:SEQ")
        ] = None,
    ) -> Response:
        run = emu.runs.get(run_id, who.org)
        if run is None:
            raise ApiProblem(404, f"no run {run_id[:40]!r}")
        after = 0
        if last_event_id:
            last_run, _, seq = last_event_id.rpartition(":")
            if last_run != run.id or not seq.isdigit():
                raise ApiProblem(400, "last-event-id must be RUN_ID:SEQ of this run")
            after = min(int(seq), len(run.events)) if run.finished else int(seq)
        return emu.stream(who, run, after)

    @app.get(
        "/v1/files/{file_id}",
        response_model=None,
        responses={
            200: {
                "description": "The file, with its media type",
                "content": {media: {} for media in _FILE_MEDIA_TYPES},
            },
            **_error_responses(*_COMMON_ERRORS),
        },
        tags=["files"],
        summary="Download a result file",
    )
    async def get_file(file_id: str, who: CallerDep) -> Response:
        found = emu.files.get(file_id, who.org)
        if found is None:
            raise ApiProblem(404, f"no file {file_id[:40]!r}")
        path, media_type = found
        return FileResponse(path, media_type=media_type)

    @app.post(
        "/v1/oauth/token",
        response_model=TokenResponse,
        responses=_error_responses(400, 401, 413, 429, 500),
        tags=["auth"],
        summary="Exchange client credentials or a federated JWT for an access token",
    )
    async def oauth_token(
        body: TokenRequest, request: Request, bkbn_version: VersionHeader = None
    ) -> dict[str, Any]:
        if body.grant_type == "client_credentials":
            principal = emu.credentials.client_principal(body.client_id, body.client_secret)
        elif body.grant_type == JWT_BEARER:
            principal = emu.credentials.rule_principal(body.federation_rule_id, body.assertion)
        else:
            raise OAuthProblem(
                400, "unsupported_grant_type", f"grant_type {body.grant_type[:60]!r} not supported"
            )
        found = await emu.identify(request, principal)
        _check_version(bkbn_version)
        if (
            found.faults is not None
            and found.faults.single_use_grants
            and emu.credentials.has_live_token(principal.credential)
        ):
            emu.credentials.count_grant(principal.credential, accepted=False)
            raise OAuthProblem(
                400, "invalid_grant", "grant already used: this client holds a live token"
            )
        emu.credentials.count_grant(principal.credential, accepted=True)
        return emu.credentials.issue_for(principal)

    app.include_router(test_router(emu))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                responses.pop("422", None)
                for param in operation.get("parameters", []):
                    if param.get("name") == "bkbn-version":
                        param["required"] = True
                        param["schema"] = {"type": "string", "enum": sorted(SUPPORTED_VERSIONS)}
                content = responses.get("200", {}).get("content", {})
                if content.get("application/json") == {"schema": {}} and len(content) > 1:
                    del content["application/json"]
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
