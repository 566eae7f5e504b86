"""Local acceptor processes on loopback (``LocalCluster``): start, crash, pause, resume, stop.

Rules:

1. ``LocalCluster`` runs real ``wormspace serve`` processes on loopback, each on its own data directory
   (``wormspace.runtime.datadir``); it initialises the data dirs of a cluster it creates, and only those.
2. ``crash`` is ``kill -9`` (the disk survives), ``pause``/``resume`` are SIGSTOP/SIGCONT, ``stop`` is
   SIGTERM then SIGKILL after a timeout.
3. ``start`` returns once every acceptor answers a hello with the cluster's identity; otherwise every one
   it started is stopped again (only the processes it started: never an acceptor another process started
   meanwhile on the same data dir) and ``DeployError`` names the failures.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from wormspace.errors import UsageError, WormSpaceError
from wormspace.identity import Identity, init_data_dir, new_cluster_id
from wormspace.layers.messages import MAX_VALUE
from wormspace.layers.tcp import probe
from wormspace.runtime.auth import AUTH_KEY_NAME, new_auth_key
from wormspace.runtime.config import (
    CONFIG_NAME,
    DEFAULT_WOS_SIZE,
    AcceptorConfig,
    ClusterConfig,
    load_config,
    write_config,
)
from wormspace.runtime.datadir import LOG_NAME, SQLITE_NAME, running_pid
from wormspace.server import PARENT_ENV


class DeployError(WormSpaceError):
    """A local acceptor process could not be started, stopped or reached."""



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
    return str(Path(__file__).resolve().parent.parent.parent)


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
    this object (``wormspace cluster up``); otherwise they are killed when the interpreter exits, and stop by
    themselves (as on SIGTERM) when this process dies without exiting cleanly (a signal, ``kill -9``).

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
                    self._kill_started(i)
                    failures.append(str(e))
        except BaseException:
            for i in todo:
                self._kill_started(i)
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
        env.pop(PARENT_ENV, None)
        if not self.detach:
            env[PARENT_ENV] = str(os.getpid())  # the acceptor stops by itself if this process dies
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

    def _kill_started(self, i: int) -> None:
        """SIGKILL the process this object started for acceptor ``i``, if it still runs -- never the one
        holding ``i``'s data dir lock: after a failed start that may be another's (two ``up`` at once: the
        loser's process finds the lock taken and exits, and the winner's acceptor must keep running)."""
        proc = self._procs.get(i)
        if proc is not None and proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

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
