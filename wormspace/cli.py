"""The ``wormspace`` command.

Each verb lives in the module that owns its subject; this file only wires the argument parsers.
A verb module exposes ``add_parser(subparsers)`` which registers its parser and sets ``func`` (a callable
taking the parsed namespace and returning the exit code).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence

from wormspace.errors import UsageError

VERB_MODULES = (
    "wormspace.demo",
    "wormspace.refinement.check",
    "wormspace.server",
    "wormspace.clustertool",
    "wormspace.logcli",
    "wormspace.benchcli",
    "wormspace.proofs.prove",
)


_MARKUP = re.compile(r"``(.+?)``|:[a-z]+:`~?(.+?)`", re.DOTALL)


def plain_text(text: str) -> str:
    """Help text from a docstring: reStructuredText inline markup (````code````, ``:func:`name```) becomes
    plain text."""
    return _MARKUP.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), text)


def _plain_help(parser: argparse.ArgumentParser) -> None:
    """Strip docstring markup from a parser's texts and from every subparser's, recursively."""
    if parser.description:
        parser.description = plain_text(parser.description)
    if parser.epilog:
        parser.epilog = plain_text(parser.epilog)
    for action in parser._actions:
        if isinstance(action.help, str):
            action.help = plain_text(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if isinstance(choice.help, str):
                    choice.help = plain_text(choice.help)
            for sub in action.choices.values():
                _plain_help(sub)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="wormspace",
        description="WormSpace: write-once registers and segments over Paxos acceptors, with checks.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for name in VERB_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue  # verb not shipped in this build
            raise
        module.add_parser(sub)
    _plain_help(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        code: int = args.func(args)
        sys.stdout.flush()
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except UsageError as e:
        print(f"wormspace {args.verb}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"wormspace {args.verb}: error: {e}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
