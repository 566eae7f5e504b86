"""Acceptor identity: which cluster and which acceptor a data directory belongs to, and which incarnation.

An acceptor's identity is ``(cluster_id, acceptor_id, incarnation)``. It is written twice when a data
directory is initialised: into the SQLite file (table ``identity``) and beside it, in ``DIR/identity.json``.
The two copies guard against different accidents:

Rule 1. ``identity.json`` is the evidence that the directory has served. If it is there, the database must be
        there too, non-empty, readable, and carry the same identity; otherwise the promises and votes the
        acceptor made are gone, and serving would let a chosen value be lost (docs/operations.md). Such a
        start is refused (``IdentityError``), never repaired.
Rule 2. The identity must match what the acceptor is started as: the ``--id`` and the cluster file's
        ``cluster_id``. A directory (or database) of another acceptor or another cluster is refused.
Rule 3. A new directory is initialised only when asked (``serve --init``, ``LocalCluster`` creating a
        cluster): ``init_data_dir`` refuses a directory that already holds an identity or a database.
Rule 4. The database is checked with SQLite's ``PRAGMA quick_check`` before it is used: a damaged file is an
        ``IdentityError`` naming the file, not a traceback. A file this process may not open, read or write
        (permissions, a full or failing disk, a directory in its place) is refused as such, never called
        damaged: its content was not judged (``check_access``).

The incarnation starts at 1 and is raised by the replacement procedure of docs/operations.md; it travels in
the wire hello so clients and operators can tell a replaced acceptor from its predecessor.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from wormspace.errors import UsageError

IDENTITY_NAME = "identity.json"
SQLITE_NAME = "acceptor.sqlite"
_CLUSTER_ID = re.compile(r"[0-9A-Za-z_-]{8,64}")
_DB_SCHEMA = "CREATE TABLE IF NOT EXISTS identity (key TEXT PRIMARY KEY, value NOT NULL)"


class IdentityError(UsageError):
    """A data directory or database is missing, empty, damaged, or belongs to another acceptor or cluster."""


def check_cluster_id(value: object, where: str = "cluster_id") -> str:
    """``value`` if it is a valid cluster id (8 to 64 of ``[0-9A-Za-z_-]``), else ``UsageError``."""
    if type(value) is not str or not _CLUSTER_ID.fullmatch(value):
        raise UsageError(f"{where} must be 8 to 64 characters of [0-9A-Za-z_-], got {value!r:.80}")
    return value


def new_cluster_id() -> str:
    """A fresh random cluster id (128 bits, hex)."""
    return secrets.token_hex(16)


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Who an acceptor is: its cluster, its id in the cluster, and its incarnation (1 for the first disk)."""

    cluster_id: str
    acceptor_id: int
    incarnation: int = 1

    def __post_init__(self) -> None:
        check_cluster_id(self.cluster_id)
        if type(self.acceptor_id) is not int or not 0 <= self.acceptor_id < 1 << 31:
            raise UsageError(f"acceptor id must be an int in [0, 2**31), got {self.acceptor_id!r}")
        if type(self.incarnation) is not int or not 1 <= self.incarnation < 1 << 31:
            raise UsageError(f"incarnation must be an int in [1, 2**31), got {self.incarnation!r}")

    def describe(self) -> str:
        return f"acceptor {self.acceptor_id} (incarnation {self.incarnation}) of cluster {self.cluster_id}"

    def as_dict(self) -> dict[str, object]:
        return {"cluster_id": self.cluster_id, "acceptor_id": self.acceptor_id, "incarnation": self.incarnation}

    @classmethod
    def from_dict(cls, raw: object, where: str) -> Identity:
        if type(raw) is not dict or set(raw) != {"cluster_id", "acceptor_id", "incarnation"}:
            raise IdentityError(f"{where}: not an acceptor identity")
        try:
            return cls(cluster_id=raw["cluster_id"], acceptor_id=raw["acceptor_id"], incarnation=raw["incarnation"])
        except UsageError as e:
            raise IdentityError(f"{where}: {e}") from None


