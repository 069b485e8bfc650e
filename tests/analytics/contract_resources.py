"""The hand-written FHIR R4 resources of the NodeData contract suite (see data_contract.py).

Thirteen patients; p06, p08 and p13 refused research use (p06: deny; p08: undated deny then a
permit; p13: deny and permit at the same instant). p07 denied then permitted later (takes
part). p09 has only non-counting consents (treatment scope, inactive, proposed). Eligible:
p01 p02 p03 p04 p05 p07 p09 p10 p11 p12.
"""

from __future__ import annotations

from typing import Any

ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
ATC = "http://www.whocc.no/atc"
SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
HBA1C = f"{LOINC}|4548-4"
GLUCOSE = f"{LOINC}|2345-7"

R = dict[str, Any]


def _ref(pid: str) -> R:
    return {"reference": f"Patient/{pid}"}


def patient(pid: str, gender: str | None, birth: str | None, **extra: Any) -> R:
    res: R = {"resourceType": "Patient", "id": pid, **extra}
    if gender:
        res["gender"] = gender
    if birth:
        res["birthDate"] = birth
    return res


def condition(cid: str, pid: str, system: str, code: str, **extra: Any) -> R:
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": _ref(pid),
        "code": {"coding": [{"system": system, "code": code}]},
        **extra,
    }


def observation(oid: str, pid: str, coded: str, value: Any = None, **extra: Any) -> R:
    system, code = coded.split("|")
    res: R = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "subject": _ref(pid),
        "code": {"coding": [{"system": system, "code": code}]},
        **extra,
    }
    if value is not None:
        res["valueQuantity"] = {"value": value, "unit": "%"}
    return res


def medication(rtype: str, mid: str, pid: str, code: str, date_field: str, date: str, **extra: Any) -> R:
    return {
        "resourceType": rtype,
        "id": mid,
        "status": "completed",
        "subject": _ref(pid),
        "medicationCodeableConcept": {"coding": [{"system": ATC, "code": code}]},
        date_field: date,
        **extra,
    }


def encounter(eid: str, pid: str, cls: str, start: str | None, **extra: Any) -> R:
    res: R = {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "subject": _ref(pid),
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls},
        **extra,
    }
    if start:
        res["period"] = {"start": start}
    return res


def consent(kid: str, pid: str, kind: str, when: str | None, *, scope: str = "research", status: str = "active") -> R:
    res: R = {
        "resourceType": "Consent",
        "id": kid,
        "status": status,
        "scope": {"coding": [{"system": SCOPE, "code": scope}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
        "patient": _ref(pid),
        "provision": {"type": kind},
    }
    if when:
        res["dateTime"] = when
    return res


REFUTED = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "refuted"}]}

