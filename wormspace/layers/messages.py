"""Ballots, register states and the acceptor protocol's messages.

Rules:

1. Every message is a frozen, slotted, keyword-only dataclass named as a noun, validated on construction;
   a bad field raises ``RemoteProtocolError`` (messages are built from the wire by the decoder, so a bad
   field is always somebody else's garbage; local code builds only valid ones).
2. Registers are named by ``(segment, index)``. Data registers have ``0 <= index < wos_size``; each segment
   also has two special registers: ``META`` (allocation) and ``TRIM`` (consensus on trim).
3. A ``Ballot`` is ``(number, node)``; node ids are unique, so two proposers never share a ballot and the
   tuple order is total. ``ZERO_BALLOT`` is below every ballot a proposer may use.
4. Requests carry a ``req`` id chosen by the client; the acceptor echoes it so replies find their operation.
5. ``Fence`` / ``Fenced`` are the replacement procedure's messages (acceptor Rule 6), not a client's: they
   name no register, so their ``segment`` is 0 by convention and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from wormspace.errors import RemoteProtocolError

META = -1
TRIM = -2
MAX_INDEX = 1 << 20  # largest wos_size the protocol accepts
MAX_VALUE = 1 << 20  # default largest register value, bytes (the wire limit is set per node)
MAX_INDICES = MAX_INDEX + 2
MAX_INT = (1 << 63) - 1


class Ballot(NamedTuple):
    """A Paxos ballot. Ordered as a tuple: by number, then node -- total because node ids are unique."""

    number: int
    node: int


ZERO_BALLOT = Ballot(0, -1)


def _int(name: str, v: object, lo: int = 0, hi: int = MAX_INT) -> None:
    if type(v) is not int or not lo <= v <= hi:
        raise RemoteProtocolError(f"{name} must be an int in [{lo}, {hi}], got {v!r}")


def _ballot(name: str, v: object, *, zero_ok: bool = False) -> None:
    if not isinstance(v, Ballot):
        raise RemoteProtocolError(f"{name} must be a Ballot, got {v!r}")
    if zero_ok and v == ZERO_BALLOT:
        return
    _int(f"{name}.number", v.number, 1)
    _int(f"{name}.node", v.node, 0)


def _index(name: str, v: object) -> None:
    _int(name, v, TRIM, MAX_INDEX - 1)


def _value(name: str, v: object) -> None:
    if type(v) is not bytes:
        raise RemoteProtocolError(f"{name} must be bytes, got {type(v).__name__}")
    if len(v) > MAX_VALUE:
        raise RemoteProtocolError(f"{name} is {len(v)} bytes, over the limit of {MAX_VALUE}")


def _indices(name: str, v: object) -> None:
    if type(v) is not tuple or not 0 < len(v) <= MAX_INDICES:
        raise RemoteProtocolError(f"{name} must be a non-empty tuple of at most {MAX_INDICES} indices")
    for i in v:
        _index(name, i)
    if len(set(v)) != len(v):
        raise RemoteProtocolError(f"{name} has repeated indices")


@dataclass(frozen=True, slots=True, kw_only=True)
class RegState:
    """One acceptor's state for one register: the highest promise and the last accepted vote."""

    promised: Ballot = ZERO_BALLOT
    accepted: Ballot = ZERO_BALLOT
    value: bytes | None = None

    def __post_init__(self) -> None:
        _ballot("promised", self.promised, zero_ok=True)
        _ballot("accepted", self.accepted, zero_ok=True)
        if (self.value is None) != (self.accepted == ZERO_BALLOT):
            raise RemoteProtocolError("a register state has a value iff it has an accepted ballot")
        if self.value is not None:
            _value("value", self.value)


EMPTY_REG = RegState()


@dataclass(frozen=True, slots=True, kw_only=True)
class Vote:
    """An accepted value as an acceptor reports it: register ``index`` holds ``value`` from ``ballot``."""

    index: int
    ballot: Ballot
    value: bytes

    def __post_init__(self) -> None:
        _index("index", self.index)
        _ballot("ballot", self.ballot)
        _value("value", self.value)


def _votes(name: str, v: object) -> None:
    if type(v) is not tuple or len(v) > MAX_INDICES:
        raise RemoteProtocolError(f"{name} must be a tuple of votes")
    seen: set[int] = set()
    for x in v:
        if not isinstance(x, Vote):
            raise RemoteProtocolError(f"{name} must hold Votes, got {x!r}")
        if x.index in seen:
            raise RemoteProtocolError(f"{name} has two votes for index {x.index}")
        seen.add(x.index)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Msg:
    req: int
    segment: int

    def __post_init__(self) -> None:
        _int("req", self.req)
        _int("segment", self.segment)


# ---- requests (client -> acceptor) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepare(_Msg):
    """Phase 1 for every register in ``indices`` of ``segment`` at ``ballot`` (one message for a batch)."""

    indices: tuple[int, ...]
    ballot: Ballot

    def __post_init__(self) -> None:
        super(Prepare, self).__post_init__()
        _indices("indices", self.indices)
        _ballot("ballot", self.ballot)


