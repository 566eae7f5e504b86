"""Layer 4: WormSpace -- the address space of WORs, grouped in segments, spread over acceptor groups.

Trusted spec (``WormSpaceSpec``, a few lines): a map segment -> ``WosSpec`` (every segment starts unallocated);
``address = segment * wos_size + offset`` with ``0 <= offset < wos_size``; an operation on an address is the
WOS operation on its segment and offset, and segments never affect each other.

Abstraction function (``abstract_space``): apply the WOS abstraction to every segment of the
``(segment, index) -> chosen value`` map.

Theory of operation. Segment ``s`` lives on acceptor group ``s mod groups`` (a group is a set of acceptors
that runs Paxos for its segments; groups share nothing, so they scale out). An address is split into
(segment, offset) and the operation is handed to the WOS layer. The client API is written once, as
generators (``SpaceLogic``), and run by three drivers: the synchronous ``WormSpace`` client (simulator or
TCP), the asyncio ``AsyncClient`` and the simulator's concurrent processes.

Rules of the API (checked before anything is sent; a breach raises ``UsageError``):
* addresses and segments are non-negative ints; offsets lie in ``[0, wos_size)``;
* data is ``bytes`` of at most ``max_value`` bytes (alloc metadata: ``max_value - META_OVERHEAD``);
* a write names a capture covering its address.

Every operation except ``check``, ``batch_read`` and listener polls is recorded in a history (Jepsen
convention, see ``wormspace/history.py``); the history format has no batch read, and a listener's reads
are background work of the client, not operations of its process.

Listeners (``WormSpace.listen``; WOS Rule 7): with an event-driven driver (the simulator's client: it has
``submit`` and ``call_later``) polls run as events on the virtual clock; with any other driver (TCP) a
daemon thread polls through the same generator (``SpaceLogic.poll``) with blocking ``execute`` calls, and the
callback runs on that thread. Guarantees, per listener: every offset of the range is delivered at most once,
and exactly once if it is written while the listener runs and the segment is not trimmed first, with the
value chosen for it (reads are linearizable and registers immutable, so the value is final);
offsets are delivered in ascending order within one poll, not across polls (not in write order); an offset
written while the listener runs is delivered within about one poll interval plus a round trip, if a quorum
of the segment's group is reachable and the segment is not trimmed first (a write followed by a trim before
the next poll may never be delivered). Two listeners (in one client or in many) each get their own
deliveries. After ``cancel()`` returns, a thread-driven listener may still make the one delivery it had
already started; an event-driven one makes none. A failing callback or driver ends the listener
(``handle.error``). In the simulator, an active listener keeps the event queue busy, so ``cluster.run()``
returns only after every listener has stopped (cancel, trim, or every offset delivered).
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload, runtime_checkable

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
from wormspace.layers.messages import MAX_INDEX, MAX_INT, MAX_VALUE
from wormspace.layers.wor import EMPTY, OpRequest, Outcome, _Empty
from wormspace.layers.wos import (
    LINEAR_PROBES,
    META_OVERHEAD,
    CaptureId,
    Listener,
    SegmentLogic,
    WosSpec,
    abstract_segment,
    check_capture_values,
    check_offset,
    check_offsets,
    decode_meta,
)

if TYPE_CHECKING:
    from wormspace.aio import AsyncClient

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Sleep:
    """A pause of the calling process for ``seconds`` of its driver's clock (virtual in the simulator, real
    over TCP). Apps use it for timeouts (``SpaceLogic.sleep``); it is not an operation and is not recorded."""

    seconds: float

    def __post_init__(self) -> None:
        if (isinstance(self.seconds, bool) or not isinstance(self.seconds, (int, float))
                or not 0 <= self.seconds < math.inf):
            raise UsageError(f"a sleep lasts a finite non-negative number of seconds, got {self.seconds!r}")


ClientRequest = OpRequest | Sleep
OpGen = Generator[ClientRequest, Outcome, T]
SLEPT = Outcome()  # what a driver answers to a Sleep

DEFAULT_WOS_SIZE = 1024
DEFAULT_POLL_INTERVAL = 0.05  # seconds between a listener's polls (virtual seconds in the simulator)


# ---- the trusted spec -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WormSpaceSpec:
    """TRUSTED. The address space: segment -> WOS spec (absent = a fresh, unallocated segment)."""

    wos_size: int = DEFAULT_WOS_SIZE
    segments: tuple[tuple[int, WosSpec], ...] = ()  # sorted; only segments that differ from WosSpec()

    def segment(self, s: int) -> WosSpec:
        return dict(self.segments).get(s, WosSpec())

    def split(self, address: int) -> tuple[int, int]:
        return divmod(address, self.wos_size)

    def with_segment(self, s: int, spec: WosSpec) -> WormSpaceSpec:
        d = dict(self.segments)
        d[s] = spec
        return WormSpaceSpec(self.wos_size, tuple(sorted((k, v) for k, v in d.items() if v != WosSpec())))

    def alloc(self, s: int, metadata: bytes) -> tuple[WormSpaceSpec, bool | str]:
        spec, result = self.segment(s).alloc(metadata)
        return self.with_segment(s, spec), result

    def trim(self, s: int) -> tuple[WormSpaceSpec, None]:
        spec, result = self.segment(s).trim()
        return self.with_segment(s, spec), result

    def check(self, s: int) -> bytes | str | None:
        return self.segment(s).check()

    def capture(self, address: int) -> str | None:
        s, o = self.split(address)
        return self.segment(s).capture(o)

    def write(self, address: int, data: bytes) -> tuple[WormSpaceSpec, bytes | str | None]:
        s, o = self.split(address)
        spec, result = self.segment(s).write(o, data)
        return self.with_segment(s, spec), result

    def read(self, address: int) -> bytes | _Empty | str:
        s, o = self.split(address)
        return self.segment(s).read(o)


# ---- the abstraction function ---------------------------------------------------------------------------


def abstract_space(chosen: Mapping[RegKey, bytes | None], wos_size: int) -> WormSpaceSpec:
    """The abstraction function: ``chosen`` maps ``(segment, index)`` to the register's chosen value."""
    by_segment: dict[int, dict[int, bytes | None]] = {}
    for (s, i), v in chosen.items():
        by_segment.setdefault(s, {})[i] = v
    segments = ((s, abstract_segment(regs)) for s, regs in by_segment.items())
    return WormSpaceSpec(wos_size, tuple(sorted((s, w) for s, w in segments if w != WosSpec())))


