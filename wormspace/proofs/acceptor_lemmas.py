"""Per-step refinement lemmas of the acceptor layer, in Lamport's *Voting* style, for CrossHair.

The abstraction (DESIGN §5): beside the acceptors' states keep a ghost set of every vote ever cast,
``(acceptor, ballot, value)``, and the set of proposals ever sent, ``(ballot, value)``. The register is
``Written(v)`` iff a quorum voted ``v`` at one ballot. Safety of the WOR follows from four invariants:

* ``one_value_per_ballot`` -- proposals (and so votes) name at most one value per ballot;
* ``votes_are_proposals`` and ``votes_below_promise`` -- an acceptor votes only for proposed values, never
  above its promise, and its current state is its highest vote;
* ``safe_at`` for every proposal ``(b, v)``: for every lower ballot ``c`` some quorum has each member either
  voted ``v`` at ``c``, or not voted at ``c`` and promised above ``c`` (so no other value is or can still be
  chosen below ``b``).

One lemma per step: ``prepare_step_preserves`` and ``accept_step_preserves`` run the *real* acceptor
handlers (``acceptor.on_prepare`` / ``acceptor.on_accept``) on one register, and
``propose_step_preserves`` runs the *real* proposer choice (``wor._highest_votes`` over the promises of a
quorum sized by ``wor.Ctx.quorum``). Each has ``@require(the invariants hold)`` and ``@ensure(they hold
after the step)``. CrossHair searches their small symbolic inputs (3 acceptors, ballots 1..3 of one
proposer each, values 0..1) for a step that breaks them. These are bounded searches: "no counterexample
found within the time limit", not proofs.

Encoding (small ints, so the symbolic search stays cheap): an acceptor's register is
``(promised, accepted, value)`` with ballots as numbers 0..3 (0 = none) and ``value`` in 0..1 (meaningful
only when ``accepted > 0``). A ballot number ``n`` stands for ``Ballot(n, n)``: one proposer per ballot.

The lemmas' own contracts are plain icontract (always on); run CrossHair with ``WORMSPACE_CONTRACTS=0``
so the callees' contracts stay out of the search (``crosshair_runner`` does).
"""

from __future__ import annotations

import icontract

from wormspace.layers import acceptor as acc
from wormspace.layers import wor
from wormspace.layers.messages import ZERO_BALLOT, Accept, Accepted, Ballot, Prepare, Promise, RegState, Vote

N = 3  # acceptors
MAX_BALLOT = 3
Reg3 = tuple[int, int, int]
States = tuple[Reg3, Reg3, Reg3]
GhostVote3 = tuple[int, int, int]  # (acceptor, ballot, value)
Proposal = tuple[int, int]  # (ballot, value)


def _ballot(n: int) -> Ballot:
    return ZERO_BALLOT if n == 0 else Ballot(n, n)


def _reg(t: Reg3) -> RegState:
    p, a, v = t
    return RegState(promised=_ballot(p), accepted=_ballot(a), value=bytes([v]) if a else None)


def _unreg(r: RegState) -> Reg3:
    return (r.promised.number, r.accepted.number, r.value[0] if r.value else 0)


class _One:
    """A StoreView holding one register (segment 0, index 0)."""

    def __init__(self, reg: Reg3) -> None:
        self.reg = _reg(reg)

    def get(self, segment: int, index: int) -> RegState | None:
        return self.reg if (segment, index) == (0, 0) else None


# ---- the invariants -------------------------------------------------------------------------------------


def well_formed(states: States, votes: tuple[GhostVote3, ...], proposals: tuple[Proposal, ...]) -> bool:
    return (
        len(states) == N
        and all(0 <= a <= p <= MAX_BALLOT and 0 <= v <= 1 for p, a, v in states)
        and all(0 <= x < N and 1 <= b <= MAX_BALLOT and 0 <= v <= 1 for x, b, v in votes)
        and all(1 <= b <= MAX_BALLOT and 0 <= v <= 1 for b, v in proposals)
        and len(votes) <= 6
        and len(proposals) <= MAX_BALLOT
    )


def one_value_per_ballot(proposals: tuple[Proposal, ...]) -> bool:
    return all(v1 == v2 for b1, v1 in proposals for b2, v2 in proposals if b1 == b2)


def votes_are_proposals(votes: tuple[GhostVote3, ...], proposals: tuple[Proposal, ...]) -> bool:
    return all((b, v) in proposals for _, b, v in votes)


