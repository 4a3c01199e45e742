"""The floor-plan page: the ``floor_plan`` parameter drawn to scale in the PDF and as SVG.

:func:`prepare_plan` completes a checked plan (:func:`bkbn_pipelines._floor_plan.
check_floor_plan`) for drawing: wall outlines from their centre line and thickness where
the plan has none, a label point per room, and each room's name and area as the copy
writes them (``21.9 m²``, ``236 sq ft``).  :func:`fit_plan` places it on the page at
the largest usual architectural scale (1:50, 1:100...) that fits, under which come a
scale bar and a table of the rooms; :func:`draw_plan_page` draws it all as vectors with
reportlab.  :func:`plan_svg` is the floor-plan graph's own SVG export of the same plan,
made to scale with the HTML page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from reportlab.lib.colors import HexColor
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from shapely.geometry import Polygon, box
from shapely.ops import polylabel

from ..floorplan._export import (
    _ROOM_FILL,
    FT_PER_M,
    opening_frame,
    plan_to_svg,
    room_label_point,
)
from ._copy import _area_text

__all__ = ["draw_plan_page", "fit_plan", "plan_svg", "prepare_plan"]

PT_PER_M_AT_1_1 = 72 / 0.0254  # PDF points in a metre of paper
#: Scales a plan is drawn at (1:N), the largest that fits is taken.
SCALES = (20, 25, 30, 40, 50, 60, 75, 100, 125, 150, 200, 250, 300, 400, 500, 750, 1000, 2000)
WALL, DOOR, WINDOW = HexColor("#2b2b2b"), HexColor("#8a5a2b"), HexColor("#3a7bd5")
INK, MUTED, RULE = HexColor("#1f1f1f"), HexColor("#6b6b6b"), HexColor("#e4dfd7")
#: (name, area) font sizes tried in turn for a room's label.
LABEL_SIZES = ((12.0, 10.0), (10.0, 9.0), (8.5, 7.5), (7.0, 6.5))
ROW, COLUMNS_MAX = 16.0, 3


def room_name(label: str) -> str:
    words = " ".join(label.replace("_", " ").replace("-", " ").split())
    return words[:1].upper() + words[1:]


def prepare_plan(plan: Mapping[str, Any], units: str) -> dict[str, Any]:
    """The checked plan completed for drawing, its areas shown in ``units``."""
    imperial = units == "imperial"
    rooms, walls = [], []
    for room in plan["rooms"]:
        polygon = Polygon(room["polygon"])
        point = room.get("label_point")
        if point is None:
            if polygon.is_valid and not polygon.is_empty:
                point = list(room_label_point(polygon))
            else:  # drawn as given; its label goes in the middle of its bounds
                minx, miny, maxx, maxy = polygon.bounds
                point = [(minx + maxx) / 2, (miny + maxy) / 2]
        rooms.append(
            {
                **room,
                "name": room_name(room["label"]),
                "area_text": _area_text(room["area_m2"], imperial=imperial),
                "label_point": [float(v) for v in point],
            }
        )
    for wall in plan["walls"]:
        walls.append({**wall, "polygon": wall.get("polygon") or _wall_outline(wall)})
    total = _area_text(sum(r["area_m2"] for r in rooms), imperial=imperial)
    count = f"{len(rooms)} {'room' if len(rooms) == 1 else 'rooms'}"
    return {
        "units": units,
        "rooms": rooms,
        "walls": walls,
        "openings": [dict(o) for o in plan["openings"]],
        "total_text": total,
        "title": f"{count} · {total}",
    }


def _wall_outline(wall: Mapping[str, Any]) -> list[list[float]]:
    (x0, y0), (x1, y1) = wall["start"], wall["end"]
    length = math.hypot(x1 - x0, y1 - y0)
    if length == 0:
        return []
    nx, ny = -(y1 - y0) / length * wall["thickness"] / 2, (x1 - x0) / length * wall["thickness"] / 2
    corners = [[x0 + nx, y0 + ny], [x1 + nx, y1 + ny], [x1 - nx, y1 - ny], [x0 - nx, y0 - ny]]
    return [*corners, corners[0]]


def _bounds(drawing: Mapping[str, Any]) -> tuple[float, float, float, float]:
    points = [p for r in drawing["rooms"] for p in r["polygon"]]
    points += [p for w in drawing["walls"] for p in w["polygon"]]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def _nice_bar(pt_per_unit: float, longest: float) -> tuple[float, int]:
    """A scale bar's length in units (1, 2, 5, 10...) no longer than ``longest`` points,
    and its number of segments."""
    best = (1.0, 2)
    for decade in (0.1, 1, 10, 100, 1000):
        for lead, segments in ((1, 2), (2, 4), (5, 5)):
            if lead * decade * pt_per_unit <= longest:
                best = (lead * decade, segments)
    return best


def fit_plan(
    drawing: Mapping[str, Any], left: float, right: float, top: float, bottom: float
) -> dict[str, Any]:
    """Where the plan goes on the page: the drawing's frame and scale, the scale bar and
    the rooms table below it, all in PDF points (JSON, for the layout part)."""
    rooms = drawing["rooms"]
    columns = min(COLUMNS_MAX, len(rooms)) if len(rooms) <= 12 else 4
    rows = math.ceil(len(rooms) / columns)
    table_h = 22 + rows * ROW
    bar_h = 40.0
    width, height = right - left, top - bottom - bar_h - table_h
    minx, miny, maxx, maxy = _bounds(drawing)
    extent_w, extent_h = max(maxx - minx, 0.5), max(maxy - miny, 0.5)
    fit = min(width / extent_w, height / extent_h)
    scale = next((n for n in SCALES if PT_PER_M_AT_1_1 / n <= fit), None)
    pt_per_m = PT_PER_M_AT_1_1 / scale if scale else fit
    draw_w, draw_h = extent_w * pt_per_m, extent_h * pt_per_m
    # the plan, its scale bar and the table together, centred in the space they have
    x, y = left + (width - draw_w) / 2, top - draw_h - (height - draw_h) / 2
    imperial = drawing["units"] == "imperial"
    pt_per_unit = pt_per_m / FT_PER_M if imperial else pt_per_m
    length, segments = _nice_bar(pt_per_unit, min(180.0, width / 2))
    unit = "ft" if imperial else "m"
    return {
        "box": [round(x, 2), round(y, 2), round(draw_w, 2), round(draw_h, 2)],
        "origin_m": [round(minx, 4), round(miny, 4)],
        "pt_per_m": round(pt_per_m, 4),
        "scale": f"1:{scale}" if scale else None,
        "scale_bar": {
            "x": round(left, 2),
            "y": round(y - 30, 2),
            "length": f"{length:g} {unit}",
            "length_pt": round(length * pt_per_unit, 2),
            "segments": segments,
        },
        "rooms_table": {"x": round(left, 2), "top": round(y - bar_h - 16, 2), "columns": columns},
        "title": drawing["title"],
        "rooms": [{"id": r["id"], "name": r["name"], "area": r["area_text"]} for r in rooms],
    }


def draw_plan_page(
    pdf: Canvas,
    drawing: Mapping[str, Any],
    spec: Mapping[str, Any],
    *,
    regular: str,
    bold: str,
    accent: HexColor,
    right: float,
) -> None:
    """The plan, its scale bar and the rooms table, where :func:`fit_plan` put them."""
    x0, y0, _, _ = spec["box"]
    ox, oy = spec["origin_m"]
    s = spec["pt_per_m"]

    def at(x: float, y: float) -> tuple[float, float]:
        return x0 + (x - ox) * s, y0 + (y - oy) * s

    def shape(points: Sequence[Sequence[float]], fill: HexColor, stroke: HexColor | None = None):
        if len(points) < 3:
            return
        path = pdf.beginPath()
        path.moveTo(*at(*points[0]))
        for p in points[1:]:
            path.lineTo(*at(*p))
        path.close()
        pdf.setFillColor(fill)
        if stroke is not None:
            pdf.setStrokeColor(stroke)
            pdf.setLineWidth(0.4)
        pdf.drawPath(path, stroke=int(stroke is not None), fill=1)

    for room in drawing["rooms"]:
        shape(room["polygon"], HexColor(_ROOM_FILL.get(room["label"], "#eeeeee")))
    for wall in drawing["walls"]:
        shape(wall["polygon"], WALL, WALL)
    for opening in drawing["openings"]:
        _draw_opening(pdf, opening, drawing, at, s)
    keys = _draw_labels(pdf, drawing, at, s, regular, bold)
    _draw_scale_bar(pdf, spec, regular)
    _draw_rooms_table(pdf, drawing, spec, keys, regular, bold, accent, right)


def _draw_opening(pdf: Canvas, opening: Mapping[str, Any], drawing, at, s: float) -> None:
    frame = opening_frame(opening, drawing)
    ux, uy, nx, ny, cx, cy, half, t = frame
    gap = frame.gap()
    path = pdf.beginPath()
    path.moveTo(*at(*gap[0]))
    for p in gap[1:]:
        path.lineTo(*at(*p))
    path.close()
    pdf.setFillColor(HexColor("#ffffff"))
    pdf.drawPath(path, stroke=0, fill=1)
    if opening["type"] == "window":
        pdf.setStrokeColor(WINDOW)
        pdf.setLineWidth(1.2)
        for off in (-t * 0.45, 0.0, t * 0.45):
            a = at(cx - ux * half + nx * off, cy - uy * half + ny * off)
            b = at(cx + ux * half + nx * off, cy + uy * half + ny * off)
            pdf.setLineWidth(0.6 if off == 0 else 1.0)
            pdf.line(*a, *b)
        return
    width = opening["width"]
    hinge = (cx - ux * half + nx * t, cy - uy * half + ny * t)
    leaf = (hinge[0] + nx * width, hinge[1] + ny * width)
    hx, hy = at(*hinge)
    pdf.setStrokeColor(DOOR)
    pdf.setLineWidth(1.0)
    pdf.line(hx, hy, *at(*leaf))
    start = math.degrees(math.atan2(ny, nx))
    extent = (math.degrees(math.atan2(uy, ux)) - start + 180) % 360 - 180
    r = width * s
    pdf.setLineWidth(0.6)
    pdf.setDash(2, 2)
    pdf.arc(hx - r, hy - r, hx + r, hy + r, startAng=start, extent=extent)
    pdf.setDash()


def _label_fits(polygon: Polygon, x: float, y: float, w: float, h: float) -> bool:
    try:
        return polygon.contains(box(x - w / 2, y - h / 2, x + w / 2, y + h / 2))
    except Exception:  # an invalid polygon: do not guess
        return False


def _draw_labels(pdf: Canvas, drawing, at, s: float, regular: str, bold: str) -> dict[str, int]:
    """Each room's name and area inside it, as large as fits (12 pt down to 7); a room
    too small for any gets a number, which the rooms table repeats."""
    keys: dict[str, int] = {}
    for room in drawing["rooms"]:
        polygon = Polygon(room["polygon"])
        spots = [tuple(room["label_point"])]
        try:
            pole = polylabel(polygon, tolerance=0.02)
            spots.append((pole.x, pole.y))
        except Exception:
            pass
        placed = False
        for name_size, area_size in LABEL_SIZES:
            w = max(
                stringWidth(room["name"], bold, name_size),
                stringWidth(room["area_text"], regular, area_size),
            )
            h = name_size + area_size + 3
            for x, y in spots:
                if _label_fits(polygon, x, y, (w + 8) / s, (h + 6) / s):
                    px, py = at(x, y)
                    pdf.setFillColor(INK)
                    pdf.setFont(bold, name_size)
                    pdf.drawCentredString(px, py + 1.5, room["name"])
                    pdf.setFillColor(MUTED)
                    pdf.setFont(regular, area_size)
                    pdf.drawCentredString(px, py - area_size - 0.5, room["area_text"])
                    placed = True
                    break
            if placed:
                break
        if not placed:
            keys[room["id"]] = len(keys) + 1
            x, y = spots[-1]
            px, py = at(x, y)
            pdf.setFillColor(INK)
            pdf.setFont(bold, 7)
            pdf.drawCentredString(px, py - 2.5, str(keys[room["id"]]))
    return keys


def _draw_scale_bar(pdf: Canvas, spec: Mapping[str, Any], regular: str) -> None:
    bar = spec["scale_bar"]
    x, y, length, segments = bar["x"], bar["y"], bar["length_pt"], bar["segments"]
    step = length / segments
    pdf.setLineWidth(0.6)
    pdf.setStrokeColor(INK)
    for i in range(segments):
        pdf.setFillColor(INK if i % 2 == 0 else HexColor("#ffffff"))
        pdf.rect(x + i * step, y, step, 4, stroke=1, fill=1)
    pdf.setFont(regular, 8)
    pdf.setFillColor(INK)
    pdf.drawCentredString(x, y + 8, "0")
    number, unit = bar["length"].split()
    pdf.drawCentredString(x + length, y + 8, number)
    pdf.drawString(x + length + 8, y, unit)
    if spec["scale"]:
        pdf.setFillColor(MUTED)
        pdf.drawString(
            x + length + 8 + stringWidth(unit, regular, 8) + 16, y, f"Scale {spec['scale']} on A4"
        )


def _draw_rooms_table(
    pdf: Canvas,
    drawing: Mapping[str, Any],
    spec: Mapping[str, Any],
    keys: Mapping[str, int],
    regular: str,
    bold: str,
    accent: HexColor,
    right: float,
) -> None:
    table = spec["rooms_table"]
    x, top, columns = table["x"], table["top"], table["columns"]
    pdf.setFont(bold, 10)
    pdf.setFillColor(accent)
    pdf.drawString(x, top, "ROOMS")
    gap = 24.0
    width = (right - x - gap * (columns - 1)) / columns
    rows = math.ceil(len(drawing["rooms"]) / columns)
    for i, room in enumerate(drawing["rooms"]):
        col, row = divmod(i, rows)
        cx, cy = x + col * (width + gap), top - 20 - row * ROW
        name = room["name"]
        if room["id"] in keys:
            name = f"{keys[room['id']]}  {name}"
        pdf.setFont(regular, 10)
        pdf.setFillColor(INK)
        pdf.drawString(cx, cy, _clip(name, regular, 10, width - 70))
        pdf.setFillColor(MUTED)
        pdf.drawRightString(cx + width, cy, room["area_text"])
        pdf.setStrokeColor(RULE)
        pdf.setLineWidth(0.5)
        pdf.line(cx, cy - 5, cx + width, cy - 5)


def _clip(text: str, font: str, size: float, width: float) -> str:
    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…"


def plan_svg(drawing: Mapping[str, Any]) -> str:
    """The floor-plan graph's SVG of the plan, sized by its container (inline HTML)."""
    plan = {
        "units": drawing["units"],
        "rooms": [{**r, "area_display": r["area_text"]} for r in drawing["rooms"]],
        "walls": drawing["walls"],
        "openings": drawing["openings"],
    }
    svg = plan_to_svg(plan)
    head, rest = svg.split(">", 1)
    head = re.sub(r'\s(?:width|height)="[^"]*"', "", head, count=2)
    return head + ' class="floor-plan" role="img" aria-label="Floor plan">' + rest
