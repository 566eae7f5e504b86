"""The wire format: length-prefixed msgpack frames, each carrying a list of messages.

Frame layout (all integers big-endian)::

    +----------------+---------+-------+------------------------+---------------------------+
    | length: uint32 | version | flags | mac: 32 bytes (if AUTH) | payload: msgpack array   |
    +----------------+---------+-------+------------------------+---------------------------+

``length`` counts every byte after itself. ``version`` is ``VERSION`` (2). ``flags`` bit 0 (``AUTH``) says a
``mac`` follows: HMAC-SHA256 under the shared key over ``version || flags || payload`` (so the header cannot
be altered either). The payload is one msgpack array of messages; each message is an array
``[tag, req, segment, *fields]`` with the fields below. A ballot is ``[number, node]``, a vote
``[index, [number, node], value]``, values are msgpack ``bin``.

======  ==============  ==================================================
 tag     message          fields after ``req, segment``
======  ==============  ==================================================
 1       Prepare          indices: [int], ballot
 2       Accept           ballot, values: [[index, bin]]
 3       Read             indices: [int]
 4       Promise          ballot, votes: [vote], floor: ballot
 5       Accepted         ballot
 6       Nack             ballot, promised: ballot, accepted: ballot
 7       ReadReply        votes: [vote]
 8       SegmentTrimmed   (none)
 9       ErrorReply       reason: str
 20      Fence            ballot (``[0, -1]``: only ask)
 21      Fenced           floor: ballot, promised: ballot
======  ==============  ==================================================

Rules:

1. A frame carries one or more messages; a sender coalesces whatever it has queued for a peer into one frame
   (DESIGN §3 rule 2: this is how Python reaches a useful throughput).
2. Decoding trusts nothing. The length is checked against ``max_frame`` before the body is read; msgpack runs
   with ``strict_map_key``, ``raw=False`` and size limits; every array's type and arity is checked here and
   every field by the message constructors (which reject, among others, a ``bool`` where an ``int`` belongs).
   The requests (Prepare, Accept, Read: an acceptor's every frame) are checked first by one inline pass of the
   same conditions and, when it finds them all met, built without the constructors' checks; anything else
   goes to the constructor, which raises the exact error (``_CHECKED`` are the constructor-only decoders; a
   differential test holds the two to the same result).
   Anything malformed raises ``RemoteProtocolError`` and nothing half-decoded escapes: a frame decodes to all
   of its messages or to an error.
3. With a key, a frame without a valid MAC is refused; without a key, an authenticated frame is refused too
   (one side is misconfigured, and saying so early beats a silent mismatch).
4. A connection starts with a hello each way (flags bit 1, ``HELLO``): the client's names its cluster id and
   a nonce; the acceptor's answers with its cluster id, acceptor id, incarnation, pid, the client's nonce
   (``echo``) and its limit on registers per request, or a refusal reason. Until a valid hello has arrived a
   node accepts frames of at most ``HELLO_MAX_FRAME`` bytes, so an unauthenticated peer cannot make it buffer
   more. The hello payload is the array ``[cluster_id: str, acceptor_id: int|nil, incarnation, pid, nonce:
   bin(16), echo: bin(0|16), max_registers, refused: str]``; it is MAC'd like any frame, except that a
   refusal may be sent unauthenticated (to a peer whose key is wrong) and is then only shown, never trusted.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from wormspace.errors import RemoteProtocolError, UsageError
from wormspace.layers.messages import (
    MAX_INDEX,
    MAX_INDICES,
    MAX_INT,
    MAX_VALUE,
    TRIM,
    Accept,
    Accepted,
    Ballot,
    ErrorReply,
    Fence,
    Fenced,
    Message,
    Nack,
    Prepare,
    Promise,
    Read,
    ReadReply,
    SegmentTrimmed,
    Vote,
)

VERSION = 2
AUTH = 0x01
HELLO = 0x02
KNOWN_FLAGS = AUTH | HELLO
HELLO_MAX_FRAME = 512  # a hello frame is well under this; it is the limit before a peer's hello is accepted
NONCE_LEN = 16
MAX_CLUSTER_ID = 64
MAC_LEN = 32
PREFIX = struct.Struct(">I")
PREFIX_LEN = PREFIX.size
HEADER_LEN = 2  # version, flags
DEFAULT_MAX_FRAME = 64 << 20  # bytes after the length prefix
MIN_MAX_FRAME = 1024  # the smallest frame limit a node may set (and a hello may state)
MAX_STATED_FRAME = (1 << 32) - 1  # the largest a hello states: what the 4-byte length prefix can announce
MAX_REASON = 4096
MAX_MESSAGES = 1 << 20  # messages in one frame (the frame size bounds it long before this)

TAG_PREPARE = 1
TAG_ACCEPT = 2
TAG_READ = 3
TAG_PROMISE = 4
TAG_ACCEPTED = 5
TAG_NACK = 6
TAG_READ_REPLY = 7
TAG_SEGMENT_TRIMMED = 8
TAG_ERROR_REPLY = 9
TAG_FENCE = 20
TAG_FENCED = 21

# ---- encoding -------------------------------------------------------------------------------------------
# A Ballot is a NamedTuple, so msgpack packs it as the array [number, node] without conversion.


def _votes_out(votes: tuple[Vote, ...]) -> list[tuple[int, Ballot, bytes]]:
    return [(v.index, v.ballot, v.value) for v in votes]


def _e_prepare(m: Prepare) -> tuple[Any, ...]:
    return (TAG_PREPARE, m.req, m.segment, m.indices, m.ballot)


def _e_accept(m: Accept) -> tuple[Any, ...]:
    return (TAG_ACCEPT, m.req, m.segment, m.ballot, m.values)


def _e_read(m: Read) -> tuple[Any, ...]:
    return (TAG_READ, m.req, m.segment, m.indices)


def _e_promise(m: Promise) -> tuple[Any, ...]:
    return (TAG_PROMISE, m.req, m.segment, m.ballot, _votes_out(m.votes), m.floor)


def _e_accepted(m: Accepted) -> tuple[Any, ...]:
    return (TAG_ACCEPTED, m.req, m.segment, m.ballot)


def _e_nack(m: Nack) -> tuple[Any, ...]:
    return (TAG_NACK, m.req, m.segment, m.ballot, m.promised, m.accepted)


def _e_read_reply(m: ReadReply) -> tuple[Any, ...]:
    return (TAG_READ_REPLY, m.req, m.segment, _votes_out(m.votes))


def _e_segment_trimmed(m: SegmentTrimmed) -> tuple[Any, ...]:
    return (TAG_SEGMENT_TRIMMED, m.req, m.segment)


def _e_error_reply(m: ErrorReply) -> tuple[Any, ...]:
    return (TAG_ERROR_REPLY, m.req, m.segment, m.reason)


def _e_fence(m: Fence) -> tuple[Any, ...]:
    return (TAG_FENCE, m.req, m.segment, m.ballot)


def _e_fenced(m: Fenced) -> tuple[Any, ...]:
    return (TAG_FENCED, m.req, m.segment, m.floor, m.promised)


_ENCODERS: dict[type, Callable[[Any], tuple[Any, ...]]] = {
    Prepare: _e_prepare,
    Accept: _e_accept,
    Read: _e_read,
    Promise: _e_promise,
    Accepted: _e_accepted,
    Nack: _e_nack,
    ReadReply: _e_read_reply,
    SegmentTrimmed: _e_segment_trimmed,
    ErrorReply: _e_error_reply,
    Fence: _e_fence,
    Fenced: _e_fenced,
}


def encode_payload(messages: Iterable[Message]) -> bytes:
    """The msgpack payload for ``messages`` (no framing)."""
    get = _ENCODERS.get
    body = []
    for m in messages:
        enc = get(type(m))
        if enc is None:
            raise UsageError(f"not a wire message: {m!r:.80}")
        body.append(enc(m))
    if not body:
        raise UsageError("a frame carries at least one message")
    out: bytes = msgpack.packb(body, use_bin_type=True)
    return out


def frame_payload(payload: bytes, key: bytes | None = None) -> bytes:
    """Wrap an encoded payload into a frame (prefix, version, flags, optional MAC)."""
    if key is None:
        header = bytes((VERSION, 0))
        return PREFIX.pack(HEADER_LEN + len(payload)) + header + payload
    header = bytes((VERSION, AUTH))
    mac = hmac.new(key, header + payload, hashlib.sha256).digest()
    return PREFIX.pack(HEADER_LEN + MAC_LEN + len(payload)) + header + mac + payload


def encode_frame(messages: Iterable[Message], key: bytes | None = None) -> bytes:
    """One frame carrying ``messages`` (in order), authenticated with ``key`` if given."""
    return frame_payload(encode_payload(messages), key)


# ---- decoding -------------------------------------------------------------------------------------------


def _fail(what: str) -> RemoteProtocolError:
    return RemoteProtocolError(what)


def _arity(m: tuple[Any, ...], n: int, name: str) -> None:
    if len(m) != n:
        raise _fail(f"{name} must have {n} elements, got {len(m)}")


def _ballot_in(v: object, name: str) -> Ballot:
    if type(v) is not tuple or len(v) != 2:
        raise _fail(f"{name} must be a [number, node] pair, got {v!r}")
    return Ballot(v[0], v[1])


def _ints_in(v: object, name: str) -> tuple[int, ...]:
    if type(v) is not tuple:
        raise _fail(f"{name} must be an array, got {type(v).__name__}")
    return v  # element types are checked by the message constructor


def _votes_in(v: object) -> tuple[Vote, ...]:
    if type(v) is not tuple or len(v) > MAX_INDICES:
        raise _fail("votes must be an array of [index, ballot, value]")
    out = []
    for x in v:
        if type(x) is not tuple or len(x) != 3:
            raise _fail(f"a vote must be [index, [number, node], value], got {x!r}")
        out.append(Vote(index=x[0], ballot=_ballot_in(x[1], "vote ballot"), value=x[2]))
    return tuple(out)


def _values_in(v: object) -> tuple[tuple[int, bytes], ...]:
    if type(v) is not tuple:
        raise _fail("values must be an array of [index, value]")
    return v  # pairs' shape and types are checked by Accept


def _c_prepare(m: tuple[Any, ...]) -> Message:
    _arity(m, 5, "Prepare")
    indices = _ints_in(m[3], "indices")
    return Prepare(req=m[1], segment=m[2], indices=indices, ballot=_ballot_in(m[4], "ballot"))


def _c_accept(m: tuple[Any, ...]) -> Message:
    _arity(m, 5, "Accept")
    return Accept(req=m[1], segment=m[2], ballot=_ballot_in(m[3], "ballot"), values=_values_in(m[4]))


def _c_read(m: tuple[Any, ...]) -> Message:
    _arity(m, 4, "Read")
    return Read(req=m[1], segment=m[2], indices=_ints_in(m[3], "indices"))


# The requests' fast decoders: the constructors' conditions checked inline, in one pass (rule 2); a message
# that meets them all is built without running them again, any other goes to the checked decoder above.

_new = object.__new__
_put = object.__setattr__


def _head_ok(m: tuple[Any, ...], n: int) -> bool:
    """Arity ``n``, and ``req`` and ``segment`` ints in ``[0, MAX_INT]`` (``_Msg``)."""
    if len(m) != n:
        return False
    req, seg = m[1], m[2]
    return type(req) is int and type(seg) is int and 0 <= req <= MAX_INT and 0 <= seg <= MAX_INT


def _fast_ballot(b: object) -> Ballot | None:
    """A ballot ``[number >= 1, node >= 0]`` (``_ballot``), else None."""
    if type(b) is not tuple or len(b) != 2:
        return None
    number, node = b
    if type(number) is not int or type(node) is not int or not (1 <= number <= MAX_INT and 0 <= node <= MAX_INT):
        return None
    return Ballot(number, node)


def _indices_ok(v: object) -> bool:
    """Indices in ``[TRIM, MAX_INDEX)``, at least one, at most ``MAX_INDICES``, none repeated (``_indices``)."""
    if type(v) is not tuple or not 0 < len(v) <= MAX_INDICES:
        return False
    for i in v:
        if type(i) is not int or not TRIM <= i < MAX_INDEX:
            return False
    return len(set(v)) == len(v)


def _d_prepare(m: tuple[Any, ...]) -> Message:
    ballot = _fast_ballot(m[4]) if _head_ok(m, 5) and _indices_ok(m[3]) else None
    if ballot is None:
        return _c_prepare(m)
    msg: Prepare = _new(Prepare)
    _put(msg, "req", m[1])
    _put(msg, "segment", m[2])
    _put(msg, "indices", m[3])
    _put(msg, "ballot", ballot)
    return msg


def _d_accept(m: tuple[Any, ...]) -> Message:
    if not _head_ok(m, 5):
        return _c_accept(m)
    ballot = _fast_ballot(m[3])
    values = m[4]
    if ballot is None or type(values) is not tuple or not 0 < len(values) <= MAX_INDICES:
        return _c_accept(m)
    seen: set[int] = set()
    for item in values:
        if type(item) is not tuple or len(item) != 2:
            return _c_accept(m)
        i, v = item
        if type(i) is not int or not TRIM <= i < MAX_INDEX or type(v) is not bytes or len(v) > MAX_VALUE:
            return _c_accept(m)
        seen.add(i)
    if len(seen) != len(values):
        return _c_accept(m)
    msg: Accept = _new(Accept)
    _put(msg, "req", m[1])
    _put(msg, "segment", m[2])
    _put(msg, "ballot", ballot)
    _put(msg, "values", values)
    return msg


def _d_read(m: tuple[Any, ...]) -> Message:
    if not (_head_ok(m, 4) and _indices_ok(m[3])):
        return _c_read(m)
    msg: Read = _new(Read)
    _put(msg, "req", m[1])
    _put(msg, "segment", m[2])
    _put(msg, "indices", m[3])
    return msg


def _d_promise(m: tuple[Any, ...]) -> Message:
    _arity(m, 6, "Promise")
    return Promise(
        req=m[1], segment=m[2], ballot=_ballot_in(m[3], "ballot"), votes=_votes_in(m[4]),
        floor=_ballot_in(m[5], "floor"),
    )


def _d_accepted(m: tuple[Any, ...]) -> Message:
    _arity(m, 4, "Accepted")
    return Accepted(req=m[1], segment=m[2], ballot=_ballot_in(m[3], "ballot"))


def _d_nack(m: tuple[Any, ...]) -> Message:
    _arity(m, 6, "Nack")
    return Nack(
        req=m[1],
        segment=m[2],
        ballot=_ballot_in(m[3], "ballot"),
        promised=_ballot_in(m[4], "promised"),
        accepted=_ballot_in(m[5], "accepted"),
    )


def _d_read_reply(m: tuple[Any, ...]) -> Message:
    _arity(m, 4, "ReadReply")
    return ReadReply(req=m[1], segment=m[2], votes=_votes_in(m[3]))


def _d_segment_trimmed(m: tuple[Any, ...]) -> Message:
    _arity(m, 3, "SegmentTrimmed")
    return SegmentTrimmed(req=m[1], segment=m[2])


def _d_error_reply(m: tuple[Any, ...]) -> Message:
    _arity(m, 4, "ErrorReply")
    return ErrorReply(req=m[1], segment=m[2], reason=m[3])


def _d_fence(m: tuple[Any, ...]) -> Message:
    _arity(m, 4, "Fence")
    return Fence(req=m[1], segment=m[2], ballot=_ballot_in(m[3], "ballot"))


def _d_fenced(m: tuple[Any, ...]) -> Message:
    _arity(m, 5, "Fenced")
    return Fenced(req=m[1], segment=m[2], floor=_ballot_in(m[3], "floor"), promised=_ballot_in(m[4], "promised"))


_CHECKED: dict[int, Callable[[tuple[Any, ...]], Message]] = {
    TAG_PREPARE: _c_prepare,
    TAG_ACCEPT: _c_accept,
    TAG_READ: _c_read,
}
"""The requests' decoders through the checked constructors alone (what the fast decoders must agree with)."""