def votes_below_promise(states: States, votes: tuple[GhostVote3, ...]) -> bool:
    """No vote above the acceptor's promise; the current state is the acceptor's highest vote."""
    for x in range(N):
        p, a, v = states[x]
        mine = [(b, val) for y, b, val in votes if y == x]
        if any(b > p for b, _ in mine):
            return False
        top = max((b for b, _ in mine), default=0)
        if a != top or (a and (a, v) not in mine):
            return False
    return True


def _voted(votes: tuple[GhostVote3, ...], x: int, c: int) -> set[int]:
    return {v for y, b, v in votes if y == x and b == c}


def safe_at(states: States, votes: tuple[GhostVote3, ...], b: int, v: int) -> bool:
    """No value other than ``v`` is or can still be chosen at any ballot below ``b``."""
    quorum = N // 2 + 1
    for c in range(1, b):
        ok = [x for x in range(N) if _voted(votes, x, c) <= {v} and (v in _voted(votes, x, c) or states[x][0] > c)]
        if len(ok) < quorum:
            return False
    return True


def invariants(states: States, votes: tuple[GhostVote3, ...], proposals: tuple[Proposal, ...]) -> bool:
    return (
        well_formed(states, votes, proposals)
        and one_value_per_ballot(proposals)
        and votes_are_proposals(votes, proposals)
        and votes_below_promise(states, votes)
        and all(safe_at(states, votes, b, v) for b, v in proposals)
    )


def chosen(votes: tuple[GhostVote3, ...]) -> set[int]:
    """The abstraction function: values a quorum voted for at one ballot."""
    quorum = N // 2 + 1
    return {v for _, b, v in votes if len({x for x, c, w in votes if c == b and w == v}) >= quorum}


# ---- the lemmas -----------------------------------------------------------------------------------------

StepResult = tuple[States, tuple[GhostVote3, ...], tuple[Proposal, ...]]


def _replace(states: States, x: int, reg: Reg3) -> States:
    s = list(states)
    s[x] = reg
    return (s[0], s[1], s[2])


@icontract.require(lambda states, votes, proposals: invariants(states, votes, proposals))
@icontract.require(lambda x, ballot: 0 <= x < N and 1 <= ballot <= MAX_BALLOT)
@icontract.ensure(lambda result: invariants(*result), "a prepare step preserves the invariants")
@icontract.ensure(lambda votes, result: chosen(votes) <= chosen(result[1]), "chosen values stay chosen")
def prepare_step_preserves(
    states: States, votes: tuple[GhostVote3, ...], proposals: tuple[Proposal, ...], x: int, ballot: int
) -> StepResult:
    """Acceptor ``x`` handles ``Prepare(ballot)`` with the real handler."""
    persist, _reply = acc.on_prepare(_One(states[x]), Prepare(req=0, segment=0, indices=(0,), ballot=_ballot(ballot)))
    if persist is not None:
        for _key, reg in persist.puts:
            states = _replace(states, x, _unreg(reg))
    return states, votes, proposals


@icontract.require(lambda states, votes, proposals: invariants(states, votes, proposals))
@icontract.require(lambda x, ballot, value, proposals: 0 <= x < N and (ballot, value) in proposals)
@icontract.ensure(lambda result: invariants(*result), "an accept step preserves the invariants")
@icontract.ensure(lambda result: len(chosen(result[1])) <= 1, "always_single_value_chosen")
def accept_step_preserves(
    states: States,
    votes: tuple[GhostVote3, ...],
    proposals: tuple[Proposal, ...],
    x: int,
    ballot: int,
    value: int,
) -> StepResult:
    """Acceptor ``x`` handles ``Accept(ballot, value)`` (a proposal that was sent) with the real handler."""
    persist, reply = acc.on_accept(
        _One(states[x]),
        Accept(req=0, segment=0, ballot=_ballot(ballot), values=((0, bytes([value])),)),
    )
    if persist is not None and isinstance(reply, Accepted):
        for _key, reg in persist.puts:
            states = _replace(states, x, _unreg(reg))
        if (x, ballot, value) not in votes:
            votes = (*votes, (x, ballot, value))
    return states, votes, proposals


def _promise_quorum_ok(states: States, quorum: tuple[int, ...], ballot: int) -> bool:
    size = wor.Ctx(node=0, acceptors=tuple(range(N))).quorum
    return (
        len(quorum) == size
        and len(set(quorum)) == len(quorum)
        and all(0 <= x < N and states[x][0] == ballot for x in quorum)
    )


