"""API throughput at the rate limit: the Dagster job against a plain httpx loop.

N listings x M photos go through ``listing_media_job`` (one run over the whole
partition range, as ``bkbn nightly`` does) against the emulator, started in-process
with its latency-model renderer and a tier limited in requests and tokens per minute.
Then the same listings go through the baseline a user would otherwise write: a loop
over the photos with a plain ``httpx`` client that retries a 429 after ``retry-after``,
with a fresh organization on the same tier.  Both make the same requests per listing
(relight and staging per photo, one brochure, each result file downloaded).

The server counts the requests.  A thin ASGI wrapper around the emulator app records
every ``/v1`` answer: when the request arrived, the organization, the status.

Why the run is this long: the emulator's limit is a fixed window of 60 s that opens
with the organization's first request.  Inside one window a client can send its whole
budget at once, so the requests per minute over an arbitrary stretch (say the wall
time) can exceed the limit, or fall short of it in the last, partly used window.  The
honest figure counts the requests admitted in *whole* windows: from the first request,
``floor(span / 60)`` windows, divided by their number.  The default size needs about
2.5 windows of requests at 120 rpm, so each side runs two whole windows and a tail
(about 2.5 minutes each, 5 to 6 minutes in all).

    python -m benchmarks.api_throughput                 # 16 listings x 3 photos, 120 rpm
    python -m benchmarks.api_throughput --quick         # smoke size, a few seconds
    python -m benchmarks.api_throughput --delay-ms 2000 --name api_throughput_slow_renders
"""

from __future__ import annotations

import argparse
import base64
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks._common import (
    markdown_table,
    percentile,
    quiet_dagster,
    serve_app,
    write_catalogue,
    write_results,
)

NAME = "api_throughput"


# -- the server-side record -------------------------------------------------------------


@dataclass
class Answer:
    arrived: float
    org: str | None
    status: int
    path: str


@dataclass
class Recorder:
    """ASGI wrapper recording each ``/v1`` answer (arrival time, organization, status)."""

    app: Any
    answers: list[Answer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith("/v1/") or path.startswith("/v1/oauth"):
            await self.app(scope, receive, send)
            return
        arrived = time.time()

        async def recording_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in message["headers"]}
                with self._lock:
                    org = headers.get("bkbn-organization-id")
                    self.answers.append(Answer(arrived, org, message["status"], path))
            await send(message)

        await self.app(scope, receive, recording_send)

    def for_org(self, org: str) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.org == org]


def rate_figures(answers: Sequence[Answer], limit: int, window_s: float) -> dict[str, Any]:
    """Requests per minute in whole windows, over the wall time, and the 429s."""
    admitted = sorted(a.arrived for a in answers if a.status != 429)
    refused = sum(1 for a in answers if a.status == 429)
    total = len(answers)
    out: dict[str, Any] = {
        "requests": total,
        "admitted": len(admitted),
        "answered_429": refused,
        "share_429": refused / total if total else 0.0,
    }
    if len(admitted) < 2:
        return {**out, "full_windows": 0, "achieved_rpm": None, "fraction_of_limit": None}
    first, last = admitted[0], admitted[-1]
    span = last - first
    windows = int(span // window_s)
    per_minute = 60.0 / window_s
    if windows >= 1:
        end = first + windows * window_s
        in_windows = sum(1 for t in admitted if t < end)
        rpm = in_windows / windows * per_minute
    else:  # quick runs: no whole window; the rate over the span, flagged by full_windows=0
        in_windows = len(admitted)
        rpm = len(admitted) / max(span, 1e-9) * 60.0
    return {
        **out,
        "full_windows": windows,
        "admitted_in_full_windows": in_windows,
        "achieved_rpm": rpm,
        "fraction_of_limit": rpm / (limit * per_minute),
        "rpm_over_span": len(admitted) / max(span, 1e-9) * 60.0,
        "span_s": span,
    }


# -- the pipeline: the Dagster job --------------------------------------------------------


def run_pipeline(
    base_url: str, api_key: str, catalogue: Path, workdir: Path, max_workers: int
) -> dict[str, Any]:
    """``nightly_catalogue_job`` then ``listing_media_job`` over all listings in one run."""
    import dagster as dg
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from bkbn_pipelines.assets import LISTINGS
    from bkbn_pipelines.assets import _listing_media as listing_media_module
    from bkbn_pipelines.definitions import build_definitions
    from bkbn_pipelines.resources import BackboneResource, MediaStoreResource

    defs = build_definitions(
        backbone=BackboneResource(backend="api", base_url=base_url, api_key=api_key),
        media_store=MediaStoreResource(root=str(workdir / "media")),
    )
    loggers = {"console": {"config": {"log_level": "ERROR"}}}
    # Time per listing: wrap the function the op runs per listing (instrumentation only).
    listing_seconds: dict[str, float] = {}
    original: Callable[..., Any] = listing_media_module._run_listing

    def timed(job: Any, todo: list[str]) -> Any:
        started = time.monotonic()
        try:
            return original(job, todo)
        finally:
            listing_seconds[job.slug] = time.monotonic() - started

    (workdir / "dagster").mkdir(parents=True, exist_ok=True)
    with dg.instance_for_test(temp_dir=str(workdir / "dagster")) as instance:
        defs.resolve_job_def("nightly_catalogue_job").execute_in_process(
            instance=instance,
            run_config={
                "ops": {"listing_catalogue": {"config": {"source": str(catalogue)}}},
                "loggers": loggers,
            },
        )
        keys = list(instance.get_dynamic_partitions(LISTINGS.name))
        listing_media_module._run_listing = timed
        started = time.monotonic()
        try:
            result = defs.resolve_job_def("listing_media_job").execute_in_process(
                instance=instance,
                run_config={
                    "ops": {"listing_media": {"config": {"max_workers": max_workers}}},
                    "loggers": loggers,
                },
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: keys[0],
                    ASSET_PARTITION_RANGE_END_TAG: keys[-1],
                },
                raise_on_error=False,
            )
        finally:
            listing_media_module._run_listing = original
        wall = time.monotonic() - started
        brochures = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("brochures")), limit=10_000
        ).records
    return {
        "wall_s": wall,
        "success": result.success,
        "listings_done": len({r.partition_key for r in brochures}),
        "listing_seconds": list(listing_seconds.values()),
    }


