"""The whole listing job against the emulator's faults, one fresh API key per test.

Every test runs the real ``nightly_catalogue_job`` and then ``listing_media_job`` over
all listings in one run (a backfill), through the ``api`` backend over loopback HTTP
against the session's emulator (latency renderer).  Each then checks the promises of
docs/reliability.md: every listing materialised once or failed with its cause in the
event log; the media store clean (no temporary file, no orphan, no duplicate manifest
row); and the emulator's render count for the test's organization.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import dagster as dg
from fault_support import (
    ASSETS,
    api_backbone,
    assert_listings_accounted_for,
    assert_store_consistent,
    events_of,
    make_scenario,
    materialized_assets,
    renders_needed,
    simple_listings,
)
from listing_support import failed_listings

from bkbn_pipelines.emulator.testing import EmulatorAdmin

TWO_BY_TWO = [2, 2]  # two listings of two photos


def _scenario(tmp_path: Path, instance: dg.DagsterInstance, url: str, **backbone):
    scenario = make_scenario(
        tmp_path, instance, api_backbone(url, **backbone), simple_listings(2, 2)
    )
    scenario.catalogue()
    return scenario


def _check_clean_run(scenario, result, admin: EmulatorAdmin, org: str, extra: int = 0) -> None:
    assert result.success, failed_listings(result)
    assert_listings_accounted_for(scenario.instance, [result], scenario.slugs)
    assert_store_consistent(scenario.store(), local_root=Path(scenario.media_root))
    assert admin.renders(org) == renders_needed(TWO_BY_TWO) + extra


def test_429_burst_with_retry_after_is_absorbed_by_the_client(
    tmp_path: Path, instance: dg.DagsterInstance, emulator_url: str, emulator_admin
) -> None:
    key = emulator_admin.new_key()
    scenario = _scenario(tmp_path, instance, emulator_url, api_key=key.api_key)
    emulator_admin.set_faults(api_key=key.api_key, rate_limit_burst={"count": 2, "retry_after": 1})
    started = time.monotonic()
    result = scenario.run()
    waited = time.monotonic() - started
    _check_clean_run(scenario, result, emulator_admin, key.org)
    assert events_of(result, "STEP_UP_FOR_RETRY") == []  # two retries fit in the client
    assert emulator_admin.stats(key.org)["requests"] > 0
    assert waited >= 1.0  # retry-after was honoured (a lower bound, not a speed check)


def test_429_burst_without_retry_after_past_the_client_retries_retries_the_step(
    tmp_path: Path, instance: dg.DagsterInstance, emulator_url: str, emulator_admin
) -> None:
    # Six 429s: both listings' first relight calls spend their three attempts each, so
    # both listings fail with RateLimitError and Dagster retries the step once.
    key = emulator_admin.new_key()
    scenario = _scenario(tmp_path, instance, emulator_url, api_key=key.api_key)
    emulator_admin.set_faults(
        api_key=key.api_key, rate_limit_burst={"count": 6, "retry_after": None}
    )
    result = scenario.run()
    _check_clean_run(scenario, result, emulator_admin, key.org)
    [retry] = events_of(result, "STEP_UP_FOR_RETRY")
    warnings = [
        r.user_message
        for r in scenario.instance.all_logs(result.run_id)
        if r.level == 30 and "retryable error" in (r.user_message or "")
    ]
    assert warnings, "the step retry is explained in the event log"
    assert retry.step_key == "listing_media"


def test_500_and_529_are_retried_without_a_second_render(
    tmp_path: Path, instance: dg.DagsterInstance, emulator_url: str, emulator_admin
) -> None:
    key = emulator_admin.new_key()
    scenario = _scenario(tmp_path, instance, emulator_url, api_key=key.api_key)
    emulator_admin.set_faults(
        api_key=key.api_key,
        fail=[
            {"nth": 3, "status": 500},
            {"nth": 7, "status": 529},
            {"nth": 8, "status": 529},
            {"nth": 12, "status": 503},
        ],
    )
    result = scenario.run()
    _check_clean_run(scenario, result, emulator_admin, key.org)


def test_a_validation_error_fails_its_listing_alone_and_leaves_no_orphan(
    tmp_path: Path, instance: dg.DagsterInstance, emulator_url: str, emulator_admin
) -> None:
    # One listing at a time: the third request is the second photo's relight POST of
    # the first listing (POST, download, POST...).  Its first enhanced photo is stored
    # already; the failed listing must not leave it behind without a manifest row.
    key = emulator_admin.new_key()
    scenario = _scenario(tmp_path, instance, emulator_url, api_key=key.api_key)
    emulator_admin.set_faults(api_key=key.api_key, fail=[{"nth": 3, "status": 400}])
    result = scenario.run(max_workers=1)
    assert not result.success
    assert events_of(result, "STEP_UP_FOR_RETRY") == []  # a 400 is never retried
    [first, second] = scenario.slugs
    assert_listings_accounted_for(
        scenario.instance, [result], scenario.slugs, expect_failed={first: "status 400"}
    )
    assert materialized_assets(scenario.instance, first)["raw_listing_photos"] == 1
    assert materialized_assets(scenario.instance, second) == {a: 1 for a in ASSETS}
    assert_store_consistent(scenario.store(), local_root=Path(scenario.media_root))
    # first listing: one relight rendered before the 400; second listing: all of it
    assert emulator_admin.renders(key.org) == 1 + renders_needed([2])


def test_streams_dropped_mid_render_resume_without_a_second_render(
    tmp_path: Path, instance: dg.DagsterInstance, emulator_url: str, emulator_admin
) -> None:
    key = emulator_admin.new_key()
    scenario = _scenario(tmp_path, instance, emulator_url, api_key=key.api_key)
    emulator_admin.set_faults(
        api_key=key.api_key,
        streams=[
            {"action": "drop_mid_event", "after_events": 3},
            {"action": "drop", "after_events": 5},
            {"action": "drop", "after_events": 1},
            {"action": "drop_mid_event", "after_events": 6},
        ],
    )
    result = scenario.run()
    _check_clean_run(scenario, result, emulator_admin, key.org)
    assert events_of(result, "STEP_UP_FOR_RETRY") == []


def test_stalled_streams_resume_after_the_read_timeout(
    tmp_path: Path, instance: dg.DagsterInstance, emulator_url: str, emulator_admin
) -> None:
    # The stream goes silent (no heartbeat) for 2 s; the client's read timeout (0.7 s)
    # ends the wait and it resumes the same run from its last event id.
    key = emulator_admin.new_key()
    scenario = _scenario(tmp_path, instance, emulator_url, api_key=key.api_key, read_timeout_s=0.7)
    emulator_admin.set_faults(
        api_key=key.api_key,
        streams=[
            {"action": "stall", "after_events": 3, "seconds": 2},
            {"action": "stall", "after_events": 6, "seconds": 2},
        ],
    )
    result = scenario.run()
    _check_clean_run(scenario, result, emulator_admin, key.org)
    assert events_of(result, "STEP_UP_FOR_RETRY") == []


def test_a_malformed_event_retries_the_step_without_a_second_render(
    tmp_path: Path, instance: dg.DagsterInstance, emulator_url: str, emulator_admin
) -> None:
    # The first stream (a listing's first relight) gets an event whose data is not
    # JSON: the client raises APIStreamError, that listing fails its attempt and the
    # step is retried.  The retry sends the same idempotency key (one per Dagster run
    # and call), so the emulator replays the run it already made: no second render.
    key = emulator_admin.new_key()
    scenario = _scenario(tmp_path, instance, emulator_url, api_key=key.api_key)
    emulator_admin.set_faults(
        api_key=key.api_key, streams=[{"action": "malformed", "after_events": 3}]
    )
    result = scenario.run()
    _check_clean_run(scenario, result, emulator_admin, key.org)
    [retry] = events_of(result, "STEP_UP_FOR_RETRY")
    assert retry.step_key == "listing_media"
    logged = [
        r.user_message
        for r in scenario.instance.all_logs(result.run_id)
        if r.level >= 40 and "not JSON" in (r.user_message or "")
    ]
    assert logged, "the malformed event is named in the event log"


def test_tokens_expiring_mid_run_are_refreshed_once(
    tmp_path: Path, instance: dg.DagsterInstance, emulator_url: str, emulator_admin
) -> None:
    # OAuth client credentials; grants are single-use (a grant while the client holds a
    # live token is refused), and every token is revoked once renders are under way.
    # The listings run in parallel and share one client: one initial grant, one refresh.
    key = emulator_admin.new_key(oauth_client=True)
    scenario = _scenario(
        tmp_path,
        instance,
        emulator_url,
        client_id=key.client_id,
        client_secret=key.client_secret,
    )
    emulator_admin.set_faults(client_id=key.client_id, single_use_grants=True)
    expired: list[int] = []

    def expire_mid_run() -> None:
        deadline = time.monotonic() + 30
        while emulator_admin.renders(key.org) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        expired.append(emulator_admin.expire_tokens(client_id=key.client_id))

    thread = threading.Thread(target=expire_mid_run, daemon=True)
    thread.start()
    result = scenario.run()
    thread.join(timeout=35)
    assert expired and expired[0] >= 1, "the tokens were revoked while the run went on"
    _check_clean_run(scenario, result, emulator_admin, key.org)
    assert emulator_admin.grants(key.client_id) == {"accepted": 2, "refused": 0}
