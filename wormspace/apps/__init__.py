"""Apps on the client API: WormLog (a shared log), WormPaxos (state machine replication), WormKV (a
replicated map on WormPaxos), WormTX (atomic commit without a coordinator). Each is a generator core over
``wormspace.client`` with sync and asyncio faces, plus its trusted spec; see docs/apps/."""

from wormspace.apps.kv import WormKV
from wormspace.apps.log import WormLog
from wormspace.apps.paxos import WormPaxos
from wormspace.apps.tx import WormTX

__all__ = ["WormKV", "WormLog", "WormPaxos", "WormTX"]
