"""Witness state contract: in memory, SQLite and PostgreSQL, with an atomic compare-and-set."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthmesh.ledger.store.witness_sql import SqlWitnessState
from healthmesh.ledger.witness import MemoryWitnessState, WitnessState


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WitnessState]:
    if request.param == "memory":
        yield MemoryWitnessState()
        return
    db = tmp_path / "w.db" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = SqlWitnessState(db)
    yield s
    s.close()


def test_compare_and_set(state: WitnessState) -> None:
    assert state.get("log") is None
    assert state.compare_and_set("log", 0, 5, b"r5")
    assert not state.compare_and_set("log", 0, 7, b"x")  # stale old size
    assert state.get("log") == (5, b"r5")
    assert state.compare_and_set("log", 5, 9, b"r9")
    assert state.get("log") == (9, b"r9")
    assert state.get("other") is None


def test_concurrent_updates_never_roll_back(state: WitnessState) -> None:
    wins: list[int] = []
    lock = threading.Lock()

    def attempt(size: int) -> None:
        if state.compare_and_set("log", 0, size, b"r"):
            with lock:
                wins.append(size)

    threads = [threading.Thread(target=attempt, args=(s,)) for s in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert state.get("log") == (wins[0], b"r")


def test_evidence_is_kept(state: WitnessState) -> None:
    assert state.get_evidence("log") == []
    state.record_evidence("log", "note-1", "same size, different root")
    state.record_evidence("log", "note-2", "proof does not verify")
    state.record_evidence("other", "note-3", "x")
    assert state.get_evidence("log") == [
        ("note-1", "same size, different root"),
        ("note-2", "proof does not verify"),
    ]
