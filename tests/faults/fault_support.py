"""Helpers of the end-to-end fault tests: whole Dagster runs against the emulator.

Each test makes its own API key (so its own organization, faults and render counter),
its own media store and its own Dagster instance; the emulator and the moto server
are the session's.  After a run the helpers check the three promises of
docs/reliability.md: every listing materialised or failed with its cause in the event
log; nothing partial or orphaned in the media store and no duplicate manifest rows;
no more renders than needed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from listing_support import (
    LISTING_KEYS,
    failed_listings,
    materializations,
    run_catalogue,
    tiny_jpeg,
    write_catalogue,
)

from bkbn_pipelines.definitions import build_definitions
from bkbn_pipelines.resources import BackboneResource, MediaStoreResource
from bkbn_pipelines.storage import MediaStore
from bkbn_pipelines.storage._store import TEMP_PREFIX

ASSETS = tuple(key.path[-1] for key in LISTING_KEYS)
#: Graph runs of one listing with ``photos`` photos and no capture: relight and
#: staging per photo, one brochure (floor plans are skipped without a capture).
RENDERS_PER_PHOTO = 2


def renders_needed(photos_per_listing: Iterable[int]) -> int:
    """Renders a clean run of listings with these photo counts makes."""
    return sum(RENDERS_PER_PHOTO * n + 1 for n in photos_per_listing)


def simple_listings(count: int, photos: int = 2, *, prefix: str = "F") -> list[dict[str, Any]]:
    """``count`` listings ``F1``, ``F2``... with ``photos`` small distinct photos each."""
    return [
        {
            "listing_id": f"{prefix}{n}",
            "photos": [
                (f"{prefix.lower()}{n}-{p}.jpg", tiny_jpeg(n * 10 + p)) for p in range(photos)
            ],
        }
        for n in range(1, count + 1)
    ]


def api_backbone(url: str, **settings: Any) -> BackboneResource:
    """The ``api`` backend against the emulator at ``url``; short timeouts for tests."""
    settings.setdefault("timeout_s", 60.0)
    settings.setdefault("read_timeout_s", 10.0)
    return BackboneResource(backend="api", base_url=url, **settings)


@dataclass
class Scenario:
    """One test's catalogue, media store, definitions and Dagster instance."""

    folder: Path
    media_root: str
    defs: dg.Definitions
    instance: dg.DagsterInstance
    listings: list[dict[str, Any]]
    storage_options: Mapping[str, Any] | None = None

    @property
    def slugs(self) -> list[str]:
        return sorted(self.instance.get_dynamic_partitions("listings"))

    def store(self) -> MediaStore:
        return MediaStore(self.media_root, storage_options=self.storage_options)

    def catalogue(self) -> dg.ExecuteInProcessResult:
        result = run_catalogue(self.defs, self.instance, self.folder / "export" / "catalogue.csv")
        assert result.success
        return result

    def run(self, **config: Any) -> dg.ExecuteInProcessResult:
        """``listing_media_job`` over every listing in one run (a backfill)."""
        slugs = self.slugs
        job = self.defs.resolve_job_def("listing_media_job")
        return job.execute_in_process(
            instance=self.instance,
            run_config={"ops": {"listing_media": {"config": config}}},
            tags={
                "dagster/asset_partition_range_start": slugs[0],
                "dagster/asset_partition_range_end": slugs[-1],
            },
            raise_on_error=False,
        )


def make_scenario(
    folder: Path,
    instance: dg.DagsterInstance,
    backbone: BackboneResource,
    listings: Sequence[Mapping[str, Any]],
    *,
    media: MediaStoreResource | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Scenario:
    write_catalogue(folder / "export", listings)
    media = media or MediaStoreResource(root=str(folder / "media"))
    defs = build_definitions(backbone=backbone, media_store=media)
    return Scenario(
        folder=folder,
        media_root=media.resolved_root(),
        defs=defs,
        instance=instance,
        listings=list(listings),
        storage_options=storage_options,
    )


# -- what the event log says ----------------------------------------------------------


def events_of(result: Any, kind: str) -> list[dg.DagsterEvent]:
    return [e for e in result.all_events if e.event_type_value == kind]


def materialized_assets(instance: dg.DagsterInstance, slug: str) -> dict[str, int]:
    """Materialization count per listing asset for one listing."""
    return {name: len(materializations(instance, name, slug)) for name in ASSETS}


def error_log_lines(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The ERROR lines a run wrote to the Dagster event log."""
    return [r.user_message for r in instance.all_logs(run_id) if r.level >= 40 and r.user_message]


def assert_listings_accounted_for(
    instance: dg.DagsterInstance,
    results: Sequence[Any],
    slugs: Iterable[str],
    *,
    expect_failed: Mapping[str, str] | None = None,
) -> None:
    """Every listing is materialised or failed, with its cause in the event log.

    Materialised: every asset of the listing has a materialization, and none was
    recorded twice by one run (a step retry never redoes a listing).  Failed (the
    listings of ``expect_failed``, slug -> a word of the cause): the failed asset has
    none, the step's failure metadata and an ERROR line of the run name the listing.
    ``results`` are the runs so far; the last one decides.
    """
    expect_failed = dict(expect_failed or {})
    failed = failed_listings(results[-1]) if results else {}
    for slug in slugs:
        records = {name: materializations(instance, name, slug) for name in ASSETS}
        for name, found in records.items():
            runs = [r.run_id for r in found]
            assert len(runs) == len(set(runs)), f"{slug} {name} materialised twice in one run"
        if slug in expect_failed:
            assert slug in failed, f"{slug} should have failed; failures: {failed}"
            cause = failed[slug]["error"]
            assert expect_failed[slug].lower() in cause.lower(), (slug, cause)
            logged = [
                line
                for line in error_log_lines(instance, results[-1].run_id)
                if slug in line and failed[slug]["asset"] in line
            ]
            assert logged, f"no error line names {slug} in the event log"
            assert records[failed[slug]["asset"]] == []
        else:
            assert slug not in failed, (slug, failed[slug])
            empty = [name for name, found in records.items() if not found]
            assert not empty, f"{slug}: never materialised: {empty}"


# -- what the media store holds -------------------------------------------------------


def assert_store_consistent(store: MediaStore, *, local_root: Path | None = None) -> None:
    """No temporary file, no object under ``listings/`` that no manifest row names, no
    manifest row naming a missing object, no duplicate manifest rows."""
    if local_root is not None:
        temps = [p for p in local_root.rglob(f"{TEMP_PREFIX}*")]
        assert temps == [], f"temporary files left: {temps}"
    objects = set(store.list("listings"))
    referenced: set[str] = set()
    for asset in ASSETS:
        frame = store.read_manifest(asset)
        if frame.empty:
            continue
        ident = ["listing", "photo" if "photo" in frame.columns else "output"]
        if "photo" in frame.columns and "output" in frame.columns:
            ident.append("output")
        duplicated = frame[frame.duplicated(subset=ident, keep=False)]
        assert duplicated.empty, f"{asset}: duplicate manifest rows\n{duplicated[ident]}"
        keys = {str(k) for k in frame["key"].dropna()}
        missing = keys - objects
        assert not missing, f"{asset}: manifest rows name missing objects {sorted(missing)}"
        referenced |= keys
    orphans = objects - referenced
    assert not orphans, f"objects no manifest names: {sorted(orphans)}"


def local_root_of(scenario: Scenario) -> Path | None:
    root = scenario.media_root
    return Path(root) if "://" not in root and os.path.isdir(root) else None
