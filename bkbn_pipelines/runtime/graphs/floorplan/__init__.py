"""The ``floor-plan`` graph: a walk-through capture bundle to an editable plan.

Nodes: ``load_capture`` → ``backproject`` → ``floor_slice`` → ``walls`` → ``rooms`` →
``labels`` → ``openings`` → ``export``.  Deterministic, no model weights.  Parameters:

- ``units``: ``metric`` (default) or ``imperial``; changes the displayed areas only.
- ``slice_band``: ``[low, high]`` metres above the floor whose points become the wall
  grid (default ``[1.0, 1.9]``: above furniture, below door heads).
- ``grid_cm``: grid cell in centimetres (default 2).
- ``exterior_thickness``: thickness drawn for walls seen from one side only (default
  0.2 m; the capture cannot measure it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...._contract import FIXED_TOKENS, GRAPHS
from ...._errors import CaptureBundleError, InvalidParamsError
from ...._events import Artifact
from ..._graph import Graph, Node, RunContext, register
from ...capture import read_capture
from . import _reconstruct as rec
from ._export import (
    format_area,
    plan_json,
    plan_to_dxf,
    plan_to_svg,
    room_label_point,
    svg_size,
)

__all__ = ["GRAPH", "build_plan", "floor_plan_params"]

PLAN_SCHEMA_VERSION = "1.0"


def floor_plan_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Checked parameters with their defaults; ``InvalidParamsError`` names a bad one."""
    units = params.get("units", "metric") or "metric"
    if units not in ("metric", "imperial"):
        raise InvalidParamsError(f"units must be 'metric' or 'imperial', got {units!r}")
    band = params.get("slice_band", (1.0, 1.9))
    try:
        low, high = (float(v) for v in band)
    except (TypeError, ValueError):
        raise InvalidParamsError("slice_band must be two numbers [low, high] in metres") from None
    if not 0.1 <= low < high <= 3.0:
        raise InvalidParamsError(f"slice_band must satisfy 0.1 <= low < high <= 3, got {band}")
    try:
        grid_cm = float(params.get("grid_cm", 2.0))
        exterior = float(params.get("exterior_thickness", 0.2))
    except (TypeError, ValueError):
        raise InvalidParamsError("grid_cm and exterior_thickness must be numbers") from None
    if not 0.5 <= grid_cm <= 10:
        raise InvalidParamsError(f"grid_cm must be between 0.5 and 10, got {grid_cm}")
    if not 0.05 <= exterior <= 1.0:
        raise InvalidParamsError(f"exterior_thickness must be 0.05 to 1.0 m, got {exterior}")
    return {"units": units, "band": (low, high), "res": grid_cm / 100, "exterior": exterior}


def _load_capture(ctx: RunContext) -> None:
    ctx.values["params"] = floor_plan_params(ctx.params)
    if len(ctx.inputs) != 1:
        raise CaptureBundleError(
            f"floor-plan takes one capture bundle (a zip), got {len(ctx.inputs)} inputs; "
            "see docs/capture-bundle.md"
        )
    ctx.values["bundle"] = read_capture(ctx.inputs[0])


def _backproject(ctx: RunContext) -> None:
    ctx.values["cloud"] = rec.backproject(ctx.values["bundle"], progress=ctx.progress)


def _floor_slice(ctx: RunContext) -> None:
    ctx.values["slice"] = rec.floor_slice(ctx.values["cloud"], band=ctx.values["params"]["band"])


def _walls(ctx: RunContext) -> None:
    p = ctx.values["params"]
    ctx.values["walls"] = rec.detect_walls(
        ctx.values["slice"], res=p["res"], exterior_thickness=p["exterior"]
    )


def _rooms(ctx: RunContext) -> None:
    ctx.values["rooms"] = rec.detect_rooms(ctx.values["slice"], ctx.values["walls"])


def _labels(ctx: RunContext) -> None:
    rec.label_rooms(ctx.values["rooms"], ctx.values["bundle"], ctx.values["cloud"])


def _openings(ctx: RunContext) -> None:
    ctx.values["openings"] = rec.detect_openings(ctx.values["slice"], ctx.values["walls"])


