"""Refinement checks of the apps: replica agreement, app histories, lockstep machines, concurrent runs."""

from __future__ import annotations

import argparse
import base64
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from tests.refinement.independent_wor import processes_are_threads
from wormspace import cli, history
from wormspace.apps import history as app_history
from wormspace.history import HistoryFormatError
from wormspace.refinement import apps_lockstep, check
from wormspace.refinement.apps_lockstep import (
    LOCKSTEP_SOMETIMES,
    KvLockstep,
    LogLockstep,
    PaxosLockstep,
    lockstep_bounds,
)
from wormspace.refinement.linearizability import ILLEGAL, OK, UNKNOWN
from wormspace.refinement.models import Input, LogModel, Output, RegisterModel, Slot
from wormspace.refinement.wormspace_to_apps import (
    APPS,
    KvModel,
    RunConfig,
    WormLogModel,
    app_run,
    check_app_history,
    check_replicas,
    check_run,
    is_app_history,
)


def counter() -> Callable[[bytes], bytes]:
    """A deterministic state machine: the running total of the commands' lengths, as its result."""
    total = 0

    def apply(cmd: bytes) -> bytes:
        nonlocal total
        total += len(cmd)
        return str(total).encode()

    return apply


def test_replicas_that_are_prefixes_of_one_sequence_pass() -> None:
    verdict = check_replicas(
        {"r0": [b"a", b"bb", b"c"], "r1": [b"a"], "r2": []},
        {b"a": b"1", b"bb": b"3", b"c": None, b"dd": None},
        counter,
    )
    assert verdict.ok, verdict.problems
    assert verdict.sequence == (b"a", b"bb", b"c") and verdict.replicas == 3


def test_replica_check_names_each_broken_rule() -> None:
    order = check_replicas({"r0": [b"a", b"bb"], "r1": [b"bb", b"a"]}, {b"a": None, b"bb": None}, counter)
    assert not order.ok and "not a prefix" in order.problems[0]
    twice = check_replicas({"r0": [b"a", b"a"]}, {b"a": b"1"}, counter)
    assert any("applied 2 times" in p for p in twice.problems)
    invented = check_replicas({"r0": [b"x"]}, {}, counter)
    assert any("never submitted" in p for p in invented.problems)
    lost = check_replicas({"r0": [b"a"]}, {b"a": b"1", b"bb": b"3"}, counter)
    assert any("no replica applied" in p for p in lost.problems)
    wrong = check_replicas({"r0": [b"a", b"bb"]}, {b"a": b"1", b"bb": b"2"}, counter)
    assert any("the spec's result there is b'3'" in p for p in wrong.problems)


# --- lockstep machines -------------------------------------------------------------------------------------

LOCKSTEP = settings(max_examples=200, stateful_step_count=25, deadline=None)


@pytest.mark.parametrize("machine", [LogLockstep, PaxosLockstep, KvLockstep], ids=["log", "paxos", "kv"])
def test_lockstep_with_the_app_spec_under_faults(machine: type[RuleBasedStateMachine]) -> None:
    print(f"\n{machine.__name__} bounds: {lockstep_bounds()}; {LOCKSTEP.max_examples} runs of <= "
          f"{LOCKSTEP.stateful_step_count} steps")
    sometimes = LOCKSTEP_SOMETIMES[machine.__name__]
    witnessed = apps_lockstep.lockstep_witnessed
    before = {name: witnessed[name] for name in sometimes}
    run_state_machine_as_test(machine, settings=LOCKSTEP)
    met = {name: witnessed[name] - before[name] for name in sometimes}
    print("witnessed: " + ", ".join(f"{name} x{n}" for name, n in met.items()))
    missing = [name for name, n in met.items() if not n]
    assert not missing, f"never witnessed (the lockstep runs are vacuous for these): {missing}"


# --- app histories, hand-made ------------------------------------------------------------------------------


