"""The production instance config (deploy/dagster.yaml) on a real PostgreSQL server."""

from __future__ import annotations

import os
from pathlib import Path

import deploy_pipeline as pipe
import pytest
from dagster import DagsterInstance, materialize
from dagster._core.run_coordinator import QueuedRunCoordinator
from deploy_support import PgServer, make_dagster_home


@pytest.fixture
def pg_instance(tmp_path: Path, pg_server: PgServer, pg_database: str, monkeypatch):
    for key, value in pg_server.env(pg_database).items():
        monkeypatch.setenv(key, value)
    home = make_dagster_home(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.from_config(str(home)) as instance:
        yield instance


def test_instance_config_is_postgres_with_limits(pg_instance: DagsterInstance) -> None:
    from dagster_postgres import (
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )

    assert isinstance(pg_instance.run_storage, PostgresRunStorage)
    assert isinstance(pg_instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(pg_instance.schedule_storage, PostgresScheduleStorage)
    assert isinstance(pg_instance.run_coordinator, QueuedRunCoordinator)
    assert pg_instance.run_retries_enabled and pg_instance.run_retries_max_retries == 2
    assert not pg_instance.telemetry_enabled

    settings = pg_instance.get_concurrency_config()
    assert settings.pool_config.default_pool_limit == 4
    limits = {
        (d["key"], str(d.get("value"))) for d in settings.run_queue_config.tag_concurrency_limits
    }
    assert ("dagster/partition", "{'applyLimitPerUniqueValue': True}") in limits

    # The API pool: its limit lives in PostgreSQL, shared by every process of the deployment.
    pg_instance.event_log_storage.set_concurrency_slots("bkbn_api", 3)
    assert pg_instance.event_log_storage.get_concurrency_info("bkbn_api").slot_count == 3


def test_partitioned_materializations_land_in_postgres(
    pg_instance: DagsterInstance, pg_server: PgServer, pg_database: str, tmp_path: Path
) -> None:
    keys = ["MLS-000388907", "12-main-st", "unit-4-1"]
    pg_instance.add_dynamic_partitions("listings", keys)
    scratch = pipe.Scratch(root=str(tmp_path / "scratch"))
    assets = [pipe.raw_listing_photos, pipe.photo_index]
    for key in keys:
        result = materialize(
            assets, instance=pg_instance, partition_key=key, resources={"scratch": scratch}
        )
        assert result.success

    conn = pg_server.connect(pg_database)
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT asset_key, partition FROM event_logs "
            "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' ORDER BY id"
        )
        rows = cur.fetchall()
        cur.execute("SELECT count(*) FROM runs WHERE status = 'SUCCESS'")
        (succeeded,) = cur.fetchone()
        cur.execute(
            "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'listings'"
        )
        partitions = sorted(r[0] for r in cur.fetchall())
    conn.close()

    assert sorted(rows) == sorted(
        (f'["{name}"]', key) for key in keys for name in ("raw_listing_photos", "photo_index")
    )
    assert succeeded == len(keys)
    assert partitions == sorted(keys)
    assert os.environ["DAGSTER_PG_DB"] == pg_database
