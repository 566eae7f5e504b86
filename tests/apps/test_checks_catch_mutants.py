"""Planted bugs in the apps (patched in for one test each, never in shipped code), each caught by the checks
the app tests use: a log that hands one position to two appends, a replica that applies out of order, a
KV cas that ignores ``expected``, a KV get that does not sync first, and a real-time order check fed an
out-of-order history."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Any

import pytest

from wormspace.apps.kv import NO, YES, KvCore, _unfield
from wormspace.apps.log import LogCore
from wormspace.apps.paxos import PaxosCore
from wormspace.client import AlreadyWritten, CaptureStale, OpGen, SpaceLogic

from .helpers import (
    kv_sequential_problems,
    log_problems,
    log_scenario,
    real_time_order_violations,
    smr_problems,
    smr_scenario,
)


def test_a_log_that_hands_one_position_to_two_appends_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    locate = LogCore.locate

    def everyone_wins(self: LogCore, logic: SpaceLogic, index: int, create: bool = False,
                      fresh: bool = False) -> OpGen[Any]:
        seg, won = yield from locate(self, logic, index, create, fresh)
        return seg, won or (create and seg is not None)  # BUG 1: every appender thinks it won the segment

    def write(self: LogCore, logic: SpaceLogic, frame: bytes) -> OpGen[int]:
        index, off, cap = yield from self._claim(logic)
        with contextlib.suppress(CaptureStale, AlreadyWritten):  # BUG 2: a lost position reported as ours
            yield from logic.write(cap.segment * logic.wos_size + off, frame, cap)
        return index * logic.wos_size + off

    monkeypatch.setattr(LogCore, "locate", everyone_wins)
    monkeypatch.setattr(LogCore, "_write", write)
    got, entries, _ = log_scenario(1)
    assert "a position was given to two appends" in log_problems(got, entries)


def test_a_replica_that_applies_out_of_order_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    def sync(self: PaxosCore, logic: SpaceLogic, until: int | None = None) -> Generator[Any, Any, int]:
        n = 0
        while True:
            frames, _, done = yield from self.log.scan(logic, self.applied)
            for pos, frame in reversed(frames):  # BUG: the last command of the batch first
                self._apply_at(pos, frame)
                n += 1
            self.applied = max([self.applied, *(p + 1 for p, _ in frames)])
            if done or (until is not None and self.applied > until):
                return n

    monkeypatch.setattr(PaxosCore, "_sync", sync)
    caught = [smr_problems(*smr_scenario("sticky", seed)[:3]) != [] for seed in (1, 2)]
    assert any(caught)


def test_a_cas_that_ignores_expected_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    apply = KvCore.apply

    def broken(self: KvCore, cmd: bytes) -> bytes:
        if cmd[:1] == b"C":  # BUG: swap whatever the value is
            key, i = _unfield(cmd, 1)
            _, i = _unfield(cmd, i)
            new, _ = _unfield(cmd, i)
            assert key is not None and new is not None
            self.data[key] = new
            return YES
        return apply(self, cmd)

    monkeypatch.setattr(KvCore, "apply", broken)
    assert kv_sequential_problems(1) != []
    assert NO == b"0"


def test_the_real_time_order_check_sees_a_later_op_at_a_lower_position() -> None:
    def ev(process: int, type_: str, time: int, key: int | None) -> dict[str, Any]:
        return {"process": process, "type": type_, "f": "submit", "key": key, "value": None, "time": time}

    events = [ev(0, "invoke", 0, None), ev(0, "ok", 10, 5), ev(1, "invoke", 20, None), ev(1, "ok", 30, 4)]
    assert real_time_order_violations(events) == [(5, 4)]
    events[3]["key"] = 6
    assert real_time_order_violations(events) == []


def test_a_get_that_answers_without_syncing_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    def stale(self: KvCore, logic: SpaceLogic, key: bytes) -> OpGen[bytes | None]:
        yield from ()  # BUG: answers from this replica's state, without syncing to the log's tail
        return self.data.get(key)

    monkeypatch.setattr(KvCore, "_get", stale)
    assert kv_sequential_problems(1) != []
