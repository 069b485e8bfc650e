"""The GC freeze around ingest runs: nested and concurrent runs, and nothing left frozen."""

from __future__ import annotations

import doctest
import gc
import threading

from healthmesh.fhir.store import FhirStore
from healthmesh.ingest import longlived
from healthmesh.ingest.hl7v2 import Hl7v2Adapter
from healthmesh.ingest.longlived import frozen
from healthmesh.ingest.pipeline import Pipeline
from healthmesh.ingest.quarantine import QuarantineStore


def test_nested_runs_unfreeze_once_the_last_ends() -> None:
    gc.unfreeze()
    with frozen():
        outer = gc.get_freeze_count()
        assert outer > 0
        with frozen():
            assert gc.get_freeze_count() >= outer
        assert gc.get_freeze_count() >= outer  # the inner end leaves the outer run frozen
    assert gc.get_freeze_count() == 0


def test_concurrent_runs_and_errors_leave_nothing_frozen() -> None:
    gc.unfreeze()
    started, release = threading.Barrier(4), threading.Event()

    def run() -> None:
        with frozen():
            started.wait()
            release.wait()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    started.wait()
    assert gc.get_freeze_count() > 0
    release.set()
    for t in threads:
        t.join()
    try:
        with frozen():
            raise ValueError("boom")
    except ValueError:
        pass
    assert gc.get_freeze_count() == 0 and longlived._runs == 0


def test_an_ingest_leaves_the_collector_as_it_was() -> None:
    gc.unfreeze()
    pipe = Pipeline(FhirStore(":memory:"), QuarantineStore(":memory:"), "H1")
    msg = b"MSH|^~\\&|HIS|H1|||20240101||ADT^A04|1|P|2.5\rPID|1||M1^^^H1^MR||Li^Lei\r"
    assert pipe.ingest(Hl7v2Adapter("H1"), msg, "a.hl7").created == 1
    assert gc.get_freeze_count() == 0


def test_doctest() -> None:
    assert doctest.testmod(longlived).failed == 0
