"""The work of each per-listing asset, for one listing, outside Dagster's event flow.

Each ``*_for_listing`` function reads what it needs (the listing's catalogue row, the
upstream manifests), runs graphs through the backend resource, stores the outputs,
replaces the listing's manifest, and returns a :class:`StepOutput`: the data version
and metadata that become the listing's materialization, and any check outcomes.
They raise the package's errors; the caller decides what is retried.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster import MetadataValue
from PIL import Image

from .._contract import RESOLUTIONS, STYLES
from .._errors import InvalidParamsError, MediaError, PhotoRejectedError
from .._floor_plan import check_floor_plan
from ..backends import GraphRequest, InputFile
from ..media import FetchPolicy, fetch_photo, normalise_photo, safe_url
from ..resources import BackboneResource, GraphOutcome
from ..storage import MediaStore

__all__ = [
    "ListingJob",
    "StepOutput",
    "brochures_for_listing",
    "enhanced_for_listing",
    "floor_plans_for_listing",
    "pdf_page_count",
    "plan_polygon_problems",
    "raw_photos_for_listing",
    "staged_for_listing",
]

RAW = "raw_listing_photos"
ENHANCED = "enhanced_photos"
STAGED = "staged_renders"
FLOOR = "floor_plans"
BROCHURES = "brochures"

_THUMB_PX = 96
_SUFFIX = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "application/pdf": ".pdf",
    "text/html": ".html",
    "application/json": ".json",
    "image/svg+xml": ".svg",
    "application/dxf": ".dxf",
    "image/vnd.dxf": ".dxf",
}

#: How to give staging real weights; said wherever staging is skipped or untrained.
REAL_WEIGHTS_HELP = (
    "set BKBN_STAGING_MODEL (or the backbone resource's staging_model) to a diffusers "
    "inpainting model folder, absolute or below BKBN_MODELS_DIR (docs/runtime.md)"
)
NO_WEIGHTS_HELP = (
    f"staging needs model weights: {REAL_WEIGHTS_HELP}; BKBN_ALLOW_UNTRAINED=1 stages "
    "with a tiny untrained model instead, whose renders are noise"
)


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    metadata: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None


@dataclass(frozen=True)
class StepOutput:
    """One asset's result for one listing."""

    asset: str
    data_version: str
    metadata: Mapping[str, Any]
    checks: Sequence[CheckOutcome] = ()

    @property
    def failed_checks(self) -> list[CheckOutcome]:
        return [c for c in self.checks if not c.passed]


@dataclass
class ListingJob:
    """Everything the per-listing work needs; one per listing per run."""

    slug: str
    row: Mapping[str, Any]
    store: MediaStore
    backbone: BackboneResource
    settings: Any  # ListingMediaConfig
    fetch_policy: FetchPolicy
    context: Any
    idempotency_prefix: str
    log: Callable[[str, str], None]
    #: spent-key markers of the calls made for the asset under way (see :meth:`run`)
    calls: list[str] = field(default_factory=list)

    @property
    def listing_id(self) -> str:
        return str(self.row["listing_id"])

    def run(self, graph: str, inputs: Sequence[InputFile], params: Mapping[str, Any], name: str):
        """Run a graph with an idempotency key per (run family, listing, call).

        The prefix is the root run's id, so a step retry and a re-execution of the run
        (from failure, after a killed run worker) send the same key, and the server
        replays a render it already made instead of rendering again.  A call whose
        render ended in an ``error`` event, or whose output failed a blocking check
        (:meth:`spend_calls`), is marked spent in the store; its next attempt uses a
        fresh key, since replaying it would only replay the error or the bad output.
        """
        base = hashlib.sha256(
            json.dumps(
                [self.idempotency_prefix, graph, self.slug, name, dict(params)],
                sort_keys=True,
                default=str,
            ).encode()
        ).hexdigest()[:40]
        attempt = 0
        while self.store.exists(_spent_key(self.idempotency_prefix, base, attempt)):
            attempt += 1
        key = base if attempt == 0 else f"{base}-{attempt}"
        request = GraphRequest(graph=graph, inputs=inputs, params=params, idempotency_key=key)
        spent = _spent_key(self.idempotency_prefix, base, attempt)
        self.calls.append(spent)
        try:
            return self.backbone.run_graph(self.context, request)
        except Exception as exc:
            if getattr(exc, "from_error_event", False):
                self.store.put(spent, b"", media_type="text/plain")
            raise

    def spend_calls(self) -> None:
        """Mark every call of the asset under way spent: its outputs were rejected."""
        for spent in self.calls:
            self.store.put(spent, b"", media_type="text/plain")
        self.calls.clear()


def _spent_key(run_id: str, base: str, attempt: int) -> str:
    return f"runs/{run_id}/spent-keys/{base}-{attempt}"


# -- raw_listing_photos ---------------------------------------------------------------


def raw_photos_for_listing(job: ListingJob) -> StepOutput:
    """Fetch, check, normalise and store each photo; the others go on when one fails."""
    rows: list[dict[str, Any]] = []
    thumbs: list[tuple[str, str | None]] = []
    for source in job.row.get("photos") or []:
        name = _photo_name(str(source))
        try:
            data = fetch_photo(
                source, listing_id=job.listing_id, photo=name, policy=job.fetch_policy
            )
            photo = normalise_photo(
                data,
                listing_id=job.listing_id,
                photo=name,
                max_bytes=job.fetch_policy.max_bytes,
                max_pixels=job.settings.photo_max_pixels,
                bomb_pixels=job.settings.photo_bomb_pixels,
            )
        except MediaError as exc:
            job.log("warning", str(exc))
            rows.append(_failed_row(name, source, exc))
            thumbs.append((name, None))
            continue
        notes = list(photo.warnings)
        if photo.downscaled:
            notes.append(
                f"downscaled from {photo.source_width}x{photo.source_height} to "
                f"{photo.width}x{photo.height} (photo_max_pixels)"
            )
        for note in notes:
            job.log("info", f"listing {job.listing_id!r}, photo {name!r}: {note}")
        stored = job.store.put_content(
            job.slug, RAW, photo.data, suffix=".jpg", media_type="image/jpeg"
        )
        rows.append(
            {
                "photo": name,
                "source": safe_url(str(source)),
                "key": stored.key,
                "uri": stored.uri,
                "sha256": stored.sha256,
                "width": photo.width,
                "height": photo.height,
                "status": "ok",
                "error": None,
                "note": "; ".join(notes) or None,
            }
        )
        thumbs.append((name, _thumbnail(photo.image)))
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        causes = "; ".join(f"{r['photo']}: {r['error']}" for r in rows) or "no photos listed"
        raise PhotoRejectedError(
            f"no usable photo ({causes})", listing_id=job.listing_id, photo=None
        )
    manifest = job.store.write_manifest(RAW, job.slug, rows)
    failed = [r for r in rows if r["status"] != "ok"]
    return StepOutput(
        RAW,
        _digest(r["sha256"] for r in ok),
        {
            "listing_id": job.listing_id,
            "photos": len(ok),
            "failed_photos": len(failed),
            "failures": MetadataValue.json(
                [{"photo": r["photo"], "error": r["error"]} for r in failed]
            ),
            "photo_table": MetadataValue.md(_photo_table(rows, dict(thumbs))),
            "manifest": manifest,
        },
    )


# -- enhanced_photos ------------------------------------------------------------------


def enhanced_for_listing(job: ListingJob) -> StepOutput:
    """Relight each stored photo (and declutter it when configured)."""
    rows, outcomes = [], []
    for photo in _ok_rows(job.store, RAW, job.slug):
        data = job.store.get(photo["key"])
        image = InputFile(data, "image/jpeg", photo["photo"])
        outcome = job.run("relight", [image], {}, photo["photo"])
        outcomes.append(outcome)
        if job.settings.declutter:
            image = _output_file(outcome, "image", photo["photo"])
            outcome = job.run("declutter", [image], {}, photo["photo"])
            outcomes.append(outcome)
        stored = _store_output(job, ENHANCED, outcome, "image")
        rows.append(_render_row(photo, stored, outcome))
    manifest = job.store.write_manifest(ENHANCED, job.slug, rows)
    return StepOutput(
        ENHANCED,
        _digest(r["sha256"] for r in rows),
        {
            **_graph_metadata(outcomes),
            "photos": len(rows),
            "manifest": manifest,
            "outputs": MetadataValue.md(_links(rows)),
        },
    )


