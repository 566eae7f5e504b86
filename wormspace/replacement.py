"""Replacing an acceptor whose disk is lost, while the others keep serving: the fence procedure.

Theory of operation. Acceptor ``A`` of a group died with its disk. Its lost state held promises and votes
the rest of the cluster relies on; a new incarnation must not contradict them. The procedure:

Rule 1 (fence). Ask every *survivor* (every other acceptor of ``A``'s group) for its highest promise
        (``Fence(ZERO_BALLOT)``), choose a fence ballot ``F`` above all of them (``choose_fence``), and send
        ``Fence(F)`` to every survivor. An acceptor applies a fence only if ``F`` is above every promise it
        holds (acceptor Rule 6); if one refuses (it promised higher meanwhile), choose again above what it
        reported and fence every survivor again. The fence is complete when every survivor answered
        ``Fenced`` with floor ``F`` (``FenceRound``). It needs EVERY survivor: with 3 acceptors and one lost,
        both others; an unreachable survivor stops the procedure with an error.
Rule 2 (snapshot). Only after the fence is complete, snapshot every survivor's registers.
Rule 3 (rebuild). The new incarnation's registers are, per register, the highest promise and the
        highest-ballot vote among the snapshots; a segment whose TRIM register holds a vote is trimmed (its
        other registers purged); its floor is ``F`` (``rebuild_state``). It starts serving only once this
        state is durable (the process is started after its file is written).
Rule 4 (quorums of one floor). Proposers count promises towards a phase-1 quorum only if they carry one
        floor (``Promise.floor``, wor Rule 1), so a promise the lost acceptor gave before it died never
        completes a quorum with a survivor's promise given after the fence.

Why it is safe (checked by the explorer and the simulated fault schedules, in bounds; see
docs/operations.md). After the fence no survivor votes, and none promises to an old quorum, below ``F``;
the lost acceptor votes nothing. So the set of votes below ``F`` is frozen once the fence is complete, and
a value chosen below ``F`` had a survivor among its voters, whose vote (or a later vote, which is for the
same value) is in the snapshot: the rebuilt state reports it. Nothing new is chosen below ``F``. Ballots at
or above ``F`` need a phase-1 quorum of floor-``F`` promises, given after the fence by survivors or by the
new incarnation, whose states hold everything the snapshot holds: Paxos runs on from there. Without Rule 4
a proposer could pair the lost acceptor's promise at a ballot ``p > F`` with a survivor's later promise at
``p``, while the new incarnation, unaware of that promise, votes at a ballot between ``F`` and ``p``.

The pure parts (``choose_fence``, ``FenceRound``, ``rebuild_state``) are shared by the real procedure
(``replace_acceptor``, over TCP and SQLite files), the simulator (``SimCluster.replace``) and the explorer.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from wormspace.errors import UsageError, WormSpaceError
from wormspace.identity import Identity, IdentityError, read_identity_file, write_db_identity, write_identity_file
from wormspace.layers.acceptor import FLOOR_KEY, SqliteStorage
from wormspace.layers.effects import Persist, RegKey
from wormspace.layers.messages import TRIM, ZERO_BALLOT, Ballot, Fence, Fenced, Message, RegState

if TYPE_CHECKING:
    from wormspace.runtime.config import ClusterConfig

FENCE_REQ_BASE = 1 << 40  # request ids of the procedure's Fence messages (any id works; these read well)


class ReplaceError(WormSpaceError):
    """The replacement procedure could not complete (a survivor did not answer, a file is in the way);
    nothing was started, and the survivors' fences, if any were raised, are harmless to keep."""


# ---- pure parts -----------------------------------------------------------------------------------------


def choose_fence(replies: Iterable[Fenced]) -> Ballot:
    """Rule 1: a fence ballot above every promise and floor the replies report."""
    top = max((max(r.promised, r.floor) for r in replies), default=ZERO_BALLOT)
    return Ballot(max(top.number, 0) + 1, 0)


def fence_complete(fence: Ballot, floors: dict[int, Ballot], survivors: Iterable[int]) -> bool:
    """Rule 1's end: a fence was chosen and every survivor reported it as its floor."""
    return fence != ZERO_BALLOT and all(floors.get(s) == fence for s in survivors)


