"""The synthetic region: determinism, truth, realistic differences, disease signal, formats."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from collections import Counter
from pathlib import Path

import pydicom
import pytest

from healthmesh.identity.divisions import DivisionTable
from healthmesh.identity.idnumber import parse_id_number, try_parse_id_number
from healthmesh.synth.region import RegionConfig, generate_region
from healthmesh.synth.region.events import Timeline
from healthmesh.synth.region.region import simulate

from .derive_tables import OUT, derive, render


def _rows(path: Path, encoding: str = "utf-8-sig") -> list[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as fh:
        return list(csv.DictReader(fh))


def test_shipped_tables_equal_a_fresh_derivation(shared_data: Path) -> None:
    assert OUT.read_text("utf-8") == render(derive(shared_data))


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(folder)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    cfg = RegionConfig(seed=5, people=200, days=90)
    generate_region(cfg, tmp_path / "a")
    generate_region(cfg, tmp_path / "b")
    generate_region(RegionConfig(seed=6, people=200, days=90), tmp_path / "c")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_every_person_has_a_valid_id_with_a_known_division(small_region) -> None:
    out, _ = small_region
    table = DivisionTable.load()
    persons = _rows(out / "truth/persons.csv", "utf-8")
    assert len(persons) == 1500
    legacy = 0
    for p in persons:
        rid = parse_id_number(p["id_number"])
        assert rid.birth_date.isoformat() == p["birth_date"]
        assert rid.sex == p["sex"]
        assert table.code_known(rid.division_code)  # any period: some districts are newer
        legacy += rid.division_code != p["district"]
    assert legacy > 0  # people born before 2015 in 双流 carry 510122


def test_truth_covers_every_exported_record_and_persons_recur(small_region) -> None:
    out, summary = small_region
    records = _rows(out / "truth/records.csv", "utf-8")
    by_inst = Counter(r["institution"] for r in records)
    for inst, info in summary.institutions.items():
        assert by_inst[inst] == info["counts"].get("patients", 0)
    per_person = Counter(r["person_id"] for r in records)
    assert sum(1 for n in per_person.values() if n >= 3) > 100  # one person, many institutions
    truth = {(r["institution"], r["local_id"]) for r in records}
    for clinic in ("C01", "C02"):
        for row in _rows(out / clinic / "visits.csv", "utf-8-sig"):
            assert (clinic, row["患者编号"]) in truth


def test_institutions_differ_like_real_ones(small_region) -> None:
    out, _ = small_region
    records = _rows(out / "truth/records.csv", "utf-8")
    errors = Counter(e for r in records for e in r["errors"].split(";") if e)
    for kind in ("homophone", "nickname", "missing_id", "swapped_id_digits", "pinyin_only",
                 "address_outdated_after_move"):
        assert errors[kind] > 0, kind
    clinic = _rows(out / "C01/visits.csv")
    missing = sum(1 for r in clinic if not r["身份证号"]) / len(clinic)
    assert 0.15 < missing < 0.6
    swapped = [r for r in records if "swapped_id_digits" in r["errors"]]
    persons = {p["person_id"]: p for p in _rows(out / "truth/persons.csv", "utf-8")}
    for r in swapped[:5]:
        assert persons[r["person_id"]]["id_number"]  # truth keeps the right one


def test_hl7_files_use_cr_and_declared_encodings(small_region) -> None:
    out, _ = small_region
    h01 = sorted((out / "H01/hl7").glob("adt_*.hl7"))[0].read_bytes()
    assert b"\n" not in h01 and h01.startswith(b"MSH|^~\\&|")
    assert b"UNICODE UTF-8" in h01
    h02 = sorted((out / "H02/hl7").glob("adt_*.hl7"))[0].read_bytes()
    assert b"GB 18030-2000" in h02
    with pytest.raises(UnicodeDecodeError):
        h02.decode("utf-8")
    text = h02.decode("gb18030")
    pids = [s for s in text.split("\r") if s.startswith("PID|")]
    ids = [f.split("^")[0] for p in pids for f in p.split("|")[3].split("~") if "NNCHN" in f]
    assert ids and sum(try_parse_id_number(i) is not None for i in ids) / len(ids) > 0.95
    kinds = {m.split("|")[8] for m in text.split("\r") if m.startswith("MSH|")}
    assert "ADT^A04^ADT_A01" in kinds


def test_dicom_headers_read_back_with_chinese_names(small_region) -> None:
    out, _ = small_region
    files = sorted(out.glob("H0*/dicom/*.dcm"))
    assert files
    for path in files[:20]:
        ds = pydicom.dcmread(path)
        assert "PixelData" not in ds
        assert ds.PatientID.startswith(path.parent.parent.name)
        assert ds.StudyInstanceUID.startswith("2.25.")
    names = [str(pydicom.dcmread(p).PatientName) for p in files[:40]]
    assert any("=" in n and any("\u4e00" <= c <= "\u9fff" for c in n) for n in names)


def test_consents_match_opt_out_truth(small_region) -> None:
    out, _ = small_region
    persons = {p["person_id"]: p for p in _rows(out / "truth/persons.csv", "utf-8")}
    records = {(r["institution"], r["local_id"]): r["person_id"]
               for r in _rows(out / "truth/records.csv", "utf-8")}
    total = 0
    for path in out.glob("*/consent.ndjson"):
        for line in path.read_text("utf-8").splitlines():
            consent = json.loads(line)
            assert consent["provision"]["type"] == "deny"
            local = consent["patient"]["identifier"]["value"]
            assert persons[records[(path.parent.name, local)]]["research_opt_out"] == "1"
            total += 1
    share = sum(p["research_opt_out"] == "1" for p in persons.values()) / len(persons)
    assert 0.01 < share < 0.06 and total > 0


def test_outbreaks_raise_ili_visits_and_sentinel_sales_in_their_district() -> None:
    cfg = RegionConfig(seed=3, people=6000, days=365, outbreaks=3)
    people, _, tl = simulate(cfg)
    assert isinstance(tl, Timeline) and len(tl.outbreaks) == 3
    residents = Counter(p.district for p in people)
    for ob in tl.outbreaks:
        labelled = [v for v in tl.visits if v.outbreak == ob.id]
        assert labelled and all(ob.start <= v.start.date() <= ob.end + dt.timedelta(days=2)
                                for v in labelled)
        assert any(s.outbreak == ob.id for s in tl.sales)
        # ILI visits per resident during the outbreak: its district vs the others
        fever = Counter(v.person.district for v in tl.visits
                        if v.kind in ("fever", "inpatient") and ob.start <= v.start.date() <= ob.end)
        rate = {d: fever[d] / n for d, n in residents.items()}
        others = sorted(r for d, r in rate.items() if d != ob.district)
        assert rate[ob.district] > 1.5 * others[len(others) // 2], ob


def test_chronic_patients_have_labs_and_drugs_that_fit() -> None:
    cfg = RegionConfig(seed=4, people=1500, days=180)
    people, _, tl = simulate(cfg)
    chronic = [v for v in tl.visits if v.kind == "chronic"]
    assert chronic
    for v in chronic[:300]:
        codes = {r.loinc for r in v.results}
        if "I10" in v.diagnoses:
            assert {"8480-6", "8462-4"} <= codes
            assert {p.drug[:3] for p in v.prescriptions} & {"C08", "C09", "C03"}
        if "E11.9" in v.diagnoses:
            assert "14771-0" in codes
    smoking = [(v.person, r.value) for v in tl.visits for r in v.results if r.loinc == "72166-2"]
    assert smoking and all((value == "SMOKER") == p.smoker for p, value in smoking)
    assert any(p.smoker for p, _ in smoking)
    diabetic = [p for p in people if p.diabetes_onset is not None]
    healthy = [p for p in people if p.diabetes_onset is None]
    assert sum(p.bmi for p in diabetic) / len(diabetic) > sum(p.bmi for p in healthy) / len(healthy)
    assert tl.defects.get("negative_value", 0) + tl.defects.get("unit_mismatch", 0) > 0


def test_moves_reach_hospitals_as_adt_a08_that_the_hl7_adapter_converts(small_region) -> None:
    from healthmesh.ingest.adapter import Converted
    from healthmesh.ingest.hl7v2 import Hl7v2Adapter

    out, summary = small_region
    assert sum(i["counts"].get("address_updates", 0) for i in summary.institutions.values()) > 0
    persons = {p["person_id"]: p for p in _rows(out / "truth/persons.csv", "utf-8")}
    records = {(r["institution"], r["local_id"]): r for r in _rows(out / "truth/records.csv", "utf-8")}
    a08 = []
    for path in sorted(out.glob("H0[13]/hl7/adt_*.hl7")):
        for message in path.read_bytes().decode("utf-8").split("MSH|")[1:]:
            if "|ADT^A08^" in message:
                a08.append((path.parent.parent.name, "MSH|" + message))
    assert a08
    for hospital, message in a08:
        pid = next(s for s in message.split("\r") if s.startswith("PID|")).split("|")
        mrn = pid[3].split("^")[0]
        truth = records[(hospital, mrn)]
        assert "address_updated_at_later_visit" in truth["errors"]
        person = persons[truth["person_id"]]
        assert pid[11].split("^")[8] == person["new_district"]  # the address after the move
        assert pid[11].split("^")[0] != person["address"]
        outcome = next(iter(Hl7v2Adapter(hospital).convert(message.encode(), source="a08")))
        assert isinstance(outcome, Converted)
        assert any(r["resourceType"] == "Patient" for r in outcome.resources)


def test_duplicate_numbers_are_merged_with_adt_a40(tmp_path: Path) -> None:
    from healthmesh.ingest.adapter import Converted
    from healthmesh.ingest.hl7v2 import Hl7v2Adapter

    summary = generate_region(RegionConfig(seed=12, people=3000, days=365), tmp_path)
    merges = sum(i["counts"].get("merges", 0) for i in summary.institutions.values())
    assert merges > 0
    records = {(r["institution"], r["local_id"]): r for r in _rows(tmp_path / "truth/records.csv", "utf-8")}
    merged = [r for r in records.values() if "duplicate_merged" in r["errors"]]
    assert len(merged) == merges
    found = 0
    for path in sorted(tmp_path.glob("H0[13]/hl7/adt_*.hl7")):
        hospital = path.parent.parent.name
        for message in path.read_bytes().decode("utf-8").split("MSH|")[1:]:
            if "|ADT^A40^" not in message:
                continue
            segments = {s.split("|")[0]: s.split("|") for s in message.split("\r") if s}
            survivor = records[(hospital, segments["PID"][3].split("^")[0])]
            prior = records[(hospital, segments["MRG"][1].split("^")[0])]
            assert survivor["person_id"] == prior["person_id"]  # the truth agrees
            assert "duplicate_merged" in prior["errors"]
            outcome = next(iter(Hl7v2Adapter(hospital).convert(("MSH|" + message).encode(),
                                                                 source="a40")))
            assert isinstance(outcome, Converted)
            found += 1
    assert found > 0
