"""App-level histories: what the apps' callers saw, in the Jepsen convention, apart from WOR-level events.

Rule 1. An app history is its own list of events (JSON lines), never mixed into ``cluster.history()``; every
        event carries ``"app"`` (``"log"``, ``"paxos"``, ``"kv"`` or ``"tx"``) and ``"name"`` (the app's name,
        base64; WormTX's is ``b"tx"`` unless given),
        so a file holding both kinds can still be told apart (WOR-level events have no ``app`` field).
Rule 2. Fields and outcomes follow docs/history-format.md: ``process``, ``type`` (``invoke`` | ``ok`` |
        ``fail`` | ``info``), ``f``, ``key``, ``value``, ``time`` (ns on the cluster's clock), ``error``.
        ``fail`` = certainly no effect; ``info`` = indeterminate. Bytes are base64 strings.
Rule 3. The ``f``/``key``/``value`` of each app (docs/history-format.md, "App-level histories"):
        log: ``append`` (invoke key null, value the data; ok key the position), ``read`` (key the position;
        ok value the data, or null for junk; fail ``Trimmed``), ``tail`` (ok value the tail, an int),
        ``trim`` (key ``upto``);
        kv: Jepsen's register workload per key (key = the map key, base64): ``read`` (ok value or null:
        absent), ``write`` (value, or null for a delete), ``cas`` (value ``[expected or null, new]``; ok =
        swapped, fail = not swapped);
        paxos: ``submit`` (invoke value the command; ok key the position, value apply's result);
        tx: ``begin`` (invoke value ``{"participants": n, "variant": v}``; ok key and value the transaction),
        ``vote`` (key the transaction, value ``{"participant": i, "vote": "YES" | "NO"}``; ok value a bool),
        ``decide`` (key the transaction, value ``{"participant": i | null, "wait": s}`` or, for C5's
        coordinator, ``{"coordinator": true, "wait": s}``; ok value ``"commit"`` | ``"abort"``).
Rule 4. ``fail`` only when the operation certainly had no effect. An operation that may write (``WRITES``:
        append, trim, submit, a KV write or cas, begin, vote, decide) is several WormSpace operations, and
        an outcome raised by a later one (``CaptureStale``, ``Trimmed``, ...) may follow an earlier write
        of its own that landed: it is recorded ``info`` (indeterminate), with the outcome's name as its
        ``error``. Reads (log read and tail, KV read) record their outcome as ``fail``.
Rule 5. One operation is open per process at a time: ``process`` is the client's process number, and a
        client running several operations at once (asyncio) gets a fresh number ``process + k * 1_000_000``
        for each extra one. A process whose operation ended ``info`` has crashed (the Jepsen convention)
        and invokes nothing more: the client's later operations take a fresh number the same way.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, TypeVar

from wormspace.client import Indeterminate, OperationFailed, Trimmed

T = TypeVar("T")

PROCESS_STRIDE = 1_000_000  # as wormspace.history's (the apps import the client API only)
WRITES = frozenset({("log", "append"), ("log", "trim"), ("paxos", "submit"), ("kv", "write"), ("kv", "cas"),
                    ("tx", "begin"), ("tx", "vote"), ("tx", "decide")})  # Rule 4


def b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


class AppHistory:
    """A recorder of app-level operations (see the module rules). ``AppHistory.of(cluster)`` uses the
    cluster's clock (the virtual one of a simulated cluster); ``events`` is the list of recorded events."""

    def __init__(self, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.clock = clock
        self.events: list[dict[str, Any]] = []
        self._open: dict[int, dict[str, Any]] = {}
        self._crashed: set[int] = set()  # processes whose operation ended info (Rule 5)
        self._lock = threading.Lock()

    @classmethod
    def of(cls, cluster: object) -> AppHistory:
        """A history on ``cluster``'s clock: virtual time for ``Cluster.simulated``, else monotonic ns."""
        net = getattr(cluster, "net", None)
        if net is not None and hasattr(net, "now"):
            return cls(clock=lambda: int(net.now * 1e9))
        return cls()

    def invoke(self, process: int, app: str, name: bytes, f: str, key: Any, value: Any) -> int:
        """Record a call; returns the process number the operation runs under (Rule 5)."""
        with self._lock:
            p = process
            while p in self._open or p in self._crashed:
                p += PROCESS_STRIDE
            event = {"process": p, "type": "invoke", "f": f, "key": key, "value": value,
                     "time": self.clock(), "app": app, "name": b64(name)}
            self._open[p] = event
            self.events.append(event)
            return p

    def complete(self, process: int, type_: str, *, key: Any = None, value: Any = None,
                 error: str | None = None) -> None:
        """Close the open operation of ``process`` with ``type_`` ok | fail | info."""
        with self._lock:
            inv = self._open.pop(process)
            if type_ == "info":
                self._crashed.add(process)
            event = {"process": process, "type": type_, "f": inv["f"],
                     "key": inv["key"] if key is None else key, "value": value, "time": self.clock(),
                     "app": inv["app"], "name": inv["name"]}
            if error is not None:
                event["error"] = error
            self.events.append(event)

    def to_jsonl(self) -> str:
        return "".join(json.dumps(e) + "\n" for e in self.events)

    def write(self, path: str | Path) -> None:
        Path(path).write_text(self.to_jsonl())


def outcome_name(e: OperationFailed) -> str:
    """The name a history gives an outcome: ``Trimmed`` for every trimmed answer, else the class's name."""
    return "Trimmed" if isinstance(e, Trimmed) else type(e).__name__


def recorded(
    history: AppHistory | None,
    process: int,
    what: tuple[str, bytes, str, Any, Any],
    gen: Generator[Any, Any, T],
    finish: Callable[[T], tuple[str, Any, Any]],
) -> Generator[Any, Any, T]:
    """Run ``gen`` (an app core's operation), recording it when ``history`` is set. ``what`` is (app, name,
    f, key, value) of the invoke; ``finish(result)`` -> (type, key, value) of the completion. An outcome
    exception is recorded (Rule 4) as ``fail`` when the operation writes nothing (certainly no effect), as
    ``info`` when it is indeterminate or the operation may have written, and re-raised."""
    if history is None:
        return (yield from gen)
    app, name, f, key, value = what
    p = history.invoke(process, app, name, f, key, value)
    try:
        result = yield from gen
    except Indeterminate as e:  # first: TrimmedInFlight is Indeterminate too
        history.complete(p, "info", error="Indeterminate")
        raise e
    except OperationFailed as e:
        history.complete(p, "info" if (app, f) in WRITES else "fail", error=outcome_name(e))
        raise e
    except BaseException as e:
        history.complete(p, "info", error="Indeterminate")
        raise e
    kind, out_key, out_value = finish(result)
    history.complete(p, kind, key=out_key, value=out_value)
    return result


__all__ = ["PROCESS_STRIDE", "WRITES", "AppHistory", "b64", "outcome_name", "recorded"]
