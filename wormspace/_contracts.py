"""Contracts switch: icontract conditions are on unless ``WORMSPACE_CONTRACTS=0``.

Every ``@require``/``@ensure`` in the package goes through these wrappers so one environment variable turns
them all off for benchmarks and production (they cost ~18 µs a call when on, ~1 µs off).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import icontract

from wormspace.errors import ContractViolation

CONTRACTS: bool = os.environ.get("WORMSPACE_CONTRACTS", "1") not in ("0", "false", "no", "off")

F = TypeVar("F", bound=Callable[..., Any])


def require(
    condition: Callable[..., Any], description: str | None = None, *, error: type[Exception] | None = None
) -> Callable[[F], F]:
    """A precondition, enabled by ``WORMSPACE_CONTRACTS``; ``error`` picks the exception (API: UsageError;
    by default ``ContractViolation``, so a breach inside a core never escapes as ``icontract.ViolationError``)."""
    return icontract.require(
        condition, description, enabled=CONTRACTS, error=ContractViolation if error is None else error
    )


def ensure(
    condition: Callable[..., Any],
    description: str | None = None,
    *,
    error: type[Exception] = ContractViolation,
) -> Callable[[F], F]:
    """A postcondition, enabled by ``WORMSPACE_CONTRACTS``; a breach raises ``error`` (by default
    ``wormspace.errors.ContractViolation``, never a bare ``icontract.ViolationError``)."""
    return icontract.ensure(condition, description, enabled=CONTRACTS, error=error)
