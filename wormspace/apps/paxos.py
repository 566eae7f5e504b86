"""WormPaxos: state machine replication on WormSpace -- a log of commands in a chain of segments.

Trusted spec (``SmrSpec``, below): one sequence of commands; every replica's applied list is a prefix of
it; ``submit(c)`` appends ``c`` once and answers ``apply(c)`` on the state after every earlier command.

Rule 1 (the log). The commands live in a ``LogCore`` of kind ``smr`` named ``name`` (log.py Rules 1-2):
        register order is command order. A command's register holds ``id + cmd`` (a 12-byte id unique to the
        submission: two submits of equal bytes stay two commands); JUNK is a no-op.
Rule 2 (policies: who writes where). ``sticky``: the replica that last captured the tail's segment writes
        one command per register through its batch capture (one round trip each); another replica's
        submit takes over by capturing the rest of the tail's segment, and the old leader's next write
        fails ``CaptureStale`` (it takes over again when it next submits). ``elected``: the replica that
        wins the alloc of the next segment leads it (log.py Rule 3). ``rotating``: segment ``i`` is led by
        replica ``i mod replicas`` (Mencius-like); a replica that meets its own empty slots below a written
        one fills them with no-ops at once, others after ``hole_timeout``.
Rule 3 (apply). ``sync`` reads the log from the first unapplied position to the tail (holes filled with
        no-ops after ``hole_timeout``, log.py Rule 4) and applies commands in register order, skipping
        no-ops; ``submit`` writes its command, then syncs past it and returns its result. A new replica
        catches up from position ``start`` (0, or the position of the snapshot its state came from).
Rule 4 (durability = when to trim). ``trim_applied(upto)`` trims the segments wholly below
        ``min(upto, applied)``: call it after saving a snapshot of the state at ``applied``; a replica that
        needs a trimmed command raises ``Trimmed`` and must restart from such a snapshot.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wormspace.apps.faces import async_client, sync_client
from wormspace.apps.history import AppHistory, b64, recorded
from wormspace.apps.log import JUNK, LogCore, pause
from wormspace.client import OpGen, SpaceLogic, UsageError

ID_BYTES = 12
POLICY_CLAIMS = {"sticky": "sticky", "elected": "alloc", "rotating": "rotating"}


@dataclass
class SmrSpec:
    """TRUSTED. One command sequence; ``submit`` answers apply's result on the prefix before it."""

    apply: Callable[[list[bytes], bytes], bytes]  # apply(earlier commands, cmd) -> result
    commands: list[bytes] = field(default_factory=list)

    def submit(self, cmd: bytes) -> bytes:
        result = self.apply(self.commands, cmd)
        self.commands.append(cmd)
        return result

    def applied_ok(self, applied: list[bytes]) -> bool:  # a replica's applied list
        return applied == self.commands[: len(applied)]


