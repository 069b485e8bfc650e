"""Index extraction on official examples and hand-made resources, expected rows from the spec."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from healthmesh.errors import InvalidResource
from healthmesh.fhir.search import DATE_MAX, DATE_MIN, NUM_MAX, extract


def ts(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[arg-type, misc]


def example(shared_data: Path, name: str) -> dict[str, Any]:
    return json.loads((shared_data / "fhir" / "examples" / "resources" / name).read_text())


def of(rows: list[tuple], code: str) -> list[tuple]:
    return [r[1:] for r in rows if r[0] == code]


def test_patient_example(shared_data: Path) -> None:
    rows = extract(example(shared_data, "Patient-example.json"))
    family = {n for n, _ in of(rows.strings, "family")}
    assert family == {"chalmers", "windsor"}
    name_norms = {n for n, _ in of(rows.strings, "name")}
    assert {"chalmers", "windsor", "peter", "james", "jim"} == name_norms
    assert ("chalmers", "Chalmers") in of(rows.strings, "family")
    gender_system = "http://hl7.org/fhir/administrative-gender"  # implicit: required binding
    assert of(rows.tokens, "gender") == [(gender_system, "male", None)]
    assert of(rows.tokens, "active") == [(None, "true", None)]
    assert of(rows.dates, "birthdate") == [(ts(1974, 12, 25), ts(1974, 12, 26))]
    assert of(rows.tokens, "identifier") == [("urn:oid:1.2.36.146.595.217.0.1", "12345", None)]
    assert of(rows.identifier_types, "identifier") == [
        ("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "12345")
    ]
    assert (None, "(03) 5555 6473", None) in of(rows.tokens, "phone")
    assert len(of(rows.tokens, "telecom")) == 3  # the value-less ContactPoint is skipped
    assert ("pleasantville", "PleasantVille") in of(rows.strings, "address-city")
    assert {"534 erewhon st", "rainbow", "vic", "3999"} <= {
        n for n, _ in of(rows.strings, "address")
    }
    assert of(rows.references, "organization") == [("Organization", "1", None)]
    assert of(rows.tokens, "_id") == [(None, "example", None)]


def test_contact_family_is_not_patient_family(shared_data: Path) -> None:
    rows = extract(example(shared_data, "Patient-example.json"))
    # Patient.name only: the contact 'du Marché' must not be a 'family' of the patient
    assert "du marche" not in {n for n, _ in of(rows.strings, "family")}


def test_observation_example_quantity_and_composite(shared_data: Path) -> None:
    rows = extract(example(shared_data, "Observation-example.json"))
    ucum = "http://unitsofmeasure.org"
    assert of(rows.quantities, "value-quantity") == [(ucum, "[lb_av]", "lbs", 184.5, 185.5, 185.0)]
    assert ("http://loinc.org", "29463-7", "body weight") in of(rows.tokens, "code")
    assert of(rows.references, "subject") == [("Patient", "example", None)]
    assert of(rows.references, "patient") == [("Patient", "example", None)]
    assert of(rows.dates, "date") == [(ts(2016, 3, 28), ts(2016, 3, 29))]
    comps = [r[1] for r in rows.composites if r[0] == "code-value-quantity"]
    assert ((("http://loinc.org", "29463-7"), (ucum, "[lb_av]", 184.5, 185.5, 185.0)),) == tuple(
        c for c in comps if c[0][1] == "29463-7"
    )
    assert len(comps) == 4  # one per coding of Observation.code


def test_blood_pressure_components(shared_data: Path) -> None:
    rows = extract(example(shared_data, "Observation-blood-pressure.json"))
    comps = [r[1] for r in rows.composites if r[0] == "component-code-value-quantity"]
    systolic = [c for c in comps if c[0] == ("http://loinc.org", "8480-6")]
    assert systolic == [
        (
            ("http://loinc.org", "8480-6"),
            ("http://unitsofmeasure.org", "mm[Hg]", 106.5, 107.5, 107.0),
        )
    ]
    text_rows = [r for r in of(rows.tokens, "code") if r[1] is None]
    assert text_rows == [(None, None, "blood pressure systolic & diastolic")]


def obs(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": "o1", "status": "final", **fields}


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("2013", ts(2013, 1, 1), ts(2014, 1, 1)),
        ("2013-02", ts(2013, 2, 1), ts(2013, 3, 1)),
        ("2013-12", ts(2013, 12, 1), ts(2014, 1, 1)),
        ("2013-02-28", ts(2013, 2, 28), ts(2013, 3, 1)),
        ("2013-02-28T10:30:00Z", ts(2013, 2, 28, 10, 30), ts(2013, 2, 28, 10, 30, 1)),
        ("2013-02-28T10:30:00+02:00", ts(2013, 2, 28, 8, 30), ts(2013, 2, 28, 8, 30, 1)),
        (
            "2013-02-28T10:30:00.25-05:00",
            ts(2013, 2, 28, 15, 30) + 0.25,
            ts(2013, 2, 28, 15, 30) + 0.26,
        ),
        ("2013-02-28T10:30:00", ts(2013, 2, 28, 10, 30), ts(2013, 2, 28, 10, 30, 1)),  # no tz: UTC
    ],
)
def test_date_precisions(value: str, low: float, high: float) -> None:
    rows = extract(obs(effectiveDateTime=value))
    assert of(rows.dates, "date") == [(low, pytest.approx(high))]


def test_period_and_open_ends_and_timing() -> None:
    rows = extract(obs(effectivePeriod={"start": "2013-01-14"}))
    assert of(rows.dates, "date") == [(ts(2013, 1, 14), DATE_MAX)]
    rows = extract(obs(effectivePeriod={"end": "2013"}))
    assert of(rows.dates, "date") == [(DATE_MIN, ts(2014, 1, 1))]
    rows = extract(obs(effectiveTiming={"event": ["2013-01-01", "2013-01-03"]}))
    assert of(rows.dates, "date") == [
        (ts(2013, 1, 1), ts(2013, 1, 2)),
        (ts(2013, 1, 3), ts(2013, 1, 4)),
    ]
    rows = extract(obs(effectiveDateTime="2013-02-30"))  # invalid date: not indexed
    assert of(rows.dates, "date") == []


def test_quantity_forms() -> None:
    rows = extract(
        obs(valueQuantity={"value": 5.4, "comparator": "<", "code": "mg", "system": "s"})
    )
    low, high, value = of(rows.quantities, "value-quantity")[0][3:]
    assert low < -1e200 and high == pytest.approx(5.45) and value == 5.4
    rows = extract(obs(valueRange={"low": {"value": 5, "unit": "mg"}, "high": {"value": 10}}))
    assert of(rows.quantities, "combo-value-quantity") == []  # Range is not a Quantity there
    charge = {
        "resourceType": "ChargeItem",
        "status": "billable",
        "subject": {"reference": "Patient/1"},
        "code": {"text": "x"},
        "priceOverride": {"value": 40, "currency": "EUR"},
    }
    rows = extract(charge)
    assert of(rows.quantities, "price-override") == [
        ("urn:iso:std:iso:4217", "EUR", "EUR", 39.5, 40.5, 40.0)
    ]


def test_range_quantity_and_number_precision() -> None:
    group = {
        "resourceType": "Group",
        "type": "person",
        "actual": True,
        "characteristic": [
            {"code": {"text": "age"}, "valueRange": {"low": {"value": 18}}, "exclude": False}
        ],
    }
    assert extract(group).quantities == []  # no Group quantity parameter: nothing indexed
    assess = {
        "resourceType": "RiskAssessment",
        "status": "final",
        "subject": {"reference": "Patient/1"},
        "prediction": [
            {"probabilityDecimal": 0.02},
            {"probabilityRange": {"low": {"value": 1}, "high": {"value": 2.5}}},
        ],
    }
    rows = extract(assess)
    assert of(rows.numbers, "probability") == [(0.015, 0.025, 0.02)]
    usage = {
        "resourceType": "Library",
        "status": "active",
        "type": {"text": "x"},
        "useContext": [{"code": {"code": "age"}, "valueRange": {"low": {"value": 18}}}],
    }
    (row,) = of(extract(usage).quantities, "context-quantity")
    assert row[3:] == (17.5, NUM_MAX, None)


def test_references() -> None:
    rows = extract(
        {
            "resourceType": "Provenance",
            "recorded": "2020-01-01T00:00:00Z",
            "agent": [{"who": {"reference": "Practitioner/7/_history/2"}}],
            "target": [
                {"reference": "Patient/1/_history/2"},
                {"reference": "http://other.org/fhir/Patient/9"},
                {"reference": "#contained"},
                {"identifier": {"system": "s", "value": "v"}},
                {"reference": "urn:uuid:1234"},
            ],
        }
    )
    assert of(rows.references, "target") == [
        ("Patient", "1", None),
        ("Patient", "9", "http://other.org/fhir/Patient/9"),
        (None, None, "urn:uuid:1234"),
    ]
    assert of(rows.references, "patient") == [
        ("Patient", "1", None),
        ("Patient", "9", "http://other.org/fhir/Patient/9"),
    ]
    assert of(rows.references, "agent") == [("Practitioner", "7", None)]
    # the identifier-only reference is not a reference row, but serves :identifier
    assert of(rows.tokens, "target") == [("s", "v", None)]


def test_resolve_is_checks_reference_type_statically() -> None:
    rows = extract(obs(subject={"reference": "Group/5"}, code={"text": "x"}))
    assert of(rows.references, "subject") == [("Group", "5", None)]
    assert of(rows.references, "patient") == []
    contained = obs(contained=[{"resourceType": "Patient", "id": "p"}], subject={"reference": "#p"})
    assert of(extract(contained).references, "patient") == []  # contained: not indexed


def test_canonical_references_and_uris() -> None:
    qr = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": "http://example.org/Questionnaire/q1|2.0",
        "meta": {"profile": ["http://x.org/StructureDefinition/p"], "source": "http://src"},
    }
    rows = extract(qr)
    assert of(rows.references, "questionnaire") == [
        ("Questionnaire", "q1", "http://example.org/Questionnaire/q1"),
        (None, None, "http://example.org/Questionnaire/q1|2.0"),
    ]
    assert of(rows.uris, "_profile") == [("http://x.org/StructureDefinition/p",)]
    assert of(rows.uris, "_source") == [("http://src",)]


def test_tokens_of_every_kind() -> None:
    pat = {
        "resourceType": "Patient",
        "id": "p",
        "meta": {
            "tag": [{"system": "urn:t", "code": "a", "display": "Tag A"}],
            "security": [{"system": "urn:s", "code": "R"}],
            "lastUpdated": "2020-01-02T03:04:05.678Z",
        },
        "deceasedDateTime": "2019",
        "telecom": [{"system": "email", "value": "a@b.org"}],
        "communication": [
            {
                "language": {
                    "coding": [{"system": "urn:ietf:bcp:47", "code": "zh-CN"}],
                    "text": "中文",
                }
            }
        ],
    }
    rows = extract(pat)
    assert of(rows.tokens, "_tag") == [("urn:t", "a", "tag a")]
    assert of(rows.tokens, "_security") == [("urn:s", "R", None)]
    assert of(rows.tokens, "deceased") == [(None, "true", None)]
    assert of(rows.tokens, "email") == [(None, "a@b.org", None)]
    assert of(rows.tokens, "language") == [("urn:ietf:bcp:47", "zh-CN", None), (None, None, "中文")]
    assert of(rows.dates, "_lastUpdated") == [
        (
            pytest.approx(ts(2020, 1, 2, 3, 4, 5) + 0.678),
            pytest.approx(ts(2020, 1, 2, 3, 4, 5) + 0.679),
        )
    ]
    assert of(rows.dates, "death-date") == [(ts(2019, 1, 1), ts(2020, 1, 1))]


def test_code_elements_carry_the_system_of_their_required_binding() -> None:
    rows = extract(
        obs(
            code={"text": "x"},
            valueQuantity={"value": 1, "comparator": "<"},
            meta={"tag": [{"code": "t"}]},
        )
    )
    assert of(rows.tokens, "status") == [("http://hl7.org/fhir/observation-status", "final", None)]
    assert of(rows.tokens, "_tag") == [(None, "t", None)]  # a Coding keeps its own (no) system
    pat = {
        "resourceType": "Patient",
        "id": "p",
        "address": [{"use": "home"}],
        "contact": [{"gender": "female"}],
        "link": [{"other": {"reference": "Patient/q"}, "type": "seealso"}],
    }
    rows = extract(pat)
    assert of(rows.tokens, "address-use") == [("http://hl7.org/fhir/address-use", "home", None)]
    assert of(rows.tokens, "_id") == [(None, "p", None)]  # an id, not a bound code


def test_strings_are_normalised() -> None:
    pat = {"resourceType": "Patient", "name": [{"family": "Zoë  GARCÍA", "given": ["张三"]}]}
    rows = extract(pat)
    assert of(rows.strings, "family") == [("zoe garcia", "Zoë  GARCÍA")]
    assert ("张三", "张三") in of(rows.strings, "name")


def test_rows_are_deduplicated() -> None:
    # Observation.code | Observation.component.code with the same coding twice
    coding = {"system": "http://loinc.org", "code": "1"}
    rows = extract(obs(code={"coding": [coding]}, component=[{"code": {"coding": [coding]}}]))
    assert of(rows.tokens, "combo-code") == [("http://loinc.org", "1", None)]


def test_resource_without_type_is_rejected() -> None:
    with pytest.raises(InvalidResource):
        extract({"id": "x"})


def test_unknown_type_yields_no_rows() -> None:
    # validation rejects unknown types before indexing; extraction simply finds nothing
    assert extract({"resourceType": "NotAType", "id": "x"}).total() == 0
