"""The store's write-ahead log stays short, and the server checkpoints it after the replies that made the
checkpoint due, never inside the commit a reply waits for (``SqliteStorage.checkpoint_due`` / ``checkpoint``,
tcp Rule 2)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wormspace.errors import UsageError
from wormspace.identity import Identity
from wormspace.layers.acceptor import CHECKPOINT_DUE_PAGES, WAL_CHECKPOINT_PAGES, AcceptorNode, SqliteStorage
from wormspace.layers.effects import Persist
from wormspace.layers.messages import Accept, Accepted, Ballot, Message, RegState
from wormspace.layers.tcp import AcceptorServer, TcpTransport, run

CID = "0123456789abcdef0123456789abcdef"
IDENT = Identity(cluster_id=CID, acceptor_id=0)
FRAME = 4096 + 24  # a log page and its frame header


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "acceptor.sqlite"


def _vote(seg: int, i: int, value: bytes = b"v") -> Persist:
    return Persist(puts=(((seg, i), RegState(promised=Ballot(1, 0), accepted=Ballot(1, 0), value=value)),))


def test_a_checkpoint_is_due_after_about_its_pages_and_resets(db: Path) -> None:
    s = SqliteStorage(db)
    assert s._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_CHECKPOINT_PAGES
    draws = set()
    for _ in range(3):
        n = 0
        while not s.checkpoint_due():
            s.apply(_vote(5, n))
            n += 1
        assert CHECKPOINT_DUE_PAGES // 4 <= n <= 3 * CHECKPOINT_DUE_PAGES // 4 + 1  # two pages a commit
        draws.add(n)
        s.checkpoint()
        assert not s.checkpoint_due()
    assert len(draws) > 1  # each checkpoint draws its next point anew
    for i in range(24):  # 1 KiB values: the estimate counts their bytes (18 pages a commit here)
        s.apply(Persist(puts=tuple(((6, 64 * i + k), _vote(6, 0, bytes(1024)).puts[0][1]) for k in range(64))))
    assert s.checkpoint_due()
    with s.group(), pytest.raises(UsageError, match="inside group"):
        s.checkpoint()
    s.close()
    s.checkpoint()  # closed: nothing to do


def test_the_log_stops_growing_when_checkpointed_as_due(db: Path) -> None:
    """As a server runs it: one-register commits, a checkpoint whenever due. The log stops growing after
    its first checkpoint and is written again from its start; nothing committed is lost to the checkpoints."""
    s = SqliteStorage(db)
    wal = Path(str(db) + "-wal")
    sizes = []
    for i in range(600):
        s.apply(_vote(5, i))
        if s.checkpoint_due():
            s.checkpoint()
        sizes.append(wal.stat().st_size)
    assert max(sizes) <= 32 + (3 * CHECKPOINT_DUE_PAGES // 2 + 8) * FRAME
    grew = sum(1 for a, b in itertools.pairwise(sizes) if b > a)
    assert grew <= 3 * CHECKPOINT_DUE_PAGES // 4 + 2  # then written again from its start, up to its length
    s.close()
    s = SqliteStorage(db)
    assert s.count() == 600 and s.get(5, 599) == _vote(5, 599).puts[0][1]
    s.close()


def test_without_the_servers_checkpoints_sqlite_bounds_the_log_itself(db: Path) -> None:
    s = SqliteStorage(db)
    wal = Path(str(db) + "-wal")
    for i in range(WAL_CHECKPOINT_PAGES):
        s.apply(_vote(5, i))
    assert wal.stat().st_size <= 32 + (WAL_CHECKPOINT_PAGES + 8) * FRAME
    s.close()


# ---- the server: checkpoints after the replies ----------------------------------------------------------


class Recording(SqliteStorage):
    events: list[str]

    def apply(self, persist: Persist) -> None:
        self.events.append("apply")
        super().apply(persist)

    def checkpoint(self) -> None:
        self.events.append("checkpoint")
        super().checkpoint()


def checkpoints_follow_replies(events: list[str]) -> bool:
    """Every checkpoint came right after a reply was written (not between a change and its reply)."""
    return all(k > 0 and events[k - 1] == "reply" for k, e in enumerate(events) if e == "checkpoint")


def _serve_one_at_a_time(db: Path, writes: int) -> list[str]:
    storage = Recording(db)
    storage.events = events = []
    server = AcceptorServer(AcceptorNode(0, storage, fast=True), "127.0.0.1", 0, identity=IDENT)
    send = server._send

    def recorded_send(replies: list[Message], peer: str, writer: Any) -> None:
        events.append("reply")
        send(replies, peer, writer)

    server._send = recorded_send  # type: ignore[method-assign]

    async def scenario() -> None:
        await server.start()
        got: asyncio.Queue[Message] = asyncio.Queue()
        t = TcpTransport({0: ("127.0.0.1", server.port)}, lambda src, m: got.put_nowait(m), cluster_id=CID)
        try:
            for i in range(writes):  # one at a time: each reply awaited before the next request
                t.send(0, Accept(req=i, segment=3, ballot=Ballot(1, 1), values=((i, b"v"),)))
                reply = await asyncio.wait_for(got.get(), 10)
                assert isinstance(reply, Accepted)
            await asyncio.sleep(0.01)
        finally:
            await t.close()
            await server.close()
            storage.close()

    run(scenario())
    return events


@pytest.mark.timeout(60)
def test_the_server_checkpoints_after_the_replies_that_made_it_due(db: Path) -> None:
    writes = 2 * (3 * CHECKPOINT_DUE_PAGES // 4) + 5  # each write two log pages: two checkpoints at least
    events = _serve_one_at_a_time(db, writes)
    assert events.count("checkpoint") >= 2
    assert checkpoints_follow_replies(events)
    s = SqliteStorage(db)
    assert s.count() == writes
    s.close()


@pytest.mark.timeout(60)
def test_mutant_a_checkpoint_before_the_reply_is_caught(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The planted bug: the server checkpoints inside the batch, before its replies are written (as SQLite's
    own checkpoint inside a commit would); the check above sees it."""
    apply = AcceptorServer._apply

    def checkpoint_first(self: AcceptorServer, src: int, reqs: list[Any]) -> list[Message]:
        replies = apply(self, src, reqs)
        storage = self.node.storage
        assert isinstance(storage, SqliteStorage)
        if storage.checkpoint_due():
            storage.checkpoint()
        return replies

    monkeypatch.setattr(AcceptorServer, "_apply", checkpoint_first)
    events = _serve_one_at_a_time(db, 3 * CHECKPOINT_DUE_PAGES // 4 + 5)
    assert "checkpoint" in events
    assert not checkpoints_follow_replies(events)


@pytest.mark.timeout(60)
def test_a_busy_server_puts_its_checkpoint_off_until_a_turn_without_frames(db: Path) -> None:
    storage = Recording(db)
    events: list[str] = []
    storage.events = events
    server = AcceptorServer(AcceptorNode(0, storage, fast=True), "127.0.0.1", 0, identity=IDENT)

    async def scenario() -> None:
        await server.start()
        try:
            server._checkpoint_scheduled = True  # as ``_apply`` leaves it when the checkpoint became due
            server._checkpoint_frames = server.frames
            asyncio.get_running_loop().call_soon(server._checkpoint)
            for _ in range(3):  # a frame comes before each turn: put off
                server.frames += 1
                await asyncio.sleep(0)
                assert events == [] and server._checkpoint_scheduled
            await asyncio.sleep(0)  # a turn without frames
            await asyncio.sleep(0)
            assert events == ["checkpoint"] and not server._checkpoint_scheduled
        finally:
            await server.close()
            storage.close()

    run(scenario())