class PaxosCore:
    """The generator core of one WormPaxos replica: ``submit``, ``sync``, ``trim_applied``."""

    def __init__(self, apply: Callable[[bytes], bytes], name: bytes = b"smr", *, policy: str = "sticky",
                 replica: int = 0, replicas: int = 1, start: int = 0, hole_timeout: float = 0.5,
                 history: AppHistory | None = None) -> None:
        if policy not in POLICY_CLAIMS:
            raise UsageError(f"policy is one of {tuple(POLICY_CLAIMS)}, got {policy!r}")
        if not callable(apply) or type(start) is not int or start < 0:
            raise UsageError("apply is callable as apply(cmd) -> bytes; start is a non-negative int")
        self.log = LogCore(name, kind=b"smr", policy=POLICY_CLAIMS[policy], replica=replica,
                           replicas=replicas, hole_timeout=hole_timeout)
        self.apply, self.policy, self.history = apply, policy, history
        self.applied = start  # every command below this position is applied
        self.log.filled = start
        self.results: dict[bytes, bytes] = {}
        self.mine: set[bytes] = set()
        self.known: dict[int, bytes] = {}  # positions our own writes are known chosen at, not yet applied
        self._prefix, self._seq = os.urandom(ID_BYTES - 4), 0

    def _apply_at(self, pos: int, frame: bytes) -> int:
        self.applied = pos + 1
        if frame == JUNK:
            return 0
        cid, result = frame[1 : 1 + ID_BYTES], self.apply(frame[1 + ID_BYTES :])
        if cid in self.mine:
            self.mine.discard(cid)
            self.results[cid] = result
        return 1

    def _sync(self, logic: SpaceLogic, until: int | None = None) -> OpGen[int]:
        n = 0
        while True:
            frames, _, done = yield from self.log.scan(logic, self.applied)
            for pos, frame in frames:
                if pos == self.applied:  # else applied meanwhile by a concurrent call of this replica
                    n += self._apply_at(pos, frame)
            if done or (until is not None and self.applied > until):
                return n

    def sync(self, logic: SpaceLogic) -> OpGen[int]:
        """Apply every command up to the tail; -> how many were newly applied (Rule 3)."""
        return (yield from self._sync(logic))

    def _submit(self, logic: SpaceLogic, cmd: bytes) -> OpGen[tuple[int, bytes]]:
        self._seq += 1
        cid = self._prefix + self._seq.to_bytes(4, "big")
        self.mine.add(cid)
        try:
            pos = yield from self.log._write(logic, b"D" + cid + cmd)
            self.known[pos] = b"D" + cid + cmd
            waits = 0
            while cid not in self.results:
                if self.applied in self.known:  # our own write, chosen: no need to read it back
                    self._apply_at(self.applied, self.known.pop(self.applied))
                elif self.applied in self.log.pending:  # our own write to it is still in flight
                    yield from pause(logic, waits)
                    waits += 1
                else:
                    yield from self._sync(logic, until=pos)
        finally:  # an outcome or a cancellation too: nobody waits for this result (applied later, it is not kept)
            self.mine.discard(cid)
        for p in [p for p in self.known if p < self.applied]:
            del self.known[p]
        return pos, self.results.pop(cid)

    @staticmethod
    def check_command(logic: SpaceLogic, cmd: bytes, what: str = "a command") -> None:
        """A command travels in one log entry with its id: refuse one too large before anything is sent."""
        if len(cmd) > (room := logic.max_value - 1 - ID_BYTES):
            raise UsageError(f"{what} is at most {room} bytes, got {len(cmd)}")

    def submit(self, logic: SpaceLogic, cmd: bytes) -> OpGen[bytes]:
        """Replicate ``cmd``; -> ``apply(cmd)`` after every earlier command is applied."""
        if type(cmd) is not bytes:
            raise UsageError(f"a command is bytes, got {type(cmd).__name__}")
        self.check_command(logic, cmd)
        if self.history is None:  # nothing to record: no wrapper on the hot path
            return (yield from self._submit(logic, cmd))[1]
        _, result = yield from recorded(
            self.history, logic.process, ("paxos", self.log.name, "submit", None, b64(cmd)),
            self._submit(logic, cmd), lambda pr: ("ok", pr[0], b64(pr[1])))
        return result

    def trim_applied(self, logic: SpaceLogic, upto: int) -> OpGen[int]:
        """Rule 4: trim the segments wholly below ``min(upto, applied)``; -> the trim point."""
        if type(upto) is not int or upto < 0:
            raise UsageError(f"upto is a non-negative int, got {upto!r}")
        return (yield from self.log.trim(logic, min(upto, self.applied)))


class WormPaxos:
    """A replica of the state machine ``apply`` named ``name`` on the synchronous client ``ws``."""

    def __init__(self, ws: Any, apply: Callable[[bytes], bytes], name: bytes = b"smr", policy: str = "sticky",
                 *, replica: int = 0, replicas: int = 1, start: int = 0, hole_timeout: float = 0.5,
                 history: AppHistory | None = None) -> None:
        self.ws = sync_client(ws, "WormPaxos")
        self.core = PaxosCore(apply, name, policy=policy, replica=replica, replicas=replicas, start=start,
                              hole_timeout=hole_timeout, history=history)

    @property
    def applied(self) -> int:
        return self.core.applied

    def submit(self, cmd: bytes) -> bytes:
        result: bytes = self.ws.run(self.core.submit(self.ws.logic, cmd))
        return result

    def sync(self) -> int:
        return int(self.ws.run(self.core.sync(self.ws.logic)))

    def trim_applied(self, upto: int) -> int:
        return int(self.ws.run(self.core.trim_applied(self.ws.logic, upto)))

    @property
    def aio(self) -> AsyncWormPaxos:
        """The asyncio face, sharing this replica's core (on the client's ``aio``, simulated or TCP)."""
        return AsyncWormPaxos(self.ws.aio, core=self.core)


class AsyncWormPaxos:
    """The asyncio face: ``await submit(cmd)``; many submits of one replica may be in flight at once."""

    def __init__(self, aclient: Any, apply: Callable[[bytes], bytes] | None = None, name: bytes = b"smr",
                 policy: str = "sticky", *, core: PaxosCore | None = None, replica: int = 0, replicas: int = 1,
                 start: int = 0, hole_timeout: float = 0.5, history: AppHistory | None = None) -> None:
        if core is None:
            if apply is None:
                raise UsageError("AsyncWormPaxos needs apply (or a core)")
            core = PaxosCore(apply, name, policy=policy, replica=replica, replicas=replicas, start=start,
                             hole_timeout=hole_timeout, history=history)
        self.aclient, self.core = async_client(aclient, "WormPaxos"), core

    @property
    def applied(self) -> int:
        return self.core.applied

    async def submit(self, cmd: bytes) -> bytes:
        result: bytes = await self.aclient.run(self.core.submit(self.aclient.logic, cmd))
        return result

    async def sync(self) -> int:
        return int(await self.aclient.run(self.core.sync(self.aclient.logic)))

    async def trim_applied(self, upto: int) -> int:
        return int(await self.aclient.run(self.core.trim_applied(self.aclient.logic, upto)))


__all__ = ["AsyncWormPaxos", "PaxosCore", "SmrSpec", "WormPaxos"]
