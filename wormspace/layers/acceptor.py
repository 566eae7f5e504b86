"""Layer 1: the acceptor -- a Paxos acceptor for every register of the address space.

Theory of operation. An acceptor keeps, per register ``(segment, index)``, a ``RegState``: the highest
ballot it promised and the last vote it cast (ballot and value). It answers three requests:

Rule 1 (Prepare). If the ballot is at least every requested register's promise, promise it on all of them
        and report their votes (``Promise``); otherwise refuse the whole request (``Nack``). All or none,
        so one message captures a whole range (batch capture).
Rule 2 (Accept). If the ballot is at least every target register's promise, vote for all the values at
        that ballot (``Accepted``); otherwise refuse all (``Nack``). One vote per ballot per register:
        a second, different value at a ballot already voted is refused as an error.
Rule 3 (Read). Report the votes; change nothing.
Rule 4 (Trim). Once the acceptor has voted for any value in a segment's TRIM register, the segment is
        trimmed here: the other registers of the segment are purged in the same step, and every request
        that names one of them is answered ``SegmentTrimmed``. The TRIM register itself stays
        (one register per segment) so that clients can finish the trim's consensus.
Rule 5 (Durability). A handler returns ``Persist`` before ``Send``; the node stores before replying.
Rule 6 (Fence). The acceptor keeps one acceptor-wide promise *floor* (``ZERO_BALLOT`` until fenced), stored
        as the register ``FLOOR_KEY``. Every register, including ones never touched, behaves as if it had
        promised at least the floor: a Prepare or Accept below it is refused (``Nack`` reporting the floor),
        and a ``Promise`` reports the floor it was given under. ``Fence(F)`` raises the floor to ``F`` only
        if ``F`` is above every promise the acceptor holds (so no promise given before the fence is at or
        above it), durably, before its ``Fenced`` reply; otherwise it changes nothing. The floor never
        goes down. This is the acceptor's part of replacing a lost acceptor (docs/operations.md).

The core (``handle_request``) is pure: it reads registers through a ``StoreView`` and returns the
changes and the reply. ``AcceptorNode`` binds it to a ``Storage``. ``fast_handle`` is the same function
without the per-object validation and contracts, for a server's hot path (``AcceptorNode(fast=True)``);
a differential test checks it against the core.
"""

from __future__ import annotations

import bisect
import logging
import os
import random
import sqlite3
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

from wormspace._contracts import ensure, require
from wormspace.errors import RemoteProtocolError, UsageError
from wormspace.layers.effects import Effect, Persist, RegKey, Send, persist_before_send
from wormspace.layers.messages import (
    EMPTY_REG,
    TRIM,
    ZERO_BALLOT,
    Accept,
    Accepted,
    Ballot,
    ErrorReply,
    Fence,
    Fenced,
    Nack,
    Prepare,
    Promise,
    Read,
    ReadReply,
    RegState,
    Reply,
    Request,
    SegmentTrimmed,
    Vote,
)

log = logging.getLogger("wormspace.acceptor")


class StoreView(Protocol):
    """Read access to an acceptor's registers."""

    def get(self, segment: int, index: int) -> RegState | None: ...


class Storage(StoreView, Protocol):
    """An acceptor's register store. ``apply`` is atomic and, for durable stores, on disk when it returns."""

    def apply(self, persist: Persist) -> None: ...

    def items(self) -> Iterator[tuple[RegKey, RegState]]: ...

    def close(self) -> None: ...


# ---- invariants (plain functions, used in contracts and by the checkers) --------------------------------


def reg_ok(r: RegState) -> bool:
    """A register never holds a vote above its promise."""
    return r.accepted <= r.promised


def step_ok(old: RegState, new: RegState) -> bool:
    """A step never lowers a promise, never lowers a vote, never changes the value voted at one ballot."""
    if new.promised < old.promised or new.accepted < old.accepted:
        return False
    return not (new.accepted == old.accepted and new.value != old.value)


def _get(view: StoreView, segment: int, index: int) -> RegState:
    r = view.get(segment, index)
    return EMPTY_REG if r is None else r


FLOOR_KEY: RegKey = (-1, 0)  # Rule 6: the floor, stored as this pseudo-register's promise (no segment is < 0)


def fence_floor(view: StoreView) -> Ballot:
    """Rule 6: the acceptor-wide promise floor (``ZERO_BALLOT`` if never fenced)."""
    return _get(view, *FLOOR_KEY).promised


def highest_promise(view: StoreView) -> Ballot:
    """The highest promise over every register and the floor. Uses the store's own ``highest_promise``
    when it has one (``SqliteStorage`` keeps it up to date), else scans ``items()``."""
    own = getattr(view, "highest_promise", None)
    if own is not None:
        top: Ballot = own()
        return max(top, fence_floor(view))
    items = getattr(view, "items", None)
    if items is None:
        raise UsageError("this store can tell neither its highest promise nor its registers")
    best = fence_floor(view)
    for _, r in items():
        if r.promised > best:
            best = r.promised
    return best


def segment_trimmed(view: StoreView, segment: int) -> bool:
    """Rule 4: the acceptor has voted in the segment's TRIM register."""
    return _get(view, segment, TRIM).value is not None


def _updates_monotone(view: StoreView, result: tuple[Persist | None, Reply]) -> bool:
    persist = result[0]
    if persist is None:
        return True
    return all(reg_ok(new) and step_ok(_get(view, s, i), new) for (s, i), new in persist.puts)


def _persist_only_on_success(result: tuple[Persist | None, Reply]) -> bool:
    persist, reply = result
    return persist is None or isinstance(reply, (Promise, Accepted, Fenced))


# ---- the pure core --------------------------------------------------------------------------------------


