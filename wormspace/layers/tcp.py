"""The TCP runtime: an acceptor server and a client transport, both asyncio, both speaking ``wire`` frames.

Rules:

1. One frame in, one frame out. The server decodes a whole frame (all of it valid, or the connection is
   refused), runs ``AcceptorNode.handle`` on each request in order, and answers with one frame holding the
   replies in the same order.
2. Persist before reply (DESIGN §3 rule 4). ``node.handle`` applies each ``Persist`` to storage before it
   returns its ``Send``. When the storage offers ``group()`` (``SqliteStorage``), the frame's requests are
   applied in one transaction -- one ``fsync`` a frame instead of one a request -- and the reply frame is
   written only after that transaction has committed. Nothing computed inside an uncommitted transaction
   ever leaves the process.
3. Garbage never changes state. A frame that fails to decode (truncated, oversized, bad MAC, unknown tag,
   wrong type, a reply sent to an acceptor, ...) is refused whole before any request in it runs: the server
   logs a warning naming the peer and closes that connection; it keeps serving everybody else.
4. A storage failure is fatal. If a transaction fails the server sends no reply for the frame (the clients
   time out: their operations are indeterminate, which is the truth) and stops, because an acceptor whose
   disk fails can no longer promise durably.
5. The client transport loses messages rather than block: a peer that cannot be reached has its queued
   messages dropped and is retried with capped exponential backoff; the protocol tolerates loss, and the
   client core retries on its timeouts. Everything queued for one peer while its writer is busy goes out as
   one frame (coalescing).
6. With a shared key every frame carries an HMAC; a peer without the key is refused and logged.

Signals and threads are the caller's business: both classes must be used from their event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from wormspace.errors import RemoteProtocolError, UsageError
from wormspace.layers.acceptor import AcceptorNode
from wormspace.layers.effects import Send
from wormspace.layers.messages import MAX_VALUE, Accept, Fence, Message, Prepare, Read, Request
from wormspace.layers.wire import (
    DEFAULT_MAX_FRAME,
    PREFIX_LEN,
    check_length,
    decode_body,
    split_for_frames,
)

log = logging.getLogger("wormspace.tcp")

T = TypeVar("T")

_REQUEST_TYPES = (Prepare, Accept, Read, Fence)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's if uvloop is importable (optional, not a dependency), else asyncio's."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on ``new_event_loop()``."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coro)


def peer_name(writer: asyncio.StreamWriter) -> str:
    """``host:port`` of the other end of a connection (for log lines)."""
    addr = writer.get_extra_info("peername")
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = f"[{addr[0]}]" if ":" in str(addr[0]) else str(addr[0])
        return f"{host}:{addr[1]}"
    return str(addr)


async def read_frame(
    reader: asyncio.StreamReader,
    key: bytes | None,
    max_frame: int = DEFAULT_MAX_FRAME,
    max_value: int = MAX_VALUE,
) -> list[Message] | None:
    """Read and decode one frame; ``None`` on a clean end of stream between frames.

    The length is checked before the body is read, so an oversized frame costs nothing to refuse."""
    try:
        prefix = await reader.readexactly(PREFIX_LEN)
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise RemoteProtocolError("truncated frame: stream ended inside the length prefix") from None
        return None
    n = check_length(prefix, max_frame)
    try:
        body = await reader.readexactly(n)
    except asyncio.IncompleteReadError as e:
        raise RemoteProtocolError(f"truncated frame: {len(e.partial)} of {n} bytes before the end") from None
    return decode_body(body, key, max_value)


# ---- the server -----------------------------------------------------------------------------------------


class StorageFailure(Exception):
    """The acceptor's storage failed; the server stops (rule 4)."""


