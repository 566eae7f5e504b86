"""WormLog appends/s and WormPaxos commands/s over TCP, beside PySyncObj (Raft) on the same machine.

``python -m bench.bench_apps [--n N] [--quick]``. WormSpace: three acceptor processes on loopback (SQLite,
``synchronous=FULL``: every vote is on disk before its reply), one client process, 64-byte payloads, with
1, 16 and 256 operations in flight (asyncio beyond 1). PySyncObj (the ``bench`` extra: ``pip install -e
'.[bench]'``): three replica processes on loopback with a journal file each, the same payloads and windows,
submitted at the leader; a command counts when the leader reports it committed. PySyncObj's journal is an
mmap it does not msync per entry, so its durability is weaker than the acceptors'; it runs with its default
configuration (a tick every 0.05 s, append entries every 0.1 s), which bounds one command at a time to about
ten a second. Printed, never asserted:
the ratio is WormSpace's rate over PySyncObj's. Everything shares this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

WINDOWS = (1, 16, 256)
PAYLOAD = b"p" * 64


def _count(window: int, n: int) -> int:
    return n if window == 1 else n * 4


def _windowed(count: int, window: int, make: Callable[[int], Awaitable[Any]]) -> float:
    async def go() -> float:
        sem = asyncio.Semaphore(window)

        async def one(i: int) -> None:
            async with sem:
                await make(i)

        t = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        return time.perf_counter() - t

    return asyncio.run(go())


def _measure(cluster: Any, window: int, count: int, rates: dict[tuple[str, int], float]) -> None:
    from wormspace.apps import WormLog, WormPaxos

    log = WormLog(cluster.client(), name=b"bench-log-%d" % window)
    log.append(PAYLOAD)  # win and capture the first segment
    rep = WormPaxos(cluster.client(), lambda cmd: b"", name=b"bench-smr-%d" % window, policy="sticky")
    rep.submit(PAYLOAD)  # take the lead and capture the first segment
    if window == 1:
        t = time.perf_counter()
        for _ in range(count):
            log.append(PAYLOAD)
        rates["WormLog append", window] = count / (time.perf_counter() - t)
        t = time.perf_counter()
        for _ in range(count):
            rep.submit(PAYLOAD)
        rates["WormPaxos submit", window] = count / (time.perf_counter() - t)
    else:
        alog, arep = log.aio, rep.aio
        rates["WormLog append", window] = count / _windowed(count, window, lambda i: alog.append(PAYLOAD))
        rates["WormPaxos submit", window] = count / _windowed(count, window, lambda i: arep.submit(PAYLOAD))


def wormspace_rates(n: int) -> dict[tuple[str, int], float]:
    os.environ["WORMSPACE_CONTRACTS"] = "0"  # inherited by the acceptor processes
    from wormspace import Cluster

    rates: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory(prefix="wormspace-bench-apps-") as d, Cluster.local(
        acceptors=3, data_dir=d, record=False
    ) as cluster:
        for window in WINDOWS:
            _measure(cluster, window, _count(window, n), rates)
    return rates


# ---- PySyncObj: three replica processes; the leader runs the load ---------------------------------------

REPLICA = """
import json, sys, threading, time
from pysyncobj import SyncObj, SyncObjConf, replicated
me, ports, journal, n = int(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
windows = json.loads(sys.argv[5])
class Log(SyncObj):
    def __init__(self):
        addrs = ["127.0.0.1:%d" % p for p in ports]
        conf = SyncObjConf(journalFile=journal, dynamicMembershipChange=False, appendEntriesUseBatch=True)
        super().__init__(addrs[me], [a for i, a in enumerate(addrs) if i != me], conf)
        self.entries = 0
    @replicated
    def add(self, data):
        self.entries += 1
        return self.entries
o = Log()
while o._getLeader() is None:
    time.sleep(0.05)
time.sleep(0.5)
if o._getLeader() != o.selfNode:
    time.sleep(3600)
for window in windows:
    count = n if window == 1 else n * 4
    sem, done, lock = threading.Semaphore(window), threading.Event(), threading.Lock()
    left = [count]
    def cb(result, error):
        sem.release()
        with lock:
            left[0] -= 1
            if left[0] == 0:
                done.set()
    t = time.perf_counter()
    for i in range(count):
        sem.acquire()
        o.add(b"p" * 64, callback=cb)
    done.wait(600)
    print(json.dumps({"window": window, "rate": count / (time.perf_counter() - t)}), flush=True)
print("done", flush=True)
"""


def _free_ports(k: int) -> list[int]:
    socks = [socket.socket() for _ in range(k)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def pysyncobj_rates(n: int) -> dict[int, float] | str:
    import importlib.util

    if importlib.util.find_spec("pysyncobj") is None:
        return "PySyncObj is not installed (pip install -e '.[bench]'): peer skipped"
    rates: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="pysyncobj-bench-") as d:
        script = Path(d) / "replica.py"
        script.write_text(REPLICA)
        ports = _free_ports(3)
        procs = [
            subprocess.Popen(
                [sys.executable, str(script), str(i), json.dumps(ports), str(Path(d) / f"journal-{i}"), str(n),
                 json.dumps(list(WINDOWS))],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            )
            for i in range(3)
        ]
        try:
            lines: list[str] = []

            def reader(p: subprocess.Popen[str]) -> None:
                assert p.stdout is not None
                for line in p.stdout:
                    lines.append(line.strip())

            for p in procs:
                threading.Thread(target=reader, args=(p,), daemon=True).start()
            deadline = time.monotonic() + 900
            while "done" not in lines and time.monotonic() < deadline:
                time.sleep(0.1)
            for line in lines:
                if line.startswith("{"):
                    row = json.loads(line)
                    rates[int(row["window"])] = float(row["rate"])
        finally:
            for p in procs:
                p.kill()
                p.wait()
    return rates if rates else "PySyncObj did not report (no leader elected in time?)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_apps")
    parser.add_argument("--n", type=int, default=300, help="operations at window 1 (4x that beyond)")
    parser.add_argument("--quick", action="store_true", help="a short run (n=50)")
    args = parser.parse_args(argv if argv is not None else [])
    n = 50 if args.quick else args.n
    ours = wormspace_rates(n)
    peer = pysyncobj_rates(n)
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Apps over TCP: 3 acceptors (SQLite FULL) vs PySyncObj 3 replicas (journal), 64 B")
    for col in ("operation", "in flight", "ops/s", "PySyncObj ops/s", "ratio"):
        table.add_column(col, justify="left" if col == "operation" else "right")
    for (op, window), rate in ours.items():
        theirs = peer.get(window) if isinstance(peer, dict) else None
        table.add_row(op, str(window), f"{rate:,.0f}", "-" if theirs is None else f"{theirs:,.0f}",
                      "-" if not theirs else f"{rate / theirs:.2f}")
    Console().print(table)
    if isinstance(peer, str):
        print(peer)


if __name__ == "__main__":
    main(sys.argv[1:])
