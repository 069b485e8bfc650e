"""Classify FHIR R4 Encounters, Conditions and Observations (plain dicts) into syndromes.

Rules, in order of strength: ICD-10 codes of a Condition or an Encounter reason; a body
temperature Observation (LOINC 8310-5) of at least 38 °C, which counts as fever, and as fever
clinic fever when the encounter is at a fever clinic; chief-complaint keywords in Chinese and
English from ``Encounter.reasonCode.text`` / ``Condition.code.text``. Pure functions: values in,
values out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
BODY_TEMPERATURE = "8310-5"
FEVER_C = 38.0


@dataclass(frozen=True)
class Syndrome:
    """A syndrome: ICD-10 code prefixes and complaint keywords (Chinese and English)."""

    code: str
    display: str
    icd10_prefixes: tuple[str, ...]
    keywords: tuple[str, ...]


SYNDROMES: dict[str, Syndrome] = {
    s.code: s
    for s in (
        Syndrome("ili", "Influenza-like illness", ("J09", "J10", "J11"),
                 ("流感", "流行性感冒", "类流感", "influenza", "flu-like", "flu like", "ili")),
        Syndrome("fever", "Fever", ("R50",),
                 ("发热", "发烧", "高热", "fever", "pyrexia", "febrile")),
        Syndrome("acute_respiratory", "Acute respiratory infection",
                 ("J00", "J01", "J02", "J03", "J04", "J05", "J06", "J12", "J13", "J14", "J15",
                  "J16", "J17", "J18", "J20", "J21", "J22", "U07.1"),
                 ("咳嗽", "咽痛", "气促", "呼吸困难", "肺炎", "cough", "sore throat",
                  "shortness of breath", "pneumonia", "dyspnoea", "dyspnea")),
        Syndrome("diarrhoea", "Diarrhoea / acute gastroenteritis",
                 ("A00", "A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A09", "K52.9",
                  "R19.7"),
                 ("腹泻", "拉肚子", "水样便", "呕吐腹泻", "diarrhoea", "diarrhea",
                  "gastroenteritis", "loose stool")),
        Syndrome("rash", "Fever with rash / rash illness",
                 ("R21", "B01", "B05", "B06", "B08.4", "B09"),
                 ("皮疹", "出疹", "疱疹", "麻疹", "rash", "exanthem", "measles", "chickenpox")),
        Syndrome("hfmd", "Hand, foot and mouth disease", ("B08.4",),
                 ("手足口", "hand foot mouth", "hand, foot and mouth", "hfmd")),
        Syndrome("conjunctivitis", "Acute conjunctivitis", ("H10", "B30"),
                 ("结膜炎", "红眼", "conjunctivitis", "pink eye")),
    )
}
FEVER_CLINIC_WORDS = ("发热门诊", "fever clinic")


def _codings(concepts: Iterable[Mapping[str, Any]] | None) -> list[tuple[str, str]]:
    out = []
    for concept in concepts or []:
        for coding in concept.get("coding", []) or []:
            out.append((str(coding.get("system", "")), str(coding.get("code", ""))))
    return out


def _texts(concepts: Iterable[Mapping[str, Any]] | None) -> list[str]:
    out = []
    for concept in concepts or []:
        if concept.get("text"):
            out.append(str(concept["text"]))
        for coding in concept.get("coding", []) or []:
            if coding.get("display"):
                out.append(str(coding["display"]))
    return out


def syndromes_from_icd10(code: str) -> set[str]:
    """Syndromes of one ICD-10 code (national clinical version codes like ``J11.101`` too).

    >>> sorted(syndromes_from_icd10("J11.101"))
    ['ili']
    """
    norm = code.strip().upper()
    return {s.code for s in SYNDROMES.values() if norm.startswith(s.icd10_prefixes)}


_WORD_CACHE: dict[str, re.Pattern[str]] = {}


def syndromes_from_text(text: str) -> set[str]:
    """Syndromes named in a chief complaint (Chinese or English keywords).

    >>> sorted(syndromes_from_text("发热伴咳嗽2天"))
    ['acute_respiratory', 'fever']
    """
    low = text.lower()
    found = set()
    for s in SYNDROMES.values():
        for kw in s.keywords:
            if kw.isascii():
                pat = _WORD_CACHE.setdefault(kw, re.compile(r"\b" + re.escape(kw) + r"\b"))
                if pat.search(low):
                    found.add(s.code)
                    break
            elif kw in text:
                found.add(s.code)
                break
    return found


def temperature_celsius(obs: Mapping[str, Any]) -> float | None:
    """Body temperature in °C of a LOINC 8310-5 Observation, or None."""
    codes = _codings([obs.get("code", {})])
    if (LOINC, BODY_TEMPERATURE) not in codes:
        return None
    q = obs.get("valueQuantity") or {}
    if "value" not in q:
        return None
    value = float(q["value"])
    unit = str(q.get("code") or q.get("unit") or "Cel")
    if unit in ("[degF]", "degF", "°F", "F"):
        value = (value - 32) * 5 / 9
    return value


def is_fever_clinic(encounter: Mapping[str, Any]) -> bool:
    """Whether an Encounter took place at a fever clinic (type, service type or location)."""
    texts = _texts(encounter.get("type")) + _texts([encounter.get("serviceType") or {}])
    for loc in encounter.get("location", []) or []:
        texts.append(str((loc.get("location") or {}).get("display", "")))
    low = " ".join(texts).lower()
    return any(w in low for w in FEVER_CLINIC_WORDS)


def classify_resource(resource: Mapping[str, Any]) -> set[str]:
    """Syndromes indicated by one Encounter, Condition or Observation.

    >>> classify_resource({"resourceType": "Condition", "code": {"coding": [
    ...     {"system": ICD10, "code": "A09.9"}]}})
    {'diarrhoea'}
    """
    rtype = resource.get("resourceType")
    found: set[str] = set()
    if rtype == "Condition":
        concepts = [resource.get("code") or {}]
    elif rtype == "Encounter":
        concepts = list(resource.get("reasonCode") or [])
    elif rtype == "Observation":
        temp = temperature_celsius(resource)
        if temp is not None and temp >= FEVER_C:
            found.add("fever")
        return found
    else:
        return found
    for system, code in _codings(concepts):
        if system.startswith(ICD10) or system.endswith("icd-10") or "icd10" in system.lower():
            found |= syndromes_from_icd10(code)
    for text in _texts(concepts):
        found |= syndromes_from_text(text)
    if {"fever", "acute_respiratory"} <= found and "ili" not in found:
        found.add("ili")  # WHO ILI: fever with cough or sore throat
    return found
