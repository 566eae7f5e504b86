"""Layer 2: the write-once register (WOR), built from Paxos rounds over the acceptors.

Trusted spec (``WorSpec``, one screen): ``state = EMPTY | Written(v)``; ``write(v)``: EMPTY -> Written(v), ok;
Written(v) -> ok; Written(w != v) -> AlreadyWritten(w); ``read() -> state``. Captures are a liveness device
and not part of the spec: a stale capture may only turn a write into a failure.

Theory of operation. Every client call runs as one *operation* (``Op``), a pure state machine driven by
replies and timeouts (``op_start``, ``op_on_reply``, ``op_on_timeout``). Operations work on a set of registers
of one segment at once, so batch capture and batch write are the same code as single ones.

Rule 1 (capture). Phase 1 at a fresh ballot over the registers; on a quorum of promises that carry one
        acceptor floor (``Promise.floor``: promises from before and after a replacement's fence never make
        up one quorum), every register some
        acceptor reported a vote for gets the highest-ballot value re-proposed at our ballot (Paxos safety:
        *adopt*); when that quorum-accepts the register is known written. The capture is ``(segment,
        indices, ballot)`` plus the values it found written. A refused phase retries at a higher ballot,
        at most ``max_rounds`` rounds.
Rule 2 (write). Phase 2 at the capture's ballot. A quorum of ``Accepted`` -> ok. Every acceptor refused
        with a ``Nack`` whose ``accepted`` is below our ballot -> nobody ever voted at our ballot and
        nobody can any longer (promises and votes only rise): ``CaptureStale``, certainly not applied.
        Anything between (some voted, some refused, or silence) -> the outcome is not yet settled, so
        the write *resolves* it with full Paxos rounds proposing its own value as the default; the result
        is then definite: ok if the chosen value is ours, ``AlreadyWritten(chosen)`` otherwise, or
        ``Indeterminate`` if the rounds run out.
Rule 3 (read). Ask every acceptor for its votes; with a quorum of replies, a register is ``Written(v)``
        if a quorum reports the same vote ``(b, v)``, EMPTY if no reply reports any vote, and otherwise
        *half-written*: the read completes it with a Paxos round proposing only adopted values (a round
        that finds no vote in its quorum proves nothing is chosen below its ballot: EMPTY).
Rule 4 (trim). A ``SegmentTrimmed`` reply for any non-TRIM register ends the operation with ``Trimmed``;
        if an Accept carrying one of our own values was sent, those registers are reported ``unknown``
        (the value may have been chosen before the trim).
Rule 5 (loss and contention). A phase that hears from too few acceptors resends to the silent ones on
        each timeout, at most ``max_resends`` times; requests are idempotent at the acceptor. A Prepare or
        Accept phase that met a ``Nack`` (some acceptor promised a higher ballot) and silence cannot reach
        a quorum at its ballot unless every silent acceptor comes back: on its timeout it starts a new
        round at a higher ballot instead (within ``max_rounds``), so one acceptor down does not turn
        contention into ``Indeterminate``. A write's first Accept is the exception (Rule 2: it waits for
        clean refusals, then resolves). Each round's phase timer is twice the last one's, at most
        ``max_backoff`` times ``timeout``: competing proposers back off. A round is never started above
        the largest ballot number the wire carries (``MAX_INT``, met only by a faulty or hostile peer's
        promise): the operation gives up as when ``max_rounds`` ran out.
Rule 6 (lying acceptors). A reply that names the current phase's request id but could not come from an
        honest acceptor (``reply_fault``) is treated as lost, and counted and reported by ``ClientCore``
        (``on_fault``): one from an acceptor outside the segment's group or for another segment; a kind the
        phase's request never gets (an ``Accepted`` to a Prepare, a ``ReadReply`` to an Accept, any
        ``Fenced``); a ballot other than the one asked; a ``Promise`` reporting a vote for a register not
        asked, a vote above the promised ballot or a floor above it; a ``Nack`` whose promise is not above
        the request's ballot, or whose vote is above its promise; a ``SegmentTrimmed`` to a request naming
        only the TRIM register. So is a reply naming a request id never sent (a later phase, or an operation
        not yet started). A late reply of an earlier phase or of an ended operation is ordinary and ignored
        as before. These are the lies a reply can be caught in; a vote an acceptor invents with a plausible
        ballot cannot be told from a true one (Paxos tolerates crashes, not lies).

The abstraction function maps the ghost set of every vote ever cast (Lamport's *Voting* abstraction) to the
spec: a register is ``Written(v)`` iff a quorum voted ``v`` at one ballot (``abstract_votes``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Final

from wormspace._contracts import CONTRACTS, ensure, require
from wormspace.layers.effects import Effect, Send, SetTimer
from wormspace.layers.messages import (
    MAX_INT,
    TRIM,
    ZERO_BALLOT,
    Accept,
    Accepted,
    Ballot,
    ErrorReply,
    Nack,
    Prepare,
    Promise,
    Read,
    ReadReply,
    Reply,
    SegmentTrimmed,
    Vote,
)

# ---- the trusted spec -----------------------------------------------------------------------------------


class _Empty(enum.Enum):
    """The value of an unwritten register. A singleton; falsy; prints as ``EMPTY``. An enum member, so that a
    type checker narrows ``bytes | EMPTY`` on ``value is EMPTY`` / ``is not EMPTY`` (PEP 484's sentinels)."""

    EMPTY = "EMPTY"

    def __repr__(self) -> str:
        return "EMPTY"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "EMPTY"


EMPTY: Final = _Empty.EMPTY


@dataclass(frozen=True, slots=True)
class WorSpec:
    """TRUSTED. The sequential spec of one write-once register. ``value is None`` means EMPTY."""

    value: bytes | None = None

    def write(self, data: bytes) -> tuple[WorSpec, bytes | None]:
        """Returns the new spec state and ``None`` (ok) or the data already held (AlreadyWritten)."""
        if self.value is None:
            return WorSpec(data), None
        if self.value == data:
            return self, None
        return self, self.value

    def read(self) -> bytes | _Empty:
        return EMPTY if self.value is None else self.value


# ---- the abstraction function ---------------------------------------------------------------------------

GhostVote = tuple[int, Ballot, bytes]  # (acceptor, ballot, value): one vote ever cast for one register


def chosen_values(votes: Iterable[GhostVote], quorum: int) -> set[bytes]:
    """Every value that a quorum voted for at one ballot."""
    by_ballot: dict[tuple[Ballot, bytes], set[int]] = {}
    for acceptor, ballot, value in votes:
        by_ballot.setdefault((ballot, value), set()).add(acceptor)
    return {value for (_, value), who in by_ballot.items() if len(who) >= quorum}


def always_single_value_chosen(votes: Iterable[GhostVote], quorum: int) -> bool:
    """Safety of the register: at most one value is ever chosen."""
    return len(chosen_values(votes, quorum)) <= 1


def abstract_votes(votes: Iterable[GhostVote], quorum: int) -> WorSpec:
    """The abstraction function: Written(v) iff a quorum voted v at one ballot, else EMPTY."""
    chosen = chosen_values(votes, quorum)
    if len(chosen) > 1:
        raise AssertionError(f"two values chosen: {sorted(chosen)!r}")
    return WorSpec(next(iter(chosen)) if chosen else None)


# ---- operations: requests and outcomes ------------------------------------------------------------------


class Kind(enum.Enum):
    CAPTURE = "capture"
    WRITE = "write"
    READ = "read"
    PROPOSE = "propose"  # a full Paxos round with our own values as defaults (alloc, trim, resolution)


class Phase(enum.Enum):
    READ = "read"
    PREPARE = "prepare"
    ACCEPT = "accept"
    DONE = "done"


@dataclass(frozen=True, slots=True, kw_only=True)
class OpRequest:
    """What a client asks of the WOR layer, for registers ``indices`` of ``segment``.

    CAPTURE: ``indices``. WRITE: ``values`` at ``ballot`` (a capture's). READ: ``indices``.
    A WRITE's caller owns the rule *one value per register per ballot*: it must never send, at a capture's
    ballot, a value other than one the capture adopted or one already sent at that ballot (the WOS layer
    enforces this with ``CaptureId`` bookkeeping, wos.py Rule 6; the acceptor refuses a second value at a
    ballot it has voted at, but cannot see the other acceptors' votes).
    PROPOSE: ``values`` as defaults of full Paxos rounds.
    ``repair`` (READ only): complete half-written registers with a Paxos round (Rule 3). With False the read
    is one Read per acceptor and never proposes: half-written registers are reported in ``unknown``, and a
    phase that cannot hear a quorum gives up (``Indeterminate``) instead of falling back to a round.
    """

    kind: Kind
    segment: int
    indices: tuple[int, ...] = ()
    values: tuple[tuple[int, bytes], ...] = ()
    ballot: Ballot = ZERO_BALLOT
    repair: bool = True

    def targets(self) -> tuple[int, ...]:
        return tuple(sorted(i for i, _ in self.values)) if self.values else tuple(sorted(self.indices))


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How an operation ended. ``error`` is op-wide ("Trimmed", "Indeterminate", "CaptureStale").

    Per register: ``chosen`` holds the value known chosen (read, capture adoption, write results);
    ``empty`` the registers a read found EMPTY; ``stale`` the registers a write certainly did not write;
    ``unknown`` the registers whose write is indeterminate. ``ballot`` is a capture's ballot.
    """

    error: str | None = None
    ballot: Ballot = ZERO_BALLOT
    chosen: tuple[tuple[int, bytes], ...] = ()
    empty: tuple[int, ...] = ()
    stale: tuple[int, ...] = ()
    unknown: tuple[int, ...] = ()

    def chosen_map(self) -> dict[int, bytes]:
        return dict(self.chosen)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Knobs of the client core. Times are seconds (virtual ones in the simulator)."""

    timeout: float = 0.2
    max_resends: int = 4
    max_rounds: int = 4
    max_backoff: float = 8.0  # a later round's phase timer is at most this many times ``timeout``

    def __post_init__(self) -> None:
        if not (self.timeout > 0 and self.max_resends >= 0 and self.max_rounds >= 1 and self.max_backoff >= 1):
            raise ValueError("need timeout > 0, max_resends >= 0, max_rounds >= 1, max_backoff >= 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class Ctx:
    """What an operation needs to know about its client: node id (for ballots) and the acceptor group."""

    node: int
    acceptors: tuple[int, ...]
    config: Config = field(default_factory=Config)

    @property
    def quorum(self) -> int:
        return len(self.acceptors) // 2 + 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Op:
    """The state of one operation. Hashable, so the model checker can store it."""

    op_id: int
    request: OpRequest
    phase: Phase
    seq: int = 0  # phase counter; the phase's request id is derived from (op_id, seq)
    ballot: Ballot = ZERO_BALLOT
    rounds: int = 0  # prepare rounds started
    tries: int = 0  # resends in the current phase
    ask: tuple[int, ...] = ()  # registers of the current phase
    proposal: tuple[tuple[int, bytes], ...] = ()  # values of the current accept phase
    replies: tuple[tuple[int, Reply], ...] = ()  # (acceptor, reply) of the current phase, sorted
    max_seen: Ballot = ZERO_BALLOT  # highest promise reported by a refusal
    sent_own: bool = False  # an Accept carrying one of our own values has been sent
    chosen: tuple[tuple[int, bytes], ...] = ()
    empty: tuple[int, ...] = ()
    outcome: Outcome | None = None

    @property
    def req(self) -> int:
        return req_id(self.op_id, self.seq)


_OP_FIELDS: Final = tuple(f.name for f in fields(Op))
_new = object.__new__
_set = object.__setattr__


def _evolve(op: Op, **changes: Any) -> Op:
    """``dataclasses.replace(op, **changes)`` without its per-call field introspection (it dominated the
    client's cost per operation). Field names are the caller's to get right: only this module calls it."""
    new = _new(Op)
    for name in _OP_FIELDS:
        _set(new, name, changes[name] if name in changes else getattr(op, name))
    return new


SEQ_BITS = 16


def req_id(op_id: int, seq: int) -> int:
    return (op_id << SEQ_BITS) | (seq & ((1 << SEQ_BITS) - 1))


def op_of_req(req: int) -> int:
    return req >> SEQ_BITS


Step = tuple[Op, list[Effect]]


# ---- the operation core (pure) --------------------------------------------------------------------------


def _send_phase(op: Op, ctx: Ctx, to: Iterable[int]) -> list[Effect]:
    """Send the current phase's request to acceptors ``to`` and arm the phase timer."""
    msg = _phase_msg(op)
    effects: list[Effect] = [Send(dst=a, msg=msg) for a in to]
    effects.append(SetTimer(token=op.req, delay=phase_timeout(op, ctx.config)))
    return effects


def phase_timeout(op: Op, config: Config) -> float:
    """The phase timer: ``timeout`` in an operation's first round, doubling with each further round up to
    ``max_backoff`` times it (Rule 5: competing proposers back off instead of preempting each other)."""
    return config.timeout * min(2.0 ** max(op.rounds - 1, 0), config.max_backoff)


def checked_phase_msg(op: Op) -> Prepare | Accept | Read:
    """The current phase's request, built by the messages' validating constructors."""
    seg = op.request.segment
    if op.phase is Phase.READ:
        return Read(req=op.req, segment=seg, indices=op.ask)
    if op.phase is Phase.PREPARE:
        return Prepare(req=op.req, segment=seg, indices=op.ask, ballot=op.ballot)
    return Accept(req=op.req, segment=seg, ballot=op.ballot, values=op.proposal)


def fast_phase_msg(op: Op) -> Prepare | Accept | Read:
    """``checked_phase_msg`` without the per-field validation of the message dataclasses (a per-register
    loop on the client's hot path): every field comes from the operation's request, which the API layer
    validated (segments, offsets, values), or from the operation's own request ids and ballots; the
    acceptor's wire decoder validates every message it receives. Equality with ``checked_phase_msg`` is
    checked by tests/layers/test_wor_messages.py."""
    seg = op.request.segment
    m: Prepare | Accept | Read
    if op.phase is Phase.READ:
        m = _new(Read)
        _set(m, "indices", op.ask)
    elif op.phase is Phase.PREPARE:
        m = _new(Prepare)
        _set(m, "indices", op.ask)
        _set(m, "ballot", op.ballot)
    else:
        m = _new(Accept)
        _set(m, "ballot", op.ballot)
        _set(m, "values", op.proposal)
    _set(m, "req", op.req)
    _set(m, "segment", seg)
    return m


_phase_msg = checked_phase_msg if CONTRACTS else fast_phase_msg  # contracts on: every message validated


def _enter(op: Op, ctx: Ctx, **changes: object) -> Step:
    """Start a new phase: fresh request id, no replies, send to every acceptor, arm the timer."""
    new = _evolve(op, seq=op.seq + 1, tries=0, replies=(), **changes)
    return new, _send_phase(new, ctx, ctx.acceptors)


def _next_ballot(op: Op, ctx: Ctx) -> Ballot:
    return Ballot(max(op.ballot.number, op.max_seen.number) + 1, ctx.node)


def _finish(op: Op, outcome: Outcome) -> Step:
    return _evolve(op, phase=Phase.DONE, outcome=outcome), []


def _merge(
    pairs: Iterable[tuple[int, bytes]], more: Iterable[tuple[int, bytes]]
) -> tuple[tuple[int, bytes], ...]:
    d = dict(pairs)
    d.update(more)
    return tuple(sorted(d.items()))


def _own(op: Op) -> dict[int, bytes]:
    return dict(op.request.values)


@require(lambda ctx: len(ctx.acceptors) >= 1)
@require(lambda request: len(request.targets()) >= 1, "an operation names at least one register")
def op_start(op_id: int, request: OpRequest, ctx: Ctx, hint: Ballot = ZERO_BALLOT) -> Step:
    """Begin an operation. ``hint`` is the highest ballot the client has seen (new ballots go above it)."""
    op = Op(op_id=op_id, request=request, phase=Phase.DONE, max_seen=hint)
    targets = request.targets()
    if request.kind is Kind.READ:
        return _enter(op, ctx, phase=Phase.READ, ask=targets)
    if request.kind is Kind.WRITE:
        return _enter(
            op, ctx, phase=Phase.ACCEPT, ask=targets, ballot=request.ballot, proposal=request.values,
            sent_own=True,
        )
    return _start_round(op, ctx, targets)


def _start_round(op: Op, ctx: Ctx, ask: tuple[int, ...]) -> Step:
    if op.rounds >= ctx.config.max_rounds or max(op.ballot.number, op.max_seen.number) >= MAX_INT:
        return _give_up(op, ask, timed_out=False)
    return _enter(op, ctx, phase=Phase.PREPARE, ask=ask, ballot=_next_ballot(op, ctx), rounds=op.rounds + 1)


def _give_up(op: Op, ask: tuple[int, ...], *, timed_out: bool) -> Step:
    """Rounds (contention) or resends (silence) ran out for registers ``ask``."""
    kind = op.request.kind
    if kind is Kind.CAPTURE:
        return _finish(op, Outcome(error="Indeterminate" if timed_out else "CaptureStale", chosen=op.chosen))
    if kind is Kind.READ:
        return _finish(op, Outcome(error="Indeterminate", chosen=op.chosen, empty=op.empty))
    error = "Indeterminate" if timed_out else None
    if op.sent_own:
        return _finish(op, Outcome(error=error, chosen=op.chosen, unknown=ask))
    return _finish(op, Outcome(error=error, chosen=op.chosen, stale=ask))


def _record(op: Op, src: int, reply: Reply) -> Op:
    if any(a == src for a, _ in op.replies):
        return op  # a duplicate
    seen = op.max_seen
    if isinstance(reply, Nack) and reply.promised > seen:
        seen = reply.promised
    return _evolve(op, replies=tuple(sorted((*op.replies, (src, reply)), key=lambda p: p[0])), max_seen=seen)


def _matches(op: Op, reply: Reply) -> bool:
    """A reply belongs to the current phase iff it echoes the phase's request id (and ballot)."""
    if reply.req != op.req or reply.segment != op.request.segment:
        return False
    if op.phase is Phase.READ:
        return isinstance(reply, (ReadReply, SegmentTrimmed, ErrorReply))
    if isinstance(reply, (Promise, Accepted, Nack)):
        if reply.ballot != op.ballot:
            return False
        if op.phase is Phase.PREPARE:
            return not isinstance(reply, Accepted)
        return not isinstance(reply, Promise)
    return isinstance(reply, (SegmentTrimmed, ErrorReply))


def reply_fault(op: Op, src: int, reply: Reply, ctx: Ctx) -> str | None:
    """Rule 6: why ``reply``, naming the current phase's request id, cannot be an honest acceptor's answer to
    that request, or ``None``. Pure; one pass over the reply's votes."""
    if src not in ctx.acceptors:
        return "an answer from an acceptor the request was not sent to"
    if reply.segment != op.request.segment:
        return f"an answer for segment {reply.segment}, not {op.request.segment}"
    if isinstance(reply, ErrorReply):
        return None
    if isinstance(reply, SegmentTrimmed):
        return None if _trim_blocks(op) else "SegmentTrimmed for a request naming only the TRIM register"
    phase = op.phase
    if phase is Phase.READ:
        if not isinstance(reply, ReadReply):
            return f"a {type(reply).__name__} answering a Read"
        return _vote_fault(op, reply.votes, None)
    if isinstance(reply, Nack):
        if reply.ballot != op.ballot:
            return f"a Nack at ballot {tuple(reply.ballot)}, not {tuple(op.ballot)}"
        if not reply.promised > reply.ballot:
            return f"a Nack whose promise {tuple(reply.promised)} is not above the ballot {tuple(reply.ballot)}"
        if reply.accepted > reply.promised:
            return f"a Nack whose vote {tuple(reply.accepted)} is above its promise {tuple(reply.promised)}"
        return None
    if phase is Phase.PREPARE:
        if not isinstance(reply, Promise):
            return f"a {type(reply).__name__} answering a Prepare"
        if reply.ballot != op.ballot:
            return f"a Promise at ballot {tuple(reply.ballot)}, not {tuple(op.ballot)}"
        if reply.floor > reply.ballot:
            return f"a Promise under a floor {tuple(reply.floor)} above its ballot {tuple(reply.ballot)}"
        return _vote_fault(op, reply.votes, reply.ballot)
    if not isinstance(reply, Accepted):
        return f"a {type(reply).__name__} answering an Accept"
    if reply.ballot != op.ballot:
        return f"an Accepted at ballot {tuple(reply.ballot)}, not {tuple(op.ballot)}"
    return None


def _vote_fault(op: Op, votes: tuple[Vote, ...], promised: Ballot | None) -> str | None:
    """Votes of registers not asked, or (in a Promise at ``promised``) above the ballot promised."""
    if not votes:
        return None
    ask: Iterable[int] = op.ask if len(op.ask) <= 8 else frozenset(op.ask)
    for v in votes:
        if v.index not in ask:
            return f"a vote for register {v.index}, not asked"
        if promised is not None and v.ballot > promised:
            return f"a vote at ballot {tuple(v.ballot)}, above the ballot {tuple(promised)} promised"
    return None


def _trim_blocks(op: Op) -> bool:
    return any(i != TRIM for i in op.ask)


@ensure(lambda result: result[0].phase is not Phase.DONE or result[0].outcome is not None)
def op_on_reply(op: Op, src: int, reply: Reply, ctx: Ctx) -> Step:
    """Feed one reply from acceptor ``src`` to the operation."""
    if op.phase is Phase.DONE or src not in ctx.acceptors or not _matches(op, reply):
        return op, []
    if isinstance(reply, SegmentTrimmed) and _trim_blocks(op):
        return _finish(op, Outcome(error="Trimmed", chosen=op.chosen, unknown=op.ask if op.sent_own else ()))
    op = _record(op, src, reply)
    if op.phase is Phase.READ:
        return _read_progress(op, ctx)
    if op.phase is Phase.PREPARE:
        return _prepare_progress(op, ctx)
    return _accept_progress(op, ctx)


def _count(op: Op, kind: type) -> int:
    return sum(1 for _, r in op.replies if isinstance(r, kind))


def _refusals(op: Op) -> int:
    return sum(1 for _, r in op.replies if isinstance(r, (Nack, ErrorReply, SegmentTrimmed)))


def _read_progress(op: Op, ctx: Ctx) -> Step:
    replies = [r for _, r in op.replies if isinstance(r, ReadReply)]
    if len(replies) < ctx.quorum:
        if _refusals(op) > len(ctx.acceptors) - ctx.quorum:
            if not op.request.repair:
                return _give_up(op, op.ask, timed_out=True)
            return _start_round(_evolve(op, empty=()), ctx, op.ask)  # fall back to a full round
        return op, []
    chosen: dict[int, bytes] = {}
    empty: list[int] = []
    half: list[int] = []
    by_index: dict[int, list[Vote]] = {}  # one pass over the votes, not one per register asked
    for r in replies:
        for v in r.votes:
            by_index.setdefault(v.index, []).append(v)
    for i in op.ask:
        votes = by_index.get(i)
        if not votes:
            empty.append(i)
            continue
        tally: dict[tuple[Ballot, bytes], int] = {}
        for v in votes:
            tally[(v.ballot, v.value)] = tally.get((v.ballot, v.value), 0) + 1
        best = [bv for bv, n in tally.items() if n >= ctx.quorum]
        if best:
            chosen[i] = best[0][1]
        else:
            half.append(i)
    op = _evolve(op, chosen=_merge(op.chosen, chosen.items()), empty=tuple(sorted(empty)))
    if not half or not op.request.repair:
        return _finish(op, Outcome(chosen=op.chosen, empty=op.empty, unknown=tuple(half)))
    return _start_round(op, ctx, tuple(half))


def _highest_votes(promises: Sequence[Promise]) -> dict[int, Vote]:
    best: dict[int, Vote] = {}
    for p in promises:
        for v in p.votes:
            if v.index not in best or v.ballot > best[v.index].ballot:
                best[v.index] = v
    return best


def _same_floor_quorum(promises: Sequence[Promise], quorum: int) -> list[Promise] | None:
    """Rule 1: the promises of one floor, if ``quorum`` of them carry it (at most one floor can: a quorum is
    a majority and each acceptor is counted once), else ``None``."""
    by_floor: dict[Ballot, list[Promise]] = {}
    for p in promises:
        by_floor.setdefault(p.floor, []).append(p)
    for group in by_floor.values():
        if len(group) >= quorum:
            return group
    return None


def _prepare_progress(op: Op, ctx: Ctx) -> Step:
    found = [r for _, r in op.replies if isinstance(r, Promise)]
    promises = _same_floor_quorum(found, ctx.quorum)
    if promises is not None:
        adopted = {i: v.value for i, v in _highest_votes(promises).items() if i in op.ask}
        own = _own(op)
        proposal = {i: adopted.get(i, own.get(i)) for i in op.ask}
        values = tuple(sorted((i, v) for i, v in proposal.items() if v is not None))
        nothing = tuple(sorted(i for i, v in proposal.items() if v is None))
        if op.request.kind is Kind.READ:
            op = _evolve(op, empty=tuple(sorted((*op.empty, *nothing))))
        if not values:
            return _done_after_accept(op, ())
        sent_own = op.sent_own or any(own.get(i) == v and i not in adopted for i, v in values)
        return _enter(op, ctx, phase=Phase.ACCEPT, proposal=values, sent_own=sent_own)
    if _refusals(op) > len(ctx.acceptors) - ctx.quorum or len(op.replies) == len(ctx.acceptors):
        return _start_round(op, ctx, op.ask)  # refused, or every acceptor answered and floors disagree
    return op, []


def _done_after_accept(op: Op, values: tuple[tuple[int, bytes], ...]) -> Step:
    """The proposal ``values`` is chosen (a quorum accepted it): settle the operation."""
    op = _evolve(op, chosen=_merge(op.chosen, values))
    kind = op.request.kind
    if kind is Kind.CAPTURE:
        return _finish(op, Outcome(ballot=op.ballot, chosen=op.chosen))
    if kind is Kind.READ:
        return _finish(op, Outcome(chosen=op.chosen, empty=op.empty))
    return _finish(op, Outcome(chosen=op.chosen))


def _accept_progress(op: Op, ctx: Ctx) -> Step:
    n = len(ctx.acceptors)
    if _count(op, Accepted) >= ctx.quorum:
        return _done_after_accept(op, op.proposal)
    if _refusals(op) <= n - ctx.quorum:
        return op, []
    # A quorum can no longer accept at this ballot.
    if op.request.kind is Kind.WRITE and op.rounds == 0:
        clean = all(isinstance(r, Nack) and r.accepted < op.ballot for _, r in op.replies)
        if clean and len(op.replies) == n:
            return _finish(op, Outcome(stale=op.ask))  # Rule 2: nobody voted, nobody can: certainly stale
        if clean:
            return op, []  # wait for the rest: all clean refusals would make the failure certain
        return _start_round(op, ctx, op.ask)  # Rule 2: resolve
    return _start_round(op, ctx, op.ask)


def _preempted(op: Op) -> bool:
    """A Prepare or Accept phase was refused by some acceptor because it promised a higher ballot."""
    return op.phase in (Phase.PREPARE, Phase.ACCEPT) and any(isinstance(r, Nack) for _, r in op.replies)


def op_on_timeout(op: Op, token: int, ctx: Ctx) -> Step:
    """A phase timer fired. Retry at a higher ballot (Rule 5: a refusal met silence), resend to the silent
    acceptors, or give the phase up."""
    if op.phase is Phase.DONE or token != op.req:
        return op, []
    heard = {a for a, _ in op.replies}
    silent = [a for a in ctx.acceptors if a not in heard]
    if _preempted(op) and op.rounds < ctx.config.max_rounds and not (
        op.phase is Phase.ACCEPT and op.request.kind is Kind.WRITE and op.rounds == 0
    ):
        return _start_round(op, ctx, op.ask)  # this ballot needs an acceptor that refused it: go higher
    if op.tries < ctx.config.max_resends and silent:
        op = _evolve(op, tries=op.tries + 1)
        return op, _send_phase(op, ctx, silent)
    if op.phase is Phase.READ:
        if not op.request.repair:
            return _give_up(op, op.ask, timed_out=True)
        return _start_round(_evolve(op, empty=()), ctx, op.ask)
    if op.phase is Phase.ACCEPT and op.request.kind is Kind.WRITE and op.rounds == 0:
        return _start_round(op, ctx, op.ask)  # Rule 2: resolve what silence left open
    return _give_up(op, op.ask, timed_out=True)


# ---- the client core: many operations, one node ----------------------------------------------------------


class ClientCore:
    """A sans-I/O client node: starts operations, routes replies and timeouts to them, reports outcomes.

    ``groups`` lists the acceptor groups; segment ``s`` lives on ``groups[s % len(groups)]``.
    ``on_done(op_id, outcome)`` is called when an operation ends.
    """

    def __init__(
        self,
        *,
        node_id: int,
        groups: Sequence[Sequence[int]],
        config: Config | None = None,
        on_done: Callable[[int, Outcome], None] | None = None,
        on_fault: Callable[[int, Reply, str], None] | None = None,
    ) -> None:
        if node_id < 0:
            raise ValueError("node_id must be >= 0")
        if not groups or any(not g for g in groups):
            raise ValueError("need at least one non-empty acceptor group")
        self.node_id = node_id
        self.config = config or Config()
        self.ctxs = [Ctx(node=node_id, acceptors=tuple(g), config=self.config) for g in groups]
        self.on_done = on_done
        self.on_fault = on_fault  # (acceptor, reply, why): a reply no honest acceptor sends (Rule 6)
        self.faults = 0
        self.ops: dict[int, Op] = {}
        self.highest: Ballot = ZERO_BALLOT
        self._next_op = 1

    def ctx_for(self, segment: int) -> Ctx:
        return self.ctxs[segment % len(self.ctxs)]

    def _after(self, op: Op, effects: list[Effect]) -> list[Effect]:
        # (a ballot at MAX_INT, promised by a faulty or hostile peer, is not handed to other operations: they
        # could not start a round above it)
        if op.max_seen > self.highest and op.max_seen.number < MAX_INT:
            self.highest = op.max_seen
        if op.ballot > self.highest and op.ballot.number < MAX_INT:
            self.highest = op.ballot
        if op.phase is Phase.DONE:
            self.ops.pop(op.op_id, None)
            assert op.outcome is not None
            if self.on_done is not None:
                self.on_done(op.op_id, op.outcome)
        else:
            self.ops[op.op_id] = op
        return effects

    def start(self, request: OpRequest) -> tuple[int, list[Effect]]:
        op_id = self._next_op
        self._next_op += 1
        op, effects = op_start(op_id, request, self.ctx_for(request.segment), self.highest)
        return op_id, self._after(op, effects)

    def on_reply(self, src: int, msg: Reply) -> list[Effect]:
        """Feed a reply to its operation. Rule 6: a reply to the current phase's request is checked first
        (``reply_fault``), and one naming a request id never sent is refused; either is reported, not fed."""
        req = msg.req
        op = self.ops.get(req >> SEQ_BITS)
        if op is None:
            if req >> SEQ_BITS >= self._next_op:
                self._fault(src, msg, "an answer to a request never sent")
            return []
        ctx = self.ctx_for(op.request.segment)
        if req == op.req:
            why = reply_fault(op, src, msg, ctx)
            if why is not None:
                self._fault(src, msg, why)
                return []
        elif req > op.req:
            self._fault(src, msg, "an answer to a request never sent")
            return []
        return self._after(*op_on_reply(op, src, msg, ctx))

    def _fault(self, src: int, msg: Reply, why: str) -> None:
        self.faults += 1
        if self.on_fault is not None:
            self.on_fault(src, msg, why)

    def on_timeout(self, token: int) -> list[Effect]:
        op = self.ops.get(op_of_req(token))
        if op is None:
            return []
        return self._after(*op_on_timeout(op, token, self.ctx_for(op.request.segment)))


def votes_by_register(
    ghost: Mapping[tuple[int, int], Iterable[GhostVote]], quorum: int
) -> dict[tuple[int, int], WorSpec]:
    """Apply the abstraction function to every register of a ghost vote log."""
    return {key: abstract_votes(votes, quorum) for key, votes in ghost.items()}


__all__ = [
    "EMPTY",
    "ClientCore",
    "Config",
    "Ctx",
    "Kind",
    "Op",
    "OpRequest",
    "Outcome",
    "Phase",
    "WorSpec",
    "abstract_votes",
    "always_single_value_chosen",
    "checked_phase_msg",
    "chosen_values",
    "fast_phase_msg",
    "op_on_reply",
    "op_on_timeout",
    "op_start",
    "reply_fault",
]
