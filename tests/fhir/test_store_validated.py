"""The store's "already validated" write path (``prepare_version`` + ``put_validated``),
batched current-version reads, and incremental index updates. SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from healthmesh.errors import Gone, InvalidInput, InvalidResource, PreconditionFailed
from healthmesh.fhir.store import FhirStore, schema
from healthmesh.fhir.store.indexsync import sync_index
from healthmesh.fhir.store.params import empty_rows, table_rows
from healthmesh.fhir.validation import check


def _patient(family: str = "Chalmers", gender: str = "male", mrn: str = "1") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:mrn", "value": mrn}],
        "name": [{"family": family, "given": ["Peter"]}],
        "gender": gender,
        "birthDate": "1974-12-25",
    }


class Counting:
    """The R4 validator, counting the resources it checks."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, resource: dict[str, Any]) -> None:
        self.calls += 1
        check(resource)


@pytest.fixture(params=["sqlite", "postgres"])
def counted(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[FhirStore, Counting]]:
    url = (
        str(tmp_path / "s.sqlite")
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    validator = Counting()
    s = FhirStore(url, validator=validator)
    yield s, validator
    s.close()


def index_rows(store: FhirStore, lid: int) -> dict[str, Counter[tuple[Any, ...]]]:
    """The stored index rows of one resource, by kind."""
    out: dict[str, Counter[tuple[Any, ...]]] = {}
    with store.db.read() as conn:
        for kind, table in schema.INDEX_TABLES.items():
            out[kind] = Counter(
                tuple(r) for r in conn.execute(select(table).where(table.c.lid == lid))
            )
    return out


def expected_rows(store: FhirStore, lid: int, resource: dict[str, Any]) -> dict[str, Counter[Any]]:
    rows = empty_rows()
    table_rows(store.params, resource["resourceType"], lid, store.extract(resource), rows)
    return {kind: Counter(r) for kind, r in rows.items()}


def test_versions_are_validated_once_and_kept_in_history(
    counted: tuple[FhirStore, Counting],
) -> None:
    store, validator = counted
    with store.writing() as tx:
        v1 = store.prepare_version(_patient(), "p1", 1, tx.now())
        first = tx.put_validated(v1, None)
    assert validator.calls == 1 and first.created and first.stored.version == 1
    with store.writing() as tx:
        cur = tx.current_many([("Patient", "p1"), ("Patient", "absent")])
        assert set(cur) == {("Patient", "p1")}
        v2 = store.prepare_version(_patient("Windsor"), "p1", 2, tx.now())
        second = tx.put_validated(v2, cur[("Patient", "p1")])
    assert validator.calls == 2 and not second.created and second.stored.version == 2
    now = store.read("Patient", "p1").resource()
    assert now["name"][0]["family"] == "Windsor" and now["meta"]["versionId"] == "2"
    assert store.vread("Patient", "p1", 1).resource()["name"][0]["family"] == "Chalmers"
    assert store.history("Patient", "p1")[1] == 2
    assert index_rows(store, second.stored.lid) == expected_rows(store, second.stored.lid, now)
    with store.db.read() as conn:
        assert [s.res_id for s in store.match(conn, "Patient", "family=windsor")] == ["p1"]
        assert store.match(conn, "Patient", "family=chalmers") == []


def test_update_rewrites_only_changed_parameters(store: FhirStore) -> None:
    with store.writing() as tx:
        lid = tx.put_validated(store.prepare_version(_patient(), "p1", 1, tx.now()), None)
        lid_ = lid.stored.lid
    new = _patient(gender="female")
    with store.writing() as tx:
        cur = tx.current_many([("Patient", "p1")])[("Patient", "p1")]
        version = store.prepare_version(new, "p1", 2, tx.now())
        tx.flush()
        # gender and _lastUpdated differ; family, identifier, birthdate ... are kept
        assert sync_index(tx.conn, store.params, {lid_: ("Patient", version.rows)}) == 2
        assert sync_index(tx.conn, store.params, {lid_: ("Patient", version.rows)}) == 0
        tx.put_validated(version, cur)
    stored = store.read("Patient", "p1").resource()
    assert index_rows(store, lid_) == expected_rows(store, lid_, stored)


def test_created_then_updated_in_one_transaction(store: FhirStore) -> None:
    with store.writing() as tx:
        first = tx.put_validated(store.prepare_version(_patient(), "p2", 1, tx.now()), None)
        second = tx.put_validated(
            store.prepare_version(_patient("Windsor"), "p2", 2, tx.now()), first.stored
        )
        third = tx.put_validated(
            store.prepare_version(_patient("Tudor"), "p2", 3, tx.now()), second.stored
        )
    assert [s.version for s in tx.written] == [1, 2, 3]
    assert store.read("Patient", "p2").version == 3
    assert store.vread("Patient", "p2", 1).resource()["name"][0]["family"] == "Chalmers"
    assert store.vread("Patient", "p2", 2).resource()["name"][0]["family"] == "Windsor"
    assert store.history("Patient", "p2")[1] == 3
    lid = third.stored.lid
    assert index_rows(store, lid) == expected_rows(
        store, lid, store.read("Patient", "p2").resource()
    )


def test_updated_twice_then_deleted_in_one_transaction(store: FhirStore) -> None:
    with store.writing() as tx:
        first = tx.put_validated(store.prepare_version(_patient(), "p3", 1, tx.now()), None)
    with store.writing() as tx:
        cur = tx.current_many([("Patient", "p3")])[("Patient", "p3")]
        two = tx.put_validated(store.prepare_version(_patient("B"), "p3", 2, tx.now()), cur)
        three = tx.put_validated(
            store.prepare_version(_patient("C"), "p3", 3, tx.now()), two.stored
        )
        assert three.stored.version == 3
    assert index_rows(store, first.stored.lid) == expected_rows(
        store, first.stored.lid, store.read("Patient", "p3").resource()
    )
    with store.writing() as tx:
        tx.delete("Patient", "p3")
    assert all(not rows for rows in index_rows(store, first.stored.lid).values())
    # revived: the next version of the deleted row
    with store.writing() as tx:
        gone = tx.current_many([("Patient", "p3")])[("Patient", "p3")]
        assert gone.deleted
        back = tx.put_validated(store.prepare_version(_patient("D"), "p3", 5, tx.now()), gone)
    assert back.created and store.read("Patient", "p3").version == 5
    assert store.history("Patient", "p3")[1] == 5


def test_stale_or_foreign_versions_are_refused(store: FhirStore) -> None:
    with store.writing() as tx:
        v1 = tx.put_validated(store.prepare_version(_patient(), "p4", 1, tx.now()), None).stored
        with pytest.raises(PreconditionFailed):  # the same id created twice
            tx.put_validated(store.prepare_version(_patient(), "p4", 1, tx.now()), None)
    with store.writing() as tx:
        with pytest.raises(InvalidInput):  # a new resource starts at version 1
            tx.put_validated(store.prepare_version(_patient(), "p5", 2, tx.now()), None)
        with pytest.raises(PreconditionFailed):  # not the successor of the current version
            tx.put_validated(store.prepare_version(_patient(), "p4", 3, tx.now()), v1)
        with pytest.raises(InvalidInput):  # another resource's version
            tx.put_validated(store.prepare_version(_patient(), "p6", 2, tx.now()), v1)
        tx.put_validated(store.prepare_version(_patient("B"), "p4", 2, tx.now()), v1)
        with pytest.raises(PreconditionFailed):  # v1 is stale now
            tx.put_validated(store.prepare_version(_patient("C"), "p4", 2, tx.now()), v1)
    assert store.read("Patient", "p4").resource()["name"][0]["family"] == "B"


def test_prepare_version_refuses_invalid_resources(store: FhirStore) -> None:
    with pytest.raises(InvalidResource):
        store.prepare_version({**_patient(), "gender": 7}, "p7", 1, 0.0)
    with pytest.raises(InvalidInput):
        store.prepare_version({"resourceType": "NoSuchType"}, "p7", 1, 0.0)
    with pytest.raises(InvalidInput):
        store.prepare_version(_patient(), "bad id!", 1, 0.0)
    with pytest.raises(InvalidInput):
        store.prepare_version([], "p7", 1, 0.0)


def test_plain_writes_in_one_transaction_see_each_other(store: FhirStore) -> None:
    """update/delete read the buffered versions of this transaction (no flush per write)."""
    with store.writing() as tx:
        tx.update("Patient", "q1", _patient("A"))
        tx.update("Patient", "q1", _patient("B"))
        tx.update("Patient", "q2", _patient("X"))
        assert tx.delete("Patient", "q2") is not None
        assert tx.delete("Patient", "q2") is None
        again = tx.update("Patient", "q2", _patient("Y"))
        assert again.created and again.stored.version == 3
        tx.patch("Patient", "q1", [{"op": "replace", "path": "/gender", "value": "female"}])
        assert tx.current("Patient", "q1").version == 3  # type: ignore[union-attr]
    assert [s.version for s in tx.written] == [1, 2, 1, 2, 3, 3]
    q1 = store.read("Patient", "q1")
    assert q1.version == 3 and q1.resource()["gender"] == "female"
    assert store.vread("Patient", "q1", 1).resource()["name"][0]["family"] == "A"
    assert store.history("Patient", "q2")[1] == 3
    for res_id in ("q1", "q2"):
        cur = store.read("Patient", res_id)
        assert index_rows(store, cur.lid) == expected_rows(store, cur.lid, cur.resource())
    with store.db.read() as conn:
        assert {s.res_id for s in store.match(conn, "Patient", "gender=female")} == {"q1"}
        assert store.match(conn, "Patient", "family=x") == []


def test_created_and_deleted_in_one_transaction(store: FhirStore) -> None:
    with store.writing() as tx:
        first = tx.update("Patient", "q3", _patient())
        tx.delete("Patient", "q3")
    with pytest.raises(Gone):
        store.read("Patient", "q3")
    assert store.history("Patient", "q3")[1] == 2
    assert all(not rows for rows in index_rows(store, first.stored.lid).values())


def test_many_updates_in_one_transaction(store: FhirStore) -> None:
    """More updated resources than one IN list holds (indexsync.CHUNK)."""
    n = 1200
    with store.writing() as tx:
        for i in range(n):
            tx.put_validated(
                store.prepare_version(_patient(mrn=str(i)), f"m{i}", 1, tx.now()), None
            )
    keys = [("Patient", f"m{i}") for i in range(n)]
    with store.writing() as tx:
        cur = tx.current_many(keys)
        assert len(cur) == n
        for i, key in enumerate(keys):
            gender = "female" if i % 2 else "male"
            version = store.prepare_version(
                _patient(gender=gender, mrn=str(i)), key[1], 2, tx.now()
            )
            tx.put_validated(version, cur[key])
    token = schema.INDEX_TABLES["tokens"]
    gender = store.params.pid("Patient", "gender")
    with store.db.read() as conn:
        codes = Counter(
            code for (code,) in conn.execute(select(token.c.code).where(token.c.pid == gender))
        )
    assert codes == {"female": n // 2, "male": n // 2}
    for i in (0, 1, 599, 1199):
        s = store.read("Patient", f"m{i}")
        assert s.version == 2
        assert index_rows(store, s.lid) == expected_rows(store, s.lid, s.resource())
