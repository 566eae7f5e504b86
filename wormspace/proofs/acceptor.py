"""Obligations of the acceptor layer (``wormspace/layers/acceptor.py``).

The acceptor has no sequential spec of its own: what it owes the WOR layer above are its rules, stated as
plain invariants (``reg_ok``, ``step_ok``) and as Lamport's *Voting* invariants over a ghost log of every
vote ever cast (``acceptor_lemmas``). Its "primitives" are its request handlers (``on_prepare``,
``on_accept``, ``on_read``); each is judged by at least one obligation below.

* ``promise_never_decreases`` -- CrossHair on the prepare lemmas, and the explorer's ``step_ok`` on every
  request delivered in every reachable state (so every handler);
* ``vote_at_most_one_value_per_ballot`` -- CrossHair on the per-step Voting lemmas for accept and propose;
* ``vote_never_above_promise`` -- CrossHair on ``accept_respects_promise`` and the per-step accept lemma;
* ``fence_floor_respected`` -- CrossHair on ``floor_refuses_below`` (Rule 6, the acceptor's part of replacing
  an acceptor whose disk is lost: below the floor nothing promises or votes).
"""

from __future__ import annotations

from wormspace.proofs import checks
from wormspace.proofs.obligations import Bounds, Obligation, register

CROSSHAIR_BOUNDS = Bounds(quick="CrossHair 5 s per condition (x1.5 whole-step lemmas)",
                          full="CrossHair 10 s per condition (x1.5 whole-step lemmas)")
EXPLORER_BOUNDS = "WOR explorer, default configurations, exhaustive"


register(
    Obligation(
        name="promise_never_decreases",
        layer="acceptor",
        statement="No step lowers an acceptor's promise or its vote, or changes the value voted at a ballot.",
        method="CrossHair (prepare lemmas) + explorer (step_ok on every delivery)",
        bounds=Bounds(quick=f"{CROSSHAIR_BOUNDS.quick}; {EXPLORER_BOUNDS}",
                      full=f"{CROSSHAIR_BOUNDS.full}; {EXPLORER_BOUNDS}"),
        discharge=checks.all_of(
            lambda r: checks.crosshair(r, "prepare_raises_promise", "prepare_step_preserves"),
            lambda r: checks.wor_explorer(r, ("acceptor_invariants",)),
        ),
        covers=("on_prepare", "on_accept", "on_read"),
    ),
    Obligation(
        name="vote_at_most_one_value_per_ballot",
        layer="acceptor",
        statement="Proposals, and so votes, name at most one value per ballot; safe_at holds for every proposal.",
        method="CrossHair (per-step Voting lemmas: accept, propose)",
        bounds=CROSSHAIR_BOUNDS,
        discharge=lambda r: checks.crosshair(r, "accept_step_preserves", "propose_step_preserves"),
        covers=("on_accept",),
    ),
    Obligation(
        name="vote_never_above_promise",
        layer="acceptor",
        statement="An acceptor never votes at a ballot below its promise (Rule 2); its vote is its highest.",
        method="CrossHair (accept_respects_promise, per-step accept lemma)",
        bounds=CROSSHAIR_BOUNDS,
        discharge=lambda r: checks.crosshair(r, "accept_respects_promise", "accept_step_preserves"),
        covers=("on_accept",),
    ),
    Obligation(
        name="fence_floor_respected",
        layer="acceptor",
        statement="Below an acceptor's fence floor no register, touched or not, promises or votes (Rule 6).",
        method="CrossHair (floor_refuses_below)",
        bounds=CROSSHAIR_BOUNDS,
        discharge=lambda r: checks.crosshair(r, "floor_refuses_below"),
        covers=("on_fence",),
    ),
)
