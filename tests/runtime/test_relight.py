"""relight: a real photo with a colour cast and under-exposure comes back corrected."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bkbn_pipelines._events import NodeStart, Result
from bkbn_pipelines.runtime import LocalRuntime, RuntimeSettings
from bkbn_pipelines.runtime.graphs.relight import linear_to_srgb, luminance, srgb_to_linear

from ._photos import PHOTOS, decode, png_bytes


def _chromaticity(rgb: np.ndarray) -> np.ndarray:
    mean = srgb_to_linear(rgb).reshape(-1, 3).mean(axis=0)
    return mean / mean.sum()


def colour_error(image: np.ndarray, reference: np.ndarray) -> float:
    """L1 distance between the chromaticities of the mean linear colours."""
    return float(np.abs(_chromaticity(image) - _chromaticity(reference)).sum())


def exposure_error(image: np.ndarray, reference: np.ndarray) -> float:
    """Distance in stops between the median luminances."""
    return abs(float(np.log2(np.median(luminance(image)) / np.median(luminance(reference)))))


@pytest.fixture(scope="module")
def runtime() -> LocalRuntime:
    return LocalRuntime(RuntimeSettings(device="cpu"))


def _relight(runtime: LocalRuntime, data: bytes) -> tuple[Result, list]:
    events = list(runtime.run("relight", [data], {}))
    assert isinstance(events[-1], Result), events[-1]
    return events[-1], events


@pytest.mark.parametrize(
    ("photo", "cast", "exposure"),
    [
        ("int_cc0_kitchen.jpg", (1.25, 1.0, 0.70), 0.45),  # tungsten cast, -1.2 stops
        ("int_pixabay_bedroom.jpg", (0.80, 1.0, 1.30), 0.50),  # cold cast, -1 stop
    ],
)
def test_relight_halves_colour_and_exposure_error(runtime, photo, cast, exposure) -> None:
    original = Image.open(PHOTOS / photo).convert("RGB")
    original.thumbnail((640, 640))
    reference = np.asarray(original, dtype=np.float32) / 255.0
    damaged_linear = srgb_to_linear(reference) * np.array(cast, dtype=np.float32) * exposure
    damaged = linear_to_srgb(np.clip(damaged_linear, 0.0, 1.0)).astype(np.float32)
    damaged_png = png_bytes(Image.fromarray((damaged * 255 + 0.5).astype(np.uint8)))

    result, _ = _relight(runtime, damaged_png)
    fixed = np.asarray(decode(result.artifacts["image"].data), dtype=np.float32) / 255.0

    colour_before, colour_after = colour_error(damaged, reference), colour_error(fixed, reference)
    stops_before, stops_after = exposure_error(damaged, reference), exposure_error(fixed, reference)
    assert colour_before > 0.1 and stops_before > 0.4  # the damage is real
    assert colour_after <= colour_before / 2, (colour_before, colour_after)
    assert stops_after <= stops_before / 2, (stops_before, stops_after)


def test_relight_result_fields_and_nodes(runtime) -> None:
    data = (PHOTOS / "int_cc0_kitchen.jpg").read_bytes()
    result, events = _relight(runtime, data)
    assert [e.node for e in events if isinstance(e, NodeStart)] == [
        "analyse",
        "white_balance",
        "tone",
        "encode",
    ]
    image = decode(result.artifacts["image"].data)
    assert result.artifacts["image"].media_type == "image/png"
    assert (result.data["width"], result.data["height"]) == image.size
    assert result.data["weights"] == "none"
    assert result.data["graph"] == "relight-v1.2"
    assert result.data["usage"]["tokens"] >= 1


def test_relight_is_deterministic(runtime) -> None:
    data = (PHOTOS / "int_pixabay_bathroom.jpg").read_bytes()
    first, _ = _relight(runtime, data)
    second, _ = _relight(runtime, data)
    assert first.artifacts["image"].data == second.artifacts["image"].data


def test_relight_never_clips_highlights_hard(runtime) -> None:
    gradient = np.linspace(0.0, 1.0, 256, dtype=np.float32)
    ramp = np.repeat(np.stack([gradient] * 3, axis=-1)[None], 64, axis=0)
    result, _ = _relight(runtime, png_bytes(Image.fromarray((ramp * 255).astype(np.uint8))))
    out = np.asarray(decode(result.artifacts["image"].data), dtype=np.float32)[0, :, 1]
    assert np.all(np.diff(out) >= -1)  # tones stay in order
    assert (out >= 254).sum() <= 8  # only the very top of the ramp reaches white


def test_a_relit_photo_is_left_almost_alone(runtime) -> None:
    data = (PHOTOS / "int_pixabay_bedroom.jpg").read_bytes()
    once, _ = _relight(runtime, data)
    twice, _ = _relight(runtime, once.artifacts["image"].data)
    a = np.asarray(decode(once.artifacts["image"].data), dtype=np.float32)
    b = np.asarray(decode(twice.artifacts["image"].data), dtype=np.float32)
    assert np.abs(a - b).mean() < 2.5  # of 255
    assert twice.data["corrections"]["exposure_gain"] == pytest.approx(1.0, abs=0.03)


def test_highlights_are_rolled_off_not_clipped(runtime) -> None:
    """A dim room with a bright window: the room is brightened, the window keeps detail."""
    photo = Image.open(PHOTOS / "int_cc0_kitchen.jpg").convert("RGB")
    photo.thumbnail((320, 320))
    linear = srgb_to_linear(np.asarray(photo, dtype=np.float32) / 255.0) * 0.2
    window = np.linspace(0.3, 1.0, 60, dtype=np.float32)  # a gradient, left to right
    linear[10:50, 20:80] = window[None, :, None]
    dim = linear_to_srgb(linear)
    result, _ = _relight(runtime, png_bytes(Image.fromarray((dim * 255 + 0.5).astype(np.uint8))))
    out = np.asarray(decode(result.artifacts["image"].data), dtype=np.float32)
    corrections = result.data["corrections"]
    assert corrections["exposure_gain"] > 1.5 and corrections["highlight_rolloff"] > 0
    row = out[30, 20:80].mean(axis=-1)
    assert np.all(np.diff(row) >= -1)  # still a gradient, in order
    assert row[-1] - row[len(row) // 2] > 10  # the bright half is not flattened to white
    assert (out[10:50, 20:80] >= 254.5).mean() < 0.1
    assert np.median(luminance(out / 255.0)) > np.median(luminance(dim)) + 0.1
