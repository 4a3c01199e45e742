"""Plan JSON, SVG and DXF from the reconstructed walls, rooms and openings.

The JSON always keeps metres; ``units`` ("metric" or "imperial") chooses how areas and
lengths are *shown*: ``area_display`` in the JSON, the labels of the SVG and the TEXT
layer of the DXF.  The DXF is drawn in metres (``$INSUNITS`` = 6) on four layers:
WALLS, ROOMS, OPENINGS and TEXT.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple
from xml.sax.saxutils import escape

import ezdxf
from shapely.geometry import Point, Polygon

__all__ = [
    "OpeningFrame",
    "format_area",
    "format_length",
    "opening_frame",
    "plan_to_dxf",
    "plan_to_svg",
    "svg_size",
]

SQFT_PER_M2 = 10.763910416709722
FT_PER_M = 3.280839895013123

_ROOM_FILL = {
    "living": "#f3ead8",
    "kitchen": "#f6e3c9",
    "dining": "#f1e6d2",
    "bedroom": "#e3ebf3",
    "bathroom": "#dcefee",
    "office": "#ece4f2",
}


def format_area(area_m2: float, units: str) -> str:
    if units == "imperial":
        return f"{area_m2 * SQFT_PER_M2:.0f} sq ft"
    return f"{area_m2:.1f} m²"


def format_length(metres: float, units: str) -> str:
    if units == "imperial":
        inches = round(metres * FT_PER_M * 12)
        return f"{inches // 12} ft {inches % 12} in"
    return f"{metres:.2f} m"


def _bounds(plan: Mapping[str, Any]) -> tuple[float, float, float, float]:
    xs, ys = [], []
    for wall in plan["walls"]:
        for x, y in wall["polygon"]:
            xs.append(x)
            ys.append(y)
    for room in plan["rooms"]:
        for x, y in room["polygon"]:
            xs.append(x)
            ys.append(y)
    if not xs:
        return (0.0, 0.0, 1.0, 1.0)
    return (min(xs), min(ys), max(xs), max(ys))


def plan_to_svg(plan: Mapping[str, Any], *, scale: float = 80.0, margin: float = 0.8) -> str:
    """A clean drawing: rooms tinted by type, walls solid, doors with swings, windows."""
    units = plan.get("units", "metric")
    minx, miny, maxx, maxy = _bounds(plan)
    width = (maxx - minx + 2 * margin) * scale
    height = (maxy - miny + 2 * margin) * scale + 40

    def pt(x: float, y: float) -> str:
        return f"{(x - minx + margin) * scale:.1f},{(maxy - y + margin) * scale + 40:.1f}"

    def poly(points: Sequence[Sequence[float]], **attrs: str) -> str:
        extra = " ".join(f'{k.replace("_", "-")}="{v}"' for k, v in attrs.items())
        return f'<polygon points="{" ".join(pt(x, y) for x, y in points)}" {extra}/>'

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif">',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
    ]
    total = sum(r["area_m2"] for r in plan["rooms"])
    title = f"Floor plan — {len(plan['rooms'])} rooms, {format_area(total, units)}"
    out.append(f'<text x="16" y="26" font-size="16" fill="#333">{escape(title)}</text>')
    out.append('<g id="rooms">')
    for room in plan["rooms"]:
        fill = _ROOM_FILL.get(room["label"], "#eeeeee")
        out.append(poly(room["polygon"], fill=fill, stroke="none"))
    out.append('</g><g id="walls">')
    for wall in plan["walls"]:
        out.append(poly(wall["polygon"], fill="#2b2b2b", stroke="#2b2b2b", stroke_width="0.5"))
    out.append('</g><g id="openings">')
    for opening in plan["openings"]:
        out.append(_svg_opening(opening, plan, pt, scale))
    out.append('</g><g id="labels">')
    for room in plan["rooms"]:
        x, y = room["label_point"]
        sx, sy = (float(v) for v in pt(x, y).split(","))
        name = room["label"].replace("_", " ").title()
        out.append(
            f'<text x="{sx:.1f}" y="{sy - 4:.1f}" font-size="15" text-anchor="middle" '
            f'fill="#222">{escape(name)}</text>'
            f'<text x="{sx:.1f}" y="{sy + 14:.1f}" font-size="12" text-anchor="middle" '
            f'fill="#555">{escape(room["area_display"])}</text>'
        )
    out.append("</g>")
    bar = 1.0 if units == "metric" else 1 / FT_PER_M * 3
    label = "1 m" if units == "metric" else "3 ft"
    y0 = height - 14
    out.append(
        f'<line x1="16" y1="{y0:.0f}" x2="{16 + bar * scale:.1f}" y2="{y0:.0f}" '
        f'stroke="#333" stroke-width="2"/><text x="{20 + bar * scale:.1f}" y="{y0 + 4:.0f}" '
        f'font-size="11" fill="#333">{label}</text>'
    )
    out.append("</svg>")
    return "\n".join(out)


def _door_normal(opening: Mapping[str, Any], plan: Mapping[str, Any]) -> tuple[float, ...]:
    """Unit vectors along the wall and across it, the latter into a room (doors swing in)."""
    wall = plan["walls"][opening["wall"]]
    (x0, y0), (x1, y1) = wall["start"], wall["end"]
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    nx, ny = -uy, ux
    cx, cy = opening["position"]
    probe = Point(cx + nx * (wall["thickness"] / 2 + 0.3), cy + ny * (wall["thickness"] / 2 + 0.3))
    if not any(Polygon(r["polygon"]).contains(probe) for r in plan["rooms"]):
        nx, ny = -nx, -ny
    return ux, uy, nx, ny


class OpeningFrame(NamedTuple):
    """Where an opening sits: unit vectors along its wall (``ux, uy``) and into a room
    (``nx, ny``), its centre, half its width and half its wall's thickness (plus 1 cm)."""

    ux: float
    uy: float
    nx: float
    ny: float
    cx: float
    cy: float
    half: float
    t: float

    def gap(self) -> list[tuple[float, float]]:
        """The four corners of the gap the opening cuts through its wall, in metres."""
        ux, uy, nx, ny, cx, cy, half, t = self
        return [
            (cx - ux * half + nx * t, cy - uy * half + ny * t),
            (cx + ux * half + nx * t, cy + uy * half + ny * t),
            (cx + ux * half - nx * t, cy + uy * half - ny * t),
            (cx - ux * half - nx * t, cy - uy * half - ny * t),
        ]


