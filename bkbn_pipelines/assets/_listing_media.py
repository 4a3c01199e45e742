"""The per-listing assets: raw photos, enhanced photos, staged renders, floor plans,
brochures, one partition per listing.

Why one op for five assets
--------------------------
A run may cover many listings (a backfill of a partition range in one run).  Dagster
turns an op's output into a materialization of *every* partition of the run, and a
failed op abandons every downstream op, so with one op per asset a single corrupt
photo would either be recorded as materialized or stop the other listings' brochures.
Here one op walks the run's listings and, per listing, the five assets in lineage
order, and records a materialization for each (asset, listing) that succeeded, with
the provenance tags Dagster itself would write (``_provenance.py``).  A listing that
fails stops only its own chain; the op fails at the end naming every failed listing
and its cause.  The assets stay separate in the asset graph (own keys, code versions,
checks and automation conditions); the op is subsettable, so any selection runs.

Retries: a 429, 5xx or connection error asks Dagster for a step retry after the
server's ``retry-after`` or the exponential backoff, whichever is longer; the retry
skips every (asset, listing) this run already materialized.  A 4xx validation error
or a bad photo fails at once, without retries.
"""

import hashlib
import json
import os
import random
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetSpec,
    AutomationCondition,
    BackfillPolicy,
    Backoff,
    Config,
    Failure,
    Jitter,
    MetadataValue,
    RetryPolicy,
    RetryRequested,
    multi_asset,
)
from pydantic import Field, create_model

from .._contract import GRAPHS
from .._errors import (
    APIConnectionError,
    APIStreamError,
    ConfigError,
    ConflictError,
    InternalServerError,
    OutputRejectedError,
    OverloadedError,
    RateLimitError,
    StorageError,
)
from ..catalogue import read_snapshot
from ..media import FetchPolicy
from ..resources import BackboneResource, MediaStoreResource
from . import _work
from ._catalogue import read_catalogue_state
from ._partitions import GROUP, LISTINGS
from ._provenance import materialized_in_runs, provenance_tags, rejected_in_runs
from ._work import BROCHURES, ENHANCED, FLOOR, RAW, STAGED, ListingJob, StepOutput

__all__ = [
    "LISTING_ASSET_KEYS",
    "LISTING_DEFAULTS_ENV",
    "MAX_RETRIES",
    "RETRY_POLICY",
    "SHAPING_SETTINGS",
    "ListingMediaConfig",
    "code_versions",
    "listing_media",
]

MAX_RETRIES = 3
#: Step retries: exponential backoff with jitter. A raised ``RetryRequested`` keeps
#: the same count and honours a longer ``retry-after`` from the server.
RETRY_POLICY = RetryPolicy(
    max_retries=MAX_RETRIES, delay=2.0, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS
)
#: Cap on one wait asked of Dagster, whatever the server says.
_MAX_WAIT_S = 300.0

#: Errors a later attempt may cure.
RETRYABLE = (
    RateLimitError,
    OverloadedError,
    InternalServerError,
    ConflictError,
    APIConnectionError,
    APIStreamError,
)

_MB = 1024 * 1024


#: The run settings that shape each asset's output, and so belong to its code version.
#: Left out: limits that only refuse input (byte caps, timeouts, worker counts), and
#: ``staging_enabled``, which decides whether staging runs, not what it makes (a run
#: that skips staging, as ``bkbn nightly`` does without weights, is no new code).
SHAPING_SETTINGS: dict[str, tuple[str, ...]] = {
    RAW: ("photo_max_pixels",),
    ENHANCED: ("declutter",),
    STAGED: (
        "staging_photos",
        "resolution",
        "default_style",
        "keep_geometry",
        "seed",
    ),
    FLOOR: ("units",),
    BROCHURES: ("units", "brochure_template", "staged_in_brochure"),
}


def code_versions(config: "ListingMediaConfig | None" = None) -> dict[str, str]:
    """Code version per asset: the graph version and the settings that shape its output.

    ``config`` is a run's settings (default: the defaults, which the asset definitions
    carry).  A run records the versions of its own settings, so an output made with
    other settings than the defaults shows as stale with a new code version.
    """
    config = config or ListingMediaConfig()
    graphs = {
        RAW: "raw-1:jpeg-q90:srgb",
        ENHANCED: f"relight-v{GRAPHS['relight']}:declutter-v{GRAPHS['declutter']}:1",
        STAGED: f"staging-v{GRAPHS['staging']}:1",
        FLOOR: f"floor-plan-v{GRAPHS['floor-plan']}:1",
        BROCHURES: f"brochure-v{GRAPHS['brochure']}:2",  # 2: the floor-plan page
    }
    return {
        name: f"{graph}:{_settings_digest(config, SHAPING_SETTINGS[name])}"
        for name, graph in graphs.items()
    }