# ---- history recording ----------------------------------------------------------------------------------


class RecorderLike(Protocol):
    def invoke(self, process: int, f: str, key: int, value: Any) -> int: ...

    def ok(self, handle: int, value: Any = None, results: dict[int, str] | None = None) -> None: ...

    def fail(
        self, handle: int, error: str, existing: Any = None, results: dict[int, str] | None = None
    ) -> None: ...

    def info(
        self, handle: int, error: str = "Indeterminate", existing: Any = None, results: dict[int, str] | None = None
    ) -> None: ...


_NAMED: tuple[tuple[type[OperationFailed], str], ...] = (
    (Indeterminate, "Indeterminate"),  # first: TrimmedInFlight is an Indeterminate for histories
    (AlreadyWritten, "AlreadyWritten"),
    (CaptureStale, "CaptureStale"),
    (Trimmed, "Trimmed"),
    (Unallocated, "Unallocated"),
)


def outcome_name(e: BaseException | None) -> str:
    """The history name of an outcome: ``ok`` or one of the outcome classes' names."""
    if e is None:
        return "ok"
    for cls, name in _NAMED:
        if isinstance(e, cls):
            return name
    return "Indeterminate"


Finish = tuple[str, Any, Any, dict[int, str] | None]


# ---- preconditions and postconditions of the client API --------------------------------------------------
#
# Plain functions, used by the ``@require``/``@ensure`` contracts below. A precondition raises the same
# ``UsageError`` (same message) as the unconditional check in the method body, so the caller sees one error
# whether contracts are on or off; a postcondition returns a bool, and a breach raises ``ContractViolation``.


