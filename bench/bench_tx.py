"""WormTX over real TCP (three acceptor processes on loopback): E3 and C5 latency and throughput, and the
bank's transfers per second.

``python -m bench.bench_tx [--quick] [--json]`` (``wormspace bench tx``). Rows:

* ``E3 transaction``: begin + 3 votes + decide, one at a time (begin allocates the segment and batch-captures
  it, so each vote is one write); ``E3 vote`` and ``E3 decide`` are its parts;
* ``E3 + ACKs and trim``: the same, then every participant acknowledges and the last one trims;
* ``C5 transaction``: begin + 3 votes + coordinate (the decision register) + a participant's decide;
* ``E3, N in flight``: whole transactions, N concurrent coroutines on one asyncio client;
* ``bank transfer``: sequential transfers between random accounts of 6 over 3 shards; ``bank, N in
  flight``: concurrent transfers (lock conflicts restart).

Client and acceptors share this machine's cores; figures measure the whole system on one box.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bench.common import Result, cli
from bench.common import row as _row


def measure(n: int = 100, inflight: int = 16) -> list[dict[str, Any]]:
    os.environ["WORMSPACE_CONTRACTS"] = "0"
    from wormspace.apps.bank import Bank, BankLogic
    from wormspace.apps.tx import AsyncWormTX, WormTX
    from wormspace.cluster import Cluster

    rows: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="wormspace-bench-tx-") as d,
        Cluster.local(acceptors=3, data_dir=d, record=False) as cluster,
    ):
        ws = cluster.client()
        tx = WormTX(ws)
        whole: list[float] = []
        votes: list[float] = []
        decides: list[float] = []
        t0 = time.perf_counter()
        for _ in range(n):
            s = time.perf_counter()
            t = tx.begin(participants=3)
            for i in range(3):
                v = time.perf_counter()
                tx.vote(t, i, True)
                votes.append(time.perf_counter() - v)
            v = time.perf_counter()
            assert tx.decide(t)
            decides.append(time.perf_counter() - v)
            whole.append(time.perf_counter() - s)
        rows.append(_row("E3 transaction (begin, 3 votes, decide)", n, time.perf_counter() - t0, whole))
        rows.append(_row("E3 vote (1 write)", len(votes), sum(votes), votes))
        rows.append(_row("E3 decide (1 batch read)", len(decides), sum(decides), decides))

        lat: list[float] = []
        t0 = time.perf_counter()
        for _ in range(n):
            s = time.perf_counter()
            t = tx.begin(participants=3)
            for i in range(3):
                tx.vote(t, i, True)
            for i in range(3):
                tx.decide(t, participant=i)
            lat.append(time.perf_counter() - s)
        rows.append(_row("E3 + ACKs and trim", n, time.perf_counter() - t0, lat))

        c5 = WormTX(ws, variant="C5")
        lat = []
        t0 = time.perf_counter()
        for _ in range(n):
            s = time.perf_counter()
            t = c5.begin(participants=3)
            for i in range(3):
                c5.vote(t, i, True)
            assert c5.coordinate(t) and c5.decide(t)
            lat.append(time.perf_counter() - s)
        rows.append(_row("C5 transaction (begin, 3 votes, coordinate, decide)", n, time.perf_counter() - t0, lat))

        atx = AsyncWormTX(ws.aio)  # ws has seen the segments allocated so far: alloc_any probes from there

        async def one_tx(_: int) -> None:
            t = await atx.begin(participants=3)
            await asyncio.gather(*(atx.vote(t, i, True) for i in range(3)))
            await atx.decide(t)

        secs, lat = asyncio.run(_concurrently(n, inflight, one_tx))
        rows.append(_row(f"E3 transactions, {inflight} in flight", n, secs, lat))

        bank = Bank.create(ws, accounts=6, opening=10_000)
        rng = random.Random(1)
        lat = []
        t0 = time.perf_counter()
        for _ in range(n):
            src, dst = rng.sample(range(6), 2)
            s = time.perf_counter()
            bank.transfer(src, dst, rng.randint(1, 50))
            lat.append(time.perf_counter() - s)
        rows.append(_row("bank transfer, 1 at a time", n, time.perf_counter() - t0, lat))

        aio = ws.aio

        async def one_transfer(i: int) -> None:
            core = BankLogic(aio.logic, bank.layout)
            src, dst = random.Random(i).sample(range(6), 2)
            await aio.run(core.transfer(src, dst, 1 + i % 50))

        secs, lat = asyncio.run(_concurrently(n, 4, one_transfer))
        rows.append(_row("bank transfers, 4 in flight (conflicts restart)", n, secs, lat))
    return rows


async def _concurrently(count: int, inflight: int, make: Callable[[int], Awaitable[Any]]) -> tuple[float, list[float]]:
    sem = asyncio.Semaphore(inflight)
    lats: list[float] = []

    async def one(i: int) -> None:
        async with sem:
            s = time.perf_counter()
            await make(i)
            lats.append(time.perf_counter() - s)

    t = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return time.perf_counter() - t, lats


def run(quick: bool) -> Result:
    res = Result("tx", "WormTX over TCP: 3 acceptor processes on loopback, SQLite synchronous=FULL")
    res.rows = measure(n=10 if quick else 100)
    return res


def main(argv: Sequence[str] | None = None) -> None:
    cli("python -m bench.bench_tx", __doc__, run, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