# -- the baseline: a plain httpx loop -----------------------------------------------------


def run_baseline(base_url: str, api_key: str, catalogue: Path) -> dict[str, Any]:
    """What a user would write: a loop over the photos, retrying a 429 after ``retry-after``."""
    import pandas as pd

    from bkbn_pipelines._contract import API_VERSION

    listings = pd.read_csv(catalogue, dtype=str)
    headers = {"x-api-key": api_key, "bkbn-version": API_VERSION}
    listing_seconds: list[float] = []
    failures = 0
    started = time.monotonic()
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as http:

        def call(method: str, url: str, **kwargs: Any) -> httpx.Response:
            while True:
                response = http.request(method, url, **kwargs)
                if response.status_code != 429:
                    response.raise_for_status()
                    return response
                time.sleep(float(response.headers.get("retry-after") or 1))

        def render(graph: str, body: dict[str, Any]) -> str:
            result = call("POST", f"/v1/workflows/{graph}/run", json=body).json()
            outputs = result.get("outputs") or {"image": result["url"]}
            for url in outputs.values():
                call("GET", url)  # download every output, as the pipeline does
            return str(result["url"])

        for row in listings.itertuples():
            begun = time.monotonic()
            try:
                relit, staged = [], []
                for photo in str(row.photos).split(";"):
                    data = (catalogue.parent / photo).read_bytes()
                    uri = "data:image/jpeg;base64," + base64.b64encode(data).decode()
                    relit.append(render("relight", {"input": uri, "params": {}}))
                    params = {"style": row.style, "resolution": "1k"}
                    staged.append(render("staging", {"input": uri, "params": params}))
                listing = {
                    "address": row.address,
                    "price": float(row.price),
                    "beds": int(row.beds),
                    "baths": int(row.baths),
                    "area_m2": float(row.area_m2),
                }
                # the brochure reads the relit and staged photos from their result URLs
                render("brochure", {"params": {"listing": listing, "photos": relit + staged}})
            except httpx.HTTPError:
                failures += 1
            listing_seconds.append(time.monotonic() - begun)
    return {
        "wall_s": time.monotonic() - started,
        "success": failures == 0,
        "listings_done": len(listing_seconds) - failures,
        "listing_seconds": listing_seconds,
    }


