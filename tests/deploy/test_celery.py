"""The Celery deployment for real: Redis broker, PostgreSQL instance, worker subprocesses.

Three workers are started with ``dagster-celery worker start`` and the project's
``deploy/celery.yaml``: ``w1`` and ``w2`` on the default queue, ``g1`` on the ``gpu``
queue. Runs are launched with ``execute_job`` on the production ``deploy/dagster.yaml``
instance (a fresh PostgreSQL database); the steps run in the workers, which load the job
by file path and write their events to the same database.

Only two settings differ from production, to keep the test short: Redis hands an
unacknowledged step to another worker after 12 s instead of 2 h, and idle workers look
for such steps every second. Every Redis key of the test carries its own prefix.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import yaml
from dagster import AssetKey, AssetRecordsFilter, DagsterEventType, DagsterInstance, execute_job
from dagster._core.definitions.reconstruct import ReconstructableJob
from deploy_support import (
    DEPLOY,
    PgServer,
    create_database,
    drop_database,
    make_dagster_home,
    write_catalogue,
)

from bkbn_pipelines.definitions import build_definitions
from bkbn_pipelines.emulator._config import LatencyConfig, load_config
from bkbn_pipelines.emulator.testing import EmulatorAdmin, serve_in_thread

PIPELINE = Path(__file__).with_name("deploy_pipeline.py")
RUN_JOB = Path(__file__).with_name("run_job.py")
EMULATOR_CONFIG = Path(__file__).parents[1] / "emulator_test_config.yaml"
# Longer than any step of these tests (the project's listing step, first in its worker,
# imports the whole package), shorter than a test should wait for a lost step.
VISIBILITY_TIMEOUT = 12


@dataclass
class Cluster:
    home: Path
    scratch: Path
    run_config: dict
    env: dict[str, str]
    org: str = ""
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def start_worker(self, name: str, queue: str) -> None:
        log = self.home / f"worker-{name}.log"
        env = {**self.env, "BKBN_WORKER_NAME": name}
        cmd = [
            sys.executable, "-m", "dagster_celery.cli", "worker", "start",
            "-A", "dagster_celery.app",
            "-y", str(self.home / "celery.yaml"),
            "-q", queue,
            "-n", name,
            "--loglevel", "INFO",
            "--",
            "--pool=solo", "--without-mingle", "--without-gossip",
        ]  # fmt: skip
        with log.open("wb") as out:
            # A session of its own: killing the group kills the wrapper and the worker.
            self.workers[name] = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.logs[name] = log

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        pending = set(self.workers)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                if self.workers[name].poll() is not None:
                    raise RuntimeError(f"worker {name} exited:\n{self.logs[name].read_text()}")
                if " ready." in self.logs[name].read_text(errors="replace"):
                    pending.discard(name)
            time.sleep(0.2)
        if pending:
            raise RuntimeError(f"workers not ready after {timeout}s: {sorted(pending)}")

    def kill(self, name: str) -> None:
        os.killpg(self.workers[name].pid, signal.SIGKILL)
        self.workers[name].wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.workers.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.workers.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def records(self, listing: str, step: str | None = None) -> list[dict]:
        rows = [json.loads(p.read_text()) for p in (self.scratch / "records").glob("*.json")]
        return [r for r in rows if r["listing"] == listing and (step is None or r["step"] == step)]


def _celery_config(broker: str, prefix: str) -> dict:
    """deploy/celery.yaml with the test's Redis database, key prefix and short timeouts."""
    config = yaml.safe_load((DEPLOY / "celery.yaml").read_text())
    execution = config["execution"]["config"]
    source = execution["config_source"]
    source["broker_transport_options"].update(
        visibility_timeout=VISIBILITY_TIMEOUT,
        unacked_restore_interval=1,
        global_keyprefix=prefix,
    )
    source["result_backend_transport_options"] = {"global_keyprefix": prefix}
    return config


