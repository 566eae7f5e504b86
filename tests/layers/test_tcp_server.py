"""A real ``wormspace serve`` process on loopback: valid frames are served (one reply frame a request
frame, durable before the reply); every kind of garbage closes that connection, leaves the server up and
its SQLite state unchanged; the client transport coalesces, drops while a peer is down, and reconnects."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgpack
import pytest

from wormspace.deploy import LocalCluster, free_port
from wormspace.identity import Identity
from wormspace.layers.acceptor import AcceptorNode, MemoryStorage
from wormspace.layers.effects import Persist
from wormspace.layers.messages import (
    Accept,
    Accepted,
    Ballot,
    Message,
    Prepare,
    Promise,
    Read,
    ReadReply,
    Vote,
)
from wormspace.layers.tcp import AcceptorServer, TcpTransport, run
from wormspace.layers.wire import (
    DEFAULT_MAX_FRAME,
    NONCE_LEN,
    PREFIX_LEN,
    Hello,
    decode_frame,
    decode_hello,
    encode_frame,
    encode_hello,
    frame_payload,
)

pytestmark = pytest.mark.timeout(60)

WRONG_KEY = b"not the cluster's key, but long enough"
CID = "0123456789abcdef0123456789abcdef"
IDENT = Identity(cluster_id=CID, acceptor_id=0)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path_factory.mktemp("plain"), 1, startup_timeout=20)
    with cluster:
        yield cluster


@pytest.fixture(scope="module")
def authed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path_factory.mktemp("authed"), 1, auth=True, startup_timeout=20)
    with cluster:
        yield cluster


def connect_raw(cluster: LocalCluster) -> socket.socket:
    return socket.create_connection(cluster.addresses()[0], timeout=5)


def recv_hello(sock: socket.socket, key: bytes | None) -> Hello:
    prefix = recv_exactly(sock, PREFIX_LEN)
    return decode_hello(recv_exactly(sock, struct.unpack(">I", prefix)[0]), key)


def client_hello(cluster: LocalCluster, key: bytes | None, cluster_id: str | None = None) -> bytes:
    cid = cluster.config.cluster_id if cluster_id is None else cluster_id
    return encode_hello(Hello(cluster_id=cid, acceptor_id=None, nonce=os.urandom(NONCE_LEN)), key)


def connect(cluster: LocalCluster) -> socket.socket:
    """A connection past the hello exchange (wire rule 4)."""
    s = connect_raw(cluster)
    s.sendall(client_hello(cluster, cluster.auth_key))
    hello = recv_hello(s, cluster.auth_key)
    assert hello.refused == "" and hello.acceptor_id == 0 and hello.cluster_id == cluster.config.cluster_id
    return s


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def exchange(cluster: LocalCluster, msgs: list[Message]) -> list[Message]:
    """Send one frame, read exactly one reply frame."""
    key = cluster.auth_key
    with connect(cluster) as s:
        s.sendall(encode_frame(msgs, key))
        prefix = recv_exactly(s, PREFIX_LEN)
        body = recv_exactly(s, struct.unpack(">I", prefix)[0])
        return decode_frame(prefix + body, key)


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def state(cluster: LocalCluster) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{cluster.db_path(0)}?mode=ro", uri=True) as c:
        return c.execute("SELECT * FROM registers ORDER BY segment, idx").fetchall()


def log_text(cluster: LocalCluster) -> str:
    return cluster.log_path(0).read_text()


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


# ---- valid traffic --------------------------------------------------------------------------------------


def test_prepare_accept_read_in_one_frame_get_one_reply_frame(plain: LocalCluster) -> None:
    b = Ballot(1, 7)
    replies = exchange(
        plain,
        [
            Prepare(req=1, segment=100, indices=(0, 1), ballot=b),
            Accept(req=2, segment=100, ballot=b, values=((0, b"v"),)),
            Read(req=3, segment=100, indices=(0, 1)),
        ],
    )
    assert replies == [
        Promise(req=1, segment=100, ballot=b, votes=()),
        Accepted(req=2, segment=100, ballot=b),
        ReadReply(req=3, segment=100, votes=(Vote(index=0, ballot=b, value=b"v"),)),
    ]
    assert (100, 0, 1, 7, 1, 7, b"v") in state(plain)


# ---- garbage --------------------------------------------------------------------------------------------

HIGH = Ballot(99, 9)  # every bad frame below carries a request that would change state if it ran


def state_changing(segment: int) -> list[Message]:
    return [
        Prepare(req=5, segment=segment, indices=(0,), ballot=HIGH),
        Accept(req=6, segment=segment, ballot=HIGH, values=((1, b"evil"),)),
    ]


def garbage_http(seg: int, key: bytes | None) -> bytes:
    return b"GET / HTTP/1.1\r\nHost: acceptor\r\n\r\n"


def garbage_small_prefix(seg: int, key: bytes | None) -> bytes:
    return struct.pack(">I", 20) + b"\x07" * 20


def truncated(seg: int, key: bytes | None) -> bytes:
    return encode_frame(state_changing(seg), key)[:-3]


def oversized(seg: int, key: bytes | None) -> bytes:
    return struct.pack(">I", DEFAULT_MAX_FRAME + 1) + encode_frame(state_changing(seg), key)[PREFIX_LEN:]


def bool_as_int_after_valid(seg: int, key: bytes | None) -> bytes:
    good = [[1, 5, seg, [0], [HIGH.number, HIGH.node]]]
    return frame_payload(msgpack.packb([*good, [3, True, seg, [0]]], use_bin_type=True), key)


def unknown_tag_after_valid(seg: int, key: bytes | None) -> bytes:
    good = [[1, 5, seg, [0], [HIGH.number, HIGH.node]]]
    return frame_payload(msgpack.packb([*good, [77, 1, seg]], use_bin_type=True), key)


def reply_sent_to_acceptor(seg: int, key: bytes | None) -> bytes:
    return encode_frame([*state_changing(seg), Accepted(req=1, segment=seg, ballot=HIGH)], key)


def wrong_version(seg: int, key: bytes | None) -> bytes:
    frame = bytearray(encode_frame(state_changing(seg), key))
    frame[PREFIX_LEN] = 1
    return bytes(frame)


Garbage = Callable[[int, bytes | None], bytes]

PLAIN_GARBAGE: list[Garbage] = [
    garbage_http,
    garbage_small_prefix,
    truncated,
    oversized,
    bool_as_int_after_valid,
    unknown_tag_after_valid,
    reply_sent_to_acceptor,
    wrong_version,
]


def no_mac(seg: int, key: bytes | None) -> bytes:
    return encode_frame(state_changing(seg), None)


def wrong_key(seg: int, key: bytes | None) -> bytes:
    return encode_frame(state_changing(seg), WRONG_KEY)


def tampered(seg: int, key: bytes | None) -> bytes:
    frame = bytearray(encode_frame(state_changing(seg), key))
    frame[-1] ^= 1
    return bytes(frame)


AUTH_GARBAGE: list[Garbage] = [no_mac, wrong_key, tampered, truncated, bool_as_int_after_valid]


def check_refused(cluster: LocalCluster, make: Callable[[int, bytes | None], bytes], seg: int) -> None:
    b = Ballot(1, 1)
    exchange(cluster, [Accept(req=1, segment=seg, ballot=b, values=((0, b"ok"), (1, b"ok")))])
    before = state(cluster)
    pid = cluster.pid(0)
    with connect(cluster) as s:
        s.sendall(make(seg, cluster.auth_key))
        if make is truncated:
            s.shutdown(socket.SHUT_WR)
        assert closed_by_server(s), "the server must close a connection that sent garbage"
    assert state(cluster) == before, "garbage must not change state"
    assert cluster.pid(0) == pid
    replies = exchange(cluster, [Read(req=9, segment=seg, indices=(0, 1))])
    assert replies == [
        ReadReply(
            req=9, segment=seg, votes=(Vote(index=0, ballot=b, value=b"ok"), Vote(index=1, ballot=b, value=b"ok"))
        )
    ]


@pytest.mark.parametrize("make", PLAIN_GARBAGE, ids=lambda f: f.__name__)
def test_garbage_closes_the_connection_and_changes_nothing(
    plain: LocalCluster, make: Callable[[int, bytes | None], bytes]
) -> None:
    check_refused(plain, make, 200 + PLAIN_GARBAGE.index(make))


@pytest.mark.parametrize("make", AUTH_GARBAGE, ids=lambda f: f.__name__)
def test_unauthenticated_frames_are_refused(authed: LocalCluster, make: Callable[[int, bytes | None], bytes]) -> None:
    check_refused(authed, make, 300 + AUTH_GARBAGE.index(make))


def test_refusals_are_logged_naming_the_peer(plain: LocalCluster, authed: LocalCluster) -> None:
    with connect(plain) as s:
        s.sendall(garbage_small_prefix(0, None))
        assert closed_by_server(s)
    with connect(authed) as s:
        s.sendall(no_mac(0, None))
        assert closed_by_server(s)
    assert wait_for(lambda: "refused peer 127.0.0.1:" in log_text(plain) and "unknown wire version" in log_text(plain))
    assert wait_for(lambda: "requires an auth key" in log_text(authed))
    assert "auth=on" in log_text(authed) and "auth=off" in log_text(plain)


def test_a_second_server_on_the_same_data_dir_is_refused(plain: LocalCluster) -> None:
    cmd = [sys.executable, "-m", "wormspace", "serve", "--id", "0", "--listen", "127.0.0.1:0"]
    out = subprocess.run(
        [*cmd, "--data", str(plain.data_dir(0))], capture_output=True, text=True, timeout=30, check=False
    )
    assert out.returncode == 2
    assert "in use by process" in out.stderr
    assert plain.alive(0)


# ---- the client transport, crash, restart, SIGTERM ------------------------------------------------------


def test_transport_durability_reconnect_and_clean_stop(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, 1, startup_timeout=20)
    cluster.start()
    try:
        _transport_scenario(cluster)
        assert cluster.stop_one(0, timeout=10), "SIGTERM must stop the server without SIGKILL"
        assert cluster.exit_code(0) == 0
        log = log_text(cluster)
        assert "stopping on SIGTERM" in log and "storage closed" in log
    finally:
        cluster.stop()


def _transport_scenario(cluster: LocalCluster) -> None:
    got: list[Message] = []
    b = Ballot(1, 3)

    async def until(n: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert len(got) >= n, got

    async def scenario() -> None:
        t = TcpTransport(
            cluster.addresses(),
            lambda src, m: got.append(m),
            cluster_id=cluster.config.cluster_id,
            backoff_initial=0.05,
            backoff_max=0.2,
        )
        try:
            # coalescing: three sends in one tick travel as one frame and come back in order
            t.send(0, Prepare(req=1, segment=1, indices=(0,), ballot=b))
            t.send(0, Accept(req=2, segment=1, ballot=b, values=((0, b"durable"),)))
            t.send(0, Read(req=3, segment=1, indices=(0,)))
            await until(3)
            assert [type(m) for m in got] == [Promise, Accepted, ReadReply]
            assert t.frames_sent == 1 and t.messages_sent == 3

            # kill -9 right after the vote was acknowledged: it must survive (persist before reply)
            await asyncio.to_thread(cluster.crash, 0)
            for k in range(20):
                t.send(0, Read(req=100 + k, segment=1, indices=(0,)))
                await asyncio.sleep(0.01)
            assert t.dropped > 0 and len(got) == 3
            await asyncio.to_thread(cluster.restart, 0)
            deadline = time.monotonic() + 10
            while len(got) < 4 and time.monotonic() < deadline:
                t.send(0, Read(req=200, segment=1, indices=(0,)))
                await asyncio.sleep(0.05)
            assert got[3] == ReadReply(req=200, segment=1, votes=(Vote(index=0, ballot=b, value=b"durable"),))
            assert t.connects == 2
        finally:
            await t.close()

    run(scenario())


# ---- in-process: storage failure, unreachable peers -----------------------------------------------------


class FailingStorage(MemoryStorage):
    def apply(self, persist: Persist) -> None:
        raise sqlite3.OperationalError("disk I/O error")


def test_a_storage_failure_sends_no_reply_and_stops_the_server() -> None:
    async def scenario() -> None:
        server = AcceptorServer(AcceptorNode(0, FailingStorage()), "127.0.0.1", 0, identity=IDENT)
        await server.start()
        got: list[Message] = []
        t = TcpTransport({0: ("127.0.0.1", server.port)}, lambda src, m: got.append(m), cluster_id=CID)
        try:
            t.send(0, Read(req=1, segment=1, indices=(0,)))  # no state change: served
            t.send(0, Prepare(req=2, segment=1, indices=(0,), ballot=Ballot(1, 1)))  # must persist: fails
            await asyncio.wait_for(server.wait_stopped(), 5)
            await asyncio.sleep(0.05)
            assert got == [], "no reply may leave a frame whose storage failed"
            assert isinstance(server.failure, sqlite3.OperationalError)
        finally:
            await t.close()
            await server.close()

    run(scenario())


def test_an_unreachable_peer_drops_messages_with_capped_backoff() -> None:
    async def scenario() -> None:
        port = free_port()  # nobody listens here
        t = TcpTransport(
            {0: ("127.0.0.1", port)}, lambda src, m: None, cluster_id=CID, backoff_initial=0.01, backoff_max=0.04
        )
        try:
            for k in range(30):
                t.send(0, Read(req=k, segment=1, indices=(0,)))
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            assert t.dropped == 30 and t.messages_sent == 0 and not t.connected(0)
            assert t.peers[0].backoff == 0.04
        finally:
            await t.close()

    run(scenario())
