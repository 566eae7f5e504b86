"""The asyncio client: the same generator API as the synchronous client, driven by an async driver.

``AsyncClient(logic, driver)`` needs a driver with ``async execute_async(request) -> Outcome`` (the TCP
driver of ``wormspace.runtime.driver`` has one, and runs on the caller's loop). Every method mirrors
``WormSpace``'s and is a coroutine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from wormspace._contracts import ensure
from wormspace.errors import OperationFailed
from wormspace.layers.wor import OpRequest, Outcome, _Empty
from wormspace.layers.wormspace import SLEPT, OpGen, Sleep, SpaceLogic, covers_address, is_value, maps_exactly
from wormspace.layers.wos import CaptureId

T = TypeVar("T")


class AsyncDriver(Protocol):
    async def execute_async(self, request: OpRequest) -> Outcome: ...


async def run_async(driver: AsyncDriver, gen: OpGen[T]) -> T:
    """Drive a generator of the API to completion with an async driver."""
    try:
        req = next(gen)
        while True:
            if isinstance(req, Sleep):
                await asyncio.sleep(req.seconds)
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
        return await run_async(self.driver, gen)

    @ensure(lambda self, segment, offset, result: result == segment * self.wos_size + offset)
    def address(self, segment: int, offset: int) -> int:
        return self.logic.address(segment, offset)

    @ensure(
        lambda segment, result: type(result) is int and result >= 0 if segment is None else type(result) is bool,
        "alloc_any returns a non-negative segment; alloc(segment) returns whether it won",
    )
    async def alloc(self, metadata: bytes = b"", *, segment: int | None = None) -> Any:
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
