"""Layer 4: WormSpace -- the address space of WORs, grouped in segments, spread over acceptor groups.

Trusted spec (``WormSpaceSpec``): a map segment -> ``WosSpec``; ``address = segment * wos_size + offset``.

Theory of operation. Segment ``s`` lives on acceptor group ``s mod groups`` (a group is a set of acceptors
that runs Paxos for its segments; groups share nothing, so they scale out). An address is split into
(segment, offset) and the operation is handed to the WOS layer. The client API is written once, as
generators (``SpaceLogic``), and run by three drivers: the synchronous ``WormSpace`` client (simulator or
TCP), the asyncio ``AsyncClient`` and the simulator's concurrent processes.

Rules of the API (checked before anything is sent; a breach raises ``UsageError``):
* addresses and segments are non-negative ints; offsets lie in ``[0, wos_size)``;
* data is ``bytes`` of at most ``max_value`` bytes;
* a write names a capture covering its address.

Every operation can be recorded in a history (Jepsen convention, see ``refinement/history.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from wormspace.errors import (
    AlreadyWritten,
    Indeterminate,
    OperationFailed,
    UsageError,
)
from wormspace.layers.messages import MAX_INDEX, MAX_VALUE
from wormspace.layers.wor import EMPTY, OpRequest, Outcome, _Empty
from wormspace.layers.wos import CaptureId, SegmentLogic, WosSpec, check_offsets, decode_meta

T = TypeVar("T")
OpGen = Generator[OpRequest, Outcome, T]

DEFAULT_WOS_SIZE = 1024


# ---- the trusted spec -----------------------------------------------------------------------------------


@dataclass
class WormSpaceSpec:
    """TRUSTED. The address space: a map segment -> WOS spec (absent = unallocated, untrimmed)."""

    wos_size: int = DEFAULT_WOS_SIZE
    segments: dict[int, WosSpec] = field(default_factory=dict)

    def segment(self, s: int) -> WosSpec:
        return self.segments.get(s, WosSpec())

    def split(self, address: int) -> tuple[int, int]:
        return divmod(address, self.wos_size)


# ---- history recording ----------------------------------------------------------------------------------


class RecorderLike(Protocol):
    def invoke(self, process: int, f: str, key: int, value: Any) -> int: ...

    def ok(self, handle: int, value: Any = None, results: dict[int, str] | None = None) -> None: ...

    def fail(
        self, handle: int, error: str, existing: Any = None, results: dict[int, str] | None = None
    ) -> None: ...

    def info(self, handle: int, error: str = "Indeterminate") -> None: ...


def outcome_name(e: BaseException | None) -> str:
    return "ok" if e is None else type(e).__name__


# ---- the generator API ----------------------------------------------------------------------------------


class SpaceLogic:
    """The client API as generators over WOR-layer operations (one instance per client)."""

    def __init__(
        self,
        *,
        wos_size: int = DEFAULT_WOS_SIZE,
        max_value: int = MAX_VALUE,
        seed: int | None = None,
        recorder: RecorderLike | None = None,
        process: int = 0,
    ) -> None:
        import random

        if not (type(wos_size) is int and 1 <= wos_size <= MAX_INDEX):
            raise UsageError(f"wos_size must be an int in [1, {MAX_INDEX}]")
        self.wos_size = wos_size
        self.max_value = min(max_value, MAX_VALUE)
        self.seg = SegmentLogic(wos_size=wos_size, rng=random.Random(seed))
        self.recorder = recorder
        self.process = process

    # -- validation ----------------------------------------------------------------------------------

    def address(self, segment: int, offset: int) -> int:
        self._segment(segment)
        check_offsets(self.wos_size, offset, offset + 1)
        return segment * self.wos_size + offset

    def split(self, address: int) -> tuple[int, int]:
        if type(address) is not int or address < 0:
            raise UsageError(f"an address is a non-negative int, got {address!r}")
        return divmod(address, self.wos_size)

    @staticmethod
    def _segment(segment: int) -> None:
        if type(segment) is not int or segment < 0:
            raise UsageError(f"a segment is a non-negative int, got {segment!r}")

    def _data(self, data: object) -> bytes:
        if type(data) is not bytes:
            raise UsageError(f"data must be bytes, got {type(data).__name__}")
        if len(data) > self.max_value:
            raise UsageError(f"data is {len(data)} bytes, over the limit of {self.max_value}")
        return data

    # -- recording -----------------------------------------------------------------------------------

    def _recorded(
        self,
        f: str,
        key: int,
        value: Any,
        gen: OpGen[T],
        finish: Callable[[T], tuple[str, Any, Any, dict[int, str] | None]],
    ) -> OpGen[T]:
        """Run ``gen``; record invoke and completion. ``finish(result)`` -> (type, value, existing, results)."""
        rec = self.recorder
        handle = rec.invoke(self.process, f, key, value) if rec is not None else 0
        try:
            result = yield from gen
        except AlreadyWritten as e:
            if rec is not None:
                rec.fail(handle, "AlreadyWritten", existing=e.data)
            raise
        except Indeterminate:
            if rec is not None:
                rec.info(handle, "Indeterminate")
            raise
        except OperationFailed as e:
            if rec is not None:
                rec.fail(handle, outcome_name(e))
            raise
        except BaseException:
            if rec is not None:
                rec.info(handle, "Indeterminate")
            raise
        if rec is not None:
            kind, out_value, existing, results = finish(result)
            if kind == "ok":
                rec.ok(handle, out_value, results=results)
            elif kind == "info":
                rec.info(handle, "Indeterminate")
            else:
                rec.fail(handle, kind, existing=existing, results=results)
        return result

    @staticmethod
    def _plain(result: object) -> tuple[str, Any, Any, dict[int, str] | None]:
        return "ok", None, None, None

    # -- operations ----------------------------------------------------------------------------------

    def alloc(self, segment: int, metadata: bytes = b"") -> OpGen[bool]:
        self._segment(segment)
        metadata = self._data(metadata)

        def finish(won: bool) -> tuple[str, Any, Any, dict[int, str] | None]:
            if won:
                return "ok", None, None, None
            existing = self.seg.meta_cache.get(segment)
            return "AlreadyWritten", None, None if existing is None else decode_meta(existing)[1], None

        gen = self.seg.alloc(segment, metadata)
        return (yield from self._recorded("alloc", segment * self.wos_size, metadata, gen, finish))

    def alloc_any(self, metadata: bytes = b"", attempts: int = 256) -> OpGen[int]:
        from wormspace.errors import Trimmed

        self._data(metadata)
        segment = self.seg.next_segment
        for _ in range(attempts):
            try:
                won = yield from self.alloc(segment, metadata)
            except Trimmed:
                won = False
            if won:
                return segment
            segment = max(segment + 1, self.seg.next_segment)
        raise Indeterminate(f"no free segment found in {attempts} attempts")

    def check(self, segment: int) -> OpGen[bytes | None]:
        """The segment's metadata, or None if it is unallocated; raises Trimmed after a trim."""
        self._segment(segment)
        return (yield from self.seg.metadata(segment))

    def trim(self, segment: int) -> OpGen[None]:
        self._segment(segment)
        gen = self.seg.trim(segment)
        return (yield from self._recorded("trim", segment * self.wos_size, None, gen, self._plain))

    def capture(self, address: int) -> OpGen[CaptureId]:
        segment, offset = self.split(address)
        gen = self.seg.capture(segment, offset, offset + 1)
        return (yield from self._recorded("capture", address, None, gen, self._plain))

    def batch_capture(self, segment: int, start: int = 0, end: int | None = None) -> OpGen[CaptureId]:
        self._segment(segment)
        end = self.wos_size if end is None else end
        check_offsets(self.wos_size, start, end)
        gen = self.seg.capture(segment, start, end)
        return (yield from self._recorded("batch_capture", segment * self.wos_size, None, gen, self._plain))

    def write(self, address: int, data: bytes, cap: CaptureId) -> OpGen[None]:
        segment, offset = self.split(address)
        data = self._data(data)
        if not isinstance(cap, CaptureId) or not cap.covers(segment, offset):
            raise UsageError(f"the capture does not cover address {address} (segment {segment}, offset {offset})")

        def single() -> OpGen[None]:
            results = yield from self.seg.write(segment, {offset: data}, cap)
            err = results[offset]
            if err is not None:
                raise err

        return (yield from self._recorded("write", address, data, single(), self._plain))

    def batch_write(
        self, segment: int, values: Mapping[int, bytes], cap: CaptureId
    ) -> OpGen[dict[int, OperationFailed | None]]:
        self._segment(segment)
        if not isinstance(values, Mapping) or not values:
            raise UsageError("batch_write needs a non-empty mapping offset -> bytes")
        clean: dict[int, bytes] = {}
        for off, data in values.items():
            check_offsets(self.wos_size, off, off + 1)
            if not isinstance(cap, CaptureId) or not cap.covers(segment, off):
                raise UsageError(f"the capture does not cover offset {off} of segment {segment}")
            clean[off] = self._data(data)

        def finish(res: dict[int, OperationFailed | None]) -> tuple[str, Any, Any, dict[int, str] | None]:
            results = {off: outcome_name(e) for off, e in res.items()}
            existing = {off: e.data for off, e in res.items() if isinstance(e, AlreadyWritten)}
            if all(e is None for e in res.values()):
                return "ok", None, None, results
            if any(isinstance(e, Indeterminate) for e in res.values()):
                return "info", None, existing or None, results
            return "fail", None, existing or None, results

        gen = self.seg.write(segment, clean, cap)
        return (yield from self._recorded("batch_write", segment * self.wos_size, clean, gen, finish))

    def read(self, address: int) -> OpGen[bytes | _Empty]:
        segment, offset = self.split(address)

        def single() -> OpGen[bytes | _Empty]:
            res = yield from self.seg.read(segment, (offset,))
            return res[offset]

        def finish(v: bytes | _Empty) -> tuple[str, Any, Any, dict[int, str] | None]:
            return "ok", None if v is EMPTY else v, None, None

        return (yield from self._recorded("read", address, None, single(), finish))


