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


def test_a_simulated_client_has_an_asyncio_twin_on_the_virtual_clock() -> None:
    import asyncio

    from wormspace import EMPTY, AlreadyWritten
    from wormspace.client import AsyncClient

    cluster = Cluster.simulated(acceptors=3, seed=5)
    ws = cluster.client()
    aio = ws.aio
    assert isinstance(aio, AsyncClient) and aio.wos_size == ws.wos_size

    async def main() -> None:
        seg = await aio.alloc(metadata=b"m")
        assert await aio.alloc(segment=seg) is False
        addr = aio.address(seg, 3)
        assert aio.split(addr) == (seg, 3)
        cap = await aio.capture(addr)
        await aio.write(addr, b"x", cap)
        with pytest.raises(AlreadyWritten) as e:
            await aio.write(addr, b"y", await aio.capture(addr))
        assert e.value.data == b"x"
        reads = await asyncio.gather(*(aio.read(aio.address(seg, i)) for i in range(5)))
        assert reads == [EMPTY, EMPTY, EMPTY, b"x", EMPTY]
        assert (await aio.batch_read(seg, 2, 5)) == {2: EMPTY, 3: b"x", 4: EMPTY}
        before = cluster.net.now
        assert await aio.run(write_then_read(aio.logic, b"z")) == b"z"  # sleeps 0.5 s of the cluster's clock
        assert cluster.net.now - before >= 0.5

    asyncio.run(main())
    history = cluster.history()
    assert {e.process for e in history} >= {0, 1_000_000}  # concurrent reads recorded as separate processes
    from wormspace.refinement.linearizability import check_history
    from wormspace.refinement.models import SegmentModel

    assert check_history(list(history), SegmentModel(wos_size=ws.wos_size)).verdict == "OK"


def test_a_client_whose_driver_has_no_asyncio_face_says_so() -> None:
    from wormspace import WormSpace

    ws = WormSpace(Cluster.simulated(acceptors=3, seed=1).client().logic, object())  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="no asyncio face"):
        ws.aio  # noqa: B018


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"seed": "x"}, "seed must be an int, got 'x'"),
    ({"seed": 1.5}, "seed must be an int"),
    ({"wos_size": 0}, r"wos_size must be an int in \[1, 1048576\], got 0"),
    ({"wos_size": "8"}, "wos_size must be an int"),
    ({"faults": 3}, "faults must be a wormspace.Faults or None, got int"),
    ({"config": {"timeout": 1}}, "config must be a wormspace.Config or None, got dict"),
])
def test_a_simulated_cluster_checks_its_arguments_when_made(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Cluster.simulated(acceptors=3, **kwargs)  # type: ignore[arg-type]


def test_partition_sides_must_be_disjoint_and_connect_takes_a_path() -> None:
    import wormspace

    cluster = Cluster.simulated(acceptors=3, seed=1)
    with pytest.raises(UsageError, match="must not share an acceptor"):
        cluster.partition({0, 1}, {1, 2})
    cluster.partition({0}, {1, 2})  # disjoint: fine
    with pytest.raises(UsageError, match="connect takes the path of a cluster file, got int"):
        wormspace.connect(3)  # type: ignore[arg-type]


def test_alloc_of_any_segment_still_finds_one_after_the_last_segment_is_taken() -> None:
    ws = Cluster.simulated(acceptors=3, seed=2, wos_size=8).client()
    last = 2**63 - 1
    assert ws.alloc(segment=last) is True
    assert ws.read(ws.address(last, 7)) is not None  # the last address is usable
    seg = ws.alloc(metadata=b"after")  # the hint (last + 1) lies beyond the space: searched from 0
    assert 0 <= seg < last and ws.check(seg) == b"after"


def test_every_public_error_survives_a_copy_and_a_pickle_with_its_attributes() -> None:
    import copy
    import pickle

    import wormspace

    for name in ("UsageError", "RemoteProtocolError", "CaptureStale", "Trimmed", "Unallocated", "Indeterminate",
                 "TrimmedInFlight", "PeersRefused", "ContractViolation"):
        err = getattr(wormspace, name)("what happened")
        for again in (copy.deepcopy(err), pickle.loads(pickle.dumps(err))):
            assert type(again) is type(err) and str(again) == "what happened"
    held = wormspace.AlreadyWritten(b"x")
    for again in (copy.copy(held), copy.deepcopy(held), pickle.loads(pickle.dumps(held))):
        assert type(again) is wormspace.AlreadyWritten
        assert again.data == b"x" and str(again) == "register already holds b'x'"  # data, not the message


def test_run_spawn_and_at_refuse_what_is_not_a_core_or_a_delay() -> None:
    import asyncio

    cluster = Cluster.simulated(acceptors=3, seed=6)
    ws = cluster.client()
    for junk in (3, [1, 2], None):
        with pytest.raises(UsageError, match="run takes a generator over the client API"):
            ws.run(junk)  # type: ignore[arg-type]
        with pytest.raises(UsageError, match="run takes a generator over the client API"):
            asyncio.run(ws.aio.run(junk))  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="spawn takes workload"):
        cluster.spawn(3)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="a workload returns a generator"):
        cluster.spawn(lambda logic: None)  # type: ignore[arg-type,return-value]
    for delay in (-1, float("nan"), float("inf"), "1", True):
        with pytest.raises(UsageError, match="non-negative number of virtual seconds"):
            cluster.at(delay, lambda: None)  # type: ignore[arg-type]
        with pytest.raises(UsageError, match="non-negative number of virtual seconds"):
            cluster.spawn(lambda logic: logic.sleep(1), at=delay)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="called with no arguments"):
        cluster.at(1.0, "crash")  # type: ignore[arg-type]
    assert ws.run(write_then_read(ws.logic, b"ok")) == b"ok"  # a core still runs
