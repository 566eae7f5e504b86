"""Contracts of the client API: declared preconditions reject bad input with ``UsageError`` (contracts on and
off), planted postcondition breaches surface as ``ContractViolation``, and ``icontract.ViolationError`` never
escapes to a user."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import subprocess
import sys
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import icontract
import pytest
from icontract import _checkers

from wormspace import EMPTY, CaptureId, Cluster, ContractViolation, UsageError, WormSpace
from wormspace._contracts import CONTRACTS
from wormspace.aio import AsyncClient
from wormspace.layers import wos
from wormspace.layers.messages import Ballot
from wormspace.layers.wor import OpRequest, Outcome
from wormspace.layers.wormspace import SpaceLogic
from wormspace.layers.wos import SegmentLogic, WosSpec, kept_written, wos_invariant

WOS = 8
B = Ballot(5, 0)
ROOT = Path(__file__).resolve().parents[2]
on_only = pytest.mark.skipif(not CONTRACTS, reason="contracts are off (WORMSPACE_CONTRACTS=0)")

#: (name, call on a sync client, expected message fragment). Every declared precondition of the client API.
BAD_INPUTS: list[tuple[str, Callable[[WormSpace], object], str]] = [
    ("alloc segment", lambda ws: ws.alloc(segment=-1), "a segment is a non-negative int, got -1"),
    ("alloc metadata", lambda ws: ws.alloc("m", segment=1), "data must be bytes, got str"),  # type: ignore[call-overload]
    ("alloc_any metadata", lambda ws: ws.alloc(b"x" * 2 * 10**6), "over the limit of"),
    ("check segment", lambda ws: ws.check("1"), "a segment is a non-negative int, got '1'"),  # type: ignore[arg-type]
    ("trim segment", lambda ws: ws.trim(-3), "a segment is a non-negative int, got -3"),
    ("capture address", lambda ws: ws.capture(-1), "an address is a non-negative int, got -1"),
    ("batch_capture range", lambda ws: ws.batch_capture(1, 3, 2), "need 0 <= start < end <= wos_size (8)"),
    ("batch_capture segment", lambda ws: ws.batch_capture(True), "a segment is a non-negative int, got True"),
    ("write address", lambda ws: ws.write(-2, b"x", _cap()), "an address is a non-negative int, got -2"),
    ("write data", lambda ws: ws.write(8, "x", _cap()), "data must be bytes, got str"),  # type: ignore[arg-type]
    ("write capture", lambda ws: ws.write(8, b"x", None), "capture must be a CaptureId, got NoneType"),  # type: ignore[arg-type]
    ("write uncovered", lambda ws: ws.write(9, b"x", _cap()), "the capture does not cover address 9"),
    ("batch_write segment", lambda ws: ws.batch_write(-1, {0: b"x"}, _cap()), "a segment is a non-negative int"),
    ("batch_write capture", lambda ws: ws.batch_write(1, {0: b"x"}, "c"), "capture must be a CaptureId, got str"),  # type: ignore[arg-type]
    ("batch_write empty", lambda ws: ws.batch_write(1, {}, _cap()), "batch_write needs a non-empty mapping"),
    (
        "batch_write offset",
        lambda ws: ws.batch_write(1, {8: b"x"}, _cap()),
        "offset 8 is not in the segment: valid offsets are 0..7",
    ),
    ("read address", lambda ws: ws.read(1.5), "an address is a non-negative int, got 1.5"),  # type: ignore[arg-type]
    ("batch_read range", lambda ws: ws.batch_read(1, 0, 9), "need 0 <= start < end <= wos_size (8)"),
    ("address offset", lambda ws: ws.address(1, 8), "offset 8 is not in the segment: valid offsets are 0..7"),
    ("split address", lambda ws: ws.split(-1), "an address is a non-negative int, got -1"),
    ("alloc segment too large", lambda ws: ws.alloc(segment=2**63), "a segment is at most 9223372036854775807"),
    ("read beyond the last segment", lambda ws: ws.read(2**63 * WOS), "beyond the last segment 9223372036854775807"),
]


def _cap() -> CaptureId:
    """A capture of offset 0 of segment 1 (never used to write: every call using it is rejected first)."""
    return CaptureId(segment=1, start=0, end=1, ballot=B)


def check_bad_inputs() -> list[str]:
    """Run every bad input on a fresh simulated client; return the names of those not rejected as expected
    (empty when all are). Also run by a subprocess with ``WORMSPACE_CONTRACTS=0``."""
    ws = Cluster.simulated(acceptors=3, seed=5, wos_size=WOS).client()
    failures = []
    for name, call, fragment in BAD_INPUTS:
        try:
            call(ws)
        except UsageError as e:
            if fragment not in str(e):
                failures.append(f"{name}: message {e}")
        except BaseException as e:
            failures.append(f"{name}: {type(e).__name__}: {e}")
        else:
            failures.append(f"{name}: accepted")
    return failures


def test_capture_fixture_matches_the_capture_type() -> None:
    cap = _cap()
    assert cap.covers(1, 0) and not cap.covers(1, 1)


@pytest.mark.parametrize("name,call,fragment", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_each_precondition_rejects_bad_input_with_usage_error(
    name: str, call: Callable[[WormSpace], object], fragment: str
) -> None:
    ws = Cluster.simulated(acceptors=3, seed=5, wos_size=WOS).client()
    with pytest.raises(UsageError) as info:
        call(ws)
    assert fragment in str(info.value)
    assert not isinstance(info.value, icontract.ViolationError)


@pytest.mark.parametrize("contracts", ["0", "1"])
def test_bad_input_is_rejected_alike_with_contracts_on_and_off(contracts: str) -> None:
    env = {**os.environ, "WORMSPACE_CONTRACTS": contracts}
    code = (
        "import sys\nfrom wormspace._contracts import CONTRACTS\n"
        "from tests.layers.test_api_contracts import check_bad_inputs\n"
        f"assert CONTRACTS is {contracts == '1'}\n"
        "f = check_bad_inputs()\nprint(f)\nsys.exit(1 if f else 0)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


GENERATOR_METHODS: list[tuple[str, tuple[Any, ...]]] = [
    ("alloc", (-1,)),
    ("alloc_any", ("m",)),
    ("check", (-1,)),
    ("trim", (-1,)),
    ("capture", (-1,)),
    ("batch_capture", (1, 5, 2)),
    ("write", (8, b"x", None)),
    ("batch_write", (1, {0: b"x"}, None)),
    ("read", (-1,)),
    ("batch_read", (-1,)),
]


@on_only
@pytest.mark.parametrize("method,args", GENERATOR_METHODS, ids=[m for m, _ in GENERATOR_METHODS])
def test_generator_preconditions_are_declared_and_fire_at_call_time(method: str, args: tuple[Any, ...]) -> None:
    logic = SpaceLogic(wos_size=WOS)
    checker = _checkers.find_checker(getattr(SpaceLogic, method))
    assert checker is not None
    pre = [c for group in getattr(checker, "__preconditions__", []) for c in group]
    assert pre and all(c.error is UsageError for c in pre)
    with pytest.raises(UsageError):
        getattr(logic, method)(*args)  # no next(): the precondition rejects the call itself


def _contract_errors(fn: Callable[..., Any]) -> list[object]:
    checker = _checkers.find_checker(fn)
    if checker is None:
        return []
    pre = [c for group in getattr(checker, "__preconditions__", []) for c in group]
    post = list(getattr(checker, "__postconditions__", []))
    return [c.error for c in pre + post]


@on_only
def test_no_contract_of_the_runtime_raises_a_bare_violation_error() -> None:
    """Every icontract condition on a shipped layer names its error (UsageError or ContractViolation)."""
    names = [
        "wormspace.aio",
        "wormspace.layers.wormspace",
        "wormspace.layers.wos",
        "wormspace.layers.wor",
        "wormspace.layers.acceptor",
        "wormspace.layers.coalesce",
        "wormspace.layers.network",
    ]
    seen = 0
    for name in names:
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module):
            candidates = [obj]
            if inspect.isclass(obj) and obj.__module__ == name:
                candidates += [m for _, m in inspect.getmembers(obj) if callable(m)]
            for fn in candidates:
                if not callable(fn):
                    continue
                for error in _contract_errors(fn):
                    seen += 1
                    assert error in (UsageError, ContractViolation), (name, fn, error)
    assert seen >= 30


# ---- planted postcondition breaches (mutants), reported as ContractViolation ----------------------------------


def _returns(value: object) -> Callable[..., Generator[OpRequest, Outcome, Any]]:
    """A mutant generator method: sends nothing and returns ``value``."""

    def gen(*args: object, **kwargs: object) -> Generator[OpRequest, Outcome, Any]:
        yield from ()  # a generator that sends nothing
        return value

    return gen


MUTANTS: list[tuple[str, object, Callable[[WormSpace], object]]] = [
    ("alloc_any", -1, lambda ws: ws.alloc(b"")),
    ("alloc_any", True, lambda ws: ws.alloc(b"")),
    ("alloc", 1, lambda ws: ws.alloc(b"", segment=2)),
    ("check", "meta", lambda ws: ws.check(1)),
    ("capture", CaptureId(segment=1, start=0, end=1, ballot=B), lambda ws: ws.capture(WOS * 3)),
    ("batch_capture", CaptureId(segment=2, start=4, end=8, ballot=B), lambda ws: ws.batch_capture(2, 0, 4)),
    (
        "batch_write",
        {0: None},
        lambda ws: ws.batch_write(1, {0: b"x", 1: b"y"}, CaptureId(segment=1, start=0, end=8, ballot=B)),
    ),
    (
        "batch_write",
        {0: None, 1: None, 2: None},
        lambda ws: ws.batch_write(1, {0: b"x", 1: b"y"}, CaptureId(segment=1, start=0, end=8, ballot=B)),
    ),
    ("read", "x", lambda ws: ws.read(1)),
    ("read", None, lambda ws: ws.read(1)),
    ("batch_read", {0: EMPTY}, lambda ws: ws.batch_read(1, 0, 2)),
    ("batch_read", {0: EMPTY, 1: 7}, lambda ws: ws.batch_read(1, 0, 2)),
]


@pytest.fixture(params=range(len(MUTANTS)), ids=[f"{m}-{i}" for i, (m, _, _) in enumerate(MUTANTS)])
def mutant_client(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> tuple[WormSpace, Callable[[WormSpace], object]]:
    """A sync client whose logic has one method planted to break the client's postcondition."""
    method, value, call = MUTANTS[request.param]
    ws = Cluster.simulated(acceptors=3, seed=5, wos_size=WOS).client()
    monkeypatch.setattr(ws.logic, method, _returns(value))
    return ws, call


