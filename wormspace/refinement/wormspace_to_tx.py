"""Checks of WormTX (``apps/tx.py``) against its trusted spec ``TxSpec``, over the WormSpace client API.

Abstraction function (``abstract_tx``): the transaction's vote registers, as the layers below choose them,
are ``TxSpec``'s votes (EMPTY -> None). Three checks, each with planted-bug tests in
``tests/mutants/test_tx_mutants.py``:

1. ``explore_tx`` -- exhaustive exploration of a small configuration (``explore_engine.bfs``). The app's
   generator core runs as several processes against registers answered by the WOS spec (each WOR-layer request
   applied atomically: a write takes an empty register or reports ``AlreadyWritten(v)``; a read answers the
   spec's value), over every interleaving of their requests. A process's local state is a function of the
   outcomes it has seen, so a state is (registers, each process's outcome sequence); sleeps touch nothing
   shared and run eagerly, so a decider's timeout may fire between any two steps (time is abstract). Crashable
   processes may stop before any step. Captures always succeed here: in the WOR spec they are a liveness
   device, and their preemptions (``CaptureStale`` and retries) are exercised by checks 2 and 3. Properties,
   on every state (a finished process's result is checked when it returns and again in every later state; the
   registers are write-once, so both agree): a decide returns ``TxSpec(abstract).outcome()`` of the moment it
   returns, which is already defined (so all deciders agree, commit only if all voted YES, abort if any voted
   NO, and since ABORT is only cast into empty votes, all YES means commit); a vote returns True iff the
   register holds its value; a trimmed transaction has every ACK written; at the end, every process that did
   not crash returned. "Sometimes" properties (non-vacuity): configurations report which outcomes were
   reached.
2. ``TxLockstep`` -- a Hypothesis state machine running ``WormTX`` on a simulated cluster with acceptor
   crashes, partitions, message loss and duplication, in lockstep with ``TxSpec``; ``Indeterminate``
   operations leave the spec to the abstraction function.
3. ``check_tx_history`` -- the atomic-commitment properties (``tx_problems`` in ``wormspace_to_apps``,
   judged by ``TxSpec``; what ``wormspace check`` applies to a WormTX history) over the app history
   (``AppHistory``, app ``"tx"``, ``docs/history-format.md``) of concurrent simulated processes, and each
   decide and each failed vote against the abstraction of the registers at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from wormspace.apps.history import AppHistory
from wormspace.apps.tx import COMMIT, NO, YES, TxLogic, TxSpec, encode_meta
from wormspace.errors import Indeterminate, OperationFailed, UsageError
from wormspace.layers.messages import META, TRIM, Ballot
from wormspace.layers.network import Faults
from wormspace.layers.wor import Kind, OpRequest, Outcome
from wormspace.layers.wormspace import SLEPT, OpGen, Sleep, SpaceLogic
from wormspace.layers.wos import encode_meta as wos_meta
from wormspace.refinement.explore_engine import bfs, replay
from wormspace.refinement.wormspace_to_apps import parse_app_history, tx_problems, tx_shapes

Regs = tuple[tuple[tuple[int, int], bytes], ...]  # sorted ((segment, index), value)


# ---- the abstraction function ---------------------------------------------------------------------------


def abstract_tx(chosen: Mapping[tuple[int, int], bytes | None], t: int, n: int) -> TxSpec:
    """``TxSpec`` of transaction ``t`` from each register's chosen value (``cluster.chosen()``)."""
    return TxSpec(tuple(chosen.get((t, i)) for i in range(n)))


# ---- 1. exhaustive exploration over the WOS spec -------------------------------------------------------


