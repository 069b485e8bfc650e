"""Run the quality checks over resources (pure: values in, a report out).

Two passes: the Patients first (birth dates, for the temporal checks of everything that refers
to them), then the other resources one by one, so a node of any size is assessed in a stream.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from healthmesh.identity.idnumber import try_parse_id_number
from healthmesh.ingest.quality.report import QualityReport
from healthmesh.ingest.terminology.codes import (
    ATC,
    ICD10,
    ICD10_CODES,
    LAB_CODES,
    LOINC,
    RESIDENT_ID,
    UCUM,
)

Resource = dict[str, Any]


def _day(value: Any) -> dt.date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _subject_id(resource: Resource) -> str | None:
    ref = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
    if isinstance(ref, str) and ref.startswith("Patient/"):
        return ref.split("/", 1)[1]
    return None


def _codes(concept: Any, system: str) -> list[str]:
    if not isinstance(concept, dict):
        return []
    return [c.get("code", "") for c in concept.get("coding", []) if c.get("system") == system]


class Assessor:
    """Accumulates check outcomes; feed Patients first, then everything else."""

    def __init__(self, institution: str, today: dt.date | None = None) -> None:
        self.report = QualityReport(institution, (today or dt.date.today()).isoformat())
        self.today = today or dt.date.today()
        self.births: dict[str, dt.date | None] = {}

    def _rec(self, check: str, ok: bool, resource: Resource) -> None:
        self.report.record(check, ok, f"{resource.get('resourceType')}/{resource.get('id')}")

    def patient(self, p: Resource) -> None:
        """Check one Patient and remember its birth date."""
        birth = _day(p.get("birthDate"))
        self.births[str(p.get("id"))] = birth
        rec = self._rec
        rec("patient.name", bool(p.get("name")), p)
        rec("patient.gender", p.get("gender") in ("male", "female", "other", "unknown"), p)
        rec("patient.birthDate", birth is not None, p)
        rec("patient.telecom", bool(p.get("telecom")), p)
        rec("patient.address", bool(p.get("address")), p)
        ids = [
            i.get("value", "")
            for i in p.get("identifier", [])
            if "resident-id" in str(i.get("system")) or i.get("system") == RESIDENT_ID
        ]
        rec("patient.resident_id", bool(ids), p)
        for number in ids:
            parsed = try_parse_id_number(number)
            rec("patient.resident_id.valid", parsed is not None, p)
            if parsed is not None and birth is not None:
                rec("patient.resident_id.birth", parsed.birth_date == birth, p)
        if birth is not None:
            rec("patient.birthDate.future", birth <= self.today, p)
            rec("patient.age", (self.today - birth).days <= 120 * 366, p)

    def _after_birth(self, check: str, when: dt.date | None, r: Resource) -> None:
        birth = self.births.get(_subject_id(r) or "")
        if when is not None and birth is not None:
            self._rec(check, when >= birth, r)

    def _resolves(self, check: str, r: Resource) -> None:
        subject = _subject_id(r)
        if subject is not None or r.get("subject"):
            self._rec(check, subject in self.births, r)

    def encounter(self, e: Resource) -> None:
        period = e.get("period") or {}
        start, end = _day(period.get("start")), _day(period.get("end"))
        self._rec("encounter.period.start", start is not None, e)
        self._resolves("encounter.subject.resolves", e)
        self._after_birth("encounter.after_birth", start, e)
        if start is not None and end is not None:
            self._rec("encounter.period.order", str(period["end"]) >= str(period["start"]), e)

    def observation(self, o: Resource) -> None:
        rec = self._rec
        value_keys = [k for k in o if k.startswith("value")]
        rec("observation.value", bool(value_keys) or bool(o.get("component")), o)
        when = _day(o.get("effectiveDateTime") or (o.get("effectivePeriod") or {}).get("start"))
        rec("observation.effective", when is not None, o)
        loincs = _codes(o.get("code"), LOINC)
        known = [c for c in loincs if c in LAB_CODES]
        rec("observation.code.known", bool(known), o)
        self._resolves("observation.subject.resolves", o)
        self._after_birth("observation.after_birth", when, o)
        q = o.get("valueQuantity")
        if isinstance(q, dict) and isinstance(q.get("value"), int | float):
            unit = str(q.get("code") or q.get("unit") or "")
            rec("observation.unit.ucum", q.get("system") == UCUM, o)
            rec("observation.value.nonnegative", q["value"] >= 0, o)
            if known:
                lab = LAB_CODES[known[0]]
                fits = unit in lab.units
                rec("observation.unit.fits", fits, o)
                if fits:
                    rec("observation.value.range", lab.low <= q["value"] <= lab.high, o)

    def condition(self, c: Resource) -> None:
        codes = _codes(c.get("code"), ICD10)
        self._rec("condition.code.known", any(code in ICD10_CODES for code in codes), c)
        self._resolves("condition.subject.resolves", c)

    def medication(self, m: Resource) -> None:
        concept = m.get("medicationCodeableConcept")
        self._rec("medication.code.standard", bool(_codes(concept, ATC)), m)
        when = m.get("authoredOn") or m.get("whenHandedOver")
        self._rec("medication.time", _day(when) is not None, m)

    def imaging(self, s: Resource) -> None:
        started = _day(s.get("started"))
        self._rec("imaging.started", started is not None, s)
        self._after_birth("imaging.after_birth", started, s)

    def other(self, r: Resource) -> None:
        handler = _HANDLERS.get(str(r.get("resourceType")))
        if handler is not None:
            handler(self, r)


_HANDLERS: dict[str, Callable[[Assessor, Resource], None]] = {
    "Encounter": Assessor.encounter,
    "Observation": Assessor.observation,
    "Condition": Assessor.condition,
    "MedicationRequest": Assessor.medication,
    "MedicationDispense": Assessor.medication,
    "ImagingStudy": Assessor.imaging,
}
#: resource types the assessment reads
ASSESSED_TYPES = ("Patient", *_HANDLERS)


def assess(
    patients: Iterable[Resource],
    others: Iterable[Resource],
    *,
    institution: str,
    today: dt.date | None = None,
) -> QualityReport:
    """Assess an institution's resources: ``patients`` first, then ``others``.

    >>> r = assess([{"resourceType": "Patient", "id": "p", "birthDate": "2999-01-01"}], [],
    ...            institution="X", today=dt.date(2024, 1, 1))
    >>> r.results["patient.birthDate.future"].failed
    1
    """
    assessor = Assessor(institution, today)
    for p in patients:
        assessor.patient(p)
    for r in others:
        assessor.other(r)
    return assessor.report
