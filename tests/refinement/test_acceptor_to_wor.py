"""Acceptor -> WOR: the lockstep state machine, concurrent histories and the explorer
(wormspace/refinement/acceptor_to_wor.py, wormspace/refinement/explore.py)."""

from __future__ import annotations

from collections import Counter

from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from wormspace.refinement import acceptor_to_wor
from wormspace.refinement.acceptor_to_wor import (
    LOCKSTEP_SOMETIMES,
    LinBounds,
    WorLockstep,
    concurrent_run,
    lockstep_bounds,
    run_linearizability,
)
from wormspace.refinement.explore import CHECKED, explore, small_config
from wormspace.refinement.linearizability import OK

LOCKSTEP = settings(max_examples=1500, stateful_step_count=40, deadline=None)
SEEDS = range(20)


def test_lockstep_with_wor_spec_under_faults() -> None:
    runs = f"{LOCKSTEP.max_examples} runs of <= {LOCKSTEP.stateful_step_count} steps"
    print(f"\nWorLockstep bounds: {lockstep_bounds()}; {runs}")
    acceptor_to_wor.lockstep_witnessed.clear()
    run_state_machine_as_test(WorLockstep, settings=LOCKSTEP)
    witnessed = acceptor_to_wor.lockstep_witnessed
    print("witnessed: " + ", ".join(f"{name} x{witnessed[name]}" for name in LOCKSTEP_SOMETIMES))
    missing = [name for name in LOCKSTEP_SOMETIMES if not witnessed[name]]
    assert not missing, f"never witnessed (the runs are vacuous for these): {missing}"


def test_concurrent_histories_are_linearizable() -> None:
    print(f"\nbounds: {LinBounds().describe()}; seeds {SEEDS.start}..{SEEDS.stop - 1}")
    verdicts = {seed: run_linearizability(seed) for seed in SEEDS}
    bad = {seed: (r.verdict, r.minimal and r.minimal.descriptions) for seed, r in verdicts.items() if r.verdict != OK}
    assert not bad, f"not linearizable (or undecided): {bad}"


def test_concurrent_histories_are_not_vacuous() -> None:
    """The histories the linearizability test judges hold the outcomes worth judging."""
    seen: Counter[tuple[str, str, str | None]] = Counter()
    for seed in range(5):
        for e in concurrent_run(seed).history():
            if e.type != "invoke":
                seen[(e.f, e.type, e.error)] += 1
    print(f"\n{dict(seen)}")
    for outcome in [("write", "ok", None), ("write", "fail", "AlreadyWritten"), ("read", "ok", None),
                    ("capture", "ok", None), ("alloc", "ok", None)]:
        assert seen[outcome], f"no {outcome} in the histories"
    assert any(t == "info" for _, t, _ in seen), "no indeterminate outcome in the histories"


def test_explorer_small_config_has_no_violation() -> None:
    report = explore(small_config())
    print("\n" + report.render())
    assert report.violation is None, report.render()
    assert report.verdict == CHECKED, report.render()
