"""A synchronous client left open when the program exits is closed at exit, silently: no asyncio errors about
tasks destroyed while pending, and the program's exit code is its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)

_PROGRAM = """
import sys
from wormspace.cluster import connect
from wormspace.runtime.supervise import LocalCluster
cluster = LocalCluster(sys.argv[1], 1, startup_timeout=30).start()
ws = connect(cluster.config_path)
seg = ws.alloc()
ws.write(ws.address(seg, 0), b"v", ws.capture(ws.address(seg, 0)))
assert ws.read(ws.address(seg, 0)) == b"v"
print("done", flush=True)
"""  # neither the client nor the cluster is closed


def test_a_client_left_open_at_exit_is_closed_without_errors(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", _PROGRAM, str(tmp_path / "c")],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout == "done\n", proc.stderr
    assert "Task was destroyed" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr
