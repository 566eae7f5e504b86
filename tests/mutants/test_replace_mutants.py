"""Mutants of the replacement procedure (wormspace/replacement.py): the checks must catch each one.

* ``snapshot_without_fence`` -- the procedure as it was before the fence: snapshot the survivors and
  rebuild the lost acceptor at once, with no fence and no floor (``choose_fence`` gives ``ZERO_BALLOT`` and
  ``fence_complete`` says yes before anything was fenced). The explorer finds the interleaving of the
  report that led to the fence (the lost acceptor voted, the Accept to a survivor arrived after the
  snapshot, the rebuilt acceptor and the third report no vote), shortest trace pinned below; the simulated
  fault schedule of seed 88 gives an ILLEGAL history (1 of seeds 0-399 with the disk lost at a random time
  in [2, 50] ms and the procedure run at once, 4 processes x 10 operations on 4 registers, no drops).
* ``mixed_floor_quorum`` -- proposers count promises of any floors towards a quorum (replacement Rule 4
  off). Catching it needs two writers whose promises from the lost acceptor, given before it died, complete
  quorums with a survivor's promises given after the fence: the explorer finds it with two racing writers
  and a replacement (17 steps, 662,316 states visited; slow), and a directed replay of a variant (a
  promise of the lost acceptor above the fence; test_replacement.py shows each step) ends with two values
  chosen.

The same checks pass on the correct procedure (tests/test_replacement.py, tests/refinement/test_explore.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from wormspace import replacement
from wormspace.layers import wor
from wormspace.layers.acceptor import AcceptorNode, MemoryStorage
from wormspace.layers.effects import Send
from wormspace.layers.messages import (
    ZERO_BALLOT,
    Accept,
    Accepted,
    Ballot,
    Fence,
    Fenced,
    Prepare,
    Promise,
    Read,
    Reply,
    Request,
)
from wormspace.layers.network import Faults
from wormspace.refinement.acceptor_to_wor import run_linearizability
from wormspace.refinement.explore import CAPTURE, VIOLATION, ExploreConfig, explore, replace_config, write
from wormspace.refinement.linearizability import ILLEGAL
from wormspace.replacement import FenceRound, rebuild_state


@pytest.fixture
def snapshot_without_fence(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Plant the old procedure: no fence, no floor; the snapshot is taken as soon as the disk is lost."""
    monkeypatch.setattr(replacement, "choose_fence", lambda replies: ZERO_BALLOT)
    monkeypatch.setattr(replacement, "fence_complete", lambda fence, floors, survivors: True)
    yield


