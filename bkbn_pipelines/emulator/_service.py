"""The emulator's state and its work: who calls, what they may do, and their runs.

:class:`Emulator` holds the credentials, rate limits, faults, runs and files of one
app.  :meth:`Emulator.identify` applies a caller's test faults, :meth:`count_request`
counts it against its organization's limit, :meth:`start` admits a run (or finds the
one its idempotency key names) and answers by streaming or by waiting for the result.
Renders run in a thread pool; :meth:`Emulator._drain` hands their events to the run.
"""

import asyncio
import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from .._contract import API_VERSION, ERROR_TYPES, SUPPORTED_VERSIONS
from .._errors import BkbnError, GraphError, UnknownGraphError
from .._events import ErrorEvent, Ping, Result
from ._auth import CredentialStore, Principal
from ._config import EmulatorConfig, LatencyConfig, TierConfig
from ._faults import FaultBook, FaultSpec
from ._http import ApiProblem, size_limit_for
from ._inputs import InputResolver
from ._limits import RateLimiter
from ._render import Renderer, RenderJob, make_renderer, resolve_graph
from ._runs import FileStore, Run, RunStore, Stats
from ._sse import EventStream

__all__ = ["Caller", "Emulator", "check_version"]

logger = logging.getLogger("bkbn_pipelines.emulator")

#: ``error`` event type -> status of a blocking answer.
ERROR_STATUS = {v: k for k, v in ERROR_TYPES.items()}

_PRIMARY_OUTPUT = ("image", "pdf", "plan")


def check_version(version: str | None) -> None:
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


class Emulator:
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
            self.stats.add(self.stats.rate_limited, caller.org)
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
            index = getattr(exc, "input_index", 0)
            field = urls[index][0] if index < len(urls) else "input"
            raise ApiProblem(400, f"{field}: {exc}") from None
        wait = self.limiter.take_tokens(caller.org, caller.tier, tokens)
        request.state.extra_headers = self.limiter.headers(caller.org, caller.tier)
        if wait is not None:
            self.stats.add(self.stats.rate_limited, caller.org)
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
            status = ERROR_STATUS.get(getattr(exc, "error_type", ""), 500)
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
                    if error_type not in ERROR_STATUS:
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
        status = ERROR_STATUS.get(last.data.get("type"), 500)
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
