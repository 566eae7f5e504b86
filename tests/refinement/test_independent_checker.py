"""`wormspace check` agrees with independent checkers on many histories: write-once registers and WormKV.

The WormSpace histories are simulated runs with faults (message loss and duplication, a crash and restart, a
partition, and for odd seeds an outage long enough for operations to time out) of clients racing single and
batch writes on a few addresses, and hand-edits of them (a read's value changed, an ok write turned into a
failure): each is judged by ``wormspace check --model wor`` and by ``independent_wor``
(tests/refinement/independent_wor.py), which shares no code with the library. Bounds: 48 runs and 6 edits
of each, plus hand-edited bad histories below showing that both can answer ILLEGAL. The WormKV histories
are ``app_run`` runs (16 seeds, 4 clients x 10 operations on 2 keys) and 6 hand-edits of each, judged by
``wormspace check`` and ``independent_kv``.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

from tests.refinement import independent_kv, independent_wor
from wormspace import Cluster, Faults, OperationFailed
from wormspace.client import SpaceLogic
from wormspace.layers.wor import Outcome
from wormspace.layers.wormspace import ClientRequest
from wormspace.refinement import check
from wormspace.refinement.wormspace_to_apps import RunConfig, app_run

WOS = 8
RUNS = 48
EDITS = 6


def wormspace_check(text: str, tmp_path: Path, *, app: bool = False) -> str:
    path = tmp_path / "h.jsonl"
    path.write_text(text)
    parser = argparse.ArgumentParser(prog="wormspace")
    check.add_parser(parser.add_subparsers(dest="verb", required=True))
    options = [] if app else ["--model", "wor", "--wos-size", str(WOS)]
    args = parser.parse_args(["check", "--json", "--no-shrink", *options, str(path)])
    code = args.func(args)
    return {check.EXIT_OK: "OK", check.EXIT_ILLEGAL: "ILLEGAL", check.EXIT_UNKNOWN: "UNKNOWN"}[code]


def _client(seed: int, name: str, segments: list[int], ops: int) -> object:
    rng = random.Random(seed)

    def workload(logic: SpaceLogic) -> Generator[ClientRequest, Outcome, None]:
        for n in range(ops):
            seg = rng.choice(segments)
            try:
                roll = rng.random()
                if roll < 0.35:
                    addr = logic.address(seg, rng.randrange(3))
                    cap = yield from logic.capture(addr)
                    yield from logic.write(addr, f"{name}{n % 2}".encode(), cap)
                elif roll < 0.55:
                    start = rng.randrange(3)
                    cap = yield from logic.batch_capture(seg, start, start + 3)
                    values = {o: f"{name}b{o}".encode() for o in range(start, start + 3) if rng.random() < 0.7}
                    if values:
                        yield from logic.batch_write(seg, values, cap)
                else:
                    yield from logic.read(logic.address(seg, rng.randrange(5)))
            except OperationFailed:
                pass

    return workload


def simulated_history(seed: int) -> str:
    cluster = Cluster.simulated(acceptors=3, seed=seed, wos_size=WOS, faults=Faults(drop=0.05, duplicate=0.05))
    setup = cluster.client()
    segments = [setup.alloc(metadata=b"s") for _ in range(2)]
    for k in range(4):
        cluster.spawn(_client(seed * 10 + k, f"p{k}", segments, 10), at=0.001 * k)  # type: ignore[arg-type]
    cluster.at(0.01, lambda: cluster.crash(seed % 3))
    cluster.at(0.02, lambda: cluster.partition({(seed + 1) % 3}, {seed % 3, (seed + 2) % 3}))  # no quorum
    cluster.at(0.05 + 4.0 * (seed % 2), cluster.heal)  # odd seeds: long enough for operations to time out
    cluster.at(0.06 + 4.0 * (seed % 2), lambda: cluster.restart(seed % 3))
    cluster.run()
    return cluster.history().to_jsonl()


def edited_copies(text: str, rng: random.Random, count: int, spot: Callable[[dict[str, Any]], bool],
                  change: Callable[[dict[str, Any]], None]) -> list[str]:
    """Up to ``count`` copies of a history, each with ``change`` made to one of its events that ``spot``
    picks (chosen by ``rng``)."""
    lines = [json.loads(line) for line in text.splitlines()]
    spots = [i for i, e in enumerate(lines) if spot(e)]
    out = []
    for i in rng.sample(spots, min(count, len(spots))):
        copy = [dict(e) for e in lines]
        change(copy[i])
        out.append("\n".join(json.dumps(x) for x in copy) + "\n")
    return out


def _write_failed(e: dict[str, Any]) -> None:
    """An ok write made a certain failure (no effect)."""
    e.update(type="fail", value=None, error="CaptureStale")


def edits(text: str, rng: random.Random, count: int) -> list[str]:
    """Hand-edits of a history: an ok read's value or an ok write's outcome changed, one per copy."""
    lines = [json.loads(line) for line in text.splitlines()]
    written = sorted({e["value"] for e in lines if e["type"] == "invoke" and e["f"] == "write"})

    def change(e: dict[str, Any]) -> None:
        if e["f"] == "read":
            e["value"] = rng.choice([None, "eg==", *written])
        else:
            _write_failed(e)

    return edited_copies(text, rng, count, lambda e: e["type"] == "ok" and e["f"] in ("read", "write"), change)


@pytest.mark.parametrize("chunk", range(4))
def test_wormspace_check_agrees_with_an_independent_checker(chunk: int, tmp_path: Path) -> None:
    seen = {"OK": 0, "ILLEGAL": 0}
    for seed in range(chunk * RUNS // 4, (chunk + 1) * RUNS // 4):
        text = simulated_history(seed)
        assert independent_wor.check_text(text) == wormspace_check(text, tmp_path) == "OK", seed
        seen["OK"] += 1
        for n, edited in enumerate(edits(text, random.Random(seed), EDITS)):
            mine = independent_wor.check_text(edited)
            assert mine != "UNKNOWN", (seed, n)
            assert wormspace_check(edited, tmp_path) == mine, (seed, n, edited)
            seen[mine] += 1
    assert seen["ILLEGAL"] > 0 and seen["OK"] > RUNS // 4  # both verdicts met: the comparison is not vacuous


def test_histories_have_partial_batches_and_indeterminate_operations() -> None:
    kinds = set()
    for seed in range(RUNS):
        events = [json.loads(line) for line in simulated_history(seed).splitlines()]
        independent_wor.processes_are_threads(events)  # Jepsen's convention: nothing more from a process after its info
        for e in events:
            if e["f"] == "batch_write" and e["type"] == "info" and "ok" in (e.get("results") or {}).values():
                kinds.add("partly applied batch")
            if e["f"] == "write" and e["type"] == "info":
                kinds.add("indeterminate write")
            if e.get("error") == "AlreadyWritten":
                kinds.add("AlreadyWritten")
    assert kinds == {"partly applied batch", "indeterminate write", "AlreadyWritten"}


# ---- hand-edited bad histories: the independent checker can tell a broken history from a good one ------

GOOD = """\
{"process":0,"type":"invoke","f":"write","key":1,"value":"YQ==","time":1}
{"process":1,"type":"invoke","f":"write","key":1,"value":"Yg==","time":1}
{"process":0,"type":"ok","f":"write","key":1,"value":null,"time":3}
{"process":1,"type":"fail","f":"write","key":1,"value":null,"time":4,"error":"AlreadyWritten","existing":"YQ=="}
{"process":2,"type":"invoke","f":"read","key":1,"value":null,"time":5}
{"process":2,"type":"ok","f":"read","key":1,"value":"YQ==","time":6}
"""


@pytest.mark.parametrize("bad", [
    GOOD.replace('"value":"YQ==","time":6', '"value":null,"time":6'),  # EMPTY after a write returned
    GOOD.replace('"existing":"YQ=="', '"existing":"Yw=="'),  # held data nobody wrote
    GOOD.replace('"type":"ok","f":"write","key":1,"value":null,"time":3',
                 '"type":"fail","f":"write","key":1,"value":null,"time":3,"error":"CaptureStale"'),
])
def test_both_checkers_reject_a_hand_edited_bad_history(bad: str, tmp_path: Path) -> None:
    assert independent_wor.check_text(GOOD) == wormspace_check(GOOD, tmp_path) == "OK"
    assert independent_wor.check_text(bad) == wormspace_check(bad, tmp_path) == "ILLEGAL"


# ---- WormKV app histories against an independent register-per-key checker ------------------------------


def kv_edits(text: str, rng: random.Random, count: int) -> list[str]:
    """Hand-edits of a WormKV history: an ok read's value, an ok write's outcome, or a cas's verdict changed."""
    lines = [json.loads(line) for line in text.splitlines()]
    values = sorted({e["value"] for e in lines if e["type"] == "invoke" and e["f"] == "write" and e["value"]})

    def change(e: dict[str, Any]) -> None:
        if e["f"] == "read":
            e["value"] = rng.choice([None, "eg==", *values])
        elif e["f"] == "write":
            _write_failed(e)
        else:  # a cas: swapped <-> refused
            e["type"] = "fail" if e["type"] == "ok" else "ok"

    return edited_copies(text, rng, count, lambda e: e["type"] in ("ok", "fail") and e.get("error") is None, change)


@pytest.mark.parametrize("chunk", range(2))
def test_wormspace_check_agrees_with_an_independent_kv_checker(chunk: int, tmp_path: Path) -> None:
    seen = {"OK": 0, "ILLEGAL": 0}
    for seed in range(chunk * 8, chunk * 8 + 8):
        text = app_run("kv", seed, RunConfig(clients=4, ops=10, keys=2)).jsonl()
        assert independent_kv.check_text(text) == wormspace_check(text, tmp_path, app=True) == "OK", seed
        for n, edited in enumerate(kv_edits(text, random.Random(seed), EDITS)):
            mine = independent_kv.check_text(edited)
            assert mine != "UNKNOWN", (seed, n)
            assert wormspace_check(edited, tmp_path, app=True) == mine, (seed, n, edited)
            seen[mine] += 1
    assert seen["ILLEGAL"] > 0 and seen["OK"] > 0  # both verdicts met among the edits
