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

from pathlib import Path

import pytest

from tests.layers.store_formats import downgrade, storage_format
from wormspace.cluster import LocalClusterHandle
from wormspace.layers.acceptor import STORAGE_FORMAT
from wormspace.runtime.supervise import LocalCluster

pytestmark = pytest.mark.slow


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
        downgrade(db, old)
        assert storage_format(db) == old
        cluster.restart(0)
        cluster.restart(2)
        cluster.pause(1)  # the quorum is now {0, 2}: only acceptor 0, from its migrated file, has the value
        assert ws.read(addr) == b"kept"
        cluster.resume(1)
    assert storage_format(db) == STORAGE_FORMAT
    log = (local.data_dir(0) / "acceptor.log").read_text()
    assert f"storage migrated from format {old} to format {STORAGE_FORMAT}" in log
