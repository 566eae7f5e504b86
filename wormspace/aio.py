"""The asyncio client: the same generator API as the synchronous client, driven by an async driver.

``AsyncClient(logic, driver)`` needs a driver with ``async execute_async(request) -> Outcome`` (the TCP
driver of ``wormspace.runtime.driver`` has one, and runs on the caller's loop; so does a simulated
client's, on the cluster's virtual clock, with ``async sleep_async(seconds)`` for sleeps on that clock).
``ws.aio`` of any client is one. Every operation of ``WormSpace`` is mirrored as a coroutine (``listen``,
which polls on the driver's timers, is the synchronous client's only).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol, TypeVar, overload

from wormspace._contracts import ensure
from wormspace.errors import OperationFailed
from wormspace.layers.wor import OpRequest, Outcome, _Empty
from wormspace.layers.wormspace import (
    SLEPT,
    OpGen,
    Sleep,
    SpaceLogic,
    check_core,
    covers_address,
    is_value,
    maps_exactly,
)
from wormspace.layers.wos import CaptureId

T = TypeVar("T")


class AsyncDriver(Protocol):
    async def execute_async(self, request: OpRequest) -> Outcome: ...


async def run_async(driver: AsyncDriver, gen: OpGen[T]) -> T:
    """Drive a generator of the API to completion with an async driver."""
    try:
        req = next(gen)
        while True:
            if isinstance(req, Sleep):  # on the driver's clock when it has one (the simulator's), else real time
                pause = getattr(driver, "sleep_async", None)
                await (pause(req.seconds) if pause is not None else asyncio.sleep(req.seconds))
                req = gen.send(SLEPT)
                continue
            try:
                outcome = await driver.execute_async(req)
            except OperationFailed as e:  # e.g. PeersRefused: the operation's generator records and raises it
                req = gen.throw(e)
                continue
            req = gen.send(outcome)
    except StopIteration as stop:
        result: T = stop.value
        return result
    except BaseException:  # e.g. the task was cancelled (wait_for, task.cancel()) while it awaited the driver
        gen.close()  # now, not whenever the collector gets to it: the core's state (a segment it was claiming,
        raise  # writes in flight) is released and its recorded operation ends info, before anything else runs


class AsyncClient:
    """asyncio twin of ``WormSpace``. Concurrent coroutines on one client share its driver on their loop:
    their operations of one loop turn run merged into batch operations, and their messages share frames."""

    def __init__(self, logic: SpaceLogic, driver: AsyncDriver) -> None:
        self.logic = logic
        self.driver = driver

    @property
    def wos_size(self) -> int:
        return self.logic.wos_size

    async def run(self, gen: OpGen[T]) -> T:
        """Run a generator over this client's API (e.g. an app's core) to its result."""
        check_core(gen)
        return await run_async(self.driver, gen)

    @ensure(lambda self, segment, offset, result: result == segment * self.wos_size + offset)
    def address(self, segment: int, offset: int) -> int:
        return self.logic.address(segment, offset)

    @ensure(lambda self, address, result: result[0] * self.wos_size + result[1] == address, "split inverts address")
    @ensure(lambda self, result: 0 <= result[1] < self.wos_size, "the offset lies in the segment")
    def split(self, address: int) -> tuple[int, int]:
        """-> (segment, offset)."""
        return self.logic.split(address)

    @overload
    async def alloc(self, metadata: bytes = b"", *, segment: None = None) -> int: ...

    @overload
    async def alloc(self, metadata: bytes = b"", *, segment: int) -> bool: ...

    @ensure(
        lambda segment, result: type(result) is int and result >= 0 if segment is None else type(result) is bool,
        "alloc_any returns a non-negative segment; alloc(segment) returns whether it won",
    )
    async def alloc(self, metadata: bytes = b"", *, segment: int | None = None) -> int | bool:
        if segment is None:
            return await run_async(self.driver, self.logic.alloc_any(metadata))
        return await run_async(self.driver, self.logic.alloc(segment, metadata))

    @ensure(lambda result: result is None or type(result) is bytes, "metadata is bytes or None")
    async def check(self, segment: int) -> bytes | None:
        return await run_async(self.driver, self.logic.check(segment))

    async def trim(self, segment: int) -> None:
        await run_async(self.driver, self.logic.trim(segment))

    @ensure(lambda self, address, result: covers_address(self.logic, result, address), "the capture covers the address")
    async def capture(self, address: int) -> CaptureId:
        return await run_async(self.driver, self.logic.capture(address))

    @ensure(lambda segment, start, result: result.covers(segment, start), "the capture covers the range")
    async def batch_capture(self, segment: int, start: int = 0, end: int | None = None) -> CaptureId:
        return await run_async(self.driver, self.logic.batch_capture(segment, start, end))

    async def write(self, address: int, data: bytes, capture: CaptureId) -> None:
        await run_async(self.driver, self.logic.write(address, data, capture))

    @ensure(lambda values, result: maps_exactly(result, values), "a result per offset given, no other")
    async def batch_write(
        self, segment: int, values: Mapping[int, bytes], capture: CaptureId
    ) -> dict[int, OperationFailed | None]:
        return await run_async(self.driver, self.logic.batch_write(segment, values, capture))

    @ensure(lambda result: is_value(result), "a read returns bytes or EMPTY")
    async def read(self, address: int) -> bytes | _Empty:
        return await run_async(self.driver, self.logic.read(address))

    @ensure(
        lambda self, start, end, result: maps_exactly(result, range(start, self.wos_size if end is None else end))
        and all(is_value(v) for v in result.values()),
        "bytes or EMPTY for each offset of the range, no other",
    )
    async def batch_read(self, segment: int, start: int = 0, end: int | None = None) -> dict[int, bytes | _Empty]:
        return await run_async(self.driver, self.logic.batch_read(segment, start, end))
