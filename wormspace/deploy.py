"""Real deployments: the cluster file, local acceptor processes, and the client driver over TCP.

The cluster file (``cluster.toml``) names every acceptor and the knobs every node must agree on::

    cluster_id = "5f0c..."     # required: this cluster's id (8-64 of [0-9A-Za-z_-]; `cluster up` makes one)
    wos_size = 1024            # data registers per segment
    groups = 1                 # acceptor groups; segment s lives on group s mod groups
    max_value = 1048576        # largest register value, bytes
    auth_key_file = "auth.key" # optional: shared secret; every frame then carries an HMAC

    [[acceptors]]
    id = 0
    host = "10.0.0.1"
    port = 7400
    data_dir = "/var/lib/wormspace"

Relative paths are relative to the file's directory. Groups are contiguous blocks of the acceptors in id
order (with 6 acceptors and 2 groups: ``{0,1,2}`` and ``{3,4,5}``), as in the simulator.

Rules:

1. A cluster file is checked whole when it is read: an unknown key, a wrong type, a duplicate id or address,
   or a bad number is a ``UsageError`` naming the file and the problem. Nothing half-read is used.
2. An acceptor's data directory holds ``acceptor.sqlite`` (its registers and identity), ``identity.json``
   (the same identity, see ``wormspace.identity``), ``acceptor.pid`` (its pid, and an exclusive ``flock``
   while it runs: two processes never serve one directory) and, when started by ``LocalCluster``,
   ``acceptor.log``. ``LocalCluster`` initialises the data dirs of a cluster it creates, and only those.
3. ``LocalCluster`` runs real ``wormspace serve`` processes on loopback: ``crash`` is ``kill -9`` (the disk
   survives), ``pause``/``resume`` are SIGSTOP/SIGCONT, ``stop`` is SIGTERM then SIGKILL after a timeout.
4. ``TcpDriver`` runs a ``ClientCore`` on an asyncio loop in a background thread and carries out its effects
   over ``TcpTransport``; ``execute`` blocks the calling thread (any thread but the loop's).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import weakref
from collections.abc import Sequence
from concurrent.futures import Future as ConcurrentFuture
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from wormspace.errors import PeersRefused, UsageError, WormSpaceError
from wormspace.identity import Identity, check_cluster_id, init_data_dir, new_cluster_id
from wormspace.layers.effects import Effect, Persist, RegKey, Send, SetTimer
from wormspace.layers.messages import MAX_INDEX, MAX_VALUE, TRIM, Accept, Message, Prepare, Read, RegState
from wormspace.layers.tcp import TcpTransport, new_event_loop, probe
from wormspace.layers.wor import ClientCore, Config, OpRequest, Outcome

log = logging.getLogger("wormspace.deploy")

DEFAULT_WOS_SIZE = 1024
SQLITE_NAME = "acceptor.sqlite"
PID_NAME = "acceptor.pid"
LOG_NAME = "acceptor.log"
CONFIG_NAME = "cluster.toml"
AUTH_KEY_NAME = "auth.key"
MIN_KEY_BYTES = 16


class DeployError(WormSpaceError):
    """A local acceptor process could not be started, stopped or reached."""


# ---- the cluster file -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptorConfig:
    """One acceptor: its id, the address it listens on, and its data directory."""

    id: int
    host: str
    port: int
    data_dir: str

    def __post_init__(self) -> None:
        if type(self.id) is not int or not 0 <= self.id < 1 << 31:
            raise UsageError(f"acceptor id must be an int in [0, 2**31), got {self.id!r}")
        if type(self.host) is not str or not self.host or any(c.isspace() for c in self.host):
            raise UsageError(f"acceptor {self.id}: host must be a non-empty name or address, got {self.host!r}")
        if type(self.port) is not int or not 1 <= self.port <= 65535:
            raise UsageError(f"acceptor {self.id}: port must be an int in [1, 65535], got {self.port!r}")
        if type(self.data_dir) is not str or not self.data_dir:
            raise UsageError(f"acceptor {self.id}: data_dir must be a non-empty path")

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterConfig:
    """A whole cluster (see the module docstring for the file format)."""

    acceptors: tuple[AcceptorConfig, ...]
    cluster_id: str
    wos_size: int = DEFAULT_WOS_SIZE
    groups: int = 1
    auth_key_file: str | None = None
    max_value: int = MAX_VALUE

    def __post_init__(self) -> None:
        check_cluster_id(self.cluster_id)
        if type(self.acceptors) is not tuple or not self.acceptors:
            raise UsageError("a cluster needs at least one acceptor")
        if not all(isinstance(a, AcceptorConfig) for a in self.acceptors):
            raise UsageError("acceptors must be AcceptorConfig entries")
        ids = [a.id for a in self.acceptors]
        if len(set(ids)) != len(ids):
            raise UsageError(f"acceptor ids must be unique, got {sorted(ids)}")
        addrs = [a.address for a in self.acceptors]
        if len(set(addrs)) != len(addrs):
            raise UsageError("two acceptors share one host:port")
        dirs = [a.data_dir for a in self.acceptors]
        if len(set(dirs)) != len(dirs):
            raise UsageError("two acceptors share one data_dir")
        if type(self.wos_size) is not int or not 1 <= self.wos_size <= MAX_INDEX:
            raise UsageError(f"wos_size must be an int in [1, {MAX_INDEX}], got {self.wos_size!r}")
        n = len(self.acceptors)
        if type(self.groups) is not int or self.groups < 1 or n % self.groups:
            raise UsageError(f"groups must be a positive int dividing the {n} acceptors, got {self.groups!r}")
        if self.auth_key_file is not None and (type(self.auth_key_file) is not str or not self.auth_key_file):
            raise UsageError("auth_key_file must be a non-empty path")
        if type(self.max_value) is not int or not 1 <= self.max_value <= MAX_VALUE:
            raise UsageError(f"max_value must be an int in [1, {MAX_VALUE}], got {self.max_value!r}")

    def acceptor(self, acceptor_id: int) -> AcceptorConfig:
        for a in self.acceptors:
            if a.id == acceptor_id:
                return a
        raise UsageError(f"no acceptor {acceptor_id} in the cluster (ids: {sorted(self.ids)})")

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(sorted(a.id for a in self.acceptors))

    def addresses(self) -> dict[int, tuple[str, int]]:
        return {a.id: a.address for a in self.acceptors}

    def acceptor_groups(self) -> list[list[int]]:
        """Contiguous blocks of the acceptor ids in order; segment ``s`` lives on block ``s % groups``."""
        ids = self.ids
        per = len(ids) // self.groups
        return [list(ids[g * per : (g + 1) * per]) for g in range(self.groups)]

    def auth_key(self) -> bytes | None:
        return None if self.auth_key_file is None else load_auth_key(self.auth_key_file)


_TOP_KEYS = {"acceptors", "cluster_id", "wos_size", "groups", "auth_key_file", "max_value"}
_ACCEPTOR_KEYS = {"id", "host", "port", "data_dir"}


def _resolve(base: Path, p: str) -> str:
    path = Path(p).expanduser()
    return str(path if path.is_absolute() else (base / path))


def load_config(path: str | os.PathLike[str]) -> ClusterConfig:
    """Read and check a cluster file; relative paths in it are resolved against its directory."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise UsageError(f"{p}: no such cluster file") from None
    except OSError as e:
        raise UsageError(f"{p}: cannot read the cluster file: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{p}: not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{p}: not valid TOML: not UTF-8") from None
    try:
        return _parse_config(raw, p.resolve().parent)
    except UsageError as e:
        raise UsageError(f"{p}: {e}") from None


