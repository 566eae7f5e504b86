"""Each app face checks the client it is given: the other kind of client, or no client, is a UsageError
naming the face that fits, raised when the app object is made."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from wormspace import Cluster, UsageError
from wormspace.apps import WormKV, WormLog, WormPaxos, WormTX
from wormspace.apps.kv import AsyncWormKV
from wormspace.apps.log import AsyncWormLog
from wormspace.apps.paxos import AsyncWormPaxos
from wormspace.apps.tx import AsyncWormTX
from wormspace.client import AsyncClient


def _echo(cmd: bytes) -> bytes:
    return cmd


SYNC: dict[str, Callable[[Any], object]] = {
    "WormLog": lambda ws: WormLog(ws, name=b"l"),
    "WormPaxos": lambda ws: WormPaxos(ws, _echo, name=b"p"),
    "WormKV": lambda ws: WormKV(ws, name=b"k"),
    "WormTX": lambda ws: WormTX(ws),
}
ASYNC: dict[str, Callable[[Any], object]] = {
    "WormLog": lambda a: AsyncWormLog(a, name=b"l"),
    "WormPaxos": lambda a: AsyncWormPaxos(a, _echo, name=b"p"),
    "WormKV": lambda a: AsyncWormKV(a, name=b"k"),
    "WormTX": lambda a: AsyncWormTX(a),
}


class _NoDriver:
    async def execute(self, request: object) -> object:  # never called: construction only
        raise AssertionError("no operation runs in these tests")


@pytest.fixture
def ws() -> Any:
    return Cluster.simulated(acceptors=3, seed=1).client()


@pytest.mark.parametrize("app", sorted(SYNC))
def test_a_sync_face_takes_a_sync_client(app: str, ws: Any) -> None:
    SYNC[app](ws)


@pytest.mark.parametrize("app", sorted(SYNC))
def test_a_sync_face_given_an_asyncio_client_names_the_asyncio_face(app: str, ws: Any) -> None:
    aclient = AsyncClient(ws.logic, _NoDriver())  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=f"{app} takes a synchronous client.*use Async{app}"):
        SYNC[app](aclient)


@pytest.mark.parametrize("app", sorted(ASYNC))
def test_an_asyncio_face_given_a_sync_client_names_the_sync_face(app: str, ws: Any) -> None:
    with pytest.raises(UsageError, match=f"Async{app} takes an asyncio client.*use {app}"):
        ASYNC[app](ws)


@pytest.mark.parametrize("app", sorted(SYNC))
@pytest.mark.parametrize("junk", [None, b"ws", 3])
def test_no_client_at_all_is_a_usage_error(app: str, junk: object) -> None:
    with pytest.raises(UsageError, match=r"not (NoneType|bytes|int)"):
        SYNC[app](junk)
    with pytest.raises(UsageError, match=r"not (NoneType|bytes|int)"):
        ASYNC[app](junk)


def test_an_asyncio_face_takes_an_asyncio_client(ws: Any) -> None:
    aclient = AsyncClient(ws.logic, _NoDriver())  # type: ignore[arg-type]
    for make in ASYNC.values():
        make(aclient)


def test_every_app_runs_on_the_asyncio_twin_of_a_simulated_client() -> None:
    import asyncio

    cluster = Cluster.simulated(acceptors=3, seed=11)
    ws1, ws2 = cluster.client(), cluster.client()
    applied: list[bytes] = []

    def apply(cmd: bytes) -> bytes:
        applied.append(cmd)
        return b"%d" % len(applied)

    log, other = WormLog(ws1, name=b"l"), WormLog(ws2, name=b"l")
    kv, kv2 = WormKV(ws1, name=b"k"), WormKV(ws2, name=b"k")
    rep = WormPaxos(ws1, apply, name=b"p", policy="rotating")
    follower: list[bytes] = []

    def follow(cmd: bytes) -> bytes:
        follower.append(cmd)
        return b""

    rep2 = WormPaxos(ws2, follow, name=b"p", policy="rotating")

    async def main() -> None:
        cluster.crash(2)
        positions = await asyncio.gather(*(log.aio.append(b"%d" % i) for i in range(4)))
        assert len(set(positions)) == 4
        cluster.restart(2)
        cluster.partition({0}, {1, 2})
        assert [other.read(p) for p in positions] == [b"0", b"1", b"2", b"3"]
        assert await kv.aio.cas(b"a", None, b"1") is True
        assert await kv.aio.cas(b"a", None, b"2") is False
        assert kv2.get(b"a") == b"1"
        assert await asyncio.gather(*(rep.aio.submit(b"c%d" % i) for i in range(3))) == [b"1", b"2", b"3"]
        cluster.heal()
        assert rep2.sync() == 3 and follower == applied
        tx = AsyncWormTX(ws2.aio)
        t = await tx.begin(participants=2)
        before = cluster.net.now
        voted, decided = await asyncio.gather(tx.vote(t, 0, True), tx.decide(t, wait=1.0))
        assert voted is True and decided is False  # participant 1 stayed silent: ABORT written after the wait
        assert cluster.net.now - before >= 1.0  # the wait ran on the cluster's virtual clock

    asyncio.run(main())
    assert not cluster.failures


def test_an_oversized_entry_is_refused_before_anything_is_sent_or_recorded() -> None:
    from wormspace.apps.history import AppHistory

    cluster = Cluster.simulated(acceptors=3, seed=12)
    history = AppHistory.of(cluster)
    ws = cluster.client()
    limit = ws.logic.max_value
    log = WormLog(ws, name=b"l", history=history)
    kv = WormKV(ws, name=b"k", history=history)
    rep = WormPaxos(ws, _echo, name=b"p", history=history)
    with pytest.raises(UsageError, match=f"an entry is at most {limit - 1} bytes, got {limit}"):
        log.append(b"x" * limit)
    with pytest.raises(UsageError, match=r"a command is at most \d+ bytes, got"):
        rep.submit(b"x" * limit)
    with pytest.raises(UsageError, match=r"a put \(its key and value encoded\) is at most"):
        kv.put(b"k", b"x" * limit)
    with pytest.raises(UsageError, match=r"a cas \(its key and values encoded\) is at most"):
        kv.cas(b"k", None, b"x" * limit)
    assert history.events == [] and len(cluster.history()) == 0  # nothing recorded, nothing sent
    assert log.append(b"x" * (limit - 1)) == 0  # the largest entry fits


def test_an_app_history_of_a_simulated_cluster_is_on_its_virtual_clock() -> None:
    """``AppHistory.of(cluster)`` times events on the cluster's clock: the virtual one of a simulated cluster,
    the same clock as the cluster's own WOR-level history, so the two can be read side by side."""
    from wormspace.apps.history import AppHistory

    c = Cluster.simulated(acceptors=3, seed=1)
    hist = AppHistory.of(c)
    log = WormLog(c.client(), b"clock", history=hist)
    log.append(b"a")
    log.append(b"b")
    times = [e["time"] for e in hist.events]
    wor_times = [e.time for e in c.history()]
    assert len(times) == 4 and times == sorted(times)
    assert wor_times[0] <= times[-1] <= int(c.net.now * 1e9)
    assert times[0] <= wor_times[0] and times[-1] >= wor_times[-1]


