"""How the analytics read FHIR R4 resources: the patient a resource is about, its codes, its date.

These small functions *are* the normative reading of resources for cohorts and variables (see
:mod:`healthmesh.analytics.cohort`); :class:`~healthmesh.analytics.memory_data.ResourceData`
is built on them and the SQL implementation at the node must agree with them (one shared
contract suite checks it).

Rules, per resource:

- **Patient**: ``subject.reference`` (``patient.reference`` for Consent) of the form
  ``Patient/<id>``; other references (absolute URLs, other types, contained) are not followed.
- **Codes**: ``code.coding`` (Condition, Observation) or ``medicationCodeableConcept.coding``
  (MedicationRequest, MedicationDispense) as ``system|code``; ``medicationReference`` is not
  followed.
- **Date**: the calendar date as written (the first ten characters of the dateTime, so the
  institution's local date); a partial date (``2024`` or ``2024-03``) is its first day.
- **Instant** (ordering ``first``/``last`` observations): the full dateTime; a dateTime without a
  zone is taken as UTC; a date alone is midnight UTC of that day.
- **Entered in error** resources are ignored everywhere: ``status`` ``entered-in-error``
  (Observation, MedicationRequest, MedicationDispense, Encounter) or a Condition whose
  ``verificationStatus`` is ``entered-in-error`` or ``refuted``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

Resource = dict[str, Any]

#: resource type -> the element holding its analysis date, in order of preference
DATE_ELEMENTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Condition": (("onsetDateTime",), ("recordedDate",)),
    "Observation": (("effectiveDateTime",), ("issued",)),
    "MedicationRequest": (("authoredOn",),),
    "MedicationDispense": (("whenHandedOver",),),
    "Encounter": (("period", "start"),),
}

_ERROR_STATUSES = frozenset({"entered-in-error"})
_BAD_VERIFICATION = frozenset({"entered-in-error", "refuted"})


def patient_id(resource: Resource) -> str | None:
    """The id of the Patient the resource is about, or None."""
    key = "patient" if resource.get("resourceType") == "Consent" else "subject"
    ref = resource.get(key)
    if not isinstance(ref, dict):
        return None
    text = ref.get("reference")
    if not isinstance(text, str) or not text.startswith("Patient/"):
        return None
    pid = text[len("Patient/") :]
    return pid if pid and "/" not in pid else None


def codes(resource: Resource) -> list[tuple[str, str]]:
    """(system, code) pairs of the resource's concept (missing system as empty string)."""
    rtype = resource.get("resourceType")
    field = (
        "medicationCodeableConcept"
        if rtype in ("MedicationRequest", "MedicationDispense")
        else "code"
    )
    concept = resource.get(field)
    if not isinstance(concept, dict):
        return []
    out: list[tuple[str, str]] = []
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
            system = coding.get("system")
            out.append((system if isinstance(system, str) else "", coding["code"]))
    return out


def code_matches(pattern: str, system: str, code: str) -> bool:
    """Whether ``system|code`` matches ``pattern`` (``system|code``, ``system|prefix*``,
    ``|code`` or a bare code for any system)."""
    psys, _, pcode = pattern.rpartition("|")
    if psys and psys != system:
        return False
    if pcode.endswith("*"):
        return code.startswith(pcode[:-1])
    return code == pcode


def has_code(resource: Resource, patterns: Iterable[str]) -> bool:
    """Whether any coding of the resource matches any of ``patterns``."""
    pats = list(patterns)
    return any(code_matches(p, s, c) for s, c in codes(resource) for p in pats)


def _date_text(resource: Resource) -> str | None:
    for path in DATE_ELEMENTS.get(str(resource.get("resourceType")), ()):
        value: Any = resource
        for step in path:
            value = value.get(step) if isinstance(value, dict) else None
        if isinstance(value, str) and value:
            return value
    return None


def parse_date(text: str | None) -> dt.date | None:
    """The calendar date of a FHIR date/dateTime as written; partial dates are their first day.
    None when absent or unreadable."""
    if not text:
        return None
    head = text[:10]
    parts = head.split("-")
    try:
        if len(parts) == 1:
            return dt.date(int(parts[0]), 1, 1)
        if len(parts) == 2:
            return dt.date(int(parts[0]), int(parts[1]), 1)
        return dt.date.fromisoformat(head)
    except ValueError:
        return None


def parse_instant(text: str | None) -> dt.datetime | None:
    """A FHIR date/dateTime/instant as an aware datetime (no zone = UTC; a date = midnight)."""
    day = parse_date(text)
    if text is None or day is None:
        return None
    if len(text) <= 10:
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def resource_date(resource: Resource) -> dt.date | None:
    """The analysis date of a resource (see :data:`DATE_ELEMENTS`)."""
    return parse_date(_date_text(resource))


def resource_instant(resource: Resource) -> dt.datetime | None:
    """The analysis date of a resource as an instant (ordering observations)."""
    return parse_instant(_date_text(resource))


def in_window(day: dt.date | None, start: dt.date | None, end: dt.date | None) -> bool:
    """Inclusive window; an undated resource matches only a window without bounds."""
    if start is None and end is None:
        return True
    if day is None:
        return False
    return (start is None or day >= start) and (end is None or day <= end)


def entered_in_error(resource: Resource) -> bool:
    """Whether the resource is to be ignored as recorded in error (or a refuted Condition)."""
    if resource.get("status") in _ERROR_STATUSES:
        return True
    if resource.get("resourceType") == "Condition":
        ver = resource.get("verificationStatus")
        if isinstance(ver, dict):
            for coding in ver.get("coding") or []:
                if isinstance(coding, dict) and coding.get("code") in _BAD_VERIFICATION:
                    return True
    return False


def quantity_value(resource: Resource) -> float | None:
    """``valueQuantity.value`` as a float (None when absent or not a number)."""
    q = resource.get("valueQuantity")
    value = q.get("value") if isinstance(q, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def age_years(birth: dt.date, on: dt.date) -> int:
    """Whole years between ``birth`` and ``on`` (a 29 February birthday falls on 1 March)."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
