"""The explorer's figures for its default configurations: distinct states, depth, seconds, states/s.

``python -m bench.bench_explore [--quick] [--json]`` (``wormspace bench explore``). Contracts are switched
off by ``make bench`` (WORMSPACE_CONTRACTS=0; the explorer calls the cores without their contract wrappers
either way). Each default configuration is explored exhaustively and its verdict printed with its bounds,
as every explorer report is; ``--quick`` explores the first configuration with a budget of 5,000 states
(its verdict is then UNKNOWN: the budget ran out, nothing is claimed).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence

from bench.common import Result, cli


def run(quick: bool) -> Result:
    from wormspace.refinement.explore import default_configs, explore

    configs = default_configs()
    names = ("read_config", "race_config")
    if quick:
        configs = (dataclasses.replace(configs[0], max_states=5_000),)
    res = Result("explore", "Explorer: default configurations, breadth-first, exhaustive")
    total_states, total_seconds = 0, 0.0
    for name, cfg in zip(names, configs, strict=False):
        report = explore(cfg)
        res.notes.append(report.render().replace("\n", " | "))
        res.rows.append({"benchmark": name, "verdict": report.verdict, "states": report.states,
                         "depth": report.depth, "seconds": round(report.seconds, 2),
                         "states_per_s": round(report.states / report.seconds) if report.seconds else 0})
        total_states += report.states
        total_seconds += report.seconds
    res.rows.append({"benchmark": "all of the above", "states": total_states, "seconds": round(total_seconds, 2),
                     "states_per_s": round(total_states / total_seconds) if total_seconds else 0})
    return res


def main(argv: Sequence[str] | None = None) -> None:
    cli("python -m bench.bench_explore", __doc__, run, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
