"""The package as users get it: a wheel built from this tree, installed in a fresh virtualenv with only the
runtime dependencies, runs ``wormspace demo``, ships ``py.typed`` (PEP 561) so type checkers see its types,
and builds without license warnings (``project.license`` is an SPDX expression)."""

from __future__ import annotations

import os
import re
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


# A new user's own program against the public names, type-checked with mypy --strict as they would (the
# library's own modules followed silently, as an installed package is). Each revealed type below is one the
# docs promise; each error is one a user's checker must report.
USER_PROGRAM = '''
import asyncio
from wormspace import EMPTY, Cluster
from wormspace.apps import (AppHistory, AsyncWormKV, AsyncWormLog, AsyncWormPaxos, AsyncWormTX, WormKV,
                            WormLog, WormPaxos, WormTX)

ws = Cluster.simulated(acceptors=3, seed=1).client()
seg = ws.alloc()
value = ws.read(ws.address(seg, 0))
if value is not EMPTY:
    data: bytes = value
paxos = WormPaxos(ws, lambda cmd: cmd, name=b"p")
tx = WormTX(ws, history=AppHistory())

async def main() -> None:
    a = ws.aio
    reveal_type(await a.alloc())
    reveal_type(await a.alloc(segment=7))
    reveal_type(await AsyncWormLog(a, b"l").append(b"x"))
    reveal_type(await AsyncWormKV(a, name=b"k", replicas=2, replica=1).get(b"k"))
    reveal_type(AsyncWormPaxos(a, lambda cmd: cmd, replicas=2).applied)
    reveal_type(await AsyncWormTX(a).begin(participants=2))
    AsyncWormKV(a, replicaz=2)
    AsyncWormPaxos(a, lambda cmd: cmd, strat=1)
    reveal_type(WormLog(ws).aio)
    reveal_type(WormKV(ws).aio)
    reveal_type(paxos.aio.applied)

asyncio.run(main())
'''


def test_a_users_strict_type_check_sees_precise_types(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(USER_PROGRAM, encoding="utf-8")
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    mypy = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--cache-dir", str(tmp_path / "c"),
         "app.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    out = mypy.stdout + mypy.stderr
    revealed = re.findall(r'Revealed type is "([^"]*)"', out)
    assert revealed == [
        "int", "bool", "int", "bytes | None", "int", "int", "wormspace.apps.log.AsyncWormLog",
        "wormspace.apps.kv.AsyncWormKV", "int",
    ], out
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 2, out  # no error on `data: bytes = value`: `is not EMPTY` narrows
    assert 'Unexpected keyword argument "replicaz" for "AsyncWormKV"' in errors[0], out
    assert 'Unexpected keyword argument "strat" for "AsyncWormPaxos"' in errors[1], out


FACES = [("WormSpace", "AsyncClient"), ("WormLog", "AsyncWormLog"), ("WormKV", "AsyncWormKV"),
         ("WormPaxos", "AsyncWormPaxos"), ("WormTX", "AsyncWormTX")]
SYNC_ONLY = {"aio", "listen", "close", "split", "address", "wos_size"}  # (address/split/wos_size: not awaited)


@pytest.mark.parametrize(("sync_name", "async_name"), FACES)
def test_the_asyncio_face_offers_every_call_of_the_sync_face_with_its_parameters(
        sync_name: str, async_name: str) -> None:
    import inspect

    import wormspace
    import wormspace.apps
    from wormspace.client import AsyncClient

    where = {**vars(wormspace), **vars(wormspace.apps), "AsyncClient": AsyncClient}
    sync, aio = where[sync_name], where[async_name]
    for name, member in vars(sync).items():
        if name.startswith("_") or name in SYNC_ONLY:
            continue
        assert hasattr(aio, name), f"{async_name} lacks {name}"
        if callable(member):
            ps = list(inspect.signature(member).parameters.values())
            pa = list(inspect.signature(getattr(aio, name)).parameters.values())
            assert [(p.name, p.kind, p.default) for p in ps] == [(p.name, p.kind, p.default) for p in pa], name
    init_s = inspect.signature(sync.__init__).parameters
    init_a = inspect.signature(aio.__init__).parameters
    for p in list(init_s.values())[2:]:  # after self and the client: every option of the sync face, same default
        # (AsyncWormPaxos's apply may be left out when a core is given: the default may only be added)
        assert p.name in init_a, (async_name, p.name)
        assert p.default is inspect.Parameter.empty or init_a[p.name].default == p.default, (async_name, p.name)
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in init_a.values()), async_name
