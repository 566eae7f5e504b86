"""The machinery shared by the explicit-state explorers of every layer.

Three configuration families run on it: the WOR layer's (``explore``: one register, clients scripted with
capture / write / read, the replacement procedure's steps), the WOS layer's (``wor_to_wos``: one segment
of a few WORs, clients scripted with ``SegmentLogic`` operations) and WormTX's (``wormspace_to_tx``: the
app's processes over registers answered by the WOS spec). The first two search over the pure cores
(``acceptor`` handlers, the WOR ``op_*`` functions), so they need the same pieces, kept here once:

* ``View`` -- a ``StoreView`` over one acceptor's register dict (an immutable sorted tuple in the states);
* ``bare`` / ``handle`` -- the cores without their icontract wrappers (the explorers check what those
  contracts check themselves, on every state, at a fraction of the cost), looked up at call or explorer
  creation time so a monkeypatched core is the one explored;
* ``chosen_by_register`` -- the abstraction function's input: per register, the values voted by a quorum
  at one ballot (``wor.chosen_values`` per register);
* ``certain_failure_violation`` -- the obligation "a reported certain failure implies its value is never
  chosen", in the form both explorers check on every reachable state;
* ``bfs`` -- the one breadth-first search every explorer runs (WOR, WOS, and WormTX's core in
  ``wormspace_to_tx``): a layer gives its initial state, successor function, state key (the state itself,
  or an exact canonical key under a symmetry), "always" checks and "sometimes" predicates; ``bfs`` returns
  the verdict, state count and depth, and ``replay`` rebuilds a shortest counterexample from the parent
  keys;
* the verdict names, and the named configurations of every layer (``CONFIGS``, looked up with ``config``,
  listed with ``names``, explored with ``run``), so that ``race_config`` of one layer is never mistaken for
  another's.
"""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from wormspace.layers import acceptor as acc
from wormspace.layers.effects import Persist, RegKey
from wormspace.layers.messages import Accept, Ballot, Message, Prepare, RegState, Reply

CHECKED = "checked (bounded)"
VIOLATION = "VIOLATION"
UNKNOWN = "UNKNOWN"
VACUOUS = "VACUOUS"

Regs = tuple[tuple[RegKey, RegState], ...]
RegisterVote = tuple[RegKey, int, Ballot, bytes]  # (register, acceptor, ballot, value)


class View:
    """A ``StoreView`` over one acceptor's register dict."""

    __slots__ = ("regs",)

    def __init__(self, regs: Regs) -> None:
        self.regs = dict(regs)

    def get(self, segment: int, index: int) -> RegState | None:
        return self.regs.get((segment, index))

    def items(self) -> Iterator[tuple[RegKey, RegState]]:
        return iter(sorted(self.regs.items()))


def bare(f: Callable[..., Any]) -> Callable[..., Any]:
    """A core function without its icontract wrapper."""
    return cast(Callable[..., Any], getattr(f, "__wrapped__", f))


def handle(view: View, msg: Message) -> tuple[Persist | None, Reply]:
    """``acceptor.handle_request`` for Prepare, Accept and Read, without contract wrappers; the handlers are
    looked up at each call, so a monkeypatched one is honoured."""
    if isinstance(msg, Prepare):
        return cast(tuple[Persist | None, Reply], bare(acc.on_prepare)(view, msg))
    if isinstance(msg, Accept):
        return cast(tuple[Persist | None, Reply], bare(acc.on_accept)(view, msg))
    return cast(tuple[Persist | None, Reply], bare(acc.on_read)(view, msg))


def chosen_by_register(votes: Iterable[RegisterVote], quorum: int) -> dict[RegKey, set[bytes]]:
    """Per register, every value ``quorum`` distinct acceptors voted for at one ballot."""
    tally: dict[tuple[RegKey, Ballot, bytes], set[int]] = {}
    for key, a, b, v in votes:
        tally.setdefault((key, b, v), set()).add(a)
    out: dict[RegKey, set[bytes]] = {}
    for (key, _, v), who in tally.items():
        if len(who) >= quorum:
            out.setdefault(key, set()).add(v)
    return out


CERTAIN_FAILURE = "always_certain_failure_never_chosen"


# ---- the one breadth-first search -----------------------------------------------------------------------

S = TypeVar("S")


class StepFailure(Exception):
    """Raised by a configuration's successor function when a transition itself breaks a property (a
    per-step rule such as ``step_ok``, or a process that fails): ``prop`` names the property."""

    def __init__(self, prop: str, why: str) -> None:
        super().__init__(why)
        self.prop = prop
        self.why = why


