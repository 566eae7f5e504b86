"""WOR -> WOS: the lockstep state machine and the segment explorer (wormspace/refinement/wor_to_wos.py)."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from wormspace.errors import Indeterminate
from wormspace.layers.wos import WosSpec
from wormspace.refinement import wor_to_wos
from wormspace.refinement.wor_to_wos import (
    CHECKED,
    LOCKSTEP_SOMETIMES,
    WOS_ADAPTER,
    Inconsistent,
    Possible,
    SegmentExploreConfig,
    WosLockstep,
    adopt_config,
    alloc_race_config,
    explore_segment,
    lockstep_bounds,
    segment_race_config,
    settle,
)

LOCKSTEP = settings(max_examples=400, stateful_step_count=50, deadline=None)


def test_possibilities_track_an_indeterminate_write_until_a_read_resolves_it() -> None:
    poss = Possible(WosSpec(b"m"), WOS_ADAPTER)
    settle(poss, Indeterminate("lost"), lambda w: w.write(0, b"x"), ("write", 0, b"x"), "write 0 x")
    assert poss.specs() == {WosSpec(b"m"), WosSpec(b"m", False, ((0, b"x"),))}
    settle(poss, b"x", lambda w: (w, w.read(0)), None, "read 0")
    assert poss.specs() == {WosSpec(b"m", False, ((0, b"x"),))}
    with pytest.raises(Inconsistent):
        settle(poss, b"y", lambda w: (w, w.read(0)), None, "read 0")


def test_possibilities_let_an_indeterminate_write_land_before_a_later_trim() -> None:
    poss = Possible(WosSpec(b"m"), WOS_ADAPTER)
    settle(poss, Indeterminate("lost"), lambda w: w.write(0, b"x"), ("write", 0, b"x"), "write 0 x")
    settle(poss, None, lambda w: w.trim(), ("trim",), "trim")
    assert poss.specs() == {WosSpec(b"m", True, ())}
    assert poss.match(WosSpec(b"m", True, ()), "after trim") == 1


def test_lockstep_with_wos_spec_under_faults() -> None:
    runs = f"{LOCKSTEP.max_examples} runs of <= {LOCKSTEP.stateful_step_count} steps"
    print(f"\nWosLockstep bounds: {lockstep_bounds()}; {runs}")
    run_state_machine_as_test(WosLockstep, settings=LOCKSTEP)
    witnessed = wor_to_wos.lockstep_witnessed
    print("witnessed: " + ", ".join(f"{name} x{witnessed[name]}" for name in LOCKSTEP_SOMETIMES))
    missing = [name for name in LOCKSTEP_SOMETIMES if not witnessed[name]]
    assert not missing, f"never witnessed (the runs are vacuous for these): {missing}"


@pytest.mark.parametrize(
    ("config", "states"),
    [(alloc_race_config(), 2115), (adopt_config(), 1206), (segment_race_config(), 79734)],
    ids=["alloc-race", "adopt", "capture-write-trim-race"],
)
def test_segment_explorer(config: SegmentExploreConfig, states: int) -> None:
    report = explore_segment(config)
    print("\n" + report.render())
    assert report.verdict == CHECKED, report.render()
    # Regression guard: the exact number of distinct states (update it when the cores change on purpose).
    assert report.states == states
