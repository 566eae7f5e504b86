"""Acceptors that lie: well-formed replies that say something impossible (wor.py Rule 6, driver rule 8).

* The client core, fed each lie directly: a reply no honest acceptor sends is treated as lost (no effect, the
  operation unchanged) and reported; late replies of earlier phases stay ordinary (not reported).
* Over TCP, in process (loopback): a fake acceptor that does the hello right and then answers with crafted
  replies, in a group with a real ``AcceptorServer`` and an acceptor that is down (so the liar's reply is
  always needed for a quorum), and in a group with two real ones (so honest quorums exist). The client never
  crashes, ends every operation within its timers, never returns a value no honest acceptor voted for, and
  logs the lie naming the acceptor and its address.
* Chunked requests: a chunk's reply at another ballot is not laundered into a reply at the asked ballot.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from wormspace.identity import Identity
from wormspace.layers.acceptor import AcceptorNode, MemoryStorage
from wormspace.layers.effects import Send
from wormspace.layers.messages import (
    TRIM,
    ZERO_BALLOT,
    Accept,
    Accepted,
    Ballot,
    ErrorReply,
    Fenced,
    Message,
    Nack,
    Prepare,
    Promise,
    Read,
    ReadReply,
    Reply,
    Request,
    SegmentTrimmed,
    Vote,
)
from wormspace.layers.tcp import AcceptorServer, TcpTransport, chunk_fault, read_frame, read_hello, run
from wormspace.layers.wire import Hello, encode_frame, encode_hello
from wormspace.layers.wor import ClientCore, Config, Kind, OpRequest, Outcome, req_id
from wormspace.runtime.driver import AsyncTcpDriver

CID = "liar0123456789abcdef0123456789ab"
EVIL = b"evil"
B = Ballot(5, 1)

pytestmark = pytest.mark.timeout(120)


# ---- the client core, one lie at a time ----------------------------------------------------------------


def _core() -> tuple[ClientCore, list[tuple[int, Reply, str]]]:
    faults: list[tuple[int, Reply, str]] = []
    core = ClientCore(node_id=1, groups=[[0, 1, 2], [3, 4, 5]], on_fault=lambda s, m, w: faults.append((s, m, w)))
    return core, faults


def _sent(effects: list[Any]) -> Message:
    msgs = [e.msg for e in effects if isinstance(e, Send)]
    assert msgs
    return msgs[0]


def _capture(core: ClientCore, indices: tuple[int, ...] = (0,), segment: int = 0) -> Prepare:
    _, effects = core.start(OpRequest(kind=Kind.CAPTURE, segment=segment, indices=indices))
    p = _sent(effects)
    assert isinstance(p, Prepare)
    return p


def _write(core: ClientCore) -> Accept:
    _, effects = core.start(OpRequest(kind=Kind.WRITE, segment=0, values=((0, b"v"),), ballot=B))
    a = _sent(effects)
    assert isinstance(a, Accept)
    return a


def _read(core: ClientCore, indices: tuple[int, ...] = (0,)) -> Read:
    _, effects = core.start(OpRequest(kind=Kind.READ, segment=0, indices=indices))
    r = _sent(effects)
    assert isinstance(r, Read)
    return r


def _higher(b: Ballot) -> Ballot:
    return Ballot(b.number + 1, b.node)


def _lies() -> list[tuple[str, Callable[[ClientCore], tuple[int, Reply]]]]:
    """(name, make): ``make(core)`` starts an operation and returns a lying reply (and its sender) to it."""

    def promise(core: ClientCore, **kw: Any) -> Promise:
        p = _capture(core)
        fields: dict[str, Any] = {"req": p.req, "segment": 0, "ballot": p.ballot, "votes": (), **kw}
        if callable(fields["ballot"]):
            fields["ballot"] = fields["ballot"](p.ballot)
        if callable(fields["votes"]):
            fields["votes"] = fields["votes"](p.ballot)
        if callable(fields.get("floor")):
            fields["floor"] = fields["floor"](p.ballot)
        return Promise(**fields)

    def nack(core: ClientCore, promised: Callable[[Ballot], Ballot], accepted: Callable[[Ballot], Ballot]) -> Nack:
        p = _capture(core)
        return Nack(req=p.req, segment=0, ballot=p.ballot, promised=promised(p.ballot), accepted=accepted(p.ballot))

    def to_read(core: ClientCore, reply: Callable[[Read], Reply]) -> Reply:
        return reply(_read(core))

    return [
        ("vote for a register not asked",
         lambda c: (2, promise(c, votes=(Vote(index=7, ballot=Ballot(1, 9), value=EVIL),)))),
        ("read vote for a register not asked",
         lambda c: (2, to_read(c, lambda r: ReadReply(req=r.req, segment=0, votes=(Vote(index=9, ballot=B,
                                                                                          value=EVIL),))))),
        ("promise at another ballot", lambda c: (2, promise(c, ballot=_higher))),
        ("vote above the promised ballot",
         lambda c: (2, promise(c, votes=lambda b: (Vote(index=0, ballot=Ballot(b.number + 9, 9), value=EVIL),)))),
        ("floor above the promised ballot", lambda c: (2, promise(c, floor=_higher))),
        ("nack promising the asked ballot", lambda c: (2, nack(c, lambda b: b, lambda b: ZERO_BALLOT))),
        ("nack promising below the asked ballot",
         lambda c: (2, nack(c, lambda b: Ballot(b.number, b.node - 1), lambda b: ZERO_BALLOT))),
        ("nack voting above its promise",
         lambda c: (2, nack(c, lambda b: _higher(b), lambda b: Ballot(b.number + 5, 0)))),
        ("accepted at another ballot",
         lambda c: (2, (lambda a: Accepted(req=a.req, segment=0, ballot=_higher(a.ballot)))(_write(c)))),
        ("accepted answering a prepare",
         lambda c: (2, (lambda p: Accepted(req=p.req, segment=0, ballot=p.ballot))(_capture(c)))),
        ("read reply answering an accept",
         lambda c: (2, (lambda a: ReadReply(req=a.req, segment=0, votes=()))(_write(c)))),
        ("promise answering a read",
         lambda c: (2, to_read(c, lambda r: Promise(req=r.req, segment=0, ballot=B, votes=())))),
        ("fenced answering a read",
         lambda c: (2, to_read(c, lambda r: Fenced(req=r.req, segment=0, floor=B, promised=B)))),
        ("segment trimmed for another segment",
         lambda c: (2, to_read(c, lambda r: SegmentTrimmed(req=r.req, segment=1)))),
        ("segment trimmed for the trim register alone",
         lambda c: (2, (lambda p: SegmentTrimmed(req=p.req, segment=0))(_capture(c, (TRIM,))))),
        ("answer from outside the group",
         lambda c: (4, to_read(c, lambda r: ReadReply(req=r.req, segment=0, votes=())))),
        ("answer to a phase never sent",
         lambda c: (2, to_read(c, lambda r: ReadReply(req=r.req + 1, segment=0, votes=())))),
        ("answer to an operation never started",
         lambda c: (2, to_read(c, lambda r: ReadReply(req=r.req + (1000 << 16), segment=0, votes=())))),
    ]


LIES = _lies()


@pytest.mark.parametrize("make", [m for _, m in LIES], ids=[n for n, _ in LIES])
def test_the_core_treats_a_lie_as_lost_and_reports_it(make: Callable[[ClientCore], tuple[int, Reply]]) -> None:
    core, faults = _core()
    src, lie = make(core)
    before = dict(core.ops)
    assert core.on_reply(src, lie) == []
    assert core.ops == before  # nothing recorded: the reply is lost
    assert [(s, m) for s, m, _ in faults] == [(src, lie)] and core.faults == 1


def test_a_lie_from_a_group_that_the_op_was_not_sent_to_is_reported() -> None:
    """Another operation's request id, answered by an acceptor of the other group."""
    core, faults = _core()
    on_other = _read(core)  # segment 0: group [0, 1, 2]
    _capture(core, segment=1)  # group [3, 4, 5]
    assert core.on_reply(4, ReadReply(req=on_other.req, segment=0, votes=())) == []
    assert len(faults) == 1 and "not sent" in faults[0][2]


