"""The default renderer: the local graph runtime behind the API."""

from __future__ import annotations

import httpx

from bkbn_pipelines._events import Result
from bkbn_pipelines.emulator import EmulatorConfig
from bkbn_pipelines.emulator.testing import serve_in_thread
from bkbn_pipelines.runtime import LocalRuntime, RuntimeSettings

from .conftest import data_uri, headers_for, photo_bytes, sse_events

KEY = "bkbn_sk_runtime_renderer"


def _config() -> EmulatorConfig:
    return EmulatorConfig.model_validate(
        {
            "organizations": [{"id": "o"}],
            "api_keys": [{"key": KEY, "org": "o"}],
            "runtime": {"device": "cpu"},
        }
    )


def test_runtime_is_the_default_renderer():
    assert EmulatorConfig().renderer == "runtime"


def test_relight_through_the_api_matches_the_local_runtime():
    photo = photo_bytes((96, 64), colour=(90, 70, 40))
    local = list(LocalRuntime(RuntimeSettings(device="cpu")).run("relight", [photo], {}))
    expected = local[-1]
    assert isinstance(expected, Result)
    with (
        serve_in_thread(_config()) as url,
        httpx.Client(base_url=url, headers=headers_for(KEY), timeout=60) as api,
    ):
        with api.stream(
            "POST",
            "/v1/workflows/relight/run",
            json={"input": data_uri(photo)},
            headers={"accept": "text/event-stream"},
        ) as response:
            events = sse_events(response.iter_lines())
        kinds = [e["event"] for e in events if e["event"] != "ping"]
        assert kinds == [type(e).type for e in local]
        result = api.get(f"/v1/workflows/runs/{response.headers['bkbn-run-id']}").json()
        data = result["result"]
        assert data["renderer"] == "runtime"
        assert data["graph"] == "relight-v1.2"
        assert (data["width"], data["height"]) == (96, 64)
        image = api.get(data["url"])
        assert image.content == expected.artifacts["image"].data


def test_runtime_refusals_become_http_errors():
    with serve_in_thread(_config()) as url:
        response = httpx.post(
            f"{url}/v1/floor-plans",
            json={"video": data_uri(b"not a zip", "application/zip")},
            headers=headers_for(KEY),
            timeout=60,
        )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_missing_runtime_dependencies_are_a_config_error(monkeypatch):
    import sys

    import pytest

    from bkbn_pipelines._errors import ConfigError
    from bkbn_pipelines.emulator import create_app

    monkeypatch.setitem(sys.modules, "bkbn_pipelines.runtime", None)
    with pytest.raises(ConfigError, match="renderer: latency"):
        create_app(EmulatorConfig())


def test_brochure_through_the_runtime():
    photo = data_uri(photo_bytes((120, 90)))
    with serve_in_thread(_config()) as url:
        response = httpx.post(
            f"{url}/v1/brochures",
            json={"listing": {"address": "9 Quai Vert", "beds": 2}, "photos": [photo]},
            headers=headers_for(KEY),
            timeout=120,
        )
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["renderer"] == "runtime"
        assert {"pdf", "html", "storyboard", "palette", "copy", "layout"} <= set(result["outputs"])
        pdf = httpx.get(result["outputs"]["pdf"], headers=headers_for(KEY))
        assert pdf.content.startswith(b"%PDF")


def test_brochure_with_a_floor_plan_through_the_runtime():
    """This project's ``floor_plan`` parameter reaches the graph, which draws the plan;
    a malformed plan is refused before the run, naming the parameter."""
    from bkbn_pipelines.runtime.capture import demo_plan, synthesize_capture

    runtime = LocalRuntime(RuntimeSettings(device="cpu"))
    bundle = synthesize_capture(demo_plan(), seed=0, frames_per_room=6, width=96, height=72)
    plan = list(runtime.run("floor-plan", [bundle], {}))[-1].data["plan"]
    photo = data_uri(photo_bytes((120, 90)))
    with (
        serve_in_thread(_config()) as url,
        httpx.Client(base_url=url, headers=headers_for(KEY), timeout=120) as api,
    ):
        response = api.post(
            "/v1/brochures", json={"listing": {}, "photos": [photo], "floor_plan": plan}
        )
        assert response.status_code == 200, response.text
        kinds = [page["kind"] for page in response.json()["parts"]["layout"]["pages"]]
        assert kinds == ["cover", "floor_plan", "details"]
        html = api.get(response.json()["outputs"]["html"]).text
        assert "<svg" in html and ">Bathroom</text>" in html
        bad = {**plan, "rooms": [{"label": "living", "polygon": [[0, 0]], "area_m2": 1}]}
        for path, body in [
            ("/v1/brochures", {"listing": {}, "photos": [photo], "floor_plan": bad}),
            (
                "/v1/workflows/brochure/run",
                {"params": {"listing": {}, "photos": [photo], "floor_plan": bad}},
            ),
        ]:
            refused = api.post(path, json=body)
            assert refused.status_code == 400, refused.text
            assert refused.json()["error"]["type"] == "invalid_request_error"
            assert "floor_plan.rooms[0].polygon" in refused.json()["error"]["message"]