_DECODERS: dict[int, Callable[[tuple[Any, ...]], Message]] = {
    TAG_PREPARE: _d_prepare,
    TAG_ACCEPT: _d_accept,
    TAG_READ: _d_read,
    TAG_PROMISE: _d_promise,
    TAG_ACCEPTED: _d_accepted,
    TAG_NACK: _d_nack,
    TAG_READ_REPLY: _d_read_reply,
    TAG_SEGMENT_TRIMMED: _d_segment_trimmed,
    TAG_ERROR_REPLY: _d_error_reply,
    TAG_FENCE: _d_fence,
    TAG_FENCED: _d_fenced,
}


def _unpack(payload: bytes, max_value: int) -> object:
    try:
        return msgpack.unpackb(
            payload,
            raw=False,
            strict_map_key=True,
            use_list=False,
            max_bin_len=max_value,
            max_str_len=4 * MAX_REASON,  # bytes of UTF-8; ErrorReply bounds characters
            max_array_len=max(MAX_INDICES, MAX_MESSAGES),
            max_map_len=0,
            max_ext_len=0,
        )
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as e:
        raise _fail(f"malformed msgpack payload: {type(e).__name__}: {e}") from None


def decode_payload(payload: bytes, max_value: int = MAX_VALUE) -> list[Message]:
    """Decode a msgpack payload into messages, validating every field (raises ``RemoteProtocolError``)."""
    body = _unpack(payload, max_value)
    if type(body) is not tuple:
        raise _fail(f"payload must be an array of messages, got {type(body).__name__}")
    if not body:
        raise _fail("a frame carries at least one message")
    out: list[Message] = []
    for m in body:
        if type(m) is not tuple or not m:
            raise _fail(f"a message must be a non-empty array, got {m!r:.80}")
        tag = m[0]
        decoder = _DECODERS.get(tag) if type(tag) is int else None
        if decoder is None:
            raise _fail(f"unknown message tag {tag!r:.40}")
        out.append(decoder(m))
    return out


