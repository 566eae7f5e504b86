"""Acceptor -> WOR: the WOR layer's checks against its trusted spec (``wor.WorSpec``).

Three checks, each in stated bounds (bounded, and the first two randomised: they find bugs, they prove nothing).

1. ``WorLockstep`` -- a Hypothesis state machine that runs the real pure cores over a hand-driven network:
   three acceptors (``acceptor.handle_request`` on a register dict, changed by ``apply_to_dict``), two
   proposers, each with at most one running operation (``wor.op_start`` / ``op_on_reply`` /
   ``op_on_timeout`` on a frozen ``Op``), one register, and a multiset of in-flight ``(src, dst, message)``.
   Rules: start a capture, a write through the proposer's last capture (sending, as the WOS layer does by
   its Rule 6, the value the capture found or the value an earlier write through it sent: the WOR core
   relies on its caller for this, since a ballot may carry one value per register), a read or a propose;
   deliver any in-flight message (sometimes keeping a copy: duplication), deliver everything in flight
   once, drop one, fire a running operation's timeout (a timer may fire at any moment), crash or restart an acceptor (at
   most one down; a crashed acceptor loses what it receives and keeps its storage), and a *lying* rule that
   hands an acceptor a Prepare or an Accept at the ballot just below its promise (the needle where an
   off-by-one in the ballot comparison shows; a correct acceptor refuses it and changes nothing).
   Bounds: ``LOCKSTEP_CONFIG`` (2 prepare rounds, 1 resend per phase), 3 values, the run lengths the tests
   set. Every vote cast (each ``Persist``) goes to a ghost log ``(acceptor, ballot, value)``; the spec runs
   in lockstep: after every step the abstraction (``abstract_votes``: Written(v) iff a quorum voted v at one
   ballot) must equal the spec state, which may only go EMPTY -> Written(v) (Immutability).
   Checked after every step (``@invariant``):

   * ``always_single_value_chosen`` on the ghost log, with the checker's own majority (never the client's);
   * the acceptor rules: ``reg_ok`` on every register, ``step_ok`` on every change, a vote never cast at a
     ballot below the promise held before the step, every held vote in the ghost log;
   * each finished operation's outcome against the spec: write ok => its value is chosen; write
     ``AlreadyWritten(w)`` => ``w`` is chosen (and is not the write's value); write ``CaptureStale`` =>
     nobody ever voted its value at its ballot (checked in every later state too); a capture that found
     ``w`` => ``w`` is chosen; read ``v`` => ``v`` is chosen; read EMPTY => nothing was chosen when the
     read started; a propose that reports ``w`` => ``w`` is chosen.

   "Sometimes" properties counted in ``lockstep_witnessed`` (a test asserts each was met, so the run is
   not vacuous): ``LOCKSTEP_SOMETIMES``.

2. ``run_linearizability(seed)`` -- a concurrent history from a ``SimCluster`` (3 acceptors; ``processes``
   client processes racing allocs, captures, writes, writes through an old capture, and reads on a few
   addresses of one segment; seeded drops and duplicates; an acceptor crashed and restarted; one acceptor
   partitioned off and healed; optionally an acceptor that loses its disk and is replaced by the fence
   procedure while the processes run), judged by ``check_history`` against ``SegmentModel``. A verdict of OK says
   that one history is linearizable; UNKNOWN (the checker's budget ran out) is never a pass.

3. ``explore_default()`` -- the explicit-state explorer (``explore.py``) on its default configurations,
   each explored exhaustively within its printed bounds.
"""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import hypothesis.strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from wormspace.errors import OperationFailed, UsageError
from wormspace.layers import acceptor, wor
from wormspace.layers.acceptor import MemoryStorage, apply_to_dict, reg_ok, step_ok
from wormspace.layers.effects import Effect, RegKey, Send
from wormspace.layers.messages import (
    EMPTY_REG,
    ZERO_BALLOT,
    Accept,
    Ballot,
    Fence,
    Message,
    Prepare,
    Read,
    RegState,
    Reply,
    Request,
)
from wormspace.layers.network import Faults
from wormspace.layers.wor import (
    Config,
    Ctx,
    GhostVote,
    Kind,
    Op,
    OpRequest,
    Outcome,
    Phase,
    WorSpec,
    abstract_votes,
    always_single_value_chosen,
    chosen_values,
)

