"""``python -m bench`` (``make bench``): run every benchmark in turn; each prints its own figures."""

from __future__ import annotations

import importlib

BENCHMARKS = ("bench.bench_explore", "bench.bench_check", "bench.bench_memory", "bench.bench_tcp", "bench.bench_apps")


def main() -> None:
    for name in BENCHMARKS:
        print(f"== {name}")
        importlib.import_module(name).main()


if __name__ == "__main__":
    main()
