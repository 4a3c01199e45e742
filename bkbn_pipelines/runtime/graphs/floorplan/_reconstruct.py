"""From depth frames to walls, rooms and openings.

The steps, each a function the graph's nodes call in turn:

1. :func:`backproject` — depth pixels to 3D points in the world frame (pose and
   intrinsics), then to plan coordinates (two axes across the ``up`` vector) and a
   height above the floor.
2. :func:`floor_slice` — the points in a height band above furniture and below door
   heads, turned to the Manhattan frame (the rotation that lines up most points on
   a 2 cm grid, searched over 0 to 90°).
3. :func:`detect_walls` — wall *faces* are rows of the occupancy grid with long runs of
   occupied cells; each face knows which side the cameras saw it from.  A face seen
   from below and one seen from above a few centimetres apart are the two faces of an
   inner wall (centre and thickness measured); a face seen from one side only is an
   outer wall, drawn with ``exterior_thickness`` beyond it.  Wall ends are extended to
   meet the perpendicular walls they stop short of.
4. :func:`detect_rooms` — free space enclosed by the wall solids (door gaps are closed,
   because a wall spans its face's gaps), one polygon per region of at least 1 m².
5. :func:`label_rooms` — the ``room`` annotations of the frames taken in each room;
   else by size.
6. :func:`detect_openings` — gaps in wall faces: a window where there is wall below
   the gap (a sill), a door where the camera path goes through the gap or the floor
   is seen through it.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from shapely.geometry import LineString, Point, Polygon, box
from shapely.ops import unary_union

from ...._errors import CaptureBundleError
from ...capture import CaptureBundle

__all__ = [
    "Cloud",
    "Opening",
    "Room",
    "Slice",
    "Wall",
    "backproject",
    "detect_openings",
    "detect_rooms",
    "detect_walls",
    "floor_slice",
    "label_rooms",
]

logger = logging.getLogger("bkbn_pipelines.runtime.floorplan")

#: Height of the camera above the floor assumed when the floor is not in view.
ASSUMED_CAMERA_HEIGHT = 1.5


@dataclass
class Cloud:
    """All measured points in plan coordinates, with heights above the floor."""

    xy: np.ndarray
    h: np.ndarray
    frame: np.ndarray
    cams: np.ndarray
    cam_h: np.ndarray
    floor_height: float
    floor_source: str


@dataclass
class Slice:
    """Band points in the Manhattan frame (``angle`` turns plan axes onto it)."""

    angle: float
    q: np.ndarray
    h: np.ndarray
    band: tuple[float, float]
    frame: np.ndarray
    cams: np.ndarray
    low_q: np.ndarray
    low_h: np.ndarray

    def to_plan(self, q: np.ndarray) -> np.ndarray:
        c, s = math.cos(self.angle), math.sin(self.angle)
        q = np.atleast_2d(q)
        return np.stack([q[:, 0] * c - q[:, 1] * s, q[:, 0] * s + q[:, 1] * c], axis=1)


@dataclass
class Face:
    axis: int  # 0: along x (y = c), 1: along y (x = c)
    c: float
    side: int  # +1: seen from larger c, -1: from smaller c
    pieces: list[tuple[float, float]]
    points: int

    @property
    def start(self) -> float:
        return self.pieces[0][0]

    @property
    def end(self) -> float:
        return self.pieces[-1][1]


@dataclass
class Wall:
    """A wall in the Manhattan frame: centre line ``c`` on ``axis`` from ``a`` to ``b``."""

    axis: int
    c: float
    thickness: float
    a: float
    b: float
    exterior: bool
    faces: list[Face] = field(default_factory=list)

    def solid(self) -> Polygon:
        half = self.thickness / 2
        if self.axis == 0:
            return box(self.a, self.c - half, self.b, self.c + half)
        return box(self.c - half, self.a, self.c + half, self.b)

    def point(self, along: float, across: float = 0.0) -> tuple[float, float]:
        c = self.c + across
        return (along, c) if self.axis == 0 else (c, along)


@dataclass
class Room:
    polygon: Polygon  # plan frame
    label: str = "room"
    label_source: str = "size"


@dataclass
class Opening:
    type: str  # door | window
    wall: int
    center: tuple[float, float]  # plan frame
    width: float
    traversed: bool = False


def _plan_basis(up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    e1 = ref - up * float(ref @ up)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(up, e1)


def backproject(
    bundle: CaptureBundle,
    *,
    max_points: int = 1_500_000,
    max_range: float = 8.0,
    camera_height: float = ASSUMED_CAMERA_HEIGHT,
    progress: Callable[[int, int], None] | None = None,
) -> Cloud:
    """Depth to points; plan coordinates and heights above the (found or assumed) floor."""
    frames = [f for f in bundle.frames if f.depth_m is not None]
    if not frames:
        raise CaptureBundleError(
            "capture bundle: no frame has depth; floor-plan needs depth maps (16-bit PNG or "
            "Z16 in millimetres) with the poses (see docs/capture-bundle.md)"
        )
    up = bundle.up
    e1, e2 = _plan_basis(up)
    chunks, heights, owners = [], [], []
    max_points_per_frame = max(5000, max_points // len(frames))
    for n, frame in enumerate(frames):
        depth = frame.depth_m
        rows, cols = depth.shape
        k = frame.intrinsics.scaled_to(cols, rows)
        stride = max(1, math.ceil(math.sqrt(rows * cols / max_points_per_frame)))
        v, u = np.mgrid[0:rows:stride, 0:cols:stride]
        z = depth[v, u].astype(np.float64)
        ok = (z > 0.05) & (z < max_range)
        u, v, z = u[ok], v[ok], z[ok]
        cam = np.stack([(u - k.cx) / k.fx * z, (v - k.cy) / k.fy * z, z], axis=1)
        world = cam @ frame.pose[:3, :3].T + frame.pose[:3, 3]
        chunks.append(np.stack([world @ e1, world @ e2], axis=1))
        heights.append(world @ up)
        owners.append(np.full(len(z), n, dtype=np.int32))
        if progress is not None and (n % 8 == 7 or n == len(frames) - 1):
            progress(n + 1, len(frames))
    xy = np.concatenate(chunks)
    hh = np.concatenate(heights)
    if len(xy) < 100:
        raise CaptureBundleError(
            f"capture bundle: only {len(xy)} depth measurements in range; the depth maps "
            "are empty or in the wrong unit (depth_scale, see docs/capture-bundle.md)"
        )
    positions = np.stack([f.position for f in frames])
    cams = np.stack([positions @ e1, positions @ e2], axis=1)
    cam_h = positions @ up

    if bundle.floor_height is not None:
        floor, source = float(bundle.floor_height), "capture.json"
    else:
        floor, source = _find_floor(hh, float(np.median(cam_h)), camera_height)
    return Cloud(xy, hh - floor, np.concatenate(owners), cams, cam_h - floor, floor, source)


def _find_floor(hh: np.ndarray, cam: float, camera_height: float) -> tuple[float, str]:
    """The lowest dense horizontal level at least 0.8 m below the cameras, if seen."""
    low = hh[hh < cam - 0.8]
    if len(low) >= max(200, 0.02 * len(hh)):
        bins = np.arange(low.min(), low.max() + 0.02, 0.02)
        if len(bins) >= 2:
            counts, edges = np.histogram(low, bins=bins)
            peak = int(np.argmax(counts))
            if counts[peak] >= max(100, 0.01 * len(hh)):
                centre = (edges[peak] + edges[peak + 1]) / 2
                near = low[np.abs(low - centre) < 0.03]
                return float(np.median(near)), "measured"
    return cam - camera_height, "assumed"


def _manhattan_angle(xy: np.ndarray, res: float = 0.02) -> float:
    """The rotation (0 to 90°) under which the points pile up most on axis-parallel lines."""
    rng = np.random.default_rng(0)
    pts = xy if len(xy) <= 60000 else xy[rng.choice(len(xy), 60000, replace=False)]
    pts = pts - pts.mean(axis=0)

    def score(deg: float) -> float:
        c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
        total = 0.0
        for coord in (pts[:, 0] * c + pts[:, 1] * s, -pts[:, 0] * s + pts[:, 1] * c):
            counts = np.bincount(((coord - coord.min()) / res).astype(np.int64))
            total += float((counts.astype(np.float64) ** 2).sum())
        return total

    coarse = np.arange(0.0, 90.0, 1.0)
    best = float(coarse[int(np.argmax([score(d) for d in coarse]))])
    fine = best + np.arange(-1.0, 1.0001, 0.05)
    best = float(fine[int(np.argmax([score(d) for d in fine]))])
    return math.radians(best % 90.0)


def floor_slice(cloud: Cloud, *, band: tuple[float, float] = (1.0, 1.9)) -> Slice:
    """Points between ``band`` heights above the floor, in the Manhattan frame."""
    sel = (cloud.h >= band[0]) & (cloud.h <= band[1])
    if sel.sum() < 50:
        raise CaptureBundleError(
            f"capture bundle: only {int(sel.sum())} points between {band[0]} and {band[1]} m "
            "above the floor; the walls are not in view (or the up vector is wrong)"
        )
    angle = _manhattan_angle(cloud.xy[sel])
    c, s = math.cos(angle), math.sin(angle)

    def local(xy: np.ndarray) -> np.ndarray:
        return np.stack([xy[:, 0] * c + xy[:, 1] * s, -xy[:, 0] * s + xy[:, 1] * c], axis=1)

    low = (cloud.h > 0.15) & (cloud.h < band[0] - 0.1)
    floorish = cloud.h <= 0.15
    return Slice(
        angle=angle,
        q=local(cloud.xy[sel]),
        h=cloud.h[sel],
        band=band,
        frame=cloud.frame[sel],
        cams=local(cloud.cams),
        low_q=local(cloud.xy[low | floorish]),
        low_h=cloud.h[low | floorish],
    )


def _runs(values: np.ndarray, gap: float, min_len: float, min_pts: int) -> list[tuple]:
    order = np.sort(values)
    breaks = np.flatnonzero(np.diff(order) > gap)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(order) - 1]])
    return [
        (float(order[i]), float(order[j]), int(j - i + 1))
        for i, j in zip(starts, ends, strict=True)
        if order[j] - order[i] >= min_len and j - i + 1 >= min_pts
    ]


def _faces(
    sl: Slice, axis: int, *, res: float, min_len: float, run_gap: float, merge_gap: float
) -> list[Face]:
    """Faces along ``axis``, strongest first; each takes its points from the weaker ones."""
    perp, along = sl.q[:, 1 - axis], sl.q[:, axis]
    order = np.argsort(perp)
    perp, along, owners_all = perp[order], along[order], sl.frame[order]
    level = np.clip(((sl.h[order] - sl.band[0]) / (sl.band[1] - sl.band[0]) * 5), 0, 4)
    level = level.astype(np.int64)
    cam_perp = sl.cams[:, 1 - axis]
    p0, a0 = perp[0], along.min()
    pi = ((perp - p0) / res).astype(np.int64)
    ai = ((along - a0) / res).astype(np.int64)
    counts = np.zeros((pi.max() + 1, ai.max() + 1), dtype=np.int32)
    np.add.at(counts, (pi, ai), 1)
    cells = (counts > 0).sum(axis=1).astype(float)
    min_cells = 0.5 * min_len / res
    taken = np.zeros(len(perp), dtype=bool)  # points already given to a stronger face

    def window(centre: float, half: float) -> np.ndarray:
        lo, hi = np.searchsorted(perp, [centre - half, centre + half])
        idx = np.arange(int(lo), int(hi))
        return idx[~taken[idx]]

    def take(idx: np.ndarray) -> None:
        taken[idx] = True
        np.subtract.at(counts, (pi[idx], ai[idx]), 1)
        rows = np.unique(pi[idx])
        cells[rows] = (counts[rows] > 0).sum(axis=1)

    faces: list[Face] = []
    for _ in range(len(cells) * 2):
        profile = np.convolve(cells, [0.25, 0.5, 0.25], mode="same")
        i = int(np.argmax(profile))
        if profile[i] < min_cells:
            break
        row = window(p0 + (i + 0.5) * res, res / 2 + 1e-9)
        idx = window(p0 + (i + 0.5) * res, 0.04)
        if len(idx) >= 20:
            c = float(np.median(perp[idx]))
            idx = window(c, 0.03)
        if len(idx) < 20:
            take(row)
            continue
        c = float(np.median(perp[idx]))
        vals, owners = along[idx], owners_all[idx]
        found = False
        wide = window(c, 0.07)  # the noise tail of this face goes with it
        for start, end, count in _runs(vals, run_gap, min_len, 20):
            inside = (vals >= start) & (vals <= end)
            if (np.bincount(level[idx[inside]], minlength=5) >= 3).sum() < 4:
                continue  # not tall enough for a wall: furniture, appliances
            side_votes = np.sign(cam_perp[owners[inside]] - c)
            side = 1 if side_votes.sum() >= 0 else -1
            pieces = _pieces(vals[inside], run_gap)
            if _grazing(sl, axis, perp[idx[inside]], vals[inside], owners[inside]):
                continue
            if _seen_behind(sl, axis, perp, along, owners_all, owners[inside], c, side, pieces):
                continue  # the same cameras saw through it: furniture in front of a wall
            faces.append(Face(axis, c, side, pieces, count))
            take(idx[inside])
            tail = wide[(along[wide] >= start) & (along[wide] <= end)]
            take(tail[~taken[tail]])
            found = True
        if not found:
            take(row if len(row) else idx)
    return _merge_collinear(faces, merge_gap)


def _seen_behind(
    sl: Slice,
    axis: int,
    perp: np.ndarray,
    along: np.ndarray,
    owners: np.ndarray,
    face_owners: np.ndarray,
    c: float,
    side: int,
    pieces: list[tuple[float, float]],
) -> bool:
    """Whether the cameras that saw a face also saw band points *through* it.

    A wall is opaque from the floor to the ceiling; a counter or a cupboard in front of
    a wall is not, and the same frames see the wall beyond it.  ``perp`` is sorted.
    """
    frames = np.unique(face_owners)
    if side > 0:
        stop = int(np.searchsorted(perp, c - 0.15))
        cand = np.arange(0, stop)
    else:
        cand = np.arange(int(np.searchsorted(perp, c + 0.15)), len(perp))
    step = len(cand) // 60000 + 1
    cand = cand[::step]
    cand = cand[np.isin(owners[cand], frames)]
    if not len(cand):
        return False
    cam = sl.cams[owners[cand]]
    o_perp, o_al = cam[:, 1 - axis], cam[:, axis]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = (c - o_perp) / (perp[cand] - o_perp)
    cross = o_al + (along[cand] - o_al) * frac
    through = np.zeros(len(cand), dtype=bool)
    for a, b in pieces:
        through |= (cross > a + 0.05) & (cross < b - 0.05)
    return bool(through.sum() * step > 0.3 * len(face_owners))


def _grazing(sl: Slice, axis: int, perp: np.ndarray, along: np.ndarray, owners: np.ndarray) -> bool:
    """Seen only edge-on (the sides of objects along the view): not a wall."""
    cam = sl.cams[owners]
    d_perp, d_al = np.abs(perp - cam[:, 1 - axis]), np.abs(along - cam[:, axis])
    cosine = d_perp / np.maximum(np.hypot(d_perp, d_al), 1e-9)
    return bool(np.median(cosine) < 0.45)


def _pieces(values: np.ndarray, gap: float) -> list[tuple[float, float]]:
    order = np.sort(values)
    breaks = np.flatnonzero(np.diff(order) > gap)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(order) - 1]])
    return [(float(order[i]), float(order[j])) for i, j in zip(starts, ends, strict=True)]


def _merge_collinear(faces: list[Face], merge_gap: float) -> list[Face]:
    """Join runs of one face line whose gaps are short enough to be doors or windows."""
    faces = [f for f in faces if not _is_shadow(f, faces)]
    merged: list[Face] = []
    for face in sorted(faces, key=lambda f: (f.side, f.c, f.start)):
        for last in merged:
            if (
                last.side == face.side
                and abs(last.c - face.c) < 0.03
                and face.start - last.end <= merge_gap
                and last.start - face.end <= merge_gap
            ):
                total = last.points + face.points
                last.c = (last.c * last.points + face.c * face.points) / total
                last.pieces = sorted(last.pieces + face.pieces)
                last.points = total
                break
        else:
            merged.append(Face(face.axis, face.c, face.side, list(face.pieces), face.points))
    return merged


def _is_shadow(face: Face, faces: list[Face]) -> bool:
    """A weaker parallel copy of a face a few centimetres off: depth noise."""
    return any(
        other is not face
        and other.side == face.side
        and abs(other.c - face.c) < 0.15
        and (other.points, other.c) > (face.points, face.c)
        and _overlap(face, other) > 0.5 * (face.end - face.start)
        for other in faces
    )


def _overlap(a: Face, b: Face) -> float:
    return min(a.end, b.end) - max(a.start, b.start)


def detect_walls(
    sl: Slice,
    *,
    res: float = 0.02,
    min_len: float = 0.3,
    max_thickness: float = 0.4,
    exterior_thickness: float = 0.2,
    run_gap: float = 0.2,
    merge_gap: float = 2.0,
) -> list[Wall]:
    """Wall faces from the band points; paired into walls; ends joined at corners."""
    walls: list[Wall] = []
    for axis in (0, 1):
        faces = _faces(sl, axis, res=res, min_len=min_len, run_gap=run_gap, merge_gap=merge_gap)
        lower = [f for f in faces if f.side < 0]  # seen from below: the wall lies above it
        upper = [f for f in faces if f.side > 0]
        used: set[int] = set()
        for face in sorted(lower, key=lambda f: f.c):
            partners = [
                (j, other)
                for j, other in enumerate(upper)
                if 0.03 <= other.c - face.c <= max_thickness
                and _overlap(face, other) >= min(0.3, 0.5 * (other.end - other.start))
            ]
            if partners:
                nearest = min(other.c for _, other in partners)
                group = [(j, o) for j, o in partners if o.c - nearest < 0.03]
                used.update(j for j, _ in group)
                others = [o for _, o in group]
                top = float(np.mean([o.c for o in others]))
                start = min(face.start, *(o.start for o in others))
                end = max(face.end, *(o.end for o in others))
                walls.append(
                    Wall(axis, (face.c + top) / 2, top - face.c, start, end, False, [face, *others])
                )
            else:
                walls.append(
                    Wall(
                        axis,
                        face.c + exterior_thickness / 2,
                        exterior_thickness,
                        face.start,
                        face.end,
                        True,
                        [face],
                    )
                )
        for j, face in enumerate(upper):
            if j not in used:
                walls.append(
                    Wall(
                        axis,
                        face.c - exterior_thickness / 2,
                        exterior_thickness,
                        face.start,
                        face.end,
                        True,
                        [face],
                    )
                )
    walls = _drop_jambs(_merge_walls(walls))
    _join_corners(walls)
    return walls


def _merge_walls(walls: list[Wall]) -> list[Wall]:
    """One wall where several face pairs describe the same one."""
    merged: list[Wall] = []
    for wall in sorted(walls, key=lambda w: (w.axis, w.c, w.a)):
        for other in merged:
            if (
                other.axis == wall.axis
                and other.exterior == wall.exterior
                and abs(other.c - wall.c) < 0.03
                and min(other.b, wall.b) - max(other.a, wall.a) > -0.05
            ):
                other.a, other.b = min(other.a, wall.a), max(other.b, wall.b)
                other.faces.extend(f for f in wall.faces if f not in other.faces)
                break
        else:
            merged.append(wall)
    return merged


def _drop_jambs(walls: list[Wall], max_len: float = 0.5) -> list[Wall]:
    """Short one-sided faces inside a perpendicular wall are the sides of its openings."""
    keep = []
    for wall in walls:
        jamb = (
            wall.exterior
            and wall.b - wall.a < max_len
            and any(
                p.axis != wall.axis
                and p.a <= wall.c <= p.b
                and p.c - p.thickness / 2 - 0.25 <= wall.a
                and wall.b <= p.c + p.thickness / 2 + 0.25
                for p in walls
            )
        )
        if not jamb:
            keep.append(wall)
    return keep


def _join_corners(walls: list[Wall], reach: float = 0.6) -> None:
    """Extend each wall end to the far side of a perpendicular wall just beyond it."""
    for wall in walls:
        crossing = [
            p
            for p in walls
            if p.axis != wall.axis
            and p.a - (wall.thickness / 2 + reach) <= wall.c <= p.b + (wall.thickness / 2 + reach)
        ]
        for end in ("a", "b"):
            tip = getattr(wall, end)
            sign = -1 if end == "a" else 1
            best = None
            for p in crossing:
                ahead = (p.c - tip) * sign
                if -p.thickness <= ahead <= reach and (best is None or ahead < best[0]):
                    best = (ahead, p)
            if best is not None:
                p = best[1]
                setattr(wall, end, p.c + sign * p.thickness / 2)
    for wall in walls:  # the perpendicular walls reach back to this one's far side too
        wall.a, wall.b = min(wall.a, wall.b), max(wall.a, wall.b)


def detect_rooms(sl: Slice, walls: list[Wall], *, min_area: float = 1.0) -> list[Room]:
    """Regions of free space enclosed by the wall solids, in the plan frame."""
    if not walls:
        return []
    solid = unary_union([w.solid() for w in walls])
    minx, miny, maxx, maxy = solid.bounds
    frame = box(minx - 1, miny - 1, maxx + 1, maxy + 1)
    free = frame.difference(solid)
    rooms = []
    for part in getattr(free, "geoms", [free]):
        if part.geom_type != "Polygon" or part.area < min_area:
            continue
        bx = part.bounds
        if bx[0] <= minx - 0.5 or bx[1] <= miny - 0.5 or bx[2] >= maxx + 0.5 or bx[3] >= maxy + 0.5:
            continue  # the outside
        ring = np.asarray(Polygon(part.exterior).simplify(0.01).exterior.coords)
        rooms.append(Room(Polygon(sl.to_plan(ring))))
    rooms.sort(key=lambda r: -r.polygon.area)
    return rooms


def label_rooms(rooms: list[Room], bundle: CaptureBundle, cloud: Cloud) -> None:
    """Label from the frames' ``room`` annotations; else living/bedroom/bathroom by size."""
    frames = [f for f in bundle.frames if f.depth_m is not None]
    for room in rooms:
        votes = Counter(
            frame.room
            for frame, cam in zip(frames, cloud.cams, strict=True)
            if frame.room and room.polygon.contains(Point(*cam))
        )
        if votes:
            room.label, room.label_source = votes.most_common(1)[0][0], "frames"
    unlabeled = [r for r in rooms if r.label_source != "frames"]
    for i, room in enumerate(sorted(unlabeled, key=lambda r: -r.polygon.area)):
        area = room.polygon.area
        if i == 0 and area >= 12 and not any(r.label == "living" for r in rooms):
            room.label = "living"
        elif area < 5:
            room.label = "bathroom"
        else:
            room.label = "bedroom"
        room.label_source = "size"


