"""SqliteStorage: agrees with ``apply_to_dict`` (the meaning of ``Persist``), survives a restart, purges
trimmed segments, refuses files of another format, and makes the acceptor core behave as on MemoryStorage."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.layers.store_formats import format_1_table
from wormspace.errors import UsageError
from wormspace.identity import Identity, read_db_identity, write_db_identity
from wormspace.layers.acceptor import (
    STORAGE_FORMAT,
    AcceptorNode,
    MemoryStorage,
    SqliteStorage,
    apply_to_dict,
)
from wormspace.layers.effects import Persist, RegKey
from wormspace.layers.messages import (
    META,
    TRIM,
    ZERO_BALLOT,
    Accept,
    Ballot,
    Prepare,
    Read,
    RegState,
    Request,
)

ballots = st.builds(Ballot, st.integers(1, 4), st.integers(0, 2))
keys = st.tuples(st.integers(0, 2), st.sampled_from([TRIM, META, 0, 1, 2]))


@st.composite
def reg_states(draw: st.DrawFn) -> RegState:
    promised = draw(ballots)
    if draw(st.booleans()):
        return RegState(promised=promised)
    accepted = draw(ballots.filter(lambda b: b <= promised))
    return RegState(promised=promised, accepted=accepted, value=draw(st.binary(max_size=6)))


persists = st.builds(
    Persist,
    puts=st.lists(st.tuples(keys, reg_states()), max_size=5, unique_by=lambda p: p[0]).map(tuple),
    purge=st.lists(st.integers(0, 2), max_size=2, unique=True).map(tuple),
)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "acceptor.sqlite"


def rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as c:
        return c.execute("SELECT * FROM registers ORDER BY segment, idx").fetchall()


@given(st.lists(persists, max_size=12))
@settings(max_examples=60)
def test_agrees_with_apply_to_dict_and_recovers_after_restart(steps: list[Persist]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "a.sqlite"
        store = SqliteStorage(path)
        model: dict[RegKey, RegState] = {}
        for p in steps:
            store.apply(p)
            model = apply_to_dict(model, p)
            assert dict(store.items()) == model
            for seg, idx in [(s, i) for s in range(3) for i in (TRIM, META, 0, 1, 2)]:
                assert store.get(seg, idx) == model.get((seg, idx))
        store.close()
        reopened = SqliteStorage(path)
        assert dict(reopened.items()) == model
        assert list(reopened.items()) == sorted(model.items())
        reopened.close()


def test_restart_recovers_exactly(db: Path) -> None:
    s = SqliteStorage(db)
    state = RegState(promised=Ballot(3, 1), accepted=Ballot(2, 0), value=b"\x00v")
    s.apply(Persist(puts=(((5, 0), state), ((5, META), RegState(promised=Ballot(1, 2))))))
    s.close()
    s.close()  # idempotent
    again = SqliteStorage(db)
    assert again.get(5, 0) == state
    assert again.get(5, META) == RegState(promised=Ballot(1, 2))
    assert again.get(5, 1) is None
    assert again.count() == 2
    again.close()


def test_trim_purge_leaves_only_the_trim_register(db: Path) -> None:
    s = SqliteStorage(db)
    vote = RegState(promised=Ballot(1, 1), accepted=Ballot(1, 1), value=b"x")
    s.apply(Persist(puts=tuple(((seg, i), vote) for seg in (7, 8) for i in (META, 0, 1, 2, 3))))
    s.apply(Persist(puts=(((7, TRIM), vote), ((7, 4), vote)), purge=(7,)))
    s.close()
    assert rows(db) == [(7, TRIM, 1, 1, 1, 1, b"x")] + [(8, i, 1, 1, 1, 1, b"x") for i in (META, 0, 1, 2, 3)]


def test_zero_ballots_and_empty_values_are_stored_faithfully(db: Path) -> None:
    s = SqliteStorage(db)
    promised_only = RegState(promised=Ballot(2, 0))
    empty_value = RegState(promised=Ballot(2, 0), accepted=Ballot(2, 0), value=b"")
    s.apply(Persist(puts=(((0, 0), promised_only), ((0, 1), empty_value))))
    s.close()
    again = SqliteStorage(db)
    assert again.get(0, 0) == promised_only and again.get(0, 0).accepted == ZERO_BALLOT  # type: ignore[union-attr]
    assert again.get(0, 1) == empty_value
    again.close()


def test_refuses_another_storage_format(db: Path) -> None:
    SqliteStorage(db).close()
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT value FROM meta WHERE key = 'storage_format'").fetchone() == (STORAGE_FORMAT,)
        c.execute("UPDATE meta SET value = 4 WHERE key = 'storage_format'")
    with pytest.raises(UsageError, match="storage format 4"):
        SqliteStorage(db)
    with pytest.raises(UsageError, match="storage format 4"):
        SqliteStorage(db, read_only=True)


FORMAT_1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    format_1_table("registers"),
    "INSERT INTO meta VALUES ('storage_format', 1)",
    "INSERT INTO registers VALUES (-1, 0, 5, 2, 0, -1, NULL)",
    "INSERT INTO registers VALUES (0, 0, 3, 1, 3, 1, x'6869')",
    "INSERT INTO registers VALUES (0, 1, 4, 1, 0, -1, NULL)",
    "INSERT INTO registers VALUES (2, 0, 1, 1, 1, 1, x'')",
)


def test_a_format_1_file_is_migrated_with_every_register(db: Path) -> None:
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA journal_mode=WAL")
        for stmt in FORMAT_1:
            c.execute(stmt)
    ident = Identity(cluster_id="c" * 32, acceptor_id=0)
    write_db_identity(db, ident)
    before = SqliteStorage(db, read_only=True)  # a snapshot reader reads the old format as it is
    old = list(before.items())
    before.close()
    assert len(old) == 4
    s = SqliteStorage(db)
    assert list(s.items()) == old
    assert s.get(0, 0) == RegState(promised=Ballot(3, 1), accepted=Ballot(3, 1), value=b"hi")
    assert s.highest_promise() == Ballot(5, 2)
    s.apply(Persist(puts=(((0, 1), RegState(promised=Ballot(6, 1))),)))
    s.close()
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT value FROM meta WHERE key = 'storage_format'").fetchone() == (STORAGE_FORMAT,)
        sql = c.execute("SELECT sql FROM sqlite_master WHERE name = 'registers'").fetchone()[0]
        assert "WITHOUT ROWID" not in sql
    assert read_db_identity(db) == ident  # the identity table is left as it was
    again = SqliteStorage(db)
    assert again.get(0, 1) == RegState(promised=Ballot(6, 1))
    assert len(list(again.items())) == 4
    again.close()


def test_a_1_kib_value_fits_its_page(db: Path) -> None:
    s = SqliteStorage(db)
    n = 256
    s.apply(Persist(puts=tuple(((0, i), RegState(promised=Ballot(1, 1), accepted=Ballot(1, 1), value=bytes(1024)))
                               for i in range(n))))
    s.close()
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = c.execute("PRAGMA page_size").fetchone()[0]
        used = c.execute("PRAGMA page_count").fetchone()[0] - c.execute("PRAGMA freelist_count").fetchone()[0]
    assert used * page / n < 1.5 * 1024  # format 1 took ~4.6 KB a row: each value spilled to an overflow page


def test_refuses_a_file_that_is_not_a_database(db: Path) -> None:
    db.write_bytes(b"this is not SQLite at all, just text" * 100)
    with pytest.raises(UsageError, match="not a usable acceptor database"):
        SqliteStorage(db)


def test_refuses_a_row_that_is_not_a_register_state(db: Path) -> None:
    SqliteStorage(db).close()
    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO registers VALUES (1, 0, 1, 1, 0, -1, x'00')")  # a value without a vote
    with pytest.raises(UsageError, match="invalid state"):  # checked when the mirror is loaded
        SqliteStorage(db)
    reader = SqliteStorage(db, read_only=True)
    with pytest.raises(UsageError, match="invalid state"):
        list(reader.items())
    reader.close()


def test_group_commits_all_or_nothing(db: Path) -> None:
    s = SqliteStorage(db)
    a = RegState(promised=Ballot(1, 1))
    with s.group():
        s.apply(Persist(puts=(((0, 0), a),)))
        s.apply(Persist(puts=(((0, 1), a),)))
        assert s.get(0, 1) == a  # visible inside the transaction
    b = RegState(promised=Ballot(2, 1))
    with pytest.raises(RuntimeError), s.group():
        s.apply(Persist(puts=(((0, 2), a), ((0, 0), b))))
        s.apply(Persist(puts=(((0, 0), RegState(promised=Ballot(3, 1))),)))
        s.apply(Persist(puts=((TRIM_KEY, TRIM_STATE),), purge=(0,)))
        assert s.get(0, 1) is None
        raise RuntimeError("boom")
    assert dict(s.items()) == {(0, 0): a, (0, 1): a}  # the mirror is rolled back with the transaction
    assert s.highest_promise() == Ballot(1, 1)
    with pytest.raises(UsageError), s.group(), s.group():
        pass
    s.close()
    assert [r[:2] for r in rows(db)] == [(0, 0), (0, 1)]


def test_a_group_that_changes_nothing_runs_no_transaction(db: Path) -> None:
    s = SqliteStorage(db)
    node = AcceptorNode(0, s, fast=True)
    statements: list[str] = []
    s._db.set_trace_callback(statements.append)
    with s.group():  # a read: its reply depends only on committed state, nothing to make durable
        node.handle(1, Read(req=1, segment=0, indices=(0, 1)))
    assert statements == []
    with s.group():
        node.handle(1, Read(req=2, segment=0, indices=(0,)))
        node.handle(1, Accept(req=3, segment=0, ballot=Ballot(1, 1), values=((0, b"x"),)))
    assert statements[0] == "BEGIN IMMEDIATE" and statements[-1] == "COMMIT"
    s._db.set_trace_callback(None)
    s.close()
    again = SqliteStorage(db)
    assert again.get(0, 0) == RegState(promised=Ballot(1, 1), accepted=Ballot(1, 1), value=b"x")
    again.close()


TRIM_KEY = (0, TRIM)
TRIM_STATE = RegState(promised=Ballot(4, 1), accepted=Ballot(4, 1), value=b"t")


def test_a_failed_apply_changes_nothing(db: Path) -> None:
    s = SqliteStorage(db)
    a = RegState(promised=Ballot(1, 1))
    s.apply(Persist(puts=(((0, 0), a),)))
    bad = Persist(puts=(((0, 1), a), ((0, 2), "not a state")))  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        s.apply(bad)
    assert dict(s.items()) == {(0, 0): a}
    s.close()


# ---- the acceptor core over both storages ---------------------------------------------------------------

indices = st.lists(st.sampled_from([TRIM, META, 0, 1]), min_size=1, max_size=3, unique=True).map(tuple)
requests = st.one_of(
    st.builds(Prepare, req=st.just(1), segment=st.integers(0, 1), indices=indices, ballot=ballots),
    st.builds(
        Accept,
        req=st.just(2),
        segment=st.integers(0, 1),
        ballot=ballots,
        values=st.lists(st.tuples(st.sampled_from([TRIM, META, 0, 1]), st.sampled_from([b"a", b"b"])),
                        min_size=1, max_size=3, unique_by=lambda p: p[0]).map(tuple),
    ),
    st.builds(Read, req=st.just(3), segment=st.integers(0, 1), indices=indices),
)  # fmt: skip


@given(st.lists(requests, max_size=15))
@settings(max_examples=40)
def test_acceptor_on_sqlite_behaves_as_on_memory(reqs: list[Request]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "a.sqlite"
        disk = AcceptorNode(0, SqliteStorage(path))
        mem = AcceptorNode(0, MemoryStorage())
        for r in reqs:
            assert disk.handle(1, r) == mem.handle(1, r)
        disk.storage.close()
        reopened = SqliteStorage(path)
        assert dict(reopened.items()) == dict(mem.storage.items())
        reopened.close()
