"""docs/operations.md lists every log line of ``wormspace serve`` and of the client transport, with its level.

These tests pin the page to the code both ways: every logging call of the modules that run in an acceptor
process or a TCP client (their format strings, read from the source) must match a documented line of the
same level, and every documented line must be emitted by such a call. Each check is shown to fail on a
planted mismatch (a log call the page does not list, a documented line no code emits, a wrong level).

One real-process test pins a start condition the page describes: ``--init`` on a port in use exits 1 having
initialised the directory, and the next start is without ``--init``.
"""

from __future__ import annotations

import ast
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "operations.md"
MODULES = [
    "wormspace/server.py",
    "wormspace/layers/tcp.py",
    "wormspace/layers/acceptor.py",
    "wormspace/runtime/auth.py",
    "wormspace/runtime/driver.py",
]
LEVELS = {"debug": "DEBUG", "info": "INFO", "warning": "WARNING", "error": "ERROR", "exception": "ERROR"}


@dataclass(frozen=True)
class LogCall:
    where: str
    level: str
    fmt: str

    def pattern(self) -> re.Pattern[str]:
        """The format string as a regex: each ``%`` conversion stands for any text (an empty one too: a
        conversion may add an optional suffix, ``(K more since the last one logged)``)."""
        parts = re.split(r"%[-#0 +]*\d*(?:\.\d+)?[dsrfox]", self.fmt)
        return re.compile(".*".join(re.escape(p) for p in parts), re.DOTALL)


@dataclass(frozen=True)
class DocLine:
    level: str
    text: str

    def pattern(self) -> re.Pattern[str]:
        """The documented line as a regex: a placeholder (``N``, ``HOST:PORT``, ``REASON``, ``...``) stands for
        any non-empty text."""
        parts = re.split(r"\.\.\.|\b[A-Z][A-Z0-9_]*(?::[A-Z]+)?\b", self.text)
        return re.compile(".+".join(re.escape(p) for p in parts), re.DOTALL)

    def matches(self, call: LogCall) -> bool:
        """Same level, and the line is an instance of the call's format or the format an instance of the line
        (the page may abridge a call's fixed text into a placeholder: ``cannot start: REASON``)."""
        if self.level != call.level:
            return False
        return bool(call.pattern().fullmatch(self.text) or self.pattern().fullmatch(call.fmt))


def log_calls(source: str, where: str) -> list[LogCall]:
    """Every ``log.<level>("format", ...)`` call of a module's source."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        f = node.func
        if not (isinstance(f.value, ast.Name) and f.value.id == "log" and f.attr in LEVELS and node.args):
            continue
        first = node.args[0]
        assert isinstance(first, ast.Constant) and isinstance(first.value, str), f"{where}:{node.lineno}"
        calls.append(LogCall(f"{where}:{node.lineno}", LEVELS[f.attr], first.value))
    return calls


def documented_lines(page: str) -> list[DocLine]:
    """The lines of the tables of the page's "Log lines" section: rows whose first cell is a level; the
    second cell holds one or more lines in backquotes, separated by `` / ``. A backquoted piece that does not
    start with the first piece's first word continues the first piece (``idle for S s``) and is skipped."""
    section = page.split("## Log lines", 1)[1].split("\n## ", 1)[0]
    lines = []
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split(" | ")]
        if len(cells) < 3 or cells[0] not in LEVELS.values():
            continue
        pieces = [p.replace("\\|", "|") for p in re.findall(r"`([^`]+)`", cells[1])]
        head = pieces[0].split()[0]
        lines += [DocLine(cells[0], p) for p in pieces if p.split()[0] == head]
    return lines


def undocumented(calls: list[LogCall], lines: list[DocLine]) -> list[LogCall]:
    return [c for c in calls if not any(d.matches(c) for d in lines)]


def never_emitted(calls: list[LogCall], lines: list[DocLine]) -> list[DocLine]:
    return [d for d in lines if not any(d.matches(c) for c in calls)]


