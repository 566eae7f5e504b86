"""Mutant for the durability checks of real processes: an acceptor that forgets its state on restart.

The check is "every acknowledged write survives kills and restarts" (tests/test_real_faults.py). Here the
same scenario runs twice: with real SQLite storage the acknowledged value survives; with a launcher that
wipes the acceptor's SQLite file before each start (a planted bug: storage that is not durable), the
acknowledged value is lost -- so the check can fail.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from wormspace import EMPTY
from wormspace.cluster import LocalClusterHandle
from wormspace.deploy import LocalCluster

pytestmark = pytest.mark.slow

FORGETFUL = """#!/usr/bin/env bash
# Test-only launcher: wipe this acceptor's SQLite files, then start it as usual.
id=""; cfg=""
args=("$@")
for ((k = 0; k < ${#args[@]}; k++)); do
  case "${args[$k]}" in
    --id) id="${args[$((k + 1))]}" ;;
    --config) cfg="${args[$((k + 1))]}" ;;
  esac
done
rm -f "$(dirname "$cfg")/acceptor-$id"/*.sqlite*
exec PYTHON "$@"
"""


def _lose_two_acceptors_memory(tmp: Path, python: str) -> bytes | object:
    local = LocalCluster(tmp, 3, wos_size=8, python=python).start()
    with LocalClusterHandle(local, record=False) as cluster:
        ws = cluster.client()
        seg = ws.alloc(b"m")
        cluster.pause(2)  # the write reaches acceptors 0 and 1 only
        addr = ws.address(seg, 0)
        cap = ws.capture(addr)
        ws.write(addr, b"acknowledged", cap)
        for victim in (0, 1):  # one at a time: never more than a minority down
            cluster.crash(victim)
            cluster.restart(victim)
        cluster.resume(2)
        cluster.crash(2)  # the quorum is now {0, 1}
        return ws.read(addr)


def test_durable_storage_keeps_the_acknowledged_write(tmp_path: Path) -> None:
    assert _lose_two_acceptors_memory(tmp_path / "durable", sys.executable) == b"acknowledged"


def test_forgetful_storage_is_caught(tmp_path: Path) -> None:
    launcher = tmp_path / "forgetful-python"
    launcher.write_text(FORGETFUL.replace("PYTHON", sys.executable))
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    assert os.access(launcher, os.X_OK)
    seen = _lose_two_acceptors_memory(tmp_path / "forgetful", str(launcher))
    assert seen is EMPTY, "a forgetful acceptor should lose the acknowledged write"