# -- staged_renders -------------------------------------------------------------------


def staged_for_listing(job: ListingJob) -> StepOutput:
    """Stage photos in the listing's style; skipped, and said so, without weights."""
    settings = job.settings
    if not settings.staging_enabled:
        job.store.write_manifest(STAGED, job.slug, [])
        return StepOutput(STAGED, "skipped:disabled", {"skipped": "staging disabled"})
    weights = job.backbone.staging_weights()
    if weights == "none":
        job.log("warning", f"listing {job.listing_id!r}: staging skipped: {NO_WEIGHTS_HELP}")
        job.store.write_manifest(STAGED, job.slug, [])
        return StepOutput(
            STAGED, "skipped:no-weights", {"skipped": "no weights", "how_to": NO_WEIGHTS_HELP}
        )
    style = str(job.row.get("style") or settings.default_style)
    if style not in STYLES:
        style = settings.default_style
    params = {
        "style": style,
        "resolution": settings.resolution,
        "keep_geometry": settings.keep_geometry,
        "seed": settings.seed,
    }
    photos = _ok_rows(job.store, RAW, job.slug)
    if settings.staging_photos > 0:
        photos = photos[: settings.staging_photos]
    rows, outcomes, sizes = [], [], []
    for photo in photos:
        data = job.store.get(photo["key"])
        outcome = job.run(
            "staging", [InputFile(data, "image/jpeg", photo["photo"])], params, photo["photo"]
        )
        outcomes.append(outcome)
        stored = _store_output(job, STAGED, outcome, "image")
        width, height = _image_size(outcome.outputs["image"].data)
        sizes.append((photo["photo"], width, height))
        rows.append(
            {
                **_render_row(photo, stored, outcome),
                "style": style,
                "resolution": settings.resolution,
                "width": width,
                "height": height,
            }
        )
    manifest = job.store.write_manifest(STAGED, job.slug, rows)
    untrained = any(o.untrained for o in outcomes)
    metadata: dict[str, Any] = {
        **_graph_metadata(outcomes),
        "style": style,
        "resolution": settings.resolution,
        "renders": len(rows),
        "manifest": manifest,
        "outputs": MetadataValue.md(_links(rows)),
    }
    if untrained:
        warning = (
            "WARNING: rendered with UNTRAINED weights; these images are noise, not "
            f"staging, and stay out of brochures. For real renders, {REAL_WEIGHTS_HELP}"
        )
        metadata["warning"] = warning
        job.log("warning", f"listing {job.listing_id!r}: {warning}")
    expected = RESOLUTIONS[settings.resolution]
    wrong = [f"{n}: {w}x{h}" for n, w, h in sizes if max(w, h) != expected]
    check = CheckOutcome(
        "render_resolution",
        not wrong,
        {"expected_long_side": expected, "wrong": MetadataValue.json(wrong)},
        f"renders not at {settings.resolution}: {', '.join(wrong)}" if wrong else None,
    )
    return StepOutput(STAGED, _digest(r["sha256"] for r in rows), metadata, [check])


# -- floor_plans ----------------------------------------------------------------------


