"""Renderers: what turns an admitted run into events.

``runtime`` runs the graph with :class:`bkbn_pipelines.runtime.LocalRuntime`.
``latency`` is a model of the API's timing for tests and benchmarks: a fixed delay,
the graph's nodes, ``steps`` progress events ``step_ms`` apart, then real output
files made cheaply (the input photo resized and encoded as PNG; a small PDF brochure;
a rectangular floor plan), labelled ``renderer: "latency"`` and ``weights: "none"``.
Both run in the emulator's render thread pool, never on the event loop.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from .._contract import FIXED_TOKENS, GRAPHS, RESOLUTIONS, render_tokens
from .._errors import ConfigError, InvalidParamsError, UnknownGraphError
from .._events import (
    Artifact,
    ErrorEvent,
    Event,
    NodeDone,
    NodeStart,
    RenderProgress,
    Result,
    RunStart,
)
from ._config import EmulatorConfig, LatencyConfig

__all__ = [
    "IMAGE_GRAPHS",
    "LatencyRenderer",
    "RenderJob",
    "Renderer",
    "RuntimeRenderer",
    "make_renderer",
    "output_size",
    "resolve_graph",
]

IMAGE_GRAPHS = frozenset({"staging", "relight", "declutter"})

#: Nodes of each graph in the latency model, and the node that reports progress.
LATENCY_NODES: dict[str, tuple[tuple[str, ...], str]] = {
    "staging": (("segment_rooms", "condition_style", "render", "encode"), "render"),
    "relight": (("analyse", "white_balance", "tone", "encode"), "tone"),
    "declutter": (("mask", "inpaint", "encode"), "inpaint"),
    "brochure": (("storyboard", "palette", "copy", "layout", "compose"), "layout"),
    "floor-plan": (("load_capture", "walls", "rooms", "openings", "export"), "walls"),
}


def resolve_graph(name: str, known_versions: Mapping[str, set[str]] | None = None) -> str:
    """``staging`` -> ``staging-v2.4``; raises :class:`UnknownGraphError` (404)."""
    base, sep, version = name.rpartition("-v")
    if not sep or not base:
        base, version = name, ""
    if base not in GRAPHS:
        raise UnknownGraphError(f"no graph named {name!r}; graphs: {', '.join(GRAPHS)}")
    versions = {GRAPHS[base], *((known_versions or {}).get(base, set()))}
    version = version or GRAPHS[base]
    if version not in versions:
        raise UnknownGraphError(
            f"graph {base!r} has no version {version!r}; versions: {', '.join(sorted(versions))}"
        )
    return f"{base}-v{version}"


def output_size(width: int, height: int, resolution: str | None) -> tuple[int, int]:
    """Output size for an input size: the long side set by ``resolution`` if given."""
    if resolution is None:
        return width, height
    long_side = RESOLUTIONS[resolution]
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height after EXIF orientation, from the header only."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            orientation = img.getexif().get(0x0112, 1)
    except UnidentifiedImageError:
        raise InvalidParamsError("not an image in a known format") from None
    except (OSError, ValueError):
        raise InvalidParamsError("the image is damaged or truncated") from None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _checked_size(data: bytes, index: int) -> tuple[int, int]:
    try:
        return image_size(data)
    except InvalidParamsError as exc:
        exc.input_index = index  # type: ignore[attr-defined]
        raise


@dataclass
class RenderJob:
    """An admitted run: what to render, for whom, and the run's cancel flag."""

    run_id: str
    graph: str  # full name, e.g. staging-v2.4
    inputs: Sequence[bytes] = field(repr=False)
    params: Mapping[str, Any]
    cancel: threading.Event
    latency: LatencyConfig

    @property
    def base(self) -> str:
        return self.graph.rpartition("-v")[0]


