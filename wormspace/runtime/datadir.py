"""An acceptor's data directory and its lock.

Rules:

1. A data directory holds ``acceptor.sqlite`` (its registers and identity), ``identity.json`` (the same
   identity, see ``wormspace.identity``), ``acceptor.pid`` (its pid, and an exclusive ``flock`` while it
   runs: two processes never serve one directory) and, when started by ``LocalCluster``, ``acceptor.log``.
2. Liveness is judged by the lock, not by the pid alone: a stale pid file or a recycled pid never counts.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from wormspace.errors import UsageError

SQLITE_NAME = "acceptor.sqlite"
PID_NAME = "acceptor.pid"
LOG_NAME = "acceptor.log"



def lock_data_dir(data_dir: str | os.PathLike[str], wait: float = 1.0) -> int:
    """Take the data directory's exclusive lock and write our pid into ``acceptor.pid``; returns the fd to
    keep open while serving. ``UsageError`` if another live process holds it, or if the file cannot be
    opened (permissions, a directory in its place)."""
    path = Path(data_dir) / PID_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        why = e.strerror or e
        raise UsageError(f"cannot open the lock file {path}: {why}; fix the data dir's permissions") from None
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:  # (a status probe holds it for microseconds only)
                other = _read_pid(path)
                os.close(fd)
                raise UsageError(f"data dir {data_dir} is in use by process {other or '?'}") from None
            time.sleep(0.02)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def unlock_data_dir(fd: int) -> None:
    """Empty the pid file and release the lock."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    os.close(fd)


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def running_pid(data_dir: str | os.PathLike[str]) -> int | None:
    """The pid of the live acceptor serving ``data_dir``, or ``None``. Judged by the lock, not the pid
    alone, so a stale pid file or a recycled pid never counts as alive."""
    path = Path(data_dir) / PID_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(path) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
