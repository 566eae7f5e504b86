"""Obligations of the WOS layer (``wormspace/layers/wos.py``) against its trusted spec ``WosSpec``.

Checked by the pair module ``wormspace/refinement/wor_to_wos.py``: its segment explorer (exhaustive, per
configuration, with state counts and depths) and its lockstep machine (``WosLockstep``, a set of possible
spec states beside a faulty simulated cluster).

* ``alloc_unique`` -- at most one alloc of a segment wins, and ``check`` reads the winner's metadata;
* ``trim_permanent`` -- once trimmed, every register of the segment answers ``Trimmed`` for ever and the
  acceptors hold nothing of it but the TRIM vote;
* ``batch_equals_sequence`` -- a batch capture/write/read has the effect of the per-offset operations in
  sequence (the spec applies a batch write offset by offset; a value a bare quorum chose is found by a
  batch capture).
"""

from __future__ import annotations

from wormspace.proofs import checks
from wormspace.proofs.obligations import Bounds, Obligation, register

RELIES = ("wor.immutability", "wor.agreement", "wor.linearizable")
LOCKSTEP = "WosLockstep 250 / 1,000 examples of <= 50 steps"

register(
    Obligation(
        name="alloc_unique",
        layer="wos",
        statement="At most one alloc of a segment wins (even with equal metadata); check reads its metadata.",
        method="segment explorer (alloc race) + Hypothesis lockstep (WosLockstep)",
        bounds=Bounds(quick=f"alloc race, exhaustive; {LOCKSTEP.replace(' / 1,000', '')}",
                      full=f"alloc race, exhaustive; {LOCKSTEP.replace('250 / ', '')}"),
        discharge=checks.all_of(lambda r: checks.segment_explorer(r, "alloc race"),
                                lambda r: checks.lockstep(r, "wos")),
        covers=("WosSpec.alloc", "WosSpec.check"),
        relies_on=RELIES,
        pair="wor_to_wos",
    ),
    Obligation(
        name="trim_permanent",
        layer="wos",
        statement="After a trim every register of the segment answers Trimmed for ever; no vote lands after it.",
        method="segment explorer (write/trim races) + Hypothesis lockstep (WosLockstep)",
        bounds=Bounds(quick="write/trim race, exhaustive; WosLockstep 250 examples",
                      full="write/trim race and capture/write/trim race, exhaustive; WosLockstep 1,000 examples"),
        discharge=checks.all_of(lambda r: checks.segment_explorer(r, "write/trim race", "race"),
                                lambda r: checks.lockstep(r, "wos")),
        covers=("WosSpec.trim", "WosSpec.capture", "WosSpec.read"),
        relies_on=RELIES,
        pair="wor_to_wos",
    ),
    Obligation(
        name="batch_equals_sequence",
        layer="wos",
        statement="A batch capture/write/read has the effect of its per-offset operations in sequence.",
        method="segment explorer (adopt; full: capture/write/trim race) + Hypothesis lockstep (WosLockstep)",
        bounds=Bounds(quick="adopt, exhaustive; WosLockstep 250 examples",
                      full="adopt and capture/write/trim race, exhaustive; WosLockstep 1,000 examples"),
        discharge=checks.all_of(lambda r: checks.segment_explorer(r, "adopt", "race"),
                                lambda r: checks.lockstep(r, "wos")),
        covers=("WosSpec.write", "WosSpec.read", "WosSpec.capture"),
        relies_on=RELIES,
        pair="wor_to_wos",
    ),
)