class Renderer:
    """Base: token estimate and the event iterator of one job."""

    label = ""

    def known_versions(self) -> dict[str, set[str]]:
        return {}

    def steps(self, job_latency: LatencyConfig) -> int:
        raise NotImplementedError

    def tokens(self, base: str, inputs: Sequence[bytes], params: Mapping, steps: int) -> int:
        """The run's cost in tokens: ``ceil(megapixels_out * steps / 10)`` for images.

        Photos are checked here: an unreadable one raises :class:`InvalidParamsError`
        whose ``input_index`` says which.  ``relight`` counts one step.
        """
        if base == "brochure":
            for index, data in enumerate(inputs):
                _checked_size(data, index)
        if base not in IMAGE_GRAPHS:
            return FIXED_TOKENS
        width, height = _checked_size(inputs[0], 0)
        out_w, out_h = output_size(width, height, params.get("resolution"))
        return render_tokens(out_w * out_h / 1e6, 1 if base == "relight" else steps)

    def start(self, job: RenderJob) -> Iterator[Event]:
        raise NotImplementedError


class LatencyRenderer(Renderer):
    label = "latency"

    def steps(self, job_latency: LatencyConfig) -> int:
        return job_latency.steps

    def start(self, job: RenderJob) -> Iterator[Event]:
        return self._run(job)

    def _run(self, job: RenderJob) -> Iterator[Event]:
        started = time.perf_counter()
        yield RunStart(run_id=job.run_id, graph=job.graph)
        _sleep(job.latency.delay_ms, job.cancel)
        nodes, progress_node = LATENCY_NODES[job.base]
        for node in nodes:
            if job.cancel.is_set():
                return
            yield NodeStart(node=node)
            t0 = time.perf_counter()
            if node == progress_node:
                for step in range(1, job.latency.steps + 1):
                    _sleep(job.latency.step_ms, job.cancel)
                    yield RenderProgress(step=step, total=job.latency.steps)
            yield NodeDone(node=node, ms=round((time.perf_counter() - t0) * 1000))
        try:
            fields, artifacts = _OUTPUTS[job.base](job)
        except (OSError, ValueError) as exc:  # an input the checks let through
            yield ErrorEvent(error_type="invalid_request_error", message=f"unusable input: {exc}")
            return
        data = {
            "graph": job.graph,
            "ms": round((time.perf_counter() - started) * 1000),
            "weights": "none",
            **fields,
        }
        yield Result(data=data, artifacts=artifacts)


def _sleep(ms: int, cancel: threading.Event) -> None:
    if ms > 0:
        cancel.wait(ms / 1000)


