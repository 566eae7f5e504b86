"""Shared test configuration: the Hypothesis CI profile (derandomized, no deadline), asyncio's event loop
unless ``WORMSPACE_LOOP`` says otherwise, and every package module imported up front.

Why the imports: Hypothesis draws some of its values from the constants of the *local* modules loaded so
far (its "local constants" pool, extended whenever ``sys.modules`` grows). A package module first imported
by one test (``wormspace.apps``, ``wormspace.demo``, ...) would change what every later derandomized test
generates, so a test's examples -- and the counts it prints -- would depend on which tests ran before it.
With every module imported before the first test, the pool is the same whatever the order; it still
depends on which test files are collected.
"""

from __future__ import annotations

import importlib
import os
import pkgutil

from hypothesis import HealthCheck, settings

import wormspace

# The suite runs on asyncio's own event loop (the loop of a plain install) even where uvloop (the ``fast``
# extra, in the dev install) is importable; tests/test_event_loops.py repeats the real-process checks on both.
# Acceptor processes started by tests inherit the choice.
os.environ.setdefault("WORMSPACE_LOOP", "asyncio")

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def import_every_module() -> list[str]:
    """Import every module of the package (not ``__main__``, which runs the command); returns their names."""
    names = [m.name for m in pkgutil.walk_packages(wormspace.__path__, "wormspace.") if m.name != "wormspace.__main__"]
    for name in names:
        importlib.import_module(name)
    return names


import_every_module()
