"""Run CrossHair on the lemmas of the acceptor, WOR and WOS layers: one target per subprocess, two at a time.

``python -m wormspace.proofs.crosshair_runner [--quick] [--full] [--timeout S] [--target NAME] [--json]``
(``make crosshair``; part of ``make test``).

The targets are ``acceptor_lemmas.TARGETS``, ``wor_lemmas.TARGETS`` and ``wos_lemmas.TARGETS``. The default
run checks every target but the three whole-step Voting lemmas (``WHOLE_STEP``: their symbolic inputs are
tuples of tuples, too slow to search in the test suite's budget -- they found neither the
accept-below-promise nor the no-adopt mutant in 150 s per condition, which the per-case lemmas
``accept_case_*`` / ``propose_case_*`` find in seconds); ``--full`` adds them.

Each target is checked with ``python -m crosshair check --analysis_kind=icontract
--per_condition_timeout=S`` in its own process, with ``WORMSPACE_CONTRACTS=0`` so the callees' contracts
stay out of the symbolic search (the lemmas' own contracts are plain icontract, always on). CrossHair's exit
code 0 means *no counterexample was found within the bound* -- it is not a proof, and the table says so;
exit 1 means a counterexample (printed); anything else is an error. The runner exits 1 if any target has a
counterexample or failed to run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from wormspace.proofs import acceptor_lemmas, wor_lemmas, wos_lemmas

TARGETS: tuple[str, ...] = (*acceptor_lemmas.TARGETS, *wor_lemmas.TARGETS, *wos_lemmas.TARGETS)

# The whole-step Voting lemmas search bigger inputs than the others: only in --full runs, with more time.
WHOLE_STEP = {"prepare_step_preserves", "accept_step_preserves", "propose_step_preserves"}
SLOW = WHOLE_STEP
DEFAULT_TARGETS: tuple[str, ...] = tuple(t for t in TARGETS if t.rsplit(".", 1)[1] not in WHOLE_STEP)


@dataclass(frozen=True, slots=True)
class Outcome:
    target: str
    code: int
    seconds: float
    timeout: float
    output: str

    @property
    def verdict(self) -> str:
        if self.code == 0:
            return f"no counterexample found (bounded: {self.timeout:g} s per condition)"
        if self.code == 1:
            return "COUNTEREXAMPLE"
        return f"error (exit {self.code})"


def check(target: str, timeout: float, launcher: list[str] | None = None) -> Outcome:
    """Check one target in a subprocess. ``launcher`` replaces ``python -m crosshair`` (tests use it to
    plant a mutant first)."""
    cmd = [*(launcher or [sys.executable, "-m", "crosshair"])]
    cmd += ["check", "--analysis_kind=icontract", f"--per_condition_timeout={timeout:g}", target]
    env = dict(os.environ, WORMSPACE_CONTRACTS="0")
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout * 20 + 120, check=False)
    return Outcome(target, proc.returncode, time.monotonic() - start, timeout, (proc.stdout + proc.stderr).strip())


def run(timeout: float, targets: tuple[str, ...] = DEFAULT_TARGETS, jobs: int = 2) -> list[Outcome]:
    def one(t: str) -> Outcome:
        return check(t, timeout * (1.5 if t.rsplit(".", 1)[1] in SLOW else 1))

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, targets))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="crosshair_runner", description=__doc__.split("\n\n")[1])
    p.add_argument("--quick", action="store_true", help="short bounds (2 s per condition)")
    p.add_argument("--full", action="store_true", help="add the whole-step Voting lemmas (x1.5 time)")
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds per condition (default 4; x1.5 for the whole-step Voting lemmas)",
    )
    p.add_argument("--target", action="append", help="check only this target (repeatable; short names ok)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    timeout = args.timeout if args.timeout is not None else (2.0 if args.quick else 4.0)
    targets: tuple[str, ...] = TARGETS if args.full else DEFAULT_TARGETS
    if args.target:
        targets = tuple(t for t in TARGETS if any(t == x or t.endswith("." + x) for x in args.target))
        if not targets:
            print(f"crosshair_runner: no such target among {', '.join(TARGETS)}", file=sys.stderr)
            return 2
    outcomes = run(timeout, targets)
    if args.json:
        json.dump(
            [
                {"target": o.target, "exit": o.code, "verdict": o.verdict, "seconds": round(o.seconds, 2)}
                for o in outcomes
            ],
            sys.stdout,
            indent=2,
        )
        print()
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="CrossHair on the acceptor, WOR and WOS lemmas (checked, bounded; not proofs)")
        for col in ("target", "verdict", "seconds"):
            table.add_column(col)
        for o in outcomes:
            table.add_row(o.target.rsplit(".", 1)[1], o.verdict, f"{o.seconds:.1f}")
        Console().print(table)
        for o in outcomes:
            if o.code != 0:
                print(f"--- {o.target}\n{o.output}")
    return 0 if all(o.code == 0 for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