def floor_plans_for_listing(job: ListingJob) -> StepOutput:
    """A floor plan from the listing's walk-through capture; "no capture" without one."""
    capture = job.row.get("capture")
    if not capture:
        job.store.write_manifest(FLOOR, job.slug, [])
        return StepOutput(FLOOR, "no-capture", {"skipped": "no capture"})
    name = _photo_name(str(capture))
    policy = _replace_policy(job.fetch_policy, max_bytes=job.settings.capture_max_bytes)
    bundle = fetch_photo(capture, listing_id=job.listing_id, photo=name, policy=policy)
    outcome = job.run(
        "floor-plan",
        [InputFile(bundle, "application/zip", name)],
        {"units": job.settings.units},
        name,
    )
    plan = outcome.data.get("plan")
    if plan is None and "plan" in outcome.outputs:
        plan = json.loads(outcome.outputs["plan"].data)
    rows = []
    for output_name, artifact in sorted(outcome.outputs.items()):
        stored = _store_artifact(job, FLOOR, artifact, output_name)
        rows.append(
            {
                "output": output_name,
                "key": stored.key,
                "uri": stored.uri,
                "sha256": stored.sha256,
                "media_type": artifact.media_type,
                "source": name,
                "request_id": outcome.request_id,
            }
        )
    manifest = job.store.write_manifest(FLOOR, job.slug, rows)
    problems, rooms, area = plan_polygon_problems(plan)
    check = CheckOutcome(
        "valid_polygons",
        not problems,
        {"rooms": rooms, "problems": MetadataValue.json(problems)},
        "; ".join(problems) if problems else None,
    )
    return StepOutput(
        FLOOR,
        _digest(r["sha256"] for r in rows),
        {
            **_graph_metadata([outcome]),
            "rooms": rooms,
            "area_m2": round(area, 2),
            "manifest": manifest,
            "outputs": MetadataValue.md(_links(rows, name_field="output")),
        },
        [check],
    )


def plan_polygon_problems(plan: Any) -> tuple[list[str], int, float]:
    """Problems with the rooms of a plan (``rooms[].polygon`` as ``[[x, y], ...]``).

    Returns ``(problems, room count, total area)``; each room must be a valid polygon
    (shapely) with an area above zero, and a plan must have at least one room.
    """
    from shapely.geometry import Polygon

    if not isinstance(plan, Mapping):
        return ["the plan is not a JSON object"], 0, 0.0
    rooms = plan.get("rooms") or []
    problems: list[str] = []
    total = 0.0
    if not rooms:
        problems.append("the plan has no rooms")
    for index, room in enumerate(rooms):
        label = f"room {room.get('label') or room.get('name') or index}"
        points = room.get("polygon") or room.get("points") or []
        try:
            polygon = Polygon([(float(x), float(y)) for x, y, *_ in points])
        except (TypeError, ValueError) as exc:
            problems.append(f"{label}: unreadable polygon ({exc})")
            continue
        if not polygon.is_valid:
            problems.append(f"{label}: polygon is not valid")
        elif polygon.area <= 0:
            problems.append(f"{label}: polygon has no area")
        total += polygon.area
    return problems, len(rooms), total


# -- brochures ------------------------------------------------------------------------


