"""Apps on the client API: WormLog (a shared log), WormPaxos (state machine replication), WormKV (a
replicated map on WormPaxos). Each is a generator core over ``wormspace.client`` with sync and asyncio
faces; see docs/apps/."""

from wormspace.apps.kv import WormKV
from wormspace.apps.log import WormLog
from wormspace.apps.paxos import WormPaxos

__all__ = ["WormKV", "WormLog", "WormPaxos"]
