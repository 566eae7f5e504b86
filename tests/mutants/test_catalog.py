"""The planted-bug catalog covers every planted bug of the suite (so a new mutant cannot be added without
cataloguing it), and names only tests and plantings that exist.

Three nets: (1) every function in tests/ that monkeypatches (``setattr``/``setitem``/``delattr``) anything
but the standard library is a catalogued planting, a catalogued mutant test, or listed in
``catalog.NOT_MUTANTS`` with the reason; (2) every test collected from tests/mutants/, and every test
elsewhere whose name says it plants or catches a bug, is a catalogued mutant test or a named control here;
(3) the parameter lists of the parametrised plantings (core, WormTX, explorer, CrossHair, client
postconditions) are each catalogued entry by entry.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from typing import Any

import pytest

from tests.layers import test_api_contracts
from tests.mutants import catalog, conftest, crosshair_launch, test_explorer_mutants, test_tx_mutants

ROOT = catalog.ROOT
TESTS = ROOT / "tests"
MUTANT_TEST_NAME = re.compile(r"mutant|planted|_is_caught|catches|caught")
STDLIB_TARGETS = {"sys", "os", "subprocess", "io", "builtins", "time", "asyncio", "socket"}

#: tests that match the nets but plant no bug: the clean runs beside the mutants, and tests of the verb
CONTROLS: dict[str, str] = {
    "tests/mutants/test_explorer_mutants.py::test_the_symmetry_reduction_agrees_with_the_unreduced_search_on_every_mutant[adoption_ballot_tie]":
        "compares the reduced and unreduced search on a catalogued mutant",
    "tests/mutants/test_explorer_mutants.py::test_the_symmetry_reduction_agrees_with_the_unreduced_search_on_every_mutant[stale_after_sent]":
        "compares the reduced and unreduced search on a catalogued mutant",
    "tests/mutants/test_explorer_mutants.py::test_the_symmetry_reduction_agrees_with_the_unreduced_search_on_every_mutant[stale_in_retry_rounds]":
        "compares the reduced and unreduced search on a catalogued mutant",
    "tests/mutants/test_crosshair_mutants.py::test_the_unmutated_lemma_holds_in_the_same_setup": "clean run",
    "tests/mutants/test_crosshair_mutants.py::test_every_lemma_module_is_in_the_default_run": "runner set-up",
    "tests/mutants/test_durability_mutant.py::test_durable_storage_keeps_the_acknowledged_write": "clean run",
    "tests/mutants/test_durability_mutant.py::test_an_acceptor_whose_database_vanished_refuses_to_restart":
        "a fault (a lost disk), not a planted bug",
    "tests/mutants/test_explorer_mutants.py::test_the_catching_configuration_is_named_and_quick": "set-up",
    "tests/mutants/test_fast_path_mutant.py::test_the_differential_test_passes_on_the_shipped_fast_path":
        "clean run",
    "tests/mutants/test_replace_mutants.py::test_the_directed_replay_is_safe_with_the_one_floor_rule": "clean run",
    "tests/mutants/test_tx_mutants.py::test_the_correct_app_passes_the_same_scenarios": "clean run",
    "tests/mutants/test_coalesce_mutants.py::test_merged_operations_give_each_caller_its_own_outcome[1]":
        "clean run",
    "tests/mutants/test_coalesce_mutants.py::test_merged_operations_give_each_caller_its_own_outcome[2]":
        "clean run",
    "tests/mutants/test_coalesce_mutants.py::test_held_requests_run_after_the_operation_they_waited_for[1]":
        "clean run",
    "tests/mutants/test_coalesce_mutants.py::test_held_requests_run_after_the_operation_they_waited_for[2]":
        "clean run",
    "tests/mutants/test_app_mutants.py::test_the_real_time_order_check_sees_a_later_op_at_a_lower_position":
        "a hand-made history fed to a check; no code planted",
    **{f"tests/test_operations_log_lines.py::test_mutant_{name}": "a hand-made page or source text fed to the"
       " check of docs/operations.md's log lines; no code planted"
       for name in ("an_undocumented_log_call_is_caught", "a_documented_line_nothing_emits_is_caught",
                    "a_wrong_level_is_caught_both_ways")},
    "tests/proofs/test_prove.py::test_the_mutant_catalog_plants_a_bug_that_its_obligation_catches":
        "runs a catalogued mutant through the verb",
    "tests/proofs/test_prove.py::test_mutants_outside_a_source_checkout_say_so": "the verb outside a checkout",
    "tests/layers/test_api_contracts.py::test_the_unplanted_clients_keep_their_postconditions": "clean run",
    "tests/apps/test_paxos.py::test_a_new_replica_catches_up_and_trim_needs_a_snapshot": "no planting (a replica"
        " catching up)",
    **{f"tests/refinement/test_initial_state.py::test_the_unknown_initial_state_still_catches_what_happens_after_the"
       f"_first_observation[{case}]": "a hand-made history fed to the checker; no code planted"
       for case in ("alloc-of-a-used-segment", "changed", "read-after-trim", "trimmed-then-read", "two-writes",
                    "unallocated-after-read", "unallocated-then-read", "unwritten", "write-then-empty")},
}


def _node_function(node: str) -> str:
    """``path::function`` of a node id (parameters dropped)."""
    return node.split("[", 1)[0]


def _catalogued_functions() -> set[str]:
    out = set(catalog.NOT_MUTANTS)
    for m in catalog.MUTANTS.values():
        out.update(m.plants)
        out.update(_node_function(t) for t in m.tests)
    return out


def _patcher(call: ast.Call) -> bool:
    """A ``monkeypatch.setattr/setitem/delattr`` call on something other than the standard library."""
    f = call.func
    if not (isinstance(f, ast.Attribute) and f.attr in ("setattr", "setitem", "delattr")):
        return False
    if not (isinstance(f.value, ast.Name) and f.value.id in ("monkeypatch", "mp")):
        return False
    if not call.args:
        return False
    target = call.args[0]
    if isinstance(target, ast.Constant) and isinstance(target.value, str):
        return target.value.split(".", 1)[0] not in STDLIB_TARGETS
    while isinstance(target, ast.Attribute):
        target = target.value
    return not (isinstance(target, ast.Name) and target.id in STDLIB_TARGETS)


def plantings_in_tests() -> set[str]:
    """``path::function`` of every top-level function (or method) of tests/ that monkeypatches non-stdlib
    code."""
    found: set[str] = set()
    for path in sorted(TESTS.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text())
        tops: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                tops.append(node)
            elif isinstance(node, ast.ClassDef):
                tops += [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for fn in tops:
            if any(isinstance(n, ast.Call) and _patcher(n) for n in ast.walk(fn)):
                found.add(f"{rel}::{fn.name}")
    return found


def test_every_planting_in_tests_is_catalogued() -> None:
    missing = sorted(plantings_in_tests() - _catalogued_functions())
    assert not missing, f"plantings not in tests/mutants/catalog.py (catalogue them, or list in NOT_MUTANTS): {missing}"


def test_every_catalogued_planting_exists() -> None:
    for ref in sorted({p for m in catalog.MUTANTS.values() for p in m.plants} | set(catalog.NOT_MUTANTS)):
        path, name = ref.split("::")
        tree = ast.parse((ROOT / path).read_text())
        names = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        assert name in names, ref


@pytest.fixture(scope="module")
def collected() -> set[str]:
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    nodes = {line.strip() for line in proc.stdout.splitlines() if "::" in line}
    assert nodes, proc.stdout + proc.stderr
    return nodes


def test_every_mutant_test_is_catalogued(collected: set[str]) -> None:
    named = {t for m in catalog.MUTANTS.values() for t in m.tests} | set(CONTROLS)
    candidates = {n for n in collected if n.startswith("tests/mutants/") and "test_catalog.py" not in n}
    candidates |= {n for n in collected if MUTANT_TEST_NAME.search(n.split("::", 1)[1])}
    candidates -= {n for n in candidates if "tests/mutants/test_catalog.py" in n}
    missing = sorted(candidates - named)
    assert not missing, f"mutant tests not in tests/mutants/catalog.py (or CONTROLS): {missing}"


def test_every_catalogued_test_exists(collected: set[str]) -> None:
    named = sorted({t for m in catalog.MUTANTS.values() for t in m.tests} | set(CONTROLS))
    assert [t for t in named if t not in collected] == []


def test_every_parametrised_planting_is_catalogued_entry_by_entry() -> None:
    for name in conftest.CORE_MUTANTS:
        assert catalog.MUTANTS[name].how == catalog.DISCHARGE, name
    for name in test_tx_mutants.TX_MUTANTS:
        assert name in catalog.MUTANTS, name
    for name in test_explorer_mutants.CAUGHT:
        assert name in catalog.MUTANTS, name
    ch_tests = {t for m in catalog.MUTANTS.values() for t in m.tests if "test_crosshair_finds_the_planted_bug[" in t}
    for name in set(crosshair_launch.NAMES) - {"none"}:
        assert any(f"[{name}-" in t for t in ch_tests), name
    assert len(catalog.MUTANTS["postcondition_breaches"].tests) == len(test_api_contracts.MUTANTS)


def test_every_mutant_names_real_obligations_and_a_check() -> None:
    from wormspace.proofs.obligations import REGISTRY, load

    load()
    for name, m in catalog.MUTANTS.items():
        assert m.tests and m.plants and m.check, name
        assert m.how in (catalog.DISCHARGE, catalog.TESTS), name
        for key in m.expected:
            assert key in REGISTRY, (name, key)
        if m.how == catalog.DISCHARGE:
            assert m.expected, name
        if not m.expected:
            assert "not a layer obligation" in m.check or m.check.startswith("composition"), name


def test_the_proofs_page_lists_every_mutant() -> None:
    page = (ROOT / "docs" / "proofs.md").read_text()
    for name, m in catalog.MUTANTS.items():
        assert f"| `{name}` | {m.description} |" in page, name


def test_the_verdict_of_prove_mutants_fails_a_surviving_mutant() -> None:
    """``prove --mutants`` counts a mutant caught only on positive evidence (a planted fault in the verdict
    itself would pass every mutant; this pins the rule)."""
    from wormspace.proofs.prove import _mutant_row

    tested = catalog.Mutant(description="d", expected=("wor.agreement",), check="c", tests=("a::t1", "a::t2"),
                            plants=("a::p",))
    discharged = catalog.Mutant(description="d", expected=("wor.agreement", "wor.linearizable"), check="c",
                                tests=("a::t",), plants=("a::p",), how=catalog.DISCHARGE)

    def row(m: catalog.Mutant, statuses: dict[str, str], results: dict[str, str], quick: bool = False) -> Any:
        tests = {n: {"status": s, "seconds": 1.0, "detail": "why"} for n, s in statuses.items()}
        got = {("m", k): {"result": r, "bounds": "b", "detail": "", "seconds": 1.0} for k, r in results.items()}
        return _mutant_row("m", m, catalog.DISCHARGE, got, tests, quick)

    assert row(tested, {"a::t1": "passed", "a::t2": "passed"}, {})["caught_by"] == ["wor.agreement"]
    assert not row(tested, {"a::t1": "passed", "a::t2": "failed"}, {})["caught"]
    assert not row(tested, {"a::t1": "passed", "a::t2": "not run"}, {})["caught"]
    assert not row(tested, {"a::t1": "skipped", "a::t2": "skipped"}, {})["caught"]
    assert row(tested, {"a::t1": "passed", "a::t2": "skipped"}, {})["caught"]
    assert row(tested, {"a::t1": "passed"}, {}, quick=True)["caught"]  # --quick: the first test only
    both = {"wor.agreement": "checked", "wor.linearizable": "counterexample"}
    assert row(discharged, {}, both)["caught_by"] == ["wor.linearizable"]
    assert not row(discharged, {}, {"wor.agreement": "checked", "wor.linearizable": "unknown"})["caught"]