@pytest.mark.parametrize(("sync_face", "async_face"), [
    (WormLog, AsyncWormLog), (WormKV, AsyncWormKV), (WormPaxos, AsyncWormPaxos), (WormTX, AsyncWormTX),
])
def test_the_asyncio_face_takes_what_the_synchronous_face_takes(sync_face: type, async_face: type) -> None:
    """Each method of an app's synchronous face has its namesake on the asyncio face with the same
    parameters and the same defaults (``decide(t, wait=1.0)`` means the same wait on both)."""
    import inspect

    methods = [n for n, f in vars(sync_face).items() if callable(f) and not n.startswith("_")]
    assert methods
    for name in methods:
        assert hasattr(async_face, name), f"{async_face.__name__} has no {name}"
        mine = inspect.signature(getattr(sync_face, name)).parameters
        theirs = inspect.signature(getattr(async_face, name)).parameters
        shape = [(p.name, p.kind, p.default) for p in mine.values()]
        assert shape == [(p.name, p.kind, p.default) for p in theirs.values()], name


def test_an_app_history_follows_its_rules_for_processes_errors_and_json_lines(tmp_path: Path) -> None:
    """Rules 2 and 5 of ``wormspace.apps.history``: one open operation per process (a second one, or one on a
    process whose operation ended ``info``, runs under ``process + k * PROCESS_STRIDE``); ``error`` only on
    completions that have one; ``to_jsonl``/``write`` give one JSON object per event."""
    import json

    from wormspace.apps.history import PROCESS_STRIDE, AppHistory

    ticks = iter(range(100))
    h = AppHistory(clock=lambda: next(ticks))
    a = h.invoke(7, "kv", b"m", "read", "aw==", None)
    b = h.invoke(7, "kv", b"m", "read", "aw==", None)  # 7 has an operation open
    assert (a, b) == (7, 7 + PROCESS_STRIDE)
    h.complete(a, "ok", value=None)
    h.complete(b, "fail", error="Trimmed")
    assert h.invoke(7, "kv", b"m", "write", "aw==", "dg==") == 7  # 7 is free again
    h.complete(7, "info", error="Indeterminate")
    assert h.invoke(7, "kv", b"m", "read", "aw==", None) == 7 + PROCESS_STRIDE  # 7 crashed: never again
    ends = [e for e in h.events if e["type"] != "invoke"]
    assert ["error" in e for e in ends] == [False, True, True]
    assert [e.get("error") for e in ends] == [None, "Trimmed", "Indeterminate"]
    lines = h.to_jsonl().splitlines()
    assert [json.loads(line) for line in lines] == h.events and len(lines) == 7
    h.write(tmp_path / "app.jsonl")
    assert (tmp_path / "app.jsonl").read_text() == h.to_jsonl()


