"""The sequential models the linearizability checker judges histories against (trusted: keep tiny).

A model has Porcupine's shape: ``init()`` gives the initial state, ``step(state, input, output)`` says
whether the operation ``input`` may return ``output`` in ``state`` and gives the next state, ``describe``
renders an operation, ``partition`` splits a history into independent parts (linearizability is local:
a history is linearizable iff each part is). States are immutable and hashable, so the checker can
memoise the states it has met.

Operations enter the models as *sub-operations* (``ModelOp``): one per address touched. A ``batch_write``
becomes one write per offset, each with the batch's interval and its own outcome (a batch is not atomic
across addresses). What each outcome means to a model:

* ``ok`` -- the operation took effect with this output, at one point between its call and return.
* ``fail`` -- it certainly took no effect, but its error is an *observation* of the state at one point in
  its interval: ``AlreadyWritten`` with ``existing=w`` needs ``Written(w)`` (without ``existing``:
  ``Written(x)`` with ``x != v``); ``Trimmed`` needs a trimmed segment; ``Unallocated`` an unallocated one.
  ``CaptureStale`` observes nothing, and such sub-operations are dropped.
* ``info`` -- indeterminate: the output is unknown, so every step is allowed; its return counts as +infinity,
  so the checker may place it anywhere after its call, including after everything else (= never).
  The ``results`` of a ``batch_write`` govern each offset whatever the completion's type: in an ``info``
  completion, an offset named ``ok`` (or ``AlreadyWritten``, ...) is that outcome, returned at the
  completion's time; only its ``Indeterminate`` offsets are indeterminate.

Indeterminate writes and trims that no operation could observe are dropped (``prune_unobserved``
explains why that changes no verdict). Captures (``capture``, ``batch_capture``) are a liveness device:
they enter only as ``Trimmed`` / ``Unallocated`` observations. Reads that did not return ``ok`` observe
nothing else.

The steps are not a second spec: ``WorModel`` and ``SegmentModel`` step by calling the TRUSTED specs'
operations (``WorSpec`` in layers/wor.py, ``WosSpec`` in layers/wos.py) and accept an output exactly when
it is the spec's answer (``_wor_step``, ``_segment_spec_step``); what they add is the history's view of an
outcome (an ``info`` may have taken effect; an unknown initial state is fixed by its first observation).
tests/refinement/test_spec_models.py checks them against the specs over every operation sequence up to a
bound. The rules below restate the specs.

Rules of ``WorModel`` (one write-once register per address; partition = address)::

    state    EMPTY (None) | Written(v) (bytes)
    write v  EMPTY -> Written(v), ok;  Written(v) -> ok;  Written(w != v) -> fails AlreadyWritten(w)
             (so AlreadyWritten naming the value written is illegal: that write returns ok)
    read     -> state (EMPTY or the bytes)

``alloc``/``trim`` and the ``Trimmed``/``Unallocated`` observations are outside this model and ignored.

Rules of ``SegmentModel`` (one write-once segment; partition = ``address // wos_size``)::

    state    allocated, metadata, trimmed, offset -> WOR state
    trimmed           every operation fails Trimmed (trim itself is ok: idempotent)
    not allocated     reads, writes and captures fail Unallocated
    alloc m           ok iff not allocated (-> allocated, metadata m); else fails AlreadyWritten(metadata);
                      never Unallocated
    trim              ok -> trimmed (never fails)
    read / write      allocated and not trimmed: the WOR rules on the offset

Initial state. By default every address starts EMPTY and every segment unallocated: right for a run that
starts on a fresh cluster. A run recorded on a cluster that already held data (``initial="unknown"``;
``wormspace check --initial unknown``) starts from an *unknown* state instead: each register, and a
segment's allocated and trimmed flags, are unknown until the first operation observes them, which fixes
them (an ``ok`` read of ``v`` fixes ``Written(v)`` or EMPTY; an ``ok`` write of ``v`` leaves ``Written(v)``;
a ``Trimmed`` observation fixes trimmed; an ``ok`` operation on a segment fixes it allocated and not
trimmed; ``Unallocated`` fixes it unallocated). An ``AlreadyWritten`` that does not name the data, for a
write of ``v``, fixes the register written with data other than ``v`` (``WrittenOther``), which later
observations must agree with. An indeterminate operation met in an unknown state fixes nothing. This mode
may pass a history that the empty mode would judge, never the other way round. It assumes every
client that touched the cluster during the run was recorded.

Rules of ``RegisterModel`` (Jepsen's cas-register: one overwritable register per key; partition = key;
None is "absent"; *not* write-once)::

    read          -> state
    write v       -> v (always succeeds; v may be None: a delete)
    cas e -> v    state == e: -> v, ok;  state != e: fails (an observation: the state is not e)

Rules of ``LogModel`` (an append-only log with positions; partition = position; write-once)::

    state         unwritten (None) | Slot(data) | Slot(None) = junk (a hole a reader filled)
    append v      at its position: unwritten -> Slot(v), ok; anything else -> illegal (each position is
                  handed to one append only)
    read -> v     needs Slot(v)
    read -> None  (``fill``) the position is junk: unwritten -> Slot(None); Slot(None) -> ok; Slot(v) illegal

For these two models an operation is one sub-operation on its ``key`` (a register key, a log position); a
cas carries the expected value in the operation's ``existing``; a ``fail`` means no effect (a failed cas
observed another value). Reads that did not return ``ok`` observe nothing.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from wormspace.errors import UsageError
from wormspace.history import (
    ALREADY_WRITTEN,
    INDETERMINATE,
    Event,
    History,
    HistoryFormatError,
    Operation,
)
from wormspace.layers.wor import EMPTY, WorSpec
from wormspace.layers.wos import WosSpec

DEFAULT_WOS_SIZE = 1024
INITIAL_STATES = ("empty", "unknown")
TRIMMED = "Trimmed"
UNALLOCATED = "Unallocated"
CAPTURE_STALE = "CaptureStale"
_OBSERVATIONS = (TRIMMED, UNALLOCATED)


@dataclass(frozen=True, slots=True, kw_only=True)
class Input:
    """What a sub-operation asked: ``f`` in write/read/alloc/trim/capture/batch_capture, on ``key``.

    The register and log models add ``cas`` (``expected`` -> ``value``) and ``append``.
    """

    f: str
    key: int
    value: bytes | None
    expected: bytes | None = None  # cas only: the value the register must hold (None: absent)


@dataclass(frozen=True, slots=True, kw_only=True)
class Output:
    """How it ended: ``outcome`` ok/fail/info; ``value`` a read's result (None = EMPTY)."""

    outcome: str
    value: bytes | None = None
    error: str | None = None
    existing: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelOp:
    """A sub-operation: one address of ``source``, with the interval ``call``..``ret`` (None = +infinity)."""

    id: int
    source: Operation
    offset: int | None  # the batch offset, for sub-operations of a batch_write
    call: int
    ret: int | None
    input: Input
    output: Output

    @property
    def process(self) -> int:
        return self.source.process

    @property
    def call_at(self) -> tuple[int, float]:
        """When it was called, for real-time order: the time, then the invoke's line (see ``precedes``)."""
        return self.call, self.source.line

    @property
    def ret_at(self) -> tuple[float, float]:
        """When it returned (+infinity for an indeterminate one): the time, then the completion's line, or
        +infinity when the line is not known (ties are then concurrent)."""
        if self.ret is None:
            return math.inf, math.inf
        line = self.source.ret_line
        return self.ret, math.inf if line is None else line


