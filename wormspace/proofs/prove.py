"""The ``wormspace prove`` verb: run every proof obligation, show the table, check the chain composes.

``wormspace prove [--quick] [--layer L] [--json] [--report FILE] [--trace-out F.svg] [--allow-unknown L]``
``wormspace prove --mutants [--quick]``

Rules.

1. Every registered obligation (``obligations.py``; one module per layer) is discharged by its check, with
   a progress display (on stderr with ``--json``), then a table: layer, obligation, method, bounds, result,
   seconds. ``--json`` prints the DESIGN §4 object ``{"obligations": [...], "composition": {"closed",
   "gaps"}}`` and nothing else on stdout.
2. A counterexample prints as a message-sequence trace; ``--trace-out F.svg`` draws the first one that is a
   sequence of messages (the explorers'), else the first one.
3. Exit 0 only when every obligation run is ``checked`` and the chain is closed (``composition.py``); else
   1. ``--allow-unknown L`` tolerates results ``unknown`` in layer L and the composition gaps of layer L
   (for obligations whose code has not landed yet); it is printed, and it never tolerates a counterexample
   or a result ``not confirmed``.
4. ``--mutants`` runs every planted bug catalogued in ``tests/mutants/catalog.py`` from a source checkout
   (tests are not in the wheel, and the command says so), two processes at a time: a mutant marked for
   discharge is planted in a fresh process that discharges the obligations expected to catch it; every
   other one is run by its tests (one pytest process per test file), each of which plants it and asserts
   that the obligation's check reports it. The table shows which obligation (or, for a check that is not a
   layer obligation, which check) caught each, with its evidence and time; ``--json`` gives it as data.
   The obligations are discharged at their quick bounds in both modes (the full WOR explorer adds the race
   with duplicates, which a mutant caught elsewhere would still explore for minutes); ``--quick``
   runs only the first test of each tested mutant. Exit 0 iff every mutant was caught.
5. ``--report FILE`` writes the markdown report (``docs/proof-report.md`` is generated this way with
   ``--quick``, ``docs/proof-report-full.md`` without).
6. A run replays: the Hypothesis machines are derandomized, and the checks run with ``PYTHONHASHSEED=0``
   (the verb re-runs itself in a child process with it when it is not set), since the order in which sets
   of messages are iterated -- and so which interleavings a bounded run meets -- depends on string hashing.
7. A command line that cannot be honoured exits 2 before anything runs: ``--mutants`` with an option of the
   obligations' run (``--layer``, ``--report``, ``--trace-out``, ``--allow-unknown``), or a ``--report`` or
   ``--trace-out`` file in a directory that does not exist.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from wormspace.errors import UsageError
from wormspace.proofs.obligations import (
    CHECKED,
    COUNTEREXAMPLE,
    LAYERS,
    UNKNOWN,
    Obligation,
    Outcome,
    Run,
    discharge,
    obligations,
)
from wormspace.proofs.report import note

STYLE = {CHECKED: "green", COUNTEREXAMPLE: "bold red", "not confirmed": "yellow", UNKNOWN: "magenta"}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("prove", help="run every proof obligation and check that the chain composes",
                       description="Run every proof obligation (wormspace/proofs/), print a table of the results"
                       " with their bounds, and check that the chain of checks composes.")
    p.add_argument("--quick", action="store_true", help="the quick bounds (about 3-5 minutes on 2 cores)")
    p.add_argument("--layer", choices=LAYERS, help="run only this layer's obligations")
    p.add_argument("--json", action="store_true", help="print the DESIGN §4 JSON object")
    p.add_argument("--report", metavar="FILE", help="write the markdown report to FILE")
    p.add_argument("--trace-out", metavar="F.svg", help="draw the first counterexample as an SVG chart")
    p.add_argument("--allow-unknown", metavar="LAYER", action="append", choices=LAYERS, default=[],
                   help="tolerate 'unknown' results and composition gaps of LAYER (printed; repeatable)")
    p.add_argument("--mutants", action="store_true",
                   help="run every planted bug of tests/mutants/catalog.py (source checkout only) and show which"
                   " obligation caught each; exit 1 if any survives (obligations at quick bounds; --quick: one"
                   " test each; with --json: as data)")
    p.set_defaults(func=run_cli)


def run_obligations(selected: Sequence[Obligation], run: Run, progress: Any = None) -> list[Outcome]:
    """Discharge each obligation in turn (shared checks once); ``progress(ob, outcome | None)`` is told."""
    from wormspace.proofs import checks

    keys = {ob.key for ob in selected}
    t0 = time.perf_counter()
    for layer, users in LOCKSTEP_USERS.items():  # Rule 6: the machines first, in a fixed order, in a fresh process
        if keys & users:
            checks.lockstep(run, layer)
    t1 = time.perf_counter()
    lemmas = _lemmas(selected)
    if lemmas:
        checks.crosshair_parallel(run, lemmas)  # two CrossHair processes at a time
    run.memo[WARMUP] = (t1 - t0, time.perf_counter() - t1)
    outcomes = []
    for ob in selected:
        if progress is not None:
            progress(ob, None)
        o = discharge(ob, run)
        outcomes.append(o)
        if progress is not None:
            progress(ob, o)
    return outcomes


WARMUP = "seconds of the lockstep machines and of the CrossHair lemmas, run first"
LOCKSTEP_USERS = {
    "wor": {"wor.immutability"},
    "wos": {"wos.alloc_unique", "wos.trim_permanent", "wos.batch_equals_sequence"},
    "wormspace": {"wormspace.segments_independent"},
}


def _lemmas(selected: Sequence[Obligation]) -> list[str]:
    """The CrossHair lemmas the selected obligations use (warmed in parallel before the run)."""
    wanted = {
        "acceptor.promise_never_decreases": ("prepare_raises_promise", "prepare_step_preserves"),
        "acceptor.vote_at_most_one_value_per_ballot": ("accept_step_preserves", "propose_step_preserves"),
        "acceptor.vote_never_above_promise": ("accept_respects_promise", "accept_step_preserves"),
        "wor.agreement": ("proposer_adopts_highest", "propose_step_preserves"),
    }
    out: list[str] = []
    for ob in selected:
        for lemma in wanted.get(ob.key, ()):
            if lemma not in out:
                out.append(lemma)
    return out


def exit_code(outcomes: Sequence[Outcome], gaps: Sequence[str], allow: Sequence[str]) -> int:
    for o in outcomes:
        if o.result == CHECKED:
            continue
        if o.result == UNKNOWN and o.obligation.layer in allow:
            continue
        return 1
    for g in gaps:
        if not any(g.startswith((f"{layer}.", f"{layer}:")) for layer in allow):
            return 1
    return 0


HASH_SEED = "0"


def _argv(args: argparse.Namespace) -> list[str]:
    """The command line of ``args`` (to re-run it in a child process)."""
    argv = ["prove"]
    argv += ["--quick"] if args.quick else []
    argv += ["--layer", args.layer] if args.layer else []
    argv += ["--json"] if args.json else []
    argv += ["--report", args.report] if args.report else []
    argv += ["--trace-out", args.trace_out] if args.trace_out else []
    for layer in args.allow_unknown:
        argv += ["--allow-unknown", layer]
    argv += ["--mutants"] if args.mutants else []
    return argv


def _usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the command line before anything runs (Rule 7), or None."""
    if args.mutants:
        ignored = [flag for flag, given in (("--layer", args.layer), ("--report", args.report),
                                            ("--trace-out", args.trace_out), ("--allow-unknown", args.allow_unknown))
                   if given]
        if ignored:
            return f"--mutants runs every planted bug; it takes only --quick and --json, not {', '.join(ignored)}"
    for flag, out in (("--report", args.report), ("--trace-out", args.trace_out)):
        if out and not Path(out).resolve().parent.is_dir():
            return f"{flag} {out}: no directory {str(Path(out).resolve().parent)!r} to write it in"
    return None


