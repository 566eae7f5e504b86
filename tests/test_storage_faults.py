"""Storage faults at an acceptor's start, and acceptors whose starter dies: real ``wormspace serve`` processes.

A data directory the acceptor's user may not read or write, or with something else in place of a file, is
refused with one ``cannot start`` line and exit code 2, never called damaged (an operator told "damaged"
would replace a healthy acceptor); a damaged file's ``quick_check`` findings fit on that one line; acceptors
of a ``LocalCluster`` stop by themselves when the process that started them is killed.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wormspace.identity import Identity, IdentityError, check_data_dir, init_data_dir, read_db_identity
from wormspace.runtime.datadir import PID_NAME, SQLITE_NAME

CID = "storagefaults01"
ROOT = str(Path(__file__).resolve().parent.parent)


def _serve(data: Path, *, prefix: tuple[str, ...] = (), timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``wormspace serve`` on ``data``; it must refuse (exit before ``timeout``)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    cmd = [*prefix, sys.executable, "-m", "wormspace", "serve", "--id", "0", "--listen", "127.0.0.1:0"]
    cmd += ["--data", str(data), "--cluster-id", CID]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)


def _one_refusal(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "acceptor 0 cannot start: " in lines[0], proc.stderr
    return lines[0]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "a0"
    init_data_dir(d, Identity(cluster_id=CID, acceptor_id=0))
    return d


def test_a_directory_in_place_of_the_lock_file_is_a_clear_refusal(data: Path) -> None:
    (data / PID_NAME).unlink(missing_ok=True)
    (data / PID_NAME).mkdir()
    line = _one_refusal(_serve(data))
    assert f"cannot open the lock file {data / PID_NAME}" in line


@pytest.mark.parametrize("name", [f"{SQLITE_NAME}-wal", f"{SQLITE_NAME}-shm"])
def test_a_directory_in_place_of_a_sqlite_file_is_refused_not_called_damaged(data: Path, name: str) -> None:
    (data / name).mkdir()
    line = _one_refusal(_serve(data))
    assert f"{data / name} is not a regular file" in line and "damaged" not in line


def test_a_database_sqlite_cannot_open_is_not_called_damaged(tmp_path: Path) -> None:
    with pytest.raises(IdentityError) as e:
        read_db_identity(tmp_path / "no-such-dir" / SQLITE_NAME)
    assert "cannot be opened, read or written" in str(e.value) and "damaged" not in str(e.value)


def test_the_findings_of_quick_check_fit_on_one_line(data: Path) -> None:
    db = sqlite3.connect(data / SQLITE_NAME)
    db.execute("CREATE TABLE filler (k INTEGER PRIMARY KEY, v BLOB)")
    db.executemany("INSERT INTO filler VALUES (?, ?)", [(k, os.urandom(600)) for k in range(3000)])
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    root, size = db.execute(
        "SELECT rootpage, (SELECT page_size FROM pragma_page_size) FROM sqlite_master WHERE name = 'filler'"
    ).fetchone()
    db.close()
    with open(data / SQLITE_NAME, "r+b") as f:  # garble the filler's root: its ~100 leaves are lost
        f.seek(size * (root - 1))
        f.write(random.Random(7).randbytes(size))
    with pytest.raises(IdentityError) as e:
        check_data_dir(data, acceptor_id=0, cluster_id=CID)
    assert "is damaged (SQLite quick_check: " in str(e.value) and "\n" not in str(e.value)
    line = _one_refusal(_serve(data))
    assert "is damaged" in line


# ---- permissions: only meaningful for a user other than root (root may read and write anything) --------


def _unprivileged() -> tuple[str, ...] | None:
    """A command prefix running as a user without root's powers, or ``None`` if there is none."""
    if os.geteuid() != 0:
        return ()
    if shutil.which("setpriv") is None:
        return None
    return ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


@pytest.fixture
def shared_data() -> Iterator[Path]:
    """A data dir an unprivileged user can reach and own (pytest's tmp_path is private to root)."""
    prefix = _unprivileged()
    if prefix is None:
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    top = Path(tempfile.mkdtemp(prefix="wormspace-perm-"))
    try:
        top.chmod(0o755)
        d = top / "a0"
        init_data_dir(d, Identity(cluster_id=CID, acceptor_id=0))
        (d / PID_NAME).touch()
        if os.geteuid() == 0:
            for p in (d, *d.iterdir()):
                os.chown(p, 65534, 65534)
        yield d
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.parametrize(
    ("target", "mode", "expected"),
    [
        (SQLITE_NAME, 0o444, "may not read and write"),
        (SQLITE_NAME, 0o000, "may not read and write"),
        (".", 0o555, "may not read and write the data dir"),
        (PID_NAME, 0o000, "cannot open the lock file"),
    ],
)
def test_a_data_dir_the_user_may_not_write_is_refused_at_start(
    shared_data: Path, target: str, mode: int, expected: str
) -> None:
    prefix = _unprivileged()
    assert prefix is not None
    (shared_data / target).chmod(mode)
    try:
        line = _one_refusal(_serve(shared_data, prefix=prefix))
    finally:
        (shared_data / target).chmod(0o755 if target == "." else 0o644)
    assert expected in line and "damaged" not in line


# ---- acceptors of a LocalCluster whose starter dies ----------------------------------------------------

_STARTER = """
import sys, time
from wormspace.runtime.supervise import LocalCluster
c = LocalCluster(sys.argv[1], 2, startup_timeout=30).start()
print(" ".join(str(c.pid(i)) for i in range(2)), flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"
    return True


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_acceptors_stop_when_the_process_that_started_them_is_killed(tmp_path: Path, sig: signal.Signals) -> None:
    env = dict(os.environ, PYTHONPATH=ROOT)
    starter = subprocess.Popen(
        [sys.executable, "-c", _STARTER, str(tmp_path / "c")], stdout=subprocess.PIPE, text=True, env=env
    )
    pids: list[int] = []
    try:
        assert starter.stdout is not None
        pids = [int(p) for p in starter.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
        starter.send_signal(sig)
        starter.wait(timeout=10)
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in pids), "an acceptor outlived the process that started it"
        for i in range(2):
            log = (tmp_path / "c" / f"acceptor-{i}" / "acceptor.log").read_text()
            assert "is gone" in log and "stopping on parent exit" in log and "storage closed" in log
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait(timeout=10)
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
