"""Composition: is the chain of pairwise checks closed, from the acceptor up to the apps?

Each refinement check judges one layer against the spec of the layer above it, assuming the guarantees of
the layers below. The chain composes when, computed from the code and the registry (never asserted):

1. *Every refinement pair targets exactly the spec of the layer above*: the pair module (``LAYERS``) refers
   to that layer's trusted spec class and abstraction function, and to no other layer's; and every
   obligation checked by a pair belongs to the pair's upper layer.
2. *Every spec primitive has at least one obligation*: the public methods of each spec class (``WorSpec``,
   ``WosSpec``, ``WormSpaceSpec``, each app's spec), and the acceptor's request handlers (``on_*``), are each
   named in some obligation's ``covers`` (an entry naming a class covers all its methods); methods that are
   structure, not operations, are listed in ``HELPERS`` with the reason.
3. *The guarantees each layer relies on are discharged below*: every ``relies_on`` names a registered
   obligation of a lower layer; every layer above the acceptor relies on the layer directly below it; and
   in a run, a relied-on obligation that was run and is not ``checked`` leaves its dependants unsupported.

Anything that fails is a *gap*, reported by name; the chain is closed iff there is none.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from wormspace.proofs.obligations import CHECKED, LAYERS, Obligation, Outcome, obligations


@dataclass(frozen=True, slots=True, kw_only=True)
class Layer:
    name: str
    module: str
    spec: str | None  # the trusted spec class in ``module`` (None: the acceptor, whose primitives are handlers)
    abstraction: str | None  # the abstraction function in ``module`` onto ``spec``
    pair: str | None  # the refinement module that checks this layer against its spec
    below: str | None


CORE_LAYERS = (
    Layer(name="acceptor", module="wormspace.layers.acceptor", spec=None, abstraction=None, pair=None, below=None),
    Layer(name="wor", module="wormspace.layers.wor", spec="WorSpec", abstraction="abstract_votes",
          pair="wormspace.refinement.acceptor_to_wor", below="acceptor"),
    Layer(name="wos", module="wormspace.layers.wos", spec="WosSpec", abstraction="abstract_segment",
          pair="wormspace.refinement.wor_to_wos", below="wor"),
    Layer(name="wormspace", module="wormspace.layers.wormspace", spec="WormSpaceSpec", abstraction="abstract_space",
          pair="wormspace.refinement.wos_to_wormspace", below="wos"),
)

#: public methods of spec classes that are structure, not operations of the spec (with why)
HELPERS = {
    "WormSpaceSpec.segment": "the spec of one segment (the product structure itself)",
    "WormSpaceSpec.split": "address arithmetic, used by every operation",
    "WormSpaceSpec.with_segment": "builds a space from one segment's spec",
}

ACCEPTOR_PRIMITIVE_PREFIX = "on_"


@dataclass(slots=True)
class Composition:
    closed: bool
    gaps: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"closed": self.closed, "gaps": list(self.gaps)}


def _try_import(module: str) -> Any | None:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        return None


def primitives(cls: type) -> list[str]:
    """The public methods of a spec class, as ``Class.method``."""
    return [f"{cls.__name__}.{n}" for n, v in vars(cls).items() if not n.startswith("_") and inspect.isfunction(v)]


def _covered(name: str, covers: set[str]) -> bool:
    return name in covers or name.split(".", 1)[0] in covers


def _core_specs() -> dict[str, tuple[type, Any]]:
    """layer -> (spec class, abstraction function) of the core layers that have a spec."""
    out = {}
    for layer in CORE_LAYERS:
        if layer.spec is not None and layer.abstraction is not None:
            mod = importlib.import_module(layer.module)
            out[layer.name] = (getattr(mod, layer.spec), getattr(mod, layer.abstraction))
    return out


def _app_layers() -> list[tuple[str, str, str, str]]:
    """(obligation, app module, spec class, checker module) from the apps table."""
    from wormspace.proofs.apps import APP_CHECKS

    return [(name, row.app, row.spec, row.checker) for name, row in APP_CHECKS.items()]


def check_pairs(obs: Iterable[Obligation]) -> list[str]:
    gaps: list[str] = []
    specs = _core_specs()
    uppers: dict[str, str] = {}
    for layer in CORE_LAYERS:
        if layer.pair is None:
            continue
        uppers[layer.pair.rsplit(".", 1)[1]] = layer.name
        mod = _try_import(layer.pair)
        if mod is None:
            gaps.append(f"pair {layer.pair}: module missing")
            continue
        held = set(map(id, vars(mod).values()))
        spec, abstraction = specs[layer.name]
        for thing, label in ((spec, "spec"), (abstraction, "abstraction function")):
            if id(thing) not in held:
                gaps.append(f"pair {layer.pair}: does not use {layer.name}'s {label} {thing.__name__}")
        others = [f"{s.__name__}" for other, (s, _) in specs.items() if other != layer.name and id(s) in held]
        if others:
            gaps.append(f"pair {layer.pair}: also refers to the spec of another layer: {', '.join(others)}")
    for _name, _, _, checker in _app_layers():
        uppers.setdefault(checker.rsplit(".", 1)[1], "apps")
    for ob in obs:
        if ob.pair is not None and uppers.get(ob.pair) != ob.layer:
            gaps.append(f"{ob.key}: checked by pair {ob.pair}, whose upper layer is {uppers.get(ob.pair)}")
    return gaps


def check_primitives(obs: Iterable[Obligation]) -> list[str]:
    gaps: list[str] = []
    covers: dict[str, set[str]] = {}
    for ob in obs:
        covers.setdefault(ob.layer, set()).update(ob.covers)
    acc = importlib.import_module("wormspace.layers.acceptor")
    handlers = [n for n, v in vars(acc).items() if n.startswith(ACCEPTOR_PRIMITIVE_PREFIX) and inspect.isfunction(v)]
    for h in handlers:
        if h not in covers.get("acceptor", set()):
            gaps.append(f"acceptor: handler {h} has no obligation")
    for layer, (spec, _) in _core_specs().items():
        for p in primitives(spec):
            if p not in HELPERS and not _covered(p, covers.get(layer, set())):
                gaps.append(f"{layer}: spec primitive {p} has no obligation")
    for name, app, spec_name, checker in _app_layers():
        mod = _try_import(app)
        if mod is None:
            gaps.append(f"apps.{name}: {app} (spec {spec_name}) is not in this build")
            continue
        spec_cls = getattr(mod, spec_name, None)
        if spec_cls is None:
            gaps.append(f"apps.{name}: {app} has no spec class {spec_name}")
            continue
        for p in primitives(spec_cls):
            if not _covered(p, covers.get("apps", set())):
                gaps.append(f"apps: spec primitive {p} has no obligation")
        if _try_import(checker) is None:
            gaps.append(f"apps.{name}: checker {checker} is not in this build")
    return gaps


def check_reliance(obs: list[Obligation], outcomes: Iterable[Outcome] = ()) -> list[str]:
    gaps: list[str] = []
    by_key = {ob.key: ob for ob in obs}
    rank = {name: i for i, name in enumerate(LAYERS)}
    below = {layer.name: layer.below for layer in CORE_LAYERS} | {"apps": "wormspace"}
    for ob in obs:
        for dep in ob.relies_on:
            target = by_key.get(dep)
            if target is None:
                gaps.append(f"{ob.key}: relies on {dep}, which no layer discharges")
            elif rank[target.layer] >= rank[ob.layer]:
                gaps.append(f"{ob.key}: relies on {dep}, which is not below it")
    for layer, under in below.items():
        if under is None:
            continue
        mine = [ob for ob in obs if ob.layer == layer]
        leans = any(by_key.get(d) is not None and by_key[d].layer == under for ob in mine for d in ob.relies_on)
        if mine and not leans:
            gaps.append(f"{layer}: relies on nothing of the layer below ({under})")
    results = {o.obligation.key: o.result for o in outcomes}
    for ob in obs:
        for dep in ob.relies_on:
            if dep in results and results[dep] != CHECKED:
                gaps.append(f"{ob.key}: relies on {dep}, which is {results[dep]} in this run")
    return gaps


def compose(outcomes: Iterable[Outcome] = ()) -> Composition:
    """The composition check over every registered obligation (and the results of a run, if given)."""
    obs = obligations()
    gaps = check_pairs(obs) + check_primitives(obs) + check_reliance(obs, list(outcomes))
    return Composition(closed=not gaps, gaps=gaps)