@dataclass(slots=True)
class FenceRound:
    """Rule 1 as a sans-I/O state machine: ``start()`` and ``on_reply()`` return the ``(survivor, Fence)``
    messages to send; ``on_timeout()`` resends to the silent survivors. ``done`` once every survivor has
    answered ``Fenced`` with floor ``fence``."""

    survivors: tuple[int, ...]
    fence: Ballot = ZERO_BALLOT
    attempts: int = 0
    replies: dict[int, Fenced] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return fence_complete(self.fence, {s: r.floor for s, r in self.replies.items()}, self.survivors)

    def __post_init__(self) -> None:
        if not self.survivors or len(set(self.survivors)) != len(self.survivors):
            raise UsageError("a fence needs the distinct survivors of the lost acceptor's group")

    def _req(self) -> int:
        return FENCE_REQ_BASE + self.attempts

    def _ask(self, to: Iterable[int]) -> list[tuple[int, Fence]]:
        return [(s, Fence(req=self._req(), segment=0, ballot=self.fence)) for s in to]

    def start(self) -> list[tuple[int, Fence]]:
        """First ask every survivor for its highest promise (``Fence(ZERO_BALLOT)`` changes nothing)."""
        return self._ask(self.survivors)

    def on_reply(self, src: int, reply: Fenced) -> list[tuple[int, Fence]]:
        if self.done or src not in self.survivors or reply.req != self._req():
            return []
        self.replies[src] = reply
        if len(self.replies) < len(self.survivors) or self.done:
            return []
        # Everyone answered: the inquiry, or a fence some survivor refused (it promised at or above it).
        self.fence = choose_fence([*self.replies.values(), Fenced(req=0, segment=0, floor=self.fence,
                                                                  promised=ZERO_BALLOT)])
        self.attempts += 1
        self.replies = {}
        return self._ask(self.survivors)

    def on_timeout(self) -> list[tuple[int, Fence]]:
        """Resend to the survivors that have not answered the current request."""
        if self.done:
            return []
        return self._ask(s for s in self.survivors if s not in self.replies)

    def silent(self) -> list[int]:
        return [s for s in self.survivors if s not in self.replies]


def merge_register_states(states: Sequence[RegState]) -> RegState:
    """One register's state rebuilt from the survivors' states: the highest promise, and the highest-ballot
    vote (Paxos proposes one value per ballot, so two different values at one ballot mean corrupted input)."""
    if not states:
        raise UsageError("nothing to merge")
    promised = max(r.promised for r in states)
    best = max(states, key=lambda r: r.accepted)
    for r in states:
        if r.accepted == best.accepted and r.value != best.value:
            raise UsageError(f"two different values voted at ballot {tuple(best.accepted)}: the inputs are corrupt")
    return RegState(promised=promised, accepted=best.accepted, value=best.value)


def rebuild_state(snapshots: Sequence[Iterable[tuple[RegKey, RegState]]], fence: Ballot) -> dict[RegKey, RegState]:
    """Rule 3: the new incarnation's registers from snapshots of EVERY survivor taken after the fence
    ``fence`` was complete: per register the highest promise and the highest-ballot vote; segments with a
    vote in their TRIM register purged (acceptor Rule 4); the floor (``FLOOR_KEY``) at least ``fence``."""
    if not snapshots:
        raise UsageError("give a snapshot of every surviving acceptor of the group")
    found: dict[RegKey, list[RegState]] = {}
    for snap in snapshots:
        for key, state in snap:
            found.setdefault(key, []).append(state)
    floors = [s.promised for s in found.pop(FLOOR_KEY, [])]
    merged = {key: merge_register_states(states) for key, states in found.items()}
    trimmed = {seg for (seg, idx), r in merged.items() if idx == TRIM and r.value is not None}
    out = {k: r for k, r in merged.items() if k[0] not in trimmed or k[1] == TRIM}
    floor = max([fence, *floors])
    if floor != ZERO_BALLOT:
        out[FLOOR_KEY] = RegState(promised=floor)
    return out


# ---- the real procedure: TCP fence, SQLite snapshots ---------------------------------------------------


async def _fence_over_tcp(
    peers: dict[int, tuple[str, int]], auth_key: bytes | None, cluster_id: str, timeout: float, resend: float
) -> FenceRound:
    from wormspace.layers.tcp import TcpTransport

    fr = FenceRound(tuple(sorted(peers)))
    changed = asyncio.Event()

    def on_message(src: int, msg: Message) -> None:
        if isinstance(msg, Fenced):
            for dst, m in fr.on_reply(src, msg):
                transport.send(dst, m)
            changed.set()

    transport = TcpTransport(
        peers, on_message, auth_key, cluster_id=cluster_id, backoff_initial=0.05, backoff_max=resend
    )
    try:
        for dst, m in fr.start():
            transport.send(dst, m)
        deadline = time.monotonic() + timeout
        while not fr.done:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), min(resend, left))
            except TimeoutError:
                for dst, m in fr.on_timeout():
                    transport.send(dst, m)
    finally:
        await transport.close()
    return fr


def fence_survivors(
    cfg: ClusterConfig, survivors: Sequence[int], *, timeout: float = 10.0, resend: float = 0.5
) -> Ballot:
    """Rule 1 over TCP: fence every survivor; returns ``F``. ``ReplaceError`` naming the survivors that did
    not answer within ``timeout`` seconds."""
    from wormspace.layers.tcp import run

    addresses = cfg.addresses()
    peers = {s: addresses[s] for s in survivors}
    fr = run(_fence_over_tcp(peers, cfg.auth_key(), cfg.cluster_id, timeout, resend))
    if not fr.done:
        silent = fr.silent()
        raise ReplaceError(
            f"the fence needs every surviving acceptor of the group ({', '.join(map(str, survivors))});"
            f" {', '.join(map(str, silent)) or 'some'} did not answer within {timeout}s. Start them (the"
            " procedure cannot complete with one of them down), then run it again."
        )
    return fr.fence


