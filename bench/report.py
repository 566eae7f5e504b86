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
            f"{m['platform']}; load average {m['loadavg']} when the run ended; command: `{report['command']}`"
            f"{' (quick mode)' if report.get('quick') else ''}")


def sections(report: dict[str, Any]) -> dict[str, str]:
    out = {"machine": machine(report)}
    for r in report["results"]:
        out[r["name"]] = section(r)
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
