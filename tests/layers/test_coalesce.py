"""Operation-level coalescing (``wormspace.layers.coalesce``): which requests merge, and who gets what."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from wormspace._contracts import CONTRACTS
from wormspace.errors import ContractViolation
from wormspace.layers.coalesce import Coalescer, merge, split
from wormspace.layers.effects import Effect, Send
from wormspace.layers.messages import Accept, Accepted, Ballot, Read, ReadReply, Vote
from wormspace.layers.wor import ClientCore, Kind, OpRequest, Outcome

B = Ballot(3, 7)


def _write(i: int, v: bytes, ballot: Ballot = B) -> OpRequest:
    return OpRequest(kind=Kind.WRITE, segment=4, values=((i, v),), ballot=ballot)


def _read(i: int) -> OpRequest:
    return OpRequest(kind=Kind.READ, segment=4, indices=(i,))


def _rig() -> tuple[Coalescer, list[Callable[[], None]], list[Effect]]:
    core = ClientCore(node_id=7, groups=[[0, 1, 2]])
    scheduled: list[Callable[[], None]] = []
    sent: list[Effect] = []
    return Coalescer(core, schedule=scheduled.append, carry_out=sent.extend), scheduled, sent


def test_merge_and_split_are_batch_semantics() -> None:
    a, b = _write(1, b"a"), _write(2, b"b")
    merged = merge([a, b])
    assert merged.values == ((1, b"a"), (2, b"b")) and merged.ballot == B
    outcome = Outcome(chosen=((1, b"a"),), stale=(2,))
    assert split(outcome, a) == Outcome(chosen=((1, b"a"),))
    assert split(outcome, b) == Outcome(stale=(2,))
    whole = Outcome(error="Trimmed", unknown=(1, 2))
    assert split(whole, b) == Outcome(error="Trimmed", unknown=(2,))


def test_one_turns_writes_run_as_one_operation_and_each_caller_gets_its_part() -> None:
    co, scheduled, sent = _rig()
    got: dict[int, Outcome] = {}
    def keep(i: int) -> Callable[[Outcome], None]:
        return lambda o: got.__setitem__(i, o)

    for i in range(3):
        co.submit(_write(i, b"v%d" % i), keep(i))
    assert len(scheduled) == 1  # one flush for the turn
    scheduled.pop()()
    accepts = [e.msg for e in sent if isinstance(e, Send)]
    assert len(accepts) == 3 and all(isinstance(m, Accept) for m in accepts)  # one Accept per acceptor
    assert isinstance(accepts[0], Accept) and len(accepts[0].values) == 3
    for src in (0, 1):
        co.core.on_reply(src, Accepted(req=accepts[0].req, segment=4, ballot=B))
    assert got == {i: Outcome(chosen=((i, b"v%d" % i),)) for i in range(3)}
    assert co.merged_ops == 1


def test_same_register_captures_and_writes_are_never_merged_but_reads_are() -> None:
    co, scheduled, sent = _rig()
    co.submit(_write(1, b"x"), lambda o: None)
    co.submit(_write(1, b"x"), lambda o: None)
    co.submit(_write(2, b"y", Ballot(4, 7)), lambda o: None)  # another ballot: alone
    co.submit(OpRequest(kind=Kind.CAPTURE, segment=4, indices=(5,)), lambda o: None)
    co.submit(OpRequest(kind=Kind.CAPTURE, segment=4, indices=(5,)), lambda o: None)
    scheduled.pop()()
    assert co.merged_ops == 0
    assert len([e for e in sent if isinstance(e, Send)]) == 5 * 3

    co, scheduled, sent = _rig()
    got: list[Outcome] = []
    co.submit(_read(1), got.append)
    co.submit(_read(1), got.append)
    co.submit(_read(2), got.append)
    scheduled.pop()()
    reads = [e.msg for e in sent if isinstance(e, Send)]
    assert len(reads) == 3 and isinstance(reads[0], Read) and reads[0].indices == (1, 2)
    vote = Vote(index=1, ballot=B, value=b"w")
    for src in (0, 1):
        co.core.on_reply(src, ReadReply(req=reads[0].req, segment=4, votes=(vote,)))
    assert got == [Outcome(chosen=((1, b"w"),)), Outcome(chosen=((1, b"w"),)), Outcome(empty=(2,))]


def test_a_batch_holds_at_most_max_registers() -> None:
    core = ClientCore(node_id=7, groups=[[0, 1, 2]])
    scheduled: list[Callable[[], None]] = []
    sent: list[Effect] = []
    co = Coalescer(core, schedule=scheduled.append, carry_out=sent.extend, max_registers=2)
    for i in range(5):
        co.submit(_read(i), lambda o: None)
    scheduled.pop()()
    sizes = sorted(len(e.msg.indices) for e in sent if isinstance(e, Send) and isinstance(e.msg, Read))
    assert sizes == [1, 1, 1, 2, 2, 2, 2, 2, 2]


def test_split_all_is_split_for_each_caller() -> None:
    from hypothesis import given, settings

    from wormspace.layers.coalesce import split_all

    regs = st.lists(st.integers(0, 12), max_size=6)

    @settings(max_examples=150, deadline=None)
    @given(
        st.lists(regs.filter(bool), min_size=1, max_size=5),
        st.lists(st.tuples(st.integers(0, 14), st.sampled_from([b"a", b"b"])), max_size=8),
        regs, regs, regs, st.sampled_from([None, "Trimmed"]),
    )
    def check(asked: list[list[int]], chosen: list[tuple[int, bytes]], empty: list[int], stale: list[int],
              unknown: list[int], error: str | None) -> None:
        requests = [OpRequest(kind=Kind.READ, segment=3, indices=tuple(a)) for a in asked]
        outcome = Outcome(error=error, chosen=tuple(sorted(chosen)), empty=tuple(sorted(empty)),
                          stale=tuple(sorted(stale)), unknown=tuple(sorted(unknown)))
        assert split_all(outcome, requests) == [split(outcome, r) for r in requests]

    check()


def _accepts(sent: list[Effect]) -> list[Accept]:
    return [e.msg for e in sent if isinstance(e, Send) and isinstance(e.msg, Accept)]


def test_a_write_behind_a_running_write_of_its_key_is_held_and_joins_the_next_batch() -> None:
    """Rule 5: one operation in flight per key; what comes meanwhile runs merged with what the running
    operation's callers submit when they get their outcome."""
    co, scheduled, sent = _rig()
    got: dict[int, Outcome] = {}

    def keep(i: int) -> Callable[[Outcome], None]:
        def then(o: Outcome) -> None:
            got[i] = o
            if i == 0:  # the caller goes on at once, as a coroutine resumed by its outcome would
                co.submit(_write(5, b"v5"), keep(5))
        return then

    co.submit(_write(0, b"v0"), keep(0))
    scheduled.pop()()
    first = _accepts(sent)[0]
    co.submit(_write(1, b"v1"), keep(1))  # a straggler, one turn behind
    co.submit(_write(2, b"v2", Ballot(4, 7)), keep(2))  # another ballot: another key, not held
    scheduled.pop()()
    assert [a.values for a in _accepts(sent)[3:]] == [((2, b"v2"),)] * 3
    assert co.held_requests == 1 and co.queued == 1
    sent.clear()
    for src in (0, 1):
        co.core.on_reply(src, Accepted(req=first.req, segment=4, ballot=B))
    assert got[0] == Outcome(chosen=((0, b"v0"),)) and 1 not in got
    assert len(scheduled) == 1  # released after the callers had their outcomes: one flush for both
    scheduled.pop()()
    merged = _accepts(sent)
    assert len(merged) == 3 and [i for i, _ in merged[0].values] == [1, 5]
    for src in (0, 1):
        co.core.on_reply(src, Accepted(req=merged[0].req, segment=4, ballot=B))
    assert got[1] == Outcome(chosen=((1, b"v1"),)) and got[5] == Outcome(chosen=((5, b"v5"),))
    assert co.queued == 0 and [r.values for r, _ in co.running()] == [((2, b"v2"),)]  # the other ballot's


