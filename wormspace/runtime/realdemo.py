"""``wormspace demo --real``: the demo's workloads against three real acceptor processes on loopback.

Rules:

1. Faults are real: acceptor 1 is killed (SIGKILL) and restarted on its SQLite file, acceptor 2 is paused
   (SIGSTOP) and resumed, while the clients run.
2. The recorded history is checked for linearizability against the WOS spec; the exit code is 0 iff it is
   linearizable and no client failed unexpectedly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from wormspace.runtime.driver import TcpDriver
from wormspace.runtime.supervise import LocalCluster

Workload = Callable[[Any], Any]  # SpaceLogic -> an operation generator


def run_real_demo(
    args: Any, *, wos: int, segments: int, workloads: Callable[[list[int]], list[Workload]]
) -> int:
    """The demo workload of ``wormspace demo`` against three real acceptor processes on loopback (SQLite,
    TCP), with real faults: acceptor 1 is killed with SIGKILL and restarted, then acceptor 2 is paused
    (SIGSTOP) for a while. ``workloads(segment_ids)`` are the clients' workloads (the demo's own, passed
    in by ``wormspace.demo``: this module never imports it). The recorded history is then checked for
    linearizability. Exit code 0 iff OK."""
    import json
    import tempfile

    from wormspace.layers.wormspace import SpaceLogic, WormSpace, run_sync
    from wormspace.refinement.history import Recorder
    from wormspace.refinement.linearizability import check_history
    from wormspace.refinement.models import SegmentModel

    recorder = Recorder(clock=time.monotonic_ns)
    faults: list[str] = []
    failures: list[BaseException] = []
    with (
        tempfile.TemporaryDirectory(prefix="wormspace-demo-") as d,
        LocalCluster(d, 3, wos_size=wos) as cluster,
        TcpDriver.from_config(cluster.config) as driver,
    ):
        setup = WormSpace(SpaceLogic(wos_size=wos, seed=args.seed, recorder=recorder, process=0), driver)
        segment_ids = [setup.alloc(f"segment-{i}".encode()) for i in range(segments)]

        def client(k: int, workload: Any) -> None:
            logic = SpaceLogic(wos_size=wos, seed=args.seed * 7919 + k, recorder=recorder, process=k)
            try:
                run_sync(driver, workload(logic))
            except BaseException as e:  # reported below; a workload catches the outcomes it expects
                failures.append(e)

        def inject() -> None:
            time.sleep(0.02)
            cluster.crash(1)
            faults.append("acceptor 1 killed (SIGKILL)")
            time.sleep(0.2)
            cluster.restart(1)
            faults.append("acceptor 1 restarted on its SQLite file")
            cluster.pause(2)
            faults.append("acceptor 2 paused (SIGSTOP)")
            time.sleep(0.3)
            cluster.resume(2)
            faults.append("acceptor 2 resumed")

        threads = [threading.Thread(target=client, args=(k + 1, w)) for k, w in enumerate(workloads(segment_ids))]
        threads.append(threading.Thread(target=inject))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    history = recorder.history
    if args.history_out:
        history.write(args.history_out)
    result = check_history(list(history), SegmentModel(wos_size=wos), budget=2_000_000)
    summary = {
        "acceptors": 3,
        "segments": segment_ids,
        "events": len(history),
        "faults": faults,
        "client_failures": [repr(e) for e in failures],
        "linearizability": result.verdict,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        from rich.console import Console

        console = Console()
        console.print(f"[bold]WormSpace demo[/bold]: 3 real acceptor processes on loopback, segments {segment_ids}")
        for f in faults:
            console.print(f"fault: {f}")
        for e in failures:
            console.print(f"[red]client failure[/red]: {e!r}")
        console.print(f"history of {len(history)} events linearizable against the WOS spec: {result.verdict}")
        if args.history_out:
            console.print(f"history written to {args.history_out} (re-check it: wormspace check {args.history_out})")
    return 0 if result.verdict == "OK" and not failures else 1