@icontract.require(lambda states, votes, proposals: invariants(states, votes, proposals))
@icontract.require(lambda ballot, own: 1 <= ballot <= MAX_BALLOT and 0 <= own <= 1)
@icontract.require(lambda proposals, ballot: all(b != ballot for b, _ in proposals), "one proposer per ballot")
@icontract.require(lambda states, quorum, ballot: _promise_quorum_ok(states, quorum, ballot))
@icontract.ensure(lambda result: invariants(*result), "a proposal keeps the invariants (it is safe)")
def propose_step_preserves(
    states: States,
    votes: tuple[GhostVote3, ...],
    proposals: tuple[Proposal, ...],
    quorum: tuple[int, ...],
    ballot: int,
    own: int,
) -> StepResult:
    """The proposer of ``ballot`` holds promises from ``quorum`` (each reporting its current vote) and picks
    its value with the real choice: the highest-ballot vote reported, else its own value."""
    promises = []
    for x in quorum:
        _p, a, v = states[x]
        vs = (Vote(index=0, ballot=_ballot(a), value=bytes([v])),) if a else ()
        promises.append(Promise(req=0, segment=0, ballot=_ballot(ballot), votes=vs))
    best = wor._highest_votes(promises)
    value = best[0].value[0] if 0 in best else own
    return states, votes, (*proposals, (ballot, value))


# ---- focused lemmas: one rule each, small inputs -------------------------------------------------------


@icontract.require(lambda reg, ballot, value: _reg_ok3(reg) and 1 <= ballot <= MAX_BALLOT and 0 <= value <= 1)
@icontract.ensure(lambda reg, ballot, result: not result or ballot >= reg[0], "Rule 2: never vote below the promise")
def accept_respects_promise(reg: Reg3, ballot: int, value: int) -> bool:
    """Returns whether the real handler voted for ``Accept(ballot, value)`` on register ``reg``."""
    _, reply = acc.on_accept(_One(reg), Accept(req=0, segment=0, ballot=_ballot(ballot), values=((0, bytes([value])),)))
    return isinstance(reply, Accepted)


@icontract.require(lambda reg, ballot: _reg_ok3(reg) and 1 <= ballot <= MAX_BALLOT)
@icontract.ensure(
    lambda reg, ballot, result: (result[0] >= reg[0]) and (result[1:] == reg[1:]),
    "Rule 1: a prepare only raises the promise and keeps the vote",
)
@icontract.ensure(
    lambda reg, ballot, result: result[0] == max(reg[0], ballot) or ballot < reg[0],
    "Rule 1: promise the ballot unless a higher promise exists",
)
def prepare_raises_promise(reg: Reg3, ballot: int) -> Reg3:
    """The register after the real handler sees ``Prepare(ballot)``."""
    persist, _ = acc.on_prepare(_One(reg), Prepare(req=0, segment=0, indices=(0,), ballot=_ballot(ballot)))
    if persist is None:
        return reg
    return _unreg(persist.puts[0][1])


def _reg_ok3(reg: Reg3) -> bool:
    p, a, v = reg
    return 0 <= a <= p <= MAX_BALLOT and 0 <= v <= 1 and (a > 0 or v == 0)


@icontract.require(lambda r1, r2: _reg_ok3(r1) and _reg_ok3(r2) and (r1[1] != r2[1] or r1[2] == r2[2] or r1[1] == 0))
@icontract.require(lambda own: 0 <= own <= 1)
@icontract.ensure(
    lambda r1, r2, own, result: result == own if r1[1] == 0 and r2[1] == 0 else result == max(r1[1:], r2[1:])[1],
    "adopt the value of the highest-ballot vote a quorum reports, else propose one's own",
)
def proposer_adopts_highest(r1: Reg3, r2: Reg3, own: int) -> int:
    """The value the real proposer choice picks from the promises of a two-acceptor quorum."""
    promises = [
        Promise(
            req=0,
            segment=0,
            ballot=_ballot(MAX_BALLOT),
            votes=(Vote(index=0, ballot=_ballot(a), value=bytes([v])),) if a else (),
        )
        for _, a, v in (r1, r2)
    ]
    best = wor._highest_votes(promises)
    return best[0].value[0] if 0 in best else own


