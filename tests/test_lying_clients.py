"""Clients that lie to a real acceptor process (``wormspace serve``, SQLite): well-formed but odd requests get
the protocol's normal answer or an error reply, refused ones are logged, the acceptor never crashes, and its
store is consistent afterwards -- checked by restarting it and reading back (loopback only).

* Coordinates at the wire's limits (segment 2**63-1, index 2**20-1, TRIM, META, ballots at 2**63-1): served.
* The same index twice in one Prepare, an Accept of no values, an index past the limit: the frame is refused
  whole (connection closed, logged), nothing applied.
* An Accept for a TRIM register above its promise: accepted (a vote for the trim: the acceptor trims the
  segment here, as for any client that trims), durable across a restart.
* A Fence at the largest ballot: applied (the acceptor refuses every later Prepare and Accept), durable; the
  cluster serves on with the other two; a Fence below a promise changes nothing.
* Request ids that collide across connections (and within one): each reply goes to its own request.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from wormspace import connect
from wormspace.layers.messages import (
    MAX_INDEX,
    MAX_INT,
    META,
    TRIM,
    ZERO_BALLOT,
    Accept,
    Accepted,
    Ballot,
    Fence,
    Fenced,
    Message,
    Nack,
    Prepare,
    Promise,
    Read,
    ReadReply,
    SegmentTrimmed,
    Vote,
)
from wormspace.layers.wire import NONCE_LEN, PREFIX_LEN, Hello, decode_frame, decode_hello, encode_frame, encode_hello
from wormspace.runtime.supervise import LocalCluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TOP = Ballot(MAX_INT, MAX_INT)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path_factory.mktemp("lying-clients"), 3, startup_timeout=30) as c:
        yield c


class Raw:
    """A hand-driven client connection to one acceptor: the hello, then frames of any messages."""

    def __init__(self, cluster: LocalCluster, acceptor: int) -> None:
        self.sock = socket.create_connection(cluster.addresses()[acceptor], timeout=10)
        self.sock.sendall(encode_hello(Hello(cluster_id=cluster.config.cluster_id, acceptor_id=None,
                                             nonce=os.urandom(NONCE_LEN))))  # fmt: skip
        n = struct.unpack(">I", self._recv(PREFIX_LEN))[0]
        assert decode_hello(self._recv(n)).refused == ""

    def _recv(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionResetError("closed")
            buf += chunk
        return buf

    def send(self, *msgs: Message) -> None:
        self.sock.sendall(encode_frame(list(msgs)))

    def replies(self, n: int) -> list[Message]:
        got: list[Message] = []
        while len(got) < n:
            prefix = self._recv(PREFIX_LEN)
            got.extend(decode_frame(prefix + self._recv(struct.unpack(">I", prefix)[0])))
        return got

    def ask(self, *msgs: Message) -> list[Message]:
        self.send(*msgs)
        return self.replies(len(msgs))

    def closed_by_peer(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _unchecked(cls: type, **fields: Any) -> Any:
    """A message built without its constructor's validation (to put an invalid one on the wire)."""
    m: Any = object.__new__(cls)
    for k, v in fields.items():
        object.__setattr__(m, k, v)
    return m


def _log(cluster: LocalCluster, i: int) -> str:
    return cluster.log_path(i).read_text(errors="replace")


def test_requests_at_the_wire_limits_are_served_and_kept_across_a_restart(cluster: LocalCluster) -> None:
    seg, hi = MAX_INT, MAX_INDEX - 1
    b = Ballot(MAX_INT - 1, MAX_INT)
    with Raw(cluster, 0) as c:
        (p,) = c.ask(Prepare(req=MAX_INT, segment=seg, indices=(hi, META, 0), ballot=b))
        assert isinstance(p, Promise) and p.req == MAX_INT and p.votes == ()
        (a,) = c.ask(Accept(req=MAX_INT, segment=seg, ballot=b, values=((hi, b"edge"), (META, b"m"), (0, b""))))
        assert isinstance(a, Accepted) and a.ballot == b
        (top,) = c.ask(Prepare(req=0, segment=seg, indices=(hi,), ballot=TOP))  # the largest ballot of all
        assert isinstance(top, Promise) and top.votes == (Vote(index=hi, ballot=b, value=b"edge"),)
        (n,) = c.ask(Accept(req=1, segment=seg, ballot=b, values=((hi, b"other"),)))
        assert isinstance(n, Nack) and n.promised == TOP and n.accepted == b
    cluster.crash(0)
    cluster.restart(0)
    with Raw(cluster, 0) as c:
        (r,) = c.ask(Read(req=2, segment=seg, indices=(0, hi, META, TRIM)))
        assert isinstance(r, ReadReply)
        assert sorted(r.votes, key=lambda v: v.index) == [
            Vote(index=META, ballot=b, value=b"m"), Vote(index=0, ballot=b, value=b""),
            Vote(index=hi, ballot=b, value=b"edge")]
        (n,) = c.ask(Accept(req=3, segment=seg, ballot=b, values=((hi, b"other"),)))
        assert isinstance(n, Nack) and n.promised == TOP  # the promise at the top ballot is durable too


