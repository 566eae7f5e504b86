"""Lemmas of the WOS layer (``wormspace.layers.wos``), for CrossHair.

* ``batch_write_per_offset`` -- a batch write through one capture answers, per offset, exactly what a
  single-offset write would answer given that offset's part of the WOR outcome (``batch_equals_sequence``
  at the level of one operation): the real ``SegmentLogic.write`` generator is driven twice, once for the
  batch of offsets 0 and 1 and once per offset, with every combination of per-offset WOR outcomes (chosen
  with the write's value, chosen with another, stale, unknown) and of trim outcomes (none; the segment met
  a trim that the client then settles; a trim it cannot settle).
* ``spec_flags_monotone`` -- in the trusted ``WosSpec``, every operation keeps the allocation and trim
  flags monotone: a segment once allocated keeps its metadata, once trimmed stays trimmed, and a written
  offset keeps its value until the segment is trimmed.

Inputs are a few small ints. These are bounded searches: "no counterexample found within the time limit",
not proofs. Run CrossHair with ``WORMSPACE_CONTRACTS=0`` (``crosshair_runner`` does).
"""

from __future__ import annotations

import random
from collections.abc import Generator

import icontract

from wormspace.errors import AlreadyWritten, OperationFailed
from wormspace.layers.messages import TRIM, Ballot
from wormspace.layers.wor import Kind, OpRequest, Outcome
from wormspace.layers.wos import TRIM_VALUE, CaptureId, SegmentLogic, WosSpec

SEG = 0
OWN = b"a"
OTHER = b"z"

# per offset: 0 chosen with the write's value, 1 chosen with another value, 2 stale, 3 unknown
# trim: 0 no trim met, 1 a trim met and settled by the client, 2 a trim met the client cannot settle


def _outcome(codes: dict[int, int], trim: int) -> Outcome:
    return Outcome(
        error="Trimmed" if trim else None,
        chosen=tuple(sorted((o, OWN if c == 0 else OTHER) for o, c in codes.items() if c in (0, 1))),
        stale=tuple(sorted(o for o, c in codes.items() if c == 2)),
        unknown=tuple(sorted(o for o, c in codes.items() if c == 3)),
    )


def _drive(offsets: tuple[int, ...], codes: dict[int, int], trim: int) -> dict[int, OperationFailed | None]:
    logic = SegmentLogic(wos_size=2, rng=random.Random(0))
    cap = CaptureId(segment=SEG, start=0, end=2, ballot=Ballot(1, 100))
    gen: Generator[OpRequest, Outcome, dict[int, OperationFailed | None]] = logic.write(
        SEG, dict.fromkeys(offsets, OWN), cap
    )
    request = next(gen)
    assert request.kind is Kind.WRITE
    try:
        request = gen.send(_outcome({o: codes[o] for o in offsets}, trim))
        assert request.kind is Kind.PROPOSE and request.values == ((TRIM, TRIM_VALUE),)
        gen.send(Outcome(chosen=((TRIM, TRIM_VALUE),)) if trim == 1 else Outcome(error="Indeterminate"))
    except StopIteration as stop:
        return dict(stop.value)
    raise AssertionError("the write asked for more than a trim settlement")


def _same(x: OperationFailed | None, y: OperationFailed | None) -> bool:
    if x is None or y is None:
        return x is y
    if isinstance(x, AlreadyWritten) and isinstance(y, AlreadyWritten):
        return x.data == y.data
    return type(x) is type(y)


@icontract.require(lambda c0, c1, trim: 0 <= c0 <= 3 and 0 <= c1 <= 3 and 0 <= trim <= 2)
@icontract.ensure(
    lambda c0, c1, trim, result: all(
        _same(result[o], _drive((o,), {0: c0, 1: c1}, trim)[o]) for o in (0, 1)
    ),
    "a batch write answers per offset what a single write of that offset answers",
)
def batch_write_per_offset(c0: int, c1: int, trim: int) -> dict[int, OperationFailed | None]:
    """The real ``SegmentLogic.write`` of offsets 0 and 1 in one batch, fed the WOR outcome ``c0, c1`` (per
    offset) and ``trim``; returns its per-offset results."""
    return _drive((0, 1), {0: c0, 1: c1}, trim)


def _spec(meta: int, trimmed: int, data: int) -> WosSpec:
    return WosSpec(metadata=b"m" if meta else None, trimmed=bool(trimmed), data=((0, b"x"),) if data else ())


def _after(spec: WosSpec, op: int, value: int) -> WosSpec:
    v = bytes([value])
    if op == 0:
        return spec.alloc(v)[0]
    if op == 1:
        return spec.trim()[0]
    if op == 2:
        return spec.write(0, v)[0]
    spec.read(0)
    spec.capture(0)
    spec.check()
    return spec


@icontract.require(
    lambda meta, trimmed, data, op, value: meta in (0, 1) and trimmed in (0, 1) and data in (0, 1)
    and 0 <= op <= 3 and 0 <= value <= 1 and not (trimmed and data) and not (data and not meta)
)
@icontract.ensure(lambda meta, result: not meta or result.metadata == b"m", "an allocated segment keeps its metadata")
@icontract.ensure(lambda trimmed, result: not trimmed or result.trimmed, "a trimmed segment stays trimmed")
@icontract.ensure(
    lambda data, result: not data or result.trimmed or dict(result.data).get(0) == b"x",
    "a written offset keeps its value until the segment is trimmed",
)
def spec_flags_monotone(meta: int, trimmed: int, data: int, op: int, value: int) -> WosSpec:
    """``WosSpec`` in state (``meta``: allocated, ``trimmed``, ``data``: offset 0 written) after operation
    ``op`` (0 alloc, 1 trim, 2 write offset 0, 3 read/capture/check) with value ``value``."""
    return _after(_spec(meta, trimmed, data), op, value)


TARGETS = (
    "wormspace.proofs.wos_lemmas.batch_write_per_offset",
    "wormspace.proofs.wos_lemmas.spec_flags_monotone",
)
