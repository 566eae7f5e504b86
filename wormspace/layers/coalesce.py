"""Operation-level coalescing: concurrent single operations on one segment become one batch operation.

A ``Coalescer`` sits between the drivers (the simulator's ``SimClient`` and the TCP driver) and a
``ClientCore``. Requests submitted in one turn of the driver's loop are queued; at the end of the turn
(``flush``) the queue is cut into *batches* and each batch runs as ONE operation of the WOR layer (one
Prepare / Accept / Read per acceptor for all its registers), exactly as a ``batch_capture`` /
``batch_write`` / ``batch_read`` would; each caller then gets its own part of the batch's outcome.

Rules:

1. Only CAPTURE, WRITE and READ requests are merged, and only with requests of the same kind, segment,
   ballot and ``repair`` flag. PROPOSE (alloc, trim, resolution rounds) always runs alone.
2. Merged CAPTURE and WRITE requests name disjoint registers: two callers capturing one register must get
   two ballots (each may then write its own value at its own ballot), and two writes of one register at one
   ballot stay two operations (the WOS layer's rule, one value per register per ballot, is the callers').
   READs may overlap (a read has no side effect but the repair of a half-written register, which is
   idempotent).
3. A batch holds at most ``max_registers`` registers; the queue's order is kept within a batch.
4. ``split(outcome, request)`` is a caller's outcome: the batch's op-wide ``error`` and ``ballot``, and
   ``chosen`` / ``empty`` / ``stale`` / ``unknown`` restricted to the registers the caller named. A batch of
   one hands its outcome over unchanged.
5. A bounded pipeline per merge key (kind, segment, ballot, repair): at most ``pipeline`` operations of a key
   run at once (default 2), and an operation starts beside a running one of its key only if it carries at
   least ``min_pipelined`` registers (default 64). A mergeable request that cannot start is *held*; the held
   requests of a key join the queue each time an operation of that key hands out its outcome, after its
   callers got their parts, so they run merged with what those callers submit next in that turn. A key with
   nothing running starts all its queued requests; when they name at least ``2 * min_pipelined`` distinct
   registers they are cut into up to ``pipeline`` batches of about equal size (at most ``max_registers``
   each), so the acceptors work on one while the client settles the other and builds the next. (Why the bound:
   with one operation in flight per key, 256 appends in flight are one batch at a time, and the acceptors and
   the client wait for each other. Why the minimum: without it a caller that fell one turn behind, e.g. after
   a segment claim, stays behind for good: its single write runs as an operation and a frame of its own beside
   every batch, and each acceptor pays a frame's fixed cost, its transaction and fsync, for one register. With
   it, a straggler waits for the next batch of its key, and the callers of one key fall back into step within
   one round trip. Why 2 and 64: with 256 WormLog appends in flight on 3 local acceptors, two operations of
   128 gave about 10-20% more appends/s than one of 256, and 3 or 4 operations no more than 2, on a 2-core
   machine where client and acceptors share the cores; at 64 in flight two operations of 32 gave no more than
   one of 64.) All batches of one key cut in one flush start together; held requests never wait for anything
   but running operations, which always end (wor.py Rule 5 bounds their rounds and resends), and once none of
   their key runs they start.
6. A flush of ONE queued request whose key has no operation running (nearly every flush of a caller that runs
   one operation at a time) starts it directly, without building the flush's groups, target sets and batches:
   exactly what Rules 1-5 do with a queue of one (one batch, started at once, its outcome handed over
   unchanged). ``start_now(request, then)`` is for a caller that knows no other request of this turn will come
   (the synchronous facade's own operation): with nothing queued the request is flushed at once, as a queue
   of one; otherwise it joins the queue, flushed at the end of the turn. tests/layers/test_coalesce.py checks
   the direct path against the general one (Hypothesis: the same operations started, the same effects, the
   same outcomes to the same callers, under any order of submissions, flushes and completions); a planted
   direct path that ignores the key's running operations is caught by that test.

Why this is the batch semantics: the WOR operation of a batch settles every register of it independently
(wor.py Rules 1-4 are per register, op-wide errors apply to all of them); ``split`` only forgets the
registers another caller named. The simulated checks run on this path (every ``SimClient`` operation goes
through a ``Coalescer``); tests/mutants/test_coalesce_mutants.py plants a split that hands a caller another
caller's outcome and shows the checks catch it. Rule 5 is checked by tests/layers/test_coalesce.py under any
order of submissions, flushes and completions (``rule5_problems``); planted bugs that drop its bound, its
minimum or the release of held requests are caught.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from wormspace._contracts import ensure, require
from wormspace.layers.effects import Effect
from wormspace.layers.wor import ClientCore, Kind, OpRequest, Outcome

Then = Callable[[Outcome], None]

MERGEABLE = (Kind.CAPTURE, Kind.WRITE, Kind.READ)
DEFAULT_MAX_REGISTERS = 1024
DEFAULT_PIPELINE = 2  # Rule 5: operations of one key in flight at once
DEFAULT_MIN_PIPELINED = 64  # Rule 5: registers an operation needs to start beside a running one of its key


def merge_key(request: OpRequest) -> tuple[object, ...] | None:
    """Requests with equal keys may share an operation (Rule 1); ``None``: this one runs alone."""
    kind = request.kind
    if kind not in MERGEABLE:
        return None
    return (kind.value, request.segment, request.ballot, request.repair)  # a str hashes once, an enum every time


@require(lambda requests: len(requests) >= 1)
@require(lambda requests: len({merge_key(r) for r in requests}) == 1 and merge_key(requests[0]) is not None)
@ensure(lambda requests, result: set(result.targets()) == {i for r in requests for i in r.targets()})
def merge(requests: Sequence[OpRequest]) -> OpRequest:
    """One request naming every register of ``requests`` (Rule 2: callers check disjointness)."""
    if len(requests) == 1:
        return requests[0]
    first = requests[0]
    if first.kind is Kind.WRITE:
        values = tuple(sorted(v for r in requests for v in r.values))
        return OpRequest(kind=Kind.WRITE, segment=first.segment, values=values, ballot=first.ballot)
    indices = tuple(sorted({i for r in requests for i in r.indices}))
    return OpRequest(kind=first.kind, segment=first.segment, indices=indices, ballot=first.ballot, repair=first.repair)


def split(outcome: Outcome, request: OpRequest) -> Outcome:
    """The part of a batch's ``outcome`` that belongs to ``request`` (Rule 4)."""
    mine = set(request.targets())
    return Outcome(
        error=outcome.error,
        ballot=outcome.ballot,
        chosen=tuple(p for p in outcome.chosen if p[0] in mine),
        empty=tuple(i for i in outcome.empty if i in mine),
        stale=tuple(i for i in outcome.stale if i in mine),
        unknown=tuple(i for i in outcome.unknown if i in mine),
    )


