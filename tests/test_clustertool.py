"""``wormspace cluster up|status|down`` with real processes in a temporary directory."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wormspace.clustertool import _check_unchanged
from wormspace.errors import UsageError
from wormspace.runtime.config import load_config
from wormspace.runtime.datadir import running_pid
from wormspace.runtime.supervise import LocalCluster

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

    again = wormspace("cluster", "up", "--acceptors", "3", "--dir", str(cluster_dir), "--json")
    assert again.returncode == 0, again.stderr
    assert [a["result"] for a in json.loads(again.stdout)["acceptors"]] == ["already running"] * 3

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
    old = wormspace("cluster", "up", "--dir", str(tmp_path))
    assert old.returncode == 2 and "no cluster_id" in old.stderr
    (tmp_path / "cluster.toml").write_text("cluster_id = '0123456789abcdef'\nwos_size = 'big'\n")
    bad = wormspace("cluster", "up", "--dir", str(tmp_path))
    assert bad.returncode == 2 and "needs at least one [[acceptors]]" in bad.stderr


# ---- identity and readiness (a cluster never reports success on another cluster's acceptors) ------------


def _free_run(n: int) -> int:
    """A port P with P..P+n-1 free right now (probed by binding)."""
    import socket

    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + n >= 65000:
            continue
        socks = []
        try:
            for k in range(n):
                t = socket.socket()
                socks.append(t)
                t.bind(("127.0.0.1", base + k))
            return base
        except OSError:
            continue
        finally:
            for t in socks:
                t.close()
    raise AssertionError("no run of free ports")


def test_up_on_ports_held_by_another_cluster_fails_and_its_clients_never_read_the_other_cluster(
    tmp_path: Path,
) -> None:
    from wormspace import PeersRefused
    from wormspace.layers.wor import Config
    from wormspace.layers.wormspace import SpaceLogic, WormSpace
    from wormspace.runtime.driver import TcpDriver

    base = _free_run(3)
    a_dir, others = tmp_path / "a", [tmp_path / "b", tmp_path / "c"]
    try:
        up = wormspace("cluster", "up", "--dir", str(a_dir), "--base-port", str(base))
        assert up.returncode == 0, up.stderr
        a_cfg = load_config(a_dir / "cluster.toml")
        with TcpDriver.from_config(a_cfg) as driver:
            ws = WormSpace(SpaceLogic(wos_size=a_cfg.wos_size), driver)
            seg = ws.alloc(b"a's")
            addr = ws.address(seg, 0)
            ws.write(addr, b"a's secret", ws.capture(addr))
        for b_dir in others:  # the collision used to report success in some tries: try more than once
            b = wormspace("cluster", "up", "--dir", str(b_dir), "--base-port", str(base))
            assert b.returncode == 1, b.stdout
            assert "acceptor 0" in b.stderr and ("cannot listen" in b.stderr or "another cluster" in b.stderr)
            b_cfg = load_config(b_dir / "cluster.toml")
            assert b_cfg.cluster_id != a_cfg.cluster_id
            assert not LocalCluster.open(b_dir).running()
            quick = Config(timeout=0.05, max_resends=1, max_rounds=1)
            with TcpDriver.from_config(b_cfg, config=quick) as driver:
                ws = WormSpace(SpaceLogic(wos_size=b_cfg.wos_size), driver)
                with pytest.raises(PeersRefused, match="another cluster") as e:
                    ws.read(addr)
                assert f"127.0.0.1:{base}" in str(e.value)
    finally:
        for d in [a_dir, *others]:
            if (d / "cluster.toml").exists():
                LocalCluster.open(d).stop(timeout=2)


def test_up_restarts_only_the_dead_acceptors_and_refuses_changes(cluster_dir: Path) -> None:
    import os
    import signal

    assert wormspace("cluster", "up", "--dir", str(cluster_dir)).returncode == 0
    _, st = status(cluster_dir)
    pids = {a["id"]: a["pid"] for a in st["acceptors"]}
    os.kill(pids[1], signal.SIGKILL)
    cluster = LocalCluster.open(cluster_dir)
    assert _wait(lambda: not cluster.alive(1))

    one = wormspace("cluster", "up", "--dir", str(cluster_dir), "--id", "1", "--json")
    assert one.returncode == 0, one.stderr
    rows = {a["id"]: a for a in json.loads(one.stdout)["acceptors"]}
    assert rows[1]["result"] == "started" and rows[1]["pid"] not in (None, pids[1])
    assert rows[0]["pid"] == pids[0] and rows[2]["pid"] == pids[2]

    for flags, why in [
        (["--auth"], "does not change authentication"),
        (["--acceptors", "5"], "describes 3 acceptors"),
        (["--groups", "3"], "does not change --groups"),
    ]:
        out = wormspace("cluster", "up", "--dir", str(cluster_dir), *flags)
        assert out.returncode == 2 and why in out.stderr, out.stderr

    # an acceptor whose database is gone refuses to start; the others keep running
    os.kill(rows[2]["pid"], signal.SIGKILL)
    assert _wait(lambda: not cluster.alive(2))
    (cluster.db_path(2)).unlink()
    again = wormspace("cluster", "up", "--dir", str(cluster_dir))
    assert again.returncode == 1
    assert "acceptor 2 cannot start" in cluster.log_path(2).read_text()
    assert "is missing but identity.json shows this acceptor has served" in again.stderr
    assert cluster.alive(0) and cluster.alive(1) and not cluster.alive(2)


def _wait(cond: Any, timeout: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return bool(cond())


@pytest.mark.parametrize("keyed", [False, True])
def test_a_changed_auth_option_is_refused_saying_how_the_cluster_was_made(tmp_path: Path, keyed: bool) -> None:
    """``--auth`` given to an existing cluster made the other way is refused (exit 2), and the message says
    which way the cluster was made."""
    key = 'auth_key_file = "k"\n' if keyed else ""
    (tmp_path / "cluster.toml").write_text(
        f'cluster_id = "0123456789abcdef"\n{key}[[acceptors]]\nid = 0\nhost = "127.0.0.1"\nport = 9\ndata_dir = "a0"\n'
    )
    if keyed:
        (tmp_path / "k").write_bytes(b"a cluster key of sixteen+ bytes")
    args = argparse.Namespace(acceptors=None, auth=not keyed, groups=None, base_port=None, action="status")
    with pytest.raises(UsageError, match=f"was created {'with' if keyed else 'without'} --auth"):
        _check_unchanged(tmp_path, load_config(tmp_path / "cluster.toml"), args)
