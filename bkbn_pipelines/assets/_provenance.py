"""Data-version provenance for materializations recorded one listing at a time.

The per-listing assets record an ``AssetMaterialization`` per listing themselves (see
``_listing_media.py`` for why), so they also write the tags Dagster writes for its own
materializations: code version, the data version and event of each input partition,
and the data version of the output.  With these tags Dagster's staleness and the
automation conditions work per listing exactly as for ordinary outputs.
"""

from __future__ import annotations

from collections.abc import Iterable

from dagster import AssetKey, DagsterEventType, DagsterInstance
from dagster._core.definitions.data_version import (
    CODE_VERSION_TAG,
    DATA_VERSION_IS_USER_PROVIDED_TAG,
    DATA_VERSION_TAG,
    DEFAULT_DATA_VERSION,
    NULL_EVENT_POINTER,
    extract_data_version_from_entry,
    get_input_data_version_tag,
    get_input_event_pointer_tag,
)

__all__ = ["materialized_in_runs", "provenance_tags", "rejected_in_runs"]

_SOURCE_KEYS = frozenset({AssetKey("listing_records")})


def provenance_tags(
    instance: DagsterInstance,
    *,
    code_version: str,
    parents: Iterable[AssetKey],
    partition_key: str,
    data_version: str,
) -> dict[str, str]:
    """The tags of one listing's materialization, inputs read from the instance now."""
    tags = {CODE_VERSION_TAG: code_version}
    for parent in parents:
        record = instance.get_latest_data_version_record(
            parent, is_source=parent in _SOURCE_KEYS, partition_key=partition_key
        )
        version = extract_data_version_from_entry(record.event_log_entry) if record else None
        tags[get_input_data_version_tag(parent)] = (version or DEFAULT_DATA_VERSION).value
        tags[get_input_event_pointer_tag(parent)] = (
            str(record.storage_id) if record is not None else NULL_EVENT_POINTER
        )
    tags[DATA_VERSION_TAG] = data_version
    tags[DATA_VERSION_IS_USER_PROVIDED_TAG] = "true"
    return tags


def materialized_in_runs(
    instance: DagsterInstance,
    key: AssetKey,
    partition_key: str,
    run_ids: frozenset[str],
    code_version: str,
    rejected: frozenset[tuple[str, str, str]] = frozenset(),
) -> bool:
    """Whether the latest materialization of ``key`` for this listing came from one of
    ``run_ids`` (this run, its parent, its root) with the same code version, and no
    blocking check of that run rejected it (``rejected``: see :func:`rejected_in_runs`)."""
    record = instance.get_latest_data_version_record(
        key, is_source=False, partition_key=partition_key
    )
    if record is None or record.event_log_entry.run_id not in run_ids:
        return False
    if (key.to_user_string(), partition_key, record.event_log_entry.run_id) in rejected:
        return False
    materialization = record.event_log_entry.asset_materialization
    tags = (materialization.tags if materialization is not None else None) or {}
    return tags.get(CODE_VERSION_TAG) == code_version


def rejected_in_runs(
    instance: DagsterInstance, run_ids: Iterable[str]
) -> frozenset[tuple[str, str, str]]:
    """(asset, partition, run id) of each output a blocking check failed in ``run_ids``.

    Such an output is recorded (the UI shows it with its failed check) but counts as
    not done: a retry or re-execution makes it again instead of feeding it downstream.
    """
    found: set[tuple[str, str, str]] = set()
    for run_id in run_ids:
        for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
            event = entry.dagster_event
            data = event.asset_check_evaluation_data if event is not None else None
            if data is None or data.passed or not data.blocking or data.partition is None:
                continue
            found.add((data.asset_key.to_user_string(), data.partition, run_id))
    return frozenset(found)