def _parse_config(raw: dict[str, Any], base: Path) -> ClusterConfig:
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise UsageError(f"unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(_TOP_KEYS))})")
    if "cluster_id" not in raw:
        raise UsageError(
            "no cluster_id: every cluster file names its cluster since acceptors carry an identity; add a line"
            ' cluster_id = "..." with a fresh random id (python -c "import secrets; print(secrets.token_hex(16))")'
            " and initialise the acceptors as docs/deployment.md describes"
        )
    check_cluster_id(raw["cluster_id"])
    entries = raw.get("acceptors")
    if type(entries) is not list or not entries:
        raise UsageError("needs at least one [[acceptors]] table")
    acceptors = []
    for n, e in enumerate(entries):
        if type(e) is not dict:
            raise UsageError(f"acceptors[{n}] must be a table")
        bad = set(e) - _ACCEPTOR_KEYS
        if bad:
            raise UsageError(f"acceptors[{n}]: unknown key(s) {', '.join(sorted(bad))}")
        missing = _ACCEPTOR_KEYS - set(e)
        if missing:
            raise UsageError(f"acceptors[{n}]: missing key(s) {', '.join(sorted(missing))}")
        data_dir = e["data_dir"]
        if type(data_dir) is not str or not data_dir:
            raise UsageError(f"acceptors[{n}]: data_dir must be a non-empty string")
        acceptors.append(AcceptorConfig(id=e["id"], host=e["host"], port=e["port"], data_dir=_resolve(base, data_dir)))
    key_file = raw.get("auth_key_file")
    if key_file is not None:
        if type(key_file) is not str or not key_file:
            raise UsageError("auth_key_file must be a non-empty string")
        key_file = _resolve(base, key_file)
    return ClusterConfig(
        acceptors=tuple(acceptors),
        cluster_id=raw["cluster_id"],
        wos_size=raw.get("wos_size", DEFAULT_WOS_SIZE),
        groups=raw.get("groups", 1),
        auth_key_file=key_file,
        max_value=raw.get("max_value", MAX_VALUE),
    )


