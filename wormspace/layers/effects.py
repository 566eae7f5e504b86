"""Effects returned by the sans-I/O cores; only drivers (simulator, TCP runtime) carry them out.

A handler returns a list of effects in the order they must happen. ``Persist`` before ``Send`` is the
durability rule (DESIGN §3 rule 4): an acceptor's promise or vote is on disk before anybody hears of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from wormspace.layers.messages import Message, RegState

RegKey = tuple[int, int]  # (segment, index)


@dataclass(frozen=True, slots=True, kw_only=True)
class Persist:
    """Durably store ``puts`` and drop every register of the ``purge`` segments except their TRIM register."""

    puts: tuple[tuple[RegKey, RegState], ...] = ()
    purge: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Send:
    """Send ``msg`` to node ``dst``."""

    dst: int
    msg: Message


@dataclass(frozen=True, slots=True, kw_only=True)
class SetTimer:
    """Deliver a ``Timeout(token)`` to the node after ``delay`` seconds (virtual in the simulator)."""

    token: int
    delay: float


Effect = Persist | Send | SetTimer


def persist_before_send(effects: list[Effect] | tuple[Effect, ...]) -> bool:
    """Rule 4 as a checkable property: no ``Send`` precedes a ``Persist`` in one handler's effects."""
    sent = False
    for e in effects:
        if isinstance(e, Send):
            sent = True
        elif isinstance(e, Persist) and sent:
            return False
    return True
