"""CrossHair catches planted acceptor/proposer bugs (each in a subprocess: CrossHair never shares a process
with Hypothesis). The mutant is planted by the test-only launcher tests/mutants/crosshair_launch.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from wormspace.proofs.crosshair_runner import check

pytestmark = pytest.mark.slow

LAUNCHER = str(Path(__file__).with_name("crosshair_launch.py"))
LEMMAS = "wormspace.proofs.acceptor_lemmas."


@pytest.mark.parametrize(
    ("mutant", "lemma"),
    [
        ("quorum_of_one", "propose_step_preserves"),  # the Voting lemma: a one-acceptor quorum is not safe
        ("no_adopt", "proposer_adopts_highest"),
        ("accept_lower_ballot", "accept_respects_promise"),
        ("ignore_floor", "floor_refuses_below"),  # Rule 6: the handlers ignore the fence's floor
    ],
)
def test_crosshair_finds_the_planted_bug(mutant: str, lemma: str) -> None:
    outcome = check(LEMMAS + lemma, timeout=30, launcher=[sys.executable, LAUNCHER, mutant])
    assert outcome.code == 1, outcome.output
    assert "error" in outcome.output


def test_the_unmutated_lemma_holds_in_the_same_setup() -> None:
    outcome = check(LEMMAS + "accept_respects_promise", timeout=10, launcher=[sys.executable, LAUNCHER, "none"])
    assert outcome.code == 0, outcome.output