def answer(regs: dict[tuple[int, int], bytes], req: OpRequest, node: int) -> Outcome:
    """The WOS spec's answer to one WOR-layer request, applied atomically to ``regs`` (mutated)."""
    s = req.segment
    if (s, TRIM) in regs and req.targets() != (TRIM,):
        return Outcome(error="Trimmed")
    if req.kind is Kind.CAPTURE:
        known = tuple((i, regs[(s, i)]) for i in req.indices if (s, i) in regs)
        return Outcome(ballot=Ballot(1, node), chosen=known)
    if req.kind in (Kind.WRITE, Kind.PROPOSE):
        for i, v in req.values:
            regs.setdefault((s, i), v)
        return Outcome(chosen=tuple((i, regs[(s, i)]) for i, _ in req.values))
    chosen = tuple((i, regs[(s, i)]) for i in req.indices if (s, i) in regs)
    return Outcome(chosen=chosen, empty=tuple(i for i in req.indices if (s, i) not in regs))


Program = Callable[[TxLogic, int], OpGen[dict[str, Any]]]


def participant(i: int, value: bytes | None, wait: float) -> Program:
    """Participant ``i``: vote ``value`` (None: stay silent), then decide and acknowledge."""

    def program(tx: TxLogic, t: int) -> OpGen[dict[str, Any]]:
        voted = None if value is None else (yield from tx.vote(t, i, value == YES))
        decision = yield from tx.decide(t, wait, participant=i)
        return {"participant": i, "vote": value, "voted": voted, "decision": decision}

    return program


def voter(i: int, value: bytes) -> Program:
    """Participant ``i`` that only votes (it may crash before, or after)."""

    def program(tx: TxLogic, t: int) -> OpGen[dict[str, Any]]:
        voted = yield from tx.vote(t, i, value == YES)
        return {"participant": i, "vote": value, "voted": voted, "decision": None}

    return program


@dataclass(frozen=True)
class Proc:
    name: str
    program: Program
    crashable: bool = False


@dataclass(frozen=True)
class TxExploreConfig:
    name: str
    participants: int
    procs: tuple[Proc, ...]
    wait: float = 1.0


WAIT = 1.0  # the deciders' wait; each reads the votes twice (poll = wait) before casting ABORT


def silent_config() -> TxExploreConfig:
    """3 participants; 0 and 1 vote YES and decide (racing to cast ABORT for 2); 2 is silent."""
    procs = (Proc("p0", participant(0, YES, WAIT)), Proc("p1", participant(1, YES, WAIT)))
    return TxExploreConfig("silent", 3, procs)


def crashing_config(value: bytes = YES) -> TxExploreConfig:
    """3 participants; 0 and 1 vote YES and decide; 2 votes ``value`` and decides, and may crash anywhere."""
    procs = (
        Proc("p0", participant(0, YES, WAIT)),
        Proc("p1", participant(1, YES, WAIT)),
        Proc("p2", participant(2, value, WAIT), crashable=True),
    )
    return TxExploreConfig(f"crashing-{value.decode().lower()}", 3, procs)


def default_tx_configs() -> tuple[TxExploreConfig, ...]:
    return (silent_config(), crashing_config(YES), crashing_config(NO))


@dataclass
class TxReport:
    config: str
    states: int
    depth: int
    terminal: int
    outcomes: dict[str, int]
    violation: str | None = None
    trace: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.violation is None

    def describe(self) -> str:
        head = (
            f"{self.config}: {self.states} states, depth {self.depth}, {self.terminal} terminal;"
            f" outcomes {dict(sorted(self.outcomes.items()))}"
        )
        if self.ok:
            return head + ": checked"
        return head + f": VIOLATION {self.violation}\n  " + "\n  ".join(self.trace)


CRASHED = "crashed"
Local = tuple[Outcome, ...] | str  # outcomes seen so far, or CRASHED


