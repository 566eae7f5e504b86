"""Layer 3: the write-once segment (WOS) -- a unit of allocation and trimming made of WORs.

Trusted spec (``WosSpec``): a segment is ``unallocated``, ``allocated(metadata)`` or ``trimmed``, with a map
offset -> WOR spec. ``alloc(m)``: unallocated -> allocated(m), won; allocated -> lost; trimmed -> Trimmed.
``trim()``: any -> trimmed (idempotent). ``write``/``read`` of an offset: Unallocated before alloc, the WOR
spec while allocated, ``Trimmed`` after trim.

Theory of operation (the implementation over WORs). Each segment has two special registers beside its data
registers ``0 .. wos_size-1``:

Rule 1 (alloc). The METADATA register: whoever gets its value chosen owns the segment. The value is
        ``MAGIC + token + metadata`` with a fresh random token per alloc call, so two callers with the same
        metadata cannot both win. ``check(segment)`` reads it.
Rule 2 (allocation check). Before capturing or reading a data register the client reads the METADATA
        register (once: a written register never changes, so the answer is cached); EMPTY -> Unallocated.
Rule 3 (trim). The TRIM register: trim gets a value chosen there (``b"trim"``, the only value anybody
        proposes). An acceptor that has voted in TRIM purges the segment's other registers and answers
        ``SegmentTrimmed`` for them (acceptor Rule 4). A quorum voted TRIM before trim returns, and every
        quorum meets it, so no later capture, write or read of the segment can succeed.
Rule 4 (finish the trim). A client that meets a ``SegmentTrimmed`` reply completes the TRIM register's
        consensus (a Paxos round proposing ``b"trim"``) before it answers ``Trimmed``: the trim an
        acceptor started is then chosen, and the answer ``Trimmed`` is linearizable.
Rule 5 (batches). ``batch_capture(start, end)`` is one CAPTURE operation over the range: one Prepare message
        per acceptor; ``batch_write`` one WRITE operation: one Accept message per acceptor. A batch is not
        atomic across offsets; each offset gets its own result.

Client code is written as generators that yield WOR-layer ``OpRequest``s and receive ``Outcome``s, so the
same logic runs under the simulator, the synchronous client and the asyncio client.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field

from wormspace.errors import (
    AlreadyWritten,
    CaptureStale,
    Indeterminate,
    OperationFailed,
    Trimmed,
    Unallocated,
    UsageError,
)
from wormspace.layers.messages import META, TRIM, Ballot
from wormspace.layers.wor import EMPTY, Kind, OpRequest, Outcome, WorSpec, _Empty

Gen = Generator[OpRequest, Outcome, "object"]

MAGIC = b"WSM1"
TOKEN_BYTES = 16
TRIM_VALUE = b"trim"


# ---- the trusted spec -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WosSpec:
    """TRUSTED. The sequential spec of one segment. Results are values or outcome names."""

    metadata: bytes | None = None  # None: unallocated
    trimmed: bool = False
    data: tuple[tuple[int, bytes], ...] = ()

    def alloc(self, metadata: bytes) -> tuple[WosSpec, bool | str]:
        if self.trimmed:
            return self, "Trimmed"
        if self.metadata is not None:
            return self, False
        return WosSpec(metadata, False, self.data), True

    def trim(self) -> tuple[WosSpec, None]:
        return WosSpec(self.metadata, True, ()), None

    def _gate(self) -> str | None:
        if self.trimmed:
            return "Trimmed"
        if self.metadata is None:
            return "Unallocated"
        return None

    def write(self, offset: int, value: bytes) -> tuple[WosSpec, bytes | str | None]:
        """None: ok; bytes: AlreadyWritten(those bytes); str: the outcome's name."""
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