def b64(b: bytes | None) -> str | None:
    return None if b is None else base64.b64encode(b).decode("ascii")


def app_op(app: str, process: int, f: str, call: int, ret: int | None, *, key: object = None,
           value: object = None, out_key: object = None, out: object = None, type_: str = "ok",
           error: str | None = None) -> list[dict[str, object]]:
    """An invoke and (unless ``ret`` is None) its completion, as ``AppHistory`` records them."""
    common = {"process": process, "f": f, "app": app, "name": b64(b"t")}
    events: list[dict[str, object]] = [{**common, "type": "invoke", "key": key, "value": value, "time": call}]
    if ret is not None:
        end = {**common, "type": type_, "key": key if out_key is None else out_key, "value": out, "time": ret}
        if error is not None:
            end["error"] = error
        events.append(end)
    return events


def timed(*ops: list[dict[str, object]]) -> list[dict[str, object]]:
    events = [e for o in ops for e in o]
    return sorted(events, key=lambda e: (e["time"], e["type"] == "invoke"))


def verdict_of(events: list[dict[str, object]]) -> tuple[str, tuple[str, ...]]:
    [check] = check_app_history(events)
    return check.verdict, check.problems


def kv_write(p: int, k: bytes, v: bytes | None, call: int, ret: int | None) -> list[dict[str, object]]:
    return app_op("kv", p, "write", call, ret, key=b64(k), value=b64(v), out=b64(v))


def kv_read(p: int, k: bytes, v: bytes | None, call: int, ret: int) -> list[dict[str, object]]:
    return app_op("kv", p, "read", call, ret, key=b64(k), out=b64(v))


def kv_cas(p: int, k: bytes, e: bytes | None, n: bytes, call: int, ret: int | None,
           swapped: bool = True) -> list[dict[str, object]]:
    return app_op("kv", p, "cas", call, ret, key=b64(k), value=[b64(e), b64(n)], out=[b64(e), b64(n)],
                  type_="ok" if swapped else "fail")


def test_kv_history_with_overwrites_is_linearizable_where_write_once_reductions_would_fail() -> None:
    # the overwrite shape of the checker tests, on WormKV: put 1; put 2 [2, 10]; put 1 [3, 100]; get -> 1
    events = timed(kv_write(0, b"k", b"1", 0, 1), kv_write(1, b"k", b"2", 2, 10), kv_write(2, b"k", b"1", 3, 100),
                   kv_read(3, b"k", b"1", 20, 30))
    assert verdict_of(events) == (OK, ())
    assert verdict_of(timed(kv_write(0, b"k", b"1", 0, 1), kv_write(1, b"k", b"2", 2, 10),
                            kv_read(3, b"k", b"1", 20, 30)))[0] == ILLEGAL


def test_kv_cas_and_delete_follow_kvspec() -> None:
    ok = timed(kv_write(0, b"k", b"a", 0, 1), kv_cas(1, b"k", b"a", b"b", 2, 3), kv_cas(2, b"k", b"a", b"c", 4, 5,
               swapped=False), kv_write(0, b"k", None, 6, 7), kv_cas(1, b"k", None, b"d", 8, 9),
               kv_read(2, b"k", b"d", 10, 11), kv_read(3, b"j", None, 0, 11))
    assert verdict_of(ok) == (OK, ())
    ignoring_expected = timed(kv_write(0, b"k", b"a", 0, 1), kv_cas(1, b"k", b"z", b"b", 2, 3))
    assert verdict_of(ignoring_expected)[0] == ILLEGAL
    refused_wrongly = timed(kv_write(0, b"k", b"a", 0, 1), kv_cas(1, b"k", b"a", b"b", 2, 3, swapped=False))
    assert verdict_of(refused_wrongly)[0] == ILLEGAL
    [check] = check_app_history(ignoring_expected)
    assert check.linearizability is not None and check.linearizability.minimal is not None
    assert "key b'k'" in check.linearizability.minimal.label