class _Explorer:
    def __init__(self, cfg: TxExploreConfig, wos_size: int = 16) -> None:
        self.cfg = cfg
        self.wos_size = wos_size
        self.t = 0
        self.meta = wos_meta(b"\0" * 16, encode_meta("E3", cfg.participants))
        self.memo: dict[tuple[int, tuple[Outcome, ...]], tuple[str, Any]] = {}

    def _tx(self, p: int) -> TxLogic:
        logic = SpaceLogic(wos_size=self.wos_size, seed=p, process=p + 1)
        logic.seg.meta_cache[self.t] = self.meta
        logic.seg.next_segment = self.t + 1
        tx = TxLogic(logic, poll=self.cfg.wait)
        tx.shapes[self.t] = ("E3", self.cfg.participants)
        return tx

    def local(self, p: int, seq: tuple[Outcome, ...]) -> tuple[str, Any]:
        """Replay process ``p`` over ``seq``: ("req", request) | ("done", result) | ("error", text)."""
        key = (p, seq)
        if key not in self.memo:
            gen = self.cfg.procs[p].program(self._tx(p), self.t)
            try:
                req = next(gen)
                for out in seq:
                    while isinstance(req, Sleep):
                        req = gen.send(SLEPT)
                    req = gen.send(out)
                while isinstance(req, Sleep):
                    req = gen.send(SLEPT)
                self.memo[key] = ("req", req)
            except StopIteration as stop:
                self.memo[key] = ("done", stop.value)
            except (OperationFailed, UsageError, AssertionError) as e:
                self.memo[key] = ("error", f"{type(e).__name__}: {e}")
        return self.memo[key]

    def spec(self, regs: dict[tuple[int, int], bytes]) -> TxSpec:
        return abstract_tx(regs, self.t, self.cfg.participants)

    def check_done(self, regs: dict[tuple[int, int], bytes], result: dict[str, Any]) -> str | None:
        spec = self.spec(regs)
        i, vote = result["participant"], result["vote"]
        if result["voted"] is not None and result["voted"] != (spec.votes[i] == vote):
            return f"vote of {i} returned {result['voted']} but its register holds {spec.votes[i]!r}"
        if result["decision"] is not None and result["decision"] != spec.outcome():
            return f"participant {i} decided {result['decision']} while the spec's outcome is {spec.outcome()}"
        return None

    def check_state(self, regs: dict[tuple[int, int], bytes]) -> str | None:
        n = self.cfg.participants
        if (self.t, TRIM) in regs and any((self.t, n + i) not in regs for i in range(n)):
            return "transaction trimmed before every participant acknowledged the outcome"
        return None


TxState = tuple[Regs, tuple[Local, ...]]


def explore_tx(cfg: TxExploreConfig, *, max_states: int = 2_000_000) -> TxReport:
    """Breadth-first search of every interleaving of ``cfg``'s processes (see the module docstring), with
    the engine's ``bfs`` (a state is its own key: it is already small, and no symmetry is used -- the
    processes run different programs). Properties are checked on every state: no process failed, the
    state-wide rule (``check_state``), and each finished process's result against the spec of the
    registers (``check_done``; the registers are write-once and a finished result never changes, so a
    result that holds when its process returns holds in every later state, and the converse); at terminal
    states the outcome is tallied."""
    ex = _Explorer(cfg)
    init_regs: dict[tuple[int, int], bytes] = {(0, META): ex.meta}
    init: TxState = (tuple(sorted(init_regs.items())), tuple(() for _ in cfg.procs))
    outcomes: dict[str, int] = {}
    terminal = 0

    def successors(state: TxState) -> Iterator[tuple[str, TxState]]:
        nonlocal terminal
        regs_t, locals_ = state
        moved = False
        results = []
        for p, seq in enumerate(locals_):
            if seq == CRASHED:
                continue
            assert not isinstance(seq, str)
            kind, what = ex.local(p, seq)
            if kind != "req":
                results.append(what)
                continue
            moved = True
            regs = dict(regs_t)
            out = answer(regs, what, node=p + 1)
            label = f"{cfg.procs[p].name}: {what.kind.value} {what.targets()} -> {_show(out)}"
            yield label, (tuple(sorted(regs.items())), (*locals_[:p], (*seq, out), *locals_[p + 1:]))
            if cfg.procs[p].crashable:
                yield f"{cfg.procs[p].name} crashes", (regs_t, (*locals_[:p], CRASHED, *locals_[p + 1:]))
        if not moved:
            terminal += 1
            spec = ex.spec(dict(regs_t))
            key = {True: "commit", False: "abort", None: "open"}[spec.outcome()]
            if any(r["voted"] is False for r in results):
                key += "+late-vote-lost"
            outcomes[key] = outcomes.get(key, 0) + 1

    def check(state: TxState) -> tuple[str, str] | None:
        regs_t, locals_ = state
        regs = dict(regs_t)
        why = ex.check_state(regs)
        if why is not None:
            return "tx_state", why
        decisions = set()
        for p, seq in enumerate(locals_):
            if seq == CRASHED:
                continue
            assert not isinstance(seq, str)
            kind, what = ex.local(p, seq)
            if kind == "error":
                return "tx_process_fails", f"{cfg.procs[p].name} raised {what}"
            if kind == "done":
                why = ex.check_done(regs, what)
                if why is not None:
                    return "tx_result_matches_spec", why
                if what["decision"] is not None:
                    decisions.add(what["decision"])
        if len(decisions) > 1:
            return "tx_deciders_agree", f"deciders disagree: {decisions}"
        return None

    found = bfs(init, successors, key=_identity, check=check, max_states=max_states + 1)
    if found.budget_hit:
        raise RuntimeError(f"{cfg.name}: more than {max_states} states")
    if found.found is not None:
        _, why, target, _ = found.found
        report = TxReport(cfg.name, found.states, found.depth, terminal, dict(outcomes), why)
        path = replay(init, successors, _identity, found.parent, target)
        report.trace = [label for label, _ in path[1:]] + ["(violation)"]
        return report
    return TxReport(cfg.name, found.states, found.depth, terminal, outcomes)


