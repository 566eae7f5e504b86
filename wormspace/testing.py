"""A pytest plugin for testing apps built on WormSpace: seeded simulated clusters with faults, contracts on,
every recorded history checked for linearizability when the test ends.

Installed with the package (entry point ``pytest11: wormspace``); see docs/testing.md.

* Fixture ``wormspace_cluster`` -- a ``Harness``: a simulated cluster (``Cluster.simulated``) with a seed,
  a lossy and duplicating network and a fault schedule (one acceptor crashed and restarted, another
  partitioned off and healed), whose history records every WormSpace operation. ``harness.client()``,
  ``harness.spawn(core)`` and ``harness.run()`` drive it; ``harness.operation(f, key, value)`` records an
  operation of the app's own, in the same history, under the register semantics (a ``read`` of an address
  must return what that address holds) -- so an app that serves a stale or invented value is caught.
* At teardown the cluster runs to quiescence and the history is checked (``check_history`` against the
  segment model); an ILLEGAL or undecided history fails the test, printing the minimal illegal sub-history,
  the seed, and how to replay it. A spawned process that ended with an exception fails the test too (its
  traceback printed), as does a simulation that does not settle within ``harness.max_events`` events (an
  app that never ends; ``MAX_EVENTS`` by default); ``harness.run()`` reports both at once, in the test itself.
* ``--wormspace-seeds N`` runs every test that uses the fixture over seeds 0..N-1 (default 1);
  ``@pytest.mark.wormspace(acceptors=3, wos_size=16, drop=0.05, duplicate=0.05, faults=True)`` sets the
  cluster of one test; an unknown option, a positional argument or a value out of range fails the test
  with a message saying which (``UsageError`` from ``Harness``).
* Contracts are forced on: the fixture refuses to run with ``WORMSPACE_CONTRACTS=0`` (a test using it
  fails, saying so), since contracts are decided when the package is imported.

This module is shipped, and shipped code never imports the checkers of ``wormspace.refinement``. It is a
test tool, the one exception beside the CLI: it imports the linearizability checker *inside the fixture*,
never when it is loaded (pytest loads it in every session of a project that installs wormspace).
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from wormspace import _contracts
from wormspace.errors import UsageError

APP_PROCESS_BASE = 10_000  # process numbers of app-level operations recorded through the harness
MAX_EVENTS = 10_000_000  # simulation events a run may take before the harness calls it a hang


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wormspace")
    group.addoption("--wormspace-seeds", type=int, default=1, metavar="N",
                    help="run each test using wormspace_cluster over seeds 0..N-1 (default 1)")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--wormspace-seeds") < 1:  # said once, before collection, as pytest's own usage errors
        raise pytest.UsageError(f"--wormspace-seeds must be at least 1, got {config.getoption('--wormspace-seeds')}")
    config.addinivalue_line("markers", "wormspace(**options): options of the wormspace_cluster fixture")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "wormspace_cluster" in metafunc.fixturenames:
        n = metafunc.config.getoption("--wormspace-seeds")
        metafunc.parametrize("wormspace_seed", range(n), ids=[f"seed{s}" for s in range(n)])


@dataclass(slots=True)
class _Op:
    recorder: Any
    handle: int
    done: bool = False

    def ok(self, value: bytes | None = None) -> None:
        """The operation returned ``value`` (for a read: None means EMPTY)."""
        self._complete("ok", value)
        self.recorder.ok(self.handle, value)
        self.done = True

    def fail(self, error: str, existing: bytes | None = None) -> None:
        """The operation certainly did not take effect (``error``: an outcome name, e.g. AlreadyWritten)."""
        self._complete("fail", existing)
        self.recorder.fail(self.handle, error, existing)
        self.done = True

    def _complete(self, how: str, value: object) -> None:
        if self.done:
            raise UsageError(f"op.{how}(...): this operation was already completed (call ok or fail once)")
        if value is not None and not isinstance(value, bytes):
            raise UsageError(f"op.{how}(...) takes bytes or None, got {type(value).__name__}")


#: The options of ``@pytest.mark.wormspace`` (the keyword arguments of ``Harness``) and their defaults.
OPTIONS: dict[str, object] = {"acceptors": 3, "wos_size": 16, "drop": 0.05, "duplicate": 0.05, "faults": True}


def _check_options(seed: object, acceptors: object, wos_size: object, drop: object, duplicate: object,
                   faults: object) -> None:
    """``UsageError`` naming the first option that is out of range or of the wrong type."""
    if type(seed) is not int or seed < 0:
        raise UsageError(f"seed must be a non-negative int, got {seed!r}")
    if type(acceptors) is not int or acceptors < 1:
        raise UsageError(f"acceptors must be a positive int, got {acceptors!r}")
    if type(wos_size) is not int or wos_size < 1:
        raise UsageError(f"wos_size must be a positive int, got {wos_size!r}")
    for name, rate in (("drop", drop), ("duplicate", duplicate)):
        if type(rate) not in (int, float) or not 0 <= rate < 1:  # type: ignore[operator]
            raise UsageError(f"{name} must be a rate in [0, 1), got {rate!r}")
    if type(faults) is not bool:
        raise UsageError(f"faults must be True or False, got {faults!r}")


def marker_options(args: tuple[object, ...], kwargs: dict[str, object]) -> dict[str, Any]:
    """The options of a ``@pytest.mark.wormspace(...)`` marker, or ``UsageError`` saying what is wrong."""
    if args:
        raise UsageError(f"@pytest.mark.wormspace takes keyword options only ({', '.join(OPTIONS)}), got {args!r}")
    unknown = sorted(set(kwargs) - set(OPTIONS))
    if unknown:
        raise UsageError(f"@pytest.mark.wormspace: unknown option(s) {', '.join(unknown)}"
                         f" (the options are {', '.join(OPTIONS)})")
    return dict(kwargs)


class Harness:
    """What the ``wormspace_cluster`` fixture yields (see the module docstring)."""

    def __init__(self, seed: int, *, acceptors: int = 3, wos_size: int = 16, drop: float = 0.05,
                 duplicate: float = 0.05, faults: bool = True) -> None:
        _check_options(seed, acceptors, wos_size, drop, duplicate, faults)
        from wormspace.cluster import Cluster
        from wormspace.layers.network import Faults
        from wormspace.layers.wor import Config

        self.seed = seed
        self.wos_size = wos_size
        self.cluster = Cluster.simulated(acceptors=acceptors, seed=seed, wos_size=wos_size,
                                         faults=Faults(drop=drop, duplicate=duplicate),
                                         config=Config(timeout=0.05, max_resends=3, max_rounds=4))
        from wormspace.history import Recorder

        # Stamps strictly increase in recording order: the simulation runs in one thread, so the order events
        # are recorded in is the order they happened in, even at one virtual instant (an app's cached answer
        # takes no virtual time, yet comes after the write that returned before it was asked).
        net, last = self.cluster.net, [-1]

        def clock() -> int:
            last[0] = max(int(net.now * 1e9), last[0] + 1)
            return last[0]

        self.cluster.recorder = Recorder(clock=clock)
        self._apps = 0
        self._failures_reported = 0  # spawned processes' exceptions already reported
        self.hung = False  # a run did not settle: the history cannot be checked
        self.max_events = MAX_EVENTS  # a test may lower (or raise) the bound of what counts as a hang
        self.schedule: list[str] = []
        if faults and acceptors >= 3:
            down, off = seed % acceptors, (seed + 1) % acceptors
            self.cluster.at(0.01, lambda: self.cluster.crash(down))
            self.cluster.at(0.08, lambda: self.cluster.restart(down))
            self.cluster.at(0.1, lambda: self.cluster.partition({off}, set(range(acceptors)) - {off}))
            self.cluster.at(0.2, self.cluster.heal)
            self.schedule = [f"t=0.01 crash {down}", f"t=0.08 restart {down}", f"t=0.1 partition {{{off}}}",
                             "t=0.2 heal"]

    def client(self) -> Any:
        """A synchronous client (``WormSpace``), a new process of the history."""
        return self.cluster.client()

    def spawn(self, core: Callable[[Any], Any], at: float = 0.0) -> int:
        """Run a generator core ``core(logic)`` as a concurrent simulated process."""
        return self.cluster.spawn(core, at=at)

    def run(self) -> None:
        """Run the simulation until every spawned process ends and the network is quiet. Fails the test if
        it does not settle within ``max_events`` events, or if a spawned process ended with an exception."""
        problem = self._settle()
        if problem is not None:
            pytest.fail(problem, pytrace=False)

    def _settle(self) -> str | None:
        """Run to quiescence; what is wrong (a hang, a spawned process's exception), or None."""
        if self.hung:
            return None  # already reported
        net = self.cluster.net
        for _ in range(self.max_events):  # as ``Cluster.run``, but a hang is the app's, so it is said plainly
            if not net.step():
                break
        else:
            self.hung = True
            return (f"wormspace: the simulation did not settle within {self.max_events} events (virtual time"
                    f" {net.now:.3f} s; seed {self.seed}): a spawned process never ends, or keeps the"
                    " network busy for ever")
        failures = self.cluster.failures[self._failures_reported:]
        self._failures_reported += len(failures)
        if not failures:
            return None
        lines = [f"wormspace: {len(failures)} spawned process(es) ended with an exception (seed {self.seed}):"]
        for process, e in failures:
            lines.append(f"process {process}: {type(e).__name__}: {e}")
            lines.append("".join(traceback.format_exception(e)).rstrip())
        return "\n".join(lines)

    @contextlib.contextmanager
    def operation(self, f: str, key: int, value: bytes | None = None) -> Iterator[_Op]:
        """Record one operation of the app (``read`` or ``write`` of address ``key``) in the history; call
        ``op.ok(...)`` or ``op.fail(...)`` inside the block (leaving it otherwise records it indeterminate)."""
        if f not in ("read", "write"):
            raise UsageError(f"app operations are recorded as read or write, got {f!r}")
        if type(key) is not int or key < 0:
            raise UsageError(f"an app operation's address is a non-negative int, got {key!r}")
        if f == "write" and not isinstance(value, bytes):
            raise UsageError(f"operation('write', {key}, value): the value written is bytes, got {value!r}")
        if f == "read" and value is not None:
            raise UsageError("operation('read', address) takes no value: pass what the read returned to op.ok")
        recorder = self.cluster.recorder
        assert recorder is not None  # the harness's cluster records
        process = APP_PROCESS_BASE + self._apps
        self._apps += 1
        op = _Op(recorder, recorder.invoke(process, f, key, value))
        try:
            yield op
        finally:
            if not op.done:
                recorder.info(op.handle)

    def check(self) -> Any:
        """Run to quiescence and check the history; returns the checker's result."""
        from wormspace.refinement.linearizability import check_history
        from wormspace.refinement.models import SegmentModel

        self.cluster.run(self.max_events)
        return check_history(self.cluster.history(), SegmentModel(wos_size=self.wos_size))


@pytest.fixture
def wormspace_seed() -> int:
    """The seed of the simulated cluster (parametrised by ``--wormspace-seeds``)."""
    return 0


@pytest.fixture
def wormspace_cluster(request: pytest.FixtureRequest, wormspace_seed: int) -> Iterator[Harness]:
    if not _contracts.CONTRACTS:
        pytest.fail("wormspace_cluster runs with contracts on, but WORMSPACE_CONTRACTS turned them off when"
                    " wormspace was imported: unset it", pytrace=False)
    marker = request.node.get_closest_marker("wormspace")
    try:
        options = marker_options(marker.args, marker.kwargs) if marker is not None else {}
        harness = Harness(wormspace_seed, **options)
    except UsageError as e:
        pytest.fail(f"wormspace_cluster: {e}", pytrace=False)
    yield harness
    problem = harness._settle()
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    if harness.hung:
        return  # reported by harness.run() in the test
    result = harness.check()
    if result.verdict == "OK":
        return
    lines = [f"wormspace: the recorded history is {result.verdict} (seed {wormspace_seed};"
             f" fault schedule: {', '.join(harness.schedule) or 'none'})"]
    if result.minimal is not None:
        lines.append(f"minimal illegal sub-history ({result.minimal.label}):")
        lines += [f"  {line}" for line in result.minimal.lines()]
        lines.append(result.minimal.explanation)
    lines.append(f"replay: pytest '{request.node.nodeid}' --wormspace-seeds {wormspace_seed + 1}")
    pytest.fail("\n".join(lines), pytrace=False)
