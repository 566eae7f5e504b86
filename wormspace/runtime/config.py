"""The cluster file (``cluster.toml``): reading, checking and writing it.

The file names every acceptor and the knobs every node must agree on::

    cluster_id = "5f0c..."     # required: this cluster's id (8-64 of [0-9A-Za-z_-]; `cluster up` makes one)
    wos_size = 1024            # data registers per segment
    groups = 1                 # acceptor groups; segment s lives on group s mod groups
    max_value = 1048576        # largest register value, bytes
    auth_key_file = "auth.key" # optional: shared secret; every frame then carries an HMAC

    [[acceptors]]
    id = 0
    host = "10.0.0.1"
    port = 7400
    data_dir = "/var/lib/wormspace"

Relative paths are relative to the file's directory. Groups are contiguous blocks of the acceptors in id
order (with 6 acceptors and 2 groups: ``{0,1,2}`` and ``{3,4,5}``), as in the simulator.

Rules:

1. A cluster file is checked whole when it is read: an unknown key, a wrong type, a duplicate id or address,
   or a bad number is a ``UsageError`` naming the file and the problem. Nothing half-read is used.
2. ``write_config`` writes atomically (a temporary file, then a rename); ``load_config(write_config(c))``
   gives ``c`` back.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wormspace.errors import UsageError
from wormspace.identity import check_cluster_id
from wormspace.layers.messages import MAX_INDEX, MAX_VALUE
from wormspace.runtime.auth import load_auth_key

DEFAULT_WOS_SIZE = 1024
CONFIG_NAME = "cluster.toml"



@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptorConfig:
    """One acceptor: its id, the address it listens on, and its data directory."""

    id: int
    host: str
    port: int
    data_dir: str

    def __post_init__(self) -> None:
        if type(self.id) is not int or not 0 <= self.id < 1 << 31:
            raise UsageError(f"acceptor id must be an int in [0, 2**31), got {self.id!r}")
        if type(self.host) is not str or not self.host or any(c.isspace() for c in self.host):
            raise UsageError(f"acceptor {self.id}: host must be a non-empty name or address, got {self.host!r}")
        if type(self.port) is not int or not 1 <= self.port <= 65535:
            raise UsageError(f"acceptor {self.id}: port must be an int in [1, 65535], got {self.port!r}")
        if type(self.data_dir) is not str or not self.data_dir:
            raise UsageError(f"acceptor {self.id}: data_dir must be a non-empty path")

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterConfig:
    """A whole cluster (see the module docstring for the file format)."""

    acceptors: tuple[AcceptorConfig, ...]
    cluster_id: str
    wos_size: int = DEFAULT_WOS_SIZE
    groups: int = 1
    auth_key_file: str | None = None
    max_value: int = MAX_VALUE

    def __post_init__(self) -> None:
        check_cluster_id(self.cluster_id)
        if type(self.acceptors) is not tuple or not self.acceptors:
            raise UsageError("a cluster needs at least one acceptor")
        if not all(isinstance(a, AcceptorConfig) for a in self.acceptors):
            raise UsageError("acceptors must be AcceptorConfig entries")
        ids = [a.id for a in self.acceptors]
        if len(set(ids)) != len(ids):
            raise UsageError(f"acceptor ids must be unique, got {sorted(ids)}")
        addrs = [a.address for a in self.acceptors]
        if len(set(addrs)) != len(addrs):
            raise UsageError("two acceptors share one host:port")
        dirs = [a.data_dir for a in self.acceptors]
        if len(set(dirs)) != len(dirs):
            raise UsageError("two acceptors share one data_dir")
        if type(self.wos_size) is not int or not 1 <= self.wos_size <= MAX_INDEX:
            raise UsageError(f"wos_size must be an int in [1, {MAX_INDEX}], got {self.wos_size!r}")
        n = len(self.acceptors)
        if type(self.groups) is not int or self.groups < 1 or n % self.groups:
            raise UsageError(f"groups must be a positive int dividing the {n} acceptors, got {self.groups!r}")
        if self.auth_key_file is not None and (type(self.auth_key_file) is not str or not self.auth_key_file):
            raise UsageError("auth_key_file must be a non-empty path")
        if type(self.max_value) is not int or not 1 <= self.max_value <= MAX_VALUE:
            raise UsageError(f"max_value must be an int in [1, {MAX_VALUE}], got {self.max_value!r}")

    def acceptor(self, acceptor_id: int) -> AcceptorConfig:
        for a in self.acceptors:
            if a.id == acceptor_id:
                return a
        raise UsageError(f"no acceptor {acceptor_id} in the cluster (ids: {sorted(self.ids)})")

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(sorted(a.id for a in self.acceptors))

    def addresses(self) -> dict[int, tuple[str, int]]:
        return {a.id: a.address for a in self.acceptors}

    def acceptor_groups(self) -> list[list[int]]:
        """Contiguous blocks of the acceptor ids in order; segment ``s`` lives on block ``s % groups``."""
        ids = self.ids
        per = len(ids) // self.groups
        return [list(ids[g * per : (g + 1) * per]) for g in range(self.groups)]

    def auth_key(self) -> bytes | None:
        return None if self.auth_key_file is None else load_auth_key(self.auth_key_file)


_TOP_KEYS = {"acceptors", "cluster_id", "wos_size", "groups", "auth_key_file", "max_value"}
_ACCEPTOR_KEYS = {"id", "host", "port", "data_dir"}


def _resolve(base: Path, p: str) -> str:
    path = Path(p).expanduser()
    return str(path if path.is_absolute() else (base / path))


def load_config(path: str | os.PathLike[str]) -> ClusterConfig:
    """Read and check a cluster file; relative paths in it are resolved against its directory."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise UsageError(f"{p}: no such cluster file") from None
    except OSError as e:
        raise UsageError(f"{p}: cannot read the cluster file: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{p}: not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{p}: not valid TOML: not UTF-8") from None
    try:
        return _parse_config(raw, p.resolve().parent)
    except UsageError as e:
        raise UsageError(f"{p}: {e}") from None


