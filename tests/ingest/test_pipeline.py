"""The ingest pipeline: idempotent re-ingest, A08 updates, A40 merges, quarantine of records
the store refuses, retry, FHIR bundles and NDJSON; received = converted + quarantined."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from healthmesh.fhir.store import FhirStore
from healthmesh.ingest.adapter import Converted
from healthmesh.ingest.hl7v2 import Hl7v2Adapter
from healthmesh.ingest.pipeline import Pipeline, Summary, retry
from healthmesh.ingest.quarantine import QuarantineStore
from healthmesh.ingest.registry import adapter_for

HEAD = "MSH|^~\\&|HIS|H1|||{ts}||ADT^{ev}|{cid}|P|2.5\r"
PID = "PID|1||{mrn}^^^H1^MR||{name}||19700101|M\r"
PV1 = "PV1|1|I|W1^1^1||||||||||||||||V{mrn}|||||||||||||||||||||||||{admit}\r"


def adt(ev: str, mrn: str, name: str = "Li^Lei", cid: str = "1", extra: str = "") -> bytes:
    text = HEAD.format(ts="20240101", ev=ev, cid=cid) + PID.format(mrn=mrn, name=name)
    text += PV1.format(mrn=mrn, admit="20240101080000+0800") + extra
    return text.encode()


@pytest.fixture
def pipe(tmp_path: Path) -> Pipeline:
    db = tmp_path / "node.sqlite"
    return Pipeline(FhirStore(db), QuarantineStore(db), "H1")


def run(pipe: Pipeline, data: bytes, fmt: str = "hl7v2") -> Summary:
    s = pipe.ingest(adapter_for(fmt, institution="H1"), data, "t")
    assert s.balanced(), s
    return s


def pid_of(mrn: str) -> str:
    out = next(Hl7v2Adapter("H1").convert(adt("A01", mrn), source="x"))
    assert isinstance(out, Converted)
    return str(out.resources[0]["id"])


def test_reingest_creates_no_duplicates(pipe: Pipeline, shared_data: Path) -> None:
    root = shared_data / "hl7v2" / "ms-fhir-converter" / "samples"
    files = [root / "LAB-ORU-1.hl7", root / "LRI_2.0-NG_CBC_Typ_Message.hl7"]
    data = b"\n".join(f.read_bytes() for f in files)
    first = run(pipe, data)
    assert (first.received, first.converted, first.created) == (2, 2, 2)
    counts = {t: pipe.store.count(t) for t in ("Patient", "Observation", "DiagnosticReport")}
    second = run(pipe, data)
    assert (second.unchanged, second.created, second.updated, second.resources_written) == (
        2,
        0,
        0,
        0,
    )
    assert {t: pipe.store.count(t) for t in counts} == counts


def test_a08_updates_the_same_patient(pipe: Pipeline) -> None:
    run(pipe, adt("A01", "100", "Li^Lei"))
    s = run(pipe, adt("A08", "100", "Li^Leilei", cid="2"))
    assert s.updated == 1
    stored = pipe.store.read("Patient", pid_of("100"))
    assert stored.version == 2
    assert stored.resource()["name"][0]["given"] == ["Leilei"]
    assert pipe.store.count("Patient") == 1


def test_a03_finishes_the_encounter(pipe: Pipeline) -> None:
    run(pipe, adt("A01", "7"))
    discharge = adt("A03", "7", cid="2").replace(
        b"20240101080000+0800\r", b"20240101080000+0800|20240105100000+0800\r"
    )
    s = run(pipe, discharge)
    assert s.updated == 1
    assert pipe.store.count("Encounter") == 1
    out = next(Hl7v2Adapter("H1").convert(discharge, source="x"))
    assert isinstance(out, Converted)
    enc = pipe.store.read("Encounter", out.resources[1]["id"]).resource()
    assert enc["status"] == "finished"
    assert enc["period"] == {
        "start": "2024-01-01T08:00:00+08:00",
        "end": "2024-01-05T10:00:00+08:00",
    }


def test_a40_merge_links_and_replaces(pipe: Pipeline) -> None:
    run(pipe, adt("A01", "OLD", "Wang^Fang"))
    run(pipe, adt("A01", "NEW", "Wang^Fang"))
    merge = (
        HEAD.format(ts="20240102", ev="A40", cid="3")
        + PID.format(mrn="NEW", name="Wang^Fang")
        + "MRG|OLD^^^H1^MR\r"
    )
    s = run(pipe, merge.encode())
    assert s.converted == 1
    old = pipe.store.read("Patient", pid_of("OLD")).resource()
    new = pipe.store.read("Patient", pid_of("NEW")).resource()
    assert old["active"] is False
    assert old["name"][0]["family"] == "Wang"  # stored content kept
    assert old["link"] == [{"other": {"reference": f"Patient/{new['id']}"}, "type": "replaced-by"}]
    assert new["link"] == [{"other": {"reference": f"Patient/{old['id']}"}, "type": "replaces"}]
    # a later A08 of the survivor keeps the merge link; re-sending the merge changes nothing
    run(pipe, adt("A08", "NEW", "Wang^Fang", cid="4"))
    assert pipe.store.read("Patient", new["id"]).resource()["link"] == new["link"]
    again = run(pipe, merge.encode())
    assert again.unchanged == 1


def test_a40_to_unknown_prior_creates_an_inactive_stub(pipe: Pipeline) -> None:
    merge = (
        HEAD.format(ts="20240102", ev="A40", cid="3")
        + PID.format(mrn="N2", name="Zhao^Lei")
        + "MRG|O2^^^H1^MR\r"
    )
    run(pipe, merge.encode())
    prior = pipe.store.read("Patient", pid_of("O2")).resource()
    assert prior["active"] is False and prior["link"][0]["type"] == "replaced-by"


def test_rejections_and_store_refusals_are_quarantined_with_bytes(pipe: Pipeline) -> None:
    bad_date = adt("A01", "9").replace(b"19700101", b"1970-01-01")
    # a code with a leading blank maps through but is not a valid FHIR code: the store
    # refuses the record
    refused = (
        b"MSH|^~\\&|LIS|H1|||20240101||ORU^R01|5|P|2.5\rPID|1||R1^^^H1^MR\r"
        b"OBR|1|P1|F1|GLU^Glucose^L\rOBX|1|NM| GLU^Glucose^L||5|mmol/L^^UCUM|||||F\r"
    )
    s = run(pipe, bad_date + b"\r" + refused + b"\r" + adt("A04", "10"))
    assert (s.received, s.converted, s.quarantined) == (3, 1, 2)
    entries = pipe.quarantine.list(institution="H1")
    assert entries[0].location == "PID-7"
    assert entries[0].source_bytes == bad_date
    assert entries[1].reason.startswith("refused by the FHIR store")
    assert entries[1].source_bytes == refused
    assert entries[1].format == "hl7v2"
    assert pipe.store.count("Patient") == 1  # nothing of the refused record was written


def test_retry_resolves_after_a_fix_and_keeps_failing_otherwise(pipe: Pipeline) -> None:
    run(pipe, adt("A01", "9").replace(b"19700101", b"1970-01-01"))
    (entry,) = pipe.quarantine.list()
    ok, detail = retry(pipe, entry.id, Hl7v2Adapter("H1"))
    assert not ok and "PID-7" in detail
    assert pipe.quarantine.get(entry.id).attempts == 2
    # "fix": the same bytes retried with an adapter that accepts them (a fixed record)
    with pipe.quarantine.engine.begin() as conn:
        from healthmesh.ingest.quarantine import entries

        conn.execute(entries.update().values(source_bytes=adt("A01", "9")))
    ok, detail = retry(pipe, entry.id, Hl7v2Adapter("H1"))
    assert ok and detail == "created"
    assert pipe.quarantine.count() == 0
    assert pipe.quarantine.get(entry.id).status == "resolved"


def test_fhir_bundle_passes_through_idempotently(pipe: Pipeline, shared_data: Path) -> None:
    path = sorted((shared_data / "synthea").glob("*.json.gz"))[0]
    data = path.read_bytes()
    s = run(pipe, data, "fhir")
    assert s.converted == 1, s.reasons
    n = pipe.store.count()
    assert n > 20
    bundle = orjson.loads(__import__("gzip").decompress(data))
    assert n == len(bundle["entry"])
    assert run(pipe, data, "fhir").unchanged == 1
    assert pipe.store.count() == n


def test_ndjson_lines_are_records(pipe: Pipeline) -> None:
    lines = [
        b'{"resourceType": "Patient", "id": "p1", "gender": "female"}',
        b"{not json",
        b'{"resourceType": "Patient", "id": "p2", "gender": "nonsense"}',
        b'{"resourceType": "Observation", "status": "final", "code": {"text": "x"}}',
    ]
    s = run(pipe, b"\n".join(lines), "ndjson")
    assert (s.received, s.converted, s.quarantined) == (4, 2, 2)
    reasons = {e.location: e.reason for e in pipe.quarantine.list()}
    assert reasons["line 2"] == "not valid JSON"
    assert any(r.startswith("refused by the FHIR store") for r in reasons.values())


def test_workers_give_the_same_store_as_one_process(tmp_path: Path, shared_data: Path) -> None:
    root = shared_data / "hl7v2" / "ms-fhir-converter" / "samples"
    refused = (
        b"MSH|^~\\&|LIS|H1|||20240101||ORU^R01|5|P|2.5\rPID|1||R1^^^H1^MR\r"
        b"OBR|1|P1|F1|GLU^Glucose^L\rOBX|1|NM| GLU^Glucose^L||5|mmol/L^^UCUM|||||F\r"
    )
    files = sorted(root.glob("*.hl7"))
    data = b"\n".join(f.read_bytes() for f in files) + b"\n" + refused
    # part of it again: updates (messages sharing patients) and unchanged records
    data += b"\n" + b"\n".join(f.read_bytes() for f in files[:40]) + b"\n" + refused
    stores = {}
    for workers in (1, 2):
        db = tmp_path / f"w{workers}.sqlite"
        pipe = Pipeline(FhirStore(db), QuarantineStore(db), "H1")
        import healthmesh.ingest.parallel as parallel

        old, parallel.CHUNK = parallel.CHUNK, 37  # several chunks, some with repeated ids
        try:
            s = pipe.ingest(Hl7v2Adapter("H1"), data, "t", workers=workers)
        finally:
            parallel.CHUNK = old
        assert s.balanced() and s.received == 140 + 41
        stores[workers] = (
            s.line(),
            pipe.quarantine.count(),
            {
                (t, r.res_id, r.version): _strip(r.resource())
                for t in (
                    "Patient",
                    "Encounter",
                    "Observation",
                    "DiagnosticReport",
                    "ServiceRequest",
                    "MedicationRequest",
                    "Immunization",
                )
                for r in _all(pipe.store, t)
            },
        )
    assert stores[1] == stores[2]
    assert stores[1][1] == 75  # 74 unmapped or broken samples and the refused record, once each


def _all(store: FhirStore, res_type: str) -> list:
    from sqlalchemy import select

    from healthmesh.fhir.store import schema
    from healthmesh.fhir.store.records import stored_from_row

    with store.db.read() as conn:
        rows = conn.execute(select(schema.resource).where(schema.resource.c.res_type == res_type))
        return [stored_from_row(r) for r in rows]


def _strip(res: dict) -> dict:
    res = dict(res)
    res.pop("meta", None)
    return res


def test_registry_wires_the_dicom_adapter_through_the_pipeline(
    pipe: Pipeline, shared_data: Path
) -> None:
    pytest.importorskip("healthmesh.ingest.dicom.adapter")
    adapter = adapter_for("dicom", institution="H1")
    assert adapter.format == "dicom"
    total = Summary()
    for f in sorted((shared_data / "dicom").glob("*.dcm"))[:3]:
        total.add(pipe.ingest(adapter, f.read_bytes(), f.name))
    assert total.received == 3 and total.balanced()


@pytest.mark.postgres
def test_pipeline_on_postgresql(pg_url: str, shared_data: Path) -> None:
    pipe = Pipeline(FhirStore(pg_url), QuarantineStore(pg_url), "H1")
    root = shared_data / "hl7v2" / "ms-fhir-converter" / "samples"
    data = (root / "LAB-ORU-1.hl7").read_bytes() + b"\n" + adt("A01", "OLD") + adt("A01", "NEW")
    first = run(pipe, data)
    assert (first.created, first.quarantined) == (3, 0)
    assert run(pipe, data).unchanged == 3
    merge = (
        HEAD.format(ts="20240102", ev="A40", cid="3")
        + PID.format(mrn="NEW", name="Li^Lei")
        + "MRG|OLD^^^H1^MR\r"
    )
    run(pipe, merge.encode())
    assert pipe.store.read("Patient", pid_of("OLD")).resource()["active"] is False
    s = run(pipe, adt("A01", "X").replace(b"19700101", b"1970-01-01"))
    assert s.quarantined == 1 and pipe.quarantine.count() == 1


def test_records_without_ids_are_refused_not_crashing(pipe: Pipeline) -> None:
    outcomes = [
        Converted("x:1", [{"resourceType": "Patient", "gender": "male"}]),
        Converted("x:2", [{"resourceType": "Patient", "id": "ok1", "gender": "male"}]),
    ]
    s = pipe.write_all("csv", outcomes)
    assert (s.received, s.converted, s.quarantined) == (2, 1, 1)
    (entry,) = pipe.quarantine.list()
    assert entry.format == "fhir" and entry.location == "id"


@pytest.mark.parametrize("workers", [1, 2])
def test_a_patient_twice_in_one_chunk_keeps_each_version(tmp_path: Path, workers: int) -> None:
    """A01 then A08 of one patient in the same chunk: version 1 is the A01's content, version
    2 the A08's (the worker's preparation of a repeated id is not used for version 1)."""
    db = tmp_path / "node.sqlite"
    pipe = Pipeline(FhirStore(db), QuarantineStore(db), "H1")
    data = adt("A01", "M7", name="Li^Lei", cid="1") + adt("A08", "M7", name="Li^Lin", cid="2")
    s = pipe.ingest(Hl7v2Adapter("H1"), data, "t", workers=workers)
    assert s.balanced() and (s.created, s.updated) == (1, 1)
    pid = pid_of("M7")
    first, second = (pipe.store.vread("Patient", pid, v).resource() for v in (1, 2))
    assert first["name"][0]["given"] == ["Lei"] and second["name"][0]["given"] == ["Lin"]
    pipe.store.close()
    pipe.quarantine.close()
