"""The existing checks, run programmatically with bounds, each turned into ``Evidence``.

Nothing here judges anything itself: every function runs a checker of ``wormspace.refinement`` (or CrossHair
on ``acceptor_lemmas`` in a subprocess, through ``crosshair_runner``) and reports what it said, with the
bounds it met. The checkers are imported inside the functions (``obligations.py`` Rule 4). Runs of a check
that several obligations read are memoised in the ``Run`` (``run.shared``).

Bounds (quick / full):

* CrossHair: 5 / 10 s per condition (x1.5 for the whole-step Voting lemmas), one target per process, two at
  a time -- the runner's own bounds;
* the WOR explorer: its default configurations (a writer beside a reader on a duplicating network; two
  racing writers), each exhaustively; the full run adds the two racing writers on a duplicating network;
* the segment explorer: alloc race, adopt, write/trim race (quick); plus the capture/write/trim race
  (full; the capture race of two batch writers passes 200,000 states at depth 14, out of reach here);
* Hypothesis lockstep machines (derandomized, so a run replays): WOR 1,500 / 5,000 examples of <= 40
  steps, WOS 250 / 1,000 of <= 50, WormSpace 500 / 1,500 of <= 50 (the count printed is the number of runs
  Hypothesis made, which may exceed the target);
* linearizability of simulated concurrent histories: WOR 10 / 40 seeds, WormSpace 20 / 150 seeds.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from wormspace.proofs import obligations as ob
from wormspace.proofs.obligations import (
    CHECKED,
    COUNTEREXAMPLE,
    NOT_CONFIRMED,
    UNKNOWN,
    Evidence,
    Run,
    TraceStep,
    count,
)

LEMMAS = "wormspace.proofs.acceptor_lemmas."

# quick, full
LOCKSTEP_EXAMPLES = {"wor": (1500, 5000), "wos": (250, 1000), "wormspace": (500, 1500)}
LOCKSTEP_STEPS = {"wor": 40, "wos": 50, "wormspace": 50}
WOR_SEEDS = (10, 40)
SPACE_SEEDS = (20, 150)
CROSSHAIR_TIMEOUT = (5.0, 10.0)


def pick(run: Run, pair: tuple[Any, Any]) -> Any:
    return pair[0] if run.quick else pair[1]


# ---- CrossHair ------------------------------------------------------------------------------------------


def crosshair(run: Run, *lemmas: str) -> Evidence:
    """CrossHair on each named lemma of ``acceptor_lemmas`` in its own subprocess (memoised per lemma)."""
    from wormspace.proofs.crosshair_runner import SLOW, check

    timeout = pick(run, CROSSHAIR_TIMEOUT)
    parts = []
    for lemma in lemmas:
        per = timeout * (1.5 if lemma in SLOW else 1)

        def one(lemma: str = lemma, per: float = per) -> Any:
            return check(LEMMAS + lemma, per, launcher=ob.crosshair_launcher)

        o = run.shared(f"CrossHair {lemma}", one)
        bounds = f"CrossHair {lemma}: {per:g} s per condition"
        if o.code == 0:
            parts.append(Evidence(result=CHECKED, bounds=bounds))
        elif o.code == 1:
            steps = tuple(TraceStep("CrossHair", None, line) for line in o.output.splitlines() if line.strip())
            parts.append(Evidence(result=COUNTEREXAMPLE, bounds=bounds, detail=f"{lemma}: {o.output}", trace=steps))
        else:
            parts.append(Evidence(result=UNKNOWN, bounds=bounds,
                                  detail=f"{lemma}: CrossHair exit {o.code}: {o.output}"))
    return ob.combine(*parts)


def crosshair_parallel(run: Run, lemmas: Iterable[str]) -> None:
    """Warm the memo with every lemma, two CrossHair processes at a time (the runner's parallelism)."""
    from concurrent.futures import ThreadPoolExecutor

    from wormspace.proofs.crosshair_runner import SLOW, check

    timeout = pick(run, CROSSHAIR_TIMEOUT)
    todo = [lemma for lemma in lemmas if f"CrossHair {lemma}" not in run.memo]
    if not todo:
        return
    run.note("CrossHair lemmas: " + ", ".join(todo))

    def one(lemma: str) -> Any:
        return check(LEMMAS + lemma, timeout * (1.5 if lemma in SLOW else 1), launcher=ob.crosshair_launcher)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for lemma, o in zip(todo, pool.map(one, todo), strict=True):
            run.memo[f"CrossHair {lemma}"] = o


# ---- explorers ------------------------------------------------------------------------------------------

_DELIVER = re.compile(r"^(?:deliver|consume) (\S+)->(\S+) (.*)$")
_RECEIVE = re.compile(r"^(\S+) receives (.*?) from (\S+?)([;,].*)?$")
_HANDLES = re.compile(r"^\s*(?:\d+\.\s+)?(\S+) handles (.*) from (\S+) => (.*)$")


def trace_steps(labels: Iterable[tuple[str, str]]) -> tuple[TraceStep, ...]:
    """Explorer trace lines as message-sequence steps: deliveries become arrows, the rest local steps."""
    steps: list[TraceStep] = []
    for label, state in labels:
        text = label.strip()
        if m := _DELIVER.match(text):
            steps.append(TraceStep(m[1], m[2], m[3], state))
        elif m := _HANDLES.match(text):
            steps.append(TraceStep(m[3], m[1], m[2], ""))
            steps.append(TraceStep(m[1], m[3], m[4], state))
        elif m := _RECEIVE.match(text):
            steps.append(TraceStep(m[3], m[1], m[2] + (m[4] or ""), state))
        elif text == "initial state":
            steps.append(TraceStep("state", None, text, state))
        else:
            text = re.sub(r"^\d+\.\s+", "", text)
            actor = text.split(" ", 1)[0].rstrip(":") if text else "?"
            steps.append(TraceStep(actor, None, text, state))
    return tuple(steps)


def wor_explorer_reports(run: Run) -> list[Any]:
    """The WOR explorer on its default configurations, each exhaustively (shared)."""

    def compute() -> list[Any]:
        from dataclasses import replace

        from wormspace.refinement.explore import default_configs, explore, race_config

        configs = list(default_configs())
        if not run.quick:
            configs.append(replace(race_config(), duplicating=True))
        return [explore(cfg) for cfg in configs]

    reports: list[Any] = run.shared("WOR explorer", compute)
    return reports


def _explorer_bounds(r: Any, name: str) -> str:
    return f"explorer {name}: {count(r.states)} states, depth {r.depth}"


def wor_explorer(run: Run, properties: tuple[str, ...] | None = None) -> Evidence:
    """The WOR explorer's verdicts; with ``properties``, a violation counts only if it broke one of them."""
    from wormspace.refinement.explore import CHECKED as X_CHECKED
    from wormspace.refinement.explore import VIOLATION

    parts = []
    for r in wor_explorer_reports(run):
        dup = " with duplicates" if r.config.duplicating else ""
        name = "read" if len(r.config.scripts[1]) == 1 else "race" + dup
        bounds = _explorer_bounds(r, name)
        if r.verdict == X_CHECKED:
            parts.append(Evidence(result=CHECKED, bounds=bounds))
        elif r.verdict == VIOLATION and (properties is None or r.failed in properties):
            parts.append(Evidence(result=COUNTEREXAMPLE, bounds=bounds, detail=f"{r.failed}: {r.violation}",
                                  trace=trace_steps(r.trace)))
        elif r.verdict == VIOLATION:
            parts.append(Evidence(result=NOT_CONFIRMED, bounds=bounds,
                                  detail=f"the exploration stopped at another violation ({r.failed})"))
        else:
            parts.append(Evidence(result=NOT_CONFIRMED, bounds=bounds,
                                  detail=f"explorer {name}: {r.verdict}" + (f" (never met: {r.vacuous})"
                                                                            if r.vacuous else "")))
    return ob.combine(*parts)


def wor_witnessed(run: Run, prop: str) -> Evidence:
    """A "sometimes" property of the WOR explorer: met in some reachable state of some configuration."""
    reports = wor_explorer_reports(run)
    depths = [r.witnessed[prop] for r in reports if prop in r.witnessed]
    total = sum(r.states for r in reports)
    bounds = f"explorer: {prop} over {count(total)} states"
    if depths:
        return Evidence(result=CHECKED, bounds=f"{bounds}; first met at depth {min(depths)}")
    return Evidence(result=NOT_CONFIRMED, bounds=bounds, detail=f"{prop} never met: the checks would be vacuous")


# label -> the configuration's name in ``explore_engine.CONFIGS``, and whether quick runs include it.
SEGMENT_CONFIGS = {
    "alloc race": ("wos.alloc_race", True),
    "adopt": ("wos.adopt", True),
    "write/trim race": ("wos.write_trim", True),
    "race": ("wos.race", False),
}


def segment_explorer(run: Run, *names: str) -> Evidence:
    """The segment explorer on the named configurations (those marked full-only are skipped in quick runs)."""
    from wormspace.refinement import explore_engine, wor_to_wos

    parts = []
    for name in names:
        config_name, in_quick = SEGMENT_CONFIGS[name]
        if run.quick and not in_quick:
            continue
        cfg = explore_engine.config(config_name)
        r: Any = run.shared(f"segment explorer {name}", functools.partial(wor_to_wos.explore_segment, cfg))
        bounds = _explorer_bounds(r, name)
        if r.verdict == wor_to_wos.CHECKED:
            parts.append(Evidence(result=CHECKED, bounds=bounds))
        elif r.verdict == wor_to_wos.VIOLATION:
            parts.append(Evidence(result=COUNTEREXAMPLE, bounds=bounds, detail=f"{r.failed}: {r.violation}",
                                  trace=trace_steps((line, "") for line in r.trace)))
        else:
            parts.append(Evidence(result=NOT_CONFIRMED, bounds=bounds, detail=f"segment explorer {name}: {r.verdict}"))
    return ob.combine(*parts)


# ---- Hypothesis lockstep machines ----------------------------------------------------------------------


def lockstep(run: Run, layer: str, sometimes: tuple[str, ...] | None = None) -> Evidence:
    """The layer's Hypothesis lockstep machine, derandomized, with the example count it ran (shared). The
    run is vacuous -- ``not confirmed`` -- if one of the ``sometimes`` properties (default: all of the
    machine's) was never witnessed."""
    evidence, got, names = run.shared(f"{layer} lockstep", lambda: _lockstep(run, layer))
    if evidence.result != CHECKED:
        return evidence  # type: ignore[no-any-return]
    missing = [name for name in (names if sometimes is None else sometimes) if not got[name]]
    if missing:
        return Evidence(result=NOT_CONFIRMED, bounds=evidence.bounds, detail=f"never witnessed (vacuous): {missing}")
    return evidence  # type: ignore[no-any-return]


def _lockstep(run: Run, layer: str) -> tuple[Evidence, Counter[str], tuple[str, ...]]:
    from hypothesis import HealthCheck, settings
    from hypothesis.stateful import run_state_machine_as_test

    machine: Any
    witnessed: Counter[str]
    sometimes: tuple[str, ...]
    if layer == "wor":
        from wormspace.refinement import acceptor_to_wor as m

        machine, witnessed, sometimes = m.WorLockstep, m.lockstep_witnessed, m.LOCKSTEP_SOMETIMES
    elif layer == "wos":
        from wormspace.refinement import wor_to_wos as w

        machine, witnessed, sometimes = w.WosLockstep, w.lockstep_witnessed, w.LOCKSTEP_SOMETIMES
    else:
        from wormspace.refinement import wos_to_wormspace as s

        machine, witnessed, sometimes = s.SpaceLockstep, s.space_witnessed, s.SPACE_SOMETIMES
    examples = pick(run, LOCKSTEP_EXAMPLES[layer])
    steps = LOCKSTEP_STEPS[layer]
    ran = [0]

    class Counted(machine):  # type: ignore[misc]
        def teardown(self) -> None:
            ran[0] += 1
            super().teardown()

    Counted.__name__ = machine.__name__
    cfg = settings(
        max_examples=examples, stateful_step_count=steps, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
    )
    saved = witnessed.copy()
    witnessed.clear()
    got: Counter[str] = Counter()
    failure: AssertionError | None = None
    try:
        with ob.quiet() as printed:
            try:
                run_state_machine_as_test(Counted, settings=cfg)
            except AssertionError as e:
                failure = e
        got.update(witnessed)
    finally:  # these runs must not count as witnesses of another run's "sometimes" properties
        witnessed.clear()
        witnessed.update(saved)
    what = f"{machine.__name__}: {count(ran[0])} examples of <= {steps} steps"
    if failure is not None:
        from hypothesis.stateful import INVARIANT_MARKER

        # the invariants Hypothesis re-runs after every step are noise in the trace: keep the rules
        checked_each_step = {f"state.{n}()" for n, v in vars(machine).items() if hasattr(v, INVARIANT_MARKER)}
        notes = [str(n) for n in getattr(failure, "__notes__", [])]
        lines = [line for line in (*str(failure).splitlines(), *notes, *printed.getvalue().splitlines())
                 if line.strip() not in checked_each_step]
        trace = tuple(TraceStep(machine.__name__, None, line) for line in lines if line.strip())
        evidence = Evidence(result=COUNTEREXAMPLE, bounds=what, detail=str(failure).splitlines()[0], trace=trace)
        return evidence, got, sometimes
    return Evidence(result=CHECKED, bounds=what), got, sometimes


# ---- linearizability of simulated histories ------------------------------------------------------------


def _minimal_trace(result: Any) -> tuple[TraceStep, ...]:
    m = result.minimal
    if m is None:
        return ()
    steps = [TraceStep(f"process {sub.process}", None, line) for sub, line in zip(m.operations, m.lines(), strict=True)]
    steps.append(TraceStep("checker", None, m.explanation))
    return tuple(steps)


def wor_linearizability(run: Run) -> Evidence:
    """``run_linearizability`` over the first seeds (shared): every history must be OK."""

    def compute() -> Evidence:
        from wormspace.refinement.acceptor_to_wor import run_linearizability
        from wormspace.refinement.linearizability import ILLEGAL, OK

        seeds = range(pick(run, WOR_SEEDS))
        ops = 0
        for seed in seeds:
            r = run_linearizability(seed)
            ops += r.operations
            bounds = f"{seed + 1} histories (seeds 0..{seed}), {count(ops)} operations"
            if r.verdict == ILLEGAL:
                return Evidence(result=COUNTEREXAMPLE, bounds=bounds, detail=f"seed {seed}: ILLEGAL",
                                trace=_minimal_trace(r))
            if r.verdict != OK:
                return Evidence(result=NOT_CONFIRMED, bounds=bounds, detail=f"seed {seed}: {r.verdict}")
        bounds = f"{len(seeds)} histories (seeds 0..{len(seeds) - 1}), {count(ops)} operations"
        return Evidence(result=CHECKED, bounds=bounds)

    return run.shared("WOR linearizability", compute)  # type: ignore[no-any-return]


def space_concurrent(run: Run) -> Evidence:
    """``check_concurrent`` over the first seeds (shared): every history OK, every "sometimes" met."""

    def compute() -> Evidence:
        from wormspace.refinement.wos_to_wormspace import CONCURRENT_SOMETIMES, ConcurrentConfig, check_concurrent

        seeds = range(pick(run, SPACE_SEEDS))
        report = check_concurrent(seeds, ConcurrentConfig())
        bounds = f"{len(seeds)} histories (seeds 0..{len(seeds) - 1}), {count(report.operations)} operations"
        if report.failures:
            # an undecided history (UNKNOWN: the checker's budget ran out) says nothing; anything else is a bug
            undecided = all(f.endswith(": UNKNOWN") for f in report.failures)
            result = NOT_CONFIRMED if undecided else COUNTEREXAMPLE
            trace = tuple(TraceStep("checker", None, f) for f in report.failures[:20])
            return Evidence(result=result, bounds=bounds, detail=report.failures[0], trace=trace)
        missing = [name for name in CONCURRENT_SOMETIMES if not report.witnessed[name]]
        if missing:
            return Evidence(result=NOT_CONFIRMED, bounds=bounds, detail=f"never witnessed (vacuous): {missing}")
        return Evidence(result=CHECKED, bounds=bounds)

    return run.shared("WormSpace concurrent histories", compute)  # type: ignore[no-any-return]


def all_of(*checks: Callable[[Run], Evidence]) -> Callable[[Run], Evidence]:
    """A discharge that runs several checks and combines their evidence."""

    def discharge(run: Run) -> Evidence:
        return ob.combine(*(c(run) for c in checks))

    return discharge
