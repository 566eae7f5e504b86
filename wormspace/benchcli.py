"""``wormspace bench``: write/read throughput and latency over real TCP against local acceptor processes.

Starts three acceptor processes on loopback (SQLite, WAL, ``synchronous=FULL``; contracts off unless
``--contracts``), then measures, with one client process:

* ``write 1-by-1``: capture + write of fresh addresses, one at a time (two round trips each);
* ``write after batch capture``: single writes through one batch capture (one round trip each);
* ``write, N in flight``: the same, ``--inflight`` concurrent asyncio writes (the transport coalesces them
  into frames);
* ``batch_write xK``: batch writes of K offsets (one Accept per acceptor each);
* ``read 1-by-1`` and ``read, N in flight``.

Figures are printed as a table (``--json`` for machines). Both the client and the three acceptors share
this machine's cores, so the figures measure the whole system on one box, not a deployment.

``wormspace bench NAME`` runs a benchmark of the source tree's ``bench/`` package instead (``wor``,
``apps``, ``kv``, ``scale``, ``explore``, ``check``, ``tcp``, ``tx``, ``bare``, ``memory``, or ``all``;
``--quick`` for a short run), as ``python -m bench NAME`` does; those ship with the source, not the wheel.
``-n``, ``--inflight``, ``--batch`` and ``--contracts`` size the table without NAME and ``--quick`` goes with
NAME: any other mix exits 2 saying so, rather than being ignored.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else 0.0


def _row(name: str, ops: int, seconds: float, lat: list[float] | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "benchmark": name,
        "ops": ops,
        "seconds": round(seconds, 4),
        "ops_per_s": round(ops / seconds),
    }
    if lat:
        row["p50_ms"] = round(statistics.median(lat) * 1e3, 3)
        row["p99_ms"] = round(_pct(lat, 0.99) * 1e3, 3)
    return row


def run(n: int = 400, inflight: int = 64, batch: int = 64, contracts: bool = False) -> list[dict[str, Any]]:
    """Run the benchmarks; return one row per benchmark."""
    if not contracts:
        os.environ["WORMSPACE_CONTRACTS"] = "0"  # inherited by the acceptor processes
    from wormspace.cluster import Cluster

    rows: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="wormspace-bench-") as d,
        Cluster.local(acceptors=3, data_dir=d, record=False) as cluster,
    ):
        ws = cluster.client()
        wos = ws.wos_size

        def fresh_segment() -> int:
            seg: int = ws.alloc(b"bench")
            return seg

        # capture + write, one at a time
        seg = fresh_segment()
        lat: list[float] = []
        t0 = time.perf_counter()
        for i in range(min(n, wos)):
            s = time.perf_counter()
            addr = ws.address(seg, i)
            ws.write(addr, b"x" * 64, ws.capture(addr))
            lat.append(time.perf_counter() - s)
        rows.append(_row("capture+write 1-by-1", len(lat), time.perf_counter() - t0, lat))

        # writes through one batch capture
        seg = fresh_segment()
        cap = ws.batch_capture(seg)
        lat = []
        t0 = time.perf_counter()
        for i in range(min(n, wos)):
            s = time.perf_counter()
            ws.write(ws.address(seg, i), b"y" * 64, cap)
            lat.append(time.perf_counter() - s)
        rows.append(_row("write 1-by-1 (batch-captured)", len(lat), time.perf_counter() - t0, lat))

        # N writes in flight (asyncio)
        async def concurrently(count: int, make: Callable[[int], Awaitable[Any]]) -> tuple[float, list[float]]:
            sem = asyncio.Semaphore(inflight)
            lats: list[float] = []

            async def one(i: int) -> None:
                async with sem:
                    s = time.perf_counter()
                    await make(i)
                    lats.append(time.perf_counter() - s)

            t = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(count)))
            return time.perf_counter() - t, lats

        aio = ws.aio
        segs = [fresh_segment() for _ in range(max(1, (4 * n) // wos + 1))]
        caps = {s: ws.batch_capture(s) for s in segs}
        count = min(4 * n, len(segs) * wos)

        def write_at(i: int) -> Awaitable[None]:
            s = segs[i // wos]
            return aio.write(ws.address(s, i % wos), b"z" * 64, caps[s])

        secs, lat = asyncio.run(concurrently(count, write_at))
        rows.append(_row(f"write, {inflight} in flight (batch-captured)", count, secs, lat))

        # batch writes
        seg = fresh_segment()
        cap = ws.batch_capture(seg)
        lat = []
        t0 = time.perf_counter()
        done = 0
        for start in range(0, wos, batch):
            s = time.perf_counter()
            ws.batch_write(seg, {i: b"w" * 64 for i in range(start, start + batch)}, cap)
            lat.append(time.perf_counter() - s)
            done += batch
        rows.append(_row(f"batch_write x{batch} (registers)", done, time.perf_counter() - t0, lat))

        # reads
        lat = []
        t0 = time.perf_counter()
        for i in range(min(n, wos)):
            s = time.perf_counter()
            ws.read(ws.address(seg, i))
            lat.append(time.perf_counter() - s)
        rows.append(_row("read 1-by-1", len(lat), time.perf_counter() - t0, lat))

        def read_at(i: int) -> Awaitable[Any]:
            return aio.read(ws.address(seg, i % wos))

        secs, lat = asyncio.run(concurrently(4 * n, read_at))
        rows.append(_row(f"read, {inflight} in flight", 4 * n, secs, lat))
    return rows


def print_table(rows: list[dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in ("benchmark", "ops", "seconds", "ops_per_s", "p50_ms", "p99_ms"):
        table.add_column(col, justify="left" if col == "benchmark" else "right")
    for r in rows:
        table.add_row(*(str(r.get(c, "")) for c in ("benchmark", "ops", "seconds", "ops_per_s", "p50_ms", "p99_ms")))
    Console().print(table)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("bench", help="throughput and latency over real TCP (3 local acceptor processes)")
    p.add_argument("name", nargs="?", metavar="NAME",
                   help="a benchmark of the source tree's bench/ package (wor, apps, kv, scale, explore, check, "
                        "tcp, tx, bare, memory, all); without NAME: the short TCP table")
    p.add_argument("--quick", action="store_true", help="with NAME: a short run that proves it works")
    p.add_argument("-n", type=int, help="without NAME: operations per sequential benchmark (default 400)")
    p.add_argument("--inflight", type=int, help="without NAME: concurrent operations (default 64)")
    p.add_argument("--batch", type=int, help="without NAME: offsets per batch_write (default 64)")
    p.add_argument("--contracts", action="store_true", help="without NAME: keep icontract checks on (slower)")
    p.add_argument("--json", action="store_true", help="print JSON rows")
    p.set_defaults(func=main)


def _bench_package() -> Any:
    """The source tree's ``bench.__main__`` (importable from a checkout: the directory above the package)."""
    try:
        return importlib.import_module("bench.__main__")
    except ModuleNotFoundError as e:
        if e.name not in ("bench", "bench.__main__"):
            raise
    root = Path(__file__).resolve().parent.parent
    if not (root / "bench" / "__main__.py").is_file():
        return None
    sys.path.insert(0, str(root))
    return importlib.import_module("bench.__main__")