def _toml_str(s: str) -> str:
    out = ['"']
    for c in s:
        o = ord(c)
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{o:04X}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def config_text(cfg: ClusterConfig) -> str:
    """The cluster file for ``cfg`` (what ``write_config`` writes)."""
    lines = [
        "# WormSpace cluster file: every acceptor and client of the cluster reads this.",
        f"cluster_id = {_toml_str(cfg.cluster_id)}",
        f"wos_size = {cfg.wos_size}",
        f"groups = {cfg.groups}",
        f"max_value = {cfg.max_value}",
    ]
    if cfg.auth_key_file is not None:
        lines.append(f"auth_key_file = {_toml_str(cfg.auth_key_file)}")
    for a in cfg.acceptors:
        lines += [
            "",
            "[[acceptors]]",
            f"id = {a.id}",
            f"host = {_toml_str(a.host)}",
            f"port = {a.port}",
            f"data_dir = {_toml_str(a.data_dir)}",
        ]
    return "\n".join(lines) + "\n"


def write_config(cfg: ClusterConfig, path: str | os.PathLike[str]) -> None:
    """Write ``cfg`` to ``path`` atomically (write a temporary file, then rename)."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(config_text(cfg), encoding="utf-8")
    os.replace(tmp, p)


def load_auth_key(path: str | os.PathLike[str]) -> bytes:
    """The shared secret: the file's bytes without surrounding whitespace, at least 16 of them."""
    p = Path(path)
    try:
        key = p.read_bytes().strip()
        mode = p.stat().st_mode
    except OSError as e:
        raise UsageError(f"{p}: cannot read the auth key file: {e.strerror or e}") from None
    if len(key) < MIN_KEY_BYTES:
        raise UsageError(f"{p}: an auth key needs at least {MIN_KEY_BYTES} bytes, the file holds {len(key)}")
    if mode & 0o077:
        log.warning("auth key file %s is readable by other users (mode %o); chmod 600 it", p, mode & 0o777)
    return key


def new_auth_key(path: str | os.PathLike[str]) -> bytes:
    """Create a fresh random key file (64 hex characters, mode 600) and return the key."""
    key = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return key


# ---- data directories: the pid file doubles as a lock ---------------------------------------------------


def lock_data_dir(data_dir: str | os.PathLike[str], wait: float = 1.0) -> int:
    """Take the data directory's exclusive lock and write our pid into ``acceptor.pid``; returns the fd to
    keep open while serving. ``UsageError`` if another live process holds it."""
    path = Path(data_dir) / PID_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
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


# ---- replacing an acceptor whose disk is lost ------------------------------------------------------------


