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
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._contract import FIXED_TOKENS, GRAPHS
from ..._errors import InvalidParamsError
from ..._events import Artifact
from .._graph import Graph, Node, RunContext, register
from .._imageprep import encode_png, load_rgb, to_array, to_image

__all__ = ["GRAPH", "ToneCurve", "plan_tone", "relight_array", "tone"]

#: Sensitivity of the grey estimate to bright pixels (1 = grey world, large = white patch).
GREY_NORM = 4.0
#: sRGB-encoded luminance of a well-exposed photo's 99th percentile.
WHITE_POINT = 0.94
#: The band, in sRGB-encoded luminance, where a photo's median counts as well exposed.
MEDIAN_BAND = (0.40, 0.78)
MAX_GAIN = 4.0
#: Strongest shadow lift, used when the 5th percentile of luminance is black.
SHADOW_LIFT = 0.5
#: sRGB-encoded luminance of the 5th percentile below which shadows are lifted.
SHADOW_TARGET = 0.10
#: sRGB-encoded luminance above which highlights are rolled off (when they must be).
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


@dataclass(frozen=True)
class ToneCurve:
    """The tone correction of one photo: a linear gain, then a curve on luminance.

    The curve works on sRGB-encoded luminance ``y`` after the gain: a shadow lift
    ``y + lift * y * (1 - y)^2 * exp(-4y)``, then above :data:`HIGHLIGHT_KNEE` a
    roll-off ``knee + t / (1 + c * t)`` (``t`` = distance above the knee) whose ``c``
    brings the photo's brightest tones (99.9th percentile) just to white.  A photo
    that needs none of it gets gain 1, lift 0 and ``c`` 0: the identity.
    """

    gain: float
    shadow_lift: float
    rolloff: float

    def __call__(self, y: np.ndarray) -> np.ndarray:
        lifted = y + self.shadow_lift * y * np.square(np.clip(1.0 - y, 0.0, 1.0)) * np.exp(-4.0 * y)
        above = np.clip(lifted - HIGHLIGHT_KNEE, 0.0, None)
        return np.where(
            lifted > HIGHLIGHT_KNEE, HIGHLIGHT_KNEE + above / (1.0 + self.rolloff * above), lifted
        )


def _rolloff(peak: float) -> float:
    """``c`` of the roll-off that maps sRGB-encoded ``peak`` to 1 (0 if it fits already)."""
    span, room = peak - HIGHLIGHT_KNEE, 1.0 - HIGHLIGHT_KNEE
    return max(0.0, 1.0 / room - 1.0 / span) if span > room else 0.0


def plan_tone(linear: np.ndarray) -> ToneCurve:
    """Choose gain, shadow lift and roll-off for a white-balanced linear image.

    The gain puts the 99th percentile of luminance, after the curve, at
    :data:`WHITE_POINT`; it never darkens a photo whose median is below the
    :data:`MEDIAN_BAND` and keeps the median inside the band where the white point
    alone would leave it.  The shadow lift grows as the 5th percentile falls below
    :data:`SHADOW_TARGET`.
    """
    y = luminance(linear)
    p5, median, p99, p999 = (float(v) for v in np.percentile(y, [5.0, 50.0, 99.0, 99.9]))

    def encoded(value: float) -> float:
        return float(linear_to_srgb(np.array(value)))

    def white_after(gain: float) -> float:
        curve = ToneCurve(gain, 0.0, _rolloff(encoded(gain * p999)))
        return float(curve(np.array(encoded(gain * p99))))

    low, high = 1.0 / MAX_GAIN, MAX_GAIN
    if white_after(low) >= WHITE_POINT:
        gain = low
    elif white_after(high) <= WHITE_POINT:
        gain = high
    else:
        for _ in range(50):
            mid = (low * high) ** 0.5
            low, high = (mid, high) if white_after(mid) < WHITE_POINT else (low, mid)
        gain = (low * high) ** 0.5
    band_low, band_high = (float(srgb_to_linear(np.array(v))) for v in MEDIAN_BAND)
    median = max(median, 1e-6)
    if median > band_high:
        gain = min(gain, band_high / median)
    else:
        gain = max(gain, 1.0)
        gain = min(gain, band_high / median)
        gain = max(gain, band_low / median)
    gain = float(np.clip(gain, 1.0 / MAX_GAIN, MAX_GAIN))
    dark = encoded(gain * p5)
    lift = SHADOW_LIFT * float(np.clip((SHADOW_TARGET - dark) / SHADOW_TARGET, 0.0, 1.0))
    return ToneCurve(gain, lift, _rolloff(encoded(gain * p999)))


def tone(balanced: np.ndarray) -> tuple[np.ndarray, ToneCurve]:
    """Exposure, shadow lift and highlight roll-off on a white-balanced linear image.

    Each pixel's linear RGB is scaled by the ratio its luminance gets from the
    curve, so hues are kept; channels that would pass white are pulled toward the
    pixel's luminance instead of clipping.  Returns sRGB in [0, 1] and the curve.
    """
    curve = plan_tone(balanced)
    exposed = balanced * np.float32(curve.gain)
    y_lin = luminance(exposed)
    y_new = srgb_to_linear(curve(linear_to_srgb(y_lin))).astype(np.float32)
    ratio = np.where(y_lin > 1e-6, y_new / np.maximum(y_lin, 1e-6), 1.0)[..., None]
    out = exposed * ratio
    peak = out.max(axis=-1, keepdims=True)
    y_out = y_new[..., None]
    squeeze = np.where(peak > 1.0, (1.0 - y_out) / np.maximum(peak - y_out, 1e-6), 1.0)
    out = y_out + (out - y_out) * np.clip(squeeze, 0.0, 1.0)
    return np.clip(linear_to_srgb(out), 0.0, 1.0).astype(np.float32), curve


def relight_array(rgb: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Correct an sRGB float image in [0, 1]; returns the image and what was done."""
    linear = srgb_to_linear(rgb.astype(np.float32))
    gains = white_balance_gains(linear)
    out, curve = tone(linear * gains.astype(np.float32))
    report = {
        "white_balance_gains": [round(float(g), 4) for g in gains],
        "exposure_gain": round(curve.gain, 4),
        "shadow_lift": round(curve.shadow_lift, 4),
        "highlight_rolloff": round(curve.rolloff, 4),
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
    ctx.values["out"], ctx.values["curve"] = tone(ctx.values["balanced"])


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
            "exposure_gain": round(ctx.values["curve"].gain, 4),
            "shadow_lift": round(ctx.values["curve"].shadow_lift, 4),
            "highlight_rolloff": round(ctx.values["curve"].rolloff, 4),
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
