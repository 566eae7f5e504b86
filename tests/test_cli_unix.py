"""The ``wormspace`` command as a Unix tool, run as a user runs it (a subprocess): a reader that goes away
ends a verb with exit 141, never with a verb's own negative result; SIGTERM ends a verb with exit 143 after
it stopped the processes it started; arguments that are not UTF-8 reach the cluster as the bytes given; bad
numbers are usage errors (exit 2), not tracebacks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.real_process import cluster_up, wormspace
from wormspace.runtime.supervise import DeployError, LocalCluster

pytestmark = pytest.mark.timeout(180)

HISTORIES = Path(__file__).parent / "data" / "histories"


def into_closed_pipe(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run a verb with standard output a pipe whose reader has gone (``wormspace ... | head -0``, without the
    race of ``head`` exiting late)."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run(
            [sys.executable, "-m", "wormspace", *args], stdout=w, stderr=subprocess.PIPE, timeout=60, check=False
        )
    finally:
        os.close(w)


def test_a_closed_pipe_ends_a_table_verb_with_141_not_its_negative_result(tmp_path: Path) -> None:
    good, bad = str(HISTORIES / "concurrent-writes-ok.jsonl"), str(HISTORIES / "empty-bytes-not-empty-bad.jsonl")
    assert wormspace("check", good).returncode == 0 and wormspace("check", bad).returncode == 1
    # A cluster whose files exist but whose acceptors do not run: `status` exits 1 (an acceptor is down).
    down = LocalCluster(tmp_path / "down", 3)
    down._write_files()
    assert wormspace("cluster", "status", "--dir", str(down.directory)).returncode == 1
    for args in (("check", good), ("check", bad), ("cluster", "status", "--dir", str(down.directory)),
                 ("check", good, "--json")):  # fmt: skip
        out = into_closed_pipe(*args)
        assert out.returncode == 141, (args, out.returncode, out.stderr)
        assert out.stderr == b"", (args, out.stderr)


def onto_a_full_disk(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run a verb with standard output ``/dev/full`` (every write fails: no space left on the device)."""
    with open("/dev/full", "wb") as full:
        return subprocess.run(
            [sys.executable, "-m", "wormspace", *args], stdout=full, stderr=subprocess.PIPE, timeout=60, check=False
        )


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_output_that_cannot_be_written_is_exit_4_never_a_verbs_negative_result(tmp_path: Path) -> None:
    """`check` on a full disk exited 1, which reads as ILLEGAL (and `kv get` as absent): an I/O error is 4."""
    good = str(HISTORIES / "concurrent-writes-ok.jsonl")
    for args in (("check", good), ("check", good, "--json")):
        out = onto_a_full_disk(*args)
        assert out.returncode == 4, (args, out.returncode, out.stderr)
        assert out.stderr.decode().strip() == "wormspace check: error: [Errno 28] No space left on device", out.stderr


@pytest.fixture(scope="module")
def cluster_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with cluster_up(tmp_path_factory.mktemp("unix") / "cluster") as path:
        yield path


@pytest.mark.slow
def test_arguments_that_are_not_utf8_are_kept_as_their_bytes(cluster_file: str) -> None:
    c = ("--cluster", cluster_file)
    key, value, name = os.fsdecode(b"k\xff"), os.fsdecode(b"\xfe\x80v"), os.fsdecode(b"n\xee")
    assert wormspace("kv", "get", key, *c).returncode == 1
    put = wormspace("kv", "put", key, value, *c)
    assert put.returncode == 0, put.stderr
    assert wormspace("kv", "get", key, *c).stdout == b"\xfe\x80v\n"
    got = json.loads(wormspace("kv", "get", key, "--json", *c).stdout)
    assert got == {"key": "a/8=", "value": "/oB2"}  # base64 of b"k\xff", b"\xfe\x80v"
    assert wormspace("kv", "cas", key, value, "new", *c).returncode == 0
    assert wormspace("kv", "get", os.fsdecode(b"k"), *c).returncode == 1, "another key"
    if os.path.exists("/dev/full"):  # the value is there, but cannot be printed: not "absent" (1)
        assert onto_a_full_disk("kv", "get", key, *c).returncode == 4
    pos = wormspace("log", "append", value, "--name", name, *c)
    assert pos.returncode == 0, pos.stderr
    assert wormspace("log", "read", pos.stdout.decode().strip(), "--name", name, *c).stdout == b"\xfe\x80v\n"
    assert wormspace("log", "tail", *c).stdout == b"0\n", "the default log is another name"


