"""The WOS layer: its trusted spec, its abstraction function, and SegmentLogic over a simulated cluster."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from wormspace import EMPTY, AlreadyWritten, Cluster, Faults, Indeterminate, Trimmed, Unallocated, UsageError
from wormspace.cluster import SimCluster
from wormspace.layers.effects import Persist
from wormspace.layers.messages import META, TRIM, Ballot, RegState
from wormspace.layers.wor import OpRequest, Outcome
from wormspace.layers.wormspace import WormSpace, run_sync
from wormspace.layers.wos import (
    CACHE_SEGMENTS,
    META_OVERHEAD,
    TRIM_VALUE,
    CaptureId,
    LruCache,
    LruSet,
    SegmentLogic,
    TrimmedInFlight,
    WosSpec,
    abstract_segment,
    decode_meta,
    encode_meta,
    registers_kept_after_trim,
    segment_chosen,
)

WOS = 8


# ---- the trusted spec -----------------------------------------------------------------------------------


def test_spec_alloc_wins_once_then_loses() -> None:
    s0 = WosSpec()
    s1, won = s0.alloc(b"m")
    assert won is True and s1.metadata == b"m" and s1.check() == b"m"
    s2, again = s1.alloc(b"m")
    assert again is False and s2 == s1


def test_spec_unallocated_gates_every_register_operation() -> None:
    s = WosSpec()
    assert s.check() is None
    assert s.capture(0) == "Unallocated"
    assert s.read(0) == "Unallocated"
    assert s.write(0, b"x") == (s, "Unallocated")


def test_spec_written_offsets_follow_the_wor_spec() -> None:
    s, _ = WosSpec().alloc(b"m")
    s1, r = s.write(3, b"x")
    assert r is None and s1.read(3) == b"x" and s1.read(4) is EMPTY
    assert s1.write(3, b"x") == (s1, None)
    assert s1.write(3, b"y") == (s1, b"x")
    assert s1.capture(3) is None


def test_spec_trim_is_final_and_forgets_the_data() -> None:
    s, _ = WosSpec().alloc(b"m")
    s, _ = s.write(0, b"x")
    t, r = s.trim()
    assert r is None and t.trimmed and t.data == ()
    assert t.trim() == (t, None)
    assert t.alloc(b"n") == (t, "Trimmed")
    assert t.read(0) == t.capture(0) == t.check() == "Trimmed"
    assert t.write(0, b"x") == (t, "Trimmed")
    assert WosSpec().trim()[0].read(0) == "Trimmed"  # an unallocated segment can be trimmed too


# ---- the abstraction function ---------------------------------------------------------------------------


def test_abstraction_reads_meta_trim_and_data_registers() -> None:
    meta = encode_meta(bytes(16), b"leader-1")
    assert abstract_segment({}) == WosSpec()
    written = WosSpec(b"leader-1", False, ((0, b"a"), (2, b"c")))
    assert abstract_segment({META: meta, 0: b"a", 2: b"c", 1: None}) == written
    assert abstract_segment({META: meta, 0: b"a", TRIM: TRIM_VALUE}) == WosSpec(b"leader-1", True, ())
    assert segment_chosen({(1, 0): b"a", (2, 0): b"b", (1, META): meta}, 1) == {0: b"a", META: meta}


def test_metadata_encoding_round_trips_and_carries_a_token() -> None:
    raw = encode_meta(b"t" * 16, b"meta")
    assert len(raw) == META_OVERHEAD + 4
    assert decode_meta(raw) == (b"t" * 16, b"meta")
    assert decode_meta(b"not from alloc") == (b"", b"not from alloc")


def test_registers_kept_after_trim_names_leftovers_of_trimmed_segments_only() -> None:
    b = Ballot(1, 5)
    trim_vote = RegState(promised=b, accepted=b, value=TRIM_VALUE)
    vote = RegState(promised=b, accepted=b, value=b"x")
    assert registers_kept_after_trim([((0, TRIM), trim_vote), ((1, 0), vote)]) == []
    assert registers_kept_after_trim([((0, TRIM), trim_vote), ((0, 3), vote), ((0, META), vote)]) == [(0, 3), (0, META)]
    assert registers_kept_after_trim([((0, TRIM), RegState(promised=b)), ((0, 3), vote)]) == []


# ---- the implementation ---------------------------------------------------------------------------------


def _cluster(seed: int = 1, **kw: Any) -> SimCluster:
    return Cluster.simulated(acceptors=3, seed=seed, wos_size=WOS, **kw)


def _run(ws: WormSpace, gen: Generator[OpRequest, Outcome, Any]) -> Any:
    return run_sync(ws.driver, gen)


def _seg(ws: WormSpace) -> SegmentLogic:
    return ws.logic.seg


LOW_BALLOT = Ballot(1, 999)


def _vote_trim(cluster: SimCluster, acceptor: int, segment: int, ballot: Ballot = LOW_BALLOT) -> None:
    """Acceptor ``acceptor`` votes in the segment's TRIM register (and purges the segment), as on_accept does,
    at ``ballot`` (by default below the clients' next ones)."""
    b = ballot
    cluster.storages[acceptor].apply(
        Persist(puts=(((segment, TRIM), RegState(promised=b, accepted=b, value=TRIM_VALUE)),), purge=(segment,))
    )


def test_two_allocs_with_the_same_metadata_have_one_winner() -> None:
    cluster = _cluster()
    a, b = cluster.client(), cluster.client()
    assert _run(a, _seg(a).alloc(0, b"same")) is True
    assert _run(b, _seg(b).alloc(0, b"same")) is False
    assert _run(b, _seg(b).metadata(0)) == b"same"


def test_alloc_and_check_do_not_answer_from_a_stale_cache_after_a_trim() -> None:
    cluster = _cluster()
    a, b = cluster.client(), cluster.client()
    assert _run(a, _seg(a).alloc(0, b"m")) is True
    assert _run(b, _seg(b).metadata(0)) == b"m"  # b caches the allocation
    _run(a, _seg(a).trim(0))
    with pytest.raises(Trimmed):
        _run(b, _seg(b).alloc(0, b"n"))  # b's cache says allocated; the acceptors say trimmed
    with pytest.raises(Trimmed):
        _run(b, _seg(b).metadata(0))


def test_a_write_of_a_value_its_capture_found_still_meets_a_later_trim() -> None:
    cluster = _cluster()
    a, b = cluster.client(), cluster.client()
    _run(a, _seg(a).alloc(0, b"m"))
    cap = _run(a, _seg(a).capture(0, 0, 2))
    assert _run(a, _seg(a).write(0, {0: b"x"}, cap)) == {0: None}
    found = _run(b, _seg(b).capture(0, 0, 2))
    assert found.known == ((0, b"x"),)
    _run(a, _seg(a).trim(0))
    result = _run(b, _seg(b).write(0, {0: b"x"}, found))[0]
    assert isinstance(result, Trimmed)  # not "ok" from what the capture found (WOS Rule 6)


def test_a_capture_carries_one_value_per_offset() -> None:
    cluster = _cluster()
    a = cluster.client()
    _run(a, _seg(a).alloc(0, b"m"))
    cap = _run(a, _seg(a).capture(0, 0, 4))
    assert _run(a, _seg(a).write(0, {1: b"x"}, cap)) == {1: None}
    assert _run(a, _seg(a).write(0, {1: b"x", 2: b"y"}, cap)) == {1: None, 2: None}
    with pytest.raises(UsageError, match="capture again"):
        _run(a, _seg(a).write(0, {1: b"other"}, cap))
    again = _run(a, _seg(a).capture(0, 0, 4))
    result = _run(a, _seg(a).write(0, {1: b"other"}, again))[1]
    assert isinstance(result, AlreadyWritten) and result.data == b"x"


def test_meeting_a_partial_trim_finishes_it_before_answering_trimmed() -> None:
    cluster = _cluster()
    a = cluster.client()
    _run(a, _seg(a).alloc(0, b"m"))
    _vote_trim(cluster, 0, 0)  # a trimmer reached acceptor 0 only, then died
    assert cluster.chosen().get((0, TRIM)) is None
    cluster.crash(2)  # every quorum now holds acceptor 0
    with pytest.raises(Trimmed):
        _run(a, _seg(a).read(0, (0,)))
    assert cluster.chosen()[(0, TRIM)] == TRIM_VALUE  # the client finished the trim (WOS Rule 4)


def test_a_trim_chosen_on_a_quorum_that_lost_a_member_is_finished_by_any_majority() -> None:
    """The trim reached acceptors 0 and 1 (at a ballot above this client's), then 0 crashed: with 1 and 2 up,
    1 refuses the client's first TRIM round and 0 is silent; the client retries higher and finishes it."""
    cluster = _cluster()
    a = cluster.client()
    _run(a, _seg(a).alloc(0, b"m"))
    _vote_trim(cluster, 0, 0, Ballot(7, 999))
    _vote_trim(cluster, 1, 0, Ballot(7, 999))
    cluster.crash(0)
    with pytest.raises(Trimmed) as caught:
        _run(a, _seg(a).read(0, (0,)))
    assert not isinstance(caught.value, Indeterminate)
    assert cluster.storages[2].get(0, TRIM) is not None, "acceptor 2 now holds the trim too"
    b = cluster.client()
    with pytest.raises(Trimmed):
        b.read(b.address(0, 1))


def test_a_read_after_a_trim_that_missed_one_acceptor_answers_trimmed_while_another_is_down() -> None:
    """The same through the client API: a trim reaches acceptors 0 and 1 only; 0 crashes, 2 returns."""
    cluster = _cluster()
    trimmer, reader = cluster.client(), cluster.client()
    seg = trimmer.alloc(b"m")
    addr = trimmer.address(seg, 0)
    trimmer.write(addr, b"x", trimmer.capture(addr))
    cluster.crash(2)
    trimmer.trim(seg)
    cluster.run()  # nothing more reaches acceptor 2
    cluster.crash(0)
    cluster.restart(2)
    with pytest.raises(Trimmed) as caught:
        reader.read(addr)
    assert not isinstance(caught.value, Indeterminate)


def test_a_partial_trim_that_cannot_be_finished_is_indeterminate_not_trimmed() -> None:
    cluster = _cluster()
    a = cluster.client()
    _run(a, _seg(a).alloc(0, b"m"))
    _vote_trim(cluster, 0, 0)
    cluster.crash(1)
    cluster.crash(2)
    with pytest.raises(Indeterminate) as caught:
        _run(a, _seg(a).read(0, (0,)))
    assert not isinstance(caught.value, Trimmed)
    assert cluster.chosen().get((0, TRIM)) is None


def test_a_write_in_flight_when_the_trim_lands_is_trimmed_and_indeterminate() -> None:
    cluster = _cluster()
    a = cluster.client()
    _run(a, _seg(a).alloc(0, b"m"))
    cap = _run(a, _seg(a).capture(0, 0, 2))
    _vote_trim(cluster, 0, 0)
    _vote_trim(cluster, 1, 0)  # the trim is chosen; acceptor 2 has not heard of it
    result = _run(a, _seg(a).write(0, {0: b"x"}, cap))[0]
    assert isinstance(result, TrimmedInFlight)
    assert isinstance(result, Trimmed) and isinstance(result, Indeterminate)


def test_trimmed_segment_leaves_only_the_trim_register_on_every_acceptor() -> None:
    cluster = _cluster(seed=3)
    ws = cluster.client()
    seg = ws.alloc(b"m")
    other = ws.alloc(b"m")
    cap = ws.batch_capture(seg)
    assert all(e is None for e in ws.batch_write(seg, {i: b"v%d" % i for i in range(WOS)}, cap).values())
    ws.batch_write(other, {0: b"kept"}, ws.batch_capture(other, 0, 1))
    ws.trim(seg)
    cluster.run()  # no loss: every acceptor gets the trim's Accept
    for storage in cluster.storages:
        keys = [key for key, _ in storage.items() if key[0] == seg]
        assert keys == [(seg, TRIM)]
        assert (other, 0) in dict(storage.items())


# ---- listeners --------------------------------------------------------------------------------------------


def test_listener_delivers_each_written_offset_once_then_stops_at_trim() -> None:
    cluster = _cluster(seed=4)
    writer, reader = cluster.client(), cluster.client()
    seg = writer.alloc(b"m")
    got: list[tuple[int, bytes]] = []
    handle = reader.listen(seg, lambda off, data: got.append((off, data)), interval=0.02)
    cap = writer.batch_capture(seg)
    writer.batch_write(seg, {2: b"b", 0: b"a"}, cap)
    cluster.net.run_until(lambda: len(got) >= 2)
    assert got == [(0, b"a"), (2, b"b")]  # ascending within one poll
    writer.write(writer.address(seg, 5), b"c", cap)
    cluster.net.run_until(lambda: len(got) >= 3)
    writer.trim(seg)
    cluster.run()
    assert got == [(0, b"a"), (2, b"b"), (5, b"c")]
    assert handle.trimmed and not handle.active and handle.wait(0)


def test_listener_polls_read_without_preempting_and_repair_only_what_stays_half_written() -> None:
    cluster = _cluster(seed=5)
    ws = cluster.client()
    seg = ws.alloc(b"m")
    b = Ballot(40, 998)
    cluster.storages[0].apply(Persist(puts=(((seg, 3), RegState(promised=b, accepted=b, value=b"half")),)))
    cluster.crash(2)  # every read quorum holds acceptor 0, which has the only vote
    cluster.net.trace = []
    got: list[tuple[int, bytes]] = []
    handle = ws.listen(seg, lambda off, data: got.append((off, data)), interval=0.05)
    cluster.net.run_until(lambda: handle.polls >= 1)
    assert got == [] and handle.suspects == frozenset({3})
    assert not any("Prepare(" in line for line in cluster.net.trace)  # the first poll only read
    cluster.net.run_until(lambda: bool(got))
    assert got == [(3, b"half")]  # the second poll completed the writer's half-written register
    handle.cancel()
    cluster.run()
    assert cluster.chosen()[(seg, 3)] == b"half"


def test_listener_on_an_unallocated_segment_sees_its_first_writes() -> None:
    cluster = _cluster(seed=6)
    a, b = cluster.client(), cluster.client()
    got: list[tuple[int, bytes]] = []
    handle = b.listen(7, lambda off, data: got.append((off, data)), start=1, end=3, interval=0.05)
    assert a.alloc(b"m", segment=7) is True
    a.batch_write(7, {0: b"outside", 1: b"in", 2: b"in too"}, a.batch_capture(7))
    cluster.run()  # the listener stops by itself: every offset of its range was delivered
    assert got == [(1, b"in"), (2, b"in too")] and handle.complete


def test_cancelled_listener_delivers_nothing_more() -> None:
    cluster = _cluster(seed=7)
    a = cluster.client()
    seg = a.alloc(b"m")
    got: list[tuple[int, bytes]] = []
    handle = a.listen(seg, lambda off, data: got.append((off, data)), interval=0.05)
    handle.cancel()
    a.batch_write(seg, {0: b"x"}, a.batch_capture(seg))
    cluster.run()
    assert got == [] and handle.cancelled and not handle.active


def test_listener_callback_failure_stops_it_and_is_kept() -> None:
    cluster = _cluster(seed=8)
    a = cluster.client()
    seg = a.alloc(b"m")

    def boom(off: int, data: bytes) -> None:
        raise RuntimeError("callback failed")

    handle = a.listen(seg, boom, interval=0.05)
    a.batch_write(seg, {0: b"x", 1: b"y"}, a.batch_capture(seg))
    cluster.run()
    assert isinstance(handle.error, RuntimeError) and handle.delivered == {0}


def test_listener_survives_message_loss() -> None:
    cluster = _cluster(seed=9, faults=Faults(drop=0.3, duplicate=0.2))
    a, b = cluster.client(), cluster.client()
    seg = a.alloc(b"m")
    got: list[tuple[int, bytes]] = []
    b.listen(seg, lambda off, data: got.append((off, data)), end=4, interval=0.05)
    cap = a.batch_capture(seg)
    results = a.batch_write(seg, {i: b"%d" % i for i in range(4)}, cap)
    cluster.run()
    written = {i for i, e in results.items() if e is None}
    assert {off for off, _ in got} >= written
    assert len(got) == len({off for off, _ in got})
    assert all(cluster.chosen()[(seg, off)] == data for off, data in got)


def test_unallocated_read_and_capture() -> None:
    cluster = _cluster()
    a = cluster.client()
    with pytest.raises(Unallocated):
        _run(a, _seg(a).read(3, (0,)))
    with pytest.raises(Unallocated):
        _run(a, _seg(a).capture(3, 0, 1))
    assert _run(a, _seg(a).metadata(3)) is None
    assert isinstance(CaptureId(segment=0, start=0, end=1, ballot=Ballot(1, 1)).sent, dict)


# ---- bounded client memory (Rule 8) -----------------------------------------------------------------------


def test_lru_cache_forgets_the_least_recently_used() -> None:
    cache = LruCache(2)
    cache[1] = b"a"
    cache[2] = b"b"
    assert cache.get(1) == b"a"  # a use: 2 is now the least recently used
    cache[3] = b"c"
    assert 2 not in cache and 1 in cache and 3 in cache and len(cache) == 2
    members = LruSet(2)
    for seg in (1, 2, 3):
        members.add(seg)
    assert sorted(members) == [2, 3] and len(members) == 2
    with pytest.raises(UsageError):
        LruCache(0)
    logic = SegmentLogic(wos_size=WOS)
    assert logic.meta_cache.capacity == logic.trimmed.capacity == CACHE_SEGMENTS


def test_a_long_lived_client_keeps_bounded_state_and_forgetting_changes_no_result() -> None:
    """A log-appender-like client allocates, writes and trims many segments: what it remembers stays within
    the caches' capacity, and answers about segments it has forgotten are the same, at one more round trip."""
    cluster = _cluster()
    ws = cluster.client()
    seg_logic = _seg(ws)
    seg_logic.meta_cache = LruCache(4)
    seg_logic.trimmed = LruSet(4)
    written: dict[int, bytes] = {}
    trimmed: list[int] = []
    for n in range(40):
        seg = ws.alloc(b"log")
        addr = ws.address(seg, 0)
        ws.write(addr, b"%d" % n, ws.capture(addr))
        written[seg] = b"%d" % n
        if n % 2:
            ws.trim(seg)
            trimmed.append(seg)
        assert len(seg_logic.meta_cache) <= 4 and len(seg_logic.trimmed) <= 4
    assert len(written) == 40
    oldest = min(written)
    assert oldest not in seg_logic.meta_cache
    sent = cluster.net.stats["sent"]
    assert ws.read(ws.address(oldest, 0)) == written[oldest]  # forgotten: METADATA is read again
    forgotten_cost = cluster.net.stats["sent"] - sent
    sent = cluster.net.stats["sent"]
    assert ws.read(ws.address(oldest, 0)) == written[oldest]  # remembered again
    assert cluster.net.stats["sent"] - sent < forgotten_cost
    first_trimmed = trimmed[0]
    assert first_trimmed not in seg_logic.trimmed
    for call in (lambda: ws.read(ws.address(first_trimmed, 0)), lambda: ws.capture(ws.address(first_trimmed, 1))):
        with pytest.raises(Trimmed) as caught:
            call()
        assert not isinstance(caught.value, Indeterminate)
    assert ws.alloc(b"again", segment=oldest) is False  # allocated long ago, forgotten: still lost
    with pytest.raises(Trimmed):
        ws.alloc(b"again", segment=trimmed[1])
    assert len(seg_logic.meta_cache) <= 4 and len(seg_logic.trimmed) <= 4
