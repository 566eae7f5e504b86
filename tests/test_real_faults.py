"""Fault tests with real acceptor processes on loopback: SIGKILL, restart, repeated minority kills, SIGSTOP.

Each test runs a bounded stream of writes and reads from several client threads while faults are injected
(capture+write one at a time, or batch captures of spans of a segment -- range promises in the acceptors'
stores, cut by each other's higher ballots -- with batch writes through them), then checks (1) the recorded
history with the linearizability checker against the WOS spec and (2) that every acknowledged write is still
there when read back after the faults. Bounded in operations and time; every process is stopped at the end.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from wormspace import AlreadyWritten, Cluster, LocalClusterHandle, OperationFailed, RemoteWormSpace
from wormspace.history import History
from wormspace.layers.acceptor import SqliteStorage
from wormspace.refinement.linearizability import check_history
from wormspace.refinement.models import SegmentModel
from wormspace.runtime.datadir import SQLITE_NAME

pytestmark = pytest.mark.slow

WOS = 64
OPS_PER_CLIENT = 60
DEADLINE = 40.0  # seconds: a stream stops early rather than run past this


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalClusterHandle]:
    with Cluster.local(acceptors=3, data_dir=str(tmp_path / "cluster"), wos_size=WOS) as c:
        yield c


def _stream(ws: RemoteWormSpace, seed: int, segment: int, acked: dict[int, bytes], lock: threading.Lock) -> None:
    """Capture+write or read random addresses of ``segment`` (shared with the other streams: races)."""
    rng = random.Random(seed)
    stop_at = time.monotonic() + DEADLINE
    for n in range(OPS_PER_CLIENT):
        if time.monotonic() > stop_at:
            return
        addr = ws.address(segment, rng.randrange(WOS // 2))
        try:
            if rng.random() < 0.6:
                data = f"c{seed}-{n}".encode()
                cap = ws.capture(addr)
                ws.write(addr, data, cap)
                with lock:
                    acked[addr] = data
            else:
                ws.read(addr)
        except AlreadyWritten as e:
            with lock:
                acked[addr] = e.data  # the register certainly holds this
        except OperationFailed:
            pass


def _batch_stream(ws: RemoteWormSpace, seed: int, segment: int, acked: dict[int, bytes], lock: threading.Lock) -> None:
    """Batch-capture a random span of ``segment`` (each acceptor stores one range promise for it) and
    batch-write two offsets of it; the spans of the streams overlap, so their ballots cut each other's ranges."""
    rng = random.Random(seed)
    stop_at = time.monotonic() + DEADLINE
    for n in range(OPS_PER_CLIENT // 2):
        if time.monotonic() > stop_at:
            return
        lo = rng.randrange(WOS - SPAN)
        try:
            cap = ws.batch_capture(segment, lo, lo + SPAN)
            values = {o: f"b{seed}-{n}-{o}".encode() for o in rng.sample(range(lo, lo + SPAN), 2)}
            results = ws.batch_write(segment, values, cap)
        except OperationFailed:
            continue
        with lock:
            for o, err in results.items():
                if err is None:
                    acked[ws.address(segment, o)] = values[o]
                elif isinstance(err, AlreadyWritten):
                    acked[ws.address(segment, o)] = err.data  # the register certainly holds this


SPAN = 16
Stream = Callable[[RemoteWormSpace, int, int, dict[int, bytes], threading.Lock], None]


def _run_with_faults(
    cluster: LocalClusterHandle, faults: Callable[[], None], clients: int = 3, stream: Stream = _stream
) -> dict[int, bytes]:
    setup = cluster.client()
    segment = setup.alloc(b"faults")
    acked: dict[int, bytes] = {}
    lock = threading.Lock()
    streams = [cluster.client() for _ in range(clients)]
    threads = [
        threading.Thread(target=stream, args=(ws, 1000 + k, segment, acked, lock)) for k, ws in enumerate(streams)
    ]
    injector = threading.Thread(target=faults)
    for t in [*threads, injector]:
        t.start()
    for t in [*threads, injector]:
        t.join(timeout=DEADLINE + 30)
        assert not t.is_alive(), "a client stream did not stop in time"
    # Every acknowledged write survives the faults: read it back through a fresh client.
    reader = cluster.client()
    for addr, data in sorted(acked.items()):
        assert reader.read(addr) == data, f"acknowledged write at {addr} lost"
    return acked


def _linearizable(history: History) -> None:
    result = check_history(list(history), SegmentModel(wos_size=WOS), budget=5_000_000)
    assert result.verdict == "OK", result


def test_kill_9_during_writes_then_restart_loses_nothing(cluster: LocalClusterHandle) -> None:
    def faults() -> None:
        time.sleep(0.3)
        cluster.crash(1)
        time.sleep(0.8)
        cluster.restart(1)

    acked = _run_with_faults(cluster, faults)
    assert acked, "the stream acknowledged no write: the test would be vacuous"
    _linearizable(cluster.history())


def test_kill_9_during_batch_captures_then_restart_loses_nothing(
    cluster: LocalClusterHandle, tmp_path: Path
) -> None:
    def faults() -> None:
        time.sleep(0.3)
        cluster.crash(1)
        time.sleep(0.8)
        cluster.restart(1)

    acked = _run_with_faults(cluster, faults, stream=_batch_stream)
    assert acked, "the stream acknowledged no write: the test would be vacuous"
    _linearizable(cluster.history())
    ranges = 0
    for i in range(3):  # the stores did hold range promises (the case under test), read beside the acceptors
        reader = SqliteStorage(cluster.local.data_dir(i) / SQLITE_NAME, read_only=True)
        ranges += reader.rows()[1]
        reader.close()
    assert ranges, "no acceptor stored a range promise: the test would be vacuous"


def test_a_minority_killed_repeatedly(cluster: LocalClusterHandle) -> None:
    rng = random.Random(7)

    def faults() -> None:
        for _ in range(4):
            victim = rng.randrange(3)
            time.sleep(0.25)
            cluster.crash(victim)
            time.sleep(0.4)
            cluster.restart(victim)

    acked = _run_with_faults(cluster, faults)
    assert acked
    _linearizable(cluster.history())


def test_a_paused_acceptor_is_a_slow_node(cluster: LocalClusterHandle) -> None:
    def faults() -> None:
        time.sleep(0.2)
        cluster.pause(2)
        time.sleep(1.0)
        cluster.resume(2)

    acked = _run_with_faults(cluster, faults)
    assert acked
    _linearizable(cluster.history())


def test_a_majority_down_gives_indeterminate_not_wrong_answers(cluster: LocalClusterHandle) -> None:
    from wormspace import Indeterminate

    ws = cluster.client()
    seg = ws.alloc(b"m")
    addr = ws.address(seg, 0)
    cap = ws.capture(addr)
    ws.write(addr, b"kept", cap)
    cluster.crash(0)
    cluster.crash(1)
    with pytest.raises(Indeterminate):
        ws.read(ws.address(seg, 1))
    cluster.restart(0)
    cluster.restart(1)
    assert ws.read(addr) == b"kept"
    _linearizable(cluster.history())
