"""An independent checker of write-once register histories, written from the history format alone.

It shares no code with ``wormspace.history`` or ``wormspace.refinement``: it parses the JSON lines itself,
models one write-once register per address (Knossos' ``cas-register`` reduced to the WOR spec of DESIGN
§1) and searches for a linearization per address by depth-first search over (linearized set, register
value), Wing and Gong's algorithm with Lowe's memo. It judges the WOR model only (``--model wor``):
captures, allocs and trims are not modelled, and ``Trimmed``, ``Unallocated`` and ``CaptureStale`` failures
observe nothing. Used to compare verdicts with ``wormspace check`` on many histories.

Per address:

* a ``write`` of ``v`` that returned ``ok`` takes effect once between its invoke and its completion: an
  EMPTY register becomes ``v``; a register holding ``v`` stays; any other value makes the order illegal;
* a ``write`` that failed ``AlreadyWritten`` observes, once in its interval, a register holding data other
  than ``v`` (exactly ``existing`` when given);
* an indeterminate write (``info``, or never completed) may take effect once anywhere after its invoke, or
  never;
* an ``ok`` read observes its value (``null``: EMPTY);
* a ``batch_write`` is one write per offset (``key + offset``) whose outcome is its entry in ``results``
  (``ok`` returns at the completion, ``Indeterminate`` is indeterminate), or without ``results`` the
  completion's own type and error.

Real-time order: an operation precedes another when its completion's ``(time, line)`` is below the other's
invoke's ``(time, line)`` (at equal times the line order decides, as the format says).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

OK, ILLEGAL, UNKNOWN = "OK", "ILLEGAL", "UNKNOWN"
_ANY = object()  # an AlreadyWritten without ``existing``: some value other than the one written


@dataclass(frozen=True)
class RegOp:
    kind: str  # "write" or "read"
    value: bytes | None  # the data written, or the data read (None: EMPTY)
    call: tuple[int, int]
    ret: tuple[int, int] | None  # None: indeterminate
    observes: object = None  # for a failed write: the data held (bytes) or _ANY; None: not a failure


def _b64(v: object) -> bytes | None:
    if v is None:
        return None
    assert isinstance(v, str)
    return base64.b64decode(v, validate=True)


def register_ops(text: str) -> dict[int, list[RegOp]]:
    """The register operations of a history, per address."""
    by_addr: dict[int, list[RegOp]] = {}
    open_: dict[int, tuple[dict[str, object], tuple[int, int]]] = {}
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    if lines and "initial" in lines[0]:
        assert lines[0]["initial"] == "empty", "only histories from an empty space"
        lines = lines[1:]
    for n, e in enumerate(lines):
        at = (int(e["time"]), n)
        if e["type"] == "invoke":
            open_[e["process"]] = (e, at)
            continue
        inv, call = open_.pop(e["process"])
        _complete(by_addr, inv, call, e, at)
    for inv, call in open_.values():
        _complete(by_addr, inv, call, None, None)
    return by_addr


def _complete(by_addr: dict[int, list[RegOp]], inv: dict[str, object], call: tuple[int, int],
              done: dict[str, object] | None, at: tuple[int, int] | None) -> None:
    f, key = inv["f"], inv["key"]
    assert isinstance(key, int)
    kind = "info" if done is None else str(done["type"])
    if f == "read":
        if kind == "ok":
            assert done is not None
            by_addr.setdefault(key, []).append(RegOp("read", _b64(done["value"]), call, at))
        return
    if f == "write":
        existing = None if done is None else done.get("existing")
        error = None if done is None else done.get("error")
        _write(by_addr, key, _b64(inv["value"]), call, at, kind, error, existing)
        return
    if f == "batch_write":
        values = inv["value"]
        assert isinstance(values, dict)
        results = None if done is None else done.get("results")
        existing_map = (None if done is None else done.get("existing")) or {}
        assert isinstance(existing_map, dict)
        for off, data in values.items():
            if isinstance(results, dict):
                r = results[off]
                k, err = ("ok", None) if r == "ok" else ("info", r) if r == "Indeterminate" else ("fail", r)
            else:
                k, err = kind, None if done is None else done.get("error")
            _write(by_addr, key + int(off), _b64(data), call, at, k, err, existing_map.get(off))


def _write(by_addr: dict[int, list[RegOp]], addr: int, value: bytes | None, call: tuple[int, int],
           at: tuple[int, int] | None, kind: str, error: object, existing: object) -> None:
    ops = by_addr.setdefault(addr, [])
    if kind == "ok":
        ops.append(RegOp("write", value, call, at))
    elif kind == "info":
        ops.append(RegOp("write", value, call, None))
    elif error == "AlreadyWritten":
        held = _ANY if existing is None else _b64(existing)
        ops.append(RegOp("write", value, call, at, observes=held))
    # any other failure: certainly no effect, and nothing observed


class Timed(Protocol):
    """An operation of one register: its invoke's and completion's ``(time, line)`` (``ret`` None:
    indeterminate)."""

    @property
    def call(self) -> tuple[int, int]: ...

    @property
    def ret(self) -> tuple[int, int] | None: ...


Op = TypeVar("Op", bound=Timed)
Step = Callable[[Op, "bytes | None"], "tuple[bool, bytes | None]"]


def search(ops: Sequence[Op], step: Step[Op], budget: int) -> str:
    """OK, ILLEGAL or UNKNOWN (more than ``budget`` steps) for one register that starts absent (None):
    Wing and Gong's search with Lowe's memo for an order of ``ops`` that respects real time, in which every
    completed operation takes effect and ``step(op, state) -> (allowed, next state)`` allows each."""
    required = frozenset(i for i, o in enumerate(ops) if o.ret is not None)
    blockers = [frozenset(j for j in required if j != i and (ops[j].ret or o.call) < o.call)
                for i, o in enumerate(ops)]
    seen: set[tuple[frozenset[int], bytes | None]] = set()
    steps = 0

    def dfs(done: frozenset[int], state: bytes | None) -> bool:
        nonlocal steps
        if required <= done:
            return True
        if (done, state) in seen:
            return False
        seen.add((done, state))
        for i, o in enumerate(ops):
            if i in done or not blockers[i] <= done:
                continue
            steps += 1
            if steps > budget:
                raise TimeoutError
            ok, nxt = step(o, state)
            if ok and dfs(done | {i}, nxt):
                return True
        return False

    try:
        return OK if dfs(frozenset(), None) else ILLEGAL
    except TimeoutError:
        return UNKNOWN


def worst(verdicts: Iterable[str]) -> str:
    """The verdict of a whole history from its registers': ILLEGAL if any is, else UNKNOWN if any, else OK."""
    found = set(verdicts)
    return ILLEGAL if ILLEGAL in found else UNKNOWN if UNKNOWN in found else OK