def _identity(state: TxState) -> TxState:
    return state


def _show(out: Outcome) -> str:
    if out.error:
        return out.error
    parts = [f"{i}={v.decode(errors='replace')}" for i, v in out.chosen if i >= 0]
    parts += [f"{i}=EMPTY" for i in out.empty]
    return ",".join(parts) or "ok"


# ---- 2. lockstep with the spec on a simulated cluster ---------------------------------------------------


class TxLockstep(RuleBasedStateMachine):
    """``WormTX`` on a 3-acceptor simulated cluster with faults, in lockstep with ``TxSpec`` (one
    transaction of 3 participants per run; a decide casts ABORT for the votes still empty)."""

    N = 3

    def __init__(self) -> None:
        super().__init__()
        from wormspace.apps.tx import WormTX
        from wormspace.cluster import Cluster

        self.cluster = Cluster.simulated(acceptors=3, seed=7, faults=Faults(drop=0.05, duplicate=0.05))
        self.tx = WormTX(self.cluster.client(), poll=0.01)
        self.t = self.tx.begin(participants=self.N)
        self.spec = TxSpec.fresh(self.N)
        self.decided: bool | None = None
        self.crashed: set[int] = set()
        self.parted = False

    def _sync(self) -> TxSpec:
        return abstract_tx(self.cluster.chosen(), self.t, self.N)

    @rule(i=st.integers(0, N - 1), yes=st.booleans())
    def vote(self, i: int, yes: bool) -> None:
        try:
            got = self.tx.vote(self.t, i, yes)
        except Indeterminate:
            self.spec = self._sync()  # may or may not have taken effect: the registers tell
            return
        self.spec, expected = self.spec.vote(i, YES if yes else NO)
        assert got == expected, f"vote({i}, {yes}) returned {got}, the spec says {expected}"

    @rule(wait=st.sampled_from([0.0, 0.02]))
    def decide(self, wait: float) -> None:
        try:
            got = self.tx.decide(self.t, wait)
        except Indeterminate:
            self.spec = self._sync()
            return
        spec = self.spec
        if spec.outcome() is None:
            for i, v in enumerate(spec.votes):
                if v is None:
                    spec = spec.abort(i)
        self.spec = spec
        assert got == spec.outcome(), f"decide returned {got}, the spec says {spec.outcome()}"
        assert self.decided in (None, got), "two decides disagree"
        self.decided = got

    @precondition(lambda self: len(self.crashed) == 0)
    @rule(i=st.integers(0, 2))
    def crash(self, i: int) -> None:
        self.cluster.crash(i)
        self.crashed.add(i)

    @precondition(lambda self: len(self.crashed) > 0)
    @rule()
    def restart(self) -> None:
        self.cluster.restart(self.crashed.pop())

    @rule(i=st.integers(0, 2))
    def partition(self, i: int) -> None:
        self.cluster.partition({i}, set(range(3)) - {i})
        self.parted = True

    @precondition(lambda self: self.parted)
    @rule()
    def heal(self) -> None:
        self.cluster.heal()
        self.parted = False

    @invariant()
    def abstraction_matches(self) -> None:
        assert self._sync() == self.spec, f"registers {self._sync()} but spec {self.spec}"


