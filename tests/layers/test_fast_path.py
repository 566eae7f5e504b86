"""Differential test of the acceptor's fast path: ``fast_handle`` against the checked core ``handle_request``.

From one random starting state (registers, trimmed segments, a fence floor), the same random request
sequence (Prepare, Accept, Read, Fence over two segments, data and TRIM registers, ballots around the
stored ones) runs through both; after every request the changes (``Persist``) and the replies must be equal
and so must the stores. The fast path is looked up on the module at call time, so a planted divergence
(``tests/mutants/test_fast_path_mutant.py``) reaches this check. A server's ``AcceptorNode.answer`` (the reply
alone, no effect objects) gives the reply and the store ``AcceptorNode.handle`` gives, on both paths.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from wormspace.layers import acceptor
from wormspace.layers.acceptor import (
    FLOOR_KEY,
    AcceptorNode,
    MemoryStorage,
    SqliteStorage,
    Storage,
    handle_request,
)
from wormspace.layers.effects import Persist, RegKey, Send
from wormspace.layers.messages import (
    META,
    TRIM,
    Accept,
    Ballot,
    Fence,
    Prepare,
    Read,
    RegState,
    Request,
)

ballots = st.builds(Ballot, st.integers(1, 4), st.integers(0, 2))
index = st.sampled_from([TRIM, META, 0, 1])
segment = st.integers(0, 1)
indices = st.lists(index, min_size=1, max_size=3, unique=True).map(tuple)
values = st.lists(
    st.tuples(index, st.sampled_from([b"a", b"b", b""])), min_size=1, max_size=3, unique_by=lambda p: p[0]
).map(tuple)
requests = st.one_of(
    st.builds(Prepare, req=st.integers(0, 3), segment=segment, indices=indices, ballot=ballots),
    st.builds(Accept, req=st.integers(0, 3), segment=segment, ballot=ballots, values=values),
    st.builds(Read, req=st.integers(0, 3), segment=segment, indices=indices),
    st.builds(Fence, req=st.integers(0, 3), segment=st.just(0), ballot=ballots),
)


@st.composite
def reg_states(draw: st.DrawFn) -> RegState:
    promised = draw(ballots)
    if draw(st.booleans()):
        return RegState(promised=promised)
    accepted = draw(ballots.filter(lambda b: b <= promised))
    return RegState(promised=promised, accepted=accepted, value=draw(st.sampled_from([b"a", b"b", b""])))


starts = st.dictionaries(st.tuples(segment, index), reg_states(), max_size=6).flatmap(
    lambda regs: st.one_of(
        st.just(regs), ballots.map(lambda f: {**regs, FLOOR_KEY: RegState(promised=f)})
    )
)


def run_both(start: dict[RegKey, RegState], reqs: list[Request], fast_store: Storage) -> None:
    """Run ``reqs`` through the core on a ``MemoryStorage`` and the fast path on ``fast_store`` (holding
    ``start``); fail on the first difference."""
    core_store = MemoryStorage(start)
    for n, m in enumerate(reqs):
        expected = handle_request(core_store, m)
        got = acceptor.fast_handle(fast_store, m)
        assert got == expected, f"request {n} ({m}): fast path {got}, core {expected}"
        for store, (persist, _) in ((core_store, expected), (fast_store, got)):
            if persist is not None:
                store.apply(persist)
        assert dict(fast_store.items()) == dict(core_store.items()), f"stores differ after request {n} ({m})"


@given(starts, st.lists(requests, max_size=20))
@settings(max_examples=400)
def test_fast_path_equals_the_core(start: dict[RegKey, RegState], reqs: list[Request]) -> None:
    run_both(start, reqs, MemoryStorage(start))


@given(starts, st.lists(requests, max_size=12))
@settings(max_examples=40)
def test_fast_path_on_sqlite_equals_the_core(start: dict[RegKey, RegState], reqs: list[Request]) -> None:
    with tempfile.TemporaryDirectory() as d:
        store = SqliteStorage(Path(d) / "a.sqlite")
        try:
            store.apply(Persist(puts=tuple(sorted(start.items()))))
            run_both(start, reqs, store)
        finally:
            store.close()


@given(starts, st.lists(requests, max_size=20), st.booleans())
@settings(max_examples=150)
def test_answer_equals_handle(start: dict[RegKey, RegState], reqs: list[Request], fast: bool) -> None:
    by_handle = AcceptorNode(0, MemoryStorage(start), fast=fast)
    by_answer = AcceptorNode(0, MemoryStorage(start), fast=fast)
    for n, m in enumerate(reqs):
        (sent,) = [e.msg for e in by_handle.handle(1, m) if isinstance(e, Send)]
        assert by_answer.answer(1, m) == sent, f"request {n} ({m})"
        assert dict(by_answer.storage.items()) == dict(by_handle.storage.items()), f"stores differ after {n}"
