"""Every HL7 v2 message in ../shared/data/hl7v2 converts or is quarantined with a precise
reason and location; none crashes; the converted resources pass the store's validation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from healthmesh.fhir.validation import check
from healthmesh.ingest.adapter import Converted, Rejected
from healthmesh.ingest.hl7v2 import Hl7v2Adapter


def sample_files(shared_data: Path) -> list[Path]:
    root = shared_data / "hl7v2"
    return sorted(root.glob("ms-fhir-converter/samples/*.hl7")) + sorted(
        root.glob("python-hl7/*.hl7")
    )


def test_every_message_converts_or_is_quarantined(shared_data: Path) -> None:
    adapter = Hl7v2Adapter("H1")
    files = sample_files(shared_data)
    assert len(files) == 142
    kinds: Counter[str] = Counter()
    for f in files:
        data = f.read_bytes()
        outs = list(adapter.convert(data, source=f.name))
        assert outs, f.name
        for out in outs:
            if isinstance(out, Rejected):
                kinds["rejected"] += 1
                assert out.reason and out.location, f.name
                flat = data.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
                assert out.source_bytes and out.source_bytes.rstrip(b"\r") in flat
            else:
                kinds["converted"] += 1
                assert out.resources, f.name
                for res in out.resources:
                    check(res)  # raises InvalidResource on any invalid resource
    # 142 messages (the FHS batch holds one); all the types we map convert
    assert kinds["converted"] + kinds["rejected"] == 142
    assert kinds["converted"] >= 65


@pytest.mark.parametrize(
    ("name", "types"),
    [
        ("ADT-A01-01.hl7", {"Patient", "Encounter", "Observation"}),
        ("ADT-A40-02.hl7", {"Patient"}),
        ("LAB-ORU-1.hl7", {"Patient", "Observation", "DiagnosticReport"}),
        ("ORM-O01-01.hl7", {"Patient", "Encounter", "ServiceRequest", "Observation"}),
        ("OML-O21-01.hl7", {"Patient", "Encounter", "ServiceRequest", "Observation"}),
        ("RDE-O11-01.hl7", {"Patient", "Encounter", "MedicationRequest", "Observation"}),
        (
            "RDS-O13-01.hl7",
            {"Patient", "Encounter", "MedicationRequest", "MedicationDispense", "Observation"},
        ),
        ("VXU-V04-01.hl7", {"Patient", "Encounter", "Immunization", "Observation"}),
    ],
)
def test_message_types_map_to_their_resources(
    shared_data: Path, name: str, types: set[str]
) -> None:
    path = shared_data / "hl7v2" / "ms-fhir-converter" / "samples" / name
    (out,) = Hl7v2Adapter("H1").convert(path.read_bytes(), source=name)
    assert isinstance(out, Converted)
    assert {r["resourceType"] for r in out.resources} == types


def test_known_bad_messages_are_quarantined_precisely(shared_data: Path) -> None:
    root = shared_data / "hl7v2"
    expect = {
        "python-hl7/oru_r01_glucose_v24.hl7": ("not a valid HL7 date/time", "PID-7"),
        "python-hl7/repetition_subcomponent_sample.hl7": (
            "ORU message without an OBR segment",
            "OBR",
        ),
        "ms-fhir-converter/samples/SIU-S12-01.hl7": (
            "message type SIU^S12 is not supported",
            "MSH-9",
        ),
        "ms-fhir-converter/samples/MDM-T02-01.hl7": (
            "message type MDM^T02 is not supported",
            "MSH-9",
        ),
    }
    for rel, (reason, location) in expect.items():
        (out,) = Hl7v2Adapter("H1").convert((root / rel).read_bytes(), source=rel)
        assert isinstance(out, Rejected), rel
        assert (out.reason, out.location) == (reason, location)


def test_ids_are_deterministic_and_scoped_by_institution(shared_data: Path) -> None:
    path = shared_data / "hl7v2" / "ms-fhir-converter" / "samples" / "LAB-ORU-1.hl7"
    data = path.read_bytes()
    first = next(Hl7v2Adapter("H1").convert(data, source="a"))
    again = next(Hl7v2Adapter("H1").convert(data, source="b"))
    other = next(Hl7v2Adapter("H2").convert(data, source="a"))
    assert isinstance(first, Converted) and isinstance(again, Converted)
    assert isinstance(other, Converted)
    ids = [r["id"] for r in first.resources]
    assert ids == [r["id"] for r in again.resources]
    assert len(set(ids)) == len(ids)
    assert not set(ids) & {r["id"] for r in other.resources}