def precedes(a: ModelOp, b: ModelOp) -> bool:
    """Real-time order: ``a`` returned before ``b`` was called. Times decide; at equal times the lines of the
    history do (events are written in the order they happened, as in Jepsen, where that order is the
    real-time order): a completion on an earlier line than an invoke at the same time came first."""
    return a.ret_at < b.call_at


S = TypeVar("S")


class Model(Protocol[S]):
    """A sequential specification in Porcupine's shape.

    Every model obeys: steps are deterministic; an ``info`` output is accepted in every state; a ``read`` or
    a ``fail`` never changes the state. ``write_once`` (optional, default False) claims more: once a step
    leaves a state unchanged, it leaves every later state unchanged too (registers are never overwritten);
    the checker then cuts more of its search (linearizability.py, reduction c).
    """

    @property
    def name(self) -> str: ...

    def init(self) -> S: ...

    def step(self, state: S, input: Input, output: Output) -> tuple[bool, S]: ...

    def describe(self, input: Input, output: Output) -> str: ...

    def describe_state(self, state: S) -> str: ...

    def partition(self, operations: Sequence[Operation]) -> dict[int, list[ModelOp]]: ...

    def partition_label(self, key: int) -> str: ...


class _Unknown:
    """The state of a register or flag before the run, when the run did not start from an empty space."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN_STATE = _Unknown()


@dataclass(frozen=True, slots=True)
class WrittenOther:
    """A register known to hold data, but not which: none of ``excluded``. Only an unknown initial state
    meets it: an ``AlreadyWritten`` without ``existing`` for a write of ``v`` shows the register holds data
    other than ``v``, for good (a register is write-once)."""

    excluded: frozenset[bytes]


#: A register in a model: Written(bytes), EMPTY (None), not known yet, or written with data not known yet.
RegValue = bytes | _Unknown | WrittenOther | None


def show(b: bytes | None, limit: int = 24) -> str:
    """A short human rendering of register data; None is EMPTY."""
    if b is None:
        return "EMPTY"
    r = repr(b)
    return r if len(r) <= limit else f"{r[: limit - 2]}…'({len(b)} bytes)"


def decompose(ops: Sequence[Operation], wos_size: int) -> list[ModelOp]:
    """Turn operations into the sub-operations every model sees (see the module docstring)."""
    out: list[ModelOp] = []

    def add(op: Operation, offset: int | None, f: str, key: int, value: bytes | None, output: Output,
            ret: int | None) -> None:
        out.append(ModelOp(id=len(out), source=op, offset=offset, call=op.call, ret=ret,
                           input=Input(f=f, key=key, value=value), output=output))

    for op in ops:
        if op.f in ("alloc", "trim", "batch_write", "batch_capture") and op.key % wos_size:
            raise HistoryFormatError(
                op.line, f"{op.f} key {op.key} is not the first address of a segment (wos size {wos_size})"
            )
        if op.f == "batch_write":
            assert isinstance(op.value, dict)
            existing = op.existing if isinstance(op.existing, dict) else {}
            for offset, data in sorted(op.value.items()):
                if offset >= wos_size:
                    raise HistoryFormatError(op.line, f"batch_write offset {offset} >= wos size {wos_size}")
                if op.results is not None:
                    result = op.results[offset]
                elif op.outcome == "ok":
                    result = "ok"
                elif op.outcome == "info":
                    result = INDETERMINATE
                else:
                    result = op.error or INDETERMINATE
                if result == CAPTURE_STALE:
                    continue
                if result == "ok":
                    output = Output(outcome="ok")
                elif result == INDETERMINATE:
                    output = Output(outcome="info")
                else:
                    output = Output(outcome="fail", error=result, existing=existing.get(offset))
                # an offset whose result is known returned with the completion, even an info one's
                ret = None if output.outcome == "info" else op.end
                add(op, offset, "write", op.key + offset, data, output, ret)
            continue
        assert not isinstance(op.value, dict) and not isinstance(op.output, dict)
        assert not isinstance(op.existing, dict)
        if op.outcome == "info":
            if op.f in ("write", "alloc", "trim"):
                add(op, None, op.f, op.key, op.value, Output(outcome="info"), None)
            continue
        if op.outcome == "fail":
            if op.error in _OBSERVATIONS or op.error == ALREADY_WRITTEN:
                out_ = Output(outcome="fail", error=op.error, existing=op.existing)
                add(op, None, op.f, op.key, op.value, out_, op.ret)
            continue
        if op.f in ("capture", "batch_capture"):
            continue
        add(op, None, op.f, op.key, op.value if op.f != "read" else None,
            Output(outcome="ok", value=op.output if op.f == "read" else None), op.ret)
    return out


def prune_unobserved(subs: list[ModelOp]) -> list[ModelOp]:
    """Drop indeterminate writes (and trims) whose effect no operation of ``subs`` could observe.

    An indeterminate write of ``v`` to address ``a`` is observed only by an ``ok`` read of ``v`` at ``a``,
    an ``AlreadyWritten`` with ``existing=v`` there, or an ``AlreadyWritten`` without ``existing`` by a
    write of another value. With none of those, any legal order in which the write took effect stays legal
    without it (after it the register could only be re-written with ``v``, and that re-write then writes
    it), so dropping it changes no verdict; it spares the search an operation open until +infinity.
    Likewise an indeterminate trim where no operation observes ``Trimmed``.
    """
    seen: set[tuple[int, bytes | None]] = set()
    conflicts: dict[int, set[bytes | None]] = {}
    trimmed_seen = False
    for sub in subs:
        out, key = sub.output, sub.input.key
        if out.outcome == "ok" and sub.input.f == "read":
            seen.add((key, out.value))
        elif out.outcome == "fail" and out.error == ALREADY_WRITTEN and sub.input.f == "write":
            if out.existing is not None:
                seen.add((key, out.existing))
            else:
                conflicts.setdefault(key, set()).add(sub.input.value)
        elif out.outcome == "fail" and out.error == TRIMMED:
            trimmed_seen = True

    def observed(sub: ModelOp) -> bool:
        key, v = sub.input.key, sub.input.value
        if sub.input.f == "trim":
            return trimmed_seen
        if sub.input.f != "write":
            return True
        return (key, v) in seen or bool(conflicts.get(key, set()) - {v})

    return [sub for sub in subs if sub.output.outcome != "info" or observed(sub)]


def _describe(input: Input, output: Output) -> str:
    if input.f in ("write", "alloc"):
        call = f"{input.f}({input.key}, {show(input.value)})"
    else:
        call = f"{input.f}({input.key})"
    if output.outcome == "info":
        return f"{call} -> ? (indeterminate)"
    if output.outcome == "fail":
        extra = f"({show(output.existing)})" if output.existing is not None else ""
        return f"{call} -> {output.error}{extra}"
    if input.f == "read":
        return f"{call} -> {show(output.value)}"
    return f"{call} -> ok"


def _unknown_wor_step(state: _Unknown | WrittenOther, input: Input, output: Output) -> tuple[bool, RegValue]:
    """A register whose state is not known yet (or known written, with data none of ``excluded``): the first
    observation that names it fixes it (to the state the observation needs, which must be one ``state``
    allows), and the trusted spec then judges the step from there."""
    if output.outcome == "info":
        return True, state  # EMPTY -> v, or it held data already: not known either way
    if input.f == "read":
        fixed: bytes | None = output.value
    elif output.outcome == "fail":  # AlreadyWritten: the data it names, or some data other than v
        if output.existing is None:
            assert input.value is not None, "a write carries its data"
            before = state.excluded if isinstance(state, WrittenOther) else frozenset()
            return True, WrittenOther(before | {input.value})
        fixed = output.existing
    else:  # an ok write: it was EMPTY or held v already; from either it holds v now
        fixed = input.value if isinstance(state, WrittenOther) else None
    if isinstance(state, WrittenOther) and (fixed is None or fixed in state.excluded):
        return False, state  # it holds data, and none of these
    return _wor_step(fixed, input, output)


def _wor_step(state: RegValue, input: Input, output: Output) -> tuple[bool, RegValue]:
    """One step of one register, judged by the trusted ``WorSpec`` (layers/wor.py); ``state`` None is EMPTY.

    The spec gives the one answer the operation may return; an ``ok`` or ``fail`` output must be it (a
    ``fail`` is an ``AlreadyWritten``, whose ``existing``, when given, must be the data the spec names), and
    an ``info`` output is the run in which the operation took effect."""
    if isinstance(state, (_Unknown, WrittenOther)):
        return _unknown_wor_step(state, input, output)
    spec = WorSpec(state)
    if input.f == "read":
        return (output.outcome == "info" or spec.read() == (EMPTY if output.value is None else output.value)), state
    assert input.value is not None, "a write carries its data"
    after, existing = spec.write(input.value)
    if output.outcome == "fail":  # an observation: the spec must answer AlreadyWritten with this data
        return existing is not None and output.existing in (None, existing), state
    if output.outcome == "ok":
        return existing is None, after.value
    return True, after.value


@dataclass(frozen=True, slots=True)
class WorModel:
    """The write-once register, partitioned per address (see the module rules)."""

    wos_size: int = DEFAULT_WOS_SIZE
    initial: str = "empty"

    @property
    def name(self) -> str:
        return "wor"

    @property
    def write_once(self) -> bool:
        return True

    def init(self) -> RegValue:
        return UNKNOWN_STATE if self.initial == "unknown" else None

    def step(self, state: RegValue, input: Input, output: Output) -> tuple[bool, RegValue]:
        return _wor_step(state, input, output)

    def describe(self, input: Input, output: Output) -> str:
        return _describe(input, output)

    def describe_state(self, state: RegValue) -> str:
        return _describe_reg(state)

    def partition(self, operations: Sequence[Operation]) -> dict[int, list[ModelOp]]:
        parts: dict[int, list[ModelOp]] = {}
        for sub in decompose(operations, self.wos_size):
            if sub.input.f not in ("write", "read") or sub.output.error in _OBSERVATIONS:
                continue
            parts.setdefault(sub.input.key, []).append(sub)
        return {key: prune_unobserved(subs) for key, subs in parts.items()}

    def partition_label(self, key: int) -> str:
        return f"address {key}"


def _describe_reg(state: RegValue) -> str:
    if isinstance(state, _Unknown):
        return "unknown"
    if isinstance(state, WrittenOther):
        return "written, none of {" + ", ".join(show(v) for v in sorted(state.excluded)) + "}"
    return "EMPTY" if state is None else f"Written({show(state)})"


@dataclass(frozen=True, slots=True)
class SegmentState:
    """One WOS: flags, the winner's metadata, and the written registers (offset, data).

    With an unknown initial state, ``allocated``/``trimmed`` may be None (not known yet), ``metadata``
    ``UNKNOWN_STATE``, and ``unknown`` says that an offset neither written nor in ``empty`` is not known
    yet (otherwise it is EMPTY); ``others`` holds the offsets known written with data not known yet."""

    allocated: bool | None = False
    metadata: bytes | _Unknown | None = None
    trimmed: bool | None = False
    registers: frozenset[tuple[int, bytes]] = frozenset()
    index: dict[int, bytes] = field(default_factory=dict, compare=False, hash=False, repr=False)
    empty: frozenset[int] = frozenset()
    unknown: bool = False
    others: frozenset[tuple[int, WrittenOther]] = frozenset()

    def written(self, offset: int, data: bytes) -> SegmentState:
        index = dict(self.index)
        index[offset] = data
        return replace(self, registers=self.registers | {(offset, data)}, index=index)

    def register(self, offset: int) -> RegValue:
        if offset in self.index:
            return self.index[offset]
        for o, other in self.others:
            if o == offset:
                return other
        return UNKNOWN_STATE if self.unknown and offset not in self.empty else None

    def with_register(self, offset: int, before: RegValue, after: RegValue) -> SegmentState:
        if after is before:
            return self
        state = self
        if isinstance(before, WrittenOther):
            state = replace(state, others=state.others - {(offset, before)})
        if isinstance(after, WrittenOther):
            return replace(state, others=state.others | {(offset, after)})
        if isinstance(after, bytes) and offset not in state.index:
            return state.written(offset, after)
        if after is None and isinstance(before, _Unknown):
            return replace(state, empty=state.empty | {offset})
        return state


@dataclass(frozen=True, slots=True)
class SegmentModel:
    """The write-once segment: allocation, trim and per-offset WORs, partitioned per segment."""

    wos_size: int = DEFAULT_WOS_SIZE
    initial: str = "empty"

    @property
    def name(self) -> str:
        return "segment"

    @property
    def write_once(self) -> bool:
        return True

    def init(self) -> SegmentState:
        if self.initial == "unknown":
            return SegmentState(allocated=None, metadata=UNKNOWN_STATE, trimmed=None, unknown=True)
        return SegmentState()

    def step(self, state: SegmentState, input: Input, output: Output) -> tuple[bool, SegmentState]:
        if state.allocated is None or state.trimmed is None or isinstance(state.metadata, _Unknown):
            fixed = _fix_flags(state, input, output)
            if fixed is None:
                return True, state  # an observation that fixes nothing (unknown initial state)
            state = fixed
        return _segment_spec_step(state, input, output, input.key % self.wos_size)

    def describe(self, input: Input, output: Output) -> str:
        return _describe(input, output)

    def describe_state(self, state: SegmentState) -> str:
        if state.trimmed:
            flags = "trimmed"
        elif state.allocated:
            flags = "allocated"
        elif state.allocated is None:
            flags = "allocation unknown"
        else:
            flags = "unallocated"
        meta = ""
        if state.allocated:
            m = state.metadata
            meta = ", metadata unknown" if isinstance(m, _Unknown) else f", metadata {show(m)}"
        regs = ", ".join([f"{o}: {show(d)}" for o, d in sorted(state.registers)]
                         + [f"{o}: {_describe_reg(w)}" for o, w in sorted(state.others, key=lambda p: p[0])])
        rest = "; every other offset unknown" if state.unknown else ""
        return f"{flags}{meta}; written {{{regs}}}{rest}"

    def partition(self, operations: Sequence[Operation]) -> dict[int, list[ModelOp]]:
        parts: dict[int, list[ModelOp]] = {}
        for sub in decompose(operations, self.wos_size):
            parts.setdefault(sub.input.key // self.wos_size, []).append(sub)
        return {key: prune_unobserved(subs) for key, subs in parts.items()}

    def partition_label(self, key: int) -> str:
        return f"segment {key}"

    def projections(self, subs: list[ModelOp]) -> tuple[list[list[ModelOp]], bool]:
        """One projection per offset: its reads, writes and captures plus every segment-wide operation.

        The registers of a segment interact only through the allocated and trimmed flags, and only
        segment-wide operations (alloc, trim, batch_capture) touch those, so each projection keeps all
        that affects the state its operations see: an ILLEGAL projection means an ILLEGAL segment.
        The projections are *complete* (OK everywhere means OK) when no alloc or trim that may change
        the flags (ok or info) overlaps in time any per-offset operation: the order between flag changes
        and each offset's operations is then fixed by real time, the same in every projection.
        """
        wide = [s for s in subs if s.input.f in _SEGMENT_WIDE]
        per: dict[int, list[ModelOp]] = {}
        for sub in subs:
            if sub.input.f not in _SEGMENT_WIDE:
                per.setdefault(sub.input.key % self.wos_size, []).append(sub)
        if len(per) <= 1:
            return [subs], True
        changes = [s for s in wide if s.input.f in ("alloc", "trim") and s.output.outcome != "fail"]
        narrow = [s for s in subs if s.input.f not in _SEGMENT_WIDE]
        complete = all(
            precedes(n, c) or precedes(c, n)
            for c in changes
            for n in narrow
        )
        return [sorted(wide + mine, key=lambda s: s.id) for mine in per.values()], complete


def _subs(operations: Sequence[Operation], kinds: tuple[str, ...]) -> dict[int, list[ModelOp]]:
    """Operations as one sub-operation each, per key; failures of a read observe nothing and are left out."""
    parts: dict[int, list[ModelOp]] = {}
    n = 0
    for op in operations:
        if op.f not in kinds:
            raise HistoryFormatError(op.line, f"{op.f} is not an operation of this model ({', '.join(kinds)})")
        if op.f == "read" and op.outcome != "ok":
            continue
        assert not isinstance(op.value, dict) and not isinstance(op.output, dict)
        assert not isinstance(op.existing, dict)
        f = "fill" if op.f == "read" and kinds == _LOG_KINDS and op.output is None else op.f
        output = Output(outcome=op.outcome, value=op.output if op.f == "read" else None, error=op.error)
        parts.setdefault(op.key, []).append(
            ModelOp(id=n, source=op, offset=None, call=op.call, ret=op.ret,
                    input=Input(f=f, key=op.key, value=op.value, expected=op.existing if op.f == "cas" else None),
                    output=output)
        )
        n += 1
    return parts


_REGISTER_KINDS = ("read", "write", "cas")
_LOG_KINDS = ("append", "read")


@dataclass(frozen=True, slots=True)
class RegisterModel:
    """Jepsen's cas-register, one per key, overwritable (see the module rules); not write-once."""

    @property
    def name(self) -> str:
        return "register"

    @property
    def write_once(self) -> bool:
        return False

    def init(self) -> bytes | None:
        return None

    def step(self, state: bytes | None, input: Input, output: Output) -> tuple[bool, bytes | None]:
        f, outcome = input.f, output.outcome
        if f == "read":
            return outcome != "ok" or state == output.value, state
        if outcome == "fail":  # certainly no effect; a failed cas observed a different value
            return f != "cas" or state != input.expected, state
        if f == "write":
            return True, input.value
        if f == "cas":
            if state == input.expected:
                return True, input.value
            return outcome == "info", state
        return False, state

    def key_name(self, key: int) -> str:
        return str(key)

    def describe(self, input: Input, output: Output) -> str:
        key = self.key_name(input.key)
        if input.f == "cas":
            call = f"cas({key}, {show(input.expected)} -> {show(input.value)})"
        elif input.f == "write":
            call = f"write({key}, {show(input.value)})"
        else:
            call = f"read({key})"
        if output.outcome == "info":
            return f"{call} -> ? (indeterminate)"
        if output.outcome == "fail":
            return f"{call} -> fail"
        return f"{call} -> {show(output.value)}" if input.f == "read" else f"{call} -> ok"

    def describe_state(self, state: bytes | None) -> str:
        return show(state)

    def partition(self, operations: Sequence[Operation]) -> dict[int, list[ModelOp]]:
        return _subs(operations, _REGISTER_KINDS)

    def partition_label(self, key: int) -> str:
        return f"key {key}"


