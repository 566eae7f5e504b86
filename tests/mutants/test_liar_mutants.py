"""Planted bugs in the client's checks of lying acceptors (wor.py Rule 6, tcp.py ``chunk_fault``); each must
make the tests of tests/layers/test_lying_peers.py fail.

* ``believes_every_reply`` -- the client core checks no reply against the request it answers: an acceptor's
  invented vote above the ballot it promised is adopted and proposed at the client's ballot.
* ``unchecked_chunk_replies`` -- the transport merges a split request's chunk replies without checking them:
  a chunk's Promise at another ballot is merged into a Promise at the asked ballot.
"""

from __future__ import annotations

import pytest

from tests.layers import test_lying_peers as liar_tests
from wormspace.layers import tcp, wor


def test_a_client_that_believes_every_reply_is_caught(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(wor, "reply_fault", lambda op, src, reply, ctx: None)
    with pytest.raises(AssertionError):
        liar_tests.test_a_vote_above_the_promise_is_not_adopted()
    with pytest.raises(AssertionError):  # over TCP: the invented value is chosen on the honest acceptor
        liar_tests.test_a_lying_acceptor_beside_an_honest_one_and_one_down("vote above the promise", caplog)


def test_chunk_replies_merged_unchecked_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp, "chunk_fault", lambda original, reply: None)
    with pytest.raises(AssertionError):
        liar_tests.test_a_lie_in_one_chunk_loses_the_merged_reply()
