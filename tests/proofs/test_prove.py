"""The proof layer (wormspace/proofs/): the registry, the composition check and its planted gaps, the exit
rule, the JSON shape of DESIGN §4, counterexample traces (text and SVG), the generated report, and real
discharges (clean, and with a planted bug)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.mutants.conftest import plant_core
from wormspace.cli import main
from wormspace.layers import wor, wos
from wormspace.proofs import apps as proofs_apps
from wormspace.proofs import checks, prove
from wormspace.proofs.composition import compose
from wormspace.proofs.obligations import (
    CHECKED,
    COUNTEREXAMPLE,
    NOT_CONFIRMED,
    REGISTRY,
    UNKNOWN,
    Bounds,
    Evidence,
    Obligation,
    Outcome,
    Run,
    TraceStep,
    discharge,
    load,
    obligations,
)
from wormspace.proofs.report import TABLE_HEADER, TITLE, markdown, svg, trace_text

ROOT = Path(__file__).resolve().parents[2]

NAMES = {
    "acceptor": [
        "promise_never_decreases",
        "vote_at_most_one_value_per_ballot",
        "vote_never_above_promise",
        "fence_floor_respected",
    ],
    "wor": ["immutability", "agreement", "linearizable", "sometimes_written"],
    "wos": ["alloc_unique", "trim_permanent", "batch_equals_sequence"],
    "wormspace": ["segments_independent"],
    "apps": ["log_positions_unique", "smr_replicas_agree", "kv_linearizable", "atomic_commit"],
}


@pytest.fixture(autouse=True)
def _registry_loaded() -> None:
    """Tests read ``REGISTRY`` directly: load every layer's obligations first, whatever ran before."""
    load()


def test_every_layer_registers_its_named_obligations() -> None:
    for layer, names in NAMES.items():
        assert [ob.name for ob in obligations(layer)] == names
    assert [ob.layer for ob in obligations()] == [layer for layer, names in NAMES.items() for _ in names]


# ---- composition ----------------------------------------------------------------------------------------


def test_the_chain_is_closed() -> None:
    c = compose()
    assert c.gaps == []
    assert c.closed


def test_a_missing_app_module_is_a_named_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    row = proofs_apps.APP_CHECKS["log_positions_unique"]
    monkeypatch.setitem(proofs_apps.APP_CHECKS, "log_positions_unique",
                        proofs_apps.AppCheck(app="wormspace.apps.nolog", spec=row.spec, checker=row.checker,
                                             function=row.function))
    c = compose()
    assert not c.closed
    assert "apps.log_positions_unique: wormspace.apps.nolog (spec LogSpec) is not in this build" in c.gaps


def test_a_spec_primitive_without_an_obligation_is_a_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wos.WosSpec, "frobnicate", lambda self: None, raising=False)
    assert "wos: spec primitive WosSpec.frobnicate has no obligation" in compose().gaps


def test_a_pair_that_judges_against_another_layers_spec_is_a_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    from wormspace.refinement import wor_to_wos

    monkeypatch.setattr(wor_to_wos, "WosSpec", wor.WorSpec)
    monkeypatch.setattr(wor_to_wos, "abstract_segment", None)
    gaps = compose().gaps
    assert "pair wormspace.refinement.wor_to_wos: does not use wos's spec WosSpec" in gaps
    assert "pair wormspace.refinement.wor_to_wos: does not use wos's abstraction function abstract_segment" in gaps
    assert "pair wormspace.refinement.wor_to_wos: also refers to the spec of another layer: WorSpec" in gaps


def test_reliance_on_an_undischarged_or_higher_guarantee_is_a_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    ob = REGISTRY["wos.alloc_unique"]
    bad = Obligation(name=ob.name, layer=ob.layer, statement=ob.statement, method=ob.method, bounds=ob.bounds,
                     discharge=ob.discharge, covers=ob.covers, pair="acceptor_to_wor",
                     relies_on=("wor.no_such_thing", "wormspace.segments_independent"))
    monkeypatch.setitem(REGISTRY, ob.key, bad)
    gaps = compose().gaps
    assert "wos.alloc_unique: relies on wor.no_such_thing, which no layer discharges" in gaps
    assert "wos.alloc_unique: relies on wormspace.segments_independent, which is not below it" in gaps
    assert "wos.alloc_unique: checked by pair acceptor_to_wor, whose upper layer is wor" in gaps


