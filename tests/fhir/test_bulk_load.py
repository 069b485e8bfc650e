"""Large bulk loads: secondary indexes deferred and rebuilt, recovery after a crash, readers
during a load, and imports that mix new, existing and repeated resources."""

from __future__ import annotations

import gzip
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select, update

from healthmesh.fhir.bulk.importer import import_files
from healthmesh.fhir.store import FhirStore, bulkindex, schema

from .fhir_helpers import load_bundle, synthea_bundles

QUERIES: list[tuple[str, list[tuple[str, str]]]] = [
    ("Observation", [("code", "http://loinc.org|8302-2")]),
    ("Observation", [("code", "http://loinc.org|8302-2"), ("date", "ge2015-01-01")]),
    ("Patient", [("gender", "female")]),
    ("Condition", [("code", "http://snomed.info/sct|44054006")]),
    ("Encounter", [("date", "lt2010-01-01"), ("_sort", "-date")]),
    ("Observation", [("value-quantity", "gt100")]),
]


def _ndjson(path: Path, resources: list[dict[str, Any]]) -> Path:
    path.write_bytes(gzip.compress(b"\n".join(orjson.dumps(r) for r in resources) + b"\n"))
    return path


def _synthea(shared_data: Path, n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in synthea_bundles(shared_data)[:n]:
        out.extend(e["resource"] for e in load_bundle(p)["entry"])
    return out


def _answers(store: FhirStore) -> list[list[str]]:
    eng = store.search_engine
    return [
        [m.res_id for m in eng.search(t, [*q, ("_count", "1000")]).matches] for t, q in QUERIES
    ]


def _missing(store: FhirStore) -> list[str]:
    with store.db.read() as conn:
        return [str(ix.name) for ix in bulkindex.missing_indexes(conn)]


def test_deferred_load_gives_the_same_search_results(
    store: FhirStore, tmp_path: Path, shared_data: Path
) -> None:
    resources = _synthea(shared_data, 3)
    f = _ndjson(tmp_path / "a.ndjson.gz", resources)
    ref_path = tmp_path / "ref.sqlite"
    ref = FhirStore(str(ref_path))
    try:
        import_files(ref, [f], quarantine_dir=tmp_path / "q", workers=1, defer_indexes=False)
        expected = _answers(ref)
    finally:
        ref.close()
    report = import_files(store, [f], quarantine_dir=tmp_path / "q", workers=2,
                          defer_indexes=True)
    assert report.created == len(resources) and report.quarantined == 0
    assert _missing(store) == []
    assert _answers(store) == expected
    assert any(expected), "the queries must find something to compare"
    with store.db.read() as conn:  # the heartbeat of the load is gone
        assert conn.execute(
            select(schema.counter.c.value).where(schema.counter.c.name == bulkindex.MARKER)
        ).first() is None


def test_readers_stay_correct_while_indexes_are_dropped(
    store: FhirStore, tmp_path: Path, shared_data: Path
) -> None:
    f = _ndjson(tmp_path / "a.ndjson.gz", _synthea(shared_data, 2))
    import_files(store, [f], quarantine_dir=tmp_path / "q", workers=1, defer_indexes=False)
    before = _answers(store)
    bulkindex.drop_secondary(store.db)
    assert len(_missing(store)) == len(bulkindex.secondary_indexes())
    assert _answers(store) == before  # table scans, same answers
    # a store opened meanwhile (the server) leaves a live load's indexes alone
    other = FhirStore(store.db.url)
    try:
        assert len(_missing(other)) == len(bulkindex.secondary_indexes())
    finally:
        other.close()
    assert bulkindex.ensure_indexes(store.db, force=True) == len(bulkindex.secondary_indexes())
    assert _missing(store) == [] and _answers(store) == before


def test_a_crashed_load_is_repaired_on_the_next_start(
    store: FhirStore, tmp_path: Path, shared_data: Path
) -> None:
    f = _ndjson(tmp_path / "a.ndjson.gz", _synthea(shared_data, 1))
    import_files(store, [f], quarantine_dir=tmp_path / "q", workers=1, defer_indexes=False)
    before = _answers(store)
    bulkindex.drop_secondary(store.db)  # the load starts ... and its process dies
    with store.db.write() as conn:  # its heartbeat goes stale
        conn.execute(
            update(schema.counter)
            .where(schema.counter.c.name == bulkindex.MARKER)
            .values(value=int(time.time() - bulkindex.STALE_AFTER - 5))
        )
    reopened = FhirStore(store.db.url)
    try:
        assert _missing(reopened) == []
        assert _answers(reopened) == before
    finally:
        reopened.close()


def test_a_failing_load_still_rebuilds_its_indexes(
    store: FhirStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from healthmesh.fhir.bulk import importer

    def broken(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(importer, "write_rows", broken)
    f = _ndjson(tmp_path / "a.ndjson.gz", [{"resourceType": "Patient", "id": "p1"}])
    with pytest.raises(RuntimeError):
        import_files(store, [f], quarantine_dir=tmp_path / "q", workers=1, defer_indexes=True)
    assert _missing(store) == []
    assert store.count("Patient") == 0


def test_new_existing_and_repeated_resources_in_one_chunk(
    store: FhirStore, tmp_path: Path
) -> None:
    def pat(i: int, gender: str) -> dict[str, Any]:
        return {"resourceType": "Patient", "id": f"p{i}", "gender": gender,
                "name": [{"family": f"Fam{i}"}]}

    first = _ndjson(tmp_path / "1.ndjson.gz", [pat(i, "female") for i in range(4)])
    import_files(store, [first], quarantine_dir=tmp_path / "q", workers=1)
    mixed = [pat(2, "male"), pat(3, "male"), pat(4, "male"), pat(5, "female"), pat(4, "other")]
    second = _ndjson(tmp_path / "2.ndjson.gz", mixed)
    report = import_files(store, [second], quarantine_dir=tmp_path / "q", workers=1)
    assert (report.created, report.updated) == (2, 3)
    eng = store.search_engine
    genders = {g: sorted(m.res_id for m in eng.search("Patient", [("gender", g)]).matches)
               for g in ("female", "male", "other")}
    assert genders == {"female": ["p0", "p1", "p5"], "male": ["p2", "p3"], "other": ["p4"]}
    assert store.read("Patient", "p4").version == 2 and store.read("Patient", "p2").version == 2
    # one set of index rows per resource: no rows left from the skipped prepared copies
    with store.db.read() as conn:
        t = schema.idx_string
        per_lid = conn.execute(
            select(t.c.lid, func.count()).where(t.c.pid == store.params.pid("Patient", "family"))
            .group_by(t.c.lid)
        ).all()
    assert len(per_lid) == 6 and all(n == 1 for _, n in per_lid)


def test_the_preparer_pool_gives_what_the_parent_gives() -> None:
    from healthmesh.fhir.search import default_registry, extract
    from healthmesh.fhir.store.prepare import MIN_PARALLEL, Preparer, prepare_items
    from healthmesh.fhir.validation import check

    def items() -> list[tuple[str, dict[str, Any], str, int, float]]:
        out = [("Patient", {"resourceType": "Patient", "gender": "female",
                            "name": [{"family": f"Li{i}"}]}, f"p{i}", 1, 1.7e9 + i)
               for i in range(MIN_PARALLEL + 10)]
        out[3] = ("Patient", {"resourceType": "Patient", "gender": "robot"}, "bad", 1, 1.7e9)
        return out

    reg = default_registry()
    local = prepare_items(items(), check, lambda r: extract(r, reg))
    pool = Preparer(lambda _i: [], workers=2)  # the local path would answer nothing
    try:
        got = pool.run(items())
    finally:
        pool.close()
    assert got == local
    assert got[3][0] is None and got[4][0] is not None
