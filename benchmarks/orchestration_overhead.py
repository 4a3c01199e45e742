"""Orchestration overhead: seconds per listing that Dagster adds around the API calls.

Listing partitions go through ``listing_media_job`` against the emulator with its
latency model at zero delay (one progress step of 0 ms) and no effective rate limit,
so what is left is the pipeline's own work and Dagster's bookkeeping (runs, steps,
event log, materializations, checks).  Two ways of running, on two instances:

- one run per listing (what the listing sensor requests), on a subset by default:
  each run costs seconds of fixed overhead on 2 cores;
- runs that each cover a range of listings (``BackfillPolicy.single_run``: what a
  backfill and ``bkbn nightly`` do);
- the SQLite instance (a temporary ``DAGSTER_HOME``) and the PostgreSQL instance
  (dagster-postgres, a database created for the run and dropped after).

For each, ``work s/listing`` is the time spent inside the per-listing function (fetch,
normalise, API calls, storage), measured by wrapping it; the rest of the wall time is
Dagster's.  Runs use one listing worker (``max_workers: 1``) so that work and
bookkeeping do not overlap and the difference is the overhead.

    python -m benchmarks.orchestration_overhead                  # 500 listings
    python -m benchmarks.orchestration_overhead --quick          # smoke size
    python -m benchmarks.orchestration_overhead --per-listing-runs 500   # all of them
    python -m benchmarks.orchestration_overhead --no-postgres          # SQLite only
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks._common import (
    markdown_table,
    quiet_dagster,
    serve_app,
    write_catalogue,
    write_results,
)

NAME = "orchestration_overhead"
LOGGERS = {"console": {"config": {"log_level": "ERROR"}}}


# -- instances ------------------------------------------------------------------------------


def postgres_url(db: str = "postgres") -> str:
    host = os.environ.get("BKBN_BENCH_PG_HOST", "127.0.0.1")
    port = os.environ.get("BKBN_BENCH_PG_PORT", "5432")
    user = os.environ.get("BKBN_BENCH_PG_USER", "postgres")
    return f"postgresql+psycopg2://{user}@{host}:{port}/{db}"


def postgres_available() -> str | None:
    """``None`` when PostgreSQL answers, else why not."""
    try:
        import psycopg2

        conn = psycopg2.connect(postgres_url().replace("+psycopg2", ""), connect_timeout=3)
        conn.close()
    except Exception as exc:  # any failure means: measure without it
        return f"{type(exc).__name__}: {exc}".strip()
    return None


@contextmanager
def postgres_database() -> Iterator[str]:
    import psycopg2

    name = f"bkbn_bench_{secrets.token_hex(4)}"
    admin = psycopg2.connect(postgres_url().replace("+psycopg2", ""))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@contextmanager
def dagster_instance(kind: str, home: Path) -> Iterator[Any]:
    import dagster as dg

    home.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        with dg.instance_for_test(temp_dir=str(home)) as instance:
            yield instance
        return
    with postgres_database() as db:
        overrides = {"storage": {"postgres": {"postgres_url": postgres_url(db)}}}
        with dg.instance_for_test(temp_dir=str(home), overrides=overrides) as instance:
            yield instance
            instance.dispose()


# -- one measurement ------------------------------------------------------------------------


class ListingTimer:
    """Wraps the op's per-listing function to add up the time spent inside it."""

    def __init__(self) -> None:
        from bkbn_pipelines.assets import _listing_media

        self.module = _listing_media
        self.original: Callable[..., Any] = _listing_media._run_listing
        self.seconds = 0.0
        self.count = 0

    def __enter__(self) -> ListingTimer:
        def timed(job: Any, todo: list[str]) -> Any:
            started = time.monotonic()
            try:
                return self.original(job, todo)
            finally:
                self.seconds += time.monotonic() - started
                self.count += 1

        self.module._run_listing = timed
        return self

    def __exit__(self, *exc: object) -> None:
        self.module._run_listing = self.original


