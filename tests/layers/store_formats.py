"""Older acceptor storage formats, written from a current file, for the migration checks
(tests/layers/test_store_crash.py, tests/test_storage_upgrade.py), and format 1's registers table
(tests/layers/test_sqlite_storage.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from wormspace.layers.acceptor import SqliteStorage


def format_1_table(name: str) -> str:
    """Format 1's registers table (WITHOUT ROWID), created as ``name``."""
    return (
        f"CREATE TABLE {name} ("
        " segment INTEGER NOT NULL, idx INTEGER NOT NULL,"
        " promised_n INTEGER NOT NULL, promised_node INTEGER NOT NULL,"
        " accepted_n INTEGER NOT NULL, accepted_node INTEGER NOT NULL,"
        " value BLOB,"
        " PRIMARY KEY (segment, idx)) WITHOUT ROWID"
    )


FORMAT_1_REGISTERS = (  # format 2's registers table back into format 1's WITHOUT ROWID table
    format_1_table("registers_v1"),
    "INSERT INTO registers_v1 SELECT * FROM registers",
    "DROP TABLE registers",
    "ALTER TABLE registers_v1 RENAME TO registers",
)


def storage_format(db: Path) -> int:
    """The format a store file declares."""
    with sqlite3.connect(db) as c:
        n: int = c.execute("SELECT value FROM meta WHERE key = 'storage_format'").fetchone()[0]
    return n


def downgrade(db: Path, to: int) -> None:
    """Rewrite a format-3 file (no process has it open) into format ``to`` (2 or 1): every range's registers
    become register rows (the older formats' only rows), then the ranges table goes; the identity table is
    untouched."""
    store = SqliteStorage(db, read_only=True)
    regs = dict(store.items())
    store.close()
    c = sqlite3.connect(db, isolation_level=None)
    try:
        c.execute("BEGIN IMMEDIATE")
        c.execute("DELETE FROM registers")
        c.executemany(
            "INSERT INTO registers VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(s, i, r.promised.number, r.promised.node, r.accepted.number, r.accepted.node, r.value)
             for (s, i), r in sorted(regs.items())],
        )  # fmt: skip
        c.execute("DROP TABLE ranges")
        if to == 1:
            for stmt in FORMAT_1_REGISTERS:
                c.execute(stmt)
        c.execute("UPDATE meta SET value = ? WHERE key = 'storage_format'", (to,))
        c.execute("COMMIT")
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        c.close()