@dataclass(frozen=True, slots=True)
class Slot:
    """A log position that holds ``data``, or junk (``data`` None: a hole a reader filled)."""

    data: bytes | None


@dataclass(frozen=True, slots=True)
class LogModel:
    """An append-only log with positions, one part per position (see the module rules); write-once."""

    @property
    def name(self) -> str:
        return "log"

    @property
    def write_once(self) -> bool:
        return True

    def init(self) -> Slot | None:
        return None

    def step(self, state: Slot | None, input: Input, output: Output) -> tuple[bool, Slot | None]:
        f, outcome = input.f, output.outcome
        if outcome == "fail" or (outcome == "info" and f != "append"):
            return True, state  # no effect, or (a read that may have filled a hole) nothing observed
        if f == "read":
            return state is not None and state.data == output.value, state
        new = Slot(input.value if f == "append" else None)
        if state is None:
            return True, new
        return outcome == "info" or (f == "fill" and state == new), state

    def describe(self, input: Input, output: Output) -> str:
        call = f"append({show(input.value)}) at {input.key}" if input.f == "append" else f"read({input.key})"
        if output.outcome == "info":
            return f"{call} -> ? (indeterminate)"
        if output.outcome == "fail":
            return f"{call} -> fail"
        if input.f == "fill":
            return f"{call} -> junk"
        return f"{call} -> {show(output.value)}" if input.f == "read" else f"{call} -> ok"

    def describe_state(self, state: Slot | None) -> str:
        if state is None:
            return "unwritten"
        return "junk" if state.data is None else f"Appended({show(state.data)})"

    def partition(self, operations: Sequence[Operation]) -> dict[int, list[ModelOp]]:
        return _subs(operations, _LOG_KINDS)

    def partition_label(self, key: int) -> str:
        return f"position {key}"


