"""Write/read throughput and latency over real TCP (three acceptor processes on loopback).

``python -m bench.bench_tcp`` -- the same as ``wormspace bench``.
"""

from __future__ import annotations

from wormspace.benchcli import print_table, run


def main() -> None:
    rows = run()
    print_table(rows, "WormSpace over TCP: 3 acceptor processes on loopback, SQLite synchronous=FULL")


if __name__ == "__main__":
    main()
