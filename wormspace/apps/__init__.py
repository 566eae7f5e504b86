"""Apps on the client API: WormLog (a shared log), WormPaxos (state machine replication), WormKV (a
replicated map on WormPaxos), WormTX (atomic commit without a coordinator). Each is a generator core over
``wormspace.client`` with sync and asyncio faces, plus its trusted spec; see docs/apps/."""

from wormspace.apps.history import AppHistory
from wormspace.apps.kv import AsyncWormKV, WormKV
from wormspace.apps.log import AsyncWormLog, WormLog
from wormspace.apps.paxos import AsyncWormPaxos, WormPaxos
from wormspace.apps.tx import AsyncWormTX, WormTX

__all__ = [
    "AppHistory",
    "AsyncWormKV",
    "AsyncWormLog",
    "AsyncWormPaxos",
    "AsyncWormTX",
    "WormKV",
    "WormLog",
    "WormPaxos",
    "WormTX",
]
