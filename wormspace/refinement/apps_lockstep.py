"""Check 4 of ``wormspace_to_apps``: Hypothesis state machines driving each app's sync face over a faulty
``Cluster.simulated`` (crashes, partitions, message loss) in lockstep with its trusted spec.

Kept apart from ``wormspace_to_apps`` because it is the only part that needs Hypothesis (a development
dependency): the history checks behind ``wormspace check`` and ``wormspace demo --app`` need none.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from wormspace.apps.kv import KvSpec
from wormspace.apps.log import LogSpec
from wormspace.layers.network import Faults
from wormspace.refinement.linearizability import OK
from wormspace.refinement.wormspace_to_apps import (
    _recording,
    _smr,
    check_app_history,
    check_replicas,
    counter_machine,
)

# ---- lockstep machines (check 4) ---------------------------------------------------------------------------

LOCKSTEP_WOS = 4  # small segments: appenders cross segment boundaries and leave holes often
LOCKSTEP_CLIENTS = 2
LOCKSTEP_HOLE_TIMEOUT = 0.02
LOCKSTEP_FAULTS = (Faults(), Faults(drop=0.05, duplicate=0.05), Faults(drop=0.15))
#: "Sometimes" properties: each must be met in the lockstep runs, or they are vacuous for it.
LOCKSTEP_SOMETIMES = {
    "LogLockstep": ("log_junk_read", "log_tail_over_two_segments", "log_trimmed_read", "LogLockstep_fault"),
    "PaxosLockstep": ("paxos_takeover", "PaxosLockstep_fault"),
    "KvLockstep": ("kv_cas_refused", "kv_cas_swapped", "KvLockstep_fault"),
}
lockstep_witnessed: Counter[str] = Counter()


def lockstep_bounds() -> str:
    return (
        f"3 acceptors, {LOCKSTEP_CLIENTS} app clients (replicas), wos size {LOCKSTEP_WOS}, hole timeout "
        f"{LOCKSTEP_HOLE_TIMEOUT}s, fault menus {[(f.drop, f.duplicate) for f in LOCKSTEP_FAULTS]} (drop, "
        "duplicate), <= 1 acceptor crashed or partitioned away at a time"
    )


class _AppLockstep(RuleBasedStateMachine):
    """Shared by the three machines: the cluster, the faults, and the app history checked at the end."""

    def __init__(self) -> None:
        super().__init__()
        self.cluster: Any = None
        self.history: Any = None
        self.down: int | None = None  # the acceptor crashed or partitioned away
        self.crashed = False
        self.loose = False  # an indeterminate outcome: exact comparisons stop, the history check remains
        self.n = 0

    def _start(self, seed: int, faults: Faults) -> list[Any]:
        from wormspace.apps.history import AppHistory
        from wormspace.cluster import Cluster

        self.cluster = Cluster.simulated(acceptors=3, seed=seed, wos_size=LOCKSTEP_WOS, faults=faults)
        self.history = AppHistory.of(self.cluster)
        return [self.cluster.client() for _ in range(LOCKSTEP_CLIENTS)]

    def _unique(self, data: bytes) -> bytes:
        self.n += 1
        return b"%d:" % self.n + data

    @precondition(lambda self: self.down is None)
    @rule(i=st.integers(0, 2), crash=st.booleans())
    def fault(self, i: int, crash: bool) -> None:
        if crash:
            self.cluster.crash(i)
        else:
            self.cluster.partition({i}, {0, 1, 2} - {i})
        self.down, self.crashed = i, crash

    @precondition(lambda self: self.down is not None)
    @rule()
    def recover(self) -> None:
        if self.crashed:
            self.cluster.restart(self.down)
        else:
            self.cluster.heal()
        if self.n:  # a fault began and ended while the app was in use
            lockstep_witnessed[f"{type(self).__name__}_fault"] += 1
        self.down = None

    def teardown(self) -> None:
        if self.history is None:
            return
        for check in check_app_history(self.history.events, budget=200_000):
            assert check.verdict == OK, f"app history: {check.verdict}: {check.problems} " + (
                "" if check.linearizability is None or check.linearizability.minimal is None
                else check.linearizability.minimal.explanation)


class LogLockstep(_AppLockstep):
    """Two ``WormLog`` clients of one log in lockstep with ``LogSpec``: each append's position is new to
    the spec, each read answers the spec's entry (junk for a hole the read filled), each tail has an entry
    below it everywhere and none at or above it, ``entries`` runs without a gap to the tail, and trim makes
    reads below its point answer ``Trimmed``."""

    @initialize(seed=st.integers(0, 2**16), faults=st.sampled_from(LOCKSTEP_FAULTS))
    def start(self, seed: int, faults: Faults) -> None:
        from wormspace.apps.log import WormLog

        self.logs = [WormLog(ws, b"lockstep", hole_timeout=LOCKSTEP_HOLE_TIMEOUT, history=self.history)
                     for ws in self._start(seed, faults)]
        self.spec = LogSpec(entries={})
        self.maybe: set[bytes] = set()  # data of indeterminate appends

    @rule(c=st.integers(0, LOCKSTEP_CLIENTS - 1), data=st.binary(max_size=2))
    def append(self, c: int, data: bytes) -> None:
        from wormspace.errors import Indeterminate

        data = self._unique(data)
        try:
            pos = self.logs[c].append(data)
        except Indeterminate:
            self.maybe.add(data)
            return
        assert self.spec.append(data, pos), f"append got position {pos}, already {self.spec.entries.get(pos)!r}"

    def _known(self) -> int:
        return max(self.spec.entries, default=-1) + 1

    @precondition(lambda self: self.spec.entries)
    @rule(c=st.integers(0, LOCKSTEP_CLIENTS - 1), back=st.integers(0, 5))
    def read(self, c: int, back: int) -> None:
        from wormspace.errors import Indeterminate, Trimmed

        pos = max(0, self._known() - 1 - back)
        try:
            got: bytes | str | None = self.logs[c].read(pos)
        except Trimmed:
            got = "Trimmed"
        except Indeterminate:
            return
        if pos not in self.spec.entries and isinstance(got, bytes) and got in self.maybe:
            self.spec.entries[pos] = got  # an indeterminate append took effect there
        want = self.spec.read(pos)
        assert got == want, f"read({pos}) -> {got!r}, the spec says {want!r}"
        if got is None:
            lockstep_witnessed["log_junk_read"] += 1
        if got == "Trimmed":
            lockstep_witnessed["log_trimmed_read"] += 1

    @rule(c=st.integers(0, LOCKSTEP_CLIENTS - 1))
    def tail(self, c: int) -> None:
        from wormspace.errors import Indeterminate

        try:
            t = self.logs[c].tail()
        except Indeterminate:
            return
        self._learn(t)
        assert self.spec.tail_ok(t), f"tail() -> {t}, but a position below it holds no entry"
        assert all(p < t for p in self.spec.entries), f"tail() -> {t}, but {self._known() - 1} holds an entry"
        if t > LOCKSTEP_WOS:
            lockstep_witnessed["log_tail_over_two_segments"] += 1

    def _learn(self, t: int) -> None:
        """Positions below a tail that the spec has not met were filled by the scan (junk) or hold the
        data of an indeterminate append: read them back, as a reader would."""
        from wormspace.errors import Indeterminate

        for pos in range(self.spec.trimmed_below, t):
            if pos not in self.spec.entries:
                try:
                    got = self.logs[0].read(pos)
                except Indeterminate:
                    return
                assert got is None or got in self.maybe, f"read({pos}) -> {got!r}, which nobody appended"
                self.spec.entries[pos] = got

    @rule(c=st.integers(0, LOCKSTEP_CLIENTS - 1), start=st.integers(0, 9))
    def entries(self, c: int, start: int) -> None:
        from wormspace.errors import Indeterminate, Trimmed

        try:
            got = list(self.logs[c].entries(start))
        except (Trimmed, Indeterminate):
            return
        end = got[-1][0] + 1 if got else start
        if got:
            self._learn(end)
        assert [p for p, _ in got] == list(range(start, end)), f"entries({start}) has a gap: {got}"
        for p, v in got:
            assert self.spec.read(p) == v, f"entries: position {p} -> {v!r}, the spec says {self.spec.read(p)!r}"
        assert all(p < end for p in self.spec.entries if p >= start), (
            f"entries({start}) stopped at {end}, but {self._known() - 1} holds an entry")

    @precondition(lambda self: self._known() > LOCKSTEP_WOS)
    @rule(c=st.integers(0, LOCKSTEP_CLIENTS - 1))
    def trim(self, c: int) -> None:
        from wormspace.errors import Indeterminate, UsageError

        try:
            point = self.logs[c].trim(LOCKSTEP_WOS)
        except Indeterminate:
            return
        except UsageError as e:  # "beyond the tail": but position LOCKSTEP_WOS holds an entry
            raise AssertionError(f"trim({LOCKSTEP_WOS}) refused ({e}), yet position {self._known() - 1} "
                                 "holds an entry") from e
        self.spec.trim(point)


class PaxosLockstep(_AppLockstep):
    """Two ``WormPaxos`` replicas (policy drawn per run) in lockstep with ``SmrSpec``: each ``submit``
    answers the spec's result, each replica's applied list is a prefix of the spec's sequence; at the
    end every replica syncs and ``check_replicas`` judges the run."""

    @initialize(seed=st.integers(0, 2**16), faults=st.sampled_from(LOCKSTEP_FAULTS),
                policy=st.sampled_from(("sticky", "elected", "rotating")))
    def start(self, seed: int, faults: Faults, policy: str) -> None:
        from wormspace.apps.paxos import WormPaxos

        self.applied: list[list[bytes]] = [[] for _ in range(LOCKSTEP_CLIENTS)]
        self.replicas = [
            WormPaxos(ws, _recording(counter_machine(), self.applied[i]), b"lockstep", policy, replica=i,
                      replicas=LOCKSTEP_CLIENTS, hole_timeout=LOCKSTEP_HOLE_TIMEOUT, history=self.history)
            for i, ws in enumerate(self._start(seed, faults))
        ]
        self.spec = _smr(counter_machine)
        self.submitted: dict[bytes, bytes | None] = {}
        self.last = -1

    @rule(r=st.integers(0, LOCKSTEP_CLIENTS - 1), cmd=st.binary(max_size=2))
    def submit(self, r: int, cmd: bytes) -> None:
        from wormspace.errors import Indeterminate

        cmd = self._unique(cmd)
        self.submitted[cmd] = None
        try:
            result = self.replicas[r].submit(cmd)
        except Indeterminate:
            self.loose = True
            return
        self.submitted[cmd] = result
        if self.last not in (-1, r):
            lockstep_witnessed["paxos_takeover"] += 1
        self.last = r
        if not self.loose:
            want = self.spec.submit(cmd)
            assert result == want, f"submit({cmd!r}) -> {result!r}, the spec says {want!r}"

    @rule(r=st.integers(0, LOCKSTEP_CLIENTS - 1))
    def sync(self, r: int) -> None:
        from wormspace.errors import Indeterminate

        try:
            self.replicas[r].sync()
        except Indeterminate:
            return
        if not self.loose:
            assert self.spec.applied_ok(self.applied[r]), f"replica {r} applied {self.applied[r]}"
            assert self.applied[r] == self.spec.commands, "sync did not reach the tail"

    def teardown(self) -> None:
        if self.history is not None:
            verdict = check_replicas({f"replica {i}": a for i, a in enumerate(self.applied)}, self.submitted,
                                     counter_machine)
            assert verdict.ok, verdict.problems
        super().teardown()


class KvLockstep(_AppLockstep):
    """Two ``WormKV`` clients in lockstep with ``KvSpec`` on two keys: get, put, delete, cas."""

    @initialize(seed=st.integers(0, 2**16), faults=st.sampled_from(LOCKSTEP_FAULTS))
    def start(self, seed: int, faults: Faults) -> None:
        from wormspace.apps.kv import WormKV

        self.kvs = [WormKV(ws, b"lockstep", hole_timeout=LOCKSTEP_HOLE_TIMEOUT, history=self.history)
                    for ws in self._start(seed, faults)]
        self.spec = KvSpec()

    def _do(self, what: str, call: Callable[[], Any], spec: Callable[[], Any]) -> Any:
        from wormspace.errors import Indeterminate

        try:
            got = call()
        except Indeterminate:
            self.loose = True
            return None
        want = spec()
        assert self.loose or got == want, f"{what} -> {got!r}, the spec says {want!r}"
        return got

    @rule(c=st.integers(0, LOCKSTEP_CLIENTS - 1), k=st.sampled_from((b"x", b"y")))
    def get(self, c: int, k: bytes) -> None:
        self._do(f"get({k!r})", lambda: self.kvs[c].get(k), lambda: self.spec.get(k))

    @rule(c=st.integers(0, LOCKSTEP_CLIENTS - 1), k=st.sampled_from((b"x", b"y")), v=st.binary(max_size=2))
    def put(self, c: int, k: bytes, v: bytes) -> None:
        v = self._unique(v)
        self._do(f"put({k!r}, {v!r})", lambda: self.kvs[c].put(k, v), lambda: self.spec.put(k, v))

    @rule(c=st.integers(0, LOCKSTEP_CLIENTS - 1), k=st.sampled_from((b"x", b"y")))
    def delete(self, c: int, k: bytes) -> None:
        self._do(f"delete({k!r})", lambda: self.kvs[c].delete(k), lambda: self.spec.put(k, None))

    @rule(c=st.integers(0, LOCKSTEP_CLIENTS - 1), k=st.sampled_from((b"x", b"y")), current=st.booleans())
    def cas(self, c: int, k: bytes, current: bool) -> None:
        expected = self.spec.get(k) if current else b"never"
        new = self._unique(b"")
        got = self._do(f"cas({k!r}, {expected!r}, {new!r})", lambda: self.kvs[c].cas(k, expected, new),
                       lambda: self.spec.cas(k, expected, new))
        if got is not None:
            lockstep_witnessed["kv_cas_swapped" if got else "kv_cas_refused"] += 1
