"""The quarantine store contract, on SQLite and on PostgreSQL (skipped without a server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthmesh.errors import NotFound
from healthmesh.ingest.adapter import Rejected
from healthmesh.ingest.quarantine import QuarantineStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def qstore(request: pytest.FixtureRequest, tmp_path: Path) -> QuarantineStore:
    if request.param == "sqlite":
        return QuarantineStore(tmp_path / "q.sqlite")
    return QuarantineStore(request.getfixturevalue("pg_url"))


def test_add_list_get_resolve(qstore: QuarantineStore) -> None:
    a = qstore.add("H1", "hl7v2", Rejected("a#1", b"MSH|1", "bad date", "PID-7"))
    b = qstore.add("H2", "csv", Rejected("b.csv:3", b"x,y", "bad code", "row 3, column sex"))
    assert a != b
    assert [e.id for e in qstore.list()] == [a, b]
    assert [e.id for e in qstore.list(institution="H2")] == [b]
    e = qstore.get(a)
    assert (e.source_bytes, e.reason, e.location, e.status, e.attempts) == (
        b"MSH|1",
        "bad date",
        "PID-7",
        "open",
        1,
    )
    qstore.failed_again(a, "still bad", "PID-8")
    assert (qstore.get(a).reason, qstore.get(a).attempts) == ("still bad", 2)
    qstore.resolve(a)
    assert qstore.count() == 1 and qstore.count(status=None) == 2
    assert qstore.get(a).resolved_at is not None
    with pytest.raises(NotFound):
        qstore.get(999_999)


def test_same_bytes_again_update_the_open_entry(qstore: QuarantineStore) -> None:
    a = qstore.add("H1", "hl7v2", Rejected("a#1", b"MSH|1", "bad date", "PID-7"))
    again = qstore.add("H1", "hl7v2", Rejected("b#4", b"MSH|1", "bad date", "PID-7"))
    assert again == a and qstore.get(a).attempts == 2 and qstore.get(a).source_ref == "b#4"
    other = qstore.add("H2", "hl7v2", Rejected("a#1", b"MSH|1", "bad date", "PID-7"))
    assert other != a  # per institution
    qstore.resolve(a)
    assert qstore.add("H1", "hl7v2", Rejected("a#1", b"MSH|1", "bad date", "PID-7")) != a
