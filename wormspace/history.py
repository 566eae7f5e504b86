"""Call/return histories of WormSpace operations, and their Jepsen-style JSON-lines form.

A history is the list of events a test or a run observed, in the order they were recorded. Rules:

1. Every operation is an ``invoke`` event followed, on the same ``process``, by at most one completion:
   ``ok`` (it took effect and returned), ``fail`` (it certainly took no effect; ``error`` says why) or
   ``info`` (indeterminate: it may take effect at any point after its invoke, or never). An invoke that is
   never completed is treated as ``info``.
2. A process has at most one operation open at a time; a completion names the same ``f`` and ``key`` as
   its invoke and is not earlier than it. A process whose operation ended ``info`` has crashed, in the
   Jepsen convention, and invokes nothing more: ``Recorder`` runs that client's later operations under a
   fresh number. (Histories that reuse such a process are still read: an ``info`` operation is open until
   +infinity whatever follows it on its process.)
3. ``key`` is an address; for ``alloc``, ``trim``, ``batch_write`` and ``batch_capture`` it is the first
   address of the segment (``segment * wos_size``).
4. Values are bytes (base64 in JSON), ``None`` (JSON ``null``; for a read's result it means EMPTY, which is
   distinct from ``b""``), or for ``batch_write`` a map offset -> bytes (offset keys in canonical decimal:
   ``"0"``, ``"17"``, never ``"00"``).
5. ``fail`` carries an ``error`` among ``CaptureStale``, ``AlreadyWritten``, ``Trimmed``, ``Unallocated``;
   ``info`` may carry one (``Indeterminate`` when absent). A ``fail`` with ``AlreadyWritten`` may carry
   ``existing``, the data the register holds.
6. A ``batch_write`` completion may carry ``results`` (offset -> ``"ok"`` or an outcome name); when present
   they govern each offset (in an ``info`` completion too), the completion's ``type`` is ``ok`` exactly when
   every offset succeeded, and
   ``existing`` is then a map offset -> bytes for the ``AlreadyWritten`` offsets. ``Recorder`` writes
   ``fail`` only when no offset is ``ok`` or ``Indeterminate`` (nothing took effect), else ``info``; a
   ``fail`` naming such offsets, as earlier versions wrote, is still read, its results governing.

JSON lines (one object per line; blank lines are skipped, unknown fields are ignored)::

    {"process": 3, "type": "invoke", "f": "write", "key": 7, "value": "YQ==", "time": 1200}
    {"process": 3, "type": "fail", "f": "write", "key": 7, "value": null, "time": 1900,
     "error": "AlreadyWritten", "existing": "Yg=="}

7. A history may open with one line ``{"initial": "unknown"}`` (or ``"empty"``, the default): the state of
   the space when the run began. ``unknown`` marks a run recorded on a cluster that already held data.

``History.read`` validates every field and the pairing rules above and raises ``HistoryFormatError`` naming
the line. ``operations`` pairs invokes with their completions. ``Recorder`` builds histories from a clock.
"""

from __future__ import annotations

import base64
import binascii
import gc
import json
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wormspace.errors import OUTCOME_NAMES, UsageError

TYPES = ("invoke", "ok", "fail", "info")
FUNCTIONS = ("capture", "write", "read", "alloc", "trim", "batch_write", "batch_capture")
ERRORS = tuple(OUTCOME_NAMES.values())
FAIL_ERRORS = tuple(e for e in ERRORS if e != "Indeterminate")
RESULTS = ("ok", *ERRORS)
INDETERMINATE = "Indeterminate"
ALREADY_WRITTEN = "AlreadyWritten"
#: Functions whose invoke must carry a value (the data to write).
_NEEDS_VALUE = ("write", "alloc")
#: Functions that may fail with ``AlreadyWritten`` (and so carry ``existing``).
_MAY_CONFLICT = ("write", "alloc", "batch_write")

Value = bytes | dict[int, bytes] | None
#: What a run found when it began: a fresh, empty space, or a cluster that may already hold data.
INITIAL_STATES = ("empty", "unknown")
#: A client's concurrent operations, and its operations after one that ended ``info`` (rule 2), are recorded as
#: processes ``p``, ``p + PROCESS_STRIDE``, ... (``Recorder``).
PROCESS_STRIDE = 1_000_000


