"""Every version the pipeline writes is validated exactly once (the store's write does not
validate again), nothing unchanged is validated or written, and history is kept."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from healthmesh.fhir.store import FhirStore
from healthmesh.fhir.store.records import Stored
from healthmesh.fhir.validation import check
from healthmesh.ingest.adapter import Converted
from healthmesh.ingest.hl7v2 import Hl7v2Adapter
from healthmesh.ingest.hl7v2.decode import split_messages
from healthmesh.ingest.pipeline import Pipeline
from healthmesh.ingest.quarantine import QuarantineStore

HEAD = "MSH|^~\\&|HIS|H1|||20240101||ADT^{ev}|{cid}|P|2.5\r"
PID = "PID|1||{mrn}^^^H1^MR||{name}||19700101|M\r"


def adt(ev: str, mrn: str, name: str, cid: str = "1") -> bytes:
    return (HEAD.format(ev=ev, cid=cid) + PID.format(mrn=mrn, name=name)).encode()


def pid_of(mrn: str) -> str:
    out = next(Hl7v2Adapter("H1").convert(adt("A01", mrn, "X^Y"), source="x"))
    assert isinstance(out, Converted)
    return str(out.resources[0]["id"])


class Recorder:
    """The R4 validator, recording (type, id, versionId) of every resource it passes."""

    def __init__(self) -> None:
        self.passed: Counter[tuple[str, str, int]] = Counter()

    def __call__(self, resource: dict[str, Any]) -> None:
        check(resource)
        key = (resource["resourceType"], resource["id"], int(resource["meta"]["versionId"]))
        self.passed[key] += 1


def _pipeline(tmp_path: Path) -> tuple[Pipeline, Recorder, Counter[tuple[str, str, int]]]:
    recorder = Recorder()
    db = tmp_path / "node.sqlite"
    store = FhirStore(db, validator=recorder)
    written: Counter[tuple[str, str, int]] = Counter()

    def listen(versions: Any) -> None:
        for s in versions:
            assert isinstance(s, Stored)
            written[(s.res_type, s.res_id, s.version)] += 1

    store.listeners.append(listen)
    return Pipeline(store, QuarantineStore(db), "H1"), recorder, written


def test_each_written_version_is_validated_once(tmp_path: Path, shared_data: Path) -> None:
    pipe, recorder, written = _pipeline(tmp_path)
    files = sorted((shared_data / "hl7v2" / "ms-fhir-converter" / "samples").glob("*.hl7"))
    data = b"\n".join(f.read_bytes() for f in files)
    first = pipe.ingest(Hl7v2Adapter("H1"), data, "t")
    # part again, with chunks of 7 records: messages sharing patients update them across
    # and within chunks
    again = b"\n".join(f.read_bytes() for f in files[:40])
    adapter = Hl7v2Adapter("H1")
    second = pipe.write_many(
        "hl7v2",
        ((adapter.convert_one(raw, source="t"), raw.data) for raw in split_messages(again)),
        chunk_size=7,
    )
    for s in (first, second):
        assert s.balanced()
    assert first.created > 0 and first.resources_written > 0
    assert sum(written.values()) == first.resources_written + second.resources_written
    assert set(written.values()) == {1}
    assert recorder.passed == written  # validated once each, and only what was written
    # all again: the samples hold different contents for some patients, so some change back
    third = pipe.ingest(Hl7v2Adapter("H1"), data, "t")
    assert third.created == 0 and third.updated > 0 and third.unchanged > 0
    assert recorder.passed == written and set(written.values()) == {1}


def test_reingest_validates_and_writes_nothing(tmp_path: Path) -> None:
    pipe, recorder, written = _pipeline(tmp_path)
    feed = b"".join(adt("A01", str(i), f"Li^Lei{i}", cid=str(i)) for i in range(30))
    first = pipe.ingest(Hl7v2Adapter("H1"), feed, "t")
    assert first.created == 30 and recorder.passed == written
    calls = sum(recorder.passed.values())
    again = pipe.ingest(Hl7v2Adapter("H1"), feed, "t")
    assert (again.unchanged, again.resources_written) == (30, 0)
    assert sum(recorder.passed.values()) == calls


def test_a08_versions_only_on_change_and_history_kept(tmp_path: Path) -> None:
    pipe, recorder, _ = _pipeline(tmp_path)
    pipe.ingest(Hl7v2Adapter("H1"), adt("A01", "9", "Li^Lei"), "t")
    same = pipe.ingest(Hl7v2Adapter("H1"), adt("A08", "9", "Li^Lei", cid="2"), "t")
    assert (same.unchanged, same.resources_written) == (1, 0)
    calls = sum(recorder.passed.values())
    changed = pipe.ingest(Hl7v2Adapter("H1"), adt("A08", "9", "Li^Lin", cid="3"), "t")
    assert changed.updated == 1
    pid = pid_of("9")
    assert recorder.passed[("Patient", pid, 2)] == 1
    assert sum(recorder.passed.values()) == calls + changed.resources_written
    assert pipe.store.read("Patient", pid).version == 2
    assert pipe.store.vread("Patient", pid, 1).resource()["name"][0]["given"] == ["Lei"]
    assert pipe.store.history("Patient", pid)[1] == 2
    with pipe.store.db.read() as conn:
        assert [s.res_id for s in pipe.store.match(conn, "Patient", "given=lin")] == [pid]
        assert pipe.store.match(conn, "Patient", "given=lei") == []
