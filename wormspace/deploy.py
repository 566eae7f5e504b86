"""Rebuilding the storage of a replacement acceptor whose disk is lost (docs/operations.md).

The rest of what ran a deployment lives in ``wormspace.runtime`` (cluster file, auth keys, data
directories, local acceptor processes, the TCP driver, the real demo).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from wormspace.errors import UsageError
from wormspace.layers.effects import Persist, RegKey
from wormspace.layers.messages import TRIM, RegState


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


def rebuild_storage(sources: Sequence[str | os.PathLike[str]], dest: str | os.PathLike[str]) -> int:
    """Build the storage of a replacement acceptor (whose disk is lost) from the SQLite files of ALL the
    surviving acceptors of its group: per register the highest promise and the highest-ballot vote; a
    segment whose merged TRIM register holds a vote is purged (acceptor rule 4). Returns the number of
    registers written. Refuses to overwrite ``dest``. The sources may be read while their acceptors run.

    Why this is safe (docs/operations.md): every value chosen with the lost acceptor's vote was also voted by
    a survivor of that quorum, and every vote at a higher ballot is for the same value, so the merged vote is
    that value; every promise a proposer relied on was also made by a survivor, so the merged promise is at
    least as high. The replacement therefore behaves as an acceptor that merely missed some messages."""
    from wormspace.layers.acceptor import SqliteStorage

    out = Path(dest)
    if out.exists():
        raise UsageError(f"{out} exists; the rebuilt storage must go to a new file")
    if not sources:
        raise UsageError("give the SQLite files of every surviving acceptor of the group")
    found: dict[RegKey, list[RegState]] = {}
    for src in sources:
        if not Path(src).exists():
            raise UsageError(f"{src}: no such file")
        store = SqliteStorage(src, read_only=True)
        try:
            for key, state in store.items():
                found.setdefault(key, []).append(state)
        finally:
            store.close()
    merged = {key: merge_register_states(states) for key, states in found.items()}
    trimmed = {seg for (seg, idx), r in merged.items() if idx == TRIM and r.value is not None}
    puts = tuple(sorted((k, r) for k, r in merged.items() if k[0] not in trimmed or k[1] == TRIM))
    target = SqliteStorage(out)
    try:
        target.apply(Persist(puts=puts))
    finally:
        target.close()
    return len(puts)


__all__ = ["merge_register_states", "rebuild_storage"]
