"""WormTX end to end: E3 and C5 on the simulated cluster (sync client and spawned processes), on real
acceptor processes (sync and asyncio), and its usage errors."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import pytest

from wormspace import Cluster, Trimmed, UsageError
from wormspace.apps import WormTX
from wormspace.apps.tx import ABORT, YES, AsyncWormTX, TxLogic, TxSpec
from wormspace.client import SpaceLogic
from wormspace.layers.network import Faults


def _tx(seed: int = 1, **kw: Any) -> tuple[Any, WormTX]:
    cluster = Cluster.simulated(acceptors=3, seed=seed)
    return cluster, WormTX(cluster.client(), **kw)


def test_all_yes_commits_and_everyone_agrees() -> None:
    cluster, tx = _tx()
    t = tx.begin(participants=3)
    assert [tx.vote(t, i, True) for i in range(3)] == [True, True, True]
    other = WormTX(cluster.client())
    assert tx.decide(t) is True and other.decide(t, wait=0.0) is True


def test_one_no_aborts_at_once() -> None:
    cluster, tx = _tx()
    t = tx.begin(participants=3)
    assert tx.vote(t, 0, True) and tx.vote(t, 1, False)
    start = cluster.net.now
    assert tx.decide(t, wait=5.0) is False
    assert cluster.net.now - start < 1.0  # a NO decides without waiting for participant 2
    assert tx.vote(t, 2, True) is True  # its register was never filled: the vote stands, the outcome is abort
    assert tx.decide(t) is False


def test_silent_participant_gets_abort_after_wait_and_its_late_yes_loses() -> None:
    cluster, tx = _tx()
    t = tx.begin(participants=3)
    tx.vote(t, 0, True)
    tx.vote(t, 1, True)
    start = cluster.net.now
    assert tx.decide(t, wait=0.5) is False
    assert cluster.net.now - start >= 0.5  # waited on the cluster's (virtual) clock
    late = WormTX(cluster.client())
    assert late.vote(t, 2, True) is False
    assert late.decide(t, wait=0.0) is False
    assert cluster.chosen()[(t, 2)] == ABORT


def test_segment_trimmed_once_every_participant_acknowledged() -> None:
    cluster, tx = _tx()
    t = tx.begin(participants=3)
    for i in range(3):
        tx.vote(t, i, True)
    parts = [WormTX(cluster.client()) for _ in range(3)]
    assert [p.decide(t, participant=i) for i, p in enumerate(parts)] == [True] * 3
    with pytest.raises(Trimmed):
        cluster.client().read(cluster.client().address(t, 0))
    with pytest.raises(Trimmed):
        WormTX(cluster.client()).decide(t)


def test_two_acks_do_not_trim() -> None:
    _cluster, tx = _tx()
    t = tx.begin(participants=3)
    for i in range(3):
        tx.vote(t, i, True)
    assert tx.ack(t, 0) is False and tx.ack(t, 1) is False
    assert tx.decide(t) is True  # still there
    assert tx.ack(t, 2) is True


def test_c5_coordinator_records_the_decision() -> None:
    cluster, tx = _tx(variant="C5")
    t = tx.begin(participants=2)
    tx.vote(t, 0, True)
    tx.vote(t, 1, True)
    assert tx.coordinate(t) is True
    assert cluster.chosen()[(t, 4)] == b"COMMIT"
    parts = [WormTX(cluster.client()) for _ in range(2)]
    assert [p.decide(t, participant=i) for i, p in enumerate(parts)] == [True, True]


def test_c5_silent_coordinator_blocks_nobody() -> None:
    cluster, tx = _tx(variant="C5")
    t = tx.begin(participants=2)
    tx.vote(t, 0, True)
    tx.vote(t, 1, True)
    assert WormTX(cluster.client()).decide(t, wait=0.3) is False  # no decision after 0.3 s: ABORT recorded
    assert tx.coordinate(t) is False  # the late coordinator adopts it


def test_c5_any_no_aborts() -> None:
    _, tx = _tx(variant="C5")
    t = tx.begin(participants=2)
    tx.vote(t, 0, False)
    assert tx.coordinate(t, wait=5.0) is False and tx.decide(t) is False


def test_spawned_participants_and_deciders_agree_under_faults() -> None:
    cluster = Cluster.simulated(acceptors=3, seed=5, faults=Faults(drop=0.1, duplicate=0.1))
    tx = WormTX(cluster.client())
    ts = [tx.begin(participants=3) for _ in range(4)]
    decisions: dict[int, list[bool]] = {t: [] for t in ts}
    votes: dict[tuple[int, int], bool] = {}

    def participant(t: int, i: int, late: float) -> Any:
        def run(logic: SpaceLogic) -> Generator[Any, Any, None]:
            core = TxLogic(logic)
            yield from logic.sleep(late)
            votes[(t, i)] = yield from core.vote(t, i, True)
            decisions[t].append((yield from core.decide(t, 0.2, participant=i)))

        return run

    for n, t in enumerate(ts):
        for i in range(3):
            cluster.spawn(participant(t, i, 3.0 if (n, i) == (1, 2) else 0.0))
    cluster.at(0.02, lambda: cluster.crash(0))
    cluster.at(0.3, lambda: cluster.restart(0))
    cluster.run()
    assert cluster.failures == []
    for t in ts:
        assert len(set(decisions[t])) == 1
        spec = TxSpec(tuple(cluster.chosen().get((t, i)) for i in range(3)))
        assert decisions[t][0] == spec.outcome()
    assert decisions[ts[1]] == [False] * 3 and votes[(ts[1], 2)] is False
    assert all(decisions[t] == [True] * 3 for t in ts if t != ts[1])


def test_usage_errors() -> None:
    cluster, tx = _tx()
    with pytest.raises(UsageError):
        tx.begin(participants=0)
    t = tx.begin(participants=2)
    with pytest.raises(UsageError):
        tx.vote(t, 2, True)
    with pytest.raises(UsageError):
        tx.vote(t, 0, 1)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        tx.decide(t, wait=-1)
    with pytest.raises(UsageError):
        tx.coordinate(t)  # E3 has no coordinator
    with pytest.raises(UsageError):
        WormTX(cluster.client(), variant="X9")
    plain = cluster.client().alloc(b"not a transaction")
    with pytest.raises(UsageError):
        tx.decide(plain)
    with pytest.raises(UsageError):
        tx.decide(999)  # never allocated


def test_spec_outcomes() -> None:
    spec = TxSpec.fresh(2)
    assert spec.outcome() is None
    spec, ok = spec.vote(0, YES)
    assert ok and spec.outcome() is None
    assert spec.abort(1).outcome() is False
    spec, ok = spec.vote(1, YES)
    assert spec.outcome() is True and spec.vote(1, b"NO") == (spec, False)


@pytest.mark.slow
def test_real_cluster_sync_and_asyncio() -> None:
    with Cluster.local(acceptors=3, wos_size=64, record=False) as cluster:  # concurrent coroutines share a client
        tx = WormTX(cluster.client())
        t = tx.begin(participants=3)
        assert all(tx.vote(t, i, True) for i in range(3))
        assert tx.decide(t, participant=0) is True
        t2 = tx.begin(participants=2)
        tx.vote(t2, 0, True)
        assert tx.decide(t2, wait=0.2) is False and tx.vote(t2, 1, True) is False

        c5 = WormTX(cluster.client(), variant="C5")
        t3 = c5.begin(participants=2)
        c5.vote(t3, 0, True)
        c5.vote(t3, 1, True)
        assert c5.coordinate(t3) is True

        async def on_asyncio() -> list[bool]:
            atx = AsyncWormTX(cluster.client().aio)
            t4 = await atx.begin(participants=2)
            votes = await asyncio.gather(atx.vote(t4, 0, True), atx.vote(t4, 1, True))
            return [*votes, await atx.decide(t4, participant=0), await atx.decide(t4, participant=1)]

        assert asyncio.run(on_asyncio()) == [True, True, True, True]


def test_a_transaction_id_beyond_the_segment_space_is_a_usage_error() -> None:
    tx = WormTX(Cluster.simulated(acceptors=3, seed=1).client())
    for t in (1 << 63, 1 << 70):
        with pytest.raises(UsageError, match=r"a transaction id is an int in \[0, 2\*\*63\)"):
            tx.vote(t, 0, True)
        with pytest.raises(UsageError, match=r"a transaction id is an int in \[0, 2\*\*63\)"):
            tx.decide(t, wait=0)
