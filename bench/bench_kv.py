"""WormKV durable puts beside etcd's, at 1, 16, 64 and 256 clients, on the same machine in one run.

``python -m bench.bench_kv [--quick] [--json]`` (``wormspace bench kv``).

WormKV: three acceptor processes on loopback (``Cluster.local``: SQLite, ``synchronous=FULL``), one client
process, one WormKV replica (``sticky`` WormPaxos); ``C`` clients are ``C`` coroutines each putting its own
keys one after another on that replica's asyncio face (1 client: the synchronous face). A put returns when
its command is chosen, so it is on disk at a majority of acceptors.

etcd: the Debian ``etcd-server`` package (``apt-get install etcd-server``; skipped with a message when the
``etcd`` binary is not found), three members on loopback started and stopped here (temporary data dirs,
free ports, default settings: every put is in a majority's fsync'ed WAL before it returns). ``C`` clients
are ``C`` keep-alive HTTP/1.1 connections from one asyncio process, spread over the three members, each
sending ``POST /v3/kv/put`` (the JSON gateway, base64 key and value) one after another. Keys are 8-12
bytes, values 8 bytes on both sides. Both clients are one Python process on asyncio, sharing this machine's
cores with the servers. Printed, never asserted: the ratio is WormKV's puts/s over etcd's.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import Result, Row, cli, contracts_off, free_ports, ratio, row, sequential, windowed

CLIENTS = (1, 16, 64, 256)
VALUE = b"v" * 8


def _count(clients: int, quick: bool) -> int:
    if quick:
        return max(20, 2 * clients)
    return max(500, 20 * clients)


def wormkv_rows(quick: bool) -> list[Row]:
    contracts_off()
    from wormspace import Cluster
    from wormspace.apps import WormKV

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="wormspace-bench-kv-") as d, Cluster.local(
        acceptors=3, data_dir=d, record=False
    ) as cluster:
        kv = WormKV(cluster.client(), name=b"bench-kv-1")
        kv.put(b"warm", VALUE)
        n = _count(1, quick)
        secs, lat = sequential(n, lambda i: kv.put(b"k%d" % i, VALUE))
        rows.append(row("WormKV put", n, secs, lat, clients=1))

        async def concurrent() -> list[Row]:
            out: list[Row] = []
            for c in CLIENTS[1:]:
                akv = WormKV(cluster.client(), name=b"bench-kv-%d" % c).aio
                await akv.put(b"warm", VALUE)
                n = _count(c, quick)
                secs, lat = await windowed(n, c, _putter(akv))
                out.append(row("WormKV put", n, secs, lat, clients=c))
            return out

        rows.extend(asyncio.run(concurrent()))
    return rows


def _putter(akv: Any) -> Callable[[int], Awaitable[None]]:
    async def put(i: int) -> None:
        await akv.put(b"k%d" % i, VALUE)

    return put


# ---- etcd -----------------------------------------------------------------------------------------------


class Etcd:
    """Three etcd members on loopback in temporary directories."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.dir = tempfile.TemporaryDirectory(prefix="etcd-bench-")
        ports = free_ports(6)
        self.client_ports, self.peer_ports = ports[:3], ports[3:]
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> Etcd:
        initial = ",".join(f"m{i}=http://127.0.0.1:{p}" for i, p in enumerate(self.peer_ports))
        for i in range(3):
            data = Path(self.dir.name) / f"m{i}"
            log = open(Path(self.dir.name) / f"m{i}.log", "wb")  # noqa: SIM115 (closed with the process)
            self.procs.append(subprocess.Popen(
                [self.binary, "--name", f"m{i}", "--data-dir", str(data),
                 "--listen-client-urls", f"http://127.0.0.1:{self.client_ports[i]}",
                 "--advertise-client-urls", f"http://127.0.0.1:{self.client_ports[i]}",
                 "--listen-peer-urls", f"http://127.0.0.1:{self.peer_ports[i]}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer_ports[i]}",
                 "--initial-cluster", initial, "--initial-cluster-state", "new",
                 "--initial-cluster-token", "wormspace-bench", "--log-level", "error", "--logger", "zap"],
                stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, ETCD_UNSUPPORTED_ARCH="")))
            log.close()
        return self

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.dir.cleanup()


