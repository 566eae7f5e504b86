"""The client driver over TCP: a ``ClientCore`` behind a ``Coalescer``, its effects carried out by a
``TcpTransport`` on an asyncio event loop.

Rules:

1. ``AsyncTcpDriver`` runs on ONE event loop: the caller's. It binds to the running loop on its first
   ``await execute_async(request)`` (or to the loop it is given) and never hops threads: the operation's
   messages are sent, its replies handled and its outcome delivered on that loop. Every coroutine of that
   loop shares the driver (one node id, one connection per acceptor). Calling it from another loop is a
   ``UsageError``.
2. Operations submitted in one turn of the loop run merged (``wormspace.layers.coalesce``): concurrent single
   writes, reads or captures on one segment become one batch operation, one request per acceptor.
3. ``TcpDriver`` is the synchronous facade: ``execute(request)`` blocks the calling thread while an
   ``AsyncTcpDriver`` runs on a private loop in a background thread (started on the first synchronous call).
   ``await execute_async(request)`` on a ``TcpDriver`` never hops threads either: each calling event loop
   gets its own ``AsyncTcpDriver`` (its own node id and connections), created on first use.
4. ``close()`` (or ``await aclose()``) ends a driver: operations still running end ``Indeterminate``; any
   later call is a ``UsageError`` ("this client is closed").
5. An ``Indeterminate`` outcome while acceptors of the request's group refuse this client (wrong key,
   another cluster) is raised as ``PeersRefused`` naming them and why.

Event loops come from ``wormspace.layers.tcp.new_event_loop``: uvloop's when it is installed (the ``fast``
extra), asyncio's otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import Future as ConcurrentFuture
from typing import Any

from wormspace.errors import PeersRefused, UsageError
from wormspace.identity import check_cluster_id
from wormspace.layers.coalesce import Coalescer
from wormspace.layers.effects import Effect, Send, SetTimer
from wormspace.layers.messages import MAX_VALUE, Accept, Fence, Message, Prepare, Read
from wormspace.layers.tcp import TcpTransport, new_event_loop
from wormspace.layers.wor import ClientCore, Config, OpRequest, Outcome
from wormspace.runtime.config import ClusterConfig

log = logging.getLogger("wormspace.runtime.driver")

_REQUEST_TYPES = (Prepare, Accept, Read, Fence)


class AsyncTcpDriver:
    """Runs a ``ClientCore`` over TCP on the caller's event loop (Rules 1, 2, 4, 5).

    ``await execute_async(request)`` runs one operation to its outcome; ``await aclose()`` ends the driver."""

    def __init__(
        self,
        peers: dict[int, tuple[str, int]],
        *,
        groups: Sequence[Sequence[int]],
        cluster_id: str,
        node_id: int | None = None,
        config: Config | None = None,
        auth_key: bytes | None = None,
        max_value: int = MAX_VALUE,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        unknown = {i for g in groups for i in g} - set(peers)
        if unknown:
            raise UsageError(f"groups name acceptors without an address: {sorted(unknown)}")
        # Ballots are (number, node): node ids must differ between clients; 62 random bits make a clash
        # practically impossible without any coordination.
        self.node_id = secrets.randbits(62) if node_id is None else node_id
        self.core = ClientCore(node_id=self.node_id, groups=groups, config=config)
        self._peers = dict(peers)
        self._cluster_id = check_cluster_id(cluster_id)
        self._groups = [tuple(g) for g in groups]
        self._auth_key = auth_key
        self._max_value = max_value
        self._loop = loop
        self._transport: TcpTransport | None = None
        self._coalescer: Coalescer | None = None
        self._closed = False

    @classmethod
    def from_config(cls, cfg: ClusterConfig, **kwargs: Any) -> AsyncTcpDriver:
        """A driver for the cluster described by ``cfg`` (addresses, groups, auth key, max value)."""
        return cls(
            cfg.addresses(),
            groups=cfg.acceptor_groups(),
            cluster_id=cfg.cluster_id,
            auth_key=cfg.auth_key(),
            max_value=cfg.max_value,
            **kwargs,
        )

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop this driver runs on (``None`` until its first operation)."""
        return self._loop

    @property
    def closed(self) -> bool:
        return self._closed

    def _bind(self) -> Coalescer:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise UsageError("this driver runs on another event loop; create one driver per loop")
        if self._coalescer is None:
            self._transport = TcpTransport(
                self._peers, self._on_message, self._auth_key, cluster_id=self._cluster_id,
                max_value=self._max_value,
            )
            self._coalescer = Coalescer(self.core, schedule=loop.call_soon, carry_out=self._carry_out)
        return self._coalescer

    def _carry_out(self, effects: list[Effect]) -> None:
        transport = self._transport
        loop = self._loop
        assert transport is not None and loop is not None
        for e in effects:
            if isinstance(e, Send):
                transport.send(e.dst, e.msg)
            elif isinstance(e, SetTimer):
                loop.call_later(e.delay, self._on_timeout, e.token)

    def _on_message(self, src: int, msg: Message) -> None:
        if isinstance(msg, _REQUEST_TYPES):
            log.warning("acceptor %d sent a request (%s) to a client; ignored", src, type(msg).__name__)
            return
        self._carry_out(self.core.on_reply(src, msg))

    def _on_timeout(self, token: int) -> None:
        if not self._closed:
            self._carry_out(self.core.on_timeout(token))

    async def execute_async(self, request: OpRequest) -> Outcome:
        """Run one operation to its outcome on the running loop (the driver's)."""
        if self._closed:
            raise UsageError("this client is closed")
        coalescer = self._coalescer
        if coalescer is None or asyncio.get_running_loop() is not self._loop:
            coalescer = self._bind()
        fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

        def then(outcome: Outcome) -> None:
            if not fut.done():
                fut.set_result(outcome)

        coalescer.submit(request, then)
        return self._explain(request, await fut)

    def _explain(self, request: OpRequest, outcome: Outcome) -> Outcome:
        """Rule 5: an indeterminate outcome while acceptors of the request's group refuse this client is
        raised as ``PeersRefused`` naming them and why, not left as a bare timeout."""
        if outcome.error != "Indeterminate" or self._transport is None:
            return outcome
        group = self._groups[request.segment % len(self._groups)]
        refusals = self._transport.refusals
        refused = [i for i in group if i in refusals]
        if not refused:
            return outcome
        by_reason: dict[str, list[int]] = {}
        for i in refused:
            by_reason.setdefault(refusals[i], []).append(i)

        def where(i: int) -> str:
            return f"{i} at {self._peers[i][0]}:{self._peers[i][1]}"

        detail = "; ".join(
            f"acceptor{'s' if len(ids) > 1 else ''} {', '.join(map(where, ids))} {why}"
            for why, ids in by_reason.items()
        )
        raise PeersRefused(f"no quorum answered ({len(refused)} of {len(group)} acceptors refused): {detail}")

    @property
    def transport(self) -> TcpTransport:
        if self._transport is None:
            raise UsageError("this driver has not run an operation yet")
        return self._transport

    @property
    def merged_ops(self) -> int:
        """Operations that carried more than one caller's request (Rule 2)."""
        return 0 if self._coalescer is None else self._coalescer.merged_ops

    def _end_waiting(self) -> None:
        """Rule 4: operations still running end ``Indeterminate`` (on the driver's loop)."""
        self._closed = True
        if self._coalescer is None:
            return
        for request, then in self._coalescer.running():
            then(Outcome(error="Indeterminate", unknown=request.targets()))
        self._coalescer.forget()

    async def aclose(self) -> None:
        """End the driver from its own loop (Rule 4). Idempotent."""
        self._end_waiting()
        if self._transport is not None:
            await self._transport.close()

    def close_from_outside(self, timeout: float = 5.0) -> None:
        """End the driver from code not awaiting on its loop: from another thread, the loop's close runs
        there and is waited for; from a callback of the loop itself it is scheduled; on a loop that no
        longer runs only the bookkeeping is done (its sockets went with the loop)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._closed = True
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._end_waiting()
            if self._transport is not None:
                loop.create_task(self._transport.close())
            return
        if loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.aclose(), loop).result(timeout)
            self._closed = True
            return
        self._closed = True
        with contextlib.suppress(Exception):
            loop.run_until_complete(self.aclose())


class TcpDriver:
    """The synchronous facade over ``AsyncTcpDriver`` (Rule 3).

    ``execute(request)`` blocks until the operation's outcome (thread-safe; not from the private loop's
    thread); ``await execute_async(request)`` runs on the caller's own loop without a thread hop.
    ``close()`` ends it and every per-loop driver it made."""

    def __init__(
        self,
        peers: dict[int, tuple[str, int]],
        *,
        groups: Sequence[Sequence[int]],
        cluster_id: str,
        node_id: int | None = None,
        config: Config | None = None,
        auth_key: bytes | None = None,
        max_value: int = MAX_VALUE,
    ) -> None:
        self._kwargs: dict[str, Any] = {
            "groups": [tuple(g) for g in groups],
            "cluster_id": cluster_id,
            "config": config,
            "auth_key": auth_key,
            "max_value": max_value,
        }
        self._peers = dict(peers)
        self._sync = AsyncTcpDriver(self._peers, node_id=node_id, **self._kwargs)
        self.node_id = self._sync.node_id
        self.core = self._sync.core
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncTcpDriver] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    @classmethod
    def from_config(cls, cfg: ClusterConfig, **kwargs: Any) -> TcpDriver:
        """A driver for the cluster described by ``cfg`` (addresses, groups, auth key, max value)."""
        return cls(
            cfg.addresses(),
            groups=cfg.acceptor_groups(),
            cluster_id=cfg.cluster_id,
            auth_key=cfg.auth_key(),
            max_value=cfg.max_value,
            **kwargs,
        )

    # -- the private loop, for synchronous callers ----------------------------------------------------

    def _private_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise UsageError("this client is closed")
            if self._loop is None:
                loop = new_event_loop()
                ready: ConcurrentFuture[None] = ConcurrentFuture()
                thread = threading.Thread(
                    target=self._run, args=(loop, ready), name="wormspace-tcp-driver", daemon=True
                )
                thread.start()
                ready.result()
                self._loop, self._thread = loop, thread
            return self._loop

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, ready: ConcurrentFuture[None]) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set_result, None)
        try:
            loop.run_forever()
        finally:
            loop.close()

    def _in_loop_thread(self) -> bool:
        return self._thread is not None and threading.get_ident() == self._thread.ident

    def execute(self, request: OpRequest) -> Outcome:
        """Run one operation to its outcome, blocking this thread."""
        if self._in_loop_thread():
            raise UsageError("TcpDriver.execute would deadlock on the driver's own loop; use execute_async")
        if self._closed:
            raise UsageError("this client is closed")
        loop = self._private_loop()
        return asyncio.run_coroutine_threadsafe(self._sync.execute_async(request), loop).result()

    def sleep(self, seconds: float) -> None:
        """Pause the calling thread (an app's timeout over TCP runs on real time)."""
        time.sleep(seconds)

    # -- asyncio callers: each loop gets its own driver, no thread hop ---------------------------------

    def for_loop(self, loop: asyncio.AbstractEventLoop | None = None) -> AsyncTcpDriver:
        """The driver that serves ``loop`` (the running one by default)."""
        if self._closed:
            raise UsageError("this client is closed")
        loop = loop or asyncio.get_running_loop()
        if loop is self._loop:
            return self._sync
        with self._lock:
            d = self._per_loop.get(loop)
            if d is None:
                d = AsyncTcpDriver(self._peers, loop=loop, **self._kwargs)
                self._per_loop[loop] = d
            return d

    async def execute_async(self, request: OpRequest) -> Outcome:
        """Run one operation to its outcome on the caller's loop (no thread hop)."""
        return await self.for_loop().execute_async(request)

    @property
    def transport(self) -> TcpTransport:
        """The private loop's transport (for synchronous callers' statistics)."""
        return self._sync.transport

    def close(self) -> None:
        """End every driver (waiting operations end ``Indeterminate``) and the private loop. Idempotent."""
        if self._in_loop_thread():
            raise UsageError("TcpDriver.close must not run on the driver's own loop")
        with self._lock:
            if self._closed:
                return
            self._closed = True
            others = list(self._per_loop.values())
            self._per_loop.clear()
        for d in others:
            d.close_from_outside()
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            self._sync.close_from_outside()
            return
        asyncio.run_coroutine_threadsafe(self._sync.aclose(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()

    def __enter__(self) -> TcpDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["AsyncTcpDriver", "TcpDriver"]
