"""Refinement check WOR -> WOS: the segment logic over WORs against the trusted ``WosSpec``.

Three checks, each bounded and each printing its bounds (none is a proof):

1. ``WosLockstep`` -- a Hypothesis ``RuleBasedStateMachine`` that drives ``SegmentLogic`` (two clients, three
   segments) on a ``SimCluster`` whose network drops, duplicates and reorders messages, with acceptor crashes,
   restarts and partitions, and runs the spec beside it. Operations are sequential (one client at a time), but
   an indeterminate operation may still take effect later (its messages stay in flight), so the spec side is
   a *set of possibilities*: ``Possible`` holds every (spec state, pending indeterminate operations) pair
   consistent with what was observed. A definite outcome keeps only the states in which the spec gives that
   outcome; an indeterminate one adds a pending operation that may take effect at any later point or never
   (``TrimmedInFlight`` adds one and also observes the trim). ``@invariant``: the abstraction of the
   implementation -- ``abstract_segment`` of the registers chosen (``cluster.chosen()``, from the ghost vote
   log) -- is one of the possible spec states (the set is then narrowed to those), and every acceptor that
   voted in a segment's TRIM register holds nothing else of that segment. The "sometimes" counters
   (``lockstep_witnessed``) show each kind of outcome was met.
2. ``explore_segment`` -- an explicit-state breadth-first search (``explore_engine.bfs``) over the pure cores
   (acceptor handlers, WOR ``op_*`` functions, and the ``SegmentLogic`` generators, replayed from the outcomes
   they were fed) for one segment of a few data WORs and two clients with short scripts
   (``segment_race_config``: A batch-captures and batch-writes while B trims; ``alloc_race_config``;
   ``adopt_config``: a value chosen by a bare quorum must be found by a batch capture). The network is a set
   of requests -- unordered and lossy (a request may stay undelivered forever) and, if configured,
   duplicating; timers fire at any moment. Reductions, each exact for the properties below:

   1. requests nobody awaits a reply to and whose delivery would change nothing are dropped (promises and
      votes only grow and a trim is final, so they never would);
   2. a reply is taken by its client in the same step as the acceptor handles the request, or is lost: a
      client decides on the *set* of replies it has when it reaches a quorum, and any execution that
      delays a reply can be reordered to one that takes it at once or never; a lost reply to a request
      that changed nothing is not taken apart from the request staying undelivered (which can do more);
   3. a timeout after which the client gives up and sends nothing more is not taken: it is the same, for
      every property, as the client stalling forever (the indeterminate result it would record promises
      nothing);
   4. acceptors are interchangeable: states are stored with acceptors renamed in a canonical order, one
      form per class of states equal up to renaming (``SegmentExplorer.canonical``).

   Properties checked on every state: ``always_certain_failure_never_chosen`` (a write's offset answered
   ``CaptureStale``, or a plain ``Trimmed`` -- not ``TrimmedInFlight`` -- is never chosen with that write's
   value, for values only one script step writes at that offset), ``always_single_value_chosen`` (per register),
   ``always_trimmed_acceptor_holds_only_trim``, ``always_no_vote_after_trim`` (an acceptor that voted TRIM
   never votes again in the segment), ``always_one_alloc_winner``, and each outcome's promise against the
   chosen registers: alloc won / lost, trim ok, ``Trimmed`` answers (TRIM chosen), write ok and
   ``AlreadyWritten`` (per offset of a batch), read values. "Sometimes" properties (per configuration) must
   each hold in some state, or the verdict is VACUOUS.
3. The mutant tests (``tests/mutants/test_wos_mutants.py``) show that these checks catch planted bugs.

Everything here is "checked (bounded)": for these clients, scripts, fault rates, rounds and state budgets.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Generator, Hashable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Generic, NamedTuple, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule

from wormspace.errors import (
    AlreadyWritten,
    CaptureStale,
    Indeterminate,
    OperationFailed,
    Trimmed,
    Unallocated,
    UsageError,
)
from wormspace.layers import acceptor as acc
from wormspace.layers import wor
from wormspace.layers.effects import Effect, Persist, RegKey, Send
from wormspace.layers.messages import (
    META,
    TRIM,
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
from wormspace.layers.wor import EMPTY, Config, Ctx, Op, OpRequest, Outcome, Phase
from wormspace.layers.wormspace import run_sync
from wormspace.layers.wos import (
    TOKEN_BYTES,
    TRIM_VALUE,
    TRIMMED,
    UNALLOCATED,
    CaptureId,
    SegmentLogic,
    TrimmedInFlight,
    WosSpec,
    abstract_segment,
    decode_meta,
    encode_meta,
    registers_kept_after_trim,
    segment_chosen,
)
from wormspace.refinement.explore_engine import (
    CERTAIN_FAILURE,
    CHECKED,
    VIOLATION,
    View,
    bare,
    bfs,
    certain_failure_violation,
    chosen_by_register,
    handle,
    replay,
)

# ---- possibilities: the spec side of a lockstep run with indeterminate outcomes -------------------------

Pending = tuple[Any, ...]  # e.g. ("write", offset, data) | ("alloc", metadata) | ("trim",) for a WosSpec
S = TypeVar("S", bound=Hashable)
MAX_POSSIBILITIES = 20_000


@dataclass(frozen=True, slots=True)
class SpecAdapter(Generic[S]):
    """How ``Possible`` works a spec: apply a pending operation; tell an operation that can change nothing,
    now or later (so it may be forgotten); tell a trimmed state."""

    apply: Callable[[S, Pending], S]
    useless: Callable[[S, Pending], bool]
    trimmed: Callable[[S], bool]


def apply_pending(spec: WosSpec, p: Pending) -> WosSpec:
    """The WOS spec state after the pending operation ``p`` takes effect."""
    if p[0] == "write":
        return spec.write(p[1], p[2])[0]
    if p[0] == "alloc":
        return spec.alloc(p[1])[0]
    return spec.trim()[0]


def useless_pending(spec: WosSpec, p: Pending) -> bool:
    if spec.trimmed:
        return True
    if p[0] == "write":
        return p[1] in dict(spec.data)
    if p[0] == "alloc":
        return spec.metadata is not None
    return False


WOS_ADAPTER: SpecAdapter[WosSpec] = SpecAdapter(apply_pending, useless_pending, lambda w: w.trimmed)


class Inconsistent(AssertionError):
    """An outcome or abstraction that no possible spec state explains."""


class Possible(Generic[S]):
    """Every (spec state, pending operations) pair consistent with the observations so far."""

    def __init__(self, start: S, adapter: SpecAdapter[S]) -> None:
        self.adapter = adapter
        self.states: frozenset[tuple[S, frozenset[Pending]]] = frozenset({(start, frozenset())})
        self.log: list[str] = []

    def _norm(self, spec: S, pend: frozenset[Pending]) -> tuple[S, frozenset[Pending]]:
        return spec, frozenset(p for p in pend if not self.adapter.useless(spec, p))

    def closure(self) -> frozenset[tuple[S, frozenset[Pending]]]:
        """The states reachable by letting any pending operations take effect, in any order."""
        seen = set(self.states)
        todo = list(self.states)
        while todo:
            spec, pend = todo.pop()
            for p in pend:
                nxt = self._norm(self.adapter.apply(spec, p), pend - {p})
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
                    if len(seen) > MAX_POSSIBILITIES:
                        raise RuntimeError(f"more than {MAX_POSSIBILITIES} possible spec states")
        return frozenset(seen)

    def specs(self) -> set[S]:
        return {s for s, _ in self.closure()}

    def pending(self, p: Pending, what: str) -> None:
        """An indeterminate operation: it may take effect at any later point, or never."""
        self.log.append(f"{what} -> indeterminate")
        self.states = frozenset(self._norm(s, pend | {p}) for s, pend in self.states)

    def observe(self, step: Callable[[S], S | None], what: str) -> None:
        """A definite outcome: ``step(spec)`` is the next spec state, or None if the spec could not have
        given that outcome in ``spec``."""
        self.log.append(what)
        out = set()
        for spec, pend in self.closure():
            nxt = step(spec)
            if nxt is not None:
                out.add(self._norm(nxt, pend))
        if not out:
            raise Inconsistent(
                f"no spec state explains {what}; possible before: {self.describe()}; operations: {self.log[-12:]}"
            )
        self.states = frozenset(out)

    def match(self, abstract: S, what: str) -> int:
        """The invariant: ``abstract`` is a possible spec state; keep only those. Returns how many spec
        states were possible before."""
        closed = self.closure()
        keep = frozenset(p for p in closed if p[0] == abstract)
        if not keep:
            raise Inconsistent(
                f"{what}: the implementation's abstraction {abstract} is no possible spec state:"
                f" {self.describe()}; operations: {self.log[-12:]}"
            )
        self.states = keep
        return len({s for s, _ in closed})

    def describe(self) -> str:
        return "; ".join(sorted(f"{s} pending={sorted(map(str, p))}" for s, p in self.closure()))


def spec_result(result: object) -> tuple[str, object]:
    """Classify an implementation outcome: ("value", the spec's answer) for a definite one,
    ("stale"|"indeterminate"|"trimmed-in-flight"|"usage", None) otherwise."""
    if isinstance(result, TrimmedInFlight):
        return "trimmed-in-flight", None
    if isinstance(result, Indeterminate):
        return "indeterminate", None
    if isinstance(result, CaptureStale):
        return "stale", None
    if isinstance(result, UsageError):
        return "usage", None
    if isinstance(result, Trimmed):
        return "value", TRIMMED
    if isinstance(result, Unallocated):
        return "value", UNALLOCATED
    if isinstance(result, AlreadyWritten):
        return "value", result.data
    if isinstance(result, CaptureId):
        return "value", None
    return "value", result


def settle(
    poss: Possible[S],
    result: object,
    spec_step: Callable[[S], tuple[S, object]],
    pending: Pending | None,
    what: str,
) -> str:
    """Feed one operation's outcome to ``poss``; ``spec_step(spec) -> (next spec, spec's answer)``;
    ``pending`` is what an indeterminate outcome may still do (None: nothing). Returns the outcome's class
    (see ``spec_result``)."""
    kind, value = spec_result(result)
    if kind == "value":

        def step(spec: S) -> S | None:
            nxt, answer = spec_step(spec)
            return nxt if answer == value else None

        poss.observe(step, f"{what} -> {value!r}")
    elif kind in ("indeterminate", "trimmed-in-flight"):
        if pending is not None:
            poss.pending(pending, what)
        if kind == "trimmed-in-flight":
            trimmed = poss.adapter.trimmed
            poss.observe(lambda spec: spec if trimmed(spec) else None, f"{what} -> TrimmedInFlight")
    return kind


# ---- 1. the lockstep state machine ----------------------------------------------------------------------

LOCKSTEP_SEGMENTS = (0, 1, 2)
LOCKSTEP_WOS = 3
LOCKSTEP_CLIENTS = 2
LOCKSTEP_CONFIG = Config(timeout=0.05, max_resends=2, max_rounds=3)
FAULT_MENUS = (
    Faults(),
    Faults(drop=0.05, duplicate=0.05),
    Faults(drop=0.2, duplicate=0.1),
    Faults(drop=0.35),
)

#: "sometimes" properties of the lockstep runs: every one must be witnessed in some run of a test session.
LOCKSTEP_SOMETIMES = (
    "sometimes_alloc_won",
    "sometimes_alloc_lost",
    "sometimes_segment_trimmed",
    "sometimes_trimmed_answer",
    "sometimes_unallocated_answer",
    "sometimes_write_already_written",
    "sometimes_write_capture_stale",
    "sometimes_capture_found_written",
    "sometimes_batch_write_ok",
    "sometimes_indeterminate",
    "sometimes_indeterminate_resolved",
    "sometimes_read_written",
)
lockstep_witnessed: Counter[str] = Counter()

_segments = st.sampled_from(LOCKSTEP_SEGMENTS)
_offsets = st.integers(0, LOCKSTEP_WOS - 1)
_values = st.sampled_from([b"a", b"b", b""])
_metas = st.sampled_from([b"m", b"n"])


def _writes(o: int, v: bytes) -> Callable[[WosSpec], tuple[WosSpec, object]]:
    return lambda w: w.write(o, v)


def _reads(o: int) -> Callable[[WosSpec], tuple[WosSpec, object]]:
    return lambda w: (w, w.read(o))


def _holds(o: int, v: bytes) -> Callable[[WosSpec], WosSpec | None]:
    return lambda w: w if w.read(o) == v else None


def outcome_of(fn: Callable[[], Any]) -> object:
    """Call ``fn``; its result, or the operation failure or usage error that ended it (returned, not raised)."""
    try:
        return fn()
    except (OperationFailed, UsageError) as e:
        return e


def run_outcome(driver: Any, gen: Generator[OpRequest, Outcome, Any]) -> object:
    """Run a generator to its result, or to the failure that ended it (returned, not raised)."""
    return outcome_of(lambda: run_sync(driver, gen))


class WosLockstep(RuleBasedStateMachine):
    """``SegmentLogic`` on a faulty ``SimCluster`` in lockstep with ``WosSpec`` (see the module docstring)."""

    captures = Bundle("captures")

    def __init__(self) -> None:
        super().__init__()
        self.cluster: Any = None
        self.poss = {s: Possible(WosSpec(), WOS_ADAPTER) for s in LOCKSTEP_SEGMENTS}
        self.down: set[int] = set()
        self.ops = 0

    # -- setup and faults ----------------------------------------------------------------------------

    @initialize(seed=st.integers(0, 2**16), faults=st.sampled_from(FAULT_MENUS))
    def start(self, seed: int, faults: Faults) -> None:
        from wormspace.cluster import Cluster

        self.cluster = Cluster.simulated(
            acceptors=3, seed=seed, wos_size=LOCKSTEP_WOS, faults=faults, config=LOCKSTEP_CONFIG, record=False
        )
        self.clients = [self.cluster.client() for _ in range(LOCKSTEP_CLIENTS)]
        self.logics: list[SegmentLogic] = [ws.logic.seg for ws in self.clients]
        self.ops = 0
        for s in LOCKSTEP_SEGMENTS[:2]:  # most runs start with two allocated segments
            self.alloc(0, s, b"m")

    def _run(self, c: int, gen: Generator[OpRequest, Outcome, Any]) -> object:
        self.ops += 1
        return run_outcome(self.clients[c].driver, gen)

    @precondition(lambda self: len(self.down) < 1)
    @rule(i=st.integers(0, 2))
    def crash(self, i: int) -> None:
        self.cluster.crash(i)
        self.down.add(i)

    @rule()
    def restart(self) -> None:
        for i in sorted(self.down):
            self.cluster.restart(i)
        self.down.clear()

    @rule(i=st.integers(0, 2))
    def partition(self, i: int) -> None:
        self.cluster.partition({i}, {0, 1, 2} - {i})

    @rule()
    def heal(self) -> None:
        self.cluster.heal()

    @rule()
    def settle_network(self) -> None:
        """Let every message in flight land (indeterminate operations may take effect now)."""
        self.cluster.run()

    # -- operations ----------------------------------------------------------------------------------

    @rule(c=st.integers(0, LOCKSTEP_CLIENTS - 1), s=_segments, meta=_metas)
    def alloc(self, c: int, s: int, meta: bytes) -> None:
        r = self._run(c, self.logics[c].alloc(s, meta))
        if r is True:
            lockstep_witnessed["sometimes_alloc_won"] += 1
        if r is False:
            lockstep_witnessed["sometimes_alloc_lost"] += 1
        self._settle(s, r, lambda w: w.alloc(meta), ("alloc", meta), f"client {c}: alloc({s}, {meta!r})")

    @precondition(lambda self: self.ops >= 8)  # trims end a segment's story: let it have one first
    @rule(c=st.integers(0, LOCKSTEP_CLIENTS - 1), s=_segments)
    def trim(self, c: int, s: int) -> None:
        r = self._run(c, self.logics[c].trim(s))
        if r is None:
            lockstep_witnessed["sometimes_segment_trimmed"] += 1
        self._settle(s, r, lambda w: w.trim(), ("trim",), f"client {c}: trim({s})")

    @rule(c=st.integers(0, LOCKSTEP_CLIENTS - 1), s=_segments)
    def check(self, c: int, s: int) -> None:
        r = self._run(c, self.logics[c].metadata(s))
        self._settle(s, r, lambda w: (w, w.check()), None, f"client {c}: check({s})")

    @rule(target=captures, c=st.integers(0, LOCKSTEP_CLIENTS - 1), s=_segments, o=_offsets)
    def capture(self, c: int, s: int, o: int) -> tuple[int, CaptureId | None]:
        return self._capture(c, s, o, o + 1)

    @rule(
        target=captures,
        c=st.integers(0, LOCKSTEP_CLIENTS - 1),
        s=_segments,
        span=st.sampled_from([(0, LOCKSTEP_WOS), (0, 2), (1, LOCKSTEP_WOS)]),
    )
    def batch_capture(self, c: int, s: int, span: tuple[int, int]) -> tuple[int, CaptureId | None]:
        return self._capture(c, s, *span)

    def _capture(self, c: int, s: int, start: int, end: int) -> tuple[int, CaptureId | None]:
        r = self._run(c, self.logics[c].capture(s, start, end))
        self._settle(s, r, lambda w: (w, w.capture(start)), None, f"client {c}: capture({s}, {start}..{end})")
        if isinstance(r, CaptureId):
            for off, v in r.known:
                lockstep_witnessed["sometimes_capture_found_written"] += 1
                self.poss[s].observe(_holds(off, v), f"capture found {off}={v!r}")
            return c, r
        return c, None

    @rule(cap=captures, o=_offsets, v=_values)
    def write(self, cap: tuple[int, CaptureId | None], o: int, v: bytes) -> None:
        self._write(cap, {o: v})

    @rule(cap=captures, values=st.dictionaries(_offsets, _values, min_size=2, max_size=LOCKSTEP_WOS))
    def batch_write(self, cap: tuple[int, CaptureId | None], values: dict[int, bytes]) -> None:
        self._write(cap, values)

    def _write(self, cap: tuple[int, CaptureId | None], values: dict[int, bytes]) -> None:
        c, cid = cap
        if cid is None:
            return
        values = {o: v for o, v in values.items() if cid.covers(cid.segment, o)}
        if not values:
            return
        s = cid.segment
        r = self._run(c, self.logics[c].write(s, values, cid))
        if isinstance(r, UsageError):  # a second value for an offset through one capture: refused locally
            return
        if isinstance(r, OperationFailed):  # the whole batch failed (the client knew of the trim)
            results: Mapping[int, object] = dict.fromkeys(values, r)
        else:
            assert isinstance(r, dict)
            results = r
            if len(values) > 1 and all(x is None for x in r.values()):
                lockstep_witnessed["sometimes_batch_write_ok"] += 1
        for o, v in sorted(values.items()):
            x = results[o]
            if isinstance(x, AlreadyWritten):
                lockstep_witnessed["sometimes_write_already_written"] += 1
            if isinstance(x, CaptureStale):
                lockstep_witnessed["sometimes_write_capture_stale"] += 1
            self._settle(s, x, _writes(o, v), ("write", o, v), f"client {c}: write({s}, {o}, {v!r})")

    @rule(c=st.integers(0, LOCKSTEP_CLIENTS - 1), s=_segments, offsets=st.sets(_offsets, min_size=1))
    def read(self, c: int, s: int, offsets: set[int]) -> None:
        offs = tuple(sorted(offsets))
        r = self._run(c, self.logics[c].read(s, offs))
        if isinstance(r, OperationFailed):
            for o in offs:
                self._settle(s, r, _reads(o), None, f"client {c}: read({s}, {o})")
            return
        assert isinstance(r, dict)
        for o in offs:
            if r[o] is not EMPTY:
                lockstep_witnessed["sometimes_read_written"] += 1
            self._settle(s, r[o], _reads(o), None, f"client {c}: read({s}, {o})")

    def _settle(
        self,
        s: int,
        result: object,
        spec_step: Callable[[WosSpec], tuple[WosSpec, object]],
        pending: Pending | None,
        what: str,
    ) -> None:
        kind = settle(self.poss[s], result, spec_step, pending, what)
        if kind in ("indeterminate", "trimmed-in-flight"):
            lockstep_witnessed["sometimes_indeterminate"] += 1
        if isinstance(result, Trimmed):
            lockstep_witnessed["sometimes_trimmed_answer"] += 1
        if isinstance(result, Unallocated):
            lockstep_witnessed["sometimes_unallocated_answer"] += 1

    # -- invariants ----------------------------------------------------------------------------------

    @invariant()
    def abstraction_is_a_possible_spec_state(self) -> None:
        if self.cluster is None:
            return
        chosen = self.cluster.chosen()  # raises if some register has two chosen values
        for s in LOCKSTEP_SEGMENTS:
            before = self.poss[s].match(abstract_segment(segment_chosen(chosen, s)), f"segment {s}")
            if before > 1:
                lockstep_witnessed["sometimes_indeterminate_resolved"] += 1

    @invariant()
    def trimmed_acceptors_hold_only_trim(self) -> None:
        if self.cluster is None:
            return
        for i, storage in enumerate(self.cluster.storages):
            items = list(storage.items())
            kept = registers_kept_after_trim(items)
            assert not kept, f"acceptor {i} still holds {kept} of a segment it trimmed"
            for (_, index), _ in items:
                assert index in (META, TRIM) or 0 <= index < LOCKSTEP_WOS, f"acceptor {i}: register {index}"

    def teardown(self) -> None:
        if self.cluster is not None:
            self.cluster.run()


def lockstep_bounds() -> str:
    return (
        f"acceptors 3, clients {LOCKSTEP_CLIENTS}, segments {len(LOCKSTEP_SEGMENTS)} of {LOCKSTEP_WOS} data WORs,"
        f" rounds <= {LOCKSTEP_CONFIG.max_rounds}, resends <= {LOCKSTEP_CONFIG.max_resends},"
        f" fault menus {[(f.drop, f.duplicate) for f in FAULT_MENUS]} (drop, duplicate), crash <= 1, partitions"
    )


# ---- 2. the segment explorer ----------------------------------------------------------------------------

SEG = 0
CLIENT_BASE = 100


@dataclass(frozen=True, slots=True)
class SegStep:
    """One scripted WOS call: ``alloc`` (``value`` = metadata), ``trim``, ``capture`` (offsets ``start ..
    end-1``), ``write`` (``values`` through the client's last capture) or ``read`` (offsets ``start .. end-1``)."""

    kind: str
    value: bytes = b""
    start: int = 0
    end: int = 0
    values: tuple[tuple[int, bytes], ...] = ()

    def __str__(self) -> str:
        if self.kind == "alloc":
            return f"alloc({self.value!r})"
        if self.kind in ("capture", "read"):
            return f"{self.kind}({self.start}..{self.end - 1})"
        if self.kind == "write":
            return "write(" + ", ".join(f"{o}: {v!r}" for o, v in self.values) + ")"
        return self.kind


def alloc_step(metadata: bytes) -> SegStep:
    return SegStep("alloc", value=metadata)


def trim_step() -> SegStep:
    return SegStep("trim")


def capture_step(start: int, end: int) -> SegStep:
    return SegStep("capture", start=start, end=end)


def write_step(values: Mapping[int, bytes]) -> SegStep:
    return SegStep("write", values=tuple(sorted(values.items())))


def read_step(start: int, end: int) -> SegStep:
    return SegStep("read", start=start, end=end)


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentExploreConfig:
    """The bounds of one exploration of one segment."""

    name: str = "race"
    acceptors: int = 3
    wos_size: int = 2
    scripts: tuple[tuple[SegStep, ...], ...] = (
        (capture_step(0, 2), write_step({0: b"a", 1: b"a"})),
        (trim_step(),),
    )
    preallocated: bool = True  # start with the segment allocated (METADATA chosen everywhere, cached)
    prechosen: tuple[tuple[int, bytes], ...] = ()  # offsets chosen at the start by a bare quorum only
    precaptured: tuple[int, int] | None = None  # client A starts holding a capture of start..end-1 (all promised)
    max_rounds: int = 1
    max_resends: int = 0
    duplicating: bool = False
    symmetry: bool = True
    stall_reduction: bool = True
    max_states: int = 200_000
    sometimes: tuple[str, ...] = (
        "sometimes_segment_trimmed",
        "sometimes_batch_write_ok",
        "sometimes_write_meets_trim",
        "sometimes_indeterminate",
    )

    @property
    def quorum(self) -> int:
        return self.acceptors // 2 + 1

    def describe(self) -> str:
        scripts = "; ".join(
            f"client {chr(65 + k)}: " + ", ".join(str(s) for s in script) for k, script in enumerate(self.scripts)
        )
        net = "unordered, lossy" + (", duplicating" if self.duplicating else "")
        pre = "allocated" if self.preallocated else "unallocated"
        return (
            f"{self.name}: {self.acceptors} acceptors, one {pre} segment of {self.wos_size} data WORs; {scripts};"
            f" rounds <= {self.max_rounds}, resends <= {self.max_resends}; network {net};"
            f" acceptor symmetry {'on' if self.symmetry else 'off'}; state budget {self.max_states}"
        )


Regs = tuple[tuple[RegKey, RegState], ...]
Packet = tuple[int, int, Request]  # (client, acceptor, request): replies never wait in the network
Ghost = tuple[RegKey, int, Ballot, bytes]  # (register, acceptor, ballot, value)


class ClientState(NamedTuple):
    fed: tuple[Outcome, ...]  # the outcomes fed to the client's script so far (its generator's position)
    op: Op | None  # the WOR operation running
    hint: Ballot  # the highest ballot the client has seen


class SegState(NamedTuple):
    accs: tuple[Regs, ...]
    clients: tuple[ClientState, ...]
    net: frozenset[Packet]
    ghost: frozenset[Ghost]
    late: frozenset[Ghost]  # votes for other registers cast by an acceptor that had voted in TRIM


class ScriptRun(NamedTuple):
    """What replaying a client's script on its fed outcomes gives: the next request (None: finished), the
    results of the finished steps, and the encoded METADATA values its allocs proposed."""

    request: OpRequest | None
    results: tuple[tuple[SegStep, object], ...]
    proposed_meta: tuple[bytes, ...]


def _script(
    logic: SegmentLogic,
    script: tuple[SegStep, ...],
    results: list[tuple[SegStep, object]],
    cap: CaptureId | None = None,
) -> Generator[OpRequest, Outcome, None]:
    for step in script:
        r: object
        try:
            if step.kind == "alloc":
                r = yield from logic.alloc(SEG, step.value)
            elif step.kind == "trim":
                yield from logic.trim(SEG)
                r = None
            elif step.kind == "capture":
                cap = None
                cap = r = yield from logic.capture(SEG, step.start, step.end)
            elif step.kind == "write":
                if cap is None:
                    r = "skipped"
                else:
                    r = yield from logic.write(SEG, dict(step.values), cap)
            else:
                r = yield from logic.read(SEG, tuple(range(step.start, step.end)))
        except (OperationFailed, UsageError) as e:
            r = e
        results.append((step, r))


class _Replayer:
    """Replays client scripts (deterministic: seeded tokens) from the outcomes they were fed; memoised."""

    def __init__(self, cfg: SegmentExploreConfig) -> None:
        self.cfg = cfg
        self.memo: dict[tuple[int, tuple[Outcome, ...]], ScriptRun] = {}

    def run(self, k: int, fed: tuple[Outcome, ...]) -> ScriptRun:
        key = (k, fed)
        got = self.memo.get(key)
        if got is not None:
            return got
        logic = SegmentLogic(wos_size=self.cfg.wos_size, rng=random.Random(k))
        if self.cfg.preallocated:
            logic.meta_cache[SEG] = PRE_META
        results: list[tuple[SegStep, object]] = []
        proposed: list[bytes] = []
        cap = None
        if k == 0 and self.cfg.precaptured is not None:
            start, end = self.cfg.precaptured
            cap = CaptureId(segment=SEG, start=start, end=end, ballot=PRE_CAPTURE)
        gen = _script(logic, self.cfg.scripts[k], results, cap)
        request: OpRequest | None
        try:
            request = next(gen)
            for outcome in fed:
                if request.kind is wor.Kind.PROPOSE and request.values[0][0] == META:
                    proposed.append(request.values[0][1])
                request = gen.send(outcome)
            if request.kind is wor.Kind.PROPOSE and request.values[0][0] == META:
                proposed.append(request.values[0][1])
        except StopIteration:
            request = None
        run = ScriptRun(request, tuple(results), tuple(proposed))
        self.memo[key] = run
        return run


PRE_META = encode_meta(bytes(TOKEN_BYTES), b"pre")
PRE_BALLOT = Ballot(1, CLIENT_BASE - 1)
PRE_CAPTURE = Ballot(2, CLIENT_BASE)  # client A's


def _ctx(cfg: SegmentExploreConfig, k: int) -> Ctx:
    return Ctx(
        node=CLIENT_BASE + k,
        acceptors=tuple(range(cfg.acceptors)),
        config=Config(timeout=1.0, max_resends=cfg.max_resends, max_rounds=cfg.max_rounds),
    )


def chosen_registers(ghost: frozenset[Ghost], quorum: int) -> dict[RegKey, set[bytes]]:
    """Per register, every value a quorum voted for at one ballot (``explore_engine.chosen_by_register``)."""
    return chosen_by_register(ghost, quorum)


def _identity(s: SegState) -> SegState:
    return s


def _one(chosen: dict[RegKey, set[bytes]], index: int) -> bytes | None:
    vals = chosen.get((SEG, index))
    return min(vals) if vals else None


def _has(result: object, cls: type[BaseException]) -> bool:
    """``result`` is a ``cls`` failure, or a batch result with one."""
    if isinstance(result, dict):
        return any(isinstance(x, cls) for x in result.values())
    return isinstance(result, cls)


def _who(node: int) -> str:
    return f"client {chr(65 + node - CLIENT_BASE)}" if node >= CLIENT_BASE else f"acc{node}"


def _show(m: Message) -> str:
    name = type(m).__name__
    ballot = getattr(m, "ballot", None)
    who = "" if ballot is None else _who(ballot.node) if ballot.node >= CLIENT_BASE else str(ballot.node)
    b = "" if ballot is None else f" b={ballot.number}.{who}"
    if isinstance(m, (Prepare, Read)):
        return f"{name}({list(m.indices)}{b})"
    if isinstance(m, Accept):
        return f"{name}({dict(m.values)}{b})"
    votes = getattr(m, "votes", None)
    return f"{name}({b.strip()}{'' if not votes else ' votes=' + str([(v.index, v.value) for v in votes])})"


class SegmentExplorer:
    """Breadth-first search over the states of one segment (see the module docstring)."""

    def __init__(self, cfg: SegmentExploreConfig) -> None:
        self.cfg = cfg
        self.replay = _Replayer(cfg)
        self._steps: dict[tuple[Request, Regs], tuple[Persist | None, Regs, Reply]] = {}
        self._fact_ids: dict[tuple[Regs, frozenset[object]], int] = {}  # interned acceptor summaries (canonical)
        written = [(o, v) for script in cfg.scripts for st_ in script if st_.kind == "write" for o, v in st_.values]
        prechosen = set(cfg.prechosen)  # a value chosen at the start is not the failed write's doing
        self.unique_writes = frozenset(w for w in written if written.count(w) == 1 and w not in prechosen)

    # -- transitions ---------------------------------------------------------------------------------

    def initial(self) -> SegState:
        clients = []
        net: set[Packet] = set()
        for k in range(len(self.cfg.scripts)):
            hint = PRE_CAPTURE if k == 0 and self.cfg.precaptured is not None else ZERO_BALLOT
            c, packets = self._next_op(k, (), hint)
            clients.append(c)
            net.update(packets)
        n = self.cfg.acceptors
        accs: list[dict[RegKey, RegState]] = [{} for _ in range(n)]
        votes: set[Ghost] = set()
        pre = [(META, PRE_META, n)] if self.cfg.preallocated else []
        pre += [(o, v, self.cfg.quorum) for o, v in self.cfg.prechosen]
        for index, value, count in pre:
            for a in range(count):
                accs[a][(SEG, index)] = RegState(promised=PRE_BALLOT, accepted=PRE_BALLOT, value=value)
                votes.add(((SEG, index), a, PRE_BALLOT, value))
        if self.cfg.precaptured is not None:
            for a in range(n):
                for o in range(*self.cfg.precaptured):
                    r = accs[a].get((SEG, o), RegState())
                    accs[a][(SEG, o)] = RegState(promised=PRE_CAPTURE, accepted=r.accepted, value=r.value)
        init = SegState(
            tuple(tuple(sorted(r.items())) for r in accs), tuple(clients), frozenset(net), frozenset(votes),
            frozenset(),
        )
        return self.canonical(init)

    def canonical(self, s: SegState) -> SegState:
        """Reduction 4, acceptor symmetry: rename acceptors in the order of the interned ids of their full
        name-free facts (registers, votes, votes cast after a TRIM vote, the requests in flight to them,
        the replies each client's running operation heard from them). The properties never name an
        acceptor and any renaming gives an isomorphic state, so this is sound; and it is exact: two states
        equal up to renaming have the same multiset of fact ids, so the same form, and acceptors whose ids
        tie have equal facts, so their relative order does not change the form."""
        n = self.cfg.acceptors
        if not self.cfg.symmetry or n < 2:
            return s
        facts: list[list[object]] = [[] for _ in range(n)]
        for key, a, b, v in s.ghost:
            facts[a].append(("vote", key, b, v))
        for key, a, b, v in s.late:
            facts[a].append(("late", key, b, v))
        for src, dst, msg in s.net:
            facts[dst].append(("request", src, msg))
        for k, c in enumerate(s.clients):
            if c.op is not None:
                for a, r in c.op.replies:
                    facts[a].append(("heard", k, r))
        ids = self._fact_ids
        keys = []
        for a in range(n):
            summary = (s.accs[a], frozenset(facts[a]))
            i = ids.get(summary)
            if i is None:
                i = ids[summary] = len(ids)
            keys.append(i)
        order = sorted(range(n), key=keys.__getitem__)
        if order == list(range(n)):
            return s
        perm = [0] * n
        for new, old in enumerate(order):
            perm[old] = new

        def rn(x: int) -> int:
            return perm[x] if x < n else x

        clients = tuple(
            c
            if c.op is None or not c.op.replies
            else c._replace(op=replace(c.op, replies=tuple(sorted(((perm[a], r) for a, r in c.op.replies),
                                                                   key=lambda p: p[0]))))
            for c in s.clients
        )
        return SegState(
            tuple(s.accs[old] for old in order),
            clients,
            frozenset((rn(src), rn(dst), msg) for src, dst, msg in s.net),
            frozenset((key, perm[a], b, v) for key, a, b, v in s.ghost),
            frozenset((key, perm[a], b, v) for key, a, b, v in s.late),
        )

    def _next_op(self, k: int, fed: tuple[Outcome, ...], hint: Ballot) -> tuple[ClientState, list[Packet]]:
        run = self.replay.run(k, fed)
        if run.request is None:
            return ClientState(fed, None, hint), []
        op, effects = bare(wor.op_start)(len(fed) + 1, run.request, _ctx(self.cfg, k), hint)
        return self._after(k, ClientState(fed, None, hint), op, effects)

    def _after(self, k: int, c: ClientState, op: Op, effects: list[Effect]) -> tuple[ClientState, list[Packet]]:
        hint = max(c.hint, op.max_seen, op.ballot)
        if op.phase is Phase.DONE:
            assert op.outcome is not None
            return self._next_op(k, (*c.fed, op.outcome), hint)
        packets = [
            (CLIENT_BASE + k, e.dst, e.msg)
            for e in effects
            if isinstance(e, Send) and isinstance(e.msg, (Prepare, Accept, Read, Fence))
        ]
        return ClientState(c.fed, op, hint), packets

    @staticmethod
    def _awaited(c: ClientState, src: int, req: int) -> bool:
        """Client ``c`` awaits a reply from acceptor ``src`` to request ``req``."""
        op = c.op
        return op is not None and op.req == req and all(a != src for a, _ in op.replies)

    def _net(
        self, net: frozenset[Packet], clients: tuple[ClientState, ...], accs: tuple[Regs, ...]
    ) -> frozenset[Packet]:
        """Reduction 1: drop requests whose delivery can only be ignored, now and forever: a Read nobody
        awaits the reply of, and a Prepare or Accept nobody awaits the reply of whose delivery would change
        nothing (promises and votes only grow and a trim is final, so it never will)."""
        awaited = [None if c.op is None else (c.op.req, {a for a, _ in c.op.replies}) for c in clients]
        dead = []
        for p in net:
            src, dst, msg = p
            w = awaited[src - CLIENT_BASE]
            if w is not None and msg.req == w[0] and dst not in w[1]:
                continue
            if isinstance(msg, Read) or self._step(accs[dst], msg)[0] is None:
                dead.append(p)
        return net.difference(dead) if dead else net

    def _step(self, regs: Regs, msg: Request) -> tuple[Persist | None, Regs, Reply]:
        """One acceptor step (memoised): the persist (None when the registers do not change), the registers
        after it and the reply."""
        key = (msg, regs)
        got = self._steps.get(key)
        if got is None:
            view = View(regs)
            persist, reply = handle(view, msg)
            after = regs
            if persist is not None:
                after = tuple(sorted(acc.apply_to_dict(view.regs, persist).items()))
                if after == regs:
                    persist = None
            got = (persist, after, reply)
            self._steps[key] = got
        return got

    def successors(self, s: SegState, labels: bool = False) -> Iterator[tuple[str, SegState]]:
        """Deliver a request to an acceptor -- its reply is then either taken by the client at once or lost
        (reduction 2) -- or fire a running operation's timer."""
        n = self.cfg.acceptors
        for p in sorted(s.net, key=lambda p: (p[0], p[1], p[2].req, repr(p[2]))):
            src, dst, msg = p
            assert dst < n and isinstance(msg, (Prepare, Accept, Read))
            rest = s.net if self.cfg.duplicating else s.net - {p}
            persist, regs, reply = self._step(s.accs[dst], msg)
            accs = s.accs
            ghost = s.ghost
            late = s.late
            if persist is not None:
                accs = (*s.accs[:dst], regs, *s.accs[dst + 1 :])
                votes = [(key, dst, r.accepted, r.value) for key, r in persist.puts if r.value is not None]
                ghost = ghost.union(votes)
                if acc.segment_trimmed(View(s.accs[dst]), SEG):
                    late = late.union(v for v in votes if v[0][1] != TRIM)
            label = f"acc{dst} handles {_show(msg)} from {_who(src)} => {_show(reply)}" if labels else ""
            k = src - CLIENT_BASE
            c = s.clients[k]
            live = self._awaited(c, dst, msg.req)
            if live:
                assert c.op is not None
                op, effects = bare(wor.op_on_reply)(c.op, dst, reply, _ctx(self.cfg, k))
                nc, packets = self._after(k, c, op, effects)
                clients = (*s.clients[:k], nc, *s.clients[k + 1 :])
                yield label, SegState(accs, clients, self._net(rest.union(packets), clients, accs), ghost, late)
            if persist is not None:  # otherwise "reply lost" is no different from "not delivered yet"
                yield label + " (reply lost)", SegState(accs, s.clients, self._net(rest, s.clients, accs), ghost, late)
        for k, c in enumerate(s.clients):
            if c.op is not None:
                op, effects = wor.op_on_timeout(c.op, c.op.req, _ctx(self.cfg, k))
                nc, packets = self._after(k, c, op, effects)
                if self.cfg.stall_reduction and not packets and nc.op is None:
                    continue  # reduction 3: the client gives up and stops -- as if it stalled forever
                clients = (*s.clients[:k], nc, *s.clients[k + 1 :])
                yield f"timeout {_who(CLIENT_BASE + k)}", SegState(
                    s.accs, clients, self._net(s.net.union(packets), clients, s.accs), s.ghost, s.late
                )

    # -- properties ----------------------------------------------------------------------------------

    def results(self, s: SegState) -> list[tuple[int, SegStep, object, ScriptRun]]:
        out: list[tuple[int, SegStep, object, ScriptRun]] = []
        for k, c in enumerate(s.clients):
            run = self.replay.run(k, c.fed)
            out.extend((k, step, r, run) for step, r in run.results)
        return out

    def violation(self, s: SegState) -> tuple[str, str] | None:
        q = self.cfg.quorum
        chosen = chosen_registers(s.ghost, q)
        for key, vals in chosen.items():
            if len(vals) > 1:
                return "always_single_value_chosen", f"register {key} has two chosen values {sorted(vals)!r}"
        for a, regs in enumerate(s.accs):
            kept = registers_kept_after_trim(regs)
            if kept:
                return "always_trimmed_acceptor_holds_only_trim", f"acceptor {a} trimmed but holds {kept}"
        if s.late:
            return "always_no_vote_after_trim", f"votes cast after the acceptor's TRIM vote: {sorted(s.late)!r}"
        trimmed = _one(chosen, TRIM) == TRIM_VALUE
        meta = _one(chosen, META)
        winners = []
        for k, step, r, run in self.results(s):
            who = f"client {chr(65 + k)}"
            if isinstance(r, Trimmed) and not trimmed:
                return "always_trimmed_answer_means_trim_chosen", f"{who}'s {step} answered Trimmed"
            if step.kind == "trim" and r is None and not trimmed:
                return "always_trim_ok_means_trim_chosen", f"{who}'s trim returned, TRIM not chosen"
            if step.kind == "alloc" and r is True:
                winners.append(k)
                if meta is None or meta not in run.proposed_meta or decode_meta(meta)[1] != step.value:
                    return "always_alloc_won_means_own_metadata_chosen", f"{who}'s alloc won, METADATA={meta!r}"
            if step.kind == "alloc" and r is False and (meta is None or meta in run.proposed_meta):
                return "always_alloc_lost_means_other_metadata_chosen", f"{who}'s alloc lost, METADATA={meta!r}"
            if step.kind == "write" and isinstance(r, dict):
                for o, x in r.items():
                    got = _one(chosen, o)
                    data = dict(step.values)[o]
                    if x is None and got != data:
                        return "always_write_ok_means_chosen", f"{who}'s write {o}={data!r} ok, chosen {got!r}"
                    if isinstance(x, AlreadyWritten) and got != x.data:
                        return "always_already_written_means_chosen", f"{who}: AlreadyWritten({x.data!r}) at {o}"
                    certain = "CaptureStale" if isinstance(x, CaptureStale) else (
                        "Trimmed" if isinstance(x, Trimmed) and not isinstance(x, Indeterminate) else None
                    )
                    if certain is not None and (o, data) in self.unique_writes:
                        why = certain_failure_violation(f"{who} (offset {o})", certain, data, got)
                        if why is not None:
                            return CERTAIN_FAILURE, why
            if step.kind == "read" and isinstance(r, dict):
                for o, x in r.items():
                    if x is not EMPTY and _one(chosen, o) != x:
                        return "always_read_value_is_chosen", f"{who} read {o}={x!r}, chosen {_one(chosen, o)!r}"
        if len(winners) > 1:
            return "always_one_alloc_winner", f"clients {winners} all won the segment"
        return None

    def sometimes(self) -> dict[str, Callable[[SegState], bool]]:
        q = self.cfg.quorum

        def any_result(pred: Callable[[SegStep, object], bool]) -> Callable[[SegState], bool]:
            return lambda s: any(pred(step, r) for _, step, r, _ in self.results(s))

        return {
            "sometimes_segment_trimmed": lambda s: _one(chosen_registers(s.ghost, q), TRIM) is not None,
            "sometimes_capture_found_written": any_result(
                lambda st_, r: isinstance(r, CaptureId) and bool(r.known)
            ),
            "sometimes_read_completes_a_half_write": lambda s: any(
                c.op is not None and c.op.request.kind is wor.Kind.READ and c.op.phase is Phase.ACCEPT
                for c in s.clients
            ),
            "sometimes_alloc_won": any_result(lambda st_, r: st_.kind == "alloc" and r is True),
            "sometimes_alloc_lost": any_result(lambda st_, r: st_.kind == "alloc" and r is False),
            "sometimes_write_already_written": any_result(lambda st_, r: _has(r, AlreadyWritten)),
            "sometimes_write_capture_stale": any_result(lambda st_, r: _has(r, CaptureStale)),
            "sometimes_batch_write_ok": any_result(
                lambda st_, r: st_.kind == "write" and isinstance(r, dict) and all(x is None for x in r.values())
            ),
            "sometimes_write_meets_trim": any_result(lambda st_, r: st_.kind == "write" and _has(r, Trimmed)),
            "sometimes_indeterminate": any_result(lambda st_, r: _has(r, Indeterminate)),
        }

    # -- the search ----------------------------------------------------------------------------------

    def explore(self) -> SegmentReport:
        """Breadth-first search over every reachable state, up to the state budget: the engine's ``bfs``
        over canonical states (reduction 4), each its own key."""
        sometimes = [(name, pred) for name, pred in self.sometimes().items() if name in self.cfg.sometimes]
        found = bfs(self.initial(), self._canonical_successors, key=_identity, check=self.violation,
                    sometimes=sometimes, max_states=self.cfg.max_states)
        names = list(self.cfg.sometimes)
        if found.found is not None:
            prop, why, target, _ = found.found
            path = replay(self.initial(), self._canonical_successors, _identity, found.parent, target)
            return SegmentReport(
                self.cfg, VIOLATION, found.states, found.depth, found.seconds, names, found.witnessed, prop, why,
                self._render([st_ for _, st_ in path]),
            )
        return SegmentReport(self.cfg, found.verdict, found.states, found.depth, found.seconds, names,
                             found.witnessed)

    def _canonical_successors(self, s: SegState) -> Iterator[tuple[str, SegState]]:
        for label, raw in self.successors(s):
            yield label, self.canonical(raw)

    def _render(self, trace: list[SegState]) -> list[str]:
        lines = []
        for i in range(1, len(trace)):
            label = next(
                (lb for lb, nxt in self.successors(trace[i - 1], labels=True) if self.canonical(nxt) == trace[i]), "?"
            )
            lines.append(f"  {i:3d}. {label}")
        last = trace[-1]
        for k, step, r, _ in self.results(last):
            lines.append(f"       client {chr(65 + k)}: {step} -> {r!r}")
        return lines




@dataclass(slots=True)
class SegmentReport:
    """What an exploration found; ``verdict`` is CHECKED, VIOLATION, UNKNOWN (budget) or VACUOUS."""

    config: SegmentExploreConfig
    verdict: str
    states: int
    depth: int
    seconds: float
    sometimes: list[str]
    witnessed: dict[str, int]
    failed: str | None = None
    violation: str | None = None
    trace: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict == CHECKED

    def render(self) -> str:
        lines = [
            f"segment explorer: {self.config.describe()}",
            f"verdict: {self.verdict}   distinct states: {self.states}   max depth: {self.depth}"
            f"   seconds: {self.seconds:.1f}",
        ]
        for name in self.sometimes:
            d = self.witnessed.get(name)
            lines.append(f"  {name}: " + ("NEVER WITNESSED (vacuous)" if d is None else f"witnessed at depth {d}"))
        if self.failed is not None:
            lines.append(f"violated: {self.failed}: {self.violation}")
            lines.extend(self.trace)
        return "\n".join(lines)


def explore_segment(cfg: SegmentExploreConfig | None = None) -> SegmentReport:
    """Explore every state of ``cfg`` (default: the alloc/trim/batch race) up to its state budget."""
    return SegmentExplorer(cfg or SegmentExploreConfig()).explore()


def segment_race_config() -> SegmentExploreConfig:
    """Allocated segment; A: batch capture 0..1, batch write both; B: trim (``wos.race`` in
    ``explore_engine.CONFIGS``; not the WOR layer's ``explore.race_config``)."""
    return SegmentExploreConfig()


def write_trim_config() -> SegmentExploreConfig:
    """Allocated segment, A holding a capture of 0..1; A: batch write both; B: trim."""
    return SegmentExploreConfig(
        name="write/trim race", precaptured=(0, 2),
        scripts=((write_step({0: b"a", 1: b"a"}),), (trim_step(),)),
    )


def alloc_race_config() -> SegmentExploreConfig:
    """Unallocated segment; A and B both alloc it with the same metadata (the token must keep them apart)."""
    return SegmentExploreConfig(
        name="alloc race",
        scripts=((alloc_step(b"m"),), (alloc_step(b"m"),)),
        preallocated=False,
        duplicating=True,
        sometimes=("sometimes_alloc_won", "sometimes_alloc_lost", "sometimes_indeterminate"),
    )


def adopt_config() -> SegmentExploreConfig:
    """Allocated segment whose offset 0 is chosen (b"p") by a bare quorum only; A: batch capture 0..1, batch
    write both; B: batch read 0..1. A's capture must find b"p" whichever quorum answers."""
    return SegmentExploreConfig(
        name="adopt",
        prechosen=((0, b"p"),),
        duplicating=True,
        scripts=((capture_step(0, 2), write_step({0: b"a", 1: b"a"})),),
        sometimes=("sometimes_write_already_written", "sometimes_capture_found_written"),
    )


def capture_race_config() -> SegmentExploreConfig:
    """Allocated segment; A: batch capture, batch write a; B: batch capture, batch write b."""
    return SegmentExploreConfig(
        name="capture race",
        scripts=(
            (capture_step(0, 2), write_step({0: b"a", 1: b"a"})),
            (capture_step(0, 2), write_step({0: b"b", 1: b"b"})),
        ),
        sometimes=(
            "sometimes_batch_write_ok",
            "sometimes_write_already_written",
            "sometimes_write_capture_stale",
            "sometimes_indeterminate",
        ),
    )


__all__ = [
    "CHECKED",
    "LOCKSTEP_SOMETIMES",
    "VIOLATION",
    "Inconsistent",
    "Possible",
    "SegStep",
    "SegmentExploreConfig",
    "SegmentExplorer",
    "SegmentReport",
    "WosLockstep",
    "alloc_race_config",
    "capture_race_config",
    "explore_segment",
    "lockstep_bounds",
    "lockstep_witnessed",
    "segment_race_config",
    "settle",
]
