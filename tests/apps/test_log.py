"""WormLog: unit behaviour, naming, holes and junk, takeover, trim, and concurrent appenders under faults."""

from __future__ import annotations

from typing import Any

import pytest

from wormspace import Cluster, Trimmed, Unallocated, UsageError
from wormspace.apps import WormLog
from wormspace.apps.log import JUNK, LogCore, LogSpec, app_metadata, slot

from .helpers import log_problems, log_scenario


def test_appends_get_consecutive_positions_and_read_back() -> None:
    c = Cluster.simulated(acceptors=3, seed=1, wos_size=8)
    log = WormLog(c.client(), name=b"orders")
    assert [log.append(b"x%d" % i) for i in range(12)] == list(range(12))
    assert log.tail() == 12
    assert log.read(9) == b"x9"
    assert list(log.entries(10)) == [(10, b"x10"), (11, b"x11")]


def test_every_append_is_one_write_once_its_segment_is_captured() -> None:
    c = Cluster.simulated(acceptors=3, seed=1, wos_size=64)
    ws = c.client()
    log = WormLog(ws, name=b"n")
    log.append(b"first")
    before = len(c.history())
    for i in range(10):
        log.append(b"%d" % i)
    fs = [e.f for e in list(c.history())[before:] if e.type == "invoke"]
    assert fs == ["write"] * 10


def test_names_map_to_disjoint_segments_whose_metadata_names_the_log() -> None:
    c = Cluster.simulated(acceptors=3, seed=1, wos_size=8)
    ws = c.client()
    a, b = WormLog(ws, name=b"a"), WormLog(ws, name=b"b")
    a.append(b"in a")
    b.append(b"in b")
    assert a.read(0) == b"in a" and b.read(0) == b"in b"
    seg = slot(b"log", b"a", 0, 0)
    assert ws.check(seg) == app_metadata(b"log", b"a", 0)
    assert slot(b"log", b"a", 0, 0) != slot(b"log", b"b", 0, 0) != slot(b"smr", b"a", 0, 0)


def test_a_foreign_segment_in_a_slot_is_skipped_not_read() -> None:
    c = Cluster.simulated(acceptors=3, seed=1, wos_size=8)
    ws = c.client()
    squatter = slot(b"log", b"x", 0, 0)
    assert ws.alloc(b"plain user", segment=squatter)
    cap = ws.batch_capture(squatter)
    ws.batch_write(squatter, {0: b"Dnot an entry"}, cap)
    log = WormLog(ws, name=b"x")
    assert log.append(b"real") == 0
    assert log.read(0) == b"real"
    assert ws.check(slot(b"log", b"x", 0, 1)) == app_metadata(b"log", b"x", 0)


def test_a_reader_fills_a_hole_with_junk_and_the_appender_moves_on() -> None:
    c = Cluster.simulated(acceptors=3, seed=2, wos_size=8)
    writer, reader = WormLog(c.client(), name=b"h"), WormLog(c.client(), name=b"h", hole_timeout=0.2)
    assert writer.append(b"a") == 0
    assert reader.read(1) is None  # nobody wrote position 1: after the timeout it is junk
    # position 1 was taken by junk: the writer fills the rest of its segment and wins the next one
    assert writer.append(b"b") == 8
    assert [v for _, v in reader.entries()] == [b"a", *[None] * 7, b"b"]


def test_junk_is_distinguishable_from_any_payload() -> None:
    c = Cluster.simulated(acceptors=3, seed=3, wos_size=8)
    log = WormLog(c.client(), name=b"j")
    for data in (b"", JUNK, b"J", b"D"):
        assert log.read(log.append(data)) == data


def test_a_second_appender_takes_the_next_segment_and_holes_are_filled() -> None:
    c = Cluster.simulated(acceptors=3, seed=4, wos_size=8)
    a, b = WormLog(c.client(), name=b"t"), WormLog(c.client(), name=b"t", hole_timeout=0.1)
    assert a.append(b"a0") == 0
    assert b.append(b"b0") == 8
    assert b.tail() == 9
    got = dict(b.entries())
    assert got[0] == b"a0" and got[8] == b"b0" and all(got[p] is None for p in range(1, 8))
    assert a.append(b"a1") == 16  # a's segment was filled: it wins a new one