def segment_ok(segment: object) -> bool:
    """Precondition: ``segment`` is a non-negative int (else ``UsageError``)."""
    SpaceLogic._segment(segment)
    return True


def address_ok(logic: SpaceLogic, address: object) -> bool:
    """Precondition: ``address`` is a non-negative int (else ``UsageError``)."""
    logic.split(address)
    return True


def data_ok(logic: SpaceLogic, data: object, limit: int | None = None) -> bool:
    """Precondition: ``data`` is bytes within the value limit (else ``UsageError``)."""
    logic._data(data, limit)
    return True


def meta_ok(logic: SpaceLogic, metadata: object) -> bool:
    """Precondition: ``metadata`` is bytes within the metadata limit (else ``UsageError``)."""
    return data_ok(logic, metadata, logic.max_value - META_OVERHEAD)


def capture_ok(cap: object) -> bool:
    """Precondition: ``cap`` is a ``CaptureId`` (else ``UsageError``)."""
    SpaceLogic._capture_id(cap)
    return True


def range_ok(logic: SpaceLogic, segment: object, start: object, end: object) -> bool:
    """Precondition: a segment and ``0 <= start < end <= wos_size`` (else ``UsageError``)."""
    logic._range(segment, start, end)  # type: ignore[arg-type]
    return True


def is_value(v: object) -> bool:
    """Postcondition helper: what a read returns, bytes or ``EMPTY``."""
    return type(v) is bytes or v is EMPTY


def covers_address(logic: SpaceLogic, cap: CaptureId, address: int) -> bool:
    """Postcondition helper: ``cap`` covers ``address``."""
    segment, offset = logic.split(address)
    return cap.covers(segment, offset)


