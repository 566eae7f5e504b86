"""Pairing app-level history events into operations (for the tests' real-time checks)."""

from __future__ import annotations

from typing import Any


def operations(events: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(invoke, completion or None) per operation, in invoke order."""
    open_: dict[int, dict[str, Any]] = {}
    out: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    index: dict[int, int] = {}
    for e in events:
        if e["type"] == "invoke":
            open_[e["process"]] = e
            index[e["process"]] = len(out)
            out.append((e, None))
        else:
            inv = open_.pop(e["process"])
            out[index[e["process"]]] = (inv, e)
    return out


def real_time_order_violations(events: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Pairs of ok operations where one completed before the other began but got a higher position."""
    done = [(i, c) for i, c in operations(events) if c is not None and c["type"] == "ok"]
    return [
        (a[1]["key"], b[1]["key"])
        for a in done
        for b in done
        if a[1]["time"] < b[0]["time"] and a[1]["key"] > b[1]["key"]
    ]


# ---- concurrent scenarios under faults, and what they must satisfy ---------------------------------------


def log_scenario(seed: int) -> tuple[list[tuple[int, bytes]], dict[int, bytes | None], list[dict[str, Any]]]:
    """Four appenders under loss, duplication, a crash and a partition. -> (completed appends as (position,
    data), the log's entries read afterwards, the app-level history)."""
    from collections.abc import Generator

    from wormspace import Cluster, Faults
    from wormspace.apps import WormLog
    from wormspace.apps.history import AppHistory
    from wormspace.apps.log import LogCore
    from wormspace.client import OperationFailed, SpaceLogic

    c = Cluster.simulated(acceptors=3, seed=seed, wos_size=16, faults=Faults(drop=0.05, duplicate=0.05))
    hist = AppHistory.of(c)
    got: list[tuple[int, bytes]] = []
    for k in range(4):
        core = LogCore(b"f", hole_timeout=0.2, history=hist)

        def run(logic: SpaceLogic, core: LogCore = core, k: int = k) -> Generator[Any, Any, None]:
            for i in range(8):
                data = b"p%d-%d" % (k, i)
                try:
                    pos = yield from core.append(logic, data)
                except OperationFailed:
                    continue
                got.append((pos, data))

        c.spawn(run)
    c.at(0.05, lambda: c.crash(2))
    c.at(0.3, lambda: c.restart(2))
    c.at(0.4, lambda: c.partition({0}, {1, 2}))
    c.at(0.6, c.heal)
    c.run()
    reader = WormLog(c.client(), name=b"f", hole_timeout=0.2)
    entries = dict(reader.entries())
    assert reader.tail() == max(entries) + 1
    return got, entries, hist.events


def log_problems(got: list[tuple[int, bytes]], entries: dict[int, bytes | None]) -> list[str]:
    """What breaks the log's spec: a position given to two appends, an append not at its position."""
    problems = []
    positions = [p for p, _ in got]
    if len(set(positions)) != len(positions):
        problems.append("a position was given to two appends")
    problems += [f"position {p} holds {entries.get(p)!r}, not {d!r}" for p, d in got if entries.get(p) != d]
    return problems


def smr_scenario(policy: str, seed: int) -> tuple[list[bytes], list[list[bytes]], list[tuple[bytes, bytes]], Any]:
    """Three replicas submitting concurrently under loss, duplication, a crash and a partition. -> (the
    whole command sequence read by a fresh replica, each replica's applied list, (command, result) of the
    completed submits, the app-level history)."""
    from collections.abc import Callable, Generator

    from wormspace import Cluster, Faults
    from wormspace.apps import WormPaxos
    from wormspace.apps.history import AppHistory
    from wormspace.apps.paxos import PaxosCore
    from wormspace.client import OperationFailed, SpaceLogic

    def counter() -> tuple[list[bytes], Callable[[bytes], bytes]]:
        applied: list[bytes] = []

        def apply(cmd: bytes) -> bytes:
            applied.append(cmd)
            return b"%d" % len(applied)

        return applied, apply

    c = Cluster.simulated(acceptors=3, seed=seed, wos_size=8, faults=Faults(drop=0.05, duplicate=0.05))
    hist = AppHistory.of(c)
    lists: list[list[bytes]] = []
    results: list[tuple[bytes, bytes]] = []
    for i in range(3):
        applied, apply = counter()
        lists.append(applied)
        core = PaxosCore(apply, b"f", policy=policy, replica=i, replicas=3, hole_timeout=0.1, history=hist)

        def run(logic: SpaceLogic, core: PaxosCore = core, i: int = i) -> Generator[Any, Any, None]:
            for k in range(5):
                cmd = b"r%d-%d" % (i, k)
                try:
                    result = yield from core.submit(logic, cmd)
                except OperationFailed:
                    continue
                results.append((cmd, result))

        c.spawn(run)
    c.at(0.05, lambda: c.crash(0))
    c.at(0.2, lambda: c.restart(0))
    c.at(0.3, lambda: c.partition({0}, {1, 2}))
    c.at(0.5, c.heal)
    c.run()
    whole, apply = counter()
    WormPaxos(c.client(), apply, name=b"f", policy=policy, hole_timeout=0.1).sync()
    return whole, lists, results, hist


def smr_problems(whole: list[bytes], lists: list[list[bytes]], results: list[tuple[bytes, bytes]]) -> list[str]:
    """What breaks the SMR spec: a command twice, a replica's applied list not a prefix of the sequence, a
    result that is not apply's answer at the command's place."""
    problems = []
    if len(set(whole)) != len(whole):
        problems.append("a command appears twice")
    problems += [f"replica {i} applied a non-prefix" for i, a in enumerate(lists) if a != whole[: len(a)]]
    problems += [f"{cmd!r} answered {r!r}" for cmd, r in results if cmd not in whole or whole.index(cmd) + 1 != int(r)]
    return problems


def kv_sequential_problems(seed: int, policy: str = "sticky", steps: int = 40) -> list[str]:
    """Three clients take turns with random operations on two keys (under message loss); each answer must
    be the spec's (one at a time, linearizable means exactly this)."""
    import random

    from wormspace import Cluster, Faults
    from wormspace.apps import WormKV
    from wormspace.apps.kv import KvSpec

    c = Cluster.simulated(acceptors=3, seed=seed, wos_size=8, faults=Faults(drop=0.05))
    clients = [WormKV(c.client(), name=b"kv", policy=policy, replica=i, replicas=3, hole_timeout=0.1) for i in range(3)]
    spec, rng, problems = KvSpec(), random.Random(seed), []
    for step in range(steps):
        kv, key, value = rng.choice(clients), rng.choice([b"x", b"y"]), b"%d" % step
        op = rng.choice(["get", "put", "delete", "cas", "cas"])
        got: bytes | bool | None
        want: bytes | bool | None
        if op == "get":
            got, want = kv.get(key), spec.get(key)
        elif op in ("put", "delete"):
            new = value if op == "put" else None
            kv.put(key, value) if new is not None else kv.delete(key)
            spec.put(key, new)
            got = want = None
        else:
            expected = rng.choice([None, spec.get(key), b"%d" % rng.randrange(step + 1)])
            got, want = kv.cas(key, expected, value), spec.cas(key, expected, value)
        if got != want:
            problems.append(f"step {step}: {op} {key!r} answered {got!r}, the spec {want!r}")
    return problems


def tx_vote_lands_then_stale() -> tuple[list[dict[str, Any]], dict[tuple[int, int], bytes | None]]:
    """A WormTX run on a simulated cluster where a vote's write lands but every attempt then answers
    ``CaptureStale`` (a lost reply, then a preempted retry), so ``vote`` raises after its value was chosen;
    a decider then commits. -> (the app history's events, the chosen registers)."""
    from wormspace.apps.history import AppHistory
    from wormspace.apps.tx import WormTX
    from wormspace.client import CaptureId, CaptureStale, OpGen
    from wormspace.cluster import Cluster

    cluster = Cluster.simulated(acceptors=3, seed=5)
    history = AppHistory.of(cluster)
    t = WormTX(cluster.client(), history=history).begin(participants=1)
    voter = cluster.client()
    write = voter.logic.write

    def landed_then_stale(address: int, data: bytes, cap: CaptureId) -> OpGen[None]:
        yield from write(address, data, cap)
        raise CaptureStale("preempted after the write landed")

    voter.logic.write = landed_then_stale  # type: ignore[method-assign]
    try:
        WormTX(voter, history=history).vote(t, 0, True)
    except CaptureStale:
        pass
    else:
        raise AssertionError("the vote was meant to end with CaptureStale")
    assert WormTX(cluster.client(), history=history).decide(t, wait=0) is True
    return history.events, cluster.chosen()
