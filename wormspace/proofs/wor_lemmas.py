"""Lemmas of the WOR layer's proposer core (``wormspace.layers.wor``), for CrossHair.

Each lemma drives the *real* operation core through its entry points (``op_start``, ``op_on_reply``) on
small symbolic inputs and states, as icontract postconditions, one rule of the proposer:

* ``adoption_picks_highest_ballot`` -- the adoption rule (wor.py, phase 1): from the promises of a quorum
  at ballot ``b`` the capture proposes the value of the vote with the highest *ballot* -- number first, then
  the proposer's node, so two proposers' votes at one number never tie -- else its own; this is what makes
  the value proposed at ``b`` safe at ``b`` (no other value is or can still be chosen below ``b``: the
  acceptor-layer lemmas ``propose_case_*`` check that consequence on the Voting invariants). Votes here
  carry ballots of two proposer nodes, so a rule comparing ballot numbers only is caught.
* ``write_stale_only_when_certain`` -- the stale rule (wor.py Rule 2): a write reports a register
  ``stale`` (certainly not written) after its accept phase only when it is the write's first round at the
  capture's ballot (its own value never went out at any other ballot) and every acceptor refused it without
  having voted at that ballot. In a retry round the write's value may already be voted at the capture's
  ballot, so a retry round never reports stale.

Inputs are a few small ints (ballot numbers 0..3, two proposer nodes, values 0..1). These are bounded
searches: "no counterexample found within the time limit", not proofs. Run CrossHair with
``WORMSPACE_CONTRACTS=0`` so the callees' contracts stay out of the search (``crosshair_runner`` does).
"""

from __future__ import annotations

from dataclasses import replace

import icontract

from wormspace.layers import wor
from wormspace.layers.messages import ZERO_BALLOT, Accepted, Ballot, Nack, Promise, Reply, Vote
from wormspace.layers.wor import Config, Ctx, Kind, OpRequest, Phase

N = 3
NODES = (101, 102)  # two proposers: votes at one ballot number may come from either
OWN_NODE = 103
MAX_NUMBER = 3


def _ctx() -> Ctx:
    return Ctx(node=OWN_NODE, acceptors=tuple(range(N)), config=Config(max_rounds=2, max_resends=0))


def _vote_ok(n: int, who: int, v: int) -> bool:
    return 0 <= n <= MAX_NUMBER and who in (0, 1) and 0 <= v <= 1 and (n > 0 or (who == 0 and v == 0))


def _one_value_per_ballot(n0: int, w0: int, v0: int, n1: int, w1: int, v1: int) -> bool:
    return not (n0 and n0 == n1 and w0 == w1 and v0 != v1)


def _highest(n0: int, w0: int, v0: int, n1: int, w1: int, v1: int, own: int) -> int:
    """The spec of the adoption rule: the value of the highest (number, node) vote reported, else own."""
    votes = [((n, NODES[w]), v) for n, w, v in ((n0, w0, v0), (n1, w1, v1)) if n]
    return max(votes)[1] if votes else own


@icontract.require(lambda n0, w0, v0, n1, w1, v1: _vote_ok(n0, w0, v0) and _vote_ok(n1, w1, v1))
@icontract.require(lambda n0, w0, v0, n1, w1, v1: _one_value_per_ballot(n0, w0, v0, n1, w1, v1),
                   "a ballot carries one value")
@icontract.require(lambda own: 0 <= own <= 1)
@icontract.ensure(lambda n0, w0, v0, n1, w1, v1, own, result: result == _highest(n0, w0, v0, n1, w1, v1, own),
                  "adopt the value of the highest-ballot vote (number, then node), else one's own")
def adoption_picks_highest_ballot(n0: int, w0: int, v0: int, n1: int, w1: int, v1: int, own: int) -> int:
    """A capture (a round proposing ``own`` as its default, as a write's resolution does) hears the promises
    of acceptors 0 and 1 (a quorum of three), reporting votes ``(n0, node w0, v0)`` and ``(n1, node w1, v1)``
    (number 0: no vote); returns the value its accept phase proposes."""
    ctx = _ctx()
    request = OpRequest(kind=Kind.PROPOSE, segment=0, values=((0, bytes([own])),))
    op, _ = wor.op_start(1, request, ctx, Ballot(MAX_NUMBER, 0))
    for src, (n, w, v) in enumerate(((n0, w0, v0), (n1, w1, v1))):
        votes = (Vote(index=0, ballot=Ballot(n, NODES[w]), value=bytes([v])),) if n else ()
        op, _ = wor.op_on_reply(op, src, Promise(req=op.req, segment=0, ballot=op.ballot, votes=votes), ctx)
    assert op.phase is Phase.ACCEPT, "a quorum of promises starts the accept phase"
    return op.proposal[0][1][0]


# a reply to a write's accept phase at ballot number WRITE_NUMBER, by code: 0 Accepted; a Nack (promised
# above the ballot) that voted at nothing (1), below the ballot (2), or above it (3: the write is not certain)
WRITE_NUMBER = 2
CLEAN = (1, 2)


def _reply(op: wor.Op, code: int) -> Reply:
    if code == 0:
        return Accepted(req=op.req, segment=0, ballot=op.ballot)
    promised = Ballot(WRITE_NUMBER + 1, NODES[1])
    accepted = {1: ZERO_BALLOT, 2: Ballot(WRITE_NUMBER - 1, NODES[1]), 3: promised}[code]
    return Nack(req=op.req, segment=0, ballot=op.ballot, promised=promised, accepted=accepted)


@icontract.require(lambda rounds, r0, r1, r2: rounds in (0, 1) and all(0 <= r <= 3 for r in (r0, r1, r2)))
@icontract.ensure(
    lambda rounds, r0, r1, r2, result: not result or (rounds == 0 and all(r in CLEAN for r in (r0, r1, r2))),
    "Rule 2: stale only in the first round, when every acceptor refused without voting at the ballot",
)
def write_stale_only_when_certain(rounds: int, r0: int, r1: int, r2: int) -> bool:
    """A write's accept phase at the capture's ballot (``rounds`` 0: its first accept; 1: the accept phase of
    a retry round) hears the three acceptors' replies ``r0, r1, r2`` in order (codes above); returns
    whether the write reported its register stale."""
    ctx = _ctx()
    request = OpRequest(kind=Kind.WRITE, segment=0, values=((0, b"\x01"),), ballot=Ballot(WRITE_NUMBER, OWN_NODE))
    op, _ = wor.op_start(1, request, ctx)
    if rounds:
        op = replace(op, rounds=rounds)
    for src, code in enumerate((r0, r1, r2)):
        op, _ = wor.op_on_reply(op, src, _reply(op, code), ctx)
        if op.phase is not Phase.ACCEPT:
            break
    return op.phase is Phase.DONE and op.outcome is not None and 0 in op.outcome.stale


TARGETS = (
    "wormspace.proofs.wor_lemmas.adoption_picks_highest_ballot",
    "wormspace.proofs.wor_lemmas.write_stale_only_when_certain",
)