def log_append(p: int, data: bytes, pos: int | None, call: int, ret: int | None) -> list[dict[str, object]]:
    return app_op("log", p, "append", call, ret, value=b64(data), out_key=pos, out=b64(data),
                  type_="ok" if pos is not None else "info", error=None if pos is not None else "Indeterminate")


def log_read(p: int, pos: int, data: bytes | None, call: int, ret: int) -> list[dict[str, object]]:
    return app_op("log", p, "read", call, ret, key=pos, out=b64(data))


def log_tail(p: int, t: int, call: int, ret: int) -> list[dict[str, object]]:
    return app_op("log", p, "tail", call, ret, out=t)


def test_log_history_checks_positions_junk_and_tails() -> None:
    ok = timed(log_append(0, b"a", 0, 0, 5), log_append(1, b"b", 2, 1, 6), log_read(2, 1, None, 7, 9),
               log_read(2, 2, b"b", 10, 11), log_tail(3, 3, 12, 13), log_append(4, b"c", None, 14, None),
               log_read(2, 3, b"c", 20, 21))
    assert verdict_of(ok) == (OK, ())
    twice = timed(log_append(0, b"a", 0, 0, 5), log_append(1, b"b", 0, 1, 6))
    assert verdict_of(twice)[0] == ILLEGAL
    junk_then_data = timed(log_read(2, 0, None, 0, 1), log_append(0, b"a", 0, 2, 5))
    assert verdict_of(junk_then_data)[0] == ILLEGAL
    never = timed(log_read(2, 0, b"x", 0, 1))
    assert verdict_of(never)[0] == ILLEGAL
    short_tail = timed(log_append(0, b"a", 0, 0, 5), log_append(1, b"b", 2, 1, 6), log_tail(3, 1, 12, 13))
    verdict, problems = verdict_of(short_tail)
    assert verdict == ILLEGAL and "position 2" in problems[0]
    long_tail = timed(log_append(0, b"a", 0, 0, 5), log_tail(3, 2, 6, 7), log_append(1, b"b", 1, 8, 9))
    verdict, problems = verdict_of(long_tail)
    assert verdict == ILLEGAL and "below it" in problems[0]


def paxos_submit(p: int, cmd: bytes, pos: int, call: int, ret: int) -> list[dict[str, object]]:
    return app_op("paxos", p, "submit", call, ret, value=b64(cmd), out_key=pos, out=b64(b"r"))


def test_paxos_history_checks_one_sequence_in_real_time_order() -> None:
    assert verdict_of(timed(paxos_submit(0, b"a", 1, 0, 5), paxos_submit(1, b"b", 0, 1, 6)))[0] == OK
    verdict, problems = verdict_of(timed(paxos_submit(0, b"a", 3, 0, 5), paxos_submit(1, b"b", 3, 1, 6)))
    assert verdict == ILLEGAL and "position 3" in problems[0]
    verdict, problems = verdict_of(timed(paxos_submit(0, b"a", 3, 0, 5), paxos_submit(1, b"b", 2, 6, 7)))
    assert verdict == ILLEGAL and "earlier position 2" in problems[0]


@pytest.mark.parametrize(("events", "message"), [
    ([{"process": 0, "type": "invoke", "f": "append", "app": "bank", "name": "dA==", "time": 0}], "unknown app"),
    ([{"process": 0, "type": "invoke", "f": "cas", "app": "log", "name": "dA==", "time": 0}], "unknown f"),
    ([{"process": 0, "type": "ok", "f": "read", "key": 0, "app": "log", "name": "dA==", "time": 0}],
     "without its invoke"),
    ([{"process": 0, "type": "invoke", "f": "cas", "key": "aw==", "value": ["YQ=="], "app": "kv", "name": "dA==",
       "time": 0}], "[expected or null, new]"),
    ([{"process": 0, "type": "invoke", "f": "read", "key": 0, "app": "log", "time": 0}], "missing field 'name'"),
    ([{"process": 0, "type": "invoke", "f": "read", "key": 0, "time": 0, "value": None}], "separate files"),
    ([{"process": 0, "type": "invoke", "f": "append", "key": None, "value": "YQ==", "app": "log", "name": "dA==",
       "time": 0}, {"process": 0, "type": "ok", "f": "append", "key": None, "value": "YQ==", "app": "log",
                    "name": "dA==", "time": 1}], "key is its position"),
])
def test_malformed_app_histories_are_format_errors(events: list[dict[str, object]], message: str) -> None:
    with pytest.raises(HistoryFormatError, match=re.escape(message)):
        check_app_history(events)


