"""The per-listing assets with the local backend: bad photos, failing listings, outputs."""

import base64
import io
import json
import re
from pathlib import Path

import dagster as dg
from listing_support import (
    corrupt_jpeg,
    dagster_instance,
    failed_listings,
    latest_metadata,
    make_defs,
    materializations,
    reexecute_from_failure,
    run_catalogue,
    run_listings,
    tiny_jpeg,
    write_catalogue,
)
from PIL import Image
from pypdf import PdfReader

from bkbn_pipelines.storage import MediaStore

RAW_ONLY = ["raw_listing_photos"]


def _warnings(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [
        record.user_message
        for record in instance.all_logs(run_id)
        if record.level >= 30 and record.user_message
    ]


def test_a_bad_photo_is_reported_and_the_others_go_on(tmp_path: Path) -> None:
    source = write_catalogue(
        tmp_path / "export",
        [
            {
                "listing_id": "MLS/12345",
                "photos": [
                    ("good-1.jpg", tiny_jpeg(1)),
                    ("broken.jpg", corrupt_jpeg()),
                    ("good-2.jpg", tiny_jpeg(2)),
                ],
            }
        ],
    )
    defs = make_defs(tmp_path / "media")
    with dagster_instance() as instance:
        run_catalogue(defs, instance, source)
        result = run_listings(defs, instance, "mls-12345", selection=RAW_ONLY)
        assert result.success
        metadata = latest_metadata(instance, "raw_listing_photos", "mls-12345")
        warnings = _warnings(instance, result.run_id)
    assert metadata["photos"] == 2 and metadata["failed_photos"] == 1
    [failure] = metadata["failures"]
    assert failure["photo"] == "broken.jpg"
    # the photo table: a row per photo, a small decodable thumbnail for the good ones
    table = metadata["photo_table"].splitlines()
    assert table[0] == "| photo | preview | size | status |" and len(table) == 2 + 3
    thumbs = re.findall(r"\(data:image/jpeg;base64,([A-Za-z0-9+/=]+)\)", metadata["photo_table"])
    assert len(thumbs) == 2
    for encoded in thumbs:
        with Image.open(io.BytesIO(base64.b64decode(encoded))) as thumb:
            assert max(thumb.size) <= 96 and thumb.format == "JPEG"
    broken_row = next(line for line in table if line.startswith("| broken.jpg"))
    assert "failed:" in broken_row and "data:image" not in broken_row
    assert any("MLS/12345" in w and "broken.jpg" in w for w in warnings)

    manifest = MediaStore(tmp_path / "media").read_manifest("raw_listing_photos", "mls-12345")
    assert sorted(manifest["status"]) == ["failed", "ok", "ok"]
    stored = manifest[manifest["status"] == "ok"]
    # one listing, one folder, nothing nested (case 1)
    assert all(k.startswith("listings/mls-12345/raw_listing_photos/") for k in stored["key"])
    assert all(k.count("/") == 3 for k in stored["key"])


def test_a_listing_without_usable_photos_fails_alone(tmp_path: Path) -> None:
    source = write_catalogue(
        tmp_path / "export",
        [
            {"listing_id": "a-1", "photos": [("bad.jpg", corrupt_jpeg())]},
            {"listing_id": "b-2", "photos": [tiny_jpeg(2)]},
        ],
    )
    defs = make_defs(tmp_path / "media")
    with dagster_instance() as instance:
        run_catalogue(defs, instance, source)
        result = run_listings(defs, instance, "a-1", "b-2", selection=RAW_ONLY)
        assert not result.success
        assert len(materializations(instance, "raw_listing_photos", "b-2")) == 1
        assert materializations(instance, "raw_listing_photos", "a-1") == []
        retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retries == []  # a bad photo is not cured by retrying
    failed = failed_listings(result)
    assert list(failed) == ["a-1"]
    assert "a-1" in failed["a-1"]["error"] and "bad.jpg" in failed["a-1"]["error"]


def test_backfill_of_100_listings_in_one_run(tmp_path: Path, monkeypatch) -> None:
    # Case 4: listing 37 has a corrupt photo; the 99 others are materialized once, and
    # re-executing the failed run does not redo them.
    listings = [
        {"listing_id": f"L{n:03d}", "photos": [tiny_jpeg(n, (16, 16))]} for n in range(1, 101)
    ]
    listings[36]["photos"] = [("corrupt-37.jpg", corrupt_jpeg())]
    source = write_catalogue(tmp_path / "export", listings)
    monkeypatch.setenv("BKBN_STORAGE_ROOT", str(tmp_path / "media"))
    defs = make_defs(tmp_path / "media")
    with dagster_instance() as instance:
        run_catalogue(defs, instance, source)
        keys = instance.get_dynamic_partitions("listings")
        assert len(keys) == 100
        result = run_listings(defs, instance, keys[0], keys[-1], selection=RAW_ONLY)
        assert not result.success
        again = reexecute_from_failure(instance, result.run_id, RAW_ONLY)
        assert not again.success
        counts = {k: len(materializations(instance, "raw_listing_photos", k)) for k in keys}
        redone = [e for e in again.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
        again_failures = [
            e.step_failure_data.user_failure_data.metadata["failed_listings"].value
            for e in again.all_events
            if e.event_type_value == "STEP_FAILURE"
        ]
    assert counts["l037"] == 0
    assert {k: c for k, c in counts.items() if k != "l037"} == {k: 1 for k in keys if k != "l037"}
    failed = failed_listings(result)
    assert list(failed) == ["l037"]
    assert "corrupt-37.jpg" in failed["l037"]["error"]
    assert redone == []
    assert [list(f) for f in again_failures] == [["l037"]]


def test_look_alike_ids_get_distinct_outputs(tmp_path: Path) -> None:
    # Case 3: unit-4.1 and unit-4.2 are two partitions with two distinct stored outputs.
    source = write_catalogue(
        tmp_path / "export",
        [
            {"listing_id": "unit-4.1", "photos": [tiny_jpeg(41)]},
            {"listing_id": "unit-4.2", "photos": [tiny_jpeg(42)]},
        ],
    )
    defs = make_defs(tmp_path / "media")
    with dagster_instance() as instance:
        run_catalogue(defs, instance, source)
        result = run_listings(
            defs, instance, "unit-4.1", "unit-4.2", selection=[*RAW_ONLY, "enhanced_photos"]
        )
        assert result.success
    store = MediaStore(tmp_path / "media")
    manifests = store.read_manifest("enhanced_photos")
    assert sorted(manifests["listing"]) == ["unit-4.1", "unit-4.2"]
    keys = list(manifests["key"])
    assert keys[0] != keys[1]
    assert {k.split("/")[1] for k in keys} == {"unit-4.1", "unit-4.2"}
    for key in keys:
        assert store.get(key).startswith(b"\x89PNG")


def test_staging_without_weights_is_skipped_and_said(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("BKBN_STAGING_MODEL", raising=False)
    monkeypatch.delenv("BKBN_ALLOW_UNTRAINED", raising=False)
    source = write_catalogue(tmp_path / "export", [{"listing_id": "s-1", "photos": [tiny_jpeg(3)]}])
    defs = make_defs(tmp_path / "media")
    with dagster_instance() as instance:
        run_catalogue(defs, instance, source)
        result = run_listings(
            defs, instance, "s-1", selection=[*RAW_ONLY, "staged_renders", "floor_plans"]
        )
        assert result.success
        staged = latest_metadata(instance, "staged_renders", "s-1")
        plans = latest_metadata(instance, "floor_plans", "s-1")
        warnings = _warnings(instance, result.run_id)
    assert staged["skipped"] == "no weights"
    assert "BKBN_STAGING_MODEL" in staged["how_to"]
    assert any("BKBN_STAGING_MODEL" in w for w in warnings)
    assert plans["skipped"] == "no capture"


def test_the_whole_chain_on_the_local_backend(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("BKBN_STAGING_MODEL", raising=False)
    monkeypatch.delenv("BKBN_ALLOW_UNTRAINED", raising=False)
    source = write_catalogue(
        tmp_path / "export",
        [{"listing_id": "L/1", "photos": [tiny_jpeg(1, (96, 64)), tiny_jpeg(2, (96, 64))]}],
    )
    defs = make_defs(tmp_path / "media")
    with dagster_instance() as instance:
        run_catalogue(defs, instance, source)
        result = run_listings(defs, instance, "l-1")
        assert result.success
        brochure = latest_metadata(instance, "brochures", "l-1")
        enhanced = latest_metadata(instance, "enhanced_photos", "l-1")
    assert enhanced["graph_version"] == "relight-v1.2" and enhanced["photos"] == 2
    assert enhanced["node_ms"] and enhanced["request_ids"]
    assert brochure["pages"] >= 1 and brochure["photos_in"] == 2
    outputs = MediaStore(tmp_path / "media").read_manifest("brochures", "l-1")
    assert {"pdf", "html"} <= set(outputs["output"])


def test_the_brochure_of_a_listing_with_a_capture_has_its_floor_plan(
    tmp_path: Path, monkeypatch
) -> None:
    from bkbn_pipelines.runtime.capture import demo_plan, synthesize_capture
    from bkbn_pipelines.runtime.graphs.brochure._copy import _area_text

    monkeypatch.delenv("BKBN_STAGING_MODEL", raising=False)
    monkeypatch.delenv("BKBN_ALLOW_UNTRAINED", raising=False)
    export = tmp_path / "export"
    (export / "captures").mkdir(parents=True)
    bundle = synthesize_capture(demo_plan(), seed=0, frames_per_room=6, width=96, height=72)
    (export / "captures" / "walk.zip").write_bytes(bundle)
    photos = [tiny_jpeg(1, (96, 64)), tiny_jpeg(2, (96, 64))]
    source = write_catalogue(
        export,
        [
            {"listing_id": "MLS/12345", "photos": photos, "capture": "captures/walk.zip"},
            {"listing_id": "MLS/67890", "photos": photos},
        ],
    )
    defs = make_defs(tmp_path / "media")
    with dagster_instance() as instance:
        run_catalogue(defs, instance, source)
        result = run_listings(defs, instance, "mls-12345", "mls-67890")
        assert result.success
        with_plan = latest_metadata(instance, "brochures", "mls-12345")
        without = latest_metadata(instance, "brochures", "mls-67890")
    assert with_plan["floor_plan_in"] is True and without["floor_plan_in"] is False
    assert with_plan["pages"] == without["pages"] + 1
    store = MediaStore(tmp_path / "media")
    plans = store.read_manifest("floor_plans", "mls-12345")
    plan = json.loads(store.get(plans[plans["output"] == "plan"]["key"].iloc[0]))
    brochures = store.read_manifest("brochures", "mls-12345")
    pdf = PdfReader(io.BytesIO(store.get(brochures[brochures["output"] == "pdf"]["key"].iloc[0])))
    texts = [" ".join(page.extract_text().split()) for page in pdf.pages]
    plan_pages = [text for text in texts if text.startswith("FLOOR PLAN")]
    assert len(plan_pages) == 1
    for room in plan["rooms"]:
        assert room["label"].capitalize() in plan_pages[0]
        assert _area_text(room["area_m2"]) in plan_pages[0]
    layout = json.loads(store.get(brochures[brochures["output"] == "layout"]["key"].iloc[0]))
    assert "floor_plan" in [page["kind"] for page in layout["pages"]]