def _settings_digest(config: "ListingMediaConfig", names: tuple[str, ...]) -> str:
    """A short, stable digest of the settings ``names`` of ``config``."""
    values = json.dumps({n: getattr(config, n) for n in names}, sort_keys=True)
    return hashlib.sha256(values.encode()).hexdigest()[:10]


#: Lineage: what each asset reads, per listing.
_DEPS: dict[str, tuple[str, ...]] = {
    RAW: ("listing_records",),
    ENHANCED: (RAW,),
    STAGED: (RAW,),
    FLOOR: ("listing_records",),
    BROCHURES: ("listing_records", ENHANCED, STAGED, FLOOR),
}
_ORDER = (RAW, ENHANCED, STAGED, FLOOR, BROCHURES)
_DESCRIPTIONS = {
    RAW: "Listing photos fetched, checked, upright sRGB JPEG without metadata; a bad "
    "photo is reported and the others go on.",
    ENHANCED: "Photos relit (white balance, exposure, shadows, highlights); decluttered "
    "when configured.",
    STAGED: "Photos staged in the listing's style at the requested resolution; skipped "
    "and said so when the local backend has no staging weights.",
    FLOOR: "Floor plan (JSON, SVG, DXF) from the listing's walk-through capture; "
    "'no capture' when the listing has none.",
    BROCHURES: "Brochure PDF and HTML with its storyboard, palette, copy and layout.",
}
_CHECKS = {
    STAGED: ("render_resolution", "Renders have the requested resolution (long side)."),
    FLOOR: ("valid_polygons", "Every room is a valid polygon with an area above zero."),
    BROCHURES: ("pdf_has_pages", "The brochure PDF has at least one page."),
}
_USES_API = frozenset({ENHANCED, STAGED, FLOOR, BROCHURES})

#: Reruns exactly the listings whose upstream data changed (per partition), and all
#: partitions of an asset whose code version changed.
AUTOMATION = (
    AutomationCondition.eager()
    | (AutomationCondition.code_version_changed() & ~AutomationCondition.in_progress())
).with_label("eager_or_code_changed")

LISTING_ASSET_KEYS = tuple(AssetKey(name) for name in _ORDER)


class ListingMediaConfig(Config):
    """Run settings of the per-listing assets."""

    resolution: Literal["1k", "2k", "4k"] = Field(
        default="1k", description="Resolution of staged renders."
    )
    staging_enabled: bool = Field(default=True, description="Stage photos at all.")
    staging_photos: int = Field(
        default=0, description="Photos staged per listing, in catalogue order; 0 stages all."
    )
    default_style: str = Field(
        default="modern-neutral", description="Style when the catalogue gives none."
    )
    keep_geometry: bool = Field(default=True, description="Keep walls, windows and floor.")
    seed: int = Field(default=0, description="Render seed.")
    declutter: bool = Field(default=False, description="Declutter after relighting.")
    units: Literal["metric", "imperial"] = Field(default="metric")
    brochure_template: str | None = Field(default=None)
    staged_in_brochure: bool = Field(
        default=True,
        description="Put staged renders in brochures (never renders from untrained weights).",
    )
    max_workers: int = Field(
        default=4, description="Listings processed at once in one run (api backend)."
    )
    photo_max_bytes: int = Field(default=32 * _MB, description="Largest photo download.")
    photo_max_pixels: int = Field(
        default=40_000_000,
        description="Pixel budget of a stored photo: a larger one (a panorama) is "
        "downscaled to fit, not refused.",
    )
    photo_bomb_pixels: int = Field(
        default=150_000_000,
        description="Photos declaring more pixels than this are refused before decoding "
        "(decompression bombs).",
    )
    capture_max_bytes: int = Field(default=256 * _MB, description="Largest capture bundle.")
    fetch_timeout_s: float = Field(default=60.0, description="Deadline of one download.")
    allow_private_networks: bool = Field(
        default=False, description="Let photo URLs point at private or loopback hosts."
    )