class HttpConn:
    """One keep-alive HTTP/1.1 connection; ``post`` sends a JSON body and returns the parsed reply."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict[str, str]) -> dict[str, object]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        data = json.dumps(body).encode()
        self.writer.write(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (path.encode(), self.port, len(data), data))
        status = await self.reader.readline()
        headers: dict[bytes, bytes] = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.partition(b":")
            headers[k.strip().lower()] = v.strip()
        if b"content-length" in headers:
            payload = await self.reader.readexactly(int(headers[b"content-length"]))
        else:  # chunked
            parts = []
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            payload = b"".join(parts)
        if not status.split(b" ")[1].startswith(b"2"):
            raise RuntimeError(f"etcd answered {status!r}: {payload[:200]!r}")
        reply: dict[str, object] = json.loads(payload)
        return reply

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def etcd_rows(quick: bool) -> list[Row] | str:
    binary = shutil.which("etcd")
    if binary is None:
        return ("etcd is not installed (Debian: apt-get install etcd-server; `make bench` does it as root): "
                "etcd comparison skipped")
    etcd = Etcd(binary).start()
    try:
        async def go() -> list[Row]:
            probe = HttpConn(etcd.client_ports[0])
            deadline = time.monotonic() + 60
            while True:
                try:
                    await probe.post("/v3/kv/put", {"key": _b64(b"warm"), "value": _b64(VALUE)})
                    break
                except (OSError, RuntimeError, ValueError, asyncio.IncompleteReadError):
                    probe.close()
                    probe = HttpConn(etcd.client_ports[0])
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
            probe.close()
            out: list[Row] = []
            for c in CLIENTS:
                conns = [HttpConn(etcd.client_ports[i % 3]) for i in range(c)]
                for conn in conns:
                    await conn.post("/v3/kv/put", {"key": _b64(b"warm"), "value": _b64(VALUE)})
                n = _count(c, quick)
                free = list(range(c))

                async def put(i: int, conns: list[HttpConn] = conns, free: list[int] = free) -> None:
                    conn = conns[free.pop()]
                    try:
                        await conn.post("/v3/kv/put", {"key": _b64(b"k%d" % i), "value": _b64(VALUE)})
                    finally:
                        free.append(conns.index(conn))

                secs, lat = await windowed(n, c, put)
                out.append(row("etcd put", n, secs, lat, clients=c))
                for conn in conns:
                    conn.close()
            return out

        return asyncio.run(go())
    finally:
        etcd.stop()


def _rate(rows: list[Row], name: str, clients: int) -> float | None:
    for r in rows:
        if r["benchmark"] == name and r["clients"] == clients:
            return float(r["ops_per_s"])
    return None


def run(quick: bool) -> Result:
    res = Result("kv", "WormKV durable puts (3 acceptors, SQLite FULL) vs etcd (3 members, WAL fsync), 8 B values")
    res.rows = wormkv_rows(quick)
    peer = etcd_rows(quick)
    if isinstance(peer, str):
        res.notes.append(peer)
    else:
        res.rows.extend(peer)
        for c in CLIENTS:
            res.ratios[f"WormKV / etcd puts at {c} clients"] = ratio(_rate(res.rows, "WormKV put", c),
                                                                    _rate(peer, "etcd put", c))
        version = subprocess.run([shutil.which("etcd") or "etcd", "--version"], capture_output=True, text=True)
        res.notes.append(f"etcd: {version.stdout.splitlines()[0] if version.stdout else '?'}, default settings, "
                         "puts through the v3 JSON gateway, clients spread over the 3 members")
    return res


def main(argv: Sequence[str] | None = None) -> None:
    cli("python -m bench.bench_kv", __doc__, run, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
