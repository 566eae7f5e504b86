"""The ``log`` and ``kv`` verbs: the apps WormLog and WormKV against a real cluster.

``wormspace log append DATA | read POS | tail | trim UPTO --cluster FILE [--name N] [--json]``
``wormspace kv get KEY | put KEY VALUE | delete KEY | cas KEY EXPECTED NEW --cluster FILE [--name N] [--json]``

Arguments are taken as the bytes given on the command line (UTF-8 text, or any bytes: a key or value that
is not UTF-8 is kept as it is); ``-`` as DATA or VALUE reads the bytes from standard input (more than the
cluster's ``max_value`` is a usage error, found without reading the rest). ``log append``
uses WormLog's ``sticky`` policy by default (it takes the rest of the tail's segment, so a one-shot process
wastes no segment; ``--policy alloc`` wins a fresh one). ``--absent`` makes ``cas`` expect the key to be
absent (EXPECTED is then omitted). Output: ``append`` and ``tail`` print a position, ``read`` and ``get``
print the data (raw bytes and a newline), ``trim`` prints the new trim point; ``--json`` prints one object
instead (bytes as base64).

Exit codes: 0 done; 1 nothing there (``read`` of a junk-filled position, ``get`` of an absent key, a
``cas`` that did not swap); 2 a usage error; 3 the cluster answered an outcome (``Trimmed``,
``Unallocated``) or the operation is indeterminate (no quorum in time: it may or may not have happened); 4
an I/O error on this machine (e.g. standard output could not be written: the operation itself was done).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from typing import Any

from wormspace.errors import OperationFailed, UsageError


def _b64(b: bytes | None) -> str | None:
    return None if b is None else base64.b64encode(b).decode("ascii")


def _argv_bytes(text: str) -> bytes:
    """The bytes of a command-line argument as given: Python decodes argv with ``surrogateescape``, so an
    argument that is not UTF-8 holds lone surrogates that ``os.fsencode`` turns back into its bytes."""
    return os.fsencode(text)


def _arg_bytes(text: str, ws: Any) -> bytes:
    """The argument's bytes, or standard input's for ``-``: read up to one byte over the cluster's largest
    value, so an endless or huge input is refused without being held in memory."""
    if text != "-":
        return _argv_bytes(text)
    limit: int = ws.logic.max_value
    data: bytes = sys.stdin.buffer.read(limit + 1)
    if len(data) > limit:
        raise UsageError(f"standard input holds more than the cluster's largest value ({limit} bytes)")
    return data


def _emit(args: argparse.Namespace, obj: dict[str, Any], text: bytes | str | None) -> None:
    if args.json:
        print(json.dumps(obj))
    elif isinstance(text, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(text + b"\n")
        sys.stdout.buffer.flush()
    elif text is not None:
        print(text)


def _run(args: argparse.Namespace, body: Any) -> int:
    from wormspace.cluster import connect

    name = _argv_bytes(args.name)
    try:
        with connect(args.cluster) as ws:
            code: int = body(ws, name)
            return code
    except OperationFailed as e:
        print(f"wormspace {args.verb} {args.op}: {type(e).__name__}: {e}", file=sys.stderr)
        return 3


def cmd_log(args: argparse.Namespace) -> int:
    from wormspace.apps import WormLog

    def body(ws: Any, name: bytes) -> int:
        log = WormLog(ws, name=name, policy=getattr(args, "policy", "alloc"), hole_timeout=args.hole_timeout)
        if args.op == "append":
            pos = log.append(_arg_bytes(args.data, ws))
            _emit(args, {"position": pos}, str(pos))
        elif args.op == "read":
            value = log.read(args.position)
            _emit(args, {"position": args.position, "value": _b64(value), "junk": value is None}, value)
            if value is None and not args.json:
                print(f"position {args.position} holds junk", file=sys.stderr)
            return 1 if value is None else 0
        elif args.op == "tail":
            tail = log.tail()
            _emit(args, {"tail": tail}, str(tail))
        else:
            point = log.trim(args.upto)
            _emit(args, {"trimmed_below": point}, str(point))
        return 0

    return _run(args, body)


def cmd_kv(args: argparse.Namespace) -> int:
    from wormspace.apps import WormKV

    def body(ws: Any, name: bytes) -> int:
        kv = WormKV(ws, name=name, hole_timeout=args.hole_timeout)
        key = _argv_bytes(args.key)
        if args.op == "get":
            value = kv.get(key)
            _emit(args, {"key": _b64(key), "value": _b64(value)}, value)
            if value is None and not args.json:
                print(f"{args.key!r} is absent", file=sys.stderr)
            return 1 if value is None else 0
        if args.op == "put":
            kv.put(key, _arg_bytes(args.value, ws))
            _emit(args, {"key": _b64(key), "ok": True}, None)
        elif args.op == "delete":
            kv.delete(key)
            _emit(args, {"key": _b64(key), "ok": True}, None)
        else:
            if args.absent == (args.expected is not None):
                raise UsageError("cas takes KEY EXPECTED NEW, or KEY NEW with --absent")
            expected = None if args.absent else _argv_bytes(args.expected)
            swapped = kv.cas(key, expected, _arg_bytes(args.new, ws))
            _emit(args, {"key": _b64(key), "swapped": swapped}, "swapped" if swapped else "not swapped")
            return 0 if swapped else 1
        return 0

    return _run(args, body)


def _common(p: argparse.ArgumentParser, default_name: str) -> None:
    p.add_argument("--cluster", required=True, metavar="FILE", help="the cluster file (cluster.toml)")
    p.add_argument("--name", default=default_name, help=f"the app's name (default {default_name!r})")
    p.add_argument("--hole-timeout", type=float, default=0.5, help="seconds to wait on a hole before junk")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _position(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a position: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a position is non-negative, got {value}")
    return value


def add_parser(sub: Any) -> None:
    log = sub.add_parser("log", help="append to / read a WormLog on a real cluster")
    log_ops = log.add_subparsers(dest="op", metavar="OP")
    log_ops.required = True
    p = log_ops.add_parser("append", help="append DATA; prints its position")
    p.add_argument("data", help="the data (text; '-' reads stdin)")
    p.add_argument("--policy", choices=("sticky", "alloc"), default="sticky",
                   help="sticky (default): take the rest of the tail's segment; alloc: win a fresh segment")
    _common(p, "log")
    p = log_ops.add_parser("read", help="print the data at POS (exit 1: junk)")
    p.add_argument("position", type=_position)
    _common(p, "log")
    p = log_ops.add_parser("tail", help="print the tail: every position below it holds an entry")
    _common(p, "log")
    p = log_ops.add_parser("trim", help="trim the whole segments below UPTO")
    p.add_argument("upto", type=_position)
    _common(p, "log")
    log.set_defaults(func=cmd_log)

    kv = sub.add_parser("kv", help="get / put / delete / cas in a WormKV on a real cluster")
    kv_ops = kv.add_subparsers(dest="op", metavar="OP")
    kv_ops.required = True
    p = kv_ops.add_parser("get", help="print KEY's value (exit 1: absent)")
    p.add_argument("key")
    _common(p, "kv")
    p = kv_ops.add_parser("put", help="set KEY to VALUE")
    p.add_argument("key")
    p.add_argument("value", help="the value (text; '-' reads stdin)")
    _common(p, "kv")
    p = kv_ops.add_parser("delete", help="remove KEY")
    p.add_argument("key")
    _common(p, "kv")
    p = kv_ops.add_parser("cas", help="set KEY to NEW iff it holds EXPECTED (exit 1: not swapped)")
    p.add_argument("key")
    p.add_argument("expected", nargs="?", help="the value expected (omit with --absent)")
    p.add_argument("new", help="the new value (text; '-' reads stdin)")
    p.add_argument("--absent", action="store_true", help="expect KEY to be absent")
    _common(p, "kv")
    kv.set_defaults(func=cmd_kv)
