"""An Accept larger than a frame is sent as several Accepts that each fit, and their replies merged into one:
a batch write of many large values must not be dropped by the client transport as "larger than a frame".
A Read or Prepare whose reply could exceed a frame is split the same way, and the client keeps to the frame
limit the acceptor's hello states."""

from __future__ import annotations

import asyncio
import os

from wormspace.identity import Identity
from wormspace.layers.acceptor import AcceptorNode, MemoryStorage
from wormspace.layers.messages import Accept, Accepted, Ballot, Message, Prepare, Promise, Read, ReadReply
from wormspace.layers.tcp import (
    FRAME_MARGIN,
    REPLY_ENTRY_OVERHEAD,
    AcceptorServer,
    TcpTransport,
    read_hello,
    run,
    split_accept_by_bytes,
)
from wormspace.layers.wire import NONCE_LEN, Hello, encode_hello

CID = "framesplit0123456789"
FRAME = 64 * 1024
VALUE = 4000  # the client's max_value in the reply-split test


def test_split_accept_by_bytes_keeps_every_entry_in_order_under_the_budget() -> None:
    values = tuple((i, bytes([i]) * (1000 + 97 * i)) for i in range(60))
    m = Accept(req=5, segment=2, ballot=Ballot(3, 1), values=values)
    parts = split_accept_by_bytes(m, 20_000, 0, 100)
    assert [p.req for p in parts] == list(range(100, 100 + len(parts))) and len(parts) > 1
    assert tuple(e for p in parts for e in p.values) == values
    assert all(sum(len(v) + 16 for _, v in p.values) <= 20_000 for p in parts)
    assert all(p.segment == 2 and p.ballot == Ballot(3, 1) for p in parts)
    assert all(len(p.values) <= 7 for p in split_accept_by_bytes(m, 10**9, 7, 0))


def test_an_accept_larger_than_a_frame_is_split_and_its_replies_merged() -> None:
    async def scenario() -> None:
        server = AcceptorServer(
            AcceptorNode(0, MemoryStorage()),
            "127.0.0.1",
            0,
            None,
            FRAME,
            identity=Identity(cluster_id=CID, acceptor_id=0),
        )
        await server.start()
        got: list[Message] = []
        t = TcpTransport({0: ("127.0.0.1", server.port)}, lambda src, m: got.append(m), cluster_id=CID, max_frame=FRAME)
        try:
            values = tuple((i, bytes([i]) * 4000) for i in range(40))  # ~160 KB: 3 frames at least
            assert sum(len(v) for _, v in values) > 2 * (FRAME - FRAME_MARGIN)
            b = Ballot(1, 1)
            t.send(0, Accept(req=1, segment=1, ballot=b, values=values))
            for _ in range(200):
                if got:
                    break
                await asyncio.sleep(0.05)
            assert got == [Accepted(req=1, segment=1, ballot=b)] and t.dropped == 0
            t.send(0, Read(req=2, segment=1, indices=(0, 39)))
            for _ in range(200):
                if len(got) == 2:
                    break
                await asyncio.sleep(0.05)
            reply = got[1]
            assert isinstance(reply, ReadReply)
            assert {(v.index, v.value) for v in reply.votes} == {(0, values[0][1]), (39, values[39][1])}
        finally:
            await t.close()
            await server.close()

    run(scenario())


async def _until(got: list[Message], n: int) -> None:
    for _ in range(200):
        if len(got) >= n:
            return
        await asyncio.sleep(0.05)


def test_replies_larger_than_a_frame_are_asked_for_in_parts_under_the_acceptors_stated_frame() -> None:
    """The acceptor takes frames of 64 KiB; the client's own limit is the default 64 MiB, so only the
    acceptor's hello tells it. 40 values of 4,000 bytes: the Accept, and the replies to a Read and a Prepare
    of all 40 registers (~160 KB each), must each travel in parts and come back merged."""
    value = VALUE

    async def scenario() -> None:
        ident = Identity(cluster_id=CID, acceptor_id=0)
        server = AcceptorServer(AcceptorNode(0, MemoryStorage()), "127.0.0.1", 0, None, FRAME, identity=ident)
        await server.start()
        got: list[Message] = []
        t = TcpTransport({0: ("127.0.0.1", server.port)}, lambda src, m: got.append(m), cluster_id=CID, max_value=value)
        try:
            values = tuple((i, bytes([i]) * value) for i in range(40))
            assert 40 * (value + REPLY_ENTRY_OVERHEAD) > 2 * FRAME
            b = Ballot(1, 1)
            t.send(0, Accept(req=1, segment=1, ballot=b, values=values))
            await _until(got, 1)
            assert got == [Accepted(req=1, segment=1, ballot=b)], got
            t.send(0, Read(req=2, segment=1, indices=tuple(range(40))))
            await _until(got, 2)
            t.send(0, Prepare(req=3, segment=1, indices=tuple(range(40)), ballot=Ballot(2, 1)))
            await _until(got, 3)
            assert len(got) == 3 and t.dropped == 0, got
            read, promise = got[1], got[2]
            assert isinstance(read, ReadReply) and read.req == 2
            assert sorted((v.index, v.value) for v in read.votes) == list(values)
            assert isinstance(promise, Promise) and promise.req == 3 and promise.ballot == Ballot(2, 1)
            assert sorted((v.index, v.ballot, v.value) for v in promise.votes) == [(i, b, v) for i, v in values]
        finally:
            await t.close()
            await server.close()

    run(scenario())


def test_the_acceptor_states_its_frame_limit_only_to_a_client_that_states_one() -> None:
    """An 8-field hello (a client of an earlier version) gets an 8-field answer it can read."""

    async def scenario() -> list[Hello]:
        ident = Identity(cluster_id=CID, acceptor_id=0)
        server = AcceptorServer(AcceptorNode(0, MemoryStorage()), "127.0.0.1", 0, None, FRAME, identity=ident)
        await server.start()
        answers = []
        try:
            for stated in (0, 1 << 20):
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                hello = Hello(cluster_id=CID, acceptor_id=None, nonce=os.urandom(NONCE_LEN), max_frame=stated)
                writer.write(encode_hello(hello))
                answers.append(await read_hello(reader, None, 5))
                writer.close()
        finally:
            await server.close()
        return answers

    old, new = run(scenario())
    assert old.max_frame == 0 and new.max_frame == FRAME
