"""A governed training run (:func:`healthmesh.learning.train.train`) that fails or times out
after its start is recorded as failed: the ledger gets ``job_start`` then ``job_failure`` with
the institutions and a reason code, never the error's text; nothing is registered."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from healthmesh.learning.deploy import RunTimedOut
from healthmesh.learning.governance import MemoryRecorder
from healthmesh.learning.ledger_record import LedgerRecorder
from healthmesh.learning.train import train

from .test_governance import INSTITUTIONS, _approve_all, _request, registry, world  # noqa: F401

SECRET = "hosp_a-007 age 61"


class _TimesOut:
    def run(self, spec_json: str, node_files: Mapping[str, str], out: Path) -> dict[str, Any]:
        assert set(node_files) == set(INSTITUTIONS)  # the run had started with every node
        raise RunTimedOut(f"run 1 did not finish within 10s ({SECRET})")


def test_a_timed_out_run_is_a_job_failure_in_the_ledger(world, registry) -> None:  # noqa: F811
    nodes, _, _ = world
    _approve_all(nodes)
    batches: list[Any] = []
    with pytest.raises(RunTimedOut):
        train(_request(), nodes, LedgerRecorder(batches.append, "hub"), registry, _TimesOut())
    entries = [e for batch in batches for e in batch]
    assert [e["type"] for e in entries] == ["job_start", "job_failure"]
    assert entries[1]["body"] == {"job_id": "job-1", "study_id": "study-1",
                                  "algorithm": "federated_learning",
                                  "institutions": list(INSTITUTIONS), "reason": "timeout"}
    assert SECRET not in repr(entries)
    assert registry.versions() == []


def test_the_recorder_gets_a_code_not_the_message(world, registry) -> None:  # noqa: F811
    nodes, _, _ = world
    _approve_all(nodes)
    rec = MemoryRecorder()
    with pytest.raises(RunTimedOut):
        train(_request(), nodes, rec, registry, _TimesOut())
    assert [e for e, _ in rec.events] == ["training-started", "training-failed"]
    assert rec.events[1][1]["reason"] == "timeout"