def opening_frame(opening: Mapping[str, Any], plan: Mapping[str, Any]) -> OpeningFrame:
    """The frame of ``opening`` in ``plan``, for drawing it (SVG here, PDF in brochures)."""
    wall = plan["walls"][opening["wall"]]
    ux, uy, nx, ny = _door_normal(opening, plan)
    cx, cy = opening["position"]
    return OpeningFrame(ux, uy, nx, ny, cx, cy, opening["width"] / 2, wall["thickness"] / 2 + 0.01)


def _svg_opening(opening: Mapping[str, Any], plan: Mapping[str, Any], pt, scale) -> str:
    frame = opening_frame(opening, plan)
    ux, uy, nx, ny, cx, cy, half, t = frame
    gap = frame.gap()
    parts = [f'<polygon points="{" ".join(pt(x, y) for x, y in gap)}" fill="#ffffff"/>']
    if opening["type"] == "window":
        for off in (-t * 0.4, t * 0.4):
            a = pt(cx - ux * half + nx * off, cy - uy * half + ny * off).split(",")
            b = pt(cx + ux * half + nx * off, cy + uy * half + ny * off).split(",")
            parts.append(
                f'<line x1="{a[0]}" y1="{a[1]}" x2="{b[0]}" y2="{b[1]}" '
                'stroke="#3a7bd5" stroke-width="2"/>'
            )
    else:
        w = opening["width"]
        hinge = (cx - ux * half + nx * t, cy - uy * half + ny * t)
        leaf = (hinge[0] + nx * w, hinge[1] + ny * w)
        end = (cx + ux * half + nx * t, cy + uy * half + ny * t)
        h, lf, e = pt(*hinge).split(","), pt(*leaf).split(","), pt(*end).split(",")
        radius = w * scale
        parts.append(
            f'<line x1="{h[0]}" y1="{h[1]}" x2="{lf[0]}" y2="{lf[1]}" stroke="#8a5a2b" '
            f'stroke-width="1.5"/><path d="M {lf[0]} {lf[1]} A {radius:.1f} {radius:.1f} 0 0 '
            f'{_sweep(ux, uy, nx, ny)} {e[0]} {e[1]}" fill="none" stroke="#8a5a2b" '
            'stroke-width="1" stroke-dasharray="4 3"/>'
        )
    return "".join(parts)