def shipped_calls() -> list[LogCall]:
    return [c for m in MODULES for c in log_calls((ROOT / m).read_text(), m)]


def test_every_log_call_is_documented_with_its_level() -> None:
    calls = shipped_calls()
    assert len(calls) > 25
    assert undocumented(calls, documented_lines(PAGE.read_text())) == []


def test_every_documented_line_is_emitted_at_its_level() -> None:
    lines = documented_lines(PAGE.read_text())
    assert len(lines) > 25
    assert never_emitted(shipped_calls(), lines) == []


def test_mutant_an_undocumented_log_call_is_caught() -> None:
    src = (ROOT / "wormspace/server.py").read_text()
    planted = src + '\n\ndef _planted() -> None:\n    log.warning("acceptor %d lost its way", 1)\n'
    calls = log_calls(planted, "server.py")
    found = undocumented(calls, documented_lines(PAGE.read_text()))
    assert [c.fmt for c in found] == ["acceptor %d lost its way"]


def test_mutant_a_documented_line_nothing_emits_is_caught() -> None:
    page = PAGE.read_text().replace(
        "| INFO | `acceptor N storage closed` |",
        "| INFO | `acceptor N storage closed` |\n| INFO | `acceptor N storage reopened` | planted |",
    )
    assert [d.text for d in never_emitted(shipped_calls(), documented_lines(page))] == ["acceptor N storage reopened"]


def test_mutant_a_wrong_level_is_caught_both_ways() -> None:
    page = PAGE.read_text().replace(
        "| INFO | `acceptor N storage closed` |", "| WARNING | `acceptor N storage closed` |"
    )
    lines = documented_lines(page)
    assert [c.fmt for c in undocumented(shipped_calls(), lines)] == ["acceptor %d storage closed"]
    assert [d.text for d in never_emitted(shipped_calls(), lines)] == ["acceptor N storage closed"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(60)
def test_init_on_a_port_in_use_exits_1_initialised_and_the_next_start_is_without_init(tmp_path: Path) -> None:
    data = tmp_path / "d"
    base = [sys.executable, "-m", "wormspace", "serve", "--id", "0", "--data", str(data), "--cluster-id", "abcdefgh12"]
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        first = subprocess.run(
            [*base, "--init", "--listen", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=30
        )
        again = subprocess.run(
            [*base, "--init", "--listen", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=30
        )
    assert first.returncode == 1, first.stderr
    assert f"ERROR acceptor 0 cannot start: cannot listen on 127.0.0.1:{port}: " in first.stderr
    assert (data / "identity.json").exists()
    assert again.returncode == 2, again.stderr
    assert "ERROR acceptor 0 cannot start: " in again.stderr and "already holds an acceptor" in again.stderr
    # without --init it starts: SIGTERM stops it with exit code 0 and the documented lines
    proc = subprocess.Popen([*base, "--listen", f"127.0.0.1:{_free_port()}"], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if " listening on " in line:
                break
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "INFO acceptor 0 stopping on SIGTERM" in err
    assert "INFO acceptor 0 storage closed" in err


def test_a_client_connection_lost_before_its_hello_is_awaited_logs_nothing_at_collection() -> None:
    """A CLI verb whose acceptor was killed printed asyncio's ``Future exception was never retrieved ...
    ClosedBeforeHello`` on stderr: the connection died before the connecting task awaited its hello."""
    import asyncio
    import gc
    from types import SimpleNamespace
    from typing import Any

    from wormspace.layers.tcp import _ClientConn

    reported: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: reported.append(ctx))
        owner: Any = SimpleNamespace(_lost=lambda peer, conn: None)
        conn = _ClientConn(owner, SimpleNamespace(id=1, addr=("127.0.0.1", 1)))  # type: ignore[arg-type]
        conn.connection_lost(None)
        del conn
        gc.collect()

    asyncio.run(main())
    assert [c.get("message") for c in reported] == []