def _parse_config(raw: dict[str, Any], base: Path) -> ClusterConfig:
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise UsageError(f"unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(_TOP_KEYS))})")
    if "cluster_id" not in raw:
        raise UsageError(
            "no cluster_id: every cluster file names its cluster since acceptors carry an identity; add a line"
            ' cluster_id = "..." with a fresh random id (python -c "import secrets; print(secrets.token_hex(16))")'
            " and initialise the acceptors as docs/deployment.md describes"
        )
    check_cluster_id(raw["cluster_id"])
    entries = raw.get("acceptors")
    if type(entries) is not list or not entries:
        raise UsageError("needs at least one [[acceptors]] table")
    acceptors = []
    for n, e in enumerate(entries):
        if type(e) is not dict:
            raise UsageError(f"acceptors[{n}] must be a table")
        bad = set(e) - _ACCEPTOR_KEYS
        if bad:
            raise UsageError(f"acceptors[{n}]: unknown key(s) {', '.join(sorted(bad))}")
        missing = _ACCEPTOR_KEYS - set(e)
        if missing:
            raise UsageError(f"acceptors[{n}]: missing key(s) {', '.join(sorted(missing))}")
        data_dir = e["data_dir"]
        if type(data_dir) is not str or not data_dir:
            raise UsageError(f"acceptors[{n}]: data_dir must be a non-empty string")
        acceptors.append(AcceptorConfig(id=e["id"], host=e["host"], port=e["port"], data_dir=_resolve(base, data_dir)))
    key_file = raw.get("auth_key_file")
    if key_file is not None:
        if type(key_file) is not str or not key_file:
            raise UsageError("auth_key_file must be a non-empty string")
        key_file = _resolve(base, key_file)
    return ClusterConfig(
        acceptors=tuple(acceptors),
        cluster_id=raw["cluster_id"],
        wos_size=raw.get("wos_size", DEFAULT_WOS_SIZE),
        groups=raw.get("groups", 1),
        auth_key_file=key_file,
        max_value=raw.get("max_value", MAX_VALUE),
    )


def _toml_str(s: str) -> str:
    out = ['"']
    for c in s:
        o = ord(c)
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{o:04X}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def config_text(cfg: ClusterConfig) -> str:
    """The cluster file for ``cfg`` (what ``write_config`` writes)."""
    lines = [
        "# WormSpace cluster file: every acceptor and client of the cluster reads this.",
        f"cluster_id = {_toml_str(cfg.cluster_id)}",
        f"wos_size = {cfg.wos_size}",
        f"groups = {cfg.groups}",
        f"max_value = {cfg.max_value}",
    ]
    if cfg.auth_key_file is not None:
        lines.append(f"auth_key_file = {_toml_str(cfg.auth_key_file)}")
    for a in cfg.acceptors:
        lines += [
            "",
            "[[acceptors]]",
            f"id = {a.id}",
            f"host = {_toml_str(a.host)}",
            f"port = {a.port}",
            f"data_dir = {_toml_str(a.data_dir)}",
        ]
    return "\n".join(lines) + "\n"


def write_config(cfg: ClusterConfig, path: str | os.PathLike[str]) -> None:
    """Write ``cfg`` to ``path`` atomically (write a temporary file, then rename)."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(config_text(cfg), encoding="utf-8")
    os.replace(tmp, p)
