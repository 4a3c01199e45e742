"""staging and declutter on a tiny random pipeline: the real diffusers code on the CPU."""

from __future__ import annotations

import logging
import re
import threading

import numpy as np
import pytest
from PIL import Image

from bkbn_pipelines._contract import STYLES
from bkbn_pipelines._errors import InvalidParamsError, ModelNotFoundError
from bkbn_pipelines._events import ErrorEvent, NodeStart, RenderProgress, Result
from bkbn_pipelines.runtime import LocalRuntime, RuntimeSettings
from bkbn_pipelines.runtime.graphs.staging import prompts

from ._photos import decode, photo_bytes, png_bytes


def _result(events: list) -> Result:
    assert isinstance(events[-1], Result), events[-1]
    return events[-1]


def test_staging_at_1k_is_labelled_untrained(tiny_runtime, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="bkbn_pipelines")
    events = list(
        tiny_runtime.run(
            "staging", [photo_bytes("int_pd_living_room.jpg")], {"style": "japandi", "seed": 7}
        )
    )
    result = _result(events)
    assert [e.node for e in events if isinstance(e, NodeStart)] == [
        "prepare",
        "segment_rooms",
        "condition_style",
        "structure",
        "render",
        "upscale",
    ]
    progress = [(e.step, e.total) for e in events if isinstance(e, RenderProgress)]
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]
    image = decode(result.artifacts["image"].data)
    assert max(image.size) == 1024
    assert (result.data["width"], result.data["height"]) == image.size
    assert result.data["weights"] == "untrained"
    assert result.data["segmentation"] == "heuristic"
    assert result.data["structure"] == "mask"
    assert result.data["graph"] == "staging-v2.4"
    assert result.data["usage"]["tokens"] == 1  # ceil(0.7 MP * 4 steps / 10)
    assert any("UNTRAINED" in r.getMessage() for r in caplog.records)


def test_staging_is_repeatable_with_a_seed(tiny_runtime) -> None:
    photo = photo_bytes("int_pixabay_bedroom.jpg")
    params = {"style": "coastal", "room_type": "bedroom", "seed": 11, "resolution": "1k"}
    first = _result(list(tiny_runtime.run("staging", [photo], params)))
    second = _result(list(tiny_runtime.run("staging", [photo], params)))
    assert first.artifacts["image"].data == second.artifacts["image"].data
    other = _result(list(tiny_runtime.run("staging", [photo], {**params, "seed": 12})))
    assert other.artifacts["image"].data != first.artifacts["image"].data


