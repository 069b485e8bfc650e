"""The catalogue of quality checks (Kahn framework), each with its dimension and category.

Kahn MG et al., "A Harmonized Data Quality Assessment Terminology and Framework for the
Secondary Use of Electronic Health Record Data", eGEMs 4(1), 2016: *completeness* (is the value
there), *conformance* (value, relational, computational: does it follow the standard), and
*plausibility* (atemporal, temporal: is it believable). Every check has a stable id so the
hub's catalog can publish scores per check.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One quality check."""

    id: str
    dimension: str  # completeness | conformance | plausibility
    category: str  # value | relational | computational | atemporal | temporal | -
    resource_type: str
    description: str


CHECKS: dict[str, Check] = {
    c.id: c
    for c in (
        Check("patient.name", "completeness", "-", "Patient", "patient has a name"),
        Check("patient.gender", "completeness", "-", "Patient", "patient has a gender"),
        Check("patient.birthDate", "completeness", "-", "Patient", "patient has a birth date"),
        Check(
            "patient.resident_id",
            "completeness",
            "-",
            "Patient",
            "patient has a resident identity number",
        ),
        Check("patient.telecom", "completeness", "-", "Patient", "patient has a phone number"),
        Check("patient.address", "completeness", "-", "Patient", "patient has an address"),
        Check(
            "patient.resident_id.valid",
            "conformance",
            "computational",
            "Patient",
            "resident identity number passes the GB 11643 check digit",
        ),
        Check(
            "patient.resident_id.birth",
            "conformance",
            "computational",
            "Patient",
            "birth date agrees with the one encoded in the identity number",
        ),
        Check(
            "patient.birthDate.future",
            "plausibility",
            "temporal",
            "Patient",
            "birth date is not in the future",
        ),
        Check("patient.age", "plausibility", "atemporal", "Patient", "age is at most 120 years"),
        Check(
            "encounter.period.start", "completeness", "-", "Encounter", "encounter has a start time"
        ),
        Check(
            "encounter.subject.resolves",
            "conformance",
            "relational",
            "Encounter",
            "encounter subject is a Patient in this node",
        ),
        Check(
            "encounter.after_birth",
            "plausibility",
            "temporal",
            "Encounter",
            "encounter does not start before the patient's birth",
        ),
        Check(
            "encounter.period.order",
            "plausibility",
            "temporal",
            "Encounter",
            "encounter does not end before it starts",
        ),
        Check("observation.value", "completeness", "-", "Observation", "observation has a value"),
        Check(
            "observation.effective",
            "completeness",
            "-",
            "Observation",
            "observation has an effective time",
        ),
        Check(
            "observation.code.known",
            "conformance",
            "value",
            "Observation",
            "observation code is in the region's LOINC subset",
        ),
        Check(
            "observation.unit.ucum",
            "conformance",
            "value",
            "Observation",
            "quantity unit is coded in UCUM",
        ),
        Check(
            "observation.subject.resolves",
            "conformance",
            "relational",
            "Observation",
            "observation subject is a Patient in this node",
        ),
        Check(
            "observation.unit.fits",
            "plausibility",
            "atemporal",
            "Observation",
            "unit fits the observation code",
        ),
        Check(
            "observation.value.nonnegative",
            "plausibility",
            "atemporal",
            "Observation",
            "quantity value is not negative",
        ),
        Check(
            "observation.value.range",
            "plausibility",
            "atemporal",
            "Observation",
            "value lies in the plausible range of the code",
        ),
        Check(
            "observation.after_birth",
            "plausibility",
            "temporal",
            "Observation",
            "observation is not before the patient's birth",
        ),
        Check(
            "condition.code.known",
            "conformance",
            "value",
            "Condition",
            "diagnosis has an ICD-10 code of the region's subset",
        ),
        Check(
            "condition.subject.resolves",
            "conformance",
            "relational",
            "Condition",
            "condition subject is a Patient in this node",
        ),
        Check(
            "medication.code.standard",
            "conformance",
            "value",
            "Medication*",
            "medication is coded in ATC (local-only codes are flagged)",
        ),
        Check(
            "medication.time",
            "completeness",
            "-",
            "Medication*",
            "medication request/dispense has its time",
        ),
        Check("imaging.started", "completeness", "-", "ImagingStudy", "study has a start time"),
        Check(
            "imaging.after_birth",
            "plausibility",
            "temporal",
            "ImagingStudy",
            "study is not before the patient's birth",
        ),
    )
}

DIMENSIONS = ("completeness", "conformance", "plausibility")
