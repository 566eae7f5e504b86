"""``wormspace demo``: concurrent clients against a cluster with faults, then the checks.

The simulated demo (default) runs in one process on a virtual clock and is deterministic in ``--seed``.
Four client processes race on a few segments: single captures and writes on shared addresses, a batch
capture and batch write of a whole segment, reads everywhere, and a trim. Meanwhile the network drops and
duplicates messages, one acceptor crashes and restarts, and another is partitioned away for a while.
Afterwards the demo prints what happened and checks it: every register has at most one chosen value (from
the ghost vote log) and the recorded history is linearizable against the WOS spec. Then each app (WormLog,
WormPaxos, WormKV) runs briefly under the same kind of faults and its app history is checked.

``wormspace demo --app log|paxos|kv`` runs one app instead, longer: several clients of one WormLog (appends,
reads, tails), WormPaxos (replicas submitting commands) or WormKV (get, put, delete, cas on a few keys) on
a simulated cluster with message loss and duplication, a crashed and restarted acceptor and a partition;
then it checks the app history against the app's spec (and, for WormPaxos and WormKV, that every replica's
applied list is a prefix of one command sequence), prints the verdict, and with ``--history-out`` writes
the app history (re-check it with ``wormspace check FILE``). See ``refinement/wormspace_to_apps.py``.
``wormspace demo --app bank`` runs concurrent bank transfers (WormTX transactions) under faults, checks the
bank's invariant and the transactions' WormTX app history (the same format: app ``"tx"``), and with
``--history-out`` writes that history.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Generator
from typing import Any

from wormspace.errors import OperationFailed, UsageError
from wormspace.layers.network import Faults
from wormspace.layers.wor import Outcome, always_single_value_chosen
from wormspace.layers.wormspace import ClientRequest, SpaceLogic

WOS = 1024  # the default segment size, so `wormspace check` needs no --wos-size
SEGMENTS = 3


def _worker(seed: int, name: str, segments: list[int], ops: int) -> Any:
    rng = random.Random(seed)

    def workload(logic: SpaceLogic) -> Generator[ClientRequest, Outcome, None]:
        for n in range(ops):
            seg = rng.choice(segments)
            off = rng.randrange(4)  # few offsets: plenty of races
            addr = logic.address(seg, off)
            try:
                if rng.random() < 0.6:
                    cap = yield from logic.capture(addr)
                    yield from logic.write(addr, f"{name}{n}".encode(), cap)
                else:
                    yield from logic.read(addr)
            except OperationFailed:
                pass

    return workload


def _batcher(segment: int) -> Any:
    def workload(logic: SpaceLogic) -> Generator[ClientRequest, Outcome, None]:
        try:
            cap = yield from logic.batch_capture(segment, 0, 8)
            yield from logic.batch_write(segment, {i: f"batch{i}".encode() for i in range(8)}, cap)
            for i in range(8):
                yield from logic.read(logic.address(segment, i))
        except OperationFailed:
            pass

    return workload


def _trimmer(segment: int) -> Any:
    def workload(logic: SpaceLogic) -> Generator[ClientRequest, Outcome, None]:
        try:
            yield from logic.trim(segment)
            yield from logic.read(logic.address(segment, 0))
        except OperationFailed:
            pass

    return workload


def run_simulated(seed: int, ops: int = 12) -> dict[str, Any]:
    """Run the demo workload on a simulated cluster; return a summary (and the cluster under "cluster")."""
    from wormspace.cluster import Cluster

    cluster = Cluster.simulated(
        acceptors=3, seed=seed, wos_size=WOS, faults=Faults(drop=0.05, duplicate=0.05)
    )
    setup = cluster.client()
    segments = [setup.alloc(f"segment-{i}".encode()) for i in range(SEGMENTS)]
    for k in range(3):
        cluster.spawn(_worker(seed * 100 + k, f"p{k}-", segments, ops), at=0.001 * k)
    cluster.spawn(_batcher(segments[1]), at=0.002)
    cluster.spawn(_trimmer(segments[2]), at=0.12)
    cluster.at(0.01, lambda: cluster.crash(1))
    cluster.at(0.08, lambda: cluster.restart(1))
    cluster.at(0.1, lambda: cluster.partition({2}, {0, 1}))
    cluster.at(0.16, cluster.heal)
    cluster.run()

    history = cluster.history()
    single = all(always_single_value_chosen(v, cluster.quorum) for v in cluster.ghost.values())
    from wormspace.refinement.linearizability import check_history
    from wormspace.refinement.models import SegmentModel

    result = check_history(list(history), SegmentModel(wos_size=WOS), budget=2_000_000)
    outcomes = Counter(
        (e.f, e.type if e.type == "ok" else f"{e.type}:{e.error}") for e in history if e.type != "invoke"
    )
    return {
        "seed": seed,
        "cluster": cluster,
        "history": history,
        "segments": segments,
        "virtual_seconds": cluster.net.now,
        "network": dict(cluster.net.stats),
        "outcomes": {f"{f} {o}": n for (f, o), n in sorted(outcomes.items())},
        "registers": len(cluster.ghost),
        "single_value_chosen": single,
        "linearizability": result.verdict,
        "check": result,
    }


def _print_outcomes(console: Any, summary: dict[str, Any], title: str) -> None:
    """The table of operations by outcome and the network's counters, for every simulated demo."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("operation")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for key, n in summary["outcomes"].items():
        f, o = key.split(" ", 1)
        table.add_row(f, o, str(n))
    console.print(table)
    net = summary["network"]
    console.print(
        f"network: {net['sent']} messages sent, {net['delivered']} delivered, {net['dropped']} dropped, "
        f"{net['duplicated']} duplicated; {summary['virtual_seconds']:.3f} virtual seconds"
    )