def test_late_and_repeated_honest_replies_are_not_reported() -> None:
    core, faults = _core()
    _, started = core.start(OpRequest(kind=Kind.PROPOSE, segment=0, values=((0, b"v"),)))
    p = _sent(started)
    assert isinstance(p, Prepare)
    promise = Promise(req=p.req, segment=0, ballot=p.ballot, votes=())
    for _ in range(100):
        core.on_reply(0, promise)  # repeated: recorded once
    effects = core.on_reply(1, promise)  # quorum: the Accept phase starts
    assert any(isinstance(e, Send) and isinstance(e.msg, Accept) for e in effects)
    core.on_reply(2, promise)  # late: an earlier phase
    acc = next(e.msg for e in effects if isinstance(e, Send))
    for a in (0, 1, 2, 0):
        core.on_reply(a, Accepted(req=acc.req, segment=0, ballot=p.ballot))  # the last two after the end
    assert not core.ops and faults == []


def test_an_error_reply_flood_is_refused_without_changing_the_operation() -> None:
    core, faults = _core()
    r = _read(core)
    before = dict(core.ops)
    for k in range(1000):
        core.on_reply(2, ErrorReply(req=r.req + 1 + k, segment=0, reason="x"))
    assert core.ops == before and len(faults) == 1000
    # one ErrorReply to the request itself is an honest refusal: recorded, not reported
    core.on_reply(2, ErrorReply(req=r.req, segment=0, reason="storage"))
    assert len(faults) == 1000 and core.ops != before


