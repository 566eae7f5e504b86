"""Obligations of the WOR layer (``wormspace/layers/wor.py``) against its trusted spec ``WorSpec``.

Checked by the pair module ``wormspace/refinement/acceptor_to_wor.py`` (and the explorer it runs):

* ``immutability`` -- the lockstep machine: after every step the abstraction of the ghost votes equals the
  spec state, which only ever goes EMPTY -> Written(v) (the paper's Immutability);
* ``agreement`` -- the explorer, exhaustively: at most one value is ever chosen and every outcome keeps its
  promise (``always_single_value_chosen``, ``outcomes_match_spec``); and CrossHair on the proposer's
  adoption rule and the per-step propose lemma;
* ``linearizable`` -- concurrent histories of a faulty simulated cluster, judged against the spec;
* ``sometimes_written`` -- non-vacuity: some reachable state has a value chosen, so the checks above are
  not true of a register nobody can write (the lockstep run of ``immutability`` must also witness values
  chosen, writes ok, stale and AlreadyWritten, and captures finding a written value).
"""

from __future__ import annotations

from wormspace.proofs import checks
from wormspace.proofs.obligations import Bounds, Obligation, register

#: the lockstep machine's "sometimes" properties that bear on immutability: values get chosen, writes succeed and
#: fail with AlreadyWritten, captures find a written value (reads completing half-written registers bear on
#: linearizability instead, and are witnessed by the explorer's read configuration and the histories)
IMMUTABILITY_SOMETIMES = ("sometimes_value_chosen", "sometimes_write_ok", "sometimes_already_written",
                          "sometimes_capture_found_written", "sometimes_write_stale")
RELIES = ("acceptor.promise_never_decreases", "acceptor.vote_at_most_one_value_per_ballot",
          "acceptor.vote_never_above_promise")

register(
    Obligation(
        name="immutability",
        layer="wor",
        statement="Once a register is written its value never changes: the abstraction goes EMPTY -> Written(v) only.",
        method="Hypothesis lockstep (WorLockstep) with WorSpec",
        bounds=Bounds(quick="1,500 examples of <= 40 steps", full="5,000 examples of <= 40 steps"),
        discharge=lambda r: checks.lockstep(r, "wor", IMMUTABILITY_SOMETIMES),
        covers=("WorSpec.write", "WorSpec.read"),
        relies_on=RELIES,
        pair="acceptor_to_wor",
    ),
    Obligation(
        name="agreement",
        layer="wor",
        statement="At most one value is ever chosen, and every operation's outcome agrees with it.",
        method="explorer (exhaustive) + CrossHair (propose lemma, adoption rule)",
        bounds=Bounds(quick="explorer default configurations, exhaustive; CrossHair 5 s per condition",
                      full="explorer default configurations and the race with duplicates, exhaustive;"
                      " CrossHair 10 s per condition"),
        discharge=checks.all_of(
            checks.wor_explorer,
            lambda r: checks.crosshair(r, "proposer_adopts_highest", "propose_step_preserves"),
        ),
        covers=("WorSpec.write", "WorSpec.read"),
        relies_on=RELIES,
        pair="acceptor_to_wor",
    ),
    Obligation(
        name="linearizable",
        layer="wor",
        statement="Concurrent histories with drops, duplicates, a crash and a partition are linearizable.",
        method="linearizability of simulated histories",
        bounds=Bounds(quick="10 seeded histories", full="40 seeded histories"),
        discharge=checks.wor_linearizability,
        covers=("WorSpec.write", "WorSpec.read"),
        relies_on=RELIES,
        pair="acceptor_to_wor",
    ),
    Obligation(
        name="sometimes_written",
        layer="wor",
        statement="Some reachable state has a value chosen: the safety checks are not vacuous.",
        method="explorer (sometimes_value_chosen)",
        bounds=Bounds(quick="explorer default configurations", full="explorer default configurations"),
        discharge=lambda r: checks.wor_witnessed(r, "sometimes_value_chosen"),
        covers=("WorSpec.write",),
        pair="acceptor_to_wor",
    ),
)
