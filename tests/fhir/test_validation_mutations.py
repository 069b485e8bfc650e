"""A battery of broken resources: each must be rejected with exactly the expected issues.

Every case starts from a valid resource (asserted valid first), applies one mutation and
compares the full set of ``(location, code)`` error pairs, so a check that fires in the wrong
place, or fires twice, fails the test as much as one that does not fire.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from healthmesh.fhir.validation import resource_types, validate

Json = dict[str, Any]
SECRET = "Zhang-San-110101199003077777"  # stands for patient data in every mutated value


def patient() -> Json:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"lastUpdated": "2024-01-02T03:04:05.678+08:00", "tag": [{"code": "t"}]},
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
        "extension": [{"url": "http://example.org/ext", "valueString": "v"}],
        "identifier": [{"system": "urn:oid:1.2.156.1", "value": "12345"}],
        "active": True,
        "name": [{"use": "official", "family": "Wang", "given": ["Xiao", "Ming"]}],
        "telecom": [{"system": "phone", "value": "+86 10 1234", "rank": 1}],
        "gender": "male",
        "birthDate": "1990-03-07",
        "deceasedBoolean": False,
        "address": [{"line": ["1 Road"], "city": "Beijing", "country": "CN"}],
        "contact": [{"name": {"family": "Li"}, "gender": "female"}],
        "managingOrganization": {"reference": "Organization/o1"},
        "generalPractitioner": [{"reference": "#o2"}],
        "link": [{"other": {"reference": "Patient/p2"}, "type": "seealso"}],
        "contained": [{"resourceType": "Organization", "id": "o2", "name": "Clinic"}],
    }


def observation() -> Json:
    return {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}], "text": "HR"},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-02-29T10:11:12Z",
        "issued": "2024-02-29T10:11:12.123+08:00",
        "valueQuantity": {
            "value": 72.5,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
        "component": [{"code": {"text": "c"}, "valueInteger": 3}],
    }


def bundle() -> Json:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:11111111-1111-1111-1111-111111111111",
                "resource": patient(),
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:22222222-2222-2222-2222-222222222222",
                "resource": {
                    **observation(),
                    "subject": {"reference": "urn:uuid:11111111-1111-1111-1111-111111111111"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }


def parameters() -> Json:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": patient()},
            {"name": "n", "valueInteger": 1, "part": [{"name": "x", "valueBoolean": True}]},
        ],
    }


def condition() -> Json:
    return {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [
                {"system": "http://example.org/local", "code": "x"},
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                 "code": "active"},
            ]
        },
        "code": {"text": "fever"},
        "subject": {"reference": "Patient/p1"},
        "onsetDateTime": "2024-01-01",
    }


BASES: dict[str, Callable[[], Json]] = {
    "condition": condition,
    "patient": patient,
    "observation": observation,
    "bundle": bundle,
    "parameters": parameters,
}


def _set(doc: Json, path: str, value: Any) -> None:
    """Set ``a.b[0].c`` in a nested document (creating the last key or list item)."""
    parts = path.replace("]", "").replace("[", ".").split(".")
    node: Any = doc
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    if last.isdigit() and int(last) == len(node):
        node.append(value)
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value


def _del(doc: Json, path: str) -> None:
    parts = path.replace("]", "").replace("[", ".").split(".")
    node: Any = doc
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    del node[parts[-1]]


# (id, base, mutation {path: value | DELETE}, expected {(location, code)})
DELETE = object()
# fmt: off
CASES: list[tuple[str, str, dict[str, Any], set[tuple[str, str]]]] = [
    # unknown elements, at every level
    ("unknown-top", "patient", {"foo": SECRET}, {("Patient.foo", "structure")}),
    ("unknown-backbone", "patient", {"contact[0].bar": 1},
     {("Patient.contact[0].bar", "structure")}),
    ("unknown-datatype", "patient", {"name[0].nickname": SECRET},
     {("Patient.name[0].nickname", "structure")}),
    ("unknown-in-meta", "patient", {"meta.author": "x"}, {("Patient.meta.author", "structure")}),
    ("unknown-contained", "patient", {"contained[0].colour": "red"},
     {("Patient.contained[0].colour", "structure")}),
    ("unknown-bundle-entry", "bundle", {"entry[1].resource.colour": "red"},
     {("Bundle.entry[1].resource.colour", "structure")}),
    ("unknown-nested-contained-in-bundle", "bundle",
     {"entry[0].resource.contained[0].alias2": ["x"]},
     {("Bundle.entry[0].resource.contained[0].alias2", "structure")}),
    ("unknown-parameters-resource", "parameters", {"parameter[0].resource.eyeColour": "b"},
     {("Parameters.parameter[0].resource.eyeColour", "structure")}),
    ("unknown-parameters-part", "parameters", {"parameter[1].part[0].bogus": 1},
     {("Parameters.parameter[1].part[0].bogus", "structure")}),
    ("resourceType-in-datatype", "patient", {"name[0].resourceType": "HumanName"},
     {("Patient.name[0].resourceType", "structure")}),
    ("choice-bad-type-suffix", "observation", {"valueFoo": 1},
     {("Observation.valueFoo", "structure")}),
    ("choice-type-not-allowed", "patient", {"deceasedString": "x", "deceasedBoolean": DELETE},
     {("Patient.deceasedString", "structure")}),
    # wrong JSON type
    ("array-for-single", "patient", {"gender": ["male"]}, {("Patient.gender", "structure")}),
    ("single-for-array", "patient", {"name": {"family": "W"}}, {("Patient.name", "structure")}),
    ("object-for-primitive", "patient", {"birthDate": {"v": SECRET}},
     {("Patient.birthDate", "structure")}),
    ("primitive-for-object", "patient", {"maritalStatus": SECRET},
     {("Patient.maritalStatus", "structure")}),
    ("string-for-boolean", "patient", {"active": "true"}, {("Patient.active", "structure")}),
    ("number-for-boolean", "patient", {"active": 1}, {("Patient.active", "structure")}),
    ("string-for-decimal", "observation", {"valueQuantity.value": "72.5"},
     {("Observation.valueQuantity.value", "structure")}),
    ("bool-for-decimal", "observation", {"valueQuantity.value": True},
     {("Observation.valueQuantity.value", "structure")}),
    ("float-for-integer", "observation", {"component[0].valueInteger": 3.5},
     {("Observation.component[0].valueInteger", "structure")}),
    ("integer-out-of-range", "observation", {"component[0].valueInteger": 2147483648},
     {("Observation.component[0].valueInteger", "value")}),
    ("positiveInt-zero", "patient", {"telecom[0].rank": 0}, {("Patient.telecom[0].rank", "value")}),
    ("number-for-string", "patient", {"name[0].family": 42},
     {("Patient.name[0].family", "structure")}),
    ("null-single", "patient", {"gender": None}, {("Patient.gender", "structure")}),
    ("array-element-wrong-type", "patient", {"name[0].given[1]": 7},
     {("Patient.name[0].given[1]", "structure")}),
    ("array-of-objects-with-string", "patient", {"identifier[0]": SECRET},
     {("Patient.identifier[0]", "structure")}),
    # cardinality
    ("missing-required", "observation", {"status": DELETE}, {("Observation.status", "required")}),
    ("missing-required-complex", "observation", {"code": DELETE},
     {("Observation.code", "required")}),
    ("missing-required-backbone", "patient", {"link[0].other": DELETE},
     {("Patient.link[0].other", "required")}),
    ("missing-required-in-bundle", "bundle", {"entry[1].resource.status": DELETE},
     {("Bundle.entry[1].resource.status", "required")}),
    ("missing-required-bundle-type", "bundle", {"type": DELETE}, {("Bundle.type", "required")}),
    ("missing-required-choice", "bundle", {"entry[0].request.method": DELETE},
     {("Bundle.entry[0].request.method", "required")}),
    # choice types
    ("choice-twice", "observation", {"valueString": SECRET},
     {("Observation.valueString", "structure")}),
    ("choice-twice-primitive-ext", "patient",
     {"_deceasedDateTime": {"extension": [{"url": "http://e", "valueCode": "x"}]}},
     {("Patient._deceasedDateTime", "structure")}),
    # dates and other formats
    ("bad-month", "patient", {"birthDate": "1990-13-01"}, {("Patient.birthDate", "value")}),
    ("bad-calendar-day", "patient", {"birthDate": "1990-02-29"}, {("Patient.birthDate", "value")}),
    ("datetime-no-seconds", "observation", {"effectiveDateTime": "2024-01-01T10:11Z"},
     {("Observation.effectiveDateTime", "value")}),
    ("datetime-no-timezone", "observation", {"effectiveDateTime": "2024-01-01T10:11:12"},
     {("Observation.effectiveDateTime", "value")}),
    ("datetime-bad-day", "observation", {"effectiveDateTime": "2023-04-31T10:11:12Z"},
     {("Observation.effectiveDateTime", "value")}),
    ("instant-partial", "observation", {"issued": "2024-02-29"}, {("Observation.issued", "value")}),
    ("meta-lastUpdated-bad", "patient", {"meta.lastUpdated": "yesterday"},
     {("Patient.meta.lastUpdated", "value")}),
    ("bad-id", "patient", {"id": "p 1"}, {("Patient.id", "value")}),
    ("long-id", "patient", {"id": "x" * 65}, {("Patient.id", "value")}),
    ("bad-oid", "patient", {"extension[0]": {"url": "http://e", "valueOid": "urn:oid:1.02"}},
     {("Patient.extension[0].valueOid", "value")}),
    ("uri-with-space", "observation", {"code.coding[0].system": "http://lo inc.org"},
     {("Observation.code.coding[0].system", "value")}),
    ("code-double-space", "observation", {"code.coding[0].code": "8867  4"},
     {("Observation.code.coding[0].code", "value")}),
    ("code-leading-space", "observation", {"code.coding[0].code": " 8867-4"},
     {("Observation.code.coding[0].code", "value")}),
    ("bad-narrative", "patient", {"text.div": "plain"}, {("Patient.text.div", "value")}),
    ("bad-base64", "patient", {"photo": [{"data": "abc"}]}, {("Patient.photo[0].data", "value")}),
    ("blank-base64", "patient", {"photo": [{"data": " \n "}]}, {("Patient.photo[0].data", "value")}),
    ("decimal-nan", "observation", {"valueQuantity.value": float("nan")},
     {("Observation.valueQuantity.value", "value")}),
    # empty things
    ("empty-string", "patient", {"name[0].family": ""}, {("Patient.name[0].family", "value")}),
    ("empty-array", "patient", {"name": []}, {("Patient.name", "required")}),
    ("empty-object", "patient", {"maritalStatus": {}}, {("Patient.maritalStatus", "required")}),
    ("empty-string-in-array", "patient", {"name[0].given[0]": ""},
     {("Patient.name[0].given[0]", "value")}),
    # required bindings
    ("bad-gender", "patient", {"gender": "M"}, {("Patient.gender", "code-invalid")}),
    ("bad-status", "observation", {"status": "done"}, {("Observation.status", "code-invalid")}),
    ("bad-name-use", "patient", {"name[0].use": "nick"}, {("Patient.name[0].use", "code-invalid")}),
    ("bad-bundle-type", "bundle", {"type": "batch-reply"}, {("Bundle.type", "code-invalid")}),
    ("bad-code-in-bundle-entry", "bundle", {"entry[0].resource.gender": "f"},
     {("Bundle.entry[0].resource.gender", "code-invalid")}),
    ("bad-http-verb", "bundle", {"entry[1].request.method": "FETCH"},
     {("Bundle.entry[1].request.method", "code-invalid")}),
    ("bad-clinical-status", "condition", {"clinicalStatus.coding[1].code": "gone"},
     {("Condition.clinicalStatus", "code-invalid")}),
    ("clinical-status-wrong-system", "condition",
     {"clinicalStatus.coding[1].system": "http://snomed.info/sct"},
     {("Condition.clinicalStatus", "code-invalid")}),
    ("clinical-status-text-only", "condition", {"clinicalStatus": {"text": "active"}},
     {("Condition.clinicalStatus", "code-invalid")}),
    ("bad-narrative-status", "patient", {"text.status": "auto"},
     {("Patient.text.status", "code-invalid")}),
    # references
    ("ref-target-not-allowed", "observation", {"subject.reference": "Medication/m1"},
     {("Observation.subject.reference", "invalid")}),
    ("ref-type-not-allowed", "observation", {"subject.type": "Medication"},
     {("Observation.subject.type", "invalid")}),
    ("ref-absolute-not-allowed", "patient",
     {"managingOrganization.reference": "https://x.org/fhir/Practitioner/1/_history/2"},
     {("Patient.managingOrganization.reference", "invalid")}),
    ("ref-urn-uuid-in-bundle", "bundle",
     {"entry[1].resource.subject.reference": "urn:uuid:22222222-2222-2222-2222-222222222222"},
     {("Bundle.entry[1].resource.subject.reference", "invalid")}),
    ("ref-in-array", "patient", {"link[0].other.reference": "Organization/o1"},
     {("Patient.link[0].other.reference", "invalid")}),
    ("ref-malformed-relative", "patient", {"managingOrganization.reference": "Organization"},
     {("Patient.managingOrganization.reference", "value")}),
    ("ref-unknown-type", "patient", {"managingOrganization.reference": "Organisation/o1"},
     {("Patient.managingOrganization.reference", "value")}),
    ("ref-type-disagrees", "observation", {"subject.type": "Group"},
     {("Observation.subject.type", "invalid")}),
    ("ref-1-no-contained", "patient", {"managingOrganization.reference": "#nope"},
     {("Patient.managingOrganization.reference", "invariant")}),
    ("local-ref-wrong-type", "patient", {"link[0].other.reference": "#o2"},
     {("Patient.link[0].other.reference", "invalid")}),
    # primitive extensions
    ("primitive-ext-not-object", "patient", {"_birthDate": [{"id": "a"}]},
     {("Patient._birthDate", "structure")}),
    ("primitive-ext-unknown", "patient", {"_nickname": {"id": "a"}},
     {("Patient._nickname", "structure")}),
    ("primitive-ext-on-complex", "patient", {"_name": [{"id": "a"}]},
     {("Patient._name", "structure")}),
    ("primitive-ext-length", "patient", {"name[0]._given": [None, {"id": "a"}, {"id": "b"}]},
     {("Patient.name[0]._given", "structure")}),
    ("primitive-ext-bad-content", "patient", {"name[0]._family": {"url": "x"}},
     {("Patient.name[0]._family.url", "structure")}),
    ("primitive-null-without-ext", "patient", {"name[0].given[1]": None},
     {("Patient.name[0].given[1]", "structure")}),
    ("primitive-ext-empty", "patient", {"_gender": {}}, {("Patient._gender", "required")}),
    # extensions
    ("extension-no-url", "patient", {"extension[0].url": DELETE},
     {("Patient.extension[0].url", "required")}),
    ("extension-value-and-nested", "patient",
     {"extension[0].extension": [{"url": "a", "valueCode": "b"}]},
     {("Patient.extension[0]", "invariant")}),
    ("extension-neither", "patient", {"extension[0].valueString": DELETE},
     {("Patient.extension[0]", "invariant")}),
    ("extension-bad-value", "patient", {"extension[0].valueString": ""},
     {("Patient.extension[0].valueString", "value")}),
    ("modifier-extension-not-array", "patient",
     {"modifierExtension": {"url": "u", "valueCode": "c"}},
     {("Patient.modifierExtension", "structure")}),
    ("nested-extension-bad", "patient",
     {"extension[0]": {"url": "a", "extension": [{"url": "b", "valueFoo": 1}]}},
     {("Patient.extension[0].extension[0]", "invariant"),
      ("Patient.extension[0].extension[0].valueFoo", "structure")}),
    # resource level
    # invariants checked in Python (dom-2/4/5, bdl-1/2/3/4/5/7/8)
    ("dom-2", "patient", {"contained[0].contained": [{"resourceType": "Basic", "code": {"text": "c"}}]},
     {("Patient.contained[0].contained", "invariant")}),
    ("dom-4", "patient", {"contained[0].meta": {"versionId": "1"}},
     {("Patient.contained[0].meta", "invariant")}),
    ("dom-5", "patient", {"contained[0].meta": {"security": [{"code": "R"}]}},
     {("Patient.contained[0].meta.security", "invariant")}),
    ("bdl-1", "bundle", {"total": 2}, {("Bundle.total", "invariant")}),
    ("bdl-2", "bundle", {"entry[0].search": {"mode": "match"}},
     {("Bundle.entry[0].search", "invariant")}),
    ("bdl-3-missing", "bundle", {"entry[1].request": DELETE},
     {("Bundle.entry[1].request", "invariant")}),
    ("bdl-3-not-allowed", "bundle", {"type": "collection"},
     {("Bundle.entry[0].request", "invariant"), ("Bundle.entry[1].request", "invariant")}),
    ("bdl-4", "bundle", {"entry[0].response": {"status": "201"}},
     {("Bundle.entry[0].response", "invariant")}),
    ("bdl-5", "bundle", {"entry[0]": {"fullUrl": "urn:uuid:11111111-1111-1111-1111-111111111111"}},
     {("Bundle.entry[0]", "invariant"), ("Bundle.entry[0].request", "invariant")}),
    ("bdl-7", "bundle", {"entry[1].fullUrl": "urn:uuid:11111111-1111-1111-1111-111111111111",
                         "entry[1].resource.subject.reference": "Patient/p1"},
     {("Bundle.entry[1].fullUrl", "invariant")}),
    ("bdl-8", "bundle", {"entry[0].fullUrl": "http://x.org/fhir/Patient/p1/_history/1"},
     {("Bundle.entry[0].fullUrl", "invariant")}),
    ("dom-3", "patient", {"generalPractitioner": DELETE}, {("Patient.contained[0]", "invariant")}),
    ("contained-not-a-resource", "patient", {"contained[0]": {"name": "x"}},
     {("Patient.contained[0]", "required"),
      ("Patient.generalPractitioner[0].reference", "invariant")}),
    ("contained-unknown-type", "patient", {"contained[0].resourceType": "Organisation"},
     {("Patient.contained[0]", "not-supported")}),
    ("entry-resource-bad-type", "bundle", {"entry[0].resource.resourceType": "Citation"},
     {("Bundle.entry[0].resource", "not-supported")}),
]
# fmt: on


def _mutate(base: str, mutation: dict[str, Any]) -> Json:
    doc = copy.deepcopy(BASES[base]())
    for path, value in mutation.items():
        if value is DELETE:
            _del(doc, path)
        else:
            _set(doc, path, value)
    return doc


@pytest.mark.parametrize("base", sorted(BASES))
def test_bases_are_valid(base: str) -> None:
    assert validate(BASES[base]()) == []


@pytest.mark.parametrize(("case", "base", "mutation", "expected"), CASES, ids=[c[0] for c in CASES])
def test_mutation_is_rejected_at_exact_location(
    case: str, base: str, mutation: dict[str, Any], expected: set[tuple[str, str]]
) -> None:
    issues = validate(_mutate(base, mutation))
    got = {(i.location, i.code) for i in issues if i.severity == "error"}
    assert got == expected


def test_blank_string_is_a_warning_not_an_error() -> None:
    """R4's string regex admits whitespace-only values; the datatypes page only says they
    SHOULD carry non-whitespace content, so valid data is not refused for it."""
    issues = validate(_mutate("patient", {"name[0].family": "  "}))
    assert [(i.severity, i.location) for i in issues] == [("warning", "Patient.name[0].family")]


def test_valid_variants_are_accepted() -> None:
    ok = [
        ("patient", {"birthDate": "2000-02-29"}),  # leap day
        ("patient", {"birthDate": "1990"}),  # partial dates
        ("patient", {"birthDate": "1990-03"}),
        ("patient", {"name[0]._given": [None, {"extension": [{"url": "u", "valueCode": "c"}]}]}),
        ("patient", {"name[0].given": [None, "Ming"], "name[0]._given": [{"id": "g1"}, None]}),
        ("patient", {"_gender": {"extension": [{"url": "u", "valueCode": "c"}]}}),  # ext only
        ("patient", {"gender": DELETE, "_gender": {"id": "x"}}),
        ("patient", {"name[0].family": "王", "name[0].text": "王小明\n"}),  # Chinese, trailing LF
        ("patient", {"managingOrganization.reference": "#o2"}),
        ("observation", {"subject.type": "Patient"}),
        ("patient", {"contained[1]": {"resourceType": "Basic", "code": {"text": "c"},
                                      "subject": {"reference": "#"}}}),
        ("patient", {"managingOrganization.reference": "http://x.org/fhir/Organization/9"}),
        (
            "patient",
            {"managingOrganization.reference": "urn:uuid:9d3ba6b0-0000-0000-0000-000000000000"},
        ),
        ("patient", {"managingOrganization.reference": "Organization?identifier=a|b"}),
        ("patient", {"managingOrganization.type": "http://example.org/SomeLogicalModel"}),
        ("observation", {"valueQuantity.value": 1e-3}),
        ("observation", {"valueQuantity.value": 10}),
        ("observation", {"effectiveDateTime": "2024-02-29T23:59:60.123456+14:00"}),
        ("observation", {"component[0].valueInteger": -(2**31)}),
        ("patient", {"photo": [{"data": "aGVsbG8=\n", "contentType": "text/plain"}]}),
        ("bundle", {"entry[1].resource.subject.reference": "Patient?identifier=x"}),
    ]
    for base, mutation in ok:
        issues = [i for i in validate(_mutate(base, mutation)) if i.severity == "error"]
        assert issues == [], mutation


def test_messages_never_contain_the_offending_value() -> None:
    secrets = 0
    for _case, base, mutation, _expected in CASES:
        values = [
            v
            for v in mutation.values()
            if isinstance(v, str) and len(v) > 3 and v not in resource_types()
        ]
        doc = _mutate(base, mutation)
        for issue in validate(doc):
            for value in values:
                secrets += 1
                assert value not in issue.message
                assert value not in issue.location
    # a sweep of patient-like values put into every kind of slot
    for slot in (
        "gender",
        "birthDate",
        "id",
        "name[0].family",
        "foo",
        "telecom[0].rank",
        "managingOrganization.reference",
        "extension[0].url",
        "text.div",
    ):
        issues = validate(_mutate("patient", {slot: [SECRET, {"x": SECRET}]}))
        assert issues
        for issue in issues:
            secrets += 1
            assert SECRET not in issue.message
            assert SECRET not in issue.location
    assert secrets > 30
    # unknown element names are input too: odd ones are not echoed in the location
    issues = validate({"resourceType": "Patient", SECRET + " x": 1})
    assert [(i.location, i.code) for i in issues] == [("Patient.?", "structure")]


@pytest.mark.parametrize(
    ("resource", "location", "code"),
    [
        (None, "Resource", "structure"),
        ([], "Resource", "structure"),
        ("Patient", "Resource", "structure"),
        ({}, "Resource", "required"),
        ({"resourceType": 1}, "Resource", "required"),
        ({"resourceType": "Pateint"}, "Resource", "not-supported"),
        ({"resourceType": "DomainResource"}, "Resource", "not-supported"),
    ],
)
def test_top_level_shape(resource: object, location: str, code: str) -> None:
    assert [(i.location, i.code) for i in validate(resource)] == [(location, code)]
