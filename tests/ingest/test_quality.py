"""Data quality (Kahn framework): each defect the issue names is found, counts match the truth."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from healthmesh.cli import main
from healthmesh.fhir.store import FhirStore
from healthmesh.ingest.adapter import Converted
from healthmesh.ingest.csv import CsvAdapter
from healthmesh.ingest.quality import CHECKS, assess, assess_store, render_table
from healthmesh.synth.region import RegionConfig, generate_region

TODAY = dt.date(2025, 6, 1)
PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1980-05-01", "gender": "female",
           "name": [{"text": "x"}]}


def _obs(oid: str, code: str, value: float, unit: str, when: str = "2024-01-01") -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
                              "code": unit}}


def test_each_named_defect_is_found_and_clean_data_passes() -> None:
    future = {**PATIENT, "id": "p2", "birthDate": "2030-01-01"}
    encounters = [
        {"resourceType": "Encounter", "id": "e1", "subject": {"reference": "Patient/p1"},
         "period": {"start": "1979-01-01T10:00:00+08:00"}},  # before birth
        {"resourceType": "Encounter", "id": "e2", "subject": {"reference": "Patient/p1"},
         "period": {"start": "2024-01-01T10:00:00+08:00"}},
    ]
    observations = [
        _obs("o1", "14771-0", -5.2, "mmol/L"),  # negative
        _obs("o2", "14771-0", 126, "mg/dL"),  # unit does not fit the code
        _obs("o3", "14771-0", 6.1, "mmol/L"),
        _obs("o4", "8480-6", 128, "mm[Hg]"),
    ]
    report = assess([PATIENT, future], encounters + observations, institution="T", today=TODAY)
    r = report.results
    assert (r["patient.birthDate.future"].tested, r["patient.birthDate.future"].failed) == (2, 1)
    assert r["patient.birthDate.future"].examples == ["Patient/p2"]
    assert r["encounter.after_birth"].failed == 1
    assert r["encounter.after_birth"].examples == ["Encounter/e1"]
    assert r["observation.value.nonnegative"].examples == ["Observation/o1"]
    assert r["observation.unit.fits"].examples == ["Observation/o2"]
    assert r["observation.value.range"].failed == 1  # o1 (o2's unit does not fit: not ranged)
    clean = assess([PATIENT], [encounters[1], observations[2], observations[3]],
                   institution="T", today=TODAY)
    plaus = {c: v for c, v in clean.results.items() if CHECKS[c].dimension == "plausibility"}
    assert plaus and all(v.failed == 0 for v in plaus.values())
    assert clean.scores()["plausibility"] == 1.0
    text = render_table(report)
    assert "patient.birthDate.future" in text and "scores:" in text
    assert "-5.2" not in json.dumps(report.to_json())  # references, never values


def test_checks_catalogue_is_complete() -> None:
    for cid, check in CHECKS.items():
        assert check.id == cid and check.description
        assert check.dimension in ("completeness", "conformance", "plausibility")


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("qregion")
    generate_region(RegionConfig(seed=8, people=6000, days=120, start=dt.date(2024, 12, 1)), out)
    return out


def _export(region: Path, clinic: str, stem: str) -> Path:
    csv_path = region / clinic / f"{stem}.csv"
    return csv_path if csv_path.exists() else csv_path.with_suffix(".xlsx")


def _converted(region: Path, clinic: str) -> list[dict]:
    resources = []
    for mapping, stem in (("clinic_visits", "visits"), ("clinic_prescriptions", "prescriptions")):
        adapter = CsvAdapter(mapping, institution=clinic)
        path = _export(region, clinic, stem)
        for o in adapter.convert(path.read_bytes(), source=path.name):
            assert isinstance(o, Converted)
            resources += o.resources
    unique = {(r["resourceType"], r["id"]): r for r in resources}  # one Patient per visit row
    return list(unique.values())


def test_region_defects_are_counted_exactly(region: Path) -> None:
    with (region / "truth/records.csv").open(encoding="utf-8") as fh:
        truth = list(csv.DictReader(fh))
    futures, negatives, found_futures, found_negatives = 0, 0, 0, 0
    for clinic in ("C01", "C02", "C03", "C04", "C05"):
        futures += sum(1 for t in truth if t["institution"] == clinic and "future_birth_date" in t["errors"])
        rows = CsvAdapter("clinic_visits").rows(_export(region, clinic, "visits").read_bytes())
        columns = [rows[0].index(c) for c in ("体温", "收缩压", "舒张压", "空腹血糖")]
        negatives += sum(1 for row in rows[1:] for i in columns
                         if i < len(row) and row[i].startswith("-"))
        resources = _converted(region, clinic)
        patients = [r for r in resources if r["resourceType"] == "Patient"]
        others = [r for r in resources if r["resourceType"] != "Patient"]
        report = assess(patients, others, institution=clinic, today=dt.date(2025, 6, 1))
        found_futures += report.results["patient.birthDate.future"].failed
        found_negatives += report.results["observation.value.nonnegative"].failed
    assert found_futures == futures
    assert found_negatives == negatives


def test_cli_report_on_a_node_store(region: Path, tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    store = FhirStore(db)
    resources = _converted(region, "C02")[:400]
    with store.writing() as tx:
        for r in resources:
            tx.update(r["resourceType"], r["id"], r)
    direct = assess_store(store, "C02", today=TODAY)
    store.close()
    out = tmp_path / "q.json"
    result = CliRunner().invoke(main, ["quality", "report", "--institution", "C02", "--db", str(db),
                                       "--json", str(out), "--today", "2025-06-01"])
    assert result.exit_code == 0, result.output
    assert "completeness" in result.output and "encounter.subject.resolves" in result.output
    doc = json.loads(out.read_text("utf-8"))
    assert doc["institution"] == "C02" and doc["scores"] == direct.scores()
    assert doc["resources"]["Patient"] == sum(1 for r in resources if r["resourceType"] == "Patient")
    missing = CliRunner().invoke(main, ["quality", "report", "--institution", "X", "--db",
                                        str(tmp_path / "none.sqlite")])
    assert missing.exit_code != 0
