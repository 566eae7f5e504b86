"""A real acceptor process holding a promise at the largest ballot number the wire carries (sent by a raw,
hostile client): a client's capture of that register ends ``CaptureStale`` in bounded time instead of never
ending (its next round's ballot overflowed the wire's range inside the driver's callback), and the same
client still captures and writes other registers."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

import pytest

from wormspace import CaptureStale, connect
from wormspace.layers.messages import MAX_INT, Ballot, Prepare, Promise
from wormspace.layers.wire import NONCE_LEN, PREFIX_LEN, Hello, decode_frame, decode_hello, encode_frame, encode_hello
from wormspace.runtime.supervise import LocalCluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("hostile"), 3, startup_timeout=30) as c:
        yield c


def _recv(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        assert chunk, "closed"
        buf += chunk
    return buf


def hostile_prepare(cluster: LocalCluster, acceptor: int, segment: int, ballot: Ballot) -> None:
    with socket.create_connection(cluster.addresses()[acceptor], timeout=5) as s:
        s.sendall(encode_hello(Hello(cluster_id=cluster.config.cluster_id, acceptor_id=None,
                                     nonce=os.urandom(NONCE_LEN))))  # fmt: skip
        hello = decode_hello(_recv(s, struct.unpack(">I", _recv(s, PREFIX_LEN))[0]))
        assert hello.refused == ""
        s.sendall(encode_frame([Prepare(req=1, segment=segment, indices=(0,), ballot=ballot)]))
        prefix = _recv(s, PREFIX_LEN)
        (reply,) = decode_frame(prefix + _recv(s, struct.unpack(">I", prefix)[0]))
        assert isinstance(reply, Promise) and reply.ballot == ballot


def test_a_promise_at_the_largest_ballot_makes_the_capture_stale_not_unending(cluster: LocalCluster) -> None:
    with connect(str(cluster.config_path)) as ws:
        seg = ws.alloc()
        for a in range(3):
            hostile_prepare(cluster, a, seg, Ballot(MAX_INT, MAX_INT))
        with pytest.raises(CaptureStale):
            ws.capture(ws.address(seg, 0))
        other = ws.address(seg, 1)
        ws.write(other, b"ok", ws.capture(other))
        assert ws.read(other) == b"ok"
        fresh = ws.address(ws.alloc(), 0)
        ws.write(fresh, b"fresh", ws.capture(fresh))
        assert ws.read(fresh) == b"fresh"
