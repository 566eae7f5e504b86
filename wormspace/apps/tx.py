"""WormTX: atomic commitment over write-once registers, without a coordinator (E3) or with one (C5).

Trusted spec (``TxSpec``, below): atomic commitment of ``n`` participants. Each participant's vote is
write-once: YES, NO, or ABORT (written on its behalf by a decider that gave up waiting). The outcome is
COMMIT iff every vote is YES; it is defined once every vote is in or one of them is not YES. Properties
(``refinement/wormspace_to_tx.py`` checks them): everybody who decides decides the same (agreement); commit
only if all voted YES; abort if any voted NO; if all vote YES and nothing fails, commit (an ABORT is only
ever written into a vote that is still empty after ``wait`` seconds).

Theory of operation. A transaction ``t`` is a segment, allocated by ``begin``; its metadata records the
variant and the participant count ``n``. Register layout of the segment::

    0 .. n-1      vote of participant i: b"YES" | b"NO" | b"ABORT"
    n .. 2n-1     ACK of participant i: b"ACK" once i has learned the outcome
    2n            the decision (C5 only): b"COMMIT" | b"ABORT"

Rule 1 (vote). Participant i captures its vote register and writes YES or NO into it. ``vote`` returns True
        iff the register holds that value afterwards: False means a decider's ABORT got there first.
Rule 2 (E3 decide). Read every vote (a linearizable batch read) until all are in or one is not YES; after
        ``wait`` seconds of the driver's clock, capture each vote still empty and write ABORT into it; a
        write that fails ``AlreadyWritten(v)`` adopts ``v`` (the late vote won). Commit iff every vote is
        YES. ABORT is never written blind: only through a capture, and the register's final value is what
        counts, so all deciders see the same n values and decide the same. Decisions are durable because
        votes are: once every vote is written, the outcome is fixed on a quorum of acceptors.
Rule 3 (C5 decide). The coordinator (``coordinate``) reads the votes as in Rule 2 without filling them,
        then writes COMMIT (all YES) or ABORT into the decision register; participants (``decide``) read the
        decision register until it is written; after ``wait`` they capture it and write ABORT (a silent
        coordinator blocks nobody). Whatever that register holds is everybody's outcome.
Rule 4 (finish). A participant that has learned the outcome writes its ACK register (``decide(...,
        participant=i)`` or ``ack``) and then reads all ACKs; whoever sees every ACK written trims the
        segment. A trimmed transaction answers ``Trimmed``: every participant knew its outcome by then.
Rule 5 (retries). A capture or write that is preempted (``CaptureStale``) or indeterminate is retried with
        a fresh capture, a bounded number of times, after a short random pause; writing the same value again
        is harmless (write-once registers accept a rewrite of their value).
Rule 6 (history). With ``history`` (an ``AppHistory``), ``begin``, ``vote``, ``decide`` and ``coordinate``
        are recorded as app ``"tx"`` operations named ``name`` (``wormspace/apps/history.py``, Rules 3-4;
        ``coordinate`` as a ``decide`` with ``"coordinator": true``); ``ack`` alone is not recorded.
"""

from __future__ import annotations

import contextlib
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from wormspace.apps.faces import async_client, sync_client
from wormspace.apps.history import AppHistory, recorded
from wormspace.client import (
    EMPTY,
    AlreadyWritten,
    AsyncClient,
    CaptureId,
    CaptureStale,
    Indeterminate,
    OpGen,
    SpaceLogic,
    Trimmed,
    UsageError,
    WormSpace,
)

YES, NO, ABORT, ACK, COMMIT = b"YES", b"NO", b"ABORT", b"ACK", b"COMMIT"
VARIANTS = ("E3", "C5")
MAGIC = b"WTX1"
DEFAULT_POLL = 0.01  # seconds between reads of a decider that waits for votes
ATTEMPTS = 8  # Rule 5
NAME = b"tx"  # Rule 6
T = TypeVar("T")


# ---- the trusted spec -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TxSpec:
    """TRUSTED. Atomic commitment of ``len(votes)`` participants; a vote is None (not in yet), YES, NO or
    ABORT (cast for a participant by a decider). Votes are write-once."""

    votes: tuple[bytes | None, ...]

    @staticmethod
    def fresh(n: int) -> TxSpec:
        return TxSpec((None,) * n)

    def vote(self, i: int, v: bytes) -> tuple[TxSpec, bool]:
        """Participant i votes ``v`` (YES or NO): True iff its vote is ``v`` afterwards."""
        if self.votes[i] is not None:
            return self, self.votes[i] == v
        return TxSpec((*self.votes[:i], v, *self.votes[i + 1:])), True

    def abort(self, i: int) -> TxSpec:
        """A decider casts ABORT for participant i, if i has not voted."""
        return self.vote(i, ABORT)[0]

    def outcome(self) -> bool | None:
        """True (commit) iff every vote is YES; None while that is still open."""
        if any(v is not None and v != YES for v in self.votes):
            return False
        return None if None in self.votes else True


