"""Recording is not checking: shipped modules never import the checkers (``wormspace.refinement``).

An AST scan of every module of the package, including imports inside functions. Allowed: the checkers
themselves (refinement/), the proof obligations (proofs/), the command lines that run checks (cli.py,
demo.py, benchcli.py) and the pytest plugin (testing.py, which imports the checkers lazily)."""

from __future__ import annotations

import ast
from pathlib import Path

import wormspace

ROOT = Path(wormspace.__file__).resolve().parent
ALLOWED_DIRS = ("refinement", "proofs")
ALLOWED_FILES = ("cli.py", "demo.py", "benchcli.py", "testing.py")


def checker_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import of ``wormspace.refinement`` (or a module below it) in ``source``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == "wormspace.refinement" or name.startswith("wormspace.refinement."):
                found.append((node.lineno, name))
                break
    return found


def shipped_modules() -> list[Path]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ALLOWED_DIRS or (len(rel.parts) == 1 and rel.name in ALLOWED_FILES):
            continue
        out.append(path)
    return out


def test_shipped_modules_never_import_the_checkers() -> None:
    modules = shipped_modules()
    assert any(p.name == "cluster.py" for p in modules) and any(p.name == "driver.py" for p in modules)
    bad = [
        f"{p.relative_to(ROOT)}:{line}: imports {name}"
        for p in modules
        for line, name in checker_imports(p.read_text(encoding="utf-8"))
    ]
    assert not bad, "\n".join(bad)


def test_the_scan_finds_checker_imports() -> None:  # the planted case: the scan can fail
    assert checker_imports("def f():\n    from wormspace.refinement.models import WorModel\n") == [
        (2, "wormspace.refinement.models")
    ]
    assert checker_imports("import wormspace.refinement.check as c\n") == [(1, "wormspace.refinement.check")]
    assert checker_imports("from wormspace import refinement\n") == [(1, "wormspace.refinement")]
    assert checker_imports("from wormspace.history import Recorder\n") == []
