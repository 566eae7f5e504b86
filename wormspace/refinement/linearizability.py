"""Linearizability checking of histories: the Wing-Gong-Lowe algorithm, per partition.

Theory of operation. A history is linearizable when every operation can be given one point between its
call and its return such that running the operations in point order through the sequential model gives the
observed outputs. Linearizability is local, so the model's ``partition`` splits the history (per address
for the WOR model, per segment for the segment model) and each part is checked on its own; the history is
linearizable iff every part is.

Per part (Wing & Gong, with Lowe's memoisation, as in Porcupine):

1. Each operation contributes a call entry and a return entry (``info`` operations return at +infinity);
   entries are sorted by time, and at equal times by the lines of the history (``models.precedes``: events
   are written in the order they happened, so a return on an earlier line than a call at the same time
   came first; when the lines are not known, calls go before returns and touching intervals count as
   concurrent), into a doubly linked list.
2. Walk the list. The call entries before the first return entry are the candidates to take effect next.
   To try one, step the model: if it accepts, and the pair (set of linearized operations as a bitset,
   model state) has not been met before, record the pair, lift the operation's two entries out of the
   list, push it on a stack and restart from the head. The candidates are tried in three rounds: (0)
   operations that returned and whose step leaves the state unchanged, (1) operations that returned and
   change it, (2) indeterminate operations.
3. Reaching the first return entry after round 2 means some operation must have taken effect already and
   could not: pop the last linearized operation, put its entries back, and go on after it in its round.
   An empty stack means no order works: ILLEGAL. When every operation that returned is linearized, the
   rest are indeterminate and go at the end in any order: OK, and the stack is the witness.
4. Every model step counts against the part's ``budget``; when it runs out the part is UNKNOWN -- the
   check never passes a part it did not finish.

The memo is what keeps this practical: two search paths that have linearized the same set of operations
and reached the same state have the same future, so the second is cut. Three rules cut further without
changing any verdict; (a) and (b) rest on the model rules that an operation with unknown output is accepted
in every state and that steps are deterministic.

(a) Indeterminate operations can always wait: placed last, each is accepted, and its effect is seen by
    nobody -- the same as never taking effect. So step 3 stops as soon as only they are left.
(b) An indeterminate operation is never placed where its step leaves the state unchanged: any order doing
    so stays legal with the operation moved to the end instead.
(c) When a candidate's step succeeds and leaves the state unchanged (a read, an observed failure, a
    rewrite of the same value), taking it first is as good as anything: any legal continuation can be
    rearranged to start with it, since the states along it stay the same and, being a candidate, it
    already follows in real time everything it must follow. Hence round 0 comes first, takes the first
    such candidate, and when the search backtracks over it (or meets its result in the memo) that point
    is finished: the search backtracks further. "The states along it stay the same" needs the operation
    to leave unchanged every state the continuation passes through, not just this one. That holds for
    reads and failures in every model (they never change a state), and for every operation of a
    *write-once* model (``model.write_once``: a register once written keeps its value, so a step that
    changes nothing now changes nothing later). In a model with overwrites it does not: ``write(1)``
    leaves ``1`` alone now, but turns a later ``2`` back into ``1``, and taking it first can lose the only
    legal order. So there, (c) applies to reads and failures only.

A model may also offer ``projections`` of a part (the segment model: one per offset, with the
segment-wide operations in each). Each projection keeps every operation that affects the state its
operations see, so an ILLEGAL projection makes the part ILLEGAL (and gives the shrinker a small start);
when the model says they are complete, OK projections are merged into one witness order, which is
replayed through the model before it is believed. Otherwise the whole part is searched.

For an ILLEGAL history the smallest failing part is shrunk greedily: operations are dropped while the
rest stays ILLEGAL -- first reads and failures (in halves, quarters, ..., singles; dropping an operation
that changes no state can never make a legal history illegal), then any operation, one at a time, to a
fixpoint, refusing a drop that would leave another operation without the effect it relied on (so the
shrunk history stays illegal for a reason the original had). The explanation names the longest legal
prefix the search found and the operations that could not come next. Shrinking costs one search per tried
drop, which grows fast with the part's size, so it has a time budget (``shrink_seconds``, default
``DEFAULT_SHRINK_SECONDS``): when it runs out, the smallest illegal part reached so far is reported, marked
``shrunk="partial"`` (still illegal, not necessarily minimal); ``shrink=False`` skips it (``"no"``). The
verdict never depends on shrinking: ``on_verdict`` is told it before shrinking starts.

The verdicts say what was checked, for these histories and this model; they prove nothing beyond them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from wormspace.errors import UsageError
from wormspace.history import Event, History, Operation, operations
from wormspace.refinement.models import DEFAULT_WOS_SIZE, Model, ModelOp, Output, choose_model

OK = "OK"
ILLEGAL = "ILLEGAL"
UNKNOWN = "UNKNOWN"
VERDICTS = (OK, ILLEGAL, UNKNOWN)
DEFAULT_BUDGET = 1_000_000  # model steps per partition
DEFAULT_SHRINK_SECONDS = 10.0  # time budget of shrinking an illegal part (see the module docstring)
SHRUNK = ("minimal", "partial", "no")  # Minimal.shrunk: fully shrunk, stopped by the time budget, not shrunk

S = TypeVar("S")


@dataclass(frozen=True, slots=True, kw_only=True)
class PartitionResult:
    """The verdict on one part; ``order`` is the witness linearization when OK."""

    key: int
    label: str
    verdict: str
    operations: int
    steps: int
    order: tuple[ModelOp, ...] | None = None

    @property
    def linearization(self) -> tuple[int, ...] | None:
        """Ids of the operations in linearization order (a batch appears once per address it touches)."""
        return None if self.order is None else tuple(sub.source.id for sub in self.order)


@dataclass(frozen=True, slots=True, kw_only=True)
class Minimal:
    """A small illegal sub-history of one part, with a re-checkable ``history`` and an explanation.

    ``shrunk``: ``minimal`` (shrunk to a fixpoint), ``partial`` (the time budget ran out first) or ``no``."""

    partition: int
    label: str
    operations: tuple[ModelOp, ...]
    descriptions: tuple[str, ...]
    explanation: str
    history: History
    shrunk: str = "minimal"

    def lines(self) -> list[str]:
        """One line per operation: id, process, interval and description."""
        return [
            f"op {sub.source.id} process {sub.process} [{sub.call}, {'∞' if sub.ret is None else sub.ret}]: {d}"
            for sub, d in zip(self.operations, self.descriptions, strict=True)
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """The verdict on a history: ILLEGAL if any part is, else UNKNOWN if any part is, else OK."""

    verdict: str
    model: str
    events: int
    operations: int
    steps: int
    partitions: tuple[PartitionResult, ...]
    minimal: Minimal | None = None
    initial: str = "empty"

    @property
    def linearization(self) -> dict[int, tuple[int, ...]]:
        """Per OK part: operation ids in a witness linearization order."""
        return {p.key: lin for p in self.partitions if (lin := p.linearization) is not None}

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (the ``wormspace check --json`` object)."""
        return {
            "verdict": self.verdict,
            "model": self.model,
            "initial": self.initial,
            "events": self.events,
            "operations": self.operations,
            "steps": self.steps,
            "partitions": [
                {
                    "key": p.key,
                    "label": p.label,
                    "verdict": p.verdict,
                    "operations": p.operations,
                    "steps": p.steps,
                    "linearization": list(lin) if (lin := p.linearization) is not None else None,
                }
                for p in self.partitions
            ],
            "minimal": None
            if self.minimal is None
            else {
                "partition": self.minimal.partition,
                "label": self.minimal.label,
                "shrunk": self.minimal.shrunk,
                "operations": [
                    {"op": sub.source.id, "process": sub.process, "call": sub.call, "ret": sub.ret,
                     "description": d}
                    for sub, d in zip(self.minimal.operations, self.minimal.descriptions, strict=True)
                ],
                "explanation": self.minimal.explanation,
                "events": [e.to_json() for e in self.minimal.history],
            },
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class _Search:
    verdict: str
    steps: int
    order: tuple[int, ...] | None  # indices into the part's operations, when OK
    best: tuple[int, ...] = ()  # the longest linearized prefix met (explain mode)
    best_state: object = None


def _search(
    model: Model[S], ops: Sequence[ModelOp], budget: int, *, explain: bool = False, reduce: bool = True
) -> _Search:
    """Wing-Gong-Lowe on one part (see the module docstring, steps 1-4).

    ``reduce=False`` switches reductions (b) and (c) off: the plain search with the memo, which the tests
    use as the reference the reduced search must agree with.
    """
    n = len(ops)
    entries = sorted(  # real-time order: times, then lines (models.precedes); at a tie, calls first
        [(*op.call_at, 0, i) for i, op in enumerate(ops)] + [(*op.ret_at, 1, i) for i, op in enumerate(ops)]
    )
    size = 2 * n + 2
    head, tail = 0, size - 1
    nxt = list(range(1, size + 1))
    prv = list(range(-1, size - 1))
    is_call = [False] * size
    opi = [0] * size
    match = [0] * size  # call node -> return node
    call_node = [0] * n
    for k, (_t, _line, kind, i) in enumerate(entries):
        node = k + 1
        opi[node] = i
        if kind == 0:
            is_call[node] = True
            call_node[i] = node
        else:
            match[call_node[i]] = node
    inputs = [op.input for op in ops]
    outputs = [op.output for op in ops]
    deferred = [op.ret is None for op in ops]  # indeterminate: tried after the others (step 2)
    # Reduction (c) needs an operation that leaves every state it is accepted in unchanged when it leaves
    # this one unchanged: every operation of a write-once model, else only reads and failures.
    write_once = reduce and bool(getattr(model, "write_once", False))
    settles = [reduce and (write_once or _effect_free(op)) for op in ops]
    bits = [1 << i for i in range(n)]
    step = model.step
    state: S = model.init()
    linearized = 0
    seen: set[tuple[int, S]] = set()
    stack: list[tuple[int, S, int]] = []  # (call node, state before, round it was taken in)
    steps = 0
    best: tuple[int, ...] = ()
    best_state: object = state
    node = nxt[head]
    # Candidates are tried in three rounds (step 2): 0 -- operations that returned, whose step leaves the
    # state unchanged; 1 -- operations that returned, whose step changes it; 2 -- indeterminate ones.
    round_ = 0
    definite = n - sum(deferred)  # operations that returned and are not linearized yet
    while definite:
        if is_call[node]:
            i = opi[node]
            if deferred[i] != (round_ == 2):
                node = nxt[node]
                continue
            steps += 1
            if steps > budget:
                return _Search(verdict=UNKNOWN, steps=steps - 1, order=None, best=best, best_state=best_state)
            ok, new_state = step(state, inputs[i], outputs[i])
            if ok and (new_state is state or new_state == state) != (round_ == 0) and (reduce or round_ != 2):
                ok = False  # not this round's kind (an unchanged state in round 2: reduction b)
            if ok:
                now = linearized | bits[i]
                memo = (now, new_state)
                if memo not in seen:
                    seen.add(memo)
                    stack.append((node, state, round_))
                    state, linearized = new_state, now
                    ret = match[node]  # lift the call and return entries out of the list
                    nxt[prv[node]] = nxt[node]
                    prv[nxt[node]] = prv[node]
                    nxt[prv[ret]] = nxt[ret]
                    prv[nxt[ret]] = prv[ret]
                    if explain and len(stack) > len(best):
                        best, best_state = tuple(opi[c] for c, _, _ in stack), state
                    definite -= round_ != 2
                    node, round_ = nxt[head], 0
                    continue
                if round_ == 0 and settles[i]:
                    node = tail  # reduction c: this point was explored through that step already
                    round_ = 2
                    continue
            node = nxt[node]
        elif round_ < 2:
            node, round_ = nxt[head], round_ + 1  # the same window again, for the next round
        else:
            while True:
                if not stack:
                    return _Search(verdict=ILLEGAL, steps=steps, order=None, best=best, best_state=best_state)
                node, state, round_ = stack.pop()
                i = opi[node]
                linearized ^= bits[i]
                definite += not deferred[i]
                ret = match[node]  # put the entries back, in reverse order of lifting
                prv[nxt[ret]] = ret
                nxt[prv[ret]] = ret
                prv[nxt[node]] = node
                nxt[prv[node]] = node
                if round_ != 0 or not settles[i]:
                    break  # else nothing else is worth trying at that point either (reduction c)
            node = nxt[node]
    rest = []  # indeterminate operations left over: each can take effect at the end, or never
    node = nxt[head]
    while node != tail:
        if is_call[node]:
            rest.append(opi[node])
        node = nxt[node]
    order = tuple(opi[c] for c, _, _ in stack) + tuple(rest)
    return _Search(verdict=OK, steps=steps, order=order, best=order, best_state=state)


def _effect_free(sub: ModelOp) -> bool:
    """Reads and failures observe the state but never change it."""
    return sub.input.f == "read" or sub.output.outcome == "fail"


def _as_info(sub: ModelOp) -> ModelOp:
    return replace(sub, ret=None, output=Output(outcome="info"))


class _OutOfTime(Exception):
    pass


def _shrink(
    model: Model[S], ops: list[ModelOp], budget: int, seconds: float | None = None
) -> tuple[list[ModelOp], bool]:
    """Drop operations of an ILLEGAL part while it stays ILLEGAL (see the module docstring).

    Returns the smallest illegal part reached and whether shrinking finished (False: ``seconds`` ran out
    first; the part returned is still illegal, every accepted drop having been checked)."""
    deadline = None if seconds is None else time.monotonic() + seconds
    reached = [ops]
    try:
        _shrink_phases(model, ops, budget, deadline, reached)
    except _OutOfTime:
        return reached[0], False
    return reached[0], True


def _shrink_phases(
    model: Model[S],
    ops: list[ModelOp],
    budget: int,
    deadline: float | None,
    reached: list[list[ModelOp]],
) -> None:
    """The two phases of ``_shrink``; ``reached[0]`` is kept at the smallest illegal part so far. Raises
    ``_OutOfTime`` past ``deadline`` (``time.monotonic``)."""

    def search(candidate: list[ModelOp], steps: int) -> str:
        if deadline is not None and time.monotonic() > deadline:
            raise _OutOfTime
        return _search(model, candidate, steps).verdict

    def illegal(candidate: list[ModelOp]) -> bool:
        return bool(candidate) and search(candidate, budget) == ILLEGAL

    # Phase 1: effect-free operations, in halves, quarters, ..., singles. Dropping one can never make a
    # legal history illegal, so whatever stays illegal does so for a reason among the remaining ones.
    current = ops
    chunk = max(1, len(current) // 2)
    while True:
        i = 0
        while i < len(current):
            dropped = {sub.id for sub in current[i : i + chunk] if _effect_free(sub)}
            candidate = [sub for sub in current if sub.id not in dropped] if dropped else current
            if dropped and illegal(candidate):
                current = reached[0] = candidate
            else:
                i += chunk
        if chunk == 1:
            break
        chunk //= 2

    # Phase 2: any operation, one at a time, to a fixpoint. Dropping an operation with an effect could
    # make another one illegal merely for want of the effect it relied on (a read of a value nobody wrote
    # any more); such a drop is refused: each remaining operation that could be satisfied alone, with
    # every other operation as an indeterminate one, must still be.
    sat_budget = min(budget, 50_000)

    def satisfiable(sub: ModelOp, among: list[ModelOp]) -> bool:
        others = [_as_info(o) for o in among if o.id != sub.id and not _effect_free(o)]
        return search([sub, *others], sat_budget) != ILLEGAL

    before: dict[int, bool] = {}  # satisfiable(o, current), computed when first needed

    def satisfiable_before(o: ModelOp) -> bool:
        if o.id not in before:
            before[o.id] = satisfiable(o, current)
        return before[o.id]

    changed = True
    while changed:
        changed = False
        for sub in list(current):
            candidate = [o for o in current if o.id != sub.id]
            if not illegal(candidate):
                continue
            if not _effect_free(sub) and any(
                satisfiable_before(o) and not satisfiable(o, candidate) for o in candidate
            ):
                continue
            current = reached[0] = candidate
            changed = True
            before.clear()


def _explain(model: Model[S], label: str, ops: Sequence[ModelOp], budget: int) -> str:
    found = _search(model, ops, budget, explain=True)
    if found.verdict != ILLEGAL:
        return f"{label}: the search gave {found.verdict} on re-check"
    described = [model.describe(op.input, op.output) for op in ops]
    state: Any = found.best_state
    done = set(found.best)
    rest = sorted(
        [(*op.call_at, 0, i) for i, op in enumerate(ops) if i not in done]
        + [(*op.ret_at, 1, i) for i, op in enumerate(ops) if i not in done]
    )
    candidates: list[int] = []
    blocker: int | None = None
    for _t, _line, kind, i in rest:
        if kind == 1:
            blocker = i
            break
        candidates.append(i)
    state_text = model.describe_state(state)
    if found.best:
        prefix = "; ".join(described[i] for i in found.best)
        text = f"Longest legal prefix found: {prefix}, leaving the state {state_text}."
    else:
        text = f"The initial state is {state_text}."

    def why(i: int) -> str:
        ok, _ = model.step(state, ops[i].input, ops[i].output)
        return "possible, but every continuation fails later" if ok else "not possible in that state"

    lines = [f"No order of these {len(ops)} operations on {label} is a legal sequential run.", text]
    if blocker is not None:
        lines.append(f"Next, {described[blocker]} must take effect before it returns: {why(blocker)}")
        others = [f"{described[i]} ({why(i)})" for i in candidates if i != blocker]
        if others:
            lines[-1] += "; nor can another pending operation go first: " + "; ".join(others)
        lines[-1] += "."
    return " ".join(lines)


def sub_history(subs: Iterable[ModelOp]) -> History:
    """The events of these sub-operations, a batch restricted to the offsets present, in original order."""
    by_source: dict[int, tuple[Operation, set[int]]] = {}
    for sub in subs:
        _, offsets = by_source.setdefault(sub.source.id, (sub.source, set()))
        if sub.offset is not None:
            offsets.add(sub.offset)
    timed: list[tuple[int, Event]] = []
    for op, offsets in by_source.values():
        timed.extend(_op_events(op, offsets))
    timed.sort(key=lambda t: t[0])
    return History(e for _, e in timed)


def _restrict(v: bytes | dict[int, bytes] | None, offsets: set[int]) -> bytes | dict[int, bytes] | None:
    if isinstance(v, dict):
        kept = {o: b for o, b in v.items() if o in offsets}
        return kept or None
    return v


def _op_events(op: Operation, offsets: set[int]) -> list[tuple[int, Event]]:
    batch = op.f == "batch_write"
    out = [
        (
            2 * op.line,
            Event(
                process=op.process,
                type="invoke",
                f=op.f,
                key=op.key,
                value=_restrict(op.value, offsets) if batch else op.value,
                time=op.call,
            ),
        )
    ]
    if op.ret_line is None or op.end is None:
        return out
    type_, error = op.outcome, op.error
    results = {o: r for o, r in op.results.items() if o in offsets} if op.results is not None else None
    existing = _restrict(op.existing, offsets) if batch else op.existing
    if results is not None:
        if all(r == "ok" for r in results.values()):
            type_, error, existing = "ok", None, None
        elif type_ == "ok":
            type_ = "fail"
        if type_ != "ok":
            error = next(r for _o, r in sorted(results.items()) if r != "ok")
    if type_ == "ok":
        error = None
    out.append(
        (
            2 * op.ret_line + 1,
            Event(
                process=op.process,
                type=type_,
                f=op.f,
                key=op.key,
                value=_restrict(op.output, offsets) if batch else op.output,
                time=op.end,
                error=error,
                existing=existing,
                results=results,
            ),
        )
    )
    return out


def _check_part(
    model: Model[S], subs: list[ModelOp], budget: int
) -> tuple[str, int, tuple[ModelOp, ...] | None, list[ModelOp] | None]:
    """(verdict, steps, witness order, the operations shown illegal) for one part.

    A model may offer ``projections(subs) -> (projections, complete)``: sub-histories that each keep every
    operation affecting the state of the ones kept, so an ILLEGAL projection makes the part ILLEGAL; when
    ``complete``, OK projections combine into a witness for the whole part (checked by replay). Otherwise,
    and when a combined witness does not replay, the whole part is searched.
    """
    steps = 0
    projecting = getattr(model, "projections", None)
    if projecting is not None:
        projections, complete = projecting(subs)
        if len(projections) > 1:
            orders: list[tuple[ModelOp, ...]] = []
            for projection in sorted(projections, key=len):
                found = _search(model, projection, budget)
                steps += found.steps
                if found.verdict == ILLEGAL:
                    return ILLEGAL, steps, None, projection
                if found.order is not None:
                    orders.append(tuple(projection[i] for i in found.order))
            if complete and len(orders) == len(projections):
                merged = _merge(orders)
                if _replays(model, merged):
                    return OK, steps, merged, None
    found = _search(model, subs, budget)
    order = None if found.order is None else tuple(subs[i] for i in found.order)
    return found.verdict, steps + found.steps, order, subs if found.verdict == ILLEGAL else None


def _points(order: Sequence[ModelOp]) -> list[int]:
    """The earliest linearization point of each operation of a witness order."""
    points: list[int] = []
    point: int | None = None
    for sub in order:
        point = sub.call if point is None else max(point, sub.call)
        points.append(point)
    return points


def _merge(orders: list[tuple[ModelOp, ...]]) -> tuple[ModelOp, ...]:
    """Witnesses of projections merged by their points; an operation in several keeps its first place."""
    placed: dict[int, tuple[int, int, int, ModelOp]] = {}
    for k, order in enumerate(orders):
        for position, (sub, point) in enumerate(zip(order, _points(order), strict=True)):
            placed.setdefault(sub.id, (point, k, position, sub))
    return tuple(t[3] for t in sorted(placed.values(), key=lambda t: t[:3]))


def _replays(model: Model[S], order: Sequence[ModelOp]) -> bool:
    """Is ``order`` a witness: accepted step by step, and never against real time?"""
    state = model.init()
    latest_call: tuple[int, float] | None = None
    for sub in order:
        if latest_call is not None and sub.ret_at < latest_call:
            return False  # sub returned before an operation placed ahead of it was called
        latest_call = sub.call_at if latest_call is None else max(latest_call, sub.call_at)
        ok, state = model.step(state, sub.input, sub.output)
        if not ok:
            return False
    return True


def check_history(
    events: Iterable[Event],
    model: Model[Any] | None = None,
    budget: int = DEFAULT_BUDGET,
    *,
    wos_size: int = DEFAULT_WOS_SIZE,
    shrink: bool = True,
    shrink_seconds: float | None = DEFAULT_SHRINK_SECONDS,
    on_verdict: Callable[[str], None] | None = None,
) -> CheckResult:
    """Check ``events`` against ``model`` (default: chosen by ``choose_model``), ``budget`` steps per part.

    Raises ``HistoryFormatError`` when the events break the history rules. ``shrink``, ``shrink_seconds``
    and ``on_verdict``: as in ``check_operations``.
    """
    history = events if isinstance(events, History) else History(events)
    ops = operations(history)
    m: Model[Any] = model if model is not None else choose_model(ops, wos_size, initial=history.initial)
    return check_operations(ops, m, budget, events=len(history), shrink=shrink, shrink_seconds=shrink_seconds,
                            on_verdict=on_verdict)


def check_operations(
    ops: Sequence[Operation],
    model: Model[Any],
    budget: int = DEFAULT_BUDGET,
    *,
    events: int | None = None,
    shrink: bool = True,
    history_of: Callable[[Iterable[ModelOp]], History] | None = None,
    shrink_seconds: float | None = DEFAULT_SHRINK_SECONDS,
    on_verdict: Callable[[str], None] | None = None,
) -> CheckResult:
    """Check paired operations against ``model``: what ``check_history`` does after pairing the events.

    ``history_of`` renders a minimal illegal part as events (default ``sub_history``, for WormSpace
    operations, from the model's initial state); ``events`` is the count reported (default two per operation).
    An ILLEGAL part is shrunk (``shrink``) within ``shrink_seconds`` (None: no limit); ``on_verdict(verdict)``
    is called once the verdict is known, before shrinking starts.
    """
    if budget < 1:
        raise UsageError(f"budget must be at least 1 step, got {budget}")
    m = model
    initial = getattr(m, "initial", "empty")
    parts = m.partition(ops)
    results: list[PartitionResult] = []
    total = 0
    failing: dict[int, list[ModelOp]] = {}
    for key in sorted(parts):
        subs = parts[key]
        verdict, steps, order, culprit = _check_part(m, subs, budget)
        total += steps
        if culprit is not None:
            failing[key] = culprit
        results.append(
            PartitionResult(
                key=key,
                label=m.partition_label(key),
                verdict=verdict,
                operations=len(subs),
                steps=steps,
                order=order,
            )
        )
    verdicts = {r.verdict for r in results}
    verdict = ILLEGAL if ILLEGAL in verdicts else UNKNOWN if UNKNOWN in verdicts else OK
    minimal = None
    if on_verdict is not None:
        on_verdict(verdict)
    if verdict == ILLEGAL:
        worst = min((r for r in results if r.verdict == ILLEGAL), key=lambda r: (len(failing[r.key]), r.key))
        subs = failing[worst.key]
        small, finished = _shrink(m, subs, budget, shrink_seconds) if shrink else (subs, False)
        minimal = Minimal(
            partition=worst.key,
            label=worst.label,
            operations=tuple(small),
            descriptions=tuple(_describe_sub(m, sub) for sub in small),
            explanation=_explain(m, worst.label, small, budget),
            history=history_of(small) if history_of is not None else History(sub_history(small), initial=initial),
            shrunk="no" if not shrink else "minimal" if finished else "partial",
        )
    return CheckResult(
        verdict=verdict,
        model=m.name,
        events=2 * len(ops) if events is None else events,
        operations=len(ops),
        steps=total,
        partitions=tuple(results),
        minimal=minimal,
        initial=initial,
    )


def _describe_sub(model: Model[Any], sub: ModelOp) -> str:
    via = f" (offset {sub.offset} of batch_write op {sub.source.id})" if sub.offset is not None else ""
    return model.describe(sub.input, sub.output) + via
