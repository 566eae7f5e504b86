"""Write/read throughput and latency over real TCP (three acceptor processes on loopback).

``python -m bench.bench_tcp [--quick] [--json]`` -- the same as ``wormspace bench`` with no name (64-byte
values, 64 in flight, batch writes of 64); ``bench.bench_wor`` is the fuller grid.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bench.common import Result, cli, contracts_off


def run(quick: bool) -> Result:
    contracts_off()
    from wormspace.benchcli import run as tcp_run

    res = Result("tcp", "WormSpace over TCP: 3 acceptor processes on loopback, SQLite synchronous=FULL")
    res.rows = tcp_run(n=50 if quick else 400)
    return res


def main(argv: Sequence[str] | None = None) -> None:
    cli("python -m bench.bench_tcp", __doc__, run, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