@ensure(lambda view, result: _updates_monotone(view, result), "promises and votes only grow")
@ensure(lambda result: _persist_only_on_success(result), "only a promise or a vote changes state")
@ensure(
    lambda msg, result: not isinstance(result[1], Promise)
    or {v.index for v in result[1].votes} <= set(msg.indices),
    "a promise reports votes of requested registers only",
)
def on_prepare(view: StoreView, msg: Prepare) -> tuple[Persist | None, Reply]:
    """Rule 1 (and Rule 4 for trimmed segments)."""
    if any(i != TRIM for i in msg.indices) and segment_trimmed(view, msg.segment):
        return None, SegmentTrimmed(req=msg.req, segment=msg.segment)
    regs = [(i, _get(view, msg.segment, i)) for i in msg.indices]
    floor = fence_floor(view)
    highest = max(floor, max(r.promised for _, r in regs))
    if msg.ballot < highest:
        voted = max(r.accepted for _, r in regs)
        return None, Nack(
            req=msg.req, segment=msg.segment, ballot=msg.ballot, promised=highest, accepted=voted
        )
    puts = tuple(
        ((msg.segment, i), RegState(promised=msg.ballot, accepted=r.accepted, value=r.value))
        for i, r in regs
        if r.promised != msg.ballot
    )
    votes = tuple(
        Vote(index=i, ballot=r.accepted, value=r.value) for i, r in regs if r.value is not None
    )
    reply = Promise(req=msg.req, segment=msg.segment, ballot=msg.ballot, votes=votes, floor=floor)
    return (Persist(puts=puts) if puts else None), reply


@ensure(lambda view, result: _updates_monotone(view, result), "promises and votes only grow")
@ensure(lambda result: _persist_only_on_success(result), "only a promise or a vote changes state")
@ensure(
    lambda msg, result: not isinstance(result[1], Accepted)
    or (result[0] is not None and len(result[0].puts) == len(msg.values)),
    "an accepted request stores every value",
)
def on_accept(view: StoreView, msg: Accept) -> tuple[Persist | None, Reply]:
    """Rule 2 (and Rule 4: voting in TRIM purges the segment)."""
    if any(i != TRIM for i, _ in msg.values) and segment_trimmed(view, msg.segment):
        return None, SegmentTrimmed(req=msg.req, segment=msg.segment)
    regs = [(i, v, _get(view, msg.segment, i)) for i, v in msg.values]
    highest = max(fence_floor(view), max(r.promised for _, _, r in regs))
    if msg.ballot < highest:
        voted = max(r.accepted for _, _, r in regs)
        return None, Nack(
            req=msg.req, segment=msg.segment, ballot=msg.ballot, promised=highest, accepted=voted
        )
    for i, v, r in regs:
        if r.accepted == msg.ballot and r.value != v:
            return None, ErrorReply(
                req=msg.req, segment=msg.segment, reason=f"index {i}: a different value at the same ballot"
            )
    puts = tuple(
        ((msg.segment, i), RegState(promised=msg.ballot, accepted=msg.ballot, value=v)) for i, v, _ in regs
    )
    purge = (msg.segment,) if any(i == TRIM for i, _ in msg.values) else ()
    return Persist(puts=puts, purge=purge), Accepted(req=msg.req, segment=msg.segment, ballot=msg.ballot)


def on_read(view: StoreView, msg: Read) -> tuple[Persist | None, Reply]:
    """Rule 3."""
    if any(i != TRIM for i in msg.indices) and segment_trimmed(view, msg.segment):
        return None, SegmentTrimmed(req=msg.req, segment=msg.segment)
    votes = []
    for i in msg.indices:
        r = _get(view, msg.segment, i)
        if r.value is not None:
            votes.append(Vote(index=i, ballot=r.accepted, value=r.value))
    return None, ReadReply(req=msg.req, segment=msg.segment, votes=tuple(votes))


@ensure(lambda view, result: _updates_monotone(view, result), "the floor only grows")
@ensure(
    lambda highest, result: result[0] is None or (isinstance(result[1], Fenced) and result[1].floor > highest),
    "a fence is applied only above every promise held",
)
def on_fence(view: StoreView, msg: Fence, highest: Ballot) -> tuple[Persist | None, Reply]:
    """Rule 6. ``highest`` is the acceptor's highest promise over every register and the floor
    (``highest_promise``); the caller computes it, since a ``StoreView`` reads one register at a time."""
    floor = fence_floor(view)
    if msg.ballot == ZERO_BALLOT or msg.ballot <= highest:
        return None, Fenced(req=msg.req, segment=msg.segment, floor=floor, promised=highest)
    persist = Persist(puts=((FLOOR_KEY, RegState(promised=msg.ballot)),))
    return persist, Fenced(req=msg.req, segment=msg.segment, floor=msg.ballot, promised=highest)


def handle_request(view: StoreView, msg: Request) -> tuple[Persist | None, Reply]:
    """Dispatch one request to its rule."""
    if isinstance(msg, Prepare):
        return on_prepare(view, msg)
    if isinstance(msg, Accept):
        return on_accept(view, msg)
    if isinstance(msg, Fence):
        return on_fence(view, msg, highest_promise(view))
    return on_read(view, msg)


# ---- the fast path --------------------------------------------------------------------------------------

_new = object.__new__
_setattr = object.__setattr__


def _reg(promised: Ballot, accepted: Ballot, value: bytes | None) -> RegState:
    r: RegState = _new(RegState)
    _setattr(r, "promised", promised)
    _setattr(r, "accepted", accepted)
    _setattr(r, "value", value)
    return r


def _vote(index: int, ballot: Ballot, value: bytes) -> Vote:
    v: Vote = _new(Vote)
    _setattr(v, "index", index)
    _setattr(v, "ballot", ballot)
    _setattr(v, "value", value)
    return v


def _reply(cls: type[Reply], req: int, segment: int, **fields: object) -> Reply:
    m: Reply = _new(cls)
    _setattr(m, "req", req)
    _setattr(m, "segment", segment)
    for k, v in fields.items():
        _setattr(m, k, v)
    return m


