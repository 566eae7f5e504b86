"""The shared explorer machinery (wormspace/refinement/explore_engine.py): named configurations of every
layer, the certain-failure obligation both explorers check, the one breadth-first search they all run, and
the WOR explorer's exact state key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import pairwise

import pytest

from wormspace.refinement import explore, explore_engine, wor_to_wos
from wormspace.refinement.explore_engine import (
    CHECKED,
    CONFIGS,
    UNKNOWN,
    VACUOUS,
    VIOLATION,
    StepFailure,
    bfs,
    certain_failure_violation,
    chosen_by_register,
    replay,
)


def test_every_named_configuration_resolves_to_its_layers_config() -> None:
    for name, (layer, _, tier) in CONFIGS.items():
        cfg = explore_engine.config(name)
        assert name.startswith(layer + ".") and tier in ("quick", "full")
        kind = explore.ExploreConfig if layer == "wor" else wor_to_wos.SegmentExploreConfig
        assert isinstance(cfg, kind), name


def test_race_names_one_thing_per_layer() -> None:
    assert explore_engine.config("wor.race") == explore.race_config()
    assert explore_engine.config("wos.race") == wor_to_wos.segment_race_config()
    full = explore_engine.config("wor.race_duplicating")
    assert full.duplicating and full.scripts == explore.race_config().scripts
    assert "wor.race_duplicating" in explore_engine.names("wor", "full")
    assert "wor.race_duplicating" not in explore_engine.names(tier="quick")


def test_an_unknown_configuration_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="no explorer configuration"):
        explore_engine.config("wor.nope")


def test_certain_failure_obligation() -> None:
    assert certain_failure_violation("A", "CaptureStale", b"a", None) is None
    assert certain_failure_violation("A", "CaptureStale", b"a", b"b") is None
    why = certain_failure_violation("A", "Trimmed", b"a", b"a")
    assert why is not None and "certain failure" in why


def test_chosen_by_register_counts_distinct_acceptors_at_one_ballot() -> None:
    from wormspace.layers.messages import Ballot

    b1, b2 = Ballot(1, 100), Ballot(2, 101)
    votes = [((0, 0), 0, b1, b"a"), ((0, 0), 0, b1, b"a"), ((0, 0), 1, b2, b"a"), ((0, 1), 0, b1, b"x"),
             ((0, 1), 1, b1, b"x")]
    assert chosen_by_register(votes, 2) == {(0, 1): {b"x"}}


# ---- the one breadth-first search ----------------------------------------------------------------------


def _grid(n: int) -> Callable[[tuple[int, int]], Iterator[tuple[str, tuple[int, int]]]]:
    def successors(s: tuple[int, int]) -> Iterator[tuple[str, tuple[int, int]]]:
        x, y = s
        if x < n:
            yield "right", (x + 1, y)
        if y < n:
            yield "up", (x, y + 1)

    return successors


def test_bfs_visits_every_state_once_and_reports_depth_and_witnesses() -> None:
    found = bfs((0, 0), _grid(3), key=lambda s: s, check=lambda s: None,
                sometimes=[("corner", lambda s: s == (3, 3)), ("never", lambda s: s == (9, 9))], max_states=100)
    assert (found.states, found.depth) == (16, 6)
    assert found.witnessed == {"corner": 6} and found.pending == ["never"]
    assert found.exhausted and found.verdict == VACUOUS
    met = bfs((0, 0), _grid(3), key=lambda s: s, check=lambda s: None, sometimes=[("corner", lambda s: s == (3, 3))],
              max_states=100)
    assert met.verdict == CHECKED


def test_bfs_finds_a_shortest_counterexample_and_replays_it() -> None:
    found = bfs((0, 0), _grid(5), key=lambda s: s, check=lambda s: ("bad", "x+y=4") if sum(s) == 4 else None,
                max_states=1000)
    assert found.verdict == VIOLATION and found.found is not None
    prop, why, target, at_step = found.found
    assert (prop, why, at_step) == ("bad", "x+y=4", False)
    path = replay((0, 0), _grid(5), lambda s: s, found.parent, target)
    assert len(path) == 5 and path[0] == (None, (0, 0)) and sum(path[-1][1]) == 4
    assert all(sum(b) == sum(a) + 1 for (_, a), (_, b) in pairwise(path))


def test_bfs_keys_states_by_the_given_key_and_respects_its_budget() -> None:
    # keyed up to swapping the coordinates: (x, y) and (y, x) are one state
    found = bfs((0, 0), _grid(3), key=lambda s: tuple(sorted(s)), check=lambda s: None, max_states=100)
    assert found.states == 10 and found.verdict == CHECKED
    cut = bfs((0, 0), _grid(3), key=lambda s: s, check=lambda s: None, max_states=5)
    assert cut.budget_hit and cut.states == 5 and cut.verdict == UNKNOWN


def test_a_step_failure_is_reported_at_the_state_it_leaves() -> None:
    def successors(s: int) -> Iterator[tuple[str, int]]:
        if s == 2:
            raise StepFailure("step_rule", "step from 2")
        yield "next", s + 1

    found = bfs(0, successors, key=lambda s: s, check=lambda s: None, max_states=100)
    assert found.found == ("step_rule", "step from 2", 2, True) and found.verdict == VIOLATION


def test_the_wor_key_is_exact_and_canonical_up_to_renaming_acceptors() -> None:
    ex = explore.Explorer(explore.read_config())
    seen: dict[object, explore.State] = {}
    frontier = [ex.initial_state()]
    while frontier and len(seen) < 3000:
        s = frontier.pop()
        for _, nxt in ex.successors(s):
            k = ex.key(nxt)
            if k not in seen:
                seen[k] = nxt
                frontier.append(nxt)
    perm = (2, 0, 1)  # acceptor a is renamed perm[a]
    checked = 0
    for k, s in seen.items():
        renamed = _rename(ex, s, perm)
        if renamed is not None:
            assert ex.key(renamed) == k
            checked += 1
    assert checked > 100
    keys = list(seen)
    assert len(set(keys)) == len(keys) and all(isinstance(x, int) for k in keys for x in k)  # type: ignore[attr-defined]


def _rename(ex: explore.Explorer, s: explore.State, perm: tuple[int, ...]) -> explore.State | None:
    """``s`` with its acceptors renamed, or None when a running operation has heard replies (their
    acceptor names sit inside the interned ``Op``)."""
    if any(ex.cl_split[c][1] for c in s.clients) or s.repl.stage:
        return None
    n = ex.n
    accs = [0] * n
    for a, rid in enumerate(ex.accs(s)):
        accs[perm[a]] = rid
    net = []
    for p in ex.net(s):
        src, dst, msg = ex.packets.values[p]
        src = perm[src] if src < n else src
        dst = perm[dst] if dst < n else dst
        net.append(ex.packet((src, dst, msg)))
    ghost = frozenset((perm[a % n] + n * (a // n), b, v) for a, b, v in ex.ghost(s))
    return ex.make_state(accs, s.clients, net, ghost, s.repl)


@pytest.mark.parametrize("make", [explore.read_config, explore.replace_config], ids=["read", "replace"])
def test_the_wor_slots_encode_the_state_exactly(make: Callable[[], explore.ExploreConfig]) -> None:
    """A state kept per acceptor slot decodes to its registers, packets and ghost log and encodes back to
    itself; every packet sits in the slot of the acceptor it names."""
    ex = explore.Explorer(make())
    seen = {ex.initial_state()}
    frontier = [ex.initial_state()]
    while frontier and len(seen) < 3000:
        s = frontier.pop(0)
        for _, nxt in ex.successors(s):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert any(s.repl.stage for s in seen) == (make is explore.replace_config)
    for s in seen:
        assert ex.make_state(ex.accs(s), s.clients, ex.net(s), ex.ghost(s), s.repl) == s
        for a, x in enumerate(s.locs):
            assert all(ex.slot(p) == a for p in ex.loc_net[x])