def test_a_relied_on_obligation_that_failed_in_the_run_is_a_gap() -> None:
    failed = Outcome(obligation=REGISTRY["wor.immutability"], evidence=Evidence(result=COUNTEREXAMPLE, bounds="b"),
                     seconds=0.0)
    assert "wos.alloc_unique: relies on wor.immutability, which is counterexample in this run" in compose(
        [failed]).gaps


# ---- exit rule, JSON, traces ----------------------------------------------------------------------------


def _fake(name: str, layer: str, result: str, trace: tuple[TraceStep, ...] = ()) -> Obligation:
    return Obligation(name=name, layer=layer, statement="s", method="m", bounds=Bounds(quick="q", full="f"),
                      discharge=lambda run: Evidence(result=result, bounds=f"{name} bounds", detail="why",
                                                     trace=trace))


def _outcome(ob: Obligation) -> Outcome:
    return discharge(ob, Run())


def test_exit_code_only_zero_when_everything_is_checked() -> None:
    ok = _outcome(_fake("a", "wor", CHECKED))
    unknown_app = _outcome(_fake("b", "apps", UNKNOWN))
    assert prove.exit_code([ok], [], []) == 0
    assert prove.exit_code([ok], ["wor: a gap"], []) == 1
    assert prove.exit_code([ok, unknown_app], ["apps.b: missing"], []) == 1
    assert prove.exit_code([ok, unknown_app], ["apps.b: missing"], ["apps"]) == 0
    for result in (COUNTEREXAMPLE, NOT_CONFIRMED):  # never tolerated
        assert prove.exit_code([_outcome(_fake("c", "apps", result))], [], ["apps"]) == 1
    assert prove.exit_code([_outcome(_fake("d", "wor", UNKNOWN))], [], ["apps"]) == 1


def test_a_check_that_cannot_run_is_unknown_never_checked() -> None:
    def broken(run: Run) -> Evidence:
        raise RuntimeError("boom")

    ob = Obligation(name="x", layer="wor", statement="s", method="m", bounds=Bounds(quick="q", full="f"),
                    discharge=broken)
    o = discharge(ob, Run())
    assert o.result == UNKNOWN
    assert "boom" in o.evidence.detail


TRACE = (TraceStep("A", None, "A starts: capture"), TraceStep("A", "acc0", "Prepare(b=1.A)", "acc0 promised"),
         TraceStep("acc0", "A", "Promise(b=1.A) <&>"))


