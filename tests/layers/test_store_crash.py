"""A SQLite store killed (SIGKILL) before any statement of its transactions or of its migration.

A child process (tests/layers/store_crash_child.py) runs a scenario and kills itself just before its
``k``-th SQL statement, for every ``k`` the scenario executes -- a torn transaction at each point, with the
WAL holding whatever SQLite had written of it. After each kill the file is opened again:

* ``apply`` (range promises written, cut by later captures, shadowed by votes, purged): the store holds
  exactly the state after the transactions that had committed (their ``COMMIT`` ran before the kill), never
  a part of the torn one, and the rest of the scenario then applies on it to the same final state.
* ``open`` of a format-1 and of a format-2 file (the migration to format 3, one transaction): the file is
  either still in its old format with every register, or in format 3 with every register; a snapshot reader
  reads it either way, and a writable open then migrates it and holds every register.

Bounded: one scenario of five transactions, every kill point of it (about 50 processes per scenario).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.layers.store_crash_child import GROUPS
from tests.layers.store_formats import downgrade, storage_format
from wormspace.layers.acceptor import STORAGE_FORMAT, MemoryStorage, SqliteStorage
from wormspace.layers.effects import RegKey
from wormspace.layers.messages import RegState

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("store_crash_child.py")


def _child(scenario: str, db: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHILD), scenario, str(db), str(kill_at)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _trace(scenario: str, db: Path) -> list[str]:
    done = _child(scenario, db, -1)
    assert done.returncode == 0, done.stderr
    trace: list[str] = json.loads(done.stdout)
    return trace


def _models() -> list[dict[RegKey, RegState]]:
    """The state after 0, 1, ... committed groups."""
    model = MemoryStorage()
    out = [dict(model.regs)]
    for group in GROUPS:
        for p in group:
            model.apply(p)
        out.append(dict(model.regs))
    return out


def _remove(db: Path) -> None:
    for f in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        f.unlink(missing_ok=True)


def test_a_kill_at_any_statement_leaves_exactly_the_committed_transactions(tmp_path: Path) -> None:
    db = tmp_path / "a.sqlite"
    trace = _trace("apply", db)
    models = _models()
    commits = [k for k, stmt in enumerate(trace) if stmt == "COMMIT"]
    assert len(commits) == 2 + len(GROUPS)  # the schema's transaction, the load's read, then one per group
    assert any("INSERT INTO ranges" in stmt for stmt in trace) and any("UPDATE ranges" in stmt for stmt in trace)
    for kill_at in range(len(trace)):
        _remove(db)
        done = _child("apply", db, kill_at)
        assert done.returncode == -9, (kill_at, done.stderr)
        committed = sum(1 for k in commits[2:] if k < kill_at)
        store = SqliteStorage(db)
        try:
            assert dict(store.items()) == models[committed], f"killed before statement {kill_at}: {trace[kill_at]}"
            for group in GROUPS[committed:]:  # the store is usable: the rest of the scenario applies on it
                with store.group():
                    for p in group:
                        store.apply(p)
            assert dict(store.items()) == models[-1]
        finally:
            store.close()
        again = SqliteStorage(db)
        assert dict(again.items()) == models[-1]
        again.close()


@pytest.mark.parametrize("old", [1, 2])
def test_a_kill_at_any_statement_of_the_migration_leaves_a_usable_file(tmp_path: Path, old: int) -> None:
    original = tmp_path / "original.sqlite"
    _trace("apply", original)
    models = _models()
    downgrade(original, old)
    assert storage_format(original) == old
    db = tmp_path / "a.sqlite"
    shutil.copy(original, db)
    trace = _trace("open", db)
    assert storage_format(db) == STORAGE_FORMAT
    assert any("CREATE TABLE IF NOT EXISTS ranges" in stmt for stmt in trace)
    for kill_at in range(len(trace)):
        _remove(db)
        shutil.copy(original, db)
        done = _child("open", db, kill_at)
        assert done.returncode == -9, (kill_at, done.stderr)
        assert storage_format(db) in (old, STORAGE_FORMAT), kill_at
        reader = SqliteStorage(db, read_only=True)  # a snapshot reader reads it, migrated or not
        try:
            assert dict(reader.items()) == models[-1], f"killed before statement {kill_at}: {trace[kill_at]}"
        finally:
            reader.close()
        store = SqliteStorage(db)
        try:
            assert dict(store.items()) == models[-1]
        finally:
            store.close()
        assert storage_format(db) == STORAGE_FORMAT
