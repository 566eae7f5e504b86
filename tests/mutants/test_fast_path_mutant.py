"""Mutant of the acceptor's fast path: the differential test (``tests/layers/test_fast_path.py``) must catch
a fast path that diverges from the core.

The planted bug (``forgetful_fast_path``, switched on by the fixture): ``fast_handle`` that does not see the
fence floor (Rule 6) -- it promises and votes below it, and reports ``ZERO_BALLOT`` as the floor. The
differential property, run on the mutant, must fail; on the shipped fast path it passes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.layers.test_fast_path import requests, run_both, starts
from wormspace.layers import acceptor
from wormspace.layers.acceptor import FLOOR_KEY, MemoryStorage, Storage, StoreView
from wormspace.layers.effects import Persist, RegKey
from wormspace.layers.messages import RegState, Reply, Request


class _WithoutFloor:
    def __init__(self, view: StoreView) -> None:
        self.view = view

    def get(self, segment: int, index: int) -> RegState | None:
        return None if (segment, index) == FLOOR_KEY else self.view.get(segment, index)

    def items(self) -> Iterator[tuple[RegKey, RegState]]:
        return ((k, r) for k, r in cast(Storage, self.view).items() if k != FLOOR_KEY)


@pytest.fixture
def forgetful_fast_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real = acceptor.fast_handle

    def forgetful(view: StoreView, msg: Request) -> tuple[Persist | None, Reply]:
        return real(_WithoutFloor(view), msg)

    monkeypatch.setattr(acceptor, "fast_handle", forgetful)
    yield


@given(starts, st.lists(requests, max_size=20))
@settings(max_examples=400, database=None, report_multiple_bugs=False)
def _differential(start: dict[RegKey, RegState], reqs: list[Request]) -> None:
    run_both(start, reqs, MemoryStorage(start))


def test_the_differential_test_catches_a_fast_path_that_forgets_the_floor(forgetful_fast_path: None) -> None:
    with pytest.raises(AssertionError, match=r"fast path|stores differ"):
        _differential()


def test_the_differential_test_passes_on_the_shipped_fast_path() -> None:
    _differential()
