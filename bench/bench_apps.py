"""WormLog appends and WormPaxos commands over TCP, beside PySyncObj (Raft) on the same machine, in one run.

``python -m bench.bench_apps [--quick] [--json]`` (``wormspace bench apps``). WormSpace: three acceptor
processes on loopback (``Cluster.local``: SQLite, ``synchronous=FULL``: every vote is on disk before its
reply), one client process, 8-byte payloads, with 1 (the synchronous client), 16, 64 and 256 operations in
flight (coroutines on one asyncio client). WormPaxos runs with the ``sticky`` policy (one leader holds the
tail segment; a command is one write); WormLog with its default ``alloc`` policy (the appender that wins a
segment's alloc batch-captures it; an append is one write).

PySyncObj (the ``bench`` extra: ``pip install -e '.[bench]'``) runs three replica processes on loopback with a
journal file each, the same payloads and windows, submitted inside the leader's process (no client hop, unlike
ours) from a thread with the window as a semaphore; a command counts when the leader's callback reports it
applied. Its default timers (a tick every 0.05 s, AppendEntries every 0.1 s) bound it to ~10 commands/s at
window 1 and ~600/s at 64, which would measure its timers, not its replication; so it runs twice, in the two
best settings we found, and the ratio takes the better of the two at each window: ``batch``
(``appendEntriesUseBatch=True``, ``appendEntriesPeriod=0.002``, ``autoTickPeriod=0.002``: commands queued in a
tick go out in one AppendEntries) and ``no batch`` (``appendEntriesUseBatch=False``, ``autoTickPeriod=0.005``:
each command wakes the loop and goes out at once); both with ``journalFile`` set and
``dynamicMembershipChange=False``. Its journal is an mmap written in place and never msync'ed per entry
(PySyncObj 0.3.17 flushes it only when it closes), so a power loss can lose acknowledged commands: weaker
durability than the acceptors' fsync before every vote reply.
Printed, never asserted: the ratio is WormSpace's rate over PySyncObj's at each window.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import Result, Row, cli, contracts_off, free_ports, ratio, row, sequential, windowed

WINDOWS = (1, 16, 64, 256)
PAYLOAD = b"p" * 8
PYSYNCOBJ_CONFS: dict[str, dict[str, object]] = {
    "batch": {"appendEntriesUseBatch": True, "appendEntriesPeriod": 0.002, "autoTickPeriod": 0.002,
              "dynamicMembershipChange": False},
    "no batch": {"appendEntriesUseBatch": False, "autoTickPeriod": 0.005, "dynamicMembershipChange": False},
}


def _count(window: int, n: int) -> int:
    return n if window == 1 else n * 8


def wormspace_rows(n: int) -> list[Row]:
    contracts_off()
    from wormspace import Cluster
    from wormspace.apps import WormLog, WormPaxos

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="wormspace-bench-apps-") as d, Cluster.local(
        acceptors=3, data_dir=d, record=False
    ) as cluster:
        ws = cluster.client()
        log = WormLog(ws, name=b"bench-log-1")
        log.append(PAYLOAD)  # win and capture the first segment
        secs, lat = sequential(n, lambda i: log.append(PAYLOAD))
        rows.append(row("WormLog append", n, secs, lat, window=1, value_bytes=len(PAYLOAD)))
        rep = WormPaxos(ws, lambda cmd: b"", name=b"bench-smr-1", policy="sticky")
        rep.submit(PAYLOAD)  # take the lead and capture the first segment
        secs, lat = sequential(n, lambda i: rep.submit(PAYLOAD))
        rows.append(row("WormPaxos submit (sticky)", n, secs, lat, window=1, value_bytes=len(PAYLOAD)))

        async def concurrent() -> list[Row]:
            out: list[Row] = []
            for window in WINDOWS[1:]:
                count = _count(window, n)
                alog = WormLog(cluster.client(), name=b"bench-log-%d" % window).aio
                await alog.append(PAYLOAD)
                secs, lat = await windowed(count, window, _repeat(alog.append, PAYLOAD))
                out.append(row("WormLog append", count, secs, lat, window=window, value_bytes=len(PAYLOAD)))
                arep = WormPaxos(cluster.client(), lambda cmd: b"", name=b"bench-smr-%d" % window,
                                 policy="sticky").aio
                await arep.submit(PAYLOAD)
                secs, lat = await windowed(count, window, _repeat(arep.submit, PAYLOAD))
                out.append(row("WormPaxos submit (sticky)", count, secs, lat, window=window,
                               value_bytes=len(PAYLOAD)))
            return out

        rows.extend(asyncio.run(concurrent()))
    return rows


def _repeat(op: Callable[[bytes], Awaitable[Any]], payload: bytes) -> Callable[[int], Awaitable[Any]]:
    def one(i: int) -> Awaitable[Any]:
        return op(payload)

    return one


# ---- PySyncObj: three replica processes; the leader runs the load ---------------------------------------

REPLICA = """
import json, sys, threading, time
from pysyncobj import SyncObj, SyncObjConf, replicated
me, ports, journal, n = int(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
windows, conf, payload = json.loads(sys.argv[5]), json.loads(sys.argv[6]), sys.argv[7].encode()
class Log(SyncObj):
    def __init__(self):
        addrs = ["127.0.0.1:%d" % p for p in ports]
        super().__init__(addrs[me], [a for i, a in enumerate(addrs) if i != me],
                         SyncObjConf(journalFile=journal, **conf))
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
o.add(payload, sync=True)
for window in windows:
    count = n if window == 1 else n * 8
    sem, done, lock = threading.Semaphore(window), threading.Event(), threading.Lock()
    left, lats = [count], []
    def cb(result, error, started):
        lats.append(time.perf_counter() - started)
        sem.release()
        with lock:
            left[0] -= 1
            if left[0] == 0:
                done.set()
    t = time.perf_counter()
    for i in range(count):
        sem.acquire()
        s = time.perf_counter()
        o.add(payload, callback=lambda r, e, s=s: cb(r, e, s))
    done.wait(600)
    print(json.dumps({"window": window, "count": count, "seconds": time.perf_counter() - t, "lat": lats}),
          flush=True)
print("done", flush=True)
"""


def pysyncobj_rows(n: int, windows: Sequence[int] = WINDOWS) -> list[Row] | str:
    """PySyncObj's rows in each of its settings, or why it was skipped."""
    import importlib.util

    if importlib.util.find_spec("pysyncobj") is None:
        return "PySyncObj is not installed (pip install -e '.[bench]'): peer skipped"
    rows: list[Row] = []
    for name, conf in PYSYNCOBJ_CONFS.items():
        rows.extend(_pysyncobj(n, windows, name, conf))
    return rows if rows else "PySyncObj did not report (no leader elected in time?)"


def _pysyncobj(n: int, windows: Sequence[int], name: str, conf: dict[str, object]) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="pysyncobj-bench-") as d:
        script = Path(d) / "replica.py"
        script.write_text(REPLICA)
        ports = free_ports(3)
        procs = [
            subprocess.Popen(
                [sys.executable, str(script), str(i), json.dumps(ports), str(Path(d) / f"journal-{i}"), str(n),
                 json.dumps(list(windows)), json.dumps(conf), PAYLOAD.decode()],
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
                    r = json.loads(line)
                    rows.append(row(f"PySyncObj add ({name})", r["count"], r["seconds"], r["lat"], window=r["window"],
                                    value_bytes=len(PAYLOAD)))
        finally:
            for p in procs:
                p.kill()
                p.wait()
    return rows


def _rate(rows: list[Row], name: str, window: int) -> float | None:
    rates = [float(r["ops_per_s"]) for r in rows if r["benchmark"].startswith(name) and r["window"] == window]
    return max(rates) if rates else None


def run(quick: bool, n: int = 500) -> Result:
    n = 40 if quick else n
    res = Result("apps", "Apps over TCP: 3 acceptors (SQLite FULL) vs PySyncObj, 3 replicas (journal), 8 B")
    res.rows = wormspace_rows(n)
    peer = pysyncobj_rows(n)
    if isinstance(peer, str):
        res.notes.append(peer)
    else:
        res.rows.extend(peer)
        for w in WINDOWS:
            theirs = _rate(peer, "PySyncObj add", w)  # the better of its settings
            res.ratios[f"WormPaxos sticky / PySyncObj at window {w}"] = ratio(
                _rate(res.rows, "WormPaxos submit (sticky)", w), theirs)
            res.ratios[f"WormLog append / PySyncObj at window {w}"] = ratio(_rate(res.rows, "WormLog append", w),
                                                                           theirs)
        for name, conf in PYSYNCOBJ_CONFS.items():
            res.notes.append(f"PySyncObj 0.3.17 ({name}): {conf}, journalFile set (mmap, no msync per entry)")
        res.notes.append("ratios take PySyncObj's better setting at each window")
    return res


def main(argv: Sequence[str] | None = None) -> None:
    cli("python -m bench.bench_apps", __doc__, run, argv)


def pysyncobj_rate(rows: list[Row], window: int) -> float | None:
    """PySyncObj's rate at ``window`` among ``rows``, the better of its settings (for other ratios)."""
    return _rate(rows, "PySyncObj add", window)


__all__ = ["PYSYNCOBJ_CONFS", "WINDOWS", "main", "pysyncobj_rate", "pysyncobj_rows", "run", "wormspace_rows"]


if __name__ == "__main__":
    main(sys.argv[1:])