@pytest.mark.parametrize(
    ("name", "bad", "why"),
    [
        ("the same index twice in a Prepare",
         _unchecked(Prepare, req=5, segment=3, indices=(0, 0), ballot=Ballot(50, 1)), "repeated indices"),
        ("an Accept of no values", _unchecked(Accept, req=6, segment=3, ballot=Ballot(50, 1), values=()),
         "values must be a non-empty tuple"),
        ("an index past the limit",
         _unchecked(Prepare, req=7, segment=3, indices=(0, MAX_INDEX), ballot=Ballot(50, 1)), "indices must be"),
        ("the same index twice in an Accept",
         _unchecked(Accept, req=8, segment=3, ballot=Ballot(50, 1), values=((0, b"a"), (0, b"b"))),
         "repeated indices"),
    ],
)
def test_impossible_requests_are_refused_whole_and_logged(cluster: LocalCluster, name: str, bad: Any, why: str) -> None:
    ok = Prepare(req=4, segment=3, indices=(1,), ballot=Ballot(50, 1))
    with Raw(cluster, 1) as c:
        c.send(ok, bad)  # one frame: a valid request beside the impossible one
        assert c.closed_by_peer()
    assert cluster.alive(1)
    with Raw(cluster, 1) as c:  # nothing of the frame was applied: a lower ballot is still promised on both registers
        (p,) = c.ask(Prepare(req=9, segment=3, indices=(0, 1), ballot=Ballot(2, 1)))
        assert isinstance(p, Promise) and p.votes == ()
    assert "acceptor 1 refused peer 127.0.0.1:" in _log(cluster, 1) and why in _log(cluster, 1)


def test_a_trim_vote_above_the_promise_is_accepted_and_durable(cluster: LocalCluster) -> None:
    with connect(str(cluster.config_path)) as ws:
        seg = ws.alloc()
        addr = ws.address(seg, 0)
        ws.write(addr, b"data", ws.capture(addr))
    with Raw(cluster, 2) as c:
        (a,) = c.ask(Accept(req=1, segment=seg, ballot=Ballot(10**12, 7), values=((TRIM, b"x"),)))
        assert isinstance(a, Accepted)
        (t,) = c.ask(Read(req=2, segment=seg, indices=(0,)))
        assert isinstance(t, SegmentTrimmed)  # Rule 4: trimmed here, as after any client's trim vote
    cluster.crash(2)
    cluster.restart(2)
    with Raw(cluster, 2) as c:
        (t, r) = c.ask(Read(req=3, segment=seg, indices=(0,)), Read(req=4, segment=seg, indices=(TRIM,)))
        assert isinstance(t, SegmentTrimmed)
        assert isinstance(r, ReadReply) and r.votes == (Vote(index=TRIM, ballot=Ballot(10**12, 7), value=b"x"),)


def test_request_ids_that_collide_across_connections_find_their_own_requests(cluster: LocalCluster) -> None:
    with Raw(cluster, 0) as one, Raw(cluster, 0) as two:
        b1, b2 = Ballot(7, 1), Ballot(8, 2)
        one.send(Prepare(req=42, segment=11, indices=(0,), ballot=b1), Read(req=42, segment=11, indices=(0,)))
        two.send(Prepare(req=42, segment=12, indices=(0,), ballot=b2), Prepare(req=42, segment=11, indices=(0,),
                                                                              ballot=b1))
        r1, r2 = one.replies(2), two.replies(2)
        assert isinstance(r1[0], Promise) and (r1[0].segment, r1[0].ballot) == (11, b1)
        assert isinstance(r1[1], ReadReply) and r1[1].segment == 11
        assert isinstance(r2[0], Promise) and (r2[0].segment, r2[0].ballot) == (12, b2)
        assert isinstance(r2[1], Promise) and (r2[1].segment, r2[1].ballot) == (11, b1)  # the same ballot again


def test_a_fence_at_the_largest_ballot_is_durable_and_the_others_serve_on(cluster: LocalCluster) -> None:
    """Run last in this module: acceptor 2 refuses every Prepare and Accept afterwards."""
    with Raw(cluster, 2) as c:
        (low,) = c.ask(Fence(req=1, segment=0, ballot=Ballot(1, 0)))  # below promises it holds: no change
        assert isinstance(low, Fenced) and low.floor == ZERO_BALLOT
        (f,) = c.ask(Fence(req=2, segment=MAX_INT, ballot=TOP))
        assert isinstance(f, Fenced) and f.floor == TOP
        (n,) = c.ask(Prepare(req=3, segment=5, indices=(0,), ballot=Ballot(MAX_INT, MAX_INT - 1)))
        assert isinstance(n, Nack) and n.promised == TOP
    cluster.crash(2)
    cluster.restart(2)
    with Raw(cluster, 2) as c:
        (q,) = c.ask(Fence(req=4, segment=0, ballot=ZERO_BALLOT))
        assert isinstance(q, Fenced) and q.floor == TOP and q.promised == TOP
    with connect(str(cluster.config_path)) as ws:
        addr = ws.address(ws.alloc(), 0)
        ws.write(addr, b"after", ws.capture(addr))
        assert ws.read(addr) == b"after"
    assert all(cluster.alive(i) for i in range(3))