def test_an_app_history_names_the_line_at_fault() -> None:
    text = json.dumps(log_read(0, 0, b"a", 0, 1)[0]) + "\n\n{nope\n"
    with pytest.raises(HistoryFormatError, match="line 3"):
        check_app_history(text)
    assert is_app_history("\n" + text) and not is_app_history('{"process": 1}\n') and not is_app_history("")


# --- concurrent runs ---------------------------------------------------------------------------------------

RUN_SEEDS = {"log": range(50), "paxos": range(50), "kv": range(50)}


def test_app_histories_number_processes_as_wor_level_ones() -> None:
    assert app_history.PROCESS_STRIDE == history.PROCESS_STRIDE


@pytest.mark.parametrize("app", APPS)
def test_concurrent_app_runs_under_faults_pass_every_check(app: str) -> None:
    seen: Counter[str] = Counter()
    for seed in RUN_SEEDS[app]:
        run = app_run(app, seed)
        verdict = check_run(run)
        assert verdict.verdict == OK, (seed, verdict.problems)
        processes_are_threads(run.events)
        for e in run.events:
            if e["type"] != "invoke":
                seen[f"{e['f']} {e['type']}"] += 1
                if e["f"] == "read" and e["type"] == "ok" and e["value"] is None:
                    seen["read of junk or absent"] += 1
        if verdict.replicas is not None:
            seen["commands"] += len(verdict.replicas.sequence)
    print(f"\n{app}: {len(RUN_SEEDS[app])} runs of {RunConfig().describe()}: {dict(sorted(seen.items()))}")
    sometimes = {"log": ["append ok", "read ok", "tail ok", "read of junk or absent"],
                 "paxos": ["submit ok", "commands"], "kv": ["cas ok", "cas fail", "write ok", "read ok"]}[app]
    assert all(seen[s] for s in sometimes), f"never seen: {[s for s in sometimes if not seen[s]]}"


@pytest.mark.parametrize("app", APPS)
def test_many_clients_at_once(app: str) -> None:
    config = RunConfig(clients=10, ops=6, keys=3)
    for seed in range(2):
        run = app_run(app, seed, config)
        verdict = check_run(run)
        assert verdict.verdict == OK, (seed, verdict.problems)
        assert len({e["process"] for e in run.events}) >= 10


@pytest.mark.parametrize("policy", ["elected", "rotating"])
def test_concurrent_replicas_under_other_policies(policy: str) -> None:
    for seed in range(3):
        verdict = check_run(app_run("paxos", seed, RunConfig(policy=policy, clients=3, ops=5)))
        assert verdict.verdict == OK, (policy, seed, verdict.problems)


def test_app_runs_replay_exactly_from_their_seed() -> None:
    assert app_run("kv", 5).events == app_run("kv", 5).events


# --- wormspace check on app histories ----------------------------------------------------------------------


