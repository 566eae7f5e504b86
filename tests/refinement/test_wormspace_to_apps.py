"""Refinement checks of the apps: replica agreement, app histories, lockstep machines, concurrent runs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from wormspace.refinement import wormspace_to_apps
from wormspace.refinement.wormspace_to_apps import (
    LOCKSTEP_SOMETIMES,
    KvLockstep,
    LogLockstep,
    PaxosLockstep,
    check_replicas,
    lockstep_bounds,
)


def counter() -> Callable[[bytes], bytes]:
    """A deterministic state machine: the running total of the commands' lengths, as its result."""
    total = 0

    def apply(cmd: bytes) -> bytes:
        nonlocal total
        total += len(cmd)
        return str(total).encode()

    return apply


def test_replicas_that_are_prefixes_of_one_sequence_pass() -> None:
    verdict = check_replicas(
        {"r0": [b"a", b"bb", b"c"], "r1": [b"a"], "r2": []},
        {b"a": b"1", b"bb": b"3", b"c": None, b"dd": None},
        counter,
    )
    assert verdict.ok, verdict.problems
    assert verdict.sequence == (b"a", b"bb", b"c") and verdict.replicas == 3


def test_replica_check_names_each_broken_rule() -> None:
    order = check_replicas({"r0": [b"a", b"bb"], "r1": [b"bb", b"a"]}, {b"a": None, b"bb": None}, counter)
    assert not order.ok and "not a prefix" in order.problems[0]
    twice = check_replicas({"r0": [b"a", b"a"]}, {b"a": b"1"}, counter)
    assert any("applied 2 times" in p for p in twice.problems)
    invented = check_replicas({"r0": [b"x"]}, {}, counter)
    assert any("never submitted" in p for p in invented.problems)
    lost = check_replicas({"r0": [b"a"]}, {b"a": b"1", b"bb": b"3"}, counter)
    assert any("no replica applied" in p for p in lost.problems)
    wrong = check_replicas({"r0": [b"a", b"bb"]}, {b"a": b"1", b"bb": b"2"}, counter)
    assert any("the spec's result there is b'3'" in p for p in wrong.problems)


# --- lockstep machines -------------------------------------------------------------------------------------

LOCKSTEP = settings(max_examples=100, stateful_step_count=25, deadline=None)


@pytest.mark.parametrize("machine", [LogLockstep, PaxosLockstep, KvLockstep], ids=["log", "paxos", "kv"])
def test_lockstep_with_the_app_spec_under_faults(machine: type[RuleBasedStateMachine]) -> None:
    print(f"\n{machine.__name__} bounds: {lockstep_bounds()}; {LOCKSTEP.max_examples} runs of <= "
          f"{LOCKSTEP.stateful_step_count} steps")
    run_state_machine_as_test(machine, settings=LOCKSTEP)


def test_lockstep_runs_are_not_vacuous() -> None:
    """Runs after the three machines (file order): every "sometimes" property was met."""
    witnessed = wormspace_to_apps.lockstep_witnessed
    print("\nwitnessed: " + ", ".join(f"{name} x{witnessed[name]}" for name in LOCKSTEP_SOMETIMES))
    missing = [name for name in LOCKSTEP_SOMETIMES if not witnessed[name]]
    assert not missing, f"never witnessed (the lockstep runs are vacuous for these): {missing}"
