"""Client-side pacing from the ``bkbn-ratelimit-*`` headers."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import httpx
import pytest

from bkbn_pipelines.client import BackboneClient, Pacer


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def headers(limit: int, remaining: int, reset: float) -> dict[str, str]:
    return {
        "bkbn-ratelimit-requests-limit": str(limit),
        "bkbn-ratelimit-requests-remaining": str(remaining),
        "bkbn-ratelimit-requests-reset": rfc3339(reset),
    }


def test_plenty_left_means_no_wait():
    now = [1000.0]
    pacer = Pacer("p", clock=lambda: now[0])
    assert pacer.reserve() == 0  # nothing known yet
    pacer.update(headers(100, 80, now[0] + 30))
    assert all(pacer.reserve() == 0 for _ in range(5))
    assert pacer.state().requests_remaining == 75  # counted locally


def test_low_remaining_spreads_the_rest_of_the_window():
    now = [1000.0]
    pacer = Pacer("p", clock=lambda: now[0])
    pacer.update(headers(100, 4, now[0] + 8))
    waits = [pacer.reserve() for _ in range(4)]
    assert waits == [0.0, 2.0, 4.0, 6.0]
    # Nothing left: wait for the reset.
    assert pacer.reserve() == pytest.approx(8.05)
    # After the reset the full limit is back.
    now[0] += 9
    assert pacer.reserve() == 0


def test_a_later_answer_does_not_raise_the_local_count_in_the_same_window():
    now = [1000.0]
    pacer = Pacer("p", clock=lambda: now[0])
    pacer.update(headers(100, 50, now[0] + 30))
    for _ in range(10):
        pacer.reserve()
    pacer.update(headers(100, 49, now[0] + 30))  # the server has seen only one so far
    assert pacer.state().requests_remaining == 40


def test_block_after_429_holds_every_caller_but_not_the_one_that_waited():
    now = [1000.0]
    pacer = Pacer("p", clock=lambda: now[0])
    until = pacer.block(3.0)
    assert pacer.reserve() == 3.0
    assert pacer.reserve(waited_until=until) == 0


def test_tokens_exhausted_waits_for_token_reset():
    now = [1000.0]
    pacer = Pacer("p", clock=lambda: now[0])
    pacer.update(
        {"bkbn-ratelimit-tokens-remaining": "0", "bkbn-ratelimit-tokens-reset": rfc3339(now[0] + 5)}
    )
    assert pacer.reserve() == 5.0


def test_clients_with_the_same_key_share_one_pacer():
    a = BackboneClient(api_key="bkbn_sk_same", base_url="http://api.test")
    b = BackboneClient(api_key="bkbn_sk_same", base_url="http://api.test")
    c = BackboneClient(api_key="bkbn_sk_other", base_url="http://api.test")
    assert a.pacer is b.pacer
    assert a.pacer is not c.pacer
    assert "bkbn_sk_same" not in a.pacer.key


def test_threads_reserving_at_once_get_distinct_slots():
    now = 1000.0
    pacer = Pacer("p", clock=lambda: now)
    pacer.update(headers(100, 10, now + 10))
    waits: list[float] = []
    lock = threading.Lock()

    def take():
        w = pacer.reserve()
        with lock:
            waits.append(w)

    threads = [threading.Thread(target=take) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(waits) == [float(i) for i in range(10)]


class WindowServer:
    """A server with a fixed window of ``limit`` requests per ``window`` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.lock = threading.Lock()
        self.start = time.time()
        self.count = 0
        self.statuses: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            now = time.time()
            while now >= self.start + self.window:
                self.start += self.window
                self.count = 0
            reset = self.start + self.window
            self.count += 1
            remaining = self.limit - self.count
            status = 429 if remaining < 0 else 200
            self.statuses.append(status)
        h = headers(self.limit, max(remaining, 0), reset)
        if status == 429:
            h["retry-after"] = str(max(0.0, reset - now))
            return httpx.Response(
                429,
                headers=h,
                json={
                    "type": "error",
                    "error": {"type": "rate_limit_error", "message": "slow down"},
                },
            )
        return httpx.Response(200, headers=h, json={"url": "u"})


def test_concurrent_callers_stay_under_the_limit():
    server = WindowServer(limit=8, window=1.0)
    client = BackboneClient(
        api_key="bkbn_sk_pacing",
        base_url="http://api.test",
        transport=httpx.MockTransport(server),
        pacer=Pacer("window"),
        max_retries=0,
    )
    # Learn the window first, as any client does from its first answer.
    client.workflows.run("staging", input="data:,x")
    errors = []

    def work():
        for _ in range(3):
            try:
                client.workflows.run("staging", input="data:,x")
            except Exception as exc:  # collected for the assertion below
                errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    assert errors == []
    assert server.statuses.count(429) == 0 and len(server.statuses) == 16


def test_concurrent_tasks_stay_under_the_limit():
    import asyncio

    from bkbn_pipelines.client import AsyncBackboneClient

    server = WindowServer(limit=6, window=1.0)

    async def main():
        async with AsyncBackboneClient(
            api_key="bkbn_sk_pacing_async",
            base_url="http://api.test",
            transport=httpx.MockTransport(server),
            pacer=Pacer("window-async"),
            max_retries=0,
        ) as client:
            await client.workflows.run("staging", input="data:,x")
            await asyncio.gather(
                *[client.workflows.run("staging", input="data:,x") for _ in range(10)]
            )

    asyncio.run(main())
    assert server.statuses.count(429) == 0 and len(server.statuses) == 11


def test_pacer_learns_the_emulator_headers(emulator_url, emulator_admin):
    key = emulator_admin.new_key(requests_per_minute=50)
    pacer = Pacer("emulator-headers")
    with BackboneClient(api_key=key.api_key, base_url=emulator_url, pacer=pacer) as client:
        client.runs.retrieve  # noqa: B018 (attribute exists)
        with pytest.raises(Exception):  # noqa: B017 (any status; only the headers matter)
            client.runs.retrieve("run_unknown")
    state = pacer.state()
    assert state.requests_limit == 50
    assert state.requests_remaining is not None and state.requests_remaining < 50
    assert state.requests_reset is not None and state.requests_reset > time.time()