if TYPE_CHECKING:
    from wormspace.cluster import SimCluster
    from wormspace.layers.wormspace import ClientRequest, SpaceLogic
    from wormspace.refinement.explore import Report
    from wormspace.refinement.linearizability import CheckResult

# ---- 1. the lockstep state machine ----------------------------------------------------------------------

ACCEPTORS = (0, 1, 2)
QUORUM = len(ACCEPTORS) // 2 + 1  # the checker's own majority, never taken from the client core
PROPOSERS = (100, 101)
LIAR = 99  # the sender of the lying rule's messages (its replies are discarded)
SEGMENT = 0
INDEX = 0
REGISTER: RegKey = (SEGMENT, INDEX)
VALUES = (b"x", b"y", b"z")
LOCKSTEP_CONFIG = Config(timeout=1.0, max_rounds=2, max_resends=1)

Packet = tuple[int, int, Message]  # (src, dst, message)

LOCKSTEP_SOMETIMES = (
    "sometimes_value_chosen",
    "sometimes_write_ok",
    "sometimes_write_stale",
    "sometimes_already_written",
    "sometimes_capture_found_written",
    "sometimes_read_completes_a_half_write",
    "sometimes_read_empty",
    "sometimes_lie_refused",
)
lockstep_witnessed: Counter[str] = Counter()


def lockstep_bounds() -> str:
    return (
        f"{len(ACCEPTORS)} acceptors (<= 1 down), {len(PROPOSERS)} proposers (one operation each at a time),"
        f" one register, values {list(VALUES)}, max_rounds={LOCKSTEP_CONFIG.max_rounds},"
        f" max_resends={LOCKSTEP_CONFIG.max_resends}; network unordered, lossy, duplicating;"
        " lies at promise-1"
    )


@dataclass(frozen=True, slots=True)
class Finished:
    """What the properties need of a finished operation.

    ``result``: write/propose -- ``ok``, ``already`` (``data``: the value found), ``stale``, ``unknown``
    (``value``: the caller's value; ``sent``: the value the write sent at ``ballot``);
    capture -- ``captured`` (``data``: a value it found chosen, if any), ``failed``; read -- ``value``
    (``data``), ``empty``, ``failed``. ``ballot`` is a write's ballot; ``chosen_at_start`` the value chosen
    when the operation started; ``proposed``: a read ran an accept phase of its own."""

    proposer: int
    kind: str
    result: str
    value: bytes | None = None
    data: bytes | None = None
    ballot: Ballot = ZERO_BALLOT
    chosen_at_start: bytes | None = None
    proposed: bool = False
    sent: bytes | None = None  # the value a write sent (its capture's value, or its own)


@dataclass(slots=True)
class Proposer:
    node: int
    ctx: Ctx
    op: Op | None = None
    next_op: int = 1
    hint: Ballot = ZERO_BALLOT  # the highest ballot seen (as ``ClientCore.highest``)
    capture: Ballot | None = None  # the last successful capture's ballot
    carries: bytes | None = None  # the one value that capture may carry: the one it found, or the first sent
    chosen_at_start: bytes | None = None
    intended: bytes | None = None  # a running write's caller value (what its outcome is judged against)


def summarise(proposer: int, op: Op, chosen_at_start: bytes | None, intended: bytes | None = None) -> Finished:
    """Map a finished operation's ``Outcome`` to what it promises about the register; ``intended`` is a
    write's caller value when the write sent another (the value its capture found, WOS Rule 6)."""
    out = op.outcome
    assert out is not None
    req = op.request
    got = out.chosen_map().get(INDEX)
    kind = req.kind.value
    if req.kind is Kind.CAPTURE:
        result = "captured" if out.error is None else "failed"
        return Finished(proposer, kind, result, data=got, ballot=out.ballot, chosen_at_start=chosen_at_start)
    if req.kind in (Kind.WRITE, Kind.PROPOSE):
        value = req.values[0][1] if intended is None else intended
        if got is not None:
            result = "ok" if got == value else "already"
        elif INDEX in out.stale:
            result = "stale"
        else:
            result = "unknown"
        return Finished(proposer, kind, result, value=value, data=got, ballot=req.ballot,
                        chosen_at_start=chosen_at_start, sent=req.values[0][1])
    proposed = op.rounds > 0 and any(i == INDEX for i, _ in op.proposal)
    if got is not None:
        result = "value"
    elif out.error is None and INDEX in out.empty:
        result = "empty"
    else:
        result = "failed"
    return Finished(proposer, kind, result, data=got, chosen_at_start=chosen_at_start, proposed=proposed)


