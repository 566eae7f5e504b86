"""The client's phase messages built without per-field validation (``fast_phase_msg``, its hot path with
contracts off) equal the validated constructions (``checked_phase_msg``) over random operations (bounded
Hypothesis runs); a planted builder that puts the wrong ballot in an Accept is caught by the same comparison."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from wormspace._contracts import CONTRACTS
from wormspace.layers import wor
from wormspace.layers.messages import Accept, Ballot, Prepare, Read
from wormspace.layers.wor import Kind, Op, OpRequest, Phase, checked_phase_msg, fast_phase_msg

ballots = st.builds(Ballot, st.integers(1, 2**40), st.integers(0, 2**20))
indices = st.lists(st.integers(-2, 1023), min_size=1, max_size=12, unique=True).map(lambda v: tuple(sorted(v)))
values = st.lists(st.tuples(st.integers(-2, 1023), st.binary(max_size=16)), min_size=1, max_size=12,
                  unique_by=lambda p: p[0]).map(lambda v: tuple(sorted(v)))


@st.composite
def ops(draw: st.DrawFn) -> Op:
    phase = draw(st.sampled_from([Phase.READ, Phase.PREPARE, Phase.ACCEPT]))
    ask = draw(indices)
    request = OpRequest(kind=Kind.READ if phase is Phase.READ else Kind.CAPTURE, segment=draw(st.integers(0, 2**40)),
                        indices=ask)
    return Op(op_id=draw(st.integers(1, 2**30)), request=request, phase=phase, seq=draw(st.integers(0, 2**15)),
              ballot=draw(ballots), ask=ask, proposal=draw(values), max_seen=draw(ballots))


def _same(build: Callable[[Op], Prepare | Accept | Read], op: Op) -> bool:
    got, want = build(op), checked_phase_msg(op)
    return type(got) is type(want) and got == want and hash(got) == hash(want)


@settings(max_examples=300, deadline=None)
@given(ops())
def test_fast_phase_messages_equal_the_validated_ones(op: Op) -> None:
    assert _same(fast_phase_msg, op)


def test_the_client_uses_the_fast_builder_only_with_contracts_off() -> None:
    assert wor._phase_msg is (checked_phase_msg if CONTRACTS else fast_phase_msg)


def test_a_fast_builder_with_a_wrong_ballot_is_caught() -> None:
    def planted(op: Op) -> Prepare | Accept | Read:  # planted bug: an Accept carries the highest ballot seen
        m = fast_phase_msg(op)
        if isinstance(m, Accept):
            object.__setattr__(m, "ballot", op.max_seen)
        return m

    found: list[Op] = []

    @settings(max_examples=200, deadline=None)
    @given(ops())
    def search(op: Op) -> None:
        if not _same(planted, op):
            found.append(op)

    search()
    assert found
