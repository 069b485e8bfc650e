"""Synthetic FHIR resources for federation tests: patients with sex, age, a BMI observation,
diabetes and hypertension (hypertension depends on age, sex and BMI, so a logistic model has
something to find), and research-consent refusals."""

from __future__ import annotations

import math
import random
from typing import Any

ICD = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"


def resources(prefix: str, n: int, seed: int, *, refusals: int = 1) -> list[dict[str, Any]]:
    """``n`` patients ``<prefix>-<k>`` with their resources; the first ``refusals`` refuse
    research use (active research Consent with provision deny)."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for k in range(n):
        pid = f"{prefix}-{k}"
        sex = rng.choice(["female", "male"])
        age = rng.randint(25, 85)
        bmi = round(rng.gauss(24.5, 3.5), 1)
        out.append(
            {"resourceType": "Patient", "id": pid, "gender": sex,
             "birthDate": f"{2025 - age}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"}
        )
        out.append(
            {"resourceType": "Observation", "id": f"{pid}-bmi", "status": "final",
             "code": {"coding": [{"system": LOINC, "code": "39156-5"}]},
             "subject": {"reference": f"Patient/{pid}"},
             "effectiveDateTime": "2024-05-01",
             "valueQuantity": {"value": bmi, "unit": "kg/m2"}}
        )
        logit = -9.0 + 0.09 * age + 0.12 * bmi + (0.4 if sex == "male" else 0.0)
        if rng.random() < 1 / (1 + math.exp(-logit)):
            out.append(_condition(f"{pid}-htn", pid, "I10"))
        if rng.random() < 0.25:
            out.append(_condition(f"{pid}-dm", pid, "E11.9"))
        if k < refusals:
            out.append(
                {"resourceType": "Consent", "id": f"{pid}-consent", "status": "active",
                 "scope": {"coding": [{"system": SCOPE, "code": "research"}]},
                 "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
                 "patient": {"reference": f"Patient/{pid}"}, "dateTime": "2024-01-01",
                 "provision": {"type": "deny"}}
            )
    return out


def _condition(cid: str, pid: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": ICD, "code": code}]},
        "onsetDateTime": "2023-03-01",
    }


VARIABLES: list[dict[str, Any]] = [
    {"kind": "sex", "name": "sex"},
    {"kind": "age", "name": "age"},
    {"kind": "observation", "name": "bmi", "codes": [f"{LOINC}|39156-5"]},
    {"kind": "condition", "name": "hypertension", "codes": [f"{ICD}|I10"]},
    {"kind": "condition", "name": "diabetes", "codes": [f"{ICD}|E11*"]},
]

COHORT: dict[str, Any] = {"include": [{"kind": "age", "min": 30}]}


def study(institutions: list[str], **extra: Any) -> dict[str, Any]:
    """A study with a count, a cross-tab and a logistic regression."""
    body: dict[str, Any] = {
        "title": "Hypertension risk factors",
        "purpose": "Association of age, sex and BMI with hypertension in adults over 30.",
        "institutions": institutions,
        "variables": VARIABLES,
        "cohort": COHORT,
        "computations": [
            {"name": "n", "algorithm": "count"},
            {"name": "table", "algorithm": "crosstab",
             "params": {"variables": ["sex", "diabetes"]}},
            {"name": "model", "algorithm": "glm",
             "params": {"outcome": "hypertension", "covariates": ["age", "sex", "bmi"],
                        "family": "binomial"}},
        ],
    }
    body.update(extra)
    return body
