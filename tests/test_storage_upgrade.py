"""A real acceptor process given a storage-format-1 or format-2 file migrates it and serves the registers it
held.

Three acceptor processes on loopback; a value is written while acceptor 2 is paused, and acceptor 2 is
killed before it reads the write, so only acceptors 0 and 1 hold it. Acceptor 0 is killed (``kill -9``) and
its SQLite file is rewritten into format 2 (no ``ranges`` table: every range promise becomes register rows)
or further into format 1 (the ``WITHOUT ROWID`` registers table of the versions before format 2), identity
table untouched; acceptors 0 and 2 restart, 0 migrating its file. With acceptor 1
paused, a read through the quorum {0, 2} returns the value, which only acceptor 0's migrated file can have
kept (with the rows dropped instead of copied, the same read returns EMPTY). Its log carries the migration
line.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from wormspace.cluster import LocalClusterHandle
from wormspace.layers.acceptor import STORAGE_FORMAT
from wormspace.runtime.supervise import LocalCluster

pytestmark = pytest.mark.slow

TO_FORMAT_2 = (
    "WITH RECURSIVE r(segment, idx, hi, pn, pnode) AS ("
    " SELECT segment, lo, hi, promised_n, promised_node FROM ranges"
    " UNION ALL SELECT segment, idx + 1, hi, pn, pnode FROM r WHERE idx + 1 < hi)"
    " INSERT OR IGNORE INTO registers SELECT segment, idx, pn, pnode, 0, -1, NULL FROM r",
    "DROP TABLE ranges",
    "UPDATE meta SET value = 2 WHERE key = 'storage_format'",
)
TO_FORMAT_1 = (
    *TO_FORMAT_2,
    "CREATE TABLE registers_v1 ("
    " segment INTEGER NOT NULL, idx INTEGER NOT NULL,"
    " promised_n INTEGER NOT NULL, promised_node INTEGER NOT NULL,"
    " accepted_n INTEGER NOT NULL, accepted_node INTEGER NOT NULL,"
    " value BLOB,"
    " PRIMARY KEY (segment, idx)) WITHOUT ROWID",
    "INSERT INTO registers_v1 SELECT segment, idx, promised_n, promised_node, accepted_n, accepted_node, value"
    " FROM registers",
    "DROP TABLE registers",
    "ALTER TABLE registers_v1 RENAME TO registers",
    "UPDATE meta SET value = 1 WHERE key = 'storage_format'",
)


def _format(db: Path) -> int:
    with sqlite3.connect(db) as c:
        n: int = c.execute("SELECT value FROM meta WHERE key = 'storage_format'").fetchone()[0]
        return n


@pytest.mark.parametrize("old", [1, 2])
def test_an_older_format_is_migrated_by_the_acceptor_process(tmp_path: Path, old: int) -> None:
    local = LocalCluster(tmp_path, 3, wos_size=8).start()
    with LocalClusterHandle(local, record=False) as cluster:
        ws = cluster.client()
        seg = ws.alloc(b"m")
        addr = ws.address(seg, 0)
        cluster.pause(2)
        ws.write(addr, b"kept", ws.capture(addr))
        cluster.crash(2)  # killed while paused: the requests it had not read are lost with it
        cluster.crash(0)
        db = local.data_dir(0) / "acceptor.sqlite"
        with sqlite3.connect(db) as c:
            for stmt in TO_FORMAT_1 if old == 1 else TO_FORMAT_2:
                c.execute(stmt)
        assert _format(db) == old
        cluster.restart(0)
        cluster.restart(2)
        cluster.pause(1)  # the quorum is now {0, 2}: only acceptor 0, from its migrated file, has the value
        assert ws.read(addr) == b"kept"
        cluster.resume(1)
    assert _format(db) == STORAGE_FORMAT
    log = (local.data_dir(0) / "acceptor.log").read_text()
    assert f"storage migrated from format {old} to format {STORAGE_FORMAT}" in log
