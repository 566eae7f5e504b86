"""The checker's models against the TRUSTED specs, over every operation sequence up to a bound.

``WorModel`` and ``SegmentModel`` step through ``WorSpec`` / ``WosSpec`` (models.py); this differential
check ties them down independently of that code: for every sequence of operations up to ``DEPTH`` long over
a small alphabet (two data values, two offsets, two metadata values), and every output the history format
can carry for each operation, the model must accept exactly the outputs the spec gives (an ``info`` output
always, stepping as the spec does when the operation took effect), and its state must abstract to the
spec's state. The bounds are printed. A planted bug (a segment model that accepts a lost alloc's failure
on an unallocated segment) must be found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from wormspace.history import ALREADY_WRITTEN
from wormspace.layers.wor import EMPTY, WorSpec
from wormspace.layers.wos import WosSpec
from wormspace.refinement.models import (
    TRIMMED,
    UNALLOCATED,
    Input,
    Output,
    SegmentModel,
    SegmentState,
    WorModel,
)

DATA = (b"a", b"b")
META = (b"m", b"n")
OFFSETS = (0, 1)
WOS_SIZE = 4
DEPTH = 5


def outputs(inp: Input) -> list[Output]:
    """Every output a history can give ``inp`` (the observations a model is asked about)."""
    outs = [Output(outcome="info")]
    if inp.f in ("read",):
        outs += [Output(outcome="ok", value=v) for v in (None, *DATA)]
    elif inp.f in ("write", "alloc", "trim"):
        outs.append(Output(outcome="ok"))
    if inp.f in ("write", "alloc"):
        outs += [Output(outcome="fail", error=ALREADY_WRITTEN, existing=e) for e in (None, *DATA, *META)]
    outs += [Output(outcome="fail", error=g) for g in (TRIMMED, UNALLOCATED)]
    return outs


# --- WOR ------------------------------------------------------------------------------------------------

WOR_INPUTS = [Input(f="write", key=0, value=v) for v in DATA] + [Input(f="read", key=0, value=None)]


def wor_allowed(spec: WorSpec, inp: Input, out: Output) -> tuple[bool, WorSpec]:
    """Straight from the spec: may ``inp`` return ``out`` in ``spec``, and the state after (took effect)."""
    if inp.f == "read":
        got = spec.read()
        return out.outcome == "info" or (out.outcome == "ok" and out.value == (None if got is EMPTY else got)), spec
    assert inp.value is not None
    after, existing = spec.write(inp.value)
    if out.outcome == "info":
        return True, after
    if out.outcome == "ok":
        return existing is None, after
    return out.error == ALREADY_WRITTEN and existing is not None and out.existing in (None, existing), spec


def wor_mismatches(model: Any, depth: int) -> tuple[list[str], int]:
    found: list[str] = []
    steps = 0
    frontier: list[tuple[WorSpec, Any, tuple[str, ...]]] = [(WorSpec(), model.init(), ())]
    for _ in range(depth):
        nxt = []
        for spec, state, trace in frontier:
            for inp in WOR_INPUTS:
                for out in outputs(inp):
                    if out.error in (TRIMMED, UNALLOCATED):
                        continue  # not modelled by the WOR model (dropped before it)
                    steps += 1
                    want, spec2 = wor_allowed(spec, inp, out)
                    got, state2 = model.step(state, inp, out)
                    here = (*trace, model.describe(inp, out))
                    if got != want:
                        found.append(f"{'; '.join(here)}: model {got}, spec {want}")
                    elif want:
                        if state2 != spec2.value:
                            found.append(f"{'; '.join(here)}: model state {state2!r}, spec {spec2.value!r}")
                        elif out.outcome != "fail":  # fails leave the state: no new sequence
                            nxt.append((spec2, state2, here))
        frontier = nxt
    return found, steps


def test_wor_model_equals_wor_spec_on_all_short_sequences() -> None:
    found, steps = wor_mismatches(WorModel(), DEPTH)
    print(f"WorModel vs WorSpec: every sequence of up to {DEPTH} operations over {len(WOR_INPUTS)} inputs, "
          f"{steps} steps")
    assert not found, "\n".join(found[:10])


def test_already_written_naming_the_value_written_is_illegal() -> None:
    m = WorModel()
    w = Input(f="write", key=0, value=b"a")
    assert not m.step(b"a", w, Output(outcome="fail", error=ALREADY_WRITTEN, existing=b"a"))[0]
    assert m.step(b"b", w, Output(outcome="fail", error=ALREADY_WRITTEN, existing=b"b"))[0]
    assert m.step(b"a", w, Output(outcome="ok"))[0]


def unknown_wor_mismatches(depth: int) -> tuple[list[str], int]:
    """``WorModel(initial="unknown")`` against the spec from every initial register at once: for every
    sequence of definite outcomes (``ok`` and ``fail``) up to ``depth``, the model accepts it exactly when
    the spec accepts it from some initial state -- EMPTY, one of the data values, or data no operation
    names (``b"c"``). Indeterminate outcomes are left out: from an unknown register the model lets one
    take effect or not, which the search's freedom to place it last covers anyway."""
    model = WorModel(initial="unknown")
    found: list[str] = []
    steps = 0
    starts = (WorSpec(), *(WorSpec(v) for v in (*DATA, *META, b"c")))
    frontier: list[tuple[tuple[WorSpec, ...], Any, tuple[str, ...]]] = [(starts, model.init(), ())]
    for _ in range(depth):
        nxt = []
        for specs, state, trace in frontier:
            for inp in WOR_INPUTS:
                for out in outputs(inp):
                    if out.outcome == "info" or out.error in (TRIMMED, UNALLOCATED):
                        continue
                    steps += 1
                    alive = tuple(after for spec in specs for ok, after in [wor_allowed(spec, inp, out)] if ok)
                    got, state2 = model.step(state, inp, out)
                    here = (*trace, model.describe(inp, out))
                    if got != bool(alive):
                        found.append(f"{'; '.join(here)}: model {got}, spec from some initial state {bool(alive)}")
                    elif got:
                        nxt.append((alive, state2, here))
        frontier = nxt
    return found, steps