def _sweep(ux: float, uy: float, nx: float, ny: float) -> int:
    # the SVG y axis points down, which mirrors the turn from the leaf to the jamb
    return 0 if ux * ny - uy * nx > 0 else 1


def svg_size(svg: str) -> tuple[int, int]:
    """Width and height in pixels of an SVG written by :func:`plan_to_svg`."""
    head = svg.split(">", 1)[0]
    width = head.split('width="', 1)[1].split('"', 1)[0]
    height = head.split('height="', 1)[1].split('"', 1)[0]
    return int(float(width)), int(float(height))


def plan_to_dxf(plan: Mapping[str, Any]) -> bytes:
    """A DXF (R2010) in metres with layers WALLS, ROOMS, OPENINGS and TEXT."""
    doc = ezdxf.new("R2010", setup=True)
    doc.units = ezdxf.units.M
    doc.header["$MEASUREMENT"] = 1
    for name, colour in (("WALLS", 7), ("ROOMS", 8), ("OPENINGS", 5), ("TEXT", 2)):
        doc.layers.add(name, color=colour)
    msp = doc.modelspace()
    for wall in plan["walls"]:
        msp.add_lwpolyline(
            [tuple(p) for p in wall["polygon"][:-1]], close=True, dxfattribs={"layer": "WALLS"}
        )
    for room in plan["rooms"]:
        msp.add_lwpolyline(
            [tuple(p) for p in room["polygon"][:-1]], close=True, dxfattribs={"layer": "ROOMS"}
        )
        x, y = room["label_point"]
        name = room["label"].replace("_", " ").title()
        msp.add_text(name, height=0.2, dxfattribs={"layer": "TEXT"}).set_placement(
            (x, y + 0.05), align=ezdxf.enums.TextEntityAlignment.BOTTOM_CENTER
        )
        msp.add_text(room["area_display"], height=0.14, dxfattribs={"layer": "TEXT"}).set_placement(
            (x, y - 0.05), align=ezdxf.enums.TextEntityAlignment.TOP_CENTER
        )
    for opening in plan["openings"]:
        ux, uy, nx, ny = _door_normal(opening, plan)
        cx, cy = opening["position"]
        half = opening["width"] / 2
        a, b = (cx - ux * half, cy - uy * half), (cx + ux * half, cy + uy * half)
        msp.add_line(a, b, dxfattribs={"layer": "OPENINGS"})
        if opening["type"] == "door":
            start = math.degrees(math.atan2(uy, ux))
            if ux * ny - uy * nx < 0:  # the room is on the right of the wall's direction
                start -= 90
            msp.add_arc(a, opening["width"], start, start + 90, dxfattribs={"layer": "OPENINGS"})
    buf = io.StringIO()
    doc.write(buf)
    return buf.getvalue().encode("utf-8")


def plan_json(plan: Mapping[str, Any]) -> bytes:
    return json.dumps(plan, indent=2, ensure_ascii=False).encode("utf-8")


def room_label_point(polygon: Polygon) -> tuple[float, float]:
    point = (
        polygon.centroid if polygon.contains(polygon.centroid) else polygon.representative_point()
    )
    return (float(point.x), float(point.y))
