"""Benchmark of the linearizability checker (prints figures; asserts nothing about time).

Generates a valid history -- the sequential WOR spec run one operation at a time, then every call/return
interval widened at random around its point -- of 10,000 operations over 100 addresses by 8 processes,
and times parsing its JSON lines and checking it. Also times the same shape under the segment model
(4 segments of 64 registers), where a part is a whole segment rather than one address.

Run: ``python -m bench.bench_check`` (set ``WORMSPACE_CONTRACTS=0`` as ``make bench`` does).
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable

from wormspace.history import History
from wormspace.refinement.linearizability import check_history
from wormspace.refinement.models import simulate

OPERATIONS = 10_000
ADDRESSES = 100
PROCESSES = 8
SEED = 1


def _best_of(runs: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    for label, segments, wos_size in (("wor (per address)", 0, 1024), ("segment (per segment)", 4, 64)):
        history = simulate(random.Random(SEED), operations=OPERATIONS, addresses=ADDRESSES,
                           processes=PROCESSES, segments=segments, wos_size=wos_size)
        text = history.to_jsonl()
        result = check_history(history, wos_size=wos_size)
        parse_s = _best_of(3, functools.partial(History.from_jsonl, text))
        check_s = _best_of(3, functools.partial(check_history, history, wos_size=wos_size))
        events = len(history)
        print(
            f"check {label}: {OPERATIONS} operations ({events} events), {ADDRESSES} addresses, "
            f"{PROCESSES} processes -> {result.verdict} in {len(result.partitions)} parts, "
            f"{result.steps} model steps"
        )
        print(f"  check {check_s * 1000:8.1f} ms  {events / check_s:12,.0f} events/s")
        print(f"  parse {parse_s * 1000:8.1f} ms  {events / parse_s:12,.0f} events/s")
        if result.verdict != "OK":
            print(f"  UNEXPECTED: a history valid by construction was judged {result.verdict}")


if __name__ == "__main__":
    main()
