"""A closed TCP client: every call is caller misuse (``UsageError``), never an ``Indeterminate`` outcome."""

from __future__ import annotations

import asyncio

import pytest

from wormspace.cluster import RemoteWormSpace
from wormspace.errors import Indeterminate, UsageError
from wormspace.layers.wor import Kind, OpRequest
from wormspace.layers.wormspace import SpaceLogic
from wormspace.runtime.driver import TcpDriver


@pytest.mark.timeout(30)
def test_a_closed_clients_calls_raise_usage_error() -> None:
    # Nothing listens on these addresses: a closed driver must refuse before it sends anything.
    peers = {0: ("127.0.0.1", 9), 1: ("127.0.0.1", 9), 2: ("127.0.0.1", 9)}
    driver = TcpDriver(peers, groups=[[0, 1, 2]], cluster_id="closedclienttest")
    ws = RemoteWormSpace(SpaceLogic(wos_size=8, seed=1), driver)
    ws.close()
    for call in (lambda: ws.read(0), lambda: ws.capture(3), lambda: ws.alloc(b"m"), lambda: ws.trim(0)):
        with pytest.raises(UsageError, match="this client is closed") as caught:
            call()
        assert not isinstance(caught.value, Indeterminate)
    request = OpRequest(kind=Kind.READ, segment=0, indices=(0,))
    with pytest.raises(UsageError, match="this client is closed"):
        driver.execute(request)
    with pytest.raises(UsageError, match="this client is closed"):
        asyncio.run(driver.execute_async(request))
