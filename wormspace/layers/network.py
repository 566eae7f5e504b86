"""Layer 0: the network -- messages in flight between sans-I/O nodes.

Named assumptions (DESIGN §3 rule 6): the network is *unordered, duplicating and lossy*; nodes may crash and
restart (acceptors keep their storage, as a disk keeps its file); the network may be partitioned. Nothing
else is assumed: no bound on delay, no FIFO order, no exactly-once delivery.

``SimNetwork`` realises these assumptions deterministically: a seeded random generator decides delays
(hence reordering), drops and duplicates; a virtual clock orders deliveries and timers. The same seed gives
the same run, event for event, so any failing seed replays exactly. Real TCP lives in ``layers/tcp.py``.

A node is anything with ``receive(src, msg) -> effects`` and ``timeout(token) -> effects``; the network
carries out ``Send`` and ``SetTimer`` effects and ignores ``Persist`` (the node has already stored it).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from wormspace.layers.effects import Effect, Send, SetTimer
from wormspace.layers.messages import Message


class Node(Protocol):
    def receive(self, src: int, msg: Message) -> list[Effect]: ...

    def timeout(self, token: int) -> list[Effect]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """Fault rates of the simulated network. Delays are uniform in ``[min_delay, max_delay]`` seconds."""

    drop: float = 0.0
    duplicate: float = 0.0
    min_delay: float = 0.0005
    max_delay: float = 0.005

    def __post_init__(self) -> None:
        if not (0.0 <= self.drop < 1.0 and 0.0 <= self.duplicate < 1.0):
            raise ValueError("drop and duplicate rates must be in [0, 1)")
        if not 0.0 <= self.min_delay <= self.max_delay:
            raise ValueError("need 0 <= min_delay <= max_delay")


@dataclass(frozen=True, slots=True)
class _Deliver:
    src: int
    dst: int
    msg: Message


@dataclass(frozen=True, slots=True)
class _Timer:
    node: int
    token: int
    epoch: int


@dataclass(frozen=True, slots=True)
class _Call:
    fn: Callable[[], None]


class SimNetwork:
    """A deterministic simulated network on a virtual clock (seconds, from 0)."""

    def __init__(self, seed: int, faults: Faults | None = None) -> None:
        self.rng = random.Random(seed)
        self.faults = faults or Faults()
        self.now = 0.0
        self.nodes: dict[int, Node] = {}
        self.down: set[int] = set()
        self.epochs: dict[int, int] = {}  # bumped at crash: timers set before a crash never fire
        self.partition_of: dict[int, int] = {}  # node -> side; nodes on different sides cannot talk
        self._queue: list[tuple[float, int, _Deliver | _Timer | _Call]] = []
        self._seq = 0
        self.stats = {"sent": 0, "delivered": 0, "dropped": 0, "duplicated": 0}
        self.trace: list[str] | None = None  # set to a list to record a readable event trace

    # -- topology ------------------------------------------------------------------------------------

    def add(self, node_id: int, node: Node) -> None:
        self.nodes[node_id] = node
        self.epochs.setdefault(node_id, 0)

    def crash(self, node_id: int) -> None:
        """The node stops: messages to it are lost and its pending timers never fire."""
        self.down.add(node_id)
        self.epochs[node_id] = self.epochs.get(node_id, 0) + 1

    def restart(self, node_id: int) -> None:
        self.down.discard(node_id)

    def partition(self, *sides: Iterable[int]) -> None:
        """Split the nodes named in ``sides``; nodes not named can talk to everybody."""
        self.partition_of = {n: k for k, side in enumerate(sides) for n in side}

    def heal(self) -> None:
        self.partition_of = {}

    def _connected(self, a: int, b: int) -> bool:
        pa, pb = self.partition_of.get(a), self.partition_of.get(b)
        return pa is None or pb is None or pa == pb

    # -- effects -------------------------------------------------------------------------------------

    def _push(self, at: float, item: _Deliver | _Timer | _Call) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, item))

    def _delay(self) -> float:
        return self.rng.uniform(self.faults.min_delay, self.faults.max_delay)

    def carry_out(self, src: int, effects: Iterable[Effect]) -> None:
        """Carry out a node's effects: schedule sends (with faults) and timers."""
        for e in effects:
            if isinstance(e, Send):
                self.stats["sent"] += 1
                if self.rng.random() < self.faults.drop:
                    self.stats["dropped"] += 1
                    continue
                self._push(self.now + self._delay(), _Deliver(src, e.dst, e.msg))
                if self.rng.random() < self.faults.duplicate:
                    self.stats["duplicated"] += 1
                    self._push(self.now + self._delay(), _Deliver(src, e.dst, e.msg))
            elif isinstance(e, SetTimer):
                self._push(self.now + e.delay, _Timer(src, e.token, self.epochs.get(src, 0)))

    def call_at(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` after ``delay`` virtual seconds (for workloads and fault schedules)."""
        self._push(self.now + delay, _Call(fn))

    # -- running -------------------------------------------------------------------------------------

    def step(self) -> bool:
        """Process the next event. Returns False when nothing is left to do."""
        if not self._queue:
            return False
        at, _, item = heapq.heappop(self._queue)
        self.now = max(self.now, at)
        if isinstance(item, _Call):
            item.fn()
        elif isinstance(item, _Timer):
            if item.node in self.down or self.epochs.get(item.node, 0) != item.epoch:
                return True
            node = self.nodes.get(item.node)
            if node is not None:
                self.carry_out(item.node, node.timeout(item.token))
        else:
            dst = self.nodes.get(item.dst)
            if dst is None or item.dst in self.down or item.src in self.down:
                self.stats["dropped"] += 1
                return True
            if not self._connected(item.src, item.dst):
                self.stats["dropped"] += 1
                return True
            self.stats["delivered"] += 1
            if self.trace is not None:
                self.trace.append(f"{self.now:.6f} {item.src}->{item.dst} {item.msg!r}")
            self.carry_out(item.dst, dst.receive(item.src, item.msg))
        return True

    def run_until(self, done: Callable[[], bool], max_events: int = 10_000_000) -> bool:
        """Step until ``done()`` or nothing is left; returns ``done()``."""
        for _ in range(max_events):
            if done():
                return True
            if not self.step():
                return done()
        raise RuntimeError(f"simulation did not settle within {max_events} events")

    def run(self, max_events: int = 10_000_000) -> None:
        """Step until the queue is empty."""
        self.run_until(lambda: False, max_events)
