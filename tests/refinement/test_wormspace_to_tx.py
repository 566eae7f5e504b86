"""WormTX against its spec: exhaustive exploration (pinned counts), lockstep on a faulty simulated cluster,
and app-level histories of concurrent runs (Hypothesis scenarios), with their JSON-lines form."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from wormspace import UsageError
from wormspace.refinement.wormspace_to_tx import (
    TxEvent,
    TxLockstep,
    TxRecorder,
    TxScenario,
    check_tx_history,
    crashing_config,
    explore_tx,
    silent_config,
    simulate_tx,
)

# (states, depth, terminal states) of each configuration: a regression guard, as stateright pins its counts
PINNED = {
    "silent": (1412, 20, 141),
    "crashing-yes": (189215, 29, 21166),
    "crashing-no": (93720, 29, 10900),
}


def test_silent_participant_explored() -> None:
    report = explore_tx(silent_config())
    print(report.describe())
    assert report.ok, report.describe()
    assert (report.states, report.depth, report.terminal) == PINNED["silent"]
    assert set(report.outcomes) == {"abort", "abort+late-vote-lost"}  # deciders race to cast ABORT


@pytest.mark.parametrize("value", [b"YES", b"NO"])
def test_crashing_participant_explored(value: bytes) -> None:
    cfg = crashing_config(value)
    report = explore_tx(cfg)
    print(report.describe())
    assert report.ok, report.describe()
    assert (report.states, report.depth, report.terminal) == PINNED[cfg.name]
    if value == b"YES":  # sometimes: every outcome is reachable, so the checks are not vacuous
        assert {"commit", "abort", "abort+late-vote-lost"} <= set(report.outcomes)
    else:
        assert "commit" not in report.outcomes


def test_lockstep_with_faults() -> None:
    run_state_machine_as_test(TxLockstep, settings=settings(max_examples=30, stateful_step_count=15, deadline=None))


SCENARIOS = st.builds(
    TxScenario,
    seed=st.integers(0, 10_000),
    behaviours=st.lists(st.sampled_from(["yes", "yes", "no", "silent", "late"]), min_size=2, max_size=4).map(tuple),
    variant=st.sampled_from(["E3", "C5"]),
    observers=st.integers(0, 2),
    drop=st.sampled_from([0.0, 0.05, 0.15]),
    duplicate=st.sampled_from([0.0, 0.1]),
    crash=st.none() | st.integers(0, 2),
    partition=st.none() | st.integers(0, 2),
)


@settings(max_examples=40, deadline=None)
@given(SCENARIOS)
def test_concurrent_histories_satisfy_atomic_commitment(sc: TxScenario) -> None:
    rec, shapes, chosen = simulate_tx(sc)
    assert check_tx_history(rec.events, shapes, chosen) == []
    if all(b == "yes" for b in sc.behaviours) and sc.variant == "E3" and not (sc.drop or sc.crash or sc.partition):
        assert {e.value for e in rec.events if e.f == "decide" and e.type == "ok"} == {"commit"}


def test_history_round_trip(tmp_path: Path) -> None:
    rec, _shapes, _chosen = simulate_tx(TxScenario(3, ("yes", "late", "no")))
    rec.write(tmp_path / "tx.jsonl")
    again = TxRecorder.read(tmp_path / "tx.jsonl")
    assert again == rec.events
    assert {e.f for e in again} == {"begin", "vote", "decide"}
    bad = '{"process": 1, "type": "ok", "f": "commit", "key": 0, "value": 1, "time": 0}\n'
    (tmp_path / "bad.jsonl").write_text(bad)
    with pytest.raises(UsageError, match="line 1"):
        TxRecorder.read(tmp_path / "bad.jsonl")


def _ev(p: int, type_: str, f: str, value: object, time: int) -> TxEvent:
    return TxEvent(process=p, type=type_, f=f, key=0, value=value, time=time)


def test_history_check_flags_bad_histories() -> None:
    yes = [_ev(i, "invoke", "vote", {"participant": i, "vote": "YES"}, 0) for i in range(2)]
    yes += [_ev(i, "ok", "vote", True, 1) for i in range(2)]
    decide = [_ev(5, "invoke", "decide", {"participant": None}, 2)]
    assert check_tx_history([*yes, *decide, _ev(5, "ok", "decide", "commit", 3)], {0: ("E3", 2)}) == []
    assert "abort although" in check_tx_history([*yes, *decide, _ev(5, "ok", "decide", "abort", 3)],
                                                {0: ("E3", 2)})[0]
    one = [yes[0], yes[2], _ev(1, "invoke", "vote", {"participant": 1, "vote": "NO"}, 0), _ev(1, "ok", "vote", True, 1)]
    assert "commit without" in check_tx_history([*one, *decide, _ev(5, "ok", "decide", "commit", 3)],
                                                {0: ("E3", 2)})[0]
    two = [*yes, *decide, _ev(5, "ok", "decide", "commit", 3), _ev(6, "invoke", "decide", {}, 4),
           _ev(6, "ok", "decide", "abort", 5)]
    assert any("disagree" in p for p in check_tx_history(two, {0: ("E3", 2)}))
