"""The apps on real acceptor processes under real faults: SIGKILL and restart of one acceptor, SIGSTOP and
SIGCONT of one, two down at once for a while; synchronous clients in threads and asyncio tasks (some
cancelled by timeouts) at the same time. Their app histories and the WOR-level history are judged by
``wormspace check`` and by the independent checker; acknowledged data must survive. Then asyncio
cancellation against real processes, and the ``log``/``kv`` verbs run concurrently from several processes
while an acceptor is killed and restarted."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apps.helpers import operations
from tests.real_process import cluster_up, wormspace
from tests.refinement.independent_wor import check_text, processes_are_threads
from wormspace import Cluster, LocalClusterHandle
from wormspace.apps import WormKV, WormLog, WormPaxos, WormTX
from wormspace.apps.history import AppHistory
from wormspace.client import OperationFailed
from wormspace.history import History
from wormspace.runtime.supervise import LocalCluster

HOLE = 0.2


def events_of(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def judged_ok(path: Path, *args: str) -> None:
    """``wormspace check PATH`` exits 0 (OK), and the independent reading of processes holds."""
    result = wormspace("check", str(path), *args)
    assert result.returncode == 0, result.stdout.decode()[-2000:] + result.stderr.decode()
    processes_are_threads(events_of(path.read_text()))


def both_judged_ok(tmp_path: Path, apps: AppHistory, wor: History) -> None:
    """The app history and the WOR-level one, each written to a file: both judged OK (``judged_ok``), and the
    WOR-level one linearizable by the independent checker too."""
    app_file, wor_file = tmp_path / "apps.jsonl", tmp_path / "wor.jsonl"
    apps.write(app_file)
    wor.write(wor_file)
    judged_ok(app_file)
    judged_ok(wor_file, "--wos-size", "16")
    assert check_text(wor_file.read_text()) == "OK"


class Workers:
    """Client threads that loop over app calls until stopped; an unexpected exception is kept."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.unexpected: list[str] = []
        self.outcomes: dict[str, int] = {}
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def note(self, e: BaseException) -> None:
        with self.lock:
            self.outcomes[type(e).__name__] = self.outcomes.get(type(e).__name__, 0) + 1

    def loop(self, step: Callable[[int], None]) -> None:
        def run() -> None:
            i = 0
            while not self.stop.is_set():
                try:
                    step(i)
                except (OperationFailed, TimeoutError) as e:
                    self.note(e)
                except BaseException as e:
                    self.unexpected.append(repr(e))
                    return
                i += 1

        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.threads.append(t)

    def thread(self, target: Callable[[], None]) -> None:
        def run() -> None:
            try:
                target()
            except BaseException as e:
                self.unexpected.append(repr(e))

        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.threads.append(t)

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)
        assert not any(t.is_alive() for t in self.threads), "a client thread did not end"
        assert not self.unexpected, self.unexpected


def kv_final_problems(events: list[dict[str, Any]], final: dict[str, bytes | None]) -> list[str]:
    """Every key's value read at the end was put by a write (or swapped in by a cas) that no ok write or
    swap of that key invoked after it completed overwrote: acknowledged puts survive, in order."""
    problems = []
    for key, got in final.items():
        writes = []  # (invoke time, completion time or inf, value written, ok)
        for inv, end in operations([e for e in events if e.get("app") == "kv" and e["key"] == key]):
            if inv["f"] == "write":
                value = inv["value"]
            elif inv["f"] == "cas" and (end is None or end["type"] != "fail"):
                value = inv["value"][1]
            else:
                continue
            done = float("inf") if end is None or end["type"] == "info" else end["time"]
            writes.append((inv["time"], done, value, end is not None and end["type"] == "ok"))
        want = None if got is None else base64.b64encode(got).decode()
        later_ok = [w for w in writes if w[3]]
        survived = any(v == want and not any(o[0] > done for o in later_ok) for _, done, v, _ in writes)
        if not survived and (writes or got is not None):
            problems.append(f"key {key}: the value read at the end, {got!r}, was overwritten or never put")
    return problems