def run_cli(args: argparse.Namespace) -> int:
    problem = _usage_problem(args)
    if problem is not None:
        print(f"wormspace prove: {problem}", file=sys.stderr)
        return 2
    if os.environ.get("PYTHONHASHSEED") != HASH_SEED:  # Rule 6: re-run with the fixed hash seed
        env = dict(os.environ, PYTHONHASHSEED=HASH_SEED)
        return subprocess.run([sys.executable, "-m", "wormspace", *_argv(args)], env=env, check=False).returncode
    if args.mutants:
        return run_mutants(quick=args.quick, as_json=args.json)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from wormspace.proofs.composition import compose
    from wormspace.proofs.report import markdown, svg, trace_text

    selected = obligations(args.layer)
    console = Console(stderr=args.json)
    if not console.is_terminal:  # a log (make test): wide enough that the table's bounds stay readable
        console = Console(stderr=args.json, width=200)
    t0 = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/"
                  "{task.total}"), TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("proof obligations", total=len(selected))
        run = Run(quick=args.quick, note=lambda text: bar.update(task, description=f"running {text}"))

        def progress(ob: Obligation, o: Outcome | None) -> None:
            if o is None:
                bar.update(task, description=f"{ob.key}")
                return
            bar.advance(task)
            bar.console.print(f"  {ob.key}: [{STYLE[o.result]}]{o.result}[/] ({o.seconds:.1f} s)")

        outcomes = run_obligations(selected, run, progress)
    composition = compose(outcomes)
    total = time.perf_counter() - t0
    code = exit_code(outcomes, composition.gaps, args.allow_unknown)
    mode = "--quick" if args.quick else "full"
    if args.json:
        json.dump({"obligations": [o.to_json() for o in outcomes], "composition": composition.to_json()},
                  sys.stdout, indent=2)
        print()
    else:
        _print_table(console, outcomes, mode)
        for o in outcomes:
            if o.result != CHECKED and o.evidence.detail:
                console.print(f"\n[{STYLE[o.result]}]{o.obligation.key}: {o.result}[/]", highlight=False)
                console.print(o.evidence.detail, markup=False, highlight=False)
            if o.result == COUNTEREXAMPLE and o.evidence.trace:
                console.print("counterexample (message-sequence trace):", highlight=False)
                console.print(trace_text(o.evidence.trace), markup=False, highlight=False)
        console.print(f"\ncomposition: chain {'closed' if composition.closed else 'NOT closed'}", highlight=False)
        for g in composition.gaps:
            console.print(f"  gap: {g}", markup=False, highlight=False)
        if args.allow_unknown:
            console.print(f"--allow-unknown {' '.join(args.allow_unknown)}: unknown results and gaps of these"
                          " layers are tolerated in the exit code; they are NOT checked", highlight=False)
        if WARMUP in run.memo:
            console.print(note(*run.memo[WARMUP]), highlight=False)
        console.print(f"exit {code} ({total:.0f} s)", highlight=False)
    if args.trace_out:
        traced = [o for o in outcomes if o.result == COUNTEREXAMPLE and o.evidence.trace]
        # the first counterexample that is a message sequence (the explorer's), else the first one
        bad = next((o for o in traced if any(s.dst is not None for s in o.evidence.trace)), None) or next(
            iter(traced), None)
        if bad is None:
            print(f"wormspace prove: no counterexample: {args.trace_out} not written", file=sys.stderr)
        else:
            Path(args.trace_out).write_text(svg(bad.evidence.trace, f"{bad.obligation.key}: {bad.evidence.detail}"))
    if args.report:
        command = "wormspace prove" + (" --quick" if args.quick else "") + (f" --layer {args.layer}" if args.layer
                                                                              else "")
        command += "".join(f" --allow-unknown {x}" for x in args.allow_unknown) + f" --report {args.report}"
        Path(args.report).write_text(markdown(outcomes, composition, command=command, total_seconds=total,
                                              warmup=run.memo.get(WARMUP)))
    return code