def main(args: argparse.Namespace) -> int:
    table_only = [flag for flag, given in (("-n", args.n is not None), ("--inflight", args.inflight is not None),
                                           ("--batch", args.batch is not None), ("--contracts", args.contracts))
                  if given]
    if args.name is not None and table_only:  # a named benchmark has its own sizes: never silently ignored
        print(f"wormspace bench: {', '.join(table_only)} set the short TCP table (no NAME), not benchmark"
              f" {args.name!r}", file=sys.stderr)
        return 2
    if args.name is None and args.quick:
        print("wormspace bench: --quick goes with NAME (a short run of that benchmark)", file=sys.stderr)
        return 2
    if args.name is not None:
        package = _bench_package()
        if package is None or not hasattr(package, "run_named"):
            print("wormspace bench: named benchmarks ship with the source tree (bench/); run from a checkout",
                  file=sys.stderr)
            return 2
        status: int = package.run_named([args.name], quick=args.quick, as_json=args.json)
        return status
    n, inflight, batch = (400 if args.n is None else args.n, 64 if args.inflight is None else args.inflight,
                          64 if args.batch is None else args.batch)
    if n < 1 or inflight < 1 or batch < 1:
        print("wormspace bench: -n, --inflight and --batch must be positive", file=sys.stderr)
        return 2
    rows = run(n, inflight, batch, args.contracts)
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
    else:
        print_table(rows, "WormSpace over TCP: 3 acceptor processes on loopback, SQLite synchronous=FULL")
    return 0