def test_the_final_value_check_finds_a_lost_acknowledged_put() -> None:
    def ev(p: int, type_: str, f: str, value: Any, t: int) -> dict[str, Any]:
        return {"process": p, "type": type_, "f": f, "key": "aw==", "value": value, "time": t, "app": "kv"}

    a, b, c = (base64.b64encode(v).decode() for v in (b"a", b"b", b"c"))
    events = [ev(0, "invoke", "write", a, 1), ev(0, "ok", "write", a, 2), ev(1, "invoke", "write", b, 3),
              ev(1, "ok", "write", b, 4), ev(2, "invoke", "cas", [b, c], 5), ev(2, "info", "cas", None, 6)]
    assert kv_final_problems(events, {"aw==": b"b"}) == []
    assert kv_final_problems(events, {"aw==": b"c"}) == []  # the indeterminate cas may have landed
    assert kv_final_problems(events, {"aw==": b"a"}) != []  # overwritten by an acknowledged later put
    assert kv_final_problems(events, {"aw==": None}) != []  # an acknowledged put lost
    assert kv_final_problems(events, {"aw==": b"z"}) != []  # never put


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_apps_under_kill_stop_and_a_lost_quorum(tmp_path: Path) -> None:
    with Cluster.local(acceptors=3, wos_size=16) as cluster:
        hist = AppHistory.of(cluster)
        w = Workers()
        acked: list[tuple[int, bytes]] = []
        applied: list[list[bytes]] = []
        decisions: dict[int, list[bool]] = {}

        for k in range(2):
            log = WormLog(cluster.client(), name=b"flog", history=hist, hole_timeout=HOLE)

            def append(i: int, log: WormLog = log, k: int = k) -> None:
                data = b"t%d-%d" % (k, i)
                pos = log.append(data)
                with w.lock:
                    acked.append((pos, data))

            w.loop(append)
        kv = WormKV(cluster.client(), name=b"fkv", history=hist, hole_timeout=HOLE)

        def kv_step(i: int) -> None:
            key, value = b"k%d" % (i % 2), b"p%d" % i
            if i % 3 == 0:
                kv.get(key)
            elif i % 3 == 1:
                kv.put(key, value)
            else:
                kv.cas(key, b"p%d" % (i - 1), value)

        w.loop(kv_step)
        for k in range(2):
            mine: list[bytes] = []
            applied.append(mine)

            def apply(cmd: bytes, mine: list[bytes] = mine) -> bytes:
                mine.append(cmd)
                return b"%d" % len(mine)

            rep = WormPaxos(cluster.client(), apply, name=b"fsmr", history=hist, hole_timeout=HOLE)

            def submit(i: int, rep: WormPaxos = rep, k: int = k) -> None:
                rep.submit(b"s%d-%d" % (k, i))

            w.loop(submit)
        voters = [WormTX(cluster.client(), history=hist) for _ in range(2)]

        def tx_step(i: int) -> None:
            t = voters[0].begin(participants=2)
            decisions[t] = []
            voters[0].vote(t, 0, True)
            if i % 4:  # else participant 1 stays silent: the deciders abort for it
                voters[1].vote(t, 1, i % 5 != 0)
            for d in voters:
                decisions[t].append(d.decide(t, wait=0.3))

        w.loop(tx_step)

        async def tasks() -> None:
            ws = cluster.client()
            alog = WormLog(ws, name=b"flog", history=hist, hole_timeout=HOLE).aio
            akv = WormKV(ws, name=b"fkv", history=hist, hole_timeout=HOLE).aio

            async def one(k: int) -> None:
                i = 0
                while not w.stop.is_set():
                    data, i = b"a%d-%d" % (k, i), i + 1
                    try:
                        pos = await asyncio.wait_for(alog.append(data), 1.0)  # a slow one is cancelled
                        with w.lock:
                            acked.append((pos, data))
                        if i % 3 == 0:
                            await asyncio.wait_for(akv.put(b"k%d" % (i % 2), data), 1.0)
                    except (OperationFailed, TimeoutError) as e:
                        w.note(e)

            await asyncio.gather(*(one(k) for k in range(3)))

        w.thread(lambda: asyncio.run(tasks()))
        try:
            time.sleep(0.8)
            cluster.crash(1)  # SIGKILL: a quorum is left
            time.sleep(0.8)
            cluster.restart(1)
            time.sleep(0.4)
            cluster.pause(2)  # SIGSTOP
            time.sleep(0.8)
            cluster.resume(2)
            time.sleep(0.4)
            cluster.crash(0)  # two down: no quorum -- calls end Indeterminate or wait, never answer wrongly
            cluster.crash(1)
            time.sleep(1.5)
            cluster.restart(0)
            cluster.restart(1)
            time.sleep(1.0)
        finally:
            w.join()
        assert len(acked) > 50 and sum(map(len, applied)) > 10 and decisions

        both_judged_ok(tmp_path, hist, cluster.history())

        reader = WormLog(cluster.client(), name=b"flog", hole_timeout=HOLE)
        entries = dict(reader.entries())
        assert len({p for p, _ in acked}) == len(acked)
        assert [(p, d) for p, d in acked if entries.get(p) != d] == []  # every ok append, at its position
        whole: list[bytes] = []

        def replay(cmd: bytes) -> bytes:
            whole.append(cmd)
            return b""

        WormPaxos(cluster.client(), replay, name=b"fsmr", hole_timeout=HOLE).sync()
        assert all(a == whole[: len(a)] for a in applied) and len(set(whole)) == len(whole)
        late = WormTX(cluster.client())
        for t, seen in decisions.items():  # every decider agrees, a late one too
            assert len(set(seen)) <= 1 and (not seen or late.decide(t, wait=0.3) == seen[0]), (t, seen)
        fresh = WormKV(cluster.client(), name=b"fkv", hole_timeout=HOLE)
        final = {base64.b64encode(key).decode(): fresh.get(key) for key in (b"k0", b"k1")}
        assert kv_final_problems(hist.events, final) == []


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def local() -> Iterator[LocalClusterHandle]:
    with Cluster.local(acceptors=3, wos_size=16) as cluster:
        yield cluster


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files in /proc/self/fd")
def test_cancelled_calls_on_real_processes_leave_the_client_whole(local: LocalClusterHandle, tmp_path: Path) -> None:
    hist = AppHistory.of(local)
    ws = local.client()
    log = WormLog(ws, name=b"cancel", history=hist, hole_timeout=HOLE)
    kv = WormKV(ws, name=b"cancel-kv", history=hist, hole_timeout=HOLE)
    log.append(b"first")
    before = open_fds()

    async def round_(n: int) -> None:
        alog, akv = log.aio, kv.aio
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(alog.append(b"c%d-%d" % (n, i))) for i in range(8)]
        tasks += [asyncio.create_task(akv.put(b"k", b"v%d-%d" % (n, i))) for i in range(3)]
        tasks.append(asyncio.create_task(ws.aio.read(ws.address(ws.alloc(b"x") if n == 0 else 0, 0))))
        await asyncio.sleep(0.0005 * n)
        for t in tasks[n % 2 :: 2]:
            t.cancel()
        _, late = await asyncio.wait(tasks, timeout=30)  # the tasks (and their frames) are still referenced here
        assert not late, "calls still waiting for a claim a cancelled call held"
        assert not log.core.claiming and not log.core.pending
        assert not kv.core.paxos.log.claiming and not kv.core.paxos.log.pending
        with contextlib.suppress(TimeoutError):  # a timeout through wait_for, on a call slowed by a stopped acceptor
            await asyncio.wait_for(alog.append(b"slow%d" % n), 0.001)
        assert await asyncio.wait_for(alog.append(b"after%d" % n), 10) >= 0  # the client goes on
        left = asyncio.all_tasks() - {asyncio.current_task()}  # the connections' writers stay, and no call
        assert all(t.get_name().startswith("wormspace-send-") for t in left), left

    gc.disable()  # a socket left open must show: not be closed by the collector of its transport
    try:
        for n in range(6):
            if n == 3:
                local.pause(2)  # SIGSTOP: its connections wait for a hello that does not come
            asyncio.run(round_(n))
        assert open_fds() == before  # each asyncio.run closed the connections it opened, to a stopped acceptor too
    finally:
        gc.enable()
        local.resume(2)
    assert log.append(b"sync") >= 0 and kv.get(b"k") is not None
    assert all(end is not None for _, end in operations(hist.events))  # no call left open
    both_judged_ok(tmp_path, hist, local.history())


