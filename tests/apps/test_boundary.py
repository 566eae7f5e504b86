"""The apps use the client API only: no layer below it, no checker, no cluster or runtime module."""

from __future__ import annotations

import ast
from pathlib import Path

APPS = Path(__file__).resolve().parents[2] / "wormspace" / "apps"
ALLOWED = ("wormspace.client", "wormspace.errors", "wormspace.apps")


def forbidden_imports(source: str) -> list[str]:
    """The wormspace modules ``source`` imports that an app may not."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return [n for n in names if n.split(".")[0] == "wormspace" and not n.startswith(ALLOWED)]


def test_every_app_module_imports_only_the_client_api() -> None:
    modules = sorted(APPS.glob("*.py"))
    assert {m.name for m in modules} >= {"__init__.py", "log.py", "paxos.py", "kv.py", "history.py"}
    for m in modules:
        assert forbidden_imports(m.read_text()) == [], m.name


def test_the_boundary_check_sees_a_layer_import() -> None:
    assert forbidden_imports("from wormspace.layers.wor import Ballot\nimport wormspace.history") == [
        "wormspace.layers.wor",
        "wormspace.history",
    ]
    assert forbidden_imports("from wormspace.client import SpaceLogic\nimport hashlib") == []
