"""WormSpace: an address space of write-once registers, replicated over Paxos acceptors.

Start with ``Cluster.simulated(acceptors=3, seed=1).client()``; see README.md and docs/.
"""

from __future__ import annotations

from wormspace.cluster import Cluster, LocalClusterHandle, RemoteWormSpace, SimCluster, connect
from wormspace.errors import (
    AlreadyWritten,
    CaptureStale,
    ContractViolation,
    Indeterminate,
    OperationFailed,
    PeersRefused,
    RemoteProtocolError,
    Trimmed,
    Unallocated,
    UsageError,
    WormSpaceError,
)
from wormspace.layers.network import Faults
from wormspace.layers.wor import EMPTY, Config
from wormspace.layers.wormspace import WormSpace
from wormspace.layers.wos import CaptureId, Listener, TrimmedInFlight

__all__ = [
    "EMPTY",
    "AlreadyWritten",
    "CaptureId",
    "CaptureStale",
    "ContractViolation",
    "Cluster",
    "Config",
    "Faults",
    "Indeterminate",
    "Listener",
    "LocalClusterHandle",
    "OperationFailed",
    "PeersRefused",
    "RemoteProtocolError",
    "RemoteWormSpace",
    "SimCluster",
    "Trimmed",
    "TrimmedInFlight",
    "Unallocated",
    "UsageError",
    "WormSpace",
    "WormSpaceError",
    "connect",
]