def fast_handle(view: StoreView, msg: Request) -> tuple[Persist | None, Reply]:
    """``handle_request`` for a server: the same changes and the same reply, built without the per-object
    validation of the message dataclasses (their fields come from a request the wire decoder validated and
    from stored states, so they are valid by construction) and without the core's contracts. ``Fence`` (rare)
    goes to the core. Equality with ``handle_request`` -- replies and states after every step, over random
    request sequences on both storages -- is checked by ``tests/layers/test_fast_path.py`` (bounded
    Hypothesis runs), and a planted divergence there shows the check can fail."""
    t = type(msg)
    if t is Fence:
        return handle_request(view, msg)
    get = view.get
    seg = msg.segment
    fr = get(-1, 0)  # FLOOR_KEY
    floor = ZERO_BALLOT if fr is None else fr.promised
    if t is Accept:
        assert isinstance(msg, Accept)
        values = msg.values
        trim = False
        data = False
        for i, _ in values:
            if i == TRIM:
                trim = True
            else:
                data = True
        if data:
            tr = get(seg, TRIM)
            if tr is not None and tr.value is not None:
                return None, _reply(SegmentTrimmed, msg.req, seg)
        ballot = msg.ballot
        # One pass: each register's state read once; the highest promise over them, and whether any of them
        # already voted at ``ballot`` (then the values are compared, in a second pass, as the core does).
        states = []
        highest = floor
        revote = False
        for i, _ in values:
            r = get(seg, i)
            if r is None:
                r = EMPTY_REG
            elif r.accepted == ballot:
                revote = True
            if r.promised > highest:
                highest = r.promised
            states.append(r)
        if ballot < highest:
            voted = max(r.accepted for r in states)
            return None, _reply(Nack, msg.req, seg, ballot=ballot, promised=highest, accepted=voted)
        if revote:
            for (i, v), r in zip(values, states, strict=True):
                if r.accepted == ballot and r.value != v:
                    reason = f"index {i}: a different value at the same ballot"
                    return None, ErrorReply(req=msg.req, segment=seg, reason=reason)
        puts = tuple([((seg, i), _reg(ballot, ballot, v)) for i, v in values])
        persist = Persist(puts=puts, purge=(seg,) if trim else ())
        return persist, _reply(Accepted, msg.req, seg, ballot=ballot)
    assert isinstance(msg, (Prepare, Read))
    indices = msg.indices
    if any(i != TRIM for i in indices):
        tr = get(seg, TRIM)
        if tr is not None and tr.value is not None:
            return None, _reply(SegmentTrimmed, msg.req, seg)
    regs = []
    for i in indices:
        r = get(seg, i)
        regs.append((i, EMPTY_REG if r is None else r))
    votes = tuple([_vote(i, r.accepted, r.value) for i, r in regs if r.value is not None])
    if t is Read:
        return None, _reply(ReadReply, msg.req, seg, votes=votes)
    assert isinstance(msg, Prepare)
    ballot = msg.ballot
    highest = floor
    for _, r in regs:
        if r.promised > highest:
            highest = r.promised
    if ballot < highest:
        voted = max(r.accepted for _, r in regs)
        return None, _reply(Nack, msg.req, seg, ballot=ballot, promised=highest, accepted=voted)
    puts = tuple([((seg, i), _reg(ballot, r.accepted, r.value)) for i, r in regs if r.promised != ballot])
    reply = _reply(Promise, msg.req, seg, ballot=ballot, votes=votes, floor=floor)
    return (Persist(puts=puts) if puts else None), reply


# ---- storage --------------------------------------------------------------------------------------------


class MemoryStorage:
    """Registers in a dict: for the simulator, the model checker and tests. Survives a simulated crash
    (the simulator keeps the object, as a disk would keep its file)."""

    def __init__(self, regs: Mapping[RegKey, RegState] | None = None) -> None:
        self.regs: dict[RegKey, RegState] = dict(regs or {})

    def get(self, segment: int, index: int) -> RegState | None:
        return self.regs.get((segment, index))

    def apply(self, persist: Persist) -> None:
        for seg in persist.purge:
            for key in [k for k in self.regs if k[0] == seg and k[1] != TRIM]:
                del self.regs[key]
        for key, state in persist.puts:
            if key[0] in persist.purge and key[1] != TRIM:
                continue
            self.regs[key] = state

    def items(self) -> Iterator[tuple[RegKey, RegState]]:
        return iter(sorted(self.regs.items()))

    def close(self) -> None:
        pass


def apply_to_dict(regs: Mapping[RegKey, RegState], persist: Persist) -> dict[RegKey, RegState]:
    """The pure meaning of ``Persist`` on a dict of registers (every storage must agree with this)."""
    store = MemoryStorage(regs)
    store.apply(persist)
    return store.regs


# ---- the node -------------------------------------------------------------------------------------------


class AcceptorNode:
    """An acceptor bound to its storage: messages in, effects out (Persist, then Send)."""

    def __init__(self, node_id: int, storage: Storage, *, fast: bool = False) -> None:
        self.node_id = node_id
        self.storage = storage
        self.fast = fast  # run ``fast_handle`` (a server's hot path) instead of the checked core

    @require(lambda src: src >= 0)
    @ensure(lambda result: persist_before_send(result), "persist before reply")
    def handle(self, src: int, msg: Request) -> list[Effect]:
        """Run the core on one request, apply its changes to storage, and return the effects carried out."""
        persist, reply = self._step(src, msg)
        effects: list[Effect] = [] if persist is None else [persist]
        effects.append(Send(dst=src, msg=reply))
        return effects

    @require(lambda src: src >= 0)
    def answer(self, src: int, msg: Request) -> Reply:
        """``handle`` for a server: the same step, with the reply alone returned, no effect objects built."""
        return self._step(src, msg)[1]

    def _step(self, src: int, msg: Request) -> tuple[Persist | None, Reply]:
        """The core on one request, its changes applied to storage before the reply is returned, a refusal
        logged."""
        persist, reply = (fast_handle if self.fast else handle_request)(self.storage, msg)
        if persist is not None:
            self.storage.apply(persist)
        if type(reply) is ErrorReply:
            log.warning("acceptor %d refused request from %d: %s", self.node_id, src, reply.reason)
        return persist, reply


# ---- durable storage ------------------------------------------------------------------------------------

STORAGE_FORMAT = 3
"""Format 1: ``registers`` was a ``WITHOUT ROWID`` table (a 1 KiB value cost ~4.6 KB a row: it spilled to an
overflow page). Format 2: a rowid table with a unique ``(segment, idx)`` index. Format 3: format 2 plus the
``ranges`` table of range promises (one row for a run of registers promised at one ballot with no vote, as a
batch capture of a whole segment leaves them). A format-1 or format-2 file is migrated in place, in one
transaction, when a writable store opens it: an interrupted migration leaves the file in its old format."""

