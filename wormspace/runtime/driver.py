"""The client driver over TCP: a ``ClientCore`` behind a ``Coalescer``, its effects carried out by a
``TcpTransport`` on an asyncio event loop.

Rules:

1. ``AsyncTcpDriver`` runs on ONE event loop: the caller's. It binds to the running loop on its first
   ``await execute_async(request)`` (or to the loop it is given) and never hops threads: the operation's
   messages are sent, its replies handled and its outcome delivered on that loop. Every coroutine of that
   loop shares the driver (one node id, one connection per acceptor). Calling it from another loop is a
   ``UsageError``.
2. Operations submitted in one turn of the loop run merged (``wormspace.layers.coalesce``): concurrent single
   writes, reads or captures on one segment become one batch operation, one request per acceptor; at the
   end of that turn their requests are written at once, one frame per acceptor.
3. ``TcpDriver`` is the synchronous facade: ``execute(request)`` runs an ``AsyncTcpDriver`` on a private
   loop that the calling thread runs itself until its outcome (no thread hop, no background thread; the
   loop does not run between calls, and replies or timers that come meanwhile are handled by the next call).
   When several threads call at once, the first runs the loop until every caller's operation has ended and
   the others hand theirs to it and wait; if it is interrupted, a waiting caller takes the loop over. The
   caller that runs the loop starts its own operation in the loop's first turn (as a timer due at once: on
   asyncio's loop it runs after that turn's I/O events, so a connection the acceptor closed while the loop
   was not running is seen closed before the request is written to it), at once (``Coalescer.start_now``: it
   merges only with operations other threads handed over and that are still queued) and its requests leave
   in that turn: one turn, not two, before the round trip. Operations handed over by other threads are
   queued and merged as in Rule 2. A
   blocking call from inside a coroutine (a thread whose own loop is running) runs in a short-lived thread.
   ``await execute_async(request)`` on a ``TcpDriver`` never hops threads either: each calling event loop
   gets its own ``AsyncTcpDriver`` (its own node id and connections), created on first use, and closed
   with that loop: when the loop shuts down its async generators (``asyncio.run``, ``asyncio.Runner``,
   ``uvloop.run`` do at their end) its connections are closed; one whose loop was closed without that is
   dropped when another loop first calls. So ``asyncio.run(ws.aio....)`` again and again leaves no socket
   open, here or at the acceptors.
4. ``close()`` (or ``await aclose()``) ends a driver: operations still running end ``Indeterminate``; any
   later call is a ``UsageError`` ("this client is closed"). A ``TcpDriver`` still open when the interpreter
   exits is closed then (``atexit``): its private loop's tasks would otherwise be destroyed pending, each
   logged by asyncio as an error.
5. An ``Indeterminate`` outcome while acceptors of the request's group refuse this client (wrong key,
   another cluster) is raised as ``PeersRefused`` naming them and why.
6. The core's phase timers (``SetTimer``) go into one heap, with one loop timer set for its earliest entry
   whose operation still runs: a phase timer outlives its phase (nearly every one does: the reply came)
   without ever waking the loop or costing a handle of its own; the timers due together fire together and
   the retries they lead to leave at once.
7. A phase timer measures silence, not size: when it is due while an acceptor the phase still waits for is
   visibly at work on it (``TcpTransport.busy``: our frames still leaving, its reply arriving, or a large
   frame of ours still being taken in), it is held for another ``timeout`` instead of firing, for at most
   ``MAX_HOLD`` seconds in all. So a batch of many large values is not resent (the same bytes again) and
   ended ``Indeterminate`` by a timer that does not know its size, while an acceptor that is down, stuck
   or silent times out as before. Holding a timer is only a later timeout: the core's safety never
   depends on when timeouts come.
8. A reply no honest acceptor sends (wor.py Rule 6: a lie the client core can catch, such as a vote above the
   ballot promised or an answer of the wrong kind) is treated as lost and logged as a WARNING naming the
   acceptor and its address; a peer that keeps lying is logged at most once every ``FAULT_LOG_SECONDS``
   seconds, with the count of the lies not logged since (``faults`` counts them all, per acceptor).

The synchronous driver's private loop is asyncio's own, whatever ``WORMSPACE_LOOP`` says and whether or not
uvloop is installed: the loop runs once per call, and uvloop sets up its signal wakeup (a socket pair made and
closed) on every run in the main thread, which cost ~80 us of CPU per operation one at a time (measured). The
asynchronous driver runs on the caller's loop, whichever it is; ``wormspace serve`` uses
``wormspace.layers.tcp.new_event_loop`` (uvloop's when installed).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import heapq
import logging
import secrets
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

from wormspace.errors import PeersRefused, UsageError
from wormspace.identity import check_cluster_id
from wormspace.layers.coalesce import Coalescer
from wormspace.layers.effects import Effect, Send, SetTimer
from wormspace.layers.messages import MAX_VALUE, Accept, Fence, Message, Prepare, Read
from wormspace.layers.tcp import TcpTransport
from wormspace.layers.wor import ClientCore, Config, Op, OpRequest, Outcome, op_of_req
from wormspace.runtime.config import ClusterConfig

log = logging.getLogger("wormspace.runtime.driver")

MAX_HOLD = 60.0
"""Seconds a phase timer may be held in all while acceptors are busy with its phase (Rule 7): the acceptors'
own bound on the time a frame may take (``--frame-timeout``, 60 s by default)."""

_REQUEST_TYPES = (Prepare, Accept, Read, Fence)

FAULT_LOG_SECONDS = 10.0
"""A lying acceptor is logged at most once this many seconds (Rule 8)."""



def _config_kwargs(cfg: ClusterConfig) -> dict[str, Any]:
    """The driver settings a cluster file fixes besides the addresses."""
    return {"groups": cfg.acceptor_groups(), "cluster_id": cfg.cluster_id, "auth_key": cfg.auth_key(),
            "max_value": cfg.max_value}

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
        self.core = ClientCore(node_id=self.node_id, groups=groups, config=config, on_fault=self._on_fault)
        self.faults: dict[int, int] = {}  # acceptor -> replies refused as lies (Rule 8)
        self._fault_logged: dict[int, tuple[float, int]] = {}  # acceptor -> (when last logged, count then)
        self._peers = dict(peers)
        self._cluster_id = check_cluster_id(cluster_id)
        self._groups = [tuple(g) for g in groups]
        self._auth_key = auth_key
        self._max_value = max_value
        self._loop = loop
        self._transport: TcpTransport | None = None
        self._coalescer: Coalescer | None = None
        self._closed = False
        self._timers: list[tuple[float, int]] = []  # (when, token): the phase timers, a heap
        self._timer: asyncio.TimerHandle | None = None  # the loop's one timer, for the earliest live entry
        self._timer_when = float("inf")
        self._held: dict[int, float] = {}  # token -> when it was first held (Rule 7)
        self._with_loop: AsyncGenerator[None, None] | None = None  # Rule 3: ends this driver with its loop

    @classmethod
    def from_config(cls, cfg: ClusterConfig, **kwargs: Any) -> AsyncTcpDriver:
        """A driver for the cluster described by ``cfg`` (addresses, groups, auth key, max value)."""
        return cls(cfg.addresses(), **_config_kwargs(cfg), **kwargs)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop this driver runs on (``None`` until its first operation)."""
        return self._loop

    @property
    def closed(self) -> bool:
        return self._closed

    def _bind(self, loop: asyncio.AbstractEventLoop) -> Coalescer:
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise UsageError("this driver runs on another event loop; create one driver per loop")
        if self._coalescer is None:
            self._transport = TcpTransport(
                self._peers, self._on_message, self._auth_key, cluster_id=self._cluster_id,
                max_value=self._max_value, on_fault=self._on_fault,
            )
            self._coalescer = Coalescer(self.core, schedule=self._schedule_turn_end, carry_out=self._carry_out)
        return self._coalescer

    def _schedule_turn_end(self, flush: Callable[[], None]) -> None:
        assert self._loop is not None
        self._loop.call_soon(self._turn_end, flush)

    def _turn_end(self, flush: Callable[[], None]) -> None:
        """Rule 2's end of a turn: the queued operations start merged, and their requests leave at once (one
        frame per acceptor, no further turn of the loop)."""
        transport = self._transport
        if transport is None:
            flush()
            return
        transport.hold()
        try:
            flush()
        finally:
            transport.release()

    def _carry_out(self, effects: list[Effect]) -> None:
        transport = self._transport
        loop = self._loop
        assert transport is not None and loop is not None
        for e in effects:
            if isinstance(e, Send):
                transport.send(e.dst, e.msg)
            elif isinstance(e, SetTimer):
                when = loop.time() + e.delay
                heapq.heappush(self._timers, (when, e.token))
                if when < self._timer_when:
                    self._arm(loop, when)

    def _on_message(self, src: int, msg: Message) -> None:
        if isinstance(msg, _REQUEST_TYPES):
            log.warning("acceptor %d sent a request (%s) to a client; ignored", src, type(msg).__name__)
            return
        self._carry_out(self.core.on_reply(src, msg))

    def _on_fault(self, src: int, msg: Message, why: str) -> None:
        """Rule 8: a lie, treated as lost by the core, logged (rate-limited per acceptor)."""
        n = self.faults.get(src, 0) + 1
        self.faults[src] = n
        now = time.monotonic()
        last = self._fault_logged.get(src)
        if last is not None and now - last[0] < FAULT_LOG_SECONDS:
            return
        self._fault_logged[src] = (now, n)
        host, port = self._peers.get(src, ("?", 0))
        more = f" ({n - last[1] - 1} more since the last one logged)" if last is not None and n - last[1] > 1 else ""
        log.warning(
            "acceptor %d at %s:%d sent %s (req %d): %s; treated as lost%s",
            src, host, port, type(msg).__name__, msg.req, why, more,
        )

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(when, self._on_timers)
        self._timer_when = when

    def _on_timers(self) -> None:
        """The phase timers that are due fire (Rule 6); the loop's timer is set again for the earliest entry
        whose operation is still running: entries of ended operations (nearly all: a phase timer outlives its
        phase) are dropped without ever waking the loop."""
        self._timer, self._timer_when = None, float("inf")
        loop, transport, timers = self._loop, self._transport, self._timers
        if self._closed or loop is None or transport is None:
            timers.clear()
            return
        now = loop.time()
        due: list[int] = []
        while timers and timers[0][0] <= now:
            due.append(heapq.heappop(timers)[1])
        ops = self.core.ops
        transport.hold()
        try:
            for token in due:
                op = ops.get(op_of_req(token))
                if op is None:
                    self._held.pop(token, None)
                elif op.req == token and self._waits_on_busy(op, transport, now, token):
                    heapq.heappush(timers, (now + self.core.config.timeout, token))  # Rule 7
                else:
                    self._held.pop(token, None)
                    self._carry_out(self.core.on_timeout(token))
        finally:
            transport.release()  # the retries leave at once
        while timers and op_of_req(timers[0][1]) not in ops:
            heapq.heappop(timers)
        if timers and timers[0][0] < self._timer_when:
            self._arm(loop, timers[0][0])

    def _waits_on_busy(self, op: Op, transport: TcpTransport, now: float, token: int) -> bool:
        """Rule 7: whether ``op``'s phase timer (``token``, due now) is held: an acceptor the phase has not heard
        from is busy with it, and the timer has not been held for ``MAX_HOLD`` seconds yet."""
        heard = {a for a, _ in op.replies}
        if not any(transport.busy(a) for a in self.core.ctx_for(op.request.segment).acceptors if a not in heard):
            return False
        since = self._held.setdefault(token, now)
        return now - since < MAX_HOLD

    async def execute_async(self, request: OpRequest) -> Outcome:
        """Run one operation to its outcome on the running loop (the driver's)."""
        return await self.start_future(request)

    def start_future(self, request: OpRequest) -> asyncio.Future[Outcome]:
        """Queue one operation on the running loop (the driver's): a future of its outcome, explained (Rule 5:
        ``PeersRefused`` set as its exception). Awaiting it is ``await execute_async(request)`` without a
        coroutine of its own; cancelling it abandons the wait, not the operation."""
        if self._closed:
            raise UsageError("this client is closed")
        loop = asyncio.get_running_loop()
        coalescer = self._coalescer
        if coalescer is None or loop is not self._loop:
            coalescer = self._bind(loop)
        fut: asyncio.Future[Outcome] = loop.create_future()
        coalescer.submit(request, _Resolve(self, request, fut))
        return fut

    def submit_on(self, loop: asyncio.AbstractEventLoop, request: OpRequest, then: Callable[[Outcome], None]) -> None:
        """Queue one operation on ``loop`` (the driver's) without awaiting: ``then(outcome)`` runs on that loop
        when it ends. Must be called from the loop's thread, or while no thread runs the loop (the synchronous
        facade's caller, which runs the loop itself next). The outcome is not explained (``explain``)."""
        if self._closed:
            raise UsageError("this client is closed")
        self._bind(loop).submit(request, then)

    def start_on(self, loop: asyncio.AbstractEventLoop, request: OpRequest, then: Callable[[Outcome], None]) -> None:
        """``submit_on`` for a caller that knows no other operation of this turn will come (Rule 3's caller
        running the loop): the operation starts at once when nothing is queued (``Coalescer.start_now``) and
        its requests leave before this returns. Must be called from a callback of the loop."""
        if self._closed:
            raise UsageError("this client is closed")
        coalescer = self._bind(loop)
        transport = self._transport
        assert transport is not None
        transport.hold()
        try:
            coalescer.start_now(request, then)
        finally:
            transport.release()

    def explain(self, request: OpRequest, outcome: Outcome) -> Outcome:
        """Rule 5 for an outcome delivered by ``submit_on``: the outcome, or ``PeersRefused`` raised."""
        return self._explain(request, outcome)

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
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timers.clear()
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


