"""The client's unrecorded write (``SpaceLogic._write_unrecorded``, taken when no history is kept) against the
recorded one that every simulated check runs: a differential test (Hypothesis).

The same sequence of captures, writes and reads runs on two simulated clusters with one seed, one recording
its history and one not; every call must end the same way (its value, or its error's type and message).
tests/mutants/test_unrecorded_write_mutant.py plants an unrecorded write that drops the per-offset failure
and shows this test catches it.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from wormspace.cluster import Cluster
from wormspace.errors import OperationFailed, UsageError

WOS = 4
Step = tuple[str, int, int]  # (operation, offset, value or capture slot)

steps = st.lists(
    st.tuples(st.sampled_from(["capture", "write", "stale", "read"]), st.integers(0, WOS - 1), st.integers(0, 2)),
    min_size=1, max_size=14,
)


def run_steps(plan: list[Step], *, record: bool, seed: int) -> list[Any]:
    """Each step's result: ``("ok", value)`` or ``(error type, message)``."""
    cluster = Cluster.simulated(acceptors=3, seed=seed, wos_size=WOS, record=record)
    ws = cluster.client()
    seg = ws.alloc(b"diff")
    caps: dict[int, Any] = {}  # offset -> the last capture of it
    out: list[Any] = []
    for op, offset, arg in plan:
        address = ws.address(seg, offset)
        try:
            if op == "capture":
                caps[offset] = ws.capture(address)
                out.append(("ok", None))
            elif op == "write":
                cap = caps.get(offset)
                if cap is None:
                    cap = caps[offset] = ws.capture(address)
                ws.write(address, b"v%d" % arg, cap)
                out.append(("ok", None))
            elif op == "stale":  # a write through a capture a later capture of the same offset preempted
                old = ws.capture(address)
                caps[offset] = ws.capture(address)
                ws.write(address, b"v%d" % arg, old)
                out.append(("ok", None))
            else:
                out.append(("ok", ws.read(address)))
        except (OperationFailed, UsageError) as e:
            out.append((type(e).__name__, str(e)))
    return out


@settings(max_examples=40, deadline=None)
@given(steps, st.integers(0, 3))
def test_unrecorded_writes_end_as_recorded_ones(plan: list[Step], seed: int) -> None:
    assert run_steps(plan, record=False, seed=seed) == run_steps(plan, record=True, seed=seed)


def test_the_plan_that_meets_an_earlier_value_ends_alike() -> None:
    """A pinned plan through the outcomes the unrecorded path hands back: ok, AlreadyWritten (a later capture
    adopts the first value; a second value through it fails) and CaptureStale (a preempted capture)."""
    plan: list[Step] = [("write", 0, 1), ("capture", 0, 0), ("write", 0, 2), ("read", 0, 0), ("stale", 1, 0),
                        ("write", 1, 1), ("read", 1, 0)]
    recorded = run_steps(plan, record=True, seed=1)
    assert run_steps(plan, record=False, seed=1) == recorded
    assert {r[0] for r in recorded} == {"ok", "AlreadyWritten", "CaptureStale"}
