"""The ``serve`` verb: one acceptor process over TCP with SQLite storage.

``wormspace serve --id N --listen HOST:PORT --data DIR [--config cluster.toml] [--init] [--cluster-id ID]
[--auth-key-file F] [--max-frame B] [--max-connections N] [--hello-timeout S] [--idle-timeout S]
[--frame-timeout S] [--max-request-registers N]``

With ``--config`` the acceptor's entry in the cluster file supplies whatever is not given on the command line
(address, data directory, auth key file, largest value, cluster id). The process:

1. refuses a data directory that does not exist, unless ``--init`` (which creates it),
2. takes the data directory's lock (``acceptor.pid``; a second process on the same directory is refused),
3. with ``--init``, makes the directory a new acceptor (``wormspace.identity.init_data_dir``: refused if it
   already holds one),
4. checks the directory's identity against ``--id`` and the cluster id, and its database (present,
   non-empty, undamaged, the same identity): ``wormspace.identity.check_data_dir``,
5. opens ``DIR/acceptor.sqlite`` (migrating a format-1 file, refusing one of an unknown format),
6. serves until SIGTERM or SIGINT (or, when started by a non-detached ``LocalCluster``, until the process
   that started it is gone: ``PARENT_ENV``), then stops accepting, lets the batch being applied finish (a batch is
   applied without yielding to the event loop, so a signal is handled only between batches), closes SQLite
   and releases the lock.

Every log line this verb emits is listed, with its meaning, in docs/operations.md. Exit codes: 0 after a
clean stop, 1 if the acceptor could not listen or its storage failed while serving, 2 if it refused to start
(usage error, identity or database check): one line ``acceptor N cannot start: REASON``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wormspace.errors import UsageError
from wormspace.identity import Identity, IdentityError, check_cluster_id, check_data_dir, init_data_dir
from wormspace.layers.acceptor import STORAGE_FORMAT, AcceptorNode, SqliteStorage
from wormspace.layers.messages import MAX_VALUE
from wormspace.layers.tcp import AcceptorServer, Limits, loop_choice, loop_name, run
from wormspace.layers.wire import DEFAULT_MAX_FRAME, MIN_MAX_FRAME

log = logging.getLogger("wormspace.server")

GC_THRESHOLDS = (20_000, 50, 100)
"""The cyclic garbage collector's thresholds while serving (Python's defaults: 700, 10, 10). An acceptor
allocates a few container objects per register and request, nearly all freed by reference counting, while its
mirror (``SqliteStorage``) keeps every register's state: with the defaults a young collection ran every 700
allocations and the older ones kept traversing the growing mirror -- a profile of an acceptor under 256
appends in flight (``perf``) showed ~15% of its CPU in the collector; these thresholds cut the Python work
per request by 13-27% in-process (64- and 1-register Accepts). Cycles (connections' objects, tracebacks)
are still collected, in young collections every 20,000 net allocations. The mirror loaded at start is moved
out of the collector's sight (``gc.freeze``): it holds no cycles, and its states are freed by reference
counting when replaced."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeOptions:
    """Everything one acceptor process needs, after the command line and the cluster file are merged."""

    node_id: int
    host: str
    port: int
    data_dir: Path
    auth_key_file: Path | None = None
    max_frame: int = DEFAULT_MAX_FRAME
    max_value: int = MAX_VALUE
    cluster_id: str | None = None
    init: bool = False
    limits: Limits = field(default_factory=Limits)


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6addr]:PORT`` for IPv6) -> (host, port); port 0 picks a free one."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen wants HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def resolve_options(args: argparse.Namespace) -> ServeOptions:
    """Merge the command line with the cluster file (the command line wins)."""
    from wormspace.runtime.config import load_config

    host: str | None = None
    port: int | None = None
    data: Path | None = Path(args.data) if args.data else None
    key_file: Path | None = Path(args.auth_key_file) if args.auth_key_file else None
    max_value = MAX_VALUE
    cluster_id: str | None = check_cluster_id(args.cluster_id, "--cluster-id") if args.cluster_id else None
    if args.config:
        cfg = load_config(args.config)
        if cluster_id is not None and cluster_id != cfg.cluster_id:
            raise UsageError(f"--cluster-id {cluster_id} contradicts the cluster file's {cfg.cluster_id}")
        cluster_id = cfg.cluster_id
        me = cfg.acceptor(args.id)
        host, port = me.host, me.port
        data = data or Path(me.data_dir)
        if key_file is None and cfg.auth_key_file is not None:
            key_file = Path(cfg.auth_key_file)
        max_value = cfg.max_value
    if args.listen:
        host, port = parse_listen(args.listen)
    if host is None or port is None:
        raise UsageError("give --listen HOST:PORT (or --config with this acceptor's entry)")
    if data is None:
        raise UsageError("give --data DIR (or --config with this acceptor's entry)")
    if args.id < 0:
        raise UsageError(f"--id must be >= 0, got {args.id}")
    if args.max_frame < MIN_MAX_FRAME:
        raise UsageError(f"--max-frame must be at least {MIN_MAX_FRAME} bytes, got {args.max_frame}")
    if args.init and cluster_id is None:
        raise UsageError("--init needs the cluster id: give --config (or --cluster-id)")
    limits = Limits(
        max_connections=args.max_connections,
        hello_timeout=args.hello_timeout,
        idle_timeout=args.idle_timeout,
        frame_timeout=args.frame_timeout,
        max_request_registers=args.max_request_registers,
    )
    return ServeOptions(
        node_id=args.id,
        host=host,
        port=port,
        data_dir=data,
        auth_key_file=key_file,
        max_frame=args.max_frame,
        max_value=max_value,
        cluster_id=cluster_id,
        init=args.init,
        limits=limits,
    )


