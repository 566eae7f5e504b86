"""The ``wormspace check`` verb: exit codes, messages naming lines, ``--json``, ``--html`` and stdin."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from wormspace.history import Event, History
from wormspace.refinement import check

DATA = Path(__file__).resolve().parent.parent / "data" / "histories"


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="wormspace")
    check.add_parser(parser.add_subparsers(dest="verb", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def hard_history_file(tmp_path: Path) -> Path:
    """Illegal only through the shared allocation flag, amid 12 independent writes (see the checker tests)."""
    events = [Event(process=98, type="invoke", f="alloc", key=0, value=b"m", time=0),
              Event(process=99, type="invoke", f="write", key=1, value=b"a", time=0)]
    events += [Event(process=p, type="invoke", f="write", key=3 + p, value=bytes([p]), time=0) for p in range(12)]
    events += [Event(process=99, type="ok", f="write", key=1, value=None, time=10),
               Event(process=97, type="invoke", f="read", key=2, value=None, time=50),
               Event(process=97, type="fail", f="read", key=2, value=None, time=60, error="Unallocated")]
    events += [Event(process=p, type="ok", f="write", key=3 + p, value=None, time=100) for p in range(12)]
    events.append(Event(process=98, type="ok", f="alloc", key=0, value=None, time=100))
    path = tmp_path / "hard.jsonl"
    History(events).write(path)
    return path


def test_ok_history_exits_0_with_a_partition_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check", str(DATA / "concurrent-writes-ok.jsonl")]) == check.EXIT_OK
    out = capsys.readouterr().out
    assert "address 1" in out and "Verdict: OK" in out and "Partitions" in out


def test_illegal_history_exits_1_and_prints_the_minimal_sub_history(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check", str(DATA / "two-writes-bad.jsonl")]) == check.EXIT_ILLEGAL
    out = capsys.readouterr().out
    assert "Minimal illegal sub-history" in out
    assert "write(1, b'a') -> ok" in out and "write(1, b'b') -> ok" in out
    assert "Verdict: ILLEGAL" in out


def test_budget_exhaustion_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = hard_history_file(tmp_path)
    assert run(["check", str(path), "--wos-size", "64", "--budget", "100"]) == check.EXIT_UNKNOWN
    assert "Verdict: UNKNOWN" in capsys.readouterr().out
    assert run(["check", str(path), "--wos-size", "64"]) == check.EXIT_ILLEGAL


def test_json_output_is_one_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check", "--json", str(DATA / "read-after-trim-bad.jsonl")]) == check.EXIT_ILLEGAL
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1
    obj = json.loads(out)
    assert obj["verdict"] == "ILLEGAL" and obj["model"] == "segment"
    assert obj["partitions"] == [{"key": 0, "label": "segment 0", "verdict": "ILLEGAL", "operations": 4,
                                  "steps": obj["partitions"][0]["steps"], "linearization": None}]
    minimal = obj["minimal"]
    assert [o["description"] for o in minimal["operations"]][-1] == "read(5) -> b'a'"
    assert minimal["events"][0]["type"] == "invoke"
    assert run(["check", "--json", str(DATA / "segment-lifecycle-ok.jsonl")]) == check.EXIT_OK
    ok = json.loads(capsys.readouterr().out)
    assert ok["verdict"] == "OK" and ok["minimal"] is None
    assert all(p["linearization"] for p in ok["partitions"])


def test_stdin_and_model_choice(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    text = (DATA / "two-writes-bad.jsonl").read_text()
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert run(["check", "-", "--json"]) == check.EXIT_ILLEGAL
    assert json.loads(capsys.readouterr().out)["file"] == "<stdin>"
    # Under the segment model the writes also need an allocated segment: still illegal, for that reason.
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert run(["check", "-", "--json", "--model", "segment"]) == check.EXIT_ILLEGAL
    assert json.loads(capsys.readouterr().out)["model"] == "segment"


def test_html_report_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.html"
    assert run(["check", str(DATA / "value-changed-after-read-bad.jsonl"), "--html", str(out)]) == 1
    page = out.read_text()
    assert page.count('class="op ') == 4 and "offending" in page


MALFORMED = [
    ('{"process":0,"type":"ok","f":"read","key":1,"value":null,"time":2}\n', "line 1:", "without its invoke"),
    ('{"process":0,"type":"invoke","f":"read","key":1,"value":null,"time":1}\n'
     '{"process":0,"type":"invoke","f":"read","key":1,"value":null,"time":2}\n', "line 2:", "is open"),
    ('\n{"process":0,"type":"invoke","f":"write","key":1,"value":"%%","time":1}\n', "line 2:", "base64"),
    ('{"process":0,"type":"begin","f":"write","key":1,"value":"YQ==","time":1}\n', "line 1:", "unknown type"),
    ('{"process":0,"type":"invoke","f":"put","key":1,"value":"YQ==","time":1}\n', "line 1:", "unknown f"),
    ('{"process":0,"type":"invoke","f":"write","key":1,"value":"YQ=="}\n', "line 1:", "missing field 'time'"),
    ('{"process":0,"type":"invoke","f":"alloc","key":3,"value":"","time":1}\n', "line 1:", "first address"),
]


@pytest.mark.parametrize(("text", "where", "what"), MALFORMED)
def test_bad_input_exits_2_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, where: str, what: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    assert run(["check", str(path)]) == check.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert f"{path}: {where}" in err and what in err
    assert run(["check", "--json", str(path)]) == check.EXIT_BAD_INPUT
    obj = json.loads(capsys.readouterr().out)
    assert obj["verdict"] is None and obj["line"] == int(where.split()[1].rstrip(":"))


def test_missing_file_and_bad_options_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check", str(tmp_path / "absent.jsonl")]) == check.EXIT_BAD_INPUT
    assert "cannot read" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        run(["check", str(DATA / "two-writes-bad.jsonl"), "--budget", "0"])
    assert exit_.value.code == 2


def test_an_unwritable_html_path_is_refused_before_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not after a long check whose verdict was already printed: before any of it, as a bad option."""
    for out in (tmp_path / "absent-dir" / "t.html", tmp_path):
        assert run(["check", str(DATA / "two-writes-bad.jsonl"), "--html", str(out)]) == check.EXIT_BAD_INPUT
        got = capsys.readouterr()
        assert f"cannot write {out}" in got.err
        assert "Verdict" not in got.out


def test_wormspace_command_dispatches_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    from wormspace.cli import main

    assert main(["check", "--json", str(DATA / "info-write-no-effect-ok.jsonl")]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "OK"