def test_the_unknown_initial_wor_model_equals_the_spec_from_some_initial_state() -> None:
    found, steps = unknown_wor_mismatches(UNKNOWN_DEPTH)
    print(f"WorModel(initial=unknown) vs WorSpec from EMPTY, a, b or other data: every sequence of up to "
          f"{UNKNOWN_DEPTH} definite outcomes, {steps} steps")
    assert not found, "\n".join(found[:10])


UNKNOWN_DEPTH = 6


# --- WOS ------------------------------------------------------------------------------------------------

SEG_INPUTS = (
    [Input(f="alloc", key=0, value=m) for m in META]
    + [Input(f="trim", key=0, value=None), Input(f="batch_capture", key=0, value=None)]
    + [Input(f="write", key=o, value=v) for o in OFFSETS for v in DATA]
    + [Input(f="read", key=o, value=None) for o in OFFSETS]
    + [Input(f="capture", key=o, value=None) for o in OFFSETS]
)


def seg_allowed(spec: WosSpec, inp: Input, out: Output) -> tuple[bool, WosSpec]:
    """Straight from the spec, as ``wor_allowed``. Captures enter histories only as failures."""
    f, o = inp.f, inp.key % WOS_SIZE
    answer: object
    if f == "alloc":
        assert inp.value is not None
        after, won = spec.alloc(inp.value)
        if out.outcome == "info":
            return True, after
        if out.outcome == "ok":
            return won is True, after
        if out.error == ALREADY_WRITTEN:
            return won is False and out.existing in (None, spec.metadata), spec
        return won == out.error, spec
    if f == "trim":
        after, _ = spec.trim()
        return out.outcome != "fail", after
    if f in ("capture", "batch_capture"):
        gate = spec.capture(o)
        return out.outcome == "info" or (out.outcome == "fail" and gate is not None and out.error == gate), spec
    if f == "read":
        got = spec.read(o)
        if out.outcome == "info":
            return True, spec
        if out.outcome == "fail":
            return isinstance(got, str) and out.error == got, spec
        return not isinstance(got, str) and out.value == (None if got is EMPTY else got), spec
    assert inp.value is not None
    after, answer = spec.write(o, inp.value)
    if out.outcome == "info":
        return True, after
    if out.outcome == "ok":
        return answer is None, after
    if out.error == ALREADY_WRITTEN:
        return isinstance(answer, bytes) and out.existing in (None, answer), spec
    return isinstance(answer, str) and out.error == answer, spec


