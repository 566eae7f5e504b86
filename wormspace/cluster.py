"""Clusters: a simulated one in this process, or real acceptor processes over TCP.

``Cluster.simulated(acceptors=3, seed=1)`` runs acceptors and clients in one process on ``SimNetwork``'s
virtual clock. Everything is deterministic in the seed: a failing seed replays exactly. Faults: message
drops, duplicates and reordering (``faults=``), acceptor crash/restart (storage survives, as a disk would),
partitions, and the loss of an acceptor's disk followed by its replacement through the fence procedure
(``lose_disk(i)``, ``replace(i)``; see ``wormspace.replacement``). Each simulated client node runs its
operations through a ``Coalescer`` (``wormspace.layers.coalesce``), as the TCP driver does;
``spawn(..., node_of=p)`` puts a process on the node of process ``p``, so that their operations of one
virtual instant run merged.

``Cluster.local(acceptors=3, data_dir=...)`` starts real acceptor processes on loopback with SQLite storage
(see ``wormspace.runtime``). ``wormspace.connect("cluster.toml")`` connects to a deployed cluster.

Every client operation is recorded in the cluster's history (Jepsen convention): ``cluster.history()``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any

from wormspace.errors import UsageError
from wormspace.layers.acceptor import AcceptorNode, MemoryStorage, Storage
from wormspace.layers.coalesce import Coalescer
from wormspace.layers.effects import Effect, Persist, RegKey, Send, SetTimer
from wormspace.layers.messages import MAX_INDEX, Accept, Fence, Fenced, Message, Prepare, Read, Reply
from wormspace.layers.network import Faults, SimNetwork
from wormspace.layers.wor import ClientCore, Config, GhostVote, OpRequest, Outcome
from wormspace.layers.wormspace import DEFAULT_WOS_SIZE, ClientRequest, SpaceLogic, WormSpace, submit_event

if TYPE_CHECKING:
    from wormspace.history import History, Recorder

CLIENT_BASE = 1000
REPLACER_BASE = 900  # node ids of the replacement procedures' runs


class SimAcceptor:
    """An acceptor on the simulated network. Records every vote it casts in the cluster's ghost log."""

    def __init__(self, node: AcceptorNode, ghost: dict[RegKey, set[GhostVote]]) -> None:
        self.node = node
        self.ghost = ghost

    def receive(self, src: int, msg: Message) -> list[Effect]:
        if not isinstance(msg, (Prepare, Accept, Read, Fence)):
            return []
        effects = self.node.handle(src, msg)
        for e in effects:
            if isinstance(e, Persist):
                for key, state in e.puts:
                    if state.value is not None:
                        self.ghost.setdefault(key, set()).add((self.node.node_id, state.accepted, state.value))
        return effects

    def timeout(self, token: int) -> list[Effect]:
        return []


def _check_delay(name: str, delay: object) -> None:
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay < float("inf"):
        raise UsageError(f"{name} is a non-negative number of virtual seconds, got {delay!r}")


