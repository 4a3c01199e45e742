"""The brochure's ``floor_plan`` parameter: the floor-plan graph's plan JSON, checked.

This project's extension of the brochure parameters (docs/api.md): a brochure given the
plan JSON exactly as the ``floor-plan`` graph returns it draws a floor-plan page.  The
local runtime's brochure graph and the emulator check it with :func:`check_floor_plan`
before a run, so a bad plan is an ``invalid_request_error`` that names the parameter
(and the part of it that is wrong) instead of a crash while rendering.

Only the standard library here: the emulator imports it without the runtime's
dependencies.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ._errors import InvalidParamsError

__all__ = [
    "MAX_PLAN_OPENINGS",
    "MAX_PLAN_POINTS",
    "MAX_PLAN_ROOMS",
    "MAX_PLAN_WALLS",
    "check_floor_plan",
]

#: Size caps: a home's plan has a few dozen rooms and walls, the floor-plan graph's
#: polygons a handful of corners (simplified to 1 cm).  Anything far larger is not a
#: home's plan and would only slow the render down.
MAX_PLAN_ROOMS = 64
MAX_PLAN_WALLS = 1024
MAX_PLAN_OPENINGS = 512
MAX_POLYGON_POINTS = 2048
MAX_PLAN_POINTS = 20_000  # every polygon corner of the plan together
MAX_COORDINATE_M = 1000.0  # plan coordinates are metres in the capture's own frame
MAX_LABEL_CHARS = 60
OPENING_TYPES = ("door", "window")
UNITS = ("metric", "imperial")


def _number(value: Any, where: str, *, low: float, high: float, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidParamsError(f"{where}: must be a number, got {_short(value)}")
    if value < low or value > high or (low_open and value == low):
        bound = f"above {low:g}" if low_open else f"at least {low:g}"
        raise InvalidParamsError(f"{where}: must be {bound} and at most {high:g}, got {value!r}")
    return float(value)


def _point(value: Any, where: str) -> list[float]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 2:
        raise InvalidParamsError(f"{where}: must be a point [x, y] in metres, got {_short(value)}")
    return [
        _number(v, f"{where}[{i}]", low=-MAX_COORDINATE_M, high=MAX_COORDINATE_M)
        for i, v in enumerate(value)
    ]


def _polygon(value: Any, where: str, budget: list[int]) -> list[list[float]]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise InvalidParamsError(f"{where}: must be a list of points [[x, y], ...]")
    if not 3 <= len(value) <= MAX_POLYGON_POINTS:
        raise InvalidParamsError(
            f"{where}: needs 3 to {MAX_POLYGON_POINTS} points, got {len(value)}"
        )
    budget[0] += len(value)
    if budget[0] > MAX_PLAN_POINTS:
        raise InvalidParamsError(
            f"{where.split('.', 1)[0]}: more than {MAX_PLAN_POINTS} polygon points in all"
        )
    return [_point(p, f"{where}[{i}]") for i, p in enumerate(value)]


def _list(plan: Mapping[str, Any], key: str, name: str, cap: int, *, required: bool) -> list:
    value = plan.get(key)
    if value is None and not required:
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise InvalidParamsError(f"{name}.{key}: must be a list")
    if len(value) > cap:
        raise InvalidParamsError(f"{name}.{key}: at most {cap} are allowed, got {len(value)}")
    return list(value)


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidParamsError(f"{where}: must be an object, got {_short(value)}")
    return value


def _text(value: Any, where: str, *, limit: int = MAX_LABEL_CHARS) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidParamsError(f"{where}: must be a non-empty string, got {_short(value)}")
    if len(value) > limit:
        raise InvalidParamsError(f"{where}: at most {limit} characters, got {len(value)}")
    return value.strip()


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_floor_plan(value: Any, name: str = "floor_plan") -> dict[str, Any]:
    """The plan, checked and copied with only what a drawing needs.

    Raises :class:`InvalidParamsError` whose message starts with ``name`` and the path
    of the wrong part (``floor_plan.rooms[1].polygon[2]: ...``).  Kept: ``units``,
    ``rooms`` (``id``, ``label``, ``polygon``, ``area_m2``, ``label_point`` when given),
    ``walls`` (``id``, ``start``, ``end``, ``thickness``, ``exterior``, ``polygon`` when
    given) and ``openings`` (``id``, ``type``, ``wall``, ``position``, ``width``).
    """
    plan = _object(value, name)
    units = plan.get("units", "metric")
    if units not in UNITS:
        raise InvalidParamsError(f"{name}.units: must be one of {', '.join(UNITS)}, got {units!r}")
    length_unit = plan.get("length_unit", "m")
    if length_unit != "m":
        raise InvalidParamsError(
            f"{name}.length_unit: plans are in metres ('m'), got {length_unit!r}"
        )
    budget = [0]
    rooms = []
    raw_rooms = _list(plan, "rooms", name, MAX_PLAN_ROOMS, required=True)
    if not raw_rooms:
        raise InvalidParamsError(f"{name}.rooms: the plan has no rooms")
    for i, raw in enumerate(raw_rooms):
        where = f"{name}.rooms[{i}]"
        room = _object(raw, where)
        checked: dict[str, Any] = {
            "id": str(room.get("id") or f"room-{i + 1}")[:MAX_LABEL_CHARS],
            "label": _text(room.get("label"), f"{where}.label"),
            "polygon": _polygon(room.get("polygon"), f"{where}.polygon", budget),
            "area_m2": _number(room.get("area_m2"), f"{where}.area_m2", low=0, high=1e5),
        }
        if room.get("label_point") is not None:
            checked["label_point"] = _point(room["label_point"], f"{where}.label_point")
        rooms.append(checked)
    walls = []
    for i, raw in enumerate(_list(plan, "walls", name, MAX_PLAN_WALLS, required=True)):
        where = f"{name}.walls[{i}]"
        wall = _object(raw, where)
        checked = {
            "id": str(wall.get("id") or f"wall-{i + 1}")[:MAX_LABEL_CHARS],
            "start": _point(wall.get("start"), f"{where}.start"),
            "end": _point(wall.get("end"), f"{where}.end"),
            "thickness": _number(
                wall.get("thickness"), f"{where}.thickness", low=0, high=2, low_open=True
            ),
            "exterior": bool(wall.get("exterior", False)),
        }
        if wall.get("polygon") is not None:
            checked["polygon"] = _polygon(wall["polygon"], f"{where}.polygon", budget)
        walls.append(checked)
    openings = []
    for i, raw in enumerate(_list(plan, "openings", name, MAX_PLAN_OPENINGS, required=False)):
        where = f"{name}.openings[{i}]"
        opening = _object(raw, where)
        kind = opening.get("type")
        if kind not in OPENING_TYPES:
            raise InvalidParamsError(
                f"{where}.type: must be one of {', '.join(OPENING_TYPES)}, got {_short(kind)}"
            )
        wall = opening.get("wall")
        if isinstance(wall, bool) or not isinstance(wall, int) or not 0 <= wall < len(walls):
            raise InvalidParamsError(
                f"{where}.wall: must be the index of one of the plan's {len(walls)} walls, "
                f"got {_short(wall)}"
            )
        openings.append(
            {
                "id": str(opening.get("id") or f"{kind}-{i + 1}")[:MAX_LABEL_CHARS],
                "type": kind,
                "wall": wall,
                "position": _point(opening.get("position"), f"{where}.position"),
                "width": _number(
                    opening.get("width"), f"{where}.width", low=0, high=20, low_open=True
                ),
            }
        )
    return {"units": units, "rooms": rooms, "walls": walls, "openings": openings}
