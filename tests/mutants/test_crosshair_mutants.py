"""CrossHair catches planted acceptor/proposer/segment bugs (each in a subprocess: CrossHair never shares a
process with Hypothesis). The mutant is planted by the test-only launcher tests/mutants/crosshair_launch.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from wormspace.proofs.crosshair_runner import DEFAULT_TARGETS, check

pytestmark = pytest.mark.slow

LAUNCHER = str(Path(__file__).with_name("crosshair_launch.py"))
LEMMAS = "wormspace.proofs.acceptor_lemmas."
WOR = "wormspace.proofs.wor_lemmas."
WOS = "wormspace.proofs.wos_lemmas."


@pytest.mark.parametrize(
    ("mutant", "lemma"),
    [
        ("quorum_of_one", LEMMAS + "propose_step_preserves"),  # the Voting lemma: a one-acceptor quorum is not safe
        ("no_adopt", LEMMAS + "proposer_adopts_highest"),
        ("accept_lower_ballot", LEMMAS + "accept_respects_promise"),
        ("ignore_floor", LEMMAS + "floor_refuses_below"),  # Rule 6: the handlers ignore the fence's floor
        # the per-case Voting lemmas find the two bugs the whole-step ones did not find in 150 s per condition
        ("accept_lower_ballot", LEMMAS + "accept_case_below_promise"),
        ("no_adopt", LEMMAS + "propose_case_adopts"),
        ("ballot_tie", WOR + "adoption_picks_highest_ballot"),  # votes at one number from two nodes tie
        ("stale_in_retry", WOR + "write_stale_only_when_certain"),  # Rule 2 applied in a retry round
        ("batch_stale_widened", WOS + "batch_write_per_offset"),
        ("trim_forgets_metadata", WOS + "spec_flags_monotone"),
    ],
)
def test_crosshair_finds_the_planted_bug(mutant: str, lemma: str) -> None:
    outcome = check(lemma, timeout=30, launcher=[sys.executable, LAUNCHER, mutant])
    assert outcome.code == 1, outcome.output
    assert "error" in outcome.output


def test_the_unmutated_lemma_holds_in_the_same_setup() -> None:
    outcome = check(LEMMAS + "accept_respects_promise", timeout=10, launcher=[sys.executable, LAUNCHER, "none"])
    assert outcome.code == 0, outcome.output


def test_every_lemma_module_is_in_the_default_run() -> None:
    modules = {t.rsplit(".", 1)[0] for t in DEFAULT_TARGETS}
    assert modules == {LEMMAS[:-1], WOR[:-1], WOS[:-1]}
    assert not any(t.endswith("_step_preserves") for t in DEFAULT_TARGETS)
