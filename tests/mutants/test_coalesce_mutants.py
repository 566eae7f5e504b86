"""Mutants of operation-level coalescing (``wormspace.layers.coalesce``): planted bugs the checks must catch.

* ``wrong_owner`` -- a merged operation hands each caller the part of the outcome that belongs to the next
  caller of the batch (one caller gets another's outcome);
* ``held_never_released`` -- requests held behind a running operation of their key (coalesce.py Rule 5)
  stay held when it ends: caught as a liveness failure of a bounded simulated run (readers sharing a client
  node, a writer on another; once the network is quiet some reader has not ended its reads);
* ``straggler_beside_batch`` -- Rule 5's minimum dropped: a request of a few registers starts beside a
  running operation of its key instead of waiting for the next batch (the trickle Rule 5 exists to stop);
* ``pipeline_unbounded`` -- Rule 5's bound dropped: any number of operations of one key run at once.
  Both are caught by the Rule 5 check of tests/layers/test_coalesce.py (``rule5_problems``: submissions,
  flushes and completions in any order, searched by Hypothesis), which the correct code passes;
* ``lone_start_ignores_running`` -- Rule 6's direct start of a lone request forgets to look at the running
  operations of its key (starts it beside them instead of leaving it to Rule 5): caught by the differential
  test of the direct path against the general one (``rule6_trace``), which the correct code passes.

Each runs the same scenario as the correct code: two client processes on ONE simulated client node (as two
coroutines on one TCP driver) that capture, write and read their own registers at the same virtual
instants, so their operations run merged; the recorded history is checked for linearizability against the
segment model, and every register's ghost votes for "one value chosen". The correct code passes (and
really merged); every mutant is caught.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import pytest

from tests.layers.test_coalesce import GeneralOnly, rule5_problems, rule5_steps, rule6_steps, rule6_trace
from wormspace.cluster import Cluster, SimCluster
from wormspace.errors import OperationFailed
from wormspace.layers import coalesce
from wormspace.layers.wor import Outcome, always_single_value_chosen
from wormspace.layers.wormspace import ClientRequest, SpaceLogic
from wormspace.refinement.linearizability import OK, check_history
from wormspace.refinement.models import SegmentModel

WOS = 8


def _rotate(callers: list[tuple[Any, Any]], named: Any, outcome: Outcome) -> None:
    if len(callers) == 1:
        callers[0][1](outcome)
        return
    for k, (_, then) in enumerate(callers):
        then(coalesce.split(outcome, callers[(k + 1) % len(callers)][0]))


@pytest.fixture(params=["wrong_owner"])
def mutant(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name: str = request.param
    assert name == "wrong_owner"
    monkeypatch.setattr(coalesce.Coalescer, "_deliver", staticmethod(_rotate))
    yield name


def _scenario(offsets: tuple[int, int], seed: int) -> SimCluster:
    cluster = Cluster.simulated(acceptors=3, seed=seed, wos_size=WOS)
    segment = cluster.client().alloc(b"merge")

    def worker(offset: int, value: bytes) -> Any:
        def run(logic: SpaceLogic) -> Generator[ClientRequest, Outcome, None]:
            address = logic.address(segment, offset)
            for _ in range(2):
                try:
                    cap = yield from logic.capture(address)
                    yield from logic.write(address, value, cap)
                except OperationFailed:
                    pass
                yield from logic.read(address)
                yield from logic.read(logic.address(segment, 1 - offset if offset < 2 else 0))

        return run

    first = cluster.spawn(worker(offsets[0], b"first"), at=0.01)
    cluster.spawn(worker(offsets[1], b"second"), at=0.01, node_of=first)
    cluster.run()
    return cluster


def _caught(cluster: SimCluster) -> list[str]:
    problems = [f"process {p} ended with {e!r}" for p, e in cluster.failures]
    for key, votes in cluster.ghost.items():
        if not always_single_value_chosen(votes, cluster.quorum):
            problems.append(f"register {key}: two values chosen")
    result = check_history(cluster.history(), SegmentModel(wos_size=WOS))
    if result.verdict != OK:
        problems.append(f"history {result.verdict}")
    return problems


def _merged(cluster: SimCluster) -> int:
    return sum(node.coalescer.merged_ops for node in cluster.clients)


@pytest.mark.parametrize("seed", [1, 2])
def test_merged_operations_give_each_caller_its_own_outcome(seed: int) -> None:
    for offsets in ((0, 1), (0, 0)):
        cluster = _scenario(offsets, seed)
        assert _merged(cluster) >= 1, "the scenario must really merge operations"
        assert _caught(cluster) == []


def test_broken_merges_are_caught(mutant: str) -> None:
    cluster = _scenario((0, 1), 1)
    assert _merged(cluster) >= 1
    assert _caught(cluster), f"mutant {mutant} went unnoticed"


# ---- Rule 5: a request held behind a running operation of its key ---------------------------------------


def _release_nothing(self: coalesce.Coalescer, key: object) -> None:
    """The planted bug ``held_never_released``: the requests held behind a running operation (Rule 5) are
    left held when it ends (e.g. the release keyed on something else than the merge key)."""


@pytest.fixture
def held_never_released(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(coalesce.Coalescer, "_release", _release_nothing)
    yield "held_never_released"


HELD_SEEDS = (1, 2)
READS = 12


def _held_scenario(seed: int) -> SimCluster:
    """Per register: two readers on ONE client node, pausing for different times between reads so that
    one's read often comes while the other's is running (held, Rule 5), and a writer on another node writing
    the register meanwhile."""
    cluster = Cluster.simulated(acceptors=3, seed=seed, wos_size=WOS)
    segment = cluster.client().alloc(b"held")

    def reader(offset: int, pause: float) -> Any:
        def run(logic: SpaceLogic) -> Generator[ClientRequest, Outcome, None]:
            address = logic.address(segment, offset)
            for _ in range(READS):
                yield from logic.read(address)
                yield from logic.sleep(pause)

        return run

    def writer(offset: int) -> Any:
        def run(logic: SpaceLogic) -> Generator[ClientRequest, Outcome, None]:
            address = logic.address(segment, offset)
            try:
                cap = yield from logic.capture(address)
                yield from logic.write(address, b"w", cap)
            except OperationFailed:
                pass

        return run

    for offset in range(4):
        first = cluster.spawn(reader(offset, 0.0003), at=0.01)
        cluster.spawn(reader(offset, 0.0011), at=0.01, node_of=first)
        cluster.spawn(writer(offset), at=0.02 + 0.01 * offset)
    cluster.run()
    return cluster


def _held(cluster: SimCluster) -> int:
    return sum(node.coalescer.held_requests for node in cluster.clients)


def _unfinished(cluster: SimCluster) -> list[str]:
    """Liveness within the run's bound: once the simulated network is quiet every reader has read ``READS``
    times and every writer has ended; a request left held forever leaves its process waiting."""
    invoked: dict[int, int] = {}
    ended: dict[int, int] = {}
    for e in cluster.history():
        if e.f == "read":
            counts = invoked if e.type == "invoke" else ended
            counts[e.process] = counts.get(e.process, 0) + 1
    return [f"process {p} ended {ended.get(p, 0)} of {READS} reads" for p in invoked if ended.get(p, 0) < READS]


@pytest.mark.parametrize("seed", HELD_SEEDS)
def test_held_requests_run_after_the_operation_they_waited_for(seed: int) -> None:
    cluster = _held_scenario(seed)
    assert _held(cluster) >= 1, "the scenario must really hold a request behind a running one"
    assert _caught(cluster) == [] and _unfinished(cluster) == []


def test_held_requests_never_released_are_caught(held_never_released: str) -> None:
    cluster = _held_scenario(1)
    assert _held(cluster) >= 1
    assert _unfinished(cluster), f"mutant {held_never_released} went unnoticed"


# ---- Rule 5: the bounded pipeline per key ---------------------------------------------------------------


def _parts_without_minimum(self: coalesce.Coalescer, registers: int, running: int) -> int:
    """The planted bug ``straggler_beside_batch``: a key's queued requests start beside its running
    operations however few registers they name (Rule 5's minimum forgotten)."""
    if running >= self.pipeline:
        return 0
    return max(1, min(self.pipeline - running, registers // self.min_pipelined))


def _parts_without_bound(self: coalesce.Coalescer, registers: int, running: int) -> int:
    """The planted bug ``pipeline_unbounded``: a key's queued requests start beside any number of running
    operations of that key (Rule 5's bound forgotten)."""
    if running and registers < self.min_pipelined:
        return 0
    return max(1, registers // self.min_pipelined)


@pytest.fixture
def straggler_beside_batch(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(coalesce.Coalescer, "parts", _parts_without_minimum)
    yield "straggler_beside_batch"


@pytest.fixture
def pipeline_unbounded(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(coalesce.Coalescer, "parts", _parts_without_bound)
    yield "pipeline_unbounded"


def _rule5_counterexample() -> list[tuple[str, int]]:
    """A plan on which the Rule 5 check reports a problem (Hypothesis search, at most 2,000 plans)."""
    from hypothesis import HealthCheck, find, settings

    plan: list[tuple[str, int]] = find(
        rule5_steps(), lambda p: bool(rule5_problems(p)),
        settings=settings(max_examples=2000, database=None, derandomize=True,
                          suppress_health_check=list(HealthCheck)),
    )
    return plan


def test_a_straggler_started_beside_a_running_batch_is_caught(straggler_beside_batch: str) -> None:
    plan = _rule5_counterexample()
    assert any("started beside running ones" in p for p in rule5_problems(plan)), straggler_beside_batch


def test_an_unbounded_pipeline_is_caught(pipeline_unbounded: str) -> None:
    plan = _rule5_counterexample()
    assert any("started beside 2 running ones" in p for p in rule5_problems(plan)), pipeline_unbounded


# ---- Rule 6: the direct start of a lone request ---------------------------------------------------------


def _flush_ignoring_running(self: coalesce.Coalescer) -> None:
    """The planted bug ``lone_start_ignores_running``: a lone queued request starts directly even while
    operations of its key run (Rule 6's condition forgotten, Rule 5 bypassed)."""
    self._flush_scheduled = False
    queue, self._queue = self._queue, []
    if len(queue) == 1:
        self._start(queue, None, coalesce.merge_key(queue[0][0]))
    elif queue:
        self._flush_general(queue)


@pytest.fixture
def lone_start_ignores_running(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(coalesce.Coalescer, "flush", _flush_ignoring_running)
    yield "lone_start_ignores_running"


def test_a_lone_start_beside_running_operations_is_caught(lone_start_ignores_running: str) -> None:
    from hypothesis import HealthCheck, find, settings

    plan: list[tuple[str, int]] = find(
        rule6_steps(), lambda p: rule6_trace(p) != rule6_trace(p, GeneralOnly),
        settings=settings(max_examples=2000, database=None, derandomize=True,
                          suppress_health_check=list(HealthCheck)),
    )
    assert rule6_trace(plan) != rule6_trace(plan, GeneralOnly), lone_start_ignores_running