def test_trim_frees_whole_segments_below_upto() -> None:
    c = Cluster.simulated(acceptors=3, seed=5, wos_size=4)
    log = WormLog(c.client(), name=b"tr")
    for i in range(10):
        log.append(b"%d" % i)
    assert log.trim(9) == 8
    with pytest.raises(Trimmed):
        log.read(7)
    assert log.read(8) == b"8"
    late = WormLog(c.client(), name=b"tr")
    assert late.tail() == 10 and late.append(b"x") == 12
    first_call_is_append = WormLog(c.client(), name=b"tr")  # a new client's first alloc meets trimmed index 0
    assert first_call_is_append.append(b"y") == 16
    with pytest.raises(UsageError):
        log.trim(100)


def test_reading_beyond_the_last_segment_and_bad_input() -> None:
    c = Cluster.simulated(acceptors=3, seed=6, wos_size=4)
    log = WormLog(c.client(), name=b"e")
    with pytest.raises(Unallocated):
        log.read(0)
    with pytest.raises(UsageError):
        log.append("text")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        WormLog(c.client(), name=b"")
    for timeout in (float("inf"), float("nan"), -1.0):  # an infinite wait is no timeout
        with pytest.raises(UsageError):
            WormLog(c.client(), name=b"e", hole_timeout=timeout)
    assert log.append(b"a") == 0
    with pytest.raises(Unallocated):
        log.read(4 << 64)  # index 2**64: no segment can be named for it
    assert list(log.entries(4 << 64)) == []
    assert log.read(0) == b"a"


def test_the_trusted_spec() -> None:
    spec = LogSpec({})
    assert spec.append(b"a", 0) and not spec.append(b"b", 0)
    assert spec.read(1) is None and not spec.append(b"c", 1)
    assert spec.tail_ok(2) and not spec.tail_ok(3)
    spec.trim(1)
    assert spec.read(0) == "Trimmed"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_concurrent_appenders_under_faults_never_share_a_position(seed: int) -> None:
    got, entries, events = log_scenario(seed)
    assert got and log_problems(got, entries) == []
    assert len([e for e in events if e["type"] == "ok" and e["f"] == "append"]) == len(got)


def _shared_core_appends(seed: int, policy: str, core_cls: type[LogCore] = LogCore) -> tuple[
        LogCore, list[tuple[int, bytes]], dict[int, bytes | None]]:
    """Eight processes of one client node append through one core (many appends in flight, Rule 7)."""
    from collections.abc import Generator

    from wormspace import Faults
    from wormspace.client import OperationFailed, SpaceLogic

    c = Cluster.simulated(acceptors=3, seed=seed, wos_size=16, faults=Faults(drop=0.03, duplicate=0.03))
    core = core_cls(b"pf", policy=policy, hole_timeout=0.2)
    got: list[tuple[int, bytes]] = []

    def run(k: int) -> Any:
        def gen(logic: SpaceLogic) -> Generator[Any, Any, None]:
            for i in range(12):
                data = b"p%d-%d" % (k, i)
                try:
                    pos = yield from core.append(logic, data)
                except OperationFailed:
                    continue
                got.append((pos, data))
        return gen

    first = c.spawn(run(0))
    for k in range(1, 8):
        c.spawn(run(k), node_of=first)
    c.run()
    assert not c.failures
    entries = dict(WormLog(c.client(), name=b"pf", hole_timeout=0.2).entries())
    return core, got, entries


class _Counting(LogCore):
    prefetches = 0

    def _prefetch(self, logic: Any, index: int) -> Any:
        type(self).prefetches += 1
        return (yield from super()._prefetch(logic, index))


@pytest.mark.parametrize(("seed", "policy"), [(1, "alloc"), (2, "alloc"), (3, "sticky"), (4, "sticky")])
def test_many_appends_in_flight_prefetch_the_next_segment_and_never_share_a_position(seed: int,
                                                                                     policy: str) -> None:
    _Counting.prefetches = 0
    _, got, entries = _shared_core_appends(seed, policy, _Counting)
    assert _Counting.prefetches > 0  # Rule 7 was exercised
    assert len(got) > 48 and log_problems(got, entries) == []


def test_one_append_at_a_time_never_prefetches() -> None:
    _Counting.prefetches = 0
    c = Cluster.simulated(acceptors=3, seed=1, wos_size=4)
    log = WormLog(c.client(), name=b"one")
    log.core = _Counting(b"one")
    assert [log.append(b"x") for _ in range(10)] == list(range(10))
    assert _Counting.prefetches == 0


