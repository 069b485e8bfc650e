"""R4 validation over real data: every official example and every Synthea bundle is valid.

Also checks the public contract (validate/check/resource_types), the generated table's
provenance, and that the table agrees with the official StructureDefinitions in the
examples folder.
"""

from __future__ import annotations

import doctest
import gzip
import json
import re
from pathlib import Path

import pytest

from healthmesh.errors import InvalidResource
from healthmesh.fhir import validation
from healthmesh.fhir.validation import (
    ResourceValidationError,
    ValidationIssue,
    _model,
    _primitives,
    _references,
    check,
    definitions_header,
    resource_types,
    validate,
)

# Official R4 examples that are genuinely invalid against the R4 StructureDefinitions.
# file -> (error locations we must report, why the example is wrong)
KNOWN_INVALID: dict[str, tuple[set[str], str]] = {
    "DeviceMetric-example.json": (
        {"DeviceMetric.parent.reference"},
        "parent refers to DeviceDefinition; R4 DeviceMetric.parent is Reference(Device)",
    ),
    "DeviceUseStatement-example.json": (
        {"DeviceUseStatement.reasonReference[0].reference"},
        "reasonReference refers to Procedure, which R4 does not allow there",
    ),
    "MedicationRequest-medrx0301.json": (
        {"MedicationRequest.dispenseRequest.performer.reference"},
        "dispenseRequest.performer refers to Practitioner; R4 allows only Organization",
    ),
    "Observation-clinical-gender.json": (
        {"Observation.performer[0].reference"},
        "performer refers to Encounter, which is not a performer type in R4",
    ),
    "Questionnaire-qs1.json": (
        {"Questionnaire.item[0].item[0].linkId"},  # first of 32 nested items without linkId
        "nested items lack the required linkId (1..1)",
    ),
}


def _errors(resource: object) -> list[ValidationIssue]:
    return [i for i in validate(resource) if i.severity == "error"]


def _example_files(shared_data: Path) -> list[Path]:
    return sorted((shared_data / "fhir" / "examples").glob("*/*.json"))


def test_all_official_examples_are_valid(shared_data: Path) -> None:
    files = _example_files(shared_data)
    assert len(files) == 765
    folders = {p.parent.name for p in files}
    assert folders == {"resources", "bundles", "terminology", "definitions"}
    unexpected = {}
    for path in files:
        if path.name in KNOWN_INVALID:
            continue
        errors = _errors(json.loads(path.read_text(encoding="utf-8")))
        if errors:
            unexpected[path.name] = [(e.location, e.message) for e in errors[:3]]
    assert unexpected == {}


@pytest.mark.parametrize("name", sorted(KNOWN_INVALID))
def test_known_invalid_examples_are_reported_at_the_right_place(
    shared_data: Path, name: str
) -> None:
    path = shared_data / "fhir" / "examples" / "resources" / name
    errors = _errors(json.loads(path.read_text(encoding="utf-8")))
    expected, _why = KNOWN_INVALID[name]
    assert errors
    assert expected <= {e.location for e in errors}


def test_all_synthea_bundles_are_valid(shared_data: Path) -> None:
    paths = sorted((shared_data / "synthea").glob("*.json.gz"))
    assert len(paths) == 60
    count = 0
    for path in paths:
        bundle = json.loads(gzip.decompress(path.read_bytes()))
        assert validate(bundle) == [], path.name
        for entry in bundle["entry"]:  # and each resource alone, as bulk import sees it
            count += 1
            assert validate(entry["resource"]) == [], path.name
    assert count == 10276


def test_resource_types_are_r4_not_r4b() -> None:
    types = resource_types()
    assert len(types) == 146
    # in R4 4.0.1 but removed or renamed in R4B
    for r4_only in (
        "MedicinalProduct",
        "EffectEvidenceSynthesis",
        "SubstanceSpecification",
        "RiskEvidenceSynthesis",
        "MedicinalProductAuthorization",
    ):
        assert r4_only in types
    for not_r4 in (
        "Citation",
        "PackagedProductDefinition",
        "SubscriptionTopic",
        "Resource",
        "DomainResource",
    ):
        assert not_r4 not in types
    assert {"Patient", "Observation", "Bundle", "Parameters"} <= types


def test_table_header_records_source_and_licence() -> None:
    header = definitions_header()
    assert header["package"] == "hl7.fhir.r4.examples"
    assert header["version"] == "4.0.1"
    assert header["license"] == "CC0-1.0"


def test_generated_table_is_compact() -> None:
    path = Path(_model.__file__).parents[1] / "_generated" / _model.TABLE
    assert path.stat().st_size < 1_500_000


@pytest.mark.parametrize("name", ["Patient", "Observation"])
def test_table_matches_official_structure_definition(shared_data: Path, name: str) -> None:
    sd = json.loads(
        (
            shared_data / "fhir" / "examples" / "definitions" / f"StructureDefinition-{name}.json"
        ).read_text(encoding="utf-8")
    )
    types = _model.model().types
    checked = 0
    for element in sd["snapshot"]["element"][1:]:
        parent, leaf = element["path"].rsplit(".", 1)
        td = types[parent]
        if leaf.endswith("[x]"):
            codes = [t["code"] for t in element["type"]]
            keys = td.choices[leaf[:-3]]
            assert len(keys) == len(codes)
            els = [td.elems[k] for k in keys]
        else:
            els = [td.elems[leaf]]
        for el in els:
            assert el.min == element["min"]
            assert el.many == (element["max"] != "1")
            checked += 1
    assert checked > 40


def test_check_raises_invalid_resource_with_all_issues() -> None:
    bad = {"resourceType": "Patient", "gender": "M", "birthDate": "1970-02-30", "foo": 1}
    with pytest.raises(ResourceValidationError) as info:
        check(bad)
    exc = info.value
    assert isinstance(exc, InvalidResource)
    assert exc.status == 422
    assert exc.location == "Patient.gender"
    assert exc.code == "code-invalid"
    assert {i.location for i in exc.issues} == {
        "Patient.gender",
        "Patient.birthDate",
        "Patient.foo",
    }


def test_check_passes_valid_and_warning_only_resources() -> None:
    check({"resourceType": "Patient", "active": True})
    issues = validate({"resourceType": "Patient", "name": [{"text": "A\x07B"}]})
    assert [(i.severity, i.location) for i in issues] == [("warning", "Patient.name[0].text")]
    check({"resourceType": "Patient", "name": [{"text": "A\x07B"}]})


@pytest.mark.parametrize("module", [validation, _primitives, _references, _model])
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module, raise_on_error=False)  # type: ignore[arg-type]
    assert result.failed == 0


def test_every_issue_code_emitted_is_documented() -> None:
    """Each IssueType code the validator can emit is listed in docs/validation.md."""
    src = Path(validation.__file__).parent
    emitted: set[str] = set()
    for path in src.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        emitted |= set(re.findall(r'"(?:error|warning)",\s*"([a-z-]+)"', text))
    emitted.add("invariant")  # recorded by the walker for _invariants findings
    assert {"structure", "value", "required", "code-invalid", "invalid"} <= emitted
    docs = (Path(__file__).parents[2] / "docs" / "validation.md").read_text(encoding="utf-8")
    listed = docs.split("## R4, not R4B")[0]
    missing = sorted(code for code in emitted if f"`{code}`" not in listed)
    assert missing == []
