"""The apps on real acceptor processes (Cluster.local, TCP, SQLite), sync and asyncio; the log and kv verbs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.real_process import cluster_up, wormspace
from wormspace import Cluster, LocalClusterHandle
from wormspace.apps import WormKV, WormLog, WormPaxos
from wormspace.apps.history import AppHistory

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def local() -> Iterator[LocalClusterHandle]:
    # record=False: the WOR-level recorder takes one open operation per client, and asyncio runs many
    with Cluster.local(acceptors=3, wos_size=64, record=False) as cluster:
        yield cluster


def test_log_on_a_real_cluster_sync_and_asyncio(local: LocalClusterHandle) -> None:
    hist = AppHistory.of(local)
    log = WormLog(local.client(), name=b"real-log", history=hist)
    first = [log.append(b"%d" % i) for i in range(5)]
    assert first == sorted(set(first))  # one appender in its own segment: increasing positions (0..4 unless a
    # write timed out under load and its position was settled as junk)

    async def many() -> list[int]:
        return list(await asyncio.gather(*(log.aio.append(b"a%d" % i) for i in range(40))))

    positions = asyncio.run(many())
    assert len(set(positions)) == 40 and min(positions) > max(first)
    other = WormLog(local.client(), name=b"real-log", hole_timeout=0.2)
    assert other.tail() == max(positions) + 1
    entries = dict(other.entries())
    assert all(entries[p] == b"a%d" % i for i, p in enumerate(positions))
    assert all(entries[p] == b"%d" % i for i, p in enumerate(first))
    assert len(hist.events) == 2 * 45


def test_paxos_and_kv_on_a_real_cluster(local: LocalClusterHandle) -> None:
    applied: list[bytes] = []

    def apply(cmd: bytes) -> bytes:
        applied.append(cmd)
        return b"%d" % len(applied)

    rep = WormPaxos(local.client(), apply, name=b"real-smr")

    async def many() -> list[bytes]:
        return list(await asyncio.gather(*(rep.aio.submit(b"c%d" % i) for i in range(20))))

    results = asyncio.run(many())
    assert sorted(int(r) for r in results) == list(range(1, 21)) and len(applied) == 20
    late: list[bytes] = []

    def again(cmd: bytes) -> bytes:
        late.append(cmd)
        return b""

    WormPaxos(local.client(), again, name=b"real-smr").sync()
    assert late == applied

    kv = WormKV(local.client(), name=b"real-kv")
    kv2 = WormKV(local.client(), name=b"real-kv")
    kv.put(b"k", b"v1")
    assert kv2.get(b"k") == b"v1" and kv2.cas(b"k", b"v1", b"v2") and not kv.cas(b"k", b"v1", b"v3")
    assert asyncio.run(kv.aio.get(b"k")) == b"v2"


@pytest.fixture
def cluster_file(tmp_path: Path) -> Iterator[str]:
    with cluster_up(tmp_path / "cluster") as path:
        yield path


def test_the_log_and_kv_verbs(cluster_file: str) -> None:
    c = ("--cluster", cluster_file)
    assert wormspace("log", "append", "hello", *c).stdout == b"0\n"
    assert wormspace("log", "append", "-", *c, stdin=b"\x00bin").stdout == b"1\n"
    assert wormspace("log", "tail", *c).stdout == b"2\n"
    assert wormspace("log", "read", "1", *c).stdout == b"\x00bin\n"
    junk = wormspace("log", "read", "2", "--hole-timeout", "0.1", *c)
    assert junk.returncode == 1 and b"junk" in junk.stderr
    assert json.loads(wormspace("log", "append", "x", "--json", *c).stdout) == {"position": 3}
    assert wormspace("log", "read", "99999", *c).returncode == 3
    assert wormspace("log", "trim", "99999", *c).returncode == 2
    assert wormspace("log", "read", "-1", *c).returncode == 2
    assert wormspace("log", "append", "other", "--name", "second", *c).stdout == b"0\n"

    assert wormspace("kv", "get", "k", *c).returncode == 1
    assert wormspace("kv", "put", "k", "v1", *c).returncode == 0
    assert wormspace("kv", "get", "k", *c).stdout == b"v1\n"
    assert wormspace("kv", "cas", "k", "v1", "v2", *c).returncode == 0
    assert wormspace("kv", "cas", "k", "v1", "v3", *c).returncode == 1
    assert wormspace("kv", "cas", "n", "new", "--absent", *c).returncode == 0
    assert wormspace("kv", "cas", "n", *c).returncode == 2
    assert wormspace("kv", "delete", "k", *c).returncode == 0
    assert json.loads(wormspace("kv", "get", "k", "--json", *c).stdout)["value"] is None
    assert wormspace("kv", "get", "k", "--cluster", "/nonexistent/cluster.toml").returncode == 2


def test_the_apps_survive_an_acceptor_crash_and_restart(local: LocalClusterHandle) -> None:
    log = WormLog(local.client(), name=b"crash-log")
    kv = WormKV(local.client(), name=b"crash-kv")
    first = log.append(b"before")
    kv.put(b"k", b"before")
    local.crash(1)  # SIGKILL: a quorum of two is left
    try:
        second = log.append(b"during")
        kv.put(b"k", b"during")
        assert kv.cas(b"k", b"during", b"swapped")
    finally:
        local.restart(1)
    reader = WormLog(local.client(), name=b"crash-log")
    assert reader.read(first) == b"before" and reader.read(second) == b"during"
    assert WormKV(local.client(), name=b"crash-kv").get(b"k") == b"swapped"