@pytest.fixture(scope="module")
def emulator() -> Iterator[tuple[str, EmulatorAdmin]]:
    """An emulator whose renders take 0.5 s, so two listings' steps overlap in time."""
    config = load_config(EMULATOR_CONFIG).model_copy(
        update={"latency": LatencyConfig(delay_ms=500, steps=2, step_ms=10)}
    )
    with serve_in_thread(config, test_mode=True) as url, EmulatorAdmin(url) as admin:
        yield url, admin


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    pg_server: PgServer,
    redis_url: str,
    emulator: tuple[str, EmulatorAdmin],
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("celery")
    emulator_url, admin = emulator
    key = admin.new_key()
    database = create_database(pg_server)
    prefix = f"bkbn-test-{secrets.token_hex(4)}:"
    home = make_dagster_home(root)
    config = _celery_config(redis_url, prefix)
    (home / "celery.yaml").write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        **pg_server.env(database),
        "DAGSTER_HOME": str(home),
        "BKBN_CELERY_BROKER": redis_url,
        "BKBN_CELERY_BACKEND": redis_url,
        # the project's own definitions read these (api backend against the emulator)
        "BKBN_BACKEND": "api",
        "BKBN_BASE_URL": emulator_url,
        "BKBN_API_KEY": key.api_key,
        "BKBN_STORAGE_ROOT": str(root / "media"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    scratch = root / "scratch"
    run_config = {
        "execution": config["execution"],
        "resources": {
            "scratch": {
                "config": {
                    "root": str(scratch),
                    "flaky_listing": "lst-flaky",
                    "slow_listing": "lst-slow",
                    "slow_seconds": 4.0,
                }
            }
        },
    }
    c = Cluster(home=home, scratch=scratch, run_config=run_config, env=env, org=key.org)
    saved = dict(os.environ)
    os.environ.update(env)  # the orchestrator (this process) reads the same instance
    try:
        # Create the instance's tables here, once: workers that start together on an
        # empty database would race to create them (DuplicateTable) and one would exit.
        with DagsterInstance.get() as instance:
            instance.get_runs(limit=1)  # run storage
            instance.all_instigator_state()  # schedule storage
            instance.get_asset_keys()  # event log storage
        c.start_worker("w1", "dagster")
        c.start_worker("w2", "dagster")
        c.start_worker("g1", "gpu")
        c.wait_ready()
        yield c
    finally:
        c.stop_all()
        os.environ.clear()
        os.environ.update(saved)
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
        drop_database(pg_server, database)


def _run(cluster: Cluster, instance: DagsterInstance, listing: str):
    return execute_job(
        ReconstructableJob.for_file(str(PIPELINE), "celery_job"),
        instance=instance,
        run_config=cluster.run_config,
        tags={"dagster/partition": listing},
    )


def _step_events(instance: DagsterInstance, run_id: str, step: str, kind: DagsterEventType):
    return [
        e
        for e in instance.all_logs(run_id, of_type=kind)
        if e.dagster_event and e.dagster_event.step_key == step
    ]


def test_steps_spread_over_workers_retry_and_gpu_queue(cluster: Cluster) -> None:
    # One run: its two middle steps are submitted together, so each idle CPU worker takes
    # one (a worker holds one unacknowledged step at a time). Several listings at once
    # are the next test's business.
    listings = ["lst-flaky"]
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("listings", listings)
        results = {key: _run(cluster, instance, key) for key in listings}
        assert all(r.success for r in results.values()), {k: r.success for k, r in results.items()}

        # Steps ran in the workers, default-queue steps on both w1 and w2 ...
        default_steps = {"raw_listing_photos", "enhanced_photos", "photo_index", "brochures"}
        workers_by_step: dict[str, set[str]] = {}
        for key in listings:
            for row in cluster.records(key):
                workers_by_step.setdefault(row["step"], set()).add(row["worker"])
        default_workers = set().union(*(workers_by_step[s] for s in default_steps))
        assert default_workers == {"w1", "w2"}
        # ... and the GPU step only on the GPU queue's worker.
        assert workers_by_step["staged_renders"] == {"g1"}

        # The Celery task itself reports its worker in the event log.
        hostnames = set()
        for result in results.values():
            for event in instance.all_logs(result.run_id, of_type=DagsterEventType.ENGINE_EVENT):
                if event.dagster_event and "in celery worker" in (event.message or ""):
                    meta = event.dagster_event.engine_event_data.metadata
                    hostnames.add(meta["Celery worker"].value.split("@")[0])
        assert hostnames == {"w1", "w2", "g1"}

        # Retry policy: the flaky listing failed once, was retried, materialised once.
        run_id = results["lst-flaky"].run_id
        assert (
            len(
                _step_events(
                    instance, run_id, "enhanced_photos", DagsterEventType.STEP_UP_FOR_RETRY
                )
            )
            == 1
        )
        assert (
            len(_step_events(instance, run_id, "enhanced_photos", DagsterEventType.STEP_SUCCESS))
            == 1
        )
        attempts = sorted(
            (r["attempt"], r["phase"]) for r in cluster.records("lst-flaky", "enhanced_photos")
        )
        assert attempts == [(0, "start"), (1, "done"), (1, "start")]
        flaky = instance.fetch_materializations(
            records_filter=AssetRecordsFilter(
                asset_key=AssetKey("enhanced_photos"),
                asset_partitions=["lst-flaky"],
            ),
            limit=10,
        ).records
        assert len(flaky) == 1

        # Every listing has its contact sheet.
        for key in listings:
            assert (cluster.scratch / "media" / key / "sheet.png").stat().st_size > 0


def _assert_materialised_once(instance: DagsterInstance, slug: str) -> None:
    for asset in ("raw_listing_photos", "enhanced_photos", "staged_renders", "brochures"):
        records = instance.fetch_materializations(
            records_filter=AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[slug]),
            limit=5,
        ).records
        assert len(records) == 1, (asset, slug)


