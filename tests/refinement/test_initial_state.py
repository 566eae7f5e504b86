"""Histories recorded on a cluster that already held data: the ``unknown`` initial state (models.py), the
history's ``initial`` line (history.py rule 7) and ``wormspace check --initial``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.refinement.test_check_cli import run
from wormspace.errors import UsageError
from wormspace.history import Event, History, HistoryFormatError, Recorder
from wormspace.refinement import check
from wormspace.refinement.linearizability import ILLEGAL, OK, check_history
from wormspace.refinement.models import SegmentModel, WorModel

SEG = 4
A, B = b"a", b"b"


def ops(*spec: tuple[int, str, str, int, bytes | None, object]) -> History:
    """Sequential operations ``(process, f, type, key, invoke value, completion value or error)``, each
    one time unit after the last; an error string on a fail or info completion."""
    events = []
    for t, (process, f, type_, key, value, out) in enumerate(spec):
        events.append(Event(process=process, type="invoke", f=f, key=key, value=value, time=10 * t))
        if type_ == "ok":
            events.append(Event(process=process, type="ok", f=f, key=key, value=out, time=10 * t + 5))  # type: ignore[arg-type]
        else:
            events.append(Event(process=process, type=type_, f=f, key=key, value=None, time=10 * t + 5,
                                error=out))  # type: ignore[arg-type]
    return History(events)


# A run that found segment 1 allocated, offset 1 written with A: it reads A there, then allocates segment 2.
FOUND_DATA = ops((0, "read", "ok", 5, None, A), (0, "alloc", "ok", 8, B, None), (1, "read", "ok", 6, None, None))


def test_a_run_on_existing_data_is_illegal_from_an_empty_state_and_ok_from_an_unknown_one() -> None:
    assert check_history(FOUND_DATA, SegmentModel(wos_size=SEG)).verdict == ILLEGAL
    assert check_history(FOUND_DATA, SegmentModel(wos_size=SEG, initial="unknown")).verdict == OK
    read_only = ops((0, "read", "ok", 1, None, A))
    assert check_history(read_only, WorModel()).verdict == ILLEGAL
    assert check_history(read_only, WorModel(initial="unknown")).verdict == OK


@pytest.mark.parametrize(
    "history",
    [
        ops((0, "read", "ok", 5, None, A), (1, "read", "ok", 5, None, B)),  # the register changed
        ops((0, "read", "ok", 5, None, A), (1, "read", "ok", 5, None, None)),  # written, then EMPTY
        ops((0, "write", "ok", 5, A, None), (1, "read", "ok", 5, None, None)),
        ops((0, "write", "ok", 5, A, None), (1, "write", "ok", 5, B, None)),
        ops((0, "read", "ok", 6, None, None), (1, "write", "fail", 6, A, "Unallocated")),
        ops((0, "read", "fail", 5, None, "Trimmed"), (1, "read", "ok", 6, None, None)),
        ops((0, "read", "fail", 5, None, "Unallocated"), (1, "read", "ok", 6, None, None)),
        ops((0, "trim", "ok", 4, None, None), (1, "read", "ok", 6, None, None)),
        ops((0, "read", "ok", 5, None, A), (1, "alloc", "ok", 4, B, None)),  # allocated before: cannot win
    ],
    ids=["changed", "unwritten", "write-then-empty", "two-writes", "unallocated-after-read", "trimmed-then-read",
         "unallocated-then-read", "read-after-trim", "alloc-of-a-used-segment"],
)
def test_the_unknown_initial_state_still_catches_what_happens_after_the_first_observation(history: History) -> None:
    """Planted violations: the unknown initial state fixes each register and flag at its first
    observation, so a history breaking the spec after that is still ILLEGAL."""
    assert check_history(history, SegmentModel(wos_size=SEG, initial="unknown")).verdict == ILLEGAL


def test_the_initial_line_round_trips_and_must_come_first() -> None:
    unknown = History(list(FOUND_DATA), initial="unknown")
    text = unknown.to_jsonl()
    assert text.splitlines()[0] == '{"initial": "unknown"}'
    again = History.read(text)
    assert again == unknown and again.initial == "unknown"
    assert History.read(FOUND_DATA.to_jsonl()).initial == "empty"
    assert "initial" not in FOUND_DATA.to_jsonl(), "a fresh run's export is unchanged"
    lines = text.splitlines()
    with pytest.raises(HistoryFormatError, match="line 2: the initial line must be the first line"):
        History.read("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")
    with pytest.raises(HistoryFormatError, match="line 1: initial must be one of empty, unknown"):
        History.read('{"initial": "full"}\n' + "\n".join(lines[1:]))
    with pytest.raises(UsageError):
        Recorder(clock=lambda: 0, initial="full")
    assert Recorder(clock=lambda: 0, initial="unknown").history.initial == "unknown"


def test_check_reads_the_initial_line_and_the_option_overrides_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.jsonl"
    FOUND_DATA.write(plain)
    assert run(["check", "--wos-size", str(SEG), str(plain)]) == check.EXIT_ILLEGAL
    capsys.readouterr()
    assert run(["check", "--initial", "unknown", "--wos-size", str(SEG), str(plain)]) == check.EXIT_OK
    assert "from an unknown initial state" in capsys.readouterr().out
    marked = tmp_path / "marked.jsonl"
    History(list(FOUND_DATA), initial="unknown").write(marked)
    assert run(["check", "--json", "--wos-size", str(SEG), str(marked)]) == check.EXIT_OK
    assert json.loads(capsys.readouterr().out)["initial"] == "unknown"
    assert run(["check", "--initial", "empty", "--wos-size", str(SEG), str(marked)]) == check.EXIT_ILLEGAL


@pytest.mark.parametrize("text", ["", "\n\n", '{"initial": "unknown"}\n'])
def test_an_empty_history_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(text)
    assert run(["check", str(path)]) == check.EXIT_BAD_INPUT
    assert "holds no events: an empty history is not a run to check" in capsys.readouterr().err
    assert run(["check", "--json", str(path)]) == check.EXIT_BAD_INPUT
    assert json.loads(capsys.readouterr().out)["verdict"] is None
