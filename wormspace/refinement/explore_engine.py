"""The machinery shared by the explicit-state explorers of every layer.

Two configurations families run on it: the WOR layer's (``explore``: one register, clients scripted with
capture / write / read, the replacement procedure's steps) and the WOS layer's (``wor_to_wos``: one segment
of a few WORs, clients scripted with ``SegmentLogic`` operations). Both search breadth-first over the pure
cores (``acceptor`` handlers, the WOR ``op_*`` functions), so both need the same pieces, kept here once:

* ``View`` -- a ``StoreView`` over one acceptor's register dict (an immutable sorted tuple in the states);
* ``bare`` / ``handle`` -- the cores without their icontract wrappers (the explorers check what those
  contracts check themselves, on every state, at a fraction of the cost), looked up at call or explorer
  creation time so a monkeypatched core is the one explored;
* ``chosen_by_register`` -- the abstraction function's input: per register, the values voted by a quorum
  at one ballot (``wor.chosen_values`` per register);
* ``certain_failure_violation`` -- the obligation "a reported certain failure implies its value is never
  chosen", in the form both explorers check on every reachable state;
* the verdict names, and the named configurations of every layer (``CONFIGS``, ``quick_configs``,
  ``full_configs``), so that ``race_config`` of one layer is never mistaken for another's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

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
    "View",
    "bare",
    "certain_failure_violation",
    "chosen_by_register",
    "config",
    "handle",
    "names",
    "run",
]
