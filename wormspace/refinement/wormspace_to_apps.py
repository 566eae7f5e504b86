"""Refinement checks WormSpace -> apps: WormLog, WormPaxos and WormKV against their sequential specs.

Rule 1. The specs are the apps' own trusted specs (``LogSpec``, ``SmrSpec``, ``KvSpec`` in
        ``wormspace/apps/``); this module only adapts them into checker models and lockstep references.
Rule 2. Every verdict is "checked (bounded)": for these clients, seeds, fault rates and budgets; UNKNOWN
        (a budget ran out) is never a pass.

Checks:

1. App histories (``check_app_history``; JSON lines as ``wormspace.apps.history`` records them, one event
   per line with ``app`` and ``name``; ``wormspace check FILE`` recognises them by the ``app`` field):

   * ``kv`` -- Jepsen's register workload per key: linearizable against ``KvModel``, the generic
     overwritable ``RegisterModel`` whose steps are ``KvSpec``'s (not write-once, so the checker's
     write-once reduction stays off).
   * ``log`` -- per position, linearizable against ``WormLogModel``, ``LogModel`` with ``LogSpec``'s steps:
     each position is handed to one append; a read answers what was appended there, or None (junk) only
     where nothing was. An indeterminate append has no known position: it is checked at each position
     where its data was read (data are unique in a run; checking it at several is permissive, never a
     false alarm), else dropped (nobody observed it). ``tail`` is
     checked against real time: every append or read of data that returned before ``tail`` was called
     lies below the tail it answered, and no append invoked after it returned lies below it. ``trim`` and
     reads that failed ``Trimmed`` observe nothing here.
   * ``paxos`` -- ``submit`` is an append of a command to one sequence: no two submits at one position,
     and a submit that returned before another was invoked is earlier in the sequence.
   * ``tx`` -- WormTX (``apps/tx.py``): per transaction, judged by the trusted ``TxSpec`` (``tx_problems``):
     deciders agree; no commit unless ``TxSpec`` commits from the votes the history allows; an E3 decide
     invoked after every YES returned commits. A history of WormTX's first format (no ``app`` field) is
     read as app ``tx``.

   ``fail`` is certain (``wormspace.apps.history`` Rule 4: an operation that may have written records an
   outcome raised mid-way as ``info``): a ``write``, ``cas``, ``append`` or ``submit`` that ``fail``s with an
   ``error`` had no effect, so its value must never show up (a log read of a failed append's data, a
   replica applying a failed submit's command, a KV read of a failed write's value that no other write
   may have put there are ILLEGAL; likewise a failed vote, ``wormspace_to_tx``); a ``cas`` that ``fail``s
   without one is a refused swap (an observation).

2. ``check_replicas`` -- WormPaxos runs: every replica's applied list is a prefix of one command sequence
   (``SmrSpec.applied_ok``); each command appears in it at most once, and exactly once if its ``submit``
   returned; no command appears that nobody submitted; replaying the sequence through ``SmrSpec`` gives
   every ``submit`` its result.

3. ``app_run`` -- many spawned app clients on ``Cluster.simulated`` under message loss and duplication, a
   crashed and restarted acceptor and a partition; it returns the app history (and for WormPaxos and
   WormKV the replicas' applied lists) for checks 1 and 2. ``wormspace demo --app`` runs it.

4. ``LogLockstep``, ``PaxosLockstep``, ``KvLockstep`` (in ``apps_lockstep``, the one part that needs
   Hypothesis, so that ``wormspace check`` and ``wormspace demo`` run with the runtime dependencies alone) --
   Hypothesis state machines driving each app's sync face over a faulty ``Cluster.simulated`` (crashes,
   partitions, message loss) in lockstep with its spec.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wormspace.apps.kv import KvSpec
from wormspace.apps.log import LogSpec
from wormspace.apps.paxos import SmrSpec
from wormspace.apps.tx import ABORT, YES, TxSpec
from wormspace.history import History, HistoryFormatError, Operation, json_line
from wormspace.layers.network import Faults
from wormspace.refinement.linearizability import (
    DEFAULT_BUDGET,
    ILLEGAL,
    OK,
    UNKNOWN,
    CheckResult,
    check_operations,
)
from wormspace.refinement.models import Input, LogModel, ModelOp, Output, RegisterModel, Slot

APPS = ("log", "paxos", "kv")  # the apps ``app_run`` runs
HISTORY_APPS = (*APPS, "tx")  # the apps whose histories ``check_app_history`` reads
FUNCTIONS = {"log": ("append", "read", "tail", "trim"), "paxos": ("submit",), "kv": ("read", "write", "cas"),
             "tx": ("begin", "vote", "decide")}
TX_NAME = "dHg="  # base64 of b"tx", WormTX's default name; a file in the old WormTX format gets it
_TYPES = ("invoke", "ok", "fail", "info")
_KEY = b"k"  # the one key of a per-key KvSpec


# ---- checker models from the apps' trusted specs ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KvModel(RegisterModel):
    """``RegisterModel`` for one key of WormKV, each step taken by ``KvSpec`` (not write-once)."""

    labels: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return "kv"

    def step(self, state: bytes | None, input: Input, output: Output) -> tuple[bool, bytes | None]:
        spec = KvSpec({} if state is None else {_KEY: state})
        f, outcome = input.f, output.outcome
        if f == "read":
            return outcome != "ok" or spec.get(_KEY) == output.value, state
        if outcome == "fail" and f != "cas":
            return True, state  # certainly no effect
        if f == "write":
            spec.put(_KEY, input.value)
            return True, spec.get(_KEY)
        assert f == "cas" and input.value is not None
        swapped = spec.cas(_KEY, input.expected, input.value)
        return outcome == "info" or swapped == (outcome == "ok"), spec.get(_KEY)

    def key_name(self, key: int) -> str:
        return self.labels[key] if key < len(self.labels) else f"#{key}"

    def partition_label(self, key: int) -> str:
        return f"key {self.key_name(key)}"


@dataclass(frozen=True, slots=True)
class WormLogModel(LogModel):
    """``LogModel`` for one position of WormLog, each step taken by ``LogSpec`` (write-once)."""

    @property
    def name(self) -> str:
        return "wormlog"

    def step(self, state: Slot | None, input: Input, output: Output) -> tuple[bool, Slot | None]:
        if output.outcome == "fail":
            return True, state
        p = input.key
        spec = LogSpec(entries={} if state is None else {p: state.data})
        if input.f == "append":
            assert input.value is not None
            ok = spec.append(input.value, p)
            return ok or output.outcome == "info", Slot(spec.entries[p])
        if output.outcome == "info":
            return True, state
        if input.f == "read" and state is None:
            return False, state  # a read that found nothing and filled it is a "fill"
        got = spec.read(p)  # fills an unwritten position with junk
        return got == output.value, Slot(spec.entries[p])


# ---- app histories ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AppOp:
    """An app operation: its invoke paired with its completion (``ret`` None: indeterminate)."""

    id: int
    process: int
    f: str
    key: Any  # the invoke's key (None for append and submit)
    value: Any
    call: int
    ret: int | None
    outcome: str
    error: str | None
    out_key: Any  # the completion's key (the position of an append or submit)
    out_value: Any
    line: int
    events: tuple[tuple[int, Mapping[str, Any]], ...] = ()  # (line, event): its invoke and completion


@dataclass(frozen=True, slots=True, kw_only=True)
class AppHistoryData:
    """The operations of one app instance (``app``, ``name``) in a history."""

    app: str
    name: bytes
    ops: tuple[AppOp, ...]
    events: int


def _legacy_tx(obj: object) -> bool:
    """An event of the first WormTX history format: no ``app`` field, ``f`` one of WormTX's."""
    return isinstance(obj, dict) and "app" not in obj and obj.get("f") in FUNCTIONS["tx"]


