"""Mutant of the client's unrecorded write: the differential test (``tests/layers/test_unrecorded_write.py``)
must catch an unrecorded write that diverges from the recorded one.

The planted bug (``unrecorded_write_drops_failure``, switched on by the fixture): ``_write_unrecorded`` that
ignores the segment layer's per-offset failure, so a write that met another value or a preempted capture
reports success -- only when no history is kept, where no simulated check looks.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.layers.test_unrecorded_write import Step, run_steps
from wormspace.layers.wormspace import OpGen, SpaceLogic
from wormspace.layers.wos import CaptureId


def _write_dropping_failure(
    self: SpaceLogic, segment: int, offset: int, data: bytes, cap: CaptureId, checked: tuple[tuple[int, bytes], ...]
) -> OpGen[None]:
    yield from self.seg.write(segment, {offset: data}, cap, checked=checked)


@pytest.fixture
def unrecorded_write_drops_failure(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(SpaceLogic, "_write_unrecorded", _write_dropping_failure)
    yield


def test_the_differential_test_catches_an_unrecorded_write_that_drops_its_failure(
    unrecorded_write_drops_failure: None,
) -> None:
    plan: list[Step] = [("write", 0, 1), ("capture", 0, 0), ("write", 0, 2), ("stale", 1, 0)]
    assert run_steps(plan, record=False, seed=1) != run_steps(plan, record=True, seed=1)
