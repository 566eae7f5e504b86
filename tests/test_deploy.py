"""The cluster file, auth keys, data-directory locks, and ``LocalCluster`` + ``TcpDriver`` end to end."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.real_process import write_then_read
from wormspace.errors import UsageError
from wormspace.layers.wor import EMPTY, Config, Kind, OpRequest
from wormspace.layers.wormspace import SpaceLogic, WormSpace
from wormspace.runtime.auth import load_auth_key
from wormspace.runtime.config import AcceptorConfig, ClusterConfig, load_config, write_config
from wormspace.runtime.datadir import lock_data_dir, running_pid, unlock_data_dir
from wormspace.runtime.driver import AsyncTcpDriver, TcpDriver
from wormspace.runtime.supervise import LocalCluster

# ---- the cluster file -----------------------------------------------------------------------------------

hosts = st.text(st.characters(blacklist_categories=["Cs", "Zs", "Cc", "Zl", "Zp"]), min_size=1, max_size=12)
paths = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=12).map(lambda s: "/data/" + s)


@st.composite
def cluster_configs(draw: st.DrawFn) -> ClusterConfig:
    n = draw(st.integers(1, 4))
    ids = draw(st.lists(st.integers(0, 1000), min_size=n, max_size=n, unique=True))
    ports = draw(st.lists(st.integers(1, 65535), min_size=n, max_size=n, unique=True))
    dirs = draw(st.lists(paths, min_size=n, max_size=n, unique_by=lambda p: str(Path(p))))
    acceptors = tuple(
        AcceptorConfig(id=i, host=draw(hosts), port=p, data_dir=str(Path(d)))
        for i, p, d in zip(ids, ports, dirs, strict=True)
    )
    return ClusterConfig(
        acceptors=acceptors,
        cluster_id=draw(st.from_regex(r"[0-9A-Za-z_-]{8,64}", fullmatch=True)),
        wos_size=draw(st.integers(1, 4096)),
        groups=draw(st.sampled_from([g for g in range(1, n + 1) if n % g == 0])),
        auth_key_file=draw(st.none() | paths.map(lambda p: str(Path(p)))),
        max_value=draw(st.integers(1, 1 << 20)),
    )


@given(cluster_configs())
@settings(max_examples=60)
def test_write_then_load_gives_the_same_config(cfg: ClusterConfig) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "cluster.toml"
        write_config(cfg, path)
        assert load_config(path) == cfg


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "cluster.toml").write_text(
        'cluster_id = "0123456789abcdef"\nauth_key_file = "k"\n'
        '[[acceptors]]\nid = 0\nhost = "h"\nport = 1\ndata_dir = "a0"\n'
    )
    cfg = load_config(tmp_path / "cluster.toml")
    assert cfg.acceptors[0].data_dir == str(tmp_path.resolve() / "a0")
    assert cfg.auth_key_file == str(tmp_path.resolve() / "k")
    assert (cfg.wos_size, cfg.groups, cfg.max_value) == (1024, 1, 1 << 20)


ONE = 'cluster_id = "0123456789abcdef"\n[[acceptors]]\nid = 0\nhost = "h"\nport = 7000\ndata_dir = "a"\n'
TWO = ONE + '[[acceptors]]\nid = 1\nhost = "h"\nport = 7001\ndata_dir = "b"\n'
BAD_FILES = {
    "wos_size = 1\nwos_sise = 2\n" + ONE: "unknown key.*wos_sise",
    ONE.replace("port = 7000", "port = 7000\npotr = 1"): r"acceptors\[0\]: unknown key.*potr",
    ONE.replace('host = "h"\n', ""): r"acceptors\[0\]: missing key.*host",
    ONE.replace("port = 7000", 'port = "7000"'): "port must be an int",
    ONE.replace("port = 7000", "port = 70000"): "port must be an int",
    ONE.replace("id = 0", "id = true"): "id must be an int",
    ONE.replace('host = "h"', 'host = ""'): "host must be",
    TWO.replace("id = 1", "id = 0"): "ids must be unique",
    TWO.replace("port = 7001", "port = 7000"): "share one host:port",
    TWO.replace('data_dir = "b"', 'data_dir = "a"'): "share one data_dir",
    "groups = 2\n" + ONE: "groups must be a positive int dividing",
    "wos_size = 0\n" + ONE: "wos_size must be",
    "max_value = 2097152\n" + ONE: "max_value must be",
    "wos_size = 1.5\n" + ONE: "wos_size must be",
    "auth_key_file = 3\n" + ONE: "auth_key_file must be",
    'cluster_id = "0123456789abcdef"\nacceptors = 3\n': r"needs at least one \[\[acceptors\]\]",
    'cluster_id = "0123456789abcdef"\n': r"needs at least one \[\[acceptors\]\]",
    "": "no cluster_id",
    ONE.replace('cluster_id = "0123456789abcdef"\n', ""): "no cluster_id: .*token_hex",
    ONE.replace('"0123456789abcdef"', '"short"'): "cluster_id must be 8 to 64",
    ONE.replace('"0123456789abcdef"', "12345678901"): "cluster_id must be 8 to 64",
    "[[acceptors]\n": "not valid TOML",
    'cluster_id = "0123456789abcdef"\nacceptors = [1]\n': r"acceptors\[0\] must be a table",
}


@pytest.mark.parametrize("text", sorted(BAD_FILES))
def test_bad_cluster_files_name_the_problem(tmp_path: Path, text: str) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=BAD_FILES[text]) as e:
        load_config(path)
    assert str(path) in str(e.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such cluster file"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe = 1")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_config(tmp_path / "bin.toml")


def test_groups_are_contiguous_blocks() -> None:
    accs = tuple(AcceptorConfig(id=i, host="h", port=7000 + i, data_dir=f"/d{i}") for i in (5, 0, 3, 1, 2, 4))
    assert ClusterConfig(acceptors=accs, cluster_id="c" * 8, groups=2).acceptor_groups() == [[0, 1, 2], [3, 4, 5]]


def test_auth_keys(tmp_path: Path) -> None:
    short = tmp_path / "short.key"
    short.write_text("too short\n")
    with pytest.raises(UsageError, match="at least 16 bytes"):
        load_auth_key(short)
    good = tmp_path / "good.key"
    good.write_text("  0123456789abcdef0123  \n")
    assert load_auth_key(good) == b"0123456789abcdef0123"
    with pytest.raises(UsageError, match="cannot read"):
        load_auth_key(tmp_path / "absent.key")


def test_data_dir_lock(tmp_path: Path) -> None:
    assert running_pid(tmp_path) is None
    fd = lock_data_dir(tmp_path)
    try:
        assert running_pid(tmp_path) == os.getpid()
        with pytest.raises(UsageError, match=f"in use by process {os.getpid()}"):
            lock_data_dir(tmp_path, wait=0.05)
    finally:
        unlock_data_dir(fd)
    assert running_pid(tmp_path) is None


# ---- real processes, the TCP driver ---------------------------------------------------------------------

FAST = Config(timeout=0.1, max_resends=2, max_rounds=2)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path_factory.mktemp("local"), 3, auth=True, startup_timeout=20)
    with cluster:
        yield cluster


@pytest.mark.timeout(60)
def test_driver_runs_the_client_api_over_tcp(local: LocalCluster) -> None:
    with TcpDriver.from_config(local.config, config=FAST) as driver:
        ws = WormSpace(SpaceLogic(wos_size=local.config.wos_size, seed=1), driver)
        seg = ws.alloc(b"meta")
        addr = ws.address(seg, 0)
        cap = ws.capture(addr)
        ws.write(addr, b"hello", cap)
        assert ws.read(addr) == b"hello"
        assert ws.read(ws.address(seg, 1)) is EMPTY


@pytest.mark.timeout(60)
def test_driver_is_thread_safe_and_async(local: LocalCluster) -> None:
    with TcpDriver.from_config(local.config, config=FAST) as driver:
        cap = driver.execute(OpRequest(kind=Kind.CAPTURE, segment=50, indices=tuple(range(64))))
        assert cap.error is None
        errors: list[object] = []

        def writer(k: int) -> None:
            for i in range(k, 64, 4):
                out = driver.execute(
                    OpRequest(kind=Kind.WRITE, segment=50, values=((i, b"%d" % i),), ballot=cap.ballot)
                )
                if out.error is not None:
                    errors.append(out)

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == []

        async def read_all() -> tuple[list[object], AsyncTcpDriver, bool]:
            outs = await asyncio.gather(
                *[driver.execute_async(OpRequest(kind=Kind.READ, segment=50, indices=(i,))) for i in range(64)]
            )
            on_loop = driver.for_loop()
            return [o.chosen_map()[i] for i, o in enumerate(outs)], on_loop, on_loop.loop is asyncio.get_running_loop()

        values, on_loop, same_loop = asyncio.run(read_all())
        assert values == [b"%d" % i for i in range(64)]
        assert same_loop  # the async caller's operations ran on its own loop: no thread hop
        assert on_loop.merged_ops >= 1  # the 64 reads of one loop turn ran as batch operations
        assert on_loop.transport.messages_sent < 64 * 3


@pytest.mark.timeout(60)
def test_async_driver_runs_on_the_callers_loop_without_threads(local: LocalCluster) -> None:
    from wormspace.aio import AsyncClient

    threads_before = {t.ident for t in threading.enumerate()}

    async def main() -> tuple[list[object], int, set[int | None], bool]:
        driver = AsyncTcpDriver.from_config(local.config, config=FAST)
        client = AsyncClient(SpaceLogic(wos_size=local.config.wos_size, seed=3), driver)
        seg, values = await write_then_read(client, 32)
        threads = {t.ident for t in threading.enumerate()}
        on_loop = driver.loop is asyncio.get_running_loop()
        await driver.aclose()
        with pytest.raises(UsageError, match="this client is closed"):
            await client.read(client.address(seg, 0))
        return values, driver.merged_ops, threads, on_loop

    values, merged, threads, on_loop = asyncio.run(main())
    assert values == [b"%d" % i for i in range(32)]
    assert on_loop and threads == threads_before  # no driver thread: everything ran on the caller's loop
    assert merged >= 2  # the 32 writes and the 32 reads each ran as batch operations


@pytest.mark.timeout(60)
def test_sync_driver_runs_its_loop_in_the_calling_thread(local: LocalCluster) -> None:
    threads_before = {t.ident for t in threading.enumerate()}
    with TcpDriver.from_config(local.config, config=FAST) as driver:
        cap = driver.execute(OpRequest(kind=Kind.CAPTURE, segment=51, indices=tuple(range(8))))
        assert cap.error is None
        for i in range(8):
            out = driver.execute(OpRequest(kind=Kind.WRITE, segment=51, values=((i, b"%d" % i),), ballot=cap.ballot))
            assert out.error is None
        # no driver thread: the caller ran the loop; one request per acceptor and operation, in at most as many
        # frames (requests queued while a connection opens share one)
        assert {t.ident for t in threading.enumerate()} == threads_before
        assert driver.transport.messages_sent == 9 * 3 and driver.transport.frames_sent <= 9 * 3

        async def blocking_call_inside_a_coroutine() -> object:
            return driver.execute(OpRequest(kind=Kind.READ, segment=51, indices=(3,))).chosen_map()

        assert asyncio.run(blocking_call_inside_a_coroutine()) == {3: b"3"}
    with pytest.raises(UsageError, match="this client is closed"):
        driver.execute(OpRequest(kind=Kind.READ, segment=51, indices=(3,)))


@pytest.mark.timeout(90)
def test_sync_driver_sees_connections_closed_while_its_loop_was_not_running(local: LocalCluster) -> None:
    # A long timeout: a request written to a connection the acceptor had closed would show as a resend.
    with TcpDriver.from_config(local.config, config=Config(timeout=2.0)) as driver:
        assert driver.execute(OpRequest(kind=Kind.READ, segment=52, indices=(0,))).error is None
        for _ in range(200):  # the loop runs only in calls: until every connection is open and nothing is queued
            if all(driver.transport.connected(i) and not driver.transport.peers[i].queue for i in range(3)):
                break
            assert driver.execute(OpRequest(kind=Kind.READ, segment=52, indices=(0,))).error is None
        else:
            pytest.fail("the client's connections did not all open")
        for i in range(3):  # every connection closes while no call runs the client's loop
            local.crash(i)
            local.restart(i)
        sent = driver.transport.messages_sent
        assert driver.execute(OpRequest(kind=Kind.READ, segment=52, indices=(0,))).error is None
        # at most one request per acceptor, on new connections (the third may still be opening when a quorum
        # has answered); a request written to a closed connection would have been resent
        assert driver.transport.messages_sent - sent <= 3


@pytest.mark.timeout(60)
def test_crash_pause_and_restart_acceptors(local: LocalCluster) -> None:
    with TcpDriver.from_config(local.config, config=FAST) as driver:

        def write(seg: int) -> str | None:
            cap = driver.execute(OpRequest(kind=Kind.CAPTURE, segment=seg, indices=(0,)))
            if cap.error is not None:
                return cap.error
            out = driver.execute(OpRequest(kind=Kind.WRITE, segment=seg, values=((0, b"x"),), ballot=cap.ballot))
            return out.error

        assert write(60) is None
        local.crash(1)
        assert not local.alive(1)
        assert write(61) is None  # a quorum of 2 is left
        local.pause(2)
        try:
            assert write(62) == "Indeterminate"  # one of three answers: no quorum
        finally:
            local.resume(2)
        local.restart(1)
        assert local.alive(1)
        assert write(63) is None
        read = driver.execute(OpRequest(kind=Kind.READ, segment=61, indices=(0,)))
        assert read.chosen_map() == {0: b"x"}


@pytest.mark.timeout(90)
def test_the_real_demo_is_linearizable(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "wormspace",
            "demo",
            "--real",
            "--ops",
            "6",
            "--json",
            "--history-out",
            str(tmp_path / "h"),
        ],
        capture_output=True,
        text=True,
        timeout=80,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads(out.stdout)
    assert summary["linearizability"] == "OK" and summary["client_failures"] == []
    assert len(summary["faults"]) == 4 and summary["events"] > 20
    assert (tmp_path / "h").stat().st_size > 0
