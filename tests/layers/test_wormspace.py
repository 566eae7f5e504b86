"""The WormSpace layer: its spec, its abstraction function and the client API on a simulated cluster."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from wormspace import (
    EMPTY,
    AlreadyWritten,
    CaptureId,
    CaptureStale,
    Cluster,
    Trimmed,
    Unallocated,
    UsageError,
)
from wormspace.cluster import SimClient, SimCluster
from wormspace.history import History
from wormspace.layers.messages import MAX_VALUE, META, TRIM, Ballot
from wormspace.layers.wor import OpRequest, Outcome
from wormspace.layers.wormspace import SpaceLogic, WormSpace, WormSpaceSpec, abstract_space, outcome_name
from wormspace.layers.wos import META_OVERHEAD, TRIM_VALUE, TrimmedInFlight, WosSpec, encode_meta
from wormspace.refinement.linearizability import OK, check_history
from wormspace.refinement.models import SegmentModel

WOS = 8


@pytest.fixture
def cluster() -> SimCluster:
    return Cluster.simulated(acceptors=3, seed=11, wos_size=WOS)


@pytest.fixture
def ws(cluster: SimCluster) -> WormSpace:
    return cluster.client()


# ---- the spec and the abstraction -------------------------------------------------------------------------


def test_spec_addresses_split_into_independent_segments() -> None:
    spec = WormSpaceSpec(WOS)
    assert spec.split(2 * WOS + 3) == (2, 3)
    spec, won = spec.alloc(2, b"m")
    assert won is True and spec.check(2) == b"m" and spec.check(1) is None
    assert spec.read(2 * WOS) is EMPTY and spec.read(WOS) == "Unallocated"
    spec, r = spec.write(2 * WOS + 3, b"x")
    assert r is None and spec.read(2 * WOS + 3) == b"x"
    assert spec.capture(2 * WOS + 3) is None and spec.capture(0) == "Unallocated"
    spec, _ = spec.trim(2)
    assert spec.read(2 * WOS + 3) == "Trimmed" and spec.segment(2) == WosSpec(b"m", True, ())
    assert spec.segment(5) == WosSpec()


def test_spec_keeps_only_segments_that_differ_from_a_fresh_one() -> None:
    spec, _ = WormSpaceSpec(WOS).alloc(1, b"m")
    assert [s for s, _ in spec.segments] == [1]
    assert spec == WormSpaceSpec(WOS).with_segment(1, WosSpec(b"m"))
    assert hash(spec) == hash(WormSpaceSpec(WOS).with_segment(1, WosSpec(b"m")))


def test_abstraction_of_the_address_space() -> None:
    meta = encode_meta(bytes(16), b"m")
    chosen: dict[tuple[int, int], bytes | None] = {(0, META): meta, (0, 1): b"x", (1, TRIM): TRIM_VALUE, (2, 0): None}
    spec = abstract_space(chosen, WOS)
    assert spec.segment(0) == WosSpec(b"m", False, ((1, b"x"),))
    assert spec.segment(1).trimmed and spec.segment(2) == WosSpec()


def test_outcome_names_for_histories() -> None:
    assert outcome_name(None) == "ok"
    assert outcome_name(TrimmedInFlight("x")) == "Indeterminate"
    assert outcome_name(AlreadyWritten(b"x")) == "AlreadyWritten"
    assert outcome_name(Trimmed("x")) == "Trimmed"


# ---- usage errors ---------------------------------------------------------------------------------------


def test_usage_errors_are_raised_before_anything_is_sent(cluster: SimCluster, ws: WormSpace) -> None:
    seg = ws.alloc(b"m")
    cap = ws.batch_capture(seg, 0, 2)
    sent = cluster.net.stats["sent"]
    bad: list[Callable[[], Any]] = [
        lambda: ws.read(-1),
        lambda: ws.read(True),
        lambda: ws.read("0"),  # type: ignore[arg-type]
        lambda: ws.capture(-5),
        lambda: ws.address(-1, 0),
        lambda: ws.address(0, WOS),
        lambda: ws.address(0, -1),
        lambda: ws.write(ws.address(seg, 0), "text", cap),  # type: ignore[arg-type]
        lambda: ws.write(ws.address(seg, 0), bytearray(b"x"), cap),  # type: ignore[arg-type]
        lambda: ws.write(ws.address(seg, 0), b"x" * (MAX_VALUE + 1), cap),
        lambda: ws.write(ws.address(seg, 2), b"x", cap),  # the capture covers offsets 0..1 only
        lambda: ws.write(ws.address(seg + 1, 0), b"x", cap),  # another segment
        lambda: ws.write(ws.address(seg, 0), b"x", "not a capture"),  # type: ignore[arg-type]
        lambda: ws.batch_write(seg, {}, cap),
        lambda: ws.batch_write(seg, {WOS: b"x"}, cap),
        lambda: ws.batch_write(seg, {-1: b"x"}, cap),
        lambda: ws.batch_write(seg, {1: "x"}, cap),  # type: ignore[dict-item]
        lambda: ws.batch_write(seg, {0: b"x", 5: b"y"}, cap),
        lambda: ws.batch_capture(seg, 2, 2),
        lambda: ws.batch_capture(seg, 0, WOS + 1),
        lambda: ws.batch_capture(-1),
        lambda: ws.batch_read(seg, 3, 1),
        lambda: ws.alloc(b"m" * (MAX_VALUE - META_OVERHEAD + 1)),
        lambda: ws.alloc("m"),  # type: ignore[call-overload]
        lambda: ws.alloc(b"m", segment=-1),
        lambda: ws.trim(-1),
        lambda: ws.check(1.5),  # type: ignore[arg-type]
        lambda: ws.listen(seg, print, end=WOS + 1),
        lambda: ws.listen(seg, "not callable"),  # type: ignore[arg-type]
        lambda: ws.listen(seg, print, interval=0),
        lambda: ws.listen(seg, print, interval=True),
    ]
    for call in bad:
        with pytest.raises(UsageError):
            call()
    assert cluster.net.stats["sent"] == sent
    with pytest.raises(UsageError):
        SpaceLogic(wos_size=0)


def test_usage_errors_name_the_wrong_type_and_the_valid_range(ws: WormSpace) -> None:
    seg = ws.alloc(b"m")
    addr = ws.address(seg, 0)
    with pytest.raises(UsageError, match=r"^capture must be a CaptureId, got NoneType$"):
        ws.write(addr, b"x", None)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"^capture must be a CaptureId, got str$"):
        ws.batch_write(seg, {0: b"x"}, "cap")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=rf"^offset {WOS} is not in the segment: valid offsets are 0\.\.{WOS - 1}$"):
        ws.address(seg, WOS)
    with pytest.raises(UsageError, match=rf"^offset -1 is not in the segment: valid offsets are 0\.\.{WOS - 1}$"):
        ws.batch_write(seg, {-1: b"x"}, ws.batch_capture(seg))


def test_a_second_value_through_one_capture_is_a_usage_error(ws: WormSpace) -> None:
    seg = ws.alloc(b"m")
    addr = ws.address(seg, 0)
    cap = ws.capture(addr)
    ws.write(addr, b"x", cap)
    ws.write(addr, b"x", cap)  # the same value again is fine
    with pytest.raises(UsageError):
        ws.write(addr, b"y", cap)
    with pytest.raises(AlreadyWritten) as caught:
        ws.write(addr, b"y", ws.capture(addr))
    assert caught.value.data == b"x"


# ---- semantics ------------------------------------------------------------------------------------------


def test_unallocated_addresses(ws: WormSpace) -> None:
    with pytest.raises(Unallocated):
        ws.read(ws.address(4, 0))
    with pytest.raises(Unallocated):
        ws.capture(ws.address(4, 1))
    with pytest.raises(Unallocated):
        ws.batch_capture(4)
    with pytest.raises(Unallocated):
        ws.batch_read(4)
    assert ws.check(4) is None


def test_write_once_per_address(cluster: SimCluster, ws: WormSpace) -> None:
    other = cluster.client()
    seg = ws.alloc(b"m")
    addr = ws.address(seg, 3)
    assert ws.read(addr) is EMPTY
    ws.write(addr, b"x", ws.capture(addr))
    assert other.read(addr) == b"x"
    with pytest.raises(AlreadyWritten) as caught:
        other.write(addr, b"y", other.capture(addr))
    assert caught.value.data == b"x"
    other.write(addr, b"x", other.capture(addr))  # the same data again: ok


def test_a_preempted_capture_is_stale(cluster: SimCluster, ws: WormSpace) -> None:
    other = cluster.client()
    seg = ws.alloc(b"m")
    addr = ws.address(seg, 0)
    mine = ws.capture(addr)
    other.capture(addr)
    with pytest.raises(CaptureStale):
        ws.write(addr, b"x", mine)
    assert ws.read(addr) is EMPTY


def test_every_operation_answers_trimmed_after_a_trim_from_another_client(cluster: SimCluster, ws: WormSpace) -> None:
    other = cluster.client()
    seg = ws.alloc(b"m")
    cap = ws.batch_capture(seg)
    ws.batch_write(seg, {0: b"x"}, cap)
    assert other.read(ws.address(seg, 0)) == b"x"
    other.trim(seg)
    other.trim(seg)  # idempotent
    for call in (
        lambda: ws.read(ws.address(seg, 0)),
        lambda: ws.capture(ws.address(seg, 1)),
        lambda: ws.batch_capture(seg),
        lambda: ws.write(ws.address(seg, 1), b"y", cap),
        lambda: ws.write(ws.address(seg, 0), b"x", cap),
        lambda: ws.batch_read(seg),
        lambda: ws.check(seg),
        lambda: ws.alloc(b"n", segment=seg),
    ):
        with pytest.raises(Trimmed):
            call()
    results = ws.batch_write(seg, {2: b"z"}, cap)
    assert isinstance(results[2], Trimmed)


def test_alloc_picks_free_segments_and_alloc_segment_reports_the_winner(cluster: SimCluster, ws: WormSpace) -> None:
    other = cluster.client()
    assert ws.alloc(b"a") == 0
    assert other.alloc(b"b") == 1  # 0 is taken: the probe moves on
    assert ws.alloc(b"c") == 2
    assert other.alloc(b"d", segment=0) is False
    assert other.alloc(b"d", segment=9) is True
    assert other.check(9) == b"d" and ws.check(0) == b"a"
    ws.trim(3)  # a trimmed segment is skipped too
    assert ws.alloc(b"e") == 4
    assert other.alloc(b"f") == 10  # probes start above the highest segment this client has seen


def test_batch_read_reads_a_range(ws: WormSpace) -> None:
    seg = ws.alloc(b"m")
    ws.batch_write(seg, {1: b"a", 3: b"b"}, ws.batch_capture(seg))
    assert ws.batch_read(seg, 0, 4) == {0: EMPTY, 1: b"a", 2: EMPTY, 3: b"b"}
    assert len(ws.batch_read(seg)) == WOS


def test_segments_spread_over_groups() -> None:
    cluster = Cluster.simulated(acceptors=6, groups=2, seed=2, wos_size=WOS)
    ws = cluster.client()
    segs = [ws.alloc(b"m") for _ in range(4)]
    assert segs == [0, 1, 2, 3]
    for s in segs:
        ws.batch_write(s, {0: b"%d" % s}, ws.batch_capture(s, 0, 1))
    cluster.run()
    for i, storage in enumerate(cluster.storages):
        held = {s for (s, _), _ in storage.items()}
        assert held == {s for s in segs if s % 2 == i // 3}
    assert [ws.read(ws.address(s, 0)) for s in segs] == [b"0", b"1", b"2", b"3"]


def test_history_records_batches_and_checks_linearizable(cluster: SimCluster, ws: WormSpace) -> None:
    other = cluster.client()
    seg = ws.alloc(b"m")
    assert other.alloc(b"n", segment=seg) is False
    cap = ws.batch_capture(seg, 0, 3)
    other.write(other.address(seg, 1), b"theirs", other.capture(other.address(seg, 1)))
    results = ws.batch_write(seg, {0: b"a", 1: b"b", 2: b"c"}, cap)
    assert results[0] is None and isinstance(results[1], CaptureStale | AlreadyWritten)
    ws.read(ws.address(seg, 0))
    other.trim(seg)
    with pytest.raises(Trimmed):
        ws.read(ws.address(seg, 0))
    history = cluster.history()
    again = History.from_jsonl(history.to_jsonl())  # the export is valid
    assert again == history
    batch = [e for e in history if e.f == "batch_write" and e.type != "invoke"]
    assert batch[0].type == "info" and batch[0].results is not None and batch[0].results[0] == "ok"  # partly applied
    assert check_history(history, SegmentModel(wos_size=WOS)).verdict == OK


# ---- listen -----------------------------------------------------------------------------------------------


def test_listen_with_the_simulator_runs_on_virtual_time(cluster: SimCluster, ws: WormSpace) -> None:
    seg = ws.alloc(b"m")
    got: list[tuple[int, bytes, float]] = []
    handle = cluster.client().listen(seg, lambda off, data: got.append((off, data, cluster.net.now)), interval=0.5)
    start = cluster.net.now
    ws.write(ws.address(seg, 4), b"x", ws.capture(ws.address(seg, 4)))
    cluster.net.run_until(lambda: bool(got))
    assert got[0][:2] == (4, b"x") and got[0][2] - start <= 0.5 + 0.1  # within a poll interval and a round trip
    handle.cancel()
    cluster.run()


class LockedDriver:
    """A blocking driver over a simulated client that may be called from several threads (one at a time):
    stands in for the TCP driver, whose ``execute`` is thread-safe."""

    def __init__(self, sim: SimClient, lock: threading.Lock) -> None:
        self.sim = sim
        self.lock = lock

    def execute(self, request: OpRequest) -> Outcome:
        with self.lock:
            return self.sim.execute(request)

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sim.sleep(seconds)


def test_listen_with_a_blocking_driver_polls_from_a_thread(cluster: SimCluster) -> None:
    lock = threading.Lock()
    writer = cluster.client()
    reader = cluster.client()
    assert isinstance(reader.driver, SimClient)
    threaded = WormSpace(reader.logic, LockedDriver(reader.driver, lock))
    with lock:
        seg = writer.alloc(b"m")
    got: list[tuple[int, bytes]] = []
    seen = threading.Event()

    def callback(off: int, data: bytes) -> None:
        assert threading.current_thread() is not threading.main_thread()
        got.append((off, data))
        seen.set()

    handle = threaded.listen(seg, callback, interval=0.001)
    with lock:
        writer.batch_write(seg, {0: b"a", 1: b"b"}, writer.batch_capture(seg))
    assert seen.wait(10)
    handle.cancel()
    assert handle.wait(10)
    assert sorted(got)[:2] == [(0, b"a"), (1, b"b")] and len(got) == len(set(got))


def test_capture_id_is_exported_and_comparable() -> None:
    a = CaptureId(segment=0, start=0, end=1, ballot=Ballot(1, 1))
    b = CaptureId(segment=0, start=0, end=1, ballot=Ballot(1, 1))
    a.sent[0] = b"x"
    assert a == b and hash(a) == hash(b)


def test_the_reference_page_example_runs() -> None:
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "layers" / "wormspace.md"
    (block,) = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
    exec(compile(block, str(page), "exec"), {})


def test_a_fresh_client_allocates_however_many_segments_are_taken(cluster: SimCluster, ws: WormSpace) -> None:
    """More than 256 segments taken (the old probe limit), some trimmed, one far above the rest: a fresh
    client still gets a free segment: 8 tries upward from its hint, then the gap its probes found."""
    taken = [ws.alloc(b"old") for _ in range(300)]
    assert taken == list(range(300))
    for s in (0, 150, 299):
        ws.trim(s)
    assert ws.alloc(b"far", segment=700) is True
    fresh = cluster.client()
    mark = len(cluster.history())
    got = fresh.alloc(b"new")
    assert isinstance(got, int) and got not in {*taken, 700}
    assert fresh.check(got) == b"new"
    allocs = [e for e in list(cluster.history())[mark:] if e.f == "alloc" and e.type == "invoke"]
    assert len(allocs) == 9  # 8 tries from its hint, segment 0 (trimmed), upward; then the free one probing found
    assert fresh.alloc(b"next") == got + 1
    with pytest.raises(Trimmed):
        fresh.check(0)
