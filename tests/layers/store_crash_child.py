"""The process that tests/layers/test_store_crash.py kills: it runs a store scenario with a SQLite trace hook
that sends itself SIGKILL when the ``kill_at``-th statement is about to run (``-1``: never; the trace is then
printed as JSON). Kept free of pytest and Hypothesis so that it starts quickly.

``python tests/layers/store_crash_child.py SCENARIO DB KILL_AT``; SCENARIO is ``apply`` (open the store,
apply ``GROUPS``, one transaction each) or ``open`` (open the store: a migration, if the file is older).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
from typing import Any

from wormspace.layers.acceptor import SqliteStorage
from wormspace.layers.effects import Persist
from wormspace.layers.messages import META, TRIM, Ballot, RegState


def _p(n: int) -> RegState:
    return RegState(promised=Ballot(n, 1))


def _v(n: int, a: int, value: bytes) -> RegState:
    return RegState(promised=Ballot(n, 1), accepted=Ballot(a, 1), value=value)


WOS = 16
GROUPS: list[list[Persist]] = [
    # a whole-segment capture (a range), and the next segment prefetched in the same transaction
    [Persist(puts=tuple(((0, i), _p(1)) for i in range(META, WOS))),
     Persist(puts=tuple(((1, i), _p(1)) for i in range(META, WOS)))],
    # votes inside the range (register rows over it)
    [Persist(puts=(((0, 0), _v(1, 1, b"a")), ((0, 1), _v(1, 1, b"b")))), Persist(puts=(((0, 7), _v(1, 1, b"c")),))],
    # a capture at a higher ballot: votes kept as rows, the gaps as ranges cutting the old one
    [Persist(puts=(((0, META), _p(2)), ((0, 0), _v(2, 1, b"a")), ((0, 1), _v(2, 1, b"b")),
                   *(((0, i), _p(2)) for i in range(2, 7)), ((0, 7), _v(2, 1, b"c")),
                   *(((0, i), _p(2)) for i in range(8, WOS))))],
    # a part of segment 1 captured higher (the older range cut in three), a vote there, the floor raised
    [Persist(puts=tuple(((1, i), _p(3)) for i in range(4, 9))), Persist(puts=(((1, 5), _v(3, 3, b"d")),)),
     Persist(puts=(((-1, 0), _p(4)),))],
    # segment 0 trimmed: its ranges and rows go, its TRIM register stays
    [Persist(puts=(((0, TRIM), _v(5, 5, b"t")),), purge=(0,))],
]  # fmt: skip


def run(scenario: str, db: str) -> None:
    store = SqliteStorage(db)
    try:
        if scenario == "apply":
            for group in GROUPS:
                with store.group():
                    for p in group:
                        store.apply(p)
    finally:
        store.close()


def main(argv: list[str]) -> int:
    scenario, db, kill_at = argv[0], argv[1], int(argv[2])
    trace: list[str] = []
    connect = sqlite3.connect

    def traced(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn: sqlite3.Connection = connect(*args, **kwargs)

        def hook(statement: str) -> None:
            if len(trace) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)  # a power cut just before this statement runs
            trace.append(statement)

        conn.set_trace_callback(hook)
        return conn

    sqlite3.connect = traced  # type: ignore[assignment]
    run(scenario, db)
    print(json.dumps(trace))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
