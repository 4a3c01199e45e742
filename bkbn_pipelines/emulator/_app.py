"""The emulator's FastAPI application: routes of the API contract over the renderers.

:func:`create_app` builds an app from an :class:`EmulatorConfig`.  Every request of
``/v1`` passes one dependency (``caller``) that authenticates, applies test faults,
checks ``bkbn-version`` and counts the request against the organization's rate limit,
in that order; the work itself is done by :class:`~._service.Emulator`.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the annotations of the
# routes defined inside create_app at runtime, and they name local types.

import base64
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import parse_qs, unquote

from fastapi import Depends, FastAPI, Header, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._contract import API_VERSION, ERROR_TYPES, SUPPORTED_VERSIONS
from .._errors import BkbnError, UnknownGraphError
from ._auth import OAuthProblem
from ._config import EmulatorConfig
from ._http import ApiProblem, BodySizeLimit, RequestContext, error_body
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
from ._render import resolve_graph
from ._runs import Run
from ._service import Caller, Emulator, check_version
from ._testapi import test_router

__all__ = ["create_app"]

logger = logging.getLogger("bkbn_pipelines.emulator")

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

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

#: A ``last-event-id``'s SEQ: ASCII digits only, short enough for any run's log.
_MAX_SEQ_DIGITS = 9
_SEQ = re.compile(rf"[0-9]{{1,{_MAX_SEQ_DIGITS}}}")

_api_key_scheme = APIKeyHeader(name="x-api-key", auto_error=False, description="bkbn_sk_... key")
_bearer_scheme = HTTPBearer(auto_error=False, description="access token from /v1/oauth/token")

#: Optional in the signature so that credentials are checked first; the OpenAPI
#: document marks it required, and :func:`_check_version` refuses a request without it.
VersionHeader = Annotated[
    str | None, Header(alias="bkbn-version", description=f"API version, e.g. {API_VERSION}")
]


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


async def _token_request(request: Request) -> TokenRequest:
    """The grant from a JSON or form body; client credentials may come as HTTP Basic."""
    raw = await request.body()
    media = request.headers.get("content-type", "application/json").split(";")[0].strip()
    try:
        if media == "application/x-www-form-urlencoded":
            fields: Any = {k: v[0] for k, v in parse_qs(raw.decode("utf-8")).items()}
        elif media == "application/json":
            fields = json.loads(raw or b"{}")
        else:
            raise OAuthProblem(400, "invalid_request", f"unsupported content-type {media[:60]!r}")
    except (UnicodeDecodeError, ValueError):
        raise OAuthProblem(
            400, "invalid_request", "the body is not valid JSON or form data"
        ) from None
    if not isinstance(fields, dict):
        raise OAuthProblem(400, "invalid_request", "the body must be an object")
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            client_id, _, secret = base64.b64decode(value).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            raise OAuthProblem(401, "invalid_client", "malformed Basic credentials") from None
        fields.setdefault("client_id", unquote(client_id))
        fields.setdefault("client_secret", unquote(secret))
    try:
        return TokenRequest.model_validate(fields)
    except ValidationError as exc:
        message = _validation_message(exc.errors(include_input=False))
        raise OAuthProblem(400, "invalid_request", message) from None


def _resume_after(last_event_id: str, run: Run) -> int:
    """The sequence number a ``last-event-id`` header names; a 400 unless it is one of ``run``'s.

    SEQ must be ASCII digits (at most :data:`_MAX_SEQ_DIGITS`) and no later than the
    run's last event so far: an id past it was never sent, so no stream can resume there.
    """
    last_run, _, seq = last_event_id.rpartition(":")
    if last_run != run.id or not _SEQ.fullmatch(seq):
        raise ApiProblem(
            400,
            f"last-event-id must be RUN_ID:SEQ of this run, SEQ at most "
            f"{_MAX_SEQ_DIGITS} ASCII digits",
        )
    after, produced = int(seq), len(run.events)
    if after > produced:
        state = "and has finished" if run.finished else "so far"
        raise ApiProblem(
            400,
            f"last-event-id {run.id}:{after} is past the run's last event: "
            f"the run has {produced} event(s) {state}",
        )
    return after


def _log_refusal(request: Request, problem: ApiProblem) -> None:
    """A debug line for an error answer: method, path, status and message, never headers."""
    code = f" ({problem.code})" if isinstance(problem, OAuthProblem) else ""
    logger.debug(
        "answered %s %s with %d%s: %s",
        request.method,
        request.url.path[:200],
        problem.status,
        code,
        problem.message,
    )


def create_app(config: EmulatorConfig | None = None, *, test_mode: bool = False) -> FastAPI:
    """The emulator as an ASGI app.  ``test_mode`` enables ``/_test`` and faults."""
    config = config or EmulatorConfig()
    if config.faults and not test_mode:
        raise BkbnError("the config sets faults; faults need test mode (--test-mode)")
    emu = Emulator(config, test_mode)

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
        _log_refusal(request, problem)
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
        check_version(bkbn_version)
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
        name: Annotated[
            str,
            Path(
                description="graph name, optionally with a version: staging, staging-v2.4",
                openapi_examples={"relight": {"value": "relight"}},
            ),
        ],
        body: WorkflowRunRequest,
        request: Request,
        who: CallerDep,
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
            str | None,
            Header(
                alias="last-event-id",
                description="RUN_ID:SEQ of an event this run has sent",
            ),
        ] = None,
    ) -> Response:
        run = emu.runs.get(run_id, who.org)
        if run is None:
            raise ApiProblem(404, f"no run {run_id[:40]!r}")
        after = _resume_after(last_event_id, run) if last_event_id else 0
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
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    media: {"schema": {"$ref": "#/components/schemas/TokenRequest"}}
                    for media in ("application/json", "application/x-www-form-urlencoded")
                },
            }
        },
    )
    async def oauth_token(request: Request, bkbn_version: VersionHeader = None) -> dict[str, Any]:
        body = await _token_request(request)
        if body.grant_type == "client_credentials":
            principal = emu.credentials.client_principal(body.client_id, body.client_secret)
        elif body.grant_type == JWT_BEARER:
            principal = emu.credentials.rule_principal(body.federation_rule_id, body.assertion)
        else:
            raise OAuthProblem(
                400, "unsupported_grant_type", f"grant_type {body.grant_type[:60]!r} not supported"
            )
        found = await emu.identify(request, principal)
        check_version(bkbn_version)
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
        issued = emu.credentials.issue_for(principal)
        logger.debug(
            "issued an access token to %s for %ds", principal.credential, issued["expires_in"]
        )
        return issued

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
        schema["components"]["schemas"]["TokenRequest"] = TokenRequest.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