@pytest.mark.parametrize("raised", ["Indeterminate", "Trimmed", "RuntimeError"])
def test_a_recorded_operation_that_raises_is_recorded_and_raises_the_same(raised: str) -> None:
    """``recorded`` (Rule 4): an operation that ends in an exception completes its event (``info`` for an
    indeterminate or unexpected end, ``fail`` for a read's outcome) and the caller gets that same exception."""
    from collections.abc import Generator

    from wormspace.apps.history import AppHistory, recorded
    from wormspace.client import Indeterminate, Trimmed

    error: Exception = {"Indeterminate": Indeterminate("gave up"), "Trimmed": Trimmed("trimmed"),
                        "RuntimeError": RuntimeError("a bug")}[raised]

    def failing() -> Generator[Any, Any, bytes]:
        yield from ()
        raise error

    h = AppHistory(clock=lambda: 0)
    with pytest.raises(type(error)) as caught:
        list(recorded(h, 3, ("kv", b"m", "read", "aw==", None), failing(), lambda r: ("ok", None, r)))
    assert caught.value is error
    end = h.events[-1]
    assert (end["type"], end["error"]) == {"Indeterminate": ("info", "Indeterminate"), "Trimmed": ("fail", "Trimmed"),
                                           "RuntimeError": ("info", "Indeterminate")}[raised]


@pytest.mark.parametrize("bad", ["1", True, 1.0, -1])
def test_trim_applied_takes_a_non_negative_int_and_says_so(ws: Any, bad: object) -> None:
    rep = WormPaxos(ws, _echo, name=b"p")
    rep.submit(b"c")
    with pytest.raises(UsageError, match="upto is a non-negative int"):
        rep.trim_applied(bad)  # type: ignore[arg-type]
    assert rep.applied == 1 and rep.submit(b"d") == b"d"  # nothing changed


@pytest.mark.parametrize("arg", ["replica", "replicas"])
@pytest.mark.parametrize("bad", ["0", 1.0, True, None])
def test_a_replica_option_of_another_type_is_a_usage_error_naming_it(ws: Any, arg: str, bad: object) -> None:
    for make in (lambda: WormPaxos(ws, _echo, name=b"p", **{arg: bad}),  # type: ignore[arg-type]
                 lambda: WormKV(ws, name=b"k", **{arg: bad}),  # type: ignore[arg-type]
                 lambda: AsyncWormKV(ws.aio, name=b"k", **{arg: bad})):  # type: ignore[arg-type]
        with pytest.raises(UsageError, match=f"{arg} is an int, got"):
            make()
