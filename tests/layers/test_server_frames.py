"""The acceptor server's frame path and the client driver's timers, in process (loopback only).

* Frames of one connection that are whole when its bytes arrive are answered together: one transaction for
  their requests, replies in the order of the requests.
* A phase timer that outlives its phase (the reply came) never wakes the driver's loop: after operations end,
  the one loop timer fires once, at the earliest deadline, and drops every entry of an ended operation.
* A phase timer of an operation still running does fire: an acceptor that never answers makes the operation
  end ``Indeterminate`` after its rounds; a lost request is resent when it fires.
* A phase timer is held while the acceptor it waits for is visibly at work on the phase (driver rule 7): a
  reply arriving slowly is waited for, not resent; a reply that stalls times out after ``MAX_HOLD``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wormspace.identity import Identity
from wormspace.layers.acceptor import AcceptorNode, MemoryStorage
from wormspace.layers.effects import Persist
from wormspace.layers.messages import Accept, Accepted, Ballot, Prepare, Promise, Read, ReadReply, Vote
from wormspace.layers.tcp import DIGEST_FROM, AcceptorServer, TcpTransport, read_frame, read_hello, run
from wormspace.layers.wire import NONCE_LEN, Hello, encode_frame, encode_hello
from wormspace.layers.wor import Config, Kind, OpRequest, Outcome
from wormspace.runtime import driver as driver_module
from wormspace.runtime.driver import AsyncTcpDriver

CID = "0123456789abcdef0123456789abcdef"
IDENT = Identity(cluster_id=CID, acceptor_id=0)


class CommitLog(MemoryStorage):
    """A storage with ``group()`` like SqliteStorage's: records every commit and what it applied."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self._open = 0

    @contextlib.contextmanager
    def group(self) -> Iterator[None]:
        self._open += 1
        try:
            yield
        finally:
            self._open -= 1
            self.events.append("commit")

    def apply(self, persist: Persist) -> None:
        assert self._open, "a change applied outside a transaction"
        self.events.append("apply")
        super().apply(persist)


def test_frames_that_arrive_together_share_one_transaction() -> None:
    storage = CommitLog()
    b = Ballot(3, 1)

    async def scenario() -> list[object]:
        server = AcceptorServer(AcceptorNode(0, storage), "127.0.0.1", 0, identity=IDENT)
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(encode_hello(Hello(cluster_id=CID, acceptor_id=None, nonce=os.urandom(NONCE_LEN))))
            await read_hello(reader, None, 5)
            frames = [
                encode_frame([Prepare(req=1, segment=7, indices=(0, 1), ballot=b)]),
                encode_frame([Accept(req=2, segment=7, ballot=b, values=((0, b"x"),))]),
                encode_frame([Read(req=3, segment=7, indices=(0,))]),
            ]
            writer.write(b"".join(frames))  # one write: the three frames arrive together
            await writer.drain()
            got: list[object] = []
            while len(got) < 3:
                msgs = await asyncio.wait_for(read_frame(reader, None), 5)
                got += msgs or []
            writer.close()
            assert server.frames == 3 and server.messages == 3
            return got
        finally:
            await server.close()

    replies = run(scenario())
    assert replies == [
        Promise(req=1, segment=7, ballot=b, votes=()),
        Accepted(req=2, segment=7, ballot=b),
        ReadReply(req=3, segment=7, votes=(Vote(index=0, ballot=b, value=b"x"),)),
    ]
    assert storage.events == ["apply", "apply", "commit"], "one transaction for the frames that came together"


