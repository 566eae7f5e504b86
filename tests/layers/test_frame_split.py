"""An Accept larger than a frame is sent as several Accepts that each fit, and their replies merged into one:
a batch write of many large values must not be dropped by the client transport as "larger than a frame"."""

from __future__ import annotations

import asyncio

from wormspace.identity import Identity
from wormspace.layers.acceptor import AcceptorNode, MemoryStorage
from wormspace.layers.messages import Accept, Accepted, Ballot, Message, Read, ReadReply
from wormspace.layers.tcp import FRAME_MARGIN, AcceptorServer, TcpTransport, run, split_accept_by_bytes

CID = "framesplit0123456789"
FRAME = 64 * 1024


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
