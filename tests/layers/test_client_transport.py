"""The client transport's hot path on real acceptor processes (loopback): a request sent to every acceptor of
a group is encoded once, and every acceptor gets a valid, authenticated frame of it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest

from wormspace.layers import tcp, wire
from wormspace.layers.messages import Accept, Accepted, Ballot, Message, Read, ReadReply
from wormspace.layers.tcp import TcpTransport, run
from wormspace.runtime.supervise import LocalCluster

pytestmark = pytest.mark.timeout(90)


def test_a_request_to_every_acceptor_is_encoded_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    encoded: list[int] = []
    real = wire.split_for_frames

    def counting(messages: list[Message], key: bytes | None = None, max_frame: int = wire.DEFAULT_MAX_FRAME
                 ) -> tuple[list[bytes], list[Message]]:
        encoded.append(len(messages))
        return real(messages, key, max_frame)

    monkeypatch.setattr(tcp, "split_for_frames", counting)  # the name the transport calls
    with LocalCluster(tmp_path, 3, auth=True, startup_timeout=20) as cluster:
        got: list[tuple[int, Message]] = []
        b = Ballot(1, 3)

        async def until(n: int) -> None:
            deadline = time.monotonic() + 10
            while len(got) < n and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert len(got) >= n, got

        async def scenario() -> None:
            t = TcpTransport(cluster.addresses(), lambda src, m: got.append((src, m)), cluster.auth_key,
                             cluster_id=cluster.config.cluster_id)
            try:
                for a in range(3):  # connect first: the writes below go out from flush, not the writer tasks
                    t.send(a, Read(req=1, segment=1, indices=(0,)))
                await until(3)
                got.clear()
                encoded.clear()
                accept = Accept(req=2, segment=1, ballot=b, values=((0, b"once"),))
                t.hold()
                for a in range(3):
                    t.send(a, accept)
                t.send(2, Read(req=3, segment=1, indices=(0,)))  # another batch for acceptor 2: its own frame
                t.release()
                await until(4)
                assert encoded == [1, 2]  # acceptors 0 and 1 share one encoding; acceptor 2's batch is another
                assert sorted(src for src, m in got if isinstance(m, Accepted)) == [0, 1, 2]
                reads = [m for _, m in got if isinstance(m, ReadReply)]
                assert len(reads) == 1 and reads[0].votes[0].value == b"once"
            finally:
                await t.close()

        run(scenario())


# ---- the acceptor's hello, however TCP cuts it ----------------------------------------------------------

CID = "0123456789abcdef0123456789abcdef"


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_through(
    acceptor: Handler, until: Callable[[TcpTransport, list[Message]], bool], settle: float = 0.0, **transport: Any
) -> tuple[list[Message], dict[int, str]]:
    """A fake acceptor 0 (``acceptor``, an asyncio server's connection handler) on loopback, and a client
    transport to it (``transport``: its options) that sends it a Read of register 0 and waits, at most 10 s,
    until ``until(transport, replies)``, then ``settle`` seconds more: the replies and the refusals."""
    server = await asyncio.start_server(acceptor, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    got: list[Message] = []
    t = TcpTransport({0: ("127.0.0.1", port)}, lambda src, m: got.append(m), cluster_id=CID, **transport)
    try:
        t.send(0, Read(req=1, segment=1, indices=(0,)))
        deadline = time.monotonic() + 10
        while not until(t, got) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(settle)
        return got, dict(t.refusals)
    finally:
        await t.close()
        server.close()


def test_a_hello_that_arrives_in_pieces_is_taken_whole_and_frames_sent_with_it_are_kept() -> None:
    """A stream has no message boundaries: the acceptor's hello may come a byte at a time (its length prefix
    too), and a frame may come in the same segment as the hello's last byte. The client waits for the whole
    hello, and a frame that came with it is delivered (not lost, not cut) once the hello has passed."""
    stray = ReadReply(req=99, segment=7, votes=())

    async def dribbling(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mine = await tcp.read_hello(reader, None, 5)
        hello = wire.encode_hello(wire.Hello(cluster_id=CID, acceptor_id=0, nonce=bytes(wire.NONCE_LEN),
                                             echo=mine.nonce))
        for i in range(len(hello) - 1):
            writer.write(hello[i : i + 1])
            await writer.drain()
            await asyncio.sleep(0.002)
        writer.write(hello[-1:] + wire.encode_frame([stray]))  # the hello's last byte and a frame together
        msgs = await tcp.read_frame(reader, None) or []
        read = msgs[0]
        assert isinstance(read, Read)
        writer.write(wire.encode_frame([ReadReply(req=read.req, segment=read.segment, votes=())]))
        await writer.drain()
        await tcp.read_frame(reader, None)  # until the client goes

    got, refusals = run(read_through(dribbling, lambda t, got: len(got) >= 2))
    assert refusals == {}
    assert got == [stray, ReadReply(req=1, segment=1, votes=())]


def test_an_acceptor_whose_hello_does_not_decode_is_refused_and_sent_nothing() -> None:
    """A hello that breaks the wire rules (here one stating a frame limit under ``MIN_MAX_FRAME``, which no
    node may set) is a lying or broken peer's: the client keeps why in ``refusals`` and sends it no request."""
    frames_seen: list[object] = []

    async def lying(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mine = await tcp.read_hello(reader, None, 5)
        fields = [CID, 0, 0, 0, bytes(wire.NONCE_LEN), mine.nonce, 0, "", wire.MIN_MAX_FRAME - 1]
        payload = msgpack.packb(fields, use_bin_type=True)
        writer.write(wire.PREFIX.pack(wire.HEADER_LEN + len(payload)) + bytes((wire.VERSION, wire.HELLO)) + payload)
        await writer.drain()
        with contextlib.suppress(Exception):
            while (msgs := await tcp.read_frame(reader, None)) is not None:
                frames_seen.append(msgs)

    # settle: a request sent in spite of the refusal would have arrived by then
    got, refusals = run(read_through(lying, lambda t, got: bool(t.refusals), settle=0.1))
    assert got == [] and frames_seen == []
    assert refusals[0].startswith("refused the connection") and "max_frame" in refusals[0], refusals


@pytest.mark.parametrize(
    ("mine", "stated"), [(64 << 20, 64 << 20), ((1 << 32) - 1, (1 << 32) - 1), (1 << 33, (1 << 32) - 1)]
)
def test_a_client_states_its_frame_limit_in_its_hello_as_far_as_a_hello_can_carry(mine: int, stated: int) -> None:
    heard: list[wire.Hello] = []

    async def listening(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heard.append(await tcp.read_hello(reader, None, 5))
        writer.close()

    run(read_through(listening, lambda t, got: bool(heard), max_frame=mine))
    assert [h.max_frame for h in heard] == [stated]


@pytest.mark.parametrize(("lie", "why"), [
    ("acceptor_id", "is acceptor 1, not 0; check the cluster file"),
    ("echo", "answered with a hello that does not echo ours"),
])
def test_an_acceptor_answering_as_another_or_replaying_a_hello_is_refused_and_sent_nothing(lie: str, why: str) -> None:
    """The acceptor's hello must be acceptor 0's (the one at this address in the cluster file) and echo the
    nonce of this connection's hello (a hello recorded from another connection is a replay)."""
    frames_seen: list[object] = []

    async def lying(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mine = await tcp.read_hello(reader, None, 5)
        answer = wire.Hello(cluster_id=CID, acceptor_id=1 if lie == "acceptor_id" else 0,
                            nonce=bytes(wire.NONCE_LEN), echo=b"r" * wire.NONCE_LEN if lie == "echo" else mine.nonce)
        writer.write(wire.encode_hello(answer))
        with contextlib.suppress(Exception):
            while (msgs := await tcp.read_frame(reader, None)) is not None:
                frames_seen.append(msgs)

    got, refusals = run(read_through(lying, lambda t, got: bool(t.refusals), settle=0.1))  # settle: as above
    assert got == [] and refusals == {0: why} and frames_seen == []