def maps_exactly(result: Mapping[int, object], offsets: Iterable[int]) -> bool:
    """Postcondition helper: a batch result has one entry per offset asked, and no other."""
    return set(result) == set(offsets)


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
        if not (type(wos_size) is int and 1 <= wos_size <= MAX_INDEX):
            raise UsageError(f"wos_size must be an int in [1, {MAX_INDEX}]")
        self.wos_size = wos_size
        self.max_value = min(max_value, MAX_VALUE)
        if self.max_value < META_OVERHEAD:
            raise UsageError(f"max_value must be at least {META_OVERHEAD} bytes")
        self.seg = SegmentLogic(wos_size=wos_size, rng=random.Random(seed))
        self.recorder = recorder
        self.process = process

    # -- validation ----------------------------------------------------------------------------------

    def address(self, segment: int, offset: int) -> int:
        self._segment(segment)
        check_offset(self.wos_size, offset)
        return segment * self.wos_size + offset

    def split(self, address: object) -> tuple[int, int]:
        if type(address) is not int or address < 0:
            raise UsageError(f"an address is a non-negative int, got {address!r}")
        segment, offset = divmod(address, self.wos_size)
        if segment > MAX_INT:
            raise UsageError(f"address {address} lies in segment {segment}, beyond the last segment {MAX_INT}")
        return segment, offset

    @staticmethod
    def _segment(segment: object) -> None:
        if type(segment) is not int or segment < 0:
            raise UsageError(f"a segment is a non-negative int, got {segment!r}")
        if segment > MAX_INT:
            raise UsageError(f"a segment is at most {MAX_INT} (2**63 - 1), got {segment}")

    def _data(self, data: object, limit: int | None = None) -> bytes:
        limit = self.max_value if limit is None else limit
        if type(data) is not bytes:
            raise UsageError(f"data must be bytes, got {type(data).__name__}")
        if len(data) > limit:
            raise UsageError(f"data is {len(data)} bytes, over the limit of {limit}")
        return data

    @staticmethod
    def _capture_id(cap: object) -> None:
        if not isinstance(cap, CaptureId):
            raise UsageError(f"capture must be a CaptureId, got {type(cap).__name__}")

    def _range(self, segment: object, start: int, end: int | None) -> int:
        self._segment(segment)
        end = self.wos_size if end is None else end
        check_offsets(self.wos_size, start, end)
        return end

    # -- recording -----------------------------------------------------------------------------------

    def _recorded(
        self, f: str, key: int, value: Any, gen: OpGen[T], finish: Callable[[T], Finish]
    ) -> OpGen[T]:
        """Run ``gen``; record invoke and completion. ``finish(result)`` -> (type, value, existing, results):
        type ``ok``, ``info`` (then the second item is the error) or a failure's name (a ``fail``)."""
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
                rec.info(handle, out_value or "Indeterminate", existing=existing, results=results)
            else:
                rec.fail(handle, kind, existing=existing, results=results)
        return result

    @staticmethod
    def _plain(result: object) -> Finish:
        return "ok", None, None, None

    # -- operations ----------------------------------------------------------------------------------

    @require(lambda segment: segment_ok(segment), "a segment is a non-negative int", error=UsageError)
    @require(lambda self, metadata: meta_ok(self, metadata), "metadata is bytes within the limit", error=UsageError)
    def alloc(self, segment: int, metadata: bytes = b"") -> OpGen[bool]:
        """Try to allocate ``segment``: True iff this call won it (WOS Rule 1)."""
        self._segment(segment)
        metadata = self._data(metadata, self.max_value - META_OVERHEAD)

        def finish(won: bool) -> Finish:
            if won:
                return "ok", None, None, None
            existing = self.seg.meta_cache.get(segment)
            return "AlreadyWritten", None, None if existing is None else decode_meta(existing)[1], None

        gen = self.seg.alloc(segment, metadata)
        return (yield from self._recorded("alloc", segment * self.wos_size, metadata, gen, finish))

    @require(lambda self, metadata: meta_ok(self, metadata), "metadata is bytes within the limit", error=UsageError)
    def alloc_any(self, metadata: bytes = b"", attempts: int = 256) -> OpGen[int]:
        """Allocate a free segment: try the highest segment this client has seen allocated, plus one, and
        the segments above it one by one (``LINEAR_PROBES`` tries: the cheapest when the hint is close);
        after that, find a free segment before each try by exponential then binary probing of the segments'
        allocation state (``SegmentLogic.free_from``: O(log n) reads with n segments taken, however many).
        ``attempts`` bounds the tries lost in a row (Indeterminate after that). Returns the segment won."""
        self._data(metadata, self.max_value - META_OVERHEAD)
        segment = self.seg.next_segment
        for lost in range(attempts):
            if lost:
                segment = max(segment + 1, self.seg.next_segment)
                if lost >= LINEAR_PROBES:
                    segment = yield from self.seg.free_from(segment)
            if segment > MAX_INT:  # the hint ran past the last segment (it was taken): search from 0
                segment = yield from self.seg.free_from(0)
            try:
                won = yield from self.alloc(segment, metadata)
            except (Trimmed, CaptureStale):
                won = False
            if won:
                return segment
        raise Indeterminate(f"lost the race for {attempts} free segments in a row")

    @require(lambda segment: segment_ok(segment), "a segment is a non-negative int", error=UsageError)
    def check(self, segment: int) -> OpGen[bytes | None]:
        """The segment's metadata, or None if it is unallocated; raises Trimmed after a trim."""
        self._segment(segment)
        return (yield from self.seg.metadata(segment))

    @require(lambda segment: segment_ok(segment), "a segment is a non-negative int", error=UsageError)
    def trim(self, segment: int) -> OpGen[None]:
        self._segment(segment)
        gen = self.seg.trim(segment)
        return (yield from self._recorded("trim", segment * self.wos_size, None, gen, self._plain))

    @require(lambda self, address: address_ok(self, address), "an address is a non-negative int", error=UsageError)
    def capture(self, address: int) -> OpGen[CaptureId]:
        segment, offset = self.split(address)
        gen = self.seg.capture(segment, offset, offset + 1)
        return (yield from self._recorded("capture", address, None, gen, self._plain))

    @require(lambda self, segment, start, end: range_ok(self, segment, start, end), "a segment and a range in it",
             error=UsageError)
    def batch_capture(self, segment: int, start: int = 0, end: int | None = None) -> OpGen[CaptureId]:
        end = self._range(segment, start, end)
        gen = self.seg.capture(segment, start, end)
        return (yield from self._recorded("batch_capture", segment * self.wos_size, None, gen, self._plain))

    @require(lambda self, address: address_ok(self, address), "an address is a non-negative int", error=UsageError)
    @require(lambda self, data: data_ok(self, data), "data is bytes within the limit", error=UsageError)
    @require(lambda cap: capture_ok(cap), "a CaptureId", error=UsageError)
    def write(self, address: int, data: bytes, cap: CaptureId) -> OpGen[None]:
        segment, offset = self.split(address)
        data = self._data(data)
        self._capture_id(cap)
        if not cap.covers(segment, offset):
            raise UsageError(f"the capture does not cover address {address} (segment {segment}, offset {offset})")
        checked = check_capture_values(cap, {offset: data})
        if self.recorder is None:  # nothing to record: the segment layer's write without wrapper generators
            return (yield from self._write_unrecorded(segment, offset, data, cap, checked))

        def single() -> OpGen[None]:
            results = yield from self.seg.write(segment, {offset: data}, cap, checked=checked)
            err = results[offset]
            if err is not None:
                raise err

        return (yield from self._recorded("write", address, data, single(), self._plain))

    def _write_unrecorded(
        self, segment: int, offset: int, data: bytes, cap: CaptureId, checked: tuple[tuple[int, bytes], ...]
    ) -> OpGen[None]:
        """``write`` when no history is kept: the same segment-layer write and outcome as the recorded path
        (the capture's values already checked, Rule 6, before anything is sent), without the recording
        wrappers: two generator frames less per write on the client's hot path."""
        results = yield from self.seg.write(segment, {offset: data}, cap, checked=checked)
        err = results[offset]
        if err is not None:
            raise err

    @require(lambda segment: segment_ok(segment), "a segment is a non-negative int", error=UsageError)
    @require(lambda cap: capture_ok(cap), "a CaptureId", error=UsageError)
    def batch_write(
        self, segment: int, values: Mapping[int, bytes], cap: CaptureId
    ) -> OpGen[dict[int, OperationFailed | None]]:
        self._segment(segment)
        if not isinstance(values, Mapping) or not values:
            raise UsageError("batch_write needs a non-empty mapping offset -> bytes")
        self._capture_id(cap)
        clean: dict[int, bytes] = {}
        for off, data in values.items():
            check_offset(self.wos_size, off)
            if not cap.covers(segment, off):
                raise UsageError(f"the capture does not cover offset {off} of segment {segment}")
            clean[off] = self._data(data)
        checked = check_capture_values(cap, clean)

        def finish(res: dict[int, OperationFailed | None]) -> Finish:
            results = {off: outcome_name(e) for off, e in res.items()}
            existing = {off: e.data for off, e in res.items() if isinstance(e, AlreadyWritten)}
            failed = [name for name in results.values() if name != "ok"]
            if not failed:
                return "ok", None, None, results
            if len(failed) < len(results) or "Indeterminate" in failed:
                # some offset took effect or may have: not a ``fail`` (certainly no effect) but ``info``,
                # its error the first failure; the results say which offsets returned with what
                return "info", failed[0], existing or None, results
            return failed[0], None, existing or None, results

        gen = self.seg.write(segment, clean, cap, checked=checked)
        return (yield from self._recorded("batch_write", segment * self.wos_size, clean, gen, finish))

    @require(lambda self, address: address_ok(self, address), "an address is a non-negative int", error=UsageError)
    def read(self, address: int) -> OpGen[bytes | _Empty]:
        segment, offset = self.split(address)

        def single() -> OpGen[bytes | _Empty]:
            res = yield from self.seg.read(segment, (offset,))
            return res[offset]

        def finish(v: bytes | _Empty) -> Finish:
            return "ok", None if v is EMPTY else v, None, None

        return (yield from self._recorded("read", address, None, single(), finish))

    @require(lambda self, segment, start, end: range_ok(self, segment, start, end), "a segment and a range in it",
             error=UsageError)
    def batch_read(self, segment: int, start: int = 0, end: int | None = None) -> OpGen[dict[int, bytes | _Empty]]:
        """Read offsets ``start .. end-1`` in one operation (one Read per acceptor when nothing is
        half-written). Not recorded in the history (its format has no batch read)."""
        end = self._range(segment, start, end)
        return (yield from self.seg.read(segment, tuple(range(start, end))))

    def sleep(self, seconds: float) -> OpGen[None]:
        """Pause this process for ``seconds`` of the driver's clock (the cluster's virtual clock in the
        simulator). Not an operation: nothing is sent and nothing is recorded."""
        yield Sleep(seconds)

    # -- listeners -----------------------------------------------------------------------------------

    def listener(
        self, segment: int, callback: Callable[[int, bytes], object], start: int = 0, end: int | None = None
    ) -> Listener:
        """A listener on ``start .. end-1`` of ``segment``; drive it with ``poll``."""
        end = self._range(segment, start, end)
        if not callable(callback):
            raise UsageError("callback must be callable as callback(offset, data)")
        return Listener(segment, callback, start, end)

    def poll(self, lis: Listener) -> OpGen[bool]:
        """One poll of ``lis`` (WOS Rule 7); True while it should keep polling. Not recorded."""
        return (yield from self.seg.poll(lis))