def linearizable(ops: list[RegOp], budget: int = 200_000) -> str:
    """OK, ILLEGAL or UNKNOWN (the search took more than ``budget`` steps) for one register."""

    def step(o: RegOp, state: bytes | None) -> tuple[bool, bytes | None]:
        if o.kind == "read":
            return o.value == state, state
        if o.observes is not None:  # a failed write: the register held other data
            held = state is not None and state != o.value
            return held and (o.observes is _ANY or o.observes == state), state
        if state is None or state == o.value:
            return True, o.value
        return o.ret is None, state  # an indeterminate write that lost: as if never taken

    return search(ops, step, budget)


def check_text(text: str, budget: int = 200_000) -> str:
    """The verdict of a whole history: ILLEGAL if any register is, else UNKNOWN if any ran out, else OK."""
    return worst(linearizable(ops, budget) for ops in register_ops(text).values())


def processes_are_threads(events: Iterable[dict[str, object]]) -> None:
    """Jepsen's reading of ``process`` (Knossos, Elle): one operation open at a time, and no event after an
    operation that ended ``info`` (the process crashed). Raises ``AssertionError`` naming the event."""
    open_: set[object] = set()
    crashed: set[object] = set()
    for e in events:
        p = e["process"]
        assert p not in crashed, f"process {p} acts after its operation ended info: {e}"
        if e["type"] == "invoke":
            assert p not in open_, f"process {p} invokes with an operation open: {e}"
            open_.add(p)
        else:
            assert p in open_, f"a completion of process {p} without its invoke: {e}"
            open_.remove(p)
            if e["type"] == "info":
                crashed.add(p)
