"""Palette: the dominant colours of the chosen photos, by k-means in CIE Lab.

Each photo is first reduced with a box filter to at most 96 px on its long side, so
the palette of a photo and of the same photo resized agree (the box average of an
area does not depend on how many pixels it had).  k-means runs in Lab (D65), where
distances follow perceived colour differences, from a seeded k-means++ start, so the
same photos always give the same palette.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["delta_e", "dominant_colours", "lab_to_rgb", "rgb_to_lab"]

_M = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
     [0.0193339, 0.1191920, 0.9503041]]
)  # fmt: skip
_WHITE = np.array([0.95047, 1.0, 1.08883])


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB 0..255 (..., 3) to CIE Lab (D65)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = lin @ _M.T / _WHITE
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])],
        axis=-1,
    )


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIE Lab (D65) to sRGB 0..255, clipped."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * _WHITE
    lin = np.clip(xyz @ np.linalg.inv(_M).T, 0, 1)
    c = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.clip(np.round(c * 255), 0, 255)


def delta_e(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CIE76 colour difference between Lab colours."""
    return np.linalg.norm(np.asarray(a, float) - np.asarray(b, float), axis=-1)


def _pixels(images: Sequence[Image.Image], long_side: int = 96) -> np.ndarray:
    chunks = []
    for image in images:
        small = image.convert("RGB")
        scale = long_side / max(small.size)
        if scale < 1:
            size = (max(1, round(small.width * scale)), max(1, round(small.height * scale)))
            small = small.resize(size, Image.Resampling.BOX)
        chunks.append(np.asarray(small, dtype=np.float64).reshape(-1, 3))
    return np.concatenate(chunks)


def dominant_colours(
    images: Image.Image | Sequence[Image.Image], *, k: int = 5, seed: int = 0, iterations: int = 30
) -> list[dict[str, Any]]:
    """``k`` colours, heaviest first: ``hex``, ``rgb``, ``lab`` and ``weight`` (sums to 1)."""
    if isinstance(images, Image.Image):
        images = [images]
    lab = rgb_to_lab(_pixels(images))
    rng = np.random.default_rng(seed)
    k = min(k, len(lab))
    centres = [lab[rng.integers(len(lab))]]
    for _ in range(1, k):  # k-means++ start
        d2 = np.min([((lab - c) ** 2).sum(axis=1) for c in centres], axis=0)
        total = d2.sum()
        pick = rng.choice(len(lab), p=d2 / total) if total > 0 else rng.integers(len(lab))
        centres.append(lab[pick])
    centres_arr = np.array(centres)
    for _ in range(iterations):
        dist = ((lab[:, None, :] - centres_arr[None, :, :]) ** 2).sum(axis=2)
        assign = dist.argmin(axis=1)
        moved = np.array(
            [lab[assign == j].mean(axis=0) if np.any(assign == j) else centres_arr[j]
             for j in range(k)]
        )  # fmt: skip
        if np.allclose(moved, centres_arr, atol=1e-3):
            centres_arr = moved
            break
        centres_arr = moved
    weights = np.bincount(assign, minlength=k) / len(lab)
    out = []
    for j in np.argsort(-weights):
        rgb = lab_to_rgb(centres_arr[j]).astype(int)
        out.append(
            {
                "hex": "#{:02x}{:02x}{:02x}".format(*rgb),
                "rgb": [int(v) for v in rgb],
                "lab": [round(float(v), 2) for v in centres_arr[j]],
                "weight": round(float(weights[j]), 4),
            }
        )
    return out