# ---- the generator core ---------------------------------------------------------------------------------


def outcome_of(votes: list[bytes | None]) -> bool | None:
    """What a decider concludes from the votes it read: True (commit) iff all are YES; False once one is
    not YES; None while some are missing (Rule 2). The implementation's own, checked against ``TxSpec``."""
    if any(v is not None and v != YES for v in votes):
        return False
    return None if None in votes else True


def encode_meta(variant: str, n: int, extra: bytes = b"") -> bytes:
    return MAGIC + variant.encode() + struct.pack(">H", n) + extra


def decode_meta(t: int, raw: bytes) -> tuple[str, int]:
    variant = raw[4:6].decode(errors="replace")
    if not raw.startswith(MAGIC) or len(raw) < 8 or variant not in VARIANTS:
        raise UsageError(f"segment {t} is not a WormTX transaction")
    return variant, struct.unpack(">H", raw[6:8])[0]


def _check_args(t: int, wait: float = 0.0) -> None:
    """What a history records of a call must be valid (Rule 6): checked before anything is recorded."""
    if type(t) is not int or not 0 <= t < 1 << 63:
        raise UsageError(f"a transaction id is an int in [0, 2**63), got {t!r}")
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not wait >= 0:
        raise UsageError(f"wait must be a non-negative number of seconds, got {wait!r}")


def _decided(outcome: bool) -> tuple[str, object, object]:
    return "ok", None, "commit" if outcome else "abort"


