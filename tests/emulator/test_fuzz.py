"""A schema-driven fuzz of the OpenAPI document: no 500, no contract violation.

Schemathesis generates requests from ``/openapi.json``, valid ones (positive mode) and
invalid ones (negative mode), and checks each answer against the document: status
codes, content types, headers and bodies, and that an invalid request is refused with
a 4xx.  Bounded: a few examples per operation and mode, well under a minute in all.

One check is left out: "a schema-valid request must be accepted".  A run's input
must be a URL that names a real, decodable image on an allowed host; no JSON Schema
can say that, so the emulator rightly answers most generated inputs with a 400.
"""

from __future__ import annotations

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from bkbn_pipelines._contract import API_VERSION, ERROR_TYPES
from bkbn_pipelines.emulator import EmulatorConfig
from bkbn_pipelines.emulator.testing import serve_in_thread

KEY = "bkbn_sk_fuzz_0123456789"
EXAMPLES = 20


def test_openapi_document_lists_every_endpoint():
    config = EmulatorConfig(renderer="latency")
    with serve_in_thread(config, test_mode=False) as url:
        document = httpx.get(f"{url}/openapi.json").json()
    paths = document["paths"]
    assert set(paths) == {
        "/v1/workflows/{name}/run",
        "/v1/staging",
        "/v1/floor-plans",
        "/v1/brochures",
        "/v1/oauth/token",
        "/v1/workflows/runs/{run_id}",
        "/v1/workflows/runs/{run_id}/events",
        "/v1/files/{file_id}",
    }
    staging = paths["/v1/staging"]["post"]
    assert "text/event-stream" in staging["responses"]["200"]["content"]
    for status in ("400", "401", "403", "404", "413", "429", "500", "529"):
        ref = staging["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorResponse")
    assert "422" not in staging["responses"]
    version = next(p for p in staging["parameters"] if p["name"] == "bkbn-version")
    assert version["required"] is True
    assert {"APIKeyHeader", "HTTPBearer"} <= set(document["components"]["securitySchemes"])


def fuzz_config() -> EmulatorConfig:
    return EmulatorConfig.model_validate(
        {
            "organizations": [{"id": "fuzz", "tier": "big"}],
            "api_keys": [{"key": KEY, "org": "fuzz"}],
            "tiers": {"big": {"requests_per_minute": 100_000, "tokens_per_minute": 10**9}},
            "renderer": "latency",
            "latency": {"steps": 1, "step_ms": 0},
        }
    )


def assert_contract_error(response) -> None:
    """An error answer has the contract's shape, with the type its status maps to."""
    body = response.json()
    assert body["type"] == "error", body
    assert body["error"]["type"] == ERROR_TYPES.get(response.status_code, body["error"]["type"])
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    assert [body["request_id"]] == response.headers["request-id"], body  # a list per name


def fuzz_operation(operation, mode: GenerationMode, url: str) -> list[int]:
    """Run ``EXAMPLES`` generated cases of one operation in ``mode``; their statuses.

    The credentials and version are fixed in the strategy as well as sent, so negative
    mode breaks the body, path and query (and the optional bearer header) but never
    sends an invalid request that the fixed headers would silently repair.
    ``call_and_validate`` raises on a 5xx, an undocumented status, an answer that does
    not match its schema and, for negative cases, an invalid request that was accepted.
    """
    headers = {"x-api-key": KEY, "bkbn-version": API_VERSION}
    statuses: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
    def check(case) -> None:
        assert case.meta.generation.mode is mode
        response = case.call_and_validate(
            base_url=url, headers=headers, timeout=30, excluded_checks=[positive_data_acceptance]
        )
        if response.status_code >= 400:
            assert_contract_error(response)
        statuses.append(response.status_code)

    check()
    return statuses


def test_fuzz_finds_no_server_error_and_no_contract_violation():
    statuses: dict[GenerationMode, list[int]] = {mode: [] for mode in GenerationMode}
    with serve_in_thread(fuzz_config(), test_mode=False) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        for operation in operations:
            for mode in GenerationMode:
                statuses[mode] += fuzz_operation(operation, mode, url)
    assert len(operations) == 8
    positive, negative = statuses[GenerationMode.POSITIVE], statuses[GenerationMode.NEGATIVE]
    assert len(positive) >= 8 * 5
    assert positive.count(200) >= 3  # the documented example photo runs for real
    assert len(negative) >= 8 * 5
    assert negative.count(400) >= 8 * 2  # invalid input was generated, and refused