def _below(b: Ballot, how: str) -> Ballot:
    """The ballot just below ``b``: same number and the node before, or the number before."""
    if how == "number" and b.number >= 2:
        return Ballot(b.number - 1, b.node)
    return Ballot(b.number, b.node - 1)


class WorLockstep(RuleBasedStateMachine):
    """The acceptor and WOR cores on a hand-driven network, in lockstep with ``WorSpec`` (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.regs: list[dict[RegKey, RegState]] = [{} for _ in ACCEPTORS]
        self.down: set[int] = set()
        self.net: list[Packet] = []
        self.ghost: set[GhostVote] = set()
        self.spec = WorSpec()
        self.proposers = [
            Proposer(node, Ctx(node=node, acceptors=ACCEPTORS, config=LOCKSTEP_CONFIG)) for node in PROPOSERS
        ]
        self.finished: list[Finished] = []

    # -- helpers ---------------------------------------------------------------------------------------

    def chosen(self) -> set[bytes]:
        return chosen_values(self.ghost, QUORUM)

    def _pick(self, k: int, ok: Callable[[Proposer], bool]) -> Proposer:
        """Proposer ``k`` if it qualifies, else the other one (preconditions guarantee one does)."""
        order = [self.proposers[k], self.proposers[1 - k]]
        return next(p for p in order if ok(p))

    def _after_step(self) -> None:
        """Advance the spec in lockstep with the abstraction of the ghost log."""
        now = self.chosen()
        if len(now) == 1:
            (v,) = now
            lockstep_witnessed["sometimes_value_chosen"] += 1
            if self.spec.value is None:
                self.spec, _ = self.spec.write(v)

    def _acceptor_receives(self, a: int, msg: Request) -> Reply:
        before = self.regs[a]
        persist, reply = acceptor.handle_request(MemoryStorage(before), msg)
        if persist is not None:
            after = apply_to_dict(before, persist)
            for key, new in after.items():
                old = before.get(key, EMPTY_REG)
                assert step_ok(old, new), f"acceptor {a} register {key}: {old} -> {new} breaks step_ok"
                if new.value is not None and new != old:
                    if (new.accepted, new.value) != (old.accepted, old.value):
                        assert new.accepted >= old.promised, (
                            f"acceptor {a} voted at {new.accepted}, below its promise {old.promised}"
                        )
                    if key == REGISTER:
                        self.ghost.add((a, new.accepted, new.value))
            self.regs[a] = after
        return reply

    def _send(self, p: Proposer, effects: list[Effect]) -> None:
        for e in effects:
            if isinstance(e, Send):
                self.net.append((p.node, e.dst, e.msg))

    def _advance(self, p: Proposer, op: Op, effects: list[Effect]) -> None:
        p.hint = max(p.hint, op.max_seen, op.ballot)
        self._send(p, effects)
        if op.phase is not Phase.DONE:
            p.op = op
            return
        p.op = None
        done = summarise(p.node, op, p.chosen_at_start, p.intended)
        self.finished.append(done)
        if done.kind == "capture":
            p.capture = done.ballot if done.result == "captured" else None
            p.carries = done.data
        self._witness(done)

    def _witness(self, f: Finished) -> None:
        if f.kind == "write" and f.result == "ok":
            lockstep_witnessed["sometimes_write_ok"] += 1
        if f.kind == "write" and f.result == "stale":
            lockstep_witnessed["sometimes_write_stale"] += 1
        if f.kind in ("write", "propose") and f.result == "already":
            lockstep_witnessed["sometimes_already_written"] += 1
        if f.kind == "capture" and f.result == "captured" and f.data is not None:
            lockstep_witnessed["sometimes_capture_found_written"] += 1
        if f.kind == "read" and f.result == "value" and f.proposed and f.chosen_at_start is None:
            lockstep_witnessed["sometimes_read_completes_a_half_write"] += 1
        if f.kind == "read" and f.result == "empty":
            lockstep_witnessed["sometimes_read_empty"] += 1

    def _start(self, p: Proposer, request: OpRequest, intended: bytes | None = None) -> None:
        now = self.chosen()
        p.chosen_at_start = min(now) if now else None
        p.intended = intended
        op_id = p.next_op
        p.next_op += 1
        op, effects = wor.op_start(op_id, request, p.ctx, p.hint)
        self._advance(p, op, effects)
        self._after_step()

    def _deliver(self, packet: Packet) -> None:
        src, dst, msg = packet
        if dst in ACCEPTORS:
            if dst in self.down:
                return  # a crashed acceptor loses what it receives
            assert isinstance(msg, (Prepare, Accept, Read)), f"a reply sent to acceptor {dst}: {msg}"
            reply = self._acceptor_receives(dst, msg)
            self.net.append((dst, src, reply))
        else:
            p = next(q for q in self.proposers if q.node == dst)
            assert not isinstance(msg, (Prepare, Accept, Read, Fence)), f"a request sent to proposer {dst}: {msg}"
            if p.op is not None:
                op, effects = wor.op_on_reply(p.op, src, msg, p.ctx)
                self._advance(p, op, effects)
        self._after_step()

    # -- rules -----------------------------------------------------------------------------------------

    @precondition(lambda self: any(p.op is None for p in self.proposers))
    @rule(k=st.integers(0, 1))
    def capture(self, k: int) -> None:
        p = self._pick(k, lambda q: q.op is None)
        self._start(p, OpRequest(kind=Kind.CAPTURE, segment=SEGMENT, indices=(INDEX,)))

    @precondition(lambda self: any(p.op is None and p.capture is not None for p in self.proposers))
    @rule(k=st.integers(0, 1), v=st.sampled_from(VALUES))
    def write(self, k: int, v: bytes) -> None:
        """Write ``v`` through the proposer's last capture. A ballot carries one value per register (Paxos),
        so, as the WOS layer does (Rule 6, ``check_capture_values``), the write sends the value its capture
        found written, or the value an earlier write through it sent, in place of ``v``; its outcome is
        judged against ``v``."""
        p = self._pick(k, lambda q: q.op is None and q.capture is not None)
        assert p.capture is not None
        if p.carries is None:
            p.carries = v
        self._start(p, OpRequest(kind=Kind.WRITE, segment=SEGMENT, values=((INDEX, p.carries),), ballot=p.capture),
                    intended=v)

    @precondition(lambda self: any(p.op is None for p in self.proposers))
    @rule(k=st.integers(0, 1))
    def read(self, k: int) -> None:
        p = self._pick(k, lambda q: q.op is None)
        self._start(p, OpRequest(kind=Kind.READ, segment=SEGMENT, indices=(INDEX,)))

    @precondition(lambda self: any(p.op is None for p in self.proposers))
    @rule(k=st.integers(0, 1), v=st.sampled_from(VALUES))
    def propose(self, k: int, v: bytes) -> None:
        p = self._pick(k, lambda q: q.op is None)
        self._start(p, OpRequest(kind=Kind.PROPOSE, segment=SEGMENT, values=((INDEX, v),)))

    @precondition(lambda self: bool(self.net))
    @rule(i=st.integers(0, 63), keep=st.sampled_from((False, False, False, True)))
    def deliver(self, i: int, keep: bool) -> None:
        """Deliver one in-flight message; with ``keep`` a copy stays in flight (duplication)."""
        packet = self.net[i % len(self.net)]
        if not keep:
            del self.net[i % len(self.net)]
        self._deliver(packet)

    @precondition(lambda self: bool(self.net))
    @rule()
    def deliver_all(self) -> None:
        """Deliver everything in flight once, oldest first (what the deliveries send stays in flight)."""
        batch, self.net = self.net, []
        for packet in batch:
            self._deliver(packet)

    @precondition(lambda self: bool(self.net))
    @rule(i=st.integers(0, 63))
    def drop(self, i: int) -> None:
        del self.net[i % len(self.net)]

    @precondition(lambda self: any(p.op is not None for p in self.proposers))
    @rule(k=st.integers(0, 1))
    def timeout(self, k: int) -> None:
        p = self._pick(k, lambda q: q.op is not None)
        assert p.op is not None
        op, effects = wor.op_on_timeout(p.op, p.op.req, p.ctx)
        self._advance(p, op, effects)
        self._after_step()

    @precondition(lambda self: not self.down)
    @rule(a=st.sampled_from(ACCEPTORS))
    def crash(self, a: int) -> None:
        self.down.add(a)

    @precondition(lambda self: bool(self.down))
    @rule()
    def restart(self) -> None:
        self.down.clear()

    @precondition(
        lambda self: any(
            a not in self.down and self.regs[a].get(REGISTER, EMPTY_REG).promised != ZERO_BALLOT for a in ACCEPTORS
        )
    )
    @rule(
        a=st.sampled_from(ACCEPTORS),
        accept=st.booleans(),
        how=st.sampled_from(("node", "number")),
        v=st.sampled_from(VALUES),
    )
    def lie(self, a: int, accept: bool, how: str, v: bytes) -> None:
        """Hand an acceptor a request at the ballot just below its promise (its reply is discarded)."""
        a = next(
            b for b in (a, *ACCEPTORS)
            if b not in self.down and self.regs[b].get(REGISTER, EMPTY_REG).promised != ZERO_BALLOT
        )
        ballot = _below(self.regs[a][REGISTER].promised, how)
        msg: Request
        if accept:
            msg = Accept(req=0, segment=SEGMENT, ballot=ballot, values=((INDEX, v),))
        else:
            msg = Prepare(req=0, segment=SEGMENT, indices=(INDEX,), ballot=ballot)
        before = self.regs[a]
        self._acceptor_receives(a, msg)
        if self.regs[a] == before:
            lockstep_witnessed["sometimes_lie_refused"] += 1
        self._after_step()

    # -- invariants ------------------------------------------------------------------------------------

    @invariant()
    def single_value_chosen(self) -> None:
        assert always_single_value_chosen(self.ghost, QUORUM), f"two values chosen: {sorted(self.chosen())!r}"

    @invariant()
    def abstraction_matches_spec(self) -> None:
        if len(self.chosen()) <= 1:
            got = abstract_votes(self.ghost, QUORUM)
            assert got == self.spec, f"abstraction {got} != spec {self.spec} (a chosen value changed)"

    @invariant()
    def acceptor_registers_ok(self) -> None:
        for a, regs in enumerate(self.regs):
            for key, r in regs.items():
                assert reg_ok(r), f"acceptor {a} register {key}: reg_ok fails: {r}"
                if key == REGISTER and r.value is not None:
                    assert (a, r.accepted, r.value) in self.ghost, f"acceptor {a} holds a vote never cast"

    @invariant()
    def outcomes_match_spec(self) -> None:
        now = self.chosen()
        for f in self.finished:
            who = f"proposer {f.proposer}'s {f.kind}"
            if f.kind in ("write", "propose"):
                if f.result == "ok":
                    assert f.value in now, f"{who} of {f.value!r} returned ok, but {f.value!r} is not chosen"
                if f.result == "already":
                    assert f.data in now and f.data != f.value, (
                        f"{who} of {f.value!r} returned AlreadyWritten({f.data!r}), but that is not chosen"
                    )
                if f.result == "stale" and f.kind == "write":
                    assert not any(b == f.ballot and v == f.sent for _, b, v in self.ghost), (
                        f"{who} of {f.value!r} returned CaptureStale, but {f.sent!r} was voted at {f.ballot}"
                    )
            elif f.kind == "capture":
                if f.result == "captured" and f.data is not None:
                    assert f.data in now, f"{who} found {f.data!r} written, but it is not chosen"
            elif f.result == "value":
                assert f.data in now, f"{who} returned {f.data!r}, but it is not chosen"
            elif f.result == "empty":
                assert f.chosen_at_start is None, (
                    f"{who} returned EMPTY, but {f.chosen_at_start!r} was chosen when it started"
                )


# ---- 2. linearizability of concurrent histories ---------------------------------------------------------

LIN_WOS_SIZE = 4
LIN_CONFIG = Config(timeout=0.05, max_resends=2, max_rounds=3)
LIN_FAULTS = Faults(drop=0.1, duplicate=0.1)


@dataclass(frozen=True, slots=True, kw_only=True)
class LinBounds:
    """The bounds of one concurrent run (``run_linearizability``)."""

    processes: int = 4
    ops: int = 10  # per process
    offsets: int = 2  # the addresses raced on: offsets 0 .. offsets-1 of segment 0
    faults: Faults = field(default_factory=lambda: LIN_FAULTS)
    crash: bool = True  # crash one acceptor for a while, then partition another off for a while
    budget: int = 200_000  # checker steps per segment
    # (victim, lose at, replace at): the victim loses its disk at the first virtual time and is replaced by
    # the fence procedure (``SimCluster.replace``) from the second on, while the processes keep running
    replace: tuple[int, float, float] | None = None

    def describe(self) -> str:
        return (
            f"3 acceptors; {self.processes} processes x {self.ops} operations on offsets 0..{self.offsets - 1}"
            f" of one segment of {LIN_WOS_SIZE}; drop {self.faults.drop}, duplicate {self.faults.duplicate}"
            + ("; a crash/restart and a partition/heal" if self.crash else "")
            + (
                f"; acceptor {self.replace[0]} loses its disk at {self.replace[1]}s and is replaced from"
                f" {self.replace[2]}s"
                if self.replace
                else ""
            )
            + f"; rounds <= {LIN_CONFIG.max_rounds}, resends <= {LIN_CONFIG.max_resends};"
            f" checker budget {self.budget} steps"
        )


def _workload(seed: int, b: LinBounds) -> Callable[[SpaceLogic], Generator[ClientRequest, Outcome, None]]:
    rng = random.Random(seed)

    def workload(logic: SpaceLogic) -> Generator[ClientRequest, Outcome, None]:
        old: tuple[int, Any] | None = None  # (address, capture) kept for a later write: may be stale
        with contextlib.suppress(OperationFailed, UsageError):
            yield from logic.alloc(0, b"m")  # every process races to allocate the one segment
        for n in range(b.ops):
            addr = logic.address(0, rng.randrange(b.offsets))
            value = f"p{logic.process}n{n}".encode() if rng.random() < 0.6 else b"shared"
            r = rng.random()
            try:
                if r < 0.4:
                    cap = yield from logic.capture(addr)
                    yield from logic.write(addr, value, cap)
                elif r < 0.55:
                    old = (addr, (yield from logic.capture(addr)))
                elif r < 0.65 and old is not None:
                    addr, cap = old
                    old = None
                    yield from logic.write(addr, value, cap)
                else:
                    yield from logic.read(addr)
            except (OperationFailed, UsageError):
                pass

    return workload


def concurrent_run(seed: int, bounds: LinBounds | None = None) -> SimCluster:
    """Run ``bounds.processes`` spawned processes on a faulty simulated cluster; return the cluster."""
    from wormspace.cluster import Cluster

    b = bounds or LinBounds()
    cluster = Cluster.simulated(acceptors=3, seed=seed, wos_size=LIN_WOS_SIZE, faults=b.faults, config=LIN_CONFIG)
    for k in range(b.processes):
        cluster.spawn(_workload(seed * 7331 + k, b), at=0.0005 * k)
    if b.crash:
        down, off = seed % 3, (seed + 1) % 3
        cluster.at(0.01, lambda: cluster.crash(down))
        cluster.at(0.08, lambda: cluster.restart(down))
        cluster.at(0.1, lambda: cluster.partition({off}, {down, (seed + 2) % 3}))
        cluster.at(0.2, cluster.heal)
    if b.replace is not None:
        victim, lose_at, replace_at = b.replace
        cluster.at(lose_at, lambda: cluster.lose_disk(victim))
        cluster.at(max(replace_at, lose_at), lambda: cluster.replace(victim))
    cluster.run()
    return cluster


def run_linearizability(
    seed: int,
    *,
    faults: Faults | None = None,
    ops: int = LinBounds().ops,
    processes: int = LinBounds().processes,
    offsets: int = LinBounds().offsets,
    crash: bool = True,
    replace: tuple[int, float, float] | None = None,
) -> CheckResult:
    """One concurrent history (``concurrent_run``) judged against ``SegmentModel``: OK / ILLEGAL / UNKNOWN."""
    from wormspace.refinement.linearizability import check_history
    from wormspace.refinement.models import SegmentModel

    b = LinBounds(
        processes=processes, ops=ops, offsets=offsets, faults=faults or LIN_FAULTS, crash=crash, replace=replace
    )
    cluster = concurrent_run(seed, b)
    return check_history(list(cluster.history()), SegmentModel(wos_size=LIN_WOS_SIZE), budget=b.budget)


# ---- 3. the explorer -------------------------------------------------------------------------------------


def explore_default(*, stop_at_violation: bool = True) -> list[Report]:
    """Run the explorer on its default configurations (``explore.default_configs``: a writer beside a
    reader on a duplicating network, then two racing writers), each exhaustively; see ``explore.py`` for
    the properties and the bounds, which every report prints."""
    from wormspace.refinement.explore import explore_all

    return explore_all(stop_at_violation=stop_at_violation)


__all__ = [
    "LOCKSTEP_CONFIG",
    "LOCKSTEP_SOMETIMES",
    "QUORUM",
    "Finished",
    "LinBounds",
    "WorLockstep",
    "concurrent_run",
    "explore_default",
    "lockstep_bounds",
    "lockstep_witnessed",
    "run_linearizability",
    "summarise",
]
