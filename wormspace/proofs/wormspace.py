"""Obligations of the WormSpace layer (``wormspace/layers/wormspace.py``) against ``WormSpaceSpec``.

Checked by the pair module ``wormspace/refinement/wos_to_wormspace.py``:

* ``segments_independent`` -- the address space is the product of its segments: the lockstep machine
  (``SpaceLockstep``, two acceptor groups, per-segment possibilities, acceptors holding only their group's
  segments) and concurrent histories over several segments judged linearizable per segment.
"""

from __future__ import annotations

from wormspace.proofs import checks
from wormspace.proofs.obligations import Bounds, Obligation, register

register(
    Obligation(
        name="segments_independent",
        layer="wormspace",
        statement="Segments never affect each other: the space behaves as one WosSpec per segment, addressed "
        "by segment * wos_size + offset.",
        method="Hypothesis lockstep (SpaceLockstep) + linearizability of simulated histories",
        bounds=Bounds(quick="SpaceLockstep 500 examples of <= 50 steps; 20 seeded histories",
                      full="SpaceLockstep 1,500 examples of <= 50 steps; 150 seeded histories"),
        discharge=checks.all_of(lambda r: checks.lockstep(r, "wormspace"), checks.space_concurrent),
        covers=("WormSpaceSpec.alloc", "WormSpaceSpec.trim", "WormSpaceSpec.check", "WormSpaceSpec.capture",
                "WormSpaceSpec.write", "WormSpaceSpec.read"),
        relies_on=("wos.alloc_unique", "wos.trim_permanent", "wos.batch_equals_sequence"),
        pair="wos_to_wormspace",
    ),
)