# ---- drivers and the synchronous client -----------------------------------------------------------------


class Driver(Protocol):
    """Runs one WOR-layer operation to its outcome (blocking); ``sleep`` pauses on the driver's clock."""

    def execute(self, request: OpRequest) -> Outcome: ...

    def sleep(self, seconds: float) -> None: ...


@runtime_checkable
class EventDriver(Protocol):
    """A driver that can also run operations and timers as events (the simulator's client)."""

    def submit(self, request: OpRequest, then: Callable[[Outcome], None]) -> None: ...

    def call_later(self, delay: float, fn: Callable[[], None]) -> None: ...


def check_core(gen: object) -> None:
    """``run`` takes a generator over the client API (e.g. ``core.append(ws.logic, b"x")``)."""
    if not isinstance(gen, Generator):
        raise UsageError(f"run takes a generator over the client API (e.g. an app core's call), got "
                         f"{type(gen).__name__}")


def run_sync(driver: Driver, gen: OpGen[T]) -> T:
    """Drive a generator of the API to completion with a blocking driver."""
    try:
        req = next(gen)
        while True:
            if isinstance(req, Sleep):
                driver.sleep(req.seconds)
                req = gen.send(SLEPT)
                continue
            try:
                outcome = driver.execute(req)
            except OperationFailed as e:  # e.g. PeersRefused: the operation's generator records and raises it
                req = gen.throw(e)
                continue
            req = gen.send(outcome)
    except StopIteration as stop:
        result: T = stop.value
        return result
    except BaseException:  # e.g. KeyboardInterrupt while the driver waited: end the generator now (see run_async)
        gen.close()
        raise