# ---- captures -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureId:
    """A capture of registers ``start .. end-1`` of ``segment`` at ``ballot``.

    ``known`` holds the registers the capture found already written (it completed their consensus), so a
    write through this capture answers them without a round trip.
    """

    segment: int
    start: int
    end: int
    ballot: Ballot
    known: tuple[tuple[int, bytes], ...] = ()

    def covers(self, segment: int, offset: int) -> bool:
        return segment == self.segment and self.start <= offset < self.end


def encode_meta(token: bytes, metadata: bytes) -> bytes:
    return MAGIC + token + metadata


def decode_meta(raw: bytes) -> tuple[bytes, bytes]:
    """-> (token, metadata). A register written by something else than alloc decodes to no token."""
    if raw.startswith(MAGIC) and len(raw) >= len(MAGIC) + TOKEN_BYTES:
        return raw[len(MAGIC) : len(MAGIC) + TOKEN_BYTES], raw[len(MAGIC) + TOKEN_BYTES :]
    return b"", raw


def _raise_for(outcome: Outcome) -> None:
    if outcome.error == "Trimmed":
        raise Trimmed("segment trimmed")
    if outcome.error == "Indeterminate":
        raise Indeterminate("no quorum answered in time")
    if outcome.error == "CaptureStale":
        raise CaptureStale("preempted by concurrent captures")


