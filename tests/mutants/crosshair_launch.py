"""Test-only launcher: plant one mutant, then run CrossHair in this process.

``python tests/mutants/crosshair_launch.py MUTANT crosshair-args...``. Used by test_crosshair_mutants.py to
show that the CrossHair lemmas catch broken cores. Never imported by shipped code.
"""

from __future__ import annotations

import sys
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from typing import Any

from wormspace.errors import AlreadyWritten, CaptureStale, OperationFailed
from wormspace.layers import acceptor, wor, wos
from wormspace.layers.effects import Persist
from wormspace.layers.messages import ZERO_BALLOT, Accept, Accepted, Nack, Promise, RegState, Vote

ROOT = Path(__file__).resolve().parents[2]


def _accept_lower_ballot(view: acceptor.StoreView, msg: Accept) -> tuple[Persist | None, Any]:
    """Rule 2 without the ballot comparison: accepts below the promise."""
    puts = tuple(
        ((msg.segment, i), RegState(promised=max(msg.ballot, acceptor._get(view, msg.segment, i).promised),
                                    accepted=msg.ballot, value=v))
        for i, v in msg.values
    )
    return Persist(puts=puts), Accepted(req=msg.req, segment=msg.segment, ballot=msg.ballot)


def _highest_by_number(promises: Sequence[Promise]) -> dict[int, Vote]:
    """The adoption rule comparing ballot numbers only: votes of two proposers at one number tie, and the
    first one heard wins."""
    best: dict[int, Vote] = {}
    for p in promises:
        for v in p.votes:
            if v.index not in best or v.ballot.number > best[v.index].ballot.number:
                best[v.index] = v
    return best


def _stale_in_retry(op: wor.Op, ctx: wor.Ctx) -> wor.Step:
    """``wor._accept_progress`` with Rule 2's certain failure applied in every round, not only the first: a
    retry round's accept refused cleanly by every acceptor reports the register stale, though the write's
    value may already be voted at the capture's ballot."""
    n = len(ctx.acceptors)
    if wor._count(op, Accepted) >= ctx.quorum:
        return wor._done_after_accept(op, op.proposal)
    if wor._refusals(op) <= n - ctx.quorum:
        return op, []
    if op.request.kind is wor.Kind.WRITE:  # the bug: "and op.rounds == 0" left out
        clean = all(isinstance(r, Nack) and r.accepted < op.ballot for _, r in op.replies)
        if clean and len(op.replies) == n:
            return wor._finish(op, wor.Outcome(stale=op.ask))
        if clean:
            return op, []
        return wor._start_round(op, ctx, op.ask)
    return wor._start_round(op, ctx, op.ask)


def _write_stale_once_and_for_all(
    self: wos.SegmentLogic, segment: int, values: Mapping[int, bytes], cap: wos.CaptureId
) -> Generator[wor.OpRequest, wor.Outcome, dict[int, OperationFailed | None]]:
    """``SegmentLogic.write`` with the per-offset stale test widened: one stale offset makes every offset
    not chosen a ``CaptureStale`` (the batch no longer answers as the single writes would)."""
    results = yield from _segment_write(self, segment, values, cap)
    if any(isinstance(r, CaptureStale) for r in results.values()):
        keep = (type(None), AlreadyWritten)
        return {o: r if isinstance(r, keep) else CaptureStale("stale") for o, r in results.items()}
    return results


_segment_write = wos.SegmentLogic.write


def _trim_forgets_metadata(self: wos.WosSpec) -> tuple[wos.WosSpec, None]:
    """The spec's trim dropping the metadata: an allocated segment reads as never allocated."""
    return wos.WosSpec(None, True, ()), None


#: the names ``plant`` knows (``tests/mutants/catalog.py`` catalogues each)
NAMES = ("quorum_of_one", "accept_lower_ballot", "no_adopt", "ballot_tie", "stale_in_retry", "batch_stale_widened",
         "trim_forgets_metadata", "ignore_floor", "none")


def plant(name: str, mp: Any = None) -> None:
    """Plant mutant ``name`` with ``mp`` (a ``pytest.MonkeyPatch``; a new one, never undone, when None: the
    launcher's process exists to run it). The core mutants are planted by ``conftest.plant_core``."""
    sys.path.insert(0, str(ROOT))
    import pytest

    from tests.mutants.conftest import plant_core

    mp = mp if mp is not None else pytest.MonkeyPatch()
    if name in ("quorum_of_one", "no_adopt"):
        plant_core(mp, "capture_without_adoption" if name == "no_adopt" else name)
    elif name == "accept_lower_ballot":
        mp.setattr(acceptor, "on_accept", _accept_lower_ballot)
    elif name == "ballot_tie":
        mp.setattr(wor, "_highest_votes", _highest_by_number)
    elif name == "stale_in_retry":
        mp.setattr(wor, "_accept_progress", _stale_in_retry)
    elif name == "batch_stale_widened":
        mp.setattr(wos.SegmentLogic, "write", _write_stale_once_and_for_all)
    elif name == "trim_forgets_metadata":
        mp.setattr(wos.WosSpec, "trim", _trim_forgets_metadata)
    elif name == "ignore_floor":
        mp.setattr(acceptor, "fence_floor", lambda view: ZERO_BALLOT)
    elif name != "none":
        raise SystemExit(f"unknown mutant {name!r}; known: {', '.join(NAMES)}")


if __name__ == "__main__":
    plant(sys.argv[1])
    from crosshair.main import main

    sys.argv = ["crosshair", *sys.argv[2:]]
    main()  # exits with CrossHair's code
