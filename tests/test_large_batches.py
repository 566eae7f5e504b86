"""Batches of many maximum-size values against real acceptor processes (loopback, SQLite): a batch write, a
batch read and a batch capture of 70 values of 1 MiB each end with their values, not ``Indeterminate``.

Two things make this work: the client cuts requests and the replies they ask for under the acceptors' frame
limit (wormspace/layers/tcp.py, rule 7), and a phase timer is held while the acceptors are visibly at work on
its phase (wormspace/runtime/driver.py, rule 7) -- the phase timer (0.2 s) measures silence, not size. Before
both, on this kind of machine, the write needed resolution rounds (~9 s) and the read and the capture ended
``Indeterminate``. The history of the run is checked against the WOS spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from wormspace import AlreadyWritten, Cluster
from wormspace.layers.messages import MAX_VALUE
from wormspace.refinement.linearizability import check_history
from wormspace.refinement.models import SegmentModel

pytestmark = pytest.mark.slow

COUNT = 70  # x 1 MiB: 70 MiB a request, and a reply, per acceptor
WOS = 128


def test_a_batch_of_seventy_maximum_size_values_is_written_read_and_captured(tmp_path: Path) -> None:
    values = {o: bytes([o]) * MAX_VALUE for o in range(1, COUNT + 1)}
    with Cluster.local(acceptors=3, data_dir=str(tmp_path / "cluster"), wos_size=WOS) as c:
        ws = c.client()
        seg = ws.alloc(metadata=b"blobs")
        cap = ws.batch_capture(seg, 1, COUNT + 1)
        assert ws.batch_write(seg, values, cap) == dict.fromkeys(values)
        assert ws.batch_read(seg, 1, COUNT + 1) == values
        again = ws.batch_capture(seg, 1, COUNT + 1)  # every register written: the capture adopts them all
        results = ws.batch_write(seg, {1: b"other", COUNT: b"other"}, again)
        assert all(isinstance(r, AlreadyWritten) and r.data == values[o] for o, r in results.items())
        history = c.history()
    verdict = check_history(list(history), SegmentModel(wos_size=WOS))
    assert verdict.verdict == "OK", verdict
