"""Proof obligations as named objects: the type, the registry, the results.

Theory of operation. Each layer owes its neighbour above a few named guarantees -- *obligations*. An
``Obligation`` names one (``layer``, ``name``), states it in one sentence (``statement``), says how it is
discharged (``method``: the existing check that judges it) and in which bounds (``bounds``: the quick and
the full run's), and carries a ``discharge`` function that runs that check and returns an ``Evidence``:
the result, the bounds actually met (state counts and depths, example counts, history counts), and for a
counterexample the readable trace. Obligations are discharged by checks, never by prose.

Rules.

1. Results are one of ``checked`` (the check ran to its bounds and found nothing), ``counterexample`` (it
   found a violation: the trace says where), ``not confirmed`` (it ran but could not finish within its
   bounds, or a "sometimes" property was never met, so the run says nothing) and ``unknown`` (it could not
   run: a module is missing, a tool failed). Only ``checked`` counts as discharged; it is always bounded.
2. Each obligation names the spec primitives it judges (``covers``: ``"WosSpec.alloc"``) and the
   obligations of lower layers it relies on (``relies_on``: ``"wor.immutability"``); ``composition.py``
   computes from these whether the chain is closed.
3. Checks shared by several obligations (the explorer, a lockstep machine) run once per ``Run`` and are
   memoised in it; the obligations read what they need from the one report.
4. A discharge function imports its checker lazily (the checkers live in ``wormspace.refinement``, which
   shipped runtime code never imports; the ``prove`` verb is the one place allowed to).
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

LAYERS = ("acceptor", "wor", "wos", "wormspace", "apps")

CHECKED = "checked"
COUNTEREXAMPLE = "counterexample"
NOT_CONFIRMED = "not confirmed"
UNKNOWN = "unknown"
RESULTS = (CHECKED, COUNTEREXAMPLE, NOT_CONFIRMED, UNKNOWN)


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One step of a counterexample as a message-sequence chart: a message ``src -> dst`` (``dst`` set) or a
    local step of ``src`` (``dst`` None); ``label`` says what happened, ``state`` what held after it."""

    src: str
    dst: str | None
    label: str
    state: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """What discharging one obligation found."""

    result: str
    bounds: str  # the bounds actually met: "265,921 states, depth 37", "1,500 examples of <= 40 steps"
    detail: str = ""  # the violation, or why the result is not confirmed / unknown
    trace: tuple[TraceStep, ...] = ()

    def __post_init__(self) -> None:
        if self.result not in RESULTS:
            raise ValueError(f"result must be one of {RESULTS}, got {self.result!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Bounds:
    """The declared bounds of an obligation's check in the quick run and in the full run."""

    quick: str
    full: str

    def of(self, quick: bool) -> str:
        return self.quick if quick else self.full


Discharge = Callable[["Run"], Evidence]


@dataclass(frozen=True, slots=True, kw_only=True)
class Obligation:
    """One named guarantee of one layer, and the check that discharges it."""

    name: str
    layer: str
    statement: str
    method: str
    bounds: Bounds
    discharge: Discharge = field(compare=False, repr=False)
    covers: tuple[str, ...] = ()  # spec primitives judged, e.g. "WosSpec.alloc"
    relies_on: tuple[str, ...] = ()  # "layer.name" of obligations below this one
    pair: str | None = None  # the refinement module of the pair it is checked by, e.g. "acceptor_to_wor"

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise ValueError(f"layer must be one of {LAYERS}, got {self.layer!r}")

    @property
    def key(self) -> str:
        return f"{self.layer}.{self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """An obligation with the evidence of one run and the seconds it took."""

    obligation: Obligation
    evidence: Evidence
    seconds: float

    @property
    def result(self) -> str:
        return self.evidence.result

    def to_json(self) -> dict[str, Any]:
        """The DESIGN §4 object of one obligation."""
        return {
            "layer": self.obligation.layer,
            "name": self.obligation.name,
            "method": self.obligation.method,
            "bounds": self.evidence.bounds,
            "result": self.evidence.result,
            "seconds": round(self.seconds, 2),
        }


# ---- the registry ---------------------------------------------------------------------------------------

REGISTRY: dict[str, Obligation] = {}
LAYER_MODULES = {layer: f"wormspace.proofs.{layer}" for layer in LAYERS}


def register(*obligations: Obligation) -> None:
    """Add obligations to the registry (each layer module calls this when imported)."""
    for ob in obligations:
        if ob.key in REGISTRY and REGISTRY[ob.key] is not ob:
            raise ValueError(f"obligation {ob.key} registered twice")
        REGISTRY[ob.key] = ob


def load() -> None:
    """Import every layer module, so that each registers its obligations."""
    import importlib

    for module in LAYER_MODULES.values():
        importlib.import_module(module)


def obligations(layer: str | None = None) -> list[Obligation]:
    """The registered obligations, bottom layer first, in registration order within a layer."""
    load()
    order = {name: i for i, name in enumerate(LAYERS)}
    chosen = [ob for ob in REGISTRY.values() if layer is None or ob.layer == layer]
    return sorted(chosen, key=lambda ob: order[ob.layer])


# ---- one run --------------------------------------------------------------------------------------------

# The command that runs CrossHair (``[python, -m, crosshair]`` when None). A planted-bug launcher replaces it
# so that the mutant is planted in CrossHair's process too; nothing in the package sets it.
crosshair_launcher: list[str] | None = None


@dataclass(slots=True)
class Run:
    """The context of one ``prove`` run: quick or full bounds, and the memo of shared check reports."""

    quick: bool = True
    memo: dict[str, Any] = field(default_factory=dict)
    note: Callable[[str], None] = field(default=lambda text: None)  # progress: what is being checked now

    def shared(self, key: str, compute: Callable[[], Any]) -> Any:
        """The report of a check shared by several obligations, computed once per run."""
        if key not in self.memo:
            self.note(key)
            self.memo[key] = compute()
        return self.memo[key]


def discharge(ob: Obligation, run: Run) -> Outcome:
    """Run one obligation's check. A checker that cannot be imported gives ``unknown`` with the reason; an
    error inside a check is reported as ``unknown`` too (never as checked)."""
    t0 = time.perf_counter()
    try:
        evidence = ob.discharge(run)
    except ModuleNotFoundError as e:
        evidence = Evidence(result=UNKNOWN, bounds="not run", detail=f"cannot import {e.name}: {e}")
    except Exception as e:
        evidence = Evidence(result=UNKNOWN, bounds="not run", detail=f"the check failed to run: {e!r}")
    return Outcome(obligation=ob, evidence=evidence, seconds=time.perf_counter() - t0)


# ---- helpers for the layer modules ----------------------------------------------------------------------


def worst(*results: str) -> str:
    """Combine results of several checks: any counterexample wins, then unknown, then not confirmed."""
    for r in (COUNTEREXAMPLE, UNKNOWN, NOT_CONFIRMED):
        if r in results:
            return r
    return CHECKED


def combine(*parts: Evidence) -> Evidence:
    """One evidence from the evidences of several checks of one obligation."""
    result = worst(*(p.result for p in parts))
    bad = [p for p in parts if p.result != CHECKED]
    trace = next((p.trace for p in bad if p.trace), ())
    return Evidence(
        result=result,
        bounds="; ".join(p.bounds for p in parts),
        detail="\n".join(dict.fromkeys(p.detail for p in bad if p.detail)),  # each distinct detail once
        trace=trace,
    )


@contextlib.contextmanager
def quiet() -> Iterator[io.StringIO]:
    """Capture what a checker prints (Hypothesis prints its falsifying example), so that ``--json`` output
    stays JSON; the captured text becomes part of the counterexample."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield buf


def count(n: int) -> str:
    return f"{n:,}"


__all__ = [
    "CHECKED",
    "COUNTEREXAMPLE",
    "LAYERS",
    "NOT_CONFIRMED",
    "REGISTRY",
    "RESULTS",
    "UNKNOWN",
    "Bounds",
    "Evidence",
    "Obligation",
    "Outcome",
    "Run",
    "TraceStep",
    "combine",
    "discharge",
    "load",
    "obligations",
    "register",
]
