"""The shared explorer machinery (wormspace/refinement/explore_engine.py): named configurations of every
layer, and the certain-failure obligation both explorers check."""

from __future__ import annotations

import pytest

from wormspace.refinement import explore, explore_engine, wor_to_wos
from wormspace.refinement.explore_engine import CONFIGS, certain_failure_violation, chosen_by_register


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