class SimClient:
    """A client node on the simulated network: a ``ClientCore`` behind a ``Coalescer`` (operations
    submitted at one virtual instant run merged, as over TCP), plus the driver that blocks on the sim."""

    def __init__(self, cluster: SimCluster, node_id: int) -> None:
        self.cluster = cluster
        self.node_id = node_id
        self.core = ClientCore(node_id=node_id, groups=cluster.groups, config=cluster.config)
        self.coalescer = Coalescer(
            self.core,
            schedule=lambda fn: cluster.net.call_at(0.0, fn),
            carry_out=lambda effects: cluster.net.carry_out(node_id, effects),
        )

    def receive(self, src: int, msg: Message) -> list[Effect]:
        if isinstance(msg, (Prepare, Accept, Read, Fence)):
            return []
        reply: Reply = msg
        return self.core.on_reply(src, reply)

    def timeout(self, token: int) -> list[Effect]:
        return self.core.on_timeout(token)

    # the blocking driver
    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass (other processes' work runs meanwhile)."""
        woke: list[bool] = []
        self.cluster.net.call_at(seconds, lambda: woke.append(True))
        self.cluster.net.run_until(lambda: bool(woke))

    def execute(self, request: OpRequest) -> Outcome:
        box: list[Outcome] = []
        self.coalescer.submit(request, box.append)
        self.cluster.net.run_until(lambda: bool(box))
        return box[0]

    # the asyncio driver (``ws.aio`` of a simulated client): coroutines of one loop take turns running the
    # simulation; the operations they submit in one loop turn run merged, as over TCP
    async def execute_async(self, request: OpRequest) -> Outcome:
        box: list[Outcome] = []
        self.coalescer.submit(request, box.append)
        await asyncio.sleep(0)  # let the other coroutines of this turn submit theirs at the same instant
        self.cluster.net.run_until(lambda: bool(box))
        return box[0]

    async def sleep_async(self, seconds: float) -> None:
        """Let at least ``seconds`` of virtual time pass (more if another coroutine runs the simulation
        further meanwhile)."""
        woke: list[bool] = []
        self.cluster.net.call_at(seconds, lambda: woke.append(True))
        await asyncio.sleep(0)
        self.cluster.net.run_until(lambda: bool(woke))

    # the event-driven driver
    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` after ``delay`` virtual seconds (timers of event-driven work, e.g. listeners)."""
        self.cluster.net.call_at(delay, fn)

    def submit(self, request: OpRequest, then: Callable[[Outcome], None]) -> None:
        net = self.cluster.net
        self.coalescer.submit(request, lambda outcome: net.call_at(0.0, lambda: then(outcome)))


class SimReplacer:
    """One run of the replacement procedure (``wormspace.replacement``) on the simulated network: the
    ``FenceRound`` over the network (with resends on its timer), then, once it is complete, the snapshot of
    the survivors' storages, the rebuild, and the restart of the victim on the rebuilt storage."""

    RESEND = 0.05

    def __init__(self, cluster: SimCluster, node_id: int, victim: int, survivors: tuple[int, ...]) -> None:
        from wormspace.replacement import FenceRound

        self.cluster = cluster
        self.node_id = node_id
        self.victim = victim
        self.round = FenceRound(survivors)
        self.finished = False

    def _send(self, msgs: list[tuple[int, Fence]]) -> list[Effect]:
        return [Send(dst=d, msg=m) for d, m in msgs]

    def begin(self) -> list[Effect]:
        if self.round.done:
            self._rebuild()
            return []
        return [*self._send(self.round.start()), SetTimer(token=0, delay=self.RESEND)]

    def receive(self, src: int, msg: Message) -> list[Effect]:
        if self.finished or not isinstance(msg, Fenced):
            return []
        out = self._send(self.round.on_reply(src, msg))
        if self.round.done:
            self._rebuild()
        return out

    def timeout(self, token: int) -> list[Effect]:
        if self.finished or self.round.done:
            return []
        return [*self._send(self.round.on_timeout()), SetTimer(token=0, delay=self.RESEND)]

    def _rebuild(self) -> None:
        from wormspace.replacement import rebuild_state

        self.finished = True
        c = self.cluster
        snapshots = [list(c.storages[a].items()) for a in self.round.survivors]
        state = rebuild_state(snapshots, self.round.fence)
        storage = MemoryStorage(state)
        c.storages[self.victim] = storage
        c.acceptors[self.victim].node.storage = storage
        for key, r in state.items():
            if r.value is not None:
                c.ghost.setdefault(key, set()).add((self.victim, r.accepted, r.value))
        c.lost.discard(self.victim)
        c.replaced.append(self.victim)
        c.net.restart(self.victim)


Workload = Callable[[SpaceLogic], Generator[ClientRequest, Outcome, Any]]


class SimCluster:
    """A whole WormSpace deployment in one process, on a virtual clock."""

    def __init__(
        self,
        *,
        acceptors: int = 3,
        seed: int = 0,
        groups: int = 1,
        wos_size: int = DEFAULT_WOS_SIZE,
        faults: Faults | None = None,
        config: Config | None = None,
        record: bool = True,
    ) -> None:
        if type(acceptors) is not int or acceptors < 1:
            raise UsageError("acceptors must be a positive int")
        if type(groups) is not int or groups < 1 or acceptors % groups:
            raise UsageError("groups must divide the number of acceptors")
        if type(seed) is not int:
            raise UsageError(f"seed must be an int, got {seed!r}")
        if not (type(wos_size) is int and 1 <= wos_size <= MAX_INDEX):
            raise UsageError(f"wos_size must be an int in [1, {MAX_INDEX}], got {wos_size!r}")
        if faults is not None and not isinstance(faults, Faults):
            raise UsageError(f"faults must be a wormspace.Faults or None, got {type(faults).__name__}")
        if config is not None and not isinstance(config, Config):
            raise UsageError(f"config must be a wormspace.Config or None, got {type(config).__name__}")
        self.seed = seed
        self.net = SimNetwork(seed, faults)
        self.wos_size = wos_size
        self.config = config or Config()
        per = acceptors // groups
        self.groups = [list(range(g * per, (g + 1) * per)) for g in range(groups)]
        self.ghost: dict[RegKey, set[GhostVote]] = {}
        self.storages: list[Storage] = []
        self.acceptors: list[SimAcceptor] = []
        for i in range(acceptors):
            storage = MemoryStorage()
            self.storages.append(storage)
            sim = SimAcceptor(AcceptorNode(i, storage), self.ghost)
            self.acceptors.append(sim)
            self.net.add(i, sim)
        self.clients: list[SimClient] = []
        self._node_of: list[SimClient] = []  # process number -> its client node
        self._processes = 0
        self.recorder: Recorder | None = None
        if record:
            from wormspace.history import Recorder

            self.recorder = Recorder(clock=lambda: int(self.net.now * 1e9))
        self.failures: list[tuple[int, BaseException]] = []  # exceptions that ended spawned processes
        self.lost: set[int] = set()  # acceptors whose disk is lost and that are not replaced yet
        self.replaced: list[int] = []  # acceptors replaced so far, in order
        self.replacers: list[SimReplacer] = []

    @property
    def quorum(self) -> int:
        return len(self.groups[0]) // 2 + 1

    def _new_client(self, node: SimClient | None = None) -> tuple[SimClient, SpaceLogic]:
        """A new process: on a new client node, or on ``node`` (sharing its core and coalescer)."""
        index = self._processes
        self._processes += 1
        if node is None:
            node = SimClient(self, CLIENT_BASE + len(self.clients))
            self.clients.append(node)
            self.net.add(node.node_id, node)
        logic = SpaceLogic(
            wos_size=self.wos_size, seed=self.seed * 7919 + index, recorder=self.recorder, process=index
        )
        self._node_of.append(node)
        return node, logic

    def client(self) -> WormSpace:
        """A synchronous client (a new process in the history). Each call runs the simulation until that
        operation ends; other clients' spawned work proceeds meanwhile."""
        sim, logic = self._new_client()
        ws = WormSpace(logic, sim)
        ws.node_id = sim.node_id  # type: ignore[attr-defined]
        return ws

    def spawn(self, workload: Workload, at: float = 0.0, *, node_of: int | None = None) -> int:
        """Start a concurrent client process running ``workload(logic)`` (a generator over the API's
        generator methods, e.g. ``yield from logic.write(...)``) at virtual time ``at``. Returns its
        process number. Exceptions that end a workload are kept in ``failures``. With ``node_of`` the
        process runs on the client node of process ``node_of`` (as coroutines sharing one TCP driver):
        operations the two submit at one virtual instant run merged (``wormspace.layers.coalesce``)."""
        if node_of is not None and not (type(node_of) is int and 0 <= node_of < self._processes):
            raise UsageError(f"no process {node_of!r} to share a client node with")
        if not callable(workload):
            raise UsageError(f"spawn takes workload(logic) -> a generator, got {type(workload).__name__}")
        _check_delay("at", at)
        sim, logic = self._new_client(None if node_of is None else self._node_of[node_of])
        gen = workload(logic)
        if not isinstance(gen, Generator):
            raise UsageError(f"a workload returns a generator over the client API, got {type(gen).__name__}")

        def advance(outcome: Outcome | None) -> None:
            try:
                req = next(gen) if outcome is None else gen.send(outcome)
            except StopIteration:
                return
            except Exception as e:  # a workload that does not catch an outcome ends with it
                self.failures.append((logic.process, e))
                return
            submit_event(sim, req, advance)

        self.net.call_at(at, lambda: advance(None))
        return logic.process

    def run(self, max_events: int = 10_000_000) -> None:
        """Run until every spawned process has finished and the network is quiet."""
        self.net.run(max_events)

    def at(self, delay: float, action: Callable[[], None]) -> None:
        """Schedule a fault action (e.g. ``lambda: cluster.crash(1)``) at virtual time now + ``delay``."""
        _check_delay("delay", delay)
        if not callable(action):
            raise UsageError(f"the action is called with no arguments, got {type(action).__name__}")
        self.net.call_at(delay, action)

    # -- faults --------------------------------------------------------------------------------------

    def _acceptor(self, i: int) -> int:
        if type(i) is not int or not 0 <= i < len(self.acceptors):
            raise UsageError(f"no acceptor {i!r}; acceptors are 0..{len(self.acceptors) - 1}")
        return i

    def crash(self, i: int) -> None:
        """Acceptor ``i`` stops; its storage survives (as a disk would)."""
        self.net.crash(self._acceptor(i))

    def restart(self, i: int) -> None:
        if self._acceptor(i) in self.lost:
            raise UsageError(f"acceptor {i} lost its disk: it can come back only through replace({i})")
        self.net.restart(i)

    def lose_disk(self, i: int) -> None:
        """Acceptor ``i`` stops and its storage is gone (a dead disk). It comes back only by ``replace(i)``."""
        self.net.crash(self._acceptor(i))
        self.lost.add(i)
        self.storages[i] = MemoryStorage()
        self.acceptors[i].node.storage = self.storages[i]

    def replace(self, i: int) -> None:
        """Start the replacement procedure for acceptor ``i`` (after ``lose_disk(i)``), while everything else
        keeps running: fence every other acceptor of its group over the network, then snapshot them and
        rebuild ``i``, which then serves again. Needs every survivor: while one is down or cut off, the
        procedure keeps resending its fence."""
        if self._acceptor(i) not in self.lost:
            raise UsageError(f"acceptor {i} has not lost its disk (lose_disk({i}) first)")
        if any(r.victim == i and not r.finished for r in self.replacers):
            raise UsageError(f"acceptor {i} is being replaced already")
        group = next(g for g in self.groups if i in g)
        survivors = tuple(a for a in group if a != i)
        if not survivors:
            raise UsageError(f"acceptor {i} is alone in its group: there is nothing to rebuild it from")
        rep = SimReplacer(self, REPLACER_BASE + len(self.replacers), i, survivors)
        self.replacers.append(rep)
        self.net.add(rep.node_id, rep)
        self.net.carry_out(rep.node_id, rep.begin())

    def partition(self, *sides: Iterable[int]) -> None:
        """Split the acceptors into ``sides``; clients join the largest side."""
        named = [set(side) for side in sides]
        for side in named:
            for i in side:
                self._acceptor(i)
        if sum(map(len, named)) != len(set().union(*named)):
            raise UsageError(f"the sides of a partition must not share an acceptor, got {named}")
        biggest = max(range(len(named)), key=lambda k: len(named[k]))
        named[biggest] |= {c.node_id for c in self.clients}
        self.net.partition(*named)

    def heal(self) -> None:
        self.net.heal()

    # -- observation ---------------------------------------------------------------------------------

    def history(self) -> History:
        """Every recorded operation so far, in the Jepsen convention."""
        if self.recorder is None:
            raise UsageError("this cluster was created with record=False")
        return self.recorder.history

    def chosen(self) -> dict[RegKey, bytes | None]:
        """The abstraction function applied to the ghost vote log: each register's chosen value."""
        from wormspace.layers.wor import abstract_votes

        return {key: abstract_votes(votes, self.quorum).value for key, votes in self.ghost.items()}


# ---- real deployments -----------------------------------------------------------------------------------


class RemoteWormSpace(WormSpace):
    """A synchronous client of a real cluster over TCP. ``aio`` is its asyncio twin: the same logic (process,
    captures), with operations run on the awaiting caller's own event loop (its own connections there).
    Close it (or use it as a context manager) to end its connections."""

    def __init__(self, logic: SpaceLogic, driver: Any) -> None:
        super().__init__(logic, driver)
        self.tcp = driver

    def close(self) -> None:
        self.tcp.close()

    def __enter__(self) -> RemoteWormSpace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(path: str | os.PathLike[str], *, record: bool = False, process: int = 0) -> RemoteWormSpace:
    """A client of the cluster described by ``path`` (a ``cluster.toml``, as ``wormspace cluster up``
    writes). With ``record`` the client keeps a history of its operations in ``client.logic.recorder``;
    the cluster may already hold data, so that history's initial state is ``unknown``."""
    import time

    from wormspace.runtime.config import load_config
    from wormspace.runtime.driver import TcpDriver

    if not isinstance(path, (str, os.PathLike)):
        raise UsageError(f"connect takes the path of a cluster file, got {type(path).__name__}")
    cfg = load_config(path)
    recorder = None
    if record:
        from wormspace.history import Recorder

        recorder = Recorder(clock=time.monotonic_ns, initial="unknown")
    driver = TcpDriver.from_config(cfg)
    logic = SpaceLogic(wos_size=cfg.wos_size, max_value=cfg.max_value, recorder=recorder, process=process)
    return RemoteWormSpace(logic, driver)


class LocalClusterHandle:
    """Real acceptor processes on loopback (``Cluster.local``): SQLite storage, TCP, real faults.

    ``client()`` gives a new client process (own connections, own node id, recorded in ``history()``).
    ``crash(i)`` is SIGKILL, ``restart(i)`` starts it again on its SQLite file, ``pause(i)``/``resume(i)``
    are SIGSTOP/SIGCONT. Partitions need the simulator. ``initial`` is the recorded history's initial
    state: ``unknown`` when the cluster started on a data dir that already held data."""

    def __init__(self, local: Any, *, record: bool, cleanup: Any = None, initial: str = "empty") -> None:
        import time

        self.local = local
        self.config = local.config
        self.wos_size: int = local.config.wos_size
        self.recorder: Recorder | None = None
        if record:
            from wormspace.history import Recorder

            self.recorder = Recorder(clock=time.monotonic_ns, initial=initial)
        self.clients: list[RemoteWormSpace] = []
        self._cleanup = cleanup

    @property
    def config_path(self) -> str:
        return str(self.local.config_path)

    def client(self) -> RemoteWormSpace:
        from wormspace.runtime.driver import TcpDriver

        driver = TcpDriver.from_config(self.config)
        logic = SpaceLogic(
            wos_size=self.wos_size,
            max_value=self.config.max_value,
            recorder=self.recorder,
            process=len(self.clients),
        )
        ws = RemoteWormSpace(logic, driver)
        self.clients.append(ws)
        return ws

    def crash(self, i: int) -> None:
        self.local.crash(i)

    def restart(self, i: int) -> None:
        self.local.restart(i)

    def pause(self, i: int) -> None:
        self.local.pause(i)

    def resume(self, i: int) -> None:
        self.local.resume(i)

    def partition(self, *sides: Iterable[int]) -> None:
        raise UsageError("partitions of real processes are not supported; use Cluster.simulated, or crash/pause")

    def heal(self) -> None:
        raise UsageError("partitions of real processes are not supported; use Cluster.simulated")

    def history(self) -> History:
        if self.recorder is None:
            raise UsageError("this cluster was created with record=False")
        return self.recorder.history

    def stop(self) -> None:
        for ws in self.clients:
            ws.close()
        self.local.stop()
        if self._cleanup is not None:
            self._cleanup.cleanup()
            self._cleanup = None

    def __enter__(self) -> LocalClusterHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Cluster:
    """Factory of clusters (see the module docstring)."""

    @staticmethod
    def simulated(
        acceptors: int = 3,
        seed: int = 0,
        *,
        groups: int = 1,
        wos_size: int = DEFAULT_WOS_SIZE,
        faults: Faults | None = None,
        config: Config | None = None,
        record: bool = True,
    ) -> SimCluster:
        """Acceptors and clients in this process on a virtual clock; deterministic in ``seed``."""
        return SimCluster(
            acceptors=acceptors,
            seed=seed,
            groups=groups,
            wos_size=wos_size,
            faults=faults,
            config=config,
            record=record,
        )

    @staticmethod
    def local(
        acceptors: int = 3,
        data_dir: str | None = None,
        *,
        wos_size: int = DEFAULT_WOS_SIZE,
        groups: int = 1,
        auth: bool = False,
        record: bool = True,
    ) -> LocalClusterHandle:
        """Real acceptor processes on loopback with SQLite storage under ``data_dir`` (a temporary
        directory, removed on ``stop()``, if not given). Use as a context manager or call ``stop()``.
        On a ``data_dir`` that already holds files the recorded history's initial state is ``unknown``."""
        import tempfile
        from pathlib import Path

        from wormspace.runtime.supervise import LocalCluster

        cleanup = None
        if data_dir is None:
            cleanup = tempfile.TemporaryDirectory(prefix="wormspace-")
            data_dir = cleanup.name
        found = Path(data_dir).is_dir() and any(Path(data_dir).iterdir())
        local = LocalCluster(data_dir, acceptors, wos_size=wos_size, groups=groups, auth=auth).start()
        return LocalClusterHandle(local, record=record, cleanup=cleanup, initial="unknown" if found else "empty")