@pytest.fixture
def mixed_floor_quorum(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Plant a proposer that counts promises of different floors towards one quorum."""

    def any_floor(promises: Sequence[Promise], quorum: int) -> list[Promise] | None:
        return list(promises) if len(promises) >= quorum else None

    monkeypatch.setattr(wor, "_same_floor_quorum", any_floor)
    yield


@pytest.mark.usefixtures("snapshot_without_fence")
def test_explorer_catches_the_snapshot_without_a_fence() -> None:
    report = explore(replace_config())
    print("\n" + report.render())
    assert report.verdict == VIOLATION
    assert report.failed == "outcomes_match_spec"
    assert report.violation == "A's read returned EMPTY, but b'a' was chosen when it started"
    assert [label for label, _ in report.trace] == [
        "initial state",
        "A starts: capture",
        "deliver A->acc0 Prepare(b=1.A) => Promise(b=1.A, votes=[])",
        "deliver A->acc1 Prepare(b=1.A) => Promise(b=1.A, votes=[])",
        "A receives Promise(b=1.A, votes=[]) from acc0, Promise(b=1.A, votes=[]) from acc1; A finishes: capture -> ok",
        "A starts: write b'a'",
        "deliver A->acc0 Accept(b=1.A, b'a') => Accepted(b=1.A)",
        "acc0 loses its disk (its registers are gone; it answers nothing)",
        "acc0 is rebuilt from the survivors' registers: promised 1.A; its new incarnation serves",
        "deliver A->acc1 Accept(b=1.A, b'a') => Accepted(b=1.A)",
        "A receives Accepted(b=1.A) from acc0, Accepted(b=1.A) from acc1; A finishes: write b'a' at 1.A -> ok",
        "A starts: read",
        "deliver A->acc0 Read => ReadReply([])",
        "deliver A->acc2 Read => ReadReply([])",
        "A receives ReadReply([]) from acc0, ReadReply([]) from acc2; A finishes: read -> EMPTY",
    ]


@pytest.mark.usefixtures("snapshot_without_fence")
def test_simulated_schedule_catches_the_snapshot_without_a_fence() -> None:
    result = run_linearizability(
        88, crash=False, replace=(1, 0.0211, 0.0211), offsets=4, faults=Faults(drop=0.0, duplicate=0.0)
    )
    print(f"\nseed 88, acceptor 1 loses its disk at 21.1 ms and is replaced at once: {result.verdict}")
    assert result.verdict == ILLEGAL


@pytest.mark.slow
@pytest.mark.usefixtures("mixed_floor_quorum")
def test_explorer_catches_a_quorum_of_mixed_floors() -> None:
    cfg = ExploreConfig(
        scripts=((CAPTURE, write(b"a")), (CAPTURE, write(b"b"))), max_rounds=1, duplicating=False, replacements=1
    )
    report = explore(cfg)
    print("\n" + report.render())
    assert report.verdict == VIOLATION
    assert report.failed == "always_single_value_chosen"
    assert (report.states, len(report.trace) - 1) == (662316, 17)


def _ask(node: AcceptorNode, msg: Request) -> Reply:
    (reply,) = [e.msg for e in node.handle(9, msg) if isinstance(e, Send)]
    assert not isinstance(reply, (Prepare, Accept, Read, Fence))
    return reply


def _phase1(nodes: Sequence[AcceptorNode], ballot: Ballot, heard: Sequence[Promise] = ()) -> list[Promise] | None:
    """A proposer's phase 1 as the WOR core counts it (``wor._same_floor_quorum``)."""
    promises = [*heard]
    for n in nodes:
        reply = _ask(n, Prepare(req=1, segment=0, indices=(0,), ballot=ballot))
        assert isinstance(reply, Promise)
        promises.append(reply)
    return wor._same_floor_quorum(promises, 2)


def _chosen_twice() -> bool:
    """Replay the interleaving; True iff two different values end up chosen (by a quorum at one ballot)."""
    a, b, c = (AcceptorNode(i, MemoryStorage()) for i in range(3))
    old = _ask(a, Prepare(req=1, segment=0, indices=(0,), ballot=Ballot(10, 7)))  # A promises (10, p), dies
    assert isinstance(old, Promise)
    fr = FenceRound((1, 2))
    pending = fr.start()
    while pending:
        nxt = []
        for d, q in pending:
            reply = _ask((b, c)[d - 1], q)
            assert isinstance(reply, Fenced)
            nxt += fr.on_reply(d, reply)
        pending = nxt
    snapshots = [list(b.storage.items()), list(c.storage.items())]
    rebuilt = AcceptorNode(0, MemoryStorage(rebuild_state(snapshots, fr.fence)))
    low = Ballot(5, 3)
    assert _phase1([rebuilt, c], low) is not None
    for n in (rebuilt, c):  # x chosen at (5, q) by the rebuilt A and C
        assert isinstance(_ask(n, Accept(req=2, segment=0, ballot=low, values=((0, b"x"),))), Accepted)
    quorum = _phase1([b], Ballot(10, 7), heard=[old])  # the delayed Prepare of (10, p) reaches B
    if quorum is None or any(v.value == b"x" for p in quorum for v in p.votes):
        return False  # the proposer cannot go on with {A, B}: it waits for C, which reports x
    votes = [_ask(n, Accept(req=3, segment=0, ballot=Ballot(10, 7), values=((0, b"y"),))) for n in (b, c)]
    return all(isinstance(v, Accepted) for v in votes)  # y chosen at (10, p) by B and C


@pytest.mark.usefixtures("mixed_floor_quorum")
def test_the_directed_replay_catches_a_quorum_of_mixed_floors() -> None:
    assert _chosen_twice()


def test_the_directed_replay_is_safe_with_the_one_floor_rule() -> None:
    assert not _chosen_twice()
