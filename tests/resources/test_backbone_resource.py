"""BackboneResource: the same outcome from both backends, typed errors, no leaked key."""

import io

import dagster as dg
import pytest
from listing_support import dagster_instance, tiny_jpeg
from PIL import Image

from bkbn_pipelines._errors import BadRequestError, RateLimitError
from bkbn_pipelines.backends import GraphRequest, InputFile
from bkbn_pipelines.resources import BackboneResource, GraphOutcome


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)

    debug = info


class _Context:
    def __init__(self) -> None:
        self.log = _Log()


def _relight() -> GraphRequest:
    return GraphRequest("relight", [InputFile(tiny_jpeg(5, (40, 30)), "image/jpeg", "p.jpg")])


def _check_outcome(outcome: GraphOutcome) -> None:
    assert outcome.graph == "relight-v1.2"
    assert outcome.run_id
    assert outcome.node_ms and all(ms >= 0 for ms in outcome.node_ms.values())
    image = Image.open(io.BytesIO(outcome.outputs["image"].data))
    assert image.size == (40, 30)
    metadata = outcome.metadata()
    assert set(metadata) >= {"request_id", "graph", "node_ms", "tokens", "weights"}


def test_local_backend_outcome() -> None:
    resource = BackboneResource(backend="local", device="cpu")
    context = _Context()
    try:
        outcome = resource.run_graph(context, _relight())
    finally:
        resource.close()
    _check_outcome(outcome)
    assert outcome.weights in ("none", None)


def test_api_backend_gives_the_same_outcome(emulator_url: str, emulator_admin) -> None:
    key = emulator_admin.new_key()
    resource = BackboneResource(backend="api", base_url=emulator_url, api_key=key.api_key)
    context = _Context()
    try:
        outcome = resource.run_graph(context, _relight())
    finally:
        resource.close()
    _check_outcome(outcome)
    assert outcome.request_id or outcome.run_id
    assert outcome.tokens and outcome.tokens > 0
    assert any("render step" in line for line in context.log.lines)


def test_api_errors_arrive_typed(emulator_url: str, emulator_admin) -> None:
    key = emulator_admin.new_key()
    emulator_admin.set_faults(
        api_key=key.api_key,
        fail=[{"nth": 1, "status": 429, "retry_after": 2}, {"nth": 2, "status": 400}],
    )
    resource = BackboneResource(
        backend="api", base_url=emulator_url, api_key=key.api_key, max_retries=0
    )
    try:
        with pytest.raises(RateLimitError) as limited:
            resource.run_graph(_Context(), _relight())
        assert limited.value.retry_after == pytest.approx(2, abs=0.5)
        with pytest.raises(BadRequestError):
            resource.run_graph(_Context(), _relight())
    finally:
        resource.close()


def test_error_event_becomes_a_typed_error() -> None:
    resource = BackboneResource(backend="local", device="cpu")
    bad = GraphRequest("relight", [InputFile(b"not an image", "image/jpeg", "bad.jpg")])
    try:
        with pytest.raises(BadRequestError) as caught:
            resource.run_graph(_Context(), bad)
    finally:
        resource.close()
    assert caught.value.from_error_event is True


def test_secrets_stay_out_of_repr_and_metadata() -> None:
    secret = "bkbn_sk_never_shown_0123456789"
    redis_password = "redis-password-never-shown"
    resource = BackboneResource(
        backend="api",
        api_key=secret,
        base_url="http://127.0.0.1:9",
        ratelimit_redis_url=f"redis://:{redis_password}@127.0.0.1:6379/11",
    )
    assert secret not in repr(resource)
    assert redis_password not in repr(resource)
    assert secret not in str(resource.staging_weights())


def test_staging_weights_for_the_local_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BKBN_STAGING_MODEL", raising=False)
    monkeypatch.delenv("BKBN_ALLOW_UNTRAINED", raising=False)
    assert BackboneResource(backend="local").staging_weights() == "none"
    assert BackboneResource(backend="local", allow_untrained=True).staging_weights() == "untrained"
    assert BackboneResource(backend="local", staging_model="/m").staging_weights() == "configured"
    assert BackboneResource(backend="api").staging_weights() == "configured"


def test_resource_in_a_materialization() -> None:
    @dg.asset
    def relit(
        context: dg.AssetExecutionContext, backbone: BackboneResource
    ) -> dg.MaterializeResult:
        outcome = backbone.run_graph(context, _relight())
        return dg.MaterializeResult(metadata=outcome.metadata())

    with dagster_instance() as instance:
        result = dg.materialize(
            [relit],
            instance=instance,
            resources={"backbone": BackboneResource(backend="local", device="cpu")},
        )
    assert result.success
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["graph"].value == "relight-v1.2"
