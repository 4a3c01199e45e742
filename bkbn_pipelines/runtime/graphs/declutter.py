"""``declutter``: objects removed from a photo by inpainting.

Nodes, in order:

1. ``prepare`` decodes the photo, loads the inpainting pipeline (cached) and scales
   the photo to the render's working size.
2. ``mask`` takes the mask from the ``mask`` parameter (a PNG as bytes, a ``data:``
   URI or base64 text; white or opaque = remove; in the coordinates of the upright
   photo), or finds the objects: with the segmentation model when one is configured
   (everything that is not ceiling, wall, floor, window or door), else with the
   heuristic of :func:`bkbn_pipelines.runtime._vision.clutter_mask` (blobs of high
   edge density in the lower half).  Result field ``mask_source``.
3. ``render`` inpaints the masked part with the same pipeline as ``staging``, toward
   an empty, clean room; one ``render.progress`` per step.  An empty mask skips it.
4. ``composite`` puts the render back into the photo at the photo's own size: pixels
   outside the (slightly feathered) mask are the photo's.  PNG out, same width and
   height as the input.

There is no classical fallback that would pass off smeared pixels as a result: like
``staging``, this graph needs an inpainting model (or ``allow_untrained``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from ..._contract import GRAPHS, ROOM_TYPES, render_tokens
from ..._errors import InvalidParamsError
from ..._events import Artifact
from .._graph import Graph, Node, RunContext, register
from .._imageprep import encode_png, load_rgb, to_array
from .._models import (
    inpaint_folder,
    load_inpaint_pipeline,
    load_segmentation_model,
    segmentation_folder,
)
from .._vision import clutter_mask, feather, heuristic_layout, layout_from_labels
from . import _shared

__all__ = ["GRAPH"]

KNOWN = ("mask", "seed", "room_type")

PROMPT = (
    "an empty clean {room}, bare floor, tidy, nothing on the floor, "
    "real estate interior photography, natural light"
)
NEGATIVE_PROMPT = "clutter, objects, boxes, furniture, people, text, watermark, blurry"


def preflight(params: Mapping[str, Any], settings: Any) -> dict[str, Any]:
    params = {k: v for k, v in params.items() if v is not None}
    _shared.reject_unknown("declutter", params, KNOWN)
    mask = params.get("mask")
    checked = {
        "mask": _shared.decode_mask(mask) if mask is not None else None,
        "seed": _shared.seed(params),
        "room_type": _shared.choice(params, "room_type", ROOM_TYPES, "living"),
    }
    inpaint_folder(settings, "declutter")
    segmentation_folder(settings)
    return checked


def prepare(ctx: RunContext) -> None:
    if len(ctx.inputs) != 1:
        raise InvalidParamsError(f"declutter takes one photo, got {len(ctx.inputs)}")
    photo = load_rgb(ctx.inputs[0])
    pipeline = load_inpaint_pipeline(ctx.settings, "declutter")
    ctx.values.update(
        photo=photo,
        pipeline=pipeline,
        work=_shared.working_image(photo, pipeline, ctx.settings.render_size),
    )


def mask(ctx: RunContext) -> None:
    work: Image.Image = ctx.values["work"]
    given = ctx.params.get("mask")
    if given is not None:
        full = _shared.mask_array(given, ctx.values["photo"].size)
        small = Image.fromarray(full.astype(np.uint8) * 255).resize(
            work.size, Image.Resampling.BILINEAR
        )
        ctx.values["mask"] = np.asarray(small) > 0  # any touched pixel is repainted
        ctx.values["mask_source"] = "given"
        return
    rgb = to_array(work)
    model = load_segmentation_model(ctx.settings)
    if model is None:
        layout = heuristic_layout(rgb)
    else:
        layout = layout_from_labels(rgb, *model.labels_of(work))
        ctx.values["segmentation_weights"] = model.weights
    ctx.values["mask"] = clutter_mask(rgb, layout)
    ctx.values["mask_source"] = layout.method


def render(ctx: RunContext) -> None:
    if not ctx.values["mask"].any():
        ctx.values["rendered"] = None
        return
    pipeline = ctx.values["pipeline"]
    _shared.warn_untrained(ctx, pipeline)
    room = ctx.params["room_type"]
    ctx.values["rendered"] = _shared.render_inpaint(
        ctx,
        pipeline,
        ctx.values["work"],
        ctx.values["mask"],
        prompt=PROMPT.format(room="living room" if room == "living" else room),
        negative_prompt=NEGATIVE_PROMPT,
        steps=ctx.settings.steps,
        run_seed=ctx.params["seed"],
        control=None,
    )


def composite(ctx: RunContext) -> None:
    photo: Image.Image = ctx.values["photo"]
    rendered = ctx.values["rendered"]
    steps = ctx.settings.steps if rendered is not None else 0
    if rendered is None:
        image = photo
    else:
        soft = _shared.resize_mask(feather(ctx.values["mask"], 1.0), photo.size)
        image = _shared.blend(photo, rendered.resize(photo.size, Image.Resampling.LANCZOS), soft)
    pipeline = ctx.values["pipeline"]
    ctx.artifacts["image"] = Artifact(encode_png(image), "image/png")
    ctx.fields.update(
        width=image.width,
        height=image.height,
        weights=_shared.combined_weights(pipeline.weights, ctx.values.get("segmentation_weights")),
        usage={"tokens": render_tokens(image.width * image.height / 1e6, steps)},
        mask_source=ctx.values["mask_source"],
        masked_share=round(float(ctx.values["mask"].mean()), 4),
        seed=ctx.params["seed"],
        steps=steps,
        device=pipeline.device,
    )


GRAPH = register(
    Graph(
        name="declutter",
        version=GRAPHS["declutter"],
        nodes=(
            Node("prepare", prepare),
            Node("mask", mask, needs=("prepare",)),
            Node("render", render, needs=("mask",)),
            Node("composite", composite, needs=("render",)),
        ),
        description="Object removal: a given or detected mask, inpainted toward an empty room.",
        preflight=preflight,
    )
)
