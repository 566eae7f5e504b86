"""The package as users get it: a wheel built from this tree, installed in a fresh virtualenv with only the
runtime dependencies, runs ``wormspace demo``, ships ``py.typed`` (PEP 561) so type checkers see its types,
and builds without license warnings (``project.license`` is an SPDX expression)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = {"icontract", "msgpack", "rich"}  # pyproject.toml's [project] dependencies
DEV_ONLY = {"hypothesis", "pytest", "mypy", "crosshair-tool", "ruff"}

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_pyproject_declares_an_spdx_license_and_the_typed_marker() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["license"] == "MIT"
    assert project["tool"]["setuptools"]["package-data"]["wormspace"] == ["py.typed"]
    assert (ROOT / "wormspace" / "py.typed").is_file()


@pytest.mark.timeout(900)
def test_a_wheel_from_the_tree_installs_alone_and_runs_the_demo(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(dist), str(ROOT)], tmp_path)
    log = build.stdout + build.stderr
    assert "project.license" not in log and "License classifiers are deprecated" not in log, log[-3000:]
    (wheel,) = dist.glob("wormspace-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "wormspace/py.typed" in names
    assert "License-Expression: MIT" in metadata

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], tmp_path)
    listed = _run([str(python), "-m", "pip", "list", "--format=freeze"], tmp_path).stdout.lower()
    installed = {line.split("==")[0] for line in listed.split()}
    assert installed >= RUNTIME and not (DEV_ONLY & installed), installed

    where = _run([str(python), "-c", "import wormspace, pathlib; print(pathlib.Path(wormspace.__file__).parent)"],
                 tmp_path).stdout.strip()
    assert Path(where).is_relative_to(venv), f"imported {where}, not the installed wheel"
    assert (Path(where) / "py.typed").is_file()
    demo = _run([str(venv / "bin" / "wormspace"), "demo", "--seed", "1"], tmp_path, timeout=600)
    assert "linearizable" in demo.stdout and "OK" in demo.stdout

    # A user's type checker sees the package's types (without py.typed mypy would skip it as untyped).
    user = tmp_path / "user"
    user.mkdir()
    (user / "app.py").write_text(
        "from wormspace import Cluster\n"
        "ws = Cluster.simulated(acceptors=3, seed=1).client()\n"
        "seg: int = ws.alloc(b'm')\n"
        "wrong: str = ws.address(seg, 0)\n",
        encoding="utf-8",
    )
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-executable", str(python), "app.py"],
        cwd=user, capture_output=True, text=True, timeout=300, check=False,
    )
    out = mypy.stdout + mypy.stderr
    assert "missing library stubs or py.typed marker" not in out, out
    assert mypy.returncode == 1 and 'Incompatible types in assignment (expression has type "int"' in out, out


def test_the_shipped_verbs_need_no_development_dependency() -> None:
    """``wormspace check`` (WormSpace and app histories) and ``wormspace demo`` import nothing of Hypothesis,
    pytest or CrossHair: a user who installed only the runtime dependencies can run them."""
    code = (
        "import sys\n"
        "for m in ('hypothesis', 'pytest', 'crosshair'): sys.modules[m] = None\n"
        "import wormspace.cli, wormspace.demo, wormspace.refinement.check, wormspace.refinement.wormspace_to_apps\n"
        "import wormspace.apps, wormspace.apps.bank\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
