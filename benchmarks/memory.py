"""Peak memory while ingesting a catalogue: it must not grow with the catalogue.

Ingesting is reading the export, snapshotting it, and for each listing fetching,
checking and normalising its photos and storing them with the listing's manifest (the
work of ``listing_catalogue`` and ``raw_listing_photos``).  Each catalogue size runs in
a fresh child process, so nothing imported or cached by one size counts for another;
the parent reads the child's peak resident set size from ``os.wait4`` (the child's own
``getrusage``, not the running maximum over all children).  Two ways of ingesting:

- ``library``: the package's functions called directly, listing after listing;
- ``dagster``: ``nightly_catalogue_job`` then ``listing_media_job`` restricted to
  ``raw_listing_photos`` over all listings in one run (a backfill), on a SQLite
  instance, with the in-process executor.

The child also reports its peak after imports and setup, before the first listing;
``growth`` is the difference, the memory the ingest itself needed.

    python -m benchmarks.memory                 # 50 and 500 listings x 3 photos
    python -m benchmarks.memory --quick         # 3 and 10 listings, library only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import markdown_table, quiet_dagster, write_catalogue, write_results

NAME = "memory"
_KIB = 1024


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / _KIB  # ru_maxrss is KiB


# -- the child ---------------------------------------------------------------------------------


def ingest_library(catalogue: Path, root: Path) -> dict[str, Any]:
    from bkbn_pipelines.assets._listing_media import ListingMediaConfig
    from bkbn_pipelines.assets._work import ListingJob, raw_photos_for_listing
    from bkbn_pipelines.catalogue import read_catalogue, read_snapshot, write_snapshot
    from bkbn_pipelines.media import FetchPolicy
    from bkbn_pipelines.storage import MediaStore

    store = MediaStore(str(root))
    policy = FetchPolicy(local_roots=(catalogue.parent.resolve(),))
    before = _peak_mib()
    started = time.monotonic()
    write_snapshot(store, read_catalogue(str(catalogue)))
    snapshot = read_snapshot(store)
    records = snapshot.to_dict(orient="records")
    del snapshot
    photos = 0
    for row in records:
        job = ListingJob(
            slug=str(row["slug"]),
            row=row,
            store=store,
            backbone=None,  # raw photos call no graph
            settings=ListingMediaConfig(),
            fetch_policy=policy,
            context=None,
            idempotency_prefix="bench",
            log=lambda level, message: None,
        )
        photos += raw_photos_for_listing(job).metadata["photos"]
    return {"listings": len(records), "photos": photos, "before_mib": before, "t": started}


def ingest_dagster(catalogue: Path, root: Path) -> dict[str, Any]:
    import dagster as dg
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from bkbn_pipelines.assets import LISTINGS
    from bkbn_pipelines.definitions import build_definitions
    from bkbn_pipelines.resources import BackboneResource, MediaStoreResource

    quiet_dagster()
    loggers = {"console": {"config": {"log_level": "ERROR"}}}
    defs = build_definitions(
        backbone=BackboneResource(backend="local", device="cpu"),
        media_store=MediaStoreResource(root=str(root / "media")),
    )
    job = defs.resolve_job_def("listing_media_job").get_subset(
        asset_selection={dg.AssetKey("raw_listing_photos")}
    )
    (root / "home").mkdir(parents=True, exist_ok=True)
    with dg.instance_for_test(temp_dir=str(root / "home")) as instance:
        before = _peak_mib()
        started = time.monotonic()
        defs.resolve_job_def("nightly_catalogue_job").execute_in_process(
            instance=instance,
            run_config={
                "ops": {"listing_catalogue": {"config": {"source": str(catalogue)}}},
                "loggers": loggers,
            },
        )
        keys = list(instance.get_dynamic_partitions(LISTINGS.name))
        result = job.execute_in_process(
            instance=instance,
            run_config={"loggers": loggers},
            tags={
                ASSET_PARTITION_RANGE_START_TAG: keys[0],
                ASSET_PARTITION_RANGE_END_TAG: keys[-1],
            },
            raise_on_error=False,
        )
        done = len(result.get_asset_materialization_events())
    return {"listings": len(keys), "photos": None, "materialized": done, "before_mib": before,
            "t": started}  # fmt: skip


def child(mode: str, catalogue: Path, root: Path) -> None:
    ingest = ingest_library if mode == "library" else ingest_dagster
    out = ingest(catalogue, root)
    out["seconds"] = time.monotonic() - out.pop("t")
    out["peak_mib_self"] = _peak_mib()
    print(json.dumps(out))


# -- the parent -------------------------------------------------------------------------------


def run_child(mode: str, catalogue: Path, root: Path) -> dict[str, Any]:
    """Run one ingest in a fresh interpreter; its report and its peak RSS from wait4."""
    command = [sys.executable, "-m", "benchmarks.memory", "--child", mode, str(catalogue)]
    command.append(str(root))
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo),
           os.environ.get("PYTHONPATH")]))}  # fmt: skip
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=repo)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(), err.read().decode()
    if process.returncode != 0:
        raise RuntimeError(f"memory child {mode} failed ({process.returncode}):\n{errors[-3000:]}")
    report = json.loads(text.strip().splitlines()[-1])
    report["peak_rss_mib"] = usage.ru_maxrss / _KIB
    report["growth_mib"] = report["peak_rss_mib"] - report["before_mib"]
    return report


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke size: 3 and 10 listings")
    parser.add_argument("--sizes", type=int, nargs="+", help="catalogue sizes (default 50 500)")
    parser.add_argument("--photos", type=int, default=3, help="photos per listing")
    parser.add_argument("--photo-size", type=int, nargs=2, default=(800, 600), metavar=("W", "H"))
    parser.add_argument(
        "--modes", nargs="+", choices=("library", "dagster"), help="default both; quick: library"
    )
    parser.add_argument("--out-dir", help="where to write the results (default results/)")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "CATALOGUE", "ROOT"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.child:
        mode, catalogue, root = args.child
        child(mode, Path(catalogue), Path(root))
        return {}
    quick = args.quick
    sizes = args.sizes or ([3, 10] if quick else [50, 500])
    args.modes = args.modes or (["library"] if quick else ["library", "dagster"])
    photo_size = (320, 240) if quick else tuple(args.photo_size)

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bkbn-bench-") as tmp:
        workdir = Path(tmp)
        for size in sizes:
            catalogue = write_catalogue(workdir / f"export-{size}", size, args.photos,
                                        size=photo_size)  # fmt: skip
            for mode in args.modes:
                report = run_child(mode, catalogue, workdir / f"out-{mode}-{size}")
                rows.append({"mode": mode, "catalogue_listings": size, **report})
                print(f"  {mode} {size}: peak {report['peak_rss_mib']:.0f} MiB", file=sys.stderr)
    by_mode: dict[str, Any] = {}
    for mode in args.modes:
        mine = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["catalogue_listings"])
        small, large = mine[0], mine[-1]
        by_mode[mode] = {
            "peak_ratio": large["peak_rss_mib"] / small["peak_rss_mib"],
            "growth_ratio": large["growth_mib"] / max(small["growth_mib"], 1.0),
            "extra_mib_per_100_listings": (large["peak_rss_mib"] - small["peak_rss_mib"])
            / max(1, large["catalogue_listings"] - small["catalogue_listings"]) * 100,
        }  # fmt: skip
    result = {
        "quick": quick,
        "params": {"sizes": sizes, "photos_per_listing": args.photos, "photo_size": photo_size},
        "rows": rows,
        "by_mode": by_mode,
    }
    columns = [
        ("mode", "ingest"),
        ("catalogue_listings", "listings"),
        ("before_mib", "MiB after setup"),
        ("peak_rss_mib", "peak RSS MiB"),
        ("growth_mib", "growth MiB"),
        ("seconds", "ingest s"),
    ]
    summary = "\n".join(
        f"- {mode}: peak x{v['peak_ratio']:.2f} from {sizes[0]} to {sizes[-1]} listings, "
        f"{v['extra_mib_per_100_listings']:.1f} MiB more per 100 listings"
        for mode, v in by_mode.items()
    )
    markdown = (
        f"{args.photos} generated JPEG photos of {photo_size[0]}x{photo_size[1]} per listing, "
        "each size and mode in a fresh process.\n\n"
        + markdown_table(rows, columns)
        + "\n\n"
        + summary
        + "\n"
    )
    path = write_results(NAME, result, markdown, args.out_dir)
    print(markdown)
    print(f"written {path}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
