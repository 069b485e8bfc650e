"""A small, deterministic set of synthetic patients as a FHIR R4 transaction Bundle.

Used by ``healthmesh demo`` so that it runs on a machine holding only the repository.
Names are drawn from common Chinese and English names; every value is invented.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta
from typing import Any

SURNAMES = [
    ("王", "Wang"),
    ("李", "Li"),
    ("张", "Zhang"),
    ("刘", "Liu"),
    ("陈", "Chen"),
    ("杨", "Yang"),
    ("黄", "Huang"),
    ("赵", "Zhao"),
    ("周", "Zhou"),
    ("吴", "Wu"),
]
GIVEN = [
    ("伟", "Wei"),
    ("芳", "Fang"),
    ("娜", "Na"),
    ("敏", "Min"),
    ("静", "Jing"),
    ("磊", "Lei"),
    ("洋", "Yang"),
    ("艳", "Yan"),
    ("勇", "Yong"),
    ("军", "Jun"),
]
CONDITIONS = [
    ("J11.1", "Influenza with other respiratory manifestations"),
    ("I10", "Essential (primary) hypertension"),
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("A09", "Infectious gastroenteritis and colitis"),
    ("J06.9", "Acute upper respiratory infection, unspecified"),
]
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"


def _uuid(rng: random.Random) -> str:
    return f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"


def _vital(
    rng: random.Random,
    patient: str,
    encounter: str,
    when: datetime,
    code: str,
    display: str,
    value: float,
    unit: str,
    ucum: str,
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
        "subject": {"reference": patient},
        "encounter": {"reference": encounter},
        "effectiveDateTime": when.isoformat() + "+08:00",
        "valueQuantity": {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": ucum,
        },
    }


def sample_bundle(patients: int = 25, seed: int = 7) -> dict[str, Any]:
    """A transaction Bundle of ``patients`` patients with encounters, vitals and conditions."""
    rng = random.Random(seed)
    entries: list[dict[str, Any]] = []

    def add(resource: dict[str, Any]) -> str:
        full = _uuid(rng)
        entries.append(
            {
                "fullUrl": full,
                "resource": resource,
                "request": {"method": "POST", "url": resource["resourceType"]},
            }
        )
        return full

    for i in range(patients):
        (sh, sp), (gh, gp) = rng.choice(SURNAMES), rng.choice(GIVEN)
        birth = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 80 * 365))
        patient = add(
            {
                "resourceType": "Patient",
                "identifier": [{"system": "urn:healthmesh:demo:mrn", "value": f"MRN{100000 + i}"}],
                "name": [
                    {"use": "official", "family": sh, "given": [gh], "text": sh + gh},
                    {"use": "usual", "family": sp, "given": [gp]},
                ],
                "gender": rng.choice(["male", "female"]),
                "birthDate": birth.isoformat(),
                "address": [
                    {
                        "city": "杭州市",
                        "district": rng.choice(["西湖区", "上城区", "拱墅区"]),
                        "country": "CN",
                    }
                ],
            }
        )
        for _ in range(rng.randint(1, 3)):
            start = datetime(2024, 1, 1) + timedelta(minutes=rng.randrange(0, 2 * 365 * 24 * 60))
            encounter = add(
                {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "AMB",
                        "display": "ambulatory",
                    },
                    "subject": {"reference": patient},
                    "period": {
                        "start": start.isoformat() + "+08:00",
                        "end": (start + timedelta(minutes=30)).isoformat() + "+08:00",
                    },
                }
            )
            temp = round(rng.gauss(37.0, 0.7), 1)
            add(
                _vital(
                    rng, patient, encounter, start, "8310-5", "Body temperature", temp, "Cel", "Cel"
                )
            )
            add(
                _vital(
                    rng,
                    patient,
                    encounter,
                    start,
                    "8867-4",
                    "Heart rate",
                    float(rng.randint(55, 110)),
                    "/min",
                    "/min",
                )
            )
            if rng.random() < 0.6:
                code, display = rng.choice(CONDITIONS)
                add(
                    {
                        "resourceType": "Condition",
                        "clinicalStatus": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                    "code": "active",
                                }
                            ]
                        },
                        "code": {"coding": [{"system": ICD10, "code": code, "display": display}]},
                        "subject": {"reference": patient},
                        "encounter": {"reference": encounter},
                        "onsetDateTime": start.isoformat() + "+08:00",
                    }
                )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
