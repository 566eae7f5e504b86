"""The explorer's figures for its default configurations: distinct states, depth, seconds, states/s.

``python -m bench.bench_explore [--quick] [--full] [--json]`` (``wormspace bench explore``; ``--full`` adds
the full race, ``wor.race_duplicating``: 1.5 million states, over a minute of CPU). Contracts are switched
off by ``make bench`` (WORMSPACE_CONTRACTS=0; the explorer calls the cores without their contract wrappers
either way). Each default configuration is explored exhaustively and its verdict printed with its bounds,
as every explorer report is; ``--quick`` explores the first configuration with a budget of 5,000 states
(its verdict is then UNKNOWN: the budget ran out, nothing is claimed). Configurations are named as in
``explore_engine.CONFIGS``. ``cpu_s`` is the process time of the search: on a shared machine the states per
CPU-second (``states_per_cpu_s``) vary less than the states per wall-clock second.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Sequence

from bench.common import Result, cli


def run(quick: bool, full: bool = False) -> Result:
    from wormspace.refinement.explore import default_configs, explore, race_duplicating_config

    configs = default_configs()
    names: tuple[str, ...] = ("wor.read", "wor.race")  # default_configs(), as named in explore_engine.CONFIGS
    if full and not quick:
        configs, names = (*configs, race_duplicating_config()), (*names, "wor.race_duplicating")
    if quick:
        configs = (dataclasses.replace(configs[0], max_states=5_000),)
    res = Result("explore", "Explorer: default configurations, breadth-first, exhaustive")
    total_states, total_seconds, total_cpu = 0, 0.0, 0.0
    for name, cfg in zip(names, configs, strict=False):
        cpu = time.process_time()
        report = explore(cfg)
        cpu = time.process_time() - cpu
        res.notes.append(report.render().replace("\n", " | "))
        res.rows.append({"benchmark": name, "verdict": report.verdict, "states": report.states,
                         "depth": report.depth, "seconds": round(report.seconds, 2),
                         "states_per_s": round(report.states / report.seconds) if report.seconds else 0,
                         "cpu_s": round(cpu, 2), "states_per_cpu_s": round(report.states / cpu) if cpu else 0})
        total_states += report.states
        total_seconds += report.seconds
        total_cpu += cpu
    res.rows.append({"benchmark": "all of the above", "states": total_states, "seconds": round(total_seconds, 2),
                     "states_per_s": round(total_states / total_seconds) if total_seconds else 0,
                     "cpu_s": round(total_cpu, 2),
                     "states_per_cpu_s": round(total_states / total_cpu) if total_cpu else 0})
    return res


def main(argv: Sequence[str] | None = None) -> None:
    args = list(argv) if argv is not None else sys.argv[1:]
    full = "--full" in args
    cli("python -m bench.bench_explore", __doc__, lambda quick: run(quick, full),
        [a for a in args if a != "--full"])


if __name__ == "__main__":
    main(sys.argv[1:])
