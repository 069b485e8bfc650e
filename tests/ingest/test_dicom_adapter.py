"""DICOM headers -> ImagingStudy for every file in ../shared/data/dicom and the region's files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from healthmesh.fhir.validation import check
from healthmesh.ingest.adapter import Converted, Rejected
from healthmesh.ingest.dicom import DicomAdapter
from healthmesh.synth.region import RegionConfig, generate_region

#: files in ../shared/data/dicom that cannot be converted, and why (none: no_meta.dcm, which has
#: a stray leading byte and no File Meta header, is recovered with a note)
EXPECTED_REJECTS: dict[str, str] = {}


def test_every_shared_file_converts_or_is_rejected_with_a_reason(shared_data: Path) -> None:
    files = sorted((shared_data / "dicom").glob("*.dcm"))
    assert len(files) >= 19
    adapter = DicomAdapter(institution="PACS")
    converted = 0
    for path in files:
        outcomes = list(adapter.convert(path.read_bytes(), source=path.name))
        assert len(outcomes) == 1
        outcome = outcomes[0]
        if path.name in EXPECTED_REJECTS:
            assert isinstance(outcome, Rejected), path.name
            assert EXPECTED_REJECTS[path.name] in outcome.reason
            continue
        assert isinstance(outcome, Converted), (path.name, getattr(outcome, "reason", ""))
        patient, study = outcome.resources
        check(patient)
        check(study)
        assert study["subject"]["reference"] == f"Patient/{patient['id']}"
        assert study["identifier"][0]["value"].startswith("urn:oid:")
        converted += 1
    assert converted == len(files) - len(EXPECTED_REJECTS)
    recovered = next(iter(adapter.convert((shared_data / "dicom/no_meta.dcm").read_bytes(),
                                          source="no_meta.dcm")))
    assert isinstance(recovered, Converted)
    assert any("stray leading byte" in n for n in recovered.notes)
    assert recovered.resources[1]["modality"][0]["code"] == "CT"


def test_character_sets_decode_names(shared_data: Path) -> None:
    adapter = DicomAdapter()

    def names(name: str) -> list[str]:
        out = next(iter(adapter.convert((shared_data / "dicom" / name).read_bytes(), source=name)))
        assert isinstance(out, Converted)
        return [n["text"] for n in out.resources[0]["name"]]

    assert names("chrX1.dcm")[:2] == ["王小東", "Wang XiaoDong"]  # ISO_IR 192 (UTF-8)
    assert names("chrH31.dcm")[0] == "山田太郎"  # ISO 2022 IR 87 (JIS X 0208)
    ct = next(iter(adapter.convert((shared_data / "dicom/CT_small.dcm").read_bytes(), source="c")))
    assert isinstance(ct, Converted)
    assert ct.resources[1]["started"] == "2004-01-19T07:27:30-05:00"  # TimezoneOffsetFromUTC
    assert ct.resources[1]["modality"][0]["code"] == "CT"


def test_region_dicom_in_utf8_and_gb18030(tmp_path: Path) -> None:
    generate_region(RegionConfig(seed=2, people=1500, days=200, start=dt.date(2024, 11, 1)), tmp_path)
    adapter = DicomAdapter()
    seen = set()
    for hospital in ("H01", "H02"):
        files = sorted((tmp_path / hospital / "dicom").glob("*.dcm"))
        assert files, hospital
        for path in files[:10]:
            out = next(iter(adapter.convert(path.read_bytes(), source=path.name)))
            assert isinstance(out, Converted)
            patient = out.resources[0]
            assert patient["identifier"][0]["system"] == f"urn:healthmesh:id:{hospital}"
            text = patient["name"][0]["text"]
            if any("\u4e00" <= c <= "\u9fff" for c in text):
                seen.add(hospital)
    assert seen == {"H01", "H02"}


@pytest.mark.parametrize("data", [b"", b"garbage" * 40, b"\x00" * 128 + b"DICM" + b"\xff" * 20])
def test_unreadable_bytes_are_rejected(data: bytes) -> None:
    out = list(DicomAdapter().convert(data, source="bad.dcm"))
    assert len(out) == 1 and isinstance(out[0], Rejected)
    assert out[0].reason and out[0].location