class HistoryFormatError(UsageError):
    """A history is malformed; ``line`` is the 1-based line (event position) at fault, when known."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line
        self.message = message


def _is_int(v: object) -> bool:
    return type(v) is int


def _check_value(name: str, v: object, *, allow_map: bool) -> None:
    if v is None or type(v) is bytes:
        return
    if allow_map and isinstance(v, dict):
        for k, b in v.items():
            if not _is_int(k) or k < 0:
                raise HistoryFormatError(None, f"{name}: offset {k!r} is not a non-negative int")
            if type(b) is not bytes:
                raise HistoryFormatError(None, f"{name}: offset {k} must map to bytes")
        return
    kind = "bytes, None or a map offset -> bytes" if allow_map else "bytes or None"
    raise HistoryFormatError(None, f"{name} must be {kind}, got {type(v).__name__}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One line of a history: an invoke or a completion (see the module rules)."""

    process: int
    type: str
    f: str
    key: int
    value: bytes | dict[int, bytes] | None
    time: int
    error: str | None = None
    existing: bytes | dict[int, bytes] | None = None
    results: dict[int, str] | None = None

    def __post_init__(self) -> None:
        problem = _event_problem(self)
        if problem is not None:
            raise HistoryFormatError(None, problem)

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON-ready object in the export format."""
        out: dict[str, Any] = {
            "process": self.process,
            "type": self.type,
            "f": self.f,
            "key": self.key,
            "value": _encode_value(self.value),
            "time": self.time,
        }
        if self.error is not None:
            out["error"] = self.error
        if self.existing is not None:
            out["existing"] = _encode_value(self.existing)
        if self.results is not None:
            out["results"] = {str(k): v for k, v in sorted(self.results.items())}
        return out


def _event_problem(e: Event) -> str | None:
    """Why ``e`` breaks the per-event rules, or None."""
    if not _is_int(e.process):
        return f"process must be an int, got {e.process!r}"
    if e.type not in TYPES:
        return f"unknown type {e.type!r} (expected one of {', '.join(TYPES)})"
    if e.f not in FUNCTIONS:
        return f"unknown f {e.f!r} (expected one of {', '.join(FUNCTIONS)})"
    if not _is_int(e.key) or e.key < 0:
        return f"key must be a non-negative int address, got {e.key!r}"
    if not _is_int(e.time):
        return f"time must be an int (ns), got {e.time!r}"
    batch = e.f == "batch_write"
    try:
        _check_value("value", e.value, allow_map=batch)
        _check_value("existing", e.existing, allow_map=batch)
    except HistoryFormatError as err:
        return err.message
    if e.type == "invoke":
        if e.error is not None or e.existing is not None or e.results is not None:
            return "an invoke carries no error, existing or results"
        if e.f in _NEEDS_VALUE and type(e.value) is not bytes:
            return f"a {e.f} invoke needs a value (base64)"
        if batch and (not isinstance(e.value, dict) or not e.value):
            return "a batch_write invoke needs a value mapping offsets to base64 data"
        return None
    if isinstance(e.value, dict) and not batch:
        return f"a {e.f} completion value must be base64 or null"
    if e.results is not None:
        if not batch:
            return "only a batch_write completion carries results"
        if not isinstance(e.results, dict) or not e.results:
            return "results must be a non-empty map offset -> outcome"
        for k, r in e.results.items():
            if not _is_int(k) or k < 0:
                return f"results: offset {k!r} is not a non-negative int"
            if r not in RESULTS:
                return f"results: unknown outcome {r!r} for offset {k} (expected one of {', '.join(RESULTS)})"
        all_ok = all(r == "ok" for r in e.results.values())
        if (e.type == "ok") != all_ok:
            return "a batch_write completion is type ok exactly when every offset's result is ok"
    if e.type == "ok":
        if e.error is not None or e.existing is not None:
            return "an ok completion carries no error or existing"
        return None
    if e.error is None:
        if e.type == "fail":
            return "a fail completion needs an error"
    elif e.error not in ERRORS:
        return f"unknown error {e.error!r} (expected one of {', '.join(ERRORS)})"
    elif e.type == "fail" and e.error == INDETERMINATE and e.results is None:
        return "an Indeterminate outcome is type info, not fail"
    if e.error == ALREADY_WRITTEN and e.f not in _MAY_CONFLICT:
        return f"a {e.f} cannot fail with AlreadyWritten"
    if e.existing is not None:
        if batch:
            if not isinstance(e.existing, dict):
                return "a batch_write's existing must map offsets to base64 data"
            for k in e.existing:
                if e.results is None or e.results.get(k) != ALREADY_WRITTEN:
                    return f"existing names offset {k}, whose result is not AlreadyWritten"
        elif e.error != ALREADY_WRITTEN or e.type != "fail":
            return "existing is allowed only on a fail with error AlreadyWritten"
    return None


def _encode_bytes(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _encode_value(v: Value) -> Any:
    if v is None:
        return None
    if isinstance(v, dict):
        return {str(k): _encode_bytes(b) for k, b in sorted(v.items())}
    return _encode_bytes(v)


def _decode_bytes(name: str, s: object) -> bytes:
    if not isinstance(s, str):
        raise HistoryFormatError(None, f"{name} must be a base64 string or null, got {type(s).__name__}")
    try:
        return base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise HistoryFormatError(None, f"{name} is not valid base64: {s[:40]!r}") from None


def _decode_offset(name: str, k: str) -> int:
    """An offset key: a canonical decimal integer ("0", "17"; never "00" or "+1", which would merge with
    another spelling of the same offset)."""
    if not k.isdecimal() or not k.isascii() or (k[0] == "0" and len(k) > 1) or len(k) > _MAX_OFFSET_DIGITS:
        raise HistoryFormatError(None, f"{name}: offset {k[:40]!r} is not a canonical decimal integer")
    return int(k)


_MAX_OFFSET_DIGITS = 19  # offsets are below any segment size; longer keys are bad input, not a slow int()


class _DuplicateName(ValueError):
    pass


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose names are all distinct (the parser would keep the last of two silently)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _DuplicateName(f"the name {name[:40]!r} appears twice in one object")
            seen.add(name)
    return obj


def json_line(n: int, raw: str) -> object:
    """One JSON value of line ``n``, or ``HistoryFormatError`` naming the line: invalid JSON, an object that
    names a field (or a batch offset) twice, an integer of more digits than Python converts
    (``sys.get_int_max_str_digits``, 4,300), or nesting deeper than the parser's recursion limit are bad
    input, not a crash."""
    try:
        return json.loads(raw, object_pairs_hook=_unique_names)
    except json.JSONDecodeError as e:
        raise HistoryFormatError(n, f"not valid JSON: {e.msg}") from None
    except _DuplicateName as e:
        raise HistoryFormatError(n, f"not a usable JSON value: {e}") from None
    except ValueError as e:  # "Exceeds the limit (4300 digits) for integer string conversion: ..."
        limit = sys.get_int_max_str_digits()
        why = f"an integer of more than {limit:,} digits" if "integer string conversion" in str(e) else str(e)
        raise HistoryFormatError(n, f"not a usable JSON value: {why}") from None
    except RecursionError:
        raise HistoryFormatError(n, "not a usable JSON value: nested too deeply") from None


def _decode_value(name: str, v: object, *, allow_map: bool) -> Value:
    if v is None:
        return None
    if isinstance(v, dict):
        if not allow_map:
            raise HistoryFormatError(None, f"{name} must be a base64 string or null, got an object")
        return {_decode_offset(name, k): _decode_bytes(f"{name}[{k}]", b) for k, b in v.items()}
    return _decode_bytes(name, v)


_REQUIRED = ("process", "type", "f", "key", "time")


def _event_from_json(obj: object) -> Event:
    if not isinstance(obj, dict):
        raise HistoryFormatError(None, "an event must be a JSON object")
    for name in _REQUIRED:
        if name not in obj:
            raise HistoryFormatError(None, f"missing field {name!r}")
    f = obj["f"]
    batch = f == "batch_write"
    results_raw = obj.get("results")
    results: dict[int, str] | None = None
    if results_raw is not None:
        if not isinstance(results_raw, dict):
            raise HistoryFormatError(None, "results must be an object offset -> outcome")
        results = {_decode_offset("results", k): r for k, r in results_raw.items()}
    return Event(
        process=obj["process"],
        type=obj["type"],
        f=f,
        key=obj["key"],
        value=_decode_value("value", obj.get("value"), allow_map=batch),
        time=obj["time"],
        error=obj.get("error"),
        existing=_decode_value("existing", obj.get("existing"), allow_map=batch),
        results=results,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """An invoke paired with its completion.

    ``call``/``ret`` are the invoke and completion times; ``ret`` is None when the outcome is ``info`` (or
    the operation never completed): the call then counts as returning at +infinity. ``end`` is the time of
    the completion event whatever its type (None when there is none). ``output`` is the completion's value
    (a read's result); ``line``/``ret_line`` are the 1-based positions of the two events.
    """

    id: int
    process: int
    f: str
    key: int
    value: Value
    call: int
    ret: int | None
    end: int | None
    outcome: str
    error: str | None
    existing: Value
    output: Value
    results: dict[int, str] | None
    line: int
    ret_line: int | None


def _check_initial(initial: object) -> str:
    if initial not in INITIAL_STATES:
        raise HistoryFormatError(
            None, f"initial must be one of {', '.join(INITIAL_STATES)}, got {initial!r}"
        )
    assert isinstance(initial, str)
    return initial


class History:
    """An ordered list of events; ``read`` parses and validates the JSON-lines export format.

    ``initial`` is the state the run began from (rule 7): ``empty`` or ``unknown``. A history read from
    text keeps each event's line in the text, and its operations as paired while validating (``operations``
    gives them, naming those lines); ``append`` drops both."""

    __slots__ = ("_events", "_lines", "_ops", "initial")

    def __init__(self, events: Iterable[Event] = (), *, initial: str = "empty") -> None:
        self._events: list[Event] = list(events)
        self._lines: list[int] | None = None
        self._ops: list[Operation] | None = None
        self.initial = _check_initial(initial)

    def append(self, event: Event) -> None:
        self._events.append(event)
        self._lines = self._ops = None

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    def __len__(self) -> int:
        return len(self._events)

    def __getitem__(self, i: int) -> Event:
        return self._events[i]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, History) and self._events == other._events and self.initial == other.initial

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        extra = "" if self.initial == "empty" else f", initial {self.initial}"
        return f"History({len(self._events)} events{extra})"

    def to_jsonl(self) -> str:
        """The history in the export format: one compact JSON object per line (after the ``initial`` line,
        written only when the initial state is not ``empty``)."""
        head = "" if self.initial == "empty" else json.dumps({"initial": self.initial}) + "\n"
        return head + "".join(json.dumps(e.to_json(), separators=(",", ":")) + "\n" for e in self._events)

    def write(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(self.to_jsonl(), encoding="utf-8")

    @classmethod
    def from_jsonl(cls, text: str) -> History:
        """Parse and validate JSON-lines text; raises ``HistoryFormatError`` naming the line.

        One pass: each event is validated once as it is built, and the garbage collector is paused meanwhile
        (every object built is kept, so its passes would find nothing to free)."""
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return cls._from_jsonl(text)
        finally:
            if was_enabled:
                gc.enable()

    @classmethod
    def _from_jsonl(cls, text: str) -> History:
        numbered = [(n, raw) for n, raw in enumerate(text.splitlines(), start=1) if raw and not raw.isspace()]
        objs = [json_line(n, raw) for n, raw in numbered]
        events: list[Event] = []
        lines: list[int] = []
        initial = "empty"
        first = numbered[0][0] if numbered else None  # the only place for the initial line
        for (n, _), obj in zip(numbered, objs, strict=True):
            if isinstance(obj, dict) and "initial" in obj and "type" not in obj:
                if n != first:
                    raise HistoryFormatError(n, "the initial line must be the first line of the history")
                try:
                    initial = _check_initial(obj["initial"])
                except HistoryFormatError as e:
                    raise HistoryFormatError(n, e.message) from None
                continue
            try:
                events.append(_event_from_json(obj))
            except HistoryFormatError as e:
                raise HistoryFormatError(n, e.message) from None
            except RecursionError:  # a deep structure in a field that is compared or rendered
                raise HistoryFormatError(n, "a field is nested too deeply") from None
            lines.append(n)
        history = cls(events, initial=initial)
        history._ops = _pair(history, lines)  # validates the pairing rules
        history._lines = lines
        return history

    @classmethod
    def read(cls, path_or_text: str | os.PathLike[str]) -> History:
        """Read a history from a path, or from JSON-lines text.

        A ``PathLike`` is always a path; a ``str`` is text when it is empty, spans several lines or starts
        with ``{``, and a path otherwise.
        """
        if isinstance(path_or_text, str):
            stripped = path_or_text.lstrip()
            if not stripped or "\n" in path_or_text or stripped.startswith("{"):
                return cls.from_jsonl(path_or_text)
        try:
            text = Path(path_or_text).read_text(encoding="utf-8")
        except OSError as e:
            raise HistoryFormatError(None, f"cannot read {os.fspath(path_or_text)}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise HistoryFormatError(None, f"{os.fspath(path_or_text)} is not UTF-8 text") from None
        return cls.from_jsonl(text)


def operations(history: Iterable[Event]) -> list[Operation]:
    """Pair invokes with completions (rules 1-2); open invokes become ``info`` operations.

    Raises ``HistoryFormatError`` with the 1-based event position (for a history read from text, its line)
    when the pairing rules are broken. Operations are numbered in invoke order, from 0; their ``line`` and
    ``ret_line`` are likewise lines of the text for a history read from it.
    """
    if isinstance(history, History):
        if history._ops is not None:
            return list(history._ops)
        return _pair(history, history._lines)
    return _pair(History(history), None)


def _pair(history: History, lines: list[int] | None) -> list[Operation]:
    open_: dict[int, tuple[int, Event, int]] = {}  # process -> (op id, invoke, line)
    done: list[tuple[int, Operation]] = []
    next_id = 0
    for i, e in enumerate(history):
        line = lines[i] if lines is not None else i + 1
        if e.type == "invoke":
            if e.process in open_:
                prev_line = open_[e.process][2]
                raise HistoryFormatError(
                    line, f"process {e.process} invokes while its operation from line {prev_line} is open"
                )
            open_[e.process] = (next_id, e, line)
            next_id += 1
            continue
        if e.process not in open_:
            article = "a" if e.type == "fail" else "an"
            raise HistoryFormatError(line, f"{article} {e.type} completion of process {e.process} without its invoke")
        op_id, inv, inv_line = open_.pop(e.process)
        if e.f != inv.f or e.key != inv.key:
            raise HistoryFormatError(
                line, f"completion {e.f} key {e.key} does not match invoke {inv.f} key {inv.key} (line {inv_line})"
            )
        if e.time < inv.time:
            raise HistoryFormatError(line, f"completion time {e.time} is before its invoke's {inv.time}")
        if (why := _value_mismatch(inv, e)) is not None:
            raise HistoryFormatError(line, f"{why} (line {inv_line})")
        if e.results is not None:
            assert isinstance(inv.value, dict)  # checked per event: a batch_write invoke maps offsets
            if set(e.results) != set(inv.value):
                raise HistoryFormatError(
                    line, f"results name offsets {sorted(e.results)}, the invoke wrote {sorted(inv.value)}"
                )
        done.append((op_id, _operation(op_id, inv, inv_line, e, line)))
    for op_id, inv, inv_line in open_.values():
        done.append((op_id, _operation(op_id, inv, inv_line, None, None)))
    done.sort(key=lambda p: p[0])
    return [op for _, op in done]


def _value_mismatch(inv: Event, end: Event) -> str | None:
    """A completion of a write, alloc or batch_write may repeat the data its invoke wrote, and nothing else
    (an outside tool reading the completion's value would judge other data than this checker)."""
    writes = inv.f in _NEEDS_VALUE or inv.f == "batch_write"
    if writes and end.value is not None and end.value != inv.value:
        return f"the {inv.f} completion's value differs from the data its invoke wrote"
    return None


def _operation(op_id: int, inv: Event, line: int, end: Event | None, ret_line: int | None) -> Operation:
    outcome = "info" if end is None else end.type
    error = end.error if end is not None else None
    if outcome == "info" and error is None:
        error = INDETERMINATE
    return Operation(
        id=op_id,
        process=inv.process,
        f=inv.f,
        key=inv.key,
        value=inv.value,
        call=inv.time,
        ret=None if end is None or outcome == "info" else end.time,
        end=None if end is None else end.time,
        outcome=outcome,
        error=error,
        existing=None if end is None else end.existing,
        output=None if end is None else end.value,
        results=None if end is None else end.results,
        line=line,
        ret_line=ret_line,
    )


class Recorder:
    """Builds a ``History`` as operations run: ``invoke`` returns a handle that one completion closes.
    ``initial`` is the history's initial state (rule 7): ``unknown`` for a run on a cluster holding data.

    Thread-safe. Concurrent operations of one client (asyncio tasks sharing a client) are recorded under
    their own process numbers: an invoke on a process that has an operation open, or whose operation ended
    ``info`` (crashed, rule 2), runs under the first free number among ``process + k * PROCESS_STRIDE``
    (k = 1, 2, ...). Misuse (an unknown handle, results that do not match the invoke) raises ``UsageError``.
    """

    def __init__(self, clock: Callable[[], int], *, initial: str = "empty") -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[int, Event] = {}  # handle -> invoke
        self._busy: set[int] = set()  # processes with an operation open, and crashed ones (rule 2)
        self._next = 0
        try:
            self.history = History(initial=initial)
        except HistoryFormatError as e:
            raise UsageError(e.message) from None

    def invoke(self, process: int, f: str, key: int, value: Value) -> int:
        with self._lock:
            while process in self._busy:
                process += PROCESS_STRIDE
            event = Event(process=process, type="invoke", f=f, key=key, value=value, time=self._clock())
            handle = self._next
            self._next += 1
            self._open[handle] = event
            self._busy.add(process)
            self.history.append(event)
            return handle

    def ok(self, handle: int, value: Value = None, results: Mapping[int, str] | None = None) -> None:
        self._complete(handle, "ok", value=value, results=results)

    def fail(
        self,
        handle: int,
        error: str,
        existing: Value = None,
        results: Mapping[int, str] | None = None,
    ) -> None:
        if results is not None and any(r in ("ok", INDETERMINATE) for r in results.values()):
            raise UsageError("a fail completion took no effect: a batch with an offset ok or Indeterminate is info")
        self._complete(handle, "fail", error=error, existing=existing, results=results)

    def info(
        self,
        handle: int,
        error: str = INDETERMINATE,
        existing: Value = None,
        results: Mapping[int, str] | None = None,
    ) -> None:
        self._complete(handle, "info", error=error, existing=existing, results=results)

    def _complete(
        self,
        handle: int,
        type_: str,
        *,
        value: Value = None,
        error: str | None = None,
        existing: Value = None,
        results: Mapping[int, str] | None = None,
    ) -> None:
        with self._lock:
            inv = self._open.get(handle)
            if inv is None:
                raise UsageError(f"no open operation with handle {handle}")
            res = dict(results) if results is not None else None
            if res is not None and isinstance(inv.value, dict) and set(res) != set(inv.value):
                raise UsageError(f"results name offsets {sorted(res)}, the invoke wrote {sorted(inv.value)}")
            end = Event(
                process=inv.process,
                type=type_,
                f=inv.f,
                key=inv.key,
                value=value,
                time=max(self._clock(), inv.time),
                error=error,
                existing=existing,
                results=res,
            )
            if (why := _value_mismatch(inv, end)) is not None:
                raise UsageError(why)
            del self._open[handle]
            if type_ != "info":  # after an info the process has crashed: it stays busy for good (rule 2)
                self._busy.discard(inv.process)
            self.history.append(end)


__all__ = [
    "ALREADY_WRITTEN",
    "ERRORS",
    "FAIL_ERRORS",
    "FUNCTIONS",
    "INDETERMINATE",
    "INITIAL_STATES",
    "RESULTS",
    "TYPES",
    "Event",
    "History",
    "HistoryFormatError",
    "Operation",
    "PROCESS_STRIDE",
    "Recorder",
    "Value",
    "json_line",
    "operations",
]
