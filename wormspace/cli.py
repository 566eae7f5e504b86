"""The ``wormspace`` command.

Each verb lives in the module that owns its subject; this file only wires the argument parsers.
A verb module exposes ``add_parser(subparsers)`` which registers its parser and sets ``func`` (a callable
taking the parsed namespace and returning the exit code).

Exit codes common to every verb: 2 a usage error; 4 an I/O error on this machine that the verb did not handle
itself (a file, or standard output, could not be read or written: ``> /dev/full``), so that it is never read
as a verb's own 1 (``check`` ILLEGAL, ``kv get`` absent, ``cluster status`` an acceptor down) -- what the
verb did before the error (a ``kv put``) stands; 130 Ctrl-C; 141 the reader of standard output went away;
143 SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from wormspace.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

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


def _raise_broken_pipe(console: Console) -> None:
    raise BrokenPipeError(errno.EPIPE, "the reader of standard output went away")


@contextlib.contextmanager
def _broken_pipe_raises() -> Iterator[None]:
    """While a verb runs, a rich console that meets a closed pipe raises ``BrokenPipeError`` (handled by
    ``main``: exit 141, as a tool killed by SIGPIPE) instead of rich's default ``SystemExit(1)``, which
    would read as a verb's negative result (``check``: ILLEGAL, ``cluster status``: an acceptor down)."""
    from rich.console import Console

    saved = Console.on_broken_pipe
    Console.on_broken_pipe = _raise_broken_pipe  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        Console.on_broken_pipe = saved  # type: ignore[method-assign]


EXIT_IO = 4  # module doc


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While a verb runs, SIGTERM (``timeout``, ``kill``) unwinds it as Ctrl-C does, so that what it started
    is stopped (the acceptor processes of ``demo --real`` or ``bench``, their temporary directory), and the
    process exits 143 as one ended by SIGTERM. ``serve`` installs its own handler once it serves."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, saved)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        with _broken_pipe_raises(), _sigterm_unwinds():
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
        return EXIT_IO
    return code


if __name__ == "__main__":
    sys.exit(main())