_SEGMENT_WIDE = ("alloc", "trim", "batch_capture")
_GATES = (TRIMMED, UNALLOCATED)


def _fix_flags(state: SegmentState, input: Input, output: Output) -> SegmentState | None:
    """Unknown initial state: the flags (and metadata) an observation fixes, or None when it fixes nothing.

    ``Trimmed`` fixes trimmed; ``Unallocated`` fixes unallocated and not trimmed (unless a flag is known to
    say otherwise: the spec then rejects the step); a trim may take effect whatever the flags; an ``ok`` or
    ``AlreadyWritten`` outcome fixes not trimmed, and allocated (an ``ok`` alloc: it was not); a lost alloc
    naming the winner's metadata fixes the metadata. Indeterminate operations fix nothing."""
    f, outcome, error = input.f, output.outcome, output.error
    if outcome == "fail" and error == TRIMMED:
        return replace(state, trimmed=True) if state.trimmed is None else state
    if outcome == "fail" and error == UNALLOCATED:
        if state.allocated or state.trimmed:
            return state
        return replace(state, allocated=False, trimmed=False)
    if f == "trim":
        return state
    if outcome == "info" and (state.allocated is None or state.trimmed is None):
        return None
    if state.trimmed is None:
        state = replace(state, trimmed=False)
    if state.allocated is None:
        state = replace(state, allocated=f != "alloc" or outcome != "ok")
    lost = f == "alloc" and outcome == "fail" and state.allocated
    if lost and isinstance(state.metadata, _Unknown) and output.existing is not None:
        state = replace(state, metadata=output.existing)
    return state


