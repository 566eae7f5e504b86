"""The bare limit: asyncio + msgpack to three local processes that only echo length-prefixed frames, and
the bare durable floor: the same with one SQLite commit per frame.

No protocol, no checks: the fastest a Python client on asyncio streams can get a quorum's answer from three
processes on this machine, the ceiling any replicated write of ours could reach here; and, with the disk, the
floor under any durable round trip of ours.

Rule 1. Each server process (``python -m bench.bare serve PORT [DIR]``) reads a 4-byte big-endian length and
        that many bytes, and writes the same frame back. Nothing else -- unless given a directory ``DIR``:
        then before the echo it upserts one row (a key, 8 B) into an SQLite file in ``DIR`` in one
        transaction and commits it as our acceptors do (WAL, ``synchronous=FULL``: the commit is on disk
        before the reply; the log checkpointed by SQLite every 256 pages, so that it is mostly overwritten
        in place, as our acceptors keep theirs).
Rule 2. A write is a msgpack message ``[kind, req, segment, offset, ballot, value]`` (a frame may carry
        ``k`` such writes as a list), sent to all three servers; it completes when two replies (a majority,
        as a Paxos phase 2) are back and decoded with msgpack.
Rule 3. Three shapes: one write at a time; 64 writes in flight (one frame each); 16 writes a frame with
        64 frames in flight (counted in writes).
Rule 4. Durable shapes (``measure_durable``): one durable write at a time (one durable round trip, the
        shape of a write through a batch capture), and two durable writes in turn per operation (two durable
        round trips, the shape of capture + write).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import msgpack

from bench.common import Result, Row, cli, free_ports, row, windowed

HDR = 4


async def _serve(port: int, directory: str | None = None) -> None:
    db = None
    if directory is not None:
        db = sqlite3.connect(os.path.join(directory, "bare.sqlite3"), isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA wal_autocheckpoint=256")
        db.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)")
    n = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal n
        try:
            while True:
                hdr = await reader.readexactly(HDR)
                body = await reader.readexactly(int.from_bytes(hdr, "big"))
                if db is not None:
                    n += 1
                    db.execute("BEGIN")
                    db.execute("INSERT OR REPLACE INTO t VALUES (?, ?)", (n % 4096, b"v" * 8))
                    db.execute("COMMIT")
                writer.write(hdr + body)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


class BareClient:
    """Connections to the echo servers; ``write(values)`` completes on two replies."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []
        self.waiting: dict[int, list[Any]] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.req = 0

    async def connect(self, ports: Sequence[int]) -> None:
        for port in ports:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            self.writers.append(writer)
            self.tasks.append(asyncio.create_task(self._read(reader)))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                hdr = await reader.readexactly(HDR)
                msg = msgpack.unpackb(await reader.readexactly(int.from_bytes(hdr, "big")))
                entry = self.waiting.get(msg[0][1] if isinstance(msg[0], list) else msg[1])
                if entry is not None:
                    entry[1] += 1
                    if entry[1] == 2:
                        entry[0].set_result(None)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            return

    async def write(self, values: Sequence[bytes]) -> None:
        self.req += 1
        req = self.req
        msgs = [[2, req, 7, i, [1, 3], v] for i, v in enumerate(values)]
        body = msgpack.packb(msgs[0] if len(msgs) == 1 else msgs)
        frame = len(body).to_bytes(HDR, "big") + body
        fut = asyncio.get_running_loop().create_future()
        self.waiting[req] = [fut, 0]
        for w in self.writers:
            w.write(frame)
        try:
            await fut
        finally:
            del self.waiting[req]

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        for w in self.writers:
            w.close()


def start_servers(k: int = 3, directory: str | None = None) -> tuple[list[int], list[subprocess.Popen[str]]]:
    """``k`` echo processes; durable ones (Rule 1) when ``directory`` is given (one subdirectory each)."""
    ports = free_ports(k)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    dirs: list[list[str]] = [[] for _ in ports]
    if directory is not None:
        for i, d in enumerate(dirs):
            d.append(os.path.join(directory, str(i)))
            os.makedirs(d[0], exist_ok=True)
    procs = [subprocess.Popen([sys.executable, "-m", "bench.bare", "serve", str(p), *d], stdout=subprocess.PIPE,
                              text=True, env=env) for p, d in zip(ports, dirs, strict=True)]
    for p in procs:
        assert p.stdout is not None
        p.stdout.readline()  # "ready"
    return ports, procs


def stop_servers(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def measure(quick: bool, value_bytes: int = 8) -> list[Row]:
    """The three shapes (Rule 3) against three fresh echo processes."""
    n1, nw = (200, 2000) if quick else (2000, 40_000)
    value = b"v" * value_bytes
    ports, procs = start_servers()
    try:
        async def go() -> list[Row]:
            client = BareClient()
            await client.connect(ports)
            rows: list[Row] = []
            await client.write([value])  # warm up
            lat: list[float] = []
            t = time.perf_counter()
            for _ in range(n1):
                s = time.perf_counter()
                await client.write([value])
                lat.append(time.perf_counter() - s)
            rows.append(row("bare write, 1 at a time", n1, time.perf_counter() - t, lat, window=1,
                            value_bytes=value_bytes))
            secs, lat = await windowed(nw, 64, lambda i: client.write([value]))
            rows.append(row("bare write, 64 in flight", nw, secs, lat, window=64, value_bytes=value_bytes))
            frames = nw // 16
            secs, lat = await windowed(frames, 64, lambda i: client.write([value] * 16))
            rows.append(row("bare write, 16 a frame, 64 frames in flight", frames * 16, secs, lat, window=64,
                            value_bytes=value_bytes, per_frame=16))
            await client.close()
            return rows

        return asyncio.run(go())
    finally:
        stop_servers(procs)


def measure_durable(quick: bool, value_bytes: int = 8) -> list[Row]:
    """Rule 4's two shapes against three fresh durable echo processes (Rule 1)."""
    n1 = 200 if quick else 1500
    value = b"v" * value_bytes
    with tempfile.TemporaryDirectory(prefix="wormspace-bench-bare-") as d:
        ports, procs = start_servers(directory=d)
        try:
            async def go() -> list[Row]:
                client = BareClient()
                await client.connect(ports)
                rows: list[Row] = []
                for _ in range(300):  # warm up: the servers' logs reach the size they are overwritten at
                    await client.write([value])
                for name, trips in (("bare durable write, 1 at a time", 1),
                                    ("bare durable 2 round trips, 1 at a time", 2)):
                    lat: list[float] = []
                    t = time.perf_counter()
                    for _ in range(n1):
                        s = time.perf_counter()
                        for _ in range(trips):
                            await client.write([value])
                        lat.append(time.perf_counter() - s)
                    rows.append(row(name, n1, time.perf_counter() - t, lat, window=1, value_bytes=value_bytes))
                await client.close()
                return rows

            return asyncio.run(go())
        finally:
            stop_servers(procs)


def run(quick: bool) -> Result:
    res = Result("bare", "Bare limit: asyncio + msgpack, 3 echo processes on loopback, quorum of 2, 8 B")
    res.rows = measure(quick)
    res.extra_tables.append(
        ("Bare durable floor: the same with one SQLite FULL commit per frame", measure_durable(quick)))
    return res


def main(argv: Sequence[str] | None = None) -> None:
    args = list(argv) if argv is not None else sys.argv[1:]
    if args[:1] == ["serve"]:
        asyncio.run(_serve(int(args[1]), args[2] if len(args) > 2 else None))
        return
    cli("python -m bench.bare", __doc__, run, args)


if __name__ == "__main__":
    main()
