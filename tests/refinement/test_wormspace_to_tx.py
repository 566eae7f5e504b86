"""WormTX against its spec: exhaustive exploration (pinned counts), lockstep on a faulty simulated cluster,
and app-level histories of concurrent runs (Hypothesis scenarios), with their JSON-lines form."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from wormspace.cli import main
from wormspace.history import HistoryFormatError
from wormspace.refinement.linearizability import OK
from wormspace.refinement.wormspace_to_apps import check_app_history, is_app_history, overall
from wormspace.refinement.wormspace_to_tx import (
    TxLockstep,
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
    history, shapes, chosen = simulate_tx(sc)
    assert check_tx_history(history.events, shapes, chosen) == []
    assert overall(check_app_history(history.to_jsonl())) == OK  # what `wormspace check` says of the file
    if all(b == "yes" for b in sc.behaviours) and sc.variant == "E3" and not (sc.drop or sc.crash or sc.partition):
        assert {e["value"] for e in history.events if e["f"] == "decide" and e["type"] == "ok"} == {"commit"}


def test_history_is_an_app_history_that_wormspace_check_reads(tmp_path: Path) -> None:
    history, shapes, chosen = simulate_tx(TxScenario(3, ("yes", "late", "no")))
    assert {e["app"] for e in history.events} == {"tx"} and {e["f"] for e in history.events} == {
        "begin", "vote", "decide"}
    begin = history.events[0]
    assert begin["value"] == {"participants": 3, "variant": "E3"} and begin["name"] == "dHg="
    history.write(tmp_path / "tx.jsonl")
    text = (tmp_path / "tx.jsonl").read_text()
    assert is_app_history(text)
    assert check_tx_history(text, shapes, chosen) == []
    assert main(["check", str(tmp_path / "tx.jsonl")]) == 0
    bad = text.replace('"value": "commit"', '"value": "abort"', 1).replace('"value": "abort"', '"value": "commit"', 1)
    (tmp_path / "bad.jsonl").write_text(bad.replace('"f": "vote"', '"f": "commit"', 1))
    with pytest.raises(HistoryFormatError, match="line"):
        check_app_history((tmp_path / "bad.jsonl").read_text())
    assert main(["check", str(tmp_path / "bad.jsonl")]) == 2


def test_histories_of_the_first_format_are_still_read(tmp_path: Path) -> None:
    """Files written before WormTX recorded through AppHistory: no ``app`` or ``name`` field."""
    old = [
        {"process": 9, "type": "invoke", "f": "begin", "key": None, "value": {"participants": 2}, "time": 0},
        {"process": 9, "type": "ok", "f": "begin", "key": 4, "value": 4, "time": 1},
        *[{"process": i, "type": "invoke", "f": "vote", "key": 4, "value": {"participant": i, "vote": "YES"},
           "time": 2} for i in range(2)],
        *[{"process": i, "type": "ok", "f": "vote", "key": 4, "value": True, "time": 3} for i in range(2)],
        {"process": 5, "type": "invoke", "f": "decide", "key": 4, "value": {"participant": None, "wait": 0.1},
         "time": 4},
        {"process": 5, "type": "ok", "f": "decide", "key": 4, "value": "commit", "time": 5},
    ]
    text = "".join(json.dumps(e) + "\n" for e in old)
    assert is_app_history(text) and overall(check_app_history(text)) == OK
    (tmp_path / "old.jsonl").write_text(text.replace('"vote": "YES"}, "time": 2}', '"vote": "NO"}, "time": 2}', 1))
    assert main(["check", str(tmp_path / "old.jsonl")]) == 1  # a commit after a NO


def _ev(p: int, type_: str, f: str, value: object, time: int, key: int | None = 0) -> dict[str, object]:
    return {"process": p, "type": type_, "f": f, "key": key, "value": value, "time": time, "app": "tx",
            "name": "dHg="}


def test_history_check_flags_bad_histories() -> None:
    yes = [_ev(i, "invoke", "vote", {"participant": i, "vote": "YES"}, 0) for i in range(2)]
    yes += [_ev(i, "ok", "vote", True, 1) for i in range(2)]
    decide = [_ev(5, "invoke", "decide", {"participant": None}, 2)]
    assert check_tx_history([*yes, *decide, _ev(5, "ok", "decide", "commit", 3)], {0: ("E3", 2)}) == []
    assert "abort although" in check_tx_history([*yes, *decide, _ev(5, "ok", "decide", "abort", 3)],
                                                {0: ("E3", 2)})[0]
    one = [yes[0], yes[2], _ev(1, "invoke", "vote", {"participant": 1, "vote": "NO"}, 0), _ev(1, "ok", "vote", True, 1)]
    assert "commit, but TxSpec" in check_tx_history([*one, *decide, _ev(5, "ok", "decide", "commit", 3)],
                                                    {0: ("E3", 2)})[0]
    two = [*yes, *decide, _ev(5, "ok", "decide", "commit", 3), _ev(6, "invoke", "decide", {}, 4),
           _ev(6, "ok", "decide", "abort", 5)]
    assert any("disagree" in p for p in check_tx_history(two, {0: ("E3", 2)}))
    begin = [_ev(9, "invoke", "begin", {"participants": 3, "variant": "E3"}, 0, None), _ev(9, "ok", "begin", 0, 0)]
    assert "commit, but TxSpec" in check_tx_history([*begin, *yes, *decide, _ev(5, "ok", "decide", "commit", 3)])[0]


def test_the_history_format_page_shows_a_recorded_history() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "history-format.md").read_text()
    block = page.split('simulate_tx(TxScenario(1, ("yes", "no")))', 1)[1].split("```json\n", 1)[1].split("```", 1)[0]
    history, _, _ = simulate_tx(TxScenario(1, ("yes", "no")))
    assert block == history.to_jsonl()


def test_bad_arguments_are_refused_before_anything_is_recorded() -> None:
    from wormspace import Cluster, UsageError
    from wormspace.apps.history import AppHistory
    from wormspace.apps.tx import WormTX

    cluster = Cluster.simulated(acceptors=3, seed=2)
    history = AppHistory.of(cluster)
    tx = WormTX(cluster.client(), history=history)
    calls: list[Callable[[], object]] = [
        lambda: tx.begin(0),
        lambda: tx.vote(-1, 0, True),
        lambda: tx.vote(0, "a", True),  # type: ignore[arg-type]
        lambda: tx.decide(0, wait=-1),
        lambda: tx.decide(0, participant=-2),
        lambda: tx.coordinate("t"),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(UsageError):
            call()
    assert history.events == []
    t = tx.begin(2)
    with pytest.raises(UsageError, match="participant in"):  # beyond n: known once the shape is read
        tx.vote(t, 5, True)
    assert check_tx_history(history.events) == []  # recorded (indeterminate), and the file stays readable
