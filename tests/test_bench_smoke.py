"""Every benchmark runs in its quickest mode and yields its rows and ratios (figures are never asserted).

Real processes on loopback (acceptors, echo servers, PySyncObj replicas, etcd members when installed),
cleaned up by each benchmark. The etcd and PySyncObj parts report a skip note where their peer is missing.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import BENCHMARKS, run_named
from bench.common import Result


@pytest.fixture(autouse=True)
def _contracts_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Benchmarks switch contracts off for the processes they start; the variable is restored afterwards."""
    monkeypatch.setenv("WORMSPACE_CONTRACTS", "0")


def _rows(res: Result, name: str) -> list[dict[str, Any]]:
    return [r for r in res.rows if r["benchmark"] == name]


@pytest.mark.parametrize("name", sorted(set(BENCHMARKS) - {"wor", "apps", "kv"}))  # those three: below
def test_each_benchmark_runs_in_quick_mode(name: str) -> None:
    res: Result = importlib.import_module(BENCHMARKS[name]).run(True)
    assert res.rows, f"{name} produced no rows"
    doc = json.loads(json.dumps(res.to_json()))  # JSON-clean
    assert doc["name"] == res.name
    for r in res.rows:
        assert "benchmark" in r


def test_wor_reports_the_grid_the_bare_limit_and_the_ratios() -> None:
    res: Result = importlib.import_module("bench.bench_wor").run(True)
    for op in ("read", "capture+write", "write (batch-captured)"):
        assert {(r["window"], r["value_bytes"]) for r in _rows(res, op)} == {
            (w, s) for w in (1, 16, 64, 256) for s in (8, 1024)}
        assert all(r["p99_ms"] >= r["p50_ms"] > 0 for r in _rows(res, op))
    assert "write (batch-captured) at 64 in flight / bare at 64 in flight" in res.ratios
    assert any(k.startswith("contracts off/on") for k in res.ratios)
    assert "capture+write 1 at a time / bare durable 2 round trips 1 at a time" in res.ratios
    titles = [t for t, _ in res.extra_tables]
    assert any("Bare limit" in t for t in titles) and any("Contracts" in t for t in titles)
    durable = dict(res.extra_tables)["Bare durable floor: the same, one SQLite FULL commit per frame, 8 B"]
    assert [r["benchmark"] for r in durable] == ["bare durable write, 1 at a time",
                                                 "bare durable 2 round trips, 1 at a time"]
    assert all(r["ops_per_s"] > 0 and r["p99_ms"] >= r["p50_ms"] > 0 for r in durable)


def test_apps_compares_with_pysyncobj_or_says_why_not() -> None:
    res: Result = importlib.import_module("bench.bench_apps").run(True)
    assert {r["window"] for r in _rows(res, "WormPaxos submit (sticky)")} == {1, 16, 64, 256}
    assert {r["window"] for r in _rows(res, "WormLog append")} == {1, 16, 64, 256}
    if any(r["benchmark"].startswith("PySyncObj") for r in res.rows):
        assert "WormPaxos sticky / PySyncObj at window 64" in res.ratios
    else:
        assert any("PySyncObj" in n for n in res.notes)


def test_kv_compares_with_etcd_or_says_why_not() -> None:
    res: Result = importlib.import_module("bench.bench_kv").run(True)
    assert {r["clients"] for r in _rows(res, "WormKV put")} == {1, 16, 64, 256}
    if _rows(res, "etcd put"):
        assert {r["clients"] for r in _rows(res, "etcd put")} == {1, 16, 64, 256}
        assert "WormKV / etcd puts at 64 clients" in res.ratios
    else:
        assert any("etcd" in n for n in res.notes)


def test_run_named_rejects_an_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_named(["nosuch"], quick=True, as_json=False) == 2
    assert "unknown benchmark" in capsys.readouterr().err


def test_the_cli_runs_a_named_benchmark_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    from wormspace.cli import main

    assert main(["bench", "check", "--quick", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["quick"] is True and report["machine"]["nproc"]
    assert [r["name"] for r in report["results"]] == ["check"]
    assert all(r["verdict"] == "OK" for r in report["results"][0]["rows"])


def test_plots_are_drawn_from_saved_results(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from bench.plots import plot

    def r(name: str, window: int, rate: int, p50: float, **kw: Any) -> dict[str, Any]:
        return {"benchmark": name, "window": window, "ops_per_s": rate, "p50_ms": p50, **kw}

    results = {"machine": {"nproc": 2, "cpu": "x", "python": "3.11"}, "results": [
        {"name": "wor", "rows": [r("read", 1, 100, 1.0, value_bytes=8), r("read", 64, 900, 9.0, value_bytes=8)],
         "tables": [{"title": "bare", "rows": [r("bare write, 64 in flight", 64, 5000, 2.0)]}]},
        {"name": "scale", "rows": [{"benchmark": "1", "groups": 1, "ops_per_s": 10, "per_group_ops_per_s": 10}]},
    ]}
    written = plot(results, tmp_path)
    assert {p.name for p in written} == {"wor-8b.png", "scale-out.png"}
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in written)


def test_the_performance_page_shows_the_saved_run_exactly() -> None:
    import re

    from bench.report import update

    root = Path(__file__).resolve().parent.parent
    page = (root / "docs" / "performance.md").read_text()
    report = json.loads((root / "docs" / "bench-results.json").read_text())
    assert update(page, report) == page, "regenerate: python -m bench.report --update docs/performance.md"
    assert {r["name"] for r in report["results"]} >= {"wor", "apps", "kv", "scale", "explore", "check"}
    for image in re.findall(r"\]\((img/[^)]+)\)", page):
        assert (root / "docs" / image).is_file(), image
    for name in re.findall(r"`python -m bench ([a-z]+)", page):
        assert name in BENCHMARKS, name


def test_the_bare_durable_floor_commits_a_row_per_frame(tmp_path: Path) -> None:
    """The floor's servers do the disk work they claim (Rule 1 of ``bench.bare``): a row per frame, committed."""
    import asyncio
    import sqlite3

    from bench import bare

    ports, procs = bare.start_servers(directory=str(tmp_path))
    try:
        async def go() -> None:
            client = bare.BareClient()
            await client.connect(ports)
            for _ in range(5):
                await client.write([b"v" * 8])
            await asyncio.sleep(0.5)  # the third server's echo is not waited for
            await client.close()

        asyncio.run(go())
    finally:
        bare.stop_servers(procs)
    counts = []
    for i in range(3):
        with sqlite3.connect(tmp_path / str(i) / "bare.sqlite3") as db:
            counts.append(db.execute("SELECT count(*) FROM t").fetchone()[0])
    assert counts == [5, 5, 5]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "wor", "-n", "5"], "-n set the short TCP table (no NAME), not benchmark 'wor'"),
        (["bench", "kv", "--contracts", "--inflight", "3"], "--inflight, --contracts set the short TCP table"),
        (["bench", "--quick"], "--quick goes with NAME"),
        (["bench", "-n", "0"], "-n, --inflight and --batch must be positive"),
    ],
    ids=["n-with-name", "contracts-with-name", "quick-without-name", "zero-n"],
)
def test_bench_options_that_cannot_apply_exit_2_before_running(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An option the chosen run does not use is refused (it was silently ignored), and nothing runs."""
    from wormspace.cli import main

    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_the_recorded_command_reruns_the_run_whichever_front_end_started_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """It was built from sys.argv: under ``wormspace bench check`` it read "python -m bench bench check" (here,
    pytest's own argv)."""
    from wormspace.cli import main

    assert main(["bench", "check", "--quick", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["command"] == "python -m bench check --quick"
