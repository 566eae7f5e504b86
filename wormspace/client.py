"""The client API for apps: everything an app built on WormSpace may use, and nothing below it.

Rule 1. An app is a *generator core* over ``SpaceLogic``'s public generator methods -- ``alloc``,
        ``alloc_any``, ``check``, ``capture``, ``batch_capture``, ``write``, ``batch_write``, ``read``,
        ``batch_read``, ``trim``, ``poll`` and ``sleep`` -- written as ``yield from logic.write(...)``.
        It never sees acceptors, ballots, messages or the WOR layer.
Rule 2. The same core runs under every driver: ``ws.run(gen)`` on the synchronous client (simulated or
        TCP), ``await ws.aio.run(gen)`` / ``await AsyncClient.run(gen)`` on asyncio, and
        ``cluster.spawn(lambda logic: gen(logic))`` as a concurrent process of the simulator. Apps get their
        sync and asyncio faces by wrapping their cores with these, nothing more.
Rule 3. Time is the driver's: ``yield from logic.sleep(s)`` pauses on the cluster's virtual clock in the
        simulator and on real time over TCP. Timeouts in apps (a hole in a log, a silent voter) are sleeps.
Rule 4. Outcomes are the library's exceptions: ``CaptureStale`` and ``AlreadyWritten`` (certain failures),
        ``Trimmed``, ``Unallocated``, ``Indeterminate`` (the operation may or may not have taken effect).
"""

from __future__ import annotations

from wormspace.aio import AsyncClient, run_async
from wormspace.errors import (
    AlreadyWritten,
    CaptureStale,
    ContractViolation,
    Indeterminate,
    OperationFailed,
    Trimmed,
    Unallocated,
    UsageError,
    WormSpaceError,
)
from wormspace.layers.wor import EMPTY
from wormspace.layers.wormspace import OpGen, Sleep, SpaceLogic, WormSpace, run_events, run_sync
from wormspace.layers.wos import CaptureId, Listener

__all__ = [
    "EMPTY",
    "AlreadyWritten",
    "AsyncClient",
    "CaptureId",
    "CaptureStale",
    "ContractViolation",
    "Indeterminate",
    "Listener",
    "OpGen",
    "OperationFailed",
    "Sleep",
    "SpaceLogic",
    "Trimmed",
    "Unallocated",
    "UsageError",
    "WormSpace",
    "WormSpaceError",
    "run_async",
    "run_events",
    "run_sync",
]
