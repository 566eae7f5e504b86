"""The linearizability checker on 10,000- and 100,000-operation histories (prints figures, asserts nothing).

``python -m bench.bench_check [--quick] [--json]`` (``wormspace bench check``). Generates a valid history --
the sequential WOR spec run one operation at a time, then every call/return interval widened at random
around its point -- over 100 addresses (1,000 for the 100K history) by 8 processes, and times parsing its
JSON lines and checking it, under the per-address model and under the segment model (4 segments of 64
registers; 40 of 64 for 100K), where a part is a whole segment. ``--quick``: one 1,000-operation history.
The verdict is printed; a history valid by construction judged otherwise is flagged UNEXPECTED.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Sequence

from bench.common import Result, cli
from wormspace.history import History
from wormspace.refinement.linearizability import check_history
from wormspace.refinement.models import simulate

PROCESSES = 8
SEED = 1


def run(quick: bool) -> Result:

    res = Result("check", "Linearizability checker: valid histories, 8 processes")
    sizes = ((1_000, 100),) if quick else ((10_000, 100), (100_000, 1_000))
    for operations, addresses in sizes:
        for label, segments, wos_size in (("per address", 0, 1024),
                                          ("per segment", max(4, addresses // 25), 64)):
            history = simulate(random.Random(SEED), operations=operations, addresses=addresses,
                               processes=PROCESSES, segments=segments, wos_size=wos_size)
            text = history.to_jsonl()
            t = time.perf_counter()
            History.from_jsonl(text)
            parse_s = time.perf_counter() - t
            t = time.perf_counter()
            result = check_history(history, wos_size=wos_size)
            check_s = time.perf_counter() - t
            events = len(history)
            res.rows.append({"benchmark": f"{operations:,} ops, {label}", "operations": operations,
                             "addresses": addresses, "events": events, "verdict": result.verdict,
                             "parts": len(result.partitions), "model_steps": result.steps,
                             "check_s": round(check_s, 3), "ops_per_s": round(operations / check_s),
                             "parse_s": round(parse_s, 3)})
            if result.verdict != "OK":
                res.notes.append(f"UNEXPECTED: a history valid by construction was judged {result.verdict}")
    return res


def main(argv: Sequence[str] | None = None) -> None:
    cli("python -m bench.bench_check", __doc__, run, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
