"""The app boundary (wormspace.client): generator cores run under every driver, sleeps on the driver's clock."""

from __future__ import annotations

import ast
from collections.abc import Generator
from pathlib import Path

import pytest

from wormspace import Cluster, UsageError
from wormspace.client import OpGen, Sleep, SpaceLogic
from wormspace.layers.wor import Outcome
from wormspace.layers.wormspace import ClientRequest


def write_then_read(logic: SpaceLogic, data: bytes) -> OpGen[bytes | None]:
    seg = yield from logic.alloc_any(b"app")
    addr = logic.address(seg, 0)
    cap = yield from logic.capture(addr)
    yield from logic.write(addr, data, cap)
    yield from logic.sleep(0.5)
    got = yield from logic.read(addr)
    return got if isinstance(got, bytes) else None


def test_a_core_runs_on_the_sync_client_and_sleeps_on_the_virtual_clock() -> None:
    cluster = Cluster.simulated(acceptors=3, seed=3)
    ws = cluster.client()
    before = cluster.net.now
    assert ws.run(write_then_read(ws.logic, b"x")) == b"x"
    assert cluster.net.now - before >= 0.5


def test_a_core_runs_as_a_spawned_process_and_sleeps_between_events() -> None:
    cluster = Cluster.simulated(acceptors=3, seed=4)
    woke: list[float] = []

    def sleeper(logic: SpaceLogic) -> Generator[ClientRequest, Outcome, None]:
        yield from logic.sleep(2.0)
        woke.append(cluster.net.now)

    results: list[bytes | None] = []

    def worker(logic: SpaceLogic) -> Generator[ClientRequest, Outcome, None]:
        results.append((yield from write_then_read(logic, b"y")))

    cluster.spawn(sleeper)
    cluster.spawn(worker)
    cluster.run()
    assert not cluster.failures
    assert results == [b"y"]
    assert woke and woke[0] >= 2.0


def test_a_sleep_must_be_a_finite_non_negative_number() -> None:
    for bad in (-1, True, "1", float("nan"), float("inf")):
        with pytest.raises(UsageError):
            Sleep(bad)  # type: ignore[arg-type]


def test_the_client_module_exposes_nothing_below_the_client_api() -> None:
    tree = ast.parse(Path(__file__).parents[1].joinpath("wormspace", "client.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "wormspace.aio", "wormspace.errors", "wormspace.layers.wor",
                        "wormspace.layers.wormspace", "wormspace.layers.wos"}
    from wormspace import client

    assert not {"OpRequest", "Ballot", "ClientCore"} & set(client.__all__)