def run_events(driver: EventDriver, gen: OpGen[T], then: Callable[[T], None]) -> None:
    """Drive a generator with an event-driven driver; ``then(result)`` runs when it returns. An exception
    that ends the generator propagates out of the event that raised it."""

    def advance(outcome: Outcome | None) -> None:
        try:
            req = next(gen) if outcome is None else gen.send(outcome)
        except StopIteration as stop:
            then(stop.value)
            return
        submit_event(driver, req, advance)

    advance(None)


def submit_event(driver: EventDriver, req: ClientRequest, then: Callable[[Outcome], None]) -> None:
    """Hand one request of a generator to an event-driven driver: an operation, or a sleep as a timer."""
    if isinstance(req, Sleep):
        driver.call_later(req.seconds, lambda: then(SLEPT))
    else:
        driver.submit(req, then)


def _poll_with_events(driver: EventDriver, logic: SpaceLogic, lis: Listener, interval: float) -> None:
    def tick() -> None:
        if not lis.active:
            lis.stopped()
            return

        def after(keep: bool) -> None:
            if keep:
                driver.call_later(interval, tick)
            else:
                lis.stopped()

        run_events(driver, logic.poll(lis), after)

    driver.call_later(0.0, tick)


def _poll_with_thread(driver: Driver, logic: SpaceLogic, lis: Listener, interval: float) -> None:
    def loop() -> None:
        try:
            while run_sync(driver, logic.poll(lis)):
                lis.sleep(interval)
        except Exception as e:  # the driver failed (e.g. it was closed): the listener ends, keeping why
            lis.error = e
        finally:
            lis.stopped()

    threading.Thread(target=loop, name=f"wormspace-listen-{lis.segment}", daemon=True).start()


