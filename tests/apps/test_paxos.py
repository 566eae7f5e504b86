"""WormPaxos: every policy replicates one command sequence; takeover, catch-up, trim; concurrency under faults."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from wormspace import Cluster, Trimmed, UsageError
from wormspace.apps import WormPaxos
from wormspace.apps.paxos import SmrSpec

from .helpers import real_time_order_violations, smr_problems, smr_scenario

POLICIES = ["sticky", "elected", "rotating"]


def counter() -> tuple[list[bytes], Callable[[bytes], bytes]]:
    applied: list[bytes] = []

    def apply(cmd: bytes) -> bytes:
        applied.append(cmd)
        return b"%d" % len(applied)

    return applied, apply


@pytest.mark.parametrize("policy", POLICIES)
def test_replicas_apply_one_sequence_and_submit_answers_after_earlier_commands(policy: str) -> None:
    c = Cluster.simulated(acceptors=3, seed=1, wos_size=8)
    logs, reps = [], []
    for i in range(3):
        applied, apply = counter()
        logs.append(applied)
        reps.append(WormPaxos(c.client(), apply, name=b"smr", policy=policy, replica=i, replicas=3, hole_timeout=0.1))
    for k in range(7):
        assert reps[k % 3].submit(b"c%d" % k) == b"%d" % (k + 1)
    for r in reps:
        r.sync()
    assert logs[0] == logs[1] == logs[2] == [b"c%d" % k for k in range(7)]


def test_sticky_leader_pays_one_write_per_command() -> None:
    c = Cluster.simulated(acceptors=3, seed=2, wos_size=64)
    _, apply = counter()
    rep = WormPaxos(c.client(), apply, name=b"s")
    rep.submit(b"first")
    before = len(c.history())
    for k in range(10):
        rep.submit(b"%d" % k)
    assert [e.f for e in list(c.history())[before:] if e.type == "invoke"] == ["write"] * 10


def test_equal_commands_from_two_replicas_stay_two_commands() -> None:
    c = Cluster.simulated(acceptors=3, seed=3, wos_size=8)
    applied, apply = counter()
    a = WormPaxos(c.client(), apply, name=b"eq")
    b = WormPaxos(c.client(), counter()[1], name=b"eq")
    a.submit(b"same")
    b.submit(b"same")
    a.sync()
    assert applied == [b"same", b"same"]


def test_a_new_replica_catches_up_and_trim_needs_a_snapshot() -> None:
    c = Cluster.simulated(acceptors=3, seed=4, wos_size=4)
    applied, apply = counter()
    rep = WormPaxos(c.client(), apply, name=b"cu")
    for k in range(10):
        rep.submit(b"%d" % k)
    late_applied, late_apply = counter()
    late = WormPaxos(c.client(), late_apply, name=b"cu")
    assert late.sync() == 10 and late_applied == applied
    assert rep.trim_applied(9) == 8
    with pytest.raises(Trimmed):
        WormPaxos(c.client(), counter()[1], name=b"cu").sync()
    snap_applied, snap_apply = counter()
    from_snapshot = WormPaxos(c.client(), snap_apply, name=b"cu", start=8)
    assert from_snapshot.sync() == 2 and snap_applied == applied[8:]


def test_bad_arguments_are_usage_errors() -> None:
    c = Cluster.simulated(acceptors=3, seed=5)
    with pytest.raises(UsageError):
        WormPaxos(c.client(), counter()[1], name=b"x", policy="random")
    with pytest.raises(UsageError):
        WormPaxos(c.client(), counter()[1], name=b"x").submit("text")  # type: ignore[arg-type]
    for bad in ({"start": -1}, {"start": "0"}, {"start": True}):
        with pytest.raises(UsageError, match="start is a non-negative int"):
            WormPaxos(c.client(), counter()[1], name=b"x", **bad)
    with pytest.raises(UsageError, match="apply is callable"):
        WormPaxos(c.client(), b"not a function", name=b"x")  # type: ignore[arg-type]


def test_the_trusted_spec() -> None:
    spec = SmrSpec(lambda earlier, cmd: b"%d" % len(earlier))
    assert spec.submit(b"a") == b"0" and spec.submit(b"b") == b"1"
    assert spec.applied_ok([b"a"]) and not spec.applied_ok([b"b"])


@pytest.mark.parametrize(("policy", "seed"), [(p, s) for p in POLICIES for s in (1, 2)])
def test_concurrent_replicas_under_faults_agree_on_one_sequence(policy: str, seed: int) -> None:
    whole, lists, results, hist = smr_scenario(policy, seed)
    assert results and smr_problems(whole, lists, results) == []
    assert len([e for e in hist.events if e["type"] == "ok"]) == len(results)
    assert real_time_order_violations(hist.events) == []