class AcceptorServer:
    """Serve one ``AcceptorNode`` over TCP. ``start()`` binds (port 0 picks a free port, see ``port``),
    ``wait_stopped()`` returns when ``close()`` ran or storage failed, ``close()`` stops everything (it
    never interrupts a frame being applied: frames are applied without an ``await``)."""

    def __init__(
        self,
        node: AcceptorNode,
        host: str,
        port: int,
        auth_key: bytes | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        *,
        max_value: int = MAX_VALUE,
    ) -> None:
        if max_frame < 64:
            raise UsageError(f"max_frame must be at least 64 bytes, got {max_frame}")
        self.node = node
        self.host = host
        self.port = port
        self.auth_key = auth_key
        self.max_frame = max_frame
        self.max_value = max_value
        self.frames = 0
        self.messages = 0
        self.refused = 0
        self.failure: BaseException | None = None
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self._stopped: asyncio.Event | None = None

    @property
    def node_id(self) -> int:
        return self.node.node_id

    async def start(self) -> None:
        """Bind and start accepting connections."""
        self._stopped = asyncio.Event()
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])

    async def wait_stopped(self) -> None:
        """Until ``close()`` or a storage failure."""
        if self._stopped is None:
            raise UsageError("AcceptorServer.start() was not called")
        await self._stopped.wait()

    async def close(self) -> None:
        """Stop accepting, drop every connection, and return when their tasks are done."""
        if self._server is not None:
            self._server.close()
        tasks = list(self._conns)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._stopped is not None:
            self._stopped.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        src = next(self._ids)
        peer = peer_name(writer)
        log.debug("acceptor %d: connection %d from %s", self.node_id, src, peer)
        try:
            while self.failure is None:
                msgs = await read_frame(reader, self.auth_key, self.max_frame, self.max_value)
                if msgs is None:
                    break
                replies = self._apply(src, _requests(msgs))
                frames, too_big = split_for_frames(replies, self.auth_key, self.max_frame)
                for m in too_big:
                    log.warning(
                        "acceptor %d: a %s for %s is larger than a frame; not sent",
                        self.node_id,
                        type(m).__name__,
                        peer,
                    )
                for f in frames:
                    writer.write(f)
                await writer.drain()
        except RemoteProtocolError as e:
            self.refused += 1
            log.warning("acceptor %d refused peer %s: %s; connection closed", self.node_id, peer, e)
        except StorageFailure as e:
            log.error(
                "acceptor %d storage failure: %r; no reply sent for the frame, stopping", self.node_id, e.__cause__
            )
            if self._stopped is not None:
                self._stopped.set()
        except (ConnectionError, OSError) as e:
            log.debug("acceptor %d: connection %d from %s lost: %s", self.node_id, src, peer, e)
        finally:
            self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()
            log.debug("acceptor %d: connection %d from %s closed", self.node_id, src, peer)

    def _apply(self, src: int, reqs: list[Request]) -> list[Message]:
        """Rule 2: handle every request; durable (committed) before this returns the replies."""
        storage = self.node.storage
        group: Callable[[], contextlib.AbstractContextManager[None]] | None = getattr(storage, "group", None)
        replies: list[Message] = []
        if self.failure is not None:
            raise StorageFailure("storage failed earlier") from self.failure
        try:
            with group() if group is not None else contextlib.nullcontext():
                for m in reqs:
                    for e in self.node.handle(src, m):
                        if isinstance(e, Send):
                            replies.append(e.msg)
        except Exception as e:
            self.failure = e
            raise StorageFailure(str(e)) from e
        self.frames += 1
        self.messages += len(reqs)
        return replies


def _requests(msgs: list[Message]) -> list[Request]:
    reqs: list[Request] = []
    for m in msgs:
        if not isinstance(m, _REQUEST_TYPES):
            raise RemoteProtocolError(f"an acceptor takes requests only, got a {type(m).__name__}")
        reqs.append(m)
    return reqs


# ---- the client transport -------------------------------------------------------------------------------


class _Peer:
    __slots__ = (
        "addr",
        "backoff",
        "down",
        "id",
        "queue",
        "reader_task",
        "retry_at",
        "task",
        "wake",
        "writer",
    )

    def __init__(self, peer_id: int, addr: tuple[str, int], backoff: float) -> None:
        self.id = peer_id
        self.addr = addr
        self.queue: list[Message] = []
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.reader_task: asyncio.Task[None] | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.backoff = backoff
        self.retry_at = 0.0
        self.down = False