@pytest.fixture
def cluster_dir(tmp_path: Path) -> Iterator[Path]:
    with cluster_up(tmp_path / "cluster"):
        yield tmp_path / "cluster"


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_verbs_from_several_processes_while_an_acceptor_is_killed(cluster_dir: Path) -> None:
    cfile = str(cluster_dir / "cluster.toml")

    def start(*args: str) -> tuple[tuple[str, ...], subprocess.Popen[bytes]]:
        cmd = [sys.executable, "-m", "wormspace", *args, "--cluster", cfile, "--hole-timeout", "0.2"]
        return args, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    procs = []
    for wave in range(2):
        procs += [start("log", "append", f"d{wave}-{k}") for k in range(3)]
        procs += [start("kv", "put", "key", f"v{wave}-{k}") for k in range(2)]
        procs += [start("kv", "cas", "key", "v0-0", f"c{wave}"), start("kv", "get", "key"), start("log", "tail")]
        if wave == 0:
            time.sleep(0.5)
            LocalCluster.open(cluster_dir).crash(1)  # SIGKILL while the first wave runs
    try:
        restart = wormspace("cluster", "up", "--acceptors", "3", "--dir", str(cluster_dir))  # starts the one down
        assert restart.returncode == 0, restart.stderr
        outputs = [(args, *p.communicate(timeout=60)) for args, p in procs]
        done = [(args, p.returncode, out, err) for (args, out, err), (_, p) in zip(outputs, procs, strict=True)]
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    written = {f"v{w}-{k}".encode() for w in range(2) for k in range(2)} | {b"c0", b"c1"}
    positions = []
    for args, rc, out, err in done:
        assert rc is not None
        if rc == 3:  # an outcome from the cluster: one line on standard error, nothing on standard output
            assert out == b"" and err.count(b"\n") == 1, (args, out, err)
            continue
        assert err == (b"" if rc == 0 or args[1] == "cas" else b"'key' is absent\n"), (args, rc, err)
        if args[:2] == ("log", "append"):
            assert rc == 0
            positions.append((int(out), args[2].encode()))
        elif args[:2] == ("log", "tail"):
            assert rc == 0 and int(out) >= 0
        elif args[:2] == ("kv", "put"):
            assert rc == 0 and out == b""
        elif args[:2] == ("kv", "cas"):
            assert (rc, out) in ((0, b"swapped\n"), (1, b"not swapped\n"))
        else:
            assert (rc == 0 and out[:-1] in written) or (rc == 1 and out == b""), (rc, out)
    assert len({p for p, _ in positions}) == len(positions) and positions
    for pos, data in positions:  # every append that printed its position is read there, after the restart
        assert wormspace("log", "read", str(pos), "--cluster", cfile).stdout == data + b"\n"
    assert wormspace("cluster", "status", "--dir", str(cluster_dir)).returncode == 0
