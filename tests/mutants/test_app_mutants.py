"""Planted bugs in the apps, each caught by the refinement checks of ``refinement/wormspace_to_apps.py``.

Each fixture monkeypatches one broken function into ``wormspace.apps`` for one test (never shipped code):

* ``one_position_two_appends`` -- an appender whose write at its position lost (the position holds junk
  or another value) reports the position as its own anyway: one position handed to two appends.
* ``applies_out_of_order`` -- a WormPaxos replica applies each batch it reads last command first.
* ``cas_ignores_expected`` -- WormKV's state machine swaps on every cas, whatever the value is.
* ``takeover_reuses_positions`` -- a client that takes over the sequencer role (wins the next segment, or
  captures the tail's) numbers its positions as if its segment were the previous one: it hands out
  positions the previous sequencer already handed out.
* ``hole_is_end`` -- a reader that meets a hole stops there, as if the log ended, instead of waiting for
  it and filling it.
* ``every_appender_wins`` -- every appender that tried to create a log segment thinks it won it, and a
  write that lost its position is reported as the appender's own (two bugs at once).
* ``get_without_sync`` -- a WormKV get answers from the replica's state without syncing to the log's tail.
* ``fail_after_own_write`` -- the app history records an outcome raised after the operation's own write
  may have landed (``CaptureStale``, ``Trimmed``) as ``fail`` (certainly no effect) instead of ``info``:
  caught by the history checks on a WormTX run where that vote's value is chosen.

The checks: the lockstep machines (``LogLockstep``, ``PaxosLockstep``, ``KvLockstep``), the concurrent
runs (``app_run`` + ``check_run``: the app history and the replicas), and the app tests' own scenario checks
(``tests/apps/helpers.py``: a log scenario's positions, WormPaxos replicas' sequences and results, WormKV
against a sequential model). Each mutant must make the checks named in its test fail.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from tests.apps.helpers import (
    kv_sequential_problems,
    log_problems,
    log_scenario,
    real_time_order_violations,
    smr_problems,
    smr_scenario,
    tx_vote_lands_then_stale,
)
from wormspace.apps import history
from wormspace.apps.kv import YES, KvCore, _unfield
from wormspace.apps.log import LogCore
from wormspace.apps.paxos import PaxosCore
from wormspace.client import EMPTY, AlreadyWritten, CaptureStale, Indeterminate, OpGen, SpaceLogic, Trimmed
from wormspace.refinement.apps_lockstep import KvLockstep, LogLockstep, PaxosLockstep
from wormspace.refinement.linearizability import ILLEGAL
from wormspace.refinement.wormspace_to_apps import RunConfig, app_run, check_app_history, check_run
from wormspace.refinement.wormspace_to_tx import check_tx_history

# no shrinking: the first failure found is the verdict (shrinking a stateful failure costs minutes)
MUTANT_LOCKSTEP = settings(max_examples=200, stateful_step_count=25, deadline=None, database=None,
                           report_multiple_bugs=False, suppress_health_check=list(HealthCheck),
                           phases=[Phase.explicit, Phase.generate])


def lockstep_failure(machine: type[RuleBasedStateMachine]) -> str:
    """The message of the failure the machine finds (the test fails if it finds none)."""
    try:
        run_state_machine_as_test(machine, settings=MUTANT_LOCKSTEP)
    except Exception as e:  # an assertion of the machine, or an exception the mutant let escape
        return f"{type(e).__name__}: {e}"
    pytest.fail(f"{machine.__name__} did not catch the mutant")


def caught_by_runs(app: str, seeds: range, config: RunConfig | None = None) -> list[str]:
    """The problems of the first concurrent run the checks judge ILLEGAL (fails if none is)."""
    for seed in seeds:
        verdict = check_run(app_run(app, seed, config))
        if verdict.verdict == ILLEGAL:
            return verdict.problems
    pytest.fail(f"no concurrent {app} run in seeds {seeds} caught the mutant")


# ---- the mutants ----------------------------------------------------------------------------------------


@pytest.fixture
def one_position_two_appends(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def write(self: LogCore, logic: SpaceLogic, frame: bytes) -> OpGen[int]:  # LogCore._write, but:
        size = logic.wos_size
        while True:
            index, off, cap = yield from self._claim(logic)
            pos = index * size + off
            self.pending.add(pos)
            try:
                yield from logic.write(cap.segment * size + off, frame, cap)
                return pos
            except (CaptureStale, AlreadyWritten):
                self.own = None
                return pos  # BUG: the lost position is reported as ours all the same
            except Indeterminate as e:
                if isinstance(e, Trimmed):
                    raise
                got = yield from self.fill(logic, index, [off])
                if got[off] == frame:
                    return pos
            except Trimmed:
                self.own = None
            finally:
                self.pending.discard(pos)

    monkeypatch.setattr(LogCore, "_write", write)
    yield


@pytest.fixture
def applies_out_of_order(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def sync(self: PaxosCore, logic: SpaceLogic, until: int | None = None) -> OpGen[int]:
        n = 0
        while True:
            frames, _, done = yield from self.log.scan(logic, self.applied)
            fresh = [(p, f) for p, f in frames if p >= self.applied]
            for pos, frame in reversed(fresh):  # BUG: the last command of the batch first
                n += self._apply_at(pos, frame)
            self.applied = max([self.applied, *(p + 1 for p, _ in fresh)])
            if done or (until is not None and self.applied > until):
                return n

    monkeypatch.setattr(PaxosCore, "_sync", sync)
    yield


@pytest.fixture
def cas_ignores_expected(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    apply = KvCore.apply

    def broken(self: KvCore, cmd: bytes) -> bytes:
        if cmd[:1] == b"C":  # BUG: swap whatever the value is
            key, i = _unfield(cmd, 1)
            _, i = _unfield(cmd, i)
            new, _ = _unfield(cmd, i)
            assert key is not None and new is not None
            self.data[key] = new
            return YES
        return apply(self, cmd)

    monkeypatch.setattr(KvCore, "apply", broken)
    yield


@pytest.fixture
def takeover_reuses_positions(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    take = LogCore._take

    def broken(self: LogCore, logic: SpaceLogic) -> OpGen[None]:
        yield from take(self, logic)
        if self.own is not None and self.own[0] > 0:  # BUG: number from the previous sequencer's segment
            self.own = (self.own[0] - 1, self.own[1])

    monkeypatch.setattr(LogCore, "_take", broken)
    yield


@pytest.fixture
def hole_is_end(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def scan(self: LogCore, logic: SpaceLogic, start: int, max_segments: int = 1) -> OpGen[Any]:
        size = logic.wos_size
        index, off = divmod(start, size)
        out: list[tuple[int, bytes]] = []
        for _ in range(max_segments):
            cur = yield from self._read_seg(logic, index, off)
            if cur is None:
                return out, max(start, index * size), True
            for o in sorted(cur):
                if cur[o] is EMPTY:  # BUG: a hole is taken for the end of the log
                    return out, index * size + o, True
                out.append((index * size + o, cur[o]))
            index, off = index + 1, 0
        return out, index * size, False

    monkeypatch.setattr(LogCore, "scan", scan)
    yield


@pytest.fixture
def every_appender_wins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    locate = LogCore.locate

    def everyone_wins(self: LogCore, logic: SpaceLogic, index: int, create: bool = False,
                      fresh: bool = False) -> OpGen[Any]:
        seg, won = yield from locate(self, logic, index, create, fresh)
        return seg, won or (create and seg is not None)  # BUG 1: every appender thinks it won the segment

    def write(self: LogCore, logic: SpaceLogic, frame: bytes) -> OpGen[int]:
        index, off, cap = yield from self._claim(logic)
        with contextlib.suppress(CaptureStale, AlreadyWritten):  # BUG 2: a lost position reported as ours
            yield from logic.write(cap.segment * logic.wos_size + off, frame, cap)
        return index * logic.wos_size + off

    monkeypatch.setattr(LogCore, "locate", everyone_wins)
    monkeypatch.setattr(LogCore, "_write", write)
    yield


@pytest.fixture
def get_without_sync(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def stale(self: KvCore, logic: SpaceLogic, key: bytes) -> OpGen[bytes | None]:
        yield from ()  # BUG: answers from this replica's state, without syncing to the log's tail
        return self.data.get(key)

    monkeypatch.setattr(KvCore, "_get", stale)
    yield


@pytest.fixture
def fail_after_own_write(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(history, "WRITES", frozenset())  # BUG: no operation may have written: all fail
    yield


# ---- each caught ------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("one_position_two_appends")
def test_a_log_that_hands_one_position_to_two_appends_is_caught() -> None:
    assert lockstep_failure(LogLockstep)
    problems = caught_by_runs("log", range(20))
    assert any("No order" in p for p in problems), problems


@pytest.mark.usefixtures("applies_out_of_order")
def test_a_replica_that_applies_out_of_order_is_caught() -> None:
    assert lockstep_failure(PaxosLockstep)
    problems = caught_by_runs("paxos", range(20))
    assert any("not a prefix" in p or "spec's result" in p for p in problems), problems
    assert any(smr_problems(*smr_scenario("sticky", seed)[:3]) != [] for seed in (1, 2))


@pytest.mark.usefixtures("cas_ignores_expected")
def test_a_kv_cas_that_ignores_expected_is_caught() -> None:
    assert "cas(" in lockstep_failure(KvLockstep)
    problems = caught_by_runs("kv", range(20))
    assert any("cas(" in p for p in problems), problems
    assert kv_sequential_problems(1) != []


@pytest.mark.usefixtures("takeover_reuses_positions")
def test_a_sequencer_takeover_that_reuses_a_position_is_caught() -> None:
    assert lockstep_failure(LogLockstep)
    problems = caught_by_runs("log", range(20))
    assert any("No order" in p for p in problems), problems


@pytest.mark.usefixtures("hole_is_end")
def test_a_reader_that_treats_a_hole_as_the_end_of_the_log_is_caught() -> None:
    assert lockstep_failure(LogLockstep)
    problems = caught_by_runs("log", range(20))
    assert any("tail() ->" in p for p in problems), problems


@pytest.mark.usefixtures("fail_after_own_write")
def test_recording_an_outcome_after_the_own_write_as_fail_is_caught() -> None:
    events, chosen = tx_vote_lands_then_stale()
    assert next(e for e in events if e["f"] == "vote" and e["type"] != "invoke")["type"] == "fail"
    problems = check_tx_history(events, chosen=chosen)
    assert any("recorded as failed" in p for p in problems), problems
    [verdict] = check_app_history(events)  # the file alone, as `wormspace check` judges it
    assert verdict.verdict == ILLEGAL and "commit, but TxSpec" in verdict.problems[0], verdict.problems


@pytest.mark.usefixtures("every_appender_wins")
def test_a_log_where_every_appender_wins_its_segment_is_caught() -> None:
    got, entries, _ = log_scenario(1)
    assert "a position was given to two appends" in log_problems(got, entries)


@pytest.mark.usefixtures("get_without_sync")
def test_a_get_that_answers_without_syncing_is_caught() -> None:
    assert kv_sequential_problems(1) != []


def test_the_real_time_order_check_sees_a_later_op_at_a_lower_position() -> None:
    """Not a mutant of the apps: the scenario checks' real-time order rule, fed an out-of-order history."""
    def ev(process: int, type_: str, time: int, key: int | None) -> dict[str, Any]:
        return {"process": process, "type": type_, "f": "submit", "key": key, "value": None, "time": time}

    events = [ev(0, "invoke", 0, None), ev(0, "ok", 10, 5), ev(1, "invoke", 20, None), ev(1, "ok", 30, 4)]
    assert real_time_order_violations(events) == [(5, 4)]
    events[3]["key"] = 6
    assert real_time_order_violations(events) == []
