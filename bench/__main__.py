"""``python -m bench [NAME ...] [--quick] [--json] [--save PATH]`` (``make bench``): run benchmarks in turn.

With no NAME every benchmark runs, in the order of ``BENCHMARKS``; each prints its table and ratios as it
finishes (``--json``: one JSON document at the end). ``--save PATH`` also writes every result, with the
machine's description and the command line, to ``PATH`` (JSON), which ``python -m bench.plots`` turns into
the PNG plots of docs/img/. A benchmark that fails is reported and the others still run; the exit status
is then 1. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any

from bench.common import Result, machine, print_result

BENCHMARKS: dict[str, str] = {
    "wor": "bench.bench_wor",  # WOR micro-benchmarks, the bare limit, contracts on/off
    "apps": "bench.bench_apps",  # WormLog and WormPaxos vs PySyncObj
    "kv": "bench.bench_kv",  # WormKV vs etcd
    "scale": "bench.bench_scale",  # 1, 2, 4 acceptor groups
    "explore": "bench.bench_explore",  # the explorer's states/s
    "check": "bench.bench_check",  # the linearizability checker, 10K and 100K operations
    "tcp": "bench.bench_tcp",  # the short TCP table of ``wormspace bench``
    "tx": "bench.bench_tx",  # WormTX and the bank
    "bare": "bench.bare",  # the bare limit alone
    "memory": "bench.bench_memory",  # acceptor memory and SQLite bytes per register
}
DEFAULT = ("wor", "apps", "kv", "scale", "explore", "check", "tx", "memory")  # bare runs inside wor, tcp is a subset


def run_named(names: Sequence[str], *, quick: bool, as_json: bool, save: str | None = None) -> int:
    """Run ``names`` (``all``: the default set); print each result; return the exit status."""
    chosen = list(DEFAULT) if not names or list(names) == ["all"] else list(names)
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)} or all",
              file=sys.stderr)
        return 2
    results: list[dict[str, Any]] = []
    failed = False
    for name in chosen:
        started = time.perf_counter()
        if not as_json:
            print(f"== {name} ({BENCHMARKS[name]})", flush=True)
        try:
            res: Result = importlib.import_module(BENCHMARKS[name]).run(quick)
        except Exception:  # report and go on with the others: one broken peer must not hide our figures
            failed = True
            print(f"== {name} FAILED:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
            continue
        elapsed = time.perf_counter() - started
        doc = res.to_json()
        doc["elapsed_s"] = round(elapsed, 1)
        results.append(doc)
        if not as_json:
            print_result(res)
            print(f"== {name}: {elapsed:.1f} s\n", flush=True)
    # The command that reruns this, from the arguments (sys.argv is wormspace's own under ``wormspace bench``).
    command = " ".join(["python -m bench", *names, *(["--quick"] if quick else []),
                        *(["--save", save] if save else [])])
    report = {"machine": machine(), "quick": quick, "command": command, "results": results}
    if as_json:
        json.dump(report, sys.stdout, indent=2)
        print()
    if save:
        with open(save, "w") as f:
            json.dump(report, f, indent=1)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run ({', '.join(BENCHMARKS)}, all)")
    p.add_argument("--quick", action="store_true", help="short runs that prove each benchmark works")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--save", metavar="PATH", help="also write the results (JSON) to PATH, for bench.plots")
    args = p.parse_args(list(argv) if argv is not None else sys.argv[1:])
    return run_named(args.names, quick=args.quick, as_json=args.json, save=args.save)


if __name__ == "__main__":
    sys.exit(main())