def brochures_for_listing(job: ListingJob) -> StepOutput:
    """A brochure from the enhanced photos (raw where none), the facts, renders made
    with real weights and the listing's floor plan when it has one (the brochure's
    ``floor_plan`` parameter: a page with the plan); PDF, HTML and the four parts as JSON."""
    photos = _ok_rows(job.store, ENHANCED, job.slug) or _ok_rows(job.store, RAW, job.slug)
    inputs = [
        InputFile(job.store.get(p["key"]), p.get("media_type") or "image/jpeg", p["photo"])
        for p in photos
    ]
    included_renders = 0
    if job.settings.staged_in_brochure:
        for render in _ok_rows(job.store, STAGED, job.slug):
            if render.get("weights") in ("untrained",):
                continue  # never pass noise off as a result
            inputs.append(
                InputFile(job.store.get(render["key"]), "image/png", f"staged-{render['photo']}")
            )
            included_renders += 1
    if not inputs:
        raise PhotoRejectedError("no photo to make a brochure from", listing_id=job.listing_id)
    params: dict[str, Any] = {
        "listing": _facts(job.row),
        "photo_names": [item.name for item in inputs],
    }
    if job.settings.brochure_template:
        params["template"] = job.settings.brochure_template
    floor_plan = _stored_floor_plan(job)
    if floor_plan is not None:
        params["floor_plan"] = floor_plan
    outcome = job.run("brochure", inputs, params, "brochure")
    rows = []
    for output_name, artifact in sorted(outcome.outputs.items()):
        stored = _store_artifact(job, BROCHURES, artifact, output_name)
        rows.append(
            {
                "output": output_name,
                "key": stored.key,
                "uri": stored.uri,
                "sha256": stored.sha256,
                "media_type": artifact.media_type,
                "request_id": outcome.request_id,
            }
        )
    manifest = job.store.write_manifest(BROCHURES, job.slug, rows)
    pdf = outcome.outputs.get("pdf")
    pages = pdf_page_count(pdf.data) if pdf is not None else 0
    pdf_row = next((r for r in rows if r["output"] == "pdf"), None)
    check = CheckOutcome(
        "pdf_has_pages",
        pages > 0,
        {"pages": pages},
        None if pages > 0 else "the brochure PDF has no pages",
    )
    metadata = {
        **_graph_metadata([outcome]),
        "photos_in": len(photos),
        "staged_renders_in": included_renders,
        "floor_plan_in": floor_plan is not None,
        "pages": pages,
        "manifest": manifest,
        "outputs": MetadataValue.md(_links(rows, name_field="output")),
    }
    if pdf_row is not None:
        metadata["pdf"] = MetadataValue.url(pdf_row["uri"])
    plan = next((p for p in _ok_rows(job.store, FLOOR, job.slug) if p.get("output") == "svg"), None)
    if plan is not None:
        metadata["floor_plan"] = MetadataValue.url(plan["uri"])
    return StepOutput(BROCHURES, _digest(r["sha256"] for r in rows), metadata, [check])


def _stored_floor_plan(job: ListingJob) -> dict[str, Any] | None:
    """The plan JSON of the listing's ``floor_plans`` output; ``None`` without a capture.

    A stored plan the brochure cannot draw (no rooms, a broken file) is left out with a
    warning rather than failing the brochure: the ``valid_polygons`` check of the floor
    plan already says what is wrong with it.
    """
    row = next((r for r in _ok_rows(job.store, FLOOR, job.slug) if r.get("output") == "plan"), None)
    if row is None:
        return None
    try:
        plan = json.loads(job.store.get(row["key"]))
        check_floor_plan(plan)
    except (InvalidParamsError, ValueError) as exc:
        job.log("warning", f"listing {job.listing_id!r}: brochure without its floor plan: {exc}")
        return None
    return plan


_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def pdf_page_count(data: bytes) -> int:
    """Pages of a PDF, counted from its ``/Type /Page`` objects; 0 when not a PDF.

    A light check that needs no PDF library; it does not see pages inside compressed
    object streams, which the PDF writer of the brochure graph does not use.
    """
    if not data.startswith(b"%PDF-"):
        return 0
    return len(_PAGE.findall(data))


# -- helpers --------------------------------------------------------------------------


def _photo_name(source: str) -> str:
    if source.startswith("data:"):
        return "inline-photo"
    tail = source.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    return Path(tail).name or tail


def _failed_row(name: str, source: Any, exc: MediaError) -> dict[str, Any]:
    return {
        "photo": name,
        "source": safe_url(str(source)),
        "key": None,
        "uri": None,
        "sha256": None,
        "width": None,
        "height": None,
        "status": "failed",
        "error": exc.reason,
        "note": None,
    }


