"""Planted bugs the WOR explorer must catch directly, in the configurations named for them.

* ``stale_after_sent`` -- a write that runs out of rounds after its own value went out reports
  ``CaptureStale`` (a certain failure) instead of ``Indeterminate``: its value may be chosen. Caught by the
  obligation ``always_certain_failure_never_chosen`` (checked in every reachable state).
* ``adoption_ballot_tie`` -- the adoption rule compares ballot numbers only, so votes of two proposers at one
  number tie and the first heard wins.
* ``stale_in_retry_rounds`` -- Rule 2's certain failure applied in retry rounds too: a retry round's accept
  refused cleanly by every acceptor reports the register stale, though the write's value may already be
  voted at the capture's ballot.

The two adoption bugs were caught by the seeded histories of the fast tier in 1 of 150 runs; the race
configuration (``race_config``, named ``wor.race`` in ``explore_engine.CONFIGS``, in the quick tier)
catches both, every time: the search is exhaustive.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from tests.mutants.crosshair_launch import _highest_by_number, _stale_in_retry
from wormspace.layers import wor
from wormspace.refinement import explore_engine
from wormspace.refinement.explore import CAPTURE, VIOLATION, ExploreConfig, explore, race_config, write
from wormspace.refinement.explore_engine import CERTAIN_FAILURE

_give_up = wor._give_up


def _give_up_stale(op: wor.Op, ask: tuple[int, ...], *, timed_out: bool) -> wor.Step:
    if op.request.kind is wor.Kind.WRITE:  # the bug: stale even when the write's own value was sent
        return wor._finish(op, wor.Outcome(chosen=op.chosen, stale=ask))
    return _give_up(op, ask, timed_out=timed_out)


# mutant -> (the configuration that catches it, the property it breaks)
SMALL = ExploreConfig(scripts=((CAPTURE, write(b"a")), (CAPTURE,)), max_rounds=1, duplicating=False)
CAUGHT: dict[str, tuple[ExploreConfig, str]] = {
    "stale_after_sent": (SMALL, CERTAIN_FAILURE),
    "adoption_ballot_tie": (race_config(), "always_single_value_chosen"),
    "stale_in_retry_rounds": (race_config(), CERTAIN_FAILURE),
}


@pytest.fixture(params=sorted(CAUGHT))
def explorer_mutant(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name: str = request.param
    if name == "stale_after_sent":
        monkeypatch.setattr(wor, "_give_up", _give_up_stale)
    elif name == "adoption_ballot_tie":
        monkeypatch.setattr(wor, "_highest_votes", _highest_by_number)
    else:
        monkeypatch.setattr(wor, "_accept_progress", _stale_in_retry)
    yield name


@pytest.mark.slow
def test_the_explorer_catches_the_mutant_directly(explorer_mutant: str) -> None:
    cfg, prop = CAUGHT[explorer_mutant]
    report = explore(cfg)
    print("\n" + report.render())
    assert report.verdict == VIOLATION, report.render()
    assert report.failed == prop


def test_the_catching_configuration_is_named_and_quick() -> None:
    assert explore_engine.config("wor.race") == race_config()
    assert "wor.race" in explore_engine.names("wor", "quick")


@pytest.mark.slow
def test_the_symmetry_reduction_agrees_with_the_unreduced_search_on_every_mutant(explorer_mutant: str) -> None:
    """Acceptor symmetry (reduction 3) keys states up to renaming acceptors: on the small configuration, the
    reduced and the unreduced search give each planted bug the same verdict and the same failed property."""
    reduced = explore(SMALL)
    unreduced = explore(dataclasses.replace(SMALL, symmetry=False))
    assert (reduced.verdict, reduced.failed) == (unreduced.verdict, unreduced.failed)
    if explorer_mutant == "stale_after_sent":
        assert reduced.verdict == VIOLATION and reduced.failed == CERTAIN_FAILURE
        assert len(reduced.trace) == len(unreduced.trace)  # both breadth-first: shortest traces
