"""SqliteStorage's range promises (storage format 3): a run of promise-only registers is one row, and the
store still means exactly what ``MemoryStorage`` means.

* Differential: random ``Persist`` sequences -- runs of promise-only puts (ranges), votes and single promises
  inside and across them, TRIM and floor registers, purges, duplicate keys, groups that commit or roll back --
  applied to a ``SqliteStorage`` and to a ``MemoryStorage``; after every step ``get`` on every key, ``items``,
  ``count`` and ``highest_promise`` agree, and so does the store reopened from its file after that step.
  Checked for bounded Hypothesis runs (``max_examples`` below), not in general.
* Rows: a batch capture of a 1,024-register segment writes one range row and no register row; votes and a
  later capture at a higher ballot keep the row count near the number of votes.
  The puts include an Accept's: votes at one ballot to a run of up to ``2 * UPSERT_ROWS + 3`` registers (the
  store's vote path: its rows written as multi-row statements of ``UPSERT_ROWS`` rows, the last shorter;
  several such runs in one group may name the same register, and the last must win).
* Planted bugs (catalogued in tests/mutants/catalog.py): a store that drops its range promises when it
  reopens, one whose range promises shadow the votes under them, one that writes only the first multi-row
  statement of a group's vote rows, and one whose vote path forgets the old states a rollback restores; the
  differential check finds all four.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from wormspace.errors import UsageError
from wormspace.layers import acceptor
from wormspace.layers.acceptor import (
    FLOOR_KEY,
    MIN_RANGE,
    UPSERT_ROWS,
    AcceptorNode,
    MemoryStorage,
    SqliteStorage,
    highest_promise,
)
from wormspace.layers.effects import Persist, RegKey
from wormspace.layers.messages import META, TRIM, ZERO_BALLOT, Accept, Ballot, Prepare, RegState

SEGMENTS = (0, 1)
INDICES = (TRIM, META, 0, 1, 2, 3, 4, 5)
ALL_KEYS = [FLOOR_KEY] + [(s, i) for s in SEGMENTS for i in INDICES]

ballots = st.one_of(st.just(ZERO_BALLOT), st.builds(Ballot, st.integers(1, 4), st.integers(0, 2)))


@st.composite
def reg_states(draw: st.DrawFn) -> RegState:
    promised = draw(ballots)
    if draw(st.booleans()):
        return RegState(promised=promised)
    accepted = draw(st.builds(Ballot, st.integers(1, 4), st.integers(0, 2)).filter(lambda b: b <= promised))
    return RegState(promised=promised, accepted=accepted, value=draw(st.binary(max_size=3)))


@st.composite
def vote_run(draw: st.DrawFn) -> list[tuple[RegKey, RegState]]:
    """An Accept's puts: votes at one ballot to a run of registers, long enough to need more than one of the
    store's multi-row statements; the values differ between runs, so the order of rows matters."""
    seg = draw(st.sampled_from(SEGMENTS))
    lo = draw(st.integers(0, 3))
    n = draw(st.integers(1, 2 * UPSERT_ROWS + 3))
    b = draw(st.builds(Ballot, st.integers(1, 4), st.integers(0, 2)))
    tag = draw(st.binary(min_size=1, max_size=1))
    return [((seg, i), RegState(promised=b, accepted=b, value=tag + i.to_bytes(2, "big"))) for i in range(lo, lo + n)]


@st.composite
def puts(draw: st.DrawFn) -> list[tuple[RegKey, RegState]]:
    """A run of promise-only puts (what a batch capture writes), a run of votes (an Accept's), or one put of
    any state."""
    kind = draw(st.integers(0, 4))
    if kind == 4:
        return draw(vote_run())
    if kind < 2:
        seg = draw(st.sampled_from(SEGMENTS))
        lo = draw(st.integers(META, 5))
        hi = draw(st.integers(lo + 1, 6))
        state = RegState(promised=draw(ballots))
        return [((seg, i), state) for i in range(lo, hi)]
    key = draw(st.sampled_from(ALL_KEYS))
    return [(key, draw(reg_states()))]


persists = st.builds(
    lambda parts, purge: Persist(puts=tuple(p for part in parts for p in part), purge=tuple(purge)),
    st.lists(puts(), min_size=0, max_size=3),
    st.lists(st.sampled_from(SEGMENTS), max_size=1, unique=True),
)
# A step: persists applied in one group, committed (True) or rolled back (False).
steps = st.lists(st.tuples(st.lists(persists, min_size=1, max_size=3), st.booleans()), max_size=10)


def _differs(store: SqliteStorage, model: MemoryStorage, when: str) -> str | None:
    for key in ALL_KEYS:
        if store.get(*key) != model.get(*key):
            return f"{when}: get{key} = {store.get(*key)}, expected {model.get(*key)}"
    if list(store.items()) != list(model.items()):
        return f"{when}: items {list(store.items())}, expected {list(model.items())}"
    if store.count() != len(model.regs):
        return f"{when}: count {store.count()}, expected {len(model.regs)}"
    if store.highest_promise() != highest_promise(MemoryStorage(model.regs)):
        return f"{when}: highest promise {store.highest_promise()}"
    return None


