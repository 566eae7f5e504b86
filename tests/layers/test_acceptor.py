"""The acceptor core (wormspace/layers/acceptor.py): its rules one by one, trim, durability order, and a
property test that promises and votes only grow."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from wormspace.errors import RemoteProtocolError
from wormspace.layers.acceptor import (
    AcceptorNode,
    MemoryStorage,
    apply_to_dict,
    handle_request,
    on_accept,
    on_prepare,
    on_read,
    reg_ok,
    segment_trimmed,
    step_ok,
)
from wormspace.layers.effects import Persist, Send, persist_before_send
from wormspace.layers.messages import (
    EMPTY_REG,
    META,
    TRIM,
    ZERO_BALLOT,
    Accept,
    Accepted,
    Ballot,
    ErrorReply,
    Nack,
    Prepare,
    Promise,
    Read,
    ReadReply,
    RegState,
    Request,
    SegmentTrimmed,
    Vote,
)

B1, B2, B3 = Ballot(1, 7), Ballot(2, 7), Ballot(3, 8)


def prepare(ballot: Ballot, *indices: int, segment: int = 0) -> Prepare:
    return Prepare(req=1, segment=segment, indices=indices or (0,), ballot=ballot)


def accept(ballot: Ballot, *values: tuple[int, bytes], segment: int = 0) -> Accept:
    return Accept(req=2, segment=segment, ballot=ballot, values=values or ((0, b"x"),))


def run(store: MemoryStorage, msg: Request) -> object:
    """Handle ``msg`` as a node does: apply the changes, return the reply."""
    persist, reply = handle_request(store, msg)
    if persist is not None:
        store.apply(persist)
    return reply


# ---- Rule 1: prepare --------------------------------------------------------------------------------------


def test_prepare_promises_and_reports_no_votes_on_a_fresh_register() -> None:
    persist, reply = on_prepare(MemoryStorage(), prepare(B1))
    assert reply == Promise(req=1, segment=0, ballot=B1, votes=())
    assert persist == Persist(puts=(((0, 0), RegState(promised=B1)),))


def test_prepare_reports_the_vote_it_holds() -> None:
    store = MemoryStorage({(0, 0): RegState(promised=B1, accepted=B1, value=b"x")})
    persist, reply = on_prepare(store, prepare(B2))
    assert isinstance(reply, Promise)
    assert reply.votes == (Vote(index=0, ballot=B1, value=b"x"),)
    assert persist is not None
    assert persist.puts == (((0, 0), RegState(promised=B2, accepted=B1, value=b"x")),)


def test_prepare_at_the_promised_ballot_changes_nothing_and_promises_again() -> None:
    store = MemoryStorage({(0, 0): RegState(promised=B2)})
    persist, reply = on_prepare(store, prepare(B2))
    assert persist is None
    assert isinstance(reply, Promise)


def test_prepare_below_the_promise_is_refused_with_the_promise_and_the_vote() -> None:
    store = MemoryStorage({(0, 0): RegState(promised=B3, accepted=B1, value=b"x")})
    persist, reply = on_prepare(store, prepare(B2))
    assert persist is None
    assert reply == Nack(req=1, segment=0, ballot=B2, promised=B3, accepted=B1)


def test_batch_prepare_is_all_or_none() -> None:
    store = MemoryStorage({(0, 1): RegState(promised=B3)})
    persist, reply = on_prepare(store, prepare(B2, 0, 1, 2))
    assert persist is None and isinstance(reply, Nack) and reply.promised == B3
    persist, reply = on_prepare(store, prepare(B3, 0, 1, 2))
    assert isinstance(reply, Promise)
    assert persist is not None
    assert [key for key, _ in persist.puts] == [(0, 0), (0, 2)]  # (0, 1) already promised B3


def test_ballots_order_by_number_then_node() -> None:
    assert Ballot(1, 9) < Ballot(2, 0) and Ballot(2, 0) < Ballot(2, 1)
    assert Ballot(1, 0) > ZERO_BALLOT


# ---- Rule 2: accept ---------------------------------------------------------------------------------------


def test_accept_at_the_promise_votes() -> None:
    store = MemoryStorage({(0, 0): RegState(promised=B2)})
    persist, reply = on_accept(store, accept(B2, (0, b"v")))
    assert reply == Accepted(req=2, segment=0, ballot=B2)
    assert persist == Persist(puts=(((0, 0), RegState(promised=B2, accepted=B2, value=b"v")),))


def test_accept_above_the_promise_votes_and_raises_the_promise() -> None:
    store = MemoryStorage({(0, 0): RegState(promised=B1)})
    assert run(store, accept(B3)) == Accepted(req=2, segment=0, ballot=B3)
    assert store.get(0, 0) == RegState(promised=B3, accepted=B3, value=b"x")


def test_accept_below_the_promise_is_refused() -> None:
    store = MemoryStorage({(0, 0): RegState(promised=B3)})
    persist, reply = on_accept(store, accept(B2))
    assert persist is None
    assert reply == Nack(req=2, segment=0, ballot=B2, promised=B3, accepted=ZERO_BALLOT)


def test_nack_accepted_tells_whether_the_refused_ballot_was_ever_voted() -> None:
    """``Nack.accepted < ballot`` proves the acceptor never voted at the ballot (votes only rise): the
    WOR layer's certain CaptureStale rests on it."""
    never = MemoryStorage({(0, 0): RegState(promised=B3, accepted=B1, value=b"old")})
    reply = on_accept(never, accept(B2))[1]
    assert isinstance(reply, Nack) and reply.accepted < reply.ballot
    voted = MemoryStorage({(0, 0): RegState(promised=B3, accepted=B2, value=b"x")})
    reply = on_accept(voted, accept(B2))[1]  # a duplicate of an Accept it voted for, after a higher promise
    assert isinstance(reply, Nack) and reply.accepted >= reply.ballot


