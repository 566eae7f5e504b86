"""The wire format: every message round-trips; the decoder turns every malformed input into
``RemoteProtocolError`` and nothing else; the requests' fast decoders agree with the checked constructors
(differential, bounded Hypothesis runs), and a fast decoder that skips a check is caught (planted bug,
catalogued in tests/mutants/catalog.py)."""

from __future__ import annotations

import dataclasses
import struct
import typing
from typing import Any

import msgpack
import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from wormspace.errors import RemoteProtocolError, UsageError
from wormspace.layers import wire
from wormspace.layers.messages import (
    MAX_INDEX,
    MAX_INT,
    MAX_VALUE,
    TRIM,
    ZERO_BALLOT,
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
from wormspace.layers.wire import (
    AUTH,
    DEFAULT_MAX_FRAME,
    HELLO,
    HELLO_MAX_FRAME,
    MAC_LEN,
    MIN_MAX_FRAME,
    NONCE_LEN,
    PREFIX_LEN,
    VERSION,
    Hello,
    check_length,
    decode_frame,
    decode_hello,
    decode_payload,
    encode_frame,
    encode_hello,
    encode_payload,
    frame_payload,
    split_for_frames,
)

KEY = b"0123456789abcdef0123456789abcdef"

# ---- strategies -----------------------------------------------------------------------------------------

ints = st.integers(0, MAX_INT) | st.integers(0, 1000)
ballots = st.builds(Ballot, st.integers(1, MAX_INT) | st.integers(1, 9), st.integers(0, MAX_INT) | st.integers(0, 9))
ballots_or_zero = ballots | st.just(ZERO_BALLOT)
index = st.integers(TRIM, MAX_INDEX - 1) | st.integers(TRIM, 4)
values = st.binary(max_size=40)
indices = st.lists(index, min_size=1, max_size=8, unique=True).map(tuple)
votes = st.lists(st.builds(Vote, index=index, ballot=ballots, value=values), max_size=6, unique_by=lambda v: v.index)
pairs = st.lists(st.tuples(index, values), min_size=1, max_size=6, unique_by=lambda p: p[0]).map(tuple)
reasons = st.text(max_size=60)

# Every field of every message, by class: a new field without a strategy fails test_strategies_cover_fields.
FIELDS: dict[type, dict[str, st.SearchStrategy[Any]]] = {
    Prepare: {"indices": indices, "ballot": ballots},
    Accept: {"ballot": ballots, "values": pairs},
    Read: {"indices": indices},
    Promise: {"ballot": ballots, "votes": votes.map(tuple), "floor": ballots_or_zero},
    Accepted: {"ballot": ballots},
    Nack: {"ballot": ballots, "promised": ballots, "accepted": ballots_or_zero},
    ReadReply: {"votes": votes.map(tuple)},
    SegmentTrimmed: {},
    ErrorReply: {"reason": reasons},
    Fence: {"ballot": ballots_or_zero},
    Fenced: {"floor": ballots_or_zero, "promised": ballots_or_zero},
}
messages = st.one_of(*[st.builds(cls, req=ints, segment=ints, **fs) for cls, fs in FIELDS.items()])
message_lists = st.lists(messages, min_size=1, max_size=12)


def frame_of(obj: object, key: bytes | None = None) -> bytes:
    """A well-framed frame whose payload is ``obj`` packed as is (possibly garbage)."""
    return frame_payload(msgpack.packb(obj, use_bin_type=True), key)


def raw_frame(version: int, flags: int, rest: bytes) -> bytes:
    body = bytes((version, flags)) + rest
    return struct.pack(">I", len(body)) + body


# ---- round trips ----------------------------------------------------------------------------------------


def test_strategies_cover_every_message_type_and_field() -> None:
    assert set(FIELDS) == set(typing.get_args(Message))
    for cls, fs in FIELDS.items():
        names = {f.name for f in dataclasses.fields(cls)} - {"req", "segment"}
        assert names == set(fs), cls.__name__


@given(message_lists, st.sampled_from([None, KEY]))
def test_round_trip_every_message_type(msgs: list[Message], key: bytes | None) -> None:
    frame = encode_frame(msgs, key)
    assert decode_frame(frame, key) == msgs


def test_round_trip_edge_values() -> None:
    big = b"\xff" * MAX_VALUE
    msgs: list[Message] = [
        Accept(req=MAX_INT, segment=MAX_INT, ballot=Ballot(MAX_INT, MAX_INT), values=((MAX_INDEX - 1, big),)),
        Promise(req=0, segment=0, ballot=Ballot(1, 0), votes=(Vote(index=TRIM, ballot=Ballot(1, 0), value=b""),)),
        Nack(req=1, segment=2, ballot=Ballot(1, 0), promised=Ballot(2, 0)),
        ErrorReply(req=1, segment=2, reason="é" * 4096),
    ]
    assert decode_frame(encode_frame(msgs)) == msgs


def test_encode_refuses_an_empty_frame_and_non_messages() -> None:
    with pytest.raises(UsageError):
        encode_frame([])
    with pytest.raises(UsageError):
        encode_payload([Ballot(1, 1)])  # type: ignore[list-item]


def test_frame_layout() -> None:
    msgs = [Read(req=1, segment=2, indices=(3,))]
    plain = encode_frame(msgs)
    assert plain[PREFIX_LEN] == VERSION and plain[PREFIX_LEN + 1] == 0
    assert struct.unpack(">I", plain[:PREFIX_LEN])[0] == len(plain) - PREFIX_LEN
    signed = encode_frame(msgs, KEY)
    assert signed[PREFIX_LEN + 1] == AUTH
    assert len(signed) == len(plain) + MAC_LEN


@given(message_lists)
@settings(max_examples=30)
def test_split_for_frames_keeps_every_message_in_order(msgs: list[Message]) -> None:
    max_frame = 200
    frames, too_big = split_for_frames(msgs, None, max_frame)
    decoded = [m for f in frames for m in decode_frame(f, max_frame=max_frame)]
    assert all(len(f) - PREFIX_LEN <= max_frame for f in frames)
    assert [m for m in msgs if m not in too_big] == decoded
    for m in too_big:
        assert len(encode_frame([m])) - PREFIX_LEN > max_frame


# ---- the decoder under fire -----------------------------------------------------------------------------


def decodes_or_refuses(buf: bytes, key: bytes | None = None, **kw: Any) -> list[Message] | None:
    """The decoder's contract: a list of messages, or RemoteProtocolError -- never another exception."""
    try:
        return decode_frame(buf, key, **kw)
    except RemoteProtocolError:
        return None


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_random_bytes_are_refused(buf: bytes) -> None:
    decodes_or_refuses(buf)
    decodes_or_refuses(buf, KEY)
    decodes_or_refuses(struct.pack(">I", len(buf)) + buf)


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_random_payloads_are_refused(payload: bytes) -> None:
    for frame in (frame_payload(payload), bytes((0, 0, 0, len(payload) + 2, VERSION, 0)) + payload):
        out = decodes_or_refuses(frame)
        assert out is None or all(isinstance(m, typing.get_args(Message)) for m in out)


garbage = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.binary(max_size=8)
    | st.text(max_size=8)
    | st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 9, 20, 21]),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=30,
)