#: JSON object of run settings that replace ``ListingMediaConfig``'s defaults everywhere:
#: schedule, sensor, automation and backfills, and the definitions' code versions.
LISTING_DEFAULTS_ENV = "BKBN_LISTING_DEFAULTS"


def _with_defaults(base: type[Config], environ: Mapping[str, str]) -> type[Config]:
    """``base``, or a subclass whose defaults are those of ``BKBN_LISTING_DEFAULTS``.

    Read once, when the definitions load, so every process of a deployment must see
    the same value (set it where ``BKBN_API_KEY`` is set).  A bad value stops loading
    with a :class:`ConfigError` that names the variable.
    """
    raw = environ.get(LISTING_DEFAULTS_ENV, "").strip()
    if not raw:
        return base
    try:
        values = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"{LISTING_DEFAULTS_ENV} is not JSON: {exc}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{LISTING_DEFAULTS_ENV} must be a JSON object of run settings")
    unknown = sorted(set(values) - set(base.model_fields))
    if unknown:
        raise ConfigError(
            f"{LISTING_DEFAULTS_ENV}: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(base.model_fields)}"
        )
    try:
        checked = base(**values)
    except Exception as exc:  # pydantic's ValidationError, named for the variable
        raise ConfigError(f"{LISTING_DEFAULTS_ENV}: {exc}") from None
    fields: dict[str, Any] = {
        name: (info.annotation, Field(default=getattr(checked, name), description=info.description))
        for name, info in base.model_fields.items()
        if name in values
    }
    return create_model(base.__name__, __base__=base, __doc__=base.__doc__, **fields)


ListingMediaConfig = _with_defaults(ListingMediaConfig, os.environ)  # type: ignore[misc]


def _specs() -> list[AssetSpec]:
    versions = code_versions()
    return [
        AssetSpec(
            name,
            deps=list(_DEPS[name]),
            partitions_def=LISTINGS,
            group_name=GROUP,
            code_version=versions[name],
            description=_DESCRIPTIONS[name],
            automation_condition=AUTOMATION,
            skippable=True,
            kinds={"python"},
        )
        for name in _ORDER
    ]


def _check_specs() -> list[AssetCheckSpec]:
    return [
        AssetCheckSpec(check, asset=name, description=text, blocking=True)
        for name, (check, text) in _CHECKS.items()
    ]


