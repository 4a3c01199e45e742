"""Staleness and automation per listing: data changes rerun one listing, code changes all."""

from pathlib import Path

import dagster as dg
from listing_support import (
    dagster_instance,
    make_defs,
    materializations,
    run_catalogue,
    run_listings,
    stale_status,
    tiny_jpeg,
    write_catalogue,
)

from bkbn_pipelines.assets import listing_media

RAW = "raw_listing_photos"
LISTING_ASSETS = (
    "raw_listing_photos",
    "enhanced_photos",
    "staged_renders",
    "floor_plans",
    "brochures",
)


def _catalogue(folder: Path, price_of_b: int = 200) -> Path:
    return write_catalogue(
        folder,
        [
            {"listing_id": "a", "photos": [tiny_jpeg(1)]},
            {"listing_id": "b", "photos": [tiny_jpeg(2)], "price": price_of_b},
            {"listing_id": "c", "photos": [tiny_jpeg(3)]},
        ],
    )


def _requested(result, asset: str) -> set[str]:
    return set(result.get_requested_partitions(dg.AssetKey(asset)))


def test_a_changed_listing_is_the_only_one_stale_and_requested(tmp_path: Path) -> None:
    export = tmp_path / "export"
    source = _catalogue(export)
    defs = make_defs(tmp_path / "media")
    with dagster_instance() as instance:
        run_catalogue(defs, instance, source)
        assert run_listings(defs, instance, "a", "c", selection=[RAW]).success
        assert {stale_status(defs, instance, RAW, k) for k in "abc"} == {"FRESH"}
        baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance)

        _catalogue(export, price_of_b=250)  # only listing b changes
        run_catalogue(defs, instance, source)
        status = {k: stale_status(defs, instance, RAW, k) for k in "abc"}
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=baseline.cursor
        )
    assert status == {"a": "FRESH", "b": "STALE", "c": "FRESH"}
    assert _requested(result, RAW) == {"b"}
    for asset in LISTING_ASSETS:
        assert _requested(result, asset) <= {"b"}, asset


def test_a_new_code_version_makes_every_listing_stale(tmp_path: Path) -> None:
    source = _catalogue(tmp_path / "export")
    defs = make_defs(tmp_path / "media")
    changed = listing_media.map_asset_specs(
        lambda spec: (
            spec.replace_attributes(code_version="raw-2") if spec.key == dg.AssetKey(RAW) else spec
        )
    )
    with dagster_instance() as instance:
        run_catalogue(defs, instance, source)
        assert run_listings(defs, instance, "a", "c", selection=[RAW]).success
        baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        new_defs = dg.Definitions.merge(
            dg.Definitions(assets=[changed]),
            dg.Definitions(
                assets=[a for a in defs.assets if a is not listing_media],
                resources=defs.resources,
            ),
        )
        status = {k: stale_status(new_defs, instance, RAW, k) for k in "abc"}
        result = dg.evaluate_automation_conditions(
            defs=new_defs, instance=instance, cursor=baseline.cursor
        )
    assert status == {"a": "STALE", "b": "STALE", "c": "STALE"}
    assert _requested(result, RAW) == {"a", "b", "c"}


def test_run_settings_that_shape_an_output_are_part_of_its_code_version(tmp_path: Path) -> None:
    from bkbn_pipelines.assets import ListingMediaConfig, code_versions

    source = _catalogue(tmp_path / "export")
    defs = make_defs(tmp_path / "media")
    budget = {"photo_max_pixels": 10_000}  # a smaller stored photo: another output
    with dagster_instance() as instance:
        run_catalogue(defs, instance, source)
        assert run_listings(defs, instance, "a", "c", selection=[RAW]).success
        baseline = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert run_listings(defs, instance, "b", selection=[RAW], config=budget).success
        recorded = materializations(instance, RAW, "b")[0].asset_materialization.tags
        status = {k: stale_status(defs, instance, RAW, k) for k in "abc"}
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=baseline.cursor
        )
        assert run_listings(defs, instance, "b", selection=[RAW]).success  # the defaults again
        back = stale_status(defs, instance, RAW, "b")
    assert recorded["dagster/code_version"] == code_versions(ListingMediaConfig(**budget))[RAW]
    assert recorded["dagster/code_version"] != code_versions()[RAW]
    # made with other settings than the definitions carry: stale, and said so ...
    assert status == {"a": "FRESH", "b": "STALE", "c": "FRESH"}
    # ... but the automation leaves a deliberate one-off run alone
    assert _requested(result, RAW) == set()
    assert back == "FRESH"


def test_only_shaping_settings_change_code_versions() -> None:
    from bkbn_pipelines.assets import ListingMediaConfig, code_versions

    defaults = code_versions()
    assert code_versions(ListingMediaConfig(max_workers=1, fetch_timeout_s=5)) == defaults
    two_k = code_versions(ListingMediaConfig(resolution="2k"))
    assert {k for k in defaults if two_k[k] != defaults[k]} == {"staged_renders"}
    imperial = code_versions(ListingMediaConfig(units="imperial"))
    assert {k for k in defaults if imperial[k] != defaults[k]} == {"floor_plans", "brochures"}
    assert defaults["staged_renders"].startswith("staging-v")


def test_observing_listing_records_gives_content_hashes(tmp_path: Path) -> None:
    from dagster._core.definitions.observe import observe

    from bkbn_pipelines.assets import listing_records
    from bkbn_pipelines.catalogue import read_snapshot
    from bkbn_pipelines.resources import MediaStoreResource
    from bkbn_pipelines.storage import MediaStore

    source = _catalogue(tmp_path / "export")
    defs = make_defs(tmp_path / "media")
    with dagster_instance() as instance:
        run_catalogue(defs, instance, source)
        result = observe(
            [listing_records],
            instance=instance,
            resources={"media_store": MediaStoreResource(root=str(tmp_path / "media"))},
        )
        observations = result.asset_observations_for_node("listing_records")
    snapshot = read_snapshot(MediaStore(tmp_path / "media"))
    expected = dict(zip(snapshot["slug"], snapshot["content_hash"], strict=True))
    assert {o.partition: o.tags["dagster/data_version"] for o in observations} == expected


def test_a_removed_listing_is_skipped_not_failed(tmp_path: Path) -> None:
    export = tmp_path / "export"
    source = _catalogue(export)
    defs = make_defs(tmp_path / "media")
    with dagster_instance() as instance:
        run_catalogue(defs, instance, source)
        assert run_listings(defs, instance, "a", "c", selection=[RAW]).success
        write_catalogue(export, [{"listing_id": "a", "photos": [tiny_jpeg(1)]}])
        run_catalogue(defs, instance, source)  # b and c left the catalogue
        assert set(instance.get_dynamic_partitions("listings")) == {"a", "b", "c"}
        again = run_listings(defs, instance, "a", "c", selection=[RAW])
        assert again.success
        # b and c keep their history; nothing new is recorded for them
        assert stale_status(defs, instance, RAW, "b") == "FRESH"
        made = [
            e.partition for e in again.all_events if e.event_type_value == "ASSET_MATERIALIZATION"
        ]
    assert made == ["a"]