RESOURCES: list[R] = [
    patient("p01", "female", "1950-06-15"),
    patient("p02", "male", "1960-01-01", deceasedDateTime="2023-06-01"),
    patient("p03", "female", "1980-02-29"),
    patient("p04", "male", None),
    patient("p05", None, "2000-12-31"),
    patient("p06", "female", "1970-01-01"),
    patient("p07", "male", "1975-05-05", deceasedDateTime="2026-06-01T08:00:00+08:00"),
    patient("p08", "female", "1985-01-01"),
    patient("p09", "male", "1990-07-01"),
    patient("p10", "other", "1945-03-03"),
    patient("p11", "female", "1999-09-09"),
    patient("p12", "male", "1955-01-01", deceasedBoolean=True),
    patient("p13", "female", "1965-01-01"),
    # conditions
    condition("c01", "p01", ICD10, "E11.9", onsetDateTime="2020-03-01"),
    condition("c02", "p02", ICD10, "E11.65", recordedDate="2019-05-05"),
    condition("c03", "p03", ICD10, "I10", onsetDateTime="2021"),
    condition("c04", "p04", ICD10, "E11", onsetDateTime="2020-01-01", verificationStatus=REFUTED),
    condition("c04b", "p04", "http://example.org/local", "E11", onsetDateTime="2020-01-01"),
    condition("c05", "p05", ICD10, "I10", onsetDateTime="2022-06-01"),
    condition("c06", "p06", ICD10, "E11", onsetDateTime="2020-01-01"),
    condition("c07", "p07", ICD10, "E11.2", onsetDateTime="2022-02-02T01:30:00+08:00"),
    condition("c08", "p08", ICD10, "E11", onsetDateTime="2020-01-01"),
    condition("c10", "p10", ICD10, "E11.9"),
    condition("c12", "p12", ICD10, "E11", onsetDateTime="2018-01-01"),
    {**condition("cx1", "p05", ICD10, "E11"), "subject": {"reference": "https://example.org/fhir/Patient/p05"}},
    condition("cx2", "nobody", ICD10, "E11", onsetDateTime="2020-01-01"),
    # observations (o07 is given twice: the second version replaces the first)
    observation("o01a", "p01", HBA1C, 7.1, effectiveDateTime="2021-01-01"),
    observation("o01b", "p01", HBA1C, 8.2, effectiveDateTime="2022-01-01T10:00:00+08:00"),
    observation("o01c", "p01", HBA1C, 6.5),
    observation("o02", "p02", HBA1C, 9, issued="2020-02-02T08:00:00Z"),
    {**observation("o03a", "p03", GLUCOSE, 100, effectiveDateTime="2023-01-01"), "status": "entered-in-error"},
    observation("o03b", "p03", GLUCOSE, 90, effectiveDateTime="2023-01-01"),
    observation("o07", "p07", HBA1C, 5.0, effectiveDateTime="2022-03-03"),
    observation("o07", "p07", HBA1C, 6.5, effectiveDateTime="2022-03-03"),
    observation("o11a", "p11", GLUCOSE, 5.0, effectiveDateTime="2024-01-01T23:00:00-05:00"),
    observation("o11b", "p11", GLUCOSE, 6.0, effectiveDateTime="2024-01-02T02:00:00+00:00"),
    {**observation("o11c", "p11", GLUCOSE, effectiveDateTime="2024-02-01"), "valueString": "high"},
    # medications
    medication("MedicationRequest", "m01", "p01", "A10BA02", "authoredOn", "2020-03-02"),
    {**medication("MedicationRequest", "m07", "p07", "A10BA02", "authoredOn", "2022-01-01"), "status": "entered-in-error"},
    medication("MedicationRequest", "m03", "p03", "C09AA02", "authoredOn", "2021-02-01"),
    medication("MedicationDispense", "d05", "p05", "A10BA02", "whenHandedOver", "2022-05-05T10:00:00+08:00"),
    {
        "resourceType": "MedicationDispense",
        "id": "d02",
        "status": "completed",
        "subject": _ref("p02"),
        "medicationReference": {"reference": "Medication/metformin"},
        "whenHandedOver": "2021-01-01",
    },
    # encounters
    encounter("e01", "p01", "AMB", "2020-03-01"),
    encounter("e05", "p05", "IMP", "2022-05-01T09:00:00+08:00"),
    encounter("e10", "p10", "EMER", None),
    {**encounter("e03", "p03", "AMB", "2023-01-01"), "status": "entered-in-error"},
    # consents
    consent("k01", "p01", "permit", "2020-01-01"),
    consent("k06", "p06", "deny", "2020-01-01"),
    consent("k07a", "p07", "deny", "2020-01-01"),
    consent("k07b", "p07", "permit", "2021-01-01T00:00:00Z"),
    consent("k08a", "p08", "deny", None),
    consent("k08b", "p08", "permit", "2022-01-01"),
    consent("k09a", "p09", "deny", "2020-01-01", scope="treatment"),
    consent("k09b", "p09", "deny", "2020-01-01", status="inactive"),
    consent("k09c", "p09", "deny", "2020-01-01", status="proposed"),
    consent("k13a", "p13", "deny", "2021-05-05T10:00:00Z"),
    consent("k13b", "p13", "permit", "2021-05-05T18:00:00+08:00"),
]

ELIGIBLE = frozenset({"p01", "p02", "p03", "p04", "p05", "p07", "p09", "p10", "p11", "p12"})
AGES = {"p01": 75, "p02": 66, "p03": 45, "p05": 25, "p07": 50, "p09": 35, "p10": 80, "p11": 26, "p12": 71}
