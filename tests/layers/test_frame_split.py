"""An Accept larger than a frame is sent as several Accepts that each fit, and their replies merged into one:
a batch write of many large values must not be dropped by the client transport as "larger than a frame".
A Read or Prepare whose reply could exceed a frame is split the same way, and the client keeps to the frame
limit the acceptor's hello states."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator
from typing import Any

from wormspace.identity import Identity
from wormspace.layers.acceptor import AcceptorNode, MemoryStorage
from wormspace.layers.messages import (
    ZERO_BALLOT,
    Accept,
    Accepted,
    Ballot,
    Fence,
    Message,
    Nack,
    Prepare,
    Promise,
    Read,
    ReadReply,
    Vote,
)
from wormspace.layers.tcp import (
    FRAME_MARGIN,
    REPLY_ENTRY_OVERHEAD,
    AcceptorServer,
    Limits,
    TcpTransport,
    merge_replies,
    read_hello,
    run,
    split_accept_by_bytes,
    split_request,
)
from wormspace.layers.wire import NONCE_LEN, Hello, encode_hello

CID = "framesplit0123456789"
FRAME = 64 * 1024
VALUE = 4000  # the client's max_value in the reply-split test
IDENT = Identity(cluster_id=CID, acceptor_id=0)


@contextlib.asynccontextmanager
async def linked(limits: Limits | None = None, **transport: Any) -> AsyncIterator[tuple[TcpTransport, list[Message]]]:
    """An in-process acceptor taking frames of ``FRAME`` bytes, and a client transport to it (``transport``:
    its options): the transport, and the list of the replies it hands over."""
    node = AcceptorNode(0, MemoryStorage())
    server = AcceptorServer(node, "127.0.0.1", 0, None, FRAME, identity=IDENT, limits=limits)
    await server.start()
    got: list[Message] = []
    t = TcpTransport({0: ("127.0.0.1", server.port)}, lambda src, m: got.append(m), cluster_id=CID, **transport)
    try:
        yield t, got
    finally:
        await t.close()
        await server.close()


async def ask(t: TcpTransport, got: list[Message], request: Message) -> None:
    """Send ``request`` and wait (at most 10 s) for one more reply."""
    n = len(got) + 1
    t.send(0, request)
    await _until(got, n)


def test_split_accept_by_bytes_keeps_every_entry_in_order_under_the_budget() -> None:
    values = tuple((i, bytes([i]) * (1000 + 97 * i)) for i in range(60))
    m = Accept(req=5, segment=2, ballot=Ballot(3, 1), values=values)
    parts = split_accept_by_bytes(m, 20_000, 0, 100)
    assert [p.req for p in parts] == list(range(100, 100 + len(parts))) and len(parts) > 1
    assert tuple(e for p in parts for e in p.values) == values
    assert all(sum(len(v) + 16 for _, v in p.values) <= 20_000 for p in parts)
    assert all(p.segment == 2 and p.ballot == Ballot(3, 1) for p in parts)
    assert all(len(p.values) <= 7 for p in split_accept_by_bytes(m, 10**9, 7, 0))
    assert [len(p.values) for p in split_accept_by_bytes(m, 10**9, 1, 0)] == [1] * len(values)
    # as few chunks as that allows: a chunk ends only where its next entry would not fit (bytes or registers)
    for budget, limit in ((20_000, 0), (10**9, 7), (20_000, 3)):
        parts = split_accept_by_bytes(m, budget, limit, 0)
        for p, q in itertools.pairwise(parts):
            used = sum(len(v) + 16 for _, v in p.values)
            assert used + len(q.values[0][1]) + 16 > budget or len(p.values) == limit


def test_split_request_numbers_its_chunks_upwards_and_keeps_every_register_once() -> None:
    b = Ballot(2, 1)
    idx = tuple(range(10, 33))
    for m in (
        Read(req=1, segment=4, indices=idx),
        Prepare(req=1, segment=4, indices=idx, ballot=b),
        Accept(req=1, segment=4, ballot=b, values=tuple((i, b"%d" % i) for i in idx)),
    ):
        parts = split_request(m, 5, 500)
        assert [p.req for p in parts] == [500, 501, 502, 503, 504]
        assert all(type(p) is type(m) and p.segment == 4 for p in parts)
        if isinstance(m, Accept):
            assert tuple(e for p in parts if isinstance(p, Accept) for e in p.values) == m.values
            assert all(isinstance(p, Accept) and p.ballot == b and len(p.values) <= 5 for p in parts)
        else:
            assert tuple(i for p in parts if isinstance(p, (Read, Prepare)) for i in p.indices) == idx
            assert all(len(p.indices) <= 5 for p in parts if isinstance(p, (Read, Prepare)))
        if isinstance(m, Prepare):
            assert all(isinstance(p, Prepare) and p.ballot == b for p in parts)
    assert split_request(Fence(req=1, segment=4, ballot=b), 5, 500) == [Fence(req=500, segment=4, ballot=b)]


def test_a_refused_accept_chunk_keeps_the_highest_vote_any_chunk_reported() -> None:
    """A Nack's ``accepted`` is the highest ballot any register named has voted at: ``accepted < ballot`` tells
    a writer its write is certainly not applied. One chunk of a resent Accept already voted at the ballot
    before the promise rose: the merged Nack must say so, or the writer would wrongly learn "not applied"."""
    b = Ballot(3, 1)
    acc = Accept(req=9, segment=1, ballot=b, values=tuple((i, b"x") for i in range(4)))
    voted = Nack(req=1, segment=1, ballot=b, promised=Ballot(4, 2), accepted=b)
    never = Nack(req=2, segment=1, ballot=b, promised=Ballot(4, 2), accepted=ZERO_BALLOT)
    for order in ([voted, never], [never, voted]):
        merged = merge_replies(acc, order)
        assert isinstance(merged, Nack) and merged.req == 9 and merged.accepted == b


def test_a_chunk_answered_with_the_wrong_kind_of_reply_spoils_the_merge() -> None:
    """A read chunk answered by anything but a read reply (a confused or hostile acceptor) must not merge into
    a read reply that silently lacks that chunk's votes: the merged reply is dropped (treated as lost)."""
    b = Ballot(1, 1)
    read = Read(req=9, segment=1, indices=(0, 1))
    seen = ReadReply(req=1, segment=1, votes=(Vote(index=0, ballot=b, value=b"a"),))
    assert merge_replies(read, [seen, Promise(req=2, segment=1, ballot=b, votes=())]) is None
    assert merge_replies(read, [seen, Accepted(req=2, segment=1, ballot=b)]) is None
    prep = Prepare(req=9, segment=1, indices=(0, 1), ballot=b)
    assert merge_replies(prep, [Promise(req=1, segment=1, ballot=b, votes=()), seen]) is None