def _hostnames(instance: DagsterInstance, run_id: str) -> set[str]:
    names = set()
    for event in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        if event.dagster_event and "in celery worker" in (event.message or ""):
            meta = event.dagster_event.engine_event_data.metadata
            names.add(meta["Celery worker"].value.split("@")[0])
    return names


def test_project_listing_job_on_two_workers(
    cluster: Cluster, emulator: tuple[str, EmulatorAdmin], tmp_path: Path
) -> None:
    """The project's own listing_media_job, one run per listing as the sensor asks for
    them, two run workers at once: each listing's step runs on its own Celery worker."""
    _, admin = emulator
    source = write_catalogue(tmp_path / "export", ["NY/0042", "unit-4.1"])
    with DagsterInstance.get() as instance:
        before = set(instance.get_dynamic_partitions("listings"))
        catalogue = build_definitions().resolve_job_def("nightly_catalogue_job")
        result = catalogue.execute_in_process(
            instance=instance,
            run_config={"ops": {"listing_catalogue": {"config": {"source": str(source)}}}},
        )
        assert result.success
        slugs = sorted(set(instance.get_dynamic_partitions("listings")) - before)
        assert len(slugs) == 2, slugs

        execution = json.dumps({"execution": cluster.run_config["execution"]})
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(RUN_JOB),
                    str(PIPELINE),
                    "real_listing_celery_job",
                    s,
                    execution,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for s in slugs
        ]
        runs = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-3000:]
            runs.append(json.loads(out.strip().splitlines()[-1]))
        assert all(r["success"] for r in runs), runs

        workers = [_hostnames(instance, r["run_id"]) for r in runs]
        assert sorted(len(w) for w in workers) == [1, 1]  # one step per run
        assert set().union(*workers) == {"w1", "w2"}  # ... on two different workers

        for slug in slugs:
            _assert_materialised_once(instance, slug)
    # relight, staging and brochure per listing, each rendered once
    assert admin.renders(cluster.org) == 3 * len(slugs)


