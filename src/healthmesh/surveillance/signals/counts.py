"""Daily counts by signal, district, age band and sex from a node's FHIR resources.

A patient counts once per signal and day, however many resources point to the same visit
(an Encounter with its Conditions and temperature Observations). Only these aggregate counts
leave the node, after :mod:`~healthmesh.surveillance.signals.protection`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from healthmesh.surveillance.signals.pharmacy import classify_dispense
from healthmesh.surveillance.signals.syndromes import (
    FEVER_C,
    classify_resource,
    is_fever_clinic,
    temperature_celsius,
)

AGE_BANDS = ((0, 4), (5, 14), (15, 24), (25, 49), (50, 64), (65, 200))


class CountKey(NamedTuple):
    """One cell of the daily aggregate."""

    date: dt.date
    district: str
    signal: str
    age_band: str
    sex: str


def age_band(birth: dt.date | None, on: dt.date) -> str:
    """Age band label (``0-4``, ``5-14``, ``15-24``, ``25-49``, ``50-64``, ``65+``).

    >>> age_band(dt.date(2020, 6, 1), dt.date(2025, 5, 31))
    '0-4'
    """
    if birth is None:
        return "unknown"
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    for lo, hi in AGE_BANDS:
        if lo <= years <= hi:
            return f"{lo}+" if hi == 200 else f"{lo}-{hi}"
    return "unknown"


def _date(text: Any) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


def _resource_date(res: Mapping[str, Any]) -> dt.date | None:
    rtype = res.get("resourceType")
    if rtype == "Encounter":
        return _date((res.get("period") or {}).get("start"))
    if rtype == "Condition":
        return _date(res.get("onsetDateTime") or res.get("recordedDate"))
    if rtype == "Observation":
        return _date(res.get("effectiveDateTime") or (res.get("effectivePeriod") or {}).get(
            "start") or res.get("issued"))
    if rtype == "MedicationDispense":
        return _date(res.get("whenHandedOver") or res.get("whenPrepared"))
    return None


def _ref_id(ref: Mapping[str, Any] | None, rtype: str) -> str | None:
    text = str((ref or {}).get("reference", ""))
    return text.split("/", 1)[1] if text.startswith(rtype + "/") else None


def patient_info(patient: Mapping[str, Any]) -> tuple[str, dt.date | None, str]:
    """(district, birth date, sex) of a Patient resource; district from ``address.district``."""
    district = "unknown"
    for addr in patient.get("address", []) or []:
        if addr.get("district"):
            district = str(addr["district"])
            break
    sex = str(patient.get("gender") or "unknown")
    return district, _date(patient.get("birthDate")), sex


def daily_counts(
    resources: Iterable[Mapping[str, Any]],
    *,
    default_district: str = "unknown",
) -> Counter[CountKey]:
    """Count patients per day, district, signal, age band and sex.

    Signals are syndromes (``ili``, ``fever``, ...), ``fever_clinic_fever`` (temperature
    >= 38 °C at a fever clinic) and pharmacy groups prefixed ``rx_``.

    >>> pt = {"resourceType": "Patient", "id": "p", "gender": "female",
    ...       "birthDate": "1990-01-01", "address": [{"district": "Xuhui"}]}
    >>> cond = {"resourceType": "Condition", "subject": {"reference": "Patient/p"},
    ...         "onsetDateTime": "2025-01-05", "code": {"text": "腹泻"}}
    >>> list(daily_counts([pt, cond]).items())[0][1]
    1
    """
    items = list(resources)
    patients = {str(r.get("id")): patient_info(r) for r in items
                if r.get("resourceType") == "Patient"}
    encounters = {str(r.get("id")): r for r in items if r.get("resourceType") == "Encounter"}
    seen: set[tuple[str, dt.date, str]] = set()
    counts: Counter[CountKey] = Counter()
    for res in items:
        rtype = res.get("resourceType")
        if rtype == "Patient":
            continue
        day = _resource_date(res)
        pid = _ref_id(res.get("subject"), "Patient") or _ref_id(res.get("patient"), "Patient")
        if day is None or pid is None:
            continue
        if rtype == "MedicationDispense":
            signals = {"rx_" + g for g in classify_dispense(res)}
        else:
            signals = classify_resource(res)
            if rtype == "Observation":
                temp = temperature_celsius(res)
                enc = encounters.get(_ref_id(res.get("encounter"), "Encounter") or "")
                if temp is not None and temp >= FEVER_C and enc and is_fever_clinic(enc):
                    signals.add("fever_clinic_fever")
        district, birth, sex = patients.get(pid, (default_district, None, "unknown"))
        for signal in signals:
            if (pid, day, signal) in seen:
                continue
            seen.add((pid, day, signal))
            counts[CountKey(day, district, signal, age_band(birth, day), sex)] += 1
    return counts
