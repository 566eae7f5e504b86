"""The ``cluster`` verb: run a cluster of acceptor processes on this machine.

``wormspace cluster up|down|status|replace --acceptors 3 --dir DIR [--base-port P] [--auth] [--id N] [--json]``

* ``up`` on a new directory makes a cluster: a random cluster id, each acceptor's data dir ``DIR/acceptor-N``
  initialised with its identity, ``DIR/cluster.toml`` (the file ``wormspace.connect`` and every ``--cluster``
  flag take), then one detached ``wormspace serve`` per acceptor. It succeeds only when every acceptor it
  started has answered a hello with its own pid, the cluster id and its acceptor id.
* ``up`` on a directory whose cluster file exists starts the acceptors that are not running (with ``--id N``
  only acceptor N) on their old ports and data, and leaves the running ones alone: this is how one
  acceptor is restarted. Options that would change the cluster (``--acceptors``, ``--auth``, ``--groups``,
  ``--base-port``) are refused when they differ from its cluster file. Exit 1 if an acceptor failed to
  start (an acceptor whose database is lost refuses to start; see docs/operations.md).
* ``status`` prints id, address, pid and alive/dead of each acceptor (exit 0 if all are alive, else 1).
* ``down`` sends SIGTERM to each running acceptor (with ``--id N`` only acceptor N) and SIGKILL to those
  still running after ``--timeout``.
* ``down`` and ``status`` also refuse ``--acceptors``, ``--auth``, ``--groups`` and ``--base-port`` when they
  differ from the cluster file (``status`` takes no ``--id``: it shows every acceptor).
* ``replace --id N`` replaces acceptor N whose data directory is lost, while the others keep serving
  (``wormspace.replacement``): it fences every other acceptor of N's group, snapshots their SQLite files,
  writes N's new file, then starts N. Exit 1 if a survivor does not answer (start it, then run it again).

``up``, ``down`` and ``replace`` on one directory run one at a time: each holds an exclusive lock on
``DIR/cluster.lock`` (``flock``) while it runs, so two ``up`` at once on a new directory make one cluster, the
first starting its acceptors and the second finding them running (both exit 0); ``status`` takes no lock.

``--json`` prints the same information as one JSON object instead of a table. Exit code 2: a usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wormspace.errors import UsageError
from wormspace.replacement import ReplaceError
from wormspace.runtime.config import CONFIG_NAME, ClusterConfig, load_config
from wormspace.runtime.supervise import DeployError, LocalCluster


def _rows(cluster: LocalCluster, notes: dict[int, str] | None = None) -> list[dict[str, Any]]:
    rows = []
    for a in cluster.config.acceptors:
        pid = cluster.pid(a.id)
        row: dict[str, Any] = {
            "id": a.id,
            "host": a.host,
            "port": a.port,
            "pid": pid,
            "alive": pid is not None,
            "data_dir": a.data_dir,
        }
        if notes is not None and a.id in notes:
            row["result"] = notes[a.id]
        rows.append(row)
    return rows


def _print(cluster: LocalCluster, args: argparse.Namespace, title: str, notes: dict[int, str] | None = None) -> None:
    rows = _rows(cluster, notes)
    if args.json:
        print(json.dumps({"dir": str(cluster.directory), "config": str(cluster.config_path), "acceptors": rows}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("id", justify="right")
    table.add_column("address")
    table.add_column("pid", justify="right")
    table.add_column("state")
    if notes is not None:
        table.add_column("result")
    for r in rows:
        state = "[green]alive[/green]" if r["alive"] else "[red]dead[/red]"
        cells = [str(r["id"]), f"{r['host']}:{r['port']}", str(r["pid"] or "-"), state]
        if notes is not None:
            cells.append(str(r.get("result", "")))
        table.add_row(*cells)
    console = Console()
    console.print(table)
    console.print(f"cluster file: {cluster.config_path}")


def _existing(directory: Path) -> LocalCluster:
    if not (directory / CONFIG_NAME).exists():
        raise UsageError(f"no cluster in {directory} (no {CONFIG_NAME}); start one with `wormspace cluster up`")
    cfg = load_config(directory / CONFIG_NAME)
    return LocalCluster(directory, len(cfg.acceptors), detach=True)


def _check_unchanged(directory: Path, cfg: ClusterConfig, args: argparse.Namespace) -> None:
    """``up``, ``down`` and ``status`` on an existing cluster refuse options that differ from its cluster file
    (they are never ignored)."""
    path = directory / CONFIG_NAME
    if args.acceptors is not None and args.acceptors != len(cfg.acceptors):
        raise UsageError(
            f"{path} describes {len(cfg.acceptors)} acceptors, not {args.acceptors}; use another --dir for another"
            " cluster"
        )
    if args.auth is not None and args.auth != (cfg.auth_key_file is not None):
        have = "with" if cfg.auth_key_file is not None else "without"
        raise UsageError(
            f"the cluster in {directory} was created {have} --auth; `{args.action}` does not change authentication of"
            f" an existing cluster (every acceptor and client must switch at once: edit auth_key_file in {path}"
            " while the cluster is down)"
        )
    if args.groups is not None and args.groups != cfg.groups:
        raise UsageError(
            f"the cluster in {directory} has {cfg.groups} group(s); `{args.action}` does not change --groups"
        )
    if args.base_port is not None and args.base_port != min(a.port for a in cfg.acceptors):
        raise UsageError(
            f"the cluster in {directory} has its ports in {path}; `{args.action}` does not change --base-port"
        )


def cmd_up(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    ids = None if args.id is None else [args.id]
    if (directory / CONFIG_NAME).exists():
        cfg = load_config(directory / CONFIG_NAME)
        _check_unchanged(directory, cfg, args)
        cluster = LocalCluster(directory, len(cfg.acceptors), detach=True)
        wanted = [a.id for a in cfg.acceptors] if ids is None else [cfg.acceptor(args.id).id]
        was = set(cluster.running())
        try:
            cluster.start(wanted)
        except DeployError as e:
            notes = {
                i: ("already running" if i in was else "started" if cluster.alive(i) else "FAILED") for i in wanted
            }
            _print(cluster, args, f"WormSpace cluster in {cluster.directory}", notes)
            print(f"wormspace cluster: {e}", file=sys.stderr)
            return 1
        notes = {i: ("already running" if i in was else "started") for i in wanted}
        _print(cluster, args, f"WormSpace cluster up in {cluster.directory}", notes)
        return 0
    if args.id is not None:
        raise UsageError(f"no cluster in {directory} (no {CONFIG_NAME}); --id restarts one acceptor of a cluster")
    n = 3 if args.acceptors is None else args.acceptors
    if not 1 <= n <= 64:
        raise UsageError(f"--acceptors must be in [1, 64], got {n}")
    groups = 1 if args.groups is None else args.groups
    cluster = LocalCluster(directory, n, base_port=args.base_port, auth=bool(args.auth), groups=groups, detach=True)
    cluster.start()
    _print(cluster, args, f"WormSpace cluster up in {cluster.directory}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    if args.id is not None:
        raise UsageError("status shows every acceptor; --id is for up, down and replace")
    cluster = _existing(Path(args.dir))
    _check_unchanged(cluster.directory, cluster.config, args)
    _print(cluster, args, f"WormSpace cluster in {cluster.directory}")
    return 0 if all(cluster.alive(a.id) for a in cluster.config.acceptors) else 1


def cmd_down(args: argparse.Namespace) -> int:
    cluster = _existing(Path(args.dir))
    _check_unchanged(cluster.directory, cluster.config, args)
    was = set(cluster.running())
    if args.id is None:
        clean = cluster.stop(timeout=args.timeout)
    else:
        clean = {cluster.config.acceptor(args.id).id: cluster.stop_one(args.id, timeout=args.timeout)}
    notes = {i: ("not running" if i not in was else "stopped" if ok else "killed (SIGKILL)") for i, ok in clean.items()}
    _print(cluster, args, f"WormSpace cluster down in {cluster.directory}", notes)
    return 0


def cmd_replace(args: argparse.Namespace) -> int:
    from wormspace.replacement import replace_acceptor

    if args.id is None:
        raise UsageError("replace needs --id N, the acceptor whose data directory is lost")
    cluster = _existing(Path(args.dir))
    done = replace_acceptor(cluster.config, args.id, timeout=args.timeout)
    cluster.restart(args.id)
    note = (
        f"replaced: fenced {', '.join(map(str, done.survivors))} at ballot {tuple(done.fence)},"
        f" rebuilt {done.registers} rows"
    )
    _print(cluster, args, f"WormSpace cluster in {cluster.directory}: acceptor {args.id} replaced", {args.id: note})
    return 0


_COMMANDS = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "replace": cmd_replace}
LOCK_NAME = "cluster.lock"


@contextlib.contextmanager
def one_at_a_time(directory: Path, action: str) -> Iterator[None]:
    """``up``, ``down`` and ``replace`` on ``directory`` one at a time (module doc): an exclusive ``flock`` on
    ``directory/cluster.lock``, held until the action ends (released by the kernel if the process dies).
    ``up`` creates the directory first; the others lock only a directory that exists (else they fail as
    before: no cluster here)."""
    if action == "status" or (action != "up" and not directory.is_dir()):
        yield
        return
    if action == "up":
        directory.mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK_NAME, "ab") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        yield


def main(args: argparse.Namespace) -> int:
    """The verb's entry point (``func`` of its parser)."""
    try:
        with one_at_a_time(Path(args.dir), args.action):
            return _COMMANDS[args.action](args)
    except UsageError as e:
        print(f"wormspace cluster: error: {e}", file=sys.stderr)
        return 2
    except (DeployError, ReplaceError) as e:
        print(f"wormspace cluster: {e}", file=sys.stderr)
        return 1


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535 - 64:
        raise argparse.ArgumentTypeError(f"not a usable base port: {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"not a finite non-negative number of seconds: {text!r}")
    return value


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "cluster",
        help="start, stop or inspect a local cluster of acceptor processes",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("action", choices=sorted(_COMMANDS), help="up, down, status or replace")
    p.add_argument("--dir", required=True, metavar="DIR", help="cluster directory (cluster.toml, acceptor-N/)")
    p.add_argument("--acceptors", type=int, default=None, metavar="N", help="number of acceptors for up (3)")
    p.add_argument("--base-port", type=_port, default=None, metavar="P", help="ports P, P+1, ... (default: free)")
    p.add_argument("--groups", type=int, default=None, metavar="G", help="acceptor groups for up (default 1)")
    p.add_argument(
        "--auth", action="store_true", default=None, help="up: create DIR/auth.key and authenticate every frame"
    )
    p.add_argument(
        "--id",
        type=int,
        default=None,
        metavar="N",
        help="up or down on an existing cluster: only acceptor N; replace: the acceptor whose disk is lost",
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=10.0,
        metavar="S",
        help="down: SIGKILL after S seconds; replace: wait S seconds for the survivors' fence (10)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=main)