@pytest.mark.slow
def test_an_endless_standard_input_is_refused_without_reading_it_all(cluster_file: str) -> None:
    c = ("--cluster", cluster_file)
    for args in (("log", "append", "-"), ("kv", "put", "k", "-"), ("kv", "cas", "k", "--absent", "-")):
        with open("/dev/zero", "rb") as endless:
            out = subprocess.run([sys.executable, "-m", "wormspace", *args, *c], stdin=endless, capture_output=True,
                                 timeout=60, check=False)  # fmt: skip
        assert out.returncode == 2 and b"more than the cluster's largest value" in out.stderr, (args, out.stderr)
    assert wormspace("kv", "put", "k", "-", *c, stdin=b"\0" * 1000).returncode == 0
    assert wormspace("kv", "get", "k", *c).stdout == b"\0" * 1000 + b"\n"


@pytest.mark.slow
def test_out_of_range_numbers_are_usage_errors_or_outcomes_not_tracebacks(cluster_file: str) -> None:
    c = ("--cluster", cluster_file)
    assert wormspace("log", "append", "a", *c).returncode == 0
    for timeout in ("inf", "nan", "-1"):
        out = wormspace("log", "read", "5", "--hole-timeout", timeout, *c)
        assert out.returncode == 2 and b"hole_timeout" in out.stderr and b"Traceback" not in out.stderr, out.stderr
    huge = wormspace("log", "read", str(10**30), *c)  # beyond any index a segment can be named for
    assert huge.returncode == 3 and b"Unallocated" in huge.stderr and b"Traceback" not in huge.stderr, huge.stderr
    assert wormspace("log", "read", "0", *c).stdout == b"a\n", "nothing changed"


def test_a_timeout_that_never_ends_or_is_negative_is_a_usage_error(tmp_path: Path) -> None:
    # `down --timeout nan` would wait forever for an acceptor that ignores SIGTERM; -1 would SIGKILL at once.
    for bad in ("nan", "inf", "-1", "soon"):
        for action in ("down", "replace"):
            out = wormspace("cluster", action, "--dir", str(tmp_path), "--timeout", bad)
            assert out.returncode == 2 and b"--timeout" in out.stderr and b"Traceback" not in out.stderr, out.stderr