def is_app_history(text: str) -> bool:
    """Does the first event of this JSON-lines text carry an ``app`` field (or is it a WormTX event of the
    first format, which had none)?"""
    for raw in text.splitlines():
        if raw.strip():
            try:
                obj = json.loads(raw)
            except (ValueError, RecursionError):  # bad input: the history parser names the line
                return False
            return isinstance(obj, dict) and ("app" in obj or _legacy_tx(obj))
    return False


def _b64(line: int, what: str, v: object, *, none_ok: bool = True) -> bytes | None:
    if v is None and none_ok:
        return None
    if not isinstance(v, str):
        raise HistoryFormatError(line, f"{what} must be a base64 string{' or null' if none_ok else ''}")
    try:
        return base64.b64decode(v.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise HistoryFormatError(line, f"{what} is not valid base64: {v[:40]!r}") from None


def parse_app_history(source: str | Iterable[Mapping[str, Any]]) -> list[AppHistoryData]:
    """App histories from JSON-lines text or event dicts, one per (app, name), validated.

    Raises ``HistoryFormatError`` naming the line for a malformed event or a broken pairing rule.
    """
    if isinstance(source, str):
        rows: list[tuple[int, object]] = []
        for n, raw in enumerate(source.splitlines(), start=1):
            if raw.strip():
                rows.append((n, json_line(n, raw)))
    else:
        rows = list(enumerate(source, start=1))
    groups: dict[tuple[str, bytes], list[AppOp]] = {}
    counts: Counter[tuple[str, bytes]] = Counter()
    open_: dict[tuple[str, bytes, int], tuple[int, Mapping[str, Any]]] = {}
    next_id = 0
    for line, obj in rows:
        if not isinstance(obj, Mapping):
            raise HistoryFormatError(line, "an event must be a JSON object")
        if _legacy_tx(obj):
            obj = {**obj, "app": "tx", "name": TX_NAME}
        if "app" not in obj:
            raise HistoryFormatError(line, "a WormSpace event (no 'app' field) in an app history: check the two "
                                     "kinds from separate files")
        for required in ("process", "type", "f", "time", "name"):
            if required not in obj:
                raise HistoryFormatError(line, f"missing field {required!r}")
        app, type_, f, process, time = obj["app"], obj["type"], obj["f"], obj["process"], obj["time"]
        if app not in HISTORY_APPS:
            raise HistoryFormatError(line, f"unknown app {app!r} (expected one of {', '.join(HISTORY_APPS)})")
        if type_ not in _TYPES:
            raise HistoryFormatError(line, f"unknown type {type_!r}")
        if f not in FUNCTIONS[app]:
            raise HistoryFormatError(line, f"unknown f {f!r} for app {app} (expected {', '.join(FUNCTIONS[app])})")
        if type(process) is not int or type(time) is not int:
            raise HistoryFormatError(line, "process and time must be ints")
        name = _b64(line, "name", obj["name"], none_ok=False)
        assert name is not None
        group = (app, name)
        counts[group] += 1
        slot_ = (app, name, process)
        if type_ == "invoke":
            if slot_ in open_:
                raise HistoryFormatError(line, f"process {process} invokes while its operation is open")
            open_[slot_] = (line, obj)
            continue
        if slot_ not in open_:
            article = "a" if type_ == "fail" else "an"
            raise HistoryFormatError(line, f"{article} {type_} completion of process {process} without its invoke")
        inv_line, inv = open_.pop(slot_)
        if inv["f"] != f or inv["time"] > time:
            raise HistoryFormatError(line, f"completion does not match its invoke (line {inv_line})")
        groups.setdefault(group, []).append(_app_op(next_id, app, inv, inv_line, obj, line))
        next_id += 1
    for (app, name, _p), (inv_line, inv) in open_.items():
        groups.setdefault((app, name), []).append(_app_op(next_id, app, inv, inv_line, None, None))
        next_id += 1
    return [
        AppHistoryData(app=app, name=name, ops=tuple(sorted(ops, key=lambda o: o.id)), events=counts[(app, name)])
        for (app, name), ops in groups.items()
    ]


def _app_op(op_id: int, app: str, inv: Mapping[str, Any], line: int, end: Mapping[str, Any] | None,
            ret_line: int | None) -> AppOp:
    f = inv["f"]
    outcome = "info" if end is None else str(end["type"])
    key, out_key = inv.get("key"), None if end is None else end.get("key")
    value: Any = inv.get("value")
    out_value: Any = None if end is None else end.get("value")
    where = ret_line if ret_line is not None else line
    if f == "cas":
        if not isinstance(value, list) or len(value) != 2:
            raise HistoryFormatError(line, "a cas value is [expected or null, new]")
        value = (_b64(line, "cas expected", value[0]), _b64(line, "cas new", value[1], none_ok=False))
    elif f in ("append", "submit", "write"):
        value = _b64(line, f"{f} value", value, none_ok=f == "write")
    if end is not None and f in ("append", "write", "cas") and out_value is not None:
        # a completion may repeat what its invoke wrote, and nothing else (which data was written?)
        if f == "cas":
            got = out_value if isinstance(out_value, list) and len(out_value) == 2 else None
            same = got is not None and (_b64(where, "cas expected", got[0]), _b64(where, "cas new", got[1])) == value
        else:
            same = _b64(where, f"{f} value", out_value) == value
        if not same:
            raise HistoryFormatError(where, f"the {f} completion's value differs from its invoke's (line {line})")
    if app == "kv":
        if not isinstance(key, str):
            raise HistoryFormatError(line, "a kv key is a base64 string")
        _b64(line, "key", key)
    if ((f in ("read",) and app == "log") or f in ("trim",)) and (type(key) is not int or key < 0):
        raise HistoryFormatError(line, f"a {f} key is a non-negative int position")
    if app == "tx":
        _tx_event(line, where, f, key, value, outcome, out_key, out_value)
    if outcome == "ok":
        if f in ("append", "submit") and (type(out_key) is not int or out_key < 0):
            raise HistoryFormatError(where, f"an ok {f} completion's key is its position")
        if f == "read" or f == "submit":
            out_value = _b64(where, f"{f} result", out_value)
        elif f in ("tail", "trim") and (type(out_value) is not int or out_value < 0):
            raise HistoryFormatError(where, f"an ok {f} completion's value is a position")
    return AppOp(
        id=op_id, process=int(inv["process"]), f=f, key=key, value=value, call=int(inv["time"]),
        ret=None if end is None or outcome == "info" else int(end["time"]), outcome=outcome,
        error=None if end is None else end.get("error"), out_key=out_key, out_value=out_value, line=line,
        events=((line, inv),) if end is None or ret_line is None else ((line, inv), (ret_line, end)),
    )


def _tx_event(line: int, where: int, f: str, key: Any, value: Any, outcome: str, out_key: Any,
              out_value: Any) -> None:
    """Validate a WormTX operation (``f``, its invoke's key and value, its completion's)."""
    def is_nat(v: object) -> bool:
        return type(v) is int and v >= 0

    if f != "begin" and not is_nat(key):
        raise HistoryFormatError(line, f"a tx {f} key is the transaction (a non-negative int)")
    if not isinstance(value, Mapping):
        raise HistoryFormatError(line, f"a tx {f} value is an object")
    if f == "begin" and (not is_nat(value.get("participants")) or value.get("variant", "E3") not in ("E3", "C5")):
        raise HistoryFormatError(line, 'a tx begin value is {"participants": n, "variant": "E3" | "C5"}')
    if f == "vote" and (not is_nat(value.get("participant")) or value.get("vote") not in ("YES", "NO")):
        raise HistoryFormatError(line, 'a tx vote value is {"participant": i, "vote": "YES" | "NO"}')
    if f == "decide" and not (value.get("coordinator") is True or value.get("participant") is None
                              or is_nat(value.get("participant"))):
        raise HistoryFormatError(line, 'a tx decide value is {"participant": i | null, "wait": s} or '
                                 '{"coordinator": true, "wait": s}')
    if outcome != "ok":
        return
    if f == "begin" and not (is_nat(out_key) and out_value == out_key):
        raise HistoryFormatError(where, "an ok tx begin completion's key and value are the transaction")
    if f == "vote" and type(out_value) is not bool:
        raise HistoryFormatError(where, "an ok tx vote completion's value is true or false")
    if f == "decide" and out_value not in ("commit", "abort"):
        raise HistoryFormatError(where, 'an ok tx decide completion\'s value is "commit" or "abort"')


# ---- checking app histories (check 1) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AppCheck:
    """The verdict on one app instance's history: ILLEGAL if a problem or an ILLEGAL part, else UNKNOWN if
    a part ran out of budget, else OK. ``linearizability`` is the per-key / per-position result."""

    app: str
    name: bytes
    verdict: str
    operations: int
    events: int
    problems: tuple[str, ...]
    linearizability: CheckResult | None
    ops: tuple[AppOp, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary; a minimal illegal part's ``events`` are its app events (a history file)."""
        lin = None if self.linearizability is None else self.linearizability.to_json()
        if lin is not None and lin["minimal"] is not None and self.linearizability is not None:
            minimal = self.linearizability.minimal
            assert minimal is not None
            ids = {sub.source.id for sub in minimal.operations}
            lin["minimal"]["events"] = [dict(e) for _, e in sorted(
                (pair for op in self.ops if op.id in ids for pair in op.events), key=lambda p: p[0])]
        return {
            "app": self.app,
            "name": base64.b64encode(self.name).decode("ascii"),
            "verdict": self.verdict,
            "operations": self.operations,
            "events": self.events,
            "problems": list(self.problems),
            "linearizability": lin,
        }


def _as_operation(op: AppOp, f: str, key: int, value: bytes | None, *, output: bytes | None = None,
                  existing: bytes | None = None, info: bool = False) -> Operation:
    return Operation(
        id=op.id, process=op.process, f=f, key=key, value=value, call=op.call,
        ret=None if info else op.ret, end=None if info else op.ret, outcome="info" if info else op.outcome,
        error=op.error, existing=existing, output=output, results=None, line=op.line,
        ret_line=op.events[1][0] if len(op.events) == 2 else None,  # ties in time: the lines decide
    )


def _no_events(_subs: Iterable[ModelOp]) -> History:
    return History()


def _verdict(problems: Sequence[str], result: CheckResult | None) -> str:
    if problems or (result is not None and result.verdict == ILLEGAL):
        return ILLEGAL
    return UNKNOWN if result is not None and result.verdict == UNKNOWN else OK


def _kv_operations(ops: Sequence[AppOp]) -> tuple[list[Operation], tuple[str, ...]]:
    labels = tuple(sorted({str(op.key) for op in ops}))
    index = {k: i for i, k in enumerate(labels)}
    out: list[Operation] = []
    for op in ops:
        key = index[str(op.key)]
        if op.f == "read":
            out.append(_as_operation(op, "read", key, None, output=op.out_value))
        elif op.outcome == "fail" and op.error is not None:
            continue  # a write or cas that certainly had no effect, and observed nothing
        elif op.f == "write":
            out.append(_as_operation(op, "write", key, op.value))
        else:
            expected, new = op.value
            out.append(_as_operation(op, "cas", key, new, existing=expected))
    shown = tuple(repr(base64.b64decode(k)) for k in labels)
    return out, shown


def _log_operations(ops: Sequence[AppOp]) -> list[Operation]:
    out: list[Operation] = []
    read_at: dict[bytes, set[int]] = {}
    for op in ops:
        if op.f == "read" and op.outcome == "ok" and op.out_value is not None:
            read_at.setdefault(op.out_value, set()).add(op.key)
    for op in ops:
        if op.f == "append":
            if op.outcome == "ok":
                out.append(_as_operation(op, "append", op.out_key, op.value))
            elif op.outcome == "info":  # wherever its data was read, if anywhere
                for pos in sorted(read_at.get(op.value, ())):
                    out.append(_as_operation(op, "append", pos, op.value, info=True))
        elif op.f == "read" and op.outcome == "ok":
            out.append(_as_operation(op, "read", op.key, None, output=op.out_value))
    return out


def _failed_append_problems(ops: Sequence[AppOp]) -> list[str]:
    """An append recorded ``fail`` certainly appended nothing: its data must not be read anywhere (unless
    another append of the same data may have put it there)."""
    read_at: dict[bytes, list[AppOp]] = {}
    for op in ops:
        if op.f == "read" and op.outcome == "ok" and op.out_value is not None:
            read_at.setdefault(op.out_value, []).append(op)
    others = Counter(op.value for op in ops if op.f == "append" and op.outcome != "fail")
    return [
        f"append op {op.id} of {op.value!r} failed {op.error} (certainly not appended), but read op {r.id} "
        f"found its data at position {r.key}"
        for op in ops if op.f == "append" and op.outcome == "fail" and not others[op.value]
        for r in read_at.get(op.value, ())[:1]
    ]


def _tail_problems(ops: Sequence[AppOp]) -> list[str]:
    """Tails against real time (see the module docstring, check 1, log)."""
    problems: list[str] = []
    done = sorted((
        (op.ret, op.out_key if op.f == "append" else op.key, op)
        for op in ops
        if op.ret is not None and op.outcome == "ok"
        and (op.f == "append" or (op.f == "read" and op.out_value is not None))
    ), key=lambda t: (t[0], t[1]))
    later = sorted(
        ((op.call, op.out_key, op) for op in ops if op.f == "append" and op.outcome == "ok"),
        key=lambda t: t[0],
    )
    for tail in (op for op in ops if op.f == "tail" and op.outcome == "ok" and op.ret is not None):
        t = tail.out_value
        below = [(p, o) for r, p, o in done if r < tail.call and p >= t]
        if below:
            p, o = below[0]
            problems.append(
                f"tail() -> {t} (op {tail.id}, called at {tail.call}), but {o.f} op {o.id} at position {p} "
                f"returned at {o.ret}, before it: the log's end was above {t}"
            )
        returned = tail.ret
        assert returned is not None
        after = [(p, o) for c, p, o in later if c > returned and p < t]
        if after:
            p, o = after[0]
            problems.append(
                f"tail() -> {t} (op {tail.id}, returned at {tail.ret}), but append op {o.id}, invoked after "
                f"it at {o.call}, got position {p} below it: position {p} held no entry at the tail"
            )
    return problems


def _submit_problems(ops: Sequence[AppOp]) -> list[str]:
    """Submits as appends to one sequence (see the module docstring, check 1, paxos)."""
    done = [op for op in ops if op.outcome == "ok" and op.ret is not None]
    problems = [
        f"{n} submits were answered position {p}" for p, n in sorted(Counter(op.out_key for op in done).items())
        if n > 1
    ]
    by_ret = sorted(done, key=lambda op: op.ret or 0)
    best: AppOp | None = None  # the highest position among the submits returned so far
    k = 0
    for op in sorted(done, key=lambda op: op.call):
        while k < len(by_ret) and (by_ret[k].ret or 0) < op.call:
            if best is None or by_ret[k].out_key > best.out_key:
                best = by_ret[k]
            k += 1
        if best is not None and best.out_key >= op.out_key:
            problems.append(
                f"submit op {best.id} returned at {best.ret} with position {best.out_key}, before submit op "
                f"{op.id} was invoked at {op.call}, yet that one got the earlier position {op.out_key}"
            )
    return problems


Shape = tuple[str | None, int]  # a transaction's variant (None: not recorded) and participant count


def tx_shapes(ops: Sequence[AppOp]) -> dict[int, Shape]:
    """Each transaction's shape, from the ``begin`` operations that returned it."""
    return {op.out_key: (op.value.get("variant"), op.value["participants"])
            for op in ops if op.f == "begin" and op.outcome == "ok"}


def _spec_of(n: int, votes: Iterable[tuple[int, bytes]]) -> TxSpec:
    spec = TxSpec.fresh(n)
    for i, v in votes:
        if 0 <= i < n:
            spec = spec.vote(i, v)[0]
    return spec


def tx_problems(ops: Sequence[AppOp], shapes: Mapping[int, Shape] | None = None) -> list[str]:
    """The atomic-commitment properties over a WormTX history, judged by the trusted ``TxSpec``, per
    transaction: deciders agree; a decide's outcome is one ``TxSpec`` can reach from the votes the history
    allows -- never commit when the votes certainly in (returned True; an ABORT for each pre-empted one)
    give abort, nor when some participant has no YES that may have landed (every vote but a ``fail``);
    and an E3 decide invoked after every participant's YES returned commits. ``shapes`` (transaction ->
    (variant, n)) adds to the shapes the history's ``begin``s give; for a transaction of unknown shape,
    ``n`` is taken as the highest participant seen plus one and the E3 rule is skipped."""
    known = {**tx_shapes(ops), **(shapes or {})}
    problems: list[str] = []
    votes: dict[int, list[AppOp]] = {}
    decides: dict[int, list[AppOp]] = {}
    for op in ops:
        if op.f == "vote":
            votes.setdefault(op.key, []).append(op)
        elif op.f == "decide" and op.outcome == "ok":
            decides.setdefault(op.key, []).append(op)
    for t, ds in sorted(decides.items()):
        vs = votes.get(t, [])
        variant, n = known.get(t, (None, 1 + max((v.value["participant"] for v in vs), default=-1)))
        outs = {d.out_value for d in ds}
        if len(outs) > 1:
            problems.append(f"transaction {t}: deciders disagree {sorted(outs)}")
        certain = _spec_of(n, [(v.value["participant"], v.value["vote"].encode() if v.out_value else ABORT)
                               for v in vs if v.outcome == "ok"])
        may_yes = _spec_of(n, [(v.value["participant"], YES) for v in vs
                               if v.value["vote"] == "YES" and v.outcome != "fail"])
        for d in ds:
            if d.out_value == "commit" and (certain.outcome() is False or may_yes.outcome() is not True):
                problems.append(f"transaction {t}: commit, but TxSpec gives no commit from the votes: certainly "
                                f"in {list(certain.votes)}, YES that may have landed {list(may_yes.votes)}")
            before = _spec_of(n, [(v.value["participant"], YES) for v in vs if v.value["vote"] == "YES"
                                  and v.outcome == "ok" and v.out_value is True and v.ret is not None
                                  and v.ret <= d.call])
            if variant == "E3" and d.out_value == "abort" and before.outcome() is True:
                problems.append(f"transaction {t}: abort although every YES was in before the decide")
    return problems


def check_app_ops(data: AppHistoryData, budget: int = DEFAULT_BUDGET) -> AppCheck:
    """Check one app instance's operations (check 1)."""
    problems: list[str] = []
    result: CheckResult | None = None
    if data.app == "kv":
        kv_ops, labels = _kv_operations(data.ops)
        result = check_operations(kv_ops, KvModel(labels), budget, events=data.events, history_of=_no_events)
    elif data.app == "log":
        result = check_operations(_log_operations(data.ops), WormLogModel(), budget, events=data.events,
                                  history_of=_no_events)
        problems = _tail_problems(data.ops) + _failed_append_problems(data.ops)
    elif data.app == "tx":
        problems = tx_problems(data.ops)
    else:
        problems = _submit_problems(data.ops)
    return AppCheck(app=data.app, name=data.name, verdict=_verdict(problems, result), operations=len(data.ops),
                    events=data.events, problems=tuple(problems), linearizability=result, ops=data.ops)


def check_app_history(source: str | Iterable[Mapping[str, Any]], budget: int = DEFAULT_BUDGET) -> list[AppCheck]:
    """Check every app instance in a history (JSON-lines text or event dicts); see ``parse_app_history``."""
    return [check_app_ops(data, budget) for data in parse_app_history(source)]


def overall(checks: Sequence[AppCheck]) -> str:
    """ILLEGAL if any check is, else UNKNOWN if any is, else OK (also for no checks: nothing to judge)."""
    verdicts = {c.verdict for c in checks}
    return ILLEGAL if ILLEGAL in verdicts else UNKNOWN if UNKNOWN in verdicts else OK


# ---- WormPaxos replicas (check 2) ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaVerdict:
    """The outcome of ``check_replicas``: ``ok`` iff ``problems`` is empty; ``sequence`` is the longest list."""

    ok: bool
    problems: tuple[str, ...]
    sequence: tuple[bytes, ...]
    replicas: int


def _smr(machine: Callable[[], Callable[[bytes], bytes]]) -> SmrSpec:
    """``SmrSpec`` over a fresh state machine fed one command at a time (the spec calls it in order)."""
    apply = machine()
    fed: list[bytes] = []

    def step(earlier: list[bytes], cmd: bytes) -> bytes:
        assert earlier == fed, "SmrSpec feeds its commands in order"
        fed.append(cmd)
        return apply(cmd)

    return SmrSpec(apply=step)


def check_replicas(
    applied: Mapping[str, Sequence[bytes]],
    submitted: Mapping[bytes, bytes | None],
    machine: Callable[[], Callable[[bytes], bytes]],
    *,
    unique: bool = True,
    failed: Iterable[bytes] = (),
) -> ReplicaVerdict:
    """Judge a WormPaxos run (check 2).

    ``applied`` maps a replica's name to the commands it applied, in order; ``submitted`` maps each
    submitted command (unique in a run) to what its ``submit`` returned, None when it did not return (an
    indeterminate or abandoned submit); ``machine()`` gives a fresh deterministic ``apply``. With
    ``unique=False`` (WormKV: two deletes of a key are equal commands) only the prefix rule is checked.
    ``failed``: commands whose submit was recorded ``fail`` (certainly not submitted): none may be applied.
    """
    problems: list[str] = []
    sequence: tuple[bytes, ...] = max((tuple(a) for a in applied.values()), key=len, default=())
    spec = _smr(machine)
    results = {cmd: spec.submit(cmd) for cmd in sequence}
    for name, cmds in sorted(applied.items()):
        if not spec.applied_ok(list(cmds)):
            at = next(i for i, (a, b) in enumerate(zip(cmds, sequence, strict=False)) if a != b)
            problems.append(
                f"{name} applied {cmds[at]!r} at index {at}, where the longest replica applied "
                f"{sequence[at]!r}: not a prefix of one sequence"
            )
    if not unique:
        return ReplicaVerdict(ok=not problems, problems=tuple(problems), sequence=sequence, replicas=len(applied))
    counts = Counter(sequence)
    for cmd, n in sorted(counts.items()):
        if n > 1:
            problems.append(f"command {cmd!r} applied {n} times")
        if cmd not in submitted:
            problems.append(f"command {cmd!r} applied but never submitted")
    for cmd in sorted(set(failed) & set(counts)):
        problems.append(f"command {cmd!r} applied, but its submit was recorded as failed (certainly no effect)")
    for cmd, result in sorted(submitted.items()):
        if result is None:
            continue
        if cmd not in counts:
            problems.append(f"submit({cmd!r}) returned but no replica applied it")
        elif counts[cmd] == 1 and results[cmd] != result:
            problems.append(f"submit({cmd!r}) returned {result!r}; the spec's result there is {results[cmd]!r}")
    return ReplicaVerdict(ok=not problems, problems=tuple(problems), sequence=sequence, replicas=len(applied))


# ---- concurrent runs (check 3) -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    """The shape of one ``app_run``; the defaults are what the tests and ``wormspace demo --app`` use."""

    clients: int = 4
    ops: int = 8  # operations per client
    keys: int = 2  # WormKV keys
    wos_size: int = 16
    drop: float = 0.05
    duplicate: float = 0.05
    hole_timeout: float = 0.05
    policy: str = "sticky"  # WormPaxos and WormKV
    faults: bool = True  # crash and restart acceptor 1, then partition acceptor 2 away for a while

    def describe(self) -> str:
        faults = "; acceptor 1 crashed at t=0.01s, restarted at 0.08s; acceptor 2 partitioned away 0.10-0.16s"
        return (
            f"{self.clients} clients x {self.ops} operations, wos size {self.wos_size}, {self.drop:.0%} drops, "
            f"{self.duplicate:.0%} duplicates" + (faults if self.faults else "")
        )


@dataclass(kw_only=True)
class AppRun:
    """What ``app_run`` observed: the app history, and for WormPaxos/WormKV each replica's applied list."""

    app: str
    seed: int
    config: RunConfig
    events: list[dict[str, Any]]
    applied: dict[str, list[bytes]] = field(default_factory=dict)
    submitted: dict[bytes, bytes | None] = field(default_factory=dict)
    machine: Callable[[], Callable[[bytes], bytes]] | None = None
    failures: list[str] = field(default_factory=list)
    virtual_seconds: float = 0.0
    network: dict[str, int] = field(default_factory=dict)

    def jsonl(self) -> str:
        return "".join(json.dumps(e) + "\n" for e in self.events)


def counter_machine() -> Callable[[bytes], bytes]:
    """WormPaxos's state machine in the runs: the number of commands applied so far, as its result."""
    n = 0

    def apply(cmd: bytes) -> bytes:
        nonlocal n
        n += 1
        return b"%d" % n

    return apply


def _recording(apply: Callable[[bytes], bytes], log: list[bytes]) -> Callable[[bytes], bytes]:
    def wrapped(cmd: bytes) -> bytes:
        log.append(cmd)
        return apply(cmd)

    return wrapped


def _log_worker(log: Any, rng: Any, i: int, ops: int) -> Callable[[Any], Any]:
    from wormspace.errors import OperationFailed

    def work(logic: Any) -> Any:
        appended: list[int] = []
        for k in range(ops):
            try:
                r = rng.random()
                if r < 0.6 or not appended:
                    appended.append((yield from log.append(logic, b"c%d-%d" % (i, k))))
                elif r < 0.85:
                    yield from log.read(logic, rng.choice(appended))
                else:
                    yield from log.tail(logic)
            except OperationFailed:
                pass

    return work


def _paxos_worker(core: Any, run: AppRun, i: int, ops: int) -> Callable[[Any], Any]:
    from wormspace.errors import OperationFailed

    def work(logic: Any) -> Any:
        for k in range(ops):
            cmd = b"c%d-%d" % (i, k)
            run.submitted[cmd] = None
            try:
                run.submitted[cmd] = yield from core.submit(logic, cmd)
            except OperationFailed:
                continue

    return work


def _kv_worker(kv: Any, rng: Any, i: int, ops: int, keys: int) -> Callable[[Any], Any]:
    from wormspace.errors import OperationFailed

    def work(logic: Any) -> Any:
        for k in range(ops):
            key = b"k%d" % rng.randrange(keys)
            new = b"c%d-%d" % (i, k)
            try:
                r = rng.random()
                if r < 0.35:
                    yield from kv.get(logic, key)
                elif r < 0.6:
                    yield from kv.put(logic, key, new)
                elif r < 0.7:
                    yield from kv.put(logic, key, None)
                else:
                    seen = kv.data.get(key) if rng.random() < 0.7 else b"stale"
                    yield from kv.cas(logic, key, seen, new)
            except OperationFailed:
                pass

    return work


def app_run(app: str, seed: int, config: RunConfig | None = None) -> AppRun:
    """Many clients of one app instance on a faulty simulated cluster (check 3); deterministic in ``seed``."""
    import random

    from wormspace.apps.history import AppHistory
    from wormspace.apps.kv import KvCore
    from wormspace.apps.log import LogCore
    from wormspace.apps.paxos import PaxosCore
    from wormspace.cluster import Cluster
    from wormspace.errors import UsageError

    if app not in APPS:
        raise UsageError(f"unknown app {app!r} (expected one of {', '.join(APPS)})")
    cfg = config or RunConfig()
    cluster = Cluster.simulated(acceptors=3, seed=seed, wos_size=cfg.wos_size,
                                faults=Faults(drop=cfg.drop, duplicate=cfg.duplicate))
    history = AppHistory.of(cluster)
    run = AppRun(app=app, seed=seed, config=cfg, events=history.events)
    name = f"{app}-demo".encode()
    if app == "paxos":
        run.machine = counter_machine
    elif app == "kv":
        run.machine = lambda: KvCore(b"spec").apply
    for i in range(cfg.clients):
        rng = random.Random(seed * 1000 + i)
        applied: list[bytes] = []
        if app == "log":
            work = _log_worker(LogCore(name, hole_timeout=cfg.hole_timeout, history=history), rng, i, cfg.ops)
        elif app == "paxos":
            run.applied[f"replica {i}"] = applied
            core = PaxosCore(_recording(counter_machine(), applied), name, policy=cfg.policy, replica=i,
                             replicas=cfg.clients, hole_timeout=cfg.hole_timeout, history=history)
            work = _paxos_worker(core, run, i, cfg.ops)
        else:
            run.applied[f"replica {i}"] = applied
            kv = KvCore(name, policy=cfg.policy, replica=i, replicas=cfg.clients, hole_timeout=cfg.hole_timeout,
                        history=history)
            kv.paxos.apply = _recording(kv.paxos.apply, applied)
            work = _kv_worker(kv, rng, i, cfg.ops, cfg.keys)
        cluster.spawn(work, at=0.001 * i)
    if cfg.faults:
        cluster.at(0.01, lambda: cluster.crash(1))
        cluster.at(0.08, lambda: cluster.restart(1))
        cluster.at(0.1, lambda: cluster.partition({2}, {0, 1}))
        cluster.at(0.16, cluster.heal)
    cluster.run()
    run.failures = [f"process {p}: {type(e).__name__}: {e}" for p, e in cluster.failures]
    # a last client reads everything back, so the checks see the final state too
    ws = cluster.client()
    if app == "log":
        reader = LogCore(name, hole_timeout=cfg.hole_timeout, history=history)
        end = ws.run(reader.tail(ws.logic))
        for pos in range(end):
            ws.run(reader.read(ws.logic, pos))
    else:
        final: list[bytes] = []
        run.applied["a new replica"] = final
        if app == "paxos":
            late = PaxosCore(_recording(counter_machine(), final), name, policy=cfg.policy,
                             hole_timeout=cfg.hole_timeout)
            ws.run(late.sync(ws.logic))
        else:
            reader_kv = KvCore(name, policy=cfg.policy, hole_timeout=cfg.hole_timeout, history=history)
            reader_kv.paxos.apply = _recording(reader_kv.paxos.apply, final)
            for k in range(cfg.keys):
                ws.run(reader_kv.get(ws.logic, b"k%d" % k))
    run.virtual_seconds = cluster.net.now
    run.network = dict(cluster.net.stats)
    return run


@dataclass(frozen=True, slots=True, kw_only=True)
class RunVerdict:
    """The checks of one ``AppRun``: the history's, and for WormPaxos/WormKV the replicas'."""

    verdict: str
    history: tuple[AppCheck, ...]
    replicas: ReplicaVerdict | None
    failures: tuple[str, ...]

    @property
    def problems(self) -> list[str]:
        out = [*self.failures]
        for c in self.history:
            out.extend(c.problems)
            if c.linearizability is not None and c.linearizability.minimal is not None:
                out.append(c.linearizability.minimal.explanation)
        if self.replicas is not None:
            out.extend(self.replicas.problems)
        return out


def check_run(run: AppRun, budget: int = DEFAULT_BUDGET) -> RunVerdict:
    """Check 1 on the run's history and check 2 on its replicas; a process ended by an unexpected
    exception is a failure too."""
    checks = tuple(check_app_history(run.events, budget))
    replicas = None
    if run.machine is not None:
        failed = [op.value for data in parse_app_history(run.events) for op in data.ops
                  if op.f == "submit" and op.outcome == "fail"]
        replicas = check_replicas(run.applied, run.submitted, run.machine, unique=run.app == "paxos",
                                  failed=failed)
    verdict = overall(checks)
    if verdict != ILLEGAL and ((replicas is not None and not replicas.ok) or run.failures):
        verdict = ILLEGAL
    return RunVerdict(verdict=verdict, history=checks, replicas=replicas, failures=tuple(run.failures))


# ---- reporting (``wormspace check`` on an app history, ``wormspace demo --app``) ---------------------------


def app_report(console: Any, checks: Sequence[AppCheck], name: str, elapsed: float) -> None:
    """Print one table row per app instance, then each one's problems and minimal illegal part."""
    from rich.table import Table
    from rich.text import Text

    style = {OK: "green", ILLEGAL: "bold red", UNKNOWN: "yellow"}
    events = sum(c.events for c in checks)
    console.print(f"[bold]{name}[/]: app history, {events} events, {len(checks)} app instance(s), "
                  f"checked in {elapsed:.3f} s")
    table = Table(title="App instances", title_justify="left")
    for column in ("App", "Name", "Operations", "Model", "Parts", "Verdict"):
        table.add_column(column)
    for c in checks:
        lin = c.linearizability
        model = lin.model if lin is not None else "TxSpec (atomic commit)" if c.app == "tx" else "submit order"
        table.add_row(c.app, repr(c.name), str(c.operations), model,
                      str(len(lin.partitions)) if lin is not None else "-",
                      Text(c.verdict, style=style[c.verdict]))
    console.print(table)
    for c in checks:
        for problem in c.problems:
            console.print(Text(f"{c.app} {c.name!r}: {problem}", style="red"))
        lin = c.linearizability
        if lin is not None and lin.minimal is not None:
            console.print(f"{c.app} {c.name!r}: minimal illegal part ({lin.minimal.label}):")
            for line in lin.minimal.lines():
                console.print(f"  {line}")
            console.print(Text(lin.minimal.explanation))
    verdict = overall(checks)
    console.print(Text("Verdict: ").append(Text(verdict, style=style[verdict])).append(
        {OK: " -- every app instance's history is consistent with its spec (checked for this history).",
         ILLEGAL: " -- some app instance's history breaks its spec.",
         UNKNOWN: " -- a part ran out of the step budget; raise --budget to finish it."}[verdict]))


# ---- the apps' proof obligations (``wormspace prove``: wormspace/proofs/apps.py) ---------------------------


@dataclass(frozen=True, slots=True)
class ObligationReport:
    """What a ``check_*`` function below found: ``render()``'s first line is the bounds."""

    ok: bool
    verdict: str
    lines: tuple[str, ...]

    def render(self) -> str:
        return "\n".join(self.lines)


def check_app_runs(app: str, seeds: int, config: RunConfig | None = None) -> ObligationReport:
    """Checks 1-3 over ``seeds`` concurrent runs of ``app`` under faults: each run's app history against the
    app's spec (linearizability; UNKNOWN is never a pass) and, for WormPaxos/WormKV, the replicas'
    applied lists against ``SmrSpec``. Vacuous (``VACUOUS``) if no run completed an operation."""
    cfg = config or RunConfig()
    bounds = f"{seeds} seeded runs of {cfg.describe()}"
    problems: list[str] = []
    verdict = OK
    completed = 0
    for seed in range(seeds):
        run = app_run(app, seed, cfg)
        v = check_run(run)
        completed += sum(1 for e in run.events if e.get("type") == "ok")
        if v.verdict == ILLEGAL:
            verdict = ILLEGAL
            problems.append(f"seed {seed}: " + "; ".join(v.problems[:3]))
            break
        if v.verdict == UNKNOWN and verdict == OK:
            verdict = UNKNOWN
            problems.append(f"seed {seed}: a partition ran out of its step budget")
    if verdict == OK and completed == 0:
        verdict = "VACUOUS"
        problems.append("no run completed an operation")
    return ObligationReport(ok=verdict == OK, verdict=verdict, lines=(bounds, *problems))


def check_log(quick: bool) -> ObligationReport:
    """``apps.log_positions_unique``: WormLog histories linearizable against ``LogSpec``."""
    return check_app_runs("log", 20 if quick else 150)


def check_paxos(quick: bool) -> ObligationReport:
    """``apps.smr_replicas_agree``: WormPaxos replicas apply prefixes of one command sequence (``SmrSpec``)."""
    return check_app_runs("paxos", 20 if quick else 150)


def check_kv(quick: bool) -> ObligationReport:
    """``apps.kv_linearizable``: WormKV histories linearizable per key against ``KvSpec``."""
    return check_app_runs("kv", 20 if quick else 150)
