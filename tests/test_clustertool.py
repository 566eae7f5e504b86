"""``wormspace cluster up|status|down`` with real processes in a temporary directory."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wormspace.deploy import LocalCluster, load_config, running_pid

pytestmark = pytest.mark.timeout(90)


def wormspace(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wormspace", *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def cluster_dir(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "cluster"
    yield d
    if (d / "cluster.toml").exists():  # never leave processes behind, whatever the test did
        LocalCluster.open(d).stop(timeout=2)


def status(d: Path) -> tuple[int, dict[str, Any]]:
    out = wormspace("cluster", "status", "--dir", str(d), "--json")
    return out.returncode, json.loads(out.stdout)


def test_up_status_down(cluster_dir: Path) -> None:
    up = wormspace("cluster", "up", "--acceptors", "3", "--dir", str(cluster_dir), "--json")
    assert up.returncode == 0, up.stderr
    shown = json.loads(up.stdout)
    assert [a["id"] for a in shown["acceptors"]] == [0, 1, 2]
    assert all(a["alive"] and a["pid"] for a in shown["acceptors"])

    cfg = load_config(cluster_dir / "cluster.toml")
    assert len(cfg.acceptors) == 3
    for a in cfg.acceptors:
        data = Path(a.data_dir)
        assert data.parent == cluster_dir.resolve()
        assert (data / "acceptor.sqlite").exists() and (data / "acceptor.log").exists()
        assert running_pid(data) is not None

    again = wormspace("cluster", "up", "--acceptors", "3", "--dir", str(cluster_dir))
    assert again.returncode == 1
    assert "already running" in again.stderr

    code, st = status(cluster_dir)
    assert code == 0
    assert [a["pid"] for a in st["acceptors"]] == [a["pid"] for a in shown["acceptors"]]
    table = wormspace("cluster", "status", "--dir", str(cluster_dir))
    assert table.returncode == 0 and "alive" in table.stdout and "127.0.0.1:" in table.stdout

    down = wormspace("cluster", "down", "--dir", str(cluster_dir), "--json")
    assert down.returncode == 0, down.stderr
    assert [a["result"] for a in json.loads(down.stdout)["acceptors"]] == ["stopped"] * 3
    code, st = status(cluster_dir)
    assert code == 1
    assert not any(a["alive"] for a in st["acceptors"])
    for a in cfg.acceptors:
        assert "stopped:" in (Path(a.data_dir) / "acceptor.log").read_text()

    # up again on the stopped directory: same ports, same data
    up2 = wormspace("cluster", "up", "--dir", str(cluster_dir), "--json")
    assert up2.returncode == 0, up2.stderr
    ports = [(a["host"], a["port"]) for a in json.loads(up2.stdout)["acceptors"]]
    assert ports == [a.address for a in cfg.acceptors]
    assert wormspace("cluster", "down", "--dir", str(cluster_dir)).returncode == 0


def test_usage_errors(tmp_path: Path) -> None:
    missing = wormspace("cluster", "status", "--dir", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "no cluster" in missing.stderr
    (tmp_path / "cluster.toml").write_text("wos_size = 'big'\n")
    bad = wormspace("cluster", "up", "--dir", str(tmp_path))
    assert bad.returncode == 2 and "needs at least one [[acceptors]]" in bad.stderr