def _image_output(job: RenderJob) -> tuple[dict, dict[str, Artifact]]:
    with Image.open(io.BytesIO(job.inputs[0])) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
    size = output_size(img.width, img.height, job.params.get("resolution"))
    cap = job.latency.max_side
    if cap is not None and max(size) > cap:
        scale = cap / max(size)
        size = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
    if size != img.size:
        img = img.resize(size, Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    fields = {"width": img.width, "height": img.height}
    return fields, {"image": Artifact(buf.getvalue(), "image/png")}


def _floor_plan_output(job: RenderJob) -> tuple[dict, dict[str, Artifact]]:
    """A fixed two-room plan, in the plan JSON layout of the runtime's floor-plan graph."""
    units = job.params.get("units", "metric")
    rooms = [
        _room("room-1", "living", [[0, 0], [5, 0], [5, 4], [0, 4]]),
        _room("room-2", "kitchen", [[5, 0], [8, 0], [8, 4], [5, 4]]),
    ]
    segments = [([0, 0], [8, 0]), ([8, 0], [8, 4]), ([8, 4], [0, 4]), ([0, 4], [0, 0])]
    walls = [
        {
            "id": f"wall-{i + 1}",
            "start": start,
            "end": end,
            "length_m": float(abs(end[0] - start[0]) + abs(end[1] - start[1])),
            "thickness": 0.2,
            "exterior": True,
        }
        for i, (start, end) in enumerate(segments)
    ]
    walls.append(
        {
            "id": "wall-5",
            "start": [5, 0],
            "end": [5, 4],
            "length_m": 4.0,
            "thickness": 0.1,
            "exterior": False,
        }
    )
    openings = [
        {
            "id": "door-1",
            "type": "door",
            "wall": 4,
            "wall_id": "wall-5",
            "position": [5, 2],
            "width": 0.9,
        },
        {
            "id": "window-1",
            "type": "window",
            "wall": 0,
            "wall_id": "wall-1",
            "position": [2.5, 0],
            "width": 1.2,
        },
    ]
    plan = {
        "version": "1.0",
        "units": units,
        "length_unit": "m",
        "rooms": rooms,
        "walls": walls,
        "openings": openings,
        "total_area_m2": sum(room["area_m2"] for room in rooms),
    }
    artifacts = {
        "plan": Artifact(json.dumps(plan).encode(), "application/json"),
        "svg": Artifact(_plan_svg(plan).encode(), "image/svg+xml"),
        "dxf": Artifact(_plan_dxf(plan).encode(), "application/dxf"),
    }
    return {"plan": plan}, artifacts


def _room(room_id: str, label: str, corners: list[list[float]]) -> dict[str, Any]:
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    area = float((max(xs) - min(xs)) * (max(ys) - min(ys)))
    return {
        "id": room_id,
        "label": label,
        "polygon": [*corners, corners[0]],
        "area_m2": area,
        "area_display": f"{area:.1f} m²",
    }


def _plan_svg(plan: dict) -> str:
    scale = 50
    lines = [
        f'<line x1="{w["start"][0] * scale}" y1="{w["start"][1] * scale}" '
        f'x2="{w["end"][0] * scale}" y2="{w["end"][1] * scale}" stroke="black" '
        f'stroke-width="{w["thickness"] * scale}"/>'
        for w in plan["walls"]
    ]
    body = "".join(lines)
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="420" height="220" '
        f'viewBox="-10 -10 420 220">{body}</svg>'
    )


def _plan_dxf(plan: dict) -> str:
    import ezdxf

    doc = ezdxf.new()
    msp = doc.modelspace()
    for wall in plan["walls"]:
        msp.add_line(tuple(wall["start"]), tuple(wall["end"]))
    stream = io.StringIO()
    doc.write(stream)
    return stream.getvalue()