def differential(path: Path, sequence: list[tuple[list[Persist], bool]]) -> str | None:
    """Run ``sequence`` on a fresh store at ``path`` and on a MemoryStorage, reopening the store after every
    step; the first difference, or None."""
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    store = SqliteStorage(path)
    model = MemoryStorage()
    try:
        for n, (group, commit) in enumerate(sequence):
            try:
                with store.group():
                    for p in group:
                        store.apply(p)
                    if not commit:
                        raise KeyboardInterrupt  # any exception rolls the group back
            except KeyboardInterrupt:
                pass
            if commit:
                for p in group:
                    model.apply(p)
            found = _differs(store, model, f"after step {n}")
            if found:
                return found
            store.close()
            store = SqliteStorage(path)
            found = _differs(store, model, f"reopened after step {n}")
            if found:
                return found
        reader = SqliteStorage(path, read_only=True)
        try:
            found = _differs(reader, model, "snapshot reader")
        finally:
            reader.close()
        return found
    finally:
        store.close()


@given(steps)
@settings(max_examples=150)
def test_the_store_agrees_with_memory_and_with_itself_reopened(sequence: list[tuple[list[Persist], bool]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        assert differential(Path(d) / "a.sqlite", sequence) is None


def test_directed_runs_that_cut_and_shadow_ranges() -> None:
    """The cases the random runs must cover, written out: a vote inside a range, a range over older rows,
    a range cutting an older one in three, a purge, a duplicate key after a range."""
    p = RegState(promised=Ballot(1, 0))
    q = RegState(promised=Ballot(2, 0))
    v = RegState(promised=Ballot(2, 0), accepted=Ballot(2, 0), value=b"v")
    t = RegState(promised=Ballot(3, 0), accepted=Ballot(3, 0), value=b"t")
    seq = [
        [Persist(puts=tuple(((0, i), p) for i in range(META, 6)))],
        [Persist(puts=(((0, 2), v),))],
        [Persist(puts=(*(((0, i), q) for i in range(1, 4)), ((0, 3), v)))],
        [Persist(puts=(((0, 0), q), ((0, 1), q), ((1, 4), p), ((1, 5), p)))],
        [Persist(puts=(((0, TRIM), t),), purge=(0,)), Persist(puts=(((1, 5), v),))],
    ]
    with tempfile.TemporaryDirectory() as d:
        assert differential(Path(d) / "a.sqlite", [(g, True) for g in seq]) is None
        assert differential(Path(d) / "b.sqlite", [(g, k % 2 == 0) for k, g in enumerate(seq)]) is None


def test_a_row_below_the_range_it_shadows_leaves_the_highest_promise() -> None:
    """A register row with a lower promise than the range under it (no acceptor writes one, but ``Persist``
    allows it) hides that range's promise: once rows shadow the whole range, it no longer counts for
    ``highest_promise``, in the mirror and after a reopen."""
    z = RegState(promised=ZERO_BALLOT)
    o = RegState(promised=Ballot(1, 0))
    seq = [
        [Persist(puts=tuple(((0, i), o) for i in range(5)))],
        [Persist(puts=tuple(((0, i), z) for i in range(4))), Persist(puts=(((0, 4), z),))],
    ]
    with tempfile.TemporaryDirectory() as d:
        assert differential(Path(d) / "a.sqlite", [(g, True) for g in seq]) is None
        assert differential(Path(d) / "b.sqlite", [([p for g in seq for p in g], True)]) is None


# ---- rows on disk -------------------------------------------------------------------------------------


def _rows(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as c:
        regs = c.execute("SELECT COUNT(*) FROM registers").fetchone()[0]
        ranges = c.execute("SELECT COUNT(*) FROM ranges").fetchone()[0]
    return regs, ranges


def test_a_whole_segment_capture_is_one_row(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    node = AcceptorNode(0, SqliteStorage(path), fast=True)
    wos = 1024
    node.handle(1, Prepare(req=1, segment=3, ballot=Ballot(1, 1), indices=tuple(range(wos))))
    assert _rows(path) == (0, 1)
    for i in range(0, wos, 100):  # votes are register rows over the range
        node.handle(1, Accept(req=2, segment=3, ballot=Ballot(1, 1), values=((i, b"x"),)))
    assert _rows(path) == (11, 1)
    node.handle(1, Prepare(req=3, segment=3, ballot=Ballot(2, 2), indices=tuple(range(wos))))
    regs, ranges = _rows(path)
    assert regs == 11 and ranges == 11  # the gaps between the 11 votes, one row each (the old range is gone)
    node.storage.close()
    again = SqliteStorage(path)
    assert again.count() == wos
    assert again.rows() == (11, 11)
    assert again.get(3, 100) == RegState(promised=Ballot(2, 2), accepted=Ballot(1, 1), value=b"x")
    assert again.get(3, 101) == RegState(promised=Ballot(2, 2))
    assert again.get(3, wos) is None and again.get(4, 0) is None
    again.close()


def test_short_runs_stay_register_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.sqlite"
    s = SqliteStorage(path)
    p = RegState(promised=Ballot(1, 0))
    s.apply(Persist(puts=tuple(((0, i), p) for i in range(MIN_RANGE - 1))))
    s.apply(Persist(puts=(((0, TRIM), p), ((0, META), p), (FLOOR_KEY, p))))  # TRIM and the floor: never ranges
    s.close()
    assert _rows(path) == (MIN_RANGE - 1 + 3, 0)


@pytest.mark.parametrize(
    "row",
    [(0, 5, 5, 1, 0), (0, 2, 1, 1, 0), (-1, 0, 2, 1, 0), (0, TRIM, 0, 1, 0), (0, 0, 2, -3, 0), (0, 1, 3, 1, 0)],
    ids=["empty", "reversed", "negative-segment", "covers-trim", "bad-ballot", "overlaps"],
)
def test_refuses_a_range_row_that_is_not_a_range_promise(tmp_path: Path, row: tuple[int, ...]) -> None:
    path = tmp_path / "a.sqlite"
    s = SqliteStorage(path)
    s.apply(Persist(puts=tuple(((0, i), RegState(promised=Ballot(1, 0))) for i in range(0, 2))))
    s.close()
    with sqlite3.connect(path) as c:
        c.execute("INSERT OR REPLACE INTO ranges VALUES (?, ?, ?, ?, ?)", row)
    with pytest.raises(UsageError, match=r"range promise|invalid state"):
        SqliteStorage(path)


# ---- planted bugs ---------------------------------------------------------------------------------------


@pytest.fixture
def range_dropped_on_reopen(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Planted bug: the store loads its register rows but not its range rows when it opens."""
    original = SqliteStorage._read_rows

    def read_rows(self: SqliteStorage) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        regs, _ = original(self)
        return regs, []

    monkeypatch.setattr(SqliteStorage, "_read_rows", read_rows)
    yield


@pytest.fixture
def range_shadows_vote(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Planted bug: a register's range promise is looked up before its own row, so it hides the vote."""
    original = SqliteStorage.get

    def get(self: SqliteStorage, segment: int, index: int) -> RegState | None:
        ranges = self._ranges.get(segment)
        if ranges is not None:
            for lo, hi, state in zip(*ranges, strict=True):
                if lo <= index < hi:
                    return state
        return original(self, segment, index)

    monkeypatch.setattr(SqliteStorage, "get", get)
    yield


@pytest.fixture
def one_upsert_per_group(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Planted bug: the store writes the first multi-row statement of a group's vote rows and drops the rest
    (the mirror keeps them all, so the loss shows when the file is read again)."""

    def flush(self: SqliteStorage) -> None:
        rows, self._rows = self._rows[:UPSERT_ROWS], []
        if rows:
            self._db.execute(acceptor._upsert(len(rows)), [x for row in rows for x in row])

    monkeypatch.setattr(SqliteStorage, "_flush", flush)
    yield


@pytest.fixture
def votes_not_undone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Planted bug: the store's vote path does not remember the old states, so a rolled-back group leaves its
    votes in the mirror (the file is right: the transaction rolled back)."""
    original = SqliteStorage._set_votes

    def set_votes(self: SqliteStorage, puts: tuple[tuple[RegKey, RegState], ...], purged: set[int]) -> None:
        undo, self._undo = self._undo, None
        try:
            original(self, puts, purged)
        finally:
            self._undo = undo

    monkeypatch.setattr(SqliteStorage, "_set_votes", set_votes)
    yield


def _found_by_the_differential_check(tmp_path: Path) -> str:
    path = tmp_path / "m.sqlite"
    quick = settings(max_examples=400, phases=[Phase.generate], database=None, derandomize=True)  # first found
    bad = find(steps, lambda seq: differential(path, seq) is not None, settings=quick)
    found = differential(path, bad)
    assert found is not None
    return found


@pytest.mark.usefixtures("range_dropped_on_reopen")
def test_a_store_that_drops_range_promises_on_reopen_is_caught(tmp_path: Path) -> None:
    assert "reopened" in _found_by_the_differential_check(tmp_path)


@pytest.mark.usefixtures("range_shadows_vote")
def test_a_range_promise_that_shadows_a_vote_is_caught(tmp_path: Path) -> None:
    assert "get" in _found_by_the_differential_check(tmp_path)


@pytest.mark.usefixtures("one_upsert_per_group")
def test_a_store_that_writes_one_upsert_of_a_group_is_caught(tmp_path: Path) -> None:
    assert "reopened" in _found_by_the_differential_check(tmp_path)


@pytest.mark.usefixtures("votes_not_undone")
def test_a_vote_path_that_forgets_the_undo_is_caught(tmp_path: Path) -> None:
    found = _found_by_the_differential_check(tmp_path)
    assert found.startswith("after step")
