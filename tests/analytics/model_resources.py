"""FHIR R4 resources of synthetic institutions for the models' pooled-equality tests (and the
models' benchmarks): patients with sex, birth date, BMI and blood pressure Observations,
diabetes and stroke Conditions, a visit count, a cancer diagnosis date and a death date, and a
few research-consent refusals. Patient ids are unique across institutions.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from .contract_resources import ICD10, LOINC, condition, consent, observation, patient

COUNTS = "http://example.org/fhir/counts"
AGE = {"kind": "age", "name": "age"}
SEX = {"kind": "sex", "name": "sex"}
BMI = {"kind": "observation", "name": "bmi", "codes": [f"{LOINC}|39156-5"]}
DM = {"kind": "condition", "name": "dm", "codes": [f"{ICD10}|E11*"]}
STROKE = {"kind": "condition", "name": "stroke", "codes": [f"{ICD10}|I63*"]}
VISITS = {"kind": "observation", "name": "visits", "codes": [f"{COUNTS}|visits"]}
SBP = {"kind": "observation", "name": "sbp", "codes": [f"{LOINC}|8480-6"]}
OS = {
    "kind": "survival",
    "name": "os",
    "start_codes": [f"{ICD10}|C50*"],
    "censor_date": "2025-12-31",
}
COVARIATES = [AGE, SEX, BMI, DM]
OUTCOMES = {"binomial": STROKE, "poisson": VISITS, "gaussian": SBP}

_DAY0 = dt.date(2012, 1, 1)


def institution(name: str, n: int, seed: int, *, baseline: float = 1.0) -> list[dict[str, Any]]:
    """``n`` patients of one institution (``baseline`` scales its death hazard)."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        pid = f"{name}-{i:05d}"
        sex = rng.choice(["female", "male", "unknown"], p=[0.5, 0.48, 0.02])
        age = int(rng.integers(25, 90))
        male = float(sex == "male")
        bmi = round(float(rng.normal(25, 4)), 1)
        dm = rng.random() < 0.1 + 0.004 * (age - 25)
        diagnosed = _DAY0 + dt.timedelta(days=int(rng.integers(0, 3650)))
        hazard = baseline * np.exp(-10.0 + 0.03 * age + 0.3 * male + 0.6 * dm)
        death = diagnosed + dt.timedelta(days=int(rng.exponential(1 / hazard)))
        extra = {"deceasedDateTime": death.isoformat()} if death <= dt.date(2026, 6, 1) else {}
        out.append(patient(pid, str(sex), f"{2025 - age}-{1 + i % 12:02d}-15", **extra))
        out.append(condition(f"{pid}-c", pid, ICD10, "C50.9", onsetDateTime=diagnosed.isoformat()))
        if rng.random() > 0.04:  # a few without BMI: not complete cases
            out.append(
                observation(
                    f"{pid}-bmi", pid, f"{LOINC}|39156-5", bmi, effectiveDateTime="2024-03-01"
                )
            )
        if dm:
            out.append(condition(f"{pid}-dm", pid, ICD10, "E11.9", onsetDateTime="2019-05-01"))
        eta = -7 + 0.06 * age + 0.4 * male + 0.05 * bmi + 0.9 * dm
        if rng.random() < 1 / (1 + np.exp(-eta)):
            out.append(condition(f"{pid}-st", pid, ICD10, "I63.9", onsetDateTime="2023-01-01"))
        visits = rng.poisson(np.exp(-0.5 + 0.015 * age + 0.2 * male + 0.02 * bmi + 0.5 * dm))
        out.append(
            observation(
                f"{pid}-v", pid, f"{COUNTS}|visits", int(visits), effectiveDateTime="2024-12-31"
            )
        )
        sbp = 95 + 0.5 * age + 4 * male + 0.8 * bmi + 6 * dm + rng.normal(0, 12)
        out.append(
            observation(
                f"{pid}-bp",
                pid,
                f"{LOINC}|8480-6",
                round(float(sbp), 1),
                effectiveDateTime="2024-06-01",
            )
        )
        if rng.random() < 0.02:
            out.append(consent(f"{pid}-k", pid, "deny", "2024-01-01T00:00:00Z"))
    return out


def region(sizes: list[int], seed: int) -> dict[str, list[dict[str, Any]]]:
    """Institutions ``h0``, ``h1``, ... of the given sizes."""
    return {
        f"h{i}": institution(f"h{i}", n, seed + i, baseline=1 + 0.5 * i)
        for i, n in enumerate(sizes)
    }


def released_times(times: np.ndarray, k: int) -> np.ndarray:
    """The survival coarsening rule written out independently of the product: runs of >= k
    sorted times, each moved to its run's largest time; a short last run joins the one before."""
    s = np.sort(times)
    out = s.copy()
    runs: list[tuple[int, int]] = []
    start = i = 0
    while i < s.size:
        j = i
        while j + 1 < s.size and s[j + 1] == s[i]:
            j += 1
        if j + 1 - start >= k:
            runs.append((start, j + 1))
            start = j + 1
        i = j + 1
    if start < s.size:
        runs[-1:] = [(runs[-1][0], s.size)] if runs else [(0, s.size)]
    for a, b in runs:
        out[a:b] = s[b - 1]
    return out


def sql_nodes(
    institutions: dict[str, list[dict[str, Any]]], url: Any
) -> tuple[dict[str, Any], list[Any]]:
    """Each institution's resources written to its own FHIR store (``url()`` gives a fresh
    database URL) and read through SqlNodeData; the stores, to close."""
    from healthmesh.fhir.store import FhirStore
    from healthmesh.node.analytics import SqlNodeData

    nodes, stores = {}, []
    for name, resources in institutions.items():
        # minimal resources: they test the models, not R4 validation (the store's tests do)
        store = FhirStore(url(), validator=lambda _r: None)
        stores.append(store)
        with store.writing() as tx:
            for res in resources:
                tx.update(res["resourceType"], res["id"], res)
        nodes[name] = SqlNodeData(store)
    return nodes, stores
