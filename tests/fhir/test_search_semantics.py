"""Search semantics per parameter type, modifier and prefix, from R4 search.html.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from healthmesh.fhir.store import FhirStore


def ids(store: FhirStore, rtype: str, *pairs: tuple[str, str]) -> set[str]:
    res = store.search_engine.search(rtype, [*pairs, ("_count", "100")], strict=True)
    return {m.res_id for m in res.matches}


@pytest.fixture
def data(store: FhirStore) -> dict[str, Any]:
    with store.writing() as tx:
        p1 = tx.update("Patient", "p1", {"resourceType": "Patient", "id": "p1",
            "name": [{"family": "Müller", "given": ["Jürgen"]}], "gender": "male",
            "birthDate": "1980-05", "active": True,
            "identifier": [{"system": "urn:ssn", "value": "111",
                            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "SS"}]}}],
            "telecom": [{"system": "phone", "value": "555-1234"}]})
        tx.update("Patient", "p2", {"resourceType": "Patient", "id": "p2",
            "name": [{"family": "Mullins", "given": ["Ann"]}], "gender": "female",
            "birthDate": "1990-01-15", "active": False})
        tx.update("Patient", "p3", {"resourceType": "Patient", "id": "p3",
            "name": [{"family": "Zhou"}], "birthDate": "2001-03-04"})
        for i, (code, value, when, subj) in enumerate([
            ("8310-5", 38.5, "2024-01-10T08:00:00Z", "p1"),
            ("8310-5", 36.6, "2024-02-10T08:00:00Z", "p2"),
            ("8867-4", 72.0, "2023-12-31T23:00:00Z", "p1"),
        ]):
            tx.update("Observation", f"o{i}", {"resourceType": "Observation", "id": f"o{i}",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": code}], "text": "Vital sign"},
                "subject": {"reference": f"Patient/{subj}"}, "effectiveDateTime": when,
                "valueQuantity": {"value": value, "system": "http://unitsofmeasure.org",
                                  "code": "Cel" if code == "8310-5" else "/min"}})
        tx.update("RiskAssessment", "r1", {"resourceType": "RiskAssessment", "id": "r1",
            "status": "final", "subject": {"reference": "Patient/p1"},
            "prediction": [{"probabilityDecimal": 0.35}]})
        tx.update("ValueSet", "v1", {"resourceType": "ValueSet", "id": "v1", "status": "active",
            "url": "http://acme.org/fhir/ValueSet/123"})
    return {"p1": p1}


def test_string(store: FhirStore, data: Any) -> None:
    assert ids(store, "Patient", ("family", "mul")) == {"p1", "p2"}  # accent-insensitive prefix
    assert ids(store, "Patient", ("family:exact", "Müller")) == {"p1"}
    assert ids(store, "Patient", ("family:exact", "müller")) == set()
    assert ids(store, "Patient", ("family:contains", "lin")) == {"p2"}
    assert ids(store, "Patient", ("name", "jurgen")) == {"p1"}
    assert ids(store, "Patient", ("family", "zhou,mullins")) == {"p2", "p3"}  # OR
    assert ids(store, "Patient", ("family", "mul"), ("given", "ann")) == {"p2"}  # AND


def test_token(store: FhirStore, data: Any) -> None:
    assert ids(store, "Patient", ("gender", "male")) == {"p1"}
    assert ids(store, "Patient", ("gender:not", "male")) == {"p2", "p3"}
    assert ids(store, "Patient", ("identifier", "urn:ssn|111")) == {"p1"}
    assert ids(store, "Patient", ("identifier", "urn:other|111")) == set()
    assert ids(store, "Patient", ("identifier", "111")) == {"p1"}
    assert ids(store, "Patient", ("identifier", "urn:ssn|")) == {"p1"}
    assert ids(store, "Patient", ("identifier", "|111")) == set()
    assert ids(store, "Patient", ("identifier:of-type",
        "http://terminology.hl7.org/CodeSystem/v2-0203|SS|111")) == {"p1"}
    assert ids(store, "Patient", ("active", "true")) == {"p1"}
    assert ids(store, "Patient", ("gender:missing", "true")) == {"p3"}
    assert ids(store, "Patient", ("gender:missing", "false")) == {"p1", "p2"}
    assert ids(store, "Observation", ("code:text", "vital")) == {"o0", "o1", "o2"}
    assert ids(store, "Patient", ("phone", "555-1234")) == {"p1"}


@pytest.mark.parametrize(("value", "expected"), [
    ("1980", {"p1"}), ("eq1980-05", {"p1"}), ("1980-05-01", set()),
    ("gt1985", {"p2", "p3"}), ("lt1985", {"p1"}), ("ge1990-01-15", {"p2", "p3"}),
    ("le1990-01-15", {"p1", "p2"}), ("sa1980-05", {"p2", "p3"}), ("eb1990", {"p1"}),
    ("ne1980", {"p2", "p3"}), ("2001-03-04", {"p3"}),
])
def test_date_prefixes(store: FhirStore, data: Any, value: str, expected: set[str]) -> None:
    assert ids(store, "Patient", ("birthdate", value)) == expected


def test_quantity_number_reference_uri(store: FhirStore, data: Any) -> None:
    assert ids(store, "Observation", ("value-quantity", "gt37")) == {"o0", "o2"}
    assert ids(store, "Observation", ("value-quantity", "gt37|http://unitsofmeasure.org|Cel")) == {"o0"}
    assert ids(store, "Observation", ("value-quantity", "38.5||Cel")) == {"o0"}
    assert ids(store, "Observation", ("value-quantity", "38")) == set()  # 38 means [37.5, 38.5)
    assert ids(store, "Observation", ("value-quantity", "ap38")) == {"o0", "o1"}  # within 10%
    assert ids(store, "RiskAssessment", ("probability", "0.35")) == {"r1"}
    assert ids(store, "RiskAssessment", ("probability", "gt0.4")) == set()
    assert ids(store, "Observation", ("subject", "Patient/p1")) == {"o0", "o2"}
    assert ids(store, "Observation", ("subject", "p2")) == {"o1"}
    assert ids(store, "Observation", ("subject:Patient", "p2")) == {"o1"}
    assert ids(store, "Observation", ("patient", "Patient/p1"), ("code", "http://loinc.org|8310-5")) == {"o0"}
    assert ids(store, "Observation", ("date", "ge2024-01-01"), ("code", "8310-5")) == {"o0", "o1"}
    assert ids(store, "ValueSet", ("url", "http://acme.org/fhir/ValueSet/123")) == {"v1"}
    assert ids(store, "ValueSet", ("url:below", "http://acme.org/fhir")) == {"v1"}
    assert ids(store, "ValueSet", ("url:above", "http://acme.org/fhir/ValueSet/123/_history/5")) == {"v1"}


def test_composite_chain_has_include_sort(store: FhirStore, data: Any) -> None:
    assert ids(store, "Observation", ("code-value-quantity", "8310-5$gt38")) == {"o0"}
    assert ids(store, "Observation", ("code-value-quantity", "8867-4$gt38")) == {"o2"}
    assert ids(store, "Observation", ("subject:Patient.gender", "female")) == {"o1"}
    assert ids(store, "Observation", ("subject:Patient.name", "jurg")) == {"o0", "o2"}
    assert ids(store, "Patient", ("_has:Observation:subject:code", "8867-4")) == {"p1"}
    assert ids(store, "Patient", ("_id", "p1,p3")) == {"p1", "p3"}
    res = store.search_engine.search("Observation", [("_include", "Observation:subject"), ("code", "8310-5")])
    assert {s.res_id for s in res.included} == {"p1", "p2"}
    res = store.search_engine.search("Patient", [("_revinclude", "Observation:subject"), ("_id", "p2")])
    assert {s.res_id for s in res.included} == {"o1"}
    res = store.search_engine.search("Patient", [("_sort", "-birthdate")])
    assert [m.res_id for m in res.matches] == ["p3", "p2", "p1"]
    res = store.search_engine.search("Patient", [("_sort", "gender,-_id")])
    assert [m.res_id for m in res.matches] == ["p2", "p1", "p3"]
    res = store.search_engine.search("Patient", [("_summary", "count")])
    assert res.total == 3 and res.matches == []


def test_two_level_chain_and_include_iterate(store: FhirStore) -> None:
    with store.writing() as tx:
        tx.update("Organization", "org1", {"resourceType": "Organization", "id": "org1",
                                           "name": "West Lake Hospital"})
        tx.update("Patient", "q1", {"resourceType": "Patient", "id": "q1",
                                    "managingOrganization": {"reference": "Organization/org1"}})
        tx.update("Patient", "q2", {"resourceType": "Patient", "id": "q2"})
        for i, subj in enumerate(("q1", "q2")):
            tx.update("Encounter", f"e{i}", {"resourceType": "Encounter", "id": f"e{i}",
                                             "status": "finished", "class": {"code": "AMB"},
                                             "subject": {"reference": f"Patient/{subj}"}})
    assert ids(store, "Encounter", ("subject:Patient.organization.name", "west")) == {"e0"}
    assert ids(store, "Encounter", ("subject:Patient.organization.name", "east")) == set()
    res = store.search_engine.search("Encounter", [
        ("_id", "e0"), ("_include", "Encounter:subject"),
        ("_include:iterate", "Patient:organization")])
    assert {s.res_id for s in res.included} == {"q1", "org1"}
    res = store.search_engine.search("Encounter", [
        ("_id", "e0"), ("_include", "Encounter:subject"), ("_include", "Patient:organization")])
    assert {s.res_id for s in res.included} == {"q1"}  # without :iterate, one level only


def test_reference_identifier_modifier(store: FhirStore) -> None:
    with store.writing() as tx:
        tx.update("Observation", "ox", {"resourceType": "Observation", "id": "ox",
                                        "status": "final", "code": {"text": "t"},
                                        "subject": {"identifier": {"system": "urn:mrn",
                                                                   "value": "M-7"}}})
    assert ids(store, "Observation", ("subject:identifier", "urn:mrn|M-7")) == {"ox"}
    assert ids(store, "Observation", ("subject:identifier", "urn:mrn|M-8")) == set()
