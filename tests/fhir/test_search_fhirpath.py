"""The FHIRPath subset parser and compiler, and the fhirpathpy fallback."""

from __future__ import annotations

from typing import Any

import pytest

from healthmesh.fhir.search import load_registry
from healthmesh.fhir.search.compiler import compile_expression, evaluate, reference_type
from healthmesh.fhir.search.fhirpath import Unsupported, parse, split_union
from healthmesh.fhir.search.reference import evaluate_resource

OBS: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "o",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "1"}, {"code": "2"}]},
    "subject": {"reference": "Patient/p"},
    "valueQuantity": {"value": 3, "unit": "mg"},
    "component": [
        {"code": {"text": "a"}, "valueString": "x"},
        {"code": {"text": "b"}, "valueQuantity": {"value": 4}},
    ],
    "extension": [{"url": "http://e", "valueString": "ext"}],
    "_status": {"extension": [{"url": "http://s", "valueCode": "c"}]},
}


def run(expr: str, res: dict[str, Any] = OBS) -> list[Any]:
    return [v for v, _ in evaluate(compile_expression(expr), res)]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("Observation.code.coding.code", ["1", "2"]),
        ("Observation.code.coding[1].code", ["2"]),
        ("Observation.code.coding.first().code", ["1"]),
        ("Observation.code.coding.last().code", ["2"]),
        ("Observation.value", [{"value": 3, "unit": "mg"}]),
        ("(Observation.value as Quantity).unit", ["mg"]),
        ("Observation.value.as(String)", []),
        ("Observation.component.value.ofType(string)", ["x"]),
        ("Observation.component.value.as(Quantity).value", [4]),
        ("Observation.value is Quantity", [True]),
        ("Observation.value.is(Period)", [False]),
        ("Observation.code.coding.where(system='http://loinc.org').code", ["1"]),
        ("Observation.code.coding.where(system!='http://loinc.org').code", []),
        ("Observation.subject.where(resolve() is Patient)", [{"reference": "Patient/p"}]),
        ("Observation.subject.where(resolve() is Group)", []),
        ("Observation.extension('http://e').value", ["ext"]),
        ("Observation.code.exists() and Observation.focus.exists()", [False]),
        ("Observation.code.exists() or Observation.focus.exists()", [True]),
        ("Observation.focus.exists().not()", [True]),
        ("Observation.focus.empty()", [True]),
        ("Observation.code.coding.count()", [2]),
        ("Observation | Observation.component", [OBS, *OBS["component"]]),
        ("%resource.id", ["o"]),
        ("Resource.id", ["o"]),
        ("Patient.id", []),
        ("Observation.status", ["final"]),
        ("Observation.component.where(code.text = 'b').value.value", [4]),
        ("Observation.code.coding.where($this.code = '2').code", ["2"]),
    ],
)
def test_compiled_subset(expr: str, expected: list[Any]) -> None:
    assert run(expr) == expected


@pytest.mark.parametrize(
    "expr",
    [
        "Observation.code.coding.select(code)",
        "Observation.value.value + 1",
        "Observation.subject.resolve().name",
        "Observation.code.coding[%index]",
        "Observation.code.coding.code.substring(1)",
        "Observation.code.coding.where(code > 1 div 2)",
        "$index",
        "Observation.code.coding.code in ('1')",
    ],
)
def test_outside_the_subset_is_refused(expr: str) -> None:
    with pytest.raises(Unsupported):
        compile_expression(expr)


def test_fallback_to_fhirpathpy_gives_the_same_elements() -> None:
    reg = load_registry()
    expr = "Observation.code.coding.select(code)"
    fn = reg.compiled(expr)
    assert [v for v, _ in fn([(OBS, "Observation")], OBS)] == evaluate_resource(expr, OBS)
    assert [v for v, _ in fn([(OBS, "Observation")], OBS)] == ["1", "2"]


def test_parse_helpers() -> None:
    node = parse("A.x | B.y.where(z = 'a|b') | (C.v as Quantity)")
    assert len(split_union(node)) == 3
    assert parse("Patient.`name`") == parse("Patient.name")


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ({"reference": "Patient/1"}, "Patient"),
        ({"reference": "Patient/1/_history/3"}, "Patient"),
        ({"reference": "https://x.org/fhir/Group/1"}, "Group"),
        ({"reference": "#c1"}, "Practitioner"),
        ({"reference": "#nope"}, None),
        ({"reference": "urn:uuid:abc"}, None),
        ({"identifier": {"value": "1"}, "type": "Patient"}, None),
        ({"reference": "Unknown/1"}, None),
    ],
)
def test_reference_type(ref: dict[str, Any], expected: str | None) -> None:
    root = {
        "resourceType": "Observation",
        "contained": [{"resourceType": "Practitioner", "id": "c1"}],
    }
    assert reference_type(ref, root) == expected
