"""WormLog: a Corfu-style shared log on WormSpace (and the segment chain WormPaxos is built on).

Trusted spec (``LogSpec``, below): an append-only map position -> entry, where an entry is data or JUNK.
``append(d)`` puts ``d`` at some position no other append got; ``read(p)`` answers the entry (None for
junk), or fills an empty ``p`` with JUNK; ``tail()`` is a position below which every position holds an
entry; ``trim(upto)`` makes reads below ``upto`` answer Trimmed.

Rule 1 (names). Any client opens a log by ``name``. Index ``i`` of the log (positions ``i*S .. i*S+S-1``,
        ``S = wos_size``) lives in the segment ``slot(kind, name, i, a)`` for the first probe ``a`` whose
        metadata is ``APP_MAGIC + kind + i + name`` (the first alloc of a slot wins: WOS Rule 1). Slots are
        a hash into ``[2**48, 2**49)``, above the segments plain clients allocate from 0; a slot holding
        anything else is skipped, so names never collide and foreign segments are never read as entries.
        Indices exist as a prefix: index ``i`` is allocated only after index ``i-1`` was seen allocated.
Rule 2 (frames). Every register holds a frame: ``b"D" + data`` or ``JUNK`` (``b"J"``), so junk is never
        mistaken for data.
Rule 3 (sequencer = winning the alloc). An appender that wins the alloc of the next index batch-captures
        that whole segment and hands out its offsets: an append is one write round trip. Several appenders
        each hold a segment; nobody waits for a sequencer, and the WOR decides every race.
Rule 4 (holes). A hole is an empty position below a written one. A reader waits ``hole_timeout`` for it,
        then fills it with JUNK (capture + write). An appender that meets junk, or a stale capture, at its
        position retries at its next one; after an indeterminate write it settles the position the same
        way (junk wins, or its own data was already chosen). So no position is lost or given twice.
Rule 5 (trim). ``trim(upto)`` trims every segment wholly below ``upto`` (``upto <= tail()``).
Rule 6 (other claim policies). ``sticky`` captures the rest of the tail's segment, taking over from
        whoever held it (a short-lived appender, e.g. the CLI, wastes no segment this way; WormPaxos' sticky
        leader); ``rotating`` writes in the segments ``i`` with ``i mod replicas == replica`` (WormPaxos).
Rule 7 (prefetch). An appender with many appends in flight gets its next segment (Rules 3, 6: the same
        alloc or locate, and the same batch capture) while its current one still has free offsets, once
        fewer are left than ``PREFETCH`` times its writes in flight; when the current segment is used up
        its appends go on in the prefetched one at once, instead of all waiting for one claim. An appender
        with one append at a time never prefetches (no segment is wasted by a short-lived appender).
        Under ``sticky`` the next segment is the one after ours (index + 1) and a takeover of ours
        drops the prefetched one, so the appender takes the tail again as Rule 6 says. A prefetch is
        optional: if it fails (an outcome such as ``Indeterminate``) it is logged and not tried again in
        that segment, and the append that needs a new segment claims it as in Rules 3 and 6.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from math import inf
from typing import Any, TypeVar

from wormspace.apps.faces import async_client, sync_client
from wormspace.apps.history import AppHistory, b64, recorded
from wormspace.client import (
    EMPTY,
    AlreadyWritten,
    CaptureId,
    CaptureStale,
    Indeterminate,
    OperationFailed,
    OpGen,
    SpaceLogic,
    Trimmed,
    Unallocated,
    UsageError,
)

T = TypeVar("T")
log = logging.getLogger("wormspace.apps.log")
APP_MAGIC = b"WSAPP1"
SLOT_BASE = 1 << 48
PROBES = 8
MAX_INDICES = 1 << 64  # a slot's metadata names its index in 8 bytes
DATA, JUNK = b"D", b"J"
POLICIES = ("alloc", "sticky", "rotating")
PREFETCH = 4  # Rule 7: prefetch once fewer free offsets are left than this many times the writes in flight


# ---- the trusted spec -----------------------------------------------------------------------------------


@dataclass
class LogSpec:
    """TRUSTED. The shared log, one operation at a time. ``entries[p]`` is bytes or None (junk). Positions
    are chosen by the implementation: ``append`` is legal iff its position is fresh. ``trim(upto)`` takes
    effect one segment at a time, in increasing order (each step is one ``trim`` of a segment's end)."""

    entries: dict[int, bytes | None]
    trimmed_below: int = 0

    def append(self, data: bytes, position: int) -> bool:
        if position < self.trimmed_below or position in self.entries:
            return False
        self.entries[position] = data
        return True

    def read(self, position: int) -> bytes | str | None:
        if position < self.trimmed_below:
            return "Trimmed"
        return self.entries.setdefault(position, None)

    def tail_ok(self, tail: int) -> bool:
        return all(p in self.entries for p in range(self.trimmed_below, tail))

    def trim(self, upto: int) -> None:
        self.trimmed_below = max(self.trimmed_below, upto)


# ---- the implementation ---------------------------------------------------------------------------------


def app_metadata(kind: bytes, name: bytes, index: int) -> bytes:
    return APP_MAGIC + bytes([len(kind)]) + kind + index.to_bytes(8, "big") + name


def slot(kind: bytes, name: bytes, index: int, attempt: int) -> int:
    h = hashlib.blake2b(app_metadata(kind, name, index) + bytes([attempt]), digest_size=6).digest()
    return SLOT_BASE + int.from_bytes(h, "big")


def pause(logic: SpaceLogic, waits: int) -> OpGen[None]:
    """Wait for another call of this client (a poll: the cores have no events), backing off to 8 ms."""
    yield from logic.sleep(0.0005 * 2 ** min(waits, 4))  # waits grows without bound while a claim is slow


def check_name(name: object) -> bytes:
    if type(name) is not bytes or not 1 <= len(name) <= 256:
        raise UsageError(f"an app name is 1 to 256 bytes, got {name!r}")
    return name


class LogCore:
    """The generator core of a WormLog (one per client process): ``append``, ``read``, ``tail``, ``scan``,
    ``trim``, each a generator over ``SpaceLogic``. Run with ``ws.run(core.append(ws.logic, b"x"))`` or
    ``cluster.spawn(lambda logic: core.append(logic, b"x"))``."""

    def __init__(self, name: bytes = b"log", *, kind: bytes = b"log", policy: str = "alloc",
                 replica: int = 0, replicas: int = 1, hole_timeout: float = 0.5,
                 history: AppHistory | None = None) -> None:
        for arg, value in (("replica", replica), ("replicas", replicas)):
            if type(value) is not int:
                raise UsageError(f"{arg} is an int, got {value!r}")
        if policy not in POLICIES or not 0 <= replica < replicas:
            raise UsageError(f"policy is one of {POLICIES} and 0 <= replica < replicas")
        if isinstance(hole_timeout, bool) or not isinstance(hole_timeout, (int, float)) or not 0 <= hole_timeout < inf:
            raise UsageError(f"hole_timeout is a finite non-negative number of seconds, got {hole_timeout!r}")
        self.name, self.kind, self.policy = check_name(name), kind, policy
        self.replica, self.replicas, self.hole_timeout = replica, replicas, float(hole_timeout)
        self.history = history
        self.segs: dict[int, int] = {}  # index -> segment (located)
        self.count = 0  # indices 0 .. count-1 are known to exist (allocated or trimmed)
        self.trimmed_idx = 0  # indices below are known trimmed
        self.own: tuple[int, CaptureId] | None = None  # (index, capture) this client writes through
        self.next_off = 0
        self.next: tuple[int, CaptureId, int] | None = None  # Rule 7: (index, capture, start) prefetched
        self._known: tuple[CaptureId | None, dict[int, bytes]] = (None, {})  # own's capture's known offsets
        self._no_prefetch = -1  # Rule 7: the index whose prefetch failed (no second try while in it)
        self.filled = 0  # every position below holds an entry
        self.pending: set[int] = set()  # positions of this client's writes in flight
        self.claiming = False  # a call of this client is getting a segment

    # -- naming (Rule 1) -----------------------------------------------------------------------------

    def locate(self, logic: SpaceLogic, index: int, create: bool = False,
               fresh: bool = False) -> OpGen[tuple[int | None, bool]]:
        """-> (segment of ``index`` or None if it does not exist, whether this call allocated it).
        Raises Trimmed for a trimmed index. ``fresh`` (with ``create``: the index is expected not to exist)
        tries the alloc of the first probe at once, without checking the slot first: a lost alloc checks it."""
        if index < self.trimmed_idx:
            raise Trimmed(f"index {index} of log {self.name!r} is trimmed")
        if index >= MAX_INDICES:  # beyond any index a log can name (Rule 1: 8 bytes): it never exists
            if create:
                raise UsageError(f"index {index} of log {self.name!r} is beyond the last ({MAX_INDICES - 1})")
            return None, False
        if index in self.segs:
            return self.segs[index], False
        if index >= 1 << 64:  # app_metadata names an index in 8 bytes: no larger index exists
            return None, False
        want = app_metadata(self.kind, self.name, index)
        attempt = 0
        while attempt < PROBES:
            seg = slot(self.kind, self.name, index, attempt)
            if fresh and create and attempt == 0:
                fresh, meta = False, None
            else:
                meta = yield from self._check(logic, seg)
            won = False
            if meta is None:
                if not create:
                    return None, False
                try:
                    won = yield from logic.alloc(seg, want)
                except CaptureStale:
                    continue
                if not won:
                    meta = yield from self._check(logic, seg)
            if won or meta == want:
                self.segs[index] = seg
                self.count = max(self.count, index + 1)
                return seg, won
            attempt += 1
        raise Indeterminate(f"no free slot for index {index} of log {self.name!r} in {PROBES} probes")

    @staticmethod
    def _retry(logic: SpaceLogic, op: Callable[..., OpGen[T]], *args: Any) -> OpGen[T]:
        """Run ``op(*args)``, an operation that is safe to repeat (check, capture, read, fill), again with a
        per-process backoff while it ends ``Indeterminate`` (contention, a slow quorum), five times at most."""
        for attempt in range(5):
            try:
                return (yield from op(*args))
            except Indeterminate as e:
                if attempt == 4 or isinstance(e, Trimmed):
                    raise
                yield from logic.sleep(0.005 * (1 + logic.process % 7) * (attempt + 1))
        raise AssertionError("unreachable")

    def _check(self, logic: SpaceLogic, seg: int) -> OpGen[bytes | None]:
        return (yield from self._retry(logic, logic.check, seg))

    def _exists(self, logic: SpaceLogic, index: int) -> OpGen[bool]:
        try:
            seg, _ = yield from self.locate(logic, index)
        except Trimmed:
            return True
        return seg is not None

    def end(self, logic: SpaceLogic) -> OpGen[int]:
        """The number of indices that exist (gallop, then bisect: indices exist as a prefix)."""
        lo = self.count - 1
        step = 1
        hi = lo + step
        while (yield from self._exists(logic, hi)):
            lo, step = hi, step * 2
            hi = lo + step
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if (yield from self._exists(logic, mid)):
                lo = mid
            else:
                hi = mid
        self.count = max(self.count, hi)
        return hi

    # -- claiming positions (Rule 3) -----------------------------------------------------------------

    def _claim(self, logic: SpaceLogic) -> OpGen[tuple[int, int, CaptureId]]:
        size = logic.wos_size
        for waits in itertools.count():
            if self.own is not None:
                index, cap = self.own
                if self._known[0] is not cap:
                    self._known = (cap, dict(cap.known))
                known = self._known[1]
                while self.next_off < size and self.next_off in known:
                    self.next_off += 1
                if self.next_off < size:
                    if self._should_prefetch(index, size):  # Rule 7: before taking an offset, so nobody waits on us
                        yield from self._prefetch(logic, index)
                        continue
                    self.next_off += 1
                    return index, self.next_off - 1, cap
                self.own = None
            if self.next is not None:  # Rule 7: go on in the prefetched segment
                index, cap, start = self.next
                self.next = None
                self.own, self.next_off = (index, cap), start
                continue
            if self.claiming:  # another call of this client is getting a segment: use it when it has one
                yield from pause(logic, waits)
                continue
            self.claiming = True
            try:
                yield from self._take(logic)
            finally:
                self.claiming = False
        raise AssertionError("unreachable")

    def _should_prefetch(self, index: int, size: int) -> bool:
        return (self.next is None and not self.claiming and self.policy != "rotating" and len(self.pending) > 1
                and size - self.next_off < PREFETCH * len(self.pending) and index != self._no_prefetch)

    def _prefetch(self, logic: SpaceLogic, index: int) -> OpGen[None]:
        """Rule 7: get and capture the segment after ``index`` into ``next``."""
        self.claiming = True
        try:
            if self.policy == "alloc":
                got = yield from self._segment(logic)
            else:  # sticky: the segment after ours, from its start
                seg, _ = yield from self.locate(logic, index + 1, create=True)
                assert seg is not None
                cap = yield from self._retry(logic, logic.batch_capture, seg, 0)
                got = (index + 1, cap, 0)
            if self.policy == "alloc" or (self.own is not None and self.own[0] == index):
                self.next = got  # (sticky: ours was taken over meanwhile, so take the tail again instead)
        except OperationFailed as e:  # a prefetch is optional: the append that needs a segment claims it
            self._no_prefetch = index
            log.info("log %r: prefetch after index %d failed (%s); claiming when needed", self.name, index, e)
        finally:
            self.claiming = False

    def _segment(self, logic: SpaceLogic) -> OpGen[tuple[int, CaptureId, int]]:
        """Rule 3: win the alloc of the next index and capture the whole segment -> (index, capture, 0). The
        first try is the index after the last one known to exist, allocated without a check (it holds
        whenever this client made the last segment; if it does not, the lost alloc costs one round)."""
        fresh = True
        while True:
            if fresh:
                fresh, index = False, self.count
                try:
                    seg, won = yield from self.locate(logic, index, create=True, fresh=True)
                except Trimmed:  # a client new to a trimmed log: find the end as usual
                    continue
            else:
                index = yield from self.end(logic)
                seg, won = yield from self.locate(logic, index, create=True)
            if won:
                assert seg is not None
                cap = yield from self._retry(logic, logic.batch_capture, seg, 0)
                return index, cap, 0

    def _take(self, logic: SpaceLogic) -> OpGen[None]:
        """Get a segment to write in (Rules 3, 6) and capture it: sets ``own`` and ``next_off``."""
        size = logic.wos_size
        if self.policy == "alloc":
            index, cap, start = yield from self._segment(logic)
            self.own, self.next_off = (index, cap), start
            return
        for waits in itertools.count():  # our writes in flight first: the tail must not pass them
            if not self.pending:
                break
            yield from pause(logic, waits)
        tail = yield from self._tail(logic)
        index, start = divmod(tail, size)
        while self.policy == "rotating" and index % self.replicas != self.replica:
            yield from self.locate(logic, index, create=True)
            index, start = index + 1, 0
        seg, _ = yield from self.locate(logic, index, create=True)
        assert seg is not None
        cap = yield from self._retry(logic, logic.batch_capture, seg, start)
        self.own, self.next_off = (index, cap), start

    def _offset(self, size: int) -> tuple[int, int, CaptureId] | None:
        """``_claim``'s common case without a generator frame: the next free offset of our segment, or None
        when ``_claim`` has more to do (no segment, the segment used up, a prefetch due: Rules 3, 7)."""
        own = self.own
        if own is None:
            return None
        index, cap = own
        if self._known[0] is not cap:
            return None
        known, off = self._known[1], self.next_off
        if off >= size or off in known or self._should_prefetch(index, size):
            return None
        self.next_off = off + 1
        return index, off, cap

    def _write(self, logic: SpaceLogic, frame: bytes) -> OpGen[int]:
        size = logic.wos_size
        while True:
            claimed = self._offset(size)
            if claimed is None:
                claimed = yield from self._claim(logic)
            index, off, cap = claimed
            pos = index * size + off
            self.pending.add(pos)
            try:
                yield from logic.write(cap.segment * size + off, frame, cap)
                return pos
            except (CaptureStale, AlreadyWritten):
                yield from self._release(logic, index)
            except Indeterminate as e:
                if isinstance(e, Trimmed):  # trimmed while our value was in flight: we cannot learn more
                    raise
                got = yield from self.fill(logic, index, [off])  # settle it: our data, or junk
                if got[off] == frame:
                    return pos
            except Trimmed:
                self.own = self.next = None
            finally:
                self.pending.discard(pos)

    def append(self, logic: SpaceLogic, data: bytes) -> OpGen[int]:
        """Append ``data``; -> its position (Rules 3, 4)."""
        if type(data) is not bytes:
            raise UsageError(f"data must be bytes, got {type(data).__name__}")
        if len(data) >= logic.max_value:  # Rule 2: the frame (one byte more) must fit one register
            raise UsageError(f"an entry is at most {logic.max_value - 1} bytes, got {len(data)}")
        if self.history is None:  # nothing to record: no wrapper on the hot path
            return (yield from self._write(logic, DATA + data))
        return (yield from recorded(self.history, logic.process, ("log", self.name, "append", None, b64(data)),
                                    self._write(logic, DATA + data), lambda p: ("ok", p, b64(data))))

    # -- reading and holes (Rule 4) ------------------------------------------------------------------

    def fill(self, logic: SpaceLogic, index: int, offsets: list[int]) -> OpGen[dict[int, bytes]]:
        """Get an entry chosen at each of ``offsets`` of ``index``: JUNK where still empty. -> the frames."""
        return (yield from self._retry(logic, self._fill, logic, index, offsets))

    def _fill(self, logic: SpaceLogic, index: int, offsets: list[int]) -> OpGen[dict[int, bytes]]:
        seg = self.segs[index]
        for attempt in range(8):
            cap = yield from logic.batch_capture(seg, min(offsets), max(offsets) + 1)
            known = dict(cap.known)
            got = {o: known[o] for o in offsets if o in known}
            todo = {o: JUNK for o in offsets if o not in known}
            if not todo:
                return got
            results = yield from logic.batch_write(seg, todo, cap)
            stale = False
            for o, err in results.items():
                if err is None:
                    got[o] = JUNK
                elif isinstance(err, AlreadyWritten):
                    got[o] = err.data
                elif isinstance(err, CaptureStale):
                    stale = True
                else:
                    raise err
            if not stale:
                return got
            offsets = [o for o in offsets if o not in got]
            yield from logic.sleep(0.01 * (attempt + 1))
        raise Indeterminate(f"could not settle offsets {offsets} of index {index}: contended")

    def _release(self, logic: SpaceLogic, index: int) -> OpGen[None]:
        """Our position was taken (junk, or another leader): stop writing in ``index``. Under ``alloc`` the
        rest of our segment is filled with JUNK at once, so readers need not wait for it."""
        if self.own is None or self.own[0] != index:
            return
        rest = list(range(self.next_off, self.own[1].end))
        self.own = None
        if self.policy == "sticky":
            self.next = None  # Rule 7: after a takeover, take the tail again (Rule 6)
        if self.policy == "alloc" and rest:
            yield from self.fill(logic, index, rest)

    def _mine(self, index: int) -> bool:
        if self.policy == "rotating":
            return index % self.replicas == self.replica
        return self.own is not None and self.own[0] == index

    def _holes(self, logic: SpaceLogic, index: int, holes: list[int]) -> OpGen[dict[int, bytes]]:
        """Wait for the holes of ``index`` to be written (Rule 4), then fill what is left."""
        seg, got = self.segs[index], dict[int, bytes]()
        if not (self._mine(index) and not self.pending):
            for _ in range(4):
                yield from logic.sleep(self.hole_timeout / 4)
                now = yield from self._retry(logic, logic.batch_read, seg, min(holes), max(holes) + 1)
                got.update((o, v) for o, v in now.items() if o in holes and isinstance(v, bytes))
                holes = [o for o in holes if o not in got]
                if not holes:
                    return got
        if self._mine(index) and self.policy != "rotating":
            self.own = None  # the rest of our segment is filled: stop writing there
        got.update((yield from self.fill(logic, index, holes)))
        return got

    def _read_seg(self, logic: SpaceLogic, index: int, start: int) -> OpGen[dict[int, Any] | None]:
        seg, _ = yield from self.locate(logic, index)
        if seg is None:
            return None
        return dict((yield from self._retry(logic, logic.batch_read, seg, start)))

    def scan(
        self, logic: SpaceLogic, start: int, max_segments: int = 1
    ) -> OpGen[tuple[list[tuple[int, bytes]], int, bool]]:
        """The frames from ``start`` on, over at most ``max_segments`` segments, holes filled.
        -> (list of (position, frame), where the next scan starts, True iff that is the tail)."""
        size = logic.wos_size
        index, off = divmod(start, size)
        out: list[tuple[int, bytes]] = []
        cur = yield from self._read_seg(logic, index, off)
        for _ in range(max_segments):
            if cur is None:
                return out, max(start, index * size), True
            written = [o for o, v in cur.items() if v is not EMPTY]
            top = max(written, default=off - 1) + 1
            nxt: dict[int, Any] | None = None
            if top < size:  # an empty suffix: holes iff something later is written
                j = index + 1
                while (later := (yield from self._read_seg(logic, j, 0))) is not None:
                    nxt = later if j == index + 1 else nxt
                    if any(v is not EMPTY for v in later.values()):
                        top = size
                        break
                    j += 1
            holes = [o for o, v in cur.items() if v is EMPTY and o < top]
            if holes:
                cur.update((yield from self._holes(logic, index, holes)))
            out.extend((index * size + o, cur[o]) for o in sorted(cur) if o < top)
            if top < size:
                self.filled = max(self.filled, index * size + top)
                return out, index * size + top, True
            self.filled = max(self.filled, (index + 1) * size)
            index, off = index + 1, 0
            cur = nxt if nxt is not None else (yield from self._read_seg(logic, index, 0))
        return out, index * size, cur is None

    def _trimmed_at(self, logic: SpaceLogic, position: int) -> Trimmed:
        """A scan or read from ``position`` met a trimmed index: its own index is trimmed too (Rule 5: trims
        go in increasing order). Learn it; -> the error to raise, naming the position and the trim point."""
        self.trimmed_idx = max(self.trimmed_idx, position // logic.wos_size + 1)
        return Trimmed(f"position {position} of log {self.name!r} is trimmed: the trim point is at least "
                       f"{self.trimmed_idx * logic.wos_size}")

    def _tail(self, logic: SpaceLogic) -> OpGen[int]:
        size = logic.wos_size
        while True:
            start = max(self.filled, self.trimmed_idx * size)
            try:
                _, nxt, done = yield from self.scan(logic, start, 4)
            except Trimmed:
                self._trimmed_at(logic, start)
                self.filled = max(self.filled, self.filled // size * size + size)
                continue
            if done:
                return nxt

    def tail(self, logic: SpaceLogic) -> OpGen[int]:
        """A position below which every position holds an entry (holes filled), above every append that
        completed before this call; the scan found no entry at or above it."""
        return (yield from recorded(self.history, logic.process, ("log", self.name, "tail", None, None),
                                    self._tail(logic), lambda t: ("ok", None, t)))

    def _read(self, logic: SpaceLogic, pos: int) -> OpGen[bytes | None]:
        index, off = divmod(pos, logic.wos_size)
        try:
            cur = yield from self._read_seg(logic, index, off)
        except Trimmed as e:
            raise self._trimmed_at(logic, pos) from e
        if cur is None:
            raise Unallocated(f"position {pos} of log {self.name!r} is beyond its last segment")
        v = cur[off]
        if v is EMPTY:
            v = (yield from self._holes(logic, index, [off]))[off]
        return None if v == JUNK else v[1:]

    def read(self, logic: SpaceLogic, pos: int) -> OpGen[bytes | None]:
        """The data at ``pos``; None for junk (an empty ``pos`` is filled after ``hole_timeout``)."""
        if type(pos) is not int or pos < 0:
            raise UsageError(f"a position is a non-negative int, got {pos!r}")
        return (yield from recorded(self.history, logic.process, ("log", self.name, "read", pos, None),
                                    self._read(logic, pos), lambda v: ("ok", pos, b64(v))))

    def entries(self, logic: SpaceLogic, start: int) -> OpGen[tuple[list[tuple[int, bytes | None]], int, bool]]:
        """One segment's worth of ``(position, data or None)`` from ``start`` -> (entries, next, at tail).
        Raises Trimmed if ``start`` is below the trim point."""
        if type(start) is not int or start < 0:
            raise UsageError(f"a position is a non-negative int, got {start!r}")
        try:
            frames, nxt, done = yield from self.scan(logic, start)
        except Trimmed as e:
            raise self._trimmed_at(logic, start) from e
        return [(p, None if f == JUNK else f[1:]) for p, f in frames], nxt, done

    def _trim(self, logic: SpaceLogic, upto: int) -> OpGen[int]:
        tail = yield from self._tail(logic)
        if upto > tail:
            raise UsageError(f"cannot trim up to {upto}: the log's tail is {tail}")
        stop = upto // logic.wos_size
        for index in range(self.trimmed_idx, stop):
            try:
                seg, _ = yield from self.locate(logic, index)
            except Trimmed:
                continue
            if seg is not None:
                yield from logic.trim(seg)
        self.trimmed_idx = max(self.trimmed_idx, stop)
        return self.trimmed_idx * logic.wos_size  # the trim point: another client may have trimmed further

    def trim(self, logic: SpaceLogic, upto: int) -> OpGen[int]:
        """Trim every segment wholly below ``upto`` (Rule 5); -> the new trim point."""
        if type(upto) is not int or upto < 0:
            raise UsageError(f"upto is a non-negative int, got {upto!r}")
        return (yield from recorded(self.history, logic.process, ("log", self.name, "trim", upto, None),
                                    self._trim(logic, upto), lambda t: ("ok", upto, t)))


# ---- the synchronous and asyncio faces ------------------------------------------------------------------


class WormLog:
    """A shared log by ``name`` on any synchronous client ``ws`` (see the module docstring)."""

    def __init__(self, ws: Any, name: bytes = b"log", *, policy: str = "alloc", hole_timeout: float = 0.5,
                 history: AppHistory | None = None) -> None:
        self.ws = sync_client(ws, "WormLog")
        self.core = LogCore(name, policy=policy, hole_timeout=hole_timeout, history=history)

    def append(self, data: bytes) -> int:
        return int(self.ws.run(self.core.append(self.ws.logic, data)))

    def read(self, pos: int) -> bytes | None:
        result: bytes | None = self.ws.run(self.core.read(self.ws.logic, pos))
        return result

    def tail(self) -> int:
        return int(self.ws.run(self.core.tail(self.ws.logic)))

    def entries(self, start: int = 0) -> Iterator[tuple[int, bytes | None]]:
        while True:
            batch, start, done = self.ws.run(self.core.entries(self.ws.logic, start))
            yield from batch
            if done:
                return

    def trim(self, upto: int) -> int:
        return int(self.ws.run(self.core.trim(self.ws.logic, upto)))

    @property
    def aio(self) -> AsyncWormLog:
        """The asyncio face, sharing this log's core (on the client's ``aio``, simulated or TCP)."""
        return AsyncWormLog(self.ws.aio, core=self.core)


class AsyncWormLog:
    """The asyncio face of WormLog over an ``AsyncClient``: many appends may be in flight at once."""

    def __init__(self, aclient: Any, name: bytes = b"log", *, core: LogCore | None = None,
                 policy: str = "alloc", hole_timeout: float = 0.5, history: AppHistory | None = None) -> None:
        self.aclient = async_client(aclient, "WormLog")
        self.core = core or LogCore(name, policy=policy, hole_timeout=hole_timeout, history=history)

    async def append(self, data: bytes) -> int:
        return int(await self.aclient.run(self.core.append(self.aclient.logic, data)))

    async def read(self, pos: int) -> bytes | None:
        result: bytes | None = await self.aclient.run(self.core.read(self.aclient.logic, pos))
        return result

    async def tail(self) -> int:
        return int(await self.aclient.run(self.core.tail(self.aclient.logic)))

    async def entries(self, start: int = 0) -> AsyncIterator[tuple[int, bytes | None]]:
        while True:
            batch, start, done = await self.aclient.run(self.core.entries(self.aclient.logic, start))
            for item in batch:
                yield item
            if done:
                return

    async def trim(self, upto: int) -> int:
        return int(await self.aclient.run(self.core.trim(self.aclient.logic, upto)))


__all__ = ["JUNK", "AsyncWormLog", "LogCore", "LogSpec", "WormLog", "app_metadata", "slot"]