def check_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="wormspace")
    check.add_parser(parser.add_subparsers(dest="verb", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


def test_wormspace_check_judges_app_histories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "kv.jsonl"
    good.write_text(app_run("kv", 1, RunConfig(ops=4)).jsonl())
    assert check_cli(["check", str(good)]) == 0
    assert "App instances" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(e) + "\n" for e in timed(
        kv_write(0, b"k", b"a", 0, 1), kv_cas(1, b"k", b"z", b"b", 2, 3))))
    assert check_cli(["check", str(bad), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == ILLEGAL and out["apps"][0]["app"] == "kv"
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(log_read(0, 0, b"a", 0, 1)[0]) + "\n{nope\n")
    assert check_cli(["check", str(broken)]) == 2
    assert "line 2" in capsys.readouterr().err
    assert check_cli(["check", str(good), "--html", str(tmp_path / "x.html")]) == 2


# --- wormspace demo --app ----------------------------------------------------------------------------------


@pytest.mark.parametrize("app", APPS)
def test_demo_runs_each_app_under_faults_and_its_history_rechecks(
    app: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"{app}.jsonl"
    assert cli.main(["demo", "--app", app, "--seed", "3", "--history-out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "checks" in text and "OK" in text and "VIOLATED" not in text
    assert is_app_history(out.read_text())
    assert cli.main(["check", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["apps"][0]["app"] == app


def test_demo_json_reports_every_app(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--app", "paxos", "--json", "--ops", "3"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["verdict"] == OK and summary["replicas"] == "OK" and summary["problems"] == []
    assert cli.main(["demo", "--json", "--ops", "4"]) == 0
    assert json.loads(capsys.readouterr().out)["apps"] == {"log": OK, "paxos": OK, "kv": OK}
    assert cli.main(["demo", "--app", "log", "--real"]) == 2


# --- the adapted models agree with the generic ones --------------------------------------------------------


def same(a: tuple[bool, object], b: tuple[bool, object]) -> bool:
    """The same verdict, and the same next state when the step is accepted."""
    return a[0] == b[0] and (not a[0] or a[1] == b[1])


def test_kv_model_on_kvspec_agrees_with_the_generic_register_model() -> None:
    values = [None, b"a", b"b"]
    kv, generic = KvModel(), RegisterModel()
    inputs = [Input(f="read", key=0, value=None)] + [Input(f="write", key=0, value=v) for v in values] + [
        Input(f="cas", key=0, value=n, expected=e) for e in values for n in values if n is not None]
    for state in values:
        for inp in inputs:
            for out in [Output(outcome=o, value=v) for o in ("ok", "fail", "info") for v in values]:
                assert same(kv.step(state, inp, out), generic.step(state, inp, out)), (state, inp, out)
    assert not kv.write_once


def test_log_model_on_logspec_agrees_with_the_generic_log_model() -> None:
    states = [None, Slot(None), Slot(b"a"), Slot(b"b")]
    inputs = [Input(f="append", key=3, value=b"a"), Input(f="read", key=3, value=None),
              Input(f="fill", key=3, value=None)]
    wl, generic = WormLogModel(), LogModel()
    for state in states:
        for inp in inputs:
            for out in [Output(outcome=o, value=v) for o in ("ok", "fail", "info") for v in (None, b"a", b"b")]:
                if inp.f == "fill" and out.value is not None:
                    continue  # a fill is a read that answered junk
                assert same(wl.step(state, inp, out), generic.step(state, inp, out)), (state, inp, out)
    assert wl.write_once


# --- app history files, Porcupine style ----------------------------------------------------------------------

APP_DATA = Path(__file__).resolve().parent.parent / "data" / "app-histories"


@pytest.mark.parametrize("path", sorted(APP_DATA.glob("*.jsonl")), ids=lambda p: p.name)
def test_app_history_file_verdict(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = OK if path.name.endswith("-ok.jsonl") else ILLEGAL
    assert check_cli(["check", str(path), "--json"]) == (0 if expected == OK else 1)
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == expected
    lin = out["apps"][0]["linearizability"]
    if lin is not None and lin["minimal"] is not None:  # the minimal illegal part is a history file itself
        small = tmp_path / "minimal.jsonl"
        small.write_text("".join(json.dumps(e) + "\n" for e in lin["minimal"]["events"]))
        assert check_cli(["check", str(small)]) == 1


def test_app_history_files_cover_every_app_and_both_verdicts() -> None:
    names = [p.name for p in APP_DATA.glob("*.jsonl")]
    for app in APPS:
        assert any(n.startswith(app) and n.endswith("-ok.jsonl") for n in names)
        assert any(n.startswith(app) and n.endswith("-bad.jsonl") for n in names)


def test_an_exhausted_budget_is_unknown_never_a_pass(capsys: pytest.CaptureFixture[str]) -> None:
    events = app_run("kv", 2, RunConfig(ops=4)).events
    [check_] = check_app_history(events, budget=1)
    assert check_.verdict == UNKNOWN
    path = APP_DATA / "kv-run-seed1-ok.jsonl"
    assert check_cli(["check", str(path), "--budget", "1"]) == 3
    assert "UNKNOWN" in capsys.readouterr().out
    assert check_cli(["check", str(path)]) == 0


# ---- an outcome raised after the operation's own write: info, never fail -----------------------------------


def _op(app: str, p: int, f: str, key: object, value: object, end: str, out: object = None, *, t: int = 0,
        error: str | None = None) -> list[dict[str, object]]:
    name = base64.b64encode(app.encode()).decode()
    done: dict[str, object] = {"process": p, "type": end, "f": f, "key": key, "value": out, "time": t + 1,
                               "app": app, "name": name}
    if error is not None:
        done["error"] = error
    return [{"process": p, "type": "invoke", "f": f, "key": key, "value": value, "time": t, "app": app,
             "name": name}, done]


@pytest.mark.parametrize("app", ["log", "kv"])
def test_a_write_that_may_have_landed_is_info_and_one_that_failed_must_not_show_up(app: str) -> None:
    """A write ended by ``CaptureStale`` after its value was sent is recorded ``info``: its value showing
    up later is legal. Recorded ``fail`` (certainly no effect), the same history is ILLEGAL."""
    v = base64.b64encode(b"v").decode()
    for end, verdict in (("info", OK), ("fail", ILLEGAL)):
        if app == "log":
            events = [*_op("log", 0, "append", None, v, end, error="CaptureStale"),
                      *_op("log", 1, "read", 0, None, "ok", v, t=5)]
        else:
            events = [*_op("kv", 0, "write", "aw==", v, end, error="CaptureStale"),
                      *_op("kv", 1, "read", "aw==", None, "ok", v, t=5)]
        [result] = check_app_history(events)
        assert result.verdict == verdict, (end, result.problems)
    if app == "log":
        [failed] = check_app_history([*_op("log", 0, "append", None, v, "fail", error="CaptureStale"),
                                      *_op("log", 1, "read", 0, None, "ok", v, t=5)])
        assert any("certainly not appended" in p for p in failed.problems), failed.problems


def test_a_failed_submit_must_not_be_applied() -> None:
    verdict = check_replicas({"r0": [b"a"]}, {b"a": None}, counter, failed=[b"a"])
    assert any("recorded as failed" in p for p in verdict.problems)
    assert check_replicas({"r0": [b"a"]}, {b"a": None}, counter).ok  # an indeterminate submit may be applied


def test_a_tx_vote_that_landed_before_capture_stale_is_recorded_info_and_judged_legal() -> None:
    from tests.apps.helpers import tx_vote_lands_then_stale
    from wormspace.refinement.wormspace_to_tx import check_tx_history

    events, chosen = tx_vote_lands_then_stale()
    vote_end = next(e for e in events if e["f"] == "vote" and e["type"] != "invoke")
    assert vote_end["type"] == "info" and vote_end["error"] == "CaptureStale"
    assert chosen[(0, 0)] == b"YES"  # its value is chosen, and the decide committed on it
    assert check_tx_history(events, chosen=chosen) == []
    assert [c.verdict for c in check_app_history(events)] == [OK]