class WormSpace:
    """The synchronous client. Get one from ``Cluster.simulated(...).client()``, ``Cluster.local(...)``,
    or ``wormspace.connect("cluster.toml")``."""

    def __init__(self, logic: SpaceLogic, driver: Driver) -> None:
        self.logic = logic
        self.driver = driver

    def run(self, gen: OpGen[T]) -> T:
        """Run a generator over this client's API (``self.logic``'s methods; e.g. an app's core) to its
        result, blocking. This is how apps built as generator cores get a synchronous face."""
        check_core(gen)
        return run_sync(self.driver, gen)

    @property
    def aio(self) -> AsyncClient:
        """The asyncio twin of this client: the same logic (process, captures, history), its operations
        coroutines on the awaiting caller's loop. Over TCP they use that loop's own connections; on a
        simulated cluster the coroutines take turns running the simulation (sleeps on its virtual clock)."""
        from wormspace.aio import AsyncClient

        if not callable(getattr(self.driver, "execute_async", None)):
            raise UsageError(f"this client's driver ({type(self.driver).__name__}) has no asyncio face")
        return AsyncClient(self.logic, self.driver)  # type: ignore[arg-type]

    @property
    def wos_size(self) -> int:
        return self.logic.wos_size

    @ensure(lambda self, segment, offset, result: result == segment * self.wos_size + offset)
    def address(self, segment: int, offset: int) -> int:
        """The address of ``offset`` in ``segment``: ``segment * wos_size + offset``."""
        return self.logic.address(segment, offset)

    @ensure(lambda self, address, result: result[0] * self.wos_size + result[1] == address, "split inverts address")
    @ensure(lambda self, result: 0 <= result[1] < self.wos_size, "the offset lies in the segment")
    def split(self, address: int) -> tuple[int, int]:
        """-> (segment, offset)."""
        return self.logic.split(address)

    @overload
    def alloc(self, metadata: bytes = b"", *, segment: None = None) -> int: ...

    @overload
    def alloc(self, metadata: bytes = b"", *, segment: int) -> bool: ...

    @ensure(
        lambda segment, result: type(result) is int and result >= 0 if segment is None else type(result) is bool,
        "alloc_any returns a non-negative segment; alloc(segment) returns whether it won",
    )
    def alloc(self, metadata: bytes = b"", *, segment: int | None = None) -> int | bool:
        """Allocate: with ``segment``, try that one and return True iff this call won it; without,
        allocate a free segment and return its id."""
        if segment is None:
            return run_sync(self.driver, self.logic.alloc_any(metadata))
        return run_sync(self.driver, self.logic.alloc(segment, metadata))

    @ensure(lambda result: result is None or type(result) is bytes, "metadata is bytes or None")
    def check(self, segment: int) -> bytes | None:
        """The segment's metadata (None if unallocated; raises Trimmed after a trim)."""
        return run_sync(self.driver, self.logic.check(segment))

    def trim(self, segment: int) -> None:
        """Trim the segment: afterwards every address in it answers Trimmed."""
        run_sync(self.driver, self.logic.trim(segment))

    @ensure(lambda self, address, result: covers_address(self.logic, result, address), "the capture covers the address")
    def capture(self, address: int) -> CaptureId:
        return run_sync(self.driver, self.logic.capture(address))

    @ensure(lambda segment, start, result: result.covers(segment, start), "the capture covers the range")
    def batch_capture(self, segment: int, start: int = 0, end: int | None = None) -> CaptureId:
        """Capture offsets ``start .. end-1`` (default: the whole segment) with one Prepare per acceptor."""
        return run_sync(self.driver, self.logic.batch_capture(segment, start, end))

    def write(self, address: int, data: bytes, capture: CaptureId) -> None:
        run_sync(self.driver, self.logic.write(address, data, capture))

    @ensure(lambda values, result: maps_exactly(result, values), "a result per offset given, no other")
    def batch_write(
        self, segment: int, values: Mapping[int, bytes], capture: CaptureId
    ) -> dict[int, OperationFailed | None]:
        """Write many offsets through one capture: one Accept per acceptor. Per offset: None (ok) or the
        failure (not raised: a batch is not atomic across offsets)."""
        return run_sync(self.driver, self.logic.batch_write(segment, values, capture))

    @ensure(lambda result: is_value(result), "a read returns bytes or EMPTY")
    def read(self, address: int) -> bytes | _Empty:
        return run_sync(self.driver, self.logic.read(address))

    @ensure(
        lambda self, start, end, result: maps_exactly(result, range(start, self.wos_size if end is None else end))
        and all(is_value(v) for v in result.values()),
        "bytes or EMPTY for each offset of the range, no other",
    )
    def batch_read(self, segment: int, start: int = 0, end: int | None = None) -> dict[int, bytes | _Empty]:
        """Read offsets ``start .. end-1`` (default: the whole segment) in one operation: offset -> data or
        EMPTY. Raises like ``read``; Indeterminate if any offset did not settle."""
        return run_sync(self.driver, self.logic.batch_read(segment, start, end))

    def listen(
        self,
        segment: int,
        callback: Callable[[int, bytes], object],
        *,
        start: int = 0,
        end: int | None = None,
        interval: float = DEFAULT_POLL_INTERVAL,
    ) -> Listener:
        """Call ``callback(offset, data)`` once for each offset of ``start .. end-1`` as this client learns
        it is written, by polling every ``interval`` seconds (see the module docstring for the
        guarantees). Works on segments not allocated yet. Returns the handle; ``handle.cancel()`` stops it."""
        if isinstance(interval, bool) or not (isinstance(interval, (int, float)) and interval > 0):
            raise UsageError(f"interval must be a positive number of seconds, got {interval!r}")
        lis = self.logic.listener(segment, callback, start, end)
        if isinstance(self.driver, EventDriver):
            _poll_with_events(self.driver, self.logic, lis, float(interval))
        else:
            _poll_with_thread(self.driver, self.logic, lis, float(interval))
        return lis


__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_WOS_SIZE",
    "SLEPT",
    "ClientRequest",
    "Driver",
    "EventDriver",
    "Listener",
    "OpGen",
    "Sleep",
    "SpaceLogic",
    "WormSpace",
    "WormSpaceSpec",
    "abstract_space",
    "address_ok",
    "capture_ok",
    "covers_address",
    "data_ok",
    "is_value",
    "maps_exactly",
    "meta_ok",
    "range_ok",
    "segment_ok",
    "outcome_name",
    "run_events",
    "run_sync",
    "submit_event",
]