def test_timers_of_ended_operations_do_not_stay_on_the_loop() -> None:
    async def scenario() -> None:
        server = AcceptorServer(AcceptorNode(0, MemoryStorage()), "127.0.0.1", 0, identity=IDENT)
        await server.start()
        driver = AsyncTcpDriver({0: ("127.0.0.1", server.port)}, groups=[[0]], cluster_id=CID,
                                config=Config(timeout=0.05))
        try:
            for i in range(20):
                out = await driver.execute_async(OpRequest(kind=Kind.READ, segment=1, indices=(i,)))
                assert out.error is None
            # Past every deadline (a later round's timer is at most 8 x 0.05 s): the one loop timer fired at the
            # earliest and dropped every entry of an ended operation.
            await asyncio.sleep(0.5)
            assert driver._timer is None and driver._timers == []
        finally:
            await driver.aclose()
            await server.close()

    run(scenario())


def test_the_timer_sweep_keeps_no_entry_of_an_ended_operation() -> None:
    """Rule 6 without waiting for a deadline: whenever the phase timers are looked at (here before any is due),
    every entry of an operation that has ended is dropped and no loop timer stays set for one."""

    async def scenario() -> None:
        server = AcceptorServer(AcceptorNode(0, MemoryStorage()), "127.0.0.1", 0, identity=IDENT)
        await server.start()
        driver = AsyncTcpDriver({0: ("127.0.0.1", server.port)}, groups=[[0]], cluster_id=CID,
                                config=Config(timeout=30))
        try:
            for i in range(5):
                out = await driver.execute_async(OpRequest(kind=Kind.READ, segment=1, indices=(i,)))
                assert out.error is None
            assert driver._timers  # the phase timers outlive their phases, as nearly every one does
            driver._on_timers()
            assert driver._timers == [] and driver._timer is None
        finally:
            await driver.aclose()
            await server.close()

    run(scenario())


def test_the_timer_of_a_running_operation_fires() -> None:
    async def scenario() -> None:
        silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # accepts, never answers
        port = silent.sockets[0].getsockname()[1]
        driver = AsyncTcpDriver({0: ("127.0.0.1", port)}, groups=[[0]], cluster_id=CID,
                                config=Config(timeout=0.02, max_resends=1, max_rounds=1, max_backoff=1))
        try:
            out = await asyncio.wait_for(
                driver.execute_async(OpRequest(kind=Kind.READ, segment=1, indices=(0,))), 10
            )
            assert out.error == "Indeterminate"
        finally:
            await driver.aclose()
            silent.close()

    run(scenario())


