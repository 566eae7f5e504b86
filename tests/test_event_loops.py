"""The TCP runtime on both event loops it supports: asyncio's own and uvloop's (the ``fast`` extra).

``wormspace.layers.tcp.new_event_loop`` serves ``wormspace serve``; the environment variable ``WORMSPACE_LOOP``
chooses (``auto`` | ``asyncio`` | ``uvloop``). The synchronous client's private loop is asyncio's on either
choice; an asyncio client runs on its caller's loop (here ``tcp.run``'s: the loop under test). The rest of
the suite runs on asyncio's loop (``tests/conftest.py`` sets ``WORMSPACE_LOOP=asyncio`` unless the caller
chose); here the real-process checks run again on each loop: three acceptor processes started with the loop
under test (their log says which loop serves them), the synchronous client, an asyncio client whose
concurrent writes are merged into batch operations, and a malformed frame that must close only its own
connection. uvloop's transports are not subclasses of ``asyncio.Transport``: a server or client that assumed
so could not accept a connection.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.real_process import write_then_read
from wormspace import Cluster, LocalClusterHandle
from wormspace.aio import AsyncClient
from wormspace.errors import UsageError
from wormspace.layers import tcp
from wormspace.layers.wor import Config
from wormspace.layers.wormspace import SpaceLogic
from wormspace.runtime.driver import AsyncTcpDriver

pytestmark = pytest.mark.slow

FAST = Config(timeout=0.5, max_resends=4, max_rounds=8)


def _has_uvloop() -> bool:
    try:
        importlib.import_module("uvloop")
    except ImportError:
        return False
    return True


LOOPS = [
    "asyncio",
    pytest.param("uvloop", marks=pytest.mark.skipif(not _has_uvloop(), reason="uvloop is not installed")),
]


@pytest.fixture(params=LOOPS)
def on_loop(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[
        tuple[str, LocalClusterHandle]]:
    kind: str = request.param
    monkeypatch.setenv(tcp.LOOP_ENV, kind)  # the acceptor processes inherit it
    with Cluster.local(acceptors=3, data_dir=str(tmp_path / "c"), wos_size=64, record=False) as c:
        yield kind, c


def _garbage_frame_is_refused(local: Any) -> None:
    """A frame that does not decode, in place of the hello: the acceptor closes this connection (after at
    most a refusal hello) within the test's patience."""
    with socket.create_connection(local.addresses()[0], timeout=5) as s:
        s.sendall(struct.pack(">I", 7) + b"garbage")
        received = 0
        try:
            while chunk := s.recv(4096):
                received += len(chunk)
                assert received < 4096, "the acceptor kept talking to a peer that sent garbage"
        except ConnectionResetError:
            pass  # closed with unread bytes: a reset is a close too
        except TimeoutError:
            pytest.fail("the acceptor left a connection open after a frame that does not decode")


@pytest.mark.timeout(120)
def test_real_cluster_on_each_event_loop(on_loop: tuple[str, LocalClusterHandle]) -> None:
    kind, cluster = on_loop
    local = cluster.local
    for i in range(3):
        assert f"(event loop: {kind})" in local.log_path(i).read_text()

    ws = cluster.client()
    assert tcp.loop_name(ws.tcp._private_loop()) == "asyncio"  # the synchronous client's, on either choice
    seg = ws.alloc(b"loops")
    a = ws.address(seg, 0)
    ws.write(a, b"one", ws.capture(a))
    cap = ws.batch_capture(seg)
    ws.batch_write(seg, {i: b"%d" % i for i in range(1, 9)}, cap)
    assert [ws.read(ws.address(seg, i)) for i in range(9)] == [b"one"] + [b"%d" % i for i in range(1, 9)]

    _garbage_frame_is_refused(local)

    async def concurrent() -> tuple[list[object], int, str]:
        driver = AsyncTcpDriver.from_config(local.config, config=FAST)
        client = AsyncClient(SpaceLogic(wos_size=local.config.wos_size, seed=5), driver)
        _, values = await write_then_read(client, 32, b"a")
        name = tcp.loop_name(asyncio.get_running_loop())
        await driver.aclose()
        return values, driver.merged_ops, name

    values, merged, name = tcp.run(concurrent())
    assert name == kind
    assert values == [b"a%d" % i for i in range(32)]
    assert merged >= 2  # the 32 writes and the 32 reads each ran as batch operations
    # after the bad connection, the acceptors still serve the first client
    assert ws.read(a) == b"one"
    b = ws.address(seg, 20)
    ws.write(b, b"after", ws.capture(b))
    assert ws.read(b) == b"after"
    ws.close()


def _loop_made_for(monkeypatch: pytest.MonkeyPatch, choice: str) -> str:
    """The module of the loop ``new_event_loop`` makes under ``WORMSPACE_LOOP=choice`` (the loop closed)."""
    monkeypatch.setenv(tcp.LOOP_ENV, choice)
    loop = tcp.new_event_loop()
    try:
        assert tcp.loop_name(loop) == type(loop).__module__.split(".")[0]
        return tcp.loop_name(loop)
    finally:
        loop.close()


def test_loop_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _loop_made_for(monkeypatch, "asyncio") == "asyncio"

    monkeypatch.setenv(tcp.LOOP_ENV, "tokio")
    with pytest.raises(UsageError, match="WORMSPACE_LOOP='tokio': expected auto, asyncio or uvloop"):
        tcp.new_event_loop()

    real_import = importlib.import_module

    def no_uvloop(name: str, package: str | None = None) -> Any:
        if name == "uvloop":
            raise ImportError("No module named 'uvloop'")
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", no_uvloop)
    monkeypatch.setenv(tcp.LOOP_ENV, "uvloop")
    with pytest.raises(UsageError, match="uvloop is not installed"):
        tcp.new_event_loop()
    for auto in ("auto", ""):
        assert _loop_made_for(monkeypatch, auto) == "asyncio"


@pytest.mark.skipif(not _has_uvloop(), reason="uvloop is not installed")
def test_uvloop_chosen_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    for choice in ("uvloop", "auto", " UVLOOP "):
        assert _loop_made_for(monkeypatch, choice) == "uvloop"


def test_serve_refuses_a_bad_loop_choice_before_touching_its_data_dir(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    data = tmp_path / "a0"
    env = dict(os.environ, **{tcp.LOOP_ENV: "bogus"})
    out = subprocess.run(
        [sys.executable, "-m", "wormspace", "serve", "--id", "0", "--listen", "127.0.0.1:0", "--data", str(data),
         "--init", "--cluster-id", "0123456789abcdef0123456789abcdef"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2
    assert "WORMSPACE_LOOP='bogus': expected auto, asyncio or uvloop" in out.stderr
    assert "Traceback" not in out.stderr and "never awaited" not in out.stderr
    assert not data.exists()
