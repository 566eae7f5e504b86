"""Mutants of the acceptor and WOR cores (``conftest.py``): every check of the layer must catch each one.

For each planted bug the tests assert that each of the three checks reports a failure:

* the explorer (``explore``) finds a VIOLATION in a configuration small enough to find it quickly (the
  explorer looks the cores up when an exploration starts, so the monkeypatched ones are explored);
* the lockstep machine (``WorLockstep``) fails an invariant within ``MUTANT_LOCKSTEP``'s runs;
* the linearizability check of concurrent histories (``run_linearizability``) finds at least one ILLEGAL
  history among the seeds listed for the mutant.

The seeds and configurations are pinned: the runs are deterministic, so a change in the cores that makes a
check stop seeing a mutant fails here. ``read_half_as_seen`` needs a specific interleaving to be visible in
a history (a read meets a vote on one acceptor just before a higher ballot takes the register from the
other two; the value read then never becomes chosen): none of seeds 0-99 of the default bounds showed it;
with one contended address and 30% drops, 3 of seeds 0-399 did (126, 168, 256); the unmutated cores give
OK on all of those. (Before a refused round met with silence retried at a higher ballot, wor.py Rule 5,
the seeds were 31, 58, 60 and 65: the retries change the interleavings a seed produces.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import Phase as Stage
from hypothesis.stateful import run_state_machine_as_test

from wormspace.layers.network import Faults
from wormspace.refinement import acceptor_to_wor
from wormspace.refinement.acceptor_to_wor import WorLockstep, run_linearizability
from wormspace.refinement.explore import (
    ALWAYS,
    CAPTURE,
    VIOLATION,
    ExploreConfig,
    explore,
    small_config,
    write,
)
from wormspace.refinement.linearizability import ILLEGAL

TWO_WRITERS = ExploreConfig(scripts=((CAPTURE, write(b"a")), (CAPTURE, write(b"b"))), max_rounds=1)

# mutant -> the exploration that catches it (the property it broke when this was written, in the comment)
EXPLORE: dict[str, ExploreConfig] = {
    "quorum_of_one": small_config(),  # outcomes_match_spec: a write returned ok, its value not chosen
    "accept_below_promise": TWO_WRITERS,  # always_single_value_chosen
    "capture_without_adoption": TWO_WRITERS,  # always_single_value_chosen
    "read_half_as_empty": small_config(),  # outcomes_match_spec: a read returned EMPTY after a choice
    "read_half_as_seen": small_config(),  # outcomes_match_spec: a read returned a value not chosen
}

ONE_HOT_ADDRESS: dict[str, Any] = {"offsets": 1, "faults": Faults(drop=0.3, duplicate=0.1)}
# mutant -> (seeds, run_linearizability keywords): at least one of the histories must be ILLEGAL
LINEARIZABILITY: dict[str, tuple[tuple[int, ...], dict[str, Any]]] = {
    "quorum_of_one": ((0, 1, 2), {}),
    "accept_below_promise": ((0, 1, 2, 3), {}),
    "capture_without_adoption": ((0, 1), {}),
    "read_half_as_empty": ((0, 1), {}),
    "read_half_as_seen": ((126, 168), ONE_HOT_ADDRESS),
}

MUTANT_LOCKSTEP = settings(
    max_examples=3000,
    stateful_step_count=40,
    deadline=None,
    derandomize=True,
    phases=[Stage.explicit, Stage.generate],  # no shrinking: finding the bug is what is asserted
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
)


@pytest.fixture(autouse=True)
def _keep_witnesses() -> Iterator[None]:
    """Mutant runs must not count as witnesses of the "sometimes" properties of the clean runs."""
    saved = acceptor_to_wor.lockstep_witnessed.copy()
    yield
    acceptor_to_wor.lockstep_witnessed.clear()
    acceptor_to_wor.lockstep_witnessed.update(saved)


def test_explorer_catches_the_mutant(mutant: str) -> None:
    report = explore(EXPLORE[mutant])
    print("\n" + report.render())
    assert report.verdict == VIOLATION, report.render()
    assert report.failed in {name for name, _ in ALWAYS}


def test_lockstep_catches_the_mutant(mutant: str) -> None:
    with pytest.raises(AssertionError) as caught:
        run_state_machine_as_test(WorLockstep, settings=MUTANT_LOCKSTEP)
    print(f"\n{mutant}: {str(caught.value).splitlines()[0]}")


def test_linearizability_catches_the_mutant(mutant: str) -> None:
    seeds, kwargs = LINEARIZABILITY[mutant]
    verdicts = {seed: run_linearizability(seed, **kwargs) for seed in seeds}
    illegal = [seed for seed, r in verdicts.items() if r.verdict == ILLEGAL]
    print(f"\n{mutant}: ILLEGAL for seeds {illegal} of {list(seeds)}")
    assert illegal, f"no history was found illegal: { {s: r.verdict for s, r in verdicts.items()} }"