def _print_table(console: Any, outcomes: Sequence[Outcome], mode: str) -> None:
    from rich.table import Table

    table = Table(title=f"Proof obligations ({mode} bounds; checked = bounded, not proved)")
    for col in ("layer", "obligation", "method", "bounds", "result", "time"):
        table.add_column(col, overflow="fold")
    for o in outcomes:
        table.add_row(o.obligation.layer, o.obligation.name, o.obligation.method, o.evidence.bounds,
                      f"[{STYLE[o.result]}]{o.result}[/]", f"{o.seconds:.1f} s")
    console.print(table)


# ---- the planted-bug suite ------------------------------------------------------------------------------


def catalog_path() -> Path:
    return Path(__file__).resolve().parents[2] / "tests" / "mutants" / "catalog.py"


def load_catalog() -> dict[str, Any]:
    path = catalog_path()
    if not path.is_file():
        raise UsageError(
            f"--mutants runs the planted-bug suite, which lives in tests/ of a source checkout and is not in the"
            f" installed package: {path} not found"
        )
    import runpy

    return runpy.run_path(str(path), run_name="wormspace_mutant_catalog")


MUTANT_JOBS = 2  # processes at a time (the suite is sized for 2 cores)


def _discharge_job(path: Path, name: str, key: str, *, quick: bool) -> dict[str, Any]:
    """Plant mutant ``name`` in a fresh process and discharge obligation ``key`` there."""
    cmd = [sys.executable, str(path), name, key] + (["--quick"] if quick else [])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False,
                          cwd=str(path.parents[2]), env=dict(os.environ, PYTHONHASHSEED=HASH_SEED))
    try:
        got: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        got = {"result": UNKNOWN, "bounds": "not run", "detail": (proc.stdout + proc.stderr)[-2000:]}
    got["seconds"] = round(time.perf_counter() - t0, 1)
    return got


