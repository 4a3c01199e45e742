"""``bkbn nightly``: the nightly catalogue run from the command line.

Runs in the Dagster instance of ``DAGSTER_HOME`` (default ``./.dagster_home``,
created), so ``dagster dev -w workspace.yaml`` shows the materialisations afterwards.
With ``--backend api`` and no ``BKBN_BASE_URL`` (or with ``--emulator``) an emulator
runs in this process on loopback for the length of the run.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE

__all__ = ["DEMO_API_KEY", "add_arguments", "ensure_dagster_home", "run", "run_with"]

#: The key of the in-process emulator; it exists only inside that emulator.
DEMO_API_KEY = "bkbn_sk_demo_local_only_0123456789"

_INSTANCE_YAML = """\
# Written by `bkbn nightly`: the Dagster instance of local nightly runs.
telemetry:
  enabled: false
concurrency:
  pools:
    # Steps of the listing assets share the pool "bkbn_api": at most this many
    # run at once across runs (`dagster instance concurrency set bkbn_api N`).
    default_limit: 4
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--catalogue", required=True, help="Listing export: CSV or Parquet, path or s3:// URL."
    )
    _common_arguments(parser)


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=("api", "local"),
        default=os.environ.get("BKBN_BACKEND", "api") or "api",
        help="api: the Backbone Lab API (or the emulator); local: in-process runtime.",
    )
    parser.add_argument(
        "--emulator",
        action="store_true",
        help="Run against an emulator started in this process, even if BKBN_BASE_URL is set.",
    )
    parser.add_argument(
        "--storage-root", help="Media store root (default: $BKBN_STORAGE_ROOT or ./.bkbn_media)."
    )
    parser.add_argument(
        "--dagster-home",
        help="Dagster instance folder (default: $DAGSTER_HOME or ./.dagster_home).",
    )
    parser.add_argument(
        "--s3-endpoint-url",
        default=os.environ.get("BKBN_CATALOGUE_S3_ENDPOINT_URL") or None,
        help="S3 endpoint for an s3:// catalogue (default: $BKBN_CATALOGUE_S3_ENDPOINT_URL).",
    )
    parser.add_argument(
        "--all", action="store_true", help="Process every listing, not only new and changed ones."
    )
    parser.add_argument(
        "--allow-untrained",
        action="store_true",
        help="Without staging weights, stage with a tiny untrained model (labelled as such).",
    )


def run(args: argparse.Namespace) -> int:
    return run_with(args, catalogue=args.catalogue)