def test_an_accept_larger_than_a_frame_is_split_and_its_replies_merged() -> None:
    async def scenario() -> None:
        async with linked(max_frame=FRAME) as (t, got):
            values = tuple((i, bytes([i]) * 4000) for i in range(40))  # ~160 KB: 3 frames at least
            assert sum(len(v) for _, v in values) > 2 * (FRAME - FRAME_MARGIN)
            b = Ballot(1, 1)
            await ask(t, got, Accept(req=1, segment=1, ballot=b, values=values))
            assert got == [Accepted(req=1, segment=1, ballot=b)] and t.dropped == 0
            await ask(t, got, Read(req=2, segment=1, indices=(0, 39)))
            reply = got[1]
            assert isinstance(reply, ReadReply)
            assert {(v.index, v.value) for v in reply.votes} == {(0, values[0][1]), (39, values[39][1])}

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
        async with linked(max_value=value) as (t, got):
            values = tuple((i, bytes([i]) * value) for i in range(40))
            assert 40 * (value + REPLY_ENTRY_OVERHEAD) > 2 * FRAME
            b = Ballot(1, 1)
            await ask(t, got, Accept(req=1, segment=1, ballot=b, values=values))
            assert got == [Accepted(req=1, segment=1, ballot=b)], got
            await ask(t, got, Read(req=2, segment=1, indices=tuple(range(40))))
            await ask(t, got, Prepare(req=3, segment=1, indices=tuple(range(40)), ballot=Ballot(2, 1)))
            assert len(got) == 3 and t.dropped == 0, got
            read, promise = got[1], got[2]
            assert isinstance(read, ReadReply) and read.req == 2
            assert sorted((v.index, v.value) for v in read.votes) == list(values)
            assert isinstance(promise, Promise) and promise.req == 3 and promise.ballot == Ballot(2, 1)
            assert sorted((v.index, v.ballot, v.value) for v in promise.votes) == [(i, b, v) for i, v in values]

    run(scenario())


