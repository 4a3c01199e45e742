"""listing_catalogue: partitions from listing ids, diffs as metadata, idempotent snapshots."""

import csv
from pathlib import Path

import dagster as dg
import pytest
from listing_support import dagster_instance, make_defs, run_catalogue, tiny_jpeg, write_catalogue

from bkbn_pipelines.catalogue import read_snapshot
from bkbn_pipelines.storage import MediaStore


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    [event] = result.get_asset_materialization_events()
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def test_odd_ids_become_one_selectable_partition_each(tmp_path: Path) -> None:
    # Cases 1 and 2: an id with "/" and one with ", " each give one partition and one
    # folder of objects, nothing nested.
    source = write_catalogue(
        tmp_path / "export",
        [
            {"listing_id": "MLS/12345", "photos": [tiny_jpeg(1)]},
            {"listing_id": "12 Main St, Springfield", "photos": [tiny_jpeg(2)]},
        ],
    )
    defs = make_defs(tmp_path / "media")
    with dagster_instance() as instance:
        result = run_catalogue(defs, instance, source)
        keys = instance.get_dynamic_partitions("listings")
        assert sorted(keys) == ["12-main-st-springfield", "mls-12345"]
        for key in keys:
            assert not set(key) & set("/,|[]") and "..." not in key
        metadata = _metadata(result)
        assert metadata["partition_map"] == {
            "mls-12345": "MLS/12345",
            "12-main-st-springfield": "12 Main St, Springfield",
        }
        assert metadata["new"] == 2 and metadata["changed"] == 0
        # selectable and backfillable: a range of exactly that partition is valid
        job = defs.resolve_job_def("listing_media_job")
        subset = job.partitions_def.get_partition_keys(dynamic_partitions_store=instance)
        assert "12-main-st-springfield" in subset


def test_new_changed_removed_and_rejected_are_reported(tmp_path: Path) -> None:
    export = tmp_path / "export"
    listings = [
        {"listing_id": "a-1", "photos": [tiny_jpeg(1)]},
        {"listing_id": "b-2", "photos": [tiny_jpeg(2)]},
        {"listing_id": "c-3", "photos": [tiny_jpeg(3)]},
    ]
    source = write_catalogue(export, listings)
    defs = make_defs(tmp_path / "media")
    with dagster_instance() as instance:
        run_catalogue(defs, instance, source)
        listings[1]["price"] = 123  # b-2 changes
        del listings[2]  # c-3 leaves
        listings.append({"listing_id": "d-4", "photos": [tiny_jpeg(4)]})  # d-4 arrives
        write_catalogue(export, listings)
        with source.open("a", newline="") as handle:  # and one row is unusable
            csv.writer(handle).writerow(["", "No Id Road", "", "", "", "", "", "", "", "x.jpg"])
        metadata = _metadata(run_catalogue(defs, instance, source))
    assert metadata["new_listings"] == ["d-4"]
    assert metadata["changed_listings"] == ["b-2"]
    assert metadata["removed_listings"] == ["c-3"]
    assert metadata["reported_listings"] == ["b-2", "d-4"]
    assert metadata["unchanged"] == 1
    assert metadata["rejected"] == 1
    assert "No Id Road" not in metadata["rejected_rows"]
    assert "| 4 |" in metadata["rejected_rows"]


@pytest.mark.parametrize("engine", ["pyarrow", "c"])
def test_leading_zeros_survive_every_engine(tmp_path: Path, engine: str) -> None:
    # Case 5: ids 000388907 and 0150 read with the pyarrow engine stay as they are.
    source = write_catalogue(
        tmp_path / "export",
        [
            {"listing_id": "000388907", "photos": [tiny_jpeg(1)]},
            {"listing_id": "0150", "photos": [tiny_jpeg(2)]},
        ],
    )
    defs = make_defs(tmp_path / "media")
    with dagster_instance() as instance:
        result = run_catalogue(defs, instance, source, csv_engine=engine)
        assert sorted(instance.get_dynamic_partitions("listings")) == ["000388907", "0150"]
    snapshot = read_snapshot(MediaStore(tmp_path / "media"))
    assert sorted(snapshot["listing_id"]) == ["000388907", "0150"]
    assert set(_metadata(result)["partition_map"].values()) == {"000388907", "0150"}


def test_rerun_writes_the_same_rows(tmp_path: Path) -> None:
    # Case 6: the catalogue job retried after a failure writes the same listings again.
    source = write_catalogue(
        tmp_path / "export",
        [{"listing_id": f"L{i}", "photos": [tiny_jpeg(i)]} for i in range(5)],
    )
    defs = make_defs(tmp_path / "media")
    store = MediaStore(tmp_path / "media")
    with dagster_instance() as instance:
        run_catalogue(defs, instance, source)
        first = read_snapshot(store)
        second_result = run_catalogue(defs, instance, source)
        second = read_snapshot(store)
        assert len(instance.get_dynamic_partitions("listings")) == 5
    assert len(first) == len(second) == 5
    assert list(first["content_hash"]) == list(second["content_hash"])
    # nothing changed, so no listing is reported again (no downstream reruns)
    assert _metadata(second_result)["reported_listings"] == []


def test_a_catalogue_run_that_failed_midway_is_retried_without_new_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Case 6, after a real failure: the first run writes its snapshot, then the instance
    # refuses to register the partitions (a database hiccup).  The retry reads that
    # snapshot as "previous", so only the instance can tell it what was never reported.
    source = write_catalogue(
        tmp_path / "export",
        [{"listing_id": f"L{i}", "photos": [tiny_jpeg(i)]} for i in range(5)],
    )
    defs = make_defs(tmp_path / "media")
    store = MediaStore(tmp_path / "media")
    job = defs.resolve_job_def("nightly_catalogue_job")
    config = {"ops": {"listing_catalogue": {"config": {"source": str(source)}}}}
    with dagster_instance() as instance:
        real = instance.add_dynamic_partitions

        def refuse_once(name, keys):
            monkeypatch.setattr(instance, "add_dynamic_partitions", real)
            raise RuntimeError("database is locked")

        monkeypatch.setattr(instance, "add_dynamic_partitions", refuse_once)
        failed = job.execute_in_process(instance=instance, run_config=config, raise_on_error=False)
        assert not failed.success
        assert len(read_snapshot(store)) == 5  # written before the failure
        assert instance.get_dynamic_partitions("listings") == []

        retried = job.execute_in_process(instance=instance, run_config=config)
        assert sorted(instance.get_dynamic_partitions("listings")) == [f"l{i}" for i in range(5)]
    snapshot = read_snapshot(store)
    assert len(snapshot) == 5 and snapshot["listing_id"].is_unique
    # every listing is reported by the retry, since the failed run reported none
    assert sorted(_metadata(retried)["reported_listings"]) == [f"l{i}" for i in range(5)]


def test_unusable_catalogue_fails_the_step(tmp_path: Path) -> None:
    source = tmp_path / "catalogue.csv"
    source.write_text("listing_id,address\nx,1 Road\n")  # no photos column
    defs = make_defs(tmp_path / "media")
    with dagster_instance() as instance:
        result = defs.resolve_job_def("nightly_catalogue_job").execute_in_process(
            instance=instance,
            run_config={"ops": {"listing_catalogue": {"config": {"source": str(source)}}}},
            raise_on_error=False,
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error = failure.step_failure_data.error
    assert error.cause.cls_name == "CatalogueError"
    assert "lacks required column 'photos'" in error.cause.message
