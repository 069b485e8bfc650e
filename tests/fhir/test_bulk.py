"""Bulk NDJSON import (quarantine, idempotence, Bundles) and export levels; reindex."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson

from healthmesh.fhir.bulk.export import Exporter, ExportRequest
from healthmesh.fhir.bulk.importer import import_files
from healthmesh.fhir.store import FhirStore
from healthmesh.fhir.store.reindex import reindex_all

from .fhir_helpers import load_bundle, processor, synthea_bundles


def _ndjson(path: Path, resources: list[dict], extra: list[bytes] = ()) -> Path:  # type: ignore[assignment]
    lines = [orjson.dumps(r) for r in resources] + list(extra)
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return path


def test_import_quarantines_bad_lines_and_keeps_the_rest(store: FhirStore, tmp_path: Path) -> None:
    good = [{"resourceType": "Patient", "id": f"p{i}", "gender": "female"} for i in range(5)]
    bad = [b"{broken", b'{"resourceType": "Patient", "id": "x1", "gender": "robot"}',
           b'{"resourceType": "Nope"}', b"[1, 2]"]
    f = _ndjson(tmp_path / "patients.ndjson.gz", good, bad)
    q = tmp_path / "quarantine"
    report = import_files(store, [f], quarantine_dir=q, workers=1)
    assert (report.received, report.created, report.quarantined) == (9, 5, 4)
    assert store.count("Patient") == 5
    lines = [orjson.loads(x) for f in q.glob("*.ndjson") for x in f.read_bytes().splitlines()]
    assert len(lines) == 4 and {ln["line"] for ln in lines} == {6, 7, 8, 9}
    assert all(ln["reason"] for ln in lines)
    # idempotent: importing again creates nothing new, it makes new versions
    again = import_files(store, [_ndjson(tmp_path / "again.ndjson.gz", good)], quarantine_dir=q,
                         workers=1)
    assert again.created == 0 and again.updated == 5
    assert store.count("Patient") == 5
    assert store.read("Patient", "p0").version == 2


def test_import_with_worker_processes(sqlite_store: FhirStore, tmp_path: Path,
                                      shared_data: Path) -> None:
    bundle = load_bundle(synthea_bundles(shared_data)[0])
    f = _ndjson(tmp_path / "one.ndjson.gz", [e["resource"] for e in bundle["entry"]])
    report = import_files(sqlite_store, [f], quarantine_dir=tmp_path / "q", workers=2)
    assert report.quarantined == 0 and report.created == len(bundle["entry"])
    res = sqlite_store.search_engine.search("Observation", [("_summary", "count")])
    assert res.total == sum(1 for e in bundle["entry"]
                            if e["resource"]["resourceType"] == "Observation")


def test_export_levels(store: FhirStore, tmp_path: Path, shared_data: Path) -> None:
    for path in synthea_bundles(shared_data)[:2]:
        processor(store).process(load_bundle(path))
    pats = store.search_engine.search("Patient", []).matches
    assert len(pats) == 2
    with store.writing() as tx:
        group = tx.create({"resourceType": "Group", "type": "person", "actual": True,
                           "member": [{"entity": {"reference": f"Patient/{pats[0].res_id}"}}]})
    exp = Exporter(store, tmp_path / "exports")
    system = exp.start(ExportRequest("system", ["Patient", "Observation"]), background=False)
    counts = {o["type"]: o["count"] for o in system.outputs}
    assert counts["Patient"] == 2 and counts["Observation"] == store.count("Observation")
    grp = exp.start(ExportRequest("group", ["Patient", "Observation", "Organization"],
                                  group_id=group.stored.res_id), background=False)
    gcounts = {o["type"]: o["count"] for o in grp.outputs}
    assert gcounts["Patient"] == 1 and "Organization" not in gcounts
    only = store.search_engine.search(
        "Observation", [("subject", f"Patient/{pats[0].res_id}"), ("_summary", "count")])
    assert gcounts["Observation"] == only.total
    lines = (grp.directory / "Observation.ndjson").read_bytes().splitlines()
    assert all(orjson.loads(ln)["subject"]["reference"] == f"Patient/{pats[0].res_id}" for ln in lines)
    filt = exp.start(ExportRequest("system", ["Observation"],
                                   type_filters={"Observation": ["code=http://loinc.org|8302-2"]}),
                     background=False)
    assert all(o["count"] < counts["Observation"] for o in filt.outputs)


def test_reindex_rebuilds_indexes(sqlite_store: FhirStore) -> None:
    with sqlite_store.writing() as tx:
        tx.create({"resourceType": "Patient", "gender": "male", "name": [{"family": "Wu"}]})
    from healthmesh.fhir.store import schema

    with sqlite_store.db.write() as conn:
        for table in schema.INDEX_TABLES.values():
            conn.execute(table.delete())
    assert sqlite_store.search_engine.search("Patient", [("family", "wu")]).matches == []
    assert reindex_all(sqlite_store) == 1
    assert len(sqlite_store.search_engine.search("Patient", [("family", "wu")]).matches) == 1