def test_held_requests_are_among_the_running_ones_a_closing_driver_ends() -> None:
    co, scheduled, _sent = _rig()
    co.submit(_read(1), lambda o: None)
    scheduled.pop()()
    co.submit(_read(1), lambda o: None)
    scheduled.pop()()
    assert len(co.running()) == 2 and co.held_requests == 1
    co.forget()
    assert co.running() == [] and co.queued == 0


PIPELINE, MIN_PIPELINED = 2, 2  # small bounds, so that short plans exercise Rule 5's pipeline


def rule5_steps() -> SearchStrategy[list[tuple[str, int]]]:
    """Hypothesis plans: submissions, flushes and completions in any order."""

    return st.lists(st.one_of(
        st.tuples(st.just("read"), st.integers(0, 3)),
        st.tuples(st.just("write"), st.integers(0, 3)),
        st.tuples(st.just("flush"), st.just(0)),
        st.tuples(st.just("done"), st.integers(0, 7)),
    ), max_size=40)


def rule5_problems(plan: list[tuple[str, int]], pipeline: int = PIPELINE,
                   min_pipelined: int = MIN_PIPELINED) -> list[str]:
    """Run ``plan`` on a ``Coalescer`` and check Rules 3 and 5: every request is answered exactly once; an
    operation starts beside running ones of its key (started in earlier flushes) only while fewer than
    ``pipeline`` of them run, and only if its flush started at least ``min_pipelined`` registers of that key."""
    core = ClientCore(node_id=7, groups=[[0, 1, 2]])
    scheduled: list[Callable[[], None]] = []
    sent: list[Effect] = []
    co = Coalescer(core, schedule=scheduled.append, carry_out=sent.extend, pipeline=pipeline,
                   min_pipelined=min_pipelined)
    problems: list[str] = []
    running: dict[int, tuple[tuple[object, ...], int]] = {}  # op id -> (key, flush number)
    beside: dict[tuple[tuple[object, ...], int], int] = {}  # (key, flush) started beside others -> registers
    flushes = [0]
    real_start = core.start

    def start(request: OpRequest) -> tuple[int, list[Effect]]:
        op_id, effects = real_start(request)
        key = (request.kind, request.segment, request.ballot, request.repair)
        flush = flushes[0]
        earlier = sum(1 for k, f in running.values() if k == key and f != flush)
        if earlier >= pipeline:
            problems.append(f"flush {flush}: an operation of {key} started beside {earlier} running ones")
        if earlier or (key, flush) in beside:
            beside[(key, flush)] = beside.get((key, flush), 0) + len(request.targets())
        running[op_id] = (key, flush)
        return op_id, effects

    core.start = start  # type: ignore[method-assign]
    on_done = core.on_done
    assert on_done is not None
    answered: dict[int, int] = {}

    def count(k: int) -> Callable[[Outcome], None]:
        return lambda o: answered.__setitem__(k, answered.get(k, 0) + 1)

    def flush() -> None:
        flushes[0] += 1
        scheduled.pop(0)()

    def done(op_id: int) -> None:
        del running[op_id]
        on_done(op_id, Outcome(error="Indeterminate"))

    submitted = 0
    writes = 0
    for step, arg in plan:
        if step in ("read", "write"):
            if step == "read":
                request = _read(arg)
            else:
                writes += 1
                request = _write(10 + writes, b"w")  # writes name distinct registers (Rule 2's callers)
            co.submit(request, count(submitted))
            submitted += 1
        elif step == "flush" and scheduled:
            flush()
        elif step == "done" and running:
            done(sorted(running)[arg % len(running)])
    while scheduled or running:  # the rest of the run: every flush, then every operation ends
        if scheduled:
            flush()
        else:
            done(min(running))
    problems.extend(f"flush {f}: {n} register(s) of {k} started beside running ones"
                    for (k, f), n in beside.items() if n < min_pipelined)
    if answered != {k: 1 for k in range(submitted)}:
        problems.append(f"answers per request: {answered}, {submitted} submitted")
    if co.running() or co.queued:
        problems.append("requests left running or queued")
    return problems