async def serve(opts: ServeOptions, storage: SqliteStorage, auth_key: bytes | None, ident: Identity) -> int:
    """Serve until SIGTERM/SIGINT (exit code 0) or a storage failure (1)."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()  # the mirror just loaded: never traversed again (see ``GC_THRESHOLDS``)
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        return await _serve(opts, storage, auth_key, ident)
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


async def _serve(opts: ServeOptions, storage: SqliteStorage, auth_key: bytes | None, ident: Identity) -> int:
    node = AcceptorNode(opts.node_id, storage, fast=True)
    server = AcceptorServer(
        node,
        opts.host,
        opts.port,
        auth_key,
        opts.max_frame,
        max_value=opts.max_value,
        identity=ident,
        limits=opts.limits,
    )
    try:
        await server.start()
    except OSError as e:
        log.error("acceptor %d cannot start: cannot listen on %s:%d: %s", opts.node_id, opts.host, opts.port, e)
        return 1
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        stop.set()

    # before the line that tells it is ready: a SIGTERM right after it stops the acceptor cleanly (exit 0)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    log.info("acceptor %d listening on %s:%d (event loop: %s)", opts.node_id, opts.host, server.port, loop_name(loop))
    stopped = asyncio.ensure_future(server.wait_stopped())
    signalled = asyncio.ensure_future(stop.wait())
    watch = asyncio.ensure_future(_watch_parent(opts.node_id, received, stop))
    await asyncio.wait([stopped, signalled], return_when=asyncio.FIRST_COMPLETED)
    signalled.cancel()
    watch.cancel()
    why = received[0] if received else "storage failure"
    log.info("acceptor %d stopping on %s", opts.node_id, why)
    await server.close()
    stopped.cancel()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    log.info(
        "acceptor %d stopped: %d frames, %d requests served, %d peers refused",
        opts.node_id,
        server.frames,
        server.messages,
        server.refused,
    )
    return 1 if server.failure is not None else 0


PARENT_ENV = "WORMSPACE_PARENT_PID"
"""Set by ``LocalCluster`` (not detached) to its own pid: the acceptor stops, as on SIGTERM, once that process
is no longer its parent (it died, even by SIGKILL, and the acceptor was re-parented)."""

PARENT_POLL = 0.5
"""Seconds between two checks of the parent (``PARENT_ENV``)."""


async def _watch_parent(node_id: int, received: list[str], stop: asyncio.Event) -> None:
    raw = os.environ.get(PARENT_ENV, "")
    if not raw.isdigit():
        return
    parent = int(raw)
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_POLL)
    log.info("acceptor %d: the process that started it (pid %d) is gone", node_id, parent)
    received.append("parent exit")
    stop.set()


def run_serve(opts: ServeOptions) -> int:
    """Lock the data directory, open storage, serve, and clean up whatever happens."""
    from wormspace.runtime.auth import load_auth_key
    from wormspace.runtime.datadir import SQLITE_NAME, lock_data_dir, unlock_data_dir

    loop_choice()  # a bad WORMSPACE_LOOP stops the start before the data directory is touched
    auth_key = load_auth_key(opts.auth_key_file) if opts.auth_key_file is not None else None
    if not opts.data_dir.is_dir():
        if not opts.init:
            raise IdentityError(
                f"data dir {opts.data_dir} does not exist; give --init to create a new acceptor there"
            )
        try:
            opts.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot create the data dir {opts.data_dir}: {e.strerror or e}") from None
    lock = lock_data_dir(opts.data_dir)
    try:
        if opts.init:
            assert opts.cluster_id is not None  # resolve_options makes sure
            init_data_dir(opts.data_dir, Identity(cluster_id=opts.cluster_id, acceptor_id=opts.node_id))
            log.info("acceptor %d initialised %s for cluster %s", opts.node_id, opts.data_dir, opts.cluster_id)
        ident = check_data_dir(opts.data_dir, acceptor_id=opts.node_id, cluster_id=opts.cluster_id)
        try:
            storage = SqliteStorage(opts.data_dir / SQLITE_NAME)
        except sqlite3.Error as e:
            raise IdentityError(f"{opts.data_dir / SQLITE_NAME} cannot be opened: {e}") from None
        try:
            try:
                registers = storage.count()
            except sqlite3.Error as e:
                raise IdentityError(f"{opts.data_dir / SQLITE_NAME} is damaged: {e}") from None
            log.info(
                "acceptor %d starting: pid=%d data=%s cluster=%s incarnation=%d storage_format=%d registers=%d"
                " auth=%s max_frame=%d",
                opts.node_id,
                os.getpid(),
                opts.data_dir,
                ident.cluster_id,
                ident.incarnation,
                STORAGE_FORMAT,
                registers,
                "on" if auth_key is not None else "off",
                opts.max_frame,
            )
            return run(serve(opts, storage, auth_key, ident))
        finally:
            storage.close()
            log.info("acceptor %d storage closed", opts.node_id)
    finally:
        unlock_data_dir(lock)


def main(args: argparse.Namespace) -> int:
    """The verb's entry point (``func`` of its parser)."""
    wormspace_log = logging.getLogger("wormspace")
    if wormspace_log.getEffectiveLevel() > logging.INFO:
        wormspace_log.setLevel(logging.INFO)  # the start/stop/refused lines are the point of a server log
    try:
        opts = resolve_options(args)
        return run_serve(opts)
    except UsageError as e:
        log.error("acceptor %s cannot start: %s", args.id, e)
        return 2
    except sqlite3.Error as e:  # whatever SQLite raises while starting is a damaged or unusable file
        log.error("acceptor %s cannot start: its database is unusable: %s", args.id, e)
        return 2


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run one acceptor (TCP, SQLite storage)",
        description="Run one acceptor process. Stops cleanly on SIGTERM or SIGINT.",
    )
    p.add_argument("--id", type=int, required=True, help="this acceptor's id (as in the cluster file)")
    p.add_argument("--listen", metavar="HOST:PORT", help="address to listen on (port 0: any free port)")
    p.add_argument("--data", metavar="DIR", help="data directory (SQLite file, identity, pid file)")
    p.add_argument("--config", metavar="FILE", help="cluster file supplying the options not given here")
    p.add_argument(
        "--init",
        action="store_true",
        help="make DIR a new acceptor (creating it if needed); refused if DIR already holds one",
    )
    p.add_argument("--cluster-id", metavar="ID", help="the cluster's id (default: the cluster file's)")
    p.add_argument("--auth-key-file", metavar="FILE", help="shared secret: every frame must carry its HMAC")
    p.add_argument(
        "--max-frame",
        type=int,
        default=DEFAULT_MAX_FRAME,
        metavar="BYTES",
        help=f"largest frame accepted (default {DEFAULT_MAX_FRAME})",
    )
    d = Limits()
    p.add_argument(
        "--max-connections",
        type=int,
        default=d.max_connections,
        metavar="N",
        help=f"open connections at most; more are closed at once and logged (default {d.max_connections})",
    )
    p.add_argument(
        "--hello-timeout",
        type=float,
        default=d.hello_timeout,
        metavar="S",
        help=f"a new connection must complete its hello within S seconds (default {d.hello_timeout})",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=d.idle_timeout,
        metavar="S",
        help=f"close a connection that sends no frame for S seconds (default {d.idle_timeout})",
    )
    p.add_argument(
        "--frame-timeout",
        type=float,
        default=d.frame_timeout,
        metavar="S",
        help=f"a frame, once begun, must arrive whole within S seconds (default {d.frame_timeout})",
    )
    p.add_argument(
        "--max-request-registers",
        type=int,
        default=d.max_request_registers,
        metavar="N",
        help=f"registers one request may name; larger ones are refused (default {d.max_request_registers})",
    )
    p.set_defaults(func=main)