def test_a_second_value_at_a_voted_ballot_is_an_error_and_changes_nothing() -> None:
    store = MemoryStorage({(0, 0): RegState(promised=B2, accepted=B2, value=b"x")})
    persist, reply = on_accept(store, accept(B2, (0, b"y")))
    assert persist is None
    assert isinstance(reply, ErrorReply) and "different value" in reply.reason


def test_the_same_accept_twice_is_idempotent() -> None:
    store = MemoryStorage()
    first = run(store, accept(B2))
    state = dict(store.regs)
    assert run(store, accept(B2)) == first
    assert store.regs == state


def test_batch_accept_is_all_or_none() -> None:
    store = MemoryStorage({(0, 1): RegState(promised=B3)})
    persist, reply = on_accept(store, accept(B2, (0, b"a"), (1, b"b")))
    assert persist is None and isinstance(reply, Nack)
    assert run(store, accept(B3, (0, b"a"), (1, b"b"))) == Accepted(req=2, segment=0, ballot=B3)
    assert store.get(0, 0) == RegState(promised=B3, accepted=B3, value=b"a")
    assert store.get(0, 1) == RegState(promised=B3, accepted=B3, value=b"b")


# ---- Rule 3: read -----------------------------------------------------------------------------------------


def test_read_reports_votes_and_changes_nothing() -> None:
    store = MemoryStorage({(0, 0): RegState(promised=B3, accepted=B2, value=b"x"), (0, 1): RegState(promised=B3)})
    persist, reply = on_read(store, Read(req=3, segment=0, indices=(0, 1, 2)))
    assert persist is None
    assert reply == ReadReply(req=3, segment=0, votes=(Vote(index=0, ballot=B2, value=b"x"),))


# ---- Rule 4: trim -----------------------------------------------------------------------------------------


def test_a_vote_in_trim_purges_the_segment_but_keeps_trim() -> None:
    store = MemoryStorage(
        {
            (0, 0): RegState(promised=B1, accepted=B1, value=b"x"),
            (0, META): RegState(promised=B1, accepted=B1, value=b"meta"),
            (1, 0): RegState(promised=B1, accepted=B1, value=b"other segment"),
        }
    )
    persist, reply = on_accept(store, accept(B2, (TRIM, b"trim")))
    assert isinstance(reply, Accepted)
    assert persist is not None and persist.purge == (0,)
    store.apply(persist)
    assert sorted(store.regs) == [(0, TRIM), (1, 0)]
    assert segment_trimmed(store, 0) and not segment_trimmed(store, 1)


@pytest.mark.parametrize(
    "msg",
    [prepare(B3, 0), accept(B3, (1, b"y")), Read(req=9, segment=0, indices=(0,)), prepare(B3, 0, TRIM)],
    ids=["prepare", "accept", "read", "prepare-with-trim"],
)
def test_requests_for_a_trimmed_segment_answer_segment_trimmed(msg: Request) -> None:
    store = MemoryStorage({(0, TRIM): RegState(promised=B2, accepted=B2, value=b"trim")})
    persist, reply = handle_request(store, msg)
    assert persist is None
    assert reply == SegmentTrimmed(req=msg.req, segment=0)


def test_the_trim_register_itself_still_runs_paxos() -> None:
    """Clients finish a trim's consensus on the TRIM register after the rest is gone."""
    store = MemoryStorage({(0, TRIM): RegState(promised=B2, accepted=B2, value=b"trim")})
    reply = run(store, prepare(B3, TRIM))
    assert isinstance(reply, Promise) and reply.votes == (Vote(index=TRIM, ballot=B2, value=b"trim"),)
    assert run(store, accept(B3, (TRIM, b"trim"))) == Accepted(req=2, segment=0, ballot=B3)