class TxLogic:
    """WormTX as generators over the client API (``SpaceLogic``); one per client. Caches each transaction's
    shape, and ``begin``'s batch capture so that this client's votes cost one write."""

    def __init__(self, logic: SpaceLogic, *, variant: str = "E3", poll: float = DEFAULT_POLL,
                 history: AppHistory | None = None, name: bytes = NAME) -> None:
        if variant not in VARIANTS:
            raise UsageError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if isinstance(poll, bool) or not isinstance(poll, (int, float)) or not poll > 0:
            raise UsageError(f"poll must be a positive number of seconds, got {poll!r}")
        if type(name) is not bytes:
            raise UsageError(f"name must be bytes, got {type(name).__name__}")
        self.logic, self.variant, self.poll = logic, variant, float(poll)
        self.history, self.name = history, name
        self.shapes: dict[int, tuple[str, int]] = {}
        self.caps: dict[int, CaptureId] = {}
        self.rng = random.Random(logic.process * 7919 + 17)

    def _rec(self, f: str, t: int | None, value: dict[str, object], gen: OpGen[T],
             finish: Callable[[T], tuple[str, object, object]]) -> OpGen[T]:
        return (yield from recorded(self.history, self.logic.process, ("tx", self.name, f, t, value), gen, finish))

    def begin(self, participants: int = 3, metadata: bytes = b"") -> OpGen[int]:
        """Allocate a transaction of ``participants`` voters -> its id (a segment)."""
        n = participants
        if type(n) is not int or not n >= 1 or 2 * n + 1 > self.logic.wos_size or n > 0xFFFF:
            raise UsageError(f"participants must be an int in [1, {(self.logic.wos_size - 1) // 2}], got {n!r}")
        return (yield from self._rec("begin", None, {"participants": participants, "variant": self.variant},
                                     self._begin(participants, metadata), lambda t: ("ok", t, t)))

    def _begin(self, n: int, metadata: bytes) -> OpGen[int]:
        for attempt in range(ATTEMPTS):  # Rule 5; an indeterminate alloc may leave a segment unused
            try:
                t = yield from self.logic.alloc_any(encode_meta(self.variant, n, metadata))
                break
            except Indeterminate:
                if attempt == ATTEMPTS - 1:
                    raise
                yield from self.logic.sleep(self.rng.uniform(0, self.poll))
        self.shapes[t] = (self.variant, n)
        with contextlib.suppress(CaptureStale, Indeterminate):  # an optimization only: votes capture then
            self.caps[t] = yield from self.logic.batch_capture(t, 0, 2 * n + 1)
        return t

    def shape(self, t: int) -> OpGen[tuple[str, int]]:
        """(variant, n) of transaction ``t``; raises Trimmed once it is finished."""
        if t not in self.shapes:
            raw = yield from self.logic.check(t)
            if raw is None:
                raise UsageError(f"no transaction {t}: segment {t} is not allocated")
            self.shapes[t] = decode_meta(t, raw)
        return self.shapes[t]

    def put(self, t: int, off: int, value: bytes) -> OpGen[bytes]:
        """Get ``value`` written into register ``off`` of ``t`` through a capture; returns the register's
        value (another one if it was written first: Rules 1, 2, 5)."""
        addr = self.logic.address(t, off)
        cap = self.caps.get(t)
        for attempt in range(ATTEMPTS):
            try:
                if cap is None or not cap.covers(t, off) or cap.sent.get(off, value) != value:
                    cap = yield from self.logic.capture(addr)
                yield from self.logic.write(addr, value, cap)
                return value
            except AlreadyWritten as e:
                return e.data
            except (CaptureStale, Indeterminate) as e:
                if isinstance(e, Trimmed) or attempt == ATTEMPTS - 1:
                    raise
                cap = None
                yield from self.logic.sleep(self.rng.uniform(0, self.poll))
        raise AssertionError("unreachable")

    def votes(self, t: int, n: int) -> OpGen[list[bytes | None]]:
        got = yield from self.logic.batch_read(t, 0, n)
        return [None if got[i] is EMPTY else got[i] for i in range(n)]  # type: ignore[misc]

    def vote(self, t: int, i: int, yes: bool) -> OpGen[bool]:
        """Participant ``i`` votes (Rule 1): True iff its vote stands; False if an ABORT pre-empted it."""
        _check_args(t)
        if type(i) is not int or i < 0 or type(yes) is not bool:
            raise UsageError(f"vote needs a participant (an int >= 0) and a bool, got {i!r}, {yes!r}")
        return (yield from self._rec("vote", t, {"participant": i, "vote": "YES" if yes else "NO"},
                                     self._vote(t, i, yes), lambda b: ("ok", None, b)))

    def _vote(self, t: int, i: int, yes: bool) -> OpGen[bool]:
        _, n = yield from self.shape(t)
        if type(i) is not int or not 0 <= i < n or type(yes) is not bool:
            raise UsageError(f"vote needs a participant in [0, {n}) and a bool, got {i!r}, {yes!r}")
        v = YES if yes else NO
        return (yield from self.put(t, i, v)) == v

    def wait_votes(self, t: int, n: int, wait: float) -> OpGen[list[bytes | None]]:
        """Read the votes until all are in, one is not YES, or ``wait`` seconds have passed."""
        waited = 0.0
        while True:
            votes = yield from self.votes(t, n)
            if outcome_of(votes) is not None or waited >= wait:
                return votes
            step = min(self.poll, wait - waited)
            yield from self.logic.sleep(step)
            waited += step

    def decide(self, t: int, wait: float = 1.0, participant: int | None = None) -> OpGen[bool]:
        """The outcome of ``t`` (True: commit), by Rule 2 (E3) or Rule 3 (C5); a ``participant`` also
        acknowledges it (Rule 4)."""
        _check_args(t, wait)
        if participant is not None and (type(participant) is not int or participant < 0):
            raise UsageError(f"participant must be None or an int >= 0, got {participant!r}")
        return (yield from self._rec("decide", t, {"participant": participant, "wait": wait},
                                     self._decide(t, wait, participant), _decided))

    def _decide(self, t: int, wait: float, participant: int | None) -> OpGen[bool]:
        variant, n = yield from self.shape(t)
        if participant is not None and (type(participant) is not int or not 0 <= participant < n):
            raise UsageError(f"participant must be in [0, {n}), got {participant!r}")
        if variant == "E3":
            votes = yield from self.wait_votes(t, n, wait)
            if outcome_of(votes) is None:
                for i, v in enumerate(votes):
                    if v is None:
                        votes[i] = yield from self.put(t, i, ABORT)
            outcome = outcome_of(votes) is True
        else:
            outcome = yield from self.learn(t, n, wait)
        if participant is not None:
            yield from self.ack(t, participant)
        return outcome

    def coordinate(self, t: int, wait: float = 1.0) -> OpGen[bool]:
        """C5's coordinator (Rule 3): decide from the votes, record it in the decision register."""
        _check_args(t, wait)
        return (yield from self._rec("decide", t, {"coordinator": True, "wait": wait}, self._coordinate(t, wait),
                                     _decided))

    def _coordinate(self, t: int, wait: float) -> OpGen[bool]:
        variant, n = yield from self.shape(t)
        if variant != "C5":
            raise UsageError(f"transaction {t} is {variant}: only C5 transactions have a coordinator")
        votes = yield from self.wait_votes(t, n, wait)
        decision = COMMIT if outcome_of(votes) is True else ABORT
        return (yield from self.put(t, 2 * n, decision)) == COMMIT

    def learn(self, t: int, n: int, wait: float) -> OpGen[bool]:
        """C5's participant (Rule 3): the decision register's value, writing ABORT after ``wait``."""
        waited = 0.0
        while waited < wait:
            d = yield from self.logic.read(self.logic.address(t, 2 * n))
            if d is not EMPTY:
                return d == COMMIT
            step = min(self.poll, wait - waited)
            yield from self.logic.sleep(step)
            waited += step
        return (yield from self.put(t, 2 * n, ABORT)) == COMMIT

    def ack(self, t: int, i: int) -> OpGen[bool]:
        """Participant ``i`` has learned the outcome (Rule 4): True once ``t`` is trimmed."""
        try:
            _, n = yield from self.shape(t)
            if type(i) is not int or not 0 <= i < n:
                raise UsageError(f"participant must be in [0, {n}), got {i!r}")
            yield from self.put(t, n + i, ACK)
            acks = yield from self.logic.batch_read(t, n, 2 * n)
            if any(v is EMPTY for v in acks.values()):
                return False
            yield from self.logic.trim(t)
        except Trimmed:
            pass  # every ACK was in: somebody else trimmed it
        self.caps.pop(t, None)
        return True


