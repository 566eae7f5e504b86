"""The ``serve`` verb: one acceptor process over TCP with SQLite storage.

``wormspace serve --id N --listen HOST:PORT --data DIR [--config cluster.toml] [--auth-key-file F]``

With ``--config`` the acceptor's entry in the cluster file supplies whatever is not given on the command line
(address, data directory, auth key file, largest value). The process:

1. takes the data directory's lock (``acceptor.pid``; a second process on the same directory is refused),
2. opens ``DIR/acceptor.sqlite`` (refusing a file of another storage format),
3. serves until SIGTERM or SIGINT, then stops accepting, lets the frame being applied finish (frames are
   applied without yielding to the event loop, so a signal is handled only between frames), closes SQLite
   and releases the lock.

Every log line this verb emits is listed, with its meaning, in docs/operations.md. Exit codes: 0 after a
clean stop, 1 if the acceptor could not start or its storage failed, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wormspace.errors import UsageError
from wormspace.layers.acceptor import STORAGE_FORMAT, AcceptorNode, SqliteStorage
from wormspace.layers.messages import MAX_VALUE
from wormspace.layers.tcp import AcceptorServer, run
from wormspace.layers.wire import DEFAULT_MAX_FRAME

log = logging.getLogger("wormspace.server")


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
    from wormspace.deploy import load_config

    host: str | None = None
    port: int | None = None
    data: Path | None = Path(args.data) if args.data else None
    key_file: Path | None = Path(args.auth_key_file) if args.auth_key_file else None
    max_value = MAX_VALUE
    if args.config:
        cfg = load_config(args.config)
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
    if args.max_frame < 1024:
        raise UsageError(f"--max-frame must be at least 1024 bytes, got {args.max_frame}")
    return ServeOptions(
        node_id=args.id,
        host=host,
        port=port,
        data_dir=data,
        auth_key_file=key_file,
        max_frame=args.max_frame,
        max_value=max_value,
    )


async def serve(opts: ServeOptions, storage: SqliteStorage, auth_key: bytes | None) -> int:
    """Serve until SIGTERM/SIGINT (exit code 0) or a storage failure (1)."""
    node = AcceptorNode(opts.node_id, storage)
    server = AcceptorServer(node, opts.host, opts.port, auth_key, opts.max_frame, max_value=opts.max_value)
    try:
        await server.start()
    except OSError as e:
        log.error("acceptor %d cannot start: cannot listen on %s:%d: %s", opts.node_id, opts.host, opts.port, e)
        return 1
    log.info("acceptor %d listening on %s:%d", opts.node_id, opts.host, server.port)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    stopped = asyncio.ensure_future(server.wait_stopped())
    signalled = asyncio.ensure_future(stop.wait())
    await asyncio.wait([stopped, signalled], return_when=asyncio.FIRST_COMPLETED)
    signalled.cancel()
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


def run_serve(opts: ServeOptions) -> int:
    """Lock the data directory, open storage, serve, and clean up whatever happens."""
    from wormspace.deploy import SQLITE_NAME, load_auth_key, lock_data_dir, unlock_data_dir

    auth_key = load_auth_key(opts.auth_key_file) if opts.auth_key_file is not None else None
    try:
        opts.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create the data dir {opts.data_dir}: {e.strerror or e}") from None
    lock = lock_data_dir(opts.data_dir)
    try:
        storage = SqliteStorage(opts.data_dir / SQLITE_NAME)
        try:
            log.info(
                "acceptor %d starting: pid=%d data=%s storage_format=%d registers=%d auth=%s max_frame=%d",
                opts.node_id,
                os.getpid(),
                opts.data_dir,
                STORAGE_FORMAT,
                storage.count(),
                "on" if auth_key is not None else "off",
                opts.max_frame,
            )
            return run(serve(opts, storage, auth_key))
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


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run one acceptor (TCP, SQLite storage)",
        description="Run one acceptor process. Stops cleanly on SIGTERM or SIGINT.",
    )
    p.add_argument("--id", type=int, required=True, help="this acceptor's id (as in the cluster file)")
    p.add_argument("--listen", metavar="HOST:PORT", help="address to listen on (port 0: any free port)")
    p.add_argument("--data", metavar="DIR", help="data directory (SQLite file, pid file)")
    p.add_argument("--config", metavar="FILE", help="cluster file supplying the options not given here")
    p.add_argument("--auth-key-file", metavar="FILE", help="shared secret: every frame must carry its HMAC")
    p.add_argument(
        "--max-frame",
        type=int,
        default=DEFAULT_MAX_FRAME,
        metavar="BYTES",
        help=f"largest frame accepted (default {DEFAULT_MAX_FRAME})",
    )
    p.set_defaults(func=main)
