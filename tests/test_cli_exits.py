"""The exit codes every verb shares (``wormspace.cli``'s module doc), in process: what a verb raises decides
the code -- Ctrl-C 130, a usage error 2, an I/O error the verb did not handle 4, otherwise the verb's own --
and ``-v``/``-vv`` set the log level. (Exit 141 and 143 need a real process: ``test_cli_unix.py``.)"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import pytest

from wormspace import cli, clustertool
from wormspace.errors import UsageError


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (KeyboardInterrupt(), 130),
        (UsageError("bad input"), 2),
        (OSError(28, "No space left on device"), cli.EXIT_IO),
        (None, 1),  # the verb's own negative result stands
    ],
)
def test_what_a_verb_raises_decides_the_exit_code(
    raised: BaseException | None, code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def verb(args: argparse.Namespace) -> int:
        if raised is not None:
            raise raised
        return 1

    monkeypatch.setattr(clustertool, "main", verb)  # the verb ``cluster`` resolves when the parser is built
    assert cli.main(["cluster", "status", "--dir", str(tmp_path)]) == code
    err = capsys.readouterr().err
    if isinstance(raised, (UsageError, OSError)):
        assert err.startswith("wormspace cluster: error: ") and err.count("\n") == 1
    else:
        assert err == ""


@pytest.mark.parametrize(("flags", "level"), [([], logging.WARNING), (["-v"], logging.INFO),
                                              (["-vv"], logging.DEBUG), (["-v", "-v", "-v"], logging.DEBUG)])
def test_verbose_flags_set_the_log_level(
    flags: list[str], level: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(logging, "basicConfig", lambda **kw: seen.append(kw["level"]))
    monkeypatch.setattr(clustertool, "main", lambda args: 0)
    assert cli.main([*flags, "cluster", "status", "--dir", str(tmp_path)]) == 0
    assert seen == [level]


SCRIPT = """
import sys
from wormspace import cli, clustertool

def verb(args):
    print("a line the reader will never take")  # still in standard output's buffer when the pipe breaks
    raise BrokenPipeError(32, "Broken pipe")

clustertool.main = verb
sys.exit(cli.main(["cluster", "status", "--dir", sys.argv[1]]))
"""


def test_a_broken_pipe_with_output_still_buffered_stops_quietly_with_141(tmp_path: Path) -> None:
    """The reader went away while output was still buffered: the process still exits 141 with nothing on
    standard error (the buffer is not flushed into the closed pipe at exit, which Python would report)."""
    import os
    import subprocess
    import sys

    r, w = os.pipe()
    os.close(r)
    try:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # standard output buffered
        out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], stdout=w, stderr=subprocess.PIPE,
                             timeout=60, check=False, env=env)
    finally:
        os.close(w)
    assert (out.returncode, out.stderr) == (141, b"")