@given(garbage)
@settings(max_examples=400)
def test_random_structures_are_refused_or_valid(obj: object) -> None:
    decodes_or_refuses(frame_of(obj))
    decodes_or_refuses(frame_of([obj]))


@given(message_lists, st.data())
@settings(max_examples=200)
def test_mutated_frames_decode_or_are_refused(msgs: list[Message], data: st.DataObject) -> None:
    frame = bytearray(encode_frame(msgs))
    pos = data.draw(st.integers(PREFIX_LEN, len(frame) - 1))
    frame[pos] = data.draw(st.integers(0, 255))
    decodes_or_refuses(bytes(frame))


@given(message_lists, st.data())
@settings(max_examples=200)
def test_any_change_to_an_authenticated_frame_is_refused(msgs: list[Message], data: st.DataObject) -> None:
    frame = bytearray(encode_frame(msgs, KEY))
    pos = data.draw(st.integers(PREFIX_LEN, len(frame) - 1))
    frame[pos] ^= data.draw(st.integers(1, 255))
    with pytest.raises(RemoteProtocolError):
        decode_frame(bytes(frame), KEY)


@given(message_lists, st.data())
@settings(max_examples=100)
def test_truncated_frames_are_refused(msgs: list[Message], data: st.DataObject) -> None:
    frame = encode_frame(msgs)
    cut = data.draw(st.integers(0, len(frame) - 1))
    with pytest.raises(RemoteProtocolError):
        decode_frame(frame[:cut])
    # a truncated body under a prefix that matches its length is refused too
    body = frame[PREFIX_LEN:cut] if cut > PREFIX_LEN else b""
    with pytest.raises(RemoteProtocolError):
        decode_frame(struct.pack(">I", len(body)) + body)


