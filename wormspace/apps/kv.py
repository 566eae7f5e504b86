"""WormKV: a linearizable replicated map on WormPaxos.

Trusted spec (``KvSpec``, below): a map bytes -> bytes; ``get`` answers the value or None; ``put`` sets,
``delete`` removes, ``cas(k, expected, new)`` sets ``new`` iff the value is ``expected`` (None: absent).

Rule 1 (updates). ``put``, ``delete`` and ``cas`` are WormPaxos commands (``apply`` below is deterministic),
        so every replica applies them in one order; ``cas`` answers from the state just before it.
Rule 2 (reads). ``get`` syncs to the log's tail, then answers from the local map. This is linearizable
        because the tail is found with linearizable register reads: every update that completed before
        the ``get`` began was written at a position the scan reads (scans go on until a segment that does
        not exist), and the scan waits for (or fills with no-ops) every hole below the last written
        position, so the map answered is the state after a prefix of the command sequence that holds every
        completed update and only commands invoked before the ``get`` returned. A ``get`` costs reads only
        (no write, the log does not grow); the price is that it waits for holes, like any reader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wormspace.apps.faces import async_client, sync_client
from wormspace.apps.history import AppHistory, b64, recorded
from wormspace.apps.paxos import PaxosCore
from wormspace.client import OpGen, SpaceLogic, UsageError

PUT, DELETE, CAS = b"P", b"D", b"C"
YES, NO = b"1", b"0"


@dataclass
class KvSpec:
    """TRUSTED. The replicated map, one operation at a time."""

    data: dict[bytes, bytes] = field(default_factory=dict)

    def get(self, k: bytes) -> bytes | None:
        return self.data.get(k)

    def put(self, k: bytes, v: bytes | None) -> None:  # v None: delete
        self.data.pop(k, None) if v is None else self.data.__setitem__(k, v)

    def cas(self, k: bytes, expected: bytes | None, new: bytes) -> bool:
        if self.data.get(k) != expected:
            return False
        self.data[k] = new
        return True


def _field(b: bytes | None) -> bytes:
    return b"\xff" if b is None else len(b).to_bytes(4, "big") + b


def _unfield(buf: bytes, i: int) -> tuple[bytes | None, int]:
    if buf[i] == 0xFF:
        return None, i + 1
    n = int.from_bytes(buf[i : i + 4], "big")
    return buf[i + 4 : i + 4 + n], i + 4 + n


def _bytes(name: str, v: object, none_ok: bool = False) -> None:
    if not (type(v) is bytes or (none_ok and v is None)):
        raise UsageError(f"{name} must be bytes{' or None' if none_ok else ''}, got {type(v).__name__}")


class KvCore:
    """The generator core of a WormKV client: ``get``, ``put``, ``delete``, ``cas`` over ``SpaceLogic``."""

    def __init__(self, name: bytes = b"kv", *, policy: str = "sticky", hole_timeout: float = 0.5,
                 history: AppHistory | None = None, **paxos: Any) -> None:
        self.data: dict[bytes, bytes] = {}
        self.paxos = PaxosCore(self.apply, name, policy=policy, hole_timeout=hole_timeout, **paxos)
        self.history, self.name = history, self.paxos.log.name

    def apply(self, cmd: bytes) -> bytes:
        """The deterministic state machine (Rule 1)."""
        key, i = _unfield(cmd, 1)
        assert key is not None
        if cmd[:1] == CAS:
            expected, i = _unfield(cmd, i)
            if self.data.get(key) != expected:
                return NO
        value, _ = _unfield(cmd, i)
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value
        return YES

    def _rec(self, logic: SpaceLogic, f: str, key: bytes, value: Any, gen: OpGen[Any],
             finish: Callable[[Any], tuple[str, Any, Any]]) -> OpGen[Any]:
        return (yield from recorded(self.history, logic.process, ("kv", self.name, f, b64(key), value),
                                    gen, finish))

    def _get(self, logic: SpaceLogic, key: bytes) -> OpGen[bytes | None]:
        yield from self.paxos.sync(logic)
        value: bytes | None = self.data.get(key)
        return value

    def get(self, logic: SpaceLogic, key: bytes) -> OpGen[bytes | None]:
        _bytes("key", key)
        value: bytes | None = yield from self._rec(
            logic, "read", key, None, self._get(logic, key), lambda v: ("ok", None, b64(v))
        )
        return value

    def put(self, logic: SpaceLogic, key: bytes, value: bytes | None) -> OpGen[None]:
        """Set ``key`` to ``value`` (None: delete it)."""
        _bytes("key", key)
        _bytes("value", value, none_ok=True)
        cmd = (DELETE if value is None else PUT) + _field(key) + _field(value)
        self.paxos.check_command(logic, cmd, "a put (its key and value encoded)")
        if self.history is None:  # nothing to record: no wrapper on the hot path
            yield from self.paxos.submit(logic, cmd)
            return
        yield from self._rec(logic, "write", key, b64(value), self.paxos.submit(logic, cmd),
                             lambda _: ("ok", None, b64(value)))

    def cas(self, logic: SpaceLogic, key: bytes, expected: bytes | None, new: bytes) -> OpGen[bool]:
        _bytes("key", key)
        _bytes("expected", expected, none_ok=True)
        _bytes("new", new)
        cmd = CAS + _field(key) + _field(expected) + _field(new)
        self.paxos.check_command(logic, cmd, "a cas (its key and values encoded)")
        value = [b64(expected), b64(new)]
        out = yield from self._rec(logic, "cas", key, value, self.paxos.submit(logic, cmd),
                                   lambda r: ("ok" if r == YES else "fail", None, value))
        return bool(out == YES)


class WormKV:
    """A replicated map named ``name`` on the synchronous client ``ws`` (see the module docstring)."""

    def __init__(self, ws: Any, name: bytes = b"kv", *, policy: str = "sticky", replica: int = 0, replicas: int = 1,
                 hole_timeout: float = 0.5, history: AppHistory | None = None) -> None:
        self.ws = sync_client(ws, "WormKV")
        self.core = KvCore(name, policy=policy, replica=replica, replicas=replicas, hole_timeout=hole_timeout,
                           history=history)

    def get(self, key: bytes) -> bytes | None:
        result: bytes | None = self.ws.run(self.core.get(self.ws.logic, key))
        return result

    def put(self, key: bytes, value: bytes) -> None:
        _bytes("value", value)
        self.ws.run(self.core.put(self.ws.logic, key, value))

    def delete(self, key: bytes) -> None:
        self.ws.run(self.core.put(self.ws.logic, key, None))

    def cas(self, key: bytes, expected: bytes | None, new: bytes) -> bool:
        return bool(self.ws.run(self.core.cas(self.ws.logic, key, expected, new)))

    @property
    def aio(self) -> AsyncWormKV:
        return AsyncWormKV(self.ws.aio, core=self.core)


class AsyncWormKV:
    """The asyncio face of WormKV over an ``AsyncClient``."""

    def __init__(self, aclient: Any, name: bytes = b"kv", *, core: KvCore | None = None, policy: str = "sticky",
                 replica: int = 0, replicas: int = 1, hole_timeout: float = 0.5,
                 history: AppHistory | None = None) -> None:
        self.aclient = async_client(aclient, "WormKV")
        self.core = core or KvCore(name, policy=policy, replica=replica, replicas=replicas,
                                   hole_timeout=hole_timeout, history=history)

    async def get(self, key: bytes) -> bytes | None:
        result: bytes | None = await self.aclient.run(self.core.get(self.aclient.logic, key))
        return result

    async def put(self, key: bytes, value: bytes) -> None:
        _bytes("value", value)
        await self.aclient.run(self.core.put(self.aclient.logic, key, value))

    async def delete(self, key: bytes) -> None:
        await self.aclient.run(self.core.put(self.aclient.logic, key, None))

    async def cas(self, key: bytes, expected: bytes | None, new: bytes) -> bool:
        return bool(await self.aclient.run(self.core.cas(self.aclient.logic, key, expected, new)))


__all__ = ["AsyncWormKV", "KvCore", "KvSpec", "WormKV"]
