"""The apps' pages run as written, the tutorial's WormLog chapter runs, and the stated line counts are true."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


def _run(code: str, tmp_path: Path) -> str:
    script = tmp_path / "snippet.py"
    script.write_text(code)
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def code_lines(path: Path) -> tuple[int, int]:
    """(lines of code: non-blank, not comments, not docstrings; all lines)."""
    src = path.read_text()
    docs: set[int] = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            value = first.value if isinstance(first, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docs.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    lines = src.splitlines()
    code = sum(1 for i, s in enumerate(lines, 1) if s.strip() and not s.strip().startswith("#") and i not in docs)
    return code, len(lines)


@pytest.mark.parametrize(("page", "module"), [("log", "log"), ("paxos", "paxos"), ("kv", "kv")])
def test_app_page_example_runs_and_its_size_is_true(page: str, module: str, tmp_path: Path) -> None:
    path = ROOT / "docs" / "apps" / f"{page}.md"
    for example in _blocks(path):  # the log page's second block: the asyncio faces
        _run(textwrap.dedent(example), tmp_path)
    code, total = code_lines(ROOT / "wormspace" / "apps" / f"{module}.py")
    assert f"{code} lines of code (`{module}.py`, {total} with docstrings and comments)" in path.read_text()


def test_tutorial_chapter_from_the_wor_spec_to_wormlog(tmp_path: Path) -> None:
    by_hand, with_spec = _blocks(ROOT / "docs" / "tutorial.md")[6:]
    out = _run(by_hand + with_spec, tmp_path).splitlines()
    assert out[0] in ("late append: AlreadyWritten", "late append: CaptureStale")
    assert out[1] == "[b'Dhello', b'J', b'Dworld']"
    assert out[2].endswith("False")


@pytest.mark.parametrize("app", ["log", "kv", "paxos"])
def test_the_constructor_each_page_shows_is_the_code_s(app: str) -> None:
    """The signature a page gives for its app's constructor (``WormLog(ws, name=b"log", *, ...)``) names the
    parameters of the code, in order, with the code's defaults."""
    import inspect

    from wormspace.apps import WormKV, WormLog, WormPaxos

    cls = {"log": WormLog, "kv": WormKV, "paxos": WormPaxos}[app]
    text = " ".join((ROOT / "docs" / "apps" / f"{app}.md").read_text().split())
    shown = re.search(rf"`{cls.__name__}\((.*?)\)`", text)
    assert shown is not None, f"docs/apps/{app}.md shows no signature of {cls.__name__}"
    documented: list[tuple[str, object]] = []
    for part in shown.group(1).split(", "):
        name, eq, default = part.partition("=")
        documented.append((name, ast.literal_eval(default) if eq else inspect.Parameter.empty))
    params = list(inspect.signature(cls).parameters.values())
    code: list[tuple[str, object]] = []
    for p in params:
        if p.kind is inspect.Parameter.KEYWORD_ONLY and "*" not in [n for n, _ in code]:
            code.append(("*", inspect.Parameter.empty))
        code.append((p.name, p.default))
    assert documented == code