class _Resolve:
    """An asyncio caller's ``then``: its operation's outcome, explained (Rule 5), into its future."""

    __slots__ = ("driver", "fut", "request")

    def __init__(self, driver: AsyncTcpDriver, request: OpRequest, fut: asyncio.Future[Outcome]) -> None:
        self.driver, self.request, self.fut = driver, request, fut

    def __call__(self, outcome: Outcome) -> None:
        fut = self.fut
        if fut.done():  # the caller stopped waiting (cancelled)
            return
        if outcome.error != "Indeterminate":
            fut.set_result(outcome)
            return
        try:
            explained = self.driver.explain(self.request, outcome)
        except PeersRefused as e:
            fut.set_exception(e)
            return
        fut.set_result(explained)


class _Call:
    """One synchronous caller's operation: its request and, once it ended, its outcome or error (guarded by
    the facade's condition); called with the outcome on the private loop, it settles (Rule 5 applied)."""

    __slots__ = ("driver", "error", "finished", "outcome", "request")

    def __init__(self, driver: TcpDriver, request: OpRequest) -> None:
        self.driver = driver
        self.request = request
        self.outcome: Outcome | None = None
        self.error: BaseException | None = None
        self.finished = False

    def __call__(self, outcome: Outcome) -> None:
        driver = self.driver
        try:
            explained = driver._sync.explain(self.request, outcome)
        except BaseException as e:
            driver._settle(self, None, e)
            return
        driver._settle(self, explained, None)

    def ended(self) -> bool:
        return self.finished

    def result(self) -> Outcome:
        if self.error is not None:
            raise self.error
        assert self.outcome is not None
        return self.outcome


