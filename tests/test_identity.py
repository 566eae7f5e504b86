"""Acceptor identity: a data dir that has served never starts on a missing, empty, foreign or damaged
database; ``serve`` creates nothing unless given ``--init``; the lost-write sequence with real processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from wormspace import Cluster, Indeterminate
from wormspace.identity import (
    IDENTITY_NAME,
    Identity,
    IdentityError,
    check_data_dir,
    init_data_dir,
    read_db_identity,
)
from wormspace.layers.acceptor import SqliteStorage
from wormspace.layers.effects import Persist
from wormspace.layers.messages import Ballot, RegState
from wormspace.runtime.supervise import DeployError

T = TypeVar("T")
CID = "0123456789abcdef0123456789abcdef"
OTHER = "fedcba9876543210fedcba9876543210"
DB = "acceptor.sqlite"


def _fill(d: Path, n: int = 2000) -> None:
    b = Ballot(1, 1)
    store = SqliteStorage(d / DB)
    try:
        store.apply(Persist(puts=tuple(((1, i), RegState(promised=b, accepted=b, value=b"x" * 100)) for i in range(n))))
    finally:
        store.close()


def _fresh_db(path: Path) -> None:
    path.unlink()
    SqliteStorage(path).close()


def _corrupt_middle(path: Path) -> None:
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(size // 2)
        f.write(b"\xff" * 64)


# ---- the checks, one accident each ----------------------------------------------------------------------


def test_an_initialised_dir_checks_and_both_copies_agree(tmp_path: Path) -> None:
    ident = init_data_dir(tmp_path / "a", Identity(cluster_id=CID, acceptor_id=3))
    assert check_data_dir(tmp_path / "a", acceptor_id=3, cluster_id=CID) == ident
    assert check_data_dir(tmp_path / "a", acceptor_id=3) == ident
    assert read_db_identity(tmp_path / "a" / DB) == ident
    with pytest.raises(IdentityError, match="already holds an acceptor"):
        init_data_dir(tmp_path / "a", ident)


ACCIDENTS: dict[str, tuple[Callable[[Path, Path], object], str]] = {
    "deleted": (lambda d, o: (d / DB).unlink(), "is missing but identity.json shows this acceptor has served"),
    "truncated": (lambda d, o: (d / DB).write_bytes(b""), r"is empty \(0 bytes\)"),
    "corrupted": (lambda d, o: _corrupt_middle(d / DB), "is damaged"),
    "replaced by another acceptor's": (lambda d, o: shutil.copy(o / DB, d / DB), "is the database of acceptor 1"),
    "without identity (older version)": (lambda d, o: _fresh_db(d / DB), "records no identity"),
    "identity file of another acceptor": (
        lambda d, o: shutil.copy(o / IDENTITY_NAME, d / IDENTITY_NAME),
        "belongs to acceptor 1, not 0",
    ),
    "identity file of another cluster": (
        lambda d, o: (d / IDENTITY_NAME).write_text(
            f'{{"cluster_id": "{OTHER}", "acceptor_id": 0, "incarnation": 1}}'
        ),
        f"belongs to cluster {OTHER}, not {CID}",
    ),
    "identity file lost, database kept": (
        lambda d, o: (d / IDENTITY_NAME).unlink(),
        "exists but .*identity.json does not",
    ),
    "identity file garbled": (lambda d, o: (d / IDENTITY_NAME).write_text("{"), "not valid JSON"),
}


@pytest.mark.parametrize("accident", sorted(ACCIDENTS))
def test_a_dir_that_has_served_refuses_a_damaged_or_foreign_database(tmp_path: Path, accident: str) -> None:
    me, other = tmp_path / "a0", tmp_path / "a1"
    init_data_dir(me, Identity(cluster_id=CID, acceptor_id=0))
    init_data_dir(other, Identity(cluster_id=CID, acceptor_id=1))
    _fill(me)
    _fill(other)
    damage, why = ACCIDENTS[accident]
    damage(me, other)
    with pytest.raises(IdentityError, match=why):
        check_data_dir(me, acceptor_id=0, cluster_id=CID)


def test_a_missing_or_blank_dir_is_not_an_acceptor(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="does not exist; give --init"):
        check_data_dir(tmp_path / "nope", acceptor_id=0)
    (tmp_path / "blank").mkdir()
    with pytest.raises(IdentityError, match="holds no acceptor"):
        check_data_dir(tmp_path / "blank", acceptor_id=0)


# ---- `wormspace serve`: exit 2, one clear line, nothing created ------------------------------------------


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "wormspace", "serve", "--id", "0", "--listen", "127.0.0.1:0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def _one_line(out: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    return lines[0]


def test_serve_creates_nothing_without_init(tmp_path: Path) -> None:
    typo = tmp_path / "acceptr-0"
    out = serve("--data", str(typo), "--cluster-id", CID)
    assert out.returncode == 2
    assert "acceptor 0 cannot start: data dir" in _one_line(out) and "give --init" in out.stderr
    assert not typo.exists()
    out = serve("--data", str(typo), "--init")
    assert out.returncode == 2 and "--init needs the cluster id" in _one_line(out)


@pytest.mark.parametrize("accident", ["truncated", "corrupted", "deleted"])
def test_serve_refuses_a_damaged_database_with_one_line(tmp_path: Path, accident: str) -> None:
    d = tmp_path / "a0"
    init_data_dir(d, Identity(cluster_id=CID, acceptor_id=0))
    _fill(d)
    ACCIDENTS[accident][0](d, d)
    out = serve("--data", str(d), "--cluster-id", CID)
    assert out.returncode == 2
    assert "acceptor 0 cannot start: " in _one_line(out)
    assert not (d / DB).exists() or accident != "deleted", "a refused start must not create a database"


# ---- the lost-write sequence with real processes ---------------------------------------------------------


def _damage_db(path: Path, how: str) -> None:
    if how == "truncated":
        path.write_bytes(b"")
    elif how == "deleted":
        path.unlink()
        for extra in ("-wal", "-shm"):
            Path(f"{path}{extra}").unlink(missing_ok=True)
    else:
        raise AssertionError(how)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["truncated", "deleted"])
def test_an_acceptor_that_lost_its_database_refuses_to_restart_and_no_acknowledged_write_is_lost(
    tmp_path: Path, how: str
) -> None:
    with Cluster.local(acceptors=3, data_dir=str(tmp_path / "c"), wos_size=8) as cluster:
        ws = cluster.client()
        seg = ws.alloc(b"owner")
        addr = ws.address(seg, 0)
        cluster.crash(2)
        ws.write(addr, b"v", ws.capture(addr))  # acknowledged by acceptors 0 and 1
        cluster.restart(2)
        cluster.crash(1)
        db = cluster.local.db_path(1)
        _damage_db(db, how)
        with pytest.raises(DeployError, match="exited with code 2") as e:
            cluster.restart(1)
        assert "acceptor 1 cannot start:" in str(e.value)
        assert cluster.local.exit_code(1) == 2 and not cluster.local.alive(1)
        cluster.crash(0)  # a crash, not a disk loss: 0 restarts on its database
        cluster.restart(0)
        reader = cluster.client()
        assert _retry(lambda: reader.read(addr)) == b"v", "the acknowledged write must survive"
        assert _retry(lambda: reader.alloc(b"thief", segment=seg)) is False, "the segment must stay allocated"
        if how == "deleted":
            assert not db.exists(), "a refused start must not create a fresh database"
        assert os.path.getsize(cluster.local.db_path(0)) > 0


def _retry(op: Callable[[], T], tries: int = 5) -> T:
    """``op`` again after ``Indeterminate``: with acceptor 1 down, a round that meets one refusal (a promise at
    a higher ballot) and one silent acceptor times out; the next call starts above the ballot it learnt."""
    for _ in range(tries - 1):
        try:
            return op()
        except Indeterminate:
            continue
    return op()
