"""Scale-out: 1, 2 and 4 acceptor groups (3 acceptors each) on this machine, throughput total and per group.

``python -m bench.bench_scale [--quick] [--json]`` (``wormspace bench scale``). For ``g`` groups:
``Cluster.local(acceptors=3*g, groups=g)`` (SQLite, ``synchronous=FULL``), and ``g`` client processes
(``wormspace.connect`` on the cluster file), client ``k`` writing to segments of group ``k`` (segment ``s``
lives on group ``s mod g``): each allocates and batch-captures its segments, then all start together and
make single writes through those captures, 64 in flight (coroutines on one asyncio client), 8-byte values.
The figure is the writes of all clients over the time from the common start to the last one's end.
CPU is accounted too (Linux ``/proc``): each client's own CPU time, and the acceptor processes' (this
process's other descendants) over the same interval, per write: the capacity model of docs/performance.md
is built on these per-write costs.

Groups share nothing, so on ``g`` machines (one group's three acceptors each on its own machine, or spread)
throughput adds up; here all ``3g`` acceptors and ``g`` clients share this machine's cores, so the per-group
figure falls as ``g`` grows once the cores are busy: this measures the cost of a group, not a deployment.
Printed, never asserted.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from bench.common import Result, Row, cli, contracts_off, ratio, row, windowed

GROUPS = (1, 2, 4)
WINDOW = 64
VALUE = b"v" * 8


def _worker(config: str, group: int, groups: int, count: int) -> None:
    """One client process: set up, say ready, wait for a line on stdin, write, print the figures."""
    import asyncio

    import wormspace

    async def go() -> None:
        ws = wormspace.connect(config)
        aio = ws.aio
        wos = aio.wos_size
        nseg = (count + wos - 1) // wos
        base = 1000 * groups
        segs = [base + group + groups * j for j in range(nseg)]
        for s in segs:
            await aio.alloc(b"bench-scale", segment=s)
        caps = [await aio.batch_capture(s) for s in segs]
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        start = time.time()
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        secs, lat = await windowed(count, WINDOW, lambda i: aio.write(aio.address(segs[i // wos], i % wos), VALUE,
                                                                      caps[i // wos]))
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
        print(json.dumps({"start": start, "end": start + secs, "lat": lat, "cpu_s": cpu}), flush=True)
        ws.close()

    asyncio.run(go())


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            continue
        for k in kids:
            out.append(k)
            out.extend(_descendants(k))
    return out


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by ``pids`` (those still alive)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except (OSError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def measure(groups: int, count: int) -> Row:
    contracts_off()
    from wormspace import Cluster

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    with tempfile.TemporaryDirectory(prefix="wormspace-bench-scale-") as d, Cluster.local(
        acceptors=3 * groups, groups=groups, data_dir=d, record=False
    ) as cluster:
        procs = [subprocess.Popen([sys.executable, "-m", "bench.bench_scale", "--worker", cluster.config_path,
                                   str(k), str(groups), str(count)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
                 for k in range(groups)]
        try:
            for p in procs:
                assert p.stdout is not None
                if p.stdout.readline().strip() != "ready":
                    raise RuntimeError("a scale-out client failed to start")
            workers = {p.pid for p in procs}
            acceptors = [pid for pid in _descendants(os.getpid()) if pid not in workers]
            acceptors = [pid for pid in acceptors if not any(pid in _descendants(w) for w in workers)]
            cpu0 = _cpu_seconds(acceptors)
            for p in procs:
                assert p.stdin is not None
                p.stdin.write("go\n")
                p.stdin.flush()
            results = []
            for p in procs:
                out, _ = p.communicate(timeout=900)
                results.append(json.loads(out.strip().splitlines()[-1]))
            acceptor_cpu = _cpu_seconds(acceptors) - cpu0
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    secs = max(r["end"] for r in results) - min(r["start"] for r in results)
    lat = [x for r in results for x in r["lat"]]
    total = count * groups
    r = row(f"{groups} group(s), {3 * groups} acceptors", total, secs, lat, groups=groups, window=WINDOW)
    r["per_group_ops_per_s"] = round(total / secs / groups)
    r["client_cpu_us_per_write"] = round(sum(x["cpu_s"] for x in results) / total * 1e6)
    if acceptor_cpu > 0:
        r["acceptor_cpu_us_per_write"] = round(acceptor_cpu / total * 1e6)  # all 3 acceptors of the group
    r["cpu_busy_of_cores"] = round((sum(x["cpu_s"] for x in results) + acceptor_cpu) / secs / (os.cpu_count() or 1), 2)
    return r


def run(quick: bool) -> Result:
    count = 300 if quick else 4000
    res = Result("scale", "Scale-out: single batch-captured writes, 64 in flight per group, one client per group, "
                          "8 B")
    groups = (1, 2) if quick else GROUPS
    res.rows = [measure(g, count) for g in groups]
    one = res.rows[0]["ops_per_s"]
    for r in res.rows[1:]:
        res.ratios[f"total {r['groups']} groups / 1 group"] = ratio(r["ops_per_s"], one)
        res.ratios[f"per group {r['groups']} groups / 1 group"] = ratio(r["per_group_ops_per_s"], one)
    res.notes.append(f"all acceptors and clients share this machine's {os.cpu_count()} cores")
    return res


def main(argv: Sequence[str] | None = None) -> None:
    args = list(argv) if argv is not None else sys.argv[1:]
    if args[:1] == ["--worker"]:
        _worker(args[1], int(args[2]), int(args[3]), int(args[4]))
        return
    cli("python -m bench.bench_scale", __doc__, run, args)


if __name__ == "__main__":
    main()
