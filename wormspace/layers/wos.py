"""Layer 3: the write-once segment (WOS) -- a unit of allocation and trimming made of WORs.

Trusted spec (``WosSpec``, one screen). A segment is ``unallocated``, ``allocated(metadata)`` or ``trimmed``,
with a map offset -> WOR spec::

    alloc m     unallocated -> allocated(m), True;  allocated -> False (lost);  trimmed -> Trimmed
    trim        any -> trimmed, ok (idempotent); the data is gone
    check       allocated(m) -> m;  unallocated -> None;  trimmed -> Trimmed
    capture o   allocated -> ok;  unallocated -> Unallocated;  trimmed -> Trimmed
    write o v   allocated -> the WOR spec of offset o;  unallocated -> Unallocated;  trimmed -> Trimmed
    read o      allocated -> the WOR spec of offset o;  unallocated -> Unallocated;  trimmed -> Trimmed

Captures are a liveness device, as in the WOR layer: a capture or a write may also fail ``CaptureStale``,
which changes nothing.

Abstraction function (``abstract_segment``), from each register's chosen value (the WOR layer's abstraction):
the segment is trimmed iff its TRIM register is chosen; allocated(m) iff its METADATA register is chosen,
with m the metadata that value encodes; its data is the chosen data registers -- none once trimmed.

Theory of operation (the implementation over WORs). Each segment has two special registers beside its data
registers ``0 .. wos_size-1``:

Rule 1 (alloc). The METADATA register: whoever gets its value chosen owns the segment. The value is
        ``MAGIC + token + metadata`` with a fresh random token per alloc call, so two callers with the same
        metadata cannot both win.
Rule 2 (allocation check). Before capturing or reading a data register the client reads the METADATA
        register; EMPTY -> Unallocated. A written METADATA register never changes, so the client caches it
        and skips the read next time: allocation is undone only by a trim, and every data operation meets
        a trim at the acceptors (Rule 3). ``alloc`` and ``check`` never answer from the cache alone.
Rule 3 (trim). The TRIM register: trim gets a value chosen there (``b"trim"``, the only value anybody
        proposes). An acceptor that has voted in TRIM purges the segment's other registers and answers
        ``SegmentTrimmed`` for them (acceptor Rule 4). A quorum voted TRIM before trim returns, and every
        quorum meets it, so no later capture, write or read of the segment can succeed.
Rule 4 (finish the trim). A client that meets a ``SegmentTrimmed`` reply completes the TRIM register's
        consensus (a Paxos round proposing ``b"trim"``) before it answers ``Trimmed``, so the answer is
        linearizable; if it cannot (no quorum), it answers ``Indeterminate``. An operation that had already
        sent its own value (a write, an alloc) when it met the trim may have taken effect before the trim:
        it answers ``TrimmedInFlight``, which is both ``Trimmed`` and ``Indeterminate``.
Rule 5 (batches). ``capture(start, end)`` is one CAPTURE operation over the range: one Prepare message
        per acceptor; ``write`` of many offsets is one WRITE operation: one Accept message per acceptor.
        A batch is not atomic across offsets; each offset gets its own result.
Rule 6 (what a capture found). A capture that finds offsets already written reports them (``known``). A
        write through it still sends those offsets, with the value found, in its one Accept: answering them
        from the capture alone could miss a trim that happened since.
Rule 7 (listen). A ``Listener`` learns the writes of a range by polling: each poll reads the offsets it has
        not delivered yet with one Read per acceptor that never proposes (``repair=False``: a listener must
        not preempt a writer whose Accept is still in flight). Offsets it saw half-written are read with an
        ordinary (completing) read on the next poll, so a write whose writer died half-way is delivered too.
        Every offset is delivered at most once per listener, with its chosen value, ascending within a
        poll; polling stops at trim, when every offset is delivered, on ``cancel()`` or when the callback
        raises.

Rule 8 (bounded memory). What a client remembers about segments -- the METADATA values it read (Rule 2)
        and the segments it knows are trimmed -- is a cache of fixed size (``CACHE_SEGMENTS`` each, least
        recently used forgotten first), so a client that runs for days does not grow with the number of
        segments it ever touched. Forgetting costs a round trip, never a wrong answer: a forgotten
        METADATA value is read again; a forgotten trim is met again at the acceptors (Rule 3) and
        finished (Rule 4). The one visible difference: a write through a capture taken before a trim
        that this client learned and then forgot answers ``TrimmedInFlight`` (still a ``Trimmed``), as a
        client that never learned it would, instead of ``Trimmed`` without sending.

Client code is written as generators that yield WOR-layer ``OpRequest``s and receive ``Outcome``s, so the
same logic runs under the simulator, the synchronous client, the asyncio client and the model checker.
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import pairwise

from wormspace._contracts import ensure, require
from wormspace.errors import (
    AlreadyWritten,
    CaptureStale,
    Indeterminate,
    OperationFailed,
    Trimmed,
    Unallocated,
    UsageError,
)
from wormspace.layers.effects import RegKey
from wormspace.layers.messages import META, TRIM, Ballot, RegState
from wormspace.layers.wor import EMPTY, Kind, OpRequest, Outcome, WorSpec, _Empty

Gen = Generator[OpRequest, Outcome, "object"]

MAGIC = b"WSM1"
TOKEN_BYTES = 16
META_OVERHEAD = len(MAGIC) + TOKEN_BYTES  # bytes the METADATA register adds to the caller's metadata
TRIM_VALUE = b"trim"

TRIMMED = "Trimmed"
UNALLOCATED = "Unallocated"
LINEAR_PROBES = 8  # alloc_any's tries upward one by one before it probes allocation state
MAX_PROBE_STEP = 1 << 62  # alloc_any's exponential probing gives up beyond this many segments
CACHE_SEGMENTS = 4096  # segments a client remembers METADATA values of, and trims of (Rule 8)


# ---- the trusted spec -----------------------------------------------------------------------------------


def wos_invariant(spec: WosSpec) -> bool:
    """The layer invariant of a segment: a trimmed segment holds no data, and the written offsets are
    non-negative, sorted and distinct (one value per register)."""
    data = spec.data
    if spec.trimmed and data:
        return False
    return all(a[0] < b[0] for a, b in pairwise(data)) and (not data or data[0][0] >= 0)


def kept_written(before: WosSpec, after: WosSpec) -> bool:
    """Immutability across one step: every offset written before holds the same value after (or the segment
    is trimmed)."""
    return after.trimmed or set(before.data) <= set(after.data)


@dataclass(frozen=True, slots=True)
class WosSpec:
    """TRUSTED. The sequential spec of one segment. Results are values or outcome names (``"Trimmed"``,
    ``"Unallocated"``); ``write`` answers None (ok) or the bytes already held (AlreadyWritten)."""

    metadata: bytes | None = None  # None: unallocated
    trimmed: bool = False
    data: tuple[tuple[int, bytes], ...] = ()  # sorted (offset, value) of the written offsets

    @ensure(lambda result: wos_invariant(result[0]), "the WOS invariant")
    @ensure(lambda self, result: result[1] is not True or self.metadata is None, "an allocation is won only once")
    def alloc(self, metadata: bytes) -> tuple[WosSpec, bool | str]:
        if self.trimmed:
            return self, TRIMMED
        if self.metadata is not None:
            return self, False
        return WosSpec(metadata, False, self.data), True

    @ensure(lambda result: result[0].trimmed and wos_invariant(result[0]), "a trim is permanent")
    def trim(self) -> tuple[WosSpec, None]:
        return WosSpec(self.metadata, True, ()), None

    def _gate(self) -> str | None:
        if self.trimmed:
            return TRIMMED
        if self.metadata is None:
            return UNALLOCATED
        return None

    def check(self) -> bytes | str | None:
        return TRIMMED if self.trimmed else self.metadata

    def capture(self, offset: int) -> str | None:
        return self._gate()

    @ensure(lambda result: wos_invariant(result[0]), "the WOS invariant")
    @ensure(lambda self, result: kept_written(self, result[0]), "a written offset never changes")
    def write(self, offset: int, value: bytes) -> tuple[WosSpec, bytes | str | None]:
        gate = self._gate()
        if gate is not None:
            return self, gate
        d = dict(self.data)
        reg, existing = WorSpec(d.get(offset)).write(value)
        if existing is not None:
            return self, existing
        assert reg.value is not None
        d[offset] = reg.value
        return WosSpec(self.metadata, False, tuple(sorted(d.items()))), None

    def read(self, offset: int) -> bytes | _Empty | str:
        gate = self._gate()
        if gate is not None:
            return gate
        return dict(self.data).get(offset, EMPTY)


# ---- the abstraction function ---------------------------------------------------------------------------


def abstract_segment(chosen: Mapping[int, bytes | None]) -> WosSpec:
    """The abstraction function: ``chosen`` maps a register index (META, TRIM or an offset) to its chosen
    value (None or absent: nothing chosen)."""
    trimmed = chosen.get(TRIM) is not None
    raw = chosen.get(META)
    metadata = None if raw is None else decode_meta(raw)[1]
    data = () if trimmed else tuple(sorted((i, v) for i, v in chosen.items() if i >= 0 and v is not None))
    return WosSpec(metadata, trimmed, data)


def segment_chosen(chosen: Mapping[RegKey, bytes | None], segment: int) -> dict[int, bytes | None]:
    """The registers of one segment out of a ``(segment, index) -> chosen value`` map."""
    return {i: v for (s, i), v in chosen.items() if s == segment}


def registers_kept_after_trim(regs: Iterable[tuple[RegKey, RegState]]) -> list[RegKey]:
    """Rule 3's memory claim, on one acceptor's registers: the registers it still holds in a segment whose
    TRIM register it has voted in (must be none: only the TRIM register stays)."""
    items = list(regs)
    trimmed = {s for (s, i), r in items if i == TRIM and r.value is not None}
    return [key for key, _ in items if key[0] in trimmed and key[1] != TRIM]


# ---- captures, metadata encoding, errors ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureId:
    """A capture of registers ``start .. end-1`` of ``segment`` at ``ballot``.

    ``known`` holds the registers the capture found already written (it completed their consensus); a write
    through this capture sends them with that value (Rule 6). ``sent`` remembers the value each write
    through this object has sent per offset: a ballot may carry only one value per register (Paxos), so a
    second write of other data to the same offset through the same capture is refused (``UsageError``:
    capture again). Clients that share a capture (a sequencer handing out offsets) must give each offset
    to one writer: ``sent`` is per object, and another process cannot see it.
    """

    segment: int
    start: int
    end: int
    ballot: Ballot
    known: tuple[tuple[int, bytes], ...] = ()
    sent: dict[int, bytes] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def covers(self, segment: int, offset: int) -> bool:
        return segment == self.segment and self.start <= offset < self.end


def encode_meta(token: bytes, metadata: bytes) -> bytes:
    return MAGIC + token + metadata


def decode_meta(raw: bytes) -> tuple[bytes, bytes]:
    """-> (token, metadata). A register written by something else than alloc decodes to no token."""
    if raw.startswith(MAGIC) and len(raw) >= META_OVERHEAD:
        return raw[len(MAGIC) : META_OVERHEAD], raw[META_OVERHEAD:]
    return b"", raw


class TrimmedInFlight(Indeterminate, Trimmed):
    """The segment is trimmed (its trim is chosen), and this write or alloc had already sent its value when
    it met the trim: it may have taken effect before the trim, or not at all (Rule 4). It is a ``Trimmed``
    (the segment is gone) and an ``Indeterminate`` (histories record it as such)."""


def _raise_for(outcome: Outcome) -> None:
    if outcome.error == "Trimmed":
        raise Trimmed("segment trimmed")
    if outcome.error == "Indeterminate":
        raise Indeterminate("no quorum answered in time")
    if outcome.error == "CaptureStale":
        raise CaptureStale("preempted by concurrent captures")


def check_capture_values(cap: CaptureId, values: Mapping[int, bytes]) -> tuple[tuple[int, bytes], ...]:
    """The (offset, value) pairs a write of ``values`` through ``cap`` sends (Rule 6: found values replace
    the caller's); ``UsageError`` if one would be a second value for an offset at the capture's ballot."""
    if cap.known:
        known = dict(cap.known)
        send = tuple(sorted((off, known.get(off, data)) for off, data in values.items()))
    else:  # the capture found nothing written (e.g. a fresh segment): the caller's values as they are
        send = tuple(sorted(values.items()))
    for off, value in send:
        if cap.sent.get(off, value) != value:
            raise UsageError(
                f"offset {off} was written through this capture with other data; a capture carries one value"
                " per offset: capture again"
            )
    return send


def check_offset(wos_size: int, offset: int) -> None:
    """One offset of a segment: ``UsageError`` naming the offset and the valid range unless it is in it."""
    if not (type(offset) is int and 0 <= offset < wos_size):
        raise UsageError(f"offset {offset!r} is not in the segment: valid offsets are 0..{wos_size - 1}")


def check_offsets(wos_size: int, start: int, end: int) -> None:
    if not (type(start) is int and type(end) is int and 0 <= start < end <= wos_size):
        raise UsageError(f"need 0 <= start < end <= wos_size ({wos_size}), got start={start!r} end={end!r}")


# ---- listeners ------------------------------------------------------------------------------------------


class Listener:
    """A listener on offsets ``start .. end-1`` of ``segment`` (Rule 7); ``callback(offset, data)``.

    The handle ``listen`` returns: ``cancel()`` stops it (a poll in flight finishes, delivering nothing
    more). ``trimmed``, ``complete`` (every offset delivered) and ``error`` (the exception the callback
    raised) say why it stopped; ``delivered`` holds the offsets delivered so far.
    """

    def __init__(self, segment: int, callback: Callable[[int, bytes], object], start: int, end: int) -> None:
        self.segment = segment
        self.callback = callback
        self.start = start
        self.end = end
        self.delivered: set[int] = set()
        self.suspects: frozenset[int] = frozenset()  # seen half-written: read with repair next poll
        self.polls = 0
        self.trimmed = False
        self.complete = False
        self.error: BaseException | None = None
        self._cancelled = threading.Event()
        self._stopped = threading.Event()

    def cancel(self) -> None:
        """Stop polling (idempotent)."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def active(self) -> bool:
        return not (self.cancelled or self.trimmed or self.complete or self.error is not None)

    def sleep(self, seconds: float) -> None:
        """Block the polling thread for ``seconds``, or until ``cancel()``."""
        self._cancelled.wait(seconds)

    def stopped(self) -> None:
        """Mark the polling loop as ended (drivers call this)."""
        self._stopped.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the polling loop has ended (thread-driven listeners); True if it has."""
        return self._stopped.wait(timeout)

    def __repr__(self) -> str:
        state = "active" if self.active else "stopped"
        return (
            f"Listener(segment={self.segment}, offsets={self.start}..{self.end - 1}, {state},"
            f" delivered={len(self.delivered)}, polls={self.polls})"
        )


# ---- bounded client memory (Rule 8) ------------------------------------------------------------------------


class LruCache:
    """A map segment -> bytes of at most ``capacity`` entries; the least recently used is forgotten first.
    Looking an entry up (``get``, ``in``) counts as a use."""

    def __init__(self, capacity: int = CACHE_SEGMENTS) -> None:
        if type(capacity) is not int or capacity < 1:
            raise UsageError(f"a cache holds at least one entry, got capacity {capacity!r}")
        self.capacity = capacity
        self._items: OrderedDict[int, bytes] = OrderedDict()

    def get(self, key: int, default: bytes | None = None) -> bytes | None:
        value = self._items.get(key)
        if value is None:
            return default
        self._items.move_to_end(key)
        return value

    def __contains__(self, key: object) -> bool:
        if key in self._items:
            self._items.move_to_end(key)  # type: ignore[arg-type]
            return True
        return False

    def __getitem__(self, key: int) -> bytes:
        value = self._items[key]
        self._items.move_to_end(key)
        return value

    def __setitem__(self, key: int, value: bytes) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def pop(self, key: int, default: bytes | None = None) -> bytes | None:
        return self._items.pop(key, default)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._items))


class LruSet:
    """A set of segments of at most ``capacity`` members; the least recently used is forgotten first."""

    def __init__(self, capacity: int = CACHE_SEGMENTS) -> None:
        self._map = LruCache(capacity)

    @property
    def capacity(self) -> int:
        return self._map.capacity

    def add(self, key: int) -> None:
        self._map[key] = b""

    def discard(self, key: int) -> None:
        self._map.pop(key)

    def __contains__(self, key: object) -> bool:
        return key in self._map

    def __len__(self) -> int:
        return len(self._map)

    def __iter__(self) -> Iterator[int]:
        return iter(self._map)


# ---- the implementation ---------------------------------------------------------------------------------


@dataclass
class SegmentLogic:
    """The WOS implementation: generator methods over WOR-layer operations, one instance per client.

    ``on_trim_finished(segment)`` is called when this client learns that a segment's trim is chosen.
    ``meta_cache`` and ``trimmed`` are bounded (Rule 8).
    """

    wos_size: int
    rng: random.Random = field(default_factory=random.Random)
    meta_cache: LruCache = field(default_factory=LruCache)
    trimmed: LruSet = field(default_factory=LruSet)
    next_segment: int = 0
    on_trim_finished: Callable[[int], None] | None = None

    # -- helpers -------------------------------------------------------------------------------------

    def _learn_trimmed(self, segment: int) -> None:
        if segment not in self.trimmed:
            self.trimmed.add(segment)
            self.meta_cache.pop(segment, None)
            if self.on_trim_finished is not None:
                self.on_trim_finished(segment)

    def _settle_trim(self, segment: int) -> Generator[OpRequest, Outcome, bool]:
        """Rule 4: complete the TRIM register's consensus; True iff the trim is known chosen."""
        if segment not in self.trimmed:
            out = yield OpRequest(kind=Kind.PROPOSE, segment=segment, values=((TRIM, TRIM_VALUE),))
            if out.chosen_map().get(TRIM) != TRIM_VALUE:
                return False
            self._learn_trimmed(segment)
        return True

    def _trim_gate(self, segment: int, outcome: Outcome) -> Generator[OpRequest, Outcome, None]:
        """For operations that proposed none of their own values: a trim met -> Trimmed (Rule 4)."""
        if outcome.error == "Trimmed":
            if (yield from self._settle_trim(segment)):
                raise Trimmed(f"segment {segment} is trimmed")
            raise Indeterminate(f"segment {segment}: met a partly trimmed quorum and could not finish the trim")

    def _known_trimmed(self, segment: int) -> None:
        if segment in self.trimmed:
            raise Trimmed(f"segment {segment} is trimmed")

    def metadata(self, segment: int) -> Generator[OpRequest, Outcome, bytes | None]:
        """The segment's metadata, or None if unallocated (Rule 2; always asks the acceptors)."""
        self._known_trimmed(segment)
        out = yield OpRequest(kind=Kind.READ, segment=segment, indices=(META,))
        yield from self._trim_gate(segment, out)
        _raise_for(out)
        raw = out.chosen_map().get(META)
        if raw is None:
            if META in out.empty:
                return None
            raise Indeterminate(f"the allocation of segment {segment} did not settle")
        self.meta_cache[segment] = raw
        return decode_meta(raw)[1]

    def _require_allocated(self, segment: int) -> Generator[OpRequest, Outcome, None]:
        self._known_trimmed(segment)
        if segment in self.meta_cache:
            return
        meta = yield from self.metadata(segment)
        if meta is None:
            raise Unallocated(f"segment {segment} is not allocated")

    # -- segment operations --------------------------------------------------------------------------

    def alloc(self, segment: int, metadata: bytes) -> Generator[OpRequest, Outcome, bool]:
        """Rule 1: True iff this call won the segment."""
        self._known_trimmed(segment)
        if segment in self.meta_cache:
            yield from self.metadata(segment)  # allocated: lost, unless trimmed since (then Trimmed)
            return False
        token = self.rng.getrandbits(8 * TOKEN_BYTES).to_bytes(TOKEN_BYTES, "big")
        mine = encode_meta(token, metadata)
        out = yield OpRequest(kind=Kind.PROPOSE, segment=segment, values=((META, mine),))
        if out.error == "Trimmed":
            settled = yield from self._settle_trim(segment)
            if not settled:
                raise Indeterminate(f"alloc of segment {segment} met a partly trimmed quorum")
            if META in out.unknown:
                raise TrimmedInFlight(f"segment {segment} was trimmed while this alloc was in flight")
            raise Trimmed(f"segment {segment} is trimmed")
        _raise_for(out)
        chosen = out.chosen_map().get(META)
        if chosen is None:
            if META in out.stale:
                raise CaptureStale(f"alloc of segment {segment} preempted by concurrent proposers")
            raise Indeterminate(f"alloc of segment {segment} did not complete")
        self.meta_cache[segment] = chosen
        self.next_segment = max(self.next_segment, segment + 1)
        return chosen == mine

    def used(self, segment: int) -> Generator[OpRequest, Outcome, bool]:
        """Is ``segment`` taken (allocated, trimmed, or its allocation unsettled)? Reads its METADATA register
        unless this client already knows the answer; allocates nothing."""
        if segment in self.meta_cache or segment in self.trimmed:
            return True
        try:
            return (yield from self.metadata(segment)) is not None
        except (Trimmed, Indeterminate):
            return True

    def free_from(self, segment: int) -> Generator[OpRequest, Outcome, int]:
        """A segment ``>= segment`` that was free when probed, found with O(log used) reads however many
        segments are taken: ``segment`` itself if free, else probe ``segment + 2**k`` for k = 0, 1, ...
        until a free one, then bisect between the last taken and the first free probe. Segments are taken
        mostly in order, so this finds the first gap above the hint; any free segment will do."""
        if not (yield from self.used(segment)):
            return segment
        taken, step = segment, 1
        while True:
            if step > MAX_PROBE_STEP:
                raise Indeterminate(f"no free segment found between {segment} and {segment + step}")
            probe = segment + step
            if not (yield from self.used(probe)):
                break
            taken, step = probe, 2 * step
        free = probe
        while free - taken > 1:
            mid = (taken + free) // 2
            if (yield from self.used(mid)):
                taken = mid
            else:
                free = mid
        return free

    def alloc_any(self, metadata: bytes, attempts: int = 256) -> Generator[OpRequest, Outcome, int]:
        """Allocate a free segment: try the hint (``next_segment``) and the segments above it one by one,
        ``LINEAR_PROBES`` tries; after that, find a free segment with ``free_from`` (exponential, then
        binary probing) before each try. A try lost (taken, trimmed, or contended: CaptureStale) counts
        against ``attempts``; an Indeterminate alloc ends the search (it may have won)."""
        segment = self.next_segment
        for lost in range(attempts):
            if lost:
                segment = max(segment + 1, self.next_segment)
                if lost >= LINEAR_PROBES:
                    segment = yield from self.free_from(segment)
            try:
                won = yield from self.alloc(segment, metadata)
            except (Trimmed, CaptureStale):
                won = False
            if won:
                return segment
        raise Indeterminate(f"lost the race for {attempts} free segments in a row")

    def trim(self, segment: int) -> Generator[OpRequest, Outcome, None]:
        """Rule 3."""
        if segment in self.trimmed:
            return
        out = yield OpRequest(kind=Kind.PROPOSE, segment=segment, values=((TRIM, TRIM_VALUE),))
        _raise_for(out)
        if out.chosen_map().get(TRIM) != TRIM_VALUE:
            raise Indeterminate(f"trim of segment {segment} did not complete")
        self._learn_trimmed(segment)

    # -- register operations -------------------------------------------------------------------------

    @require(
        lambda self, start, end: type(start) is int and type(end) is int and 0 <= start < end <= self.wos_size,
        "0 <= start < end <= wos_size",
        error=UsageError,
    )
    def capture(self, segment: int, start: int, end: int) -> Generator[OpRequest, Outcome, CaptureId]:
        """Capture offsets ``start .. end-1`` (one offset, or a batch: Rule 5)."""
        yield from self._require_allocated(segment)
        out = yield OpRequest(kind=Kind.CAPTURE, segment=segment, indices=tuple(range(start, end)))
        yield from self._trim_gate(segment, out)
        _raise_for(out)
        return CaptureId(segment=segment, start=start, end=end, ballot=out.ballot, known=out.chosen)

    @require(
        lambda self, segment, values, cap: bool(values) and all(cap.covers(segment, off) for off in values),
        "a non-empty batch of offsets the capture covers",
        error=UsageError,
    )
    def write(
        self,
        segment: int,
        values: Mapping[int, bytes],
        cap: CaptureId,
        *,
        checked: tuple[tuple[int, bytes], ...] | None = None,
    ) -> Generator[OpRequest, Outcome, dict[int, OperationFailed | None]]:
        """Write ``values`` (offset -> data) through ``cap`` in one Accept per acceptor (Rules 5, 6).
        Per offset: None (ok) or the failure (``Trimmed`` for all, with nothing sent, when the client already
        knows the segment is trimmed). ``checked``: what ``check_capture_values(cap, values)`` returned to a
        caller that validated at the API boundary just before (it is not run twice)."""
        send = check_capture_values(cap, values) if checked is None else checked
        if segment in self.trimmed:
            return {off: Trimmed(f"segment {segment} is trimmed") for off in sorted(values)}
        cap.sent.update(send)
        out = yield OpRequest(kind=Kind.WRITE, segment=segment, values=send, ballot=cap.ballot)
        chosen = out.chosen_map()
        settled: bool | None = None
        if out.error == "Trimmed":
            settled = yield from self._settle_trim(segment)
        results: dict[int, OperationFailed | None] = {}
        for off, data in sorted(values.items()):
            if off in chosen:
                results[off] = None if chosen[off] == data else AlreadyWritten(chosen[off])
            elif settled is not None:
                if not settled:
                    results[off] = Indeterminate(f"offset {off}: met a partly trimmed quorum")
                elif off in out.unknown:
                    results[off] = TrimmedInFlight(f"offset {off}: the segment was trimmed during this write")
                else:
                    results[off] = Trimmed(f"segment {segment} is trimmed")
            elif off in out.stale:
                results[off] = CaptureStale(f"capture of offset {off} was preempted; not written")
            else:
                results[off] = Indeterminate(f"write of offset {off} may or may not have taken effect")
        return results

    @require(
        lambda self, offsets: all(type(o) is int and 0 <= o < self.wos_size for o in offsets),
        "offsets of the segment",
        error=UsageError,
    )
    def read(
        self, segment: int, offsets: tuple[int, ...]
    ) -> Generator[OpRequest, Outcome, dict[int, bytes | _Empty]]:
        """Read ``offsets`` in one operation (one Read per acceptor, plus rounds for half-written ones)."""
        yield from self._require_allocated(segment)
        out = yield OpRequest(kind=Kind.READ, segment=segment, indices=offsets)
        yield from self._trim_gate(segment, out)
        _raise_for(out)
        chosen = out.chosen_map()
        result: dict[int, bytes | _Empty] = {}
        for off in offsets:
            if off in chosen:
                result[off] = chosen[off]
            elif off in out.empty:
                result[off] = EMPTY
            else:
                raise Indeterminate(f"read of offset {off} did not settle")
        return result

    # -- listeners (Rule 7) ----------------------------------------------------------------------------

    def poll(self, lis: Listener) -> Generator[OpRequest, Outcome, bool]:
        """One poll of ``lis``: read the offsets not delivered yet, deliver the written ones. Returns True
        while the listener should keep polling."""
        if not lis.active:
            return False
        seg = lis.segment
        if seg in self.trimmed:
            lis.trimmed = True
            return False
        todo = [o for o in range(lis.start, lis.end) if o not in lis.delivered]
        if not todo:
            lis.complete = True
            return False
        learned: dict[int, bytes] = {}
        half: set[int] = set()
        trimmed = False
        for repair in (False, True):
            offsets = tuple(o for o in todo if (o in lis.suspects) == repair)
            if not offsets:
                continue
            out = yield OpRequest(kind=Kind.READ, segment=seg, indices=offsets, repair=repair)
            learned.update((o, v) for o, v in out.chosen if o in offsets)
            if out.error == "Trimmed":
                trimmed = yield from self._settle_trim(seg)
                break
            if not repair:
                half.update(out.unknown)
        lis.suspects = frozenset(half)
        lis.polls += 1
        for off in sorted(learned):
            if lis.cancelled:
                return False
            lis.delivered.add(off)
            try:
                lis.callback(off, learned[off])
            except Exception as e:  # the listener's own code failed: stop, keep the error
                lis.error = e
                return False
        if trimmed:
            lis.trimmed = True
        elif len(lis.delivered) == lis.end - lis.start:
            lis.complete = True
        return lis.active


__all__ = [
    "CACHE_SEGMENTS",
    "META_OVERHEAD",
    "CaptureId",
    "Listener",
    "LruCache",
    "LruSet",
    "SegmentLogic",
    "TrimmedInFlight",
    "WosSpec",
    "abstract_segment",
    "check_capture_values",
    "check_offset",
    "check_offsets",
    "decode_meta",
    "encode_meta",
    "registers_kept_after_trim",
    "kept_written",
    "segment_chosen",
    "wos_invariant",
]