_META_NOT_KNOWN = b""  # stands in for the metadata of a segment allocated before an unknown-state run


def _segment_spec_step(
    state: SegmentState, input: Input, output: Output, offset: int
) -> tuple[bool, SegmentState]:
    """One step of one segment, judged by the trusted ``WosSpec`` (layers/wos.py).

    The spec is run on a view of the segment that holds its flags, its metadata and the one register the
    operation touches (the spec's offsets are independent). The operation's output must be the spec's
    answer: ``ok`` for success, a ``fail`` naming the spec's error (``AlreadyWritten`` with, when given, the
    data or metadata the spec names); ``info`` is the run in which the operation took effect. A register not
    known yet (unknown initial state) is fixed by its first observation, as in ``WorModel``."""
    f, outcome, error = input.f, output.outcome, output.error
    meta = state.metadata if isinstance(state.metadata, bytes) else _META_NOT_KNOWN
    view = WosSpec(meta if state.allocated else None, bool(state.trimmed), ())
    if f == "trim":
        view.trim()
        return outcome != "fail", state if state.trimmed else replace(state, trimmed=True)
    if f == "alloc":
        assert input.value is not None, "an alloc carries its metadata"
        _, won = view.alloc(input.value)
        if outcome == "ok" or (outcome == "info" and won is True):
            ok = won is True
            return ok, replace(state, allocated=True, metadata=input.value) if ok else state
        if outcome == "info":
            return True, state
        if error == ALREADY_WRITTEN:
            named = output.existing is None or (isinstance(state.metadata, bytes) and output.existing == meta)
            return won is False and named, state
        return won == error, state
    gate = view.capture(offset)
    if gate is not None or f in ("capture", "batch_capture"):
        # the segment refuses every operation on it: only that refusal (or an info) is the spec's answer
        if outcome == "info":
            return True, state
        return outcome == "fail" and error == gate, state
    if outcome == "fail" and error in _GATES:
        return False, state
    before = state.register(offset)
    ok, reg = _wor_step(before, input, output)  # the spec's register (WosSpec.write/read use WorSpec)
    if not ok:
        return False, state
    return True, state.with_register(offset, before, reg)