def split_all(outcome: Outcome, requests: Sequence[OpRequest]) -> list[Outcome]:
    """``[split(outcome, r) for r in requests]`` in one pass over the outcome (a batch of n callers costs
    O(n) registers, not n times the batch's registers)."""
    return _split_targets(outcome, [r.targets() for r in requests])


def _split_targets(outcome: Outcome, named: Sequence[tuple[int, ...]]) -> list[Outcome]:
    """``split_all`` given each request's ``targets()``."""
    owners: dict[int, list[int]] = {}
    for k, targets in enumerate(named):
        for i in set(targets):
            got = owners.get(i)
            if got is None:
                owners[i] = [k]
            else:
                got.append(k)
    chosen = _restrict(outcome.chosen, owners, lambda p: p[0])
    empty = _restrict(outcome.empty, owners, int)
    stale = _restrict(outcome.stale, owners, int)
    unknown = _restrict(outcome.unknown, owners, int)
    error, ballot = outcome.error, outcome.ballot
    return [
        Outcome(error=error, ballot=ballot, chosen=chosen.get(k, ()), empty=empty.get(k, ()),
                stale=stale.get(k, ()), unknown=unknown.get(k, ()))
        for k in range(len(named))
    ]


E = TypeVar("E")


def _restrict(
    entries: tuple[E, ...], owners: dict[int, list[int]], index: Callable[[E], int]
) -> dict[int, tuple[E, ...]]:
    """caller -> its entries of ``entries`` (in their order); callers with none are left out."""
    if not entries:
        return {}
    out: dict[int, list[E]] = {}
    none: list[int] = []
    for e in entries:
        for k in owners.get(index(e), none):
            got = out.get(k)
            if got is None:
                out[k] = [e]
            else:
                got.append(e)
    return {k: tuple(v) for k, v in out.items()}