def test_the_acceptor_states_its_frame_limit_only_to_a_client_that_states_one() -> None:
    """An 8-field hello (a client of an earlier version) gets an 8-field answer it can read."""

    async def scenario() -> list[Hello]:
        server = AcceptorServer(AcceptorNode(0, MemoryStorage()), "127.0.0.1", 0, None, FRAME, identity=IDENT)
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


def test_reads_and_prepares_keep_to_the_acceptors_register_limit_when_their_replies_would_fit_a_frame() -> None:
    """Small values: a reply of 100 votes fits a frame easily, so only the acceptor's register limit (16, from
    its hello) makes the client cut a Read or a Prepare of 100 registers; each comes back as one reply, and the
    chunks' bookkeeping goes with it."""

    async def scenario() -> list[Message]:
        async with linked(Limits(max_request_registers=16), max_value=100) as (t, got):
            await ask(t, got, Read(req=1, segment=1, indices=tuple(range(100))))
            await ask(t, got, Prepare(req=2, segment=1, indices=tuple(range(100)), ballot=Ballot(1, 1)))
            assert t._splits == {}  # a merged reply leaves no bookkeeping behind
            return got

    got = run(scenario())
    assert got == [ReadReply(req=1, segment=1, votes=()), Promise(req=2, segment=1, ballot=Ballot(1, 1), votes=())]


def test_an_accept_of_many_small_values_is_split_by_what_its_entries_take_on_the_wire() -> None:
    """3,000 values of 20 bytes: 60 KB of data, under the 64 KiB frame, but each entry takes more than its
    value on the wire (index, headers): the whole Accept does not fit one frame, so it is cut and still
    accepted as one."""

    async def scenario() -> tuple[list[Message], int]:
        async with linked() as (t, got):
            values = tuple((i, b"%020d" % i) for i in range(3000))
            assert sum(len(v) for _, v in values) < FRAME - FRAME_MARGIN
            await ask(t, got, Accept(req=1, segment=1, ballot=Ballot(1, 1), values=values))
            return got, t.dropped

    got, dropped = run(scenario())
    assert got == [Accepted(req=1, segment=1, ballot=Ballot(1, 1))] and dropped == 0


def test_an_accept_just_over_a_frame_is_cut_with_room_for_the_frames_own_bytes() -> None:
    """Two values of 32,900 bytes: together just over the 64 KiB frame once framed. The client keeps
    ``FRAME_MARGIN`` bytes of each frame for everything but the entries, so it cuts the Accept in two."""

    async def scenario() -> tuple[list[Message], int]:
        async with linked() as (t, got):
            values = ((0, b"a" * 32_900), (1, b"b" * 32_900))
            await ask(t, got, Accept(req=1, segment=1, ballot=Ballot(1, 1), values=values))
            return got, t.dropped

    got, dropped = run(scenario())
    assert got == [Accepted(req=1, segment=1, ballot=Ballot(1, 1))] and dropped == 0
