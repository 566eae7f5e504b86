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


@on_only
def test_a_spawned_process_that_raises_fails_the_test(pytester: pytest.Pytester) -> None:
    """An app core run with ``spawn`` that ends with an exception is a failing app, whether or not the test
    called ``run()`` (it used to pass silently, the exception kept in ``cluster.failures``)."""
    pytester.makepyfile(
        """
        def core(logic):
            yield from logic.sleep(0.01)
            raise ValueError("app invariant broken")

        def test_run_in_the_test(wormspace_cluster):
            wormspace_cluster.spawn(core)
            wormspace_cluster.run()
            raise AssertionError("not reached: run() reports the failure")

        def test_left_to_teardown(wormspace_cluster):
            wormspace_cluster.spawn(core)
        """
    )
    # -rN: no short summary, whose lines are cut to the terminal's width except under CI (CI set), so the
    # count below would depend on where it runs.
    result = pytester.runpytest("-p", "no:cacheprovider", "-rN")
    result.assert_outcomes(failed=1, passed=1, errors=1)
    out = result.stdout.str()
    assert out.count("spawned process(es) ended with an exception (seed 0)") == 2
    assert "ValueError: app invariant broken" in out and "not reached" not in out
    assert 'in core\n' in out  # the app's own traceback is shown


@on_only
def test_an_app_that_never_ends_fails_the_test_saying_so(pytester: pytest.Pytester) -> None:
    """A spawned process that loops for ever: a plain failure naming the hang, once, no internal traceback
    (it was a RuntimeError from the simulator, raised again at teardown after another full bound)."""
    pytester.makepyfile(
        """
        def forever(logic):
            while True:
                yield from logic.sleep(0.01)

        def test_run_in_the_test(wormspace_cluster):
            wormspace_cluster.max_events = 5_000
            wormspace_cluster.spawn(forever)
            wormspace_cluster.run()

        def test_left_to_teardown(wormspace_cluster):
            wormspace_cluster.max_events = 5_000
            wormspace_cluster.spawn(forever)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-rN")  # -rN: see the test above
    result.assert_outcomes(failed=1, passed=1, errors=1)
    out = result.stdout.str()
    assert out.count("the simulation did not settle within 5000 events") == 2
    assert "RuntimeError" not in out and "Traceback" not in out


@on_only
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("with h.operation('read', 0) as op:\n        op.ok(None)\n        op.ok(b'x')",
         "op.ok(...): this operation was already completed (call ok or fail once)"),
        ("with h.operation('read', 0) as op:\n        op.ok('text')", "op.ok(...) takes bytes or None, got str"),
        ("with h.operation('write', 0):\n        pass", "operation('write', 0, value): the value written is bytes"),
        ("with h.operation('read', 0, b'v'):\n        pass", "operation('read', address) takes no value"),
        ("with h.operation('read', -1):\n        pass", "an app operation's address is a non-negative int, got -1"),
        ("with h.operation('read', '3'):\n        pass", "an app operation's address is a non-negative int, got '3'"),
    ],
)
def test_a_misused_operation_is_a_usage_error_naming_it(pytester: pytest.Pytester, body: str, message: str) -> None:
    """Misuse of ``operation`` is said in the harness's terms (it was a bare "no open operation with handle 0",
    or a history-format message about base64)."""
    pytester.makepyfile(
        "import pytest\nfrom wormspace.errors import UsageError\n\n"
        "def test_it(wormspace_cluster):\n    h = wormspace_cluster\n"
        f"    with pytest.raises(UsageError) as info:\n        {body.replace(chr(10), chr(10) + '    ')}\n"
        "    print('MESSAGE', info.value)\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-s")
    assert message in result.stdout.str()


@pytest.mark.parametrize("count", ["0", "-3"])
def test_a_seed_count_below_one_is_one_usage_error(pytester: pytest.Pytester, count: str) -> None:
    """Said once, as pytest's own usage errors are (it was an internal traceback per collected module)."""
    pytester.makepyfile(test_one="def test_it(wormspace_cluster):\n    pass\n",
                        test_two="def test_it(wormspace_cluster):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--wormspace-seeds", count)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = result.stdout.str() + result.stderr.str()
    assert out.count(f"--wormspace-seeds must be at least 1, got {count}") == 1
    assert "Traceback" not in out and "pluggy" not in out


@on_only
def test_the_fault_schedule_needs_three_acceptors(pytester: pytest.Pytester) -> None:
    """As docs/testing.md says: a module-wide marker applies; with two acceptors there is no schedule."""
    pytester.makepyfile(
        """
        import pytest
        pytestmark = pytest.mark.wormspace(acceptors=5)

        def test_five(wormspace_cluster):
            assert len(wormspace_cluster.cluster.net.nodes) == 5
            assert wormspace_cluster.schedule[0] == "t=0.01 crash 0"

        @pytest.mark.wormspace(acceptors=2)
        def test_two(wormspace_cluster):
            assert wormspace_cluster.schedule == []
            wormspace_cluster.client().alloc(b"x")
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)