def _serving_children(pid: int) -> list[int]:
    """The ``wormspace serve`` children of process ``pid`` (Linux ``/proc``)."""
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    out = []
    for k in map(int, kids):
        try:
            if b"serve" in Path(f"/proc/{k}/cmdline").read_bytes().split(b"\0"):
                out.append(k)
        except OSError:
            pass
    return out


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads children from Linux /proc")
def test_sigterm_stops_the_acceptors_a_verb_started(tmp_path: Path) -> None:
    """`timeout 60 wormspace demo --real` must not leave acceptor processes (and their temporary directory)
    behind: SIGTERM unwinds the verb, which stops what it started."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "wormspace", "demo", "--real", "--ops", "100000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    kids: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(kids) < 3 and time.monotonic() < deadline and demo.poll() is None:
            time.sleep(0.1)
            kids = _serving_children(demo.pid)
        assert len(kids) == 3, "the demo started its three acceptors"
        config = Path(Path(f"/proc/{kids[0]}/cmdline").read_bytes().split(b"\0")[-2].decode())
        assert config.name == "cluster.toml"
        logs = [config.parent / f"acceptor-{i}" / "acceptor.log" for i in range(3)]

        def serving() -> bool:
            return all(log.exists() and "listening on" in log.read_text() for log in logs)

        while not serving() and time.monotonic() < deadline and demo.poll() is None:
            time.sleep(0.1)
        assert serving() and demo.poll() is None, "the demo runs its workload"
        demo.send_signal(signal.SIGTERM)
        _, err = demo.communicate(timeout=60)
        assert demo.returncode == 143, err
        assert b"Traceback" not in err, err
        deadline = time.monotonic() + 10
        while any(_running(k) for k in kids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_running(k) for k in kids), "the acceptors were stopped"
        assert not config.parent.exists(), "the temporary directory was removed"
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(timeout=10)
        for k in kids:
            if _running(k):
                os.kill(k, signal.SIGKILL)


@pytest.mark.slow
def test_down_with_an_id_stops_that_acceptor_only_and_options_are_never_ignored(tmp_path: Path) -> None:
    d = str(tmp_path / "c")
    assert wormspace("cluster", "up", "--dir", d, "--json").returncode == 0
    try:
        one = wormspace("cluster", "down", "--dir", d, "--id", "1", "--json")
        assert one.returncode == 0, one.stderr
        rows = {a["id"]: a for a in json.loads(one.stdout)["acceptors"]}
        assert rows[1]["result"] == "stopped" and not rows[1]["alive"]
        assert rows[0]["alive"] and rows[2]["alive"] and "result" not in rows[0]
        assert wormspace("cluster", "status", "--dir", d).returncode == 1
        for action, flags, why in [
            ("down", ["--acceptors", "5"], b"describes 3 acceptors"),
            ("down", ["--auth"], b"does not change authentication"),
            ("status", ["--groups", "3"], b"does not change --groups"),
            ("status", ["--id", "1"], b"--id is for up, down and replace"),
            ("down", ["--id", "7"], b"no acceptor 7"),
        ]:
            out = wormspace("cluster", action, "--dir", d, *flags)
            assert out.returncode == 2 and why in out.stderr, (action, flags, out.stderr)
        assert json.loads(wormspace("cluster", "status", "--dir", d, "--acceptors", "3", "--json").stdout)[
            "acceptors"][0]["alive"], "a matching --acceptors (as in `cluster status --acceptors 3`) is fine"
        assert wormspace("cluster", "up", "--dir", d, "--id", "1").returncode == 0
        assert wormspace("cluster", "status", "--dir", d).returncode == 0
    finally:
        LocalCluster.open(d).stop(timeout=2)


def _concurrently(n: int, *args: str) -> list[int]:
    procs = [subprocess.Popen([sys.executable, "-m", "wormspace", *args], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(n)]  # fmt: skip
    try:
        return [p.wait(timeout=90) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)


def _starts_at_once(n: int, d: str, i: int) -> list[str]:
    """``n`` threads each start acceptor ``i`` of the cluster in ``d`` through its own ``LocalCluster`` at once
    (no CLI lock): what each reported."""
    outcomes: list[str] = []

    def start_one() -> None:
        try:
            LocalCluster.open(d, detach=True).start([i])
            outcomes.append("started")
        except DeployError as e:
            outcomes.append(f"failed: {e}")

    threads = [threading.Thread(target=start_one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    return outcomes


@pytest.mark.slow
def test_concurrent_ups_never_stop_the_acceptor_one_of_them_started(tmp_path: Path) -> None:
    """`cluster up`s on one directory run one at a time (a lock on DIR/cluster.lock): three at once on a new
    directory make one cluster and all succeed (they used to start one acceptor each, each fail on the
    others' locked data dirs, and all exit 1). Without the CLI's lock (two ``LocalCluster.start`` at once),
    a failed start stops only the processes it started: the loser used to SIGKILL whatever held the data
    dir's lock -- the winner's acceptor, after the winner had reported it started."""
    d = str(tmp_path / "c")
    codes = _concurrently(3, "cluster", "up", "--dir", d, "--json")
    try:
        assert codes == [0, 0, 0], codes
        cluster = LocalCluster.open(d)
        assert all(cluster.alive(i) for i in range(3)), codes
        for _ in range(2):
            pid = cluster.pid(1)
            assert pid
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while cluster.alive(1) and time.monotonic() < deadline:
                time.sleep(0.05)
            outcomes = _starts_at_once(3, d, 1)
            assert "started" in outcomes, outcomes
            time.sleep(0.5)  # a loser's kill would have landed by now
            assert cluster.alive(1), f"acceptor 1 was stopped after a start reported it started ({outcomes})"
        assert wormspace("kv", "put", "k", "v", "--cluster", str(cluster.config_path)).returncode == 0
    finally:
        LocalCluster.open(d).stop(timeout=2)
