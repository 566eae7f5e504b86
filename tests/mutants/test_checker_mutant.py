"""The checker's own planted bug: reduction (c) applied to an overwritable register.

``old_reductions`` declares ``RegisterModel`` write-once, which lets the search take every step that leaves
the state unchanged first (as it did before the reduction was gated on ``write_once``). The differential
test against the unreduced search and brute force must catch it: on the overwrite history of the module
test and on random small histories.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import find, settings
from hypothesis.errors import NoSuchExample

from tests.refinement import oracle
from wormspace.history import Operation
from wormspace.refinement.linearizability import ILLEGAL, _search
from wormspace.refinement.models import RegisterModel


@pytest.fixture
def old_reductions(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(RegisterModel, "write_once", property(lambda self: True))
    yield


def test_old_reductions_judge_the_overwrite_history_illegal(old_reductions: None) -> None:
    ops = [
        oracle.operation(0, "write", 0, b"1", 0, 1),
        oracle.operation(1, "write", 0, b"2", 2, 10),
        oracle.operation(2, "write", 0, b"1", 3, 100),
        oracle.operation(3, "read", 0, None, 20, 30, output=b"1"),
    ]
    model = RegisterModel()
    assert _search(model, model.partition(ops)[0], 1000).verdict == ILLEGAL
    assert oracle.disagreement(model, ops) is not None


def test_differential_test_finds_the_old_reductions_on_random_histories(old_reductions: None) -> None:
    model = RegisterModel()

    def caught(ops: list[Operation]) -> bool:
        return oracle.disagreement(model, ops) is not None

    try:
        found = find(oracle.register_histories(), caught,
                     settings=settings(max_examples=2000, database=None, derandomize=True))
    except NoSuchExample:
        pytest.fail("the differential test did not catch reduction (c) on an overwritable register")
    assert caught(found)

