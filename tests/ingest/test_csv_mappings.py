"""CSV/Excel adapter and the shipped mappings, run on the synthetic region's exports."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from pathlib import Path

import pytest
from openpyxl import Workbook

from healthmesh.fhir.store import FhirStore
from healthmesh.fhir.validation import check
from healthmesh.ingest.adapter import Converted, Rejected
from healthmesh.ingest.csv import CsvAdapter, load_mapping, shipped_mapping
from healthmesh.ingest.csv.mapping import MappingError, parse_mapping
from healthmesh.synth.region import RegionConfig, generate_region
from healthmesh.synth.region.localcodes import CLINIC_DX, DRUGS

FILES = {
    "clinic_visits": ["C01/visits.csv", "C02/visits.csv", "C04/visits.csv", "C05/visits.xlsx"],
    "clinic_prescriptions": ["C01/prescriptions.csv", "C04/prescriptions.csv",
                             "C05/prescriptions.xlsx"],
    "pharmacy_sales": ["P01/sales.csv"],
    "cdc_case_reports": ["CDC01/case_reports.csv"],
}


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("csvregion")
    generate_region(RegionConfig(seed=21, people=800, days=150, start=dt.date(2024, 11, 1)), out)
    return out


@pytest.mark.parametrize("mapping", sorted(FILES))
def test_shipped_mapping_converts_every_row_into_valid_fhir(region: Path, mapping: str) -> None:
    for rel in FILES[mapping]:
        inst = rel.split("/")[0]
        data = (region / rel).read_bytes()
        adapter = CsvAdapter(shipped_mapping(mapping), institution=inst)
        outcomes = list(adapter.convert(data, source=rel))
        rows = len(adapter.rows(data)) - 1
        assert len(outcomes) == rows  # received = converted + quarantined
        assert all(isinstance(o, Converted) for o in outcomes), [o for o in outcomes if isinstance(o, Rejected)][:1]
        for o in outcomes[:300]:
            for resource in o.resources:
                check(resource)


def test_local_codes_of_the_region_are_all_in_the_mappings() -> None:
    visits = load_mapping(shipped_mapping("clinic_visits")).translations["clinic_dx"]
    assert {local for local, _ in CLINIC_DX.values()} <= set(visits.codes)
    for icd, (local, _) in CLINIC_DX.items():
        assert visits.codes[local] == icd
    for name in ("clinic_prescriptions", "pharmacy_sales"):
        drugs = load_mapping(shipped_mapping(name)).translations["drugs"]
        for key, (local, display) in DRUGS.items():
            assert drugs.displays[local] == display
            assert drugs.codes.get(local) == (key if key not in ("LHQW", "BLG") else None)


def test_unknown_local_codes_are_kept_and_flagged(region: Path) -> None:
    adapter = CsvAdapter(shipped_mapping("pharmacy_sales"), institution="P01")
    outcomes = [o for o in adapter.convert((region / "P01/sales.csv").read_bytes(), source="s")
                if isinstance(o, Converted)]
    flagged = [o for o in outcomes if any("unmapped local code" in n for n in o.notes)]
    assert flagged
    med = next(r for r in flagged[0].resources if r["resourceType"] == "MedicationDispense")
    codings = med["medicationCodeableConcept"]["coding"]
    assert [c["system"] for c in codings] == ["urn:healthmesh:local:drug"]
    assert codings[0]["code"] in ("YP9001", "YP9002") and codings[0]["display"]
    mapped = next(o for o in outcomes if not o.notes)
    med = next(r for r in mapped.resources if r["resourceType"] == "MedicationDispense")
    systems = [c["system"] for c in med["medicationCodeableConcept"]["coding"]]
    assert systems == ["http://www.whocc.no/atc", "urn:healthmesh:local:drug"]


HEADER = "就诊流水号,患者编号,姓名,性别,出生日期,身份证号,民族,联系电话,现住址,就诊时间,就诊类型,诊断编码,诊断名称,体温,收缩压,舒张压,空腹血糖"


def _visits(*rows: str) -> bytes:
    return ("\ufeff" + "\r\n".join([HEADER, *rows]) + "\r\n").encode("utf-8")


def test_bad_rows_are_rejected_with_row_column_and_a_reason_without_the_value() -> None:
    good = "V1,P1,张伟,男,1980/01/02,11010519491231002X,01,13800000000,地址,2024/01/05 09:00,普通门诊,MZ0102,急性上呼吸道感染,37.2,,,"
    bad_date = "V2,P2,李娜,女,1980-13-40,,01,,,2024/01/05 09:00,普通门诊,MZ0102,x,,,,"
    no_name = "V3,P3,,女,1980/01/02,,01,,,2024/01/05 09:00,普通门诊,MZ0102,x,,,,"
    bad_sex = "V4,P4,王芳,X,1980/01/02,,01,,,2024/01/05 09:00,普通门诊,MZ0102,x,,,,"
    bad_temp = "V5,P5,王芳,女,1980/01/02,,01,,,2024/01/05 09:00,普通门诊,MZ0102,x,abc,,,"
    adapter = CsvAdapter(shipped_mapping("clinic_visits"), institution="C09")
    out = list(adapter.convert(_visits(good, bad_date, no_name, bad_sex, bad_temp), source="v.csv"))
    assert [type(o).__name__ for o in out] == ["Converted"] + ["Rejected"] * 4
    locations = [o.location for o in out[1:]]
    assert locations == ["row 3, column 出生日期", "row 4, column 姓名", "row 5, column 性别",
                         "row 6, column 体温"]
    for o in out[1:]:
        assert isinstance(o, Rejected) and o.source_bytes and o.source_ref.startswith("v.csv:")
        assert "1980" not in o.reason and "abc" not in o.reason
    retried = list(adapter.convert(out[3].source_bytes, source="retry"))  # quarantine retry
    assert len(retried) == 1 and isinstance(retried[0], Rejected)
    assert retried[0].location == "row 2, column 性别"
    fixed = out[3].source_bytes.decode("utf-8").replace(",X,", ",女,").encode("utf-8")
    again = list(adapter.convert(fixed, source="retry"))
    assert isinstance(again[0], Converted) and again[0].resources[0]["gender"] == "female"
    types = Counter(r["resourceType"] for r in out[0].resources)
    assert types == {"Patient": 1, "Encounter": 1, "Condition": 1, "Observation": 1}
    patient = out[0].resources[0]
    assert patient["identifier"][1] == {"system": "urn:oid:2.16.156.10011.1.3", "value": "11010519491231002X"}
    assert patient["gender"] == "male" and patient["birthDate"] == "1980-01-02"


def test_invalid_resident_id_is_kept_unverified_and_noted() -> None:
    row = "V1,P1,张伟,1,1980-01-02,110105194912310021,01,,,2024-01-05 09:00,普通门诊,MZ0102,x,,,,"
    out = list(CsvAdapter(shipped_mapping("clinic_visits")).convert(_visits(row), source="v"))
    assert isinstance(out[0], Converted)
    assert out[0].resources[0]["identifier"][1]["system"] == "urn:healthmesh:resident-id-unverified"
    assert any("identity number" in n for n in out[0].notes)


def test_ids_are_deterministic_and_prescriptions_link_to_visit_patients(region: Path, tmp_path: Path) -> None:
    visits = CsvAdapter(shipped_mapping("clinic_visits"), institution="C01")
    rx = CsvAdapter(shipped_mapping("clinic_prescriptions"), institution="C01")
    data = (region / "C01/visits.csv").read_bytes()
    first = [r["id"] for o in visits.convert(data, source="a") for r in o.resources]
    again = [r["id"] for o in visits.convert(data, source="b") for r in o.resources]
    assert first == again
    patients = {r["id"] for o in visits.convert(data, source="a") for r in o.resources
                if r["resourceType"] == "Patient"}
    encounters = {r["id"] for o in visits.convert(data, source="a") for r in o.resources
                  if r["resourceType"] == "Encounter"}
    requests = [r for o in rx.convert((region / "C01/prescriptions.csv").read_bytes(), source="p")
                for r in o.resources]
    assert all(r["subject"]["reference"].split("/")[1] in patients for r in requests)
    assert all(r["encounter"]["reference"].split("/")[1] in encounters for r in requests)
    store = FhirStore(tmp_path / "node.sqlite")
    head = list(visits.convert(data, source="a"))[:80]
    for _ in range(2):  # re-ingesting the same rows creates no duplicates
        with store.writing() as tx:
            for o in head:
                for r in o.resources:
                    tx.update(r["resourceType"], r["id"], r)
    assert store.count("Encounter") == 80
    assert store.count("Patient") == len({r["id"] for o in head for r in o.resources
                                          if r["resourceType"] == "Patient"})
    store.close()


def test_excel_workbook_gives_the_same_resources_as_csv() -> None:
    rows = [HEADER.split(","),
            ["V1", "P1", "张伟", "男", "1980/01/02", "", "01", "13800000000", "地址", "2024/01/05 09:00", "发热门诊", "MZ0101;MZ1001", "x", "38.5", "150", "95", ""]]
    book = Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    adapter = CsvAdapter(shipped_mapping("clinic_visits"))
    from_xlsx = list(adapter.convert(buffer.getvalue(), source="x.xlsx"))
    from_csv = list(adapter.convert(_visits(",".join(rows[1])), source="x.csv"))
    assert isinstance(from_xlsx[0], Converted) and isinstance(from_csv[0], Converted)
    assert from_xlsx[0].resources == from_csv[0].resources
    conditions = [r for r in from_csv[0].resources if r["resourceType"] == "Condition"]
    assert [c["code"]["coding"][0]["code"] for c in conditions] == ["J11.1", "I10"]
    encounter = next(r for r in from_csv[0].resources if r["resourceType"] == "Encounter")
    assert encounter["class"]["code"] == "EMER"
    assert encounter["period"]["start"] == "2024-01-05T09:00:00+08:00"


def test_missing_columns_reject_the_file_and_bad_mappings_fail_on_load() -> None:
    out = list(CsvAdapter(shipped_mapping("clinic_visits")).convert(b"a,b\n1,2\n", source="f"))
    assert len(out) == 1 and isinstance(out[0], Rejected) and out[0].location == "row 1"
    with pytest.raises(MappingError):
        parse_mapping({"columns": ["a"], "resources": {"p": {"type": "Patient", "key": ["b"]}}})
    with pytest.raises(MappingError):
        parse_mapping({"columns": ["a"], "resources": {"p": {"type": "Patient", "fields": [
            {"path": "gender", "column": "a", "type": "nonsense"}]}}})


def test_ws445_annotations_name_real_data_elements(shared_data: Path) -> None:
    with (shared_data / "cn_standards/ws445_emr_dataset_elements.csv").open(encoding="utf-8") as fh:
        known = {row["data_element_id_DE(WS363)"] for row in csv.DictReader(fh)}
    annotated = 0
    for name in FILES:
        for block in load_mapping(shipped_mapping(name)).blocks:
            for spec in block.fields:
                if spec.ws445:
                    assert spec.ws445 in known, spec.ws445
                    annotated += 1
    assert annotated >= 20
