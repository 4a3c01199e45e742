"""A schema-driven fuzz of the OpenAPI document: no 500, no contract violation.

Schemathesis generates requests from ``/openapi.json`` (valid and invalid ones) and
checks each answer against the document: status codes, content types, headers and
bodies.  Bounded: a few examples per operation, well under a minute in all.

One check is left out: "a schema-valid request must be accepted".  A run's input
must be a URL that names a real, decodable image on an allowed host; no JSON Schema
can say that, so the emulator rightly answers most generated inputs with a 400.
"""

from __future__ import annotations

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import positive_data_acceptance

from bkbn_pipelines._contract import API_VERSION
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


def test_fuzz_finds_no_server_error_and_no_contract_violation():
    config = EmulatorConfig.model_validate(
        {
            "organizations": [{"id": "fuzz", "tier": "big"}],
            "api_keys": [{"key": KEY, "org": "fuzz"}],
            "tiers": {"big": {"requests_per_minute": 100_000, "tokens_per_minute": 10**9}},
            "renderer": "latency",
            "latency": {"steps": 1, "step_ms": 0},
        }
    )
    headers = {"x-api-key": KEY, "bkbn-version": API_VERSION}
    with serve_in_thread(config, test_mode=False) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        tested = calls = 0
        statuses: list[int] = []
        for result in schema.get_all_operations():
            operation = result.ok()

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy())
            def check(case) -> None:
                nonlocal calls
                calls += 1
                response = case.call_and_validate(
                    base_url=url,
                    headers=headers,
                    timeout=30,
                    excluded_checks=[positive_data_acceptance],
                )
                statuses.append(response.status_code)

            check()
            tested += 1
    assert tested == 8
    assert calls >= 8 * 5
    assert statuses.count(200) >= 3  # the documented example photo runs for real
