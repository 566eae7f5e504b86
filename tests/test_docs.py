"""The documentation's code runs as written: every Python block of the tutorial and the README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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


def test_readme_example_runs(tmp_path: Path) -> None:
    (block,) = _blocks(ROOT / "README.md")
    _run(block, tmp_path)
    assert (tmp_path / "run.jsonl").read_text().count("\n") > 10


def test_tutorial_sections_run(tmp_path: Path) -> None:
    blocks = _blocks(ROOT / "docs" / "tutorial.md")
    first, _spec_excerpt, abstraction, check, mutant, real = blocks[:6]  # sections 1-7; tests/apps: 8
    _run(first, tmp_path)
    assert "(0, 0) WorSpec(value=b'from b')" in _run(first + abstraction, tmp_path)
    assert _run(first + check, tmp_path).strip() == "OK"
    assert _run(mutant, tmp_path).splitlines()[0] == "ILLEGAL"
    _run(real, tmp_path)


@pytest.mark.parametrize("name", ["tutorial.md", "design.md", "history-format.md", "deployment.md", "operations.md"])
def test_doc_pages_exist(name: str) -> None:
    assert (ROOT / "docs" / name).stat().st_size > 500


def test_tx_page_example_runs(tmp_path: Path) -> None:
    (block,) = _blocks(ROOT / "docs" / "apps" / "tx.md")
    assert _run(block, tmp_path).strip() == "ok"


def test_history_format_example_is_the_data_file_it_abridges() -> None:
    """The segment example of docs/history-format.md is, line for line, in the data file it names, which the
    checker tests judge; every JSON line of the page is one JSON object."""
    import json

    blocks = re.findall(r"```json\n(.*?)```", (ROOT / "docs" / "history-format.md").read_text(), re.S)
    events = [[json.loads(line) for line in b.splitlines() if line.strip()] for b in blocks]
    assert all(isinstance(e, dict) for block in events for e in block)
    data = ROOT / "tests" / "data" / "histories" / "segment-lifecycle-ok.jsonl"
    held = [json.loads(line) for line in data.read_text().splitlines() if line.strip()]
    (example,) = [b for b in events if b and b[0].get("f") == "alloc"]
    assert all(e in held for e in example)
    assert any(e["f"] == "batch_write" and e["type"] == "info" for e in example)  # partly applied: not fail
