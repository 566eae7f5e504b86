"""The pytest plugin (wormspace/testing.py), run with pytester on the example app of docs/testing.md: the
correct app passes over several seeds, the planted bug (a cached miss) is caught with its minimal illegal
sub-history and the seed to replay."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wormspace._contracts import CONTRACTS

pytest_plugins = ("pytester",)

# The plugin runs a user's tests with contracts on, and refuses a process that imported wormspace with them
# off (the pytester runs below share this process): with WORMSPACE_CONTRACTS=0 only the refusal is checked.
on_only = pytest.mark.skipif(not CONTRACTS, reason="contracts are off (WORMSPACE_CONTRACTS=0)")

DOC = Path(__file__).resolve().parent.parent / "docs" / "testing.md"


def _files() -> tuple[str, str]:
    app, test = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    return app, test


def _setup(pytester: pytest.Pytester, buggy: bool) -> None:
    app, test = _files()
    pytester.makepyfile(settings_store=app)
    pytester.makepyfile(test_settings_store=test.replace("BUGGY = False", f"BUGGY = {buggy}"))


@on_only
def test_the_correct_app_passes_over_seeds(pytester: pytest.Pytester) -> None:
    _setup(pytester, buggy=False)
    result = pytester.runpytest("--wormspace-seeds", "3", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


@on_only
def test_the_planted_bug_is_caught_with_its_minimal_history(pytester: pytest.Pytester) -> None:
    _setup(pytester, buggy=True)
    result = pytester.runpytest("--wormspace-seeds", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=2)  # the check runs at teardown: reported as an error there
    out = result.stdout.str()
    assert "the recorded history is ILLEGAL (seed 0" in out
    assert "minimal illegal sub-history" in out
    assert re.search(r"read \d+ -> EMPTY", out) or "EMPTY" in out
    assert "replay: pytest 'test_settings_store.py::test_readers_see_published_settings[seed1]'" in out


@on_only
def test_app_operations_are_reads_or_writes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from wormspace.errors import UsageError

        def test_bad_kind(wormspace_cluster):
            with pytest.raises(UsageError):
                with wormspace_cluster.operation("append", 0):
                    pass
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


@on_only
@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("acceptor=5", "unknown option(s) acceptor (the options are acceptors, wos_size, drop, duplicate, faults)"),
        ("5", "takes keyword options only"),
        ("drop=2.0", "drop must be a rate in [0, 1), got 2.0"),
        ("duplicate=-0.1", "duplicate must be a rate in [0, 1), got -0.1"),
        ("acceptors=0", "acceptors must be a positive int, got 0"),
        ("wos_size=0", "wos_size must be a positive int, got 0"),
        ("faults='yes'", "faults must be True or False, got 'yes'"),
    ],
)
def test_a_bad_marker_fails_the_test_saying_which_option(pytester: pytest.Pytester, marker: str, message: str) -> None:
    """A typo or an out-of-range option is named, never a TypeError from deep inside, never silently run."""
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.wormspace({marker})
        def test_it(wormspace_cluster):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert message in out
    assert "Traceback" not in out and "TypeError" not in out


@pytest.mark.skipif(CONTRACTS, reason="contracts are on")
def test_with_contracts_off_the_fixture_refuses_saying_why(pytester: pytest.Pytester) -> None:
    _setup(pytester, buggy=False)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*wormspace_cluster runs with contracts on, but WORMSPACE_CONTRACTS turned them off*"])
    assert result.ret != 0
