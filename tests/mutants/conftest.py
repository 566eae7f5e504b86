"""Planted bugs in the acceptor and WOR cores, for ``test_core_mutants.py`` (never in shipped code).

The ``mutant`` fixture is parametrised over ``CORE_MUTANTS``: each parameter monkeypatches one broken
function into ``wormspace.layers.acceptor`` or ``wormspace.layers.wor`` for the duration of one test and
yields its name. The cores look these functions up as module globals at call time (``handle_request``
calls ``on_accept``; ``op_on_reply`` calls ``_read_progress`` and ``_prepare_progress``, which calls
``_highest_votes``), and the explorer, the lockstep machine and the simulated cluster all reach them
through the modules, so one patch reaches every check.

* ``quorum_of_one`` -- ``Ctx.quorum`` is 1: an operation settles on a single acceptor's answer.
* ``accept_below_promise`` -- the acceptor's Rule 2 without the promise comparison: it votes at any ballot
  not below its last vote (so ``step_ok`` still holds) even when it promised a higher one.
* ``capture_without_adoption`` -- ``_highest_votes`` returns nothing: phase 1 never adopts a value it finds.
* ``read_half_as_empty`` -- a read that meets a half-written quorum reports the register EMPTY instead of
  completing the write.
* ``read_half_as_seen`` -- a read that meets a half-written quorum reports the highest-ballot value it saw
  as written, without completing the write.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from wormspace.layers import acceptor, wor
from wormspace.layers.effects import Persist
from wormspace.layers.messages import Accept, Accepted, ErrorReply, Nack, ReadReply, RegState, Reply
from wormspace.layers.wor import Ctx, Op, Outcome, Step

CORE_MUTANTS = (
    "quorum_of_one",
    "accept_below_promise",
    "capture_without_adoption",
    "read_half_as_empty",
    "read_half_as_seen",
)


def _accept_below_promise(view: acceptor.StoreView, msg: Accept) -> tuple[Persist | None, Reply]:
    """``acceptor.on_accept`` with the comparison against the promise left out."""
    regs = [(i, v, view.get(msg.segment, i) or RegState()) for i, v in msg.values]
    if any(msg.ballot < r.accepted for _, _, r in regs):  # the mutant still never lowers a vote
        return None, Nack(
            req=msg.req, segment=msg.segment, ballot=msg.ballot,
            promised=max(r.promised for _, _, r in regs), accepted=max(r.accepted for _, _, r in regs),
        )
    for i, v, r in regs:
        if r.accepted == msg.ballot and r.value != v:
            return None, ErrorReply(req=msg.req, segment=msg.segment, reason=f"index {i}: two values at one ballot")
    puts = tuple(
        ((msg.segment, i), RegState(promised=max(r.promised, msg.ballot), accepted=msg.ballot, value=v))
        for i, v, r in regs
    )
    return Persist(puts=puts), Accepted(req=msg.req, segment=msg.segment, ballot=msg.ballot)


def _read_without_completion(as_seen: bool) -> object:
    original = wor._read_progress

    def read_progress(op: Op, ctx: Ctx) -> Step:
        replies = [r for _, r in op.replies if isinstance(r, ReadReply)]
        if len(replies) < ctx.quorum:
            return original(op, ctx)
        chosen: dict[int, bytes] = {}
        for i in op.ask:
            votes = [v for r in replies for v in r.votes if v.index == i]
            tally: dict[tuple[object, bytes], int] = {}
            for v in votes:
                tally[(v.ballot, v.value)] = tally.get((v.ballot, v.value), 0) + 1
            full = [value for (_, value), n in tally.items() if n >= ctx.quorum]
            if full:
                chosen[i] = full[0]
            elif votes and as_seen:
                chosen[i] = max(votes, key=lambda v: v.ballot).value  # the bug: half-written as written
        empty = tuple(sorted(i for i in op.ask if i not in chosen))  # the bug (as_seen=False): as EMPTY
        done = replace(op, chosen=wor._merge(op.chosen, chosen.items()), empty=empty)
        return wor._finish(done, Outcome(chosen=done.chosen, empty=done.empty))

    return read_progress


def plant_core(mp: pytest.MonkeyPatch, name: str) -> None:
    """Plant the core mutant ``name`` with ``mp`` (the one planting of these mutants: the fixture below, the
    catalog of ``prove --mutants``, the CrossHair launcher and the explorer tests all call it)."""
    if name == "quorum_of_one":
        mp.setattr(wor.Ctx, "quorum", property(lambda self: 1))
    elif name == "accept_below_promise":
        mp.setattr(acceptor, "on_accept", _accept_below_promise)
    elif name == "capture_without_adoption":
        mp.setattr(wor, "_highest_votes", lambda promises: {})
    elif name == "read_half_as_empty":
        mp.setattr(wor, "_read_progress", _read_without_completion(as_seen=False))
    elif name == "read_half_as_seen":
        mp.setattr(wor, "_read_progress", _read_without_completion(as_seen=True))
    else:
        raise ValueError(f"unknown core mutant {name!r}; known: {', '.join(CORE_MUTANTS)}")


@pytest.fixture(params=CORE_MUTANTS)
def mutant(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Plant one mutant of the acceptor/WOR cores; yields its name."""
    name: str = request.param
    plant_core(monkeypatch, name)
    yield name
