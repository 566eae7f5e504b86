"""Helpers of the real-process tests: the ``wormspace`` command run as a user runs it (a child process, a
cluster started by ``cluster up``), and a round of merged asyncio operations."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from wormspace.runtime.supervise import LocalCluster

if TYPE_CHECKING:
    from wormspace.aio import AsyncClient


def wormspace(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """``python -m wormspace ARGS`` with ``stdin`` as its input (bounded: 60 s)."""
    return subprocess.run(
        [sys.executable, "-m", "wormspace", *args], input=stdin, capture_output=True, timeout=60, check=False
    )


@contextlib.contextmanager
def cluster_up(d: Path) -> Iterator[str]:
    """``wormspace cluster up --acceptors 3 --dir d``; its cluster file; its acceptors stopped afterwards."""
    up = wormspace("cluster", "up", "--acceptors", "3", "--dir", str(d), "--json")
    assert up.returncode == 0, up.stderr
    try:
        yield str(d / "cluster.toml")
    finally:
        LocalCluster.open(d).stop(timeout=2)


async def write_then_read(client: AsyncClient, n: int, tag: bytes = b"") -> tuple[int, list[object]]:
    """A new segment; ``n`` registers captured in one batch, written by ``n`` concurrent coroutines
    (``tag + b"%d" % i``), then read by ``n`` more: (the segment, the values read)."""
    seg = await client.alloc(b"async")
    cap = await client.batch_capture(seg, 0, n)
    await asyncio.gather(*(client.write(client.address(seg, i), tag + b"%d" % i, cap) for i in range(n)))
    return seg, list(await asyncio.gather(*(client.read(client.address(seg, i)) for i in range(n))))