def merge_register_states(states: Sequence[RegState]) -> RegState:
    """One register's state rebuilt from the survivors' states: the highest promise, and the highest-ballot
    vote (Paxos proposes one value per ballot, so two different values at one ballot mean corrupted input)."""
    if not states:
        raise UsageError("nothing to merge")
    promised = max(r.promised for r in states)
    best = max(states, key=lambda r: r.accepted)
    for r in states:
        if r.accepted == best.accepted and r.value != best.value:
            raise UsageError(f"two different values voted at ballot {tuple(best.accepted)}: the inputs are corrupt")
    return RegState(promised=promised, accepted=best.accepted, value=best.value)


def rebuild_storage(sources: Sequence[str | os.PathLike[str]], dest: str | os.PathLike[str]) -> int:
    """Build the storage of a replacement acceptor (whose disk is lost) from the SQLite files of ALL the
    surviving acceptors of its group: per register the highest promise and the highest-ballot vote; a
    segment whose merged TRIM register holds a vote is purged (acceptor rule 4). Returns the number of
    registers written. Refuses to overwrite ``dest``. The sources may be read while their acceptors run.

    Why this is safe (docs/operations.md): every value chosen with the lost acceptor's vote was also voted by
    a survivor of that quorum, and every vote at a higher ballot is for the same value, so the merged vote is
    that value; every promise a proposer relied on was also made by a survivor, so the merged promise is at
    least as high. The replacement therefore behaves as an acceptor that merely missed some messages."""
    from wormspace.layers.acceptor import SqliteStorage

    out = Path(dest)
    if out.exists():
        raise UsageError(f"{out} exists; the rebuilt storage must go to a new file")
    if not sources:
        raise UsageError("give the SQLite files of every surviving acceptor of the group")
    found: dict[RegKey, list[RegState]] = {}
    for src in sources:
        if not Path(src).exists():
            raise UsageError(f"{src}: no such file")
        store = SqliteStorage(src, read_only=True)
        try:
            for key, state in store.items():
                found.setdefault(key, []).append(state)
        finally:
            store.close()
    merged = {key: merge_register_states(states) for key, states in found.items()}
    trimmed = {seg for (seg, idx), r in merged.items() if idx == TRIM and r.value is not None}
    puts = tuple(sorted((k, r) for k, r in merged.items() if k[0] not in trimmed or k[1] == TRIM))
    target = SqliteStorage(out)
    try:
        target.apply(Persist(puts=puts))
    finally:
        target.close()
    return len(puts)


# ---- local acceptor processes ---------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``host`` (the OS's pick; another process could still take it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def accepts_connections(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _package_root() -> str:
    return str(Path(__file__).resolve().parent.parent)


def _log_tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:]) or "(empty log)"