@dataclass
class SegmentLogic:
    """The WOS implementation: generator methods over WOR-layer operations, one instance per client."""

    wos_size: int
    rng: random.Random = field(default_factory=random.Random)
    meta_cache: dict[int, bytes] = field(default_factory=dict)
    trimmed: set[int] = field(default_factory=set)
    next_segment: int = 0
    on_trim_finished: Callable[[int], None] | None = None

    # -- helpers -------------------------------------------------------------------------------------

    def _finish_trim(self, segment: int) -> Generator[OpRequest, Outcome, None]:
        """Rule 4: complete the TRIM register's consensus, then raise Trimmed."""
        if segment not in self.trimmed:
            out = yield OpRequest(kind=Kind.PROPOSE, segment=segment, values=((TRIM, TRIM_VALUE),))
            if TRIM in out.chosen_map():
                self.trimmed.add(segment)
        raise Trimmed(f"segment {segment} is trimmed")

    def _check_trim(self, segment: int, outcome: Outcome) -> Generator[OpRequest, Outcome, None]:
        if outcome.error == "Trimmed":
            yield from self._finish_trim(segment)

    def metadata(self, segment: int) -> Generator[OpRequest, Outcome, bytes | None]:
        """The segment's metadata, or None if unallocated (Rule 2; cached once written)."""
        if segment in self.trimmed:
            yield from self._finish_trim(segment)
        if segment in self.meta_cache:
            return decode_meta(self.meta_cache[segment])[1]
        out = yield OpRequest(kind=Kind.READ, segment=segment, indices=(META,))
        yield from self._check_trim(segment, out)
        _raise_for(out)
        raw = out.chosen_map().get(META)
        if raw is None:
            return None
        self.meta_cache[segment] = raw
        return decode_meta(raw)[1]

    def _require_allocated(self, segment: int) -> Generator[OpRequest, Outcome, None]:
        if segment in self.meta_cache and segment not in self.trimmed:
            return
        meta = yield from self.metadata(segment)
        if meta is None:
            raise Unallocated(f"segment {segment} is not allocated")

    # -- segment operations --------------------------------------------------------------------------

    def alloc(self, segment: int, metadata: bytes) -> Generator[OpRequest, Outcome, bool]:
        """Rule 1: True iff this call won the segment."""
        if segment in self.trimmed:
            yield from self._finish_trim(segment)
        if segment in self.meta_cache:
            return False
        token = self.rng.getrandbits(8 * TOKEN_BYTES).to_bytes(TOKEN_BYTES, "big")
        mine = encode_meta(token, metadata)
        out = yield OpRequest(kind=Kind.PROPOSE, segment=segment, values=((META, mine),))
        yield from self._check_trim(segment, out)
        _raise_for(out)
        chosen = out.chosen_map().get(META)
        if chosen is None:
            if out.stale:
                raise CaptureStale(f"alloc of segment {segment} preempted by concurrent proposers")
            raise Indeterminate(f"alloc of segment {segment} timed out")
        self.meta_cache[segment] = chosen
        self.next_segment = max(self.next_segment, segment + 1)
        return chosen == mine

    def alloc_any(self, metadata: bytes, attempts: int = 256) -> Generator[OpRequest, Outcome, int]:
        """Allocate the first segment this client can win, probing upwards from its hint."""
        segment = self.next_segment
        for _ in range(attempts):
            try:
                won = yield from self.alloc(segment, metadata)
            except Trimmed:
                won = False
            if won:
                return segment
            segment += 1
        raise Indeterminate(f"no free segment found in {attempts} attempts")

    def trim(self, segment: int) -> Generator[OpRequest, Outcome, None]:
        """Rule 3."""
        if segment in self.trimmed:
            return
        out = yield OpRequest(kind=Kind.PROPOSE, segment=segment, values=((TRIM, TRIM_VALUE),))
        _raise_for(out)
        if TRIM not in out.chosen_map():
            raise Indeterminate(f"trim of segment {segment} did not complete")
        self.trimmed.add(segment)
        self.meta_cache.pop(segment, None)
        if self.on_trim_finished is not None:
            self.on_trim_finished(segment)

    # -- register operations -------------------------------------------------------------------------

    def capture(self, segment: int, start: int, end: int) -> Generator[OpRequest, Outcome, CaptureId]:
        """Capture offsets ``start .. end-1`` (one offset, or a batch: Rule 5)."""
        yield from self._require_allocated(segment)
        out = yield OpRequest(kind=Kind.CAPTURE, segment=segment, indices=tuple(range(start, end)))
        yield from self._check_trim(segment, out)
        _raise_for(out)
        return CaptureId(segment=segment, start=start, end=end, ballot=out.ballot, known=out.chosen)

    def write(
        self, segment: int, values: Mapping[int, bytes], cap: CaptureId
    ) -> Generator[OpRequest, Outcome, dict[int, OperationFailed | None]]:
        """Write ``values`` (offset -> data) through ``cap``. Per offset: None (ok) or the failure."""
        results: dict[int, OperationFailed | None] = {}
        known = dict(cap.known)
        send: list[tuple[int, bytes]] = []
        for off, data in sorted(values.items()):
            if off in known:
                results[off] = None if known[off] == data else AlreadyWritten(known[off])
            else:
                send.append((off, data))
        if send:
            out = yield OpRequest(kind=Kind.WRITE, segment=segment, values=tuple(send), ballot=cap.ballot)
            yield from self._check_trim(segment, out)
            chosen = out.chosen_map()
            for off, data in send:
                if off in chosen:
                    results[off] = None if chosen[off] == data else AlreadyWritten(chosen[off])
                elif off in out.stale:
                    results[off] = CaptureStale(f"capture of offset {off} was preempted; not written")
                else:
                    results[off] = Indeterminate(f"write of offset {off} may or may not have taken effect")
        return results

    def read(
        self, segment: int, offsets: tuple[int, ...]
    ) -> Generator[OpRequest, Outcome, dict[int, bytes | _Empty]]:
        yield from self._require_allocated(segment)
        out = yield OpRequest(kind=Kind.READ, segment=segment, indices=offsets)
        yield from self._check_trim(segment, out)
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


def check_offsets(wos_size: int, start: int, end: int) -> None:
    if not (type(start) is int and type(end) is int and 0 <= start < end <= wos_size):
        raise UsageError(f"need 0 <= start < end <= wos_size ({wos_size}), got start={start!r} end={end!r}")


__all__ = ["CaptureId", "SegmentLogic", "WosSpec", "check_offsets", "decode_meta", "encode_meta"]
