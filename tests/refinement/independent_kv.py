"""An independent checker of WormKV app histories (Jepsen's register workload, one register per key).

Written from docs/history-format.md alone; it shares no code with ``wormspace`` (the search for an order is
``independent_wor.search``, as independent of the library as this file). Per key, a register starts
absent (None) and an order of the operations is searched (Wing and Gong, with Lowe's memo) in which:

* ``read`` ``ok`` observes its value (null: absent); a read that did not return ``ok`` observes nothing;
* ``write`` of ``v`` (null: a delete) sets the register; ``cas`` ``[e, n]`` sets it to ``n`` when it holds
  ``e``, and ``ok`` means it did; a ``cas`` ``fail`` *without* ``error`` is a refused swap: it observes a
  register not holding ``e``;
* a ``write`` or ``cas`` that ``fail``s with an ``error`` had no effect and observed nothing; one that ended
  ``info`` (or never ended) may take effect once, anywhere after its invoke, or never.

Real-time order: an operation precedes another when its completion's ``(time, line)`` is below the other's
invoke's ``(time, line)``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from tests.refinement.independent_wor import ILLEGAL, OK, UNKNOWN, search, worst

__all__ = ["ILLEGAL", "OK", "UNKNOWN", "KvOp", "check_text", "kv_ops", "linearizable"]


@dataclass(frozen=True)
class KvOp:
    f: str  # "read", "write", "cas", or "refused" (a cas that observed the register not holding ``a``)
    a: bytes | None  # read: the value read; write: the value written; cas/refused: expected
    b: bytes | None  # cas: the new value
    call: tuple[int, int]
    ret: tuple[int, int] | None  # None: indeterminate


def _b(v: object) -> bytes | None:
    return None if v is None else base64.b64decode(str(v), validate=True)


def kv_ops(text: str) -> dict[str, list[KvOp]]:
    by_key: dict[str, list[KvOp]] = {}
    open_: dict[int, tuple[dict[str, object], tuple[int, int]]] = {}
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    ends: list[tuple[dict[str, object], tuple[int, int], dict[str, object] | None, tuple[int, int] | None]] = []
    for n, e in enumerate(events):
        assert e["app"] == "kv"
        if e["type"] == "invoke":
            open_[e["process"]] = (e, (int(e["time"]), n))
        else:
            inv, call = open_.pop(e["process"])
            ends.append((inv, call, e, (int(e["time"]), n)))
    ends += [(inv, call, None, None) for inv, call in open_.values()]
    for inv, call, done, at in ends:
        kind = "info" if done is None else str(done["type"])
        key, f = str(inv["key"]), inv["f"]
        ops = by_key.setdefault(key, [])
        if f == "read":
            if kind == "ok":
                assert done is not None
                ops.append(KvOp("read", _b(done["value"]), None, call, at))
        elif kind == "fail" and done is not None and done.get("error") is not None:
            continue  # certainly no effect, nothing observed
        elif f == "write":
            ops.append(KvOp("write", _b(inv["value"]), None, call, at if kind == "ok" else None))
        else:
            pair = inv["value"]
            assert isinstance(pair, list) and len(pair) == 2
            expected, new = pair[0], pair[1]
            if kind == "fail":
                ops.append(KvOp("refused", _b(expected), None, call, at))
            else:
                ops.append(KvOp("cas", _b(expected), _b(new), call, at if kind == "ok" else None))
    return by_key


def linearizable(ops: list[KvOp], budget: int = 200_000) -> str:
    def step(o: KvOp, state: bytes | None) -> tuple[bool, bytes | None]:
        if o.f == "read":
            return o.a == state, state
        if o.f == "write":
            return True, o.a
        if o.f == "refused":
            return state != o.a, state
        if state == o.a:
            return True, o.b
        return o.ret is None, state  # an indeterminate cas that found another value: as if never taken

    return search(ops, step, budget)


def check_text(text: str, budget: int = 200_000) -> str:
    return worst(linearizable(ops, budget) for ops in kv_ops(text).values())
