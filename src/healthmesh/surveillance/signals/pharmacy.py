"""Pharmacy sentinel drugs: antipyretics, antidiarrhoeals and cough medicine dispensed.

A MedicationDispense counts when its medication has an ATC code in a sentinel group
(``medicationCodeableConcept`` codings) or its name contains a known generic or brand name
(Chinese or English).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ATC = "http://www.whocc.no/atc"

SENTINEL_GROUPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # group: (ATC prefixes, name fragments)
    "antipyretic": (
        ("N02BE01", "N02BA01", "M01AE01", "N02BB02", "N02BE51"),
        ("对乙酰氨基酚", "扑热息痛", "布洛芬", "阿司匹林", "安乃近", "paracetamol",
         "acetaminophen", "ibuprofen", "aspirin", "metamizole"),
    ),
    "antidiarrhoeal": (
        ("A07DA", "A07BC", "A07BA", "A07CA", "A07FA"),
        ("蒙脱石", "洛哌丁胺", "口服补液盐", "小檗碱", "黄连素", "loperamide", "smectite",
         "diosmectite", "oral rehydration", "berberine"),
    ),
    "cough": (
        ("R05",),
        ("止咳", "右美沙芬", "可待因", "氨溴索", "乙酰半胱氨酸", "川贝", "dextromethorphan",
         "codeine", "ambroxol", "acetylcysteine", "cough"),
    ),
}


def classify_dispense(dispense: Mapping[str, Any]) -> set[str]:
    """Sentinel groups of a MedicationDispense (empty unless it was completed or unknown).

    >>> classify_dispense({"resourceType": "MedicationDispense", "medicationCodeableConcept":
    ...     {"coding": [{"system": ATC, "code": "N02BE01"}]}})
    {'antipyretic'}
    """
    if dispense.get("resourceType") != "MedicationDispense":
        return set()
    if dispense.get("status") not in (None, "completed"):
        return set()
    concept = dispense.get("medicationCodeableConcept") or {}
    codes = [str(c.get("code", "")).upper() for c in concept.get("coding", []) or []]
    names = [str(concept.get("text", ""))] + [
        str(c.get("display", "")) for c in concept.get("coding", []) or []
    ]
    ref = dispense.get("medicationReference") or {}
    names.append(str(ref.get("display", "")))
    text = " ".join(names).lower()
    found = set()
    for group, (prefixes, fragments) in SENTINEL_GROUPS.items():
        if any(code.startswith(prefixes) for code in codes) or any(
            f.lower() in text for f in fragments
        ):
            found.add(group)
    return found