def _pytest_job(path: Path, nodes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Run the mutant tests ``nodes`` (all of one file) in one fresh pytest process; per node: ``passed``,
    ``failed``, ``skipped`` or ``not run``, its seconds and the failure's message."""
    import tempfile
    import xml.etree.ElementTree as ET

    root = path.parents[2]
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}", *nodes]
        env = dict(os.environ, PYTHONHASHSEED=HASH_SEED)
        env.setdefault("HYPOTHESIS_PROFILE", "ci")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False, cwd=str(root),
                              env=env)
        found: dict[str, dict[str, Any]] = {}
        if xml.is_file():
            for case in ET.parse(xml).iter("testcase"):
                node = case.get("classname", "").replace(".", "/") + ".py::" + case.get("name", "")
                status, detail = "passed", ""
                for child in case:
                    if child.tag in ("failure", "error"):
                        status, detail = "failed", (child.get("message") or "")[:500]
                    elif child.tag == "skipped" and status == "passed":
                        status, detail = "skipped", (child.get("message") or "")[:500]
                found[node] = {"status": status, "seconds": round(float(case.get("time", 0.0)), 1),
                               "detail": detail}
    tail = (proc.stdout + proc.stderr)[-1000:]
    return {n: found.get(n, {"status": "not run", "seconds": 0.0, "detail": tail}) for n in nodes}