_READABLE_FORMATS = (1, 2, 3)  # a read-only snapshot reads all three (formats 1 and 2 have no ranges)

WAL_CHECKPOINT_PAGES = 1000
"""``PRAGMA wal_autocheckpoint`` of a writable store (SQLite's default, made explicit): SQLite checkpoints the
write-ahead log into the database file inside the commit that brings it to this many pages. A server
checkpoints sooner, after its replies (``CHECKPOINT_DUE_PAGES``): this is the backstop, and what bounds the log
of other writers."""

CHECKPOINT_DUE_PAGES = 256
"""On average, the log pages after which ``checkpoint_due()`` is true (each store draws its point anew after
every checkpoint, uniformly between half and one and a half times this, so that the acceptors of a group,
which commit the same requests, seldom checkpoint at the same one: the quorum hides one that is busy). The
pages are estimated: 2 a commit plus its values' bytes. A server checkpoints then, in a turn of its own after
the replies of the frame that made it due, once a turn has passed without new frames (``checkpoint()``), so
that no reply waits for a checkpoint and a busy acceptor does not checkpoint more often than SQLite would. And
the log stays short: after the first checkpoint the next transaction writes it again from its start, so a
commit overwrites blocks the file already has and its ``fsync`` writes data alone, where a growing log also
makes the file's new length durable (a journal commit of the file system: ~0.1 ms more per commit, measured on
ext4). With SQLite's checkpoints alone the log grew for the first ~500 one-register commits after every start,
and every ~500th commit waited for a checkpoint before its reply."""

_PAGE = 4096
_ROW_BYTES = 48  # a register row's bytes besides its value, roughly (for the estimate of log pages)

MIN_RANGE = 2
"""The shortest run of promise-only puts (consecutive indices of one segment, one ballot, no vote) stored as
one ``ranges`` row instead of one ``registers`` row each."""

_REGISTERS = (
    "CREATE TABLE IF NOT EXISTS registers ("
    " segment INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " promised_n INTEGER NOT NULL, promised_node INTEGER NOT NULL,"
    " accepted_n INTEGER NOT NULL, accepted_node INTEGER NOT NULL,"
    " value BLOB,"
    " UNIQUE (segment, idx))"
)
_RANGES = (
    "CREATE TABLE IF NOT EXISTS ranges ("
    " segment INTEGER NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL,"
    " promised_n INTEGER NOT NULL, promised_node INTEGER NOT NULL,"
    " PRIMARY KEY (segment, lo))"
)
_SCHEMA = ("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)", _REGISTERS, _RANGES)
_COLUMNS = "promised_n, promised_node, accepted_n, accepted_node, value"
_UPSERT = (
    f"INSERT INTO registers (segment, idx, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (segment, idx) DO UPDATE SET promised_n = excluded.promised_n,"
    " promised_node = excluded.promised_node, accepted_n = excluded.accepted_n,"
    " accepted_node = excluded.accepted_node, value = excluded.value"
)
UPSERT_ROWS = 64
"""Register rows written by one statement: a group's rows go to SQLite as multi-row upserts of this many rows
(the last one shorter), which SQLite runs in order, row after row, as it would run them one at a time; one
statement of 64 rows cost about half the CPU of 64 executions of a one-row statement (measured: ~0.8 against
~1.5 us a row)."""

_upserts: dict[int, str] = {}


def _upsert(n: int) -> str:
    """``_UPSERT`` for ``n`` rows (built once per ``n``)."""
    sql = _upserts.get(n)
    if sql is None:
        one = "(?, ?, ?, ?, ?, ?, ?)"
        sql = _upserts[n] = _UPSERT.replace(f"VALUES {one}", "VALUES " + ", ".join([one] * n))
    return sql


_MIGRATE_1_TO_2 = (
    _REGISTERS.replace("IF NOT EXISTS registers", "registers_v2"),
    f"INSERT INTO registers_v2 (segment, idx, {_COLUMNS})"
    f" SELECT segment, idx, {_COLUMNS} FROM registers ORDER BY segment, idx",
    "DROP TABLE registers",
    "ALTER TABLE registers_v2 RENAME TO registers",
    "UPDATE meta SET value = 2 WHERE key = 'storage_format'",
)
_MIGRATE_2_TO_3 = (_RANGES, "UPDATE meta SET value = 3 WHERE key = 'storage_format'")

_Ranges = tuple[tuple[int, ...], tuple[int, ...], tuple[RegState, ...]]
"""One segment's range promises in the mirror: their ``lo``s (ascending), ``hi``s and states, parallel.
Replaced whole on a change (never mutated), so a group's undo keeps the old tuple."""


def _merge(regs: Mapping[int, RegState], ranges: _Ranges | None) -> dict[int, RegState]:
    """One segment's registers: the range promises, under the registers' own rows (which take precedence)."""
    out: dict[int, RegState] = {}
    if ranges is not None:
        for lo, hi, state in zip(*ranges, strict=True):
            for i in range(lo, hi):
                out[i] = state
    out.update(regs)
    return out


def _ranges_top(segs: Mapping[int, Mapping[int, RegState]], ranges: Mapping[int, _Ranges], top: Ballot) -> Ballot:
    """The highest of ``top`` and the promises of the ranges. A range counts unless register rows shadow all
    of it (a row may hold a lower promise than the range under it)."""
    for seg, (los, his, states) in ranges.items():
        regs = segs.get(seg, {})
        for lo, hi, state in zip(los, his, states, strict=True):
            if state.promised > top and (hi - lo > len(regs) or any(i not in regs for i in range(lo, hi))):
                top = state.promised
    return top


_Row = tuple[int, int, int, int, int, int, bytes | None]