def test_a_prefetch_that_numbers_positions_wrongly_is_caught() -> None:
    class Broken(LogCore):  # planted bug: the prefetched segment's positions are numbered as the one before
        def _prefetch(self, logic: Any, index: int) -> Any:
            yield from super()._prefetch(logic, index)
            if self.next is not None:
                self.next = (self.next[0] - 1, *self.next[1:])

    found = []
    for seed in (1, 2, 3):
        _, got, entries = _shared_core_appends(seed, "alloc", Broken)
        found += log_problems(got, entries)
    assert found


def test_a_failed_prefetch_fails_no_append() -> None:
    from wormspace import Indeterminate

    class FlakyPrefetch(_Counting):  # every prefetch's alloc ends Indeterminate (a slow quorum, say)
        def _segment(self, logic: Any) -> Any:
            if self.own is not None:
                yield from logic.sleep(0.001)
                raise Indeterminate("planted: no quorum in time")
            return (yield from super()._segment(logic))

    core, got, entries = _shared_core_appends(5, "alloc", FlakyPrefetch)
    assert FlakyPrefetch.prefetches > 0 and core._no_prefetch >= 0
    assert len(got) == 8 * 12 and log_problems(got, entries) == []


def test_trim_answers_the_trim_point_and_trimmed_errors_name_the_position() -> None:
    c = Cluster.simulated(acceptors=3, seed=8, wos_size=4)
    log = WormLog(c.client(), name=b"tp")
    for i in range(10):
        log.append(b"%d" % i)
    assert log.trim(9) == 8
    assert WormLog(c.client(), name=b"tp").trim(0) == 8  # a fresh client: the log's trim point, not 0
    assert log.trim(4) == 8
    with pytest.raises(Trimmed, match=r"position 3 of log b'tp' is trimmed: the trim point is at least 4"):
        WormLog(c.client(), name=b"tp").read(3)  # not the segment's internal id
    fresh = WormLog(c.client(), name=b"tp")
    with pytest.raises(Trimmed, match=r"position 0 of log b'tp' is trimmed"):
        list(fresh.entries())
    assert [p for p, _ in fresh.entries(8)] == [8, 9]
    for bad in (-1, "8", 1.0, True):
        with pytest.raises(UsageError, match="a position is a non-negative int"):
            list(fresh.entries(bad))  # type: ignore[arg-type]

    async def aio_entries() -> None:
        with pytest.raises(UsageError, match="a position is a non-negative int"):
            async for _ in fresh.aio.entries(-1):
                pass

    import asyncio

    asyncio.run(aio_entries())


def test_a_position_beyond_any_index_a_log_can_name_is_beyond_its_last_segment() -> None:
    c = Cluster.simulated(acceptors=3, seed=9, wos_size=4)
    log = WormLog(c.client(), name=b"far")
    log.append(b"a")
    far = (1 << 64) * 4 + 1  # index 2**64: its slot cannot be named (8 bytes), so it never exists
    with pytest.raises(Unallocated, match="beyond its last segment"):
        log.read(far)
    assert list(log.entries(far)) == []


def test_a_poll_pause_backs_off_from_half_a_millisecond_to_eight() -> None:
    """``pause`` (a core waiting for another call of its client) sleeps 0.5 ms, doubling per wait, never
    more than 8 ms."""
    from wormspace.apps.log import pause
    from wormspace.layers.wormspace import Sleep, SpaceLogic

    def slept(waits: int) -> float:
        steps = list(pause(SpaceLogic(wos_size=8, seed=1), waits))
        assert len(steps) == 1 and isinstance(steps[0], Sleep)
        return steps[0].seconds

    assert [slept(w) for w in (0, 1, 2, 3, 4)] == [0.0005, 0.001, 0.002, 0.004, 0.008]
    assert slept(5) == slept(60) == 0.008


def test_trim_refuses_an_upto_that_is_not_a_position() -> None:
    c = Cluster.simulated(acceptors=3, seed=9, wos_size=4)
    log = WormLog(c.client(), name=b"tu")
    for i in range(6):
        log.append(b"%d" % i)
    for bad in (-1, -4, "4", 4.0, True):
        with pytest.raises(UsageError, match="upto is a non-negative int"):
            log.trim(bad)  # type: ignore[arg-type]
    assert log.trim(4) == 4
