"""Histories recorded by real clients on a cluster that already held data say so (``initial: unknown``), so
``wormspace check`` judges them from what the run found, not from an assumed empty space."""

from __future__ import annotations

from pathlib import Path

import pytest

from wormspace import Cluster, connect
from wormspace.history import History, Recorder
from wormspace.refinement.linearizability import ILLEGAL, OK, check_history
from wormspace.refinement.models import SegmentModel

WOS = 8


@pytest.mark.timeout(120)
def test_a_run_on_a_data_dir_that_held_data_records_an_unknown_initial_state(tmp_path: Path) -> None:
    data = str(tmp_path / "cluster")
    with Cluster.local(acceptors=3, data_dir=data, wos_size=WOS) as first:
        assert first.history().initial == "empty", "a fresh data dir: the run starts from an empty space"
        ws = first.client()
        seg = ws.alloc(b"m")
        addr = ws.address(seg, 1)
        ws.write(addr, b"kept", ws.capture(addr))
    with Cluster.local(acceptors=3, data_dir=data, wos_size=WOS) as second:
        ws = second.client()
        assert ws.read(addr) == b"kept"
        ws.alloc(b"n")  # a segment op: the checker picks the segment model
        history = History.read(second.history().to_jsonl())
        assert history.initial == "unknown"
        assert check_history(history, wos_size=WOS).verdict == OK
        assert check_history(History(list(history)), SegmentModel(wos_size=WOS)).verdict == ILLEGAL, (
            "from an assumed empty space the read of data written before the run is impossible"
        )
        with connect(second.config_path, record=True) as client:
            assert client.read(addr) == b"kept"
            recorder = client.logic.recorder
            assert isinstance(recorder, Recorder) and recorder.history.initial == "unknown"