def _print(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]WormSpace demo[/bold]: 3 acceptors (simulated, seed {summary['seed']}), 5 client processes, "
        f"segments {summary['segments']} of {WOS} registers"
    )
    console.print(
        "faults: 5% drops, 5% duplicates, random delays (reordering); acceptor 1 crashed at t=0.010s and "
        "restarted at t=0.080s; acceptor 2 partitioned away from t=0.100s to t=0.160s"
    )
    _print_outcomes(console, summary, "operations")
    checks = Table(title="checks")
    checks.add_column("check")
    checks.add_column("verdict")
    checks.add_row(
        f"always_single_value_chosen over {summary['registers']} registers (ghost vote log)",
        "OK" if summary["single_value_chosen"] else "VIOLATED",
    )
    checks.add_row(
        f"history of {len(summary['history'])} events linearizable against the WOS spec",
        summary["linearizability"],
    )
    console.print(checks)


APPS = ("log", "paxos", "kv")
_APP_TITLES = {"log": "WormLog", "paxos": "WormPaxos", "kv": "WormKV"}


def run_app(app: str, seed: int, ops: int = 8, clients: int = 4) -> dict[str, Any]:
    """Run one app under faults on a simulated cluster and check it; return a summary (``run``, ``verdict``
    objects under "run" and "check")."""
    from wormspace.refinement.wormspace_to_apps import RunConfig, app_run, check_run

    run = app_run(app, seed, RunConfig(clients=clients, ops=ops))
    verdict = check_run(run)
    outcomes = Counter(
        (e["f"], e["type"] if e["type"] == "ok" or "error" not in e else f"{e['type']}:{e['error']}")
        for e in run.events if e["type"] != "invoke"
    )
    lin = [c.linearizability for c in verdict.history if c.linearizability is not None]
    return {
        "app": app,
        "seed": seed,
        "config": run.config.describe(),
        "events": len(run.events),
        "virtual_seconds": run.virtual_seconds,
        "network": run.network,
        "outcomes": {f"{f} {o}": n for (f, o), n in sorted(outcomes.items())},
        "history": verdict.history[0].verdict if verdict.history else "OK",
        "model": lin[0].model if lin else "submit order",
        "parts": sum(len(r.partitions) for r in lin),
        "replicas": None if verdict.replicas is None else ("OK" if verdict.replicas.ok else "VIOLATED"),
        "replica_count": 0 if verdict.replicas is None else verdict.replicas.replicas,
        "sequence": 0 if verdict.replicas is None else len(verdict.replicas.sequence),
        "problems": verdict.problems,
        "verdict": verdict.verdict,
        "run": run,
        "check": verdict,
    }