def test_json_is_the_design_shape_and_a_counterexample_prints_its_trace(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("PYTHONHASHSEED", prove.HASH_SEED)  # in this process: no child process
    fakes = [_fake("good", "wor", CHECKED), _fake("bad", "wos", COUNTEREXAMPLE, TRACE)]
    monkeypatch.setattr(prove, "obligations", lambda layer=None: fakes)
    assert main(["prove", "--quick", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"obligations", "composition"}
    assert out["obligations"][0] == {"layer": "wor", "name": "good", "method": "m", "bounds": "good bounds",
                                     "result": "checked", "seconds": out["obligations"][0]["seconds"]}
    assert [o["result"] for o in out["obligations"]] == ["checked", "counterexample"]
    assert set(out["composition"]) == {"closed", "gaps"}
    assert isinstance(out["composition"]["closed"], bool)

    chart = tmp_path / "trace.svg"
    assert main(["prove", "--quick", "--trace-out", str(chart)]) == 1
    text = capsys.readouterr().out
    assert "counterexample (message-sequence trace):" in text
    assert "2. A -> acc0: Prepare(b=1.A)" in text
    root = ET.fromstring(chart.read_text())  # well-formed XML (the label's "<&>" escaped)
    assert root.tag.endswith("svg")
    assert sum(1 for e in root.iter() if e.tag.endswith("line") and e.get("marker-end")) == 2


def test_trace_text_and_svg() -> None:
    assert trace_text(TRACE).splitlines()[0] == "  1. A: A starts: capture"
    assert "       acc0 promised" in trace_text(TRACE)
    assert "Promise(b=1.A) &lt;&amp;&gt;" in svg(TRACE, "t")


def test_explorer_trace_becomes_a_message_sequence(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a planted bug (a quorum of one) the WOR explorer's counterexample comes back as arrows."""
    plant_core(monkeypatch, "quorum_of_one")
    e = checks.wor_explorer(Run(quick=True))
    assert e.result == COUNTEREXAMPLE
    assert e.detail.startswith("outcomes_match_spec: ")
    arrows = [s for s in e.trace if s.dst is not None]
    assert ("A", "acc0") in {(s.src, s.dst) for s in arrows}
    assert ("acc0", "A") in {(s.src, s.dst) for s in arrows}


# ---- the report -----------------------------------------------------------------------------------------

REPORTS = {  # each committed report, and the command that wrote it
    "proof-report.md": "wormspace prove --quick --report docs/proof-report.md",
    "proof-report-full.md": "wormspace prove --report docs/proof-report-full.md",
}


def _structure(text: str) -> list[str]:
    """The report without what varies between runs: seconds, measured bounds, totals."""
    out = []
    for line in text.splitlines():
        if line.startswith("| ") and not line.startswith(TABLE_HEADER):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            line = "| " + " | ".join(cells[:3]) + " |"
        elif re.match(r"\d+ of \d+ obligations checked", line):
            line = "N of M obligations checked"
        elif line.startswith("Times: "):
            line = "Times: ..."
        elif line.startswith("  ") and not line.startswith("  Relies on"):
            continue  # details of results
        out.append(line)
    return out


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_the_committed_report_has_the_generated_structure(name: str) -> None:
    command = REPORTS[name]
    committed = (ROOT / "docs" / name).read_text()
    assert committed.startswith(TITLE)
    assert f"Generated by `{command}`" in committed
    fresh = markdown([Outcome(obligation=ob, evidence=Evidence(result=CHECKED, bounds="x"), seconds=0.0)
                      for ob in obligations()], compose(), command=command, total_seconds=0.0,
                     warmup=(1.0, 1.0))
    ours = _structure(fresh)
    theirs = _structure(committed)
    cut = ours.index("## Composition")
    assert theirs[:cut] == ours[:cut]
    assert theirs[cut] == "## Composition"


def test_makefile_runs_the_quick_proof() -> None:
    assert "$(BIN)/wormspace prove --quick\n" in (ROOT / "Makefile").read_text()


# ---- real discharges ------------------------------------------------------------------------------------


def test_an_app_obligation_is_unknown_while_its_app_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    row = proofs_apps.APP_CHECKS["log_positions_unique"]
    monkeypatch.setitem(proofs_apps.APP_CHECKS, "log_positions_unique",
                        proofs_apps.AppCheck(app="wormspace.apps.nolog", spec=row.spec, checker=row.checker,
                                             function=row.function))
    o = discharge(REGISTRY["apps.log_positions_unique"], Run())
    assert o.result == UNKNOWN
    assert "wormspace.apps.nolog is not in this build" in o.evidence.detail


def test_the_app_obligations_are_checked_in_quick_bounds() -> None:
    for name in ("log_positions_unique", "smr_replicas_agree", "kv_linearizable", "atomic_commit"):
        o = discharge(REGISTRY[f"apps.{name}"], Run(quick=True))
        assert o.result == CHECKED, (name, o.evidence.detail)
        assert "seed" in o.evidence.bounds


def test_a_real_obligation_is_checked_with_its_bounds() -> None:
    o = discharge(REGISTRY["wos.batch_equals_sequence"], Run(quick=True))
    print(o.to_json())
    assert o.result == CHECKED, o.evidence.detail
    assert re.search(r"explorer adopt: [\d,]+ states, depth \d+; WosLockstep: [\d,]+ examples", o.evidence.bounds)


def test_every_segment_configuration_a_check_names_exists() -> None:
    """The full-only configurations run only in a full ``prove``: a stale name must fail here, not there."""
    from wormspace.refinement import explore_engine
    from wormspace.refinement.wor_to_wos import SegmentExploreConfig

    for label, (name, _quick) in checks.SEGMENT_CONFIGS.items():
        assert isinstance(explore_engine.config(name), SegmentExploreConfig), label
        assert explore_engine.CONFIGS[name][0] == "wos", label


def test_the_mutant_catalog_plants_a_bug_that_its_obligation_catches() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "mutants" / "catalog.py"), "alloc_without_token", "wos.alloc_unique",
         "--quick"],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT,
        env=dict(os.environ, PYTHONHASHSEED=prove.HASH_SEED),
    )
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["result"] == COUNTEREXAMPLE, got
    assert "always_one_alloc_winner" in got["detail"]