def _plan(puts: tuple[tuple[RegKey, RegState], ...], purged: set[int]) -> list[tuple[int, int, RegState, _Row | int]]:
    """``puts`` as writes, in order: ``(segment, index, state, row)`` for a register row, ``(segment, lo,
    state, hi)`` for a range -- a run of at least ``MIN_RANGE`` promise-only puts to consecutive indices of one
    segment at one ballot (never a TRIM register, never a segment below 0). Puts to purged segments (but their
    TRIM register) are dropped, as ``apply_to_dict`` drops them."""
    plan: list[tuple[int, int, RegState, _Row | int]] = []
    run_seg = run_lo = run_hi = 0
    run: list[RegState] = []
    for (s, i), r in puts:
        if i != TRIM and s in purged:
            continue
        if r.value is None and s >= 0 and i != TRIM:  # a promise without a vote: part of a run?
            if run and i == run_hi and s == run_seg and r.promised == run[0].promised:
                run_hi += 1
                run.append(r)
                continue
            if run:
                _close(plan, run_seg, run_lo, run)
            run_seg, run_lo, run_hi, run = s, i, i + 1, [r]
            continue
        if run:
            _close(plan, run_seg, run_lo, run)
            run = []
        p, a = r.promised, r.accepted
        plan.append((s, i, r, (s, i, p.number, p.node, a.number, a.node, r.value)))
    if run:
        _close(plan, run_seg, run_lo, run)
    return plan


def _close(plan: list[tuple[int, int, RegState, _Row | int]], seg: int, lo: int, run: list[RegState]) -> None:
    """End a run of promise-only puts: a range if it is long enough, else a register row each."""
    if len(run) >= MIN_RANGE:
        plan.append((seg, lo, run[0], lo + len(run)))
        return
    for k, r in enumerate(run):
        p, a = r.promised, r.accepted
        plan.append((seg, lo + k, r, (seg, lo + k, p.number, p.node, a.number, a.node, r.value)))