def _signal_pid(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _kill_children(procs: list[subprocess.Popen[bytes]]) -> None:
    """Last resort at interpreter exit: kill the children we started that still run (only those: a pid
    number alone could have been recycled by then)."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)


class LocalCluster:
    """N acceptor processes (``python -m wormspace serve``) on loopback, files under ``directory``.

    ``directory/cluster.toml`` is written on ``start``; acceptor ``i`` keeps its SQLite file, pid file
    and log under ``directory/acceptor-i``. With ``detach`` the processes get their own session and outlive
    this object (``wormspace cluster up``); otherwise they are killed when the interpreter exits.

    If ``directory/cluster.toml`` exists it is used as it is (ports, data directories, key): the other
    arguments are ignored, except that ``acceptors`` must match it."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        acceptors: int = 3,
        *,
        host: str = "127.0.0.1",
        base_port: int | None = None,
        auth: bool = False,
        wos_size: int = DEFAULT_WOS_SIZE,
        groups: int = 1,
        max_value: int = MAX_VALUE,
        detach: bool = False,
        startup_timeout: float = 15.0,
        python: str = sys.executable,
        serve_args: Sequence[str] = (),
    ) -> None:
        if type(acceptors) is not int or acceptors < 1:
            raise UsageError(f"acceptors must be a positive int, got {acceptors!r}")
        self.directory = Path(directory).resolve()
        self.config_path = self.directory / CONFIG_NAME
        self.detach = detach
        self.startup_timeout = startup_timeout
        self.python = python
        self.serve_args = tuple(serve_args)
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._started: list[subprocess.Popen[bytes]] = []
        self._finalizer: weakref.finalize[Any, Any] | None = None
        if self.config_path.exists():
            self.config = load_config(self.config_path)
            if len(self.config.acceptors) != acceptors:
                raise UsageError(
                    f"{self.config_path} describes {len(self.config.acceptors)} acceptors, not {acceptors}"
                )
            return
        ports = (
            [base_port + i for i in range(acceptors)]
            if base_port is not None
            else [free_port(host) for _ in range(acceptors)]
        )
        self.config = ClusterConfig(
            cluster_id=new_cluster_id(),
            acceptors=tuple(
                AcceptorConfig(id=i, host=host, port=ports[i], data_dir=str(self.directory / f"acceptor-{i}"))
                for i in range(acceptors)
            ),
            wos_size=wos_size,
            groups=groups,
            max_value=max_value,
            auth_key_file=str(self.directory / AUTH_KEY_NAME) if auth else None,
        )

    @classmethod
    def open(cls, directory: str | os.PathLike[str], **kwargs: Any) -> LocalCluster:
        """A handle on the cluster described by ``directory/cluster.toml`` (running or not)."""
        path = Path(directory) / CONFIG_NAME
        if not path.exists():
            raise UsageError(f"{directory}: no {CONFIG_NAME} here; run `wormspace cluster up` first")
        cfg = load_config(path)
        return cls(directory, len(cfg.acceptors), **kwargs)

    # -- files ---------------------------------------------------------------------------------------

    def data_dir(self, i: int) -> Path:
        return Path(self.config.acceptor(i).data_dir)

    def log_path(self, i: int) -> Path:
        return self.data_dir(i) / LOG_NAME

    def db_path(self, i: int) -> Path:
        return self.data_dir(i) / SQLITE_NAME

    @property
    def auth_key(self) -> bytes | None:
        return self.config.auth_key()

    def addresses(self) -> dict[int, tuple[str, int]]:
        return self.config.addresses()

    def _write_files(self) -> None:
        """For a new cluster: initialise every acceptor's data dir (identity), create the key, then write the
        cluster file last. For an existing one (its cluster file exists): nothing; a data dir that lost its
        files is never initialised again here, its acceptor refuses to start instead."""
        if self.config_path.exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for a in self.config.acceptors:
            init_data_dir(a.data_dir, Identity(cluster_id=self.config.cluster_id, acceptor_id=a.id))
        key_file = self.config.auth_key_file
        if key_file is not None and not Path(key_file).exists():
            new_auth_key(key_file)
        if not self.config_path.exists():
            rel = replace(
                self.config,
                acceptors=tuple(
                    replace(a, data_dir=_relative(a.data_dir, self.directory)) for a in self.config.acceptors
                ),
                auth_key_file=None if key_file is None else _relative(key_file, self.directory),
            )
            write_config(rel, self.config_path)

    # -- processes -----------------------------------------------------------------------------------

    def pid(self, i: int) -> int | None:
        """The pid of acceptor ``i`` if it is running (paused counts as running)."""
        proc = self._procs.get(i)
        if proc is not None and proc.poll() is None:
            return proc.pid
        return running_pid(self.data_dir(i))

    def exit_code(self, i: int) -> int | None:
        """The exit code of acceptor ``i``'s last process started here, ``None`` while it runs (or if it
        was not started by this object)."""
        proc = self._procs.get(i)
        return None if proc is None else proc.poll()

    def alive(self, i: int) -> bool:
        return self.pid(i) is not None

    def running(self) -> list[int]:
        return [a.id for a in self.config.acceptors if self.alive(a.id)]

    def start(self, ids: Sequence[int] | None = None) -> LocalCluster:
        """Start every acceptor (or those in ``ids``) that is not running; return when each has answered the
        readiness hello (``_await_ready``). A new cluster (no cluster file yet) first gets its files and its
        acceptors' identities; if one of its acceptors fails, all are stopped again and ``DeployError``
        raised. On an existing cluster each acceptor starts on its own: those that start keep running, and
        ``DeployError`` names the ones that did not (e.g. an acceptor that lost its database refuses)."""
        new = not self.config_path.exists()
        wanted = [a.id for a in self.config.acceptors] if ids is None else [self.config.acceptor(i).id for i in ids]
        self._write_files()
        todo = [i for i in wanted if not self.alive(i)]
        failures: list[str] = []
        try:
            started = []
            for i in todo:
                try:
                    self._spawn(i)
                    started.append(i)
                except DeployError as e:
                    if new:
                        raise
                    failures.append(str(e))
            for i in started:
                try:
                    self._await_ready(i)
                except DeployError as e:
                    if new:
                        raise
                    with contextlib.suppress(Exception):
                        self._kill(i, signal.SIGKILL)
                    failures.append(str(e))
        except BaseException:
            for i in todo:
                with contextlib.suppress(Exception):
                    self._kill(i, signal.SIGKILL)
            raise
        if failures:
            raise DeployError("\n".join(failures))
        return self

    def _spawn(self, i: int) -> None:
        if not self.data_dir(i).is_dir():
            raise DeployError(
                f"acceptor {i} cannot start: its data dir {self.data_dir(i)} does not exist (lost disk?);"
                " replace it by the procedure in docs/operations.md"
            )
        env = dict(os.environ)
        root = _package_root()
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        cmd = [
            self.python, "-m", "wormspace", "serve",
            "--id", str(i), "--config", str(self.config_path), *self.serve_args,
        ]  # fmt: skip
        with open(self.log_path(i), "ab") as logf:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=self.detach,
                close_fds=True,
            )
        self._procs[i] = proc
        if not self.detach:
            self._started.append(proc)
            if self._finalizer is None:
                self._finalizer = weakref.finalize(self, _kill_children, self._started)

    def _await_ready(self, i: int) -> None:
        """Ready means: the process we started answers a hello on its address as acceptor ``i`` of this
        cluster, with its own pid (not merely "the port accepts connections": another process, even another
        cluster's acceptor, may hold the port)."""
        a = self.config.acceptor(i)
        proc = self._procs[i]
        key = self.config.auth_key()
        deadline = time.monotonic() + self.startup_timeout
        why = "no answer yet"
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                raise DeployError(
                    f"acceptor {i} exited with code {code} while starting; {self.log_path(i)} ends with:\n"
                    + _log_tail(self.log_path(i))
                )
            if running_pid(a.data_dir) == proc.pid:
                hello, why_not = probe(a.host, a.port, cluster_id=self.config.cluster_id, acceptor_id=i, key=key)
                if why_not is None and hello is not None and hello.pid == proc.pid:
                    return
                if why_not is None and hello is not None:
                    why_not = f"is process {hello.pid}, not the one started ({proc.pid})"
                why = f"{a.host}:{a.port} {why_not}"
            time.sleep(0.02)
        raise DeployError(
            f"acceptor {i} (pid {proc.pid}) did not answer a hello within {self.startup_timeout}s: {why};"
            f" {self.log_path(i)} ends with:\n" + _log_tail(self.log_path(i))
        )

    def _kill(self, i: int, sig: signal.Signals) -> None:
        pid = self.pid(i)
        if pid:
            _signal_pid(pid, sig)

    def _wait_dead(self, i: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        proc = self._procs.get(i)
        while True:
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.02)
            if not self.alive(i):
                return True
            if time.monotonic() >= deadline:
                return False
            if proc is None:
                time.sleep(0.02)

    def crash(self, i: int) -> None:
        """``kill -9`` acceptor ``i``; its files stay (as a disk would)."""
        self._kill(i, signal.SIGKILL)
        if not self._wait_dead(i, 5.0):
            raise DeployError(f"acceptor {i} survived SIGKILL")

    def restart(self, i: int) -> None:
        """Start acceptor ``i`` again on its old address and data (after ``crash`` or ``stop``)."""
        if self.alive(i):
            raise UsageError(f"acceptor {i} is running; crash or stop it first")
        self._spawn(i)
        self._await_ready(i)

    def pause(self, i: int) -> None:
        """SIGSTOP: the process holds its connections but answers nothing (a slow or hung acceptor)."""
        self._kill(i, signal.SIGSTOP)

    def resume(self, i: int) -> None:
        self._kill(i, signal.SIGCONT)

    def stop_one(self, i: int, timeout: float = 5.0) -> bool:
        """SIGTERM (and SIGCONT, should it be paused), then SIGKILL after ``timeout``. True if it stopped
        cleanly (without SIGKILL)."""
        pid = self.pid(i)
        if pid is None:
            return True
        if pid:
            _signal_pid(pid, signal.SIGTERM)
            _signal_pid(pid, signal.SIGCONT)
        if self._wait_dead(i, timeout):
            return True
        self._kill(i, signal.SIGKILL)
        if not self._wait_dead(i, 5.0):
            raise DeployError(f"acceptor {i} survived SIGKILL")
        return False

    def stop(self, timeout: float = 5.0) -> dict[int, bool]:
        """Stop every acceptor (in parallel): SIGTERM, then SIGKILL after ``timeout``. Returns, per id,
        whether it stopped cleanly."""
        ids = [a.id for a in self.config.acceptors]
        for i in ids:
            pid = self.pid(i)
            if pid:
                _signal_pid(pid, signal.SIGTERM)
                _signal_pid(pid, signal.SIGCONT)
        return {i: self.stop_one(i, timeout) for i in ids}

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _relative(path: str, base: Path) -> str:
    try:
        return str(Path(path).relative_to(base))
    except ValueError:
        return path