MODEL_NAMES = ("auto", "wor", "segment")


def choose_model(
    ops: Sequence[Operation], wos_size: int = DEFAULT_WOS_SIZE, name: str = "auto", initial: str = "empty"
) -> WorModel | SegmentModel:
    """``segment`` when asked or when the history allocates or trims; ``wor`` otherwise. ``initial`` is
    ``empty`` (a fresh cluster) or ``unknown`` (the run found data; see the module docstring)."""
    if name not in MODEL_NAMES:
        raise UsageError(f"unknown model {name!r} (expected one of {', '.join(MODEL_NAMES)})")
    if initial not in INITIAL_STATES:
        raise UsageError(f"unknown initial state {initial!r} (expected one of {', '.join(INITIAL_STATES)})")
    if wos_size < 1:
        raise UsageError(f"wos size must be positive, got {wos_size}")
    if name == "segment" or (name == "auto" and any(op.f in ("alloc", "trim") for op in ops)):
        return SegmentModel(wos_size=wos_size, initial=initial)
    return WorModel(wos_size=wos_size, initial=initial)


# --- Random valid histories, for tests and benchmarks --------------------------------------------------


@dataclass(slots=True, kw_only=True)
class _SimOp:
    process: int
    f: str
    key: int
    value: bytes | dict[int, bytes] | None
    point: int
    type: str = "ok"
    error: str | None = None
    existing: bytes | dict[int, bytes] | None = None
    output: bytes | None = None
    results: dict[int, str] | None = None
    call: int = 0
    ret: int = 0
    complete: bool = True