class _Floored(_One):
    """A StoreView holding one register and an acceptor-wide floor (``acceptor.FLOOR_KEY``; Rule 6)."""

    def __init__(self, reg: Reg3, floor: int) -> None:
        super().__init__(reg)
        self.floor = RegState(promised=_ballot(floor)) if floor else None

    def get(self, segment: int, index: int) -> RegState | None:
        if (segment, index) == acc.FLOOR_KEY:
            return self.floor
        return super().get(segment, index)


@icontract.require(
    lambda reg, floor, ballot, value: _reg_ok3(reg) and 0 <= floor <= MAX_BALLOT and 1 <= ballot <= MAX_BALLOT
    and 0 <= value <= 1
)
@icontract.ensure(
    lambda floor, ballot, result: ballot >= floor or result == (False, False),
    "Rule 6: below the floor no register promises or votes, touched or not",
)
@icontract.ensure(
    lambda reg, floor, ballot, result: not result[1] or ballot >= max(reg[0], floor),
    "Rules 2 and 6: a vote is at or above both the promise and the floor",
)
def floor_refuses_below(reg: Reg3, floor: int, ballot: int, value: int) -> tuple[bool, bool]:
    """Whether the real handlers changed anything on ``Prepare(ballot)`` and on ``Accept(ballot, value)``, for
    register ``reg`` of an acceptor whose floor is ``floor`` (0: never fenced)."""
    view = _Floored(reg, floor)
    promised, _ = acc.on_prepare(view, Prepare(req=0, segment=0, indices=(0,), ballot=_ballot(ballot)))
    voted, _ = acc.on_accept(
        view, Accept(req=0, segment=0, ballot=_ballot(ballot), values=((0, bytes([value])),))
    )
    return promised is not None, voted is not None




# ---- per-case Voting lemmas: one handler branch each, flat small-int inputs ------------------------------
#
# The whole-step lemmas above take the ghost log and the proposals as symbolic tuples of tuples; CrossHair's
# search over such inputs is slow (it found neither the accept-below-promise nor the no-adopt mutant in 150
# s per condition). The lemmas below state the same Voting invariants, but each covers one branch of one
# handler, and its inputs are a few small ints (ballots 0..2): the three registers, and up to two proposals
# beside the votes. The ghost log is the acceptors' current votes (one per acceptor): the invariants are
# checked on those states, a subset of the reachable ones (an acceptor's earlier, overwritten votes are not
# represented). Each lemma also states its branch's own postcondition (e.g. "below the promise nothing
# changes"), which names the broken rule directly.

CASE_BALLOT = 2


def _case_state(
    p0: int, a0: int, v0: int, p1: int, a1: int, v1: int, p2: int, a2: int, v2: int, b1: int, w1: int, b2: int,
    w2: int,
) -> tuple[States, tuple[GhostVote3, ...], tuple[Proposal, ...]]:
    states: States = ((p0, a0, v0), (p1, a1, v1), (p2, a2, v2))
    votes = tuple((x, a, v) for x, (_p, a, v) in enumerate(states) if a)
    proposals = tuple(sorted({(a, v) for _x, a, v in votes} | {(b, w) for b, w in ((b1, w1), (b2, w2)) if b}))
    return states, votes, proposals


def _case_ok(
    p0: int, a0: int, v0: int, p1: int, a1: int, v1: int, p2: int, a2: int, v2: int, b1: int, w1: int, b2: int,
    w2: int,
) -> bool:
    """The inputs are in the small domain and the Voting invariants hold of the state they encode."""
    small = all(0 <= a <= p <= CASE_BALLOT and 0 <= v <= 1 and (a > 0 or v == 0)
                for p, a, v in ((p0, a0, v0), (p1, a1, v1), (p2, a2, v2)))
    small = small and all(0 <= b <= CASE_BALLOT and 0 <= w <= 1 and (b > 0 or w == 0) for b, w in ((b1, w1), (b2, w2)))
    return small and invariants(*_case_state(p0, a0, v0, p1, a1, v1, p2, a2, v2, b1, w1, b2, w2))


def _accept_on(states: States, votes: tuple[GhostVote3, ...], x: int, ballot: int, value: int) -> tuple[
    States, tuple[GhostVote3, ...]
]:
    persist, reply = acc.on_accept(
        _One(states[x]), Accept(req=0, segment=0, ballot=_ballot(ballot), values=((0, bytes([value])),))
    )
    if persist is not None:
        for _key, reg in persist.puts:
            states = _replace(states, x, _unreg(reg))
        if isinstance(reply, Accepted) and (x, ballot, value) not in votes:
            votes = (*votes, (x, ballot, value))
    return states, votes


