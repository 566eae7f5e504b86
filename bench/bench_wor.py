"""WOR micro-benchmarks over real TCP, beside the bare limit, with the contracts on/off ratio.

``python -m bench.bench_wor [--quick] [--json]`` (``wormspace bench wor``). Three acceptor processes on
loopback (``Cluster.local``: SQLite, ``synchronous=FULL``, every vote on disk before its reply) and one
client process. Measured through the public client only (``ws`` and ``ws.aio``):

* ``read``: reads of written registers;
* ``capture+write``: capture then write of a fresh register (two round trips);
* ``write (batch-captured)``: single writes through a batch capture of whole segments (one round trip);
* ``batch_write xK``: K registers of one segment per operation (counted in registers);

each at 1 (the synchronous client), 16, 64 and 256 in flight (concurrent coroutines on one asyncio client),
with 8-byte and 1 KiB values; p50/p99 latencies per operation.

The contracts ratio runs a subset twice in child processes, with ``WORMSPACE_CONTRACTS=0`` and ``=1`` for
the client and the acceptor processes alike. The bare limit (``bench.bare``: asyncio + msgpack to three
echo processes) runs in the same invocation, so the ratio of single batch-captured writes at 64 in flight
to the bare path at 64 in flight is printed beside the figures; so does the bare durable floor (the same
echo processes with one SQLite ``synchronous=FULL`` commit per frame), beside which the one-at-a-time
figures stand (capture+write: two durable round trips). Nothing is asserted.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from bench.common import Result, Row, cli, ratio, row, sequential, windowed

WINDOWS = (1, 16, 64, 256)
SIZES = (8, 1024)


def _counts(quick: bool) -> tuple[int, int]:
    """(operations one at a time, operations at a window > 1)."""
    return (30, 200) if quick else (500, 4000)


def measure(quick: bool, subset: bool = False) -> list[Row]:
    """The micro-benchmarks in this process (contracts as the environment says); ``subset``: the rows the
    contracts ratio compares."""
    from wormspace import Cluster

    n1, nw = _counts(quick)
    windows = (1, 64) if subset else WINDOWS
    sizes = (8,) if subset else SIZES
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="wormspace-bench-wor-") as d, Cluster.local(
        acceptors=3, data_dir=d, record=False
    ) as cluster:
        ws = cluster.client()
        wos = ws.wos_size
        for size in sizes:
            value = b"v" * size
            if 1 in windows:  # one at a time: the synchronous client
                load = _Load(ws, [ws.alloc(b"bench")], [], value, wos)
                secs, lat = sequential(n1, load.capture_write)
                rows.append(row("capture+write", n1, secs, lat, window=1, value_bytes=size))
                seg = ws.alloc(b"bench")
                load = _Load(ws, [seg], [ws.batch_capture(seg)], value, wos)
                secs, lat = sequential(n1, load.write)
                rows.append(row("write (batch-captured)", n1, secs, lat, window=1, value_bytes=size))
                secs, lat = sequential(n1, load.read)
                rows.append(row("read", n1, secs, lat, window=1, value_bytes=size))
                if not subset:
                    for k in (16, 64):
                        seg = ws.alloc(b"bench")
                        load = _Load(ws, [seg], [ws.batch_capture(seg)], value, wos, k)
                        batches = min(wos // k, max(2, n1 // k * 4))
                        secs, lat = sequential(batches, load.batch_write)
                        rows.append(row(f"batch_write x{k}", batches * k, secs, lat, window=1, value_bytes=size,
                                        per_op=k))
            rows.extend(asyncio.run(_concurrent(ws, windows, nw, value, subset)))
    return rows


class _Load:
    """Operation ``i`` of a load over segments ``segs`` (captured by ``caps``), on a sync or async client."""

    def __init__(self, client: Any, segs: list[int], caps: list[Any], value: bytes, wos: int, k: int = 1) -> None:
        self.client, self.segs, self.caps, self.value, self.wos, self.k = client, segs, caps, value, wos, k

    def _at(self, i: int) -> tuple[int, Any]:
        j = i // self.wos
        return self.client.address(self.segs[j], i % self.wos), self.caps[j] if self.caps else None

    def capture_write(self, i: int) -> None:
        addr, _ = self._at(i)
        self.client.write(addr, self.value, self.client.capture(addr))

    def write(self, i: int) -> None:
        addr, cap = self._at(i)
        self.client.write(addr, self.value, cap)

    def read(self, i: int) -> None:
        self.client.read(self._at(i)[0])

    def batch_write(self, b: int) -> None:
        per = self.wos // self.k
        j, start = b // per, (b % per) * self.k
        self.client.batch_write(self.segs[j], {o: self.value for o in range(start, start + self.k)}, self.caps[j])

    async def acapture_write(self, i: int) -> None:
        addr, _ = self._at(i)
        await self.client.write(addr, self.value, await self.client.capture(addr))

    async def awrite(self, i: int) -> None:
        addr, cap = self._at(i)
        await self.client.write(addr, self.value, cap)

    async def aread(self, i: int) -> None:
        await self.client.read(self._at(i)[0])

    async def abatch_write(self, b: int) -> None:
        per = self.wos // self.k
        j, start = b // per, (b % per) * self.k
        await self.client.batch_write(self.segs[j], {o: self.value for o in range(start, start + self.k)},
                                      self.caps[j])


async def _concurrent(ws: Any, windows: Sequence[int], count: int, value: bytes, subset: bool) -> list[Row]:
    """The windows above 1: coroutines on the asyncio client, each window on fresh segments."""
    aio = ws.aio
    wos = aio.wos_size
    size = len(value)
    out: list[Row] = []
    nseg = (count + wos - 1) // wos
    for w in (w for w in windows if w > 1):
        load = _Load(aio, [await aio.alloc(b"bench") for _ in range(nseg)], [], value, wos)
        secs, lat = await windowed(count, w, load.acapture_write)
        out.append(row("capture+write", count, secs, lat, window=w, value_bytes=size))
        segs = [await aio.alloc(b"bench") for _ in range(nseg)]
        load = _Load(aio, segs, [await aio.batch_capture(s) for s in segs], value, wos)
        secs, lat = await windowed(count, w, load.awrite)
        out.append(row("write (batch-captured)", count, secs, lat, window=w, value_bytes=size))
        secs, lat = await windowed(count, w, load.aread)
        out.append(row("read", count, secs, lat, window=w, value_bytes=size))
        if w == 64 and not subset:
            k = 16
            frames = max(1, count // k)
            segs = [await aio.alloc(b"bench") for _ in range((frames * k + wos - 1) // wos)]
            load = _Load(aio, segs, [await aio.batch_capture(s) for s in segs], value, wos, k)
            secs, lat = await windowed(frames, w, load.abatch_write)
            out.append(row(f"batch_write x{k}", frames * k, secs, lat, window=w, value_bytes=size, per_op=k))
    return out


def _child(quick: bool, contracts: bool, subset: bool) -> list[Row]:
    """``measure`` in a fresh process whose client and acceptors have contracts as asked."""
    env = dict(os.environ, WORMSPACE_CONTRACTS="1" if contracts else "0",
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    cmd = [sys.executable, "-m", "bench.bench_wor", "--child"] + (["--quick"] if quick else []) + (
        ["--subset"] if subset else [])
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"bench_wor child failed ({out.returncode}): {out.stderr[-2000:]}")
    rows: list[Row] = json.loads(out.stdout.strip().splitlines()[-1])
    return rows


def _find(rows: list[Row], name: str, window: int, size: int = 8) -> float | None:
    for r in rows:
        if r["benchmark"] == name and r.get("window") == window and r.get("value_bytes") == size:
            return float(r["ops_per_s"])
    return None


def run(quick: bool) -> Result:
    from bench import bare

    res = Result("wor", "WOR over TCP: 3 acceptor processes on loopback (SQLite FULL), contracts off")
    res.rows = _child(quick, contracts=False, subset=False)
    bare_rows = bare.measure(quick)
    res.extra_tables.append(("Bare limit: asyncio + msgpack to 3 echo processes (quorum of 2), 8 B", bare_rows))
    durable_rows = bare.measure_durable(quick)
    res.extra_tables.append(("Bare durable floor: the same, one SQLite FULL commit per frame, 8 B", durable_rows))
    on = _child(quick, contracts=True, subset=True)
    off = [r for r in res.rows if r["value_bytes"] == 8 and r["window"] in (1, 64) and not r.get("per_op")]
    cmp: list[Row] = []
    for r in off:
        r_on = _find(on, r["benchmark"], r["window"])
        cmp.append({"benchmark": r["benchmark"], "window": r["window"], "off_ops_per_s": r["ops_per_s"],
                    "on_ops_per_s": r_on, "off/on": ratio(r["ops_per_s"], r_on)})
    res.extra_tables.append(("Contracts off vs on (client and acceptors), 8 B", cmp))
    bare64 = _find(bare_rows, "bare write, 64 in flight", 64)
    bare1 = _find(bare_rows, "bare write, 1 at a time", 1)
    bare16 = _find(bare_rows, "bare write, 16 a frame, 64 frames in flight", 64)
    res.ratios["write (batch-captured) at 64 in flight / bare at 64 in flight"] = ratio(
        _find(res.rows, "write (batch-captured)", 64), bare64)
    res.ratios["write (batch-captured) 1 at a time / bare 1 at a time"] = ratio(
        _find(res.rows, "write (batch-captured)", 1), bare1)
    res.ratios["batch_write x16 at 64 in flight / bare 16 a frame at 64 in flight"] = ratio(
        _find(res.rows, "batch_write x16", 64), bare16)
    res.ratios["capture+write 1 at a time / bare durable 2 round trips 1 at a time"] = ratio(
        _find(res.rows, "capture+write", 1), _find(durable_rows, "bare durable 2 round trips, 1 at a time", 1))
    res.ratios["write (batch-captured) 1 at a time / bare durable write 1 at a time"] = ratio(
        _find(res.rows, "write (batch-captured)", 1), _find(durable_rows, "bare durable write, 1 at a time", 1))
    for c in cmp:
        res.ratios[f"contracts off/on: {c['benchmark']} at {c['window']}"] = c["off/on"]
    res.notes.append("window 1 uses the synchronous client; larger windows are coroutines on one asyncio client")
    return res


def main(argv: Sequence[str] | None = None) -> None:
    args = list(argv) if argv is not None else sys.argv[1:]
    if "--child" in args:
        rows = measure("--quick" in args, subset="--subset" in args)
        print(json.dumps(rows))
        return
    cli("python -m bench.bench_wor", __doc__, run, args)


if __name__ == "__main__":
    main()