def test_every_request_starts_once_and_keys_never_overlap_across_flushes() -> None:
    """Rule 5 under any order of submissions, flushes and completions (Hypothesis): every request is started
    exactly once, in an operation carrying its registers; an operation starts beside running ones of its key
    only within the pipeline's bound and with at least ``min_pipelined`` registers; with a pipeline of one
    (Rule 5 as one operation in flight per key) never beside one."""
    from hypothesis import given, settings

    @settings(max_examples=150, deadline=None)
    @given(rule5_steps())
    def check(plan: list[tuple[str, int]]) -> None:
        assert rule5_problems(plan) == []
        assert rule5_problems(plan, pipeline=1, min_pipelined=1) == []

    check()


def test_a_full_queue_is_cut_into_pipelined_batches_and_a_straggler_waits_for_the_next() -> None:
    """Rule 5's pipeline (the defaults: 2 operations of a key, 64 registers to start beside one): 200 writes
    of one turn run as two operations of 100; while they run, a straggler of one register is held, and it
    starts with the callers of the first one to end, beside the other; a key with nothing running is never
    cut below ``2 * min_pipelined`` registers."""
    co, scheduled, sent = _rig()
    for i in range(200):
        co.submit(_write(i, b"v"), lambda o: None)
    scheduled.pop()()
    accepts = _accepts(sent)
    assert sorted(len(a.values) for a in accepts) == [100] * 6 and co.merged_ops == 2
    co.submit(_write(200, b"v"), lambda o: None)
    scheduled.pop()()
    assert co.held_requests == 1 and len(_accepts(sent)) == 6
    first = accepts[0]
    for i in range(200, 280):  # the first operation's callers submit again when it ends
        co.submit(_write(i + 1, b"v"), lambda o: None)
    for src in (0, 1):
        co.core.on_reply(src, Accepted(req=first.req, segment=4, ballot=B))
    scheduled.pop()()
    later = _accepts(sent)[6:]
    assert [len(a.values) for a in later] == [81] * 3 and co.pipelined_ops == 1
    assert [i for i, _ in later[0].values] == list(range(200, 281))

    co, scheduled, sent = _rig()
    for i in range(127):
        co.submit(_write(i, b"v"), lambda o: None)
    scheduled.pop()()
    assert [len(a.values) for a in _accepts(sent)] == [127] * 3


