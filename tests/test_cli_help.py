"""The ``wormspace`` command's help: docstrings become plain text (no reStructuredText markup)."""

from __future__ import annotations

import argparse

import pytest

from wormspace.cli import build_parser, plain_text


def _parsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(parser.prog, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.extend(_parsers(sub))
    return found


def test_plain_text_strips_inline_markup() -> None:
    assert plain_text("run ``wormspace cluster up``\nor :func:`wormspace.connect` or :class:`~a.B`") == (
        "run wormspace cluster up\nor wormspace.connect or a.B"
    )
    assert plain_text("a `single` tick stays") == "a `single` tick stays"


@pytest.mark.parametrize(("prog", "parser"), _parsers(build_parser()), ids=lambda x: x if isinstance(x, str) else "")
def test_no_help_page_shows_raw_markup(prog: str, parser: argparse.ArgumentParser) -> None:
    text = parser.format_help()
    assert "``" not in text and ":func:`" not in text, text


def test_the_cluster_help_shows_its_synopsis_plainly() -> None:
    cluster = dict(_parsers(build_parser()))["wormspace cluster"]
    assert "wormspace cluster up|down|status|replace --acceptors 3" in cluster.format_help()
