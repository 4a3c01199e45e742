"""The nightly schedule across DST, and the sensor's partitions, requests and cursor."""

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from listing_support import (
    dagster_instance,
    make_defs,
    run_catalogue,
    run_listings,
    tiny_jpeg,
    write_catalogue,
)

from bkbn_pipelines._errors import ConfigError
from bkbn_pipelines.jobs import (
    build_nightly_schedule,
    listing_partitions_sensor,
    nightly_schedule,
    nightly_timezone,
)
from bkbn_pipelines.resources import MediaStoreResource


def _ticks(schedule: dg.ScheduleDefinition, start: dt.datetime, days: int) -> list[dt.datetime]:
    from dagster._utils.schedules import cron_string_iterator

    zone = ZoneInfo(schedule.execution_timezone)
    ticks = []
    for tick in cron_string_iterator(start.timestamp(), schedule.cron_schedule, str(zone)):
        if tick > start + dt.timedelta(days=days):
            break
        ticks.append(tick.astimezone(zone))
    return ticks


@pytest.mark.parametrize(
    "start",
    [dt.datetime(2026, 3, 25, tzinfo=dt.UTC), dt.datetime(2026, 10, 21, tzinfo=dt.UTC)],
    ids=["spring-forward", "fall-back"],
)
def test_one_run_per_local_day_across_dst(start: dt.datetime) -> None:
    schedule = build_nightly_schedule("Europe/Paris")
    ticks = _ticks(schedule, start, days=10)
    days = [t.date() for t in ticks]
    # one tick per local day: no day twice, no day missed
    assert days == [days[0] + dt.timedelta(days=i) for i in range(len(days))]
    assert len(days) >= 10
    assert all(t.hour in (2, 3) and t.minute == 0 for t in ticks)
    # the transition day is in the window, and every other tick is at 02:00 local
    assert sum(t.hour == 2 for t in ticks) >= 9


def test_timezone_comes_from_the_environment() -> None:
    assert nightly_timezone({}) == "UTC"
    assert nightly_timezone({"BKBN_TIMEZONE": "America/New_York"}) == "America/New_York"
    with pytest.raises(ConfigError, match="BKBN_TIMEZONE"):
        nightly_timezone({"BKBN_TIMEZONE": "Mars/Olympus"})
    assert nightly_schedule.cron_schedule == "0 2 * * *"


def _schedule_tick(instance: dg.DagsterInstance) -> Any:
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=dt.datetime(2026, 3, 29, 3, 0, tzinfo=ZoneInfo("Europe/Paris")),
    )
    return build_nightly_schedule("Europe/Paris").evaluate_tick(context)


def test_schedule_runs_the_catalogue_job_on_the_export_in_bkbn_catalogue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BKBN_CATALOGUE", "s3://exports/listings.parquet")
    monkeypatch.setenv("BKBN_CATALOGUE_S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    with dagster_instance() as instance:
        [request] = _schedule_tick(instance).run_requests
    assert nightly_schedule.job_name == "nightly_catalogue_job"
    assert request.run_key == "2026-03-29"  # one run per local day
    config = request.run_config["ops"]["listing_catalogue"]["config"]
    assert config == {
        "source": "s3://exports/listings.parquet",
        "s3_endpoint_url": "http://127.0.0.1:9000",
    }


def test_schedule_without_an_export_skips_and_names_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BKBN_CATALOGUE", raising=False)
    with dagster_instance() as instance:
        tick = _schedule_tick(instance)
    assert tick.run_requests == []
    assert "BKBN_CATALOGUE" in tick.skip_message


def _tick(instance: dg.DagsterInstance, media: Path, cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"media_store": MediaStoreResource(root=str(media))},
    ) as context:
        return listing_partitions_sensor(context)


def test_sensor_requests_new_and_changed_listings(tmp_path: Path) -> None:
    export = tmp_path / "export"
    listings = [
        {"listing_id": "a", "photos": [tiny_jpeg(1)]},
        {"listing_id": "b", "photos": [tiny_jpeg(2)]},
    ]
    source = write_catalogue(export, listings)
    media = tmp_path / "media"
    defs = make_defs(media)
    with dagster_instance() as instance:
        assert isinstance(_tick(instance, media, None), dg.SkipReason)  # no snapshot yet
        run_catalogue(defs, instance, source)
        assert run_listings(defs, instance, "a", selection=["raw_listing_photos"]).success

        first = _tick(instance, media, None)
        # a is already done for this content; b is not
        assert [r.partition_key for r in first.run_requests] == ["b"]
        assert first.run_requests[0].run_key.startswith("b:")
        assert set(json.loads(first.cursor)) == {"a", "b"}

        quiet = _tick(instance, media, first.cursor)
        assert quiet.run_requests == [] and quiet.dynamic_partitions_requests == []

        listings[0]["price"] = 999  # a changes, b leaves, c arrives
        listings[1] = {"listing_id": "c", "photos": [tiny_jpeg(3)]}
        write_catalogue(export, listings)
        # the snapshot is written by the catalogue asset; here without registering
        # partitions, so the sensor is the one that adds c
        from bkbn_pipelines.catalogue import read_catalogue, write_snapshot

        write_snapshot(MediaStoreResource(root=str(media)).store(), read_catalogue(source))
        changed = _tick(instance, media, first.cursor)
    assert sorted(r.partition_key for r in changed.run_requests) == ["a", "c"]
    [add] = changed.dynamic_partitions_requests
    assert add.partitions_def_name == "listings" and list(add.partition_keys) == ["c"]
    assert set(json.loads(changed.cursor)) == {"a", "c"}  # b is dropped, never requested
    assert {r.run_key for r in changed.run_requests}.isdisjoint(
        {r.run_key for r in first.run_requests}
    )
