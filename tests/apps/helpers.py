"""Pairing app-level history events into operations (for the tests' real-time checks)."""

from __future__ import annotations

from typing import Any


def operations(events: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(invoke, completion or None) per operation, in invoke order."""
    open_: dict[int, dict[str, Any]] = {}
    out: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    index: dict[int, int] = {}
    for e in events:
        if e["type"] == "invoke":
            open_[e["process"]] = e
            index[e["process"]] = len(out)
            out.append((e, None))
        else:
            inv = open_.pop(e["process"])
            out[index[e["process"]]] = (inv, e)
    return out


def real_time_order_violations(events: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Pairs of ok operations where one completed before the other began but got a higher position."""
    done = [(i, c) for i, c in operations(events) if c is not None and c["type"] == "ok"]
    return [
        (a[1]["key"], b[1]["key"])
        for a in done
        for b in done
        if a[1]["time"] < b[0]["time"] and a[1]["key"] > b[1]["key"]
    ]