def detect_openings(
    sl: Slice, walls: list[Wall], *, min_width: float = 0.5, max_width: float = 2.5
) -> list[Opening]:
    """Gaps in the wall faces, told apart as doors and windows (see the module text)."""
    path = LineString(sl.cams) if len(sl.cams) >= 2 else None
    openings: list[Opening] = []
    for index, wall in enumerate(walls):
        pieces = sorted(p for face in wall.faces for p in face.pieces)
        covered: list[list[float]] = []
        for a, b in pieces:
            if covered and a <= covered[-1][1] + 0.05:
                covered[-1][1] = max(covered[-1][1], b)
            else:
                covered.append([a, b])
        for (_, gap_a), (gap_b, _) in itertools.pairwise(covered):
            width = gap_b - gap_a
            if not min_width <= width <= max_width:
                continue
            mid = (gap_a + gap_b) / 2
            segment = LineString([wall.point(gap_a + 0.05), wall.point(gap_b - 0.05)])
            across = wall.thickness / 2 + 0.1
            perp, along = sl.low_q[:, 1 - wall.axis], sl.low_q[:, wall.axis]
            in_gap = (along > gap_a + 0.05) & (along < gap_b - 0.05)
            at_wall = in_gap & (np.abs(perp - wall.c) <= across) & (sl.low_h > 0.3)
            traversed = path is not None and path.intersects(segment)
            beyond = in_gap & (np.abs(perp - wall.c) > across) & (sl.low_h <= 0.15)
            if at_wall.sum() >= 10 and not traversed:
                kind = "window"
            elif traversed or _seen_through(sl, wall, beyond):
                kind = "door"
            else:
                continue  # a gap nobody saw through: occlusion, not an opening
            centre = sl.to_plan(np.array(wall.point(mid)))[0]
            openings.append(Opening(kind, index, (float(centre[0]), float(centre[1])), width))
            openings[-1].traversed = bool(traversed)
    return openings


def _seen_through(sl: Slice, wall: Wall, beyond: np.ndarray) -> bool:
    """Floor seen on the far side of the gap, from a camera on the near side."""
    if beyond.sum() < 10:
        return False
    perp = sl.low_q[beyond, 1 - wall.axis]
    cam_side = np.sign(sl.cams[:, 1 - wall.axis] - wall.c)
    far = np.sign(perp - wall.c)
    return bool(np.any(far[:, None] != cam_side[None, :]))


def to_plan_walls(sl: Slice, walls: list[Wall]) -> list[dict[str, Any]]:
    """Walls as plan-frame segments (centre line) with thickness."""
    out = []
    for wall in walls:
        ends = sl.to_plan(np.array([wall.point(wall.a), wall.point(wall.b)]))
        out.append(
            {
                "start": ends[0],
                "end": ends[1],
                "thickness": wall.thickness,
                "exterior": wall.exterior,
                "polygon": np.asarray(wall.solid().exterior.coords),
            }
        )
    for item in out:
        item["polygon"] = sl.to_plan(item["polygon"])
    return out
