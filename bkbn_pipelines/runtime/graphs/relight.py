"""``relight``: deterministic photo correction, no model weights.

Nodes, in order:

1. ``analyse`` decodes the photo and measures it in linear light: a robust grey
   estimate (shades-of-grey over pixels that are neither clipped nor near black) and
   the median luminance.
2. ``white_balance`` scales the three channels so that grey estimate becomes neutral,
   keeping luminance; gains are clamped to 0.4..2.5.
3. ``tone`` applies an exposure gain (0.25x..4x) that puts the white point (99th
   percentile of luminance) where a well-exposed photo has it, keeping the median in
   a band; then it lifts the shadows and rolls the highlights off with smooth curves
   on luminance, so hues are kept and nothing clips hard.
4. ``encode`` writes the PNG at the input's size.

The same photo always gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..._contract import FIXED_TOKENS, GRAPHS
from ..._errors import InvalidParamsError
from ..._events import Artifact
from .._graph import Graph, Node, RunContext, register
from .._imageprep import encode_png, load_rgb, to_array, to_image

__all__ = ["GRAPH", "relight_array", "tone"]

#: Sensitivity of the grey estimate to bright pixels (1 = grey world, large = white patch).
GREY_NORM = 4.0
#: sRGB-encoded luminance of a well-exposed photo's 99th percentile.
WHITE_POINT = 0.94
#: The band, in sRGB-encoded luminance, where a photo's median counts as well exposed.
MEDIAN_BAND = (0.40, 0.78)
MAX_GAIN = 4.0
SHADOW_LIFT = 0.18
HIGHLIGHT_KNEE = 0.80


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, None)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.2126, 0.7152, 0.0722], dtype=rgb.dtype)


def grey_estimate(linear: np.ndarray) -> np.ndarray:
    """The scene's grey in linear RGB: a Minkowski mean over usable pixels."""
    pixels = linear.reshape(-1, 3)
    usable = (pixels.max(axis=1) < 0.98) & (pixels.min(axis=1) > 0.002)
    if usable.sum() < 64:
        usable = np.ones(len(pixels), dtype=bool)
    chosen = pixels[usable].astype(np.float64)
    return np.power(np.mean(np.power(chosen, GREY_NORM), axis=0), 1 / GREY_NORM)


def white_balance_gains(linear: np.ndarray) -> np.ndarray:
    grey = np.maximum(grey_estimate(linear), 1e-6)
    gains = grey.mean() / grey
    weights = np.array([0.2126, 0.7152, 0.0722])
    gains /= float(gains @ weights)  # keep luminance of a grey pixel
    return np.clip(gains, 0.4, 2.5)


def exposure_gain(linear: np.ndarray) -> float:
    """Linear gain that puts the photo's white point where a well-exposed photo has it.

    The 99th percentile of luminance is brought to :data:`WHITE_POINT` (sRGB-encoded);
    a photo is never darkened unless its median is above the band, and the median is
    kept inside :data:`MEDIAN_BAND` where the white point alone would leave it.
    """
    y = luminance(linear)
    p99, median = (float(v) for v in np.percentile(y, [99.0, 50.0]))
    white = float(srgb_to_linear(np.array(WHITE_POINT)))
    low, high = (float(srgb_to_linear(np.array(v))) for v in MEDIAN_BAND)
    gain = white / max(p99, 1e-4)
    if median > high:
        gain = min(gain, high / median)
    else:
        gain = max(gain, 1.0)
        gain = min(gain, high / max(median, 1e-4))
        gain = max(gain, min(low / max(median, 1e-4), MAX_GAIN))
    return float(np.clip(gain, 1.0 / MAX_GAIN, MAX_GAIN))


def tone_curve(y: np.ndarray) -> np.ndarray:
    """Shadow lift and highlight roll-off on sRGB-encoded luminance in [0, inf)."""
    lifted = y + SHADOW_LIFT * y * np.square(np.clip(1.0 - y, 0.0, 1.0)) * np.exp(-4.0 * y)
    knee = HIGHLIGHT_KNEE
    over = np.clip(lifted - knee, 0.0, None)
    rolled = knee + (1.0 - knee) * (1.0 - np.exp(-over / (1.0 - knee)))
    return np.where(lifted > knee, rolled, lifted)