def abstract(state: SegmentState) -> WosSpec:
    """The spec state a model state stands for (a trimmed segment's data is gone)."""
    meta = state.metadata if state.allocated else None
    assert meta is None or isinstance(meta, bytes)
    data = () if state.trimmed else tuple(sorted(state.registers))
    return WosSpec(meta, bool(state.trimmed), data)


def seg_mismatches(model: Any, depth: int) -> tuple[list[str], int]:
    found: list[str] = []
    steps = 0
    frontier: list[tuple[WosSpec, Any, tuple[str, ...]]] = [(WosSpec(), model.init(), ())]
    for _ in range(depth):
        nxt = []
        for spec, state, trace in frontier:
            for inp in SEG_INPUTS:
                for out in outputs(inp):
                    steps += 1
                    want, spec2 = seg_allowed(spec, inp, out)
                    got, state2 = model.step(state, inp, out)
                    here = (*trace, model.describe(inp, out))
                    if got != want:
                        found.append(f"{'; '.join(here)}: model {got}, spec {want}")
                    elif want:
                        if abstract(state2) != spec2:
                            found.append(f"{'; '.join(here)}: model state {abstract(state2)}, spec {spec2}")
                        elif out.outcome != "fail":
                            nxt.append((spec2, state2, here))
        frontier = nxt
    return found, steps


SEG_DEPTH = 4


def test_segment_model_equals_wos_spec_on_all_short_sequences() -> None:
    found, steps = seg_mismatches(SegmentModel(wos_size=WOS_SIZE), SEG_DEPTH)
    print(f"SegmentModel vs WosSpec: every sequence of up to {SEG_DEPTH} operations over {len(SEG_INPUTS)} "
          f"inputs (metadata {len(META)}, data {len(DATA)}, offsets {len(OFFSETS)}), {steps} steps")
    assert not found, "\n".join(found[:10])


# --- planted bug: the surviving mutant of an outside mutation run ---------------------------------------


@dataclass(frozen=True, slots=True)
class LostAllocOnUnallocated(SegmentModel):
    """Planted bug: accepts a lost alloc (AlreadyWritten) on a segment nobody allocated."""

    def step(self, state: SegmentState, input: Input, output: Output) -> tuple[bool, SegmentState]:
        if input.f == "alloc" and output.error == ALREADY_WRITTEN and state.allocated is False:
            return True, state
        return SegmentModel.step(self, state, input, output)


@pytest.fixture
def lost_alloc_mutant() -> SegmentModel:
    return LostAllocOnUnallocated(wos_size=WOS_SIZE)


def test_differential_check_catches_the_lost_alloc_mutant(lost_alloc_mutant: SegmentModel) -> None:
    found, _ = seg_mismatches(lost_alloc_mutant, 1)
    assert any("alloc(0, b'm') -> AlreadyWritten" in f and "model True, spec False" in f for f in found)


def test_checker_rejects_a_lost_alloc_on_an_unallocated_segment(lost_alloc_mutant: SegmentModel) -> None:
    from wormspace.history import History
    from wormspace.refinement.linearizability import check_history

    text = "\n".join([
        '{"process": 0, "type": "invoke", "f": "alloc", "key": 0, "value": "bQ==", "time": 1}',
        '{"process": 0, "type": "fail", "f": "alloc", "key": 0, "value": null, "time": 2, "error": "AlreadyWritten"}',
    ])
    h = History.from_jsonl(text)
    assert check_history(h, SegmentModel(wos_size=WOS_SIZE)).verdict == "ILLEGAL"
    assert check_history(h, lost_alloc_mutant).verdict == "OK"  # the mutant passes it: the test can fail


