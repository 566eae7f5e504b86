"""asyncio cancellation of app calls and client operations: a cancelled call ends at once -- its recorded
operation ``info`` (it may have taken effect), the app core's state released -- and the client stays usable.
On the simulator (deterministic); tests/apps/test_apps_faults_real.py does the same on real processes."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.apps.helpers import operations
from tests.refinement.independent_wor import processes_are_threads
from wormspace import Cluster
from wormspace.apps import WormKV, WormLog, WormPaxos
from wormspace.apps.history import AppHistory
from wormspace.apps.log import pause
from wormspace.layers.wormspace import Sleep


@pytest.fixture
def no_collector() -> Iterator[None]:
    """The fix must not depend on the cyclic collector happening to close a generator."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def wor_events(cluster: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in cluster.history().to_jsonl().splitlines() if line.strip()]


def test_cancelled_appends_end_info_at_once_and_release_the_log(no_collector: None) -> None:
    c = Cluster.simulated(acceptors=3, seed=3, wos_size=8)
    hist = AppHistory.of(c)
    log = WormLog(c.client(), name=b"cancel", history=hist)

    async def go() -> None:
        alog = log.aio
        tasks = [asyncio.create_task(alog.append(b"%d" % i)) for i in range(6)]
        await asyncio.sleep(0)  # every task has started its append: the first is claiming a segment
        for t in tasks:
            t.cancel()
        await asyncio.wait(tasks)
        # the tasks are still referenced: each keeps its CancelledError, whose traceback keeps the call's frame
        # (and the app core's generator) alive -- the generator must have been ended all the same
        assert all(t.cancelled() for t in tasks)
        assert not log.core.claiming and not log.core.pending
        done = operations(hist.events)
        assert len(done) == 6 and all(end is not None and end["type"] == "info" for _, end in done)
        assert await asyncio.wait_for(alog.append(b"after"), 10) >= 0  # else it polls for the cancelled claim

    asyncio.run(go())
    processes_are_threads(wor_events(c))
    processes_are_threads(hist.events)
    assert log.append(b"after2") >= 0


def test_cancelled_kv_calls_are_info_and_the_client_goes_on(no_collector: None) -> None:
    c = Cluster.simulated(acceptors=3, seed=4, wos_size=8)
    hist = AppHistory.of(c)
    kv = WormKV(c.client(), name=b"kv", history=hist)
    kv.put(b"k", b"v0")

    async def go() -> None:
        akv = kv.aio
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(akv.put(b"k", b"v%d" % i)) for i in range(1, 4)]
        tasks.append(asyncio.create_task(akv.get(b"k")))
        await asyncio.sleep(0)
        for t in tasks:
            t.cancel()
        await asyncio.wait(tasks)
        ends = [end for _, end in operations(hist.events)]
        assert len(ends) == 5 and all(end is not None and end["type"] in ("ok", "info") for end in ends)
        assert [end["type"] for end in ends if end is not None][1:] == ["info"] * 4
        assert not kv.core.paxos.log.claiming and not kv.core.paxos.log.pending
        assert await asyncio.wait_for(akv.get(b"k"), 10) in (b"v0", b"v1", b"v2", b"v3")

    asyncio.run(go())
    processes_are_threads(wor_events(c))
    processes_are_threads(hist.events)
    kv.put(b"k", b"v9")
    assert kv.get(b"k") == b"v9"


def test_the_pause_between_polls_backs_off_to_8_ms_however_long_the_wait() -> None:
    logic = Cluster.simulated(acceptors=3, seed=1).client().logic
    # 2000 polls (16 s at 8 ms) for a claim slowed by an outage: was OverflowError from 0.0005 * 2**2000
    assert list(pause(logic, 2000)) == [Sleep(0.008)]
    backoff = [[Sleep(0.0005 * 2**w)] for w in range(4)] + [[Sleep(0.008)]] * 2
    assert [list(pause(logic, w)) for w in range(6)] == backoff


def test_cancelled_submits_leave_nothing_behind_in_the_replica(no_collector: None) -> None:
    c = Cluster.simulated(acceptors=3, seed=5, wos_size=8)
    hist = AppHistory.of(c)
    applied: list[bytes] = []

    def apply(cmd: bytes) -> bytes:
        applied.append(cmd)
        return b"%d" % len(applied)

    rep = WormPaxos(c.client(), apply, name=b"smr", history=hist)

    async def go() -> None:
        arep = rep.aio
        tasks = [asyncio.create_task(arep.submit(b"c%d" % i)) for i in range(6)]
        await asyncio.sleep(0)
        for t in tasks[::2]:
            t.cancel()
        _, late = await asyncio.wait(tasks, timeout=30)
        assert not late
        assert await arep.submit(b"last") == b"%d" % len(applied)

    asyncio.run(go())
    rep.sync()  # the cancelled commands that were chosen after all are applied now, their results wanted by none
    assert rep.core.mine == set() and rep.core.results == {} and rep.core.known == {}
    assert len(set(applied)) == len(applied) and b"last" in applied
    processes_are_threads(hist.events)


def test_an_interrupted_synchronous_call_ends_at_once(no_collector: None) -> None:
    c = Cluster.simulated(acceptors=3, seed=6, wos_size=8)
    hist = AppHistory.of(c)
    ws = c.client()
    log = WormLog(ws, name=b"interrupted", history=hist)
    execute, calls = ws.driver.execute, [0]

    def interrupted(request: Any) -> Any:  # Ctrl-C while the driver waits for the second operation's replies
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        return execute(request)

    ws.driver.execute = interrupted  # type: ignore[method-assign]
    try:
        log.append(b"x")
    except KeyboardInterrupt as e:
        kept = e  # its traceback keeps the call's frames, and the app core's generator, alive
    else:
        raise AssertionError("the append was meant to be interrupted")
    assert not log.core.claiming and not log.core.pending
    assert [end["type"] for _, end in operations(hist.events) if end is not None] == ["info"]
    processes_are_threads(wor_events(c))
    ws.driver.execute = execute  # type: ignore[method-assign]
    assert log.append(b"y") >= 0
    del kept