def simulate(
    rng: random.Random,
    *,
    operations: int,
    addresses: int = 4,
    processes: int = 4,
    segments: int = 0,
    wos_size: int = DEFAULT_WOS_SIZE,
    values: int = 3,
    info_rate: float = 0.03,
    spacing: int = 1000,
) -> History:
    """A history that is linearizable by construction.

    Runs the sequential spec one operation at a time (operation ``i`` takes effect at time
    ``(i + 1) * spacing``) and then widens every call/return interval at random around that point, keeping
    each process sequential, so the points remain a witness linearization. With ``segments == 0`` the
    addresses ``0 .. addresses-1`` are plain registers (always allocated); otherwise they are spread over
    ``segments`` segments of ``wos_size`` with allocs and trims mixed in. ``info`` operations took effect
    with probability 1/2; a process that saw ``info`` is retired and replaced by a fresh process id.
    """
    alphabet = [b""] + [f"v{i}".encode() for i in range(max(values - 1, 1))]
    per_seg = max(1, min(wos_size, -(-addresses // max(segments, 1))))
    seg_count = max(segments, 1)
    if segments:
        addrs = [s * wos_size + o for s in range(seg_count) for o in range(per_seg)][:addresses]
    else:
        addrs = list(range(addresses))
    regs: dict[int, bytes] = {}
    allocated: dict[int, bytes] = {}  # segment -> the winner's metadata
    trimmed: set[int] = set()
    slots = list(range(processes))
    next_pid = processes
    ops: list[_SimOp] = []

    def gate(addr: int) -> str | None:
        if not segments:
            return None
        seg = addr // wos_size
        if seg in trimmed:
            return TRIMMED
        return None if seg in allocated else UNALLOCATED

    def write(addr: int, v: bytes, indeterminate: bool) -> tuple[str, bytes | None]:
        """Apply a write; returns (result, existing)."""
        g = gate(addr)
        if g is not None:
            return g, None
        if indeterminate:
            if rng.random() < 0.5 and addr not in regs:
                regs[addr] = v
            return INDETERMINATE, None
        if rng.random() < 0.08:
            return CAPTURE_STALE, None
        cur = regs.get(addr)
        if cur is None or cur == v:
            regs[addr] = v
            return "ok", None
        return ALREADY_WRITTEN, cur

    for i in range(operations):
        point = (i + 1) * spacing
        slot = rng.randrange(processes)
        pid = slots[slot]
        addr = rng.choice(addrs)
        seg = addr // wos_size
        info = rng.random() < info_rate
        r = rng.random()
        if segments and r < 0.07:
            meta = rng.choice(alphabet)
            op = _SimOp(process=pid, f="alloc", key=seg * wos_size, value=meta, point=point)
            if seg in trimmed:
                op.type, op.error = "fail", TRIMMED
            elif info:
                if seg not in allocated and rng.random() < 0.5:
                    allocated[seg] = meta
                op.type, op.error = "info", INDETERMINATE
            elif seg in allocated:
                op.type, op.error = "fail", ALREADY_WRITTEN
                op.existing = allocated[seg] if rng.random() < 0.7 else None
            else:
                allocated[seg] = meta
        elif segments and r < 0.085:
            op = _SimOp(process=pid, f="trim", key=seg * wos_size, value=None, point=point)
            if info:
                op.type, op.error = "info", INDETERMINATE
                if rng.random() < 0.5:
                    trimmed.add(seg)
            else:
                trimmed.add(seg)
        elif r < 0.13:
            f = rng.choice(("capture", "batch_capture"))
            key = addr if f == "capture" else seg * wos_size
            op = _SimOp(process=pid, f=f, key=key, value=None, point=point)
            g = gate(key)
            if info:
                op.type, op.error = "info", INDETERMINATE
            elif g is not None:
                op.type, op.error = "fail", g
        elif r < 0.22:
            base = seg * wos_size
            choices = [a - base for a in addrs if a // wos_size == seg]
            offsets = rng.sample(choices, rng.randint(1, min(3, len(choices))))
            data = {o: rng.choice(alphabet) for o in offsets}
            op = _SimOp(process=pid, f="batch_write", key=base, value=data, point=point)
            results: dict[int, str] = {}
            existing: dict[int, bytes] = {}
            for o in sorted(offsets):
                res, ex = write(base + o, data[o], rng.random() < info_rate)
                results[o] = res
                if ex is not None and rng.random() < 0.7:
                    existing[o] = ex
            if all(res == "ok" for res in results.values()):
                op.results = results if rng.random() < 0.5 else None
            else:
                op.type = "fail"
                op.error = next(res for res in results.values() if res != "ok")
                op.results, op.existing = results, existing or None
        elif r < 0.6:
            v = rng.choice(alphabet)
            op = _SimOp(process=pid, f="write", key=addr, value=v, point=point)
            res, ex = write(addr, v, info)
            if res == INDETERMINATE:
                op.type, op.error = "info", INDETERMINATE
            elif res != "ok":
                op.type, op.error = "fail", res
                op.existing = ex if rng.random() < 0.7 else None
            else:
                op.output = v
        else:
            op = _SimOp(process=pid, f="read", key=addr, value=None, point=point)
            g = gate(addr)
            if info:
                op.type, op.error = "info", INDETERMINATE
            elif g is not None:
                op.type, op.error = "fail", g
            else:
                op.output = regs.get(addr)
        if op.type == "info":
            op.complete = rng.random() < 0.5
            slots[slot] = next_pid
            next_pid += 1
        ops.append(op)
    return _widen(rng, ops, spacing * (processes + 1))


def _widen(rng: random.Random, ops: list[_SimOp], tail: int) -> History:
    by_process: dict[int, list[_SimOp]] = {}
    for op in ops:
        by_process.setdefault(op.process, []).append(op)
    for mine in by_process.values():
        lo = 0
        for k, op in enumerate(mine):
            hi = mine[k + 1].point - 1 if k + 1 < len(mine) else op.point + tail
            op.call = rng.randint(lo, op.point)
            op.ret = rng.randint(op.point, hi)
            lo = op.ret + 1
    timed: list[tuple[int, int, int, Event]] = []
    for seq, op in enumerate(ops):
        timed.append((op.call, 0, seq, Event(process=op.process, type="invoke", f=op.f, key=op.key,
                                             value=op.value, time=op.call)))
        if op.complete:
            timed.append((op.ret, 1, seq, Event(process=op.process, type=op.type, f=op.f, key=op.key,
                                                value=op.output, time=op.ret, error=op.error,
                                                existing=op.existing, results=op.results)))
    timed.sort(key=lambda t: t[:3])
    return History(t[3] for t in timed)