@icontract.require(lambda p0, a0, v0, p1, a1, v1, p2, a2, v2, b1, w1, b2, w2: _case_ok(
    p0, a0, v0, p1, a1, v1, p2, a2, v2, b1, w1, b2, w2))
@icontract.require(lambda b1, x: b1 > 0 and 0 <= x < N)
@icontract.require(lambda p0, p1, p2, x, b1: b1 < (p0, p1, p2)[x], "the case: an Accept below the promise")
@icontract.ensure(lambda p0, a0, v0, p1, a1, v1, p2, a2, v2, x, result: result[0][x] == (
    (p0, a0, v0), (p1, a1, v1), (p2, a2, v2))[x], "Rule 2: below the promise the register does not change")
@icontract.ensure(lambda result: invariants(*result), "an accept below the promise preserves the invariants")
def accept_case_below_promise(
    p0: int, a0: int, v0: int, p1: int, a1: int, v1: int, p2: int, a2: int, v2: int, b1: int, w1: int, b2: int,
    w2: int, x: int,
) -> StepResult:
    """Acceptor ``x`` gets ``Accept(b1, w1)`` (a sent proposal) with ``b1`` below its promise."""
    states, votes, proposals = _case_state(p0, a0, v0, p1, a1, v1, p2, a2, v2, b1, w1, b2, w2)
    states, votes = _accept_on(states, votes, x, b1, w1)
    return states, votes, proposals


@icontract.require(lambda p0, a0, v0, p1, a1, v1, p2, a2, v2, b1, w1, b2, w2: _case_ok(
    p0, a0, v0, p1, a1, v1, p2, a2, v2, b1, w1, b2, w2))
@icontract.require(lambda b1, x: b1 > 0 and 0 <= x < N)
@icontract.require(lambda p0, p1, p2, x, b1: b1 >= (p0, p1, p2)[x], "the case: an Accept at or above the promise")
@icontract.ensure(lambda x, b1, w1, result: result[0][x][1:] == (b1, w1) and result[0][x][0] >= b1,
                  "Rule 2: at or above the promise the acceptor votes the proposal")
@icontract.ensure(lambda result: invariants(*result), "an accept at or above the promise preserves the invariants")
@icontract.ensure(lambda result: len(chosen(result[1])) <= 1, "always_single_value_chosen")
def accept_case_at_or_above_promise(
    p0: int, a0: int, v0: int, p1: int, a1: int, v1: int, p2: int, a2: int, v2: int, b1: int, w1: int, b2: int,
    w2: int, x: int,
) -> StepResult:
    """Acceptor ``x`` gets ``Accept(b1, w1)`` (a sent proposal) with ``b1`` at or above its promise."""
    states, votes, proposals = _case_state(p0, a0, v0, p1, a1, v1, p2, a2, v2, b1, w1, b2, w2)
    states, votes = _accept_on(states, votes, x, b1, w1)
    return states, votes, proposals


def _quorum_promised(p0: int, p1: int, p2: int, out: int, ballot: int) -> bool:
    """``out`` is the acceptor left out of a two-acceptor quorum whose members promised ``ballot``; the
    quorum is the real ``Ctx.quorum`` in size."""
    size = wor.Ctx(node=0, acceptors=tuple(range(N))).quorum
    members = [x for x in range(N) if x != out]
    return 0 <= out < N and len(members) >= size and all((p0, p1, p2)[x] == ballot for x in members[:size])


def _propose(states: States, out: int, ballot: int, own: int) -> int:
    """The real proposer choice over the promises of the quorum without ``out``: the value proposed."""
    size = wor.Ctx(node=0, acceptors=tuple(range(N))).quorum
    promises = []
    for x in [y for y in range(N) if y != out][:size]:
        _p, a, v = states[x]
        vs = (Vote(index=0, ballot=_ballot(a), value=bytes([v])),) if a else ()
        promises.append(Promise(req=0, segment=0, ballot=_ballot(ballot), votes=vs))
    best = wor._highest_votes(promises)
    return best[0].value[0] if 0 in best else own


def _reported(states: States, out: int) -> list[tuple[int, int]]:
    return [(states[x][1], states[x][2]) for x in range(N) if x != out and states[x][1]]


@icontract.require(lambda p0, a0, v0, p1, a1, v1, p2, a2, v2, b1, w1: _case_ok(
    p0, a0, v0, p1, a1, v1, p2, a2, v2, b1, w1, 0, 0))
