"""The ``wormspace check`` verb: judge an exported history for linearizability.

``wormspace check FILE`` reads a JSON-lines history (``-`` for stdin; format in docs/history-format.md),
checks it with the Wing-Gong-Lowe checker against the WOR model, or the segment model when the history
allocates or trims (``--model`` overrides), and prints a per-partition table; for ILLEGAL it also prints a
minimal illegal sub-history and why no order works. Exit codes:

* 0 -- OK: every partition has a witness linearization (checked for this history; no more is claimed);
* 1 -- ILLEGAL: some partition has none;
* 2 -- bad input: the history is malformed (the message names the line) or empty, or an option is invalid;
* 3 -- UNKNOWN: a partition ran out of its step budget before an answer (``--budget`` raises it);
* 4 -- an I/O error (the verdict could not be written: standard output on a full disk), as for every verb.

The verdict line is printed (and flushed) as soon as the verdict is known, before the minimal illegal
sub-history is searched for: shrinking has a time budget (``--shrink-seconds``, default 10; when it runs out
the smallest illegal part reached is shown, marked partial) and ``--no-shrink`` skips it.

``--json`` prints one JSON object instead; ``--html OUT`` also writes the timeline page. ``--initial``
says what state the run began from: ``empty`` (a fresh cluster) or ``unknown`` (a cluster that already held
data); by default the history's own ``initial`` line decides, and without one, ``empty``.

An app history (its first event carries ``app``: WormLog, WormPaxos, WormKV) is checked against the apps'
specs instead (``wormspace_to_apps.check_app_history``, docs/apps/checks.md), with the same exit codes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from wormspace.errors import UsageError
from wormspace.history import INITIAL_STATES, History, HistoryFormatError, operations
from wormspace.refinement.linearizability import (
    DEFAULT_BUDGET,
    DEFAULT_SHRINK_SECONDS,
    ILLEGAL,
    OK,
    UNKNOWN,
    CheckResult,
    check_operations,
)
from wormspace.refinement.models import DEFAULT_WOS_SIZE, MODEL_NAMES, choose_model
from wormspace.refinement.timeline import render_html
from wormspace.refinement.wormspace_to_apps import is_app_history

EXIT_OK = 0
EXIT_ILLEGAL = 1
EXIT_BAD_INPUT = 2
EXIT_UNKNOWN = 3
EXIT_CODES = {OK: EXIT_OK, ILLEGAL: EXIT_ILLEGAL, UNKNOWN: EXIT_UNKNOWN}
MAX_ROWS = 40  # partitions shown in the table; the rest are summarised
_STYLE = {OK: "green", ILLEGAL: "bold red", UNKNOWN: "yellow"}


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _seconds(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not x > 0 or x == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return x


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``check`` on the ``wormspace`` command."""
    p = subparsers.add_parser(
        "check",
        help="check an exported history for linearizability (exit 0 OK, 1 ILLEGAL, 3 UNKNOWN, 2 bad input)",
        description="Check a JSON-lines history (docs/history-format.md) for linearizability against the WOR "
        "model, or the segment model when the history allocates or trims; print a table per partition and, "
        "for ILLEGAL, a minimal illegal sub-history.",
        epilog="exit codes: 0 OK, 1 ILLEGAL, 2 bad input, 3 UNKNOWN (a partition ran out of its step budget),"
        " 4 an I/O error",
    )
    p.add_argument("file", metavar="FILE", help="JSON-lines history, or - for stdin")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--html", metavar="OUT.html", help="also write the timeline as a self-contained page")
    p.add_argument("--wos-size", type=_positive, default=DEFAULT_WOS_SIZE, metavar="N",
                   help=f"registers per segment (default {DEFAULT_WOS_SIZE})")
    p.add_argument("--budget", type=_positive, default=DEFAULT_BUDGET, metavar="N",
                   help=f"model steps allowed per partition before UNKNOWN (default {DEFAULT_BUDGET})")
    p.add_argument("--model", choices=MODEL_NAMES, default="auto",
                   help="wor, segment, or auto: segment when the history allocates or trims (default)")
    p.add_argument("--initial", choices=INITIAL_STATES, default=None,
                   help="the state the run began from: empty (a fresh cluster) or unknown (it held data); "
                   "default: the history's initial line, else empty")
    p.add_argument("--no-shrink", action="store_true",
                   help="report the failing part as found, without shrinking it to a minimal one")
    p.add_argument("--shrink-seconds", type=_seconds, default=DEFAULT_SHRINK_SECONDS, metavar="S",
                   help=f"time budget for shrinking an illegal part (default {DEFAULT_SHRINK_SECONDS:g}); "
                   "past it the smallest illegal part reached is shown, marked partial")
    p.set_defaults(func=run)


def _bad_input(args: argparse.Namespace, message: str, line: int | None = None) -> int:
    print(f"wormspace check: {message}", file=sys.stderr)
    if args.json:
        print(json.dumps({"verdict": None, "file": args.file, "error": message, "line": line}))
    return EXIT_BAD_INPUT