def test_pipelined_operations_pass_the_simulated_checks() -> None:
    """The simulated checks on Rule 5's pipeline: eight processes on ONE client node (as coroutines on one
    TCP driver) capture, write and read registers of one segment at the same virtual instants, with
    ``min_pipelined`` lowered to 2 so that their reads run as operations beside running ones of their key;
    the history is linearizable for the segment model and one value is chosen per register."""
    from tests.mutants.test_coalesce_mutants import _caught

    for seed in (1, 2):
        cluster = _pipelined_run(seed)
        assert sum(n.coalescer.pipelined_ops for n in cluster.clients) >= 1, "no operation ran pipelined"
        assert _caught(cluster) == []


def _pipelined_run(seed: int) -> Any:
    from collections.abc import Generator

    from tests.mutants.test_coalesce_mutants import WOS
    from wormspace.cluster import Cluster
    from wormspace.errors import OperationFailed
    from wormspace.layers.wormspace import ClientRequest, SpaceLogic

    cluster = Cluster.simulated(acceptors=3, seed=seed, wos_size=WOS)
    segment = cluster.client().alloc(b"pipe")

    def worker(offset: int) -> Callable[[SpaceLogic], Generator[ClientRequest, Outcome, None]]:
        def run(logic: SpaceLogic) -> Generator[ClientRequest, Outcome, None]:
            address = logic.address(segment, offset)
            try:
                cap = yield from logic.capture(address)
                yield from logic.write(address, b"v%d" % offset, cap)
            except OperationFailed:
                pass
            for k in range(6):
                yield from logic.read(logic.address(segment, (offset + k) % WOS))

        return run

    first = cluster.spawn(worker(0), at=0.01)
    for offset in range(1, WOS):
        cluster.spawn(worker(offset), at=0.01, node_of=first)
    for n in cluster.clients:
        n.coalescer.min_pipelined = 2
    cluster.run()
    return cluster


# ---- Rule 6: a lone request starts directly -------------------------------------------------------------


class GeneralOnly(Coalescer):
    """The reference for Rule 6: every flush takes the general path of Rules 1-5."""

    def flush(self) -> None:
        self._flush_scheduled = False
        queue, self._queue = self._queue, []
        if queue:
            self._flush_general(queue)


def rule6_steps() -> SearchStrategy[list[tuple[str, int]]]:
    """Hypothesis plans: submissions (queued, or ``start_now``) of reads, captures, writes and proposals,
    flushes and completions in any order."""
    kinds = st.sampled_from(["read", "capture", "write", "propose", "now-read", "now-write", "now-propose"])
    return st.lists(st.one_of(
        st.tuples(kinds, st.integers(0, 3)),
        st.tuples(st.just("flush"), st.just(0)),
        st.tuples(st.just("done"), st.integers(0, 7)),
    ), max_size=40)