# ---- the two copies -------------------------------------------------------------------------------------


def read_identity_file(data_dir: str | os.PathLike[str]) -> Identity | None:
    """``DIR/identity.json``, or ``None`` if there is none. ``IdentityError`` if it is unreadable."""
    path = Path(data_dir) / IDENTITY_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise IdentityError(f"{path}: cannot read: {e}") from None
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise IdentityError(f"{path}: not valid JSON: {e}") from None
    return Identity.from_dict(raw, str(path))


def write_identity_file(data_dir: str | os.PathLike[str], ident: Identity) -> None:
    """Write ``DIR/identity.json`` durably (temporary file, fsync, rename, fsync of the directory)."""
    d = Path(data_dir)
    path = d / IDENTITY_NAME
    tmp = d / f".{IDENTITY_NAME}.tmp"
    data = (json.dumps(ident.as_dict(), sort_keys=True) + "\n").encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


_ACCESS_CODES = frozenset({3, 8, 10, 13, 14, 23})
"""SQLite's primary result codes that say the file could not be opened, read or written (PERM, READONLY,
IOERR, FULL, CANTOPEN, AUTH), not that its content is damaged."""


def _db_error(path: Path, e: sqlite3.Error) -> IdentityError:
    code = getattr(e, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _ACCESS_CODES:
        return IdentityError(
            f"{path} cannot be opened, read or written ({e}): check the permissions of the data dir, of this"
            " file and of its -wal and -shm files, and the disk; its content was not judged"
        )
    return IdentityError(f"{path} is damaged or not an acceptor database ({e}); its state cannot be trusted")


def check_access(data_dir: str | os.PathLike[str]) -> None:
    """``IdentityError`` unless this process may create files in ``data_dir`` and read and write the database
    and the SQLite files beside it (an acceptor that cannot store durably must not start: it would fail at
    the first promise). Only permissions are checked here, never the content."""
    d = Path(data_dir)
    how = f"this process (uid {os.geteuid()}) may not"
    if not os.access(d, os.R_OK | os.W_OK | os.X_OK):
        raise IdentityError(f"{how} read and write the data dir {d}: fix its permissions")
    for p in (d / SQLITE_NAME, d / f"{SQLITE_NAME}-wal", d / f"{SQLITE_NAME}-shm"):
        if not os.path.lexists(p):
            continue
        if not p.is_file():
            raise IdentityError(f"{p} is not a regular file: move it away (its content was not judged)")
        if not os.access(p, os.R_OK | os.W_OK):
            raise IdentityError(f"{how} read and write {p}: fix its permissions (its content was not judged)")


def read_db_identity(db_path: str | os.PathLike[str]) -> Identity | None:
    """The identity recorded in the database, ``None`` if it records none. Runs ``PRAGMA quick_check`` first
    (Rule 4): ``IdentityError`` on a damaged file. The file must exist."""
    path = Path(db_path)
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as e:
        raise _db_error(path, e) from None
    try:
        rows = db.execute("PRAGMA quick_check").fetchall()
        if rows != [("ok",)]:
            lines = [line.strip() for r in rows for line in str(r[0]).splitlines() if line.strip()]
            detail = "; ".join(lines[:3]) + (f"; ... ({len(lines) - 3} more)" if len(lines) > 3 else "")
            raise IdentityError(f"{path} is damaged (SQLite quick_check: {detail}); its state cannot be trusted")
        has = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'identity'").fetchone()
        if has is None:
            return None
        raw = dict(db.execute("SELECT key, value FROM identity").fetchall())
    except sqlite3.Error as e:
        raise _db_error(path, e) from None
    finally:
        db.close()
    if not raw:
        return None
    return Identity.from_dict(raw, f"{path} (table identity)")


def write_db_identity(db_path: str | os.PathLike[str], ident: Identity) -> None:
    """Record ``ident`` in the database (one transaction, ``synchronous=FULL``); refuses a database that
    already records an identity."""
    path = Path(db_path)
    try:
        db = sqlite3.connect(str(path), isolation_level=None)
    except sqlite3.Error as e:
        raise _db_error(path, e) from None
    try:
        db.execute("PRAGMA synchronous=FULL")
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(_DB_SCHEMA)
            if db.execute("SELECT COUNT(*) FROM identity").fetchone()[0]:
                raise IdentityError(f"{path} already records an identity")
            db.executemany("INSERT INTO identity VALUES (?, ?)", list(ident.as_dict().items()))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    except sqlite3.Error as e:
        raise _db_error(path, e) from None
    finally:
        db.close()


# ---- initialising and checking a data directory ---------------------------------------------------------


def _db_files(d: Path) -> list[Path]:
    return [p for p in (d / SQLITE_NAME, d / f"{SQLITE_NAME}-wal") if p.exists()]


def init_data_dir(data_dir: str | os.PathLike[str], ident: Identity) -> Identity:
    """Make ``data_dir`` a new acceptor (Rule 3): an empty database carrying ``ident``, then
    ``identity.json``. Creates the directory if needed; refuses one that holds an identity or a database."""
    from wormspace.layers.acceptor import SqliteStorage

    d = Path(data_dir)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create the data dir {d}: {e.strerror or e}") from None
    if (d / IDENTITY_NAME).exists() or _db_files(d):
        raise IdentityError(
            f"{d} already holds an acceptor ({IDENTITY_NAME} or {SQLITE_NAME}); initialising is only for a new,"
            " empty data dir"
        )
    SqliteStorage(d / SQLITE_NAME).close()
    write_db_identity(d / SQLITE_NAME, ident)
    write_identity_file(d, ident)
    return ident


def check_data_dir(
    data_dir: str | os.PathLike[str], *, acceptor_id: int, cluster_id: str | None = None
) -> Identity:
    """The identity of an initialised data directory after Rules 1, 2 and 4; ``IdentityError`` naming the
    reason otherwise. ``cluster_id=None`` accepts the directory's cluster (``serve`` without a cluster file)."""
    d = Path(data_dir)
    if not d.is_dir():
        raise IdentityError(f"data dir {d} does not exist; give --init to create a new acceptor there")
    ident = read_identity_file(d)
    db = d / SQLITE_NAME
    if ident is None:
        if _db_files(d):
            raise IdentityError(
                f"{db} exists but {d / IDENTITY_NAME} does not: a database of unknown origin (copied in, or from"
                " a version without acceptor identity); refusing to serve it"
            )
        raise IdentityError(f"{d} holds no acceptor (no {IDENTITY_NAME}); give --init to create a new acceptor")
    if ident.acceptor_id != acceptor_id:
        raise IdentityError(f"{d} belongs to acceptor {ident.acceptor_id}, not {acceptor_id}")
    if cluster_id is not None and ident.cluster_id != cluster_id:
        raise IdentityError(f"{d} belongs to cluster {ident.cluster_id}, not {cluster_id}")
    lost = "the promises and votes of this acceptor are lost; replace it by the procedure in docs/operations.md"
    if not db.exists():
        raise IdentityError(f"{db} is missing but {IDENTITY_NAME} shows this acceptor has served: {lost}")
    if db.stat().st_size == 0:
        raise IdentityError(f"{db} is empty (0 bytes) but {IDENTITY_NAME} shows this acceptor has served: {lost}")
    check_access(d)
    in_db = read_db_identity(db)
    if in_db is None:
        raise IdentityError(f"{db} records no identity: it is not this acceptor's database ({lost})")
    if in_db != ident:
        raise IdentityError(
            f"{db} is the database of {in_db.describe()}, but {IDENTITY_NAME} says {ident.describe()}"
        )
    return ident


__all__ = [
    "IDENTITY_NAME",
    "Identity",
    "IdentityError",
    "check_access",
    "check_cluster_id",
    "check_data_dir",
    "init_data_dir",
    "new_cluster_id",
    "read_db_identity",
    "read_identity_file",
    "write_db_identity",
    "write_identity_file",
]
