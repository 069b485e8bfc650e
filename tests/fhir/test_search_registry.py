"""The generated registry equals the official R4 definitions and the patient compartment."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from healthmesh.fhir.search import default_registry
from healthmesh.fhir.search.registry import GENERATED, branch_root, split_branches


def _generated(name: str) -> dict:
    with gzip.open(GENERATED / name, "rt") as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def official(shared_data: Path) -> list[dict]:
    bundle = json.loads((shared_data / "fhir" / "search-parameters.json").read_text())
    return [e["resource"] for e in bundle["entry"]]


def test_generated_table_equals_official_definitions(official: list[dict]) -> None:
    table = _generated("search_parameters.json.gz")
    assert table["header"]["package"] == "hl7.fhir.r4.examples"
    assert table["header"]["version"] == "4.0.1"
    assert table["header"]["license"] == "CC0-1.0"
    mine = {p["url"]: p for p in table["params"]}
    assert len(mine) == len(official) == 1375
    for ref in official:
        got = mine[ref["url"]]
        assert got["code"] == ref["code"]
        assert got["base"] == ref["base"]
        assert got["type"] == ref["type"]
        assert got.get("expression") == ref.get("expression")
        assert got.get("target", []) == ref.get("target", [])
        assert got.get("component", []) == [
            [c["definition"], c["expression"]] for c in ref.get("component", [])
        ]


def test_generated_compartment_equals_official(shared_data: Path) -> None:
    ref = json.loads((shared_data / "fhir" / "CompartmentDefinition-patient.json").read_text())
    ref.pop("text")
    assert _generated("compartment_patient.json.gz")["compartment"] == ref


def test_registry_splits_every_base_and_keeps_every_branch(official: list[dict]) -> None:
    reg = default_registry()
    for ref in official:
        expr = ref.get("expression")
        if not expr:
            continue
        branches: set[str] = set()
        for base in ref["base"]:
            base_key = "Patient" if base in ("Resource", "DomainResource") else base
            sp = reg.get(base_key, ref["code"])
            assert sp is not None, (base, ref["code"])
            if sp.url != ref["url"]:
                continue  # a more specific definition of the same code wins for that base
            assert sp.type == ref["type"]
            assert sp.targets == tuple(ref.get("target", ()))
            for b in split_branches(sp.expression):
                # single-base definitions may be relative (InsurancePlan-name: "name | alias")
                root = branch_root(b)
                assert root in (base, "Resource", "DomainResource") or len(ref["base"]) == 1
                branches.add(b)
        assert branches == set(split_branches(expr)), ref["url"]


def test_multi_base_parameter_is_restricted_to_its_base() -> None:
    reg = default_registry()
    sp = reg.get("Observation", "patient")
    assert sp is not None
    assert sp.base == "Observation"
    assert sp.expression == "Observation.subject.where(resolve() is Patient)"
    assert sp.type == "reference" and sp.targets == ("Patient", "Group")
    allergy = reg.get("AllergyIntolerance", "patient")
    assert allergy is not None and allergy.expression == "AllergyIntolerance.patient"


def test_resource_level_parameters_apply_to_every_type() -> None:
    reg = default_registry()
    for rtype in ("Patient", "Observation", "Bundle", "Binary"):
        params = reg.for_type(rtype)
        for code in ("_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"):
            assert code in params, (rtype, code)
        assert "_query" not in params and "_text" not in params
    assert reg.get("Patient", "_lastUpdated").type == "date"  # type: ignore[union-attr]
    assert reg.get("Patient", "nonsense") is None


def test_composite_components_and_modifiers() -> None:
    reg = default_registry()
    sp = reg.get("Observation", "code-value-quantity")
    assert sp is not None and sp.type == "composite"
    assert sp.components == (("code", "code"), ("value-quantity", "value.as(Quantity)"))
    assert "exact" in reg.get("Patient", "name").modifiers  # type: ignore[union-attr]
    assert "of-type" in reg.get("Patient", "identifier").modifiers  # type: ignore[union-attr]
    assert reg.get("Patient", "name").multiple_or is True  # type: ignore[union-attr]


def test_compartment() -> None:
    reg = default_registry()
    assert reg.compartment_params("Patient", "Observation") == ("subject", "performer")
    assert reg.compartment_params("Patient", "ActivityDefinition") == ()
    types = reg.compartment_types("Patient")
    assert "Observation" in types and "Encounter" in types and "Organization" not in types
    assert len(types) == 66
    assert reg.compartment_params("Device", "Observation") == ()


def test_every_expression_compiles_without_fallback() -> None:
    stats = default_registry().compile_stats()
    assert stats["fallback"] == 0, stats["fallback_list"]
    assert stats["compiled"] == stats["params"] > 1700


def test_generator_reproduces_the_committed_tables(shared_data: Path, tmp_path: Path) -> None:
    """scripts/gen_search_parameters.py, fed the same definitions, writes the same bytes."""
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "scripts" / "gen_search_parameters.py"
    spec = importlib.util.spec_from_file_location("gen_search_parameters", script)
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    pkg = tmp_path / "package"
    pkg.mkdir()
    (pkg / "package.json").write_text(
        json.dumps(
            {
                "name": "hl7.fhir.r4.examples",
                "version": "4.0.1",
                "fhirVersions": ["4.0.1"],
                "license": "CC0-1.0",
                "author": "HL7 Inc",
            }
        )
    )
    fhir = shared_data / "fhir"
    (pkg / "Bundle-searchParams.json").write_bytes((fhir / "search-parameters.json").read_bytes())
    (pkg / "CompartmentDefinition-patient.json").write_bytes(
        (fhir / "CompartmentDefinition-patient.json").read_bytes()
    )
    out = tmp_path / "out"
    gen.generate(pkg, out)
    name = "compartment_patient.json.gz"
    assert (out / name).read_bytes() == (GENERATED / name).read_bytes()
    # without the package's StructureDefinitions there are no implicit code systems;
    # everything else is the same
    with gzip.open(out / "search_parameters.json.gz", "rt") as fh:
        mine = json.load(fh)
    committed = _generated("search_parameters.json.gz")
    assert mine["implicitSystems"] == {}
    assert {k: v for k, v in mine.items() if k != "implicitSystems"} == {
        k: v for k, v in committed.items() if k != "implicitSystems"
    }


def test_implicit_code_systems_from_required_bindings() -> None:
    systems = _generated("search_parameters.json.gz")["implicitSystems"]
    assert systems["Patient.gender"] == "http://hl7.org/fhir/administrative-gender"
    assert systems["Observation.status"] == "http://hl7.org/fhir/observation-status"
    assert systems["ContactPoint.system"] == "http://hl7.org/fhir/contact-point-system"
    assert 300 < len(systems) < 400
    reg = default_registry()
    by_code = {p.param.code: p.implicit_system for p in reg.plan("Patient")}
    assert by_code["gender"] == "http://hl7.org/fhir/administrative-gender"
    assert by_code["address-use"] == "http://hl7.org/fhir/address-use"
    assert by_code["identifier"] is None and by_code["_id"] is None


def test_custom_search_parameter_resources_extend_the_registry(official: list[dict]) -> None:
    """A registry built from SearchParameter resources (components as in FHIR JSON) plus a
    custom parameter: the custom one is indexed, the official ones still are."""
    from healthmesh.fhir.search import Registry, extract

    custom = {
        "resourceType": "SearchParameter",
        "url": "http://example.org/SearchParameter/patient-nickname",
        "code": "nickname",
        "base": ["Patient"],
        "type": "string",
        "expression": "Patient.name.where(use = 'nickname').given",
    }
    reg = Registry([*official, custom])
    assert reg.get("Patient", "nickname").type == "string"  # type: ignore[union-attr]
    comp = reg.get("Observation", "code-value-quantity")
    assert comp is not None and comp.components[1] == ("value-quantity", "value.as(Quantity)")
    pat = {
        "resourceType": "Patient",
        "name": [{"use": "nickname", "given": ["Bob"]}, {"use": "official", "given": ["Robert"]}],
    }
    rows = extract(pat, reg)
    assert [r for r in rows.strings if r[0] == "nickname"] == [("nickname", "bob", "Bob")]
    assert ("given", "robert", "Robert") in rows.strings
    assert reg.compartment_params("Patient", "Observation") == ()  # none given
    from healthmesh.fhir.search import load_registry

    with_r4 = load_registry(extra=[custom])
    assert with_r4.get("Patient", "nickname") is not None
    assert with_r4.compartment_params("Patient", "Observation") == ("subject", "performer")