# -- the benchmark --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke size: seconds, not minutes")
    parser.add_argument("--listings", type=int, help="listings (default 16; quick 2)")
    parser.add_argument("--photos", type=int, default=3, help="photos per listing")
    parser.add_argument(
        "--rpm", type=int, help="requests per window of the tier (default 120, a minute)"
    )
    parser.add_argument("--tpm", type=int, default=5000, help="tokens per minute of the tier")
    parser.add_argument("--delay-ms", type=int, default=300, help="latency model: delay")
    parser.add_argument("--steps", type=int, default=4, help="latency model: progress steps")
    parser.add_argument("--step-ms", type=int, default=50, help="latency model: ms per step")
    parser.add_argument("--window-s", type=float, help="rate-limit window (default 60)")
    parser.add_argument("--max-workers", type=int, default=4, help="listings at once per run")
    parser.add_argument("--out-dir", help="where to write the results (default results/)")
    parser.add_argument("--name", default=NAME, help="results file name (default %(default)s)")
    args = parser.parse_args(argv)
    quick = args.quick
    # quick: 1 listing x 2 photos (15 requests) against 6 requests per 2 s window
    listings = args.listings or (1 if quick else 16)
    if quick and args.photos == 3:
        args.photos = 2
    rpm = args.rpm or (6 if quick else 120)
    window_s = args.window_s or (2.0 if quick else 60.0)
    if quick:
        args.delay_ms, args.steps, args.step_ms = 20, 2, 5

    quiet_dagster()
    from bkbn_pipelines.emulator import EmulatorConfig, LatencyConfig, create_app
    from bkbn_pipelines.emulator.testing import EmulatorAdmin

    config = EmulatorConfig(
        renderer="latency",
        latency=LatencyConfig(delay_ms=args.delay_ms, steps=args.steps, step_ms=args.step_ms),
        rate_limit_window_s=window_s,
        max_concurrent_renders=8,
    )
    recorder = Recorder(create_app(config, test_mode=True))
    sides: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bkbn-bench-") as tmp, serve_app(recorder) as url:
        workdir = Path(tmp)
        catalogue = write_catalogue(workdir / "export", listings, args.photos)
        with EmulatorAdmin(url) as admin:
            for side in ("pipeline", "baseline"):
                key = admin.new_key(requests_per_minute=rpm, tokens_per_minute=args.tpm)
                if side == "pipeline":
                    measured = run_pipeline(
                        url, key.api_key, catalogue, workdir / side, args.max_workers
                    )
                else:
                    measured = run_baseline(url, key.api_key, catalogue)
                stats = admin.stats(key.org)
                seconds = measured.pop("listing_seconds")
                sides[side] = {
                    "side": side,
                    **measured,
                    **rate_figures(recorder.for_org(key.org), rpm, window_s),
                    "renders": stats["renders"],
                    "tokens": stats["tokens"],
                    "listing_p50_s": percentile(seconds, 50),
                    "listing_p95_s": percentile(seconds, 95),
                }

    pipeline = sides["pipeline"]
    goal = {
        "fraction_of_limit_min": 0.9,
        "share_429_max": 0.01,
        "met": bool(
            pipeline["fraction_of_limit"] is not None
            and pipeline["fraction_of_limit"] >= 0.9
            and pipeline["share_429"] <= 0.01
            and pipeline["success"]
        ),
    }
    result = {
        "quick": quick,
        "params": {
            "listings": listings,
            "photos_per_listing": args.photos,
            "requests_per_minute": rpm,
            "tokens_per_minute": args.tpm,
            "window_s": window_s,
            "latency": {"delay_ms": args.delay_ms, "steps": args.steps, "step_ms": args.step_ms},
            "max_workers": args.max_workers,
        },
        "pipeline": pipeline,
        "baseline": sides["baseline"],
        "goal": goal,
    }
    columns = [
        ("side", "side"),
        ("listings_done", "listings done"),
        ("requests", "requests"),
        ("answered_429", "429s"),
        ("share_429", "share 429"),
        ("full_windows", "whole windows"),
        ("achieved_rpm", "rpm (whole windows)"),
        ("fraction_of_limit", "of limit"),
        ("rpm_over_span", "rpm (span)"),
        ("listing_p50_s", "p50 s/listing"),
        ("listing_p95_s", "p95 s/listing"),
        ("wall_s", "wall s"),
    ]
    markdown = (
        f"{listings} listings x {args.photos} photos, limit {rpm} requests and {args.tpm} "
        f"tokens per {window_s:g} s window, latency model {args.delay_ms} ms + "
        f"{args.steps} x {args.step_ms} ms.\n\n"
        + markdown_table([pipeline, sides["baseline"]], columns)
        + f"\n\nGoal (>= 90 % of the limit, <= 1 % 429): {'met' if goal['met'] else 'NOT met'}.\n"
    )
    path = write_results(args.name, result, markdown, args.out_dir)
    print(markdown)
    print(f"written {path}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
