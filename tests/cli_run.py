"""Running the ``wormspace`` command as a user does: a child process, and a cluster started by ``cluster up``."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from wormspace.runtime.supervise import LocalCluster


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