def test_a_vote_above_the_promise_is_not_adopted() -> None:
    """The lie that matters most: adopted, the invented value would be proposed at our ballot and chosen."""
    core, faults = _core()
    p = _capture(core)
    core.on_reply(0, Promise(req=p.req, segment=0, ballot=p.ballot, votes=()))
    lie = Promise(req=p.req, segment=0, ballot=p.ballot,
                  votes=(Vote(index=0, ballot=Ballot(p.ballot.number + 9, 9), value=EVIL),))
    effects = core.on_reply(2, lie)
    proposed = [e.msg for e in effects if isinstance(e, Send) and isinstance(e.msg, Accept)]
    assert not any(v == EVIL for m in proposed for _, v in m.values), "an invented vote was adopted"
    assert len(faults) == 1


# ---- over TCP: a fake acceptor ---------------------------------------------------------------------------

Lie = Callable[[Request, Reply], list[Message]]


class FakeAcceptor:
    """An acceptor that does the hello right, computes the honest reply with a real ``AcceptorNode`` and sends
    what ``lie(request, honest)`` makes of it instead."""

    def __init__(self, acceptor_id: int, lie: Lie) -> None:
        self.id = acceptor_id
        self.lie = lie
        self.node = AcceptorNode(acceptor_id, MemoryStorage())
        self.server: asyncio.Server | None = None
        self.port = 0
        self.requests = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            hello = await read_hello(reader, None, 5)
            writer.write(encode_hello(Hello(cluster_id=CID, acceptor_id=self.id, incarnation=1, pid=os.getpid(),
                                            echo=hello.nonce, max_registers=1 << 20)))
            while (msgs := await read_frame(reader, None)) is not None:
                out: list[Message] = []
                for m in msgs:
                    assert isinstance(m, (Prepare, Accept, Read))
                    self.requests += 1
                    out.extend(self.lie(m, self.node.answer(0, m)))
                if out:
                    writer.write(encode_frame(out))
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def _unchecked(cls: type, **fields: Any) -> Any:
    """A message built without its constructor's validation (to put an invalid one on the wire)."""
    m: Any = object.__new__(cls)
    for k, v in fields.items():
        object.__setattr__(m, k, v)
    return m


def _as(honest: Reply, **changes: Any) -> Reply:
    return replace(honest, **changes)


def _evil_vote(req: Request, honest: Reply) -> list[Message]:
    if isinstance(honest, Promise) and isinstance(req, Prepare):
        high = Ballot(req.ballot.number + 9, 9)
        return [_as(honest, votes=tuple(Vote(index=i, ballot=high, value=EVIL) for i in req.indices))]
    return [honest]


