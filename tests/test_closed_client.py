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


@pytest.mark.timeout(30)
def test_an_async_driver_after_aclose_refuses_calls() -> None:
    """Driver rule 4 for the asynchronous driver: after ``aclose`` it says it is closed, and a later call is
    a ``UsageError``, never an operation."""
    from wormspace.runtime.driver import AsyncTcpDriver

    async def scenario() -> None:
        driver = AsyncTcpDriver({0: ("127.0.0.1", 9)}, groups=[[0]], cluster_id="closedclienttest")
        await driver.aclose()
        assert driver.closed
        with pytest.raises(UsageError, match="this client is closed"):
            await driver.execute_async(OpRequest(kind=Kind.READ, segment=0, indices=(0,)))

    asyncio.run(scenario())


@pytest.mark.timeout(30)
def test_closing_a_client_from_a_coroutine_ends_that_loops_operations_and_connections() -> None:
    """``TcpDriver.close()`` called from a coroutine on a loop the client serves (its own driver for that
    loop): an operation still running there ends ``Indeterminate`` before ``close`` returns, and the
    driver's connections are closed once the loop runs on (the acceptor sees none left)."""
    from wormspace.identity import Identity
    from wormspace.layers.acceptor import AcceptorNode, MemoryStorage
    from wormspace.layers.tcp import AcceptorServer

    cid = "closedclienttest"

    async def scenario() -> None:
        server = AcceptorServer(AcceptorNode(0, MemoryStorage()), "127.0.0.1", 0,
                                identity=Identity(cluster_id=cid, acceptor_id=0))
        await server.start()
        silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # accepts, never answers
        peers = {0: ("127.0.0.1", server.port), 1: ("127.0.0.1", silent.sockets[0].getsockname()[1])}
        driver = TcpDriver(peers, groups=[[0], [1]], cluster_id=cid)
        try:
            assert (await driver.execute_async(OpRequest(kind=Kind.READ, segment=0, indices=(0,)))).error is None
            assert server.connections == 1
            pending = driver.for_loop().start_future(OpRequest(kind=Kind.READ, segment=1, indices=(0,)))
            await asyncio.sleep(0.05)  # its request is out; no answer will come
            driver.close()
            assert pending.done() and pending.result().error == "Indeterminate"
            for _ in range(200):
                if server.connections == 0:
                    break
                await asyncio.sleep(0.01)
            assert server.connections == 0
        finally:
            driver.close()
            silent.close()
            await server.close()

    asyncio.run(scenario())


@pytest.mark.timeout(30)
def test_closing_a_client_between_runs_of_a_loop_it_served_closes_that_loops_connections() -> None:
    """A loop the client served is not running when ``close()`` is called (a caller that runs its loop with
    ``run_until_complete`` now and then): the client's driver for that loop is closed on it, so the acceptor
    sees its connection end when the loop runs again."""
    from wormspace.identity import Identity
    from wormspace.layers.acceptor import AcceptorNode, MemoryStorage
    from wormspace.layers.tcp import AcceptorServer

    cid = "closedclienttest"
    loop = asyncio.new_event_loop()
    try:
        server = AcceptorServer(AcceptorNode(0, MemoryStorage()), "127.0.0.1", 0,
                                identity=Identity(cluster_id=cid, acceptor_id=0))
        loop.run_until_complete(server.start())
        driver = TcpDriver({0: ("127.0.0.1", server.port)}, groups=[[0]], cluster_id=cid)
        out = loop.run_until_complete(driver.execute_async(OpRequest(kind=Kind.READ, segment=0, indices=(0,))))
        assert out.error is None and server.connections == 1
        driver.close()

        async def until_gone() -> int:
            for _ in range(200):
                if server.connections == 0:
                    break
                await asyncio.sleep(0.01)
            return server.connections

        assert loop.run_until_complete(until_gone()) == 0
        loop.run_until_complete(server.close())
    finally:
        loop.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("where", ["plain", "coroutine"])
def test_a_client_used_synchronously_closes_its_connection(where: str) -> None:
    """``close()`` of a client whose private loop has run (synchronous calls), called from plain code or from
    a coroutine of another loop (the private loop is then closed on a short-lived thread: it cannot run
    inside the caller's): ``close`` returns without error and the acceptor sees the connection end."""
    import threading

    from wormspace.identity import Identity
    from wormspace.layers.acceptor import AcceptorNode, MemoryStorage
    from wormspace.layers.tcp import AcceptorServer

    cid = "closedclienttest"
    server_loop = asyncio.new_event_loop()
    server = AcceptorServer(AcceptorNode(0, MemoryStorage()), "127.0.0.1", 0,
                            identity=Identity(cluster_id=cid, acceptor_id=0))
    thread = threading.Thread(target=server_loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), server_loop).result(10)
        driver = TcpDriver({0: ("127.0.0.1", server.port)}, groups=[[0]], cluster_id=cid)
        assert driver.execute(OpRequest(kind=Kind.READ, segment=0, indices=(0,))).error is None
        private = driver._loop

        async def close_and_wait() -> int:
            if where == "coroutine":
                driver.close()
                assert private is not None and private.is_closed()  # closed before close returned
            for _ in range(200):
                if server.connections == 0:
                    break
                await asyncio.sleep(0.01)
            return server.connections

        if where == "plain":
            driver.close()
            assert private is not None and private.is_closed()
        assert asyncio.run(close_and_wait()) == 0
        with pytest.raises(UsageError, match="this client is closed"):
            driver.execute(OpRequest(kind=Kind.READ, segment=0, indices=(0,)))
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), server_loop).result(10)
        server_loop.call_soon_threadsafe(server_loop.stop)
        thread.join(10)
        server_loop.close()
