"""Benchmark: acceptor memory per written WOR, and what a trim gives back (prints figures; asserts nothing).

Memory: an ``AcceptorNode`` over ``MemoryStorage`` handles batch Accepts (64 values each, as a sticky leader's
batch writes arrive) for ``N`` registers of ``VALUE`` bytes; ``tracemalloc`` measures the bytes it holds
afterwards, per register, and again after each segment's TRIM vote purged it (a Python dict keeps its
table after deletions, so the bytes left are mostly that table, reused by later registers).

SQLite: the same registers through ``SqliteStorage`` (one transaction per batch); bytes per row are the
file's used pages over the rows, and after the trims the rows left and the pages on the free list (SQLite
reuses them; the file shrinks only on VACUUM).

Run: ``python -m bench.bench_memory [--quick] [--json]`` (``make bench`` runs it with contracts off);
``--quick`` writes 2,048 registers instead of 16,384.
"""

from __future__ import annotations

import gc
import os
import sqlite3
import sys
import tempfile
import tracemalloc
from collections.abc import Sequence

from bench.common import Result, cli
from wormspace.layers.acceptor import AcceptorNode, MemoryStorage, SqliteStorage
from wormspace.layers.messages import TRIM, Accept, Ballot, Prepare
from wormspace.layers.wos import TRIM_VALUE

N = 16_384  # written registers
WOS = 1024  # registers per segment
BATCH = 64  # values per Accept
SIZES = (0, 16, 128, 1024)  # value bytes


def _fill(node: AcceptorNode, value_size: int) -> None:
    req = 0
    for seg in range(N // WOS):
        ballot = Ballot(1, 1000 + seg)
        node.handle(1000, Prepare(req=req, segment=seg, indices=tuple(range(WOS)), ballot=ballot))
        for start in range(0, WOS, BATCH):
            req += 1
            values = tuple((i, os.urandom(value_size)) for i in range(start, start + BATCH))
            node.handle(1000, Accept(req=req, segment=seg, ballot=ballot, values=values))


def _trim_all(node: AcceptorNode) -> None:
    for seg in range(N // WOS):
        ballot = Ballot(2, 2000 + seg)
        node.handle(1000, Accept(req=seg, segment=seg, ballot=ballot, values=((TRIM, TRIM_VALUE),)))


def memory(value_size: int) -> tuple[float, int, int]:
    """-> (bytes held per written register, registers left after the trims, bytes held after the trims)."""
    gc.collect()
    tracemalloc.start()
    storage = MemoryStorage()
    node = AcceptorNode(0, storage)
    base = tracemalloc.get_traced_memory()[0]
    _fill(node, value_size)
    gc.collect()
    written = tracemalloc.get_traced_memory()[0] - base
    _trim_all(node)
    gc.collect()
    trimmed = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return written / N, len(storage.regs), trimmed


def sqlite(value_size: int) -> tuple[float, int, int, int]:
    """-> (file bytes per row, rows after the trims, free pages after the trims, page size)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "acceptor.sqlite")
        storage = SqliteStorage(path)
        node = AcceptorNode(0, storage)
        _fill(node, value_size)
        rows = storage.count()
        storage.close()
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            page = db.execute("PRAGMA page_size").fetchone()[0]
            used = db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
        per_row = used * page / rows
        storage = SqliteStorage(path)
        node = AcceptorNode(0, storage)
        _trim_all(node)
        left = storage.count()
        storage.close()
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            free = db.execute("PRAGMA freelist_count").fetchone()[0]
        return per_row, left, free, page


def run(quick: bool) -> Result:
    global N
    N = 2_048 if quick else 16_384
    res = Result("memory", f"Acceptor memory: {N} written registers in {N // WOS} segments of {WOS}, "
                           f"batch Accepts of {BATCH}")
    for size in SIZES:
        per, left, held = memory(size)
        row, rows_left, free, page = sqlite(size)
        res.rows.append({"benchmark": f"{size} B values", "value_bytes": size, "memory_B_per_WOR": round(per),
                         "overhead_B_per_WOR": round(per - size), "after_trim": f"{left} regs, {held} B",
                         "sqlite_B_per_row": round(row),
                         "after_trim_sqlite": f"{rows_left} rows, {free} free pages of {page} B"})
    return res


def main(argv: Sequence[str] | None = None) -> None:
    cli("python -m bench.bench_memory", __doc__, run, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