# ---- drivers and the synchronous client -----------------------------------------------------------------


class Driver(Protocol):
    """Runs one WOR-layer operation to its outcome (blocking)."""

    def execute(self, request: OpRequest) -> Outcome: ...


def run_sync(driver: Driver, gen: OpGen[T]) -> T:
    """Drive a generator of the API to completion with a blocking driver."""
    try:
        req = next(gen)
        while True:
            req = gen.send(driver.execute(req))
    except StopIteration as stop:
        result: T = stop.value
        return result


class WormSpace:
    """The synchronous client. Get one from ``Cluster.simulated(...).client()``, ``Cluster.local(...)``,
    or ``wormspace.connect("cluster.toml")``."""

    def __init__(self, logic: SpaceLogic, driver: Driver) -> None:
        self.logic = logic
        self.driver = driver

    @property
    def wos_size(self) -> int:
        return self.logic.wos_size

    def address(self, segment: int, offset: int) -> int:
        """The address of ``offset`` in ``segment``: ``segment * wos_size + offset``."""
        return self.logic.address(segment, offset)

    def split(self, address: int) -> tuple[int, int]:
        """-> (segment, offset)."""
        return self.logic.split(address)

    def alloc(self, metadata: bytes = b"", *, segment: int | None = None) -> Any:
        """Allocate: with ``segment``, try that one and return True iff this call won it; without,
        allocate a free segment and return its id."""
        if segment is None:
            return run_sync(self.driver, self.logic.alloc_any(metadata))
        return run_sync(self.driver, self.logic.alloc(segment, metadata))

    def check(self, segment: int) -> bytes | None:
        """The segment's metadata (None if unallocated; raises Trimmed after a trim)."""
        return run_sync(self.driver, self.logic.check(segment))

    def trim(self, segment: int) -> None:
        run_sync(self.driver, self.logic.trim(segment))

    def capture(self, address: int) -> CaptureId:
        return run_sync(self.driver, self.logic.capture(address))

    def batch_capture(self, segment: int, start: int = 0, end: int | None = None) -> CaptureId:
        return run_sync(self.driver, self.logic.batch_capture(segment, start, end))

    def write(self, address: int, data: bytes, capture: CaptureId) -> None:
        run_sync(self.driver, self.logic.write(address, data, capture))

    def batch_write(
        self, segment: int, values: Mapping[int, bytes], capture: CaptureId
    ) -> dict[int, OperationFailed | None]:
        """Write many offsets through one capture: one Accept per acceptor. Per offset: None (ok) or the
        failure (not raised: a batch is not atomic across offsets)."""
        return run_sync(self.driver, self.logic.batch_write(segment, values, capture))

    def read(self, address: int) -> bytes | _Empty:
        return run_sync(self.driver, self.logic.read(address))


__all__ = ["DEFAULT_WOS_SIZE", "Driver", "SpaceLogic", "WormSpace", "WormSpaceSpec", "run_sync"]