TCP_LIES: dict[str, Lie] = {
    "vote above the promise": _evil_vote,
    "votes for registers not asked": lambda req, h: [
        _as(h, votes=(*h.votes, Vote(index=999, ballot=Ballot(1, 9), value=EVIL)))
        if isinstance(h, (Promise, ReadReply)) else h],
    "duplicate votes for one index": lambda req, h: [
        _unchecked(type(h), **{**{f: getattr(h, f) for f in h.__dataclass_fields__},
                               "votes": (Vote(index=0, ballot=Ballot(1, 9), value=EVIL),) * 2})
        if isinstance(h, (Promise, ReadReply)) else h],
    "promise and accepted at another ballot": lambda req, h: [
        _as(h, ballot=_higher(h.ballot)) if isinstance(h, (Promise, Accepted)) else h],
    "nack not above the ballot": lambda req, h: [
        Nack(req=req.req, segment=req.segment, ballot=req.ballot, promised=req.ballot)
        if isinstance(req, (Prepare, Accept)) else h],
    "wrong kinds": lambda req, h: [
        Accepted(req=req.req, segment=req.segment, ballot=req.ballot) if isinstance(req, Prepare)
        else ReadReply(req=req.req, segment=req.segment, votes=()) if isinstance(req, Accept)
        else Fenced(req=req.req, segment=req.segment, floor=B, promised=B)],
    "unknown and other requests' ids": lambda req, h: [
        _as(h, req=req.req + 1), _as(h, req=req.req + (5000 << 16)), _as(h, req=(1 << 62) + 7)],
    "segment trimmed for another segment": lambda req, h: [SegmentTrimmed(req=req.req, segment=req.segment + 1)],
    "repeated replies": lambda req, h: [h] * 200,
    "error reply flood": lambda req, h: [
        *(ErrorReply(req=req.req + k, segment=req.segment, reason="flood") for k in range(1, 300)), h],
}


def _scenario(lie: Lie, *, honest_up: int) -> tuple[list[Any], dict[int, int], int]:
    """Acceptors 0 and (if ``honest_up == 2``) 1 are real, 1 is otherwise down, 2 lies. A client writes and reads
    segment 3 and batch-writes and reads segment 5; returns the outcomes, the driver's faults, the liar's port."""

    async def go() -> tuple[list[Any], dict[int, int], int]:
        servers = [AcceptorServer(AcceptorNode(i, MemoryStorage()), "127.0.0.1", 0,
                                  identity=Identity(cluster_id=CID, acceptor_id=i)) for i in range(honest_up)]
        for s in servers:
            await s.start()
        fake = FakeAcceptor(2, lie)
        await fake.start()
        peers = {i: ("127.0.0.1", s.port) for i, s in enumerate(servers)}
        if honest_up == 1:
            down = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
            peers[1] = ("127.0.0.1", down.sockets[0].getsockname()[1])
            down.close()
            await down.wait_closed()  # nothing listens there any more
        peers[2] = ("127.0.0.1", fake.port)
        drv = AsyncTcpDriver(peers, groups=[[0, 1, 2]], cluster_id=CID, node_id=1,
                             config=Config(timeout=0.05, max_resends=2, max_rounds=3))
        outs: list[Any] = []
        try:
            cap = await asyncio.wait_for(drv.execute_async(OpRequest(kind=Kind.CAPTURE, segment=3, indices=(0,))), 30)
            outs.append(cap)
            if cap.error is None:
                w = OpRequest(kind=Kind.WRITE, segment=3, values=((0, b"good"),), ballot=cap.ballot)
                outs.append(await asyncio.wait_for(drv.execute_async(w), 30))
            rd = OpRequest(kind=Kind.READ, segment=3, indices=(0,))
            outs.append(await asyncio.wait_for(drv.execute_async(rd), 30))
            pr = OpRequest(kind=Kind.PROPOSE, segment=5, values=tuple((i, b"p%d" % i) for i in range(4)))
            outs.append(await asyncio.wait_for(drv.execute_async(pr), 30))
            rd = OpRequest(kind=Kind.READ, segment=5, indices=(0, 1, 2, 3, 4))  # 4 never written
            outs.append(await asyncio.wait_for(drv.execute_async(rd), 30))
            return outs, dict(drv.faults), fake.port
        finally:
            await drv.aclose()
            await fake.close()
            for s in servers:
                await s.close()

    return run(go())


