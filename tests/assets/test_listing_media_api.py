"""The per-listing assets over the api backend, against the emulator on loopback."""

import io
import json
import re
import urllib.parse
import zipfile
from pathlib import Path

import dagster as dg
import pytest
from listing_support import (
    dagster_instance,
    failed_listings,
    latest_metadata,
    make_defs,
    materializations,
    run_catalogue,
    run_listings,
    tiny_jpeg,
    write_catalogue,
)

from bkbn_pipelines.resources import BackboneResource
from bkbn_pipelines.storage import MediaStore

ENHANCE = ["raw_listing_photos", "enhanced_photos"]


def _capture_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("capture.json", json.dumps({"version": 1, "frames": []}))
    return buffer.getvalue()


def _backbone(emulator_url: str, api_key: str) -> BackboneResource:
    # Client retries off: the 429s and 500s reach Dagster's retry policy.
    return BackboneResource(backend="api", base_url=emulator_url, api_key=api_key, max_retries=0)


def _events(result: dg.ExecuteInProcessResult, kind: str) -> list[dg.DagsterEvent]:
    return [e for e in result.all_events if e.event_type_value == kind]


@pytest.fixture
def three_listings(tmp_path: Path) -> Path:
    export = tmp_path / "export"
    (export / "captures").mkdir(parents=True)
    (export / "captures" / "walk.zip").write_bytes(_capture_zip())
    return write_catalogue(
        export,
        [
            {
                "listing_id": "A-1",
                "photos": [tiny_jpeg(1), tiny_jpeg(2)],
                "style": "coastal",
                "capture": "captures/walk.zip",
            },
            {"listing_id": "B-2", "photos": [tiny_jpeg(3)]},
            {"listing_id": "C-3", "photos": [tiny_jpeg(4)]},
        ],
    )


def test_the_whole_chain_over_the_api(tmp_path, three_listings, emulator_url, emulator_admin):
    key = emulator_admin.new_key()
    defs = make_defs(tmp_path / "media", _backbone(emulator_url, key.api_key))
    with dagster_instance() as instance:
        run_catalogue(defs, instance, three_listings)
        result = run_listings(defs, instance, "a-1", "c-3")
        assert result.success
        staged = latest_metadata(instance, "staged_renders", "a-1")
        plan = latest_metadata(instance, "floor_plans", "a-1")
        no_plan = latest_metadata(instance, "floor_plans", "b-2")
        brochure = latest_metadata(instance, "brochures", "a-1")
        log_text = "\n".join(repr(record) for record in instance.all_logs(result.run_id))
    checks = _events(result, "ASSET_CHECK_EVALUATION")
    assert len(checks) == 3 + 1 + 3  # renders x3, one plan, brochures x3
    assert all(c.event_specific_data.passed for c in checks)
    assert staged["style"] == "coastal" and staged["renders"] == 2
    assert staged["graph_version"] == "staging-v2.4"
    assert len(staged["request_ids"]) == 2 and all(staged["request_ids"])
    assert staged["tokens"] > 0 and set(staged["node_ms"]) >= {"render"}
    assert plan["rooms"] == 2 and plan["area_m2"] > 0
    assert no_plan["skipped"] == "no capture"
    assert brochure["pages"] >= 1 and brochure["staged_renders_in"] == 2
    # a-1's plan went to its brochure through the API, which drew a page for it
    assert brochure["floor_plan_in"] is True and brochure["pages"] == 2
    store = MediaStore(tmp_path / "media")
    pdfs = store.read_manifest("brochures")
    pdfs = pdfs[pdfs["output"] == "pdf"]
    assert sorted(pdfs["listing"]) == ["a-1", "b-2", "c-3"]
    assert store.get(pdfs["key"].iloc[0]).startswith(b"%PDF-")
    assert key.api_key not in log_text  # the key never reaches the event log
    # the links shown in the UI open the stored files
    links = re.findall(r"\]\((file://[^)]+)\)", staged["outputs"])
    assert len(links) == 2
    for uri in [*links, brochure["pdf"], brochure["floor_plan"], plan["outputs"]]:
        for target in re.findall(r"file://[^)\s]+", uri):
            assert Path(urllib.parse.unquote(urllib.parse.urlsplit(target).path)).is_file(), target
    assert brochure["pdf"].endswith(".pdf")


def test_rate_limit_is_retried_after_the_servers_wait(
    tmp_path, three_listings, emulator_url, emulator_admin
):
    key = emulator_admin.new_key()
    # the second API call (the second photo of a-1) is answered 429, retry-after 4 s:
    # longer than the first backoff of the retry policy (2 s +- 50 %)
    emulator_admin.set_faults(
        api_key=key.api_key, fail=[{"nth": 2, "status": 429, "retry_after": 4}]
    )
    defs = make_defs(tmp_path / "media", _backbone(emulator_url, key.api_key))
    with dagster_instance() as instance:
        run_catalogue(defs, instance, three_listings)
        result = run_listings(
            defs, instance, "a-1", "c-3", selection=ENHANCE, config={"max_workers": 1}
        )
        counts = {
            (asset, slug): len(materializations(instance, asset, slug))
            for asset in ENHANCE
            for slug in ("a-1", "b-2", "c-3")
        }
    assert result.success
    [retry] = _events(result, "STEP_UP_FOR_RETRY")
    assert retry.event_specific_data.seconds_to_wait == 4.0  # the server's wait
    # listings done before the retry are not done again
    assert set(counts.values()) == {1}
    assert emulator_admin.renders(key.org) == 4  # four photos, each rendered once


def test_validation_error_fails_at_once(tmp_path, three_listings, emulator_url, emulator_admin):
    key = emulator_admin.new_key()
    emulator_admin.set_faults(api_key=key.api_key, fail=[{"nth": 1, "status": 400}])
    defs = make_defs(tmp_path / "media", _backbone(emulator_url, key.api_key))
    with dagster_instance() as instance:
        run_catalogue(defs, instance, three_listings)
        result = run_listings(
            defs, instance, "a-1", "c-3", selection=ENHANCE, config={"max_workers": 1}
        )
        assert materializations(instance, "enhanced_photos", "a-1") == []
        assert len(materializations(instance, "enhanced_photos", "b-2")) == 1
        assert len(materializations(instance, "enhanced_photos", "c-3")) == 1
    assert not result.success
    assert _events(result, "STEP_UP_FOR_RETRY") == []
    failed = failed_listings(result)
    assert list(failed) == ["a-1"]
    assert failed["a-1"]["asset"] == "enhanced_photos"
    assert "status=400" in failed["a-1"]["error"]
