"""The node's catalog entry: the pure JSON shape and the SQL figures (SQLite, PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from healthmesh.errors import InvalidInput
from healthmesh.fhir.store import FhirStore
from healthmesh.ingest.quality import QualityReport
from healthmesh.node.catalog import Figures, band, build_catalog, catalog_entry, collect

ICD10 = "http://hl7.org/fhir/sid/icd-10"


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, None),
        (9, None),
        (10, 10),
        (14, 10),
        (15, 20),
        (999, 1000),
        (1049, 1000),
        (1050, 1100),
        (25_432, 25_000),
        (1_234_567, 1_200_000),
    ],
)
def test_band(n: int, expected: int | None) -> None:
    assert band(n) == expected


def test_band_never_below_the_minimum() -> None:
    assert band(11, 11) == 11
    assert band(5, 5) == 10  # rounded to the nearest 10, like every count below 1,000
    assert all((band(n, 7) or 7) >= 7 for n in range(7, 50))


def test_entry_shape_thresholds_and_banding() -> None:
    figures = Figures(
        resource_counts={"Patient": 123, "Condition": 57, "ImagingStudy": 3},
        months={"Condition": {202001: 2, 202002: 12, 202311: 10, 202312: 9}},
        codes={
            ("Condition", ICD10, "E11.9"): (42, "Type 2 diabetes"),
            ("Condition", ICD10, "Q87.1"): (9, "rare"),
            ("Condition", "", "LOCAL1"): (10, None),
        },
        patients=123,
    )
    entry = catalog_entry(
        figures, institution="h1", classification=3, generated=dt.date(2026, 1, 2)
    )
    assert entry == {
        "institution": "h1",
        "generated": "2026-01-02",
        "classification": 3,
        "min_patients": 10,
        "patients": 120,
        "resource_counts": {"Condition": 60, "Patient": 120},  # ImagingStudy: too few
        "date_ranges": {"Condition": {"from": "2020-02", "to": "2023-11"}},  # months >= 10
        "codes": [
            {
                "resource_type": "Condition",
                "system": ICD10,
                "code": "E11.9",
                "display": "Type 2 diabetes",
                "patients": 40,
            },
            {
                "resource_type": "Condition",
                "system": None,
                "code": "LOCAL1",
                "display": None,
                "patients": 10,
            },
        ],
        "quality": None,
    }
    json.dumps(entry)  # JSON-serialisable as published


def test_quality_scores_from_a_report_or_mapping() -> None:
    report = QualityReport(institution="h1", assessed_on="2026-01-01")
    report.record("patient.birthDate", True, "Patient/a")
    report.record("patient.birthDate", False, "Patient/b")
    entry = catalog_entry(Figures(), institution="h1", classification=2, quality=report)
    assert entry["quality"]["completeness"] == 0.5
    assert "Patient/b" not in json.dumps(entry)  # failing references are not published
    mapped = catalog_entry(
        Figures(), institution="h1", classification=2, quality={"scores": {"overall": 0.91234}}
    )
    assert mapped["quality"] == {"overall": 0.9123}


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"classification": 0}, "classification"),
        ({"classification": 5}, "classification"),
        ({"min_patients": 3}, "below 5"),
    ],
)
def test_entry_refuses_bad_settings(kw: dict[str, Any], msg: str) -> None:
    args: dict[str, Any] = {"institution": "h", "classification": 2, **kw}
    with pytest.raises(InvalidInput, match=msg):
        catalog_entry(Figures(), **args)


# ---- SQL figures ------------------------------------------------------------------------------


def _resources() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(14):
        pid = f"p{i:02d}"
        out.append(
            {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1970-01-01"}
        )
        # 14 patients with E11.9 (two conditions each for the first 4), in 2023-01 .. 2023-02
        month = "2023-01" if i < 11 else "2023-02"
        for k in range(2 if i < 4 else 1):
            out.append(
                {
                    "resourceType": "Condition",
                    "id": f"c{i}-{k}",
                    "subject": {"reference": f"Patient/{pid}"},
                    "code": {
                        "coding": [
                            {
                                "system": ICD10,
                                "code": "E11.9",
                                "display": "Type 2 diabetes mellitus",
                            }
                        ]
                    },
                    "onsetDateTime": f"{month}-15T10:00:00+08:00",
                }
            )
        if i < 6:  # 6 patients with I10: not listed
            out.append(
                {
                    "resourceType": "Condition",
                    "id": f"h{i}",
                    "subject": {"reference": f"Patient/{pid}"},
                    "code": {
                        "coding": [{"system": ICD10, "code": "I10", "display": "Hypertension"}]
                    },
                    "onsetDateTime": "2019-06-01",
                }
            )
    # p00..p04 refused research use: E11.9 counts 9 patients and is not listed
    for i in range(5):
        out.append(
            {
                "resourceType": "Consent",
                "id": f"k{i}",
                "status": "active",
                "scope": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                            "code": "research",
                        }
                    ]
                },
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": {"reference": f"Patient/p{i:02d}"},
                "dateTime": "2024-01-01",
                "provision": {"type": "deny"},
            }
        )
    return out


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FhirStore]:
    url = (
        str(tmp_path / "n.sqlite")
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    s = FhirStore(url, validator=lambda _r: None)
    with s.writing() as tx:
        for r in _resources():
            tx.update(r["resourceType"], r["id"], r)
    yield s
    s.close()


def test_collect_figures(store: FhirStore) -> None:
    figures = collect(store)
    assert figures.resource_counts == {"Patient": 14, "Condition": 24, "Consent": 5}
    assert figures.patients == 14
    assert figures.months["Condition"] == {202301: 15, 202302: 3, 201906: 6}
    # consent refusers are not counted; I10 (6 patients) is under the threshold
    assert figures.codes == {}
    low = collect(store, min_patients=5)
    assert low.codes == {
        ("Condition", ICD10, "E11.9"): (9, "Type 2 diabetes mellitus"),
    }


def test_build_catalog(store: FhirStore) -> None:
    entry = build_catalog(store, institution="h1", classification=2, min_patients=5)
    assert entry["resource_counts"] == {"Condition": 20, "Patient": 10, "Consent": 10}
    assert entry["date_ranges"] == {"Condition": {"from": "2019-06", "to": "2023-01"}}
    assert [(c["code"], c["patients"]) for c in entry["codes"]] == [("E11.9", 10)]
    assert entry["quality"] is None
    # nothing in the entry names a patient or a resource
    text = json.dumps(entry)
    assert "p0" not in text and "Patient/" not in text