# ---- 3. app-level histories -----------------------------------------------------------------------------

TX_FUNCTIONS = ("begin", "vote", "decide")


def check_tx_history(events: Iterable[Mapping[str, Any]] | str, shapes: Mapping[int, tuple[str, int]] | None = None,
                     chosen: Mapping[tuple[int, int], bytes | None] | None = None) -> list[str]:
    """The atomic-commitment properties over a WormTX app history (``AppHistory`` events or JSON-lines text;
    ``tx_problems`` of ``wormspace_to_apps``, what ``wormspace check`` applies), with ``shapes``
    (transaction -> (variant, participants)) beside the history's ``begin``s; with ``chosen``
    (``cluster.chosen()`` at the end) also each decide against the abstraction (E3: ``TxSpec`` of the vote
    registers; C5: the decision register), and each vote recorded ``fail`` (certainly not written) against
    its register, which must not hold that vote unless another vote of it may have put it there."""
    problems: list[str] = []
    for data in parse_app_history(events):
        if data.app != "tx":
            continue
        known = {**tx_shapes(data.ops), **(shapes or {})}
        problems.extend(tx_problems(data.ops, known))
        if chosen is None:
            continue
        for op in data.ops:
            t = op.key
            if t not in known:
                continue
            variant, n = known[t]
            if op.f == "decide" and op.outcome == "ok":
                spec = abstract_tx(chosen, t, n).outcome()
                if variant == "C5":
                    d_reg = chosen.get((t, 2 * n))
                    spec = None if d_reg is None else d_reg == COMMIT
                if spec is None or op.out_value != ("commit" if spec else "abort"):
                    problems.append(f"transaction {t}: decided {op.out_value}, the registers say {spec}")
            if op.f == "vote" and op.outcome == "fail":
                i, v = op.value["participant"], op.value["vote"]
                others = [o for o in data.ops if o.f == "vote" and o.key == t and o.outcome != "fail"
                          and o.value == op.value]
                if chosen.get((t, i)) == v.encode() and not others:
                    problems.append(f"transaction {t}: vote {v} of participant {i} recorded as failed "
                                    f"({op.error}: certainly not written), but its register holds {v}")
    return problems


def tx_vote_value(i: int, yes: bool) -> dict[str, Any]:
    return {"participant": i, "vote": "YES" if yes else "NO"}


@dataclass(frozen=True)
class TxScenario:
    """One simulated run: a transaction of ``len(behaviours)`` participants, each ``"yes"``, ``"no"``,
    ``"silent"`` or ``"late"`` (votes YES after the deciders' wait); ``observers`` extra deciders; C5 adds
    a coordinator; faults: loss and duplication, one acceptor crashed and one partitioned for a while."""

    seed: int
    behaviours: tuple[str, ...]
    variant: str = "E3"
    observers: int = 1
    drop: float = 0.0
    duplicate: float = 0.0
    crash: int | None = None
    partition: int | None = None
    wait: float = 0.1


