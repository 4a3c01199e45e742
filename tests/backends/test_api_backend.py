"""The ``api`` backend against the emulator, and ``make_backend``."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bkbn_pipelines import ConfigError, InvalidParamsError, Result, RunStart
from bkbn_pipelines.backends import ApiBackend, Backend, GraphRequest, InputFile, make_backend
from bkbn_pipelines.client import BackboneClient


def _photo(colour=(120, 140, 160)) -> InputFile:
    buf = io.BytesIO()
    Image.new("RGB", (80, 60), colour).save(buf, "JPEG")
    return InputFile(data=buf.getvalue(), media_type="image/jpeg", name="room.jpg")


@pytest.fixture
def key(emulator_admin):
    return emulator_admin.new_key()


@pytest.fixture
def backend(emulator_url, key):
    backend = make_backend("api", api_key=key.api_key, base_url=emulator_url)
    yield backend
    backend.close()


def test_make_backend_api_is_a_backend(backend):
    assert isinstance(backend, ApiBackend) and isinstance(backend, Backend)
    assert backend.name == "api"
    assert "bkbn_sk" not in repr(backend)


def test_staging_events_and_outputs(backend, emulator_admin, key):
    request = GraphRequest(
        graph="staging",
        inputs=[_photo()],
        params={"style": "japandi"},
        idempotency_key="listing-1/photo-1/staging",
    )
    events = list(backend.stream(request))
    assert isinstance(events[0], RunStart) and isinstance(events[-1], Result)
    assert events[-1].data["request_id"].startswith("req_")
    outputs = backend.outputs(events[-1])
    assert set(outputs) == {"image"}
    assert outputs["image"].media_type == "image/png"
    assert outputs["image"].data.startswith(b"\x89PNG")
    # The same idempotency key again: the same run, not a second render.
    again = list(backend.stream(request))
    assert again[-1].url == events[-1].url
    assert emulator_admin.renders(key.org) == 1


def test_brochure_takes_every_photo_and_returns_all_parts(backend):
    request = GraphRequest(
        graph="brochure",
        inputs=[_photo(), _photo((200, 180, 90))],
        params={"listing": {"address": "4 Quai Vauban, Besançon", "price": 310000, "beds": 3}},
    )
    result = list(backend.stream(request))[-1]
    outputs = backend.outputs(result)
    assert {"pdf", "html"} <= set(outputs)
    assert outputs["pdf"].data.startswith(b"%PDF")


def test_image_graph_with_two_inputs_is_refused_before_sending(backend):
    request = GraphRequest(graph="relight", inputs=[_photo(), _photo()])
    with pytest.raises(InvalidParamsError, match="one input"):
        list(backend.stream(request))


def test_shared_client_is_not_closed_by_the_backend(emulator_url, key):
    from bkbn_pipelines.backends._api import data_uri

    with BackboneClient(api_key=key.api_key, base_url=emulator_url) as client:
        make_backend("api", client=client).close()
        assert client.workflows.run("relight", input=data_uri(_photo())).url


def test_api_backend_needs_no_torch():
    import subprocess
    import sys

    code = (
        "import sys, bkbn_pipelines.backends as b; b.make_backend('api', api_key='k', "
        "base_url='http://x.test'); assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_make_backend_unknown_name():
    with pytest.raises(ConfigError, match="unknown backend 'gpu'"):
        make_backend("gpu")


def test_make_backend_local_is_lazy_and_a_backend():
    backend = make_backend("local", device="cpu")
    try:
        assert backend.name == "local" and isinstance(backend, Backend)
    finally:
        backend.close()


def test_cancel_stops_reading_and_releases_the_stream(emulator_url, key):
    import threading

    import httpx

    from bkbn_pipelines import RunCancelledError

    backend = make_backend(
        "api",
        api_key=key.api_key,
        base_url=emulator_url,
        max_connections=1,
        timeout=httpx.Timeout(10.0, pool=3.0),
    )
    cancel = threading.Event()
    request = GraphRequest(graph="relight", inputs=[_photo()])
    seen = []
    with pytest.raises(RunCancelledError, match="cancelled"):
        for event in backend.stream(request, cancel=cancel):
            seen.append(event)
            cancel.set()
    assert len(seen) == 1
    # The only pooled connection is free again: the next run goes through.
    assert list(backend.stream(GraphRequest(graph="relight", inputs=[_photo()])))[-1].url
    backend.close()