# ---- the client driver over TCP -------------------------------------------------------------------------


_REQUEST_TYPES = (Prepare, Accept, Read)


class TcpDriver:
    """Runs a ``ClientCore`` over TCP: an asyncio loop in a background thread carries out its effects
    (``Send`` through ``TcpTransport``, ``SetTimer`` through ``loop.call_later``).

    ``execute(request)`` blocks until the operation's outcome (thread-safe; not from the loop's thread);
    ``await execute_async(request)`` works from any event loop. ``close()`` ends it: operations still
    running end with an ``Indeterminate`` outcome."""

    def __init__(
        self,
        peers: dict[int, tuple[str, int]],
        *,
        groups: Sequence[Sequence[int]],
        cluster_id: str,
        node_id: int | None = None,
        config: Config | None = None,
        auth_key: bytes | None = None,
        max_value: int = MAX_VALUE,
    ) -> None:
        unknown = {i for g in groups for i in g} - set(peers)
        if unknown:
            raise UsageError(f"groups name acceptors without an address: {sorted(unknown)}")
        # Ballots are (number, node): node ids must differ between clients; 62 random bits make a clash
        # practically impossible without any coordination.
        self.node_id = secrets.randbits(62) if node_id is None else node_id
        self.core = ClientCore(node_id=self.node_id, groups=groups, config=config, on_done=self._on_done)
        self._peers = dict(peers)
        self._cluster_id = check_cluster_id(cluster_id)
        self._groups = [tuple(g) for g in groups]
        self._auth_key = auth_key
        self._max_value = max_value
        self._waiting: dict[int, tuple[asyncio.Future[Outcome], OpRequest]] = {}
        self._early: dict[int, Outcome] = {}
        self._closed = False
        self._loop = new_event_loop()
        self._transport: TcpTransport | None = None
        ready: ConcurrentFuture[None] = ConcurrentFuture()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="wormspace-tcp-driver", daemon=True)
        self._thread.start()
        ready.result()

    @classmethod
    def from_config(cls, cfg: ClusterConfig, **kwargs: Any) -> TcpDriver:
        """A driver for the cluster described by ``cfg`` (addresses, groups, auth key, max value)."""
        return cls(
            cfg.addresses(),
            groups=cfg.acceptor_groups(),
            cluster_id=cfg.cluster_id,
            auth_key=cfg.auth_key(),
            max_value=cfg.max_value,
            **kwargs,
        )

    def _run(self, ready: ConcurrentFuture[None]) -> None:
        asyncio.set_event_loop(self._loop)
        self._transport = TcpTransport(
            self._peers, self._on_message, self._auth_key, cluster_id=self._cluster_id, max_value=self._max_value
        )
        self._loop.call_soon(ready.set_result, None)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    # -- on the loop's thread ------------------------------------------------------------------------

    def _carry_out(self, effects: list[Effect]) -> None:
        transport = self._transport
        assert transport is not None
        for e in effects:
            if isinstance(e, Send):
                transport.send(e.dst, e.msg)
            elif isinstance(e, SetTimer):
                self._loop.call_later(e.delay, self._on_timeout, e.token)

    def _on_message(self, src: int, msg: Message) -> None:
        if isinstance(msg, _REQUEST_TYPES):
            log.warning("acceptor %d sent a request (%s) to a client; ignored", src, type(msg).__name__)
            return
        self._carry_out(self.core.on_reply(src, msg))

    def _on_timeout(self, token: int) -> None:
        if not self._closed:
            self._carry_out(self.core.on_timeout(token))

    def _on_done(self, op_id: int, outcome: Outcome) -> None:
        entry = self._waiting.pop(op_id, None)
        if entry is None:
            self._early[op_id] = outcome
        elif not entry[0].done():
            entry[0].set_result(outcome)

    async def _submit(self, request: OpRequest) -> Outcome:
        if self._closed:
            raise UsageError("this client is closed")
        op_id, effects = self.core.start(request)
        early = self._early.pop(op_id, None)
        if early is not None:
            self._carry_out(effects)
            return early
        fut: asyncio.Future[Outcome] = self._loop.create_future()
        self._waiting[op_id] = (fut, request)
        self._carry_out(effects)
        return self._explain(request, await fut)

    def _explain(self, request: OpRequest, outcome: Outcome) -> Outcome:
        """An indeterminate outcome while acceptors of the request's group refuse this client (wrong key,
        another cluster) is raised as ``PeersRefused`` naming them and why, not left as a bare timeout."""
        if outcome.error != "Indeterminate" or self._transport is None:
            return outcome
        group = self._groups[request.segment % len(self._groups)]
        refusals = self._transport.refusals
        refused = [i for i in group if i in refusals]
        if not refused:
            return outcome
        by_reason: dict[str, list[int]] = {}
        for i in refused:
            by_reason.setdefault(refusals[i], []).append(i)

        def where(i: int) -> str:
            return f"{i} at {self._peers[i][0]}:{self._peers[i][1]}"

        detail = "; ".join(
            f"acceptor{'s' if len(ids) > 1 else ''} {', '.join(map(where, ids))} {why}"
            for why, ids in by_reason.items()
        )
        raise PeersRefused(f"no quorum answered ({len(refused)} of {len(group)} acceptors refused): {detail}")

    # -- any thread ----------------------------------------------------------------------------------

    def _in_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread.ident

    def execute(self, request: OpRequest) -> Outcome:
        """Run one operation to its outcome, blocking this thread."""
        if self._in_loop_thread():
            raise UsageError("TcpDriver.execute would deadlock on the driver's own loop; use execute_async")
        if self._closed:
            raise UsageError("this client is closed")
        return asyncio.run_coroutine_threadsafe(self._submit(request), self._loop).result()

    def sleep(self, seconds: float) -> None:
        """Pause the calling thread (an app's timeout over TCP runs on real time)."""
        time.sleep(seconds)

    async def execute_async(self, request: OpRequest) -> Outcome:
        """Run one operation to its outcome without blocking the caller's event loop."""
        if self._in_loop_thread():
            return await self._submit(request)
        if self._closed:
            raise UsageError("this client is closed")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._submit(request), self._loop))

    @property
    def transport(self) -> TcpTransport:
        assert self._transport is not None
        return self._transport

    def close(self) -> None:
        """Stop the loop and its thread; waiting operations end ``Indeterminate``. Idempotent."""
        if self._closed or not self._thread.is_alive():
            self._closed = True
            return
        if self._in_loop_thread():
            raise UsageError("TcpDriver.close must not run on the driver's own loop")

        async def shutdown() -> None:
            self._closed = True
            for fut, request in self._waiting.values():
                if not fut.done():
                    fut.set_result(Outcome(error="Indeterminate", unknown=request.targets()))
            self._waiting.clear()
            await self.transport.close()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def __enter__(self) -> TcpDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "AcceptorConfig",
    "ClusterConfig",
    "DeployError",
    "LocalCluster",
    "TcpDriver",
    "accepts_connections",
    "config_text",
    "free_port",
    "load_auth_key",
    "load_config",
    "lock_data_dir",
    "merge_register_states",
    "new_auth_key",
    "rebuild_storage",
    "running_pid",
    "unlock_data_dir",
    "write_config",
]