def simulate_tx(sc: TxScenario) -> tuple[AppHistory, dict[int, tuple[str, int]], dict[tuple[int, int], bytes | None]]:
    """Run ``sc`` as concurrent processes on ``Cluster.simulated``; -> (app history, shapes, chosen
    registers)."""
    from wormspace.cluster import Cluster

    cluster = Cluster.simulated(acceptors=3, seed=sc.seed, faults=Faults(drop=sc.drop, duplicate=sc.duplicate))
    history = AppHistory.of(cluster)
    n = len(sc.behaviours)
    setup = cluster.client()
    t = setup.run(TxLogic(setup.logic, variant=sc.variant, history=history).begin(n))

    def proc(role: str, i: int) -> Callable[[SpaceLogic], OpGen[None]]:
        def run(logic: SpaceLogic) -> OpGen[None]:
            tx = TxLogic(logic, variant=sc.variant, poll=sc.wait / 4, history=history)
            if role == "late":
                yield from logic.sleep(sc.wait * 20)
            if role in ("yes", "no", "late"):
                yield from tx.vote(t, i, role != "no")
            if role == "coordinator":
                yield from tx.coordinate(t, sc.wait)
            elif role != "silent":
                yield from tx.decide(t, sc.wait, i if role != "observer" else None)

        return run

    for i, role in enumerate(sc.behaviours):
        cluster.spawn(proc(role, i), at=0.001 * i)
    for k in range(sc.observers):
        cluster.spawn(proc("observer", -1), at=0.002 * k)
    if sc.variant == "C5":
        cluster.spawn(proc("coordinator", -1), at=0.003)
    if sc.crash is not None:
        cluster.at(0.005, lambda: cluster.crash(sc.crash))  # type: ignore[arg-type]
        cluster.at(0.2, lambda: cluster.restart(sc.crash))  # type: ignore[arg-type]
    if sc.partition is not None:
        cluster.at(0.01, lambda: cluster.partition({sc.partition}, set(range(3)) - {sc.partition}))  # type: ignore[arg-type]
        cluster.at(0.3, cluster.heal)
    cluster.run()
    return history, {t: (sc.variant, n)}, cluster.chosen()


@dataclass(frozen=True, slots=True)
class TxObligationReport:
    """What ``check_tx`` found (``wormspace prove``): ``render()``'s first line is the bounds."""

    ok: bool
    lines: tuple[str, ...]
    verdict: str = "OK"

    def render(self) -> str:
        return "\n".join(self.lines)


def check_tx(quick: bool) -> TxObligationReport:
    """``apps.atomic_commit``: the exhaustive exploration of WormTX's core (every configuration of
    ``default_tx_configs``; quick: the silent-participant one and the crashing NO voter) and simulated
    E3 and C5 scenarios under faults, each against the atomic-commitment properties."""
    configs = default_tx_configs() if not quick else (silent_config(), crashing_config(NO))
    reports = [explore_tx(c) for c in configs]
    seeds = 4 if quick else 20
    problems: list[str] = []
    for seed in range(seeds):
        for variant in ("E3", "C5"):
            sc = TxScenario(seed=seed, behaviours=("yes", "yes", "silent" if seed % 2 else "no"), variant=variant,
                            drop=0.05, duplicate=0.05, crash=seed % 3, wait=0.1)
            history, shapes, chosen = simulate_tx(sc)
            problems.extend(f"seed {seed} {variant}: {p}" for p in check_tx_history(history.events, shapes, chosen))
    explored = "; ".join(f"{r.config} {r.states} states depth {r.depth}" for r in reports)
    bounds = f"explorer: {explored}; {seeds} simulated seeds x E3/C5 with 5% loss/duplication and a crash"
    lines = [bounds, *(r.describe() for r in reports if not r.ok), *problems]
    return TxObligationReport(ok=all(r.ok for r in reports) and not problems, lines=tuple(lines))


__all__ = [
    "TxExploreConfig",
    "TxLockstep",
    "TxReport",
    "TxObligationReport",
    "TxScenario",
    "abstract_tx",
    "answer",
    "check_tx",
    "check_tx_history",
    "crashing_config",
    "default_tx_configs",
    "explore_tx",
    "silent_config",
    "simulate_tx",
    "tx_vote_value",
]
