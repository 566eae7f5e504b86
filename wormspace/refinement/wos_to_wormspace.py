"""Refinement check WOS -> WormSpace: the address-space client against the trusted ``WormSpaceSpec``.

Two checks, each bounded and each printing its bounds:

1. ``SpaceLockstep`` -- a Hypothesis ``RuleBasedStateMachine`` driving the synchronous ``WormSpace`` client
   (two clients, addresses not segments) on a ``SimCluster`` of two acceptor groups, under message drops and
   duplicates, crashes, restarts and partitions, beside ``WormSpaceSpec``. Segments never affect each other
   (a clause of the spec), so the possibilities (``wor_to_wos.Possible``) are kept per segment, each over a
   ``WormSpaceSpec`` holding that one segment, and every step goes through ``WormSpaceSpec``'s own address
   arithmetic. ``alloc()`` without a segment probes several segments; its probes are read back from the
   recorded history and each is checked. Listeners run meanwhile, and every delivery must be the value chosen
   for that offset, once per listener. Invariants: the abstraction ``abstract_space(cluster.chosen())`` is a
   possible spec state for every segment; each acceptor holds only registers of segments of its own group,
   and nothing but TRIM of a segment it trimmed. At the end of each run the recorded history is checked for
   linearizability against ``SegmentModel`` (``refinement/models.py``) with ``check_history``.
2. ``concurrent_run`` / ``check_concurrent`` -- several spawned client processes race on a few segments
   (alloc, trim, capture + write, batch capture + batch write, read) on a faulty cluster, in pairs sharing
   one client node so that their concurrent operations run merged (``wormspace.layers.coalesce``); the recorded
   history must be linearizable against ``SegmentModel`` (verdict OK; UNKNOWN and ILLEGAL both fail).
   "Sometimes" properties show the histories are not trivial: a trim, a lost alloc, an operation answered
   ``Trimmed``, an indeterminate outcome, a batch write with mixed per-offset results.

Everything here is "checked (bounded)": for these clients, seeds, fault rates and budgets.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule

from wormspace.errors import CaptureStale, Indeterminate, OperationFailed, Trimmed, UsageError
from wormspace.layers.effects import RegKey
from wormspace.layers.messages import META, TRIM
from wormspace.layers.network import Faults
from wormspace.layers.wor import Config, Outcome
from wormspace.layers.wormspace import ClientRequest, SpaceLogic, WormSpace, WormSpaceSpec, abstract_space
from wormspace.layers.wos import CaptureId, Listener, registers_kept_after_trim
from wormspace.refinement.wor_to_wos import Pending, Possible, SpecAdapter, settle
from wormspace.refinement.wor_to_wos import outcome_of as _outcome

# ---- the spec side: one WormSpaceSpec per segment ---------------------------------------------------------


def _apply(spec: WormSpaceSpec, p: Pending) -> WormSpaceSpec:
    if p[0] == "write":
        return spec.write(p[1], p[2])[0]
    if p[0] == "alloc":
        return spec.alloc(p[1], p[2])[0]
    return spec.trim(p[1])[0]


def _useless(spec: WormSpaceSpec, p: Pending) -> bool:
    s = spec.split(p[1])[0] if p[0] == "write" else p[1]
    seg = spec.segment(s)
    if seg.trimmed:
        return True
    if p[0] == "write":
        return spec.split(p[1])[1] in dict(seg.data)
    if p[0] == "alloc":
        return seg.metadata is not None
    return False


def _any_trimmed(spec: WormSpaceSpec) -> bool:
    return any(w.trimmed for _, w in spec.segments)


SPACE_ADAPTER: SpecAdapter[WormSpaceSpec] = SpecAdapter(_apply, _useless, _any_trimmed)


def only(spec: WormSpaceSpec, segment: int) -> WormSpaceSpec:
    """``spec`` restricted to one segment (the others fresh)."""
    return WormSpaceSpec(spec.wos_size).with_segment(segment, spec.segment(segment))


# ---- 1. the lockstep state machine ----------------------------------------------------------------------

SPACE_WOS = 3
SPACE_GROUPS = 2
SPACE_ACCEPTORS = 6
SPACE_SEGMENTS = (0, 1, 2, 3)
SPACE_CLIENTS = 2
SPACE_CONFIG = Config(timeout=0.05, max_resends=2, max_rounds=3)
SPACE_FAULTS = (Faults(), Faults(drop=0.05, duplicate=0.05), Faults(drop=0.2, duplicate=0.1))
SETTLE_SECONDS = 1.0

SPACE_SOMETIMES = (
    "sometimes_alloc_any_skipped_a_segment",
    "sometimes_segment_trimmed",
    "sometimes_trimmed_answer",
    "sometimes_write_ok",
    "sometimes_batch_write_mixed",
    "sometimes_listener_delivered",
    "sometimes_history_checked",
    "sometimes_indeterminate",
)
space_witnessed: Counter[str] = Counter()

_segments = st.sampled_from(SPACE_SEGMENTS)
_offsets = st.integers(0, SPACE_WOS - 1)
_values = st.sampled_from([b"x", b"y", b""])
_clients = st.integers(0, SPACE_CLIENTS - 1)


Step = Callable[[WormSpaceSpec], tuple[WormSpaceSpec, object]]


def _allocs(s: int, meta: bytes) -> Step:
    return lambda w: w.alloc(s, meta)


def _writes(a: int, v: bytes) -> Step:
    return lambda w: w.write(a, v)


def _reads(a: int) -> Step:
    return lambda w: (w, w.read(a))


def _holds(a: int, v: bytes) -> Callable[[WormSpaceSpec], WormSpaceSpec | None]:
    return lambda w: w if w.read(a) == v else None


class SpaceLockstep(RuleBasedStateMachine):
    """The ``WormSpace`` client on a faulty two-group ``SimCluster`` in lockstep with ``WormSpaceSpec``."""

    captures = Bundle("space_captures")

    def __init__(self) -> None:
        super().__init__()
        self.cluster: Any = None
        self.poss: dict[int, Possible[WormSpaceSpec]] = {}
        self.down: set[int] = set()
        self.listeners: list[tuple[Listener, list[tuple[int, bytes]]]] = []
        self.ops = 0

    def _poss(self, s: int) -> Possible[WormSpaceSpec]:
        if s not in self.poss:
            self.poss[s] = Possible(WormSpaceSpec(SPACE_WOS), SPACE_ADAPTER)
        return self.poss[s]

    @initialize(seed=st.integers(0, 2**16), faults=st.sampled_from(SPACE_FAULTS))
    def start(self, seed: int, faults: Faults) -> None:
        from wormspace.cluster import Cluster

        self.cluster = Cluster.simulated(
            acceptors=SPACE_ACCEPTORS, groups=SPACE_GROUPS, seed=seed, wos_size=SPACE_WOS, faults=faults,
            config=SPACE_CONFIG,
        )
        self.ws: list[WormSpace] = [self.cluster.client() for _ in range(SPACE_CLIENTS)]
        for s in SPACE_SEGMENTS[:3]:
            self.alloc_segment(0, s, b"m")

    def _settle(
        self,
        s: int,
        result: object,
        spec_step: Callable[[WormSpaceSpec], tuple[WormSpaceSpec, object]],
        pending: Pending | None,
        what: str,
    ) -> None:
        self.ops += 1
        kind = settle(self._poss(s), result, spec_step, pending, what)
        if kind in ("indeterminate", "trimmed-in-flight"):
            space_witnessed["sometimes_indeterminate"] += 1
        if isinstance(result, Trimmed):
            space_witnessed["sometimes_trimmed_answer"] += 1

    # -- faults --------------------------------------------------------------------------------------

    @precondition(lambda self: len(self.down) < 2)
    @rule(i=st.integers(0, SPACE_ACCEPTORS - 1))
    def crash(self, i: int) -> None:
        if all(a // 3 != i // 3 for a in self.down):  # at most one acceptor down per group
            self.cluster.crash(i)
            self.down.add(i)

    @rule()
    def restart(self) -> None:
        for i in sorted(self.down):
            self.cluster.restart(i)
        self.down.clear()

    @rule(i=st.integers(0, SPACE_ACCEPTORS - 1))
    def partition(self, i: int) -> None:
        self.cluster.partition({i}, set(range(SPACE_ACCEPTORS)) - {i})

    @rule()
    def heal(self) -> None:
        self.cluster.heal()

    @rule()
    def settle_network(self) -> None:
        """Let virtual time pass: messages in flight land; listeners poll."""
        net = self.cluster.net
        until = net.now + SETTLE_SECONDS
        net.run_until(lambda: net.now >= until)

    # -- operations ----------------------------------------------------------------------------------

    @rule(c=_clients, s=_segments, meta=st.sampled_from([b"m", b"n"]))
    def alloc_segment(self, c: int, s: int, meta: bytes) -> None:
        r = _outcome(lambda: self.ws[c].alloc(meta, segment=s))
        self._settle(s, r, lambda w: w.alloc(s, meta), ("alloc", s, meta), f"client {c}: alloc({meta!r}, segment={s})")

    @rule(c=_clients, meta=st.sampled_from([b"m", b"n"]))
    def alloc_any(self, c: int, meta: bytes) -> None:
        """``alloc()`` probes segments: check every probe, as recorded in the history."""
        history = self.cluster.history()
        mark = len(history)
        r = _outcome(lambda: self.ws[c].alloc(meta))
        probes = 0
        for e in list(history)[mark:]:
            if e.type == "invoke" or e.f != "alloc":
                continue
            probes += 1
            s = e.key // SPACE_WOS
            res: object
            if e.type == "ok":
                res = True
            elif e.type == "info":
                res = Indeterminate("probe")
            elif e.error == "AlreadyWritten":
                res = False
            elif e.error == "Trimmed":
                res = Trimmed("probe")
            else:
                res = CaptureStale("probe")
            self._settle(s, res, _allocs(s, meta), ("alloc", s, meta), f"client {c}: alloc() probe {s}")
        if probes > 1:
            space_witnessed["sometimes_alloc_any_skipped_a_segment"] += 1
        if isinstance(r, int) and not isinstance(r, bool):
            assert self.ws[c].logic.seg.meta_cache.get(r) is not None

    @precondition(lambda self: self.ops >= 8)
    @rule(c=_clients, s=_segments)
    def trim(self, c: int, s: int) -> None:
        r = _outcome(lambda: self.ws[c].trim(s))
        if r is None:
            space_witnessed["sometimes_segment_trimmed"] += 1
        self._settle(s, r, lambda w: w.trim(s), ("trim", s), f"client {c}: trim({s})")

    @rule(c=_clients, s=_segments)
    def check(self, c: int, s: int) -> None:
        r = _outcome(lambda: self.ws[c].check(s))
        self._settle(s, r, lambda w: (w, w.check(s)), None, f"client {c}: check({s})")

    @rule(target=captures, c=_clients, s=_segments, o=_offsets)
    def capture(self, c: int, s: int, o: int) -> tuple[int, CaptureId | None]:
        a = self.ws[c].address(s, o)
        return self._captured(c, s, o, _outcome(lambda: self.ws[c].capture(a)))

    @rule(target=captures, c=_clients, s=_segments, span=st.sampled_from([(0, SPACE_WOS), (0, 2), (1, SPACE_WOS)]))
    def batch_capture(self, c: int, s: int, span: tuple[int, int]) -> tuple[int, CaptureId | None]:
        start, end = span
        return self._captured(c, s, start, _outcome(lambda: self.ws[c].batch_capture(s, start, end)))

    def _captured(self, c: int, s: int, o: int, r: object) -> tuple[int, CaptureId | None]:
        a = s * SPACE_WOS + o
        self._settle(s, r, lambda w: (w, w.capture(a)), None, f"client {c}: capture({a})")
        if not isinstance(r, CaptureId):
            return c, None
        for off, v in r.known:
            addr = s * SPACE_WOS + off
            self._poss(s).observe(_holds(addr, v), f"found {addr}={v!r}")
        return c, r

    @rule(cap=captures, o=_offsets, v=_values)
    def write(self, cap: tuple[int, CaptureId | None], o: int, v: bytes) -> None:
        c, cid = cap
        if cid is None or not cid.covers(cid.segment, o):
            return
        a = self.ws[c].address(cid.segment, o)
        r = _outcome(lambda: self.ws[c].write(a, v, cid))
        if isinstance(r, UsageError):
            return
        if r is None:
            space_witnessed["sometimes_write_ok"] += 1
        self._settle(cid.segment, r, lambda w: w.write(a, v), ("write", a, v), f"client {c}: write({a}, {v!r})")

    @rule(cap=captures, values=st.dictionaries(_offsets, _values, min_size=2, max_size=SPACE_WOS))
    def batch_write(self, cap: tuple[int, CaptureId | None], values: dict[int, bytes]) -> None:
        c, cid = cap
        if cid is None:
            return
        values = {o: v for o, v in values.items() if cid.covers(cid.segment, o)}
        if not values:
            return
        s = cid.segment
        r = _outcome(lambda: self.ws[c].batch_write(s, values, cid))
        if isinstance(r, UsageError):
            return
        results: dict[int, object] = dict(r) if isinstance(r, dict) else dict.fromkeys(values, r)
        if len({type(x) for x in results.values()}) > 1:
            space_witnessed["sometimes_batch_write_mixed"] += 1
        for o, v in sorted(values.items()):
            a = s * SPACE_WOS + o
            self._settle(s, results[o], _writes(a, v), ("write", a, v), f"client {c}: write({a}, {v!r})")

    @rule(c=_clients, s=_segments, o=_offsets)
    def read(self, c: int, s: int, o: int) -> None:
        a = self.ws[c].address(s, o)
        r = _outcome(lambda: self.ws[c].read(a))
        self._settle(s, r, lambda w: (w, w.read(a)), None, f"client {c}: read({a})")

    @rule(c=_clients, s=_segments)
    def batch_read(self, c: int, s: int) -> None:
        r = _outcome(lambda: self.ws[c].batch_read(s))
        for o in range(SPACE_WOS):
            a = s * SPACE_WOS + o
            x = r[o] if isinstance(r, dict) else r
            self._settle(s, x, _reads(a), None, f"client {c}: batch_read -> {a}")

    @precondition(lambda self: len(self.listeners) < 3)
    @rule(c=_clients, s=_segments)
    def listen(self, c: int, s: int) -> None:
        got: list[tuple[int, bytes]] = []
        handle = self.ws[c].listen(s, lambda off, data: got.append((off, data)), interval=0.1)
        self.listeners.append((handle, got))

    @rule(data=st.data())
    def cancel_listener(self, data: st.DataObject) -> None:
        if self.listeners:
            handle, _ = data.draw(st.sampled_from(self.listeners), label="listener")
            handle.cancel()

    # -- invariants ----------------------------------------------------------------------------------

    @invariant()
    def abstraction_is_a_possible_spec_state(self) -> None:
        if self.cluster is None:
            return
        abstract = abstract_space(self.cluster.chosen(), SPACE_WOS)
        for s in sorted(set(self.poss) | {k for k, _ in abstract.segments}):
            self._poss(s).match(only(abstract, s), f"segment {s}")

    @invariant()
    def acceptors_hold_only_their_group_and_no_trimmed_data(self) -> None:
        if self.cluster is None:
            return
        per = SPACE_ACCEPTORS // SPACE_GROUPS
        for i, storage in enumerate(self.cluster.storages):
            items = list(storage.items())
            assert not registers_kept_after_trim(items), f"acceptor {i} keeps registers of a trimmed segment"
            for (s, index), _ in items:
                assert s % SPACE_GROUPS == i // per, f"acceptor {i} holds segment {s} of another group"
                assert index in (META, TRIM) or 0 <= index < SPACE_WOS

    @invariant()
    def listeners_deliver_chosen_values_once(self) -> None:
        if self.cluster is None:
            return
        chosen = self.cluster.chosen()
        for handle, got in self.listeners:
            offsets = [off for off, _ in got]
            assert len(offsets) == len(set(offsets)), f"listener delivered an offset twice: {got}"
            for off, data in got:
                space_witnessed["sometimes_listener_delivered"] += 1
                assert chosen.get((handle.segment, off)) == data, f"listener got {off}={data!r}, not chosen"

    def teardown(self) -> None:
        if self.cluster is None:
            return
        for handle, _ in self.listeners:
            handle.cancel()
        self.cluster.run()
        from wormspace.refinement.linearizability import OK, check_history
        from wormspace.refinement.models import SegmentModel

        result = check_history(self.cluster.history(), SegmentModel(wos_size=SPACE_WOS), budget=200_000)
        assert result.verdict == OK, f"history not linearizable: {result.verdict} {result.minimal}"
        space_witnessed["sometimes_history_checked"] += 1


def lockstep_bounds() -> str:
    return (
        f"{SPACE_ACCEPTORS} acceptors in {SPACE_GROUPS} groups, clients {SPACE_CLIENTS}, segments"
        f" {list(SPACE_SEGMENTS)} (+ those alloc() finds) of {SPACE_WOS} data WORs, rounds <="
        f" {SPACE_CONFIG.max_rounds}, resends <= {SPACE_CONFIG.max_resends}, fault menus"
        f" {[(f.drop, f.duplicate) for f in SPACE_FAULTS]} (drop, duplicate), <= 1 acceptor down per group,"
        " partitions, <= 3 listeners"
    )


# ---- 2. concurrent histories ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ConcurrentConfig:
    """The bounds of one concurrent run."""

    clients: int = 4
    segments: int = 2
    wos_size: int = 4
    ops: int = 16  # per client
    faults: Faults = field(default_factory=lambda: Faults(drop=0.05, duplicate=0.05))
    crash: bool = True  # crash one acceptor for a while, then partition another off for a while
    budget: int = 200_000  # linearizability checker steps per segment
    shared_nodes: bool = True  # client processes run in pairs on one client node (merged operations)

    def describe(self) -> str:
        return (
            f"3 acceptors, {self.clients} client processes x {self.ops} operations on {self.segments} segments"
            f" of {self.wos_size} data WORs; drop {self.faults.drop}, duplicate {self.faults.duplicate}"
            + ("; a crash and a partition" if self.crash else "")
            + ("; processes paired on shared client nodes" if self.shared_nodes else "")
            + f"; checker budget {self.budget} steps per segment"
        )


def _workload(seed: int, cfg: ConcurrentConfig) -> Callable[[SpaceLogic], Generator[ClientRequest, Outcome, None]]:
    rng = random.Random(seed)

    def workload(logic: SpaceLogic) -> Generator[ClientRequest, Outcome, None]:
        cap: CaptureId | None = None
        for n in range(cfg.ops):
            s = rng.randrange(cfg.segments)
            off = rng.randrange(cfg.wos_size)
            value = f"p{logic.process}n{n}".encode() if rng.random() < 0.7 else b"shared"
            r = rng.random()
            try:
                if r < 0.15:
                    meta = b"m" if rng.random() < 0.5 else f"m{logic.process}".encode()  # same or own metadata
                    yield from logic.alloc(s, meta)
                elif r < 0.2 and n >= cfg.ops // 2:
                    yield from logic.trim(s)
                elif r < 0.45:
                    c = yield from logic.capture(logic.address(s, off))
                    yield from logic.write(logic.address(s, off), value, c)
                elif r < 0.65:
                    cap = yield from logic.batch_capture(s, 0, cfg.wos_size)
                    k = rng.randint(1, cfg.wos_size)
                    yield from logic.batch_write(s, {o: value for o in rng.sample(range(cfg.wos_size), k)}, cap)
                elif r < 0.7 and cap is not None:
                    yield from logic.batch_write(cap.segment, {off: value}, cap)  # an old capture: may be stale
                else:
                    yield from logic.read(logic.address(s, off))
            except (OperationFailed, UsageError):
                pass

    return workload


CONCURRENT_SOMETIMES = (
    "sometimes_segment_trimmed",
    "sometimes_alloc_lost",
    "sometimes_trimmed_answer",
    "sometimes_indeterminate",
    "sometimes_batch_write_mixed",
    "sometimes_write_stale",
    "sometimes_read_value",
)


@dataclass(slots=True)
class ConcurrentReport:
    config: ConcurrentConfig
    seeds: list[int]
    verdicts: dict[int, str]
    operations: int
    steps: int
    witnessed: Counter[str]
    failures: list[str]

    @property
    def ok(self) -> bool:
        return not self.failures and all(self.witnessed[name] for name in CONCURRENT_SOMETIMES)

    def render(self) -> str:
        counts = Counter(self.verdicts.values())
        lines = [
            f"concurrent histories: {self.config.describe()}",
            f"seeds {self.seeds[0]}..{self.seeds[-1]} ({len(self.seeds)}): verdicts {dict(counts)};"
            f" {self.operations} operations, {self.steps} checker steps",
        ]
        for name in CONCURRENT_SOMETIMES:
            n = self.witnessed[name]
            lines.append(f"  {name}: " + (f"witnessed {n} times" if n else "NEVER WITNESSED (vacuous)"))
        lines.extend(f"  FAILED {f}" for f in self.failures)
        return "\n".join(lines)


def concurrent_run(seed: int, cfg: ConcurrentConfig | None = None) -> Any:
    """Run ``cfg.clients`` spawned processes concurrently on a faulty simulated cluster; return the cluster."""
    from wormspace.cluster import Cluster

    cfg = cfg or ConcurrentConfig()
    cluster = Cluster.simulated(
        acceptors=3, seed=seed, wos_size=cfg.wos_size, faults=cfg.faults,
        config=Config(timeout=0.05, max_resends=3, max_rounds=3),
    )
    for k in range(cfg.clients):
        if cfg.shared_nodes and k % 2:  # the pair's second process shares the first's node and start time
            cluster.spawn(_workload(seed * 101 + k, cfg), at=0.001 * (k - 1), node_of=k - 1)
        else:
            cluster.spawn(_workload(seed * 101 + k, cfg), at=0.001 * k)
    if cfg.crash:
        cluster.at(0.02, lambda: cluster.crash(seed % 3))
        cluster.at(0.15, lambda: cluster.restart(seed % 3))
        cluster.at(0.2, lambda: cluster.partition({(seed + 1) % 3}, {seed % 3, (seed + 2) % 3}))
        cluster.at(0.35, cluster.heal)
    cluster.run()
    return cluster


def _witness(history: Iterable[Any], witnessed: Counter[str]) -> None:
    for e in history:
        if e.type == "invoke":
            continue
        if e.f == "trim" and e.type == "ok":
            witnessed["sometimes_segment_trimmed"] += 1
        if e.f == "alloc" and e.error == "AlreadyWritten":
            witnessed["sometimes_alloc_lost"] += 1
        if e.error == "Trimmed":
            witnessed["sometimes_trimmed_answer"] += 1
        if e.type == "info":
            witnessed["sometimes_indeterminate"] += 1
        if e.f == "batch_write" and e.results and len(set(e.results.values())) > 1:
            witnessed["sometimes_batch_write_mixed"] += 1
        if e.error == "CaptureStale" or (e.results and "CaptureStale" in e.results.values()):
            witnessed["sometimes_write_stale"] += 1
        if e.f == "read" and e.type == "ok" and e.value is not None:
            witnessed["sometimes_read_value"] += 1


def check_concurrent(seeds: Iterable[int], cfg: ConcurrentConfig | None = None) -> ConcurrentReport:
    """Run and check one concurrent history per seed (see the module docstring)."""
    from wormspace.layers.wor import always_single_value_chosen
    from wormspace.refinement.linearizability import OK, check_history
    from wormspace.refinement.models import SegmentModel

    cfg = cfg or ConcurrentConfig()
    seeds = list(seeds)
    witnessed: Counter[str] = Counter()
    verdicts: dict[int, str] = {}
    failures: list[str] = []
    operations = steps = 0
    for seed in seeds:
        cluster = concurrent_run(seed, cfg)
        history = cluster.history()
        for key, votes in cluster.ghost.items():
            if not always_single_value_chosen(votes, cluster.quorum):
                failures.append(f"seed {seed}: register {key} has two chosen values")
        for i, storage in enumerate(cluster.storages):
            kept: list[RegKey] = registers_kept_after_trim(storage.items())
            if kept:
                failures.append(f"seed {seed}: acceptor {i} keeps {kept} of a trimmed segment")
        if cluster.failures:
            failures.append(f"seed {seed}: a process ended with {cluster.failures[0][1]!r}")
        result = check_history(history, SegmentModel(wos_size=cfg.wos_size), budget=cfg.budget)
        verdicts[seed] = result.verdict
        operations += result.operations
        steps += result.steps
        if result.verdict != OK:
            detail = "" if result.minimal is None else f": {list(result.minimal.descriptions)}"
            failures.append(f"seed {seed}: {result.verdict}{detail}")
        _witness(history, witnessed)
    return ConcurrentReport(cfg, seeds, verdicts, operations, steps, witnessed, failures)


__all__ = [
    "CONCURRENT_SOMETIMES",
    "SPACE_SOMETIMES",
    "ConcurrentConfig",
    "ConcurrentReport",
    "SpaceLockstep",
    "check_concurrent",
    "concurrent_run",
    "lockstep_bounds",
    "only",
    "space_witnessed",
]