@dataclass(frozen=True, slots=True, kw_only=True)
class Accept(_Msg):
    """Phase 2: accept ``values`` (index -> data) at ``ballot``, all or none."""

    ballot: Ballot
    values: tuple[tuple[int, bytes], ...]

    def __post_init__(self) -> None:
        super(Accept, self).__post_init__()
        _ballot("ballot", self.ballot)
        if type(self.values) is not tuple or not 0 < len(self.values) <= MAX_INDICES:
            raise RemoteProtocolError("values must be a non-empty tuple of (index, bytes)")
        seen: set[int] = set()
        for item in self.values:  # the checks of ``_index`` and ``_value`` inline (one pass, no call a pair)
            if type(item) is not tuple or len(item) != 2:
                raise RemoteProtocolError("values must hold (index, bytes) pairs")
            i, v = item
            if type(i) is not int or not TRIM <= i < MAX_INDEX:
                _index("index", i)
            if type(v) is not bytes or len(v) > MAX_VALUE:
                _value("value", v)
            seen.add(i)
        if len(seen) != len(self.values):
            raise RemoteProtocolError("values has repeated indices")


@dataclass(frozen=True, slots=True, kw_only=True)
class Fence(_Msg):
    """Raise the acceptor-wide promise floor to ``ballot`` if it is above every promise the acceptor holds
    (Rule 6); ``ZERO_BALLOT`` only asks for the floor and the highest promise."""

    ballot: Ballot

    def __post_init__(self) -> None:
        super(Fence, self).__post_init__()
        _ballot("ballot", self.ballot, zero_ok=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Read(_Msg):
    """Report the accepted votes of ``indices``; changes nothing."""

    indices: tuple[int, ...]

    def __post_init__(self) -> None:
        super(Read, self).__post_init__()
        _indices("indices", self.indices)


# ---- replies (acceptor -> client) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Promise(_Msg):
    """Phase 1b: promised ``ballot`` for every requested index; ``votes`` are the ones accepted before.

    ``floor`` is the acceptor's promise floor when it promised (Rule 6 of the acceptor; ``ZERO_BALLOT``
    until a replacement fenced it): a proposer counts promises towards a quorum only if they carry one
    floor, so promises given before and after a fence never make up one quorum."""

    ballot: Ballot
    votes: tuple[Vote, ...]
    floor: Ballot = ZERO_BALLOT

    def __post_init__(self) -> None:
        super(Promise, self).__post_init__()
        _ballot("ballot", self.ballot)
        _votes("votes", self.votes)
        _ballot("floor", self.floor, zero_ok=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted(_Msg):
    """Phase 2b: accepted every value of the request at ``ballot``."""

    ballot: Ballot

    def __post_init__(self) -> None:
        super(Accepted, self).__post_init__()
        _ballot("ballot", self.ballot)


@dataclass(frozen=True, slots=True, kw_only=True)
class Nack(_Msg):
    """Refused: some requested register promised ``promised``, higher than the request's ballot.

    ``accepted`` is the highest ballot any requested register has voted at (``ZERO_BALLOT`` if none).
    Votes only rise, so ``accepted < ballot`` proves the acceptor never voted at ``ballot`` for these
    registers -- and with ``promised > ballot`` it never will: a writer told this by every acceptor
    knows its write is certainly not applied.
    """

    ballot: Ballot
    promised: Ballot
    accepted: Ballot = ZERO_BALLOT

    def __post_init__(self) -> None:
        super(Nack, self).__post_init__()
        _ballot("ballot", self.ballot)
        _ballot("promised", self.promised)
        _ballot("accepted", self.accepted, zero_ok=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadReply(_Msg):
    """The accepted votes of the requested indices (unwritten ones are absent)."""

    votes: tuple[Vote, ...]

    def __post_init__(self) -> None:
        super(ReadReply, self).__post_init__()
        _votes("votes", self.votes)


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentTrimmed(_Msg):
    """The acceptor has accepted the segment's trim; its other registers are gone."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorReply(_Msg):
    """The acceptor could not serve the request (bad request, storage failure); nothing changed."""

    reason: str

    def __post_init__(self) -> None:
        super(ErrorReply, self).__post_init__()
        if type(self.reason) is not str or len(self.reason) > 4096:
            raise RemoteProtocolError("reason must be a short string")


@dataclass(frozen=True, slots=True, kw_only=True)
class Fenced(_Msg):
    """The answer to ``Fence``: the acceptor's ``floor`` after the request and its highest ``promised``
    ballot over every register and the floor. The fence was applied iff ``floor`` is the asked ballot."""

    floor: Ballot
    promised: Ballot

    def __post_init__(self) -> None:
        super(Fenced, self).__post_init__()
        _ballot("floor", self.floor, zero_ok=True)
        _ballot("promised", self.promised, zero_ok=True)


Request = Prepare | Accept | Read | Fence
Reply = Promise | Accepted | Nack | ReadReply | SegmentTrimmed | ErrorReply | Fenced
Message = Request | Reply
