"""``python -m bench.plots [RESULTS] [--out DIR]``: PNG plots of throughput against latency from a saved run.

RESULTS is the JSON that ``python -m bench --save RESULTS`` wrote (default ``docs/bench-results.json``);
the plots go to DIR (default ``docs/img``), one per comparison, each point a window (operations in
flight, or clients), x the throughput, y the median latency (log scale). Needs matplotlib (the ``bench``
extra). Plots are drawn only for the benchmarks the run holds.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

Row = dict[str, Any]


def _series(rows: list[Row], name: str, key: str = "window", **match: Any) -> list[Row]:
    out = [r for r in rows if r["benchmark"] == name and "p50_ms" in r
           and all(r.get(k) == v for k, v in match.items())]
    return sorted(out, key=lambda r: r[key])


def _plot(path: Path, title: str, lines: list[tuple[str, list[Row]]], key: str, machine: str) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [(label, rows) for label, rows in lines if rows]
    if not lines:
        return False
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, rows in lines:
        xs = [r["ops_per_s"] for r in rows]
        ys = [r["p50_ms"] for r in rows]
        ax.plot(xs, ys, marker="o", label=label)
        for r, x, y in zip(rows, xs, ys, strict=True):
            ax.annotate(str(r[key]), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_yscale("log")
    ax.set_xlabel("throughput (operations/s)")
    ax.set_ylabel("median latency (ms, log)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.text(0.01, 0.01, f"points labelled by {key}; {machine}", fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _scale(path: Path, rows: list[Row], machine: str) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    groups = [str(r["groups"]) for r in rows]
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r["ops_per_s"] for r in rows], width=0.4, label="total writes/s")
    ax.bar([x + 0.2 for x in xs], [r["per_group_ops_per_s"] for r in rows], width=0.4, label="per group")
    ax.set_xticks(list(xs), groups)
    ax.set_xlabel("acceptor groups (3 acceptors each), one client process per group")
    ax.set_ylabel("single batch-captured writes/s (64 in flight per group)")
    ax.set_title("Scale-out on one machine", fontsize=10)
    ax.legend(fontsize=8)
    fig.text(0.01, 0.01, machine, fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot(results: dict[str, Any], out: Path) -> list[Path]:
    """Draw every plot the results allow into ``out``; return the files written."""
    out.mkdir(parents=True, exist_ok=True)
    m = results.get("machine", {})
    machine = f"{m.get('nproc', '?')} cores, {m.get('cpu', '?')}, Python {m.get('python', '?')}, one run"
    by_name = {r["name"]: r for r in results.get("results", [])}
    written: list[Path] = []

    def rows_of(name: str) -> list[Row]:
        res = by_name.get(name)
        if res is None:
            return []
        rows: list[Row] = list(res["rows"])
        for table in res.get("tables", []):
            rows.extend(table["rows"])
        return rows

    wor = rows_of("wor")
    for size in (8, 1024):
        lines = [(f"{op}, {size} B", _series(wor, op, value_bytes=size))
                 for op in ("read", "capture+write", "write (batch-captured)")]
        if size == 8:
            lines.append(("bare limit (asyncio + msgpack echo), 8 B",
                          _series(wor, "bare write, 1 at a time") + _series(wor, "bare write, 64 in flight")))
        path = out / f"wor-{size}b.png"
        if _plot(path, f"WOR over TCP, 3 acceptors (SQLite FULL), {size} B values", lines, "window", machine):
            written.append(path)
    apps = rows_of("apps")
    path = out / "apps-vs-pysyncobj.png"
    if _plot(path, "WormPaxos and WormLog vs PySyncObj, 3 replicas, 8 B",
             [(n, _series(apps, n)) for n in ("WormPaxos submit (sticky)", "WormLog append",
                                             "PySyncObj add (batch)", "PySyncObj add (no batch)")],
             "window", machine):
        written.append(path)
    kv = rows_of("kv")
    path = out / "kv-vs-etcd.png"
    if _plot(path, "WormKV vs etcd durable puts, 3 members on loopback",
             [(n, _series(kv, n, key="clients")) for n in ("WormKV put", "etcd put")], "clients", machine):
        written.append(path)
    path = out / "scale-out.png"
    if _scale(path, rows_of("scale"), machine):
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.plots", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("results", nargs="?", default="docs/bench-results.json")
    p.add_argument("--out", default="docs/img")
    args = p.parse_args(list(argv) if argv is not None else sys.argv[1:])
    with open(args.results) as f:
        results = json.load(f)
    for path in plot(results, Path(args.out)):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
