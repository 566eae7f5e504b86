"""The explorer's figures for its default configuration: distinct states, depth, seconds.

``python -m bench.bench_explore``. Contracts are switched off by ``make bench`` (WORMSPACE_CONTRACTS=0);
the figures are printed with the configuration's bounds, as every explorer report is.
"""

from __future__ import annotations

import sys

from wormspace.refinement.explore import default_config, explore


def main() -> None:
    def progress(states: int, depth: int) -> None:
        if states % 100_000 == 0:
            print(f"  ... {states} states, depth {depth}", file=sys.stderr)

    report = explore(default_config(), progress=progress)
    print(report.render())


if __name__ == "__main__":
    main()
