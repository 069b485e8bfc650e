"""The code tables as FHIR R4 CodeSystem and ConceptMap resources, and loading them into a node.

Standard systems are published as ``content: fragment`` (the subset the region uses) except
GB/T 2261.1 and GB 3304, which are complete. ConceptMaps come from the translation tables of
the shipped CSV mappings (local code -> ICD-10 / ATC / FHIR gender / encounter class) and from
GB/T 2261.1 -> FHIR administrative gender; a local code without an equivalent is listed with
``equivalence: unmatched`` so that it is kept visible, not dropped.
"""

from __future__ import annotations

from importlib import resources as package_files
from typing import TYPE_CHECKING, Any

import yaml

from healthmesh.ingest.adapter import deterministic_id
from healthmesh.ingest.csv.mapping import Mapping, load_mapping, parse_mapping, shipped_mapping
from healthmesh.ingest.terminology.codes import (
    ADMIN_GENDER,
    ATC,
    GB_ETHNICITY,
    GB_SEX,
    ICD10,
    LOINC,
    SEX_CODES,
    SYSTEMS,
    ZH_NAMES,
)

if TYPE_CHECKING:
    from healthmesh.fhir.store import FhirStore

SHIPPED_MAPPINGS = ("clinic_visits", "clinic_prescriptions", "pharmacy_sales", "cdc_case_reports")
_TITLES = {
    LOINC: ("LOINC", "LOINC subset used by the region", "fragment"),
    ICD10: ("ICD10", "ICD-10 categories for common diagnoses", "fragment"),
    ATC: ("ATC", "WHO ATC codes of the region's drugs", "fragment"),
    GB_SEX: ("GBT2261_1", "GB/T 2261.1-2003 人的性别代码", "complete"),
    GB_ETHNICITY: ("GB3304", "GB 3304-1991 中国各民族名称的罗马字母拼写法和代码", "complete"),
}


def _code_system(
    url: str,
    concepts: dict[str, str],
    name: str,
    title: str,
    content: str,
) -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem",
        "id": deterministic_id("CodeSystem", url),
        "url": url,
        "name": name,
        "title": title,
        "status": "active",
        "content": content,
        "count": len(concepts),
        "concept": [_concept(url, c, d) for c, d in concepts.items()],
    }


def _concept(url: str, code: str, shown: str) -> dict[str, Any]:
    concept: dict[str, Any] = {"code": code}
    if shown:
        concept["display"] = shown
    zh = ZH_NAMES.get(url, {}).get(code)
    if zh:
        concept["designation"] = [{"language": "zh-CN", "value": zh}]
    return concept


def code_systems(mappings: list[Mapping] | None = None) -> list[dict[str, Any]]:
    """CodeSystems of the standard subsets and of every local code table of the mappings."""
    out = [_code_system(url, SYSTEMS[url], *_TITLES[url]) for url in SYSTEMS]
    seen = set(SYSTEMS)
    for mapping in mappings if mappings is not None else _shipped():
        for table in mapping.translations.values():
            if table.local_system in seen:
                continue
            seen.add(table.local_system)
            concepts = {
                code: table.displays.get(code, "")
                for code in sorted(set(table.codes) | set(table.displays))
            }
            name = "".join(w.capitalize() for w in table.local_system.rsplit(":", 1)[-1].split("-"))
            out.append(
                _code_system(
                    table.local_system,
                    concepts,
                    f"Local{name}",
                    f"Local codes: {table.name}",
                    "complete",
                )
            )
    return out


def _concept_map(
    url: str, name: str, source: str, target: str, pairs: list[tuple[str, str | None]]
) -> dict[str, Any]:
    elements = []
    for code, mapped in pairs:
        if mapped is None:
            elements.append({"code": code, "target": [{"equivalence": "unmatched"}]})
        else:
            elements.append(
                {"code": code, "target": [{"code": mapped, "equivalence": "equivalent"}]}
            )
    return {
        "resourceType": "ConceptMap",
        "id": deterministic_id("ConceptMap", url),
        "url": url,
        "name": name,
        "status": "active",
        "group": [{"source": source, "target": target, "element": elements}],
    }


def concept_maps(mappings: list[Mapping] | None = None) -> list[dict[str, Any]]:
    """ConceptMaps: GB/T 2261.1 -> FHIR gender, and each mapping's local tables."""
    sex = [(code, gender) for code, (_, gender) in SEX_CODES.items()]
    out = [
        _concept_map(
            "urn:healthmesh:conceptmap:gbt2261-1-to-gender",
            "GbSexToGender",
            GB_SEX,
            ADMIN_GENDER,
            [(c, g) for c, g in sex],
        )
    ]
    seen = {f"{GB_SEX}->{ADMIN_GENDER}"}
    for mapping in mappings if mappings is not None else _shipped():
        for table in mapping.translations.values():
            url = f"urn:healthmesh:conceptmap:{mapping.name}:{table.name}"
            key = f"{table.local_system}->{table.system}"
            if key in seen:
                continue
            seen.add(key)
            locals_ = sorted(set(table.codes) | set(table.displays))
            pairs = [(code, table.codes.get(code)) for code in locals_]
            name = "".join(w.capitalize() for w in f"{mapping.name}_{table.name}".split("_"))
            out.append(_concept_map(url, name, table.local_system, table.system, pairs))
    return out


def _shipped() -> list[Mapping]:
    """The shipped CSV mappings, plus the local tables of the HL7 v2 senders."""
    mappings = [load_mapping(shipped_mapping(name)) for name in SHIPPED_MAPPINGS]
    text = package_files.files(__package__).joinpath("local_tables.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)
    mappings.append(
        parse_mapping(
            {
                "name": "hl7_senders",
                "columns": [],
                "resources": {},
                "translations": raw["translations"],
            }
        )
    )
    return mappings


def terminology_resources() -> list[dict[str, Any]]:
    """Every CodeSystem and ConceptMap the region's node should hold."""
    mappings = _shipped()
    return code_systems(mappings) + concept_maps(mappings)


def load_terminology(store: FhirStore) -> int:
    """Write the terminology resources into a node's store (idempotent); returns how many."""
    resources = terminology_resources()
    with store.writing() as tx:
        for resource in resources:
            tx.update(resource["resourceType"], resource["id"], resource)
    return len(resources)