def measure(
    kind: str,
    url: str,
    api_key: str,
    catalogue: Path,
    workdir: Path,
    *,
    per_listing_runs: int,
    range_size: int,
    listings: int,
) -> list[dict[str, Any]]:
    import dagster as dg
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from bkbn_pipelines.assets import LISTINGS
    from bkbn_pipelines.definitions import build_definitions
    from bkbn_pipelines.resources import BackboneResource, MediaStoreResource

    rows = []
    # Each mode gets its own instance and media store, so neither sees the other's
    # materializations (a listing already materialized would be skipped).
    for mode in ("per_listing", "range"):
        count = per_listing_runs if mode == "per_listing" else listings
        if count <= 0:
            continue
        defs = build_definitions(
            backbone=BackboneResource(backend="api", base_url=url, api_key=api_key),
            media_store=MediaStoreResource(root=str(workdir / kind / mode / "media")),
        )
        job = defs.resolve_job_def("listing_media_job")
        run_config = {"ops": {"listing_media": {"config": {"max_workers": 1}}}, "loggers": LOGGERS}
        with dagster_instance(kind, workdir / kind / mode / "home") as instance:
            defs.resolve_job_def("nightly_catalogue_job").execute_in_process(
                instance=instance,
                run_config={
                    "ops": {"listing_catalogue": {"config": {"source": str(catalogue)}}},
                    "loggers": LOGGERS,
                },
            )
            keys = list(instance.get_dynamic_partitions(LISTINGS.name))[:count]
            if mode == "per_listing":
                ranges = [(k, k) for k in keys]
            else:
                ranges = [
                    (keys[i], keys[min(i + range_size, len(keys)) - 1])
                    for i in range(0, len(keys), range_size)
                ]
            failed = 0
            with ListingTimer() as timer:
                started = time.monotonic()
                for first, last in ranges:
                    result = job.execute_in_process(
                        instance=instance,
                        run_config=run_config,
                        tags={
                            ASSET_PARTITION_RANGE_START_TAG: first,
                            ASSET_PARTITION_RANGE_END_TAG: last,
                        },
                        raise_on_error=False,
                    )
                    failed += 0 if result.success else 1
                wall = time.monotonic() - started
            done = len(
                {
                    r.partition_key
                    for r in instance.fetch_materializations(
                        dg.AssetRecordsFilter(asset_key=dg.AssetKey("brochures")), limit=10_000
                    ).records
                }
            )
        rows.append(
            {
                "instance": kind,
                "mode": mode,
                "listings": len(keys),
                "runs": len(ranges),
                "listings_per_run": len(keys) / len(ranges),
                "failed_runs": failed,
                "brochures": done,
                "wall_s": wall,
                "s_per_listing": wall / len(keys),
                "work_s_per_listing": timer.seconds / max(1, timer.count),
                "overhead_s_per_listing": (wall - timer.seconds) / len(keys),
                "s_per_run": wall / len(ranges),
            }
        )
        print(f"  {kind} {mode}: {rows[-1]['s_per_listing']:.3f} s/listing", file=sys.stderr)
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke size: seconds, not minutes")
    parser.add_argument("--listings", type=int, help="listings in range runs (default 500)")
    parser.add_argument(
        "--per-listing-runs", type=int, help="listings run one run each (default 50)"
    )
    parser.add_argument("--range-size", type=int, help="listings per range run (default 100)")
    parser.add_argument("--photos", type=int, default=1, help="photos per listing")
    parser.add_argument(
        "--postgres",
        action=argparse.BooleanOptionalAction,
        help="measure the PostgreSQL instance too (default: yes; quick: no)",
    )
    parser.add_argument("--out-dir", help="where to write the results (default results/)")
    args = parser.parse_args(argv)
    quick = args.quick
    listings = args.listings or (2 if quick else 500)
    per_listing = args.per_listing_runs
    if per_listing is None:
        per_listing = 1 if quick else 50
    range_size = args.range_size or (2 if quick else 100)

    quiet_dagster()
    from bkbn_pipelines.emulator import EmulatorConfig, LatencyConfig, create_app
    from bkbn_pipelines.emulator.testing import EmulatorAdmin

    kinds = ["sqlite"]
    use_postgres = args.postgres if args.postgres is not None else not quick
    postgres_note = postgres_available() if use_postgres else "not measured (--no-postgres)"
    if postgres_note is None:
        kinds.append("postgres")
    config = EmulatorConfig(
        renderer="latency",
        latency=LatencyConfig(delay_ms=0, steps=1, step_ms=0),
        max_concurrent_renders=4,
        max_runs=100_000,
    )
    rows: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bkbn-bench-") as tmp,
        serve_app(create_app(config, test_mode=True)) as url,
    ):
        workdir = Path(tmp)
        catalogue = write_catalogue(workdir / "export", max(listings, per_listing), args.photos)
        with EmulatorAdmin(url) as admin:
            key = admin.new_key(requests_per_minute=1_000_000, tokens_per_minute=100_000_000)
            for kind in kinds:
                rows.extend(
                    measure(
                        kind,
                        url,
                        key.api_key,
                        catalogue,
                        workdir,
                        per_listing_runs=per_listing,
                        range_size=range_size,
                        listings=listings,
                    )
                )
    result = {
        "quick": quick,
        "params": {
            "listings": listings,
            "per_listing_runs": per_listing,
            "range_size": range_size,
            "photos_per_listing": args.photos,
            "max_workers": 1,
            "requests_per_listing": 4 * args.photos + 7,
        },
        "postgres": postgres_note or "measured",
        "rows": rows,
    }
    columns = [
        ("instance", "instance"),
        ("mode", "runs"),
        ("listings", "listings"),
        ("runs", "run count"),
        ("s_per_listing", "s/listing"),
        ("work_s_per_listing", "work s/listing"),
        ("overhead_s_per_listing", "overhead s/listing"),
        ("s_per_run", "s/run"),
        ("failed_runs", "failed runs"),
        ("wall_s", "wall s"),
    ]
    markdown = (
        f"Latency model at zero delay, {args.photos} photo(s) per listing "
        f"({4 * args.photos + 7} API requests per listing), one listing worker per run; "
        f"range runs of {range_size} listings. PostgreSQL: {postgres_note or 'measured'}.\n\n"
        + markdown_table(rows, columns)
        + "\n"
    )
    path = write_results(NAME, result, markdown, args.out_dir)
    print(markdown)
    print(f"written {path}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