@icontract.require(lambda ballot, own: 1 <= ballot <= CASE_BALLOT and 0 <= own <= 1)
@icontract.require(lambda a0, v0, a1, v1, a2, v2, b1, w1, ballot: all(
    b != ballot for b, _ in ((a0, v0), (a1, v1), (a2, v2), (b1, w1)) if b), "one proposer per ballot")
@icontract.require(lambda p0, p1, p2, out, ballot: _quorum_promised(p0, p1, p2, out, ballot))
@icontract.require(lambda a0, v0, a1, v1, a2, v2, out: any(
    a for x, (a, _) in enumerate(((a0, v0), (a1, v1), (a2, v2))) if x != out), "the case: some promise reports a vote")
@icontract.ensure(lambda a0, v0, a1, v1, a2, v2, out, ballot, result: (ballot, max(
    (a, v) for x, (a, v) in enumerate(((a0, v0), (a1, v1), (a2, v2))) if x != out and a)[1]) in result[2],
    "adopt the value of the highest-ballot vote reported")
@icontract.ensure(lambda result: invariants(*result), "the adopted proposal is safe (the invariants hold)")
def propose_case_adopts(
    p0: int, a0: int, v0: int, p1: int, a1: int, v1: int, p2: int, a2: int, v2: int, b1: int, w1: int, out: int,
    ballot: int, own: int,
) -> StepResult:
    """The proposer of ``ballot`` holds the promises of the quorum without ``out``, one of which reports a
    vote; it proposes with the real choice."""
    states, votes, proposals = _case_state(p0, a0, v0, p1, a1, v1, p2, a2, v2, b1, w1, 0, 0)
    value = _propose(states, out, ballot, own)
    return states, votes, tuple(sorted({*proposals, (ballot, value)}))


@icontract.require(lambda p0, a0, v0, p1, a1, v1, p2, a2, v2, b1, w1: _case_ok(
    p0, a0, v0, p1, a1, v1, p2, a2, v2, b1, w1, 0, 0))
@icontract.require(lambda ballot, own: 1 <= ballot <= CASE_BALLOT and 0 <= own <= 1)
@icontract.require(lambda a0, v0, a1, v1, a2, v2, b1, w1, ballot: all(
    b != ballot for b, _ in ((a0, v0), (a1, v1), (a2, v2), (b1, w1)) if b), "one proposer per ballot")
@icontract.require(lambda p0, p1, p2, out, ballot: _quorum_promised(p0, p1, p2, out, ballot))
@icontract.require(lambda a0, a1, a2, out: not any(
    a for x, a in enumerate((a0, a1, a2)) if x != out), "the case: no promise reports a vote")
@icontract.ensure(lambda ballot, own, result: (ballot, own) in result[2], "with no vote reported, propose one's own")
@icontract.ensure(lambda result: invariants(*result), "a free proposal is safe (the invariants hold)")
def propose_case_free(
    p0: int, a0: int, v0: int, p1: int, a1: int, v1: int, p2: int, a2: int, v2: int, b1: int, w1: int, out: int,
    ballot: int, own: int,
) -> StepResult:
    """The proposer of ``ballot`` holds the promises of the quorum without ``out``, none reporting a vote."""
    states, votes, proposals = _case_state(p0, a0, v0, p1, a1, v1, p2, a2, v2, b1, w1, 0, 0)
    value = _propose(states, out, ballot, own)
    return states, votes, tuple(sorted({*proposals, (ballot, value)}))


TARGETS = (
    "wormspace.proofs.acceptor_lemmas.accept_respects_promise",
    "wormspace.proofs.acceptor_lemmas.prepare_raises_promise",
    "wormspace.proofs.acceptor_lemmas.proposer_adopts_highest",
    "wormspace.proofs.acceptor_lemmas.floor_refuses_below",
    "wormspace.proofs.acceptor_lemmas.accept_case_below_promise",
    "wormspace.proofs.acceptor_lemmas.accept_case_at_or_above_promise",
    "wormspace.proofs.acceptor_lemmas.propose_case_adopts",
    "wormspace.proofs.acceptor_lemmas.propose_case_free",
    "wormspace.proofs.acceptor_lemmas.prepare_step_preserves",
    "wormspace.proofs.acceptor_lemmas.accept_step_preserves",
    "wormspace.proofs.acceptor_lemmas.propose_step_preserves",
)