@on_only
def test_a_planted_postcondition_breach_is_a_contract_violation(
    mutant_client: tuple[WormSpace, Callable[[WormSpace], object]],
) -> None:
    ws, call = mutant_client
    with pytest.raises(ContractViolation) as info:
        call(ws)
    assert not isinstance(info.value, icontract.ViolationError)


@on_only
def test_a_planted_address_breach_is_a_contract_violation(monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Cluster.simulated(acceptors=3, seed=5, wos_size=WOS).client()
    assert ws.address(2, 3) == 2 * WOS + 3
    monkeypatch.setattr(ws.logic, "address", lambda segment, offset: segment * WOS + offset + 1)
    with pytest.raises(ContractViolation):
        ws.address(2, 3)
    monkeypatch.setattr(ws.logic, "address", lambda segment, offset: -1)
    with pytest.raises(ContractViolation):
        ws.address(0, 0)
    monkeypatch.setattr(ws.logic, "split", lambda address: (address // WOS, address % WOS + 1))
    with pytest.raises(ContractViolation):  # split inverts address
        ws.split(3)
    monkeypatch.setattr(ws.logic, "split", lambda address: (0, address))
    with pytest.raises(ContractViolation):  # the offset lies in the segment
        ws.split(WOS + 1)


@on_only
@pytest.mark.parametrize("method,value", [("alloc_any", -4), ("read", "x"), ("batch_write", {})])
def test_a_planted_breach_on_the_async_client_is_a_contract_violation(
    method: str, value: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    logic = SpaceLogic(wos_size=WOS)
    monkeypatch.setattr(logic, method, _returns(value))
    client = AsyncClient(logic, driver=None)  # type: ignore[arg-type]  # the mutants send nothing
    calls: dict[str, Callable[[], Any]] = {
        "alloc_any": lambda: client.alloc(b""),
        "read": lambda: client.read(3),
        "batch_write": lambda: client.batch_write(1, {0: b"x"}, CaptureId(segment=1, start=0, end=8, ballot=B)),
    }
    with pytest.raises(ContractViolation):
        asyncio.run(calls[method]())


def test_the_unplanted_clients_keep_their_postconditions() -> None:
    """The same calls as the mutants, on an honest client: every postcondition holds."""
    ws = Cluster.simulated(acceptors=3, seed=5, wos_size=WOS).client()
    seg = ws.alloc(b"m")
    assert type(seg) is int and seg >= 0
    assert ws.alloc(b"", segment=seg) is False and ws.check(seg) == b"m"
    cap = ws.batch_capture(seg)
    res = ws.batch_write(seg, {0: b"x", 1: b"y"}, cap)
    assert res == {0: None, 1: None}
    assert ws.read(ws.address(seg, 0)) == b"x" and ws.read(ws.address(seg, 2)) is EMPTY
    assert ws.batch_read(seg, 0, 3) == {0: b"x", 1: b"y", 2: EMPTY}
    assert ws.capture(ws.address(seg, 5)).covers(seg, 5)


# ---- the WOS layer: its invariant and immutability as contracts of WosSpec, SegmentLogic's preconditions ------


def test_the_wos_invariant_and_immutability_judge_states() -> None:
    assert wos_invariant(WosSpec(b"m", False, ((0, b"a"), (3, b"b"))))
    assert not wos_invariant(WosSpec(b"m", True, ((0, b"a"),)))  # a trimmed segment holds no data
    assert not wos_invariant(WosSpec(b"m", False, ((3, b"a"), (0, b"b"))))  # unsorted
    assert not wos_invariant(WosSpec(b"m", False, ((0, b"a"), (0, b"b"))))  # two values for one offset
    before = WosSpec(b"m", False, ((0, b"a"),))
    assert kept_written(before, WosSpec(b"m", False, ((0, b"a"), (1, b"b"))))
    assert not kept_written(before, WosSpec(b"m", False, ((0, b"z"),)))
    assert kept_written(before, WosSpec(b"m", True, ()))


class _OverwritingRegister:
    """A planted bug in the register spec under ``WosSpec``: a write always replaces the value."""

    def __init__(self, value: bytes | None) -> None:
        self.value = value

    def write(self, value: bytes) -> tuple[_OverwritingRegister, None]:
        return _OverwritingRegister(value), None


@on_only
def test_a_planted_overwrite_in_the_segment_spec_is_a_contract_violation(monkeypatch: pytest.MonkeyPatch) -> None:
    spec, _ = WosSpec().alloc(b"m")
    spec, r = spec.write(0, b"a")
    assert r is None
    monkeypatch.setattr(wos, "WorSpec", _OverwritingRegister)
    with pytest.raises(ContractViolation, match="a written offset never changes"):
        spec.write(0, b"b")


@on_only
@pytest.mark.parametrize(
    "call",
    [
        lambda seg: seg.capture(1, 3, 3),
        lambda seg: seg.capture(1, 0, WOS + 1),
        lambda seg: seg.read(1, (WOS,)),
        lambda seg: seg.write(1, {}, CaptureId(segment=1, start=0, end=8, ballot=B)),
        lambda seg: seg.write(1, {2: b"x"}, CaptureId(segment=1, start=0, end=2, ballot=B)),
    ],
    ids=["empty-range", "past-end", "read-offset", "write-empty", "write-uncovered"],
)
def test_segment_logic_preconditions_reject_at_call_time(call: Callable[[SegmentLogic], object]) -> None:
    with pytest.raises(UsageError):
        call(SegmentLogic(wos_size=WOS))
