"""The TCP runtime: an acceptor server and a client transport, both asyncio, both speaking ``wire`` frames.

Rules:

1. Hello first (wire rule 4). A connection starts with the client's hello (cluster id, nonce) and the
   acceptor's answer (cluster id, acceptor id, incarnation, pid, the echoed nonce, its register limit).
   The acceptor refuses a client of another cluster, or one whose hello fails authentication, with a
   refusal hello and closes; the client refuses an answer from another cluster, from another acceptor id
   than it dialled, or without its nonce. No request is sent or served before both hellos passed.
2. Persist before reply (DESIGN §3 rule 4). The server decodes a whole frame (all of it valid, or the
   connection is refused) and applies its requests in order, in batches of at most ``max_request_registers``
   registers: ``node.answer`` applies each request's changes to storage before it returns its reply; when the
   storage offers ``group()`` (``SqliteStorage``) a batch is one transaction -- one ``fsync`` for the batch
   -- and its replies are written only after that transaction has committed. Nothing computed inside an
   uncommitted transaction ever leaves the process. When the store's log checkpoint is due
   (``SqliteStorage.checkpoint_due``) it runs in a turn of its own, after the replies of the batch that made
   it due have been written, once a turn has passed without new frames: no reply waits for a checkpoint.
   Each connection is an ``asyncio.Protocol``: the frames that are whole when bytes arrive are decoded,
   applied and answered in that data callback (no reader task, no further turn of the loop); the requests of
   several such frames of one connection form one batch when they fit. Requests that need more than one
   batch are answered by a task that yields to the event loop between batches, so a large frame never stalls
   the other clients; that connection reads nothing more until they are answered, nor while the peer does
   not take our replies.
3. Garbage never changes state. A frame that fails to decode (truncated, oversized, bad MAC, unknown tag,
   wrong type, a reply sent to an acceptor, ...) is refused whole before any request in it runs: the server
   logs a warning naming the peer and closes that connection; it keeps serving everybody else.
4. A storage failure is fatal. If a transaction fails the server sends no reply for the batch (the clients
   time out: their operations are indeterminate, which is the truth) and stops, because an acceptor whose
   disk fails can no longer promise durably.
5. The client transport loses messages rather than block: a peer that cannot be reached, or refuses the
   hello, has its queued messages dropped and is retried with capped exponential backoff; the protocol
   tolerates loss, and the client core retries on its timeouts. Messages queued for a peer in one turn of
   the loop go out as one frame at the end of that turn (``flush``: written at once while the connection is
   up and its socket keeps up); everything queued while the peer's writer task is connecting or waiting for
   a slow socket goes out as one frame after it (coalescing). A peer's messages keep their order. A reply
   frame is decoded and handed over by the connection's own data callback as soon as it is whole (a frame
   that fails to decode closes that connection, logged); the requests its replies lead to leave at once.
   A caller that knows where its sends of a turn end (the driver starting a turn's operations, the reply
   path) calls ``hold`` before them and ``release`` after, which flushes: no further turn of the loop.
6. With a shared key every frame, hellos included, carries an HMAC; a peer without the key is refused and
   logged, and learns why from the refusal hello.
7. Resources are bounded (``Limits``). Before its hello a peer may send at most ``HELLO_MAX_FRAME`` bytes a
   frame and must finish the hello within ``hello_timeout``; afterwards a connection that sends no frame for
   ``idle_timeout`` is closed, a frame must arrive whole within ``frame_timeout`` of its length prefix, and
   the peer must take our replies within ``frame_timeout``. One sweeper task per server enforces these
   deadlines (a few times per shortest timeout, at most once a second), so a read costs no timer.
   At most ``max_connections`` connections are open; more are closed at once (logged at most every 10 s).
   A request naming more than ``max_request_registers`` registers is answered ``ErrorReply`` without being
   applied; the client transport splits its requests under the limit the acceptor's hello states and merges
   the chunks' replies (``merge_replies``), so a batch over a whole large segment still works. Frames are
   kept under the smaller of the client's ``max_frame`` and the one the acceptor's hello states: the
   transport cuts an Accept whose values would not fit in one frame into Accepts that each fit
   (``split_accept_by_bytes``), and a Read or Prepare naming more registers than a reply of votes of
   ``max_value`` bytes could carry in one frame (``REPLY_ENTRY_OVERHEAD``) into smaller ones, merged the same
   way: each chunk is applied all or none, as with the register limit. A reply still too large for a frame
   (a client of an earlier version) is not sent, and logged by the acceptor. A chunk's reply is checked
   against the request it answers before it is merged (``chunk_fault``: its kind and ballot, which the
   merged reply would otherwise take from the original request); one that no honest acceptor sends, a reply
   to a chunk never sent to that acceptor, or chunk replies that merge to no valid reply make the merged
   reply lost, reported to ``on_fault`` (the driver logs it: driver rule 8).

Signals and threads are the caller's business: both classes must be used from their event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from wormspace.errors import RemoteProtocolError, UsageError
from wormspace.layers.acceptor import AcceptorNode
from wormspace.layers.messages import (
    MAX_VALUE,
    Accept,
    Accepted,
    ErrorReply,
    Fence,
    Message,
    Nack,
    Prepare,
    Promise,
    Read,
    ReadReply,
    Request,
    SegmentTrimmed,
)
from wormspace.layers.wire import (
    DEFAULT_MAX_FRAME,
    HELLO_MAX_FRAME,
    MAX_STATED_FRAME,
    MIN_MAX_FRAME,
    NONCE_LEN,
    PREFIX,
    PREFIX_LEN,
    Hello,
    check_length,
    decode_body,
    decode_hello,
    encode_hello,
    split_for_frames,
)

if TYPE_CHECKING:
    from wormspace.identity import Identity

log = logging.getLogger("wormspace.tcp")

T = TypeVar("T")

_REQUEST_TYPES = (Prepare, Accept, Read, Fence)


LOOP_ENV = "WORMSPACE_LOOP"
"""Environment variable choosing the event loop of ``new_event_loop``: ``uvloop`` (uvloop must be installed),
``asyncio``, or unset / ``auto`` (uvloop's when it is importable, else asyncio's)."""


def loop_choice() -> str:
    """``WORMSPACE_LOOP`` checked: ``auto``, ``asyncio`` or ``uvloop`` (unset or empty: ``auto``); any other
    value is a ``UsageError``."""
    choice = os.environ.get(LOOP_ENV, "auto").strip().lower() or "auto"
    if choice not in ("auto", "asyncio", "uvloop"):
        raise UsageError(f"{LOOP_ENV}={os.environ[LOOP_ENV]!r}: expected auto, asyncio or uvloop")
    return choice


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop, as ``WORMSPACE_LOOP`` says: uvloop's if uvloop is importable (optional, not a
    dependency: the ``fast`` extra) unless ``WORMSPACE_LOOP=asyncio``; ``WORMSPACE_LOOP=uvloop`` without
    uvloop installed, or any other value, is a ``UsageError``."""
    choice = loop_choice()
    if choice == "asyncio":
        return asyncio.new_event_loop()
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError as e:
        if choice == "uvloop":
            raise UsageError(f"{LOOP_ENV}=uvloop but uvloop is not installed (pip install 'wormspace[fast]')") from e
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: which implementation ``loop`` is (for log lines)."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on ``new_event_loop()`` (``coro`` is closed unrun if no loop can be made)."""
    try:
        loop = new_event_loop()
    except BaseException:
        coro.close()
        raise
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        return runner.run(coro)


def peer_name(writer: asyncio.StreamWriter | asyncio.BaseTransport) -> str:
    """``host:port`` of the other end of a connection (for log lines)."""
    addr = writer.get_extra_info("peername")
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = f"[{addr[0]}]" if ":" in str(addr[0]) else str(addr[0])
        return f"{host}:{addr[1]}"
    return str(addr)