def ensure_dagster_home(given: str | None = None) -> Path:
    """``DAGSTER_HOME`` (set, created, with a ``dagster.yaml``); default ./.dagster_home."""
    home = Path(given or os.environ.get("DAGSTER_HOME") or ".dagster_home").expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(_INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def run_with(args: argparse.Namespace, *, catalogue: str) -> int:
    from dagster import DagsterInstance

    from .._errors import BkbnError, CatalogueError, ConfigError
    from ..assets._work import NO_WEIGHTS_HELP
    from ..resources import MediaStoreResource
    from ._nightly import run_nightly

    if "://" not in catalogue and not Path(catalogue).expanduser().exists():
        print(f"error: catalogue {catalogue} not found", file=sys.stderr)
        return EXIT_USAGE
    home = ensure_dagster_home(args.dagster_home)
    allow_untrained = bool(args.allow_untrained) or None
    listing_config: dict[str, Any] = {}
    try:
        with _backend(args, allow_untrained) as backbone, DagsterInstance.get() as instance:
            if _in_process_emulator(args) and not _can_stage(allow_untrained):
                # the emulator would answer every staging request with an error: skip
                # staging, as the local backend does without weights, rather than fail
                # every listing
                listing_config["staging_enabled"] = False
                print(f"note: the in-process emulator has no staging weights; {NO_WEIGHTS_HELP}")
            print(f"Dagster home: {home}")
            summary = run_nightly(
                catalogue,
                backbone=backbone,
                media_store=MediaStoreResource(root=args.storage_root),
                instance=instance,
                s3_endpoint_url=args.s3_endpoint_url,
                listing_config=listing_config,
                everything=bool(args.all),
                progress=lambda line: print(line, flush=True),
            )
    except BkbnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        usage = isinstance(exc, CatalogueError | ConfigError)
        return EXIT_USAGE if usage else EXIT_FAILED
    except Exception as exc:  # a Dagster error from the catalogue step: report, fail
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    _print_summary(summary, home)
    return EXIT_OK if summary.ok else EXIT_FAILED


def _in_process_emulator(args: argparse.Namespace) -> bool:
    """Whether the ``api`` backend runs against an emulator started in this process."""
    if args.backend == "local":
        return False
    return bool(args.emulator) or not os.environ.get("BKBN_BASE_URL")


def _can_stage(allow_untrained: bool | None) -> bool:
    """Whether the local runtime has staging weights, or may use untrained ones."""
    from ..runtime import RuntimeSettings

    try:
        settings = RuntimeSettings.from_env(allow_untrained=allow_untrained)
    except Exception:  # a bad setting: let the run report it where it is used
        return True
    return bool(settings.staging_model or settings.allow_untrained)


@contextmanager
def _backend(args: argparse.Namespace, allow_untrained: bool | None) -> Iterator[Any]:
    from ..resources import BackboneResource

    if not _in_process_emulator(args) and args.backend != "local":
        yield BackboneResource(backend="api")  # key and URL from the environment
        return
    _require_local_runtime(args.backend)
    if args.backend == "local":
        yield BackboneResource(backend="local", allow_untrained=allow_untrained)
        return
    from ..emulator._config import EmulatorConfig
    from ..emulator.testing import serve_in_thread

    config = EmulatorConfig.model_validate(
        {
            "organizations": [{"id": "demo", "tier": "demo"}],
            "api_keys": [{"key": DEMO_API_KEY, "org": "demo"}],
            "tiers": {"demo": {"requests_per_minute": 6000, "tokens_per_minute": 10_000_000}},
            "runtime": {"allow_untrained": True} if allow_untrained else {},
        }
    )
    with serve_in_thread(config, test_mode=False) as url:
        print(f"Emulator: {url} (in this process, for this run only)")
        yield BackboneResource(backend="api", base_url=url, api_key=DEMO_API_KEY)


def _require_local_runtime(backend: str) -> None:
    """The local backend and the in-process emulator render with torch and diffusers."""
    import importlib.util

    from .._errors import ConfigError

    missing = [n for n in ("torch", "diffusers") if importlib.util.find_spec(n) is None]
    if missing:
        what = "the local backend" if backend == "local" else "the in-process emulator"
        raise ConfigError(
            f"{what} renders with the local runtime, which needs {' and '.join(missing)}: "
            "pip install 'bkbn_pipelines[local]' (torch==2.13.0 first on a CPU machine), "
            "or set BKBN_BASE_URL and BKBN_API_KEY to run against an API"
        )


def _print_summary(summary: Any, home: Path) -> None:
    header = (
        "listing",
        "id",
        "photos",
        "failed",
        "enhanced",
        "renders",
        "weights",
        "plan",
        "status",
    )
    rows = [
        (
            item.slug,
            item.listing_id,
            str(item.photos),
            str(item.photo_failures),
            str(item.enhanced),
            str(item.renders),
            item.render_weights,
            "yes" if item.floor_plan else "no",
            item.status if len(item.status) <= 60 else item.status[:57] + "...",
        )
        for item in summary.listings
    ]
    totals = summary.totals()
    rows.append(
        (
            "total",
            "",
            str(totals["photos"]),
            "",
            "",
            str(totals["renders"]),
            "",
            "",
            f"{totals['failed_listings']} listing(s) failed",
        )
    )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print()
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))
    print()
    print(
        f"{totals['listings']} listings, {len(summary.processed)} processed, "
        f"{totals['photos']} photos, {totals['renders']} renders, "
        f"{totals['failed_listings']} failed listing(s), {totals['failed_photos']} failed "
        f"photo(s), {totals['rejected_rows']} rejected catalogue row(s), "
        f"{summary.seconds:.1f} s"
    )
    if not summary.processed:
        print("Nothing new or changed since the last run; --all processes every listing.")
    pdfs = [item for item in summary.listings if item.brochure_pdf]
    if pdfs:
        print("\nBrochures:")
        for item in pdfs:
            print(f"  {item.slug}: {item.brochure_pdf}")
    for slug, cause in sorted(summary.failures.items()):
        print(f"FAILED {slug}: {cause}", file=sys.stderr)
    for item in summary.listings:
        for photo, error in item.photo_errors:
            print(f"PHOTO FAILED {item.slug}: {photo}: {error}", file=sys.stderr)
    for row in summary.rejected:
        # the reason names the listing when the row has an id
        print(f"REJECTED catalogue row {row['row']}: {row['reason']}", file=sys.stderr)
    if summary.more_rejected:
        print(f"REJECTED {summary.more_rejected} more row(s): see the run log", file=sys.stderr)
    if summary.staging_note:
        print(f"\nNOTE: {summary.staging_note}")
    dagster = _dagster_command()
    print(f"\nSee the runs and lineage: DAGSTER_HOME={home} {dagster} dev -w workspace.yaml")


def _dagster_command() -> str:
    """``dagster`` when it is on PATH, else the one beside this Python (a venv's)."""
    import shutil

    if shutil.which("dagster"):
        return "dagster"
    beside = Path(sys.executable).parent / "dagster"
    try:
        return str(beside.relative_to(Path.cwd()))
    except ValueError:
        return str(beside)