def test_oversized_frames_are_refused_before_reading_the_body() -> None:
    with pytest.raises(RemoteProtocolError, match="over the limit"):
        check_length(struct.pack(">I", DEFAULT_MAX_FRAME + 1))
    with pytest.raises(RemoteProtocolError, match="over the limit"):
        decode_frame(struct.pack(">I", 0xFFFFFFFF))
    frame = encode_frame([Accept(req=1, segment=1, ballot=Ballot(1, 1), values=((0, b"x" * 1000),))])
    with pytest.raises(RemoteProtocolError, match="over the limit"):
        decode_frame(frame, max_frame=500)
    assert decode_frame(frame, max_frame=len(frame) - PREFIX_LEN)


def test_oversized_values_are_refused() -> None:
    frame = encode_frame([Accept(req=1, segment=1, ballot=Ballot(1, 1), values=((0, b"x" * 101),))])
    with pytest.raises(RemoteProtocolError, match="max_bin_len"):
        decode_frame(frame, max_value=100)
    too_big = frame_of([[2, 1, 1, [1, 1], [[0, b"x" * (MAX_VALUE + 1)]]]])
    with pytest.raises(RemoteProtocolError):
        decode_frame(too_big, max_frame=2 * MAX_VALUE)
    with pytest.raises(RemoteProtocolError):
        decode_frame(frame_of([[9, 1, 1, "x" * 20000]]))


def test_header_checks() -> None:
    payload = encode_payload([Read(req=1, segment=2, indices=(3,))])
    with pytest.raises(RemoteProtocolError, match=r"unknown wire version 1 \(this node speaks 2\)"):
        decode_frame(raw_frame(1, 0, payload))  # the version before the hello exchange
    with pytest.raises(RemoteProtocolError, match="unknown frame flags"):
        decode_frame(raw_frame(VERSION, 0x80, payload))
    with pytest.raises(RemoteProtocolError, match="too short"):
        decode_frame(raw_frame(VERSION, 0, b""))
    with pytest.raises(RemoteProtocolError, match="announces 9 bytes but 8 follow"):
        decode_frame(raw_frame(VERSION, 0, payload)[:-1])  # the prefix promises one byte more
    with pytest.raises(RemoteProtocolError, match="follow the prefix"):
        decode_frame(raw_frame(VERSION, 0, payload) + b"\x00")


def test_authentication() -> None:
    msgs = [Read(req=1, segment=2, indices=(3,))]
    with pytest.raises(RemoteProtocolError, match="requires an auth key"):
        decode_frame(encode_frame(msgs), KEY)
    with pytest.raises(RemoteProtocolError, match="no auth key"):
        decode_frame(encode_frame(msgs, KEY))
    with pytest.raises(RemoteProtocolError, match="bad frame MAC"):
        decode_frame(encode_frame(msgs, KEY), b"another key of sixteen+ bytes")
    with pytest.raises(RemoteProtocolError, match="too short"):
        decode_frame(raw_frame(VERSION, AUTH, b"\x00" * MAC_LEN), KEY)