class PeerTimeout(RemoteProtocolError):
    """A peer was idle, or too slow to send a whole frame or its hello, past a time limit."""


class ClosedBeforeHello(RemoteProtocolError):
    """A peer closed the connection without sending a byte (a TCP health check, a port scan)."""


async def read_body(
    reader: asyncio.StreamReader,
    max_frame: int = DEFAULT_MAX_FRAME,
    *,
    idle_timeout: float | None = None,
    frame_timeout: float | None = None,
) -> bytes | None:
    """The bytes of one frame after its length prefix; ``None`` on a clean end of stream between frames.

    The length is checked before the body is read, so an oversized frame costs nothing to refuse. With
    timeouts, the prefix must come within ``idle_timeout`` and the rest within ``frame_timeout`` after it
    (``PeerTimeout`` otherwise): a slow peer cannot hold a connection open by dribbling bytes."""
    try:
        if idle_timeout is None:
            prefix = await reader.readexactly(PREFIX_LEN)
        else:
            async with asyncio.timeout(idle_timeout):
                prefix = await reader.readexactly(PREFIX_LEN)
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise RemoteProtocolError("truncated frame: stream ended inside the length prefix") from None
        return None
    except TimeoutError:
        raise PeerTimeout(f"idle for {idle_timeout} s") from None
    n = check_length(prefix, max_frame)
    try:
        if frame_timeout is None:
            return await reader.readexactly(n)
        async with asyncio.timeout(frame_timeout):
            return await reader.readexactly(n)
    except asyncio.IncompleteReadError as e:
        raise RemoteProtocolError(f"truncated frame: {len(e.partial)} of {n} bytes before the end") from None
    except TimeoutError:
        raise PeerTimeout(f"a frame of {n} bytes did not arrive whole within {frame_timeout} s") from None


async def read_frame(
    reader: asyncio.StreamReader,
    key: bytes | None,
    max_frame: int = DEFAULT_MAX_FRAME,
    max_value: int = MAX_VALUE,
    *,
    idle_timeout: float | None = None,
    frame_timeout: float | None = None,
) -> list[Message] | None:
    """Read and decode one message frame; ``None`` on a clean end of stream between frames."""
    body = await read_body(reader, max_frame, idle_timeout=idle_timeout, frame_timeout=frame_timeout)
    return None if body is None else decode_body(body, key, max_value)