def _brochure_output(job: RenderJob) -> tuple[dict, dict[str, Artifact]]:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    listing = dict(job.params.get("listing") or {})
    thumbs = []
    for data in job.inputs[:4]:
        with Image.open(io.BytesIO(data)) as img:
            thumb = ImageOps.exif_transpose(img).convert("RGB")
            thumb.thumbnail((480, 480))
            thumbs.append(thumb)
    palette = {"colours": _palette(thumbs[0]) if thumbs else []}
    headline = str(listing.get("address") or "A home worth seeing")
    facts = [
        {"label": key.replace("_", " ").capitalize(), "value": str(listing[key])}
        for key in ("price", "beds", "baths", "area_m2")
        if key in listing
    ]
    body = ", ".join(f"{f['label']}: {f['value']}" for f in facts) or "Details on request."
    copy = {"headline": headline, "body": body, "facts": facts}
    storyboard = {
        "photos": [
            {"index": i, "name": f"photo-{i + 1}", "position": i} for i in range(len(thumbs))
        ],
        "duplicates": [],
        "rejected": [],
        "cover": 0,
    }
    layout = {
        "page_size": "A4",
        "orientation": "portrait",
        "pages": [{"kind": "cover", "template": job.params.get("template") or "classic"}],
    }
    # this project's floor_plan parameter (checked on the way in): a page naming the rooms
    plan = job.params.get("floor_plan")
    plan_rooms = [
        f"{room['label'].replace('_', ' ').capitalize()}: {room['area_m2']:.1f} m²"
        for room in (plan or {}).get("rooms", [])
    ]
    if plan is not None:
        layout["pages"].append({"kind": "floor_plan", "rooms": plan_rooms})

    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4)
    height = A4[1]
    pdf.setFont("Helvetica-Bold", 20)
    pdf.drawString(40, height - 60, headline[:60])
    pdf.setFont("Helvetica", 11)
    pdf.drawString(40, height - 80, body[:100])
    for i, thumb in enumerate(thumbs):
        x, y = 40 + (i % 2) * 260, height - 320 - (i // 2) * 220
        pdf.drawImage(ImageReader(thumb), x, y, width=240, height=180, preserveAspectRatio=True)
    pdf.showPage()
    if plan is not None:
        pdf.setFont("Helvetica-Bold", 20)
        pdf.drawString(40, height - 60, "Floor plan")
        pdf.setFont("Helvetica", 11)
        for i, line in enumerate(plan_rooms[:40]):
            pdf.drawString(40, height - 90 - i * 16, line)
        pdf.showPage()
    pdf.save()
    html = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_esc(headline)}</title>"
        f"</head><body><h1>{_esc(headline)}</h1><p>{_esc(body)}</p></body></html>"
    )
    parts = {"storyboard": storyboard, "palette": palette, "copy": copy, "layout": layout}
    artifacts = {
        "pdf": Artifact(buf.getvalue(), "application/pdf"),
        "html": Artifact(html.encode(), "text/html; charset=utf-8"),
    }
    for name, part in parts.items():
        artifacts[name] = Artifact(json.dumps(part).encode(), "application/json")
    pages = len(layout["pages"])
    return {"parts": parts, "pages": pages, "width": 595, "height": 842}, artifacts


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _palette(img: Image.Image) -> list[dict[str, Any]]:
    small = img.resize((32, 32)).quantize(colors=5)
    counts = sorted(small.getcolors() or [], reverse=True)
    palette = small.getpalette() or []
    total = sum(count for count, _ in counts) or 1
    colours = []
    for count, index in counts:
        rgb = palette[index * 3 : index * 3 + 3]
        colours.append(
            {"hex": "#{:02x}{:02x}{:02x}".format(*rgb), "rgb": rgb, "weight": count / total}
        )
    return colours


_OUTPUTS = {
    "staging": _image_output,
    "relight": _image_output,
    "declutter": _image_output,
    "brochure": _brochure_output,
    "floor-plan": _floor_plan_output,
}


class RuntimeRenderer(Renderer):
    """The local graph runtime, with settings from the config's ``runtime`` section."""

    label = "runtime"

    def __init__(self, runtime_settings: Mapping[str, Any]) -> None:
        from ..runtime import LocalRuntime, RuntimeSettings

        self.runtime = LocalRuntime(RuntimeSettings.from_env(**dict(runtime_settings)))

    def known_versions(self) -> dict[str, set[str]]:
        from ..runtime import graph_names

        versions: dict[str, set[str]] = {}
        for full in graph_names():
            base, _, version = full.rpartition("-v")
            versions.setdefault(base, set()).add(version)
        return versions

    def steps(self, job_latency: LatencyConfig) -> int:
        return int(self.runtime.settings.steps)

    def start(self, job: RenderJob) -> Iterator[Event]:
        """Check the request and return the event iterator (raises GraphError)."""
        return self.runtime.run(
            job.graph, list(job.inputs), dict(job.params), run_id=job.run_id, cancel=job.cancel
        )


def make_renderer(config: EmulatorConfig) -> Renderer:
    """The renderer the config names; a :class:`ConfigError` if it cannot be set up."""
    if config.renderer == "latency":
        return LatencyRenderer()
    try:
        return RuntimeRenderer(config.runtime)
    except ImportError as exc:
        raise ConfigError(
            f"renderer: runtime needs the local runtime's dependencies ({exc.name} is "
            "missing); install the [local] extra or set renderer: latency"
        ) from None