def run_mutants(*, quick: bool, as_json: bool) -> int:
    """Rule 4: run every catalogued planted bug (``tests/mutants/catalog.py``), two processes at a time; the
    table says which obligation caught each (or, for a check that is no layer obligation, which check)."""
    from rich.console import Console
    from rich.table import Table

    catalog = load_catalog()
    mutants: dict[str, Any] = catalog["MUTANTS"]
    discharge_how = catalog["DISCHARGE"]
    path = catalog_path()
    console = Console(stderr=as_json)
    if not console.is_terminal:
        console = Console(stderr=as_json, width=200)
    by_file: dict[str, list[str]] = {}
    for m in mutants.values():
        if m.how != discharge_how:
            for node in m.tests[:1] if quick else m.tests:
                by_file.setdefault(node.split("::", 1)[0], []).append(node)
    jobs: list[tuple[str, ...]] = [("discharge", name, key) for name, m in mutants.items() if m.how == discharge_how
                                   for key in m.expected]
    jobs += [("pytest", f, *dict.fromkeys(nodes)) for f, nodes in by_file.items()]
    jobs.sort(key=lambda j: j[0] != "discharge")  # the obligations' runs (the longest) first

    def one(job: tuple[str, ...]) -> tuple[tuple[str, ...], Any]:
        if job[0] == "discharge":
            return job, _discharge_job(path, job[1], job[2], quick=True)  # see Rule 4
        return job, _pytest_job(path, job[2:])

    t0 = time.perf_counter()
    discharged: dict[tuple[str, str], dict[str, Any]] = {}
    tested: dict[str, dict[str, Any]] = {}
    with console.status("planting mutants") as status, ThreadPoolExecutor(max_workers=MUTANT_JOBS) as pool:
        for n, (job, got) in enumerate(pool.map(one, jobs), 1):
            if job[0] == "discharge":
                discharged[(job[1], job[2])] = got
            else:
                tested.update(got)
            status.update(f"{n}/{len(jobs)} runs done ({time.perf_counter() - t0:.0f} s)")
    rows = [_mutant_row(name, m, discharge_how, discharged, tested, quick) for name, m in mutants.items()]
    total = time.perf_counter() - t0
    n_caught = sum(1 for r in rows if r["caught"])
    code = 0 if n_caught == len(rows) else 1
    if as_json:
        json.dump({"mutants": rows, "caught": n_caught, "total": len(rows), "seconds": round(total, 1),
                   "mode": "quick" if quick else "full"}, sys.stdout, indent=2)
        print()
        return code
    tests = "the first test of each" if quick else "all tests"
    table = Table(title=f"Planted bugs (obligations at quick bounds; {tests}): which obligation caught each")
    for col in ("mutant", "planted bug", "caught by", "check", "evidence", "time"):
        table.add_column(col, overflow="fold")
    for r in rows:
        caught = ", ".join(r["caught_by"]) if r["caught"] else "[bold red]NOT CAUGHT[/]"
        table.add_row(r["mutant"], r["bug"], caught, r["check"], r["evidence"], f"{r['seconds']:.1f} s")
    console.print(table)
    for r in rows:
        if not r["caught"]:
            console.print(f"\n[bold red]{r['mutant']}: not caught[/]", highlight=False)
            for what, got in r["results"].items():
                console.print(f"  {what}: {got['result']} {got.get('detail', '')}", markup=False, highlight=False)
    console.print(f"{n_caught} of {len(rows)} planted bugs caught ({total:.0f} s, {MUTANT_JOBS} processes at a"
                  " time); 'checked' bounds as printed, not proofs", highlight=False)
    return code


def _mutant_row(name: str, m: Any, discharge_how: str, discharged: dict[tuple[str, str], dict[str, Any]],
                tested: dict[str, dict[str, Any]], quick: bool) -> dict[str, Any]:
    """One mutant's verdict. Discharged: caught by the expected obligations that report a counterexample.
    Tested: caught when none of its tests failed or did not run and at least one passed."""
    results: dict[str, dict[str, Any]] = {}
    if m.how == discharge_how:
        for key in m.expected:
            got = discharged[(name, key)]
            results[key] = {"result": got["result"], "bounds": got.get("bounds", ""),
                            "detail": got.get("detail", ""), "seconds": got.get("seconds", 0.0)}
        caught_by = [key for key in m.expected if results[key]["result"] == COUNTEREXAMPLE]
        caught = bool(caught_by)
        evidence = "; ".join(f"{k}: {v['result']} ({v['bounds']})" for k, v in results.items())
    else:
        for node in m.tests[:1] if quick else m.tests:
            got = tested[node]
            results[node] = {"result": got["status"], "detail": got["detail"], "seconds": got["seconds"]}
        statuses = [v["result"] for v in results.values()]
        caught = "passed" in statuses and all(s in ("passed", "skipped") for s in statuses)
        caught_by = (list(m.expected) or ["(no obligation)"]) if caught else []
        skipped = statuses.count("skipped")
        evidence = f"{statuses.count('passed')} of {len(statuses)} mutant tests report it" + (
            f" ({skipped} skipped: {next(v['detail'] for v in results.values() if v['result'] == 'skipped')})"
            if skipped else "")
    return {"mutant": name, "bug": m.description, "expected": list(m.expected), "caught": caught,
            "caught_by": caught_by, "check": m.check, "how": m.how, "evidence": evidence,
            "seconds": round(sum(float(v.get("seconds", 0.0)) for v in results.values()), 1), "results": results}