BAD_PAYLOADS: dict[str, object] = {
    "map payload": {"a": 1},
    "int payload": 7,
    "empty list": [],
    "message not a list": [7],
    "empty message": [[]],
    "unknown tag": [[42, 1, 1]],
    "tag as bool": [[True, 1, 1, [0], [1, 1]]],
    "tag as str": [["1", 1, 1, [0], [1, 1]]],
    "req as bool": [[3, True, 1, [0]]],
    "segment as bool": [[3, 1, False, [0]]],
    "req as float": [[3, 1.0, 1, [0]]],
    "negative req": [[3, -1, 1, [0]]],
    "req over 63 bits": [[3, 2**63, 1, [0]]],
    "index as bool": [[3, 1, 1, [True]]],
    "index below TRIM": [[3, 1, 1, [-3]]],
    "index too large": [[3, 1, 1, [MAX_INDEX]]],
    "no indices": [[3, 1, 1, []]],
    "repeated indices": [[3, 1, 1, [1, 1]]],
    "indices as map": [[3, 1, 1, {"0": 1}]],
    "read arity": [[3, 1, 1, [0], 5]],
    "prepare arity": [[1, 1, 1, [0]]],
    "ballot as int": [[1, 1, 1, [0], 5]],
    "ballot of three": [[1, 1, 1, [0], [1, 1, 1]]],
    "ballot number bool": [[1, 1, 1, [0], [True, 1]]],
    "ballot node bool": [[1, 1, 1, [0], [1, False]]],
    "ballot zero": [[1, 1, 1, [0], [0, 1]]],
    "ballot negative node": [[1, 1, 1, [0], [1, -1]]],
    "ballot from the future (over 63 bits)": [[1, 1, 1, [0], [2**63, 1]]],
    "ballot from the future (uint64 max)": [[1, 1, 1, [0], [2**64 - 1, 2**64 - 1]]],
    "ballot as float": [[1, 1, 1, [0], [1.5, 1]]],
    "accept value as str": [[2, 1, 1, [1, 1], [[0, "x"]]]],
    "accept value as int": [[2, 1, 1, [1, 1], [[0, 5]]]],
    "accept pair of three": [[2, 1, 1, [1, 1], [[0, b"x", 1]]]],
    "accept no values": [[2, 1, 1, [1, 1], []]],
    "accept repeated index": [[2, 1, 1, [1, 1], [[0, b"x"], [0, b"y"]]]],
    "promise vote arity": [[4, 1, 1, [1, 1], [[0, [1, 1]]]]],
    "promise vote zero ballot": [[4, 1, 1, [1, 1], [[0, [0, -1], b"x"]]]],
    "promise vote value None": [[4, 1, 1, [1, 1], [[0, [1, 1], None]]]],
    "promise two votes one index": [[4, 1, 1, [1, 1], [[0, [1, 1], b"x"], [0, [2, 1], b"y"]]]],
    "nack arity (old format)": [[6, 1, 1, [1, 1], [2, 1]]],
    "nack accepted bool": [[6, 1, 1, [1, 1], [2, 1], [True, 0]]],
    "read reply votes as bin": [[7, 1, 1, b"x"]],
    "segment trimmed arity": [[8, 1, 1, None]],
    "error reason as bin": [[9, 1, 1, b"oops"]],
    "error reason too long": [[9, 1, 1, "x" * 4097]],
    "nil field": [[5, 1, 1, None]],
    "second message bad": [[5, 1, 1, [1, 1]], [5, 1, 1]],
}


@pytest.mark.parametrize("name", sorted(BAD_PAYLOADS))
def test_wrong_types_are_refused(name: str) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_frame(frame_of(BAD_PAYLOADS[name]))


def test_msgpack_oddities_are_refused() -> None:
    good = encode_payload([Read(req=1, segment=2, indices=(3,))])
    cases = {
        "trailing data": good + b"\x00",
        "ext type": b"\x91\xd4\x05\x00",
        "timestamp ext": b"\x91\xd6\xff\x00\x00\x00\x00",
        "reserved byte": b"\xc1",
        "deep nesting": b"\x91" * 5000 + b"\x00",
        "int map key": b"\x81\x01\x01",
        "invalid utf-8 str": b"\x91\x94\x09\x01\x01\xa2\xff\xfe",
        "array length lies": b"\xdd\xff\xff\xff\xff",
    }
    for name, payload in cases.items():
        with pytest.raises(RemoteProtocolError):
            decode_payload(payload)
        with pytest.raises(RemoteProtocolError):
            decode_frame(frame_payload(payload))
        assert name


