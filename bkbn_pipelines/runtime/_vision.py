"""Classical image analysis for the image graphs: edges, room layout, object masks.

All of it is deterministic numpy (and Pillow filters):

- :func:`canny` finds thin edges (Gaussian smoothing, Sobel gradients, non-maximum
  suppression, hysteresis between two thresholds set from the gradient's own
  distribution).
- :func:`heuristic_layout` splits an interior photo into ceiling, wall and floor
  bands and finds windows.  The wall/floor line is the row of strongest horizontal
  edges in the lower half (where skirting boards and the floor's far edge are); the
  ceiling line the same in the top third; windows are the brightest regions of the
  wall band.  It assumes a level camera at about eye height, as listing photos are.
- :func:`clutter_mask` marks objects for ``declutter``: blobs of high edge density
  in the lower half of the photo (loose things on the floor and furniture are rich in
  edges, bare floor and walls are not).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

__all__ = [
    "Layout",
    "canny",
    "clutter_mask",
    "dilate",
    "feather",
    "heuristic_layout",
    "layout_from_labels",
]

CEILING, WALL, FLOOR, OPENING, OBJECT = 0, 1, 2, 3, 4

#: Gradient magnitude (Sobel of the smoothed image, in units of full scale) that is
#: always a strong edge: what a 15 % step in brightness gives.
ALWAYS_AN_EDGE = 0.4
CLASS_NAMES = {
    CEILING: "ceiling",
    WALL: "wall",
    FLOOR: "floor",
    OPENING: "opening",
    OBJECT: "object",
}


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``a`` moved by (dy, dx) with edge replication: out[y, x] = a[y - dy, x - dx]."""
    h, w = a.shape
    padded = np.pad(a, ((abs(dy), abs(dy)), (abs(dx), abs(dx))), mode="edge")
    return padded[abs(dy) - dy : abs(dy) - dy + h, abs(dx) - dx : abs(dx) - dx + w]


