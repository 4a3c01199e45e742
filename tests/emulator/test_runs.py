"""Run logs and the run store stay bounded."""

from __future__ import annotations

import asyncio

from bkbn_pipelines.emulator._runs import FileStore, RunStore


def test_event_log_keeps_the_final_event_past_its_bound(tmp_path):
    async def scenario() -> list[str]:
        store = RunStore(FileStore(tmp_path), max_runs=10, max_events=10)
        run = store.new_run("o", "key:x", "relight-v1.2", None)
        for step in range(50):
            run.append("render.progress", {"step": step, "total": 50})
        run.append("result", {"url": "u"})
        run.append("render.progress", {"step": 99, "total": 99})  # after the end: ignored
        assert [e.seq for e in run.events] == list(range(1, 12))
        assert run.status == "succeeded"
        return [e.type for e in run.events]

    kinds = asyncio.run(scenario())
    assert kinds[-1] == "result" and len(kinds) == 11


def test_oldest_finished_runs_and_their_files_are_evicted(tmp_path):
    async def scenario() -> None:
        files = FileStore(tmp_path)
        store = RunStore(files, max_runs=3, max_events=100)
        first = store.new_run("o", "key:x", "relight-v1.2", None)
        first.file_ids.append(files.put("o", b"png", "image/png"))
        store.bind_key("o", "idem", first)
        first.append("result", {"url": "u"})
        running = store.new_run("o", "key:x", "relight-v1.2", None)
        for _ in range(3):
            store.new_run("o", "key:x", "relight-v1.2", None)
        assert store.get(first.id, "o") is None
        assert store.by_key("o", "idem") is None
        assert files.get(first.file_ids[0], "o") is None
        assert not (tmp_path / first.file_ids[0]).exists()
        assert store.get(running.id, "o") is running  # unfinished runs stay

    asyncio.run(scenario())


def test_files_belong_to_one_organization(tmp_path):
    files = FileStore(tmp_path)
    file_id = files.put("org_a", b"data", "application/json")
    assert files.get(file_id, "org_a") == (tmp_path / file_id, "application/json")
    assert files.get(file_id, "org_b") is None
