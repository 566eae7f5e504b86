"""Mutants of the WOS layer: planted bugs that the WOS checks must catch.

Each fixture monkeypatches one broken function in for the duration of a test (never in shipped code):

* ``trim_undone`` -- acceptor Rule 4 ignored for accepts: a trimmed acceptor still votes for data, so a write
  through a capture taken before the trim lands after it;
* ``alloc_without_token`` -- the METADATA value carries no per-call token, so two allocs with the same
  metadata both see "their" value chosen and both win;
* ``capture_skips_a_promise`` -- a batch capture goes ahead with one promise fewer than a quorum, and misses
  a value a quorum has chosen;
* ``minority_batch_write`` -- a batch write reports success when a single acceptor (a minority) accepted.

For each, the test asserts which checks catch it: the lockstep state machine (``WosLockstep``; all but the
short capture, which it meets only in longer runs), the linearizability check of concurrent histories
(``check_concurrent``: some history is ILLEGAL) and the segment explorer (a VIOLATION of the named property).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import Phase as Stage
from hypothesis.stateful import run_state_machine_as_test

from wormspace.layers import acceptor, wor, wos
from wormspace.layers.messages import TRIM, Accept, Accepted, Promise, RegState
from wormspace.layers.wor import Ctx, Kind, Op, Phase, Step
from wormspace.refinement import wor_to_wos
from wormspace.refinement.wor_to_wos import (
    VIOLATION,
    WosLockstep,
    adopt_config,
    alloc_race_config,
    explore_segment,
    write_trim_config,
)
from wormspace.refinement.wos_to_wormspace import ConcurrentConfig, check_concurrent

# ---- the mutants ----------------------------------------------------------------------------------------


@pytest.fixture
def trim_undone(monkeypatch: pytest.MonkeyPatch) -> None:
    # the undecorated rule (with contracts off the module holds it bare)
    original = getattr(acceptor.on_accept, "__wrapped__", acceptor.on_accept)

    class Blind:
        """The acceptor's registers with its TRIM vote hidden."""

        def __init__(self, view: acceptor.StoreView) -> None:
            self.view = view

        def get(self, segment: int, index: int) -> RegState | None:
            return None if index == TRIM else self.view.get(segment, index)

    def on_accept(view: acceptor.StoreView, msg: Accept) -> Any:
        if any(i == TRIM for i, _ in msg.values):
            return original(view, msg)
        return original(Blind(view), msg)

    monkeypatch.setattr(acceptor, "on_accept", on_accept)


@pytest.fixture
def alloc_without_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wos, "encode_meta", lambda token, metadata: wos.MAGIC + bytes(wos.TOKEN_BYTES) + metadata)


@pytest.fixture
def capture_skips_a_promise(monkeypatch: pytest.MonkeyPatch) -> None:
    original = wor._prepare_progress

    def prepare_progress(op: Op, ctx: Ctx) -> Step:
        promises = [r for _, r in op.replies if isinstance(r, Promise)]
        if op.request.kind is Kind.CAPTURE and len(op.ask) > 1 and promises and len(promises) == ctx.quorum - 1:
            # the capture's phase 1 as in wor._prepare_progress, but one promise short of a quorum
            adopted = {i: v.value for i, v in wor._highest_votes(promises).items() if i in op.ask}
            if not adopted:
                return wor._done_after_accept(op, ())
            return wor._enter(op, ctx, phase=Phase.ACCEPT, proposal=tuple(sorted(adopted.items())))
        return original(op, ctx)

    monkeypatch.setattr(wor, "_prepare_progress", prepare_progress)


@pytest.fixture
def minority_batch_write(monkeypatch: pytest.MonkeyPatch) -> None:
    original = wor._accept_progress

    def accept_progress(op: Op, ctx: Ctx) -> Step:
        accepted = sum(1 for _, r in op.replies if isinstance(r, Accepted))
        if op.request.kind is Kind.WRITE and len(op.proposal) > 1 and accepted >= 1:
            return wor._done_after_accept(op, op.proposal)
        return original(op, ctx)

    monkeypatch.setattr(wor, "_accept_progress", accept_progress)


# ---- the checks -----------------------------------------------------------------------------------------

MUTANT_LOCKSTEP = settings(
    max_examples=300,
    stateful_step_count=50,
    deadline=None,
    derandomize=True,
    phases=[Stage.explicit, Stage.generate],  # no shrinking: finding the bug is what is asserted
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
)
SEEDS = range(60)


def lockstep_catches() -> str:
    """Run the lockstep machine; return the failure it reports (the test fails if there is none)."""
    with pytest.raises(AssertionError) as caught:
        run_state_machine_as_test(WosLockstep, settings=MUTANT_LOCKSTEP)
    return str(caught.value)


def linearizability_catches() -> list[str]:
    """Check concurrent histories; return the ILLEGAL verdicts (the test fails if there are none)."""
    report = check_concurrent(SEEDS, ConcurrentConfig())
    illegal = [f for f in report.failures if "ILLEGAL" in f]
    assert illegal, f"no concurrent history was found illegal: {report.render()}"
    return illegal


@pytest.fixture(autouse=True)
def _keep_witnesses() -> Iterator[None]:
    """Mutant runs must not count as witnesses of the "sometimes" properties of the clean runs."""
    saved = wor_to_wos.lockstep_witnessed.copy()
    yield
    wor_to_wos.lockstep_witnessed.clear()
    wor_to_wos.lockstep_witnessed.update(saved)


@pytest.mark.usefixtures("trim_undone")
def test_trim_undone_by_a_later_write_is_caught() -> None:
    assert lockstep_catches()
    assert linearizability_catches()
    report = explore_segment(write_trim_config())
    assert report.verdict == VIOLATION, report.render()
    assert report.failed in ("always_trimmed_acceptor_holds_only_trim", "always_no_vote_after_trim")


@pytest.mark.usefixtures("alloc_without_token")
def test_alloc_won_twice_is_caught() -> None:
    assert "alloc" in lockstep_catches()
    assert linearizability_catches()
    report = explore_segment(alloc_race_config())
    assert report.verdict == VIOLATION, report.render()
    assert report.failed == "always_one_alloc_winner"


@pytest.mark.usefixtures("capture_skips_a_promise")
def test_batch_capture_short_of_a_quorum_is_caught() -> None:
    # The lockstep machine needs a value chosen by a bare quorum and then a capture whose first promise comes
    # from the acceptor that missed it; it meets that only in longer runs, so it is not asserted here.
    assert linearizability_catches()
    report = explore_segment(adopt_config())
    assert report.verdict == VIOLATION, report.render()
    assert report.failed == "always_single_value_chosen"


@pytest.mark.usefixtures("minority_batch_write")
def test_batch_write_ok_on_a_minority_is_caught() -> None:
    assert lockstep_catches()
    assert linearizability_catches()
    report = explore_segment(write_trim_config())
    assert report.verdict == VIOLATION, report.render()
    assert report.failed == "always_write_ok_means_chosen"