def tone(balanced: np.ndarray) -> tuple[np.ndarray, float]:
    """Exposure gain, shadow lift and highlight roll-off on a white-balanced linear image.

    Returns the sRGB-encoded result in [0, 1] and the exposure gain used.
    """
    gain = exposure_gain(balanced)
    encoded = linear_to_srgb(balanced * np.float32(gain))
    y = luminance(encoded)
    ratio = np.where(y > 1e-5, tone_curve(y) / np.maximum(y, 1e-5), 1.0)[..., None]
    out = encoded * ratio
    # Channels pushed past white are pulled toward the pixel's luminance, keeping hue.
    peak = out.max(axis=-1, keepdims=True)
    y_out = luminance(out)[..., None]
    squeeze = np.where(peak > 1.0, (1.0 - y_out) / np.maximum(peak - y_out, 1e-6), 1.0)
    out = y_out + (out - y_out) * np.clip(squeeze, 0.0, 1.0)
    return np.clip(out, 0.0, 1.0).astype(np.float32), gain


def relight_array(rgb: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Correct an sRGB float image in [0, 1]; returns the image and what was done."""
    linear = srgb_to_linear(rgb.astype(np.float32))
    gains = white_balance_gains(linear)
    out, gain = tone(linear * gains.astype(np.float32))
    report = {
        "white_balance_gains": [round(float(g), 4) for g in gains],
        "exposure_gain": round(gain, 4),
    }
    return out, report


def preflight(params: Mapping[str, Any], settings: Any) -> dict[str, Any]:
    unknown = sorted(set(params) - {"resolution", "seed"})
    if unknown:
        raise InvalidParamsError(f"relight: unknown parameter {unknown[0]!r}")
    return dict(params)


def analyse(ctx: RunContext) -> None:
    if len(ctx.inputs) != 1:
        raise InvalidParamsError(f"relight takes one photo, got {len(ctx.inputs)}")
    image = load_rgb(ctx.inputs[0])
    ctx.values["rgb"] = to_array(image)
    linear = srgb_to_linear(ctx.values["rgb"])
    ctx.values["median_before"] = float(np.median(linear_to_srgb(luminance(linear))))


def white_balance(ctx: RunContext) -> None:
    linear = srgb_to_linear(ctx.values["rgb"])
    gains = white_balance_gains(linear)
    ctx.values["gains"] = gains
    ctx.values["balanced"] = linear * gains.astype(np.float32)


def tone_node(ctx: RunContext) -> None:
    ctx.values["out"], ctx.values["exposure_gain"] = tone(ctx.values["balanced"])


def encode(ctx: RunContext) -> None:
    out = ctx.values["out"]
    image = to_image(out)
    ctx.artifacts["image"] = Artifact(encode_png(image), "image/png")
    ctx.fields.update(
        width=image.width,
        height=image.height,
        weights="none",
        usage={"tokens": FIXED_TOKENS},
        corrections={
            "white_balance_gains": [round(float(g), 4) for g in ctx.values["gains"]],
            "exposure_gain": round(float(ctx.values["exposure_gain"]), 4),
            "median_luminance_before": round(ctx.values["median_before"], 4),
            "median_luminance_after": round(float(np.median(luminance(out))), 4),
        },
    )


GRAPH = register(
    Graph(
        name="relight",
        version=GRAPHS["relight"],
        nodes=(
            Node("analyse", analyse),
            Node("white_balance", white_balance, needs=("analyse",)),
            Node("tone", tone_node, needs=("white_balance",)),
            Node("encode", encode, needs=("tone",)),
        ),
        description="Deterministic white balance, exposure, shadow lift and highlight recovery.",
        preflight=preflight,
    )
)
