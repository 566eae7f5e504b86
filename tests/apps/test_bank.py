"""The bank: transfers as WormTX transactions over 3 shards; its invariant after every simulated run."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from wormspace import Cluster, UsageError
from wormspace.apps.bank import Bank, BankLogic, check_bank
from wormspace.client import SpaceLogic
from wormspace.demo import run_bank
from wormspace.layers.network import Faults


def test_transfers_move_money_and_refuse_overdrafts() -> None:
    cluster = Cluster.simulated(acceptors=3, seed=2)
    bank = Bank.create(cluster.client(), accounts=4, opening=50)
    assert bank.transfer(0, 1, 20) is True
    assert bank.transfer(0, 3, 40) is False  # 30 left
    assert bank.transfer(1, 2, 70) is True
    assert [bank.balance(a) for a in range(4)] == [30, 0, 120, 50]
    assert check_bank(bank.audit(), 50, bank.core.outcomes) == []
    with pytest.raises(UsageError):
        bank.transfer(1, 1, 5)
    with pytest.raises(UsageError):
        bank.transfer(0, 9, 5)


@pytest.mark.parametrize("seed", range(1, 7))
def test_concurrent_transfers_under_faults_keep_the_money(seed: int) -> None:
    summary = run_bank(seed)
    assert summary["problems"] == [] and summary["failures"] == []
    assert summary["total"] == summary["opening_total"]
    assert summary["committed"] > 0


def _crash_after(steps: int, gen: Generator[Any, Any, Any]) -> Generator[Any, Any, None]:
    """Forward ``steps`` requests of ``gen``, then stop: a client that crashes mid-transfer."""
    out = None
    for _ in range(steps):
        try:
            req = gen.send(out)
        except StopIteration:
            return
        out = yield req


@pytest.mark.parametrize("steps", [3, 6, 9, 12, 15, 18])
def test_a_crashed_transfer_blocks_nobody(steps: int) -> None:
    cluster = Cluster.simulated(acceptors=3, seed=steps, faults=Faults(drop=0.05))
    bank = Bank.create(cluster.client(), accounts=3, opening=100)
    cores: list[BankLogic] = []

    def crashing(logic: SpaceLogic) -> Generator[Any, Any, None]:
        core = BankLogic(logic, bank.layout)
        yield from _crash_after(steps, core.transfer(0, 1, 10))

    def later(logic: SpaceLogic) -> Generator[Any, Any, None]:
        core = BankLogic(logic, bank.layout)
        cores.append(core)
        for _ in range(3):
            assert (yield from core.transfer(1, 0, 5)) is True
            assert (yield from core.transfer(0, 2, 5)) is True

    cluster.spawn(crashing)
    cluster.spawn(later, at=0.05)
    cluster.run()
    assert cluster.failures == []
    audit = bank.audit()
    assert check_bank(audit, 100, cores[0].outcomes) == []
    assert audit[2][0] == 115


@pytest.mark.slow
def test_bank_on_a_real_cluster() -> None:
    with Cluster.local(acceptors=3, wos_size=256, record=False) as cluster:
        bank = Bank.create(cluster.client(), accounts=6, opening=100)
        other = Bank(cluster.client(), bank.layout)
        for k in range(6):
            assert (bank if k % 2 else other).transfer(k, (k + 1) % 6, 10 + k) is True
        outcomes = {**bank.core.outcomes, **other.core.outcomes}
        assert check_bank(Bank(cluster.client(), bank.layout).audit(), 100, outcomes) == []
