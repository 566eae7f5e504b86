"""A brute-force linearizability oracle and random small histories for the register and log models.

The oracle tries every order (small parts only): the definition, with none of the checker's reductions.
``disagreement`` runs the checker's search reduced and unreduced beside it and says what differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from wormspace.history import Operation
from wormspace.refinement.linearizability import ILLEGAL, OK, _search
from wormspace.refinement.models import LogModel, Model, ModelOp, RegisterModel, precedes

A, B = b"a", b"b"
BUDGET = 1_000_000


def brute_force(model: Model[Any], subs: Sequence[ModelOp]) -> bool:
    """Is there an order of ``subs`` (one part), respecting real time, that the model accepts?"""

    def extend(state: object, rest: list[ModelOp]) -> bool:
        if all(s.ret is None for s in rest):
            return True  # what is left is indeterminate: at the end, or never
        for s in rest:
            if any(o is not s and precedes(o, s) for o in rest):
                continue  # something still pending returned before s was called
            ok, nxt = model.step(state, s.input, s.output)
            if ok and extend(nxt, [o for o in rest if o is not s]):
                return True
        return False

    return extend(model.init(), list(subs))


def disagreement(model: Model[Any], ops: Sequence[Operation]) -> str | None:
    """None when brute force, the reduced and the unreduced search agree on every part, else what differs."""
    for key, subs in model.partition(ops).items():
        expected = OK if brute_force(model, subs) else ILLEGAL
        reduced = _search(model, subs, BUDGET).verdict
        plain = _search(model, subs, BUDGET, reduce=False).verdict
        if not reduced == plain == expected:
            return f"part {key}: brute force {expected}, reduced search {reduced}, unreduced {plain}"
    return None


def operation(i: int, f: str, key: int, value: bytes | None, call: int, ret: int | None, outcome: str = "ok",
              output: bytes | None = None, expected: bytes | None = None) -> Operation:
    """One operation of process ``i`` (``ret`` None: indeterminate)."""
    return Operation(
        id=i, process=i, f=f, key=key, value=value, call=call, ret=None if outcome == "info" else ret,
        end=ret, outcome=outcome, error="Indeterminate" if outcome == "info" else None, existing=expected,
        output=output, results=None, line=i + 1, ret_line=None if ret is None else i + 1,
    )


@st.composite
def register_histories(draw: st.DrawFn, size: int = 6) -> list[Operation]:
    """Up to ``size`` overlapping reads, writes and cas on one or two keys, every outcome."""
    out: list[Operation] = []
    values = st.sampled_from([None, A, B])
    for i in range(draw(st.integers(1, size))):
        f = draw(st.sampled_from(["write", "write", "read", "cas"]))
        call = draw(st.integers(0, 12))
        ret = draw(st.integers(call, call + 8))
        outcome = draw(st.sampled_from(["ok", "ok", "ok", "info"] + (["fail"] if f == "cas" else [])))
        key = draw(st.integers(0, 1)) if size > 6 else 0
        out.append(operation(
            i, f, key, None if f == "read" else draw(values), call, ret, outcome,
            output=draw(values) if f == "read" else None, expected=draw(values) if f == "cas" else None,
        ))
    return out


@st.composite
def log_histories(draw: st.DrawFn, size: int = 6) -> list[Operation]:
    """Up to ``size`` overlapping appends and reads (of data or junk) at two positions."""
    out: list[Operation] = []
    for i in range(draw(st.integers(1, size))):
        f = draw(st.sampled_from(["append", "read"]))
        call = draw(st.integers(0, 12))
        ret = draw(st.integers(call, call + 8))
        outcome = draw(st.sampled_from(["ok", "ok", "ok", "info"]))
        value = draw(st.sampled_from([A, B]))
        out.append(operation(
            i, f, draw(st.integers(0, 1)), value if f == "append" else None, call, ret, outcome,
            output=draw(st.sampled_from([None, A, B])) if f == "read" else None,
        ))
    return out


MODELS: dict[str, tuple[Model[Any], Any]] = {
    "register": (RegisterModel(), register_histories),
    "log": (LogModel(), log_histories),
}