def write_storage(
    path: str | os.PathLike[str], state: dict[RegKey, RegState], identity: Identity | None = None
) -> int:
    """Write ``state`` (and ``identity``, if given) into a new SQLite acceptor file at ``path`` (refuses an
    existing file): built under a temporary name, then renamed, so a half-built file never carries the
    acceptor's name. Returns the number of rows written."""
    out = Path(path)
    if out.exists():
        raise UsageError(f"{out} exists; the replacement's storage must go to a new file")
    tmp = out.with_name(f".{out.name}.rebuild")
    for leftover in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
        leftover.unlink(missing_ok=True)
    store = SqliteStorage(tmp)
    try:
        store.apply(Persist(puts=tuple(sorted(state.items()))))
    finally:
        store.close()
    if identity is not None:
        write_db_identity(tmp, identity)
    os.replace(tmp, out)
    return len(state)


def snapshot_file(path: str | os.PathLike[str]) -> list[tuple[RegKey, RegState]]:
    """Every row of an acceptor's SQLite file, read in one consistent snapshot (the acceptor may be running)."""
    if not Path(path).exists():
        raise UsageError(f"{path}: no such acceptor file")
    store = SqliteStorage(path, read_only=True)
    try:
        return list(store.items())
    finally:
        store.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class Replacement:
    """What ``replace_acceptor`` did."""

    acceptor: int
    survivors: tuple[int, ...]
    fence: Ballot
    registers: int
    path: str


def group_of(cfg: ClusterConfig, acceptor_id: int) -> list[int]:
    for g in cfg.acceptor_groups():
        if acceptor_id in g:
            return g
    raise UsageError(f"no acceptor {acceptor_id} in the cluster (ids: {list(cfg.ids)})")


def replace_acceptor(cfg: ClusterConfig, acceptor_id: int, *, timeout: float = 10.0) -> Replacement:
    """Rules 1-3 for acceptor ``acceptor_id`` of ``cfg``, whose data directory is lost: fence every survivor
    over TCP, then snapshot their SQLite files (their ``data_dir``s must be readable here: a cluster on this
    machine), then write the new incarnation's file into its (empty or new) data directory. The caller then
    starts the acceptor (``wormspace cluster replace`` does). Refuses if the directory already holds an
    acceptor file or a running acceptor."""
    from wormspace.runtime.datadir import SQLITE_NAME, running_pid

    group = group_of(cfg, acceptor_id)
    survivors = [a for a in group if a != acceptor_id]
    if not survivors:
        raise UsageError(f"acceptor {acceptor_id} is alone in its group: there is nothing to rebuild it from")
    me = cfg.acceptor(acceptor_id)
    data_dir = Path(me.data_dir)
    pid = running_pid(data_dir)
    if pid is not None:
        raise UsageError(f"acceptor {acceptor_id} is running (pid {pid or '?'}): replace only a dead acceptor")
    target = data_dir / SQLITE_NAME
    if target.exists():
        raise UsageError(
            f"{target} exists: replacement is for an acceptor whose disk is lost; if its file survived,"
            " restart it instead (or move the file away first)"
        )
    try:
        old = read_identity_file(data_dir)
    except IdentityError:
        old = None  # a damaged identity file: the directory's old acceptor is gone either way
    if old is not None and (old.cluster_id, old.acceptor_id) != (cfg.cluster_id, acceptor_id):
        raise UsageError(f"{data_dir} belongs to {old.describe()}: not acceptor {acceptor_id} of this cluster")
    # The new incarnation: one above the lost one's when its identity file survived, else 2 (above the first).
    incarnation = old.incarnation + 1 if old is not None else 2
    for s in survivors:
        if not (Path(cfg.acceptor(s).data_dir) / SQLITE_NAME).exists():
            raise UsageError(f"survivor {s}: no {SQLITE_NAME} in {cfg.acceptor(s).data_dir} to snapshot")
    fence = fence_survivors(cfg, survivors, timeout=timeout)
    snapshots = [snapshot_file(Path(cfg.acceptor(s).data_dir) / SQLITE_NAME) for s in survivors]
    state = rebuild_state(snapshots, fence)
    data_dir.mkdir(parents=True, exist_ok=True)
    identity = Identity(cluster_id=cfg.cluster_id, acceptor_id=acceptor_id, incarnation=incarnation)
    n = write_storage(target, state, identity)
    write_identity_file(data_dir, identity)
    return Replacement(acceptor=acceptor_id, survivors=tuple(survivors), fence=fence, registers=n, path=str(target))


__all__ = [
    "FenceRound",
    "ReplaceError",
    "Replacement",
    "choose_fence",
    "fence_complete",
    "fence_survivors",
    "group_of",
    "merge_register_states",
    "rebuild_state",
    "replace_acceptor",
    "snapshot_file",
    "write_storage",
]
