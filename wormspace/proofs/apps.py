"""Obligations of the apps (``wormspace/apps/``) against their specs, through the WormSpace client API.

The apps and their checkers land separately, so an app obligation is discharged by a function looked up
in ``APP_CHECKS`` -- a small table, the one place to update when a module or function is renamed. Each row
names the app module and its spec class, and the checker module and function that judges the app against
the spec. The discharge imports them lazily; while a module is missing the obligation's result is
``unknown`` with the reason, and the composition names the gap -- so ``wormspace prove`` exits non-zero
until the apps are checked, as it should.

The checker function's contract: ``fn(quick: bool) -> report``, where ``report.ok`` is a bool (True:
checked within the bounds; False: a counterexample), ``report.render()`` a readable text (its first line
the bounds), and optionally ``report.verdict`` (``"UNKNOWN"``/``"VACUOUS"``: not confirmed).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from wormspace.proofs.obligations import (
    CHECKED,
    COUNTEREXAMPLE,
    NOT_CONFIRMED,
    UNKNOWN,
    Bounds,
    Evidence,
    Obligation,
    Run,
    TraceStep,
    register,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AppCheck:
    app: str  # the app module
    spec: str  # its spec class, in the app module
    checker: str  # the refinement module that checks it
    function: str  # fn(quick: bool) -> report


APP_CHECKS: dict[str, AppCheck] = {
    "log_positions_unique": AppCheck(app="wormspace.apps.log", spec="LogSpec",
                                     checker="wormspace.refinement.wormspace_to_apps", function="check_log"),
    "smr_replicas_agree": AppCheck(app="wormspace.apps.paxos", spec="SmrSpec",
                                   checker="wormspace.refinement.wormspace_to_apps", function="check_paxos"),
    "kv_linearizable": AppCheck(app="wormspace.apps.kv", spec="KvSpec",
                                checker="wormspace.refinement.wormspace_to_apps", function="check_kv"),
    "atomic_commit": AppCheck(app="wormspace.apps.tx", spec="TxSpec",
                              checker="wormspace.refinement.wormspace_to_tx", function="check_tx"),
}


def _missing(module: str) -> str | None:
    """Why ``module`` cannot be imported (None if it can)."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
        return f"{module} is not in this build ({e.name} missing)"
    return None


def app_check(name: str, run: Run) -> Evidence:
    row = APP_CHECKS[name]
    for module in (row.app, row.checker):
        why = _missing(module)
        if why is not None:
            return Evidence(result=UNKNOWN, bounds="not run", detail=f"not discharged: {why}")
    fn = getattr(importlib.import_module(row.checker), row.function, None)
    if fn is None:
        return Evidence(result=UNKNOWN, bounds="not run",
                        detail=f"not discharged: {row.checker} has no {row.function}")
    report: Any = run.shared(f"{row.checker}.{row.function}", lambda: fn(quick=run.quick))
    text = str(report.render())
    bounds = text.splitlines()[0] if text else row.function
    if getattr(report, "verdict", None) in ("UNKNOWN", "VACUOUS"):
        return Evidence(result=NOT_CONFIRMED, bounds=bounds, detail=f"{row.function}: {report.verdict}")
    if report.ok:
        return Evidence(result=CHECKED, bounds=bounds)
    trace = tuple(TraceStep(row.function, None, line) for line in text.splitlines()[1:] if line.strip())
    return Evidence(result=COUNTEREXAMPLE, bounds=bounds, detail=f"{row.function} failed", trace=trace)


def _obligation(
    name: str, statement: str, method: str, relies_on: tuple[str, ...], covers: tuple[str, ...]
) -> Obligation:
    return Obligation(
        name=name,
        layer="apps",
        statement=statement,
        method=method,
        bounds=Bounds(quick="the app checker's quick bounds", full="the app checker's full bounds"),
        discharge=lambda run: app_check(name, run),
        covers=covers,
        relies_on=relies_on,
        pair=APP_CHECKS[name].checker.rsplit(".", 1)[1],
    )


register(
    _obligation(
        "log_positions_unique",
        "WormLog: every append gets a position no other append gets; reads return what was appended there.",
        "linearizability of app histories against LogSpec",
        ("wos.alloc_unique", "wos.batch_equals_sequence", "wor.immutability", "wormspace.segments_independent"),
        ("LogSpec",),
    ),
    _obligation(
        "smr_replicas_agree",
        "WormPaxos: every replica applies the same commands in the same order.",
        "replica logs compared across simulated runs against SmrSpec",
        ("wor.agreement", "wor.immutability", "wos.alloc_unique", "wormspace.segments_independent"),
        ("SmrSpec",),
    ),
    _obligation(
        "kv_linearizable",
        "WormKV: get/put/delete/cas histories are linearizable against a sequential map.",
        "linearizability of app histories against KvSpec",
        ("wor.linearizable", "wor.agreement", "wormspace.segments_independent"),
        ("KvSpec",),
    ),
    _obligation(
        "atomic_commit",
        "WormTX: all decide the same; commit only if every participant voted yes.",
        "exhaustive exploration of the core and simulated E3/C5 runs against TxSpec",
        ("wor.immutability", "wor.agreement", "wormspace.segments_independent"),
        ("TxSpec",),
    ),
)
