"""Seams between the history format, the specs and the checker, each once passed or crashed.

(a) AlreadyWritten naming the value written is illegal (``WorSpec``: that write returns ok); (b) the
per-offset ``results`` of an ``info`` batch_write count; (c) huge integers and deep nesting are bad input
(exit 2), not a crash; (d) non-canonical batch offsets are rejected; (e) shrinking has a time budget, can be
skipped, and the verdict is printed before it starts.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pytest

from wormspace.history import Event, History, HistoryFormatError
from wormspace.refinement import check
from wormspace.refinement.linearizability import check_history
from wormspace.refinement.models import SegmentModel, WorModel, simulate


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="wormspace")
    check.add_parser(parser.add_subparsers(dest="verb", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def write_lines(tmp_path: Path, lines: list[str]) -> str:
    path = tmp_path / "h.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_a_already_written_naming_the_value_written_is_illegal(tmp_path: Path) -> None:
    lines = [
        '{"process": 0, "type": "invoke", "f": "write", "key": 5, "value": "YQ==", "time": 1}',
        '{"process": 0, "type": "ok", "f": "write", "key": 5, "value": null, "time": 2}',
        '{"process": 1, "type": "invoke", "f": "write", "key": 5, "value": "YQ==", "time": 3}',
        '{"process": 1, "type": "fail", "f": "write", "key": 5, "value": null, "time": 4, '
        '"error": "AlreadyWritten", "existing": "YQ=="}',
    ]
    assert check_history(History.from_jsonl("\n".join(lines)), WorModel()).verdict == "ILLEGAL"
    assert run(["check", write_lines(tmp_path, lines)]) == check.EXIT_ILLEGAL
    other = [*lines[:3], lines[3].replace('"existing": "YQ=="', '"existing": "Yg=="')]
    assert check_history(History.from_jsonl("\n".join(other)), WorModel()).verdict == "ILLEGAL"  # holds a
    fine = [lines[0].replace("YQ==", "Yg=="), lines[1], *lines[2:]]  # b written first: AW(b) for a is right
    assert check_history(History.from_jsonl("\n".join(fine).replace('"existing": "YQ=="', '"existing": "Yg=="')),
                         WorModel()).verdict == "OK"


@pytest.mark.parametrize("result", ["ok", "AlreadyWritten"])
def test_b_info_batch_write_results_govern_their_offsets(result: str) -> None:
    existing = ', "existing": {"1": "Yw=="}' if result == "AlreadyWritten" else ""
    lines = [
        '{"process": 2, "type": "invoke", "f": "write", "key": 1, "value": "Yw==", "time": 0}',  # never returns
        '{"process": 0, "type": "invoke", "f": "batch_write", "key": 0, "value": {"0": "YQ==", "1": "Yg=="}, '
        '"time": 1}',
        '{"process": 0, "type": "info", "f": "batch_write", "key": 0, "value": null, "time": 5, '
        f'"error": "Indeterminate", "results": {{"0": "Indeterminate", "1": "{result}"}}{existing}}}',
        '{"process": 1, "type": "invoke", "f": "read", "key": 1, "value": null, "time": 10}',
        '{"process": 1, "type": "ok", "f": "read", "key": 1, "value": null, "time": 11}',
    ]
    h = History.from_jsonl("\n".join(lines))
    assert check_history(h, WorModel()).verdict == "ILLEGAL"  # offset 1 held data by time 5: EMPTY at 10 is not
    legal = History.from_jsonl("\n".join(lines).replace('"time": 10', '"time": 3').replace('"time": 11', '"time": 4'))
    assert check_history(legal, WorModel()).verdict == "OK"  # a read before the batch returned may see EMPTY


def _event_line(**fields: object) -> str:
    base: dict[str, object] = {"process": 0, "type": "invoke", "f": "read", "key": 1, "value": None, "time": 1}
    base.update(fields)
    return json.dumps(base)


@pytest.mark.parametrize("field", ["process", "key", "time"])
def test_c_an_integer_of_thousands_of_digits_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str
) -> None:
    line = _event_line(**{field: 0}).replace(f'"{field}": 0', f'"{field}": {"9" * 5000}')
    assert run(["check", write_lines(tmp_path, [line])]) == check.EXIT_BAD_INPUT
    assert "line 1" in capsys.readouterr().err
    with pytest.raises(HistoryFormatError, match="line 1"):
        History.from_jsonl(line)


def test_c_deep_nesting_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    line = _event_line().replace('"value": null', f'"value": {deep}')
    assert run(["check", write_lines(tmp_path, [line])]) == check.EXIT_BAD_INPUT
    assert "line 1" in capsys.readouterr().err
    deep_obj = '{"a":' * 100_000 + "1" + "}" * 100_000
    assert run(["check", write_lines(tmp_path, [_event_line(extra=0).replace('"extra": 0', f'"extra": {deep_obj}')])]) \
        == check.EXIT_BAD_INPUT


def test_c_huge_integer_in_an_app_history_is_bad_input(tmp_path: Path) -> None:
    line = ('{"process": 0, "type": "invoke", "f": "append", "key": null, "value": "eDA=", '
            f'"time": {"1" * 5000}, "app": "log", "name": "bG9n"}}')
    assert run(["check", write_lines(tmp_path, [line])]) == check.EXIT_BAD_INPUT


@pytest.mark.parametrize("key", ["00", "01", "+1", " 1", "1_0"])
def test_d_non_canonical_batch_offsets_are_rejected(key: str) -> None:
    line = ('{"process": 0, "type": "invoke", "f": "batch_write", "key": 0, '
            f'"value": {{"0": "YQ==", "{key}": "Yg=="}}, "time": 1}}')
    with pytest.raises(HistoryFormatError, match="canonical"):
        History.from_jsonl(line)
    results = ('{"process": 0, "type": "invoke", "f": "batch_write", "key": 0, "value": {"0": "YQ=="}, "time": 1}\n'
               '{"process": 0, "type": "ok", "f": "batch_write", "key": 0, "value": null, "time": 2, '
               f'"results": {{"{key}": "ok"}}}}')
    with pytest.raises(HistoryFormatError, match="canonical"):
        History.from_jsonl(results)


@pytest.mark.parametrize(
    "line",
    [
        # the same offset twice: JSON parsers keep the last silently, so the two values would merge
        '{"process": 0, "type": "invoke", "f": "batch_write", "key": 0, "value": {"0": "YQ==", "0": "Yg=="}, '
        '"time": 1}',
        # a field twice: which type is this event?
        '{"process": 0, "type": "invoke", "f": "write", "key": 0, "value": "YQ==", "time": 1, "type": "ok"}',
        # in an app history too
        '{"process": 0, "type": "invoke", "f": "append", "key": null, "value": "eDA=", "time": 0, "app": "log", '
        '"name": "bG9n", "name": "b3RoZXI="}',
    ],
)
def test_d_a_name_given_twice_in_one_object_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str
) -> None:
    assert run(["check", write_lines(tmp_path, [line])]) == check.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "line 1" in err and "appears twice" in err


def test_c_the_integer_limit_is_named_for_the_user_not_the_interpreter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _event_line().replace('"time": 1', f'"time": {"9" * 4301}')
    assert run(["check", write_lines(tmp_path, [line])]) == check.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "line 1: not a usable JSON value: an integer of more than 4,300 digits" in err
    assert "sys.set_int_max_str_digits" not in err


def test_a_model_level_error_names_the_line_of_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """After an initial line and a blank line, the third line is the third line (not the first event)."""
    lines = ['{"initial": "empty"}', "",
             '{"process": 0, "type": "invoke", "f": "alloc", "key": 5, "value": "YQ==", "time": 1}']
    assert run(["check", write_lines(tmp_path, lines)]) == check.EXIT_BAD_INPUT
    assert "line 3: alloc key 5 is not the first address of a segment" in capsys.readouterr().err
    batch = [*lines[:2], '{"process": 0, "type": "invoke", "f": "batch_write", "key": 0, "value": {"5000": "YQ=="}, '
             '"time": 1}']
    assert run(["check", write_lines(tmp_path, batch)]) == check.EXIT_BAD_INPUT
    assert "line 3: batch_write offset 5000 >= wos size 1024" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("invoke", "completion"),
    [
        ('"f": "write", "key": 0, "value": "YQ=="', '"f": "write", "key": 0, "value": "Yg=="'),
        ('"f": "alloc", "key": 0, "value": "YQ=="', '"f": "alloc", "key": 0, "value": "Yg=="'),
        ('"f": "batch_write", "key": 0, "value": {"0": "YQ=="}',
         '"f": "batch_write", "key": 0, "value": {"0": "Yg=="}'),
    ],
)
def test_a_completion_naming_other_data_than_its_invoke_wrote_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], invoke: str, completion: str
) -> None:
    """Which value was written? An outside tool reading the completion would judge another history."""
    lines = [f'{{"process": 0, "type": "invoke", {invoke}, "time": 1}}',
             f'{{"process": 0, "type": "ok", {completion}, "time": 2}}']
    assert run(["check", write_lines(tmp_path, lines)]) == check.EXIT_BAD_INPUT
    assert "line 2: the" in capsys.readouterr().err
    same = [lines[0], lines[1].replace("Yg==", "YQ==")]
    assert run(["check", write_lines(tmp_path, same)]) == check.EXIT_OK
    from wormspace.errors import UsageError
    from wormspace.history import Recorder

    rec = Recorder(clock=lambda: 0)
    handle = rec.invoke(0, "write", 0, b"a")
    with pytest.raises(UsageError, match="differs"):
        rec.ok(handle, b"b")


@pytest.mark.parametrize(
    ("invoke", "done", "other", "same"),
    [
        ('"app": "log", "f": "append", "key": null, "value": "eDA="', '"app": "log", "f": "append", "key": 0',
         '"eDE="', '"eDA="'),
        ('"app": "kv", "f": "write", "key": "aw==", "value": "dg=="', '"app": "kv", "f": "write", "key": "aw=="',
         '"dw=="', '"dg=="'),
        ('"app": "kv", "f": "cas", "key": "aw==", "value": [null, "dw=="]', '"app": "kv", "f": "cas", "key": "aw=="',
         '[null, "eg=="]', '[null, "dw=="]'),
    ],
)
def test_an_app_completion_naming_other_data_than_its_invoke_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], invoke: str, done: str, other: str, same: str
) -> None:
    def lines(value: str) -> list[str]:
        return [f'{{"process": 0, "type": "invoke", {invoke}, "time": 1, "name": "bg=="}}',
                f'{{"process": 0, "type": "ok", {done}, "value": {value}, "time": 2, "name": "bg=="}}']

    assert run(["check", write_lines(tmp_path, lines(other))]) == check.EXIT_BAD_INPUT
    assert "line 2: the" in capsys.readouterr().err
    assert run(["check", write_lines(tmp_path, lines(same))]) == check.EXIT_OK


def big_illegal_history(n: int = 600) -> History:
    """A valid random history on one address with one read result changed: ILLEGAL, and slow to shrink."""
    events = list(simulate(random.Random(1), operations=n, addresses=1, processes=4, values=3))
    for i in range(len(events) - 1, -1, -1):
        e = events[i]
        if e.f == "read" and e.type == "ok" and e.value is not None:
            events[i] = Event(process=e.process, type="ok", f="read", key=e.key, value=None, time=e.time)
            break
    return History(events)


def test_e_shrinking_has_a_time_budget_and_can_be_skipped() -> None:
    h = big_illegal_history(300)
    said: list[str] = []
    unshrunk = check_history(h, WorModel(), shrink=False, on_verdict=said.append)
    assert said == ["ILLEGAL"] and unshrunk.minimal is not None and unshrunk.minimal.shrunk == "no"
    cut = check_history(h, WorModel(), shrink_seconds=1e-9)
    assert cut.verdict == "ILLEGAL" and cut.minimal is not None and cut.minimal.shrunk == "partial"
    assert check_history(cut.minimal.history, WorModel()).verdict == "ILLEGAL"  # still illegal
    full = check_history(h, WorModel(), shrink_seconds=None)
    assert full.minimal is not None and full.minimal.shrunk == "minimal"
    assert len(full.minimal.operations) <= len(cut.minimal.operations)


def test_e_cli_prints_the_verdict_before_shrinking(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "big.jsonl"
    big_illegal_history().write(path)
    assert run(["check", str(path), "--shrink-seconds", "0.000001"]) == check.EXIT_ILLEGAL
    out = capsys.readouterr().out
    assert out.index("Verdict: ILLEGAL (after") < out.index("shrinking ran out of time")
    assert run(["check", str(path), "--no-shrink", "--json"]) == check.EXIT_ILLEGAL
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "ILLEGAL" and doc["minimal"]["shrunk"] == "no"
    with pytest.raises(SystemExit):
        run(["check", str(path), "--shrink-seconds", "0"])


def test_segment_model_rejects_an_alloc_failing_unallocated() -> None:
    lines = [
        '{"process": 0, "type": "invoke", "f": "alloc", "key": 0, "value": "bQ==", "time": 1}',
        '{"process": 0, "type": "fail", "f": "alloc", "key": 0, "value": null, "time": 2, "error": "Unallocated"}',
    ]
    assert check_history(History.from_jsonl("\n".join(lines)), SegmentModel()).verdict == "ILLEGAL"
