"""Inputs made safe for the models: orientation, transparency, padding and cropping back."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bkbn_pipelines._events import Result
from bkbn_pipelines.runtime._imageprep import (
    crop_back,
    fit_long_side,
    flatten,
    load_rgb,
    pad_to_multiple,
)

from ._photos import decode, photo_bytes, png_bytes


@pytest.mark.parametrize("multiple", [8, 16])
def test_padding_to_the_model_multiple_and_back(multiple) -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (640, 427, 3), dtype=np.uint8))
    padded, padding = pad_to_multiple(image, multiple)
    assert padded.width % multiple == 0 and padded.height % multiple == 0
    assert padded.size == (432, 640)
    # Mirrored, not black: the padding repeats the column just inside the border.
    array = np.asarray(padded)
    assert np.array_equal(array[:, 427], array[:, 425])
    assert np.array_equal(np.asarray(crop_back(padded, padding)), np.asarray(image))
    # After a 2x upscale of the padded image, the crop keeps the same proportions.
    doubled = padded.resize((padded.width * 2, padded.height * 2))
    assert crop_back(doubled, padding).size == (854, 1280)


def test_a_thin_image_is_padded_by_edge_replication() -> None:
    image = Image.new("RGB", (3, 5), (10, 20, 30))
    padded, padding = pad_to_multiple(image, 16)
    assert padded.size == (16, 16)
    assert crop_back(padded, padding).size == (3, 5)
    assert set(np.asarray(padded).reshape(-1, 3).tolist()[0]) == {10, 20, 30}


def test_exif_rotated_photo_comes_out_upright(tiny_runtime) -> None:
    rotated = photo_bytes("exif6_pd_living_room.jpg")  # stored 1283x1920, orientation 6
    upright = decode(photo_bytes("int_pd_living_room.jpg")).convert("RGB")
    image = load_rgb(rotated)
    assert image.size == upright.size == (1920, 1283)
    a = np.asarray(image.resize((96, 64)), dtype=np.float32)
    b = np.asarray(upright.resize((96, 64)), dtype=np.float32)
    assert np.abs(a - b).mean() < 6.0
    # Through a graph (a smaller photo, stored 641x960 with orientation 8).
    events = list(tiny_runtime.run("relight", [photo_bytes("exif8_cc0_kitchen.jpg")], {}))
    assert isinstance(events[-1], Result)
    assert decode(events[-1].artifacts["image"].data).size == (960, 641)


def test_rgba_and_palette_inputs_are_flattened_onto_white(tiny_runtime) -> None:
    rgba = Image.new("RGBA", (40, 30), (200, 10, 10, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 20, 30))  # left half fully transparent black
    flat = np.asarray(flatten(rgba))
    assert flat.shape == (30, 40, 3)
    assert flat[0, 0].tolist() == [255, 255, 255] and flat[0, 39].tolist() == [200, 10, 10]

    palette = Image.new("P", (40, 30), 0)
    palette.putpalette([0, 0, 0, 0, 128, 255] + [0] * 762)
    palette.paste(1, (20, 0, 40, 30))
    palette.info["transparency"] = 0
    flat = np.asarray(load_rgb(png_bytes(palette)))
    assert flat[5, 5].tolist() == [255, 255, 255] and flat[5, 30].tolist() == [0, 128, 255]

    la = Image.new("LA", (8, 8), (90, 255))
    assert load_rgb(png_bytes(la)).mode == "RGB"
    for source in (rgba, palette, la):
        events = list(tiny_runtime.run("relight", [png_bytes(source)], {}))
        assert isinstance(events[-1], Result)
        assert decode(events[-1].artifacts["image"].data).mode == "RGB"


def test_portrait_427x640_comes_back_427x640(tiny_runtime) -> None:
    photo = decode(photo_bytes("int_pixabay_bedroom.jpg")).convert("RGB").resize((427, 640))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=92)
    for graph, params in (("relight", {}), ("declutter", {"seed": 3})):
        events = list(tiny_runtime.run(graph, [buffer.getvalue()], params))
        assert isinstance(events[-1], Result), events[-1]
        assert decode(events[-1].artifacts["image"].data).size == (427, 640)
        assert (events[-1].data["width"], events[-1].data["height"]) == (427, 640)


def _ramps(width: int, height: int) -> Image.Image:
    """Red rises left to right, green top to bottom: any stretch shows as a shift."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, np.full_like(x, 128)], -1).round().astype(np.uint8))


@pytest.mark.parametrize(
    ("graph", "params"),
    [
        ("declutter", {"seed": 3, "mask": "lower half"}),
        ("staging", {"style": "japandi", "keep_geometry": False}),
    ],
)
def test_the_padded_render_is_cropped_back_not_stretched(
    tiny_settings, monkeypatch, graph, params
) -> None:
    from bkbn_pipelines.runtime import LocalRuntime
    from bkbn_pipelines.runtime._models import load_inpaint_pipeline

    pipeline = load_inpaint_pipeline(tiny_settings, graph)
    seen: list[tuple[int, int]] = []

    def render_nothing(*, image, **kwargs):  # the padded input, unchanged
        seen.append(image.size)
        return image.copy()

    monkeypatch.setattr(pipeline, "render", render_nothing)
    photo = _ramps(427, 640)
    if params.get("mask") == "lower half":
        mask = np.zeros((640, 427), dtype=np.uint8)
        mask[320:] = 255
        params = {**params, "mask": png_bytes(Image.fromarray(mask))}
    events = list(LocalRuntime(tiny_settings).run(graph, [png_bytes(photo)], params))
    assert isinstance(events[-1], Result), events[-1]
    assert seen and seen[0][0] > fit_long_side((427, 640), 64)[0]  # the render was padded
    out = np.asarray(decode(events[-1].artifacts["image"].data), dtype=np.float32)
    expected = np.asarray(
        photo.resize((out.shape[1], out.shape[0]), Image.Resampling.LANCZOS), dtype=np.float32
    )
    # The right part of the lower half: rendered, and away from the photo's borders.
    rows = slice(out.shape[0] * 5 // 8, out.shape[0] * 7 // 8)
    right = slice(out.shape[1] * 5 // 8, out.shape[1] * 7 // 8)
    error = np.abs(out[rows, right, 0] - expected[rows, right, 0]).mean()
    # Stretched by the padding (48 columns shown as 43), red would be about 20 levels low here.
    assert error < 4.0


def test_fit_long_side_keeps_the_aspect_ratio() -> None:
    assert fit_long_side((427, 640), 1024) == (683, 1024)
    assert fit_long_side((1920, 1283), 2048) == (2048, 1369)