class SqliteStorage:
    """Registers in one SQLite file (WAL, ``synchronous=FULL``), mirrored in memory: ``apply`` is one
    transaction, on disk when it returns (DESIGN §3 rule 4). Agrees with ``apply_to_dict``: a purge deletes
    every row of the segment except its TRIM register, then the puts are written, skipping the purged
    segment's other registers.

    Two tables hold the registers. ``registers``: one row per register that has one. ``ranges``: one row
    ``(segment, lo, hi, promised)`` per run of registers ``lo <= idx < hi`` that hold the promise ``promised``
    and no vote -- what a batch capture of a whole segment leaves, written as one row instead of one per
    register. A register's state is its ``registers`` row if it has one, else that of the range covering it,
    else none (never written). The ranges of a segment never overlap and never cover its TRIM register (nor
    any register of a segment below 0, the floor's among them). ``apply`` keeps this exact: a run of at least
    ``MIN_RANGE`` consecutive promise-only puts (one segment, one ballot) becomes a range, which first deletes
    the ``registers`` rows inside it and cuts the older ranges it overlaps; any other put is a ``registers``
    row, which shadows the range under it (so a vote never needs the range cut).

    The mirror: every row is loaded (and checked) when the store opens and kept in memory -- a dict of
    register rows per segment and a tuple of ranges per segment -- so ``get`` never queries SQLite; only
    writes go to the file. A register row costs what a ``MemoryStorage`` register does, about 150-210 bytes
    besides the value (``bench/bench_memory.py``); a range costs the same whatever its length; a trimmed
    segment keeps only its TRIM register, so trimming is what bounds it.

    ``group()`` lets a runtime apply several ``Persist`` effects in one transaction (group commit): inside the
    block nothing is durable, so the caller must hold back every reply computed inside it until the block has
    exited normally; on an exception everything in the block is rolled back, the mirror included. The
    transaction begins with the block's first ``apply``: a block that applies nothing (reads, refusals) costs
    no transaction and no ``fsync`` (its replies depend only on state committed before it).

    The write-ahead log stays short, so that a commit overwrites log blocks the file already has (one data
    ``fsync``, no file-system journal commit): a server calls ``checkpoint()`` when ``checkpoint_due()``
    (every ``CHECKPOINT_DUE_PAGES`` pages or so), after the replies of its frame have gone; SQLite itself
    checkpoints inside the commit that brings the log to ``WAL_CHECKPOINT_PAGES`` pages (a backstop).

    The file carries ``meta.storage_format``; a format-1 or format-2 file is migrated to format 3
    (``STORAGE_FORMAT``) when opened writable, in one transaction; a file of any other format is refused
    (``UsageError``), as is a row that does not make a valid ``RegState`` or a range that is empty, overlaps
    another or covers a TRIM register (the file was altered by something else). ``read_only`` opens a snapshot
    reader (for backups and rebuilds) that may run beside the acceptor serving the file; it reads SQLite, not a
    mirror, each call in one read transaction, and reads formats 1, 2 and 3."""

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.path = os.fspath(path)
        self.read_only = read_only
        self._grouped = False
        self._closed = False
        self._format = STORAGE_FORMAT
        self._segs: dict[int, dict[int, RegState]] = {}
        self._ranges: dict[int, _Ranges] = {}
        self._undo: dict[RegKey, RegState | None] | None = None  # inside group(): each key's state before it
        self._range_undo: dict[int, _Ranges | None] = {}  # inside group(): each segment's ranges before it
        self._rows: list[_Row] = []  # inside group(): to write
        self._wal_pages = 0  # log pages written since the last checkpoint, estimated (``checkpoint_due``)
        self._jitter = random.Random()
        self._due_at = self._draw_due()
        self._group_bytes = 0  # inside group(): bytes of the rows written, for that estimate
        self._top = ZERO_BALLOT  # the highest promise in the mirror, unless stale (then recomputed when asked)
        self._top_stale = False
        try:
            if read_only:  # a consistent snapshot reader, safe beside a running acceptor
                uri = "file:" + urllib.parse.quote(os.path.abspath(self.path)) + "?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, isolation_level=None)
            else:
                # Room in the statement cache for every multi-row upsert (``UPSERT_ROWS`` of them) and the rest.
                self._db = sqlite3.connect(self.path, isolation_level=None, cached_statements=UPSERT_ROWS + 64)
        except sqlite3.Error as e:
            raise UsageError(f"{self.path}: cannot open: {e}") from e
        try:
            if read_only:
                self._check_read_only()
            else:
                self._open()
                self._load()
        except BaseException:
            self._db.close()
            raise

    def _check_read_only(self) -> None:
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'storage_format'").fetchone()
        except sqlite3.DatabaseError as e:
            raise UsageError(f"{self.path}: not a usable acceptor database: {e}") from e
        if row is None or row[0] not in _READABLE_FORMATS:
            raise UsageError(
                f"{self.path}: storage format {None if row is None else row[0]!r}, but this version reads"
                f" only formats {', '.join(map(str, _READABLE_FORMATS))}"
            )
        self._format = row[0]

    def _open(self) -> None:
        db = self._db
        migrated = None
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            db.execute("PRAGMA synchronous=FULL")
            db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(_SCHEMA[0])
                row = db.execute("SELECT value FROM meta WHERE key = 'storage_format'").fetchone()
                if row is None:
                    db.execute(_SCHEMA[1])
                    db.execute(_SCHEMA[2])
                    db.execute("INSERT INTO meta VALUES ('storage_format', ?)", (STORAGE_FORMAT,))
                elif row[0] in (1, 2):  # one transaction: a crash before COMMIT leaves the old format whole
                    for stmt in (_MIGRATE_1_TO_2 if row[0] == 1 else ()) + _MIGRATE_2_TO_3:
                        db.execute(stmt)
                    migrated = row[0]
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as e:
            raise UsageError(f"{self.path}: not a usable acceptor database: {e}") from e
        if str(mode).lower() != "wal":
            raise UsageError(f"{self.path}: SQLite refused WAL journaling (got {mode!r})")
        if row is not None and row[0] not in _READABLE_FORMATS:
            raise UsageError(
                f"{self.path}: storage format {row[0]!r}, but this version reads only formats 1 and 2 (migrated"
                f" on open) and {STORAGE_FORMAT}; refusing to open it"
            )
        if migrated is not None:
            log.info("%s: storage migrated from format %d to format %d", self.path, migrated, STORAGE_FORMAT)

    def _read_rows(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Every register row and range row, in one read transaction (one snapshot)."""
        db = self._db
        try:
            db.execute("BEGIN")
            try:
                regs = db.execute(f"SELECT segment, idx, {_COLUMNS} FROM registers").fetchall()
                ranges = (
                    db.execute("SELECT segment, lo, hi, promised_n, promised_node FROM ranges").fetchall()
                    if self._format >= 3
                    else []
                )
            finally:
                db.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            raise UsageError(f"{self.path}: not a usable acceptor database: {e}") from e
        return regs, ranges

    def _parse(
        self, reg_rows: list[tuple[Any, ...]], range_rows: list[tuple[Any, ...]]
    ) -> tuple[dict[int, dict[int, RegState]], dict[int, _Ranges], Ballot]:
        """The mirror of the rows, every row checked; and the highest promise in it."""
        segs: dict[int, dict[int, RegState]] = {}
        top = ZERO_BALLOT
        ballots: dict[Ballot, Ballot] = {}  # one object per distinct ballot: registers share them, as in memory
        for row in reg_rows:
            key = (row[0], row[1])
            r = self._state(self.path, key, row[2:])
            _setattr(r, "promised", ballots.setdefault(r.promised, r.promised))
            _setattr(r, "accepted", ballots.setdefault(r.accepted, r.accepted))
            seg = segs.get(key[0])
            if seg is None:
                seg = segs[key[0]] = {}
            seg[key[1]] = r
            if r.promised > top:
                top = r.promised
        lists: dict[int, list[tuple[int, int, RegState]]] = {}
        for segment, lo, hi, pn, pnode in sorted(range_rows, key=lambda r: (r[0], r[1])):
            where = f"{self.path}: range promise ({segment}, {lo}..{hi})"
            if not all(type(x) is int for x in (segment, lo, hi)) or not (segment >= 0 and TRIM < lo < hi):
                raise UsageError(f"{where} is not a range of a segment's registers")
            state = self._state(self.path, (segment, lo), (pn, pnode, ZERO_BALLOT.number, ZERO_BALLOT.node, None))
            _setattr(state, "promised", ballots.setdefault(state.promised, state.promised))
            seg_ranges = lists.setdefault(segment, [])
            if seg_ranges and seg_ranges[-1][1] > lo:
                raise UsageError(f"{where} overlaps another")
            seg_ranges.append((lo, hi, state))
        ranges: dict[int, _Ranges] = {
            s: (tuple(r[0] for r in rs), tuple(r[1] for r in rs), tuple(r[2] for r in rs)) for s, rs in lists.items()
        }
        return segs, ranges, _ranges_top(segs, ranges, top)

    def _load(self) -> None:
        """Fill the mirror from the file, checking every row."""
        self._segs, self._ranges, self._top = self._parse(*self._read_rows())

    @staticmethod
    def _state(path: str, key: RegKey, row: tuple[object, ...]) -> RegState:
        pn, pnode, an, anode, value = row
        try:
            return RegState(
                promised=Ballot(pn, pnode),  # type: ignore[arg-type]
                accepted=Ballot(an, anode),  # type: ignore[arg-type]
                value=value,  # type: ignore[arg-type]
            )
        except (RemoteProtocolError, TypeError) as e:
            raise UsageError(f"{path}: register {key} holds an invalid state: {e}") from None

    def get(self, segment: int, index: int) -> RegState | None:
        if self.read_only:
            return self._read_one(segment, index)
        seg = self._segs.get(segment)
        if seg is not None:
            r = seg.get(index)
            if r is not None:
                return r
        ranges = self._ranges.get(segment)
        if ranges is None:
            return None
        los, his, states = ranges
        k = bisect.bisect_right(los, index) - 1
        return states[k] if k >= 0 and index < his[k] else None

    def _read_one(self, segment: int, index: int) -> RegState | None:
        """A read-only store's register: its row, else the range covering it, read in one snapshot."""
        db = self._db
        db.execute("BEGIN")
        try:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM registers WHERE segment = ? AND idx = ?", (segment, index)
            ).fetchone()
            if row is not None:
                return self._state(self.path, (segment, index), row)
            if self._format < 3:
                return None
            ranges = db.execute(
                "SELECT segment, lo, hi, promised_n, promised_node FROM ranges"
                " WHERE segment = ? AND lo <= ? AND ? < hi",
                (segment, index, index),
            ).fetchall()
        finally:
            db.execute("COMMIT")
        parsed = self._parse([], ranges)[1].get(segment)
        return None if parsed is None else parsed[2][0]

    def _snapshot(self) -> dict[RegKey, RegState]:
        """A read-only store's registers, read in one snapshot."""
        segs, ranges, _ = self._parse(*self._read_rows())
        return {
            (s, i): r
            for s in sorted(segs.keys() | ranges.keys())
            for i, r in sorted(_merge(segs.get(s, {}), ranges.get(s)).items())
        }

    def _set(self, key: RegKey, state: RegState | None) -> None:
        """Change the mirror's register rows, remembering the old state when inside a group."""
        seg = self._segs.get(key[0])
        old = None if seg is None else seg.get(key[1])
        undo = self._undo
        if undo is not None and key not in undo:
            undo[key] = old
        if old is not None and old.promised == self._top and (state is None or state.promised < old.promised):
            self._top_stale = True  # the highest promise may have gone (a purge, a rollback, a rewrite)
        elif old is None and state is not None and state.promised < self._top and self._range_at_top(*key):
            self._top_stale = True  # the row shadows a range that held the highest promise
        if state is None:
            if seg is not None:
                seg.pop(key[1], None)
                if not seg:
                    del self._segs[key[0]]
            return
        if seg is None:
            seg = self._segs[key[0]] = {}
        seg[key[1]] = state
        if state.promised > self._top:
            self._top = state.promised

    def _range_at_top(self, segment: int, index: int, top: Ballot | None = None) -> bool:
        """Whether a range covers the register and holds the highest promise (``top``, else the mirror's)."""
        ranges = self._ranges.get(segment)
        if ranges is None:
            return False
        los, his, states = ranges
        k = bisect.bisect_right(los, index) - 1
        return k >= 0 and index < his[k] and states[k].promised == (self._top if top is None else top)

    def _set_votes(self, puts: tuple[tuple[RegKey, RegState], ...], purged: set[int]) -> None:
        """``_set`` of every put (each a vote) but those a purge drops, in one loop: the same changes to the
        mirror, the undo and the highest promise, with the segment's dict looked up once per run of puts to
        one segment (an Accept's are all in one)."""
        segs = self._segs
        undo = self._undo
        top = self._top
        stale = False
        cur = None
        regs: dict[int, RegState] = {}
        for key, state in puts:
            s, i = key
            if purged and s in purged and i != TRIM:
                continue
            if s != cur:
                cur = s
                got = segs.get(s)
                if got is None:
                    got = segs[s] = {}
                regs = got
            old = regs.get(i)
            if undo is not None and key not in undo:
                undo[key] = old
            if old is not None:
                if old.promised == top and state.promised < old.promised:
                    stale = True  # as ``_set``: the highest promise may have gone
            elif state.promised < top and self._range_at_top(s, i, top):
                stale = True  # as ``_set``: the row shadows a range that held the highest promise
            regs[i] = state
            if state.promised > top:
                top = state.promised
        self._top = top
        if stale:
            self._top_stale = True

    def _set_ranges(self, segment: int, ranges: list[tuple[int, int, RegState]]) -> None:
        """Replace the mirror's ranges of ``segment``, remembering the old ones when inside a group."""
        old = self._ranges.get(segment)
        if self._undo is not None and segment not in self._range_undo:
            self._range_undo[segment] = old
        if old is not None and any(s.promised == self._top for s in old[2]):
            self._top_stale = True
        if not ranges:
            self._ranges.pop(segment, None)
            return
        self._ranges[segment] = (
            tuple(r[0] for r in ranges),
            tuple(r[1] for r in ranges),
            tuple(r[2] for r in ranges),
        )
        for _, _, state in ranges:
            if state.promised > self._top:
                self._top = state.promised

    def _put_range(self, segment: int, lo: int, hi: int, state: RegState) -> None:
        """Make registers ``lo <= idx < hi`` of ``segment`` hold ``state`` (a promise, no vote) as one range."""
        db = self._db
        regs = self._segs.get(segment)
        if regs:
            inside = (
                [i for i in regs if lo <= i < hi] if len(regs) < hi - lo else [i for i in range(lo, hi) if i in regs]
            )
            if inside:  # register rows would shadow the range: they are overwritten by it, so they go
                self._flush()
                db.execute("DELETE FROM registers WHERE segment = ? AND idx >= ? AND idx < ?", (segment, lo, hi))
                for i in inside:
                    self._set((segment, i), None)
        kept: list[tuple[int, int, RegState]] = []
        old = self._ranges.get(segment)
        if old is not None:
            regs = self._segs.get(segment)

            def live(a: int, b: int) -> bool:  # a piece left of an older range: not wholly under register rows
                return regs is None or b - a > len(regs) or any(i not in regs for i in range(a, b))

            for a, b, st in zip(*old, strict=True):
                if b <= lo or a >= hi:
                    kept.append((a, b, st))
                    continue
                if a < lo and live(a, lo):  # its head stays
                    db.execute("UPDATE ranges SET hi = ? WHERE segment = ? AND lo = ?", (lo, segment, a))
                    kept.append((a, lo, st))
                else:
                    db.execute("DELETE FROM ranges WHERE segment = ? AND lo = ?", (segment, a))
                if b > hi and live(hi, b):  # its tail stays
                    db.execute(
                        "INSERT INTO ranges VALUES (?, ?, ?, ?, ?)",
                        (segment, hi, b, st.promised.number, st.promised.node),
                    )
                    kept.append((hi, b, st))
        db.execute(
            "INSERT INTO ranges VALUES (?, ?, ?, ?, ?)", (segment, lo, hi, state.promised.number, state.promised.node)
        )
        kept.append((lo, hi, state))
        kept.sort(key=lambda r: r[0])
        self._set_ranges(segment, kept)

    def _write(self, persist: Persist) -> None:
        purge = persist.purge
        purged = set(purge)
        puts = persist.puts
        # What to write, built first: a put that is not a RegState fails here, before anything changed.
        plan: list[tuple[int, int, RegState, _Row | int]] | None = None
        rows: list[_Row] = []
        size = _ROW_BYTES * len(puts)
        for (s, i), r in puts:  # votes only (an Accept): register rows, no range
            value = r.value
            if value is None:
                plan = _plan(puts, purged)
                size = sum(_ROW_BYTES + len(r.value or b"") for _, r in puts)
                break
            size += len(value)
            if purged and s in purged and i != TRIM:
                continue
            p, a = r.promised, r.accepted
            rows.append((s, i, p[0], p[1], a[0], a[1], value))
        db = self._db
        if not db.in_transaction:  # the group's transaction starts with its first change
            db.execute("BEGIN IMMEDIATE")
        self._group_bytes += size
        if purge:
            self._flush()  # the rows written before the purge, then the purge
            for seg in purge:
                db.execute("DELETE FROM registers WHERE segment = ? AND idx != ?", (seg, TRIM))
                regs = self._segs.get(seg)
                if regs is not None:
                    for i in [i for i in regs if i != TRIM]:
                        self._set((seg, i), None)
                if seg in self._ranges:
                    db.execute("DELETE FROM ranges WHERE segment = ?", (seg,))
                    self._set_ranges(seg, [])
        if plan is None:
            self._rows += rows  # written by the group's end, in order, before its COMMIT
            self._set_votes(puts, purged)
            return
        for s, i, r, row in plan:
            if type(row) is int:
                self._put_range(s, i, row, r)  # may flush self._rows first
            else:
                self._rows.append(row)  # type: ignore[arg-type]
                self._set((s, i), r)

    def _flush(self) -> None:
        """Write the group's pending register rows, in order, ``UPSERT_ROWS`` to a statement."""
        rows, self._rows = self._rows, []
        execute = self._db.execute
        for k in range(0, len(rows), UPSERT_ROWS):
            chunk = rows[k : k + UPSERT_ROWS]
            execute(_upsert(len(chunk)), [x for row in chunk for x in row])

    def apply(self, persist: Persist) -> None:
        """Apply one ``Persist`` atomically; durable on return (unless inside ``group()``)."""
        if self.read_only:
            raise UsageError(f"{self.path} was opened read-only")
        if self._grouped:
            self._write(persist)
            return
        with self.group():
            self._write(persist)

    def _rollback(self) -> None:
        self._rows = []
        undo, self._undo = self._undo, None
        if undo is not None:
            for key, old in undo.items():
                self._set(key, old)
        range_undo, self._range_undo = self._range_undo, {}
        for seg, ranges in range_undo.items():
            if ranges is None:
                self._ranges.pop(seg, None)
            else:
                self._ranges[seg] = ranges
            self._top_stale = True
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    @contextmanager
    def group(self) -> Iterator[None]:
        """One transaction for every ``apply`` inside the block; durable when the block exits normally."""
        if self._grouped or self.read_only:
            raise UsageError("SqliteStorage.group() does not nest and needs a writable store")
        self._grouped = True
        self._undo = {}
        self._range_undo = {}
        self._group_bytes = 0
        try:
            yield
            if self._db.in_transaction:  # nothing to commit (or fsync) for a block that changed nothing
                self._flush()
                self._db.execute("COMMIT")
                self._wal_pages += 2 + self._group_bytes // _PAGE
        except BaseException:
            self._grouped = False
            self._rollback()
            raise
        self._grouped = False
        self._undo = None
        self._range_undo = {}

    def _draw_due(self) -> float:
        return CHECKPOINT_DUE_PAGES * self._jitter.uniform(0.5, 1.5)

    def checkpoint_due(self) -> bool:
        """Whether the log holds, by estimate, the pages this store drew (around ``CHECKPOINT_DUE_PAGES``)
        written since the last ``checkpoint``."""
        return self._wal_pages >= self._due_at

    def checkpoint(self) -> None:
        """Copy the log into the database file (a passive checkpoint: it never waits for a reader, e.g. a
        backup's snapshot; what that reader still needs stays in the log for the next one). Changes nothing
        a reader sees and nothing's durability: every commit was on disk in the log already. Not inside
        ``group()``; a no-op on a read-only or closed store."""
        if self.read_only or self._closed:
            return
        if self._grouped:
            raise UsageError("SqliteStorage.checkpoint() inside group()")
        self._wal_pages = 0
        self._due_at = self._draw_due()
        self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def items(self) -> Iterator[tuple[RegKey, RegState]]:
        if self.read_only:
            yield from self._snapshot().items()
            return
        for s in sorted(self._segs.keys() | self._ranges.keys()):
            regs = self._segs.get(s, {})
            ranges = self._ranges.get(s)
            merged = regs if ranges is None else _merge(regs, ranges)
            for i in sorted(merged):
                yield (s, i), merged[i]

    def highest_promise(self) -> Ballot:
        """The highest promise of any register held (the floor's included), for Rule 6."""
        if self.read_only:
            return max((r.promised for r in self._snapshot().values()), default=ZERO_BALLOT)
        if self._top_stale:
            top = max((r.promised for regs in self._segs.values() for r in regs.values()), default=ZERO_BALLOT)
            self._top = _ranges_top(self._segs, self._ranges, top)
            self._top_stale = False
        return self._top

    def count(self) -> int:
        """How many registers the file holds (a range counts each register it covers)."""
        if self.read_only:
            return len(self._snapshot())
        n = sum(len(regs) for regs in self._segs.values())
        for s, (los, his, _) in self._ranges.items():
            regs = self._segs.get(s, {})
            for lo, hi in zip(los, his, strict=True):
                n += sum(1 for i in range(lo, hi) if i not in regs)
        return n

    def rows(self) -> tuple[int, int]:
        """How many rows the file holds: register rows and range rows."""
        if self.read_only:
            reg_rows, range_rows = self._read_rows()
            return len(reg_rows), len(range_rows)
        return sum(len(r) for r in self._segs.values()), sum(len(r[0]) for r in self._ranges.values())

    def close(self) -> None:
        """Close the file (idempotent). An open transaction is rolled back: nothing was promised on it."""
        if self._closed:
            return
        self._closed = True
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        self._db.close()


__all__ = [
    "CHECKPOINT_DUE_PAGES",
    "STORAGE_FORMAT",
    "WAL_CHECKPOINT_PAGES",
    "ZERO_BALLOT",
    "FLOOR_KEY",
    "AcceptorNode",
    "MemoryStorage",
    "SqliteStorage",
    "Storage",
    "StoreView",
    "apply_to_dict",
    "fast_handle",
    "fence_floor",
    "handle_request",
    "highest_promise",
    "on_accept",
    "on_fence",
    "on_prepare",
    "on_read",
    "reg_ok",
    "segment_trimmed",
    "step_ok",
]