async def read_hello(reader: asyncio.StreamReader, key: bytes | None, timeout: float) -> Hello:
    """The peer's hello, at most ``HELLO_MAX_FRAME`` bytes, whole within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            body = await read_body(reader, HELLO_MAX_FRAME)
    except TimeoutError:
        raise PeerTimeout(f"no hello within {timeout} s") from None
    if body is None:
        raise ClosedBeforeHello("connection closed before the hello")
    return decode_hello(body, key)


def registers_of(m: Request) -> int:
    """How many registers a request names (a ``Fence`` names none: it is acceptor-wide)."""
    if isinstance(m, Fence):
        return 0
    return len(m.values) if isinstance(m, Accept) else len(m.indices)


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """An acceptor server's resource limits (``wormspace serve`` options of the same names)."""

    max_connections: int = 512  # open connections; more are closed at once
    hello_timeout: float = 5.0  # a connection's hello must arrive whole within this
    idle_timeout: float = 600.0  # a connection that sends no frame for this long is closed
    frame_timeout: float = 60.0  # a frame, once its length has arrived, must arrive whole within this
    max_request_registers: int = 4096  # registers per request; larger requests get an ErrorReply

    def __post_init__(self) -> None:
        if type(self.max_connections) is not int or self.max_connections < 1:
            raise UsageError(f"max_connections must be a positive int, got {self.max_connections!r}")
        for name in ("hello_timeout", "idle_timeout", "frame_timeout"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0 < v < 1e9:
                raise UsageError(f"{name} must be a positive number of seconds, got {v!r}")
        if type(self.max_request_registers) is not int or not 1 <= self.max_request_registers < 1 << 31:
            raise UsageError(f"max_request_registers must be a positive int, got {self.max_request_registers!r}")


# ---- the server -----------------------------------------------------------------------------------------


class StorageFailure(Exception):
    """The acceptor's storage failed; the server stops (rule 4)."""


class _FlowControl(asyncio.Protocol):
    """Write flow control, the same at both ends: the transport pauses the protocol while its write buffer is
    over the high-water mark; ``_until_resumed`` waits until it is back under the low-water mark or the
    connection is lost (``_wake_drain`` from ``connection_lost``)."""

    def __init__(self) -> None:
        self._paused = False  # the transport's write buffer is over its high-water mark
        self._drained: asyncio.Future[None] | None = None

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_drain()

    def _wake_drain(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    async def _until_resumed(self) -> None:
        """(While paused.) Until writing resumes or the connection is lost."""
        self._drained = asyncio.get_running_loop().create_future()
        await self._drained


class _Conn(_FlowControl):
    """One server connection, as an ``asyncio.Protocol``: bytes are parsed, frames decoded, requests applied
    (one transaction, rule 2) and replies written from the socket's own data callback, in the turn of the loop
    in which the frame's last byte arrived (no reader task, no further turn). Every whole frame waiting in the
    buffer is answered together: their requests in order, in batches as ``AcceptorServer._answer`` cuts them.
    Requests that need more than one batch (the server yields between batches), and replies the peer does not
    take (the transport's write buffer is over its high-water mark), stop reading until they are done.

    ``deadline``/``why`` are read by the server's sweeper (rule 7): it aborts the connection when ``deadline``
    has passed, and ``why`` is then logged. ``writer`` is the connection itself (``write``, ``drain``)."""

    def __init__(self, server: AcceptorServer) -> None:
        super().__init__()
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.src = 0
        self.deadline = float("inf")
        self.why = ""
        self.timed_out: str | None = None
        self._buf = bytearray()
        self._hello_done = False
        self._registered = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None  # a multi-batch answer in progress
        self._reading = True
        self._frame_started = False  # a frame's length prefix has arrived (its deadline runs)
        self._eof = False  # the peer sent its last byte

    @property
    def writer(self) -> _Conn:
        return self

    def arm(self, seconds: float, why: str) -> None:
        self.deadline = asyncio.get_running_loop().time() + seconds
        self.why = why

    # -- asyncio.Protocol ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have asyncio.Transport's methods without deriving from it: no isinstance check
        self.transport = cast(asyncio.Transport, transport)
        self.peer = peer_name(transport)
        if not self.server._admit(self):
            self._closing = True
            return
        self._registered = True
        self.src = next(self.server._ids)
        log.debug("acceptor %d: connection %d from %s", self.server.node_id, self.src, self.peer)
        t = self.server.limits.hello_timeout
        self.arm(t, f"no hello within {t} s")

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self._buf += data
        try:
            self._pump()
        except BaseException as e:  # every failure of this connection ends it, logged as ``_serve`` did
            self._fail(e)

    def eof_received(self) -> bool:
        self._eof = True
        if not self._closing and self._task is None:
            self._finish()
        return True  # the connection closes itself (``_close``), after its last replies

    def _finish(self) -> None:
        """The peer has sent its last byte and every whole frame is answered: close, refusing what is left of
        a frame (rule 3) or logging a peer that went away before its hello."""
        buf = self._buf
        try:
            if self._hello_done and not buf:
                pass  # a clean end between frames
            elif not self._hello_done and not buf:
                raise ClosedBeforeHello("connection closed before the hello")
            elif len(buf) < PREFIX_LEN:
                raise RemoteProtocolError("truncated frame: stream ended inside the length prefix")
            else:
                n = int(PREFIX.unpack(bytes(buf[:PREFIX_LEN]))[0])
                got = len(buf) - PREFIX_LEN
                raise RemoteProtocolError(f"truncated frame: {got} of {n} bytes before the end")
        except RemoteProtocolError as e:
            if not self._hello_done and not isinstance(e, ClosedBeforeHello):
                self._refuse_hello(str(e))
            self._fail(e)
            return
        self._close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._wake_drain()
        if self._task is not None:
            self._task.cancel()
        if not self._closing and self.timed_out is not None:
            self._fail(PeerTimeout(self.timed_out))
        elif not self._closing and exc is not None:
            self._fail(exc)
        self._closing = True
        if self._registered:
            self._registered = False
            self.server._conns.pop(self, None)
            log.debug("acceptor %d: connection %d from %s closed", self.server.node_id, self.src, self.peer)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._task is None and not self._closing and not self._reading:
            try:
                self._pump()
            except BaseException as e:
                self._fail(e)

    # -- the writer side (``AcceptorServer._answer`` and ``_send``) ------------------------------------

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self._closing:
            self.transport.write(data)

    async def drain(self) -> None:
        """Until the socket has taken the replies down to its low-water mark; ``PeerTimeout`` if the sweeper
        aborted the connection meanwhile."""
        if self._closing or self.transport is None or self.transport.is_closing():
            raise self._lost_error()
        if self._paused:
            await self._until_resumed()
            if self._closing or self.transport.is_closing():
                raise self._lost_error()

    def _lost_error(self) -> Exception:
        if self.timed_out is not None:
            return PeerTimeout(self.timed_out)
        return ConnectionResetError("connection lost")

    # -- frames ----------------------------------------------------------------------------------------

    def _pump(self) -> None:
        """Take the hello, then answer every whole frame buffered, until the buffer holds no whole frame, an
        answer is left to a task, or the peer must first take our replies."""
        server = self.server
        if not self._hello_done and not self._take_hello():
            return
        while not self._closing and self._task is None:
            if server.failure is not None:
                self._close()
                return
            reqs, error = self._take_frames()
            if reqs and not self._answer_now(reqs):
                return
            if error is not None:
                raise error
            if self._paused:  # the peer does not take our replies: read nothing more until it does
                t = server.limits.frame_timeout
                self.arm(t, f"replies not taken within {t} s")
                self._pause()
                return
            if not reqs:
                break
        if self._closing or self._task is not None:
            return
        if self._eof:
            self._finish()
            return
        self._resume()
        if len(self._buf) >= PREFIX_LEN:  # a frame has begun: it must arrive whole in time
            if not self._frame_started:
                self._frame_started = True
                n = int(PREFIX.unpack(bytes(self._buf[:PREFIX_LEN]))[0])
                t = server.limits.frame_timeout
                self.arm(t, f"a frame of {n} bytes did not arrive whole within {t} s")
        else:
            t = server.limits.idle_timeout
            self.arm(t, f"idle for {t} s")

    def _take_hello(self) -> bool:
        """Rule 7: the client's hello (small, bounded in time), checked, then ours. ``False`` while it is not
        whole."""
        server = self.server
        buf = self._buf
        try:
            if len(buf) < PREFIX_LEN:
                return False
            n = check_length(bytes(buf[:PREFIX_LEN]), HELLO_MAX_FRAME)
            if len(buf) < PREFIX_LEN + n:
                return False
            body = bytes(buf[PREFIX_LEN : PREFIX_LEN + n])
            del buf[: PREFIX_LEN + n]
            hello = decode_hello(body, server.auth_key)
            if hello.acceptor_id is not None or hello.refused or len(hello.nonce) != NONCE_LEN:
                raise RemoteProtocolError("the hello is not a client's")
        except RemoteProtocolError as e:
            why = str(e)
            if "MAC" in why or "auth key" in why:
                why = f"authentication failed: {why}"
            self._refuse_hello(why)
            raise RemoteProtocolError(why) from None
        mine = server.identity
        if hello.cluster_id != mine.cluster_id:
            why = f"this acceptor belongs to cluster {mine.cluster_id}, not {hello.cluster_id}"
            refusal = Hello(cluster_id=mine.cluster_id, acceptor_id=server.node_id, refused=why)
            self.write(encode_hello(refusal, server.auth_key))
            raise RemoteProtocolError(f"a client of another cluster ({hello.cluster_id})")
        self.write(
            encode_hello(
                Hello(
                    cluster_id=mine.cluster_id,
                    acceptor_id=mine.acceptor_id,
                    incarnation=mine.incarnation,
                    pid=os.getpid(),
                    nonce=secrets.token_bytes(NONCE_LEN),
                    echo=hello.nonce,
                    max_registers=server.limits.max_request_registers,
                    max_frame=min(server.max_frame, MAX_STATED_FRAME) if hello.max_frame else 0,  # wire.Hello
                ),
                server.auth_key,
            )
        )
        self._hello_done = True
        if self._paused:
            t = server.limits.frame_timeout
            self.arm(t, f"the hello answer not taken within {t} s")
            self._pause()
            return False
        return True

    def _refuse_hello(self, why: str) -> None:
        self.write(encode_hello(Hello(cluster_id="", acceptor_id=self.server.node_id, refused=why[:200])))

    def _take_frames(self) -> tuple[list[Request], RemoteProtocolError | None]:
        """The requests of every whole frame at the head of the buffer, and the error of a bad frame after
        them (its bytes stay in the buffer; the frames before it are answered first, as they would have been
        had they come alone). Rule 3: a bad frame is refused whole."""
        server = self.server
        buf = self._buf
        reqs: list[Request] = []
        while len(buf) >= PREFIX_LEN:
            try:
                n = check_length(bytes(buf[:PREFIX_LEN]), server.max_frame)
                if len(buf) < PREFIX_LEN + n:
                    break
                msgs = decode_body(bytes(buf[PREFIX_LEN : PREFIX_LEN + n]), server.auth_key, server.max_value)
                frame = _requests(msgs)
            except RemoteProtocolError as e:
                return reqs, e
            del buf[: PREFIX_LEN + n]
            self._frame_started = False
            server.frames += 1
            reqs += frame
        return reqs, None

    def _answer_now(self, reqs: list[Request]) -> bool:
        """Answer ``reqs`` in this callback if ``AcceptorServer._answer`` would not yield (every batch fits
        ``max_request_registers``: one transaction, then the replies); else start it as a task, stop reading
        until it is done, and return ``False``."""
        server = self.server
        cap = server.limits.max_request_registers
        weight = 0
        for m in reqs:
            n = registers_of(m)
            if n > cap:
                weight = 0  # refused on its own: the batch before it is applied, the next starts afresh
                continue
            if weight and weight + n > cap:
                return self._answer_eagerly(reqs)
            weight += n
        server._send(server._answer_batch(self.src, self.peer, reqs), self.peer, self)
        return True

    def _answer_eagerly(self, reqs: list[Request]) -> bool:
        """``AcceptorServer._answer`` run in this callback up to its first yield (its first batch is applied
        and answered now, like a small frame), the rest in a task; reading stops until it is done. ``True`` if
        it finished without yielding."""
        coro = self.server._answer(self.src, self.peer, reqs, self)
        try:
            yielded = coro.send(None)
        except StopIteration:
            return True
        self._pause()
        self.deadline = float("inf")  # applying is our time, not the peer's
        self._task = asyncio.get_running_loop().create_task(self._answer_rest(_Resumed(coro, yielded)))
        return False

    async def _answer_rest(self, rest: _Resumed) -> None:
        try:
            await rest
        except asyncio.CancelledError:
            self._close()
            raise
        except BaseException as e:
            self._task = None
            self._fail(e)
            return
        self._task = None
        if self._closing:
            return
        try:
            self._pump()
        except BaseException as e:
            self._fail(e)

    def _pause(self) -> None:
        if self._reading and self.transport is not None:
            self._reading = False
            self.transport.pause_reading()

    def _resume(self) -> None:
        if not self._reading and self.transport is not None and not self._closing:
            self._reading = True
            self.transport.resume_reading()

    def _fail(self, e: BaseException) -> None:
        """End this connection for ``e``, logged as rule 3, 4 and 7 say."""
        server = self.server
        node = server.node_id
        if isinstance(e, PeerTimeout):
            server.timed_out += 1
            log.info("acceptor %d closed the connection from %s: %s", node, self.peer, e)
        elif isinstance(e, ClosedBeforeHello):
            log.debug("acceptor %d: connection %d from %s closed before its hello", node, self.src, self.peer)
        elif isinstance(e, RemoteProtocolError):
            server.refused += 1
            log.warning("acceptor %d refused peer %s: %s; connection closed", node, self.peer, e)
        elif isinstance(e, StorageFailure):
            log.error("acceptor %d storage failure: %r; no reply sent for the frame, stopping", node, e.__cause__)
            if server._stopped is not None:
                server._stopped.set()
        elif isinstance(e, (ConnectionError, OSError)):
            log.debug("acceptor %d: connection %d from %s lost: %s", node, self.src, self.peer, e)
        elif not isinstance(e, Exception):
            self._close()
            raise e
        else:
            log.exception("acceptor %d: connection %d from %s failed", node, self.src, self.peer, exc_info=e)
        self._close()

    def _close(self) -> None:
        self._closing = True
        self.deadline = float("inf")
        if self.transport is not None:
            self.transport.close()


class _Resumed:
    """A coroutine already run up to its first suspension, where it yielded ``yielded``: awaiting this runs
    the rest of it (what an eager task does: its first step ran in the caller's callback)."""

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Coroutine[Any, Any, None], yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded

    def __await__(self) -> Generator[Any, Any, None]:
        coro, yielded = self.coro, self.yielded
        while True:
            try:
                sent = yield yielded
            except BaseException as e:  # a cancellation (or anything thrown in) goes on to the coroutine
                try:
                    yielded = coro.throw(e)
                except StopIteration:
                    return
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration:
                    return


class AcceptorServer:
    """Serve one ``AcceptorNode`` over TCP. ``start()`` binds (port 0 picks a free port, see ``port``),
    ``wait_stopped()`` returns when ``close()`` ran or storage failed, ``close()`` stops everything (it
    never interrupts a batch being applied: a batch is applied without an ``await``).

    ``identity`` is the acceptor's (cluster id, acceptor id, incarnation): a client whose hello names
    another cluster is refused. ``limits`` bounds connections, time and request sizes (rule 7)."""

    def __init__(
        self,
        node: AcceptorNode,
        host: str,
        port: int,
        auth_key: bytes | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        *,
        identity: Identity,
        max_value: int = MAX_VALUE,
        limits: Limits | None = None,
    ) -> None:
        if max_frame < MIN_MAX_FRAME:
            raise UsageError(f"max_frame must be at least {MIN_MAX_FRAME} bytes, got {max_frame}")
        if identity.acceptor_id != node.node_id:
            raise UsageError(f"identity of acceptor {identity.acceptor_id} given to node {node.node_id}")
        self.node = node
        self.host = host
        self.port = port
        self.auth_key = auth_key
        self.max_frame = max_frame
        self.max_value = max_value
        self.identity = identity
        self.limits = limits or Limits()
        self.frames = 0
        self.messages = 0
        self.refused = 0
        self.over_capacity = 0  # connections closed because max_connections were open
        self.timed_out = 0  # connections closed by a hello, idle or frame timeout
        self.failure: BaseException | None = None
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._conns: dict[_Conn, None] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._stopped: asyncio.Event | None = None
        self._capacity_logged = 0.0
        self._checkpoint_scheduled = False
        self._checkpoint_frames = 0  # ``frames`` when the checkpoint was last put off (or scheduled)

    @property
    def node_id(self) -> int:
        return self.node.node_id

    @property
    def connections(self) -> int:
        """Connections open now."""
        return len(self._conns)

    async def start(self) -> None:
        """Bind and start accepting connections."""
        self._stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Conn(self), self.host, self.port)
        sock = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])
        self._sweeper = loop.create_task(self._sweep(), name="wormspace-deadlines")

    async def _sweep(self) -> None:
        """Abort every connection whose deadline has passed; wakes a few times per shortest timeout."""
        lim = self.limits
        interval = min(1.0, max(0.01, min(lim.hello_timeout, lim.idle_timeout, lim.frame_timeout) / 4))
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for conn in list(self._conns):
                if conn.timed_out is None and now > conn.deadline and conn.transport is not None:
                    conn.timed_out = conn.why
                    conn.transport.abort()

    async def wait_stopped(self) -> None:
        """Until ``close()`` or a storage failure."""
        if self._stopped is None:
            raise UsageError("AcceptorServer.start() was not called")
        await self._stopped.wait()

    async def close(self) -> None:
        """Stop accepting, drop every connection, and return when they are closed."""
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        conns = list(self._conns)
        tasks = [c._task for c in conns if c._task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in conns:
            c._close()
        for _ in range(10):  # the transports call ``connection_lost`` a turn or two after ``close``
            if not self._conns:
                break
            await asyncio.sleep(0)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if self._stopped is not None:
            self._stopped.set()

    def _admit(self, conn: _Conn) -> bool:
        """Rule 7: a new connection is registered, or refused (and closed) when ``max_connections`` are
        open."""
        if len(self._conns) >= self.limits.max_connections:
            self._over_capacity(conn.peer)
            why = f"over capacity: {len(self._conns)} connections open (--max-connections)"
            conn.write(encode_hello(Hello(cluster_id="", acceptor_id=self.node_id, refused=why)))
            if conn.transport is not None:
                conn.transport.close()
            return False
        self._conns[conn] = None
        return True

    def _over_capacity(self, peer: str) -> None:
        self.over_capacity += 1
        now = time.monotonic()
        if now - self._capacity_logged >= 10.0:  # one line per 10 s at most, with the running count
            self._capacity_logged = now
            log.warning(
                "acceptor %d: %d connections open, the limit (--max-connections); closed the one from %s"
                " (%d closed so far)",
                self.node_id,
                len(self._conns),
                peer,
                self.over_capacity,
            )

    def _refuse_over_cap(self, m: Request, n: int, peer: str) -> ErrorReply:
        cap = self.limits.max_request_registers
        log.warning(
            "acceptor %d refused a %s over %d registers from %s (limit %d, --max-request-registers)",
            self.node_id,
            type(m).__name__,
            n,
            peer,
            cap,
        )
        reason = f"request names {n} registers, over this acceptor's limit of {cap}"
        return ErrorReply(req=m.req, segment=m.segment, reason=reason)

    def _answer_batch(self, src: int, peer: str, reqs: list[Request]) -> list[Message]:
        """The replies to ``reqs`` when no batch of them needs a yield (``_Conn._answer_now`` checked): the
        requests within the limit are applied together (one transaction), those over it answered
        ``ErrorReply``; replies in the order of the requests."""
        cap = self.limits.max_request_registers
        batch: list[Request] = []
        pending: list[Message] = []
        for m in reqs:
            n = registers_of(m)
            if n > cap:
                if batch:  # replies keep the order of the requests
                    pending += self._apply(src, batch)
                    batch = []
                pending.append(self._refuse_over_cap(m, n, peer))
                continue
            batch.append(m)
        if batch:
            pending += self._apply(src, batch)
        return pending

    async def _answer(self, src: int, peer: str, reqs: list[Request], conn: _Conn) -> None:
        """Rule 7: requests over the register limit get an ``ErrorReply``; the others are applied in batches of
        at most ``max_request_registers`` registers, one transaction each, yielding to the loop in between so
        that one large frame never stalls the other clients. A batch's replies go out after its commit."""
        cap = self.limits.max_request_registers
        batch: list[Request] = []
        weight = 0
        pending: list[Message] = []
        for m in reqs:
            n = registers_of(m)
            if n > cap:
                if batch:  # replies keep the order of the requests
                    pending += self._apply(src, batch)
                    batch, weight = [], 0
                pending.append(self._refuse_over_cap(m, n, peer))
                continue
            if batch and weight + n > cap:
                pending += self._apply(src, batch)
                self._send(pending, peer, conn.writer)
                pending = []
                batch, weight = [], 0
                await self._drain(conn)
                await asyncio.sleep(0)
            batch.append(m)
            weight += n
        if batch:
            pending += self._apply(src, batch)
        self._send(pending, peer, conn.writer)
        await self._drain(conn)

    async def _drain(self, conn: _Conn) -> None:
        """Wait until the replies are taken, bounded like a frame: a peer that never reads is closed."""
        t = self.limits.frame_timeout
        conn.arm(t, f"replies not taken within {t} s")
        await conn.drain()
        conn.deadline = float("inf")

    def _send(self, replies: list[Message], peer: str, writer: _Conn) -> None:
        if not replies:
            return
        frames, too_big = split_for_frames(replies, self.auth_key, self.max_frame)
        for m in too_big:
            name = type(m).__name__
            log.warning("acceptor %d: a %s for %s is larger than a frame; not sent", self.node_id, name, peer)
        for f in frames:
            writer.write(f)

    def _apply(self, src: int, reqs: list[Request]) -> list[Message]:
        """Rule 2: handle every request; durable (committed) before this returns the replies."""
        storage = self.node.storage
        group: Callable[[], contextlib.AbstractContextManager[None]] | None = getattr(storage, "group", None)
        replies: list[Message] = []
        if self.failure is not None:
            raise StorageFailure("storage failed earlier") from self.failure
        try:
            answer = self.node.answer
            with group() if group is not None else contextlib.nullcontext():
                for m in reqs:
                    replies.append(answer(src, m))
        except Exception as e:
            self.failure = e
            raise StorageFailure(str(e)) from e
        self.messages += len(reqs)
        due: Callable[[], bool] | None = getattr(storage, "checkpoint_due", None)
        if due is not None and not self._checkpoint_scheduled and due():
            # After this batch's replies, which its caller sends before the loop runs anything else.
            self._checkpoint_scheduled = True
            self._checkpoint_frames = self.frames
            asyncio.get_running_loop().call_soon(self._checkpoint)
        return replies

    def _checkpoint(self) -> None:
        """The store's log checkpoint, run in a turn of its own after the replies that made it due have gone,
        so that no reply waits for it (``SqliteStorage.checkpoint``), and only once a turn has passed without
        new frames: while frames keep coming it waits (the store's own checkpoint, inside a commit, bounds the
        log meanwhile), so that a busy acceptor does not checkpoint more often than SQLite alone would. A
        failure is logged; it loses nothing (every commit is in the log), and the next commit meets a failing
        disk as a storage failure."""
        if self.frames != self._checkpoint_frames and self._server is not None:  # busy: a turn later
            self._checkpoint_frames = self.frames
            asyncio.get_running_loop().call_soon(self._checkpoint)
            return
        self._checkpoint_scheduled = False
        checkpoint: Callable[[], None] | None = getattr(self.node.storage, "checkpoint", None)
        if checkpoint is None or self.failure is not None:
            return
        try:
            checkpoint()
        except Exception as e:
            log.warning("acceptor %d: log checkpoint failed: %r; retried at the next one", self.node_id, e)


def _requests(msgs: list[Message]) -> list[Request]:
    reqs: list[Request] = []
    for m in msgs:
        if not isinstance(m, _REQUEST_TYPES):
            raise RemoteProtocolError(f"an acceptor takes requests only, got a {type(m).__name__}")
        reqs.append(m)
    return reqs


# ---- the client transport -------------------------------------------------------------------------------


def _retrieve(fut: asyncio.Future[bytes]) -> None:
    """Mark a finished future's exception as seen (an awaiter still gets it)."""
    if not fut.cancelled():
        fut.exception()


class _ClientConn(_FlowControl):
    """One client connection (rule 5): the acceptor's hello first, then reply frames, each decoded and handed to
    the transport as soon as its last byte arrives, from the socket's own callback (no reader task, no further
    turn of the loop). ``write``/``drain``/``close``/``is_closing`` serve the peer's writer task and ``flush``."""

    def __init__(self, owner: TcpTransport, peer: _Peer) -> None:
        super().__init__()
        self.owner = owner
        self.peer = peer
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self.hello: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        # a connection lost before anyone awaits its hello (the connecting task cancelled, the loop shutting
        # down) must not log "Future exception was never retrieved" when the future is collected
        self.hello.add_done_callback(_retrieve)
        self._active = False  # the hello passed: frames are delivered
        self._lost = False

    # -- asyncio.Protocol ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have asyncio.Transport's methods without deriving from it: no isinstance check
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        try:
            if not self.hello.done():
                self._take_hello()
            elif self._active:
                self._take_frames()
        except RemoteProtocolError as e:
            if not self.hello.done():  # a bad hello: the connecting task learns why
                self.hello.set_exception(e)
            else:
                p = self.peer
                log.warning("refused peer %d at %s:%d: %s; connection closed", p.id, *p.addr, e)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if not self.hello.done():
            if self._buf:
                n = len(self._buf)
                self.hello.set_exception(RemoteProtocolError(f"truncated frame: {n} bytes before the end"))
            else:
                self.hello.set_exception(ClosedBeforeHello("connection closed before the hello"))
        self._wake_drain()
        if exc is not None:
            log.debug("peer %d: connection lost: %s", self.peer.id, exc)
        self.owner._lost(self.peer, self)

    # -- frames ----------------------------------------------------------------------------------------

    def _take_hello(self) -> None:
        buf = self._buf
        if len(buf) < PREFIX_LEN:
            return
        n = check_length(bytes(buf[:PREFIX_LEN]), HELLO_MAX_FRAME)
        if len(buf) < PREFIX_LEN + n:
            return
        body = bytes(buf[PREFIX_LEN : PREFIX_LEN + n])
        del buf[: PREFIX_LEN + n]
        self.hello.set_result(body)  # frames after it wait in the buffer until ``activate``

    def activate(self) -> None:
        """The hello passed: deliver the frames that came with it and every later one."""
        self._active = True
        if self._buf:
            self.data_received(b"")

    def _take_frames(self) -> None:
        owner, buf = self.owner, self._buf
        while len(buf) >= PREFIX_LEN and not self._lost:
            n = check_length(bytes(buf[:PREFIX_LEN]), owner.max_frame)
            if len(buf) < PREFIX_LEN + n:
                return
            body = bytes(buf[PREFIX_LEN : PREFIX_LEN + n])
            del buf[: PREFIX_LEN + n]
            owner._deliver(self.peer, decode_body(body, owner.auth_key, owner.max_value))

    # -- the writer side -------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def is_closing(self) -> bool:
        return self._lost or self.transport is None or self.transport.is_closing()

    def buffered(self) -> int:
        """Bytes written but not yet taken by the socket."""
        return 0 if self.transport is None else self.transport.get_write_buffer_size()

    def receiving(self) -> bool:
        """Part of a frame has arrived, not yet all of it."""
        return self._active and len(self._buf) > 0

    async def drain(self) -> None:
        """Until the socket has taken what was written down to its low-water mark."""
        if self.is_closing():
            raise ConnectionResetError("connection closed")
        if self._paused:
            await self._until_resumed()
            if self._lost:
                raise ConnectionResetError("connection lost")

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _Peer:
    __slots__ = (
        "addr",
        "backoff",
        "busy",
        "digest_until",
        "dirty",
        "down",
        "hello",
        "id",
        "queue",
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
        self.writer: _ClientConn | None = None
        self.backoff = backoff
        self.retry_at = 0.0
        self.down = False
        self.hello: Hello | None = None  # the acceptor's hello on the current connection
        self.dirty = False  # in the transport's list of peers to flush
        self.busy = False  # the writer task is connecting or writing: ``flush`` leaves the queue to it
        self.digest_until = 0.0  # (loop time) until when the acceptor may still be taking in our large frames


@dataclass(slots=True)
class _Split:
    """One request sent as chunks under the peer's register limit; replies merged when all have come."""

    peer: int
    original: Request
    replies: dict[int, Message]  # chunk req -> its reply
    chunks: tuple[int, ...]
    lied: bool = False  # a chunk's reply could not be an honest answer: the merged reply is lost


def chunk_fault(original: Request, reply: Message) -> str | None:
    """Why ``reply`` cannot be an honest acceptor's answer to a chunk of ``original``, or ``None``: a kind
    the request never gets, or a ballot other than the request's (the merged reply carries the original's
    ballot, so a chunk's must be checked here; its votes are checked by the client core after the merge)."""
    if isinstance(reply, (ErrorReply, SegmentTrimmed)):
        return None
    if isinstance(original, Read):
        return None if isinstance(reply, ReadReply) else f"a {type(reply).__name__} answering a Read"
    vote = Promise if isinstance(original, Prepare) else Accepted
    if isinstance(original, Fence) or not isinstance(reply, (Nack, vote)):
        return f"a {type(reply).__name__} answering a {type(original).__name__}"
    if reply.ballot != original.ballot:
        return f"a {type(reply).__name__} at ballot {tuple(reply.ballot)}, not {tuple(original.ballot)}"
    return None


_CHUNK_BASE = 1 << 62  # chunk request ids: far above any client core's (op_id << 16 | seq)


def merge_replies(original: Request, replies: Sequence[Message]) -> Message | None:
    """One reply for ``original`` from the replies of its chunks, or ``None`` (treat as lost) when they
    disagree in a way no single reply can say truthfully (some chunks accepted, others were refused: the
    operation must stay indeterminate, so the reply is dropped and the client core times out).

    A refusal, a trimmed segment or an error in any chunk of a Prepare or Read stands for the whole (a promise
    made by another chunk only restricts the acceptor: harmless). Promises and read replies merge their votes;
    promises keep their ``floor``, and promises of one Prepare given under different floors (a replacement
    fenced the acceptor between chunks) merge to ``None``: promises from before and after a fence must never
    count as one."""
    req, seg = original.req, original.segment
    for kind in (ErrorReply, SegmentTrimmed):
        found = [r for r in replies if isinstance(r, kind)]
        if found:
            return type(found[0])(**{**_fields(found[0]), "req": req})
    nacks = [r for r in replies if isinstance(r, Nack)]
    if nacks:
        if isinstance(original, Accept) and len(nacks) != len(replies):
            return None
        n = max(nacks, key=lambda r: r.promised)
        return Nack(req=req, segment=seg, ballot=n.ballot, promised=n.promised, accepted=max(r.accepted for r in nacks))
    if isinstance(original, Prepare) and all(isinstance(r, Promise) for r in replies):
        promises = [r for r in replies if isinstance(r, Promise)]
        floors = {r.floor for r in promises}
        if len(floors) != 1:
            return None
        votes = tuple(v for r in promises for v in r.votes)
        return Promise(req=req, segment=seg, ballot=original.ballot, votes=votes, floor=floors.pop())
    if isinstance(original, Accept) and all(isinstance(r, Accepted) for r in replies):
        return Accepted(req=req, segment=seg, ballot=original.ballot)
    if isinstance(original, Read) and all(isinstance(r, ReadReply) for r in replies):
        votes = tuple(v for r in replies if isinstance(r, ReadReply) for v in r.votes)
        return ReadReply(req=req, segment=seg, votes=votes)
    return None


def _fields(m: Message) -> dict[str, Any]:
    return {name: getattr(m, name) for name in m.__dataclass_fields__}


def split_request(m: Request, limit: int, first_req: int) -> list[Request]:
    """``m`` cut into requests of at most ``limit`` registers, numbered ``first_req``, ``first_req + 1``, ..."""
    if isinstance(m, Fence):
        return [Fence(req=first_req, segment=m.segment, ballot=m.ballot)]
    if isinstance(m, Accept):
        parts = [m.values[i : i + limit] for i in range(0, len(m.values), limit)]
        return [Accept(req=first_req + k, segment=m.segment, ballot=m.ballot, values=v) for k, v in enumerate(parts)]
    idx = [m.indices[i : i + limit] for i in range(0, len(m.indices), limit)]
    if isinstance(m, Prepare):
        return [Prepare(req=first_req + k, segment=m.segment, indices=x, ballot=m.ballot) for k, x in enumerate(idx)]
    return [Read(req=first_req + k, segment=m.segment, indices=x) for k, x in enumerate(idx)]


ACCEPT_ENTRY_OVERHEAD = 16
"""Bytes one ``(index, value)`` entry of an Accept takes on the wire beyond its value, at most (msgpack)."""

FRAME_MARGIN = 1024
"""Bytes of a frame kept for everything but an Accept's entries (prefix, MAC, tag, ballot, ...)."""

DIGEST_FROM = 256 << 10
"""Frames larger than this many bytes open a digest window (``TcpTransport.busy``)."""

DIGEST_SECONDS_PER_BYTE = 0.05 / (1 << 20)
"""The time an acceptor may take to take in and apply a byte of a large frame: 50 ms a MiB (20 MB/s), a slow
disk on a loaded machine (measured: ~12 ms a MiB for three acceptors on two shared cores, fsync included)."""

REPLY_ENTRY_OVERHEAD = 64
"""Bytes one vote ``(index, ballot, value)`` of a Promise or read reply takes on the wire beyond its value, at
most (msgpack)."""


def split_accept_by_bytes(m: Accept, budget: int, limit: int, first_req: int) -> list[Accept]:
    """``m`` cut into Accepts whose entries take at most ``budget`` bytes (``ACCEPT_ENTRY_OVERHEAD`` each
    beyond its value) and, if ``limit`` > 0, at most ``limit`` registers; numbered from ``first_req``. An
    entry larger than ``budget`` alone is a chunk of its own (it cannot travel: ``split_for_frames`` says so)."""
    parts: list[list[tuple[int, bytes]]] = [[]]
    size = 0
    for entry in m.values:
        cost = len(entry[1]) + ACCEPT_ENTRY_OVERHEAD
        if parts[-1] and (size + cost > budget or 0 < limit <= len(parts[-1])):
            parts.append([])
            size = 0
        parts[-1].append(entry)
        size += cost
    return [
        Accept(req=first_req + k, segment=m.segment, ballot=m.ballot, values=tuple(v)) for k, v in enumerate(parts)
    ]


def _accept_bytes(m: Accept) -> int:
    return sum(len(v) for _, v in m.values) + ACCEPT_ENTRY_OVERHEAD * len(m.values)


#: a batch, the frame limit it was encoded under, its frames, its messages too large
_Encoded = tuple[list[Message], int, list[bytes], list[Message]]


class TcpTransport:
    """Client side: ``send(dst, msg)`` queues; ``flush()`` (at the end of the turn) sends each peer's queue as
    one frame, through the peer's writer task when it is connecting or its socket is slow.

    Connections are opened on first use and reused; each starts with the hello exchange (wire rule 4): the
    acceptor must answer with ``cluster_id``, the peer's id, and our nonce, else the connection is closed and
    the reason kept in ``refusals[peer]`` (and logged) until a later connection succeeds. A peer that refuses
    or times out is marked down and retried after a backoff that doubles from ``backoff_initial`` up to
    ``backoff_max``; messages sent to it meanwhile are dropped (counted in ``dropped``). A request naming
    more registers than the acceptor's hello allows, an Accept larger than a frame, or a Read or Prepare
    whose reply could exceed a frame (rule 7) is sent as chunks and their replies merged into one
    (``merge_replies``). Replies are handed to ``on_message(src, msg)`` on the event loop's
    thread. Use from the loop's thread only."""

    def __init__(
        self,
        peers: dict[int, tuple[str, int]],
        on_message: Callable[[int, Message], None],
        auth_key: bytes | None = None,
        *,
        cluster_id: str,
        max_frame: int = DEFAULT_MAX_FRAME,
        max_value: int = MAX_VALUE,
        connect_timeout: float = 1.0,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
        max_queue: int = 100_000,
        on_fault: Callable[[int, Message, str], None] | None = None,
    ) -> None:
        if not 0 < backoff_initial <= backoff_max:
            raise UsageError("need 0 < backoff_initial <= backoff_max")
        self.on_message = on_message
        self.on_fault = on_fault  # (peer, reply, why): a reply to a chunk no honest acceptor sends
        self.faults = 0
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
        self.cluster_id = cluster_id
        self.refusals: dict[int, str] = {}
        self._splits: dict[int, _Split] = {}  # chunk req -> its split
        self._next_chunk = _CHUNK_BASE
        self._closed = False
        self._dirty: list[_Peer] = []  # peers with messages queued since the last flush
        self._flush_scheduled = False
        self._held = 0  # ``hold`` depth: sends queue without scheduling a flush (the caller flushes)

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
        if not p.dirty:
            p.dirty = True
            self._dirty.append(p)
            if not self._flush_scheduled and not self._held:
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self.flush)

    def hold(self) -> None:
        """Until the matching ``release``, sends queue without scheduling a flush for the end of the turn: the
        caller knows its sends of this turn end with the ``release``, which flushes them at once (no further
        turn of the loop). Holds nest."""
        self._held += 1

    def release(self) -> None:
        """End a ``hold``; the outermost one flushes."""
        self._held -= 1
        if not self._held:
            self.flush()

    def flush(self) -> None:
        """Send everything queued now (rule 5): to a connected, idle peer whose socket keeps up, as one frame
        written at once; otherwise the peer's writer task connects, writes and waits for the socket. Runs by
        itself at the end of the turn of the first ``send``; callers that know a turn's sends are over (a
        reply handled, a batch of operations started) call it at once, saving a turn of the loop."""
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        last: _Encoded | None = None  # the frames of the previous peer's batch: a request to every acceptor
        for p in dirty:  # of a group is one message object, encoded once for them all
            p.dirty = False
            if not p.queue:
                continue
            w = p.writer
            if p.busy or w is None or w.is_closing() or w.buffered():
                self._wake(p)
                continue
            batch, p.queue = p.queue, []
            try:
                last = self._write(p, w, batch, last)
            except (ConnectionError, OSError) as e:
                log.info("peer %d: send failed (%s); %d messages lost", p.id, e, len(batch))
                self.dropped += len(batch)
                if p.writer is w:
                    self._disconnect(p)

    def _wake(self, p: _Peer) -> None:
        p.busy = True
        if p.task is None:
            p.task = asyncio.get_running_loop().create_task(self._pump(p), name=f"wormspace-send-{p.id}")
        p.wake.set()

    def _write(self, p: _Peer, writer: _ClientConn, batch: list[Message], last: _Encoded | None = None) -> _Encoded:
        """``batch`` as frames on ``writer`` (split under the peer's limits); counted. ``last``: a batch encoded
        before, whose frames are reused when it holds the very same (immutable) messages; returns the
        encoding of this one."""
        frame = self._frame_limit(p)
        batch = self._split_oversized(p, batch, frame)
        if (
            last is not None
            and last[1] == frame
            and len(last[0]) == len(batch)
            and all(a is b for a, b in zip(last[0], batch, strict=True))
        ):
            frames, too_big = last[2], last[3]
        else:
            frames, too_big = split_for_frames(batch, self.auth_key, frame)
        for m in too_big:
            log.warning("dropping a %s for peer %d: larger than a frame", type(m).__name__, p.id)
        self.dropped += len(too_big)
        for f in frames:
            writer.write(f)
            if len(f) > DIGEST_FROM:
                now = asyncio.get_running_loop().time()
                p.digest_until = max(p.digest_until, now) + len(f) * DIGEST_SECONDS_PER_BYTE
        self.frames_sent += len(frames)
        self.messages_sent += len(batch) - len(too_big)
        return batch, frame, frames, too_big

    def busy(self, dst: int) -> bool:
        """Whether acceptor ``dst`` is visibly at work on what we sent it, on an open connection: our frames
        are still leaving, a frame of its reply is arriving, or it may still be taking in and applying a
        large frame of ours (``DIGEST_SECONDS_PER_BYTE`` a byte, from the frame's write). The driver holds a
        phase timer while an acceptor it waits for is busy (driver rule 7)."""
        p = self.peers.get(dst)
        w = None if p is None else p.writer
        if p is None or w is None or w.is_closing():
            return False
        if w.buffered() > 0 or (p.busy and p.queue) or w.receiving():
            return True
        return p.digest_until > 0 and asyncio.get_running_loop().time() < p.digest_until

    def connected(self, dst: int) -> bool:
        """Whether a connection to ``dst`` is open now."""
        w = self.peers[dst].writer
        return w is not None and not w.is_closing()

    async def close(self) -> None:
        """Stop every task and close every connection (one still waiting for its hello too); queued messages
        are dropped."""
        self._closed = True
        tasks = [p.task for p in self.peers.values() if p.task is not None]
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
        opened: list[_ClientConn] = []
        try:
            loop = asyncio.get_running_loop()
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _ClientConn(self, p), *p.addr), self.connect_timeout
            )
            opened.append(conn)
            why = await self._exchange_hello(p, conn)
        except OSError as e:  # TimeoutError is an OSError; so is a hello that did not come (slow, or gone)
            for c in opened:
                c.close()
            if not p.down:
                err = str(e) or type(e).__name__
                log.info("peer %d at %s:%d unreachable (%s); dropping its messages", p.id, *p.addr, err)
            self._mark_down(p)
            return False
        except BaseException:  # cancelled (the transport closes) while waiting for the hello: close it too
            for c in opened:
                c.close()
            raise
        if why is not None:
            if self.refusals.get(p.id) != why:
                log.warning("peer %d at %s:%d: %s", p.id, *p.addr, why)
            self.refusals[p.id] = why
            conn.close()
            self._mark_down(p)
            return False
        if p.down:
            log.info("peer %d at %s:%d reachable again", p.id, *p.addr)
        self.refusals.pop(p.id, None)
        p.down = False
        p.backoff = self.backoff_initial
        p.writer = conn
        self.connects += 1
        conn.activate()
        return True

    def _mark_down(self, p: _Peer) -> None:
        p.down = True
        p.retry_at = time.monotonic() + p.backoff
        p.backoff = min(p.backoff * 2, self.backoff_max)
        self._drop_queue(p)

    async def _exchange_hello(self, p: _Peer, conn: _ClientConn) -> str | None:
        """Send our hello, check the acceptor's; ``None`` if it is the acceptor we want, else why not (a
        refusal). ``OSError`` if no hello came (a slow or vanished peer is unreachable, not refusing)."""
        nonce = secrets.token_bytes(NONCE_LEN)
        frame = min(self.max_frame, MAX_STATED_FRAME)
        mine = Hello(cluster_id=self.cluster_id, acceptor_id=None, nonce=nonce, max_frame=frame)
        conn.write(encode_hello(mine, self.auth_key))
        try:
            async with asyncio.timeout(self.connect_timeout):
                body = await conn.hello
            hello = decode_hello(body, self.auth_key)
        except TimeoutError:
            raise TimeoutError(f"no hello within {self.connect_timeout} s") from None
        except ClosedBeforeHello:
            raise ConnectionResetError("closed the connection before its hello") from None
        except RemoteProtocolError as e:
            return f"refused the connection: {e}"
        why = hello_mismatch(hello, cluster_id=self.cluster_id, acceptor_id=p.id, nonce=nonce)
        if why is None:
            p.hello = hello
        return why

    async def _pump(self, p: _Peer) -> None:
        """The peer's writer task: connects, writes what ``flush`` could not, and waits for a slow socket
        (while it is busy, ``flush`` leaves that peer's messages queued for it, so their order is kept)."""
        while not self._closed:
            w = p.writer
            if not p.queue and (w is None or not w.buffered()):
                p.busy = False
                p.wake.clear()
                await p.wake.wait()
                continue
            p.busy = True
            if p.queue and (w is None or w.is_closing()) and not await self._connect(p):
                continue
            writer = p.writer
            assert writer is not None
            batch, p.queue = p.queue, []
            try:
                if batch:
                    self._write(p, writer, batch)
                await writer.drain()
            except (ConnectionError, OSError) as e:
                log.info("peer %d: send failed (%s); %d messages lost", p.id, e, len(batch))
                self.dropped += len(batch)
                if p.writer is writer:
                    self._disconnect(p)
                continue

    def _frame_limit(self, p: _Peer) -> int:
        """The largest frame both ends take: ours, and the one the peer's hello states (when it does)."""
        stated = p.hello.max_frame if p.hello is not None else 0
        return min(self.max_frame, stated) if stated > 0 else self.max_frame

    def _split_oversized(self, p: _Peer, batch: list[Message], frame: int) -> list[Message]:
        """``batch`` with each request too large for the peer cut into chunks (class doc): over the peer's
        register limit; an Accept whose values exceed a frame; a Read or Prepare naming more registers than
        replies of ``max_value``-byte votes could carry in one frame (its reply could not travel)."""
        limit = p.hello.max_registers if p.hello is not None else 0
        budget = frame - FRAME_MARGIN
        asked = max(1, budget // (self.max_value + REPLY_ENTRY_OVERHEAD))  # registers a reply surely carries
        if limit > 0:
            asked = min(asked, limit)
        out: list[Message] = []
        for m in batch:
            parts: list[Request]
            if isinstance(m, Accept) and len(m.values) > 1 and _accept_bytes(m) > budget:
                parts = list(split_accept_by_bytes(m, budget, limit, self._next_chunk))
            elif isinstance(m, Accept) and 0 < limit < len(m.values):
                parts = split_request(m, limit, self._next_chunk)
            elif isinstance(m, (Read, Prepare)) and len(m.indices) > asked:
                parts = split_request(m, asked, self._next_chunk)
            else:
                out.append(m)
                continue
            self._next_chunk += len(parts)
            split = _Split(peer=p.id, original=m, replies={}, chunks=tuple(c.req for c in parts))
            for c in parts:
                self._splits[c.req] = split
            out.extend(parts)
        return out

    def _merged(self, src: int, m: Message) -> Message | None:
        """``m`` itself, or for the last reply of a split request the merged reply (``None`` meanwhile, and for
        a reply to a chunk that is not pending: a late one, or a lie). A chunk's reply that no honest acceptor
        sends (``chunk_fault``), and chunks whose replies cannot be merged into one valid reply (two votes
        for one register), are reported to ``on_fault`` and the merged reply is lost."""
        req = m.req
        if req < _CHUNK_BASE:
            return m
        split = self._splits.get(req)
        if split is None or split.peer != src:
            if req >= self._next_chunk or split is not None:
                self._fault(src, m, "an answer to a request never sent to this acceptor")
            return None
        why = chunk_fault(split.original, m)
        if why is not None:
            self._fault(src, m, why)
            split.lied = True
        split.replies[req] = m
        if len(split.replies) < len(split.chunks):
            return None
        for c in split.chunks:
            del self._splits[c]
        if split.lied:
            return None
        try:
            return merge_replies(split.original, [split.replies[c] for c in split.chunks])
        except RemoteProtocolError as e:  # e.g. two chunks' replies report votes for one register
            self._fault(src, m, f"chunk replies that merge to no valid reply ({e})")
            return None

    def _fault(self, src: int, m: Message, why: str) -> None:
        self.faults += 1
        if self.on_fault is not None:
            self.on_fault(src, m, why)
        else:
            log.warning("peer %d sent %s (req %d): %s; treated as lost", src, type(m).__name__, m.req, why)

    def _forget_splits(self, peer: int) -> None:
        for req in [r for r, sp in self._splits.items() if sp.peer == peer]:
            del self._splits[req]

    def _deliver(self, p: _Peer, msgs: list[Message]) -> None:
        """One reply frame from ``p``: each message to ``on_message``, then the requests they led to leave."""
        self.hold()
        try:
            for raw in msgs:
                m = self._merged(p.id, raw)
                if m is None:
                    continue
                try:
                    self.on_message(p.id, m)
                except Exception:
                    log.exception("on_message failed for a %s from peer %d", type(m).__name__, p.id)
        finally:
            self.release()  # the requests these replies led to leave now, one frame per peer

    def _lost(self, p: _Peer, conn: _ClientConn) -> None:
        if p.writer is conn:
            p.writer = None
            p.hello = None
            self._forget_splits(p.id)


def hello_mismatch(hello: Hello, *, cluster_id: str, acceptor_id: int, nonce: bytes) -> str | None:
    """Why an acceptor's ``hello`` is not the answer of acceptor ``acceptor_id`` of ``cluster_id`` to our
    hello with ``nonce``; ``None`` if it is."""
    if hello.cluster_id and hello.cluster_id != cluster_id:
        return f"belongs to another cluster ({hello.cluster_id}, not {cluster_id}); check the cluster file"
    if hello.refused:
        return f"refused this client: {hello.refused}"
    if hello.acceptor_id != acceptor_id:
        return f"is acceptor {hello.acceptor_id}, not {acceptor_id}; check the cluster file"
    if hello.echo != nonce:
        return "answered with a hello that does not echo ours"
    return None


def probe(
    host: str, port: int, *, cluster_id: str, acceptor_id: int, key: bytes | None, timeout: float = 1.0
) -> tuple[Hello | None, str | None]:
    """One blocking hello exchange with the acceptor at ``host:port`` (readiness checks): ``(hello, None)``
    if it answered as acceptor ``acceptor_id`` of ``cluster_id``, else ``(hello or None, why not)``."""
    nonce = secrets.token_bytes(NONCE_LEN)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(encode_hello(Hello(cluster_id=cluster_id, acceptor_id=None, nonce=nonce), key))
            buf = b""
            while len(buf) < PREFIX_LEN:
                chunk = sock.recv(PREFIX_LEN - len(buf))
                if not chunk:
                    return None, "closed the connection before its hello"
                buf += chunk
            n = check_length(buf, HELLO_MAX_FRAME)
            body = b""
            while len(body) < n:
                chunk = sock.recv(n - len(body))
                if not chunk:
                    return None, "closed the connection inside its hello"
                body += chunk
    except OSError as e:
        return None, f"unreachable ({e or type(e).__name__})"
    try:
        hello = decode_hello(body, key)
    except RemoteProtocolError as e:
        return None, f"sent a bad hello: {e}"
    return hello, hello_mismatch(hello, cluster_id=cluster_id, acceptor_id=acceptor_id, nonce=nonce)


__all__ = [
    "AcceptorServer",
    "ClosedBeforeHello",
    "Limits",
    "PeerTimeout",
    "hello_mismatch",
    "merge_replies",
    "probe",
    "read_body",
    "read_hello",
    "registers_of",
    "split_request",
    "StorageFailure",
    "TcpTransport",
    "LOOP_ENV",
    "loop_choice",
    "loop_name",
    "new_event_loop",
    "peer_name",
    "read_frame",
    "run",
]