def _honest_values(outs: list[Outcome]) -> set[bytes]:
    return {v for o in outs for _, v in o.chosen}


@pytest.mark.parametrize("name", list(TCP_LIES))
def test_a_lying_acceptor_beside_an_honest_one_and_one_down(name: str, caplog: pytest.LogCaptureFixture) -> None:
    """Every quorum needs the liar: operations end within their timers, nothing the liar invented is
    returned, and the lie is logged naming acceptor 2 and its address (or the connection is refused)."""
    caplog.set_level(logging.WARNING)
    outs, faults, port = _scenario(TCP_LIES[name], honest_up=1)
    assert EVIL not in _honest_values(outs)
    for o in outs:
        assert all(v in (b"good", b"p0", b"p1", b"p2", b"p3") for _, v in o.chosen), o
    if name != "repeated replies":
        text = caplog.text
        assert f"acceptor 2 at 127.0.0.1:{port}" in text or f"refused peer 2 at 127.0.0.1:{port}" in text, text
    if name not in ("repeated replies", "duplicate votes for one index"):
        assert faults.get(2, 0) > 0
    if name == "error reply flood":  # hundreds of lies, logged at most once every 10 s (a run takes ~10 ms)
        lines = [r for r in caplog.records if r.getMessage().startswith("acceptor 2 at")]
        assert faults[2] >= 299 and 1 <= len(lines) <= 1 + faults[2] // 100, (faults, len(lines))


@pytest.mark.parametrize("name", list(TCP_LIES))
def test_a_lying_acceptor_beside_two_honest_ones(name: str) -> None:
    """Honest quorums exist: every operation succeeds with the true values, whatever the liar says."""
    outs, _, _ = _scenario(TCP_LIES[name], honest_up=2)
    assert all(o.error is None for o in outs), outs
    _, write, read, _, batch = outs
    assert write.chosen_map() == {0: b"good"} and read.chosen_map() == {0: b"good"}
    assert batch.chosen_map() == {i: b"p%d" % i for i in range(4)} and batch.empty == (4,)


def test_the_fake_acceptor_is_honest_without_a_lie() -> None:
    """Control: with the liar telling the truth, every operation of the one-down scenario succeeds."""
    outs, faults, _ = _scenario(lambda req, h: [h], honest_up=1)
    assert all(o.error is None for o in outs) and faults == {}
    assert outs[2].chosen_map() == {0: b"good"}


# ---- chunked requests ------------------------------------------------------------------------------------


def test_chunk_fault_names_replies_of_another_kind_or_ballot() -> None:
    p = Prepare(req=1, segment=0, indices=(0, 1), ballot=B)
    assert chunk_fault(p, Promise(req=9, segment=0, ballot=B, votes=())) is None
    assert chunk_fault(p, Promise(req=9, segment=0, ballot=_higher(B), votes=())) is not None
    assert chunk_fault(p, Accepted(req=9, segment=0, ballot=B)) is not None
    assert chunk_fault(Read(req=1, segment=0, indices=(0,)), Accepted(req=9, segment=0, ballot=B)) is not None
    a = Accept(req=1, segment=0, ballot=B, values=((0, b""),))
    assert chunk_fault(a, Accepted(req=9, segment=0, ballot=B)) is None


def _chunked(lie: Lie) -> tuple[list[Message], list[str]]:
    """Two Prepares of four registers each, sent to a fake acceptor whose hello is then taken to allow two
    registers a request (so each goes as two chunks); the replies delivered and the lies reported."""

    async def go() -> tuple[list[Message], list[str]]:
        fake = FakeAcceptor(0, lie)
        await fake.start()
        got: list[Message] = []
        why: list[str] = []
        t = TcpTransport({0: ("127.0.0.1", fake.port)}, lambda s, m: got.append(m), cluster_id=CID,
                         on_fault=lambda s, m, w: why.append(w))
        try:
            t.send(0, Read(req=77, segment=0, indices=(0,)))  # connects; the hello states the limit
            for _ in range(200):
                if got:
                    break
                await asyncio.sleep(0.01)
            peer = t.peers[0]
            assert peer.hello is not None
            peer.hello = replace(peer.hello, max_registers=2)
            t.send(0, Prepare(req=78, segment=0, indices=(0, 1, 2, 3), ballot=B))  # two chunks
            t.send(0, Prepare(req=79, segment=0, indices=(4, 5, 6, 7), ballot=B))
            for _ in range(100):
                await asyncio.sleep(0.01)
                if len(why) >= 2 or len(got) >= 3:
                    break
            await asyncio.sleep(0.05)
            return got, why
        finally:
            await t.close()
            await fake.close()

    return run(go())


