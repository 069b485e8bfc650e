"""Node-side signals: syndromes, sentinel drugs, daily counts, small-count protection."""

from __future__ import annotations

import datetime as dt

import pytest

from healthmesh.errors import InvalidInput
from healthmesh.surveillance.signals import (
    CountKey,
    Protection,
    age_band,
    classify_dispense,
    classify_resource,
    daily_counts,
    protect,
)
from healthmesh.surveillance.signals.syndromes import ICD10, LOINC


def cond(code=None, text=None, pid="p1", day="2025-01-06"):
    concept = {}
    if code:
        concept["coding"] = [{"system": ICD10, "code": code}]
    if text:
        concept["text"] = text
    return {"resourceType": "Condition", "subject": {"reference": f"Patient/{pid}"},
            "onsetDateTime": day, "code": concept}


def temp(value, unit="Cel", pid="p1", enc="e1", day="2025-01-06T09:00:00+08:00"):
    return {"resourceType": "Observation", "subject": {"reference": f"Patient/{pid}"},
            "encounter": {"reference": f"Encounter/{enc}"}, "effectiveDateTime": day,
            "code": {"coding": [{"system": LOINC, "code": "8310-5"}]},
            "valueQuantity": {"value": value, "code": unit}}


@pytest.mark.parametrize(("code", "expected"), [
    ("J10.1", {"ili"}), ("J11.101", {"ili"}), ("A09.9", {"diarrhoea"}),
    ("B08.4", {"rash", "hfmd"}), ("J20.9", {"acute_respiratory"}), ("I10", set()),
])
def test_icd10(code, expected) -> None:
    assert classify_resource(cond(code=code)) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("发热伴咳嗽3天", {"fever", "acute_respiratory", "ili"}),
    ("腹泻、呕吐", {"diarrhoea"}),
    ("Fever and sore throat", {"fever", "acute_respiratory", "ili"}),
    ("全身皮疹", {"rash"}),
    ("influenza", {"ili"}),
    ("follow-up of hypertension", set()),
    ("coughing", set()),  # whole words only for English keywords
])
def test_chief_complaint_keywords(text, expected) -> None:
    enc = {"resourceType": "Encounter", "reasonCode": [{"text": text}]}
    assert classify_resource(enc) == expected


def test_temperature_threshold_and_units() -> None:
    assert classify_resource(temp(38.0)) == {"fever"}
    assert classify_resource(temp(37.9)) == set()
    assert classify_resource(temp(101.0, unit="[degF]")) == {"fever"}
    other = temp(39.0)
    other["code"] = {"coding": [{"system": LOINC, "code": "8867-4"}]}
    assert classify_resource(other) == set()


@pytest.mark.parametrize(("concept", "expected"), [
    ({"coding": [{"system": "http://www.whocc.no/atc", "code": "M01AE01"}]}, {"antipyretic"}),
    ({"text": "蒙脱石散 3g"}, {"antidiarrhoeal"}),
    ({"text": "右美沙芬糖浆"}, {"cough"}),
    ({"text": "Amlodipine"}, set()),
])
def test_pharmacy_sentinels(concept, expected) -> None:
    md = {"resourceType": "MedicationDispense", "status": "completed",
          "medicationCodeableConcept": concept}
    assert classify_dispense(md) == expected
    md["status"] = "cancelled"
    assert classify_dispense(md) == set()


def test_daily_counts_once_per_patient_day_and_fever_clinic() -> None:
    patients = [
        {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "2019-03-01",
         "address": [{"district": "徐汇区"}]},
        {"resourceType": "Patient", "id": "p2", "gender": "female", "birthDate": "1950-01-01",
         "address": [{"district": "徐汇区"}]},
    ]
    enc = {"resourceType": "Encounter", "id": "e1", "subject": {"reference": "Patient/p1"},
           "period": {"start": "2025-01-06T08:55:00+08:00"},
           "type": [{"text": "发热门诊"}], "reasonCode": [{"text": "发热"}]}
    resources = [*patients, enc, temp(38.6), cond(code="R50.9"),
                 cond(code="A09", pid="p2"),
                 {"resourceType": "MedicationDispense", "subject": {"reference": "Patient/p2"},
                  "whenHandedOver": "2025-01-06", "medicationCodeableConcept": {
                      "text": "布洛芬"}}]
    counts = daily_counts(resources)
    day = dt.date(2025, 1, 6)
    assert counts[CountKey(day, "徐汇区", "fever", "5-14", "male")] == 1
    assert counts[CountKey(day, "徐汇区", "fever_clinic_fever", "5-14", "male")] == 1
    assert counts[CountKey(day, "徐汇区", "diarrhoea", "65+", "female")] == 1
    assert counts[CountKey(day, "徐汇区", "rx_antipyretic", "65+", "female")] == 1
    assert sum(counts.values()) == 4


def test_age_bands() -> None:
    on = dt.date(2025, 6, 1)
    assert age_band(dt.date(2020, 6, 2), on) == "0-4"
    assert age_band(dt.date(2010, 6, 1), on) == "15-24"
    assert age_band(dt.date(1900, 1, 1), on) == "65+"
    assert age_band(None, on) == "unknown"


def test_protection() -> None:
    cells = {"a": 0, "b": 3, "c": 5, "d": 40}
    assert protect(cells, Protection("suppress", threshold=5)) == {
        "a": 0, "b": None, "c": 5, "d": 40}
    noised = protect(cells, Protection("noise", epsilon=0.5), seed=7)
    assert set(noised) == set(cells) and all(v is not None and v >= 0 for v in noised.values())
    assert noised != cells
    assert protect(cells, Protection("none")) == cells
    with pytest.raises(InvalidInput):
        Protection("round")  # type: ignore[arg-type]
