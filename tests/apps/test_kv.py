"""WormKV: the map's operations, linearizable reads, and concurrent clients under faults against the spec."""

from __future__ import annotations

import random
from collections.abc import Generator
from typing import Any

import pytest

from wormspace import Cluster, Faults, UsageError
from wormspace.apps import WormKV
from wormspace.apps.history import AppHistory
from wormspace.apps.kv import KvCore, KvSpec
from wormspace.client import OperationFailed, SpaceLogic

from .helpers import kv_sequential_problems, operations


def test_get_put_delete_cas_across_clients() -> None:
    c = Cluster.simulated(acceptors=3, seed=1, wos_size=8)
    a, b = WormKV(c.client(), name=b"kv"), WormKV(c.client(), name=b"kv")
    assert a.get(b"k") is None
    a.put(b"k", b"1")
    assert b.get(b"k") == b"1"  # b never submitted anything: its read syncs to the tail first
    assert b.cas(b"k", b"1", b"2") and not a.cas(b"k", b"1", b"3")
    assert a.get(b"k") == b"2"
    b.delete(b"k")
    assert a.get(b"k") is None and a.cas(b"k", None, b"") and b.get(b"k") == b""


def test_bad_arguments_are_usage_errors() -> None:
    kv = WormKV(Cluster.simulated(acceptors=3, seed=2).client(), name=b"kv")
    bad: list[Any] = [("k", b"v"), (b"k", None)]
    for key, value in bad:
        with pytest.raises(UsageError):
            kv.put(key, value)
    with pytest.raises(UsageError):
        kv.cas(b"k", 1, b"v")  # type: ignore[arg-type]


def test_the_trusted_spec() -> None:
    spec = KvSpec()
    assert spec.get(b"k") is None and spec.cas(b"k", None, b"a") and not spec.cas(b"k", None, b"b")
    spec.put(b"k", None)
    assert spec.get(b"k") is None


@pytest.mark.parametrize(("policy", "seed"), [("sticky", 1), ("sticky", 2), ("elected", 3), ("rotating", 4)])
def test_concurrent_clients_under_faults_match_the_spec_in_log_order(policy: str, seed: int) -> None:
    c = Cluster.simulated(acceptors=3, seed=seed, wos_size=8, faults=Faults(drop=0.05, duplicate=0.05))
    hist = AppHistory.of(c)
    rng = random.Random(seed)
    for i in range(3):
        core = KvCore(b"kv", policy=policy, replica=i, replicas=3, hole_timeout=0.1, history=hist)
        script = [(rng.choice("gpdc"), rng.choice([b"x", b"y"]), b"%d-%d" % (i, k)) for k in range(8)]

        def run(logic: SpaceLogic, core: KvCore = core, script: Any = script) -> Generator[Any, Any, None]:
            for op, key, val in script:
                try:
                    if op == "g":
                        yield from core.get(logic, key)
                    elif op == "p":
                        yield from core.put(logic, key, val)
                    elif op == "d":
                        yield from core.put(logic, key, None)
                    else:
                        yield from core.cas(logic, key, core.data.get(key), val)
                except OperationFailed:
                    pass

        c.spawn(run)
    c.at(0.1, lambda: c.crash(1))
    c.at(0.3, lambda: c.restart(1))
    c.run()
    fresh = [WormKV(c.client(), name=b"kv", policy=policy, hole_timeout=0.1) for _ in range(2)]
    assert fresh[0].get(b"x") == fresh[1].get(b"x") and fresh[0].core.data == fresh[1].core.data
    written = {e["value"] for e in hist.events if e["f"] == "write"} | {
        e["value"][1] for e in hist.events if e["f"] == "cas"
    }
    reads = [comp for inv, comp in operations(hist.events) if inv["f"] == "read" and comp is not None]
    assert all(r["value"] is None or r["value"] in written for r in reads)
    assert any(comp is not None and comp["type"] == "ok" for _, comp in operations(hist.events))


@pytest.mark.parametrize(("policy", "seed"), [("sticky", 1), ("sticky", 2), ("elected", 3), ("rotating", 4)])
def test_clients_taking_turns_answer_as_the_spec(policy: str, seed: int) -> None:
    assert kv_sequential_problems(seed, policy) == []
