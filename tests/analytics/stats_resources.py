"""Synthetic FHIR resources for the pooled-equality tests of the descriptive algorithms.

``region(n, seed)`` gives patients (sex, birth date), type 2 diabetes Conditions, HbA1c and
systolic pressure Observations (several per patient, so ``pick`` matters), metformin requests,
encounters and a few research refusals; ``split(resources, k, seed)`` deals whole patients to
k nodes (a patient's resources stay together, so pooled and federated see the same people).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from .contract_resources import (
    ATC,
    HBA1C,
    ICD10,
    LOINC,
    condition,
    consent,
    encounter,
    medication,
    observation,
    patient,
)

SBP = f"{LOINC}|8480-6"


def region(n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        pid = f"p{i:05d}"
        sex = str(rng.choice(["female", "male", "other"], p=[0.52, 0.46, 0.02]))
        birth = dt.date(1930, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 75)))
        age = (dt.date(2026, 1, 1) - birth).days / 365.25
        out.append(patient(pid, sex, birth.isoformat() if rng.random() > 0.02 else None))
        dm = rng.random() < 0.05 + 0.005 * age
        if dm:
            code = str(rng.choice(["E11.9", "E11.65", "E11.2"]))
            onset = dt.date(2010, 1, 1) + dt.timedelta(days=int(rng.integers(0, 5000)))
            out.append(condition(f"{pid}-dm", pid, ICD10, code, onsetDateTime=onset.isoformat()))
            if rng.random() < 0.7:
                out.append(medication("MedicationRequest", f"{pid}-m", pid, "A10BA02", "authoredOn", onset.isoformat()))
        for j in range(int(rng.integers(0, 4))):
            value = round(float(rng.normal(7.5 if dm else 5.4, 0.9)), 1)
            when = dt.datetime(2020, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=int(rng.integers(0, 50000)))
            out.append(observation(f"{pid}-a{j}", pid, HBA1C, value, effectiveDateTime=when.isoformat()))
        if rng.random() < 0.9:
            sbp = 100 + 0.6 * age + (5 if sex == "male" else 0) + 8 * dm + rng.normal(0, 14)
            out.append(observation(f"{pid}-bp", pid, SBP, round(float(sbp), 1), effectiveDateTime="2024-06-01"))
        if rng.random() < 0.6:
            start = dt.date(2021, 1, 1) + dt.timedelta(days=int(rng.integers(0, 1400)))
            out.append(encounter(f"{pid}-e", pid, str(rng.choice(["AMB", "IMP", "EMER"])), start.isoformat()))
        if rng.random() < 0.03:
            out.append(consent(f"{pid}-k", pid, "deny", "2024-01-01"))
    return out


def split(resources: list[dict[str, Any]], k: int, seed: int) -> list[list[dict[str, Any]]]:
    """Deal whole patients (with their resources) to ``k`` nodes of uneven size."""
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.5, 1.5, size=k)
    owner: dict[str, int] = {}
    for r in resources:
        if r["resourceType"] == "Patient":
            owner[r["id"]] = int(rng.choice(k, p=weights / weights.sum()))
    nodes: list[list[dict[str, Any]]] = [[] for _ in range(k)]
    for r in resources:
        ref = r["id"] if r["resourceType"] == "Patient" else (r.get("subject") or r.get("patient"))["reference"].split("/")[1]
        nodes[owner[ref]].append(r)
    return nodes


DM = {"kind": "condition", "codes": [f"{ICD10}|E11*"]}
METFORMIN = {"kind": "medication", "codes": [f"{ATC}|A10BA02"]}
