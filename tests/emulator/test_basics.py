"""Headers, error shapes, the version check and the run endpoints, with plain httpx."""

from __future__ import annotations

import re

import httpx

from bkbn_pipelines.emulator.testing import EmulatorAdmin

from .conftest import headers_for, photo_bytes

REQUEST_ID = re.compile(r"^req_[0-9A-Za-z]{24}$")
RATE_HEADERS = [
    f"bkbn-ratelimit-{kind}-{field}"
    for kind in ("requests", "tokens")
    for field in ("limit", "remaining", "reset")
]


def assert_error(response: httpx.Response, status: int, error_type: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["request_id"] == response.headers["request-id"]
    assert REQUEST_ID.match(response.headers["request-id"])
    return body


def test_blocking_staging_answers_result_with_headers(api, key, photo_uri):
    response = api.post("/v1/staging", json={"image": photo_uri, "style": "japandi"})
    assert response.status_code == 200, response.text
    assert REQUEST_ID.match(response.headers["request-id"])
    assert response.headers["bkbn-organization-id"] == key.org
    for name in RATE_HEADERS:
        assert name in response.headers
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", response.headers[RATE_HEADERS[2]])
    result = response.json()
    assert result["graph"] == "staging-v2.4"
    assert result["renderer"] == "latency"
    assert result["weights"] == "none"
    assert (result["width"], result["height"]) == (1024, 768)
    assert result["usage"]["tokens"] >= 1
    assert result["url"] == result["outputs"]["image"]
    image = api.get(result["url"])
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")


def test_request_ids_are_unique(api):
    ids = {api.get("/v1/workflows/runs/run_nope").headers["request-id"] for _ in range(5)}
    assert len(ids) == 5


def test_errors_have_the_contract_shape(api, emulator_url, photo_uri):
    assert_error(api.get("/v1/nowhere"), 404, "not_found_error")
    assert_error(api.delete("/v1/staging"), 405, "invalid_request_error")
    assert_error(api.post("/v1/staging", json={"image": 3}), 400, "invalid_request_error")
    assert_error(
        api.post("/v1/staging", content=b"{not json", headers={"content-type": "application/json"}),
        400,
        "invalid_request_error",
    )
    body = assert_error(
        api.post("/v1/staging", json={"image": photo_uri, "style": "baroque"}),
        400,
        "invalid_request_error",
    )
    assert "style" in body["error"]["message"]
    assert_error(
        api.post("/v1/workflows/teleport/run", json={"input": photo_uri}), 404, "not_found_error"
    )
    assert_error(
        api.post("/v1/workflows/staging-v9.9/run", json={"input": photo_uri}),
        404,
        "not_found_error",
    )
    assert_error(api.get("/v1/workflows/runs/run_unknown"), 404, "not_found_error")
    assert_error(httpx.get(f"{emulator_url}/v1/files/x"), 401, "authentication_error")


def test_version_header_is_required_and_checked(emulator_url, key, photo_uri):
    body = {"image": photo_uri, "style": "coastal"}
    no_version = {"x-api-key": key.api_key}
    response = httpx.post(f"{emulator_url}/v1/staging", json=body, headers=no_version)
    assert (
        "bkbn-version" in assert_error(response, 400, "invalid_request_error")["error"]["message"]
    )
    wrong = {**no_version, "bkbn-version": "1999-01-01"}
    response = httpx.post(f"{emulator_url}/v1/staging", json=body, headers=wrong)
    assert "1999-01-01" in assert_error(response, 400, "invalid_request_error")["error"]["message"]
    assert response.headers["bkbn-organization-id"] == key.org


def test_graph_params_are_validated(api, photo_uri):
    response = api.post(
        "/v1/workflows/staging/run", json={"input": photo_uri, "params": {"resolution": "8k"}}
    )
    body = assert_error(response, 400, "invalid_request_error")
    assert "params.style" in body["error"]["message"]
    assert_error(api.post("/v1/workflows/relight/run", json={}), 400, "invalid_request_error")


def test_every_graph_runs_blocking(api, photo_uri):
    relight = api.post("/v1/workflows/relight/run", json={"input": photo_uri})
    assert relight.status_code == 200, relight.text
    assert (relight.json()["width"], relight.json()["height"]) == (64, 48)
    versioned = api.post(
        "/v1/workflows/staging-v2.4/run",
        json={"input": photo_uri, "params": {"style": "industrial", "resolution": "2k"}},
    )
    assert versioned.json()["width"] == 2048
    brochure = api.post(
        "/v1/brochures",
        json={"listing": {"address": "4 Rue Haute", "price": 320000}, "photos": [photo_uri] * 2},
    )
    assert brochure.status_code == 200, brochure.text
    outputs = brochure.json()["outputs"]
    assert set(outputs) == {"pdf", "html", "storyboard", "palette", "copy", "layout"}
    assert api.get(outputs["pdf"]).content.startswith(b"%PDF")
    assert brochure.json()["url"] == outputs["pdf"]
    parts = brochure.json()["parts"]
    assert parts["palette"]["colours"][0]["hex"].startswith("#")
    assert parts["copy"]["headline"] == "4 Rue Haute"
    assert api.get(outputs["palette"]).json() == parts["palette"]
    plan = api.post("/v1/floor-plans", json={"video": "data:application/zip;base64,UEsFBg=="})
    assert plan.status_code == 200, plan.text
    assert set(plan.json()["outputs"]) == {"plan", "svg", "dxf"}
    rooms = plan.json()["plan"]["rooms"]
    assert [room["label"] for room in rooms] == ["living", "kitchen"]
    assert rooms[0]["polygon"][0] == rooms[0]["polygon"][-1]
    assert plan.json()["plan"]["total_area_m2"] == 32.0
    assert api.get(plan.json()["outputs"]["dxf"]).text.startswith("  0\nSECTION")
    workflow_brochure = api.post(
        "/v1/workflows/brochure/run",
        json={"params": {"listing": {"address": "x"}, "photos": [photo_uri]}},
    )
    assert workflow_brochure.status_code == 200, workflow_brochure.text


def test_unreadable_image_is_a_400(api, photo_uri):
    response = api.post(
        "/v1/staging",
        json={"image": "data:image/jpeg;base64,aGVsbG8=", "style": "japandi"},
    )
    assert "image" in assert_error(response, 400, "invalid_request_error")["error"]["message"]
    brochure = api.post(
        "/v1/brochures",
        json={"listing": {}, "photos": [photo_uri, "data:image/png;base64,AAAA"]},
    )
    message = assert_error(brochure, 400, "invalid_request_error")["error"]["message"]
    assert message.startswith("photos[1]:")


def test_run_status(api, photo_uri):
    result = api.post("/v1/workflows/relight/run", json={"input": photo_uri})
    run_id = result.headers.get("bkbn-run-id")
    assert run_id is not None
    status = api.get(f"/v1/workflows/runs/{run_id}").json()
    assert status["status"] == "succeeded"
    assert status["result"] == result.json()
    assert status["graph"] == "relight-v1.2"


def test_result_file_urls_work_as_inputs(
    api, photo_uri, emulator_url, emulator_admin: EmulatorAdmin
):
    first = api.post("/v1/workflows/relight/run", json={"input": photo_uri}).json()
    second = api.post("/v1/workflows/relight/run", json={"input": first["url"]})
    assert second.status_code == 200, second.text
    other = emulator_admin.new_key()
    response = httpx.post(
        f"{emulator_url}/v1/workflows/relight/run",
        json={"input": first["url"]},
        headers=headers_for(other),
    )
    assert_error(response, 400, "invalid_request_error")


def test_sample_photo_is_small():
    assert len(photo_bytes()) < 5000


def test_unhandled_errors_are_a_500_without_details():
    import asyncio

    from bkbn_pipelines.emulator import EmulatorConfig, create_app

    app = create_app(EmulatorConfig(renderer="latency"))

    async def boom() -> None:
        raise RuntimeError("secret internals /srv/app.py line 12")

    app.add_api_route("/v1/boom", boom)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
            return await client.get("/v1/boom")

    response = asyncio.run(call())
    body = assert_error(response, 500, "api_error")
    assert "secret" not in response.text and "Traceback" not in response.text
    assert body["error"]["message"] == "internal error in the emulator"
