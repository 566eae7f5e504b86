"""The explorer's figures for its default configurations: distinct states, depth, seconds.

``python -m bench.bench_explore``. Contracts are switched off by ``make bench`` (WORMSPACE_CONTRACTS=0; the
explorer calls the cores without their contract wrappers either way). Each configuration is explored
exhaustively and printed with its bounds, as every explorer report is.
"""

from __future__ import annotations

import sys

from wormspace.refinement.explore import default_configs, explore


def main() -> None:
    def progress(states: int, depth: int) -> None:
        if states % 100_000 == 0:
            print(f"  ... {states} states, depth {depth}", file=sys.stderr)

    total_states = 0
    total_seconds = 0.0
    for cfg in default_configs():
        report = explore(cfg, progress=progress)
        print(report.render())
        print()
        total_states += report.states
        total_seconds += report.seconds
    print(f"default configurations: {total_states} distinct states in {total_seconds:.1f} s")


if __name__ == "__main__":
    main()