def test_a_lost_request_is_resent_when_its_phase_timer_fires_and_later_operations_still_go_out() -> None:
    """An acceptor that loses the first request it gets (a dropped frame): the phase timer fires, the retry
    leaves at once and is answered; the driver's next operation goes out and ends as well."""
    seen: list[int] = []

    async def forgetful(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = await read_hello(reader, None, 5)
        writer.write(encode_hello(Hello(cluster_id=CID, acceptor_id=0, nonce=os.urandom(NONCE_LEN),
                                        echo=hello.nonce, max_registers=64)))
        while (msgs := await read_frame(reader, None)) is not None:
            for m in msgs:
                assert isinstance(m, Read)
                seen.append(m.req)
                if len(seen) > 1:
                    writer.write(encode_frame([ReadReply(req=m.req, segment=m.segment, votes=())]))

    async def scenario() -> list[Outcome]:
        server = await asyncio.start_server(forgetful, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        driver = AsyncTcpDriver({0: ("127.0.0.1", port)}, groups=[[0]], cluster_id=CID,
                                config=Config(timeout=0.2, max_resends=5, max_rounds=1, max_backoff=1))
        try:
            outs = []
            for i in range(2):
                read = OpRequest(kind=Kind.READ, segment=1, indices=(i,))
                outs.append(await asyncio.wait_for(driver.execute_async(read), 20))
            return outs
        finally:
            await driver.aclose()
            server.close()

    outs = run(scenario())
    assert [o.error for o in outs] == [None, None], outs
    assert len(seen) >= 3  # the lost request, its resend, the second operation's request


# ---- driver rule 7: a phase timer measures silence, not size --------------------------------------------

VALUE = b"v" * 200_000


def dribbling_acceptor(chunks: int, pause: float) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
    """An acceptor 0 that answers the hello, then answers the first Read with a vote of ``VALUE`` for every
    register asked, its reply frame sent in ``chunks`` pieces ``pause`` seconds apart (a large reply on a slow
    link); later frames (resends) are read and ignored. ``chunks`` 0: the reply never ends."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hello = await read_hello(reader, None, 5)
        writer.write(encode_hello(Hello(cluster_id=CID, acceptor_id=0, nonce=os.urandom(NONCE_LEN),
                                        echo=hello.nonce, max_registers=64)))
        msgs = await read_frame(reader, None) or []
        read = msgs[0]
        assert isinstance(read, Read)
        votes = tuple(Vote(index=i, ballot=Ballot(1, 1), value=VALUE) for i in read.indices)
        frame = encode_frame([ReadReply(req=read.req, segment=read.segment, votes=votes)])
        if not chunks:  # a stalled reply: its first bytes, then nothing more, the connection kept open
            writer.write(frame[:100])
            await _drain_frames(reader)
            return
        step = len(frame) // chunks + 1
        drain = asyncio.ensure_future(_drain_frames(reader))
        try:
            for i in range(0, len(frame), step):
                writer.write(frame[i : i + step])
                await writer.drain()
                await asyncio.sleep(pause)
        finally:
            drain.cancel()

    return handle


async def _drain_frames(reader: asyncio.StreamReader) -> None:
    while await read_frame(reader, None) is not None:
        pass


async def read_through(handle: Callable[..., Any], config: Config) -> tuple[Outcome, int]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    driver = AsyncTcpDriver({0: ("127.0.0.1", port)}, groups=[[0]], cluster_id=CID, config=config)
    try:
        out = await asyncio.wait_for(driver.execute_async(OpRequest(kind=Kind.READ, segment=1, indices=(0, 1))), 30)
        assert driver._transport is not None
        return out, driver._transport.messages_sent
    finally:
        await driver.aclose()
        server.close()


TIGHT = Config(timeout=0.02, max_resends=1, max_rounds=1, max_backoff=1)


def test_a_reply_still_arriving_holds_the_phase_timer() -> None:
    """The reply (~400 KB) takes ~0.5 s to arrive, 25 times the phase timer: the read ends with the values,
    and the request was sent once (no resend of the same bytes while the answer is on its way)."""
    out, sent = run(read_through(dribbling_acceptor(chunks=50, pause=0.01), TIGHT))
    assert out.error is None and dict(out.chosen) == {0: VALUE, 1: VALUE}
    assert sent == 1


def test_a_reply_that_stalls_times_out_after_the_longest_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule 7 is bounded: a peer that starts a reply and never ends it cannot hold an operation for ever."""
    monkeypatch.setattr(driver_module, "MAX_HOLD", 0.3)
    out, _ = run(read_through(dribbling_acceptor(chunks=0, pause=0.05), TIGHT))
    assert out.error == "Indeterminate"


def test_a_large_frame_opens_a_digest_window_and_small_ones_do_not() -> None:
    async def scenario() -> tuple[bool, bool]:
        server = AcceptorServer(AcceptorNode(0, MemoryStorage()), "127.0.0.1", 0, identity=IDENT)
        await server.start()
        got: list[object] = []
        t = TcpTransport({0: ("127.0.0.1", server.port)}, lambda src, m: got.append(m), cluster_id=CID)
        try:
            b = Ballot(1, 1)
            t.send(0, Accept(req=1, segment=1, ballot=b, values=((0, b"x"),)))
            while not got:
                await asyncio.sleep(0.01)
            small = t.busy(0)  # answered, nothing arriving or leaving, no large frame: not busy
            t.send(0, Accept(req=2, segment=1, ballot=b, values=((1, b"y" * (DIGEST_FROM + 1)),)))
            t.flush()
            large = t.busy(0)  # just written: the acceptor may be taking it in for a while
            return small, large
        finally:
            await t.close()
            await server.close()

    assert run(scenario()) == (False, True)
