"""Test-only launcher: plant one mutant, then run CrossHair in this process.

``python tests/mutants/crosshair_launch.py MUTANT crosshair-args...``. Used by test_crosshair_mutants.py to
show that the CrossHair lemmas catch broken cores. Never imported by shipped code.
"""

from __future__ import annotations

import sys
from typing import Any

from wormspace.layers import acceptor, wor
from wormspace.layers.effects import Persist
from wormspace.layers.messages import ZERO_BALLOT, Accept, Accepted, RegState


def _accept_lower_ballot(view: acceptor.StoreView, msg: Accept) -> tuple[Persist | None, Any]:
    """Rule 2 without the ballot comparison: accepts below the promise."""
    puts = tuple(
        ((msg.segment, i), RegState(promised=max(msg.ballot, acceptor._get(view, msg.segment, i).promised),
                                    accepted=msg.ballot, value=v))
        for i, v in msg.values
    )
    return Persist(puts=puts), Accepted(req=msg.req, segment=msg.segment, ballot=msg.ballot)


def plant(name: str) -> None:
    if name == "quorum_of_one":
        wor.Ctx.quorum = property(lambda self: 1)  # type: ignore[method-assign,assignment]
    elif name == "accept_lower_ballot":
        acceptor.on_accept = _accept_lower_ballot
    elif name == "no_adopt":
        wor._highest_votes = lambda promises: {}
    elif name == "ignore_floor":
        acceptor.fence_floor = lambda view: ZERO_BALLOT
    elif name != "none":
        raise SystemExit(f"unknown mutant {name!r}")


if __name__ == "__main__":
    plant(sys.argv[1])
    from crosshair.main import main

    sys.argv = ["crosshair", *sys.argv[2:]]
    main()  # exits with CrossHair's code
