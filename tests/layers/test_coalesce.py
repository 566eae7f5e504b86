"""Operation-level coalescing (``wormspace.layers.coalesce``): which requests merge, and who gets what."""

from __future__ import annotations

from collections.abc import Callable

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
    from hypothesis import strategies as st

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
