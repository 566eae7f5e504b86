"""Mutant for the durability checks of real processes: an acceptor that forgets its state on restart.

The check is "every acknowledged write survives kills and restarts" (tests/test_real_faults.py). Here the
same scenario runs twice: with real SQLite storage the acknowledged value survives; with a launcher that
wipes the acceptor's SQLite file before each start (a planted bug: storage that is not durable), the
acknowledged value is lost -- so the check can fail. Since acceptors carry an identity, such a launcher must
also delete the identity and re-initialise to get that far; one that only deletes the database is refused.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from wormspace import EMPTY
from wormspace.cluster import LocalClusterHandle
from wormspace.runtime.supervise import DeployError, LocalCluster

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
rm -f "$(dirname "$cfg")/acceptor-$id"/*.sqlite* REINIT_FILES
exec PYTHON "$@" REINIT_FLAG
"""


def _launcher(tmp_path: Path, reinit: bool) -> str:
    """The forgetful launcher; with ``reinit`` it also deletes the identity and starts with ``--init``, so the
    acceptor comes back as a new, empty one (what the identity check exists to prevent happening by
    accident); without, it leaves the identity that shows the directory has served."""
    launcher = tmp_path / f"forgetful-python-{reinit}"
    text = FORGETFUL.replace("PYTHON", sys.executable)
    text = text.replace("REINIT_FILES", '"$(dirname "$cfg")/acceptor-$id/identity.json"' if reinit else "")
    launcher.write_text(text.replace("REINIT_FLAG", "--init" if reinit else ""))
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    assert os.access(launcher, os.X_OK)
    return str(launcher)


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
    seen = _lose_two_acceptors_memory(tmp_path / "forgetful", _launcher(tmp_path, reinit=True))
    assert seen is EMPTY, "a forgetful acceptor should lose the acknowledged write"


def test_an_acceptor_whose_database_vanished_refuses_to_restart(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="acceptor 0 exited with code 2") as e:
        _lose_two_acceptors_memory(tmp_path / "vanished", _launcher(tmp_path, reinit=False))
    assert "is missing but identity.json shows this acceptor has served" in str(e.value)