def _ok_rows(store: MediaStore, asset: str, slug: str) -> list[dict[str, Any]]:
    frame = store.read_manifest(asset, slug)
    if frame.empty:
        return []
    if "status" in frame.columns:
        frame = frame[frame["status"] == "ok"]
    return [
        {k: (None if _is_na(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def _is_na(value: Any) -> bool:
    try:
        return bool(value != value)  # NaN
    except (TypeError, ValueError):
        return False


def _digest(parts: Any) -> str:
    digest = hashlib.sha256()
    for part in sorted(str(p) for p in parts):
        digest.update(part.encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _thumbnail(image: Image.Image) -> str:
    thumb = image.copy()
    thumb.thumbnail((_THUMB_PX, _THUMB_PX))
    buffer = io.BytesIO()
    thumb.convert("RGB").save(buffer, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _photo_table(rows: Sequence[Mapping[str, Any]], thumbs: Mapping[str, str | None]) -> str:
    lines = ["| photo | preview | size | status |", "|---|---|---|---|"]
    for row in rows:
        thumb = thumbs.get(row["photo"])
        preview = f"![{row['photo']}]({thumb})" if thumb else ""
        size = f"{row['width']}x{row['height']}" if row["width"] else ""
        status = "ok" if row["status"] == "ok" else f"failed: {row['error']}"
        if row.get("note"):
            status = f"{status} ({row['note']})"
        lines.append(f"| {_cell(row['photo'])} | {preview} | {size} | {_cell(status)} |")
    return "\n".join(lines)


def _links(rows: Sequence[Mapping[str, Any]], name_field: str = "photo") -> str:
    return "\n".join(f"- [{_cell(r[name_field])}]({r['uri']})" for r in rows) or "none"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _output_file(outcome: GraphOutcome, name: str, photo: str) -> InputFile:
    artifact = outcome.outputs[name]
    return InputFile(artifact.data, artifact.media_type, photo)


def _store_output(job: ListingJob, asset: str, outcome: GraphOutcome, name: str):
    if name not in outcome.outputs:
        from .._errors import APIError

        raise APIError(f"{outcome.graph}: the result has no {name!r} output")
    return _store_artifact(job, asset, outcome.outputs[name], name)


def _store_artifact(job: ListingJob, asset: str, artifact: Any, name: str):
    media_type = artifact.media_type.split(";", 1)[0].strip()
    suffix = _SUFFIX.get(media_type) or (".json" if "json" in media_type else ".bin")
    return job.store.put_content(
        job.slug, asset, artifact.data, suffix=suffix, media_type=media_type
    )


def _render_row(photo: Mapping[str, Any], stored: Any, outcome: GraphOutcome) -> dict[str, Any]:
    return {
        "photo": photo["photo"],
        "source_key": photo["key"],
        "key": stored.key,
        "uri": stored.uri,
        "sha256": stored.sha256,
        "media_type": stored.media_type,
        "graph": outcome.graph,
        "request_id": outcome.request_id,
        "run_id": outcome.run_id,
        "tokens": outcome.tokens,
        "weights": outcome.weights,
        "status": "ok",
    }


def _graph_metadata(outcomes: Sequence[GraphOutcome]) -> dict[str, Any]:
    if not outcomes:
        return {"graph_runs": 0}
    node_ms: dict[str, int] = {}
    for outcome in outcomes:
        for node, ms in outcome.node_ms.items():
            node_ms[node] = node_ms.get(node, 0) + int(ms)
    weights = sorted({o.weights for o in outcomes if o.weights})
    return {
        "graph_runs": len(outcomes),
        "graph_version": ", ".join(sorted({o.graph for o in outcomes})),
        "request_ids": MetadataValue.json([o.request_id or o.run_id for o in outcomes]),
        "node_ms": MetadataValue.json(node_ms),
        "tokens": sum(o.tokens or 0 for o in outcomes),
        "weights": ", ".join(weights) if weights else "n/a",
    }


def _image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def _facts(row: Mapping[str, Any]) -> dict[str, Any]:
    names = ("address", "city", "price", "currency", "beds", "baths", "area_m2", "style")
    facts = {}
    for name in names:
        value = row.get(name)
        if value is None or _is_na(value):
            continue
        facts[name] = value.item() if hasattr(value, "item") else value
    facts["listing_id"] = str(row["listing_id"])
    return facts


def _replace_policy(policy: FetchPolicy, **changes: Any) -> FetchPolicy:
    from dataclasses import replace

    return replace(policy, **changes)