@multi_asset(
    name="listing_media",
    specs=_specs(),
    check_specs=_check_specs(),
    can_subset=True,
    pool="bkbn_api",
    retry_policy=RETRY_POLICY,
    backfill_policy=BackfillPolicy.single_run(),
    op_tags={"bkbn/uses_api": "true"},
)
def listing_media(
    context: AssetExecutionContext,
    config: ListingMediaConfig,
    backbone: BackboneResource,
    media_store: MediaStoreResource,
) -> Iterator[Any]:
    store = media_store.store()
    selected = [n for n in _ORDER if AssetKey(n) in context.selected_asset_keys]
    slugs = list(context.partition_keys)
    snapshot = read_snapshot(store)
    rows = _rows_by_slug(snapshot)
    policy = _fetch_policy(config, store)
    family = frozenset(
        r for r in (context.run_id, context.run.parent_run_id, context.run.root_run_id) if r
    )
    versions = code_versions(config)
    rejected = rejected_in_runs(context.instance, family)
    # one prefix per run family: retries and re-executions replay renders already made
    prefix = context.run.root_run_id or context.run_id

    jobs: list[tuple[ListingJob, list[str]]] = []
    failures: dict[str, _Failure] = {}
    for slug in slugs:
        todo = [
            n
            for n in selected
            if not materialized_in_runs(
                context.instance, AssetKey(n), slug, family, versions[n], rejected
            )
        ]
        if not todo:
            context.log.info(f"listing {slug!r}: already materialized by this run, skipped")
            continue
        row = rows.get(slug)
        if row is None:
            # A listing that left the catalogue keeps its outputs and history; a range
            # that still covers it skips it rather than failing.
            context.log.warning(
                f"listing {slug!r} is not in the latest catalogue snapshot (it left the "
                "catalogue, or listing_catalogue has not run): skipped"
            )
            continue
        log = _BufferedLog()
        job = ListingJob(slug, row, store, backbone, config, policy, log, prefix, log.add)
        jobs.append((job, todo))

    # The local runtime renders one graph at a time; listings that only fetch photos,
    # or that call the API, go side by side.
    renders_locally = backbone.backend == "local" and any(n in _USES_API for n in selected)
    workers = 1 if renders_locally else max(1, config.max_workers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bkbn-listing") as pool:
        futures = [(job, pool.submit(_run_listing, job, todo)) for job, todo in jobs]
        for job, future in futures:
            outcome: _ListingOutcome = future.result()
            job.context.flush(context)  # the buffered log of that listing
            for output in outcome.outputs:
                yield from _events(context, job.slug, output, versions)
            if outcome.failure is not None:
                failures[job.slug] = outcome.failure

    done = len(jobs) - sum(1 for j, _ in jobs if j.slug in failures)
    context.log.info(f"{done} listing(s) done, {len(failures)} failed, of {len(slugs)}")
    if failures:
        raise _final_error(context, failures)


# -- one listing ----------------------------------------------------------------------

_STEPS = {
    RAW: _work.raw_photos_for_listing,
    ENHANCED: _work.enhanced_for_listing,
    STAGED: _work.staged_for_listing,
    FLOOR: _work.floor_plans_for_listing,
    BROCHURES: _work.brochures_for_listing,
}


@dataclass
class _Failure:
    slug: str
    asset: str
    error: BaseException
    retryable: bool

    @property
    def retry_after(self) -> float | None:
        value = getattr(self.error, "retry_after", None)
        return float(value) if value is not None else None

    def describe(self) -> str:
        return f"{self.slug} ({self.asset}): {type(self.error).__name__}: {self.error}"


@dataclass
class _ListingOutcome:
    outputs: list[StepOutput] = field(default_factory=list)
    failure: _Failure | None = None


def _run_listing(job: ListingJob, todo: list[str]) -> _ListingOutcome:
    """Run the selected assets of one listing in lineage order; stop at the first error
    or failed blocking check (a bad output must not feed the brochure)."""
    outcome = _ListingOutcome()
    for name in todo:
        job.calls.clear()
        try:
            output = _STEPS[name](job)
        except Exception as exc:  # translated into a per-listing failure, never swallowed
            job.log("error", f"listing {job.listing_id!r}: {name} failed: {exc}")
            _discard_unreferenced(job, name)
            outcome.failure = _Failure(job.slug, name, exc, isinstance(exc, RETRYABLE))
            return outcome
        _discard_unreferenced(job, name)  # what the manifest it replaced named
        outcome.outputs.append(output)
        failed = output.failed_checks
        if failed:
            _spend_calls(job, name)
            reasons = "; ".join(c.description or c.name for c in failed)
            outcome.failure = _Failure(
                job.slug, name, OutputRejectedError(f"{name} check failed: {reasons}"), False
            )
            return outcome
    return outcome


def _spend_calls(job: ListingJob, asset: str) -> None:
    """A rejected output is never replayed: the next try of these calls renders anew."""
    try:
        job.spend_calls()
    except StorageError as exc:
        job.log("warning", f"listing {job.listing_id!r}: {asset}: could not mark renders: {exc}")


def _discard_unreferenced(job: ListingJob, asset: str) -> None:
    """Remove the objects of this listing and asset that its manifest does not name.

    After a failed step these are what it stored before it failed; after a success,
    the outputs of the manifest it replaced (a changed photo, a rejected render).  The
    store holds each listing's current outputs only; earlier ones are known by their
    hashes in the Dagster event log.  A later success stores the same
    content-addressed keys again."""
    try:
        frame = job.store.read_manifest(asset, job.slug)
        kept = set(frame["key"].dropna()) if "key" in frame.columns else set()
        for key in job.store.list(f"listings/{job.slug}/{asset}"):
            if key not in kept:
                job.store.delete(key)
    except StorageError as exc:
        job.log("warning", f"listing {job.listing_id!r}: {asset}: left unreferenced objects: {exc}")


def _events(
    context: AssetExecutionContext, slug: str, output: StepOutput, versions: Mapping[str, str]
) -> Iterator[Any]:
    key = AssetKey(output.asset)
    tags = provenance_tags(
        context.instance,
        code_version=versions[output.asset],
        parents=[AssetKey(p) for p in _DEPS[output.asset]],
        partition_key=slug,
        data_version=output.data_version,
    )
    metadata = {**output.metadata, "data_version": output.data_version}
    yield AssetMaterialization(asset_key=key, partition=slug, metadata=metadata, tags=tags)
    for check in output.checks:
        yield AssetCheckEvaluation(
            asset_key=key,
            check_name=check.name,
            passed=check.passed,
            metadata=dict(check.metadata),
            severity=AssetCheckSeverity.ERROR,
            description=check.description,
            blocking=True,
            partition=slug,
        )


# -- the end of the step --------------------------------------------------------------


def _final_error(context: AssetExecutionContext, failures: Mapping[str, _Failure]) -> Exception:
    listed = sorted(failures.values(), key=lambda f: f.slug)
    for failure in listed:
        context.log.error(f"listing failed: {failure.describe()}")
    metadata = {
        "failed_listings": MetadataValue.json(
            {f.slug: {"asset": f.asset, "error": str(f.error)} for f in listed}
        ),
        "retryable": MetadataValue.json([f.slug for f in listed if f.retryable]),
    }
    retryable = [f for f in listed if f.retryable]
    if retryable and context.retry_number < MAX_RETRIES:
        backoff = RETRY_POLICY.delay * (2**context.retry_number)
        backoff *= 1 + random.uniform(-0.5, 0.5)
        asked = max((f.retry_after or 0.0) for f in retryable)
        wait = min(_MAX_WAIT_S, max(asked, backoff))
        context.log.warning(
            f"{len(retryable)} listing(s) hit a retryable error; retrying in {wait:.1f} s "
            f"(server asked {asked:.1f} s)"
        )
        return RetryRequested(max_retries=MAX_RETRIES, seconds_to_wait=wait)
    summary = "; ".join(f.describe() for f in listed[:20])
    more = f" (and {len(listed) - 20} more)" if len(listed) > 20 else ""
    return Failure(
        description=f"{len(listed)} listing(s) failed: {summary}{more}",
        metadata=metadata,
        allow_retries=False,
    )


# -- helpers --------------------------------------------------------------------------


class _BufferedLog:
    """Collects a listing's log lines in its worker thread; flushed by the op's thread."""

    def __init__(self) -> None:
        self._lines: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def add(self, level: str, message: str) -> None:
        with self._lock:
            self._lines.append((level, message))

    # GraphOutcome progress goes through ``context.log`` of the resource call
    def info(self, message: str) -> None:
        self.add("info", message)

    def debug(self, message: str) -> None:
        self.add("debug", message)

    def warning(self, message: str) -> None:
        self.add("warning", message)

    @property
    def log(self) -> "_BufferedLog":
        return self

    def flush(self, context: AssetExecutionContext) -> None:
        """Write the lines to the run's log: each warning and error on its own, the
        listing's info lines as one entry and its debug lines as another.

        Every entry is a committed row of the Dagster event log (tens of milliseconds
        each on a SQLite instance) and a listing makes dozens of node-level lines, so
        one entry per line made the event log the largest cost of a listing whose
        renders are quick (docs/performance.md).
        """
        with self._lock:
            lines, self._lines = self._lines, []
        grouped: dict[str, list[str]] = {"info": [], "debug": []}
        for level, message in lines:
            if level in grouped:
                grouped[level].append(message)
            else:
                getattr(context.log, level)(message)
        for level, messages in grouped.items():
            if messages:
                getattr(context.log, level)("\n".join(messages))


def _rows_by_slug(snapshot: Any) -> dict[str, dict[str, Any]]:
    if snapshot is None:
        return {}
    rows = {}
    for record in snapshot.to_dict(orient="records"):
        clean = {k: (None if _missing(v) else v) for k, v in record.items()}
        rows[str(record["slug"])] = clean
    return rows


def _missing(value: Any) -> bool:
    if value is None or isinstance(value, (list, tuple)):
        return value is None
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _fetch_policy(config: ListingMediaConfig, store: Any) -> FetchPolicy:
    state = read_catalogue_state(store)
    roots: tuple[Path, ...] = ()
    source = state.get("source")
    if source and "://" not in source:
        roots = (Path(source).expanduser().resolve().parent,)
    endpoint = state.get("s3_endpoint_url")
    return FetchPolicy(
        storage_options={"endpoint_url": endpoint} if endpoint else {},
        max_bytes=config.photo_max_bytes,
        total_timeout=config.fetch_timeout_s,
        read_timeout=min(30.0, config.fetch_timeout_s),
        allow_private_networks=config.allow_private_networks,
        local_roots=roots,
    )
