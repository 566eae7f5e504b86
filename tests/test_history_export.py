"""The exported history keeps the Jepsen meaning of its types: ``fail`` only when certainly not applied."""

from __future__ import annotations

import json

import pytest

from wormspace import Cluster, UsageError
from wormspace.history import Recorder


def test_a_partly_applied_batch_write_is_info_not_fail() -> None:
    cluster = Cluster.simulated(acceptors=3, seed=2)
    a, b = cluster.client(), cluster.client()
    seg = a.alloc(metadata=b"")
    cap_a = a.batch_capture(seg)
    assert a.batch_write(seg, {0: b"a"}, cap_a) == {0: None}
    cap_b = b.batch_capture(seg)
    res = b.batch_write(seg, {0: b"b", 1: b"c"}, cap_b)  # offset 0 taken, offset 1 lands
    assert res[1] is None and res[0] is not None
    assert b.read(b.address(seg, 1)) == b"c"
    lines = [json.loads(line) for line in cluster.history().to_jsonl().splitlines()]
    done = [e for e in lines if e["f"] == "batch_write" and e["type"] != "invoke"]
    assert [e["type"] for e in done] == ["ok", "info"]
    assert done[1]["results"] == {"0": "AlreadyWritten", "1": "ok"}
    assert done[1]["error"] == "AlreadyWritten" and done[1]["existing"] == {"0": "YQ=="}
    # a reader that knows only Jepsen's types must not be told that a write which landed had no effect
    for e in lines:
        if e["type"] == "fail":
            assert not set((e.get("results") or {}).values()) & {"ok", "Indeterminate"}, e


def test_a_batch_write_that_took_no_effect_anywhere_stays_fail() -> None:
    cluster = Cluster.simulated(acceptors=3, seed=5)
    a, b = cluster.client(), cluster.client()
    seg = a.alloc(metadata=b"")
    stale = a.batch_capture(seg)
    b.batch_capture(seg)  # preempts a's capture of every offset
    res = a.batch_write(seg, {0: b"a", 1: b"b"}, stale)
    assert all(e is not None for e in res.values())
    last = json.loads(cluster.history().to_jsonl().splitlines()[-1])
    assert (last["type"], last["error"], last["results"]) == (
        "fail", "CaptureStale", {"0": "CaptureStale", "1": "CaptureStale"})


def test_the_recorder_refuses_a_fail_that_names_an_applied_offset() -> None:
    rec = Recorder(lambda: 0)
    h = rec.invoke(0, "batch_write", 0, {0: b"a", 1: b"b"})
    for results in ({0: "ok", 1: "AlreadyWritten"}, {0: "Indeterminate", 1: "CaptureStale"}):
        with pytest.raises(UsageError, match="info"):
            rec.fail(h, "AlreadyWritten", results=results)
    rec.info(h, "AlreadyWritten", existing={1: b"z"}, results={0: "ok", 1: "AlreadyWritten"})
    (_, done) = rec.history
    assert (done.type, done.error, done.results, done.existing) == (
        "info", "AlreadyWritten", {0: "ok", 1: "AlreadyWritten"}, {1: b"z"})
