"""Runs re-executed from failure: after a run worker killed with SIGKILL in the middle
of a listing, and after a blocking check rejected a listing's renders.

A re-execution sends the idempotency keys of the run it re-executes, so the API gives
back renders that run already made; keys whose output a check rejected are spent, so
those are rendered anew.  The killed worker is a real process running
``listing_media_job`` on an on-disk instance, as Dagster's run launcher starts one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableJob
from fault_support import (
    api_backbone,
    assert_listings_accounted_for,
    assert_store_consistent,
    make_scenario,
    materialized_assets,
    renders_needed,
    simple_listings,
)
from listing_support import failed_listings, materializations, reexecute_from_failure

WORKER = Path(__file__).parents[1] / "listing_run_worker.py"


def worker_job() -> ReconstructableJob:
    """The worker's job, loaded by file (its settings come from the environment)."""
    return ReconstructableJob.for_file(str(WORKER), "listing_media_job")


def _wait_for(condition, what: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run worker ended before {what}: {out}\n{err[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_a_run_worker_killed_mid_listing_then_reexecuted_loses_nothing_and_renders_once(
    tmp_path: Path, emulator_url: str, emulator_admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    key = emulator_admin.new_key()
    media_root = tmp_path / "media"
    env = {
        "DAGSTER_HOME": str(home),
        "BKBN_BASE_URL": emulator_url,
        "BKBN_API_KEY": key.api_key,
        "BKBN_STORAGE_ROOT": str(media_root),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # One listing at a time: f1 makes 5 streams (2 relights, 2 stagings, a brochure);
    # the 6th, f2's first relight, is held by the emulator for 30 s after 2 events.
    noop = {"action": "stall", "after_events": 0, "seconds": 0}
    emulator_admin.set_faults(
        api_key=key.api_key,
        streams=[noop] * 5 + [{"action": "stall", "after_events": 2, "seconds": 30}],
    )
    with dg.DagsterInstance.from_config(str(home)) as instance:
        scenario = make_scenario(
            tmp_path,
            instance,
            api_backbone(emulator_url, api_key=key.api_key),
            simple_listings(2, 2),
            media=None,
        )
        scenario.catalogue()
        assert scenario.slugs == ["f1", "f2"]

        worker = subprocess.Popen(
            [sys.executable, str(WORKER), "f1", "f2"],
            cwd=tmp_path,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its step processes die with it
        )
        try:
            _wait_for(
                lambda: (
                    materializations(instance, "brochures", "f1")
                    and emulator_admin.renders(key.org) >= renders_needed([2]) + 1
                ),
                "f1 done and f2 rendering",
                worker,
            )
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.communicate(timeout=30)
        assert worker.returncode == -signal.SIGKILL

        [killed] = instance.get_runs(dg.RunsFilter(job_name="listing_media_job"))
        assert killed.status == dg.DagsterRunStatus.STARTED  # nobody told the instance
        assert set(materialized_assets(instance, "f1").values()) == {1}
        assert materialized_assets(instance, "f2")["staged_renders"] == 0
        # what Dagster's run monitoring does when it finds the worker gone
        instance.report_run_failed(killed)

        rerun = reexecute_from_failure(instance, killed.run_id, job=worker_job())
        assert rerun.success
        assert rerun.dagster_run.parent_run_id == killed.run_id
        assert_listings_accounted_for(instance, [rerun], scenario.slugs)
        # f1 was finished by the killed run and is not redone; f2 is made once
        assert [r.run_id for r in materializations(instance, "brochures", "f1")] == [killed.run_id]
        assert [r.run_id for r in materializations(instance, "brochures", "f2")] == [rerun.run_id]
        assert_store_consistent(scenario.store(), local_root=media_root)
        # the render the killed worker was streaming went on in the emulator; the
        # re-execution sent the same idempotency key and was given that run back
        assert emulator_admin.renders(key.org) == renders_needed([2, 2])


def test_renders_a_blocking_check_rejected_are_made_anew_by_the_reexecution(
    tmp_path: Path,
    instance: dg.DagsterInstance,
    emulator_url: str,
    emulator_admin,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = emulator_admin.new_key()
    media_root = tmp_path / "media"
    monkeypatch.setenv("BKBN_BASE_URL", emulator_url)
    monkeypatch.setenv("BKBN_API_KEY", key.api_key)
    monkeypatch.setenv("BKBN_STORAGE_ROOT", str(media_root))
    scenario = make_scenario(
        tmp_path, instance, api_backbone(emulator_url, api_key=key.api_key), simple_listings(1, 2)
    )
    scenario.catalogue()
    # The emulator caps its images at 256 px: staged renders come back under the
    # requested 1k, the blocking render_resolution check fails, no brochure is made.
    emulator_admin.set_faults(api_key=key.api_key, latency={"max_side": 256})
    first = scenario.run()
    assert not first.success
    failure = failed_listings(first)["f1"]
    assert failure["asset"] == "staged_renders" and "check failed" in failure["error"]
    assert materialized_assets(instance, "f1")["brochures"] == 0
    [evaluation] = [
        e.asset_check_evaluation_data
        for e in first.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.check_name == "render_resolution"
    ]
    assert not evaluation.passed and evaluation.partition == "f1"
    renders_before = emulator_admin.renders(key.org)
    assert renders_before == renders_needed([2]) - 1  # no brochure rendered

    emulator_admin.set_faults(api_key=key.api_key)  # the API is right again
    rerun = reexecute_from_failure(instance, first.run_id, job=worker_job())
    assert rerun.success, failed_listings(rerun)
    assert_listings_accounted_for(instance, [rerun], ["f1"])
    assert_store_consistent(scenario.store(), local_root=media_root)
    # the relights were materialised by the first run and not redone; the two rejected
    # stagings were rendered again (not replayed), then the brochure
    assert [r.run_id for r in materializations(instance, "enhanced_photos", "f1")] == [first.run_id]
    assert emulator_admin.renders(key.org) == renders_before + 2 + 1