def test_errors_name_the_problem() -> None:
    with pytest.raises(RemoteProtocolError, match="unknown message tag 42"):
        decode_frame(frame_of([[42, 1, 1]]))
    with pytest.raises(RemoteProtocolError, match=r"Prepare must have 5 elements, got 4"):
        decode_frame(frame_of([[1, 1, 1, [0]]]))
    with pytest.raises(RemoteProtocolError, match="req must be an int"):
        decode_frame(frame_of([[3, True, 1, [0]]]))


# ---- the hello (rule 4) ---------------------------------------------------------------------------------

CLIENT_HELLO = Hello(cluster_id="c0ffee00c0ffee00", acceptor_id=None, nonce=b"n" * NONCE_LEN)
ACCEPTOR_HELLO = Hello(
    cluster_id="c0ffee00c0ffee00", acceptor_id=2, incarnation=3, pid=1234, nonce=b"m" * NONCE_LEN,
    echo=b"n" * NONCE_LEN, max_registers=4096,
)  # fmt: skip


FRAMED = [
    dataclasses.replace(CLIENT_HELLO, max_frame=64 << 20),
    dataclasses.replace(ACCEPTOR_HELLO, max_frame=(1 << 32) - 1),
]


@pytest.mark.parametrize("hello", [CLIENT_HELLO, ACCEPTOR_HELLO, *FRAMED])
@pytest.mark.parametrize("key", [None, KEY])
def test_hello_round_trip_and_fits_the_pre_hello_limit(hello: Hello, key: bytes | None) -> None:
    frame = encode_hello(hello, key)
    assert len(frame) - PREFIX_LEN <= HELLO_MAX_FRAME
    assert decode_hello(frame[PREFIX_LEN:], key) == hello


def test_a_hello_states_its_frame_limit_in_a_ninth_field_only_when_it_has_one() -> None:
    """Earlier versions send and take 8 fields: a hello without ``max_frame`` is encoded as they did, so an
    acceptor answering an earlier client (which states none) is understood by it."""
    def fields(h: Hello) -> tuple[object, ...]:
        out = msgpack.unpackb(encode_hello(h)[PREFIX_LEN + 2 :], use_list=False)
        assert type(out) is tuple
        return out

    assert len(fields(ACCEPTOR_HELLO)) == 8 and len(fields(CLIENT_HELLO)) == 8
    assert [len(fields(h)) for h in FRAMED] == [9, 9] and fields(FRAMED[0])[8] == 64 << 20


def test_hello_authentication() -> None:
    with pytest.raises(RemoteProtocolError, match="bad frame MAC"):
        decode_hello(encode_hello(CLIENT_HELLO, KEY)[PREFIX_LEN:], b"another key of sixteen+ bytes")
    with pytest.raises(RemoteProtocolError, match="requires an auth key"):
        decode_hello(encode_hello(CLIENT_HELLO)[PREFIX_LEN:], KEY)
    with pytest.raises(RemoteProtocolError, match="no auth key"):
        decode_hello(encode_hello(CLIENT_HELLO, KEY)[PREFIX_LEN:], None)
    # A refusal may come unauthenticated (its sender could not check our key): shown, never trusted.
    refusal = Hello(cluster_id="", acceptor_id=0, refused="authentication failed: bad frame MAC")
    assert decode_hello(encode_hello(refusal)[PREFIX_LEN:], KEY).refused.startswith("authentication failed")


def test_hello_and_message_frames_are_not_interchangeable() -> None:
    with pytest.raises(RemoteProtocolError, match="expected a hello frame first"):
        decode_hello(encode_frame([Read(req=1, segment=2, indices=(3,))])[PREFIX_LEN:])
    with pytest.raises(RemoteProtocolError, match="a hello frame after the hello exchange"):
        decode_frame(encode_hello(CLIENT_HELLO))


