"""The brochure graph on real photos: storyboard, palette, copy, and the PDF and HTML."""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pypdf import PdfReader

import bkbn_pipelines.runtime.graphs  # noqa: F401  (registers the graphs)
from bkbn_pipelines._contract import STYLES
from bkbn_pipelines._events import ErrorEvent, NodeDone, Result
from bkbn_pipelines.catalogue import read_catalogue
from bkbn_pipelines.runtime import get_graph, run_graph
from bkbn_pipelines.runtime.capture import demo_plan, plan_truth, synthesize_capture
from bkbn_pipelines.runtime.graphs.brochure._copy import _area_text, format_price, write_copy
from bkbn_pipelines.runtime.graphs.brochure._palette import delta_e, dominant_colours
from bkbn_pipelines.runtime.graphs.brochure._storyboard import _room_from_name, dhash, hamming

from ._photos import PHOTOS, decode, photo_bytes

NAMES = [
    "int_pixabay_bathroom.jpg",
    "int_cc0_kitchen.jpg",
    "int_pd_living_room.jpg",
    "int_pixabay_bedroom.jpg",
]
LISTING = {
    "listing_id": "FC-0042",
    "address": "12 rue des Granges, 25000 Besançon",
    "city": "Besançon, Franche-Comté",
    "price": 450000,
    "currency": "EUR",
    "beds": 3,
    "baths": 2,
    "area_m2": 120,
    "style": "scandi-warm",
    "property_type": "apartment",
}


def _run(photos, **params) -> list:
    return list(run_graph(get_graph("brochure"), photos, params))


def _result(photos, **params) -> Result:
    events = _run(photos, **params)
    assert isinstance(events[-1], Result), events[-1]
    return events[-1]


def _reencoded(data: bytes, scale: float, quality: int) -> bytes:
    """The same photo resized and saved again as JPEG at ``quality``."""
    image = decode(data).convert("RGB")
    size = (round(image.width * scale), round(image.height * scale))
    buf = io.BytesIO()
    image.resize(size, Image.Resampling.LANCZOS).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="module")
def brochure() -> Result:
    return _result([photo_bytes(n) for n in NAMES], listing=LISTING, photo_names=NAMES)


def _pdf_text(result: Result) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(result.artifacts["pdf"].data))
    return reader, "\n".join(page.extract_text() for page in reader.pages)


def test_graph_is_registered_with_its_nodes():
    graph = get_graph("brochure")
    assert graph.full_name == "brochure-v0.9"
    assert [n.name for n in graph.nodes] == ["storyboard", "palette", "copy", "layout", "render"]


def test_result_has_every_artifact_and_the_parts_inline(brochure: Result):
    assert set(brochure.artifacts) == {"pdf", "html", "storyboard", "palette", "copy", "layout"}
    assert brochure.artifacts["pdf"].media_type == "application/pdf"
    assert brochure.artifacts["html"].media_type.startswith("text/html")
    for name in ("storyboard", "palette", "copy", "layout"):
        assert brochure.artifacts[name].media_type == "application/json"
        assert json.loads(brochure.artifacts[name].data) == brochure.data["parts"][name]
    assert brochure.data["pages"] == len(brochure.data["parts"]["layout"]["pages"])
    assert brochure.data["weights"] == "none"


def test_storyboard_puts_the_living_room_first_then_room_order(brochure: Result):
    photos = brochure.data["parts"]["storyboard"]["photos"]
    assert [p["room"] for p in photos] == ["living", "kitchen", "bedroom", "bathroom"]
    assert photos[0]["name"] == "int_pd_living_room.jpg"
    assert all(0 <= p["score"] <= 1 for p in photos)


def test_storyboard_puts_near_duplicates_out():
    original = photo_bytes("int_pd_living_room.jpg")
    photos = [
        original,
        _reencoded(original, 0.5, 70),  # the same photo, resized and re-encoded
        photo_bytes("int_cc0_kitchen.jpg"),
        _reencoded(original, 0.8, 40),  # and again
    ]
    story = _result(photos, listing=LISTING).data["parts"]["storyboard"]
    assert len(story["photos"]) == 2
    assert {p["index"] for p in story["photos"]} & {0, 1, 3} != set()
    assert len(story["duplicates"]) == 2
    kept = next(p["index"] for p in story["photos"] if p["index"] in (0, 1, 3))
    assert all(d["duplicate_of"] == kept for d in story["duplicates"])


