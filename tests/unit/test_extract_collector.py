"""The extract worker reads and prepares a batch with the cyclic collector paused, and
collects between batches (islandhub/extract.py, `_pulled`)."""

from __future__ import annotations

import gc
import weakref

from connectors.base import StreamSpec
from connectors.files import FilesConnector
from islandhub.extract import _pulled


class Cycle:
    """Garbage only the cyclic collector frees: it refers to itself."""

    def __init__(self) -> None:
        self.me = self


def files(folder, rows: int, batch_size: int) -> FilesConnector:
    (folder / "pupils.csv").write_text("id\n" + "".join(f"{n}\n" for n in range(rows)))
    spec = {"files": "*.csv", "format": "csv", "batch_size": batch_size}
    return FilesConnector("school", {"path": str(folder)}, {"pupils": StreamSpec("pupils", spec)})


def test_a_batch_is_worked_on_with_the_collector_paused_and_collected_after(tmp_path):
    assert gc.isenabled()
    left: list[weakref.ref[Cycle]] = []
    seen = []
    for batch in _pulled(files(tmp_path, rows=5, batch_size=2), "pupils", None):
        assert not gc.isenabled()  # reading this batch and working on it: paused
        # The cycle the previous batch's work left behind was collected before this one.
        assert all(ref() is None for ref in left)
        cycle = Cycle()
        left.append(weakref.ref(cycle))
        del cycle
        assert left[-1]() is not None  # reference counting alone does not free it
        seen += [r["id"] for r in batch.records]
    assert seen == ["0", "1", "2", "3", "4"]
    assert gc.isenabled()  # as it was, once the stream is read


def test_a_failure_part_way_turns_the_collector_back_on(tmp_path):
    pulled = _pulled(files(tmp_path, rows=4, batch_size=2), "pupils", None)
    next(pulled)
    assert not gc.isenabled()
    pulled.close()  # what the worker's loop does to it when preparing a batch raises
    assert gc.isenabled()