@pytest.mark.parametrize(
    "raw",
    [
        ["c", None, 0, 0, b"n" * 15, b"", 0, ""],  # short nonce
        ["c", -1, 0, 0, b"", b"", 0, ""],  # negative acceptor id
        ["c", None, True, 0, b"", b"", 0, ""],  # a bool where an int belongs
        ["c" * 65, None, 0, 0, b"", b"", 0, ""],  # cluster id too long
        ["c", None, 0, 0, b"", b"", 0],  # 7 fields
        ["c", None, 0, 0, b"", b"", 0, "", 1, 2],  # 10 fields
        ["c", None, 0, 0, b"", b"", 0, "", -1],  # a negative frame limit
        ["c", None, 0, 0, b"", b"", 0, "", 1023],  # a frame limit no node may set (a peer that lies)
        ["c", None, 0, 0, b"", b"", 0, "", 1 << 32],  # a frame limit over the length prefix's range
        ["c", 0, 0, 0, b"", b"e" * 5, 0, ""],  # an echo that is not a nonce
        ["c", 0, 0, 0, b"", b"", 0, "r" * 201],  # a refusal reason over 200 characters
        {"cluster_id": "c"},
    ],
)
def test_malformed_hellos_are_refused(raw: object) -> None:
    payload = msgpack.packb(raw, use_bin_type=True)
    with pytest.raises(RemoteProtocolError):
        decode_hello(raw_frame(VERSION, HELLO, payload)[PREFIX_LEN:])


def test_hellos_at_the_edge_of_every_bound_are_taken() -> None:
    edge = Hello(cluster_id="c" * 64, acceptor_id=(1 << 31) - 1, incarnation=(1 << 31) - 1, pid=(1 << 31) - 1,
                 nonce=b"n" * NONCE_LEN, echo=b"e" * NONCE_LEN, max_registers=(1 << 31) - 1, refused="r" * 200,
                 max_frame=MIN_MAX_FRAME)  # fmt: skip
    assert decode_hello(encode_hello(edge)[PREFIX_LEN:]) == edge
    low = Hello(cluster_id="", acceptor_id=0, max_frame=(1 << 32) - 1)
    assert decode_hello(encode_hello(low)[PREFIX_LEN:]) == low


@given(st.binary(max_size=HELLO_MAX_FRAME), st.sampled_from([None, KEY]))
@settings(max_examples=300)
def test_random_bytes_give_a_hello_or_remote_protocol_error(body: bytes, key: bytes | None) -> None:
    try:
        hello = decode_hello(body, key)
    except RemoteProtocolError:
        return
    assert isinstance(hello, Hello)


@given(st.binary(min_size=1, max_size=60), st.integers(0, 200))
@settings(max_examples=200)
def test_a_hello_with_bytes_overwritten_is_refused_or_valid(junk: bytes, at: int) -> None:
    frame = bytearray(encode_hello(ACCEPTOR_HELLO, KEY)[PREFIX_LEN:])
    at %= len(frame)
    frame[at : at + len(junk)] = junk[: len(frame) - at]
    try:
        hello = decode_hello(bytes(frame), KEY)
    except RemoteProtocolError:
        return
    assert hello == ACCEPTOR_HELLO or hello.refused, "a changed authenticated hello must not decode as another"


# ---- the requests' fast decoders --------------------------------------------------------------------------

odd_ints = st.sampled_from([-1, 0, 1, MAX_INT, MAX_INT + 1, True, False, 1.0, None, "1"])
# Each field mostly valid (two branches of three), so that whole valid requests come often too.
near_ints = st.integers(0, 3) | st.integers(0, 3) | odd_ints
near_index = st.integers(0, 3) | st.integers(TRIM - 1, 4) | st.sampled_from([MAX_INDEX - 1, MAX_INDEX, True, None, 1.5])
valid_ballot = st.tuples(st.integers(1, 3), st.integers(0, 2))
near_ballot = st.one_of(
    valid_ballot,
    valid_ballot,
    st.tuples(st.integers(0, 3) | odd_ints, st.integers(-1, 2) | odd_ints),
    st.tuples(st.integers(1, 3), st.integers(0, 2), st.integers(0, 2)),
    st.sampled_from([None, 1, (), b"x"]),
)
near_indices = st.lists(near_index, min_size=1, max_size=5).map(tuple) | st.sampled_from([(), None, 1, b"x"])
near_value = st.binary(max_size=3) | st.binary(max_size=3) | st.sampled_from([None, "x", 1])
valid_pair = st.tuples(st.integers(0, 3), st.binary(max_size=3))
odd_pair = st.tuples(near_index, near_value) | st.tuples(near_index, near_value, st.just(1)) | near_index
near_pair = valid_pair | valid_pair | odd_pair
near_values = st.lists(near_pair, min_size=1, max_size=5).map(tuple) | st.sampled_from([(), None, 1, b"x"])
extra = st.sampled_from([(), (), (), (0,), (0, 0)])  # a surplus element or two, now and then
near_requests = st.one_of(
    st.builds(lambda r, s, i, b, e: (wire.TAG_PREPARE, r, s, i, b, *e), near_ints, near_ints, near_indices,
              near_ballot, extra),
    st.builds(lambda r, s, b, v, e: (wire.TAG_ACCEPT, r, s, b, v, *e), near_ints, near_ints, near_ballot,
              near_values, extra),
    st.builds(lambda r, s, i, e: (wire.TAG_READ, r, s, i, *e), near_ints, near_ints, near_indices, extra),
    st.builds(lambda r, s, i: (wire.TAG_PREPARE, r, s, i), near_ints, near_ints, near_indices),  # short
    st.builds(lambda r, s, b: (wire.TAG_ACCEPT, r, s, b), near_ints, near_ints, near_ballot),  # short
    st.just((wire.TAG_READ, 1, 1)),  # short
)


