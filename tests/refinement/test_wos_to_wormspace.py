"""WOS -> WormSpace: the lockstep state machine and concurrent histories (wormspace/refinement/wos_to_wormspace.py)."""

from __future__ import annotations

from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from wormspace.layers.wormspace import WormSpaceSpec
from wormspace.layers.wos import WosSpec
from wormspace.refinement import wos_to_wormspace
from wormspace.refinement.wos_to_wormspace import (
    CONCURRENT_SOMETIMES,
    SPACE_SOMETIMES,
    ConcurrentConfig,
    SpaceLockstep,
    check_concurrent,
    concurrent_run,
    lockstep_bounds,
    only,
)

LOCKSTEP = settings(max_examples=300, stateful_step_count=50, deadline=None)
SEEDS = range(150)


def test_only_restricts_the_spec_to_one_segment() -> None:
    spec, _ = WormSpaceSpec(4).alloc(1, b"m")
    spec, _ = spec.alloc(2, b"n")
    assert only(spec, 2) == WormSpaceSpec(4).with_segment(2, WosSpec(b"n"))
    assert only(spec, 3) == WormSpaceSpec(4)


def test_lockstep_with_wormspace_spec_under_faults() -> None:
    runs = f"{LOCKSTEP.max_examples} runs of <= {LOCKSTEP.stateful_step_count} steps"
    print(f"\nSpaceLockstep bounds: {lockstep_bounds()}; {runs}")
    run_state_machine_as_test(SpaceLockstep, settings=LOCKSTEP)
    witnessed = wos_to_wormspace.space_witnessed
    print("witnessed: " + ", ".join(f"{name} x{witnessed[name]}" for name in SPACE_SOMETIMES))
    missing = [name for name in SPACE_SOMETIMES if not witnessed[name]]
    assert not missing, f"never witnessed (the runs are vacuous for these): {missing}"


def test_every_package_module_is_imported_before_the_lockstep_runs() -> None:
    """The lockstep's derandomized examples (and the counts above) must not depend on which tests ran first:
    Hypothesis draws some values from the constants of the local modules loaded so far, so tests/conftest.py
    imports every package module before any test runs."""
    import pkgutil
    import sys

    import wormspace

    names = [m.name for m in pkgutil.walk_packages(wormspace.__path__, "wormspace.")]
    missing = [name for name in names if name not in sys.modules and name != "wormspace.__main__"]
    assert not missing, f"imported only later, by some test: {missing}"


def test_concurrent_histories_are_linearizable_against_the_segment_model() -> None:
    report = check_concurrent(SEEDS, ConcurrentConfig())
    print("\n" + report.render())
    assert not report.failures, report.render()
    assert set(report.verdicts.values()) == {"OK"}
    missing = [name for name in CONCURRENT_SOMETIMES if not report.witnessed[name]]
    assert not missing, f"never witnessed (the histories are vacuous for these): {missing}"


def test_concurrent_runs_replay_exactly_from_their_seed() -> None:
    a = concurrent_run(7).history()
    b = concurrent_run(7).history()
    assert a.to_jsonl() == b.to_jsonl()
