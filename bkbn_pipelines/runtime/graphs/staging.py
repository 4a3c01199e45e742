"""``staging``: an empty room furnished in one of the six styles.

Nodes, in order:

1. ``prepare`` decodes the photo and loads the inpainting pipeline (cached), and
   scales the photo to the render's working size.
2. ``segment_rooms`` labels ceiling, wall, floor and openings (windows, doors): with
   the segmentation model when one is configured, else with the deterministic
   heuristic of :mod:`bkbn_pipelines.runtime._vision` (result field
   ``segmentation``).
3. ``condition_style`` builds the prompt and negative prompt of the style and room.
4. ``structure`` finds Canny edges and builds the inpainting mask.  With
   ``keep_geometry`` the mask covers the lower part of the room (where furniture
   stands) minus windows and doors; the edges then condition the ControlNet when one
   is configured (``structure: "controlnet"``), or are cut out of the mask so that
   walls, windows and the floor's lines are not repainted (``structure: "mask"``).
   Without ``keep_geometry`` everything below the ceiling may be repainted.
5. ``render`` runs the diffusers pipeline, seeded, one ``render.progress`` per step.
6. ``upscale`` resizes photo and render to the requested resolution (long side
   1024, 2048 or 4096, Lanczos), keeps the photo outside the mask, and writes PNG.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from ..._contract import GRAPHS, RESOLUTIONS, ROOM_TYPES, STYLES, render_tokens
from ..._errors import InvalidParamsError
from ..._events import Artifact
from .._graph import Graph, Node, RunContext, register
from .._imageprep import encode_png, fit_long_side, load_rgb, to_array
from .._models import (
    controlnet_folder,
    inpaint_folder,
    load_inpaint_pipeline,
    load_segmentation_model,
    segmentation_folder,
)
from .._vision import OPENING, dilate, feather, heuristic_layout, layout_from_labels
from . import _shared

__all__ = ["GRAPH", "NEGATIVE_PROMPT", "STYLE_PROMPTS", "prompts"]

STYLE_PROMPTS: dict[str, tuple[str, str]] = {
    "scandi-warm": (
        "scandinavian interior, light oak wood, warm white textiles, wool throws, "
        "soft beige sofa, paper pendant lamp, cosy and airy",
        "dark wood, heavy ornaments, neon colours",
    ),
    "modern-neutral": (
        "modern interior, neutral palette of greige, taupe and white, clean lines, "
        "low-profile furniture, brushed metal accents",
        "clutter, saturated colours, rustic furniture",
    ),
    "mid-century": (
        "mid-century modern interior, walnut furniture with tapered legs, mustard and "
        "teal accents, sculptural lighting, geometric rug",
        "minimalist white box, industrial pipes, ornate classic furniture",
    ),
    "coastal": (
        "coastal interior, white and sand tones with soft blues, linen slipcovers, "
        "rattan and driftwood, airy and sunlit",
        "dark heavy furniture, leather, industrial metal",
    ),
    "industrial": (
        "industrial loft interior, leather sofa, black steel frames, reclaimed wood, "
        "exposed-bulb lighting, concrete tones",
        "pastel colours, floral patterns, frilly textiles",
    ),
    "japandi": (
        "japandi interior, low natural-wood furniture, muted earth tones, linen, "
        "ceramics, calm minimal arrangement",
        "bright colours, clutter, glossy plastic",
    ),
}

ROOM_PHRASES = {
    "living": "living room with sofa, armchair, coffee table and rug",
    "bedroom": "bedroom with a made bed, bedside tables and lamps",
    "kitchen": "kitchen with a dining island and stools",
    "dining": "dining room with a table, chairs and a pendant light",
    "office": "home office with a desk, task chair and shelving",
    "bathroom": "bathroom with towels, plants and a bath mat",
}

NEGATIVE_PROMPT = (
    "people, text, watermark, blurry, distorted walls, warped windows, changed "
    "architecture, low quality, cartoon"
)

KNOWN = ("style", "room_type", "keep_geometry", "resolution", "seed")


def prompts(style: str, room_type: str) -> tuple[str, str]:
    """Prompt and negative prompt of ``style`` for ``room_type``."""
    look, avoid = STYLE_PROMPTS[style]
    prompt = (
        f"a professionally staged {ROOM_PHRASES[room_type]}, {look}, "
        "real estate interior photography, natural light, high detail"
    )
    return prompt, f"{NEGATIVE_PROMPT}, {avoid}"


def preflight(params: Mapping[str, Any], settings: Any) -> dict[str, Any]:
    """Check and complete the parameters; fail now on a missing model folder."""
    params = {k: v for k, v in params.items() if v is not None}
    _shared.reject_unknown("staging", params, KNOWN)
    if "style" not in params:
        raise InvalidParamsError(f"style: required, one of {', '.join(STYLES)}")
    checked = {
        "style": _shared.choice(params, "style", STYLES, None),
        "room_type": _shared.choice(params, "room_type", ROOM_TYPES, "living"),
        "keep_geometry": _shared.flag(params, "keep_geometry", True),
        "resolution": _shared.resolution(params),
        "seed": _shared.seed(params),
    }
    inpaint_folder(settings, "staging")
    controlnet_folder(settings)
    segmentation_folder(settings)
    return checked


def prepare(ctx: RunContext) -> None:
    if len(ctx.inputs) != 1:
        raise InvalidParamsError(f"staging takes one photo, got {len(ctx.inputs)}")
    photo = load_rgb(ctx.inputs[0])
    pipeline = load_inpaint_pipeline(ctx.settings, "staging")
    ctx.values["photo"] = photo
    ctx.values["pipeline"] = pipeline
    ctx.values["work"] = _shared.working_image(photo, pipeline, ctx.settings.render_size)


def segment_rooms(ctx: RunContext) -> None:
    work = ctx.values["work"]
    rgb = to_array(work)
    model = load_segmentation_model(ctx.settings)
    if model is None:
        ctx.values["layout"] = heuristic_layout(rgb)
    else:
        ids, names = model.labels_of(work)
        ctx.values["layout"] = layout_from_labels(rgb, ids, names)
        ctx.values["segmentation_weights"] = model.weights


def condition_style(ctx: RunContext) -> None:
    prompt, negative = prompts(ctx.params["style"], ctx.params["room_type"])
    ctx.values["prompt"], ctx.values["negative_prompt"] = prompt, negative


def structure(ctx: RunContext) -> None:
    layout = ctx.values["layout"]
    pipeline = ctx.values["pipeline"]
    h, w = layout.classes.shape
    rows = np.arange(h)[:, None]
    if ctx.params["keep_geometry"]:
        top = layout.ceiling_row + 0.35 * (layout.floor_row - layout.ceiling_row)
        mask = (rows >= top) & (layout.classes != OPENING)
        if pipeline.controlnet is None:
            mask &= ~dilate(layout.edges, max(1, round(0.008 * max(h, w))))
            ctx.values["structure"] = "mask"
        else:
            ctx.values["structure"] = "controlnet"
    else:
        mask = np.broadcast_to(rows >= layout.ceiling_row, (h, w)).copy()
        ctx.values["structure"] = "controlnet" if pipeline.controlnet is not None else "none"
    ctx.values["mask"] = mask
    ctx.values["control"] = layout.edges if pipeline.controlnet is not None else None


def render(ctx: RunContext) -> None:
    pipeline = ctx.values["pipeline"]
    _shared.warn_untrained(ctx, pipeline)
    ctx.values["rendered"] = _shared.render_inpaint(
        ctx,
        pipeline,
        ctx.values["work"],
        ctx.values["mask"],
        prompt=ctx.values["prompt"],
        negative_prompt=ctx.values["negative_prompt"],
        steps=ctx.settings.steps,
        run_seed=ctx.params["seed"],
        control=ctx.values["control"],
    )


def upscale(ctx: RunContext) -> None:
    photo: Image.Image = ctx.values["photo"]
    size = fit_long_side(photo.size, RESOLUTIONS[ctx.params["resolution"]])
    base = photo.resize(size, Image.Resampling.LANCZOS)
    rendered = ctx.values["rendered"].resize(size, Image.Resampling.LANCZOS)
    soft = _shared.resize_mask(feather(ctx.values["mask"], 1.5), size)
    image = _shared.blend(base, rendered, soft)
    pipeline = ctx.values["pipeline"]
    layout = ctx.values["layout"]
    steps = ctx.settings.steps
    ctx.artifacts["image"] = Artifact(encode_png(image), "image/png")
    ctx.fields.update(
        width=image.width,
        height=image.height,
        weights=_shared.combined_weights(pipeline.weights, ctx.values.get("segmentation_weights")),
        usage={"tokens": render_tokens(image.width * image.height / 1e6, steps)},
        style=ctx.params["style"],
        room_type=ctx.params["room_type"],
        keep_geometry=ctx.params["keep_geometry"],
        resolution=ctx.params["resolution"],
        seed=ctx.params["seed"],
        steps=steps,
        segmentation=layout.method,
        structure=ctx.values["structure"],
        device=pipeline.device,
    )


GRAPH = register(
    Graph(
        name="staging",
        version=GRAPHS["staging"],
        nodes=(
            Node("prepare", prepare),
            Node("segment_rooms", segment_rooms, needs=("prepare",)),
            Node("condition_style", condition_style),
            Node("structure", structure, needs=("segment_rooms",)),
            Node("render", render, needs=("prepare", "condition_style", "structure")),
            Node("upscale", upscale, needs=("render",)),
        ),
        description="Virtual staging: segment, condition on a style, inpaint, upscale.",
        preflight=preflight,
    )
)