def _unwritable(path: str) -> str | None:
    """Why ``path`` cannot be written (checked before the history is, so a long check does not end in it)."""
    target = Path(path)
    if target.is_dir():
        return "Is a directory"
    if not target.parent.is_dir():
        return "No such file or directory"
    if not os.access(target.parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        return "Permission denied"
    return None


def run(args: argparse.Namespace) -> int:
    """Check ``args.file``; returns the exit code."""
    name = "<stdin>" if args.file == "-" else args.file
    if args.html and (why := _unwritable(args.html)) is not None:
        return _bad_input(args, f"cannot write {args.html}: {why}")
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    except OSError as e:
        return _bad_input(args, f"cannot read {name}: {e.strerror}")
    except UnicodeDecodeError:
        return _bad_input(args, f"{name} is not UTF-8 text")
    if is_app_history(text):
        return _run_app(args, name, text)
    try:
        history = History.from_jsonl(text)
        if not len(history):
            return _bad_input(args, f"{name} holds no events: an empty history is not a run to check")
        initial = history.initial if args.initial is None else args.initial
        ops = operations(history)  # paired once, for the model choice and the check
        model = choose_model(ops, args.wos_size, args.model, initial)
        started = time.perf_counter()

        def announce(verdict: str) -> None:  # before shrinking, which may take --shrink-seconds
            if verdict != ILLEGAL or args.no_shrink:
                return
            where = sys.stderr if args.json else sys.stdout
            print(f"Verdict: {verdict} (after {time.perf_counter() - started:.3f} s); shrinking the failing part "
                  f"to a minimal one, up to {args.shrink_seconds:g} s (--no-shrink skips this)", file=where,
                  flush=True)

        result = check_operations(ops, model, args.budget, events=len(history), shrink=not args.no_shrink,
                                  shrink_seconds=args.shrink_seconds, on_verdict=announce)
        elapsed = time.perf_counter() - started
    except HistoryFormatError as e:
        return _bad_input(args, f"{name}: {e}", e.line)
    except UsageError as e:
        return _bad_input(args, f"{name}: {e}")
    if args.html:
        try:
            Path(args.html).write_text(render_html(history, result, title=f"wormspace check {name}"),
                                       encoding="utf-8")
        except OSError as e:
            return _bad_input(args, f"cannot write {args.html}: {e.strerror}")
    if args.json:
        out: dict[str, Any] = {"file": name, **result.to_json(), "elapsed_s": round(elapsed, 6)}
        print(json.dumps(out))
    else:
        report(Console(), result, name, elapsed)
    return EXIT_CODES[result.verdict]


def _run_app(args: argparse.Namespace, name: str, text: str) -> int:
    """An app history (its events carry ``app``): checked against the apps' specs (wormspace_to_apps)."""
    from wormspace.refinement.wormspace_to_apps import app_report, check_app_history, overall

    if args.html:
        return _bad_input(args, "--html draws WormSpace histories only, not app histories")
    try:
        started = time.perf_counter()
        checks = check_app_history(text, args.budget)
        elapsed = time.perf_counter() - started
    except HistoryFormatError as e:
        return _bad_input(args, f"{name}: {e}", e.line)
    verdict = overall(checks)
    if args.json:
        print(json.dumps({"file": name, "verdict": verdict, "apps": [c.to_json() for c in checks],
                          "elapsed_s": round(elapsed, 6)}))
    else:
        app_report(Console(), checks, name, elapsed)
    return EXIT_CODES[verdict]


def report(console: Console, result: CheckResult, name: str, elapsed: float) -> None:
    """Print the human report: summary, per-partition table, and for ILLEGAL the minimal sub-history."""
    console.print(
        f"[bold]{name}[/]: {result.events} events, {result.operations} operations, "
        f"model [bold]{result.model}[/] from an {result.initial} initial state, {result.steps} steps in {elapsed:.3f} s"
    )
    parts = sorted(result.partitions, key=lambda p: (p.verdict == OK, p.key))
    table = Table(title="Partitions", title_justify="left")
    table.add_column("Partition")
    table.add_column("Operations", justify="right")
    table.add_column("Steps", justify="right")
    table.add_column("Verdict")
    for p in parts[:MAX_ROWS]:
        table.add_row(p.label, str(p.operations), str(p.steps), Text(p.verdict, style=_STYLE[p.verdict]))
    if len(parts) > MAX_ROWS:
        rest = parts[MAX_ROWS:]
        table.caption = f"… and {len(rest)} more partitions, all {OK}" if all(
            p.verdict == OK for p in rest) else f"… and {len(rest)} more partitions"
    if parts:
        console.print(table)
    else:
        console.print("No operation constrains the model (nothing to check).")
    if result.minimal is not None:
        m = result.minimal
        kind = {"minimal": "Minimal illegal sub-history",
                "partial": "Illegal sub-history (shrinking ran out of time: not minimal)",
                "no": "Illegal part (not shrunk)"}[m.shrunk]
        sub = Table(title=f"{kind} ({m.label})", title_justify="left")
        sub.add_column("Op", justify="right")
        sub.add_column("Process", justify="right")
        sub.add_column("Call", justify="right")
        sub.add_column("Return", justify="right")
        sub.add_column("Operation")
        for s, text in zip(m.operations, m.descriptions, strict=True):
            sub.add_row(str(s.source.id), str(s.process), str(s.call), "∞" if s.ret is None else str(s.ret),
                        text)
        console.print(sub)
        console.print(Text(m.explanation))
    verdict = Text(result.verdict, style=_STYLE[result.verdict])
    if result.verdict == OK:
        console.print(Text("Verdict: ").append(verdict).append(
            " -- every partition has a witness linearization (checked for this history)."))
    elif result.verdict == ILLEGAL:
        bad = sum(p.verdict == ILLEGAL for p in result.partitions)
        console.print(Text("Verdict: ").append(verdict).append(
            f" -- {bad} partition(s) have no linearization."))
    else:
        out = sum(p.verdict == UNKNOWN for p in result.partitions)
        console.print(Text("Verdict: ").append(verdict).append(
            f" -- {out} partition(s) ran out of the step budget; raise --budget to finish them."))