def test_dhash_tells_different_photos_apart():
    a = decode(photo_bytes("int_pd_living_room.jpg"))
    b = decode(photo_bytes("int_unsplash_living_library.jpg"))
    c = decode(_reencoded(photo_bytes("int_pd_living_room.jpg"), 0.3, 60))
    assert hamming(dhash(a), dhash(c)) <= 10 < hamming(dhash(a), dhash(b))


@pytest.mark.parametrize("name", ["int_pd_living_room.jpg", "int_pixabay_bedroom.jpg"])
def test_palette_is_stable_when_the_photo_is_resized(name: str):
    image = decode(photo_bytes(name)).convert("RGB")
    half = image.resize((image.width // 2, image.height // 2), Image.Resampling.LANCZOS)
    big = dominant_colours(image)
    small = dominant_colours(half)
    assert len(big) == len(small) == 5
    assert sum(c["weight"] for c in big) == pytest.approx(1, abs=0.01)
    for colour in big:
        if colour["weight"] < 0.05:
            continue
        nearest = min(delta_e(colour["lab"], other["lab"]) for other in small)
        assert nearest < 6, (colour, small)
    assert dominant_colours(image) == big  # seeded: the same every time


def test_pdf_opens_has_pages_and_real_text(brochure: Result):
    reader, text = _pdf_text(brochure)
    assert len(reader.pages) >= 2
    flat = " ".join(text.split())
    assert "Warm Scandinavian 3-bedroom apartment in Besançon, Franche-Comté" in flat
    assert "12 rue des Granges, 25000 Besançon" in flat
    assert "€450,000" in flat
    assert "None" not in flat
    assert len(reader.pages[0].images) == 1  # the hero
    assert len(reader.pages[1].images) == 3  # the gallery
    assert len(reader.pages[-1].images) == 4  # small prints of all four on the details page


def test_html_is_self_contained_and_names_the_address(brochure: Result):
    html = brochure.artifacts["html"].data.decode("utf-8")
    assert "12 rue des Granges, 25000 Besançon" in html
    assert "Franche-Comté" in html
    assert html.count("data:image/jpeg;base64,") == 4
    assert 'src="http' not in html


def test_missing_facts_are_left_out_never_none():
    result = _result([photo_bytes("int_pixabay_bedroom.jpg")], listing={"beds": None})
    copy = result.data["parts"]["copy"]
    assert copy["headline"] == "Home"
    assert copy["facts"] == []
    _, text = _pdf_text(result)
    assert "None" not in text and "None" not in result.artifacts["html"].data.decode()
    assert result.data["pages"] == 2  # cover and details, no gallery for one photo


def test_copy_formats_prices_and_skips_missing_words():
    assert format_price(1250000, "USD") == "$1,250,000"
    assert format_price("980000", "chf") == "CHF 980,000"
    assert format_price(None, "EUR") is None
    copy = write_copy({"baths": 1, "area_m2": 54.4, "city": "Dole"}, ["kitchen"])
    assert copy["headline"] == "Home in Dole"
    assert copy["body"] == (
        "This home in Dole offers 1 bathroom and 54.4 m² of living space. "
        "The photographs show the kitchen."
    )


@pytest.mark.parametrize(
    ("area", "units", "shown"),
    [
        (78.5, "metric", "78.5 m²"),
        (60.5, "metric", "60.5 m²"),
        (142, "metric", "142 m²"),
        (142.0, "metric", "142 m²"),
        ("34.5", "metric", "34.5 m²"),
        (54.44, "metric", "54.4 m²"),
        (99.97, "metric", "100 m²"),
        (1250.5, "metric", "1,250.5 m²"),
        (78.5, "imperial", "845 sq ft"),
        (142, "imperial", "1,528 sq ft"),
    ],
)
def test_areas_keep_their_half(area, units, shown: str):
    copy = write_copy({"area_m2": area, "units": units})
    assert copy["body"] == f"This home offers {shown} of living space."
    assert {"label": "Living area", "value": shown} in copy["facts"]


def test_every_style_has_a_human_name_in_the_headline_body_and_facts():
    """In a sentence, and with its first letter raised in a heading and the facts table."""
    in_a_sentence = {
        "scandi-warm": "warm Scandinavian",
        "modern-neutral": "modern neutral",
        "mid-century": "mid-century modern",
        "coastal": "coastal",
        "industrial": "industrial",
        "japandi": "Japandi",
    }
    assert set(in_a_sentence) == set(STYLES)
    for style, words in in_a_sentence.items():
        heading = words[:1].upper() + words[1:]
        copy = write_copy({"style": style, "beds": 2, "city": "Dole"})
        assert copy["headline"] == f"{heading} 2-bedroom home in Dole"
        assert copy["body"] == f"This {words} home in Dole offers 2 bedrooms."
        assert {"label": "Style", "value": heading} in copy["facts"]


@pytest.mark.parametrize(
    ("name", "room"),
    [
        ("int_pixabay_bedroom.jpg", "bedroom"),
        ("int_pd_living_room.jpg", "living"),
        ("int_pd_living-room.jpg", "living"),
        ("living-room_2.JPG", "living"),
        ("LivingRoom.jpg", "living"),
        ("photos/master-bedroom-2.jpeg", "bedroom"),
        ("Bedrooms_03.jpg", "bedroom"),
        ("garden_view_bedroom.jpg", "bedroom"),
        ("exif3_pixabay_bathroom.jpg", "bathroom"),
        ("en-suite_bath.jpg", "bathroom"),
        ("kitchen_1.jpg", "kitchen"),
        ("front.jpg", "exterior"),
        ("IMG_0042.jpg", None),
        ("glass.jpg", None),
        ("frontier.jpg", None),  # a word of the name, not the start of one
    ],
)
def test_room_from_name_takes_separators_as_word_breaks(name: str, room: str | None):
    assert _room_from_name(name) == room


def _example_listing(slug: str) -> tuple[dict, list[Path]]:
    """Facts and photo paths of one listing of ``examples/catalogue.csv`` (the demo's)."""
    catalogue = read_catalogue(PHOTOS.parent / "catalogue.csv")
    row = catalogue.listings.set_index("slug").loc[slug]
    return catalogue.facts(slug) | {"listing_id": row["listing_id"]}, [
        Path(p) for p in row["photos"]
    ]


def test_demo_listing_000388907_shows_every_room_it_has():
    """The demo's Besançon flat: a living room, a bedroom and a bathroom, as named."""
    listing, paths = _example_listing("000388907")
    names = [path.name for path in paths]
    result = _result([path.read_bytes() for path in paths], listing=listing, photo_names=names)
    photos = result.data["parts"]["storyboard"]["photos"]
    assert [p["room"] for p in photos] == ["living", "bedroom", "bathroom"]
    assert all(p["room_source"] == "name" for p in photos)
    copy = result.data["parts"]["copy"]
    assert copy["headline"] == "Warm Scandinavian 2-bedroom home in Besançon"
    assert "2 bedrooms, 1 bathroom and 78.5 m² of living space" in copy["body"]
    assert "The photographs show the living room, a bedroom and the bathroom." in copy["body"]
    _, text = _pdf_text(result)
    flat = " ".join(text.split())
    for caption in ("Living", "Bedroom", "Bathroom"):
        assert caption in flat
    assert "78.5 m²" in flat and "78 m²" not in flat


def test_example_photos_say_their_room_in_their_names():
    rooms = {path.name: _room_from_name(path.name) for path in PHOTOS.glob("*.jpg")}
    unnamed = [name for name, room in rooms.items() if room is None]
    assert unnamed == ["int_pexels_hallway_6615808.jpg"]  # a hallway: no room of the brochure


def test_demo_listing_with_a_capture_matches_its_floor_plan():
    """MLS/12345's walk-through capture is of ``demo_plan()``: the catalogue must agree."""
    listing, _ = _example_listing("mls-12345")
    plan = plan_truth(demo_plan())
    assert listing["area_m2"] == pytest.approx(sum(p.area for _, p in plan.rooms), abs=0.1)
    assert listing["beds"] == sum(label == "bedroom" for label, _ in plan.rooms)
    assert listing["baths"] == sum(label == "bathroom" for label, _ in plan.rooms)
    copy = write_copy(listing, ["living", "kitchen", "bedroom", "bathroom"])
    assert copy["headline"] == "Modern neutral 1-bedroom home in Springfield"
    assert "1 bedroom, 1 bathroom and 34.5 m² of living space" in copy["body"]


@pytest.mark.parametrize(
    ("rooms", "beds", "shown"),
    [
        (["bathroom", "bathroom", "kitchen"], 3, "the bathroom and the kitchen"),
        (["living", "bedroom", "bedroom", "bathroom"], 1, "the living room, the bedroom and "),
        (["bedroom", "bedroom"], 2, "the bedrooms"),
        (["bedroom", "bedroom"], 4, "two bedrooms"),
        (["bedroom"], None, "the bedroom"),
        (["exterior", "room", "office"], 2, "the exterior and the study"),
    ],
)
def test_photographed_rooms_are_named_once_each(rooms, beds, shown: str):
    body = write_copy({"beds": beds, "baths": 1}, rooms)["body"]
    sentence = body[body.index("The photographs show ") :]
    assert sentence.startswith(f"The photographs show {shown}"), sentence
    assert sentence.count("the bathroom") <= 1 and sentence.count("the bedroom") <= 1


def test_room_hints_from_params_win_over_names():
    photos = [photo_bytes("int_cc0_kitchen.jpg"), photo_bytes("int_pixabay_bedroom.jpg")]
    story = _result(photos, photo_names=["a.jpg", "b.jpg"], photo_rooms=["office", "living"]).data[
        "parts"
    ]["storyboard"]
    assert [(p["name"], p["room"]) for p in story["photos"]] == [
        ("b.jpg", "living"),
        ("a.jpg", "office"),
    ]
    assert story["photos"][0]["room_source"] == "params"


def test_a_broken_photo_is_left_out_and_named():
    photos = [photo_bytes("int_cc0_kitchen.jpg"), b"<html>not a photo</html>"]
    result = _result(photos, photo_names=["kitchen.jpg", "broken.jpg"], listing=LISTING)
    rejected = result.data["parts"]["storyboard"]["rejected"]
    assert [r["name"] for r in rejected] == ["broken.jpg"]
    assert "broken.jpg" in rejected[0]["reason"]


@pytest.mark.parametrize(
    ("photos", "params", "message"),
    [
        ([b"junk"], {}, "no usable photo"),
        ([], {}, "at least one photo"),
        (["ok"], {"template": "glossy"}, "template 'glossy' is unknown"),
        (["ok"], {"listing": "12 Main St"}, "listing must be an object"),
        (["ok"], {"max_photos": 0}, "max_photos"),
    ],
    ids=["junk", "none", "template", "listing", "max_photos"],
)
def test_bad_requests_end_in_invalid_request_errors(photos, params, message):
    photos = [photo_bytes("int_cc0_kitchen.jpg") if p == "ok" else p for p in photos]
    events = _run(photos, **params)
    assert isinstance(events[-1], ErrorEvent)
    assert events[-1].error_type == "invalid_request_error"
    assert message in events[-1].message
    assert not any(isinstance(e, NodeDone) and e.node == "render" for e in events)


def test_exif_orientation_is_applied_before_anything_else():
    result = _result([photo_bytes("exif6_pd_living_room.jpg")])
    photo = result.data["parts"]["storyboard"]["photos"][0]
    upright = decode(photo_bytes("int_pd_living_room.jpg"))
    assert (photo["width"], photo["height"]) == upright.size
    assert np.isfinite(photo["score"])


def test_local_runtime_refuses_bad_parameters_before_the_run():
    from bkbn_pipelines._errors import InvalidParamsError
    from bkbn_pipelines.runtime import LocalRuntime, RuntimeSettings

    runtime = LocalRuntime(RuntimeSettings(device="cpu"))
    with pytest.raises(InvalidParamsError, match="template"):
        runtime.run("brochure", [photo_bytes("int_cc0_kitchen.jpg")], {"template": "glossy"})
    events = list(
        runtime.run(
            "brochure",
            [photo_bytes("int_cc0_kitchen.jpg")],
            {"listing": LISTING, "photos": ["https://cdn.example/p/kitchen_1.jpg?x=1"]},
        )
    )
    result = events[-1]
    assert isinstance(result, Result)
    assert result.data["parts"]["storyboard"]["photos"][0]["name"] == "kitchen_1.jpg"
    assert result.data["usage"] == {"tokens": 10}
    assert (result.data["width"], result.data["height"]) == (595, 842)


def test_cmyk_photo_keeps_its_colours_in_the_pdf():
    original = decode(photo_bytes("int_pixabay_bedroom.jpg")).convert("RGB")
    buf = io.BytesIO()
    original.convert("CMYK").save(buf, format="JPEG", quality=95)  # Pillow writes Adobe CMYK
    result = _result([buf.getvalue()], listing=LISTING)
    reader = PdfReader(io.BytesIO(result.artifacts["pdf"].data))
    (embedded,) = reader.pages[0].images
    hero = embedded.image.convert("RGB")
    assert hero.mode == "RGB"
    want = np.asarray(original.resize((32, 32), Image.Resampling.BOX), float).mean(axis=(0, 1))
    got = np.asarray(hero.resize((32, 32), Image.Resampling.BOX), float).mean(axis=(0, 1))
    # the hero is a crop of the photo, so compare overall colour loosely, but an inverted
    # or channel-swapped CMYK would be off by far more than this
    assert np.abs(want - got).max() < 25, (want, got)


# -- the floor_plan parameter ---------------------------------------------------------


@pytest.fixture(scope="module")
def floor_plan() -> dict:
    """The floor-plan graph's plan of the demo flat, from a synthesised walk-through."""
    from bkbn_pipelines.runtime import LocalRuntime, RuntimeSettings

    bundle = synthesize_capture(demo_plan(), seed=0, frames_per_room=6, width=96, height=72)
    events = list(LocalRuntime(RuntimeSettings(device="cpu")).run("floor-plan", [bundle], {}))
    assert isinstance(events[-1], Result), events[-1]
    plan = events[-1].data["plan"]
    assert [room["label"] for room in plan["rooms"]] == ["living", "bedroom", "bathroom"]
    return plan


@pytest.fixture(scope="module")
def planned(floor_plan: dict) -> Result:
    photos = [photo_bytes(n) for n in NAMES]
    return _result(photos, listing=LISTING, photo_names=NAMES, floor_plan=floor_plan)


def _svg(html: str) -> str:
    found = re.findall(r"<svg\b.*?</svg>", html, flags=re.S)
    assert len(found) == 1, found
    return found[0]


def test_a_floor_plan_adds_a_page_with_every_room_and_its_area(
    brochure: Result, planned: Result, floor_plan: dict
):
    without, _ = _pdf_text(brochure)
    reader, _ = _pdf_text(planned)
    assert len(reader.pages) == len(without.pages) + 1
    kinds = [page["kind"] for page in planned.data["parts"]["layout"]["pages"]]
    before = [page["kind"] for page in brochure.data["parts"]["layout"]["pages"]]
    assert kinds == [*before[:-1], "floor_plan", "details"]
    assert planned.data["pages"] == len(reader.pages)
    page = reader.pages[kinds.index("floor_plan")]
    text = " ".join(page.extract_text().split())
    assert "FLOOR PLAN" in text
    for room in floor_plan["rooms"]:
        assert room["label"].capitalize() in text
        assert _area_text(room["area_m2"]) in text  # the copy's format: "21.9 m²"
    total = sum(room["area_m2"] for room in floor_plan["rooms"])
    assert f"3 rooms · {_area_text(total)}" in text
    assert not page.images  # drawn as vectors, not a picture


def test_the_plan_is_drawn_to_scale_inside_the_page_margins(planned: Result, floor_plan: dict):
    layout = planned.data["parts"]["layout"]
    page = next(p for p in layout["pages"] if p["kind"] == "floor_plan")
    spec = page["plan"]
    x, y, w, h = spec["box"]
    assert x >= 40 and x + w <= layout["width_pt"] - 40
    assert y >= 60 and y + h <= layout["height_pt"] - 90
    assert w > 0.6 * (layout["width_pt"] - 80) or h > 0.6 * (layout["height_pt"] - 160)
    # a usual scale on A4: 1:N with a metre N millimetres of paper long
    denominator = int(spec["scale"].split(":")[1])
    assert spec["pt_per_m"] == pytest.approx(72 / 0.0254 / denominator, rel=1e-4)
    points = [p for room in floor_plan["rooms"] for p in room["polygon"]]
    width_m = max(p[0] for p in points) - min(p[0] for p in points)
    assert w >= width_m * spec["pt_per_m"]  # the walls widen it a little
    assert [r["name"] for r in spec["rooms"]] == ["Living", "Bedroom", "Bathroom"]


def test_the_html_brochure_shows_the_plan_as_inline_svg(brochure: Result, planned: Result):
    html = planned.artifacts["html"].data.decode("utf-8")
    svg = _svg(html)
    for label in ("Living", "Bedroom", "Bathroom"):
        assert f">{label}</text>" in svg
    assert "21.9 m²" in svg and 'viewBox="' in svg
    assert "<svg" not in brochure.artifacts["html"].data.decode("utf-8")


def test_plan_areas_follow_the_listings_units(floor_plan: dict):
    listing = {**LISTING, "units": "imperial"}
    result = _result([photo_bytes("int_cc0_kitchen.jpg")], listing=listing, floor_plan=floor_plan)
    reader, _ = _pdf_text(result)
    text = " ".join(reader.pages[1].extract_text().split())
    for room in floor_plan["rooms"]:
        assert _area_text(room["area_m2"], imperial=True) in text
    assert "m²" not in text


def test_a_small_room_whose_name_does_not_fit_gets_a_number(floor_plan: dict):
    plan = copy.deepcopy(floor_plan)
    x, y = plan["rooms"][0]["label_point"]
    plan["rooms"].append(
        {
            "label": "walk_in_closet",
            "polygon": [[x, y], [x + 0.3, y], [x + 0.3, y + 0.3], [x, y + 0.3], [x, y]],
            "area_m2": 0.09,
        }
    )
    result = _result([photo_bytes("int_cc0_kitchen.jpg")], floor_plan=plan)
    reader, _ = _pdf_text(result)
    text = " ".join(reader.pages[1].extract_text().split())
    assert "1 Walk in closet" in text and "0.1 m²" in text


def _bad_plans(plan: dict) -> dict[str, tuple[object, str]]:
    """Malformed plans and what the error names."""

    def changed(path, value):
        bad = copy.deepcopy(plan)
        target = bad
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return bad

    many = [copy.deepcopy(plan["rooms"][0]) for _ in range(65)]
    return {
        "text": ("a plan", "floor_plan: must be an object"),
        "no-rooms": (changed(["rooms"], []), "floor_plan.rooms"),
        "rooms-not-a-list": (changed(["rooms"], {"a": 1}), "floor_plan.rooms: must be a list"),
        "no-polygon": (changed(["rooms", 1, "polygon"], KeyError), "floor_plan.rooms[1].polygon"),
        "two-points": (changed(["rooms", 0, "polygon"], [[0, 0], [1, 1]]), "rooms[0].polygon"),
        "text-coordinate": (changed(["rooms", 0, "polygon", 2], [1, "2"]), "polygon[2][1]"),
        "no-label": (changed(["rooms", 2, "label"], ""), "floor_plan.rooms[2].label"),
        "no-area": (changed(["rooms", 0, "area_m2"], None), "floor_plan.rooms[0].area_m2"),
        "no-walls": (changed(["walls"], KeyError), "floor_plan.walls"),
        "wall-thickness": (changed(["walls", 0, "thickness"], -1), "walls[0].thickness"),
        "opening-type": (changed(["openings", 0, "type"], "arch"), "openings[0].type"),
        "opening-wall": (changed(["openings", 0, "wall"], 99), "openings[0].wall"),
        "feet": (changed(["length_unit"], "ft"), "floor_plan.length_unit"),
        "too-many-rooms": (changed(["rooms"], many), "at most 64"),
        "far-away": (changed(["rooms", 0, "polygon", 0], [5e6, 0]), "polygon[0][0]"),
    }


def test_a_malformed_floor_plan_is_an_invalid_request_naming_it(floor_plan: dict):
    from bkbn_pipelines._errors import InvalidParamsError
    from bkbn_pipelines.runtime import LocalRuntime, RuntimeSettings

    runtime = LocalRuntime(RuntimeSettings(device="cpu"))
    photo = photo_bytes("int_cc0_kitchen.jpg")
    for name, (plan, message) in _bad_plans(floor_plan).items():
        with pytest.raises(InvalidParamsError, match=re.escape(message)) as caught:
            runtime.run("brochure", [photo], {"floor_plan": plan})  # before the run
        assert str(caught.value).startswith("floor_plan"), name
        events = _run([photo], floor_plan=plan)
        assert isinstance(events[-1], ErrorEvent), name
        assert events[-1].error_type == "invalid_request_error"
        assert message in events[-1].message, (name, events[-1].message)


def test_a_plan_without_wall_outlines_or_label_points_is_drawn(floor_plan: dict):
    """Only the centre lines and thicknesses of the walls (as the emulator's plan has)."""
    plan = copy.deepcopy(floor_plan)
    for wall in plan["walls"]:
        del wall["polygon"]
    for room in plan["rooms"]:
        del room["label_point"]
        del room["area_display"]
    result = _result([photo_bytes("int_cc0_kitchen.jpg")], floor_plan=plan)
    reader, _ = _pdf_text(result)
    text = " ".join(reader.pages[1].extract_text().split())
    for room in plan["rooms"]:
        assert room["label"].capitalize() in text and _area_text(room["area_m2"]) in text