def test_honest_chunk_replies_are_merged() -> None:
    got, why = _chunked(lambda req, h: [h])
    assert [type(m) for m in got] == [ReadReply, Promise, Promise] and why == []


def test_a_lie_in_one_chunk_loses_the_merged_reply() -> None:
    """One chunk's Promise is at another ballot (merged, it would have taken the asked ballot): the merged
    reply is lost and the lie reported."""

    def lie(req: Request, h: Reply) -> list[Message]:
        if isinstance(h, Promise) and req.req % 2:
            return [_as(h, ballot=_higher(h.ballot))]
        return [h]

    got, why = _chunked(lie)
    assert [type(m) for m in got] == [ReadReply], got  # neither Prepare's merged reply is delivered
    assert len(why) == 2 and all("ballot" in w for w in why)


def test_chunk_replies_that_merge_to_no_valid_reply_are_lost() -> None:
    """Each chunk's Promise reports a vote for the Prepare's first register: merged, two votes for one index."""

    def lie(req: Request, h: Reply) -> list[Message]:
        if isinstance(h, Promise) and isinstance(req, Prepare):
            first = 0 if req.indices[0] < 4 else 4
            return [_as(h, votes=(Vote(index=first, ballot=Ballot(1, 0), value=EVIL),))]
        return [h]

    got, why = _chunked(lie)
    assert [type(m) for m in got] == [ReadReply], got
    assert len(why) == 2 and all("merge to no valid reply" in w for w in why)


def test_req_ids_of_the_scenarios_stay_below_the_chunk_range() -> None:
    assert req_id(5000, 1) < 1 << 62


# ---- honest acceptors are never taken for liars -----------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_honest_acceptors_on_a_faulty_network_are_never_reported(seed: int) -> None:
    """Contention, drops, duplicates, reordering, a crash and a trim on the simulator: late, repeated and
    refused replies are all ordinary; not one is reported as a lie."""
    from wormspace import Cluster, WormSpaceError
    from wormspace.client import OpGen, SpaceLogic
    from wormspace.layers.network import Faults

    cluster = Cluster.simulated(acceptors=3, seed=seed, faults=Faults(drop=0.1, duplicate=0.2, max_delay=0.02))
    done: list[int] = []
    ended: list[str] = []  # the operations that returned (not vacuous)

    def worker(logic: SpaceLogic, k: int) -> OpGen[None]:
        with contextlib.suppress(WormSpaceError):
            yield from logic.alloc(1, b"shared")  # one worker wins it; all use it
        for _ in range(3):
            try:
                addr = logic.address(1, 0)  # every worker contends for one register
                cap = yield from logic.capture(addr)
                yield from logic.write(addr, b"w%d" % k, cap)
                ended.append("write")
            except WormSpaceError:
                pass
            try:
                yield from logic.read(logic.address(1, 0))
                seg = yield from logic.alloc_any(b"w%d" % k)
                cap = yield from logic.batch_capture(seg)
                yield from logic.batch_write(seg, {i: b"%d" % i for i in range(5)}, cap)
                yield from logic.batch_read(seg)
                yield from logic.trim(seg)
                ended.append("batch")
                yield from logic.read(logic.address(seg, 2))
            except WormSpaceError:
                pass
        done.append(k)

    for k in range(4):
        cluster.spawn(functools.partial(worker, k=k))
    cluster.at(0.05, lambda: cluster.crash(1))
    cluster.at(0.4, lambda: cluster.restart(1))
    cluster.run()
    assert sorted(done) == [0, 1, 2, 3] and not cluster.failures, cluster.failures
    assert "write" in ended and ended.count("batch") >= 4, ended
    assert [c.core.faults for c in cluster.clients] == [0] * len(cluster.clients)
