"""Histories: the Event rules, the JSON-lines round trip, pairing, and the Recorder."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from wormspace.errors import UsageError
from wormspace.history import PROCESS_STRIDE, Event, History, HistoryFormatError, Recorder, operations
from wormspace.refinement.linearizability import check_history
from wormspace.refinement.models import simulate

DATA = Path(__file__).resolve().parent.parent / "data" / "histories"


def clock() -> Iterator[int]:
    t = 0
    while True:
        t += 10
        yield t


def recorded() -> History:
    ticks = clock()
    rec = Recorder(lambda: next(ticks))
    w = rec.invoke(0, "write", 3, b"a")
    r = rec.invoke(1, "read", 3, None)
    rec.ok(w, b"a")
    rec.ok(r, None)
    w2 = rec.invoke(1, "write", 3, b"b")
    rec.fail(w2, "AlreadyWritten", existing=b"a")
    r2 = rec.invoke(2, "read", 3, None)
    rec.ok(r2, b"a")
    e = rec.invoke(2, "write", 4, b"")
    rec.ok(e, b"")
    b = rec.invoke(0, "batch_write", 0, {3: b"a", 5: b"c"})
    rec.info(b, "AlreadyWritten", results={3: "ok", 5: "AlreadyWritten"}, existing={5: b"z"})
    i = rec.invoke(3, "write", 9, b"q")
    rec.info(i)
    rec.invoke(4, "write", 10, b"never-acknowledged")
    return rec.history


def test_recorder_round_trips_through_jsonl_with_the_same_verdict(tmp_path: Path) -> None:
    history = recorded()
    path = tmp_path / "h.jsonl"
    history.write(path)
    again = History.read(path)
    assert again == history
    assert list(again) == list(history)
    assert History.read(history.to_jsonl()) == history
    assert check_history(again).verdict == check_history(history).verdict == "ILLEGAL"  # 5 -> z unsupported
    fixed = History(e for e in history if e.f != "batch_write")
    assert check_history(History.read(fixed.to_jsonl())).verdict == "OK"


def test_export_format_fields_are_exactly_the_contract() -> None:
    lines = [json.loads(line) for line in recorded().to_jsonl().splitlines()]
    assert lines[0] == {"process": 0, "type": "invoke", "f": "write", "key": 3, "value": "YQ==", "time": 10}
    assert lines[3] == {"process": 1, "type": "ok", "f": "read", "key": 3, "value": None, "time": 40}
    assert lines[5] == {"process": 1, "type": "fail", "f": "write", "key": 3, "value": None, "time": 60,
                        "error": "AlreadyWritten", "existing": "YQ=="}
    assert lines[9]["value"] == ""  # b"" is base64 "", distinct from null (EMPTY)
    assert lines[10]["value"] == {"3": "YQ==", "5": "Yw=="}
    assert lines[11]["results"] == {"3": "ok", "5": "AlreadyWritten"}
    assert lines[11]["existing"] == {"5": "eg=="}
    assert lines[13] == {"process": 3, "type": "info", "f": "write", "key": 9, "value": None, "time": 140,
                         "error": "Indeterminate"}


def test_simulated_histories_round_trip() -> None:
    for seed in range(20):
        h = simulate(random.Random(seed), operations=80, addresses=8, processes=5, segments=seed % 3,
                     wos_size=4)
        assert History.read(h.to_jsonl()) == h


def test_operations_pair_invokes_and_completions() -> None:
    ops = operations(recorded())
    assert [op.id for op in ops] == list(range(len(ops)))
    w, r = ops[0], ops[1]
    assert (w.f, w.call, w.ret, w.outcome, w.line, w.ret_line) == ("write", 10, 30, "ok", 1, 3)
    assert (r.output, r.outcome) == (None, "ok")
    assert ops[2].existing == b"a" and ops[2].error == "AlreadyWritten"
    assert ops[5].results == {3: "ok", 5: "AlreadyWritten"}
    info = ops[6]
    assert (info.outcome, info.ret, info.end, info.error) == ("info", None, 140, "Indeterminate")
    pending = ops[7]
    assert (pending.outcome, pending.ret, pending.end, pending.ret_line) == ("info", None, None, None)


def test_empty_bytes_and_empty_register_stay_distinct() -> None:
    text = (
        '{"process":0,"type":"invoke","f":"read","key":1,"value":null,"time":1}\n'
        '{"process":0,"type":"ok","f":"read","key":1,"value":"","time":2}\n'
        '{"process":0,"type":"invoke","f":"read","key":1,"value":null,"time":3}\n'
        '{"process":0,"type":"ok","f":"read","key":1,"value":null,"time":4}\n'
    )
    h = History.read(text)
    assert h[1].value == b"" and h[3].value is None


BAD = [
    ('{"process":0,"type":"ok","f":"read","key":1,"value":null,"time":2}', 1, "without its invoke"),
    ('{"process":0,"type":"invoke","f":"read","key":1,"value":null,"time":1}\n'
     '{"process":0,"type":"invoke","f":"read","key":2,"value":null,"time":2}', 2, "from line 1 is open"),
    ('{"process":0,"type":"invoke","f":"write","key":1,"value":"@@@","time":1}', 1, "not valid base64"),
    ('{"process":0,"type":"invoke","f":"write","key":1,"value":"YQ","time":1}', 1, "not valid base64"),
    ('{"process":0,"type":"call","f":"write","key":1,"value":"YQ==","time":1}', 1, "unknown type 'call'"),
    ('{"process":0,"type":"invoke","f":"cas","key":1,"value":"YQ==","time":1}', 1, "unknown f 'cas'"),
    ('{"process":0,"type":"invoke","f":"write","value":"YQ==","time":1}', 1, "missing field 'key'"),
    ('{"type":"invoke","f":"write","key":1,"value":"YQ==","time":1}', 1, "missing field 'process'"),
    ('{"process":0,"type":"invoke","f":"read","key":1,"value":null}', 1, "missing field 'time'"),
    ('\n\n{"process":0,"type":"invoke","f":"write","key":1,"value":null,"time":1}', 3, "needs a value"),
    ('{"process":0,"type":"invoke","f":"read","key":1,"value":null,"time":1}\n'
     '{"process":0,"type":"fail","f":"read","key":1,"value":null,"time":2}', 2, "needs an error"),
    ('{"process":0,"type":"invoke","f":"read","key":1,"value":null,"time":1}\n'
     '{"process":0,"type":"fail","f":"read","key":1,"value":null,"time":2,"error":"Oops"}', 2, "unknown error"),
    ('{"process":0,"type":"invoke","f":"read","key":1,"value":null,"time":5}\n'
     '{"process":0,"type":"ok","f":"read","key":1,"value":null,"time":4}', 2, "before its invoke"),
    ('{"process":0,"type":"invoke","f":"read","key":1,"value":null,"time":1}\n'
     '{"process":0,"type":"ok","f":"write","key":1,"value":null,"time":2}', 2, "does not match"),
    ('{"process":0,"type":"invoke","f":"read","key":-1,"value":null,"time":1}', 1, "non-negative"),
    ('{"process":true,"type":"invoke","f":"read","key":1,"value":null,"time":1}', 1, "process must be"),
    ('[1, 2]', 1, "JSON object"),
    ('{"process":0,', 1, "not valid JSON"),
    ('{"process":0,"type":"invoke","f":"batch_write","key":0,"value":{"x":"YQ=="},"time":1}', 1, "decimal"),
    ('{"process":0,"type":"invoke","f":"batch_write","key":0,"value":{"0":"YQ=="},"time":1}\n'
     '{"process":0,"type":"ok","f":"batch_write","key":0,"value":null,"time":2,"results":{"0":"ok","1":"ok"}}',
     2, "results name offsets"),
    ('{"process":0,"type":"invoke","f":"batch_write","key":0,"value":{"0":"YQ=="},"time":1}\n'
     '{"process":0,"type":"ok","f":"batch_write","key":0,"value":null,"time":2,"results":{"0":"Trimmed"}}',
     2, "exactly when every offset"),
    ('{"process":0,"type":"invoke","f":"read","key":1,"value":null,"time":1}\n'
     '{"process":0,"type":"fail","f":"read","key":1,"value":null,"time":2,"error":"AlreadyWritten"}',
     2, "cannot fail with AlreadyWritten"),
    ('{"process":0,"type":"invoke","f":"write","key":1,"value":"YQ==","time":1}\n'
     '{"process":0,"type":"fail","f":"write","key":1,"value":null,"time":2,"error":"CaptureStale",'
     '"existing":"Yg=="}', 2, "existing is allowed only"),
    ('{"process":0,"type":"invoke","f":"write","key":1,"value":"YQ==","time":1}\n'
     '{"process":0,"type":"fail","f":"write","key":1,"value":null,"time":2,"error":"Indeterminate"}',
     2, "type info"),
    ('{"process":0,"type":"invoke","f":"read","key":1,"value":null,"time":1,"process":1}', 1, "appears twice"),
    ('{"process":0,"type":"invoke","f":"read","key":1,"value":null,"time":1}\n'
     '{"process":0,"type":"ok","f":"read","key":1,"value":null,"time":2,"error":"Trimmed"}',
     2, "an ok completion carries no error"),
    ('{"process":0,"type":"invoke","f":"batch_write","key":0,"value":{"0":"YQ=="},"time":1}\n'
     '{"process":0,"type":"info","f":"batch_write","key":0,"value":null,"time":2,"results":{}}',
     2, "results must be a non-empty map"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD)
def test_malformed_history_is_rejected_naming_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(HistoryFormatError) as err:
        History.read(text + "\n")
    assert err.value.line == line
    assert message in str(err.value)
    assert str(err.value).startswith(f"line {line}: ")
    assert isinstance(err.value, UsageError)


def test_read_accepts_paths_and_reports_missing_files(tmp_path: Path) -> None:
    good = DATA / "two-writes-bad.jsonl"
    assert len(History.read(good)) == 4
    assert len(History.read(str(good))) == 4
    assert len(History.read("")) == 0
    with pytest.raises(HistoryFormatError, match="cannot read"):
        History.read(tmp_path / "absent.jsonl")


def test_unknown_fields_are_ignored_and_info_error_defaults_to_indeterminate() -> None:
    h = History.read(
        '{"process":0,"type":"invoke","f":"write","key":1,"value":"YQ==","time":1,"index":0}\n'
        '{"process":0,"type":"info","f":"write","key":1,"value":null,"time":2}\n'
    )
    (op,) = operations(h)
    assert (op.outcome, op.error, op.ret) == ("info", "Indeterminate", None)


def test_event_validates_on_construction() -> None:
    with pytest.raises(HistoryFormatError, match="unknown f"):
        Event(process=0, type="invoke", f="append", key=1, value=b"x", time=0)
    with pytest.raises(HistoryFormatError, match="bytes"):
        Event(process=0, type="invoke", f="write", key=1, value="x", time=0)  # type: ignore[arg-type]


def test_an_event_naming_a_negative_offset_in_its_results_is_refused() -> None:
    with pytest.raises(HistoryFormatError, match="offset -1 is not a non-negative int"):
        Event(process=0, type="info", f="batch_write", key=0, value=None, time=2, error="Indeterminate",
              results={-1: "Indeterminate"})


def test_recorder_rejects_misuse() -> None:
    rec = Recorder(lambda: 0)
    h = rec.invoke(0, "write", 1, b"a")
    rec.ok(h)
    with pytest.raises(UsageError, match="no open operation"):
        rec.ok(h)
    b = rec.invoke(0, "batch_write", 0, {1: b"a"})
    with pytest.raises(UsageError, match="results name offsets"):
        rec.ok(b, results={2: "ok"})
    with pytest.raises(UsageError, match="exactly when every offset"):
        rec.ok(b, results={1: "CaptureStale"})
    rec.fail(b, "CaptureStale", results={1: "CaptureStale"})
    assert len(rec.history) == 4


def test_recorder_gives_concurrent_operations_of_one_client_their_own_processes() -> None:
    rec = Recorder(lambda: 0)
    a = rec.invoke(3, "write", 1, b"a")
    b = rec.invoke(3, "read", 1, None)
    c = rec.invoke(3, "read", 2, None)
    rec.ok(b, b"a")
    d = rec.invoke(3, "read", 2, None)  # the first free number again
    for h in (a, c, d):
        rec.ok(h, b"a" if h == a else None)
    procs = [e.process for e in rec.history if e.type == "invoke"]
    assert procs == [3, 3 + PROCESS_STRIDE, 3 + 2 * PROCESS_STRIDE, 3 + PROCESS_STRIDE]
    ops = operations(rec.history)  # the pairing rules hold
    assert [op.process for op in ops] == procs


def test_recorder_never_invokes_again_on_a_process_whose_operation_ended_info() -> None:
    """Jepsen's convention: an info operation may take effect at any later time, so its process has crashed
    and does nothing more; Knossos and Elle read a process as one thread."""
    rec = Recorder(lambda: 0)
    a = rec.invoke(3, "write", 1, b"a")
    rec.info(a)
    b = rec.invoke(3, "read", 1, None)  # the client carries on, under a fresh number
    rec.ok(b, b"a")
    c = rec.invoke(3, "read", 1, None)  # an ok frees its number as before
    rec.ok(c, b"a")
    w = rec.invoke(3, "batch_write", 0, {2: b"x", 3: b"y"})
    rec.info(w, results={2: "ok", 3: "Indeterminate"})  # a partly applied batch is info: crashed too
    d = rec.invoke(3, "read", 2, None)
    rec.ok(d, b"x")
    procs = [e.process for e in rec.history if e.type == "invoke"]
    assert procs == [3, 3 + PROCESS_STRIDE, 3 + PROCESS_STRIDE, 3 + PROCESS_STRIDE, 3 + 2 * PROCESS_STRIDE]
    crashed = {e.process for e in rec.history if e.type == "info"}
    for p in crashed:  # nothing follows an info on its process
        last = max(i for i, e in enumerate(rec.history) if e.process == p)
        assert rec.history[last].type == "info"


def test_a_history_reusing_a_crashed_process_is_still_read() -> None:
    text = (
        '{"process": 0, "type": "invoke", "f": "write", "key": 1, "value": "YQ==", "time": 1}\n'
        '{"process": 0, "type": "info", "f": "write", "key": 1, "value": null, "time": 2}\n'
        '{"process": 0, "type": "invoke", "f": "read", "key": 1, "value": null, "time": 3}\n'
        '{"process": 0, "type": "ok", "f": "read", "key": 1, "value": "YQ==", "time": 4}\n'
    )
    ops = operations(History.read(text))
    assert [(op.f, op.outcome, op.ret) for op in ops] == [("write", "info", None), ("read", "ok", 4)]


def test_recorder_completion_is_never_before_its_invoke() -> None:
    times = iter([100, 50])
    rec = Recorder(lambda: next(times))
    rec.ok(rec.invoke(0, "read", 1, None), b"a")
    assert [e.time for e in rec.history] == [100, 100]
