"""The classical analysis behind staging and declutter, on synthetic rooms with known answers."""

from __future__ import annotations

import numpy as np

from bkbn_pipelines.runtime._vision import (
    CEILING,
    FLOOR,
    OPENING,
    WALL,
    canny,
    clutter_mask,
    heuristic_layout,
    layout_from_labels,
)


def _room(h: int = 240, w: int = 320) -> np.ndarray:
    """Ceiling to row 30, wall to row 160, floor below; a bright window in the wall."""
    rgb = np.empty((h, w, 3), dtype=np.float32)
    rgb[:30] = (0.80, 0.80, 0.78)
    rgb[30:160] = (0.62, 0.58, 0.52)
    rgb[160:] = (0.35, 0.25, 0.18)
    rgb[60:120, 200:270] = (0.97, 0.97, 0.98)
    return rgb


def test_canny_finds_the_outline_of_a_square_and_nothing_else() -> None:
    gray = np.zeros((80, 80), dtype=np.float32)
    gray[20:60, 20:60] = 1.0
    edges = canny(gray)
    assert edges[23:57, 18:23].any(axis=1).all()  # the left side, every row but corners
    assert edges[18:23, 23:57].any(axis=0).all()  # the top side, every column
    assert not edges[30:50, 30:50].any()  # flat inside
    assert not edges[:10].any() and not edges[70:].any()  # flat outside
    assert edges[18:23, 30].sum() <= 2  # thin: one or two pixels across


def test_heuristic_layout_finds_ceiling_floor_and_window() -> None:
    layout = heuristic_layout(_room())
    assert abs(layout.floor_row - 160) <= 3
    assert abs(layout.ceiling_row - 30) <= 3
    assert layout.classes[200, 100] == FLOOR
    assert layout.classes[10, 100] == CEILING
    assert layout.classes[100, 50] == WALL
    assert layout.classes[90, 235] == OPENING
    assert layout.method == "heuristic"


def test_clutter_mask_marks_a_busy_object_on_a_plain_floor() -> None:
    rgb = _room()
    checker = (np.indices((40, 60)).sum(axis=0) // 4 % 2).astype(np.float32)
    rgb[180:220, 60:120] = checker[..., None] * 0.8 + 0.1  # a patterned box on the floor
    mask = clutter_mask(rgb, heuristic_layout(rgb))
    assert mask[190:210, 70:110].mean() > 0.9
    assert not mask[180:230, 200:300].any()  # bare floor elsewhere
    assert not mask[:112].any()  # found in the lower half (then grown by 5 pixels)


def test_layout_from_segmentation_labels() -> None:
    rgb = _room()
    ids = np.zeros(rgb.shape[:2], dtype=np.int64)  # 0: wall
    ids[:30] = 2  # ceiling
    ids[160:] = 1  # floor
    ids[60:120, 200:270] = 3  # windowpane
    ids[180:220, 60:120] = 4  # sofa
    names = {0: "wall", 1: "floor", 2: "ceiling", 3: "windowpane", 4: "sofa"}
    layout = layout_from_labels(rgb, ids, names)
    assert (layout.floor_row, layout.ceiling_row) == (160, 30)
    assert layout.classes[90, 235] == OPENING
    mask = clutter_mask(rgb, layout)
    assert mask[190:210, 70:110].all() and not mask[:150].any()
