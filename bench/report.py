"""``python -m bench.report [RESULTS] [--update PAGE]``: Markdown tables of a saved run, for docs/performance.md.

Each benchmark's rows and ratios become a Markdown table; ``--update PAGE`` rewrites, in PAGE, the text
between ``<!-- figures:NAME -->`` and ``<!-- /figures:NAME -->`` with benchmark NAME's tables, and the
machine between ``<!-- figures:machine -->`` markers, so the page shows exactly the saved figures
(tests/test_bench_smoke.py checks that it does). Without ``--update`` every section is printed.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable, Sequence
from typing import Any

SKIP = {"seconds", "lat"}


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return "" if v is None else str(v).replace("|", "/")


def table(rows: list[dict[str, Any]]) -> str:
    cols: list[str] = []
    for r in rows:
        cols.extend(k for k in r if k not in cols and k not in SKIP)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def section(result: dict[str, Any]) -> str:
    parts = [f"*{result['title']}* (`python -m bench {result['name']}`, {result.get('elapsed_s', '?')} s)", "",
             table(result["rows"])]
    for t in result.get("tables", []):
        parts += ["", f"*{t['title']}*", "", table(t["rows"])]
    if result.get("ratios"):
        parts += ["", "| ratio | value |", "|---|---|"]
        parts += [f"| {k} | {'n/a' if v is None else f'{v:.3f}x'} |" for k, v in result["ratios"].items()]
    if result.get("notes"):
        parts += [""] + [f"- {n}" for n in result["notes"]]
    return "\n".join(parts)


def machine(report: dict[str, Any]) -> str:
    m = report["machine"]
    return (f"{m['nproc']} cores ({m['cpu']}), {m['memory_mib']:,} MiB memory, Python {m['python']}, "
            f"{m['platform']}; load average {m['loadavg']} when the run ended;"
            f"{' acceptors on ' + m['serve_loop'] + ' event loops;' if 'serve_loop' in m else ''}"
            f" command: `{report['command']}`"
            f"{' (quick mode)' if report.get('quick') else ''}")


def capacity(report: dict[str, Any]) -> str | None:
    """The capacity model's inputs (one group of the scale-out run) and its predictions for N machines."""
    scale = next((r for r in report["results"] if r["name"] == "scale"), None)
    one = next((r for r in scale["rows"] if r.get("groups") == 1), None) if scale else None
    measured = [r for r in scale["rows"] if "acceptor_cpu_us_per_write" in r] if scale else []
    if one is None or not measured:
        return None
    client = round(statistics.median(r["client_cpu_us_per_write"] for r in measured))
    acceptors = round(statistics.median(r["acceptor_cpu_us_per_write"] for r in measured))
    per_acceptor = acceptors / 3
    group_cap = 1e6 / per_acceptor  # one acceptor process is one thread: a core's worth of its CPU per write
    client_rate = one["ops_per_s"]
    lines = [
        f"Inputs (the scale-out rows above, the median over their {len(measured)} group counts): a write costs "
        f"**{client} µs** of client CPU (C) and **{acceptors} µs** of acceptor CPU in all (A; **{per_acceptor:.0f}"
        f" µs** at each of the 3 acceptors). With 1 group, one client at window "
        f"{one['window']} made **{client_rate:,}** writes/s at p50 {one['p50_ms']} ms, with this machine's cores "
        f"{one['cpu_busy_of_cores'] * 100:.0f}% busy with our processes.",
        "",
        "| machines N (cores c each) | groups g = N | acceptor CPU bound N·c/A | per-process bound g·10⁶/(A/3) "
        "| predicted writes/s | client cores needed (C per write) | clients at window 64 (this latency) |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, c in ((3, 2), (3, 8), (6, 8), (12, 8), (30, 8)):
        cpu_bound = n * c * 1e6 / acceptors
        proc_bound = n * group_cap
        predicted = min(cpu_bound, proc_bound)
        lines.append(f"| {n} ({c}) | {n} | {cpu_bound:,.0f} | {proc_bound:,.0f} | {predicted:,.0f} "
                     f"| {predicted * client / 1e6:.1f} | {predicted / client_rate:.0f} |")
    return "\n".join(lines)


def _rate(report: dict[str, Any], name: str, bench: str, **match: Any) -> float | None:
    for res in report["results"]:
        if res["name"] != name:
            continue
        rows = list(res["rows"]) + [r for t in res.get("tables", []) for r in t["rows"]]
        rates = [float(r["ops_per_s"]) for r in rows if r["benchmark"].startswith(bench)
                 and all(r.get(k) == v for k, v in match.items())]
        if rates:
            return max(rates)
    return None


def summary(report: dict[str, Any]) -> str:
    """The headline figures beside the goals they are measured against, ratios within the one run."""
    rows: list[dict[str, Any]] = []

    def add(what: str, ours: float | None, theirs: float | None, goal: str, against: str) -> None:
        value = None if ours is None or not theirs else ours / theirs
        rows.append({"figure": what, "ours": ours, "against": against, "theirs": theirs,
                     "ratio": "n/a" if value is None else f"{value:.3f}x", "goal": goal})

    w64 = _rate(report, "wor", "write (batch-captured)", window=64, value_bytes=8)
    add("single writes through a batch capture, 64 in flight", w64,
        _rate(report, "apps", "PySyncObj add", window=64), ">= 1.0x", "PySyncObj, window 64")
    add("single writes through a batch capture, 64 in flight", w64,
        _rate(report, "wor", "bare write, 64 in flight"), ">= 0.6x", "bare limit, 64 in flight")
    for w in (1, 16, 64, 256):
        add(f"WormPaxos sticky, window {w}", _rate(report, "apps", "WormPaxos submit", window=w),
            _rate(report, "apps", "PySyncObj add", window=w), ">= 1.0x", f"PySyncObj, window {w}")
    add("WormLog appends/s, 256 in flight", _rate(report, "apps", "WormLog append", window=256), 50_000,
        ">= 1.0x", "50,000/s")
    cw1 = _rate(report, "wor", "capture+write", window=1, value_bytes=8)
    add("capture+write one at a time", cw1, 1_000, ">= 1.0x", "1,000/s")
    add("capture+write one at a time", cw1, _rate(report, "wor", "bare durable 2 round trips", window=1),
        "(context)", "bare durable floor, 2 round trips")
    for c in (1, 16, 64, 256):
        add(f"WormKV puts, {c} clients", _rate(report, "kv", "WormKV put", clients=c),
            _rate(report, "kv", "etcd put", clients=c), ">= 1.0x", f"etcd, {c} clients")
    return table(rows) + "\n\nPySyncObj: the better of its two settings at each window."


def sections(report: dict[str, Any]) -> dict[str, str]:
    out = {"machine": machine(report), "summary": summary(report)}
    for r in report["results"]:
        out[r["name"]] = section(r)
    model = capacity(report)
    if model is not None:
        out["capacity"] = model
    return out


def _keeping_markers(text: str) -> Callable[[re.Match[str]], str]:
    def sub(m: re.Match[str]) -> str:
        return m.group(1) + text + m.group(2)

    return sub


def update(page: str, report: dict[str, Any]) -> str:
    for name, text in sections(report).items():
        pattern = re.compile(rf"(<!-- figures:{re.escape(name)} -->\n).*?(\n<!-- /figures:{re.escape(name)} -->)",
                             re.S)
        page = pattern.sub(_keeping_markers(text), page)
    return page


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.report", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("results", nargs="?", default="docs/bench-results.json")
    p.add_argument("--update", metavar="PAGE", help="rewrite the marked sections of PAGE")
    args = p.parse_args(list(argv) if argv is not None else sys.argv[1:])
    with open(args.results) as f:
        report = json.load(f)
    if args.update:
        with open(args.update) as f:
            page = f.read()
        with open(args.update, "w") as f:
            f.write(update(page, report))
        print(f"updated {args.update}")
    else:
        for name, text in sections(report).items():
            print(f"## {name}\n\n{text}\n")


if __name__ == "__main__":
    main()
