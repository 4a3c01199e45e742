"""Both backends send the inputs' names to ``brochure``: its room hints and error messages."""

from __future__ import annotations

from pathlib import Path

from bkbn_pipelines.backends import ApiBackend, GraphRequest, InputFile
from bkbn_pipelines.backends._local import LocalBackend
from bkbn_pipelines.runtime import RuntimeSettings

PHOTOS = Path(__file__).resolve().parents[2] / "examples" / "photos"


def _inputs() -> list[InputFile]:
    """A kitchen and a living room, the kitchen first; their names say which is which."""
    return [
        InputFile((PHOTOS / "int_cc0_kitchen.jpg").read_bytes(), "image/jpeg", "kitchen.jpg"),
        InputFile((PHOTOS / "int_pd_living_room.jpg").read_bytes(), "image/jpeg", "living.jpg"),
    ]


def test_local_brochure_names_its_photos_after_the_inputs() -> None:
    backend = LocalBackend(RuntimeSettings(device="cpu"))
    request = GraphRequest(graph="brochure", inputs=_inputs(), params={"listing": {}})
    result = list(backend.stream(request))[-1]
    photos = result.data["parts"]["storyboard"]["photos"]
    assert [(p["name"], p["room"], p["room_source"]) for p in photos] == [
        ("living.jpg", "living", "name"),  # rooms ordered by name: the living room first
        ("kitchen.jpg", "kitchen", "name"),
    ]


def test_local_brochure_keeps_photo_names_given_in_the_params() -> None:
    backend = LocalBackend(RuntimeSettings(device="cpu"))
    params = {"listing": {}, "photo_names": ["a.jpg", "b.jpg"]}
    result = list(backend.stream(GraphRequest("brochure", _inputs(), params)))[-1]
    names = [p["name"] for p in result.data["parts"]["storyboard"]["photos"]]
    assert sorted(names) == ["a.jpg", "b.jpg"]


def test_api_brochure_body_carries_the_input_names() -> None:
    backend = ApiBackend(api_key="bkbn_sk_test_0000", base_url="http://127.0.0.1:9")
    try:
        body = backend.body(GraphRequest("brochure-v0.9", _inputs(), {"listing": {}}))
        assert body["params"]["photo_names"] == ["kitchen.jpg", "living.jpg"]
        assert [url[:23] for url in body["params"]["photos"]] == ["data:image/jpeg;base64,"] * 2
        given = {"listing": {}, "photo_names": ["a.jpg", "b.jpg"]}
        body = backend.body(GraphRequest("brochure", _inputs(), given))
        assert body["params"]["photo_names"] == ["a.jpg", "b.jpg"]
        unnamed = [InputFile(item.data, item.media_type) for item in _inputs()]
        body = backend.body(GraphRequest("brochure", unnamed, {}))
        assert body["params"]["photo_names"] == ["photo-1", "photo-2"]
        relight = backend.body(GraphRequest("relight", _inputs()[:1], {}))
        assert "photo_names" not in relight["params"]
    finally:
        backend.close()


def test_api_body_for_urls_takes_names_too() -> None:
    urls = ["https://x.test/p/kitchen.jpg", "data:image/jpeg;base64,AAAA"]
    body = ApiBackend.body_for_urls("brochure", urls, {}, names=["kitchen.jpg", "living.jpg"])
    assert body["params"]["photo_names"] == ["kitchen.jpg", "living.jpg"]
    assert "photo_names" not in ApiBackend.body_for_urls("brochure", urls, {})["params"]