# ---- the synchronous and asyncio faces ------------------------------------------------------------------


class WormTX:
    """Atomic commit on a synchronous client (simulated or TCP). ``variant="C5"`` adds a coordinator;
    ``history`` (an ``AppHistory``) records the calls (Rule 6)."""

    def __init__(self, ws: WormSpace, *, variant: str = "E3", poll: float = DEFAULT_POLL,
                 history: AppHistory | None = None, name: bytes = NAME) -> None:
        self.ws = sync_client(ws, "WormTX")
        self.core = TxLogic(ws.logic, variant=variant, poll=poll, history=history, name=name)

    def begin(self, participants: int = 3, *, metadata: bytes = b"") -> int:
        return self.ws.run(self.core.begin(participants, metadata))

    def vote(self, t: int, i: int, yes: bool) -> bool:
        return self.ws.run(self.core.vote(t, i, yes))

    def decide(self, t: int, wait: float = 1.0, *, participant: int | None = None) -> bool:
        return self.ws.run(self.core.decide(t, wait, participant))

    def coordinate(self, t: int, wait: float = 1.0) -> bool:
        return self.ws.run(self.core.coordinate(t, wait))

    def ack(self, t: int, i: int) -> bool:
        return self.ws.run(self.core.ack(t, i))


class AsyncWormTX:
    """asyncio twin of ``WormTX`` on an ``AsyncClient`` (e.g. ``ws.aio`` of a TCP client)."""

    def __init__(self, client: AsyncClient, *, variant: str = "E3", poll: float = DEFAULT_POLL,
                 history: AppHistory | None = None, name: bytes = NAME) -> None:
        self.client = async_client(client, "WormTX")
        self.core = TxLogic(client.logic, variant=variant, poll=poll, history=history, name=name)

    async def begin(self, participants: int = 3, *, metadata: bytes = b"") -> int:
        return await self.client.run(self.core.begin(participants, metadata))

    async def vote(self, t: int, i: int, yes: bool) -> bool:
        return await self.client.run(self.core.vote(t, i, yes))

    async def decide(self, t: int, wait: float = 1.0, *, participant: int | None = None) -> bool:
        return await self.client.run(self.core.decide(t, wait, participant))

    async def coordinate(self, t: int, wait: float = 1.0) -> bool:
        return await self.client.run(self.core.coordinate(t, wait))

    async def ack(self, t: int, i: int) -> bool:
        return await self.client.run(self.core.ack(t, i))


__all__ = ["ABORT", "ACK", "COMMIT", "NO", "YES", "AsyncWormTX", "TxLogic", "TxSpec", "WormTX"]