def _gaussian(a: np.ndarray, sigma: float) -> np.ndarray:
    radius = max(1, int(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    out = sum(k * _shift(a, 0, i - radius) for i, k in enumerate(kernel))
    return sum(k * _shift(out, i - radius, 0) for i, k in enumerate(kernel))


def canny(gray: np.ndarray, sigma: float = 1.4, high_pct: float = 90.0) -> np.ndarray:
    """Boolean edge map of a float greyscale image.

    The high threshold is the ``high_pct`` percentile of the gradient magnitude at
    local maxima (at most :data:`ALWAYS_AN_EDGE`), the low threshold half of it.
    """
    g = _gaussian(gray.astype(np.float32), sigma)
    gx = (_shift(g, 0, -1) - _shift(g, 0, 1)) * 2 + (
        _shift(g, -1, -1) - _shift(g, -1, 1) + _shift(g, 1, -1) - _shift(g, 1, 1)
    )
    gy = (_shift(g, -1, 0) - _shift(g, 1, 0)) * 2 + (
        _shift(g, -1, -1) - _shift(g, 1, -1) + _shift(g, -1, 1) - _shift(g, 1, 1)
    )
    magnitude = np.hypot(gx, gy)
    angle = (np.rad2deg(np.arctan2(gy, gx)) + 180.0) % 180.0
    sector = ((angle + 22.5) // 45).astype(int) % 4  # 0: horizontal gradient, 2: vertical
    offsets = {0: (0, 1), 1: (1, 1), 2: (1, 0), 3: (1, -1)}
    keep = np.zeros_like(magnitude, dtype=bool)
    for s, (dy, dx) in offsets.items():
        # Neighbours along the gradient direction (sector 1 is +45 degrees in image rows).
        ahead, behind = _shift(magnitude, dy, -dx), _shift(magnitude, -dy, dx)
        keep |= (sector == s) & (magnitude >= ahead) & (magnitude >= behind)
    candidates = magnitude[keep & (magnitude > 1e-3)]
    if candidates.size == 0:
        return np.zeros_like(keep)
    # A step of about 15 % contrast is always an edge, however busy the photo is.
    high = min(float(np.percentile(candidates, high_pct)), ALWAYS_AN_EDGE)
    low = high / 2
    strong = keep & (magnitude >= high)
    weak = keep & (magnitude >= low)
    for _ in range(max(gray.shape)):
        grown = weak & _dilate3(strong)
        if np.array_equal(grown, strong):
            break
        strong = grown
    return strong


def _dilate3(a: np.ndarray) -> np.ndarray:
    out = a.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy or dx:
                out |= _shift(a, dy, dx)
    return out


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a boolean mask by ``radius`` pixels (a square structuring element)."""
    if radius <= 0:
        return mask.copy()
    image = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(image.filter(ImageFilter.MaxFilter(2 * radius + 1))) > 127


def feather(mask: np.ndarray, radius: float) -> np.ndarray:
    """A soft float mask in [0, 1]: the boolean mask blurred by ``radius`` pixels."""
    image = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(image.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32) / 255.0


def _box_mean(a: np.ndarray, radius: int) -> np.ndarray:
    """Mean of ``a`` over a (2r+1)^2 box, by an integral image."""
    padded = np.pad(a.astype(np.float64), radius + 1, mode="edge")
    integral = padded.cumsum(0).cumsum(1)
    size = 2 * radius + 1
    total = (
        integral[size:, size:]
        - integral[:-size, size:]
        - integral[size:, :-size]
        + integral[:-size, :-size]
    )
    h, w = a.shape
    return (total[:h, :w] / size**2).astype(np.float32)


@dataclass(frozen=True)
class Layout:
    """Per-pixel classes (CEILING, WALL, FLOOR, OPENING, OBJECT) and how they were found."""

    classes: np.ndarray
    edges: np.ndarray
    ceiling_row: int
    floor_row: int
    method: str  # "heuristic" or "model"

    def share(self, cls: int) -> float:
        return float((self.classes == cls).mean())


def _strongest_row(edges_h: np.ndarray, start: int, stop: int, default: int) -> int:
    rows = edges_h[start:stop].mean(axis=1)
    if rows.size == 0 or rows.max() <= 0:
        return default
    smooth = np.convolve(rows, np.ones(5) / 5, mode="same")
    best = np.flatnonzero(smooth >= smooth.max() - 1e-9)
    return start + int(best[len(best) // 2])  # the middle of a plateau of equal rows


def heuristic_layout(rgb: np.ndarray) -> Layout:
    """Ceiling, wall, floor and windows of an interior photo (float RGB in [0, 1])."""
    h, w, _ = rgb.shape
    gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    edges = canny(gray)
    g = _gaussian(gray, 1.4)
    gy = np.abs(_shift(g, -1, 0) - _shift(g, 1, 0))
    gx = np.abs(_shift(g, 0, -1) - _shift(g, 0, 1))
    horizontal = edges & (gy > gx)
    floor_row = _strongest_row(horizontal, int(0.5 * h), int(0.85 * h), int(0.65 * h))
    ceiling_row = _strongest_row(horizontal, int(0.03 * h), int(0.3 * h), int(0.12 * h))
    classes = np.full((h, w), WALL, dtype=np.uint8)
    classes[:ceiling_row] = CEILING
    classes[floor_row:] = FLOOR
    bright = gray >= max(0.85, float(np.percentile(gray, 95)))
    bright = dilate(bright, max(1, round(0.01 * max(h, w))))
    classes[bright & (classes == WALL)] = OPENING
    return Layout(classes, edges, ceiling_row, floor_row, "heuristic")


#: Words in a segmentation model's label names, by class of :class:`Layout`.
_LABEL_WORDS = {
    CEILING: ("ceiling",),
    FLOOR: ("floor", "rug", "carpet", "ground"),
    WALL: ("wall", "column", "pillar", "stairs", "stairway", "railing", "fireplace"),
    OPENING: ("window", "door", "curtain", "blind", "screen door", "glass"),
}


def layout_from_labels(rgb: np.ndarray, ids: np.ndarray, names: dict[int, str]) -> Layout:
    """A :class:`Layout` from a segmentation model's per-pixel labels."""
    lut = np.full(max(names) + 1 if names else 1, OBJECT, dtype=np.uint8)
    for index, name in names.items():
        for cls, words in _LABEL_WORDS.items():
            if any(word in name for word in words):
                lut[index] = cls
                break
    classes = lut[np.clip(ids, 0, len(lut) - 1)]
    h = classes.shape[0]
    floor_rows = np.nonzero((classes == FLOOR).any(axis=1))[0]
    ceiling_rows = np.nonzero((classes == CEILING).any(axis=1))[0]
    floor_row = int(floor_rows.min()) if floor_rows.size else int(0.65 * h)
    ceiling_row = int(ceiling_rows.max()) + 1 if ceiling_rows.size else 0
    gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return Layout(classes, canny(gray), ceiling_row, floor_row, "model")


def clutter_mask(rgb: np.ndarray, layout: Layout) -> np.ndarray:
    """Pixels to clear for ``declutter``.

    With a model layout: the OBJECT pixels below the ceiling line.  With the
    heuristic layout: blobs whose edge density (share of edge pixels in a window of
    about 3 % of the long side) is over twice the photo's median density and at
    least 8 %, in the lower half of the photo.  Both are grown by about 1.5 % of the
    long side so that the inpainting covers the objects' borders and shadows.
    """
    h, w, _ = rgb.shape
    long_side = max(h, w)
    if layout.method == "model":
        mask = layout.classes == OBJECT
        mask[: layout.ceiling_row] = False
    else:
        density = _box_mean(layout.edges.astype(np.float32), max(2, round(0.03 * long_side)))
        threshold = max(0.08, 2.0 * float(np.median(density)))
        mask = density > threshold
        mask[: h // 2] = False
        mask &= layout.classes != OPENING
    return dilate(mask, max(1, round(0.015 * long_side)))
