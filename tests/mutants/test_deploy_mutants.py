"""Planted bugs in the deployment checks (identity, hello, limits); each must make its check fail.

* ``trusting_client`` -- the client accepts any acceptor's hello (no cluster, acceptor or nonce check).
* ``lenient_identity`` -- ``check_data_dir`` trusts ``identity.json`` and never looks at the database.
* ``optimistic_merge`` -- a split Accept whose chunks were partly accepted, partly refused is reported as a
  refusal (claims "not voted" for registers that were voted).
* ``no_pre_hello_limit`` -- the hello is read with the full frame limit: an unauthenticated peer can make
  the acceptor wait for (and buffer) a 64 MiB body.
* ``uncapped_requests`` -- the acceptor counts no registers: a request over the limit is applied.
* ``one_transaction_per_frame`` -- the acceptor applies a whole frame without yielding: another client
  waits until the largest frame is done.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests import test_identity as identity_tests
from tests.layers import test_frame_split as frame_split_tests
from tests.layers import test_server_frames as server_frames_tests
from tests.layers import test_tcp_server as tcp_tests
from wormspace import identity
from wormspace.errors import RemoteProtocolError
from wormspace.layers import tcp
from wormspace.layers.messages import ZERO_BALLOT, Message, Nack, Promise, Request
from wormspace.layers.wire import DEFAULT_MAX_FRAME
from wormspace.runtime.driver import AsyncTcpDriver

Failed = pytest.fail.Exception


def test_trusting_client_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp, "hello_mismatch", lambda hello, **kw: None)
    with pytest.raises(KeyError):  # no refusal recorded: the client believed the foreign acceptor
        tcp_tests.test_a_client_refuses_an_acceptor_of_another_cluster()


@pytest.mark.parametrize("accident", ["deleted", "truncated", "corrupted"])
def test_lenient_identity_is_caught(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, accident: str) -> None:
    def lenient(data_dir: Path, *, acceptor_id: int, cluster_id: str | None = None) -> identity.Identity:
        found = identity.read_identity_file(data_dir)
        assert found is not None
        return found

    monkeypatch.setattr(identity, "check_data_dir", lenient)
    monkeypatch.setattr(identity_tests, "check_data_dir", lenient)
    with pytest.raises(Failed, match="DID NOT RAISE"):
        identity_tests.test_a_dir_that_has_served_refuses_a_damaged_or_foreign_database(tmp_path, accident)


def test_optimistic_merge_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    original = tcp.merge_replies

    def optimistic(req: Request, replies: list[Message]) -> Message | None:
        nacks = [r for r in replies if isinstance(r, Nack)]
        return nacks[0] if nacks else original(req, replies)

    monkeypatch.setattr(tcp_tests, "merge_replies", optimistic)
    with pytest.raises(AssertionError):
        tcp_tests.test_merged_replies_never_claim_more_than_every_chunk_said()


def test_no_pre_hello_limit_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp, "HELLO_MAX_FRAME", DEFAULT_MAX_FRAME)
    assert tcp_tests.pre_hello_announcement_scenario() == b"", "the server waited for the body until its timeout"
    with pytest.raises(RemoteProtocolError, match="too short"):  # no refusal came: nothing to decode
        tcp_tests.test_in_process_pre_hello_limit()


def test_uncapped_requests_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp, "registers_of", lambda m: 0)
    with pytest.raises(AssertionError):
        tcp_tests.test_in_process_register_cap()


def test_one_transaction_per_frame_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    async def whole_frame(self: tcp.AcceptorServer, src: int, peer: str, reqs: list[Request], conn: Any) -> None:
        self._send(self._apply(src, reqs), peer, conn.writer)
        await conn.writer.drain()

    monkeypatch.setattr(tcp.AcceptorServer, "_answer", whole_frame)
    with pytest.raises(AssertionError, match="between the batches"):
        tcp_tests.test_a_large_frame_does_not_stall_other_clients()


def test_a_merge_that_drops_the_floor_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    original = tcp.merge_replies

    def floorless(req: Request, replies: list[Message]) -> Message | None:
        return original(req, [replace(r, floor=ZERO_BALLOT) if isinstance(r, Promise) else r for r in replies])

    monkeypatch.setattr(tcp_tests, "merge_replies", floorless)
    with pytest.raises(AssertionError):
        tcp_tests.test_merged_replies_never_claim_more_than_every_chunk_said()


def test_a_client_deaf_to_the_acceptors_frame_limit_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp.TcpTransport, "_frame_limit", lambda self, p: self.max_frame)
    with pytest.raises(AssertionError):
        frame_split_tests.test_replies_larger_than_a_frame_are_asked_for_in_parts_under_the_acceptors_stated_frame()


def test_reads_and_prepares_not_cut_to_what_a_reply_can_carry_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp, "REPLY_ENTRY_OVERHEAD", 1 - frame_split_tests.VALUE)  # a vote "takes" 1 byte: no cut
    with pytest.raises(AssertionError):
        frame_split_tests.test_replies_larger_than_a_frame_are_asked_for_in_parts_under_the_acceptors_stated_frame()


def test_phase_timers_deaf_to_busy_acceptors_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AsyncTcpDriver, "_waits_on_busy", lambda self, op, transport, now, token: False)
    with pytest.raises(AssertionError):
        server_frames_tests.test_a_reply_still_arriving_holds_the_phase_timer()