def test_mutants_outside_a_source_checkout_say_so(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PYTHONHASHSEED", prove.HASH_SEED)
    monkeypatch.setattr(prove, "catalog_path", lambda: Path("/nonexistent/tests/mutants/catalog.py"))
    assert main(["prove", "--mutants"]) == 2
    assert "not in the installed package" in capsys.readouterr().err


def test_the_proofs_page_names_every_obligation_and_module() -> None:
    page = (ROOT / "docs" / "proofs.md").read_text()
    for ob in obligations():
        assert f"`{ob.name}`" in page or f"`{ob.key}`" in page, ob.key
    for module in ("layers/network.py", "layers/acceptor.py", "layers/wor.py", "layers/wos.py",
                   "layers/wormspace.py", "refinement/acceptor_to_wor.py", "refinement/wor_to_wos.py",
                   "refinement/wos_to_wormspace.py"):
        assert module in page


def test_the_verb_reruns_itself_with_the_fixed_hash_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[list[str], str | None]] = []

    class Done:
        returncode = 7

    def fake_run(cmd: list[str], env: dict[str, str], check: bool) -> Done:
        seen.append((cmd, env.get("PYTHONHASHSEED")))
        return Done()

    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    monkeypatch.setattr(subprocess, "run", fake_run)
    assert main(["prove", "--quick", "--layer", "wos", "--allow-unknown", "apps", "--json"]) == 7
    ((cmd, seed),) = seen
    assert cmd[1:] == ["-m", "wormspace", "prove", "--quick", "--layer", "wos", "--json", "--allow-unknown", "apps"]
    assert seed == prove.HASH_SEED


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--mutants", "--layer", "wor"], "it takes only --quick and --json, not --layer"),
        (["--mutants", "--quick", "--report", "r.md", "--allow-unknown", "apps"],
         "it takes only --quick and --json, not --report, --allow-unknown"),
        (["--mutants", "--trace-out", "t.svg"], "it takes only --quick and --json, not --trace-out"),
        (["--quick", "--layer", "acceptor", "--report", "/nonexistent/dir/r.md"],
         "--report /nonexistent/dir/r.md: no directory '/nonexistent/dir' to write it in"),
        (["--quick", "--trace-out", "/nonexistent/t.svg"], "--trace-out /nonexistent/t.svg: no directory"),
    ],
    ids=["suite-with-layer", "suite-with-report-allow", "suite-with-trace", "report-dir", "trace-dir"],
)
def test_a_command_line_that_cannot_be_honoured_exits_2_before_running(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rule 7: refused at once (--mutants used to ignore the options and run for minutes; a report to a
    missing directory failed only after every obligation had run)."""
    assert main(["prove", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("wormspace prove: ") and message in captured.err and captured.out == ""
