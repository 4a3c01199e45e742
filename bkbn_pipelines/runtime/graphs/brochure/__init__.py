"""The ``brochure`` graph: listing photos and facts to a PDF and an HTML brochure.

Nodes: ``storyboard`` → ``palette`` → ``copy`` → ``layout`` → ``render``.  Deterministic,
no model weights.  Inputs are the photos (bytes).  Parameters:

- ``listing``: the facts — ``address``, ``city``, ``price``, ``currency``, ``beds``,
  ``baths``, ``area_m2``, ``style``, ``property_type``, ``description``, ``units``,
  ``listing_id``; every one optional.
- ``photo_names``: names of the photos, in input order (default ``photo-1`` ...); used
  in error messages and as room hints.  ``photos`` (a list of URLs) serves too.
- ``photo_rooms``: room of each photo, a list in input order or a dict by name.
- ``max_photos``: at most this many photos in the brochure (default 8, 1 to 24).
- ``template``: ``classic`` (the only one, and the default).
- ``floor_plan``: the plan JSON as the ``floor-plan`` graph returns it (this project's
  extension); with it the PDF gets a floor-plan page and the HTML the plan as SVG.
  Checked by :func:`bkbn_pipelines._floor_plan.check_floor_plan`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ...._contract import FIXED_TOKENS, GRAPHS
from ...._errors import InvalidParamsError
from ...._events import Artifact
from ...._floor_plan import check_floor_plan
from ..._graph import Graph, Node, RunContext, register
from ._copy import write_copy
from ._palette import dominant_colours
from ._plan import prepare_plan
from ._render import plan_layout, render_html, render_pdf
from ._storyboard import storyboard

__all__ = ["GRAPH", "TEMPLATES", "brochure_params"]

TEMPLATES = ("classic",)


def _names(params: Mapping[str, Any], count: int) -> list[str]:
    raw = params.get("photo_names")
    photos = params.get("photos")
    if raw is None and isinstance(photos, Sequence) and not isinstance(photos, str):
        raw = [
            f"photo-{i + 1}"
            if str(u).startswith("data:")
            else str(u).split("?")[0].rstrip("/").rsplit("/", 1)[-1] or f"photo-{i + 1}"
            for i, u in enumerate(photos)
        ]
    if raw is None:
        return [f"photo-{i + 1}" for i in range(count)]
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise InvalidParamsError("photo_names must be a list of names, one per photo")
    names = [str(n) for n in raw][:count]
    names += [f"photo-{i + 1}" for i in range(len(names), count)]
    return names


def brochure_params(params: Mapping[str, Any], count: int) -> dict[str, Any]:
    """Checked parameters; ``InvalidParamsError`` names the one that is wrong."""
    listing = params.get("listing") or {}
    if not isinstance(listing, Mapping):
        raise InvalidParamsError("listing must be an object of facts (address, price, ...)")
    template = params.get("template") or "classic"
    if template not in TEMPLATES:
        raise InvalidParamsError(
            f"template {template!r} is unknown; templates: {', '.join(TEMPLATES)}"
        )
    max_photos = params.get("max_photos", 8)
    if isinstance(max_photos, bool) or not isinstance(max_photos, int) or not 1 <= max_photos <= 24:
        raise InvalidParamsError(f"max_photos must be an integer from 1 to 24, got {max_photos!r}")
    floor_plan = params.get("floor_plan")
    if floor_plan is not None:
        floor_plan = check_floor_plan(floor_plan, "floor_plan")
    if count == 0:
        raise InvalidParamsError("brochure needs at least one photo")
    if count < 0:  # preflight: the photos are not known yet
        count = 0
    listing_id = listing.get("listing_id") or listing.get("id")
    return {
        "listing": dict(listing),
        "listing_id": str(listing_id) if listing_id is not None else None,
        "template": template,
        "max_photos": max_photos,
        "names": _names(params, count),
        "floor_plan": floor_plan,
    }


def _storyboard(ctx: RunContext) -> None:
    p = brochure_params(ctx.params, len(ctx.inputs))
    ctx.values["params"] = p
    chosen, duplicates, rejected = storyboard(
        ctx.inputs, p["names"], ctx.params, listing_id=p["listing_id"], max_photos=p["max_photos"]
    )
    if not chosen:
        raise InvalidParamsError(
            "brochure: no usable photo; "
            + "; ".join(f"{r['name']}: {r['reason']}" for r in rejected)
        )
    ctx.values["photos"] = chosen
    ctx.values["storyboard"] = {
        "photos": [dict(p.to_json(), position=i) for i, p in enumerate(chosen)],
        "duplicates": [p.to_json() for p in duplicates],
        "rejected": rejected,
        "cover": chosen[0].index,
    }


def _palette(ctx: RunContext) -> None:
    ctx.values["palette"] = {
        "colours": dominant_colours([p.image for p in ctx.values["photos"]], k=5, seed=0),
        "space": "CIELAB D65",
        "method": "k-means, k=5, seed 0",
    }


def _copy(ctx: RunContext) -> None:
    rooms = [p.room for p in ctx.values["photos"]]
    ctx.values["copy"] = write_copy(ctx.values["params"]["listing"], rooms)


def _layout(ctx: RunContext) -> None:
    p = ctx.values["params"]
    drawing = None
    if p["floor_plan"] is not None:
        # areas as the copy shows them: in the listing's units, else in the plan's
        units = str(p["listing"].get("units") or "").strip() or p["floor_plan"]["units"]
        drawing = prepare_plan(p["floor_plan"], units)
    ctx.values["floor_plan"] = drawing
    layout = plan_layout(
        ctx.values["storyboard"]["photos"],
        ctx.values["copy"],
        ctx.values["palette"]["colours"],
        floor_plan=drawing,
    )
    layout["template"] = ctx.values["params"]["template"]
    ctx.values["layout"] = layout


def _render(ctx: RunContext) -> None:
    photos = ctx.values["photos"]
    images = [p.image for p in photos]
    captions = [p.room for p in photos]
    copy, layout = ctx.values["copy"], ctx.values["layout"]
    colours = ctx.values["palette"]["colours"]
    footer = " · ".join(part for part in (copy.get("listing_id"), ctx.graph.full_name) if part)
    ctx.progress(1, 2)
    drawing = ctx.values["floor_plan"]
    pdf = render_pdf(layout, images, captions, copy, colours, footer=footer, floor_plan=drawing)
    ctx.progress(2, 2)
    html = render_html(layout, images, captions, copy, colours, footer=footer, floor_plan=drawing)
    parts = {
        "storyboard": ctx.values["storyboard"],
        "palette": ctx.values["palette"],
        "copy": copy,
        "layout": layout,
    }
    ctx.artifacts["pdf"] = Artifact(pdf, "application/pdf")
    ctx.artifacts["html"] = Artifact(html, "text/html; charset=utf-8")
    for name, part in parts.items():
        data = json.dumps(part, indent=2, ensure_ascii=False).encode("utf-8")
        ctx.artifacts[name] = Artifact(data, "application/json")
    ctx.fields["parts"] = parts
    ctx.fields["pages"] = len(layout["pages"])
    ctx.fields["weights"] = "none"
    ctx.fields["usage"] = {"tokens": FIXED_TOKENS}
    ctx.fields["width"], ctx.fields["height"] = (
        round(layout["width_pt"]),
        round(layout["height_pt"]),
    )


def _preflight(params: Mapping[str, Any], settings: Any) -> Mapping[str, Any]:
    brochure_params(params, -1)  # raises InvalidParamsError before the run starts
    return params


GRAPH = register(
    Graph(
        name="brochure",
        preflight=_preflight,
        version=GRAPHS["brochure"],
        description="Listing photos and facts to a PDF and HTML brochure with its parts.",
        nodes=(
            Node("storyboard", _storyboard),
            Node("palette", _palette, ("storyboard",)),
            Node("copy", _copy, ("storyboard",)),
            Node("layout", _layout, ("palette", "copy")),
            Node("render", _render, ("layout",)),
        ),
    )
)