@dataclass(slots=True)
class Search(Generic[S]):
    """What ``bfs`` found. ``found`` is ``(property, why, key, at_step)`` for the first violation (``key``: the
    fingerprint of the violating state, or of the state whose step broke a per-step rule when ``at_step``);
    ``exhausted``: every reachable state was visited; ``budget_hit``: the state budget ran out first.
    ``parent`` maps each visited key to its parent's (the root to itself), for ``replay``."""

    root: Hashable
    parent: dict[Hashable, Hashable]
    depth: int
    seconds: float
    witnessed: dict[str, int]
    pending: list[str]
    found: tuple[str, str, Hashable, bool] | None = None
    budget_hit: bool = False
    exhausted: bool = False
    terminal: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def states(self) -> int:
        return len(self.parent)

    @property
    def verdict(self) -> str:
        if self.found is not None:
            return VIOLATION
        if not self.exhausted:
            return UNKNOWN
        return VACUOUS if self.pending else CHECKED


def bfs(
    init: S,
    successors: Callable[[S], Iterable[tuple[Any, S]]],
    *,
    key: Callable[[S], Hashable],
    check: Callable[[S], tuple[str, str] | None],
    sometimes: Iterable[tuple[str, Callable[[S], bool]]] = (),
    max_states: int,
    progress: Callable[[int, int], None] | None = None,
) -> Search[S]:
    """The breadth-first search every layer's explorer runs: from ``init`` over ``successors`` until every
    reachable state was visited, a property failed, or ``max_states`` distinct states were seen.

    ``key`` is a state's identity in the visited set: the state itself, or a compact fingerprint of it
    (taken up to a symmetry -- the configuration says which and why that is sound); successors whose key
    was seen are not expanded again. ``check`` returns ``(property, why)`` for a state that breaks an
    "always" property (checked on every state, once, when first seen), and ``successors`` may raise
    ``StepFailure`` for a transition that breaks one; ``sometimes`` are ``(name, predicate)`` pairs, each
    recorded at the depth it is first met. The first violation found is at the least depth (breadth
    first), so ``replay`` turns it into a shortest trace. The cyclic garbage collector is paused meanwhile:
    the search makes millions of small immutable tuples it would rescan in vain."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _bfs(init, successors, key, check, list(sometimes), max_states, progress)
    finally:
        if collecting:
            gc.enable()


def _bfs(
    init: S,
    successors: Callable[[S], Iterable[tuple[Any, S]]],
    key: Callable[[S], Hashable],
    check: Callable[[S], tuple[str, str] | None],
    pending: list[tuple[str, Callable[[S], bool]]],
    max_states: int,
    progress: Callable[[int, int], None] | None,
) -> Search[S]:
    t0 = time.perf_counter()
    root = key(init)
    parent: dict[Hashable, Hashable] = {root: root}
    witnessed: dict[str, int] = {}
    frontier: deque[tuple[S, Hashable, int]] = deque([(init, root, 0)])
    found: tuple[str, str, Hashable, bool] | None = None

    def visit(s: S, d: int) -> tuple[str, str] | None:
        nonlocal pending
        if pending:
            met = [item for item in pending if item[1](s)]
            if met:
                for name, _ in met:
                    witnessed[name] = d
                pending = [item for item in pending if item not in met]
        return check(s)

    bad = visit(init, 0)
    if bad is not None:
        found = (bad[0], bad[1], root, False)
    depth = 0
    budget_hit = False
    next_report = 10_000
    append, popleft = frontier.append, frontier.popleft
    while frontier and found is None and not budget_hit:
        s, fs, d = popleft()
        if d > depth:
            depth = d
        try:
            for _, nxt in successors(s):
                f = key(nxt)
                if f in parent:
                    continue
                parent[f] = fs
                bad = visit(nxt, d + 1)
                if bad is not None:
                    found = (bad[0], bad[1], f, False)
                    depth = max(depth, d + 1)
                    break
                if len(parent) >= max_states:
                    budget_hit = True
                    break
                append((nxt, f, d + 1))
        except StepFailure as e:
            found = (e.prop, e.why, fs, True)
        if progress is not None and len(parent) >= next_report:
            progress(len(parent), d)
            next_report += 10_000
    return Search(
        root=root, parent=parent, depth=depth, seconds=time.perf_counter() - t0, witnessed=witnessed,
        pending=[name for name, _ in pending], found=found, budget_hit=budget_hit,
        exhausted=found is None and not budget_hit and not frontier,
    )


def replay(
    init: S, successors: Callable[[S], Iterable[tuple[Any, S]]], key: Callable[[S], Hashable],
    parent: dict[Hashable, Hashable], target: Hashable,
) -> list[tuple[Any, S]]:
    """The path the search took from ``init`` to the state keyed ``target``: ``[(None, init), (action,
    state), ...]``, replayed along the parent keys (the steps themselves, never their symmetric images, so
    names stay put along the trace)."""
    chain = [target]
    while parent[chain[-1]] != chain[-1]:
        chain.append(parent[chain[-1]])
    chain.reverse()
    s = init
    path: list[tuple[Any, S]] = [(None, init)]
    for want in chain[1:]:
        for action, nxt in successors(s):
            if key(nxt) == want:
                path.append((action, nxt))
                s = nxt
                break
        else:  # pragma: no cover - a parent chain always replays
            raise RuntimeError("could not replay the counterexample trace")
    return path


def certain_failure_violation(who: str, what: str, value: bytes, chosen: bytes | None) -> str | None:
    """The obligation ``always_certain_failure_never_chosen`` for one failed write: ``what`` (CaptureStale,
    or a plain Trimmed) promises the write certainly did not and never will take effect, so its ``value``
    must not be the register's ``chosen`` value -- now or in any later state (both explorers check it on
    every reachable state, and a finished operation's result stays in the state). Sound only when no other
    write of the configuration proposes the same value: the callers check that."""
    if chosen is not None and chosen == value:
        return f"{who}'s write of {value!r} reported {what} (a certain failure), but {value!r} is chosen"
    return None


# ---- named configurations of every layer ----------------------------------------------------------------


def _wor(name: str) -> Callable[[], Any]:
    def make() -> Any:
        from wormspace.refinement import explore

        return getattr(explore, name)()

    make.__name__ = name
    return make


def _wos(name: str) -> Callable[[], Any]:
    def make() -> Any:
        from wormspace.refinement import wor_to_wos

        return getattr(wor_to_wos, name)()

    make.__name__ = name
    return make


# name -> (layer, factory, tier): "quick" fits in the test suite, "full" only in a full run. ``wor.race`` is
# the quick configuration that catches the two adoption bugs (ballot ties between proposers; the stale rule
# applied in retry rounds) every time (tests/mutants/test_explorer_mutants.py).
CONFIGS: dict[str, tuple[str, Callable[[], Any], str]] = {
    "wor.read": ("wor", _wor("read_config"), "quick"),
    "wor.race": ("wor", _wor("race_config"), "quick"),
    "wor.replace": ("wor", _wor("replace_config"), "full"),
    "wor.race_duplicating": ("wor", _wor("race_duplicating_config"), "full"),
    "wos.race": ("wos", _wos("segment_race_config"), "quick"),
    "wos.write_trim": ("wos", _wos("write_trim_config"), "quick"),
    "wos.alloc_race": ("wos", _wos("alloc_race_config"), "quick"),
    "wos.adopt": ("wos", _wos("adopt_config"), "quick"),
    "wos.capture_race": ("wos", _wos("capture_race_config"), "full"),
}


def config(name: str) -> Any:
    """The named configuration (``wor.*`` an ``ExploreConfig``, ``wos.*`` a ``SegmentExploreConfig``)."""
    try:
        return CONFIGS[name][1]()
    except KeyError:
        raise KeyError(f"no explorer configuration {name!r}; known: {', '.join(CONFIGS)}") from None


def names(layer: str | None = None, tier: str | None = None) -> list[str]:
    """The configuration names of ``layer`` (``wor``/``wos``) in ``tier`` (``quick``/``full``), in order."""
    return [n for n, (lay, _, t) in CONFIGS.items() if layer in (None, lay) and tier in (None, t)]


def run(name: str) -> Any:
    """Explore the named configuration with its layer's explorer; returns that explorer's report (both have
    ``verdict``, ``states``, ``depth``, ``seconds``, ``failed``, ``violation``, ``ok`` and ``render()``)."""
    layer = CONFIGS[name][0] if name in CONFIGS else ""
    cfg = config(name)
    if layer == "wor":
        from wormspace.refinement.explore import explore

        return explore(cfg)
    from wormspace.refinement.wor_to_wos import explore_segment

    return explore_segment(cfg)


__all__ = [
    "CERTAIN_FAILURE",
    "CHECKED",
    "CONFIGS",
    "UNKNOWN",
    "VACUOUS",
    "VIOLATION",
    "Search",
    "StepFailure",
    "View",
    "bare",
    "bfs",
    "certain_failure_violation",
    "chosen_by_register",
    "config",
    "handle",
    "names",
    "replay",
    "run",
]
