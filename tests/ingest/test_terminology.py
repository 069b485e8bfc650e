"""Terminology: CodeSystem/ConceptMap resources valid and loadable, lookups flag unknown codes."""

from __future__ import annotations

from pathlib import Path

from healthmesh.fhir.store import FhirStore
from healthmesh.fhir.validation import check
from healthmesh.ingest.terminology import Terminology, load_terminology, terminology_resources
from healthmesh.ingest.terminology.codes import (
    ATC,
    ATC_CODES,
    ETHNICITY_CODES,
    ICD10,
    ICD10_CODES,
    LAB_CODES,
    ZH_NAMES,
)
from healthmesh.synth.region.chronic import ACUTE, DM_DRUGS, HTN_DRUGS
from healthmesh.synth.region.localcodes import CLINIC_DX, H02_LAB


def test_resources_are_valid_fhir_and_load_idempotently(tmp_path: Path) -> None:
    resources = terminology_resources()
    for resource in resources:
        check(resource)
    kinds = {r["resourceType"] for r in resources}
    assert kinds == {"CodeSystem", "ConceptMap"}
    store = FhirStore(tmp_path / "t.sqlite")
    assert load_terminology(store) == len(resources)
    load_terminology(store)
    assert store.count("CodeSystem") + store.count("ConceptMap") == len(resources)
    store.close()


def test_unmatched_local_codes_stay_visible_in_concept_maps() -> None:
    maps = {r["url"]: r for r in terminology_resources() if r["resourceType"] == "ConceptMap"}
    drugs = maps["urn:healthmesh:conceptmap:clinic_prescriptions:drugs"]["group"][0]
    by_code = {e["code"]: e["target"][0] for e in drugs["element"]}
    assert by_code["YP9001"] == {"equivalence": "unmatched"}
    assert by_code["YP0101"] == {"code": "C08CA01", "equivalence": "equivalent"}
    systems = {r["url"]: r for r in terminology_resources() if r["resourceType"] == "CodeSystem"}
    icd = {c["code"]: c for c in systems["http://hl7.org/fhir/sid/icd-10"]["concept"]}
    assert icd["I10"]["designation"] == [{"language": "zh-CN", "value": "特发性（原发性）高血压"}]
    assert set(ZH_NAMES[ATC]) == set(ATC_CODES) and set(ZH_NAMES[ICD10]) == set(ICD10_CODES)
    sex = maps["urn:healthmesh:conceptmap:gbt2261-1-to-gender"]["group"][0]["element"]
    assert {e["code"]: e["target"][0]["code"] for e in sex} == {
        "0": "unknown", "1": "male", "2": "female", "9": "unknown"}


def test_lookups() -> None:
    t = Terminology()
    assert t.lookup(ICD10, "E11.9").known
    assert not t.lookup(ICD10, "X99.9").known
    assert t.translate("urn:healthmesh:local:clinic-dx", "MZ0101").target_code == "J11.1"
    unknown = t.translate("urn:healthmesh:local:drug", "YP9002")
    assert not unknown.known and unknown.display == "板蓝根颗粒"
    assert not t.translate("urn:nowhere", "1").known
    assert t.units_fit("14771-0", "mmol/L") is True
    assert t.units_fit("14771-0", "mg/dL") is False
    assert t.units_fit("0000-0", "mg") is None


def test_every_code_the_region_emits_is_in_the_subsets() -> None:
    assert set(CLINIC_DX) <= set(ICD10_CODES)
    assert {dx for dx, _, _ in ACUTE} <= set(ICD10_CODES)
    drugs = {d for d, _ in HTN_DRUGS} | {d for d, _, _ in DM_DRUGS}
    drugs |= {d for _, d, _ in ACUTE if d}
    assert drugs <= set(ATC_CODES)
    assert set(H02_LAB) <= set(LAB_CODES)
    assert len(ETHNICITY_CODES) == 58 and ETHNICITY_CODES["01"] == "汉族"
    assert ETHNICITY_CODES["07"] == "彝族" and ETHNICITY_CODES["33"] == "羌族"
    assert ATC == "http://www.whocc.no/atc"


def test_hl7_local_codes_of_the_region_translate(tmp_path: Path) -> None:
    import datetime as dt

    from healthmesh.ingest.adapter import Converted
    from healthmesh.ingest.hl7v2 import Hl7v2Adapter
    from healthmesh.synth.region import RegionConfig, generate_region

    t = Terminology()
    for loinc, (local, name) in H02_LAB.items():
        found = t.translate("urn:healthmesh:codesystem:99HIS", local)
        assert (found.target_code, found.display) == (loinc, name)
    generate_region(RegionConfig(seed=6, people=600, days=90, start=dt.date(2024, 12, 1)), tmp_path)
    local_codings = []
    for path in sorted((tmp_path / "H02/hl7").glob("*.hl7")):
        for outcome in Hl7v2Adapter("H02").convert(path.read_bytes(), source=path.name):
            assert isinstance(outcome, Converted)
            for r in outcome.resources:
                concept = r.get("code") or r.get("medicationCodeableConcept") or {}
                for coding in concept.get("coding", []):
                    if coding.get("system", "").startswith("urn:healthmesh:codesystem:"):
                        local_codings.append(coding)
    assert local_codings
    for coding in local_codings:
        system = coding["system"]
        found = t.translate(system, coding["code"])
        assert found.display is not None, coding  # every local code is in a table
        assert found.known == system.endswith("99HIS")  # lab codes map; patent medicines do not