class _Batch:
    __slots__ = ("callers", "exclusive", "named", "registers")

    def __init__(self, exclusive: bool) -> None:
        self.callers: list[tuple[OpRequest, Then]] = []
        self.named: list[tuple[int, ...]] = []  # each caller's targets()
        self.registers: set[int] = set()
        self.exclusive = exclusive

    def fits(self, targets: tuple[int, ...], limit: int) -> bool:
        if not self.exclusive:  # reads may overlap: count the registers they add
            return len(self.registers.union(targets)) <= limit
        if len(self.registers) + len(targets) > limit:
            return False
        return self.registers.isdisjoint(targets)

    def add(self, request: OpRequest, then: Then, targets: tuple[int, ...]) -> None:
        self.callers.append((request, then))
        self.named.append(targets)
        self.registers.update(targets)


class Coalescer:
    """Queues the requests of one loop turn and starts them on ``core`` as merged operations.

    ``schedule(fn)`` must run ``fn`` once the current turn of the driver's loop is over (``loop.call_soon``
    over TCP, a zero-delay event in the simulator); ``carry_out(effects)`` performs a started operation's
    effects. ``submit(request, then)`` calls ``then(outcome)`` when the caller's part of its batch ends.
    The core's ``on_done`` is taken over by this object. ``pipeline`` and ``min_pipelined`` (Rule 5) may be
    changed between flushes."""

    def __init__(
        self,
        core: ClientCore,
        *,
        schedule: Callable[[Callable[[], None]], object],
        carry_out: Callable[[list[Effect]], None],
        max_registers: int = DEFAULT_MAX_REGISTERS,
        pipeline: int = DEFAULT_PIPELINE,
        min_pipelined: int = DEFAULT_MIN_PIPELINED,
    ) -> None:
        if max_registers < 1 or pipeline < 1 or min_pipelined < 1:
            raise ValueError("max_registers, pipeline and min_pipelined must be >= 1")
        self.core = core
        core.on_done = self._on_done
        self._schedule = schedule
        self._carry_out = carry_out
        self._max = max_registers
        self.pipeline = pipeline
        self.min_pipelined = min_pipelined
        self._queue: list[tuple[OpRequest, Then]] = []
        self._flush_scheduled = False
        self._running: dict[int, tuple[list[tuple[OpRequest, Then]], list[tuple[int, ...]] | None,
                                       tuple[object, ...] | None]] = {}  # op id -> (callers, their targets, key)
        self._early: dict[int, Outcome] = {}
        self._in_flight: dict[tuple[object, ...], int] = {}  # Rule 5: merge key -> its running operations
        self._held: dict[tuple[object, ...], list[tuple[OpRequest, Then]]] = {}
        self.merged_ops = 0  # operations that carried more than one caller (for tests and benchmarks)
        self.held_requests = 0  # requests that waited for a running operation of their key (Rule 5)
        self.pipelined_ops = 0  # operations started while another of their key was running (Rule 5)

    def submit(self, request: OpRequest, then: Then) -> None:
        self._queue.append((request, then))
        self._want_flush()

    def _want_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._schedule(self.flush)

    @property
    def queued(self) -> int:
        return len(self._queue) + sum(len(h) for h in self._held.values())

    def running(self) -> list[tuple[OpRequest, Then]]:
        """Every caller whose operation is still running, queued or held (e.g. to end them all when the
        driver closes)."""
        out = [c for callers, _, _ in self._running.values() for c in callers]
        for held in self._held.values():
            out.extend(held)
        out.extend(self._queue)
        return out

    def forget(self) -> None:
        self._running.clear()
        self._queue.clear()
        self._held.clear()
        self._in_flight.clear()

    def start_now(self, request: OpRequest, then: Then) -> None:
        """Rule 6: ``submit`` for a caller that knows no other request of this turn will come: with nothing
        queued, the request is flushed at once (as a queue of one); otherwise it joins the queue."""
        self._queue.append((request, then))
        if len(self._queue) == 1:
            self.flush()
        else:
            self._want_flush()

    def flush(self) -> None:
        """Cut the queue into batches (Rules 1-3) and start one operation per batch; hold the requests of a
        key that may not start now (Rule 5). A queue of one whose key runs nothing starts directly (Rule 6)."""
        self._flush_scheduled = False
        queue, self._queue = self._queue, []
        if len(queue) == 1:
            key = merge_key(queue[0][0])
            if key is None or key not in self._in_flight:
                self._start(queue, None, key)
                return
        elif not queue:
            return
        self._flush_general(queue)

    def _flush_general(self, queue: list[tuple[OpRequest, Then]]) -> None:
        """Rules 1-5 on ``queue`` (not empty)."""
        groups: list[tuple[tuple[object, ...] | None, list[tuple[OpRequest, Then]]]] = []  # in queue order
        by_key: dict[tuple[object, ...], list[tuple[OpRequest, Then]]] = {}
        for request, then in queue:
            key = merge_key(request)
            if key is None:  # runs alone (Rule 1)
                groups.append((None, [(request, then)]))
                continue
            got = by_key.get(key)
            if got is None:
                by_key[key] = got = []
                groups.append((key, got))
            got.append((request, then))
        for key, requests in groups:
            if key is None:
                self._start(requests, None, None)
                continue
            running = self._in_flight.get(key, 0)
            targets = [r.targets() for r, _ in requests]
            named: set[int] = set()
            for t in targets:
                named.update(t)
            registers = len(named)
            parts = self.parts(registers, running)
            if parts == 0:
                self._held.setdefault(key, []).extend(requests)
                self.held_requests += len(requests)
                continue
            limit = self._max if parts == 1 else min(self._max, -(-registers // parts))
            if running:
                self.pipelined_ops += 1
            for b in self._cut(requests, targets, limit):
                self._start(b.callers, b.named, key)

    def parts(self, registers: int, running: int) -> int:
        """Rule 5: into how many batches the queued requests of a key naming ``registers`` registers are cut,
        while ``running`` operations of that key run; 0: hold them."""
        if running >= self.pipeline or (running and registers < self.min_pipelined):
            return 0
        return max(1, min(self.pipeline - running, registers // self.min_pipelined))

    @staticmethod
    def _cut(requests: list[tuple[OpRequest, Then]], named: list[tuple[int, ...]], limit: int) -> list[_Batch]:
        """Rules 2-3: batches of at most ``limit`` registers, disjoint for captures and writes, in order
        (``named``: each request's ``targets()``)."""
        exclusive = requests[0][0].kind is not Kind.READ
        batches: list[_Batch] = []
        for (request, then), targets in zip(requests, named, strict=True):
            for b in batches:
                if b.fits(targets, limit):
                    b.add(request, then, targets)
                    break
            else:
                b = _Batch(exclusive=exclusive)
                b.add(request, then, targets)
                batches.append(b)
        return batches

    def _start(self, callers: list[tuple[OpRequest, Then]], named: list[tuple[int, ...]] | None,
               key: tuple[object, ...] | None) -> None:
        request = callers[0][0] if len(callers) == 1 else merge([r for r, _ in callers])
        if len(callers) > 1:
            self.merged_ops += 1
        op_id, effects = self.core.start(request)
        early = self._early.pop(op_id, None)
        if early is None:
            self._running[op_id] = (callers, named, key)
            if key is not None:
                self._in_flight[key] = self._in_flight.get(key, 0) + 1
        self._carry_out(effects)
        if early is not None:
            self._deliver(callers, named, early)

    def _on_done(self, op_id: int, outcome: Outcome) -> None:
        entry = self._running.pop(op_id, None)
        if entry is None:
            self._early[op_id] = outcome
            return
        callers, named, key = entry
        if key is not None:
            left = self._in_flight[key] - 1
            if left:
                self._in_flight[key] = left
            else:
                del self._in_flight[key]
        self._deliver(callers, named, outcome)
        if key is not None:
            self._release(key)

    def _release(self, key: tuple[object, ...]) -> None:
        """Rule 5: the held requests of ``key`` join the queue, behind what the callers just submitted."""
        held = self._held.pop(key, None)
        if held:
            self._queue.extend(held)
            self._want_flush()

    @staticmethod
    def _deliver(callers: list[tuple[OpRequest, Then]], named: list[tuple[int, ...]] | None,
                 outcome: Outcome) -> None:
        """Each caller's part of ``outcome`` (``named``: the callers' ``targets()``, when known)."""
        if len(callers) == 1:
            callers[0][1](outcome)
            return
        parts = _split_targets(outcome, named if named is not None else [r.targets() for r, _ in callers])
        for (_, then), part in zip(callers, parts, strict=True):
            then(part)


__all__ = [
    "DEFAULT_MAX_REGISTERS", "DEFAULT_MIN_PIPELINED", "DEFAULT_PIPELINE", "Coalescer", "merge", "merge_key", "split",
    "split_all",
]