def _rule6_request(step: str, arg: int, n: int) -> OpRequest:
    kind = step.removeprefix("now-")
    if kind == "read":
        return _read(arg)
    if kind == "capture":
        return OpRequest(kind=Kind.CAPTURE, segment=4, indices=(20 + n,))  # distinct registers (Rule 2's callers)
    if kind == "propose":
        return OpRequest(kind=Kind.PROPOSE, segment=4, values=((arg, b"p"),))
    return _write(40 + n, b"w")


def rule6_trace(plan: list[tuple[str, int]], cls: type[Coalescer] = Coalescer) -> list[object]:
    """Run ``plan`` on a ``cls`` coalescer (pipeline 2, minimum 2): the operations started, the effects carried
    out and the outcomes handed to each caller, in the order they happened."""
    core = ClientCore(node_id=7, groups=[[0, 1, 2]])
    scheduled: list[Callable[[], None]] = []
    trace: list[object] = []
    co = cls(core, schedule=scheduled.append, carry_out=lambda effects: trace.append(("effects", effects)),
             pipeline=PIPELINE, min_pipelined=MIN_PIPELINED)
    real_start = core.start
    running: list[int] = []

    def start(request: OpRequest) -> tuple[int, list[Effect]]:
        op_id, effects = real_start(request)
        trace.append(("start", op_id, request))
        running.append(op_id)
        return op_id, effects

    core.start = start  # type: ignore[method-assign]
    on_done = core.on_done
    assert on_done is not None

    def answer(k: int) -> Callable[[Outcome], None]:
        return lambda o: trace.append(("outcome", k, o))

    def done(op_id: int) -> None:
        running.remove(op_id)
        on_done(op_id, Outcome(error="Indeterminate", unknown=(op_id,)))

    n = 0
    for step, arg in plan:
        if step == "flush":
            if scheduled:
                scheduled.pop(0)()
        elif step == "done":
            if running:
                done(running[arg % len(running)])
        else:
            request = _rule6_request(step, arg, n)
            if step.startswith("now-"):
                co.start_now(request, answer(n))
            else:
                co.submit(request, answer(n))
            n += 1
    while scheduled or running:
        if scheduled:
            scheduled.pop(0)()
        else:
            done(running[0])
    trace.append(("left", co.queued, len(co.running()), co.merged_ops, co.held_requests, co.pipelined_ops))
    return trace


def test_a_lone_request_starts_as_the_general_path_would_start_it() -> None:
    """Rule 6, differential (Hypothesis): the direct start of a lone request and ``start_now`` start the
    same operations, carry out the same effects and hand the same outcomes to the same callers, in the same
    order, as the general path of Rules 1-5 under any order of submissions, flushes and completions."""
    from hypothesis import given, settings

    @settings(max_examples=200, deadline=None)
    @given(rule6_steps())
    def check(plan: list[tuple[str, int]]) -> None:
        assert rule6_trace(plan) == rule6_trace(plan, GeneralOnly)

    check()


def test_start_now_starts_a_lone_request_at_once_and_queues_behind_others() -> None:
    co, scheduled, sent = _rig()
    co.start_now(_write(1, b"a"), lambda o: None)
    assert scheduled == [] and len(_accepts(sent)) == 3 and co.queued == 0  # started, nothing scheduled
    other = Ballot(4, 7)  # another key: nothing of it runs (Rule 5 would hold a write of the first one's key)
    co.submit(_write(2, b"b", other), lambda o: None)
    co.start_now(_write(3, b"c", other), lambda o: None)
    assert co.queued == 2 and len(scheduled) == 1  # queued behind the other: merged at the turn's end
    scheduled.pop()()
    assert [a.values for a in _accepts(sent)[3:]] == [((2, b"b"), (3, b"c"))] * 3


def test_merge_takes_one_or_more_requests_of_one_key_and_refuses_others() -> None:
    """``merge``'s preconditions (contracts on): a lone request is itself; requests of different keys, or of
    a kind that runs alone, are a breach."""
    one = OpRequest(kind=Kind.READ, segment=3, indices=(1,))
    assert merge([one]) is one
    two = OpRequest(kind=Kind.READ, segment=3, indices=(2,))
    assert merge([one, two]).indices == (1, 2)
    if not CONTRACTS:
        pytest.skip("contracts are off")
    with pytest.raises(ContractViolation):
        merge([one, OpRequest(kind=Kind.READ, segment=4, indices=(2,))])
    with pytest.raises(ContractViolation):  # a full Paxos round (alloc, trim, resolution) runs alone
        merge([OpRequest(kind=Kind.PROPOSE, segment=3, values=((0, b"x"),))])
