"""Apps built on the client API (``wormspace.client``): each a generator core plus its spec."""

from wormspace.apps.tx import WormTX

__all__ = ["WormTX"]