_OPEN: weakref.WeakSet[TcpDriver] = weakref.WeakSet()  # synchronous drivers not closed yet (Rule 4)


def _close_open_drivers() -> None:
    """At interpreter exit: close the synchronous drivers (clients) their users left open."""
    for driver in list(_OPEN):
        with contextlib.suppress(Exception):
            driver.close()


atexit.register(_close_open_drivers)


def _end_with_loop(driver: AsyncTcpDriver) -> None:
    """Rule 3: close ``driver`` when its loop (the running one) shuts down its async generators. An async
    generator first iterated on a loop is registered with it (``sys.set_asyncgen_hooks``), and
    ``loop.shutdown_asyncgens()`` closes each one still open: parked at its ``yield``, this one then runs its
    ``finally``. It is no task: ``asyncio.all_tasks()`` does not show it, and nothing waits for it."""

    async def until_shutdown() -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await driver.aclose()

    watch = until_shutdown()
    with contextlib.suppress(StopIteration):
        watch.asend(None).send(None)  # to the yield, at once (nothing is awaited before it)
    driver._with_loop = watch  # the loop keeps only a weak reference


class TcpDriver:
    """The synchronous facade over ``AsyncTcpDriver`` (Rule 3).

    ``execute(request)`` blocks until the operation's outcome, running the private loop in the calling thread
    (thread-safe; not from a callback of the private loop); ``await execute_async(request)`` runs on the
    caller's own loop without a thread hop.
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
        self._cond = threading.Condition()  # guards the private loop's runner and pending operations
        self._loop: asyncio.AbstractEventLoop | None = None  # the private loop (not running between calls)
        self._runner: int | None = None  # the thread running the private loop now
        self._pending = 0  # synchronous callers' operations not ended yet
        self._looping = False  # the private loop runs for synchronous callers: stopped when ``_pending`` is 0
        self._closed = False
        _OPEN.add(self)

    @classmethod
    def from_config(cls, cfg: ClusterConfig, **kwargs: Any) -> TcpDriver:
        """A driver for the cluster described by ``cfg`` (addresses, groups, auth key, max value)."""
        return cls(cfg.addresses(), **_config_kwargs(cfg), **kwargs)

    # -- the private loop, run by the synchronous callers themselves ----------------------------------

    def _private_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()  # not uvloop's: see the module docstring
        return self._loop

    def execute(self, request: OpRequest) -> Outcome:
        """Run one operation to its outcome, blocking this thread (Rule 3: the calling thread runs the
        private loop itself unless another caller's thread is running it)."""
        running = asyncio._get_running_loop()
        if running is not None:
            if running is self._loop:
                raise UsageError("TcpDriver.execute would deadlock on the driver's own loop; use execute_async")
            return self._execute_from_coroutine(request)
        call = _Call(self, request)
        with self._cond:
            if self._closed:
                raise UsageError("this client is closed")
            loop = self._private_loop()
            self._pending += 1
            if self._runner is None:  # nobody runs the loop: this thread runs it
                self._runner = threading.get_ident()
                lead = True
                # Started in the loop's first turn as a timer due now: on asyncio's loop it runs after that
                # turn's I/O events, so a connection the acceptor closed while the loop was not running is seen
                # closed before the request is written to it; its requests leave in that same turn (Rule 3).
                loop.call_at(loop.time(), self._start_own, call)
            else:  # another thread runs the loop: hand the operation over to it
                lead = False
                loop.call_soon_threadsafe(self._submit_foreign, call)
        while True:
            if lead:
                self._run_loop(loop)
            with self._cond:
                while not call.ended() and self._runner is not None:
                    self._cond.wait()
                if call.ended():
                    return call.result()
                self._runner = threading.get_ident()  # the runner left before our outcome: take over
                lead = True

    def _start_own(self, call: _Call) -> None:
        """On the private loop: start the operation of the caller running the loop at once (Rule 3)."""
        loop = self._loop
        assert loop is not None
        try:
            self._sync.start_on(loop, call.request, call)
        except BaseException as e:  # closed meanwhile: the caller learns why
            self._settle(call, None, e)

    def _submit_foreign(self, call: _Call) -> None:
        """On the private loop: queue an operation another thread handed over (or tell it why not)."""
        loop = self._loop
        assert loop is not None
        try:
            self._sync.submit_on(loop, call.request, call)
        except BaseException as e:  # closed meanwhile: the caller learns why
            self._settle(call, None, e)

    def _settle(self, call: _Call, outcome: Outcome | None, error: BaseException | None) -> None:
        """On the private loop: an operation's outcome (or why it has none) to its caller."""
        with self._cond:
            if call.finished:
                return
            call.outcome, call.error, call.finished = outcome, error, True
            self._pending -= 1
            idle = self._pending == 0
            self._cond.notify_all()
        if idle and self._looping and self._loop is not None:
            self._loop.stop()  # the loop leaves at the end of this turn: no further turn to notice it

    def _run_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the private loop in this thread until no caller's operation is pending, then leave it (the
        next caller runs it again). Another thread may take over if this one is interrupted."""
        try:
            with self._cond:
                if self._pending == 0:
                    return
                self._looping = True
            loop.run_forever()
        finally:
            with self._cond:
                self._looping = False
                self._runner = None
                self._cond.notify_all()

    def _execute_from_coroutine(self, request: OpRequest) -> Outcome:
        """A blocking call made inside a coroutine of another loop: this thread cannot run a second loop,
        so a short-lived thread runs the operation while this one blocks."""
        result: list[Outcome] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                result.append(self.execute(request))
            except BaseException as e:
                errors.append(e)

        t = threading.Thread(target=run, name="wormspace-tcp-call", daemon=True)
        t.start()
        t.join()
        if errors:
            raise errors[0]
        return result[0]

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
        d = self._per_loop.get(loop)  # no lock for the driver of a loop seen before (every call but the first)
        if d is not None and not d.closed:
            return d
        with self._lock:
            d = self._per_loop.get(loop)
            if d is None or d.closed:
                for gone in [lp for lp in self._per_loop if lp.is_closed()]:  # Rule 3: loops closed meanwhile
                    self._per_loop.pop(gone).close_from_outside()
                d = AsyncTcpDriver(self._peers, loop=loop, **self._kwargs)
                if asyncio._get_running_loop() is loop:
                    _end_with_loop(d)
                self._per_loop[loop] = d
            return d

    async def execute_async(self, request: OpRequest) -> Outcome:
        """Run one operation to its outcome on the caller's loop (no thread hop)."""
        return await self.for_loop().start_future(request)

    @property
    def transport(self) -> TcpTransport:
        """The private loop's transport (for synchronous callers' statistics)."""
        return self._sync.transport

    def close(self) -> None:
        """End every driver (waiting operations end ``Indeterminate``) and the private loop. Idempotent."""
        running = asyncio._get_running_loop()
        if running is not None and running is self._loop:
            raise UsageError("TcpDriver.close must not run on the driver's own loop")
        with self._lock:
            if self._closed:
                return
            self._closed = True
            others = list(self._per_loop.values())
            self._per_loop.clear()
            _OPEN.discard(self)
        for d in others:
            d.close_from_outside()
        with self._cond:
            self._closed = True
            while self._runner is not None:  # wait for the thread running the private loop to leave it
                self._cond.wait()
            loop = self._loop
            self._runner = threading.get_ident()
        try:
            if loop is None or loop.is_closed():
                self._sync.close_from_outside()
                return
            if running is not None:  # inside another loop's coroutine: a thread may run this loop
                t = threading.Thread(target=self._close_loop, args=(loop,), daemon=True)
                t.start()
                t.join()
            else:
                self._close_loop(loop)
        finally:
            with self._cond:
                self._runner = None
                self._cond.notify_all()

    def _close_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.run_until_complete(self._sync.aclose())  # waiting callers get ``Indeterminate``
        finally:
            loop.close()

    def __enter__(self) -> TcpDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["AsyncTcpDriver", "TcpDriver"]