def _outcome(decode: typing.Callable[[tuple[Any, ...]], Message], m: tuple[Any, ...]) -> Message | None:
    try:
        return decode(m)
    except RemoteProtocolError:
        return None


def fast_differs(m: tuple[Any, ...]) -> bool:
    """Whether the live fast decoder and the checked one disagree on ``m`` (a message, or a refusal)."""
    fast = _outcome(wire._DECODERS[m[0]], m)
    checked = _outcome(wire._CHECKED[m[0]], m)
    return type(fast) is not type(checked) or fast != checked


@given(near_requests)
@settings(max_examples=600)
def test_the_fast_decoders_agree_with_the_constructors(m: tuple[Any, ...]) -> None:
    assert not fast_differs(m)


def test_the_fast_decoders_build_messages_equal_to_the_constructors() -> None:
    b = Ballot(2, 1)
    assert wire._d_accept((2, 1, 3, (2, 1), ((0, b"x"), (TRIM, b"")))) == Accept(
        req=1, segment=3, ballot=b, values=((0, b"x"), (TRIM, b""))
    )
    assert wire._d_prepare((1, 1, 3, (0, 1), (2, 1))) == Prepare(req=1, segment=3, indices=(0, 1), ballot=b)
    assert wire._d_read((3, 1, 3, (0,))) == Read(req=1, segment=3, indices=(0,))
    refused: list[tuple[Any, ...]] = [
        (2, 1, 3, (2, 1), ((0, b"x"), (0, b"y"))),
        (1, 1, 3, (0, 0), (2, 1)),
        (3, 1, 3, (0, True)),
    ]
    for m in refused:
        with pytest.raises(RemoteProtocolError):
            wire._DECODERS[m[0]](m)


@pytest.fixture
def accept_repeats_allowed(monkeypatch: pytest.MonkeyPatch) -> typing.Iterator[None]:
    """Planted bug: the fast Accept decoder does not refuse a repeated index."""

    def decode(m: tuple[Any, ...]) -> Message:
        try:
            values = m[4]
            ballot = wire._fast_ballot(m[3])
            if (
                wire._head_ok(m, 5) and ballot is not None and type(values) is tuple and values
                and all(type(p) is tuple and len(p) == 2 and type(p[0]) is int and TRIM <= p[0] < MAX_INDEX
                        and type(p[1]) is bytes for p in values)
            ):
                    msg: Accept = object.__new__(Accept)
                    for k, v in (("req", m[1]), ("segment", m[2]), ("ballot", ballot), ("values", values)):
                        object.__setattr__(msg, k, v)
                    return msg
        except IndexError:
            pass
        return wire._c_accept(m)

    monkeypatch.setitem(wire._DECODERS, wire.TAG_ACCEPT, decode)
    yield


@pytest.mark.usefixtures("accept_repeats_allowed")
def test_a_fast_decoder_that_lets_a_repeated_index_through_is_caught() -> None:
    quick = settings(max_examples=2000, phases=[Phase.generate], database=None, derandomize=True)  # never flaky
    bad = find(near_requests, fast_differs, settings=quick)
    assert bad[0] == wire.TAG_ACCEPT