class TcpTransport:
    """Client side: ``send(dst, msg)`` queues; one writer task a peer sends everything queued as one frame.

    Connections are opened on first use and reused. A peer that refuses or times out is marked down and
    retried after a backoff that doubles from ``backoff_initial`` up to ``backoff_max``; messages sent to it
    meanwhile are dropped (counted in ``dropped``). Replies are handed to ``on_message(src, msg)`` on the
    event loop's thread. Use from the loop's thread only."""

    def __init__(
        self,
        peers: dict[int, tuple[str, int]],
        on_message: Callable[[int, Message], None],
        auth_key: bytes | None = None,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
        max_value: int = MAX_VALUE,
        connect_timeout: float = 1.0,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
        max_queue: int = 100_000,
    ) -> None:
        if not 0 < backoff_initial <= backoff_max:
            raise UsageError("need 0 < backoff_initial <= backoff_max")
        self.on_message = on_message
        self.auth_key = auth_key
        self.max_frame = max_frame
        self.max_value = max_value
        self.connect_timeout = connect_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_queue = max_queue
        self.peers = {pid: _Peer(pid, addr, backoff_initial) for pid, addr in peers.items()}
        self.frames_sent = 0
        self.messages_sent = 0
        self.dropped = 0
        self.connects = 0
        self._closed = False

    def send(self, dst: int, msg: Message) -> None:
        """Queue ``msg`` for ``dst`` (must run on the event loop's thread)."""
        p = self.peers.get(dst)
        if p is None:
            raise UsageError(f"unknown peer {dst}; peers are {sorted(self.peers)}")
        if self._closed:
            self.dropped += 1
            return
        if len(p.queue) >= self.max_queue:
            self.dropped += 1
            return
        p.queue.append(msg)
        if p.task is None:
            p.task = asyncio.get_running_loop().create_task(self._pump(p), name=f"wormspace-send-{dst}")
        p.wake.set()

    def connected(self, dst: int) -> bool:
        """Whether a connection to ``dst`` is open now."""
        w = self.peers[dst].writer
        return w is not None and not w.is_closing()

    async def close(self) -> None:
        """Stop every task and close every connection; queued messages are dropped."""
        self._closed = True
        tasks = [t for p in self.peers.values() for t in (p.task, p.reader_task) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for p in self.peers.values():
            self.dropped += len(p.queue)
            p.queue.clear()
            self._disconnect(p)

    def _drop_queue(self, p: _Peer) -> None:
        self.dropped += len(p.queue)
        p.queue.clear()

    def _disconnect(self, p: _Peer) -> None:
        if p.writer is not None:
            p.writer.close()
            p.writer = None

    async def _connect(self, p: _Peer) -> bool:
        if time.monotonic() < p.retry_at:
            self._drop_queue(p)
            return False
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*p.addr), self.connect_timeout)
        except OSError as e:  # TimeoutError is an OSError
            if not p.down:
                why = str(e) or type(e).__name__
                log.info("peer %d at %s:%d unreachable (%s); dropping its messages", p.id, *p.addr, why)
            p.down = True
            p.retry_at = time.monotonic() + p.backoff
            p.backoff = min(p.backoff * 2, self.backoff_max)
            self._drop_queue(p)
            return False
        if p.down:
            log.info("peer %d at %s:%d reachable again", p.id, *p.addr)
        p.down = False
        p.backoff = self.backoff_initial
        p.writer = writer
        self.connects += 1
        p.reader_task = asyncio.get_running_loop().create_task(
            self._read(p, reader, writer), name=f"wormspace-recv-{p.id}"
        )
        return True

    async def _pump(self, p: _Peer) -> None:
        while not self._closed:
            if not p.queue:
                p.wake.clear()
                await p.wake.wait()
                continue
            if (p.writer is None or p.writer.is_closing()) and not await self._connect(p):
                continue
            writer = p.writer
            assert writer is not None
            batch, p.queue = p.queue, []
            frames, too_big = split_for_frames(batch, self.auth_key, self.max_frame)
            for m in too_big:
                log.warning("dropping a %s for peer %d: larger than a frame", type(m).__name__, p.id)
            self.dropped += len(too_big)
            try:
                for f in frames:
                    writer.write(f)
                await writer.drain()
            except (ConnectionError, OSError) as e:
                log.info("peer %d: send failed (%s); %d messages lost", p.id, e, len(batch))
                self.dropped += len(batch) - len(too_big)
                if p.writer is writer:
                    self._disconnect(p)
                continue
            self.frames_sent += len(frames)
            self.messages_sent += len(batch) - len(too_big)

    async def _read(self, p: _Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                msgs = await read_frame(reader, self.auth_key, self.max_frame, self.max_value)
                if msgs is None:
                    break
                for m in msgs:
                    try:
                        self.on_message(p.id, m)
                    except Exception:
                        log.exception("on_message failed for a %s from peer %d", type(m).__name__, p.id)
        except RemoteProtocolError as e:
            log.warning("refused peer %d at %s:%d: %s; connection closed", p.id, *p.addr, e)
        except (ConnectionError, OSError) as e:
            log.debug("peer %d: connection lost: %s", p.id, e)
        finally:
            if p.writer is writer:
                p.writer = None
            writer.close()


__all__ = [
    "AcceptorServer",
    "StorageFailure",
    "TcpTransport",
    "new_event_loop",
    "peer_name",
    "read_frame",
    "run",
]
