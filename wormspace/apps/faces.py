"""The client an app's face is given, checked once when the app object is made.

Every app has a synchronous face (``WormLog``, ``WormPaxos``, ``WormKV``, ``WormTX``) over a synchronous
client (``cluster.client()``, ``wormspace.connect(...)``) and an asyncio face (``AsyncWormLog``, ...; or
``app.aio``) over an ``AsyncClient`` (``ws.aio``). Handing one face the other kind of client, or something
that is no client at all, is a ``UsageError`` naming the face that fits -- at construction, not as a
confusing failure at the first call.
"""

from __future__ import annotations

from typing import Any, TypeVar

from wormspace.client import AsyncClient, UsageError

C = TypeVar("C")


def sync_client(ws: C, app: str) -> C:
    """``ws`` if it is a synchronous client; else a ``UsageError`` saying which face to use."""
    if isinstance(ws, AsyncClient):
        raise UsageError(f"{app} takes a synchronous client; for an asyncio client (ws.aio) use Async{app}")
    if not (callable(getattr(ws, "run", None)) and hasattr(ws, "logic")):
        raise UsageError(f"{app} takes a client (cluster.client() or wormspace.connect(...)), "
                         f"not {type(ws).__name__}")
    return ws


def async_client(aclient: Any, app: str) -> AsyncClient:
    """``aclient`` if it is an ``AsyncClient``; else a ``UsageError`` saying which face to use."""
    if isinstance(aclient, AsyncClient):
        return aclient
    if callable(getattr(aclient, "run", None)) and hasattr(aclient, "logic"):
        raise UsageError(f"Async{app} takes an asyncio client (ws.aio); for a synchronous client use {app}(ws, ...)")
    raise UsageError(f"Async{app} takes an asyncio client (ws.aio), not {type(aclient).__name__}")