def _r(value: float) -> float:
    return round(float(value), 3)


def build_plan(
    sl: rec.Slice,
    cloud: rec.Cloud,
    walls: list[rec.Wall],
    rooms: list[rec.Room],
    openings: list[rec.Opening],
    units: str,
) -> dict[str, Any]:
    """The plan JSON document (metres; ``units`` only changes the display strings)."""
    plan_walls = rec.to_plan_walls(sl, walls)
    room_items = []
    for i, room in enumerate(rooms, start=1):
        area = float(room.polygon.area)
        coords = np.asarray(room.polygon.exterior.coords)
        room_items.append(
            {
                "id": f"room-{i}",
                "label": room.label,
                "label_source": room.label_source,
                "polygon": [[_r(x), _r(y)] for x, y in coords],
                "area_m2": round(area, 2),
                "area_display": format_area(area, units),
                "label_point": [_r(v) for v in room_label_point(room.polygon)],
            }
        )
    wall_items = []
    for i, wall in enumerate(plan_walls, start=1):
        start, end = wall["start"], wall["end"]
        wall_items.append(
            {
                "id": f"wall-{i}",
                "start": [_r(start[0]), _r(start[1])],
                "end": [_r(end[0]), _r(end[1])],
                "length_m": _r(np.hypot(*(end - start))),
                "thickness": _r(wall["thickness"]),
                "exterior": wall["exterior"],
                "polygon": [[_r(x), _r(y)] for x, y in wall["polygon"]],
            }
        )
    opening_items = [
        {
            "id": f"{o.type}-{i}",
            "type": o.type,
            "wall": o.wall,
            "wall_id": f"wall-{o.wall + 1}",
            "position": [_r(o.center[0]), _r(o.center[1])],
            "width": _r(o.width),
            "traversed": o.traversed,
        }
        for i, o in enumerate(openings, start=1)
    ]
    return {
        "version": PLAN_SCHEMA_VERSION,
        "units": units,
        "length_unit": "m",
        "rooms": room_items,
        "walls": wall_items,
        "openings": opening_items,
        "total_area_m2": round(sum(r["area_m2"] for r in room_items), 2),
        "frame": {
            "manhattan_angle_deg": round(float(np.degrees(sl.angle)), 2),
            "floor_height": _r(cloud.floor_height),
            "floor_source": cloud.floor_source,
            "points": len(cloud.xy),
            "frames": len(cloud.cams),
        },
    }


def _export(ctx: RunContext) -> None:
    plan = build_plan(
        ctx.values["slice"],
        ctx.values["cloud"],
        ctx.values["walls"],
        ctx.values["rooms"],
        ctx.values["openings"],
        ctx.values["params"]["units"],
    )
    ctx.artifacts["plan"] = Artifact(plan_json(plan), "application/json")
    svg = plan_to_svg(plan)
    ctx.artifacts["svg"] = Artifact(svg.encode("utf-8"), "image/svg+xml")
    ctx.artifacts["dxf"] = Artifact(plan_to_dxf(plan), "image/vnd.dxf")
    ctx.fields["plan"] = plan
    ctx.fields["weights"] = "none"
    ctx.fields["usage"] = {"tokens": FIXED_TOKENS}
    ctx.fields["width"], ctx.fields["height"] = svg_size(svg)


def _preflight(params: Mapping[str, Any], settings: Any) -> Mapping[str, Any]:
    floor_plan_params(params)  # raises InvalidParamsError before the run starts
    return params


GRAPH = register(
    Graph(
        name="floor-plan",
        preflight=_preflight,
        version=GRAPHS["floor-plan"],
        description="Walk-through capture bundle to walls, rooms, openings: JSON, SVG, DXF.",
        nodes=(
            Node("load_capture", _load_capture),
            Node("backproject", _backproject, ("load_capture",)),
            Node("floor_slice", _floor_slice, ("backproject",)),
            Node("walls", _walls, ("floor_slice",)),
            Node("rooms", _rooms, ("walls",)),
            Node("labels", _labels, ("rooms",)),
            Node("openings", _openings, ("walls",)),
            Node("export", _export, ("labels", "openings")),
        ),
    )
)
