"""A run worker, as Dagster's run launcher starts one: one run of ``listing_media_job``.

Usage: python listing_run_worker.py FIRST_SLUG LAST_SLUG [ASSET,ASSET...]
The instance is ``$DAGSTER_HOME``'s; the emulator, key and media store come from
``BKBN_BASE_URL``, ``BKBN_API_KEY`` and ``BKBN_STORAGE_ROOT``; a shared pacer from
``BKBN_TEST_PACER_REDIS`` and ``BKBN_TEST_PACER_REQUESTS``/``_WINDOW_S`` when set.
Prints the run id and whether it succeeded.  Tests start it to kill it mid-listing, or
to run two at once on one key.
"""

import json
import os
import sys
from typing import Any

from dagster import AssetKey, DagsterInstance, EnvVar, JobDefinition, execute_job, reconstructable

from bkbn_pipelines.definitions import build_definitions
from bkbn_pipelines.resources import BackboneResource, MediaStoreResource


def listing_media_job() -> JobDefinition:
    # EnvVar: read when the run starts, not when the job is loaded (Dagster caches a
    # job loaded by file, and one test process re-executes runs of several tests)
    defs = build_definitions(
        backbone=BackboneResource(
            backend="api",
            base_url=EnvVar("BKBN_BASE_URL"),
            api_key=EnvVar("BKBN_API_KEY"),
            timeout_s=120.0,
            read_timeout_s=60.0,
            **_pacer_settings(),
        ),
        media_store=MediaStoreResource(root=EnvVar("BKBN_STORAGE_ROOT")),
    )
    return defs.resolve_job_def("listing_media_job")


def _pacer_settings() -> dict[str, Any]:
    redis_url = os.environ.get("BKBN_TEST_PACER_REDIS")
    if not redis_url:
        return {}
    return {
        "ratelimit_redis_url": redis_url,
        "ratelimit_requests": int(os.environ["BKBN_TEST_PACER_REQUESTS"]),
        "ratelimit_window_s": float(os.environ["BKBN_TEST_PACER_WINDOW_S"]),
    }


def main() -> None:
    first, last = sys.argv[1:3]
    job = reconstructable(listing_media_job)
    if len(sys.argv) > 3:
        job = job.get_subset(asset_selection={AssetKey(n) for n in sys.argv[3].split(",")})
    with DagsterInstance.get() as instance:
        result = execute_job(
            job,
            instance=instance,
            run_config={"ops": {"listing_media": {"config": {"max_workers": 1}}}},
            tags={
                "dagster/asset_partition_range_start": first,
                "dagster/asset_partition_range_end": last,
            },
        )
        print(json.dumps({"run_id": result.run_id, "success": result.success}))


if __name__ == "__main__":
    main()
