"""The planted-bug catalog: every planted bug ("mutant") of the test suite, the obligations expected to catch
it, and the tests that plant it (never shipped: tests/ is not in the wheel).

One source of truth. A mutant's broken code is defined once, in the test module named by its ``plants``
(``path::function``: the fixture or test that plants it, or the broken function a planting function takes),
and planted only from there: the tests plant it through those fixtures, and ``wormspace prove --mutants``
plants it through this catalog (``plant`` below calls the same planting functions). ``tests/mutants/
test_catalog.py`` checks that every planting in tests/ is catalogued, so a new mutant cannot be added
without an entry here.

How ``prove --mutants`` runs a mutant (``how``):

* ``DISCHARGE`` -- ``python tests/mutants/catalog.py MUTANT LAYER.OBLIGATION [--quick]`` plants the mutant in
  a fresh process, discharges each expected obligation there (the same check ``wormspace prove`` runs) and
  prints its evidence as one JSON line. CrossHair runs in its own process, so for a mutant with a
  ``crosshair`` name the launcher is pointed at ``crosshair_launch.py``, which plants the same mutant there.
  Caught when at least one expected obligation reports ``counterexample``.
* ``TESTS`` -- the mutant's tests (pytest node ids) run in a fresh pytest process. Each plants the mutant and
  asserts that the check named in ``check`` -- the method of the expected obligation, at the bounds the test
  states -- reports it; caught when every one of them passes (``--quick``: the first one only).

``expected`` is empty only for a check that is not a layer obligation (a runtime contract of the client API,
a resource bound of the TCP server, the composition check); ``check`` then says which check owns it.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = str(Path(__file__).with_name("crosshair_launch.py"))

DISCHARGE = "discharge"
TESTS = "tests"


@dataclass(frozen=True, slots=True, kw_only=True)
class Mutant:
    description: str
    expected: tuple[str, ...]  # obligations ("layer.name") expected to catch it; () for a non-obligation check
    check: str  # the check that catches it (the method of the expected obligation, or the check that owns it)
    tests: tuple[str, ...]  # pytest node ids that plant it and assert it is caught
    plants: tuple[str, ...]  # "path::function": where it is defined / planted (the coverage test's key)
    how: str = TESTS  # DISCHARGE or TESTS: how prove --mutants runs it
    crosshair: str | None = None  # the crosshair_launch.py name, for mutants CrossHair must see too


M = "tests/mutants/"
CORE = M + "conftest.py::plant_core"
CH = M + "test_crosshair_mutants.py::test_crosshair_finds_the_planted_bug"
AL = "wormspace.proofs.acceptor_lemmas."
WL = "wormspace.proofs.wor_lemmas."
SL = "wormspace.proofs.wos_lemmas."


def _core_tests(name: str) -> tuple[str, ...]:
    return tuple(f"{M}test_core_mutants.py::test_{kind}_catches_the_mutant[{name}]"
                 for kind in ("explorer", "lockstep", "linearizability"))


def _ch(mutant: str, lemma: str) -> str:
    return f"{CH}[{mutant}-{lemma}]"


def _tx(name: str) -> tuple[str, ...]:
    return tuple(f"{M}test_tx_mutants.py::test_{kind}[{name}]"
                 for kind in ("explorer_catches", "simulated_history_catches", "lockstep_catches"))


API = "tests/layers/test_api_contracts.py"
API_CHECK = "client API postconditions (icontract @ensure, ContractViolation)"
WOS_CHECKS = "segment explorer + WosLockstep"

MUTANTS: dict[str, Mutant] = {
    # ---- acceptor / WOR cores (conftest.plant_core) ----
    "quorum_of_one": Mutant(
        description="operations settle on one acceptor's answer",
        expected=("wor.agreement", "acceptor.vote_at_most_one_value_per_ballot"),
        check="WOR explorer; CrossHair propose_step_preserves", how=DISCHARGE, crosshair="quorum_of_one",
        tests=(*_core_tests("quorum_of_one"), _ch("quorum_of_one", AL + "propose_step_preserves"),
               "tests/refinement/test_explore.py::test_shortest_counterexample_for_a_quorum_of_one",
               "tests/refinement/test_explore.py::test_explore_default_stops_at_the_first_violation",
               "tests/proofs/test_prove.py::test_explorer_trace_becomes_a_message_sequence"),
        plants=(CORE, M + "crosshair_launch.py::plant")),
    "accept_below_promise": Mutant(
        description="the acceptor votes below its promise (keeping step_ok)", expected=("wor.agreement",),
        check="WOR explorer", how=DISCHARGE, tests=_core_tests("accept_below_promise"),
        plants=(CORE, M + "conftest.py::_accept_below_promise")),
    "accept_lower_ballot": Mutant(
        description="Rule 2 without the ballot comparison (votes below the promise)",
        expected=("acceptor.vote_never_above_promise",), check="CrossHair accept_respects_promise",
        how=DISCHARGE, crosshair="accept_lower_ballot",
        tests=(_ch("accept_lower_ballot", AL + "accept_respects_promise"),
               _ch("accept_lower_ballot", AL + "accept_case_below_promise")),
        plants=(M + "crosshair_launch.py::_accept_lower_ballot",)),
    "capture_without_adoption": Mutant(
        description="phase 1 never adopts a value it finds", expected=("wor.agreement",),
        check="WOR explorer; CrossHair proposer_adopts_highest", how=DISCHARGE, crosshair="no_adopt",
        tests=(*_core_tests("capture_without_adoption"), _ch("no_adopt", AL + "proposer_adopts_highest"),
               _ch("no_adopt", AL + "propose_case_adopts")),
        plants=(CORE,)),
    "read_half_as_empty": Mutant(
        description="a read of a half-written register answers EMPTY",
        expected=("wor.agreement", "wor.linearizable"), check="WOR explorer; linearizability", how=DISCHARGE,
        tests=_core_tests("read_half_as_empty"), plants=(CORE, M + "conftest.py::_read_without_completion")),
    "read_half_as_seen": Mutant(
        description="a read of a half-written register answers the value seen, uncompleted",
        expected=("wor.agreement",), check="WOR explorer", how=DISCHARGE,
        tests=_core_tests("read_half_as_seen"), plants=(CORE, M + "conftest.py::_read_without_completion")),
    "stale_after_sent": Mutant(
        description="a write that gives up reports CaptureStale though its own value was sent",
        expected=("wor.agreement",), check="WOR explorer (certain failure implies never chosen)",
        tests=(f"{M}test_explorer_mutants.py::test_the_explorer_catches_the_mutant_directly[stale_after_sent]",),
        plants=(M + "test_explorer_mutants.py::explorer_mutant", M + "test_explorer_mutants.py::_give_up_stale")),
    "adoption_ballot_tie": Mutant(
        description="the adoption rule compares ballot numbers only: two proposers' votes at one number tie",
        expected=("wor.agreement",), check="WOR explorer race configuration; CrossHair adoption_picks_highest_ballot",
        tests=(f"{M}test_explorer_mutants.py::test_the_explorer_catches_the_mutant_directly[adoption_ballot_tie]",
               _ch("ballot_tie", WL + "adoption_picks_highest_ballot")),
        plants=(M + "test_explorer_mutants.py::explorer_mutant", M + "crosshair_launch.py::_highest_by_number")),
    "stale_in_retry_rounds": Mutant(
        description="Rule 2's certain failure applied in retry rounds, not only the first",
        expected=("wor.agreement",), check="WOR explorer race configuration; CrossHair write_stale_only_when_certain",
        tests=(f"{M}test_explorer_mutants.py::test_the_explorer_catches_the_mutant_directly[stale_in_retry_rounds]",
               _ch("stale_in_retry", WL + "write_stale_only_when_certain")),
        plants=(M + "test_explorer_mutants.py::explorer_mutant", M + "crosshair_launch.py::_stale_in_retry")),
    "ignore_floor": Mutant(
        description="the acceptor's handlers ignore the fence's floor", expected=("acceptor.fence_floor_respected",),
        check="CrossHair floor_refuses_below", how=DISCHARGE, crosshair="ignore_floor",
        tests=(_ch("ignore_floor", AL + "floor_refuses_below"),), plants=(M + "crosshair_launch.py::plant",)),
    "prefetch_misnumbers": Mutant(
        description="WormLog numbers a prefetched segment's positions as the segment before",
        expected=("apps.log_positions_unique",), check="log_problems of shared-core appends, 3 seeds",
        tests=("tests/apps/test_log.py::test_a_prefetch_that_numbers_positions_wrongly_is_caught",),
        plants=("tests/apps/test_log.py::test_a_prefetch_that_numbers_positions_wrongly_is_caught",)),
    "fast_builder_wrong_ballot": Mutant(
        description="the contracts-off phase-message builder puts the highest ballot seen on an Accept",
        expected=("wor.agreement",), check="differential test: fast builder equals the validated constructors",
        tests=("tests/layers/test_wor_messages.py::test_a_fast_builder_with_a_wrong_ballot_is_caught",),
        plants=("tests/layers/test_wor_messages.py::test_a_fast_builder_with_a_wrong_ballot_is_caught",)),
    "forgetful_fast_path": Mutant(
        description="the acceptor's fast path forgets the fence's floor", expected=("acceptor.fence_floor_respected",),
        check="differential test: fast path equals handle_request",
        tests=(f"{M}test_fast_path_mutant.py::test_the_differential_test_catches_a_fast_path_that_forgets_the_floor",),
        plants=(M + "test_fast_path_mutant.py::forgetful_fast_path",)),
    "snapshot_without_fence": Mutant(
        description="acceptor replacement copies a snapshot without fencing the old ballots",
        expected=("wor.agreement",), check="explorer replacement configuration; simulated schedule",
        tests=(f"{M}test_replace_mutants.py::test_explorer_catches_the_snapshot_without_a_fence",
               f"{M}test_replace_mutants.py::test_simulated_schedule_catches_the_snapshot_without_a_fence"),
        plants=(M + "test_replace_mutants.py::snapshot_without_fence",)),
    "mixed_floor_quorum": Mutant(
        description="phase 1 counts a quorum of promises with different floors", expected=("wor.agreement",),
        check="directed replay (a value chosen twice); explorer replacement configuration",
        tests=(f"{M}test_replace_mutants.py::test_the_directed_replay_catches_a_quorum_of_mixed_floors",
               f"{M}test_replace_mutants.py::test_explorer_catches_a_quorum_of_mixed_floors"),
        plants=(M + "test_replace_mutants.py::mixed_floor_quorum",)),
    "forgetful_storage": Mutant(
        description="an acceptor that loses its SQLite state on restart (real processes)",
        expected=("acceptor.promise_never_decreases",), check="real acceptor processes restarted: a read after",
        tests=(f"{M}test_durability_mutant.py::test_forgetful_storage_is_caught",),
        plants=(M + "test_durability_mutant.py::test_forgetful_storage_is_caught",)),
    "range_dropped_on_reopen": Mutant(
        description="the SQLite store loads its register rows but not its range promises when it reopens",
        expected=("acceptor.promise_never_decreases",),
        check="differential test: SqliteStorage (reopened after every step) equals MemoryStorage",
        tests=("tests/layers/test_store_ranges.py::test_a_store_that_drops_range_promises_on_reopen_is_caught",),
        plants=("tests/layers/test_store_ranges.py::range_dropped_on_reopen",)),
    "range_shadows_vote": Mutant(
        description="the SQLite store's range promise hides the vote of a register inside it",
        expected=("acceptor.vote_at_most_one_value_per_ballot",),
        check="differential test: SqliteStorage (reopened after every step) equals MemoryStorage",
        tests=("tests/layers/test_store_ranges.py::test_a_range_promise_that_shadows_a_vote_is_caught",),
        plants=("tests/layers/test_store_ranges.py::range_shadows_vote",)),
    "one_upsert_per_group": Mutant(
        description="the SQLite store writes the first multi-row statement of a group's vote rows, not the rest",
        expected=("acceptor.promise_never_decreases",),
        check="differential test: SqliteStorage (reopened after every step) equals MemoryStorage",
        tests=("tests/layers/test_store_ranges.py::test_a_store_that_writes_one_upsert_of_a_group_is_caught",),
        plants=("tests/layers/test_store_ranges.py::one_upsert_per_group",)),
    "votes_not_undone": Mutant(
        description="the SQLite store's vote path keeps a rolled-back group's votes in its mirror",
        expected=("acceptor.vote_at_most_one_value_per_ballot",),
        check="differential test: SqliteStorage (reopened after every step) equals MemoryStorage",
        tests=("tests/layers/test_store_ranges.py::test_a_vote_path_that_forgets_the_undo_is_caught",),
        plants=("tests/layers/test_store_ranges.py::votes_not_undone",)),
    "accept_repeats_allowed": Mutant(
        description="the wire's fast Accept decoder lets a repeated index through",
        expected=("acceptor.vote_at_most_one_value_per_ballot",),
        check="differential test: the fast request decoders equal the checked constructors",
        tests=("tests/layers/test_wire.py::test_a_fast_decoder_that_lets_a_repeated_index_through_is_caught",),
        plants=("tests/layers/test_wire.py::accept_repeats_allowed",)),
    "old_reductions": Mutant(
        description="the history checker's register model treats every register as write-once",
        expected=("wor.linearizable",), check="linearizability checker: overwrite history; differential test",
        tests=(f"{M}test_checker_mutant.py::test_old_reductions_judge_the_overwrite_history_illegal",
               f"{M}test_checker_mutant.py::test_differential_test_finds_the_old_reductions_on_random_histories"),
        plants=(M + "test_checker_mutant.py::old_reductions",)),
    # ---- WOS (test_wos_mutants.py fixtures) ----
    "trim_undone": Mutant(
        description="a trimmed acceptor still votes for data", expected=("wos.trim_permanent",),
        check=WOS_CHECKS, how=DISCHARGE,
        tests=(f"{M}test_wos_mutants.py::test_trim_undone_by_a_later_write_is_caught",),
        plants=(M + "test_wos_mutants.py::trim_undone",)),
    "alloc_without_token": Mutant(
        description="allocs with equal metadata both win", expected=("wos.alloc_unique",), check=WOS_CHECKS,
        how=DISCHARGE, tests=(f"{M}test_wos_mutants.py::test_alloc_won_twice_is_caught",),
        plants=(M + "test_wos_mutants.py::alloc_without_token",)),
    "capture_skips_a_promise": Mutant(
        description="a batch capture goes ahead one promise short of a quorum", expected=("wos.batch_equals_sequence",),
        check=WOS_CHECKS, how=DISCHARGE,
        tests=(f"{M}test_wos_mutants.py::test_batch_capture_short_of_a_quorum_is_caught",),
        plants=(M + "test_wos_mutants.py::capture_skips_a_promise",)),
    "minority_batch_write": Mutant(
        description="a batch write reports ok when a minority accepted",
        expected=("wos.trim_permanent",), check=WOS_CHECKS, how=DISCHARGE,
        tests=(f"{M}test_wos_mutants.py::test_batch_write_ok_on_a_minority_is_caught",),
        plants=(M + "test_wos_mutants.py::minority_batch_write",)),
    "batch_stale_widened": Mutant(
        description="one stale offset makes a batch write report every offset stale",
        expected=("wos.batch_equals_sequence",), check="CrossHair batch_write_per_offset",
        tests=(_ch("batch_stale_widened", SL + "batch_write_per_offset"),),
        plants=(M + "crosshair_launch.py::_write_stale_once_and_for_all",)),
    "trim_forgets_metadata": Mutant(
        description="the segment spec's trim drops the metadata", expected=("wos.trim_permanent",),
        check="CrossHair spec_flags_monotone", tests=(_ch("trim_forgets_metadata", SL + "spec_flags_monotone"),),
        plants=(M + "crosshair_launch.py::_trim_forgets_metadata",)),
    "lost_alloc_model": Mutant(
        description="the checker's segment model accepts a lost alloc's failure on an unallocated segment",
        expected=("wormspace.segments_independent",), check="differential test of the checker's models vs WosSpec",
        tests=("tests/refinement/test_spec_models.py::test_differential_check_catches_the_lost_alloc_mutant",
               "tests/refinement/test_spec_models.py::test_checker_rejects_a_lost_alloc_on_an_unallocated_segment"),
        plants=("tests/refinement/test_spec_models.py::lost_alloc_mutant",)),
    "wrong_owner": Mutant(
        description="the coalescer hands merged outcomes to the wrong callers",
        expected=("wormspace.segments_independent",), check="linearizability of coalesced simulated histories",
        tests=(f"{M}test_coalesce_mutants.py::test_broken_merges_are_caught[wrong_owner]",),
        plants=(M + "test_coalesce_mutants.py::mutant", M + "test_coalesce_mutants.py::_rotate")),
    "unrecorded_write_drops_failure": Mutant(
        description="the client's unrecorded write (no history kept) reports a failed write as done",
        expected=(), check="differential test: unrecorded write equals recorded write: not a layer obligation",
        tests=(f"{M}test_unrecorded_write_mutant.py::"
               "test_the_differential_test_catches_an_unrecorded_write_that_drops_its_failure",),
        plants=(M + "test_unrecorded_write_mutant.py::unrecorded_write_drops_failure",
                M + "test_unrecorded_write_mutant.py::_write_dropping_failure")),
    "held_never_released": Mutant(
        description="the coalescer never releases the requests it held behind a running operation of their key",
        expected=(), check="liveness of a bounded simulated run (every reader ends its reads): not a layer obligation",
        tests=(f"{M}test_coalesce_mutants.py::test_held_requests_never_released_are_caught",),
        plants=(M + "test_coalesce_mutants.py::held_never_released",
                M + "test_coalesce_mutants.py::_release_nothing")),
    "straggler_beside_batch": Mutant(
        description="the coalescer starts a request of a few registers beside a running operation of its key",
        expected=(), check="the coalescer's Rule 5 check (any order of submissions, flushes and completions): "
                           "not a layer obligation",
        tests=(f"{M}test_coalesce_mutants.py::test_a_straggler_started_beside_a_running_batch_is_caught",),
        plants=(M + "test_coalesce_mutants.py::straggler_beside_batch",
                M + "test_coalesce_mutants.py::_parts_without_minimum")),
    "pipeline_unbounded": Mutant(
        description="the coalescer runs any number of operations of one key at once",
        expected=(), check="the coalescer's Rule 5 check (any order of submissions, flushes and completions): "
                           "not a layer obligation",
        tests=(f"{M}test_coalesce_mutants.py::test_an_unbounded_pipeline_is_caught",),
        plants=(M + "test_coalesce_mutants.py::pipeline_unbounded",
                M + "test_coalesce_mutants.py::_parts_without_bound")),
    "lone_start_ignores_running": Mutant(
        description="the coalescer starts a lone queued request directly while operations of its key run",
        expected=(), check="differential test of the coalescer's direct start (Rule 6) against its general path: "
                           "not a layer obligation",
        tests=(f"{M}test_coalesce_mutants.py::test_a_lone_start_beside_running_operations_is_caught",),
        plants=(M + "test_coalesce_mutants.py::lone_start_ignores_running",
                M + "test_coalesce_mutants.py::_flush_ignoring_running")),
    # ---- apps ----
    "one_position_two_appends": Mutant(
        description="WormLog reports a lost write's position as the appender's own",
        expected=("apps.log_positions_unique",), check="LogLockstep + check_log runs",
        tests=(f"{M}test_app_mutants.py::test_a_log_that_hands_one_position_to_two_appends_is_caught",),
        plants=(M + "test_app_mutants.py::one_position_two_appends",)),
    "log_everyone_wins": Mutant(
        description="WormLog's locate lets every appender win one position",
        expected=("apps.log_positions_unique",), check="log_problems of a seeded WormLog scenario",
        tests=(f"{M}test_app_mutants.py::test_a_log_where_every_appender_wins_its_segment_is_caught",),
        plants=(M + "test_app_mutants.py::every_appender_wins",)),
    "takeover_reuses_positions": Mutant(
        description="a sequencer takeover numbers positions as if its segment were the previous one",
        expected=("apps.log_positions_unique",), check="LogLockstep + check_log runs",
        tests=(f"{M}test_app_mutants.py::test_a_sequencer_takeover_that_reuses_a_position_is_caught",),
        plants=(M + "test_app_mutants.py::takeover_reuses_positions",)),
    "hole_is_end": Mutant(
        description="a WormLog reader stops at a hole as if the log ended", expected=("apps.log_positions_unique",),
        check="check_log runs",
        tests=(f"{M}test_app_mutants.py::test_a_reader_that_treats_a_hole_as_the_end_of_the_log_is_caught",),
        plants=(M + "test_app_mutants.py::hole_is_end",)),
    "applies_out_of_order": Mutant(
        description="a WormPaxos replica applies each batch last command first", expected=("apps.smr_replicas_agree",),
        check="PaxosLockstep + check_paxos runs",
        tests=(f"{M}test_app_mutants.py::test_a_replica_that_applies_out_of_order_is_caught",),
        plants=(M + "test_app_mutants.py::applies_out_of_order",)),
    "cas_ignores_expected": Mutant(
        description="WormKV's cas swaps whatever the value is", expected=("apps.kv_linearizable",),
        check="KvLockstep + check_kv runs",
        tests=(f"{M}test_app_mutants.py::test_a_kv_cas_that_ignores_expected_is_caught",),
        plants=(M + "test_app_mutants.py::cas_ignores_expected",)),
    "get_without_sync": Mutant(
        description="a WormKV get answers without syncing first", expected=("apps.kv_linearizable",),
        check="kv_sequential_problems of a seeded WormKV scenario",
        tests=(f"{M}test_app_mutants.py::test_a_get_that_answers_without_syncing_is_caught",),
        plants=(M + "test_app_mutants.py::get_without_sync",)),
    "fail_after_own_write": Mutant(
        description="an app records an outcome raised after its own write was sent as a certain failure",
        expected=("apps.atomic_commit",),
        check="the app checks read fail as certain (a failed op's value seen later is ILLEGAL)",
        tests=(f"{M}test_app_mutants.py::test_recording_an_outcome_after_the_own_write_as_fail_is_caught",),
        plants=(M + "test_app_mutants.py::fail_after_own_write",)),
    **{name: Mutant(description=desc, expected=("apps.atomic_commit",),
                    check="WormTX explorer + simulated histories + TxLockstep", tests=_tx(name),
                    plants=(M + "test_tx_mutants.py::tx_mutant",))
       for name, desc in (
           ("commit_with_empty_vote", "WormTX's decision rule reads a missing vote as YES"),
           ("no_weaker_than_yes", "WormTX's decision rule lets a majority of YES outvote a NO"),
           ("abort_without_capture", "a WormTX decider casts ABORT blind, ignoring a late YES it found"),
           ("deciders_disagree", "a WormTX decider that gave up decides ABORT alone, casting nothing"))},
    "lock_without_cas": Mutant(
        description="the bank takes a lock register somebody else wrote first (no cas)",
        expected=("apps.atomic_commit",), check="the bank's conservation invariant over simulated transfers",
        tests=(f"{M}test_tx_mutants.py::test_bank_invariant_catches_a_lock_without_cas",),
        plants=(M + "test_tx_mutants.py::test_bank_invariant_catches_a_lock_without_cas",)),
    # ---- deployment (TCP, identity) ----
    "trusting_client": Mutant(
        description="the client accepts any acceptor's hello (no cluster, acceptor or nonce check)",
        expected=("wor.agreement",), check="TCP client refuses an acceptor of another cluster",
        tests=(f"{M}test_deploy_mutants.py::test_trusting_client_is_caught",),
        plants=(M + "test_deploy_mutants.py::test_trusting_client_is_caught",)),
    "lenient_identity": Mutant(
        description="check_data_dir trusts identity.json and never looks at the database",
        expected=("acceptor.promise_never_decreases",), check="a served data dir refuses a damaged database",
        tests=tuple(f"{M}test_deploy_mutants.py::test_lenient_identity_is_caught[{a}]"
                    for a in ("deleted", "truncated", "corrupted")),
        plants=(M + "test_deploy_mutants.py::test_lenient_identity_is_caught",)),
    "optimistic_merge": Mutant(
        description="a split Accept partly accepted, partly refused, is reported as a refusal",
        expected=("wor.agreement",), check="merged replies never claim more than every chunk said",
        tests=(f"{M}test_deploy_mutants.py::test_optimistic_merge_is_caught",),
        plants=(M + "test_deploy_mutants.py::test_optimistic_merge_is_caught",)),
    "floorless_merge": Mutant(
        description="a split Prepare's promises are merged without their floor (a fenced acceptor's promise "
                    "merged as one from before the fence)",
        expected=("wor.agreement",), check="merged replies never claim more than every chunk said",
        tests=(f"{M}test_deploy_mutants.py::test_a_merge_that_drops_the_floor_is_caught",),
        plants=(M + "test_deploy_mutants.py::test_a_merge_that_drops_the_floor_is_caught",)),
    "deaf_to_frame_limit": Mutant(
        description="the client ignores the frame limit the acceptor's hello states", expected=(),
        check="TCP client keeps to the acceptor's frame limit: not a layer obligation",
        tests=(f"{M}test_deploy_mutants.py::test_a_client_deaf_to_the_acceptors_frame_limit_is_caught",),
        plants=(M + "test_deploy_mutants.py::test_a_client_deaf_to_the_acceptors_frame_limit_is_caught",)),
    "uncut_reads": Mutant(
        description="a Read or Prepare whose reply could exceed a frame is sent whole (no reply comes)",
        expected=(), check="TCP client asks only for replies that fit a frame: not a layer obligation",
        tests=(f"{M}test_deploy_mutants.py::test_reads_and_prepares_not_cut_to_what_a_reply_can_carry_are_caught",),
        plants=(M + "test_deploy_mutants.py::test_reads_and_prepares_not_cut_to_what_a_reply_can_carry_are_caught",)),
    "timers_deaf_to_busy_acceptors": Mutant(
        description="a phase timer fires while the reply it waits for is still arriving",
        expected=(), check="TCP client driver rule 7 (a phase timer measures silence): not a layer obligation",
        tests=(f"{M}test_deploy_mutants.py::test_phase_timers_deaf_to_busy_acceptors_are_caught",),
        plants=(M + "test_deploy_mutants.py::test_phase_timers_deaf_to_busy_acceptors_are_caught",)),
    "believes_every_reply": Mutant(
        description="the client core checks no reply against the request it answers (an acceptor's lie is believed)",
        expected=(), check="client core Rule 6 (replies no honest acceptor sends are lost): not a layer obligation",
        tests=(f"{M}test_liar_mutants.py::test_a_client_that_believes_every_reply_is_caught",),
        plants=(M + "test_liar_mutants.py::test_a_client_that_believes_every_reply_is_caught",)),
    "unchecked_chunk_replies": Mutant(
        description="the transport merges a split request's chunk replies without checking their kind and ballot",
        expected=(), check="TCP client checks chunk replies before merging (chunk_fault): not a layer obligation",
        tests=(f"{M}test_liar_mutants.py::test_chunk_replies_merged_unchecked_are_caught",),
        plants=(M + "test_liar_mutants.py::test_chunk_replies_merged_unchecked_are_caught",)),
    "no_pre_hello_limit": Mutant(
        description="the hello is read with the full frame limit", expected=(),
        check="TCP server resource bound (pre-hello frame limit): not a layer obligation",
        tests=(f"{M}test_deploy_mutants.py::test_no_pre_hello_limit_is_caught",),
        plants=(M + "test_deploy_mutants.py::test_no_pre_hello_limit_is_caught",)),
    "uncapped_requests": Mutant(
        description="the acceptor counts no registers: a request over the limit is applied", expected=(),
        check="TCP server resource bound (registers per request): not a layer obligation",
        tests=(f"{M}test_deploy_mutants.py::test_uncapped_requests_are_caught",),
        plants=(M + "test_deploy_mutants.py::test_uncapped_requests_are_caught",)),
    "one_transaction_per_frame": Mutant(
        description="the acceptor applies a whole frame without yielding to other clients", expected=(),
        check="TCP server fairness (a large frame does not stall others): not a layer obligation",
        tests=(f"{M}test_deploy_mutants.py::test_one_transaction_per_frame_is_caught",),
        plants=(M + "test_deploy_mutants.py::test_one_transaction_per_frame_is_caught",)),
    "checkpoint_before_reply": Mutant(
        description="the acceptor checkpoints its log inside a batch, before the batch's replies are written",
        expected=(), check="TCP server latency (no reply waits for a log checkpoint): not a layer obligation",
        tests=("tests/layers/test_checkpoint.py::test_mutant_a_checkpoint_before_the_reply_is_caught",),
        plants=("tests/layers/test_checkpoint.py::test_mutant_a_checkpoint_before_the_reply_is_caught",)),
    # ---- contracts of the client API and of the specs ----
    "postcondition_breaches": Mutant(
        description="a client method returns a result its postcondition forbids (12 plantings, sync client)",
        expected=(), check=API_CHECK + ": not a layer obligation",
        tests=tuple(f"{API}::test_a_planted_postcondition_breach_is_a_contract_violation[{m}-{i}]"
                    for i, m in enumerate(("alloc_any", "alloc_any", "alloc", "check", "capture", "batch_capture",
                                           "batch_write", "batch_write", "read", "read", "batch_read",
                                           "batch_read"))),
        plants=(API + "::mutant_client",)),
    "address_breaches": Mutant(
        description="address/split that do not invert each other", expected=(),
        check=API_CHECK + ": not a layer obligation",
        tests=(f"{API}::test_a_planted_address_breach_is_a_contract_violation",),
        plants=(API + "::test_a_planted_address_breach_is_a_contract_violation",)),
    "async_postcondition_breaches": Mutant(
        description="an asyncio client method returns a result its postcondition forbids (3 plantings)",
        expected=(), check=API_CHECK + ": not a layer obligation",
        tests=tuple(f"{API}::test_a_planted_breach_on_the_async_client_is_a_contract_violation[{p}]"
                    for p in ("alloc_any--4", "read-x", "batch_write-value2")),
        plants=(API + "::test_a_planted_breach_on_the_async_client_is_a_contract_violation",)),
    "overwriting_register_spec": Mutant(
        description="the register spec under WosSpec overwrites a written value", expected=(),
        check="WosSpec postcondition (a written offset never changes): not a layer obligation",
        tests=(f"{API}::test_a_planted_overwrite_in_the_segment_spec_is_a_contract_violation",),
        plants=(API + "::test_a_planted_overwrite_in_the_segment_spec_is_a_contract_violation",)),
    # ---- the pytest plugin (docs/testing.md) ----
    "cached_miss": Mutant(
        description="docs/testing.md's example app caches a miss (a user's app, not the library)", expected=(),
        check="the pytest plugin's linearizability check of a user's app at teardown: not a layer obligation",
        tests=("tests/test_testing_plugin.py::test_the_planted_bug_is_caught_with_its_minimal_history",),
        plants=("tests/test_testing_plugin.py::test_the_planted_bug_is_caught_with_its_minimal_history",)),
    # ---- the composition check ----
    "missing_app_module": Mutant(
        description="an app obligation whose app module is missing", expected=(),
        check="composition (a named gap; the obligation unknown)",
        tests=("tests/proofs/test_prove.py::test_a_missing_app_module_is_a_named_gap",
               "tests/proofs/test_prove.py::test_an_app_obligation_is_unknown_while_its_app_is_missing"),
        plants=("tests/proofs/test_prove.py::test_a_missing_app_module_is_a_named_gap",
                "tests/proofs/test_prove.py::test_an_app_obligation_is_unknown_while_its_app_is_missing")),
    "uncovered_spec_primitive": Mutant(
        description="a spec primitive without an obligation", expected=(), check="composition (a named gap)",
        tests=("tests/proofs/test_prove.py::test_a_spec_primitive_without_an_obligation_is_a_gap",),
        plants=("tests/proofs/test_prove.py::test_a_spec_primitive_without_an_obligation_is_a_gap",)),
    "pair_against_another_spec": Mutant(
        description="a refinement pair that judges against another layer's spec", expected=(),
        check="composition (a named gap)",
        tests=("tests/proofs/test_prove.py::test_a_pair_that_judges_against_another_layers_spec_is_a_gap",),
        plants=("tests/proofs/test_prove.py::test_a_pair_that_judges_against_another_layers_spec_is_a_gap",)),
    "reliance_on_a_higher_guarantee": Mutant(
        description="an obligation relying on an undischarged or higher-layer guarantee", expected=(),
        check="composition (a named gap)",
        tests=("tests/proofs/test_prove.py::test_reliance_on_an_undischarged_or_higher_guarantee_is_a_gap",),
        plants=("tests/proofs/test_prove.py::test_reliance_on_an_undischarged_or_higher_guarantee_is_a_gap",)),
}

#: functions in tests/ that monkeypatch shipped code but plant no bug (scaffolding of the tests themselves)
NOT_MUTANTS: dict[str, str] = {
    "tests/proofs/test_prove.py::test_json_is_the_design_shape_and_a_counterexample_prints_its_trace":
        "replaces the registry with fake obligations to test the verb's output",
    "tests/proofs/test_prove.py::test_mutants_outside_a_source_checkout_say_so": "points the verb at no catalog",
    "tests/proofs/test_prove.py::test_the_verb_reruns_itself_with_the_fixed_hash_seed": "fakes subprocess.run",
    "tests/layers/test_api_contracts.py::test_the_unplanted_clients_keep_their_postconditions": "the clean control",
    "tests/layers/test_client_transport.py::test_a_request_to_every_acceptor_is_encoded_once":
        "counts the client transport's encodings (wraps the encoder, changes nothing)",
    "tests/test_event_loops.py::test_loop_choice": "hides uvloop from the importer to test the loop choice",
    "tests/layers/test_server_frames.py::test_a_reply_that_stalls_times_out_after_the_longest_hold":
        "shortens the driver's MAX_HOLD so that the bound is reached within the test",
    "tests/test_cli_exits.py::test_what_a_verb_raises_decides_the_exit_code":
        "stands in a verb that raises, to test the exit code the command gives for it",
    "tests/test_cli_exits.py::test_verbose_flags_set_the_log_level":
        "records the level the command asks logging for instead of configuring logging",
}


# ---- planting in this process (for prove --mutants) ------------------------------------------------------


def plant(name: str, mp: Any = None) -> None:
    """Plant mutant ``name`` (one with ``how == DISCHARGE``) through its planting function in the tests."""
    sys.path.insert(0, str(ROOT))
    import pytest

    from tests.mutants import conftest, crosshair_launch, test_wos_mutants

    mp = mp if mp is not None else pytest.MonkeyPatch()
    if name in conftest.CORE_MUTANTS:
        conftest.plant_core(mp, name)
    elif name in ("accept_lower_ballot", "ignore_floor"):
        crosshair_launch.plant(name, mp)
    elif name in MUTANTS and MUTANTS[name].how == DISCHARGE:
        fixture = getattr(test_wos_mutants, name)
        _call_fixture(fixture, mp)
    else:
        raise SystemExit(f"mutant {name!r} is not planted by discharge; known: "
                         f"{', '.join(n for n, m in MUTANTS.items() if m.how == DISCHARGE)}")


def _call_fixture(fixture: Any, mp: Any) -> None:
    """Call a pytest fixture function's body (``fixture.__wrapped__``, or pytest 8.4+'s wrapped function)."""
    fn = getattr(fixture, "__wrapped__", None)
    if fn is None and hasattr(fixture, "_get_wrapped_function"):
        fn = fixture._get_wrapped_function()
    if fn is None:
        fn = fixture
    got = fn(mp)
    if inspect.isgenerator(got):
        next(got)


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