def test_run_finishes_when_a_worker_is_killed_mid_step(cluster: Cluster) -> None:
    started = cluster.scratch / "slow-step-started.json"
    killed: list[str] = []

    def kill_the_worker_of_the_slow_step() -> None:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if started.exists():
            name = json.loads(started.read_text())["worker"]
            cluster.kill(name)
            killed.append(name)

    killer = threading.Thread(target=kill_the_worker_of_the_slow_step, daemon=True)
    killer.start()
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("listings", ["lst-slow"])
        result = _run(cluster, instance, "lst-slow")
        killer.join(timeout=5)
        assert killed, "the slow step never started"
        assert result.success
        (victim,) = killed
        assert cluster.workers[victim].poll() is not None
        survivor = ({"w1", "w2"} - {victim}).pop()

        rows = cluster.records("lst-slow", "enhanced_photos")
        assert sorted((r["worker"], r["phase"]) for r in rows) == sorted(
            [(victim, "start"), (survivor, "start"), (survivor, "done")]
        )
        # The step started twice (the killed attempt left its start in the event log)
        # and succeeded once; the asset was materialised once.
        run_id = result.run_id
        assert (
            len(_step_events(instance, run_id, "enhanced_photos", DagsterEventType.STEP_START)) == 2
        )
        assert (
            len(_step_events(instance, run_id, "enhanced_photos", DagsterEventType.STEP_SUCCESS))
            == 1
        )
        assert (cluster.scratch / "media" / "lst-slow" / "sheet.png").stat().st_size > 0


def _running_run_id(instance: DagsterInstance, job: str, slug: str, timeout: float) -> str | None:
    from dagster import DagsterRunStatus, RunsFilter

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = instance.get_runs(
            filters=RunsFilter(
                job_name=job,
                tags={"dagster/partition": slug},
                statuses=[DagsterRunStatus.STARTED],
            )
        )
        if runs:
            return runs[0].run_id
        time.sleep(0.1)
    return None


def _worker_of_step(instance: DagsterInstance, run_id: str, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = _hostnames(instance, run_id)
        if names:
            return names.pop()
        time.sleep(0.1)
    return None


def test_project_job_finishes_and_renders_once_when_its_worker_is_killed_mid_step(
    cluster: Cluster, emulator: tuple[str, EmulatorAdmin], tmp_path: Path
) -> None:
    """The project's listing step, its worker killed while the API renders: Redis hands
    the step to the other worker, which re-runs it with the same idempotency keys, so
    the run succeeds, each asset is materialised once and nothing is rendered twice."""
    _, admin = emulator
    for name in ("w1", "w2"):  # an earlier test may have killed one
        if cluster.workers[name].poll() is not None:
            cluster.start_worker(name, "dagster")
    cluster.wait_ready()
    api_key = cluster.env["BKBN_API_KEY"]
    source = write_catalogue(tmp_path / "export", ["KILL/1"])
    job = "listing_media_job"
    with DagsterInstance.get() as instance:
        before = set(instance.get_dynamic_partitions("listings"))
        catalogue = build_definitions().resolve_job_def("nightly_catalogue_job")
        assert catalogue.execute_in_process(
            instance=instance,
            run_config={"ops": {"listing_catalogue": {"config": {"source": str(source)}}}},
        ).success
        [slug] = sorted(set(instance.get_dynamic_partitions("listings")) - before)
        renders_before = admin.renders(cluster.org)
        admin.set_faults(api_key=api_key, latency={"delay_ms": 2500})  # slow renders
        try:
            execution = json.dumps({"execution": cluster.run_config["execution"]})
            proc = subprocess.Popen(
                [sys.executable, str(RUN_JOB), str(PIPELINE), "real_listing_celery_job", slug,
                 execution],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            run_id = _running_run_id(instance, job, slug, timeout=60)
            assert run_id, "the run never started"
            victim = _worker_of_step(instance, run_id, timeout=60)
            assert victim in {"w1", "w2"}, victim
            time.sleep(1.0)  # inside the step: the first render is under way
            cluster.kill(victim)
            out, err = proc.communicate(timeout=180)
        finally:
            admin.set_faults(api_key=api_key)
        assert proc.returncode == 0, err[-3000:]
        assert json.loads(out.strip().splitlines()[-1])["success"]
        assert _hostnames(instance, run_id) == {"w1", "w2"}  # started on both, in turn
        _assert_materialised_once(instance, slug)
    # relight, staging and brochure, each rendered once despite the second attempt
    assert admin.renders(cluster.org) - renders_before == 3
