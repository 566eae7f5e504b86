"""The planted-bug catalog of ``wormspace prove --mutants``: each mutant, and the obligations expected to
catch it (never shipped: tests/ is not in the wheel).

``python tests/mutants/catalog.py MUTANT LAYER.OBLIGATION [--quick]`` plants one mutant in this process
(the same broken functions the mutant tests plant, taken from ``conftest.py``, ``crosshair_launch.py`` and
``test_wos_mutants.py``), discharges one obligation, and prints its evidence as one JSON line. CrossHair runs
in its own process, so for the mutants of the CrossHair lemmas the launcher is pointed at
``crosshair_launch.py``, which plants the same mutant there.

A mutant counts as caught when at least one of its expected obligations reports ``counterexample``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = str(Path(__file__).with_name("crosshair_launch.py"))


@dataclass(frozen=True, slots=True)
class Mutant:
    description: str
    expected: tuple[str, ...]  # obligations ("layer.name") expected to catch it
    crosshair: str | None = None  # the crosshair_launch.py name, for mutants CrossHair must see too


MUTANTS: dict[str, Mutant] = {
    "quorum_of_one": Mutant("operations settle on one acceptor's answer",
                            ("wor.agreement", "acceptor.vote_at_most_one_value_per_ballot"), "quorum_of_one"),
    "accept_below_promise": Mutant("the acceptor votes below its promise (keeping step_ok)", ("wor.agreement",)),
    "accept_lower_ballot": Mutant("Rule 2 without the ballot comparison (CrossHair's mutant)",
                                  ("acceptor.vote_never_above_promise",), "accept_lower_ballot"),
    "capture_without_adoption": Mutant("phase 1 never adopts a value it finds", ("wor.agreement",), "no_adopt"),
    "read_half_as_empty": Mutant("a read of a half-written register answers EMPTY",
                                 ("wor.agreement", "wor.linearizable")),
    "read_half_as_seen": Mutant("a read of a half-written register answers the value seen, uncompleted",
                                ("wor.agreement",)),
    "trim_undone": Mutant("a trimmed acceptor still votes for data", ("wos.trim_permanent",)),
    "alloc_without_token": Mutant("allocs with equal metadata both win", ("wos.alloc_unique",)),
    "capture_skips_a_promise": Mutant("a batch capture goes ahead one promise short of a quorum",
                                      ("wos.batch_equals_sequence",)),
    "minority_batch_write": Mutant("a batch write reports ok when a minority accepted",
                                   ("wos.trim_permanent", "wormspace.segments_independent")),
}

#: planted bugs checked elsewhere than by an obligation of prove
ELSEWHERE = {
    "forgetful_storage": "an acceptor that loses its SQLite state on restart; real processes:"
    " tests/mutants/test_durability_mutant.py",
}


def plant(name: str) -> None:
    """Plant mutant ``name`` in this process (for good: the process exists to run it)."""
    sys.path.insert(0, str(ROOT))
    import pytest

    from tests.mutants import conftest, test_wos_mutants
    from wormspace.layers import acceptor, wor

    mp = pytest.MonkeyPatch()
    wos_fixtures: dict[str, Callable[..., None]] = {
        "trim_undone": test_wos_mutants.trim_undone.__wrapped__,  # type: ignore[attr-defined]
        "alloc_without_token": test_wos_mutants.alloc_without_token.__wrapped__,  # type: ignore[attr-defined]
        "capture_skips_a_promise": test_wos_mutants.capture_skips_a_promise.__wrapped__,  # type: ignore[attr-defined]
        "minority_batch_write": test_wos_mutants.minority_batch_write.__wrapped__,  # type: ignore[attr-defined]
    }
    if name == "quorum_of_one":
        mp.setattr(wor.Ctx, "quorum", property(lambda self: 1))
    elif name == "accept_below_promise":
        mp.setattr(acceptor, "on_accept", conftest._accept_below_promise)
    elif name == "accept_lower_ballot":
        from tests.mutants import crosshair_launch

        crosshair_launch.plant(name)
    elif name == "capture_without_adoption":
        mp.setattr(wor, "_highest_votes", lambda promises: {})
    elif name in ("read_half_as_empty", "read_half_as_seen"):
        mp.setattr(wor, "_read_progress", conftest._read_without_completion(as_seen=name == "read_half_as_seen"))
    elif name in wos_fixtures:
        wos_fixtures[name](mp)
    else:
        raise SystemExit(f"unknown mutant {name!r}; known: {', '.join(MUTANTS)}")


def main(argv: list[str]) -> int:
    name, key = argv[0], argv[1]
    quick = "--quick" in argv[2:]
    plant(name)
    from wormspace.proofs import obligations as ob

    if MUTANTS[name].crosshair is not None:
        ob.crosshair_launcher = [sys.executable, LAUNCHER, str(MUTANTS[name].crosshair)]
    ob.load()
    t0 = time.perf_counter()
    outcome = ob.discharge(ob.REGISTRY[key], ob.Run(quick=quick))
    e = outcome.evidence
    print(json.dumps({"result": e.result, "bounds": e.bounds, "detail": e.detail[:500],
                      "seconds": round(time.perf_counter() - t0, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
