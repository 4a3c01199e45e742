"""Synthetic walk-through captures from a known floor plan.

:func:`synthesize_capture` ray-casts the walls, floor and ceiling of a plan from camera
poses that walk through its rooms and writes the frames as a capture bundle: depth as
16-bit PNG in millimetres, a simple shaded colour image, the pose and intrinsics, and the
room each frame was taken in.  :func:`plan_truth` gives the rooms and walls the bundle
was made from, so tests can score the floor-plan graph against them.

A plan is a dict in metres, x to the right and y up on the drawing::

    {"wall_height": 2.6,
     "walls": [{"start": [0, 0], "end": [6, 0], "thickness": 0.25}, ...],  # centrelines
     "rooms": [{"label": "living", "seed": [3, 2]}, ...],  # a point inside each room
     "doors": [{"center": [1.7, 4.0], "width": 0.9, "height": 2.05}, ...],
     "windows": [{"center": [2.5, 0.0], "width": 1.6, "sill": 0.9, "head": 2.1}, ...]}

The world frame of the bundle has +y up: a plan point (x, y) at height h is the world
point (x, h, -y).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from PIL import Image
from shapely.geometry import LineString, Point, Polygon, box
from shapely.ops import unary_union

from ._format import Intrinsics, write_capture

__all__ = ["PlanTruth", "demo_plan", "plan_truth", "synthesize_capture"]

_MAX_RANGE_M = 8.0


def demo_plan() -> dict[str, Any]:
    """A small L-shaped apartment: living room, bedroom and bathroom."""
    ext, inner = 0.25, 0.12
    outline = [(0, 0), (6, 0), (6, 4), (5.5, 4), (5.5, 6), (3.5, 6), (3.5, 7), (0, 7)]
    walls = [
        {"start": list(a), "end": list(b), "thickness": ext}
        for a, b in zip(outline, outline[1:] + outline[:1], strict=True)
    ]
    walls += [
        {"start": [0, 4], "end": [5.5, 4], "thickness": inner},
        {"start": [3.5, 4], "end": [3.5, 6], "thickness": inner},
    ]
    return {
        "name": "demo-apartment",
        "wall_height": 2.6,
        "walls": walls,
        "rooms": [
            {"label": "living", "seed": [3.0, 2.0]},
            {"label": "bedroom", "seed": [1.5, 5.5]},
            {"label": "bathroom", "seed": [4.5, 5.0]},
        ],
        "doors": [
            {"center": [1.7, 4.0], "width": 0.9, "height": 2.05},
            {"center": [4.5, 4.0], "width": 0.8, "height": 2.05},
            {"center": [5.0, 0.0], "width": 1.0, "height": 2.1},
        ],
        "windows": [
            {"center": [2.4, 0.0], "width": 1.6, "sill": 0.9, "head": 2.1},
            {"center": [0.0, 5.6], "width": 1.2, "sill": 0.9, "head": 2.1},
            {"center": [6.0, 2.0], "width": 1.2, "sill": 0.9, "head": 2.1},
        ],
    }


@dataclass(frozen=True)
class PlanTruth:
    """The geometry a plan describes, for scoring: room interiors and wall solids."""

    rooms: tuple[tuple[str, Polygon], ...]
    walls: tuple[dict[str, Any], ...]
    wall_solid: Polygon
    footprint: Polygon
    openings: tuple[dict[str, Any], ...]


def _wall_geom(wall: Mapping[str, Any]) -> Polygon:
    line = LineString([tuple(wall["start"]), tuple(wall["end"])])
    return line.buffer(float(wall["thickness"]) / 2, cap_style="square", join_style="mitre")


def _nearest_wall(walls: list[Mapping[str, Any]], center: tuple[float, float]) -> int:
    point = Point(center)
    dists = [LineString([tuple(w["start"]), tuple(w["end"])]).distance(point) for w in walls]
    return int(np.argmin(dists))


def _opening_cut(wall: Mapping[str, Any], center: tuple[float, float], width: float) -> Polygon:
    a, b = np.asarray(wall["start"], float), np.asarray(wall["end"], float)
    along = (b - a) / np.linalg.norm(b - a)
    half = width / 2 * along
    line = LineString([tuple(np.asarray(center) - half), tuple(np.asarray(center) + half)])
    return line.buffer(float(wall["thickness"]) / 2 + 0.02, cap_style="flat")


def plan_truth(plan: Mapping[str, Any]) -> PlanTruth:
    """Room interiors (between wall faces), walls and openings of a plan."""
    walls = list(plan["walls"])
    solid = unary_union([_wall_geom(w) for w in walls])
    minx, miny, maxx, maxy = solid.bounds
    free = box(minx - 1, miny - 1, maxx + 1, maxy + 1).difference(solid)
    parts = list(getattr(free, "geoms", [free]))
    rooms = []
    for room in plan["rooms"]:
        seed = Point(tuple(room["seed"]))
        match = [p for p in parts if p.contains(seed)]
        if not match:
            raise ValueError(f"room {room['label']!r}: seed {room['seed']} is not in a room")
        rooms.append((str(room["label"]), Polygon(match[0].exterior)))
    footprint = unary_union([solid, *[p for _, p in rooms]])
    footprint = Polygon(footprint.exterior) if footprint.geom_type == "Polygon" else footprint
    openings = []
    for kind, items in (("door", plan.get("doors", [])), ("window", plan.get("windows", []))):
        for item in items:
            wall = _nearest_wall(walls, tuple(item["center"]))
            openings.append({"type": kind, "wall": wall, **item})
    return PlanTruth(tuple(rooms), tuple(walls), solid, footprint, tuple(openings))


def _prisms(plan: Mapping[str, Any], truth: PlanTruth) -> list[tuple[Polygon, float, float]]:
    """Solid pieces as (footprint, bottom, top): walls with their openings cut out."""
    height = float(plan.get("wall_height", 2.6))
    walls = list(truth.walls)
    cuts, pieces = [], []
    for opening in truth.openings:
        wall = walls[opening["wall"]]
        cut = _opening_cut(wall, tuple(opening["center"]), float(opening["width"]))
        cuts.append(cut)
        piece = cut.intersection(truth.wall_solid)
        if opening["type"] == "door":
            pieces.append((piece, float(opening.get("height", 2.05)), height))
        else:
            pieces.append((piece, 0.0, float(opening.get("sill", 0.9))))
            pieces.append((piece, float(opening.get("head", 2.1)), height))
    full = truth.wall_solid.difference(unary_union(cuts)) if cuts else truth.wall_solid
    return [(full, 0.0, height), *pieces]


def _edges(prisms: list[tuple[Polygon, float, float]]) -> tuple[np.ndarray, ...]:
    starts, ends, lows, highs = [], [], [], []
    for geom, low, high in prisms:
        for poly in getattr(geom, "geoms", [geom]):
            if poly.is_empty or poly.geom_type != "Polygon":
                continue
            for ring in [poly.exterior, *poly.interiors]:
                coords = np.asarray(ring.coords)
                starts.append(coords[:-1])
                ends.append(coords[1:])
                lows.append(np.full(len(coords) - 1, low))
                highs.append(np.full(len(coords) - 1, high))
    return (
        np.concatenate(starts),
        np.concatenate(ends),
        np.concatenate(lows),
        np.concatenate(highs),
    )


def _pose(x: float, y: float, height: float, heading: float, pitch: float = 0.0) -> np.ndarray:
    """Camera-to-world (OpenCV axes) at plan (x, y), looking along ``heading`` radians."""
    forward = np.array([np.cos(heading), 0.0, -np.sin(heading)])
    down = np.array([0.0, -1.0, 0.0])
    # tilt the camera down by ``pitch`` radians about its right axis
    forward, down = (
        forward * np.cos(pitch) + down * np.sin(pitch),
        down * np.cos(pitch) - forward * np.sin(pitch),
    )
    right = np.cross(down, forward)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2] = right, down, forward
    pose[:3, 3] = [x, height, -y]
    return pose


def _walk(
    truth: PlanTruth, frames_per_room: int, rng: np.random.Generator
) -> list[tuple[float, float, float, str]]:
    """Camera stations (x, y, heading, room): around each room, through doors between."""
    rooms = list(truth.rooms)
    doors = [o for o in truth.openings if o["type"] == "door"]
    links: dict[int, list[tuple[int, np.ndarray, np.ndarray]]] = {i: [] for i in range(len(rooms))}
    for door in doors:
        wall = truth.walls[door["wall"]]
        a, b = np.asarray(wall["start"], float), np.asarray(wall["end"], float)
        along = (b - a) / np.linalg.norm(b - a)
        normal = np.array([-along[1], along[0]])
        center = np.asarray(door["center"], float)
        off = float(wall["thickness"]) / 2 + 0.35
        sides = [center + normal * off, center - normal * off]
        owners = []
        for side in sides:
            inside = [i for i, (_, poly) in enumerate(rooms) if poly.contains(Point(side))]
            owners.append(inside[0] if inside else None)
        if owners[0] is not None and owners[1] is not None:
            links[owners[0]].append((owners[1], sides[0], sides[1]))
            links[owners[1]].append((owners[0], sides[1], sides[0]))

    stations: list[tuple[float, float, float, str]] = []

    def circle(index: int) -> None:
        label, poly = rooms[index]
        center = poly.centroid if poly.contains(poly.centroid) else poly.representative_point()
        minx, miny, maxx, maxy = poly.bounds
        radius = min(0.5, 0.2 * min(maxx - minx, maxy - miny))
        offset = rng.uniform(0, 2 * np.pi)
        for k in range(frames_per_room):
            angle = offset + 2 * np.pi * k / frames_per_room
            x = center.x + radius * np.cos(angle) + rng.normal(0, 0.03)
            y = center.y + radius * np.sin(angle) + rng.normal(0, 0.03)
            heading = angle + rng.normal(0, 0.05)
            stations.append((float(x), float(y), float(heading), label))

    def through(start: np.ndarray, end: np.ndarray, label_from: str, label_to: str) -> None:
        heading = float(np.arctan2(*(end - start)[::-1]))
        mid = (start + end) / 2
        stations.append((float(start[0]), float(start[1]), heading, label_from))
        stations.append((float(mid[0]), float(mid[1]), heading, label_from))
        stations.append((float(end[0]), float(end[1]), heading, label_to))

    seen: set[int] = set()

    def visit(index: int) -> None:
        seen.add(index)
        circle(index)
        for other, here, there in links[index]:
            if other in seen:
                continue
            through(here, there, rooms[index][0], rooms[other][0])
            visit(other)
            through(there, here, rooms[other][0], rooms[index][0])

    for index in range(len(rooms)):
        if index not in seen:
            visit(index)
    return stations


def _render(
    pose: np.ndarray,
    intrinsics: Intrinsics,
    edges: tuple[np.ndarray, ...],
    footprint: Polygon,
    height: float,
    rng: np.random.Generator,
    noise: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Depth in millimetres (uint16, 0 = no return) and an RGB image for one pose."""
    w, h = intrinsics.width, intrinsics.height
    u, v = np.meshgrid(np.arange(w, dtype=float), np.arange(h, dtype=float))
    rays = np.stack(
        [(u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy, np.ones_like(u)],
        axis=-1,
    ).reshape(-1, 3)
    world = rays @ pose[:3, :3].T  # per unit of camera depth
    origin = pose[:3, 3]
    ox, oy, oh = origin[0], -origin[2], origin[1]
    dx, dy, dh = world[:, 0], -world[:, 2], world[:, 1]

    starts, ends, lows, highs = edges
    ex, ey = (ends - starts)[:, 0], (ends - starts)[:, 1]
    sx, sy = starts[:, 0] - ox, starts[:, 1] - oy
    denom = dx[:, None] * ey[None, :] - dy[:, None] * ex[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (sx[None, :] * ey[None, :] - sy[None, :] * ex[None, :]) / denom
        s = (sx[None, :] * dy[:, None] - sy[None, :] * dx[:, None]) / denom
    hit_h = oh + t * dh[:, None]
    ok = (t > 1e-4) & (s >= 0) & (s <= 1) & (hit_h >= lows) & (hit_h <= highs)
    t_wall = np.where(ok, t, np.inf)
    best_edge = np.argmin(t_wall, axis=1)
    depth = t_wall[np.arange(len(dx)), best_edge]
    kind = np.where(np.isfinite(depth), 1, 0)

    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(dh < 0, -oh / dh, np.inf)
        t_ceil = np.where(dh > 0, (height - oh) / dh, np.inf)
    # the ground goes on outside (seen through doors and windows); the ceiling does not
    for t_plane, code in ((t_floor, 2), (t_ceil, 3)):
        closer = t_plane < depth
        take = closer.copy()
        if code == 3:
            px, py = ox + t_plane * dx, oy + t_plane * dy
            take[closer] = shapely.contains_xy(footprint, px[closer], py[closer])
        depth = np.where(take, t_plane, depth)
        kind = np.where(take, code, kind)

    valid = np.isfinite(depth) & (depth < _MAX_RANGE_M)
    depth = np.where(valid, depth, 0.0)
    noisy = depth + rng.normal(0.0, 1.0, depth.shape) * (noise * depth * depth + 0.001)
    depth_mm = np.where(valid, np.clip(np.round(noisy * 1000), 1, 65535), 0).astype(np.uint16)

    # colour: flat materials, Lambert-like shading from the wall normal and distance
    normal_x, normal_y = ey[best_edge], -ex[best_edge]
    norm = np.hypot(normal_x, normal_y) + 1e-9
    ray_len = np.hypot(dx, dy) + 1e-9
    facing = np.abs(normal_x * dx + normal_y * dy) / norm / ray_len
    shade = np.clip(0.55 + 0.45 * facing, 0, 1) * np.clip(1.1 - 0.05 * depth, 0.6, 1.0)
    colours = {
        0: np.array([176, 205, 230.0]),  # sky through windows
        1: np.array([226, 218, 204.0]),  # walls
        2: np.array([160, 118, 80.0]),  # wooden floor
        3: np.array([245, 245, 242.0]),  # ceiling
    }
    rgb = np.zeros((len(dx), 3))
    for code, colour in colours.items():
        sel = kind == code
        factor = shade[sel, None] if code == 1 else np.clip(1.1 - 0.05 * depth[sel, None], 0.6, 1)
        rgb[sel] = colour * (factor if code in (1, 2) else 1.0)
    return depth_mm.reshape(h, w), rgb.reshape(h, w, 3).clip(0, 255).astype(np.uint8)


def synthesize_capture(
    plan: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    frames_per_room: int = 10,
    width: int = 160,
    height: int = 120,
    hfov_deg: float = 90.0,
    camera_height: float = 1.5,
    depth_noise: float = 0.002,
    annotate_rooms: bool = True,
    images: bool = True,
) -> bytes:
    """Render a walk-through of ``plan`` (default :func:`demo_plan`) as a capture bundle.

    ``depth_noise`` is the standard deviation of the depth error per metre squared of
    range (plus 1 mm), the usual growth of stereo depth noise.
    """
    plan = demo_plan() if plan is None else plan
    rng = np.random.default_rng(seed)
    truth = plan_truth(plan)
    wall_height = float(plan.get("wall_height", 2.6))
    edges = _edges(_prisms(plan, truth))
    fx = width / 2 / np.tan(np.radians(hfov_deg) / 2)
    intrinsics = Intrinsics(fx, fx, (width - 1) / 2, (height - 1) / 2, width, height)
    frames = []
    for i, (x, y, heading, label) in enumerate(_walk(truth, frames_per_room, rng)):
        pose = _pose(x, y, camera_height + rng.normal(0, 0.02), heading, rng.normal(0, 0.03))
        depth_mm, rgb = _render(
            pose, intrinsics, edges, truth.footprint, wall_height, rng, depth_noise
        )
        frame: dict[str, Any] = {
            "pose": pose,
            "intrinsics": intrinsics,
            "depth_mm": depth_mm,
            "timestamp": round(i * 0.5, 3),
            "room": label if annotate_rooms else None,
        }
        if images:
            buf = io.BytesIO()
            Image.fromarray(rgb).save(buf, format="JPEG", quality=80)
            frame["image"] = buf.getvalue()
        frames.append(frame)
    return write_capture(
        frames,
        up=(0.0, 1.0, 0.0),
        extra={"generator": {"name": "bkbn synthetic walk-through", "plan": plan.get("name")}},
    )