def test_apply_to_dict_matches_memory_storage_and_skips_puts_into_a_purged_segment() -> None:
    regs = {(0, 0): RegState(promised=B1), (0, 5): RegState(promised=B1)}
    persist = Persist(
        puts=(((0, TRIM), RegState(promised=B2, accepted=B2, value=b"trim")), ((0, 3), RegState(promised=B2))),
        purge=(0,),
    )
    out = apply_to_dict(regs, persist)
    assert out == {(0, TRIM): RegState(promised=B2, accepted=B2, value=b"trim")}
    assert regs == {(0, 0): RegState(promised=B1), (0, 5): RegState(promised=B1)}  # the input is untouched


# ---- Rule 5: durability; the node -------------------------------------------------------------------------


def test_node_persists_before_it_replies() -> None:
    node = AcceptorNode(0, MemoryStorage())
    effects = node.handle(1000, prepare(B1))
    assert isinstance(effects[0], Persist) and isinstance(effects[1], Send)
    assert persist_before_send(effects)
    assert node.storage.get(0, 0) == RegState(promised=B1)
    assert effects[1].dst == 1000
    assert persist_before_send([Send(dst=1, msg=prepare(B1)), Persist()]) is False


def test_node_sends_only_the_reply_when_nothing_changes() -> None:
    node = AcceptorNode(0, MemoryStorage())
    effects = node.handle(1000, Read(req=1, segment=0, indices=(0,)))
    assert effects == [Send(dst=1000, msg=ReadReply(req=1, segment=0, votes=()))]


# ---- invariants -------------------------------------------------------------------------------------------


def test_reg_ok_and_step_ok() -> None:
    assert reg_ok(RegState(promised=B2, accepted=B1, value=b"x"))
    assert not reg_ok(RegState(promised=B1, accepted=B2, value=b"x"))
    assert step_ok(EMPTY_REG, RegState(promised=B1))
    assert not step_ok(RegState(promised=B2), RegState(promised=B1))  # a promise lowered
    assert not step_ok(RegState(promised=B2, accepted=B2, value=b"x"), RegState(promised=B2, accepted=B1,
                                                                                value=b"x"))  # a vote lowered
    assert not step_ok(RegState(promised=B2, accepted=B2, value=b"x"), RegState(promised=B2, accepted=B2,
                                                                                value=b"y"))  # value changed


def test_malformed_messages_are_remote_protocol_errors() -> None:
    with pytest.raises(RemoteProtocolError):
        Prepare(req=1, segment=0, indices=(), ballot=B1)
    with pytest.raises(RemoteProtocolError):
        Prepare(req=1, segment=0, indices=(0, 0), ballot=B1)
    with pytest.raises(RemoteProtocolError):
        Accept(req=1, segment=0, ballot=ZERO_BALLOT, values=((0, b"x"),))
    with pytest.raises(RemoteProtocolError):
        RegState(promised=B1, accepted=B1, value=None)


# ---- property: any request sequence keeps the rules --------------------------------------------------------

ballots = st.builds(Ballot, st.integers(1, 4), st.integers(0, 2))
indices = st.sampled_from([0, 1, TRIM])
requests = st.one_of(
    st.builds(lambda b, ix: Prepare(req=1, segment=0, indices=tuple(sorted(set(ix))), ballot=b), ballots,
              st.lists(indices, min_size=1, max_size=3)),
    st.builds(lambda b, kv: Accept(req=2, segment=0, ballot=b, values=tuple(sorted(dict(kv).items()))), ballots,
              st.lists(st.tuples(indices, st.sampled_from([b"x", b"y"])), min_size=1, max_size=3)),
    st.builds(lambda ix: Read(req=3, segment=0, indices=tuple(sorted(set(ix)))), st.lists(indices, min_size=1,
                                                                                          max_size=3)),
)


@settings(max_examples=300)
@given(st.lists(requests, max_size=25))
def test_any_request_sequence_keeps_reg_ok_and_step_ok(msgs: list[Request]) -> None:
    """The handlers' own contracts are on here too (promises and votes only grow)."""
    node = AcceptorNode(0, MemoryStorage())
    assert isinstance(node.storage, MemoryStorage)
    votes: dict[tuple[tuple[int, int], Ballot], bytes] = {}
    for msg in msgs:
        before = dict(node.storage.regs)
        effects = node.handle(5, msg)
        assert persist_before_send(effects)
        after = node.storage.regs
        for key, new in after.items():
            assert reg_ok(new)
            if key in before:
                assert step_ok(before[key], new)
            if new.value is not None:
                assert votes.setdefault((key, new.accepted), new.value) == new.value, "two values at a ballot"
        if segment_trimmed(node.storage, 0):
            assert all(i == TRIM for (_, i) in after), "a trimmed segment keeps only its TRIM register"
