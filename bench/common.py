"""What every benchmark shares: windowed load, percentiles, rows, tables, ratios, the command line.

Rule 1. Benchmarks measure through the public API only (``Cluster.local``, ``wormspace.connect``,
        ``ws.aio``, the apps), so they measure whatever runtime is installed.
Rule 2. Figures are printed, never asserted. A row is a dict: ``benchmark``, ``ops``, ``seconds``,
        ``ops_per_s`` and, when latencies were taken, ``p50_ms`` and ``p99_ms`` (plus free-form keys such
        as ``window`` or ``value_bytes`` that plots and ratios read).
Rule 3. Every benchmark module has ``run(quick: bool) -> Result`` and ``main(argv)``; ``--quick`` is a
        short run that proves the benchmark works, ``--json`` prints the result as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]


@dataclass
class Result:
    """One benchmark's output: a titled table of rows, named ratios, and notes (skips, settings)."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    ratios: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    extra_tables: list[tuple[str, list[Row]]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "rows": self.rows,
            "ratios": self.ratios,
            "notes": self.notes,
            "tables": [{"title": t, "rows": r} for t, r in self.extra_tables],
        }


def pct(xs: Sequence[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))] if s else 0.0


def row(name: str, ops: int, seconds: float, lat: Sequence[float] | None = None, **extra: Any) -> Row:
    r: Row = {"benchmark": name, "ops": ops, "seconds": round(seconds, 4),
              "ops_per_s": round(ops / seconds) if seconds > 0 else 0}
    if lat:
        r["p50_ms"] = round(statistics.median(lat) * 1e3, 3)
        r["p99_ms"] = round(pct(lat, 0.99) * 1e3, 3)
    r.update(extra)
    return r


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


async def windowed(count: int, window: int, make: Callable[[int], Awaitable[Any]]) -> tuple[float, list[float]]:
    """Run ``make(0..count-1)`` with at most ``window`` in flight -> (seconds, latency of each)."""
    lats: list[float] = []
    it = iter(range(count))

    async def worker() -> None:
        for i in it:
            s = time.perf_counter()
            await make(i)
            lats.append(time.perf_counter() - s)

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(window, count))))
    return time.perf_counter() - t, lats


def sequential(count: int, op: Callable[[int], Any]) -> tuple[float, list[float]]:
    """Run ``op(0..count-1)`` one at a time -> (seconds, latency of each)."""
    lats: list[float] = []
    t = time.perf_counter()
    for i in range(count):
        s = time.perf_counter()
        op(i)
        lats.append(time.perf_counter() - s)
    return time.perf_counter() - t, lats


def free_ports(k: int) -> list[int]:
    """``k`` distinct loopback ports free at the time of the call."""
    socks = [socket.socket() for _ in range(k)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def contracts_off() -> None:
    """Switch contracts off for the acceptor processes this process starts (they inherit the environment)."""
    os.environ["WORMSPACE_CONTRACTS"] = "0"


def machine() -> dict[str, Any]:
    """The machine the figures come from."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem = int(line.split()[1]) // 1024
                    break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    from wormspace.layers.tcp import loop_name, new_event_loop

    loop = new_event_loop()  # what ``wormspace serve`` runs on here (WORMSPACE_LOOP, uvloop if installed)
    serve_loop = loop_name(loop)
    loop.close()
    return {"nproc": os.cpu_count(), "cpu": model, "memory_mib": mem, "python": platform.python_version(),
            "platform": platform.platform(), "loadavg": [round(x, 2) for x in load], "serve_loop": serve_loop}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return "" if v is None else str(v)


def print_rows(title: str, rows: list[Row]) -> None:
    from rich.console import Console
    from rich.table import Table

    if not rows:
        return
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    table = Table(title=title)
    for c in cols:
        table.add_column(c, justify="left" if c == "benchmark" else "right")
    for r in rows:
        table.add_row(*(_fmt(r.get(c)) for c in cols))
    Console(width=200).print(table)


def print_result(res: Result) -> None:
    print_rows(res.title, res.rows)
    for title, rows in res.extra_tables:
        print_rows(title, rows)
    for name, value in res.ratios.items():
        print(f"ratio  {name}: {'n/a' if value is None else f'{value:.3f}x'}")
    for note in res.notes:
        print(f"note   {note}")
    sys.stdout.flush()


def parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=(doc or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a short run that proves the benchmark works")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p


def cli(prog: str, doc: str | None, run: Callable[[bool], Result], argv: Sequence[str] | None) -> None:
    args = parser(prog, doc).parse_args(list(argv) if argv is not None else sys.argv[1:])
    res = run(args.quick)
    if args.json:
        json.dump(res.to_json(), sys.stdout, indent=2)
        print()
    else:
        print_result(res)
