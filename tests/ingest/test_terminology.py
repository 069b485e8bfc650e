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