def check_length(prefix: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> int:
    """The body length announced by a 4-byte prefix; refuses lengths below a header or above ``max_frame``."""
    if len(prefix) != PREFIX_LEN:
        raise _fail(f"truncated length prefix ({len(prefix)} of {PREFIX_LEN} bytes)")
    (n,) = PREFIX.unpack(prefix)
    if n > max_frame:
        raise _fail(f"frame of {n} bytes is over the limit of {max_frame}")
    if n < HEADER_LEN + 1:
        raise _fail(f"frame of {n} bytes is too short to hold a header and a payload")
    return int(n)


def decode_body(body: bytes, key: bytes | None = None, max_value: int = MAX_VALUE) -> list[Message]:
    """Decode the bytes after the length prefix: version, flags, optional MAC, payload."""
    if len(body) < HEADER_LEN + 1:
        raise _fail("frame too short to hold a header and a payload")
    version, flags = body[0], body[1]
    if version != VERSION:
        raise _fail(f"unknown wire version {version} (this node speaks {VERSION})")
    if flags & ~KNOWN_FLAGS:
        raise _fail(f"unknown frame flags 0x{flags:02x}")
    if flags & HELLO:
        raise _fail("a hello frame after the hello exchange")
    payload = _authenticated_payload(body, flags, key)
    return decode_payload(payload, max_value)


def _authenticated_payload(body: bytes, flags: int, key: bytes | None) -> bytes:
    if flags & AUTH:
        if key is None:
            raise _fail("peer sent an authenticated frame but this node has no auth key")
        if len(body) < HEADER_LEN + MAC_LEN + 1:
            raise _fail("authenticated frame too short to hold a MAC and a payload")
        mac = body[HEADER_LEN : HEADER_LEN + MAC_LEN]
        payload = body[HEADER_LEN + MAC_LEN :]
        want = hmac.new(key, body[:HEADER_LEN] + payload, hashlib.sha256).digest()
        if not hmac.compare_digest(mac, want):
            raise _fail("bad frame MAC (wrong or missing auth key)")
    else:
        if key is not None:
            raise _fail("unauthenticated frame refused: this node requires an auth key")
        payload = body[HEADER_LEN:]
    return payload


# ---- the hello ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    """The first frame each way on a connection (rule 4). A client sends its cluster id and a fresh nonce; the
    acceptor answers with its identity (``acceptor_id``, ``incarnation``, ``pid``), echoes the client's nonce,
    and states ``max_registers``, its limit on registers per request. ``max_frame`` is each side's limit on
    a frame's bytes after the length prefix; 0 means not stated, and a hello that does not state it is
    encoded with 8 fields, as by earlier versions (which take nothing else), else with 9: a client states
    its own, and an acceptor states its own only to a client that stated one. An acceptor that refuses the
    connection answers a hello whose ``refused`` says why (and closes); such a refusal may come
    unauthenticated."""

    cluster_id: str
    acceptor_id: int | None  # None in a client's hello
    incarnation: int = 0  # 0 in a client's hello
    pid: int = 0
    nonce: bytes = b""
    echo: bytes = b""  # the client's nonce, in an acceptor's answer
    max_registers: int = 0  # in an acceptor's answer
    refused: str = ""
    max_frame: int = 0  # 0: not stated (8 fields on the wire)

    def __post_init__(self) -> None:
        if type(self.cluster_id) is not str or len(self.cluster_id) > MAX_CLUSTER_ID:
            raise _fail(f"hello cluster_id must be a string of at most {MAX_CLUSTER_ID} characters")
        if self.acceptor_id is not None and (type(self.acceptor_id) is not int or not 0 <= self.acceptor_id < 1 << 31):
            raise _fail(f"hello acceptor_id must be nil or an int in [0, 2**31), got {self.acceptor_id!r:.40}")
        for name in ("incarnation", "pid", "max_registers"):
            v = getattr(self, name)
            if type(v) is not int or not 0 <= v < 1 << 31:
                raise _fail(f"hello {name} must be an int in [0, 2**31), got {v!r:.40}")
        if type(self.nonce) is not bytes or len(self.nonce) not in (0, NONCE_LEN):
            raise _fail(f"hello nonce must be {NONCE_LEN} bytes")
        if type(self.echo) is not bytes or len(self.echo) not in (0, NONCE_LEN):
            raise _fail(f"hello echo must be empty or {NONCE_LEN} bytes")
        if type(self.refused) is not str or len(self.refused) > 200:
            raise _fail("hello refused must be a string of at most 200 characters")
        frame = self.max_frame
        if type(frame) is not int or not (frame == 0 or MIN_MAX_FRAME <= frame <= MAX_STATED_FRAME):
            raise _fail(f"hello max_frame must be 0 or an int in [{MIN_MAX_FRAME}, 2**32), got {self.max_frame!r:.40}")


def encode_hello(hello: Hello, key: bytes | None = None) -> bytes:
    """A hello frame (flags ``HELLO``, plus ``AUTH`` and a MAC under ``key`` if given)."""
    fields = [
        hello.cluster_id,
        hello.acceptor_id,
        hello.incarnation,
        hello.pid,
        hello.nonce,
        hello.echo,
        hello.max_registers,
        hello.refused,
    ]
    if hello.max_frame:
        fields.append(hello.max_frame)
    payload: bytes = msgpack.packb(fields, use_bin_type=True)
    if key is None:
        return PREFIX.pack(HEADER_LEN + len(payload)) + bytes((VERSION, HELLO)) + payload
    header = bytes((VERSION, HELLO | AUTH))
    mac = hmac.new(key, header + payload, hashlib.sha256).digest()
    return PREFIX.pack(HEADER_LEN + MAC_LEN + len(payload)) + header + mac + payload


def decode_hello(body: bytes, key: bytes | None = None) -> Hello:
    """Decode a hello frame's bytes after the length prefix. With a key, the hello must carry a valid MAC,
    except a refusal (``refused`` set), which is accepted unauthenticated as an explanation only."""
    if len(body) < HEADER_LEN + 1:
        raise _fail("frame too short to hold a header and a payload")
    version, flags = body[0], body[1]
    if version != VERSION:
        raise _fail(f"unknown wire version {version} (this node speaks {VERSION})")
    if flags & ~KNOWN_FLAGS:
        raise _fail(f"unknown frame flags 0x{flags:02x}")
    if not flags & HELLO:
        raise _fail("expected a hello frame first, got a message frame")
    refusal_ok = key is not None and not flags & AUTH
    payload = _authenticated_payload(body, flags, None if refusal_ok else key)
    try:
        raw = msgpack.unpackb(
            payload, raw=False, strict_map_key=True, use_list=False, max_bin_len=NONCE_LEN,
            max_str_len=4 * 200, max_array_len=16, max_map_len=0, max_ext_len=0,
        )  # fmt: skip
    except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as e:
        raise _fail(f"malformed hello: {type(e).__name__}: {e}") from None
    if type(raw) is not tuple or len(raw) not in (8, 9):
        raise _fail("a hello must be an array of 8 or 9 fields")
    hello = Hello(
        cluster_id=raw[0], acceptor_id=raw[1], incarnation=raw[2], pid=raw[3], nonce=raw[4], echo=raw[5],
        max_registers=raw[6], refused=raw[7], max_frame=raw[8] if len(raw) == 9 else 0,
    )  # fmt: skip
    if refusal_ok and not hello.refused:
        raise _fail("unauthenticated frame refused: this node requires an auth key")
    return hello


def decode_frame(
    buf: bytes, key: bytes | None = None, *, max_frame: int = DEFAULT_MAX_FRAME, max_value: int = MAX_VALUE
) -> list[Message]:
    """Decode exactly one whole frame (prefix included). Raises ``RemoteProtocolError`` on anything wrong."""
    n = check_length(bytes(buf[:PREFIX_LEN]), max_frame)
    if len(buf) - PREFIX_LEN != n:
        raise _fail(f"frame announces {n} bytes but {len(buf) - PREFIX_LEN} follow the prefix")
    return decode_body(bytes(buf[PREFIX_LEN:]), key, max_value)


def split_for_frames(
    messages: Sequence[Message], key: bytes | None = None, max_frame: int = DEFAULT_MAX_FRAME
) -> tuple[list[bytes], list[Message]]:
    """Encode ``messages`` into as few frames as fit under ``max_frame``, splitting the list when one frame
    would be too large. Returns the frames and the messages too large to travel even alone."""
    frames: list[bytes] = []
    too_big: list[Message] = []
    stack: list[Sequence[Message]] = [messages]
    while stack:
        chunk = stack.pop()
        if not chunk:
            continue
        frame = encode_frame(chunk, key)
        if len(frame) - PREFIX_LEN <= max_frame:
            frames.append(frame)
        elif len(chunk) == 1:
            too_big.append(chunk[0])
        else:
            mid = len(chunk) // 2
            stack.append(chunk[mid:])
            stack.append(chunk[:mid])
    return frames, too_big


__all__ = [
    "AUTH",
    "DEFAULT_MAX_FRAME",
    "MAX_STATED_FRAME",
    "MIN_MAX_FRAME",
    "HELLO",
    "HELLO_MAX_FRAME",
    "NONCE_LEN",
    "Hello",
    "decode_hello",
    "encode_hello",
    "MAC_LEN",
    "PREFIX_LEN",
    "VERSION",
    "check_length",
    "decode_body",
    "decode_frame",
    "decode_payload",
    "encode_frame",
    "encode_payload",
    "frame_payload",
    "split_for_frames",
]
