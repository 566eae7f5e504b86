"""The linearizability checker and its two models."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.refinement import oracle
from wormspace.history import Event, History, operations
from wormspace.refinement.linearizability import (
    ILLEGAL,
    OK,
    UNKNOWN,
    CheckResult,
    _search,
    check_history,
)
from wormspace.refinement.models import (
    Input,
    LogModel,
    Model,
    ModelOp,
    Output,
    RegisterModel,
    SegmentModel,
    SegmentState,
    Slot,
    WorModel,
    choose_model,
    decompose,
    precedes,
    simulate,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "histories"
FILES = sorted(DATA.glob("*.jsonl"))
A, B, C = b"a", b"b", b"c"


def ev(process: int, type_: str, f: str, key: int, value: object, time: int, **kw: object) -> Event:
    return Event(process=process, type=type_, f=f, key=key, value=value, time=time, **kw)  # type: ignore[arg-type]


def op(process: int, f: str, key: int, value: object, call: int, ret: int | None, outcome: str = "ok",
       output: object = None, **kw: object) -> list[Event]:
    """An invoke and (unless ``ret`` is None) its completion."""
    events = [ev(process, "invoke", f, key, value, call)]
    if ret is not None:
        events.append(ev(process, outcome, f, key, output, ret, **kw))
    return events


def timed(*ops: list[Event]) -> History:
    events = [e for o in ops for e in o]
    return History(sorted(events, key=lambda e: (e.time, e.type == "invoke")))


def assert_witness(history: History, result: CheckResult, model: Model[Any] | None = None) -> None:
    """The reported linearization replays through the model and respects real-time order."""
    m: Model[Any] = model or choose_model(
        operations(history), SEG if result.model == "segment" else 1024, initial=history.initial
    )
    for part in result.partitions:
        assert part.order is not None
        state = m.init()
        for k, sub in enumerate(part.order):
            ok, state = m.step(state, sub.input, sub.output)
            assert ok, f"{part.label}: step {k} {m.describe(sub.input, sub.output)} refused"
            for later in part.order[k + 1 :]:
                assert not precedes(later, sub), "order contradicts real time"


# --- data files, Porcupine style ---------------------------------------------------------------------


def test_data_files_cover_both_verdicts() -> None:
    names = {p.name for p in FILES}
    assert sum(n.endswith("-ok.jsonl") for n in names) >= 5
    assert sum(n.endswith("-bad.jsonl") for n in names) >= 10
    for required in ("read-never-written", "two-writes", "read-empty-after-write", "value-changed-after-read",
                     "two-allocs", "read-after-trim"):
        assert f"{required}-bad.jsonl" in names


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_data_file_verdict(path: Path) -> None:
    history = History.read(path)
    result = check_history(history)
    expected = OK if path.name.endswith("-ok.jsonl") else ILLEGAL
    assert result.verdict == expected, result.minimal and result.minimal.explanation
    if expected == OK:
        assert_witness(history, result)
        return
    assert result.minimal is not None
    m = result.minimal
    assert 1 <= len(m.operations) <= result.operations
    again = check_history(History.read(m.history.to_jsonl()), choose_model(operations(history)))
    assert again.verdict == ILLEGAL
    assert "No order of these" in m.explanation


# --- hand-written histories ----------------------------------------------------------------------------


def test_two_successful_writes_of_different_values_are_illegal_even_when_concurrent() -> None:
    h = timed(op(0, "write", 1, A, 0, 10), op(1, "write", 1, B, 5, 15))
    result = check_history(h)
    assert result.verdict == ILLEGAL
    assert result.minimal is not None
    assert sorted(s.input.value or b"" for s in result.minimal.operations) == [A, B]


def test_rewriting_the_same_value_is_fine() -> None:
    h = timed(op(0, "write", 1, A, 0, 10), op(1, "write", 1, A, 5, 15), op(2, "read", 1, None, 20, 30, output=A))
    assert check_history(h).verdict == OK


def test_concurrent_read_may_see_empty_or_the_value() -> None:
    for seen in (None, A):
        h = timed(op(0, "write", 1, A, 0, 100), op(1, "read", 1, None, 10, 20, output=seen))
        assert check_history(h).verdict == OK


def test_read_must_not_go_back_to_empty() -> None:
    h = timed(op(0, "write", 1, A, 0, 100), op(1, "read", 1, None, 10, 20, output=A),
              op(1, "read", 1, None, 30, 40, output=None))
    assert check_history(h).verdict == ILLEGAL


def test_info_write_is_judged_both_ways_without_false_alarms() -> None:
    took = timed(op(0, "write", 1, A, 0, 5, "info", error="Indeterminate"),
                 op(1, "read", 1, None, 50, 60, output=A))
    never = timed(op(0, "write", 1, A, 0, 5, "info", error="Indeterminate"),
                  op(1, "read", 1, None, 50, 60, output=None), op(2, "write", 1, B, 70, 80),
                  op(1, "read", 1, None, 90, 95, output=B))
    late = timed(op(0, "write", 1, A, 0, None), op(1, "read", 1, None, 10, 20, output=None),
                 op(1, "read", 1, None, 1000, 1010, output=A))
    for h in (took, never, late):
        assert check_history(h).verdict == OK
    unhappened = timed(op(0, "write", 1, A, 0, 5, "info", error="Indeterminate"),
                       op(1, "read", 1, None, 50, 60, output=A), op(1, "read", 1, None, 70, 80, output=None))
    assert check_history(unhappened).verdict == ILLEGAL
    before_call = timed(op(1, "read", 1, None, 0, 10, output=A), op(0, "write", 1, A, 20, None))
    assert check_history(before_call).verdict == ILLEGAL


def test_fail_is_certainly_no_effect() -> None:
    stale = timed(op(0, "write", 1, A, 0, 10, "fail", error="CaptureStale"),
                  op(1, "read", 1, None, 20, 30, output=A))
    assert check_history(stale).verdict == ILLEGAL


def test_already_written_is_an_observation() -> None:
    ok_ = timed(op(0, "write", 1, A, 0, 10), op(1, "write", 1, B, 20, 30, "fail", error="AlreadyWritten",
                                                 existing=A))
    assert check_history(ok_).verdict == OK
    wrong = timed(op(0, "write", 1, A, 0, 10), op(1, "write", 1, B, 20, 30, "fail", error="AlreadyWritten",
                                                   existing=C))
    assert check_history(wrong).verdict == ILLEGAL
    nothing_there = timed(op(1, "write", 1, B, 20, 30, "fail", error="AlreadyWritten"))
    assert check_history(nothing_there).verdict == ILLEGAL
    own_value = timed(op(0, "write", 1, B, 0, 10), op(1, "write", 1, B, 20, 30, "fail", error="AlreadyWritten"))
    assert check_history(own_value).verdict == ILLEGAL  # without existing: held data must differ


def test_batch_write_is_not_atomic_across_addresses() -> None:
    batch = op(0, "batch_write", 0, {0: A, 1: B}, 0, 100, "fail", error="AlreadyWritten",
               results={0: "ok", 1: "AlreadyWritten"}, existing={1: C})
    h = timed(batch, op(1, "write", 1, C, 10, 20), op(2, "read", 0, None, 30, 40, output=None),
              op(2, "read", 0, None, 110, 120, output=A))
    assert check_history(h).verdict == OK
    wrong = timed(batch, op(1, "write", 1, C, 10, 20), op(2, "read", 1, None, 110, 120, output=B))
    assert check_history(wrong).verdict == ILLEGAL
    indeterminate = op(0, "batch_write", 0, {0: A}, 0, 5, "fail", error="Indeterminate",
                       results={0: "Indeterminate"})
    assert check_history(timed(indeterminate, op(1, "read", 0, None, 500, 600, output=A))).verdict == OK


SEG = 4  # a small wos size keeps the addresses readable


def seg_check(h: History) -> CheckResult:
    return check_history(h, SegmentModel(wos_size=SEG))


def test_segment_model_is_chosen_by_alloc_or_trim() -> None:
    assert choose_model(operations(timed(op(0, "alloc", 0, A, 0, 1)))).name == "segment"
    assert choose_model(operations(timed(op(0, "write", 0, A, 0, 1)))).name == "wor"
    assert choose_model(operations(timed(op(0, "write", 0, A, 0, 1))), name="segment").name == "segment"


def test_two_successful_allocs_are_illegal() -> None:
    h = timed(op(0, "alloc", 4, A, 0, 10), op(1, "alloc", 4, B, 20, 30))
    assert seg_check(h).verdict == ILLEGAL
    lost = timed(op(0, "alloc", 4, A, 0, 10), op(1, "alloc", 4, B, 20, 30, "fail", error="AlreadyWritten",
                                                  existing=A))
    assert seg_check(lost).verdict == OK
    lost_to_whom = timed(op(0, "alloc", 4, A, 0, 10), op(1, "alloc", 4, B, 20, 30, "fail",
                                                          error="AlreadyWritten", existing=C))
    assert seg_check(lost_to_whom).verdict == ILLEGAL


def test_reads_and_writes_need_an_allocated_untrimmed_segment() -> None:
    alloc = op(0, "alloc", 4, A, 0, 10)
    assert seg_check(timed(op(1, "write", 5, A, 20, 30))).verdict == ILLEGAL
    assert seg_check(timed(op(1, "write", 5, A, 20, 30, "fail", error="Unallocated"))).verdict == OK
    assert seg_check(timed(alloc, op(1, "write", 5, A, 20, 30, "fail", error="Unallocated"))).verdict == ILLEGAL
    trimmed = timed(alloc, op(0, "write", 5, A, 20, 30), op(1, "trim", 4, None, 40, 50),
                    op(2, "read", 5, None, 60, 70, "fail", error="Trimmed"),
                    op(2, "write", 6, A, 80, 90, "fail", error="Trimmed"),
                    op(2, "alloc", 4, B, 91, 92, "fail", error="Trimmed"),
                    op(1, "trim", 4, None, 100, 110))
    assert seg_check(trimmed).verdict == OK
    read_after_trim = timed(alloc, op(0, "write", 5, A, 20, 30), op(1, "trim", 4, None, 40, 50),
                            op(2, "read", 5, None, 60, 70, output=A))
    assert seg_check(read_after_trim).verdict == ILLEGAL
    trimmed_too_early = timed(alloc, op(2, "read", 5, None, 20, 30, "fail", error="Trimmed"))
    assert seg_check(trimmed_too_early).verdict == ILLEGAL


def test_segment_keys_must_be_segment_starts() -> None:
    from wormspace.history import HistoryFormatError

    with pytest.raises(HistoryFormatError, match="first address of a segment"):
        seg_check(timed(op(0, "alloc", 5, A, 0, 10)))


def test_model_steps_follow_the_spec_table() -> None:
    wor = WorModel()
    w = Input(f="write", key=0, value=A)
    r = Input(f="read", key=0, value=None)
    assert wor.step(None, w, Output(outcome="ok")) == (True, A)
    assert wor.step(A, w, Output(outcome="ok")) == (True, A)
    assert wor.step(B, w, Output(outcome="ok"))[0] is False
    assert wor.step(B, w, Output(outcome="fail", error="AlreadyWritten", existing=B)) == (True, B)
    assert wor.step(B, w, Output(outcome="info")) == (True, B)
    assert wor.step(None, r, Output(outcome="ok", value=None)) == (True, None)
    assert wor.step(None, r, Output(outcome="ok", value=b""))[0] is False
    seg = SegmentModel(wos_size=SEG)
    s0 = seg.init()
    ok, s1 = seg.step(s0, Input(f="alloc", key=0, value=A), Output(outcome="ok"))
    assert ok and s1.allocated and s1.metadata == A
    ok, s2 = seg.step(s1, Input(f="write", key=2, value=B), Output(outcome="ok"))
    assert ok and s2.index == {2: B} and s2 != s1
    assert seg.step(s2, Input(f="write", key=2, value=B), Output(outcome="ok")) == (True, s2)
    ok, s3 = seg.step(s2, Input(f="trim", key=0, value=None), Output(outcome="ok"))
    assert ok and s3.trimmed and seg.step(s3, Input(f="trim", key=0, value=None), Output(outcome="ok"))[0]
    assert seg.step(s3, Input(f="read", key=2, value=None), Output(outcome="ok", value=B))[0] is False
    assert hash(s2) == hash(SegmentState(True, A, False, frozenset({(2, B)})))


# --- partitions, witnesses, minimal sub-histories ------------------------------------------------------


def test_per_partition_breakdown_and_minimal_sub_history() -> None:
    good = [op(p, "write", 1, A, 10 * p, 10 * p + 15) for p in range(4)]
    noise = [op(p, "read", 2, None, 10 * p, 10 * p + 5, output=None) for p in range(4, 8)]
    bad = [op(8, "write", 3, A, 0, 10), op(9, "read", 3, None, 5, 12, output=A),
           op(9, "read", 3, None, 20, 30, output=A), op(8, "write", 3, B, 40, 50)]
    h = timed(*good, *noise, *bad)
    result = check_history(h)
    assert result.verdict == ILLEGAL
    assert {(p.key, p.verdict) for p in result.partitions} == {(1, OK), (2, OK), (3, ILLEGAL)}
    assert set(result.linearization) == {1, 2}
    assert result.minimal is not None and result.minimal.partition == 3
    assert [s.input.value for s in result.minimal.operations] == [A, B]  # the reads were not needed
    assert "address 3" in result.minimal.explanation


def test_minimal_keeps_the_effects_the_failure_relies_on() -> None:
    """Dropping the alloc would leave 'write to an unallocated segment', a different, spurious failure."""
    h = timed(op(0, "alloc", 0, A, 0, 10), op(1, "write", 1, A, 20, 30), op(2, "write", 1, B, 25, 35),
              op(3, "read", 1, None, 40, 50, output=A))
    result = seg_check(h)
    assert result.verdict == ILLEGAL and result.minimal is not None
    assert sorted(s.input.f for s in result.minimal.operations) == ["alloc", "write", "write"]


def test_ok_result_reports_a_valid_witness() -> None:
    h = simulate(random.Random(7), operations=300, addresses=5, processes=6)
    result = check_history(h)
    assert result.verdict == OK
    assert_witness(h, result)
    assert sum(len(v) for v in result.linearization.values()) >= 200


# --- budget --------------------------------------------------------------------------------------------


def hard_history(writers: int = 12, consistent: bool = False) -> History:
    """Illegal only through the allocation flag shared by two offsets, amid independent writes.

    The alloc must precede the write to offset 1 (ok by 10) and follow the read of offset 2 (Unallocated
    from 50): no single offset shows it, and every subset of the other writes is a distinct state, so the
    search visits about 2**writers of them. With ``consistent`` the read is at 5 instead: OK.
    """
    writes = [op(p, "write", 3 + p, bytes([p]), 0, 100) for p in range(writers)]
    unallocated_from = 5 if consistent else 50
    return timed(op(98, "alloc", 0, A, 0, 100), op(99, "write", 1, A, 0, 10), *writes,
                 op(97, "read", 2, None, 0 if consistent else 50, unallocated_from + 10, "fail",
                    error="Unallocated"))


def test_budget_exhaustion_gives_unknown_never_a_pass() -> None:
    model = SegmentModel(wos_size=64)
    h = hard_history()
    small = check_history(h, model, budget=500)
    assert small.verdict == UNKNOWN and small.minimal is None
    assert small.partitions[0].steps >= 500
    full = check_history(h, model)
    assert full.verdict == ILLEGAL and full.steps > 4096
    assert full.minimal is not None
    assert sorted(s.input.f for s in full.minimal.operations) == ["alloc", "read", "write"]
    fixed = hard_history(consistent=True)
    assert check_history(fixed, model).verdict == OK
    assert check_history(fixed, model, budget=5).verdict == UNKNOWN


def test_unknown_partition_does_not_hide_an_illegal_one() -> None:
    h = History([*hard_history(), *timed(op(7, "read", 4096, None, 1, 2, output=A))])
    result = check_history(h, SegmentModel(wos_size=64), budget=500)
    assert result.verdict == ILLEGAL
    assert [p.verdict for p in result.partitions] == [UNKNOWN, ILLEGAL]


# --- properties ----------------------------------------------------------------------------------------

SHAPES = st.fixed_dictionaries({
    "operations": st.integers(1, 60),
    "addresses": st.integers(1, 6),
    "processes": st.integers(1, 6),
    "segments": st.sampled_from([0, 0, 1, 2]),
    "info_rate": st.sampled_from([0.0, 0.05, 0.3]),
})


@settings(max_examples=150)
@given(rng=st.randoms(use_true_random=False), shape=SHAPES)
def test_widened_sequential_runs_are_linearizable(rng: random.Random, shape: dict[str, int]) -> None:
    h = simulate(rng, wos_size=SEG, **shape)
    result = check_history(h, wos_size=SEG)
    assert result.verdict == OK, result.minimal and result.minimal.lines()
    assert_witness(h, result, choose_model(operations(h), SEG))


@settings(max_examples=100)
@given(rng=st.randoms(use_true_random=False), shape=SHAPES, data=st.data())
def test_a_read_of_a_value_never_written_is_illegal(
    rng: random.Random, shape: dict[str, int], data: st.DataObject
) -> None:
    h = simulate(rng, wos_size=SEG, **shape)
    events = list(h)
    reads = [i for i, e in enumerate(events) if e.f == "read" and e.type == "ok"]
    assume(reads)
    i = data.draw(st.sampled_from(reads))
    events[i] = dataclasses.replace(events[i], value=b"never written")
    result = check_history(events, wos_size=SEG)
    assert result.verdict == ILLEGAL
    assert result.minimal is not None
    assert any(s.output.value == b"never written" for s in result.minimal.operations)


# --- differential check against brute force ------------------------------------------------------------


def brute_force_linearizable(model: WorModel | SegmentModel, history: History) -> bool:
    """Try every order (small histories only): the definition, without any of the checker's reductions."""
    subs = decompose(operations(history), model.wos_size)
    parts: dict[int, list[ModelOp]] = {}
    for sub in subs:
        if isinstance(model, WorModel):
            if sub.input.f not in ("write", "read") or sub.output.error in ("Trimmed", "Unallocated"):
                continue
            parts.setdefault(sub.input.key, []).append(sub)
        else:
            parts.setdefault(sub.input.key // model.wos_size, []).append(sub)

    def extend(state: object, rest: list[ModelOp]) -> bool:
        if all(s.ret is None for s in rest):
            return True  # what is left is indeterminate: at the end, or never
        for s in rest:
            if any(o is not s and precedes(o, s) for o in rest):
                continue  # something still pending returned before s was called
            ok, nxt = model.step(state, s.input, s.output)  # type: ignore[arg-type]
            if ok and extend(nxt, [o for o in rest if o is not s]):
                return True
        return False

    return all(extend(model.init(), part) for part in parts.values())


@st.composite
def small_histories(draw: st.DrawFn, segment: bool) -> History:
    events: list[Event] = []
    n = draw(st.integers(1, 6))
    for p in range(n):
        f = draw(st.sampled_from(["write", "read", "alloc", "trim"] if segment else ["write", "read"]))
        key = 0 if f in ("alloc", "trim") else draw(st.integers(0, 1))
        call = draw(st.integers(0, 12))
        ret = draw(st.one_of(st.none(), st.integers(call, call + 8)))
        value = None if f in ("read", "trim") else draw(st.sampled_from([A, B]))
        events.append(ev(p, "invoke", f, key, value, call))
        if ret is None:
            continue
        outcome = draw(st.sampled_from(["ok", "ok", "fail", "info"]))
        errors = ["Trimmed", "Unallocated", "CaptureStale"] if segment else ["CaptureStale"]
        if f in ("write", "alloc"):
            errors.append("AlreadyWritten")
        if outcome == "ok":
            out = draw(st.sampled_from([None, A, B])) if f == "read" else None
            events.append(ev(p, "ok", f, key, out, ret))
        elif outcome == "fail":
            error = draw(st.sampled_from(errors))
            existing = draw(st.sampled_from([None, A, B])) if error == "AlreadyWritten" else None
            events.append(ev(p, "fail", f, key, None, ret, error=error, existing=existing))
        else:
            events.append(ev(p, "info", f, key, None, ret, error="Indeterminate"))
    return History(sorted(events, key=lambda e: (e.time, e.type != "invoke")))


@settings(max_examples=300)
@given(data=st.data(), segment=st.booleans())
def test_checker_agrees_with_brute_force_on_small_histories(data: st.DataObject, segment: bool) -> None:
    history = data.draw(small_histories(segment))
    model = SegmentModel(wos_size=2) if segment else WorModel()
    expected = brute_force_linearizable(model, history)
    result = check_history(history, model)
    assert result.verdict == (OK if expected else ILLEGAL)
    if expected:
        assert_witness(history, result, model)
    else:
        assert result.minimal is not None
        assert not brute_force_linearizable(model, result.minimal.history)


# --- overwritable registers and the log: the reductions that hold only for write-once models ------------


def test_overwrite_register_history_is_linearizable_despite_a_rewrite_of_the_current_value() -> None:
    # W0 = write(1), Y = write(2) [2, 10], X = write(1) [3, 100], Z = read -> 1 [20, 30]: W0, Y, X, Z works.
    # Right after W0, X leaves the state alone; taking it first (reduction c) loses that order.
    one, two = b"1", b"2"
    ops = [
        oracle.operation(0, "write", 0, one, 0, 1),
        oracle.operation(1, "write", 0, two, 2, 10),
        oracle.operation(2, "write", 0, one, 3, 100),
        oracle.operation(3, "read", 0, None, 20, 30, output=one),
    ]
    model = RegisterModel()
    assert oracle.disagreement(model, ops) is None
    found = _search(model, model.partition(ops)[0], 1000)
    assert found.verdict == OK and found.order == (0, 1, 2, 3)


def test_register_model_follows_jepsen_cas_register() -> None:
    m = RegisterModel()
    cas = Input(f="cas", key=0, value=B, expected=A)
    assert m.step(A, cas, Output(outcome="ok")) == (True, B)
    assert m.step(B, cas, Output(outcome="ok"))[0] is False
    assert m.step(B, cas, Output(outcome="fail")) == (True, B)
    assert m.step(A, cas, Output(outcome="fail"))[0] is False
    assert m.step(B, cas, Output(outcome="info")) == (True, B)
    assert m.step(A, Input(f="write", key=0, value=None), Output(outcome="ok")) == (True, None)
    assert m.step(None, Input(f="read", key=0, value=None), Output(outcome="ok", value=None))[0]
    assert not m.write_once and WorModel().write_once and SegmentModel().write_once and LogModel().write_once


def test_log_model_hands_each_position_to_one_append() -> None:
    m = LogModel()
    append = Input(f="append", key=3, value=A)
    ok, s = m.step(None, append, Output(outcome="ok"))
    assert ok and s == Slot(A)
    assert m.step(s, append, Output(outcome="ok"))[0] is False  # not even the same data twice
    assert m.step(s, Input(f="read", key=3, value=None), Output(outcome="ok", value=A)) == (True, s)
    fill = Input(f="fill", key=3, value=None)
    assert m.step(s, fill, Output(outcome="ok"))[0] is False
    assert m.step(None, fill, Output(outcome="ok")) == (True, Slot(None))
    assert m.step(Slot(None), append, Output(outcome="ok"))[0] is False
    # two appends handed one position, concurrent, are illegal whatever their data
    ops = [oracle.operation(0, "append", 3, A, 0, 10), oracle.operation(1, "append", 3, A, 5, 15)]
    assert _search(m, m.partition(ops)[3], 1000).verdict == ILLEGAL


@settings(max_examples=400)
@given(data=st.data(), name=st.sampled_from(sorted(oracle.MODELS)))
def test_reduced_search_agrees_with_unreduced_and_brute_force(data: st.DataObject, name: str) -> None:
    model, histories = oracle.MODELS[name]
    ops = data.draw(histories())
    assert oracle.disagreement(model, ops) is None