def _print_app(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{_APP_TITLES[summary['app']]} demo[/bold]: 3 acceptors (simulated, seed {summary['seed']})")
    console.print(summary["config"])
    _print_outcomes(console, summary, "app operations")
    checks = Table(title="checks")
    checks.add_column("check")
    checks.add_column("verdict")
    what = ("one command sequence: no position twice, real-time order kept" if summary["app"] == "paxos" else
            f"linearizable against the {summary['model']} model ({summary['parts']} parts)")
    checks.add_row(f"app history of {summary['events']} events: {what}", summary["history"])
    if summary["replicas"] is not None:
        checks.add_row(
            f"{summary['replica_count']} replicas' applied lists are prefixes of one sequence of "
            f"{summary['sequence']} commands (SmrSpec)", summary["replicas"])
    console.print(checks)
    for problem in summary["problems"]:
        console.print(f"[red]{problem}[/red]")


def _app_main(args: argparse.Namespace) -> int:
    summary = run_app(args.app, args.seed, ops=args.ops)
    if args.history_out:
        with open(args.history_out, "w", encoding="utf-8") as out:
            out.write(summary["run"].jsonl())
    if args.json:
        json.dump({k: v for k, v in summary.items() if k not in ("run", "check")}, sys.stdout, indent=2)
        print()
    else:
        _print_app(summary)
        if args.history_out:
            print(f"app history written to {args.history_out} (re-check it: wormspace check {args.history_out})")
    return 0 if summary["verdict"] == "OK" else 1


def _print_apps(apps: dict[str, dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="apps (3 clients x 4 operations each, same kinds of faults)")
    table.add_column("app")
    table.add_column("check")
    table.add_column("verdict")
    for app, a in apps.items():
        check = f"{a['events']} events, {a['model']}" + (" model" if a["app"] != "paxos" else "")
        if a["replicas"] is not None:
            check += f"; replicas {a['replicas']}"
        table.add_row(_APP_TITLES[app], check, a["verdict"])
    Console().print(table)
    for a in apps.values():
        for problem in a["problems"]:
            Console().print(f"[red]{_APP_TITLES[a['app']]}: {problem}[/red]")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="concurrent clients with faults, then the checks")
    p.add_argument("--seed", type=int, default=1, help="simulation seed (same seed, same run)")
    p.add_argument("--ops", type=int, default=12, help="operations per worker process")
    p.add_argument("--history-out", metavar="FILE", help="write the history as Jepsen-style JSON lines")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("--real", action="store_true", help="run against real acceptor processes on loopback")
    p.add_argument("--app", choices=[*APPS, "bank"], help="run one app under faults instead and check it "
                   "(simulated): log, paxos, kv check their app history (--history-out writes it); bank checks "
                   "the bank's invariant over WormTX transfers and their WormTX app history (--history-out "
                   "writes it)")
    p.set_defaults(func=main)


def run_bank(seed: int, workers: int = 4, transfers: int = 5, accounts: int = 6) -> dict[str, Any]:
    """Concurrent transfers between accounts on 3 shards under faults, then the bank's invariant and the
    check of the transactions' WormTX app history (``history``, an ``AppHistory``)."""
    from wormspace.apps.bank import Bank, BankLogic, check_bank
    from wormspace.apps.history import AppHistory
    from wormspace.cluster import Cluster
    from wormspace.refinement.wormspace_to_apps import check_app_history, overall

    cluster = Cluster.simulated(acceptors=3, seed=seed, faults=Faults(drop=0.05, duplicate=0.05), record=False)
    history = AppHistory.of(cluster)
    bank = Bank.create(cluster.client(), accounts=accounts, opening=100)
    cores: list[BankLogic] = []
    errors: Counter[str] = Counter()

    def worker(k: int) -> Any:
        rng = random.Random(seed * 1000 + k)

        def workload(logic: SpaceLogic) -> Generator[ClientRequest, Outcome, None]:
            core = BankLogic(logic, bank.layout, history=history)
            cores.append(core)
            for _ in range(transfers):
                src, dst = rng.sample(range(accounts), 2)
                try:
                    yield from core.transfer(src, dst, rng.randint(1, 60))
                except OperationFailed as e:
                    errors[type(e).__name__] += 1

        return workload

    for k in range(workers):
        cluster.spawn(worker(k), at=0.001 * k)
    cluster.at(0.01, lambda: cluster.crash(1))
    cluster.at(0.05, lambda: cluster.restart(1))
    cluster.at(0.06, lambda: cluster.partition({2}, {0, 1}))
    cluster.at(0.1, cluster.heal)
    cluster.run()
    audit = bank.audit()
    reported = {t: ok for core in cores for t, ok in core.outcomes.items()}
    checks = check_app_history(history.events)
    tx_problems = [f"WormTX history: {p}" for c in checks for p in c.problems]
    return {
        "seed": seed,
        "transfers": workers * transfers,
        "committed": sum(reported.values()),
        "refused": sum(not ok for ok in reported.values()),
        "unknown": dict(errors),
        "failures": [repr(e) for _, e in cluster.failures],
        "balances": {a: balance for a, (balance, _) in audit.items()},
        "total": sum(balance for balance, _ in audit.values()),
        "opening_total": 100 * accounts,
        "problems": check_bank(audit, 100, reported) + tx_problems,
        "virtual_seconds": cluster.net.now,
        "tx_history": overall(checks),
        "tx_events": len(history.events),
        "history": history,
    }


def bank_main(args: argparse.Namespace) -> int:
    summary = run_bank(args.seed)
    ok = not summary["problems"] and not summary["failures"]
    history = summary.pop("history")
    if args.history_out:
        history.write(args.history_out)
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        print()
        return 0 if ok else 1
    print(
        f"bank demo (simulated, seed {summary['seed']}): 6 accounts on 3 shards, {summary['transfers']} concurrent"
        " transfers in 4 processes; 5% drops and duplicates, acceptor 1 crashed t=0.01-0.05s, acceptor 2"
        " partitioned t=0.06-0.10s"
    )
    print(
        f"committed {summary['committed']}, refused (funds) {summary['refused']}, unknown {summary['unknown']};"
        f" {summary['virtual_seconds']:.2f} virtual seconds"
    )
    print(f"balances {summary['balances']}: total {summary['total']} (opened with {summary['opening_total']})")
    for problem in summary["problems"] + summary["failures"]:
        print(f"VIOLATED: {problem}")
    print(f"WormTX app history: {summary['tx_events']} events, {summary['tx_history']} (atomic commitment)")
    if args.history_out:
        print(f"app history written to {args.history_out} (re-check it: wormspace check {args.history_out})")
    print("invariant held: total unchanged, every transfer applied to both accounts or neither, at most once"
          if ok else "invariant VIOLATED")
    return 0 if ok else 1


# ---- `wormspace demo --real` ----------------------------------------------------------------------------


def run_real_demo(args: Any) -> int:
    """The demo workload of ``wormspace demo`` against three real acceptor processes on loopback (SQLite,
    TCP), with real faults: acceptor 1 is killed with SIGKILL and restarted, then acceptor 2 is paused
    (SIGSTOP) for a while. The recorded history is then checked for linearizability. Exit code 0 iff OK."""
    import tempfile
    import threading
    import time

    from wormspace.history import Recorder
    from wormspace.layers.wormspace import WormSpace, run_sync
    from wormspace.refinement.linearizability import check_history
    from wormspace.refinement.models import SegmentModel
    from wormspace.runtime.driver import TcpDriver
    from wormspace.runtime.supervise import LocalCluster

    recorder = Recorder(clock=time.monotonic_ns)
    faults: list[str] = []
    failures: list[BaseException] = []
    with (
        tempfile.TemporaryDirectory(prefix="wormspace-demo-") as d,
        LocalCluster(d, 3, wos_size=WOS) as cluster,
        TcpDriver.from_config(cluster.config) as driver,
    ):
        setup = WormSpace(SpaceLogic(wos_size=WOS, seed=args.seed, recorder=recorder, process=0), driver)
        segments = [setup.alloc(f"segment-{i}".encode()) for i in range(SEGMENTS)]
        workloads = [_worker(args.seed * 100 + k, f"p{k}-", segments, args.ops) for k in range(3)]
        workloads += [_batcher(segments[1]), _trimmer(segments[2])]

        def client(k: int, workload: Any) -> None:
            logic = SpaceLogic(wos_size=WOS, seed=args.seed * 7919 + k, recorder=recorder, process=k)
            try:
                run_sync(driver, workload(logic))
            except BaseException as e:  # reported below; a workload catches the outcomes it expects
                failures.append(e)

        def inject() -> None:
            # Each step waits on `stopping`: once the demo unwinds (Ctrl-C, SIGTERM), no acceptor is restarted.
            try:
                if stopping.wait(0.02):
                    return
                cluster.crash(1)
                faults.append("acceptor 1 killed (SIGKILL)")
                if stopping.wait(0.2):
                    return
                cluster.restart(1)
                faults.append("acceptor 1 restarted on its SQLite file")
                cluster.pause(2)
                faults.append("acceptor 2 paused (SIGSTOP)")
                stopping.wait(0.3)
                cluster.resume(2)
                faults.append("acceptor 2 resumed")
            except BaseException as e:  # reported below, unless the demo is being stopped
                if not stopping.is_set():
                    failures.append(e)

        stopping = threading.Event()
        threads = [threading.Thread(target=client, args=(k + 1, w)) for k, w in enumerate(workloads)]
        threads.append(threading.Thread(target=inject))
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            stopping.set()
    history = recorder.history
    if args.history_out:
        history.write(args.history_out)
    result = check_history(list(history), SegmentModel(wos_size=WOS), budget=2_000_000)
    summary = {
        "acceptors": 3,
        "segments": segments,
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
        console.print(f"[bold]WormSpace demo[/bold]: 3 real acceptor processes on loopback, segments {segments}")
        for f in faults:
            console.print(f"fault: {f}")
        for e in failures:
            console.print(f"[red]client failure[/red]: {e!r}")
        console.print(f"history of {len(history)} events linearizable against the WOS spec: {result.verdict}")
        if args.history_out:
            console.print(f"history written to {args.history_out} (re-check it: wormspace check {args.history_out})")
    return 0 if result.verdict == "OK" and not failures else 1



def main(args: argparse.Namespace) -> int:
    if getattr(args, "app", None) is not None:
        if args.real:
            raise UsageError("--app runs on the simulated cluster; it does not combine with --real")
        return bank_main(args) if args.app == "bank" else _app_main(args)
    if args.real:
        return run_real_demo(args)
    summary = run_simulated(args.seed, args.ops)
    if args.history_out:
        summary["history"].write(args.history_out)
    apps = {app: run_app(app, args.seed, ops=4, clients=3) for app in APPS}
    ok = summary["single_value_chosen"] and summary["linearizability"] == "OK"
    ok = ok and all(a["verdict"] == "OK" for a in apps.values())
    if args.json:
        out = {k: v for k, v in summary.items() if k not in ("cluster", "history", "check")}
        out["events"] = len(summary["history"])
        out["apps"] = {app: a["verdict"] for app, a in apps.items()}
        json.dump(out, sys.stdout, indent=2)
        print()
    else:
        _print(summary)
        _print_apps(apps)
        if args.history_out:
            print(f"history written to {args.history_out} (re-check it: wormspace check {args.history_out})")
    return 0 if ok else 1