def test_keep_geometry_leaves_the_ceiling_and_upper_walls_alone(tiny_runtime) -> None:
    photo = decode(photo_bytes("int_pd_living_room.jpg")).convert("RGB")
    result = _result(
        list(
            tiny_runtime.run(
                "staging", [photo_bytes("int_pd_living_room.jpg")], {"style": "industrial"}
            )
        )
    )
    staged = np.asarray(decode(result.artifacts["image"].data), dtype=np.float32)
    reference = np.asarray(
        photo.resize((staged.shape[1], staged.shape[0]), Image.Resampling.LANCZOS),
        dtype=np.float32,
    )
    top = slice(0, staged.shape[0] // 8)
    bottom = slice(staged.shape[0] * 7 // 8, None)
    assert np.abs(staged[top] - reference[top]).mean() < 2.0  # the photo itself
    assert np.abs(staged[bottom] - reference[bottom]).mean() > 10.0  # repainted


def _room_with_a_window(width: int, height: int) -> tuple[np.ndarray, tuple[slice, slice]]:
    """An empty room of flat planes: ceiling, two walls meeting at a vertical corner,
    a floor, and a window (a white rectangle) on the left wall; float RGB in [0, 1]."""
    rgb = np.empty((height, width, 3), dtype=np.float32)
    rgb[:] = 0.7  # the left wall
    rgb[:, round(0.55 * width) :] = 0.4  # the right wall, beyond the corner
    rgb[: round(0.12 * height)] = 0.82  # the ceiling
    rgb[round(0.68 * height) :] = 0.15  # the floor
    window = (
        slice(round(0.3 * height), round(0.6 * height)),
        slice(round(0.12 * width), round(0.38 * width)),
    )
    rgb[window] = 1.0
    return rgb, window


def _structure_mask(layout, *, keep_geometry: bool, controlnet: bool = False) -> np.ndarray:
    """The render mask that staging's ``structure`` node builds for ``layout``."""
    from types import SimpleNamespace

    from bkbn_pipelines.runtime import RunContext
    from bkbn_pipelines.runtime.graphs import staging

    pipeline = SimpleNamespace(controlnet="controlnet" if controlnet else None)
    ctx = RunContext(
        run_id="run_test",
        graph=staging.GRAPH,
        inputs=[],
        params={"keep_geometry": keep_geometry},
        settings=None,
        values={"layout": layout, "pipeline": pipeline},
    )
    staging.structure(ctx)
    return ctx.values["mask"]


def test_keep_geometry_keeps_edges_and_windows_out_of_the_render_mask() -> None:
    from bkbn_pipelines.runtime._vision import OPENING, heuristic_layout

    rgb, window = _room_with_a_window(256, 192)
    layout = heuristic_layout(rgb)
    assert (layout.classes[window] == OPENING).all()  # the window was found
    rows = np.arange(rgb.shape[0])[:, None]
    lower = rows >= layout.ceiling_row + 0.35 * (layout.floor_row - layout.ceiling_row)
    edges = layout.edges & lower  # the corner and the wall/floor line, where furniture goes
    corner = edges[:, 138:143].any(axis=1)
    assert corner[layout.floor_row - 20 : layout.floor_row - 5].all()  # the corner is an edge
    floor_line = edges[layout.floor_row - 2 : layout.floor_row + 3].any(axis=0)
    assert floor_line[20:130].all() and floor_line[150:236].all()  # so is the floor's line

    kept = _structure_mask(layout, keep_geometry=True)
    assert not (kept & edges).any()  # no edge pixel is repainted
    assert not kept[window].any()  # nor the window
    assert kept[150:, 20:236].mean() > 0.5 and kept[100:125, 200:236].all()  # but the rest is
    with_controlnet = _structure_mask(layout, keep_geometry=True, controlnet=True)
    assert not with_controlnet[window].any() and (with_controlnet & edges).any()

    free = _structure_mask(layout, keep_geometry=False)
    assert free[edges].all() and free[window].all()  # everything below the ceiling


def test_keep_geometry_leaves_a_window_as_it_was(tiny_settings) -> None:
    rgb, _ = _room_with_a_window(640, 480)
    photo = Image.fromarray((rgb * 255 + 0.5).astype(np.uint8))
    runtime = LocalRuntime(tiny_settings.with_changes(render_size=256, steps=2))
    reference = np.asarray(photo.resize((1024, 768), Image.Resampling.LANCZOS), dtype=np.float32)
    inside = (slice(310, 440), slice(140, 360))  # the window's lower part, away from its frame
    assert (reference[inside] > 250).all()
    differences = {}
    for keep_geometry in (True, False):
        params = {"style": "coastal", "seed": 3, "keep_geometry": keep_geometry}
        result = _result(list(runtime.run("staging", [png_bytes(photo)], params)))
        staged = np.asarray(decode(result.artifacts["image"].data), dtype=np.float32)
        differences[keep_geometry] = np.abs(staged[inside] - reference[inside]).mean()
    assert differences[True] < 1.0  # the photo's own window
    assert differences[False] > 10.0  # repainted


def test_cancel_mid_render(tiny_settings) -> None:
    runtime = LocalRuntime(tiny_settings.with_changes(steps=30))
    cancel = threading.Event()
    events = []
    for event in runtime.run(
        "staging", [photo_bytes("int_cc0_kitchen.jpg")], {"style": "mid-century"}, cancel=cancel
    ):
        events.append(event)
        if isinstance(event, RenderProgress) and event.step == 2:
            cancel.set()
    assert isinstance(events[-1], ErrorEvent)
    assert events[-1].error_type == "cancelled"
    steps = [e.step for e in events if isinstance(e, RenderProgress)]
    assert 2 <= max(steps) < 30


def test_no_staging_model_names_the_setting(tmp_path) -> None:
    runtime = LocalRuntime(RuntimeSettings(device="cpu"))
    with pytest.raises(ModelNotFoundError, match="BKBN_STAGING_MODEL") as caught:
        runtime.run("staging", [b""], {"style": "coastal"})
    assert "real weights" in str(caught.value)
    missing = tmp_path / "nowhere"
    runtime = LocalRuntime(RuntimeSettings(device="cpu", staging_model=str(missing)))
    with pytest.raises(ModelNotFoundError, match=r"model_index\.json missing"):
        runtime.run("declutter", [b""], {})


def test_relative_model_paths_resolve_against_models_dir(tiny_inpaint_pipeline) -> None:
    settings = RuntimeSettings(
        device="cpu",
        models_dir=tiny_inpaint_pipeline.parent,
        staging_model=tiny_inpaint_pipeline.name,
        steps=2,
    )
    result = _result(
        list(
            LocalRuntime(settings).run(
                "staging",
                [photo_bytes("int_cc0_kitchen.jpg")],
                {"style": "scandi-warm", "resolution": "2k", "keep_geometry": False},
            )
        )
    )
    assert max(result.data["width"], result.data["height"]) == 2048
    assert result.data["structure"] == "none"


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"style": "baroque"}, "style"),
        ({}, "style"),
        ({"style": "japandi", "resolution": "8k"}, "resolution"),
        ({"style": "japandi", "room_type": "garage"}, "room_type"),
        ({"style": "japandi", "seed": "lucky"}, "seed"),
        ({"style": "japandi", "seed": 1.5}, "seed"),
        ({"style": "japandi", "keep_geometry": "maybe"}, "keep_geometry"),
        ({"style": "japandi", "colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_are_refused_by_name(tiny_runtime, params, name) -> None:
    with pytest.raises(InvalidParamsError, match=name):
        tiny_runtime.run("staging", [b"x"], params)


def test_every_style_has_its_own_prompt() -> None:
    seen = {prompts(style, "living") for style in STYLES}
    assert len(seen) == len(STYLES)
    prompt, negative = prompts("industrial", "office")
    assert "home office" in prompt and "steel" in prompt and "watermark" in negative


def test_a_photo_that_is_not_an_image_fails_the_run(tiny_runtime) -> None:
    events = list(tiny_runtime.run("staging", [b"<html>not a photo</html>"], {"style": "coastal"}))
    assert isinstance(events[-1], ErrorEvent)
    assert events[-1].error_type == "invalid_request_error"
    assert "photo" in events[-1].message
    assert re.search("not (a readable image|an image)", events[-1].message)


def test_declutter_keeps_size_and_pixels_outside_the_mask(tiny_runtime) -> None:
    portrait = decode(photo_bytes("int_pixabay_bathroom.jpg")).convert("RGB").resize((427, 640))
    mask = np.zeros((640, 427), dtype=np.uint8)
    mask[400:560, 100:300] = 255
    params = {"mask": png_bytes(Image.fromarray(mask)), "seed": 5}
    result = _result(list(tiny_runtime.run("declutter", [png_bytes(portrait)], params)))
    out = np.asarray(decode(result.artifacts["image"].data), dtype=np.int16)
    assert out.shape == (640, 427, 3)
    original = np.asarray(portrait, dtype=np.int16)
    assert np.array_equal(out[:350], original[:350])  # far from the mask: untouched
    assert np.abs(out[440:520, 140:260] - original[440:520, 140:260]).mean() > 10
    assert result.data["mask_source"] == "given"
    assert result.data["weights"] == "untrained"


def test_declutter_finds_objects_itself_and_takes_data_uris(tiny_runtime) -> None:
    import base64

    living_room = decode(photo_bytes("int_pd_living_room.jpg")).convert("RGB")
    photo = png_bytes(living_room.resize((640, 427)))
    result = _result(list(tiny_runtime.run("declutter", [photo], {"seed": 1})))
    assert result.data["mask_source"] == "heuristic"
    assert 0.0 < result.data["masked_share"] < 0.5
    empty = png_bytes(Image.new("L", (32, 32), 0))
    uri = "data:image/png;base64," + base64.b64encode(empty).decode()
    events = list(tiny_runtime.run("declutter", [photo], {"mask": uri}))
    assert not any(isinstance(e, RenderProgress) for e in events)  # nothing to clear
    assert _result(events).data["masked_share"] == 0.0
    with pytest.raises(InvalidParamsError, match="mask"):
        list(tiny_runtime.run("declutter", [photo], {"mask": "data:image/png;base64,@@"}))


def test_controlnet_and_segmentation_model_paths(tiny_settings, tmp_path) -> None:
    from bkbn_pipelines.runtime.testing import (
        build_tiny_controlnet,
        build_tiny_segmentation_model,
    )

    settings = tiny_settings.with_changes(
        controlnet_model=str(build_tiny_controlnet(tmp_path / "controlnet")),
        segmentation_model=str(build_tiny_segmentation_model(tmp_path / "segformer")),
        steps=2,
    )
    runtime = LocalRuntime(settings)
    photo = photo_bytes("int_cc0_kitchen.jpg")
    staged = _result(list(runtime.run("staging", [photo], {"style": "japandi", "seed": 1})))
    assert staged.data["structure"] == "controlnet"
    assert staged.data["segmentation"] == "model"
    assert staged.data["weights"] == "untrained"
    cleared = _result(list(runtime.run("declutter", [photo], {"seed": 1})))
    assert cleared.data["mask_source"] == "model"
    broken = tmp_path / "empty"
    broken.mkdir()
    with pytest.raises(ModelNotFoundError, match="BKBN_CONTROLNET_MODEL"):
        LocalRuntime(settings.with_changes(controlnet_model=str(broken))).run(
            "staging", [photo], {"style": "japandi"}
        )


def test_concurrent_runs_share_one_pipeline_safely(tiny_settings) -> None:
    runtime = LocalRuntime(tiny_settings.with_changes(steps=2))
    photo = photo_bytes("int_cc0_kitchen.jpg")
    params = {"style": "coastal", "seed": 21}
    results: list = [None, None]

    def work(index: int) -> None:
        results[index] = list(runtime.run("staging", [photo], params))[-1]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(isinstance(r, Result) for r in results), results
    assert results[0].artifacts["image"].data == results[1].artifacts["image"].data


def test_a_run_cancelled_before_it_starts_renders_nothing(tiny_runtime) -> None:
    cancel = threading.Event()
    cancel.set()
    events = list(
        tiny_runtime.run(
            "staging", [photo_bytes("int_cc0_kitchen.jpg")], {"style": "coastal"}, cancel=cancel
        )
    )
    assert [e.type for e in events] == ["run.start", "error"]
    assert events[-1].error_type == "cancelled"
