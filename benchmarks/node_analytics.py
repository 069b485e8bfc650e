"""Node analytics pushed down to SQL (``SqlNodeData``) vs the in-memory reference
(``ResourceData``), on the same synthetic patients.

Generates N patients (deterministic; per patient: Patient, an ambulatory or inpatient
Encounter, conditions E11.9 / I10 / J11.1 with realistic prevalences, HbA1c observations,
metformin requests for most diabetics, a research-consent refusal for 1 %), loads them into a
SQLite node store through the store's bulk path (kept in ``--db`` and reused when present), then
times, as the median of ``--repeats`` runs:

- ``count`` of a 3-criteria cohort (type 2 diabetes since 2016, age 40-80, no J11.1) and of a
  broad one (adults with an encounter since 2016, which keeps most patients);
- ``crosstab`` (sex x metformin), ``moments`` (last HbA1c), ``matrix`` (age, sex, HbA1c) of the
  3-criteria cohort,

for both implementations in the same run, checks that they agree, and prints wall and CPU
seconds (SQLite runs in the benchmark's process, so CPU time is the work itself on a shared
machine) and patients screened per CPU second.

    .venv/bin/python benchmarks/node_analytics.py [--patients 100000] [--repeats 5] [--db PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from healthmesh.analytics.cohort import Cohort, Variable
from healthmesh.analytics.memory_data import ResourceData
from healthmesh.fhir.store import FhirStore
from healthmesh.fhir.store.bulkwrite import write_batch
from healthmesh.node.analytics import SqlNodeData

ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
ATC = "http://www.whocc.no/atc"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def _when(rng: random.Random, start: int = 2015, years: int = 11) -> str:
    t = dt.datetime(start, 1, 1) + dt.timedelta(minutes=rng.randrange(years * 365 * 24 * 60))
    return t.isoformat() + "+08:00"


def patient_resources(i: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    """The resources of synthetic patient ``i``."""
    pid = f"pt{i:07d}"
    subject = {"reference": f"Patient/{pid}"}
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "birthDate": (dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(80 * 365))).isoformat(),
    }
    if rng.random() > 0.01:
        patient["gender"] = rng.choice(("female", "male"))
    yield patient
    yield {
        "resourceType": "Encounter",
        "id": f"{pid}-e",
        "status": "finished",
        "class": {"system": ACT, "code": "AMB" if rng.random() < 0.8 else "IMP"},
        "subject": subject,
        "period": {"start": _when(rng)},
    }
    diabetic = rng.random() < 0.10
    for code, display, p in (
        ("E11.9", "Type 2 diabetes mellitus without complications", 1.0 if diabetic else 0.0),
        ("I10", "Essential (primary) hypertension", 0.25),
        ("J11.1", "Influenza with other respiratory manifestations", 0.05),
    ):
        if rng.random() < p:
            yield {
                "resourceType": "Condition",
                "id": f"{pid}-{code}",
                "subject": subject,
                "code": {"coding": [{"system": ICD10, "code": code, "display": display}]},
                "onsetDateTime": _when(rng),
            }
    for k in range(rng.randint(1, 3) if diabetic or rng.random() < 0.2 else 0):
        yield {
            "resourceType": "Observation",
            "id": f"{pid}-o{k}",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "4548-4", "display": "HbA1c"}]},
            "subject": subject,
            "effectiveDateTime": _when(rng),
            "valueQuantity": {
                "value": round(rng.gauss(7.5 if diabetic else 5.4, 1.0), 1),
                "unit": "%",
                "system": "http://unitsofmeasure.org",
                "code": "%",
            },
        }
    if diabetic and rng.random() < 0.6:
        yield {
            "resourceType": "MedicationRequest",
            "id": f"{pid}-m",
            "status": "active",
            "intent": "order",
            "subject": subject,
            "medicationCodeableConcept": {"coding": [{"system": ATC, "code": "A10BA02"}]},
            "authoredOn": _when(rng),
        }
    if rng.random() < 0.01:
        yield {
            "resourceType": "Consent",
            "id": f"{pid}-k",
            "status": "active",
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "research",
                    }
                ]
            },
            "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
            "patient": subject,
            "dateTime": "2024-01-01",
            "provision": {"type": "deny"},
        }


def generate(n: int, seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [r for i in range(n) for r in patient_resources(i, rng)]


class _Item:
    def __init__(self, res_type: str, res_id: str, content: bytes, rows: Any) -> None:
        self.res_type, self.res_id, self.content, self.rows = res_type, res_id, content, rows


def load(store: FhirStore, resources: list[dict[str, Any]], chunk: int = 5000) -> None:
    """Validate, index and insert through the store's bulk path."""
    for k in range(0, len(resources), chunk):
        part = resources[k : k + chunk]
        with store.writing() as tx:
            prepared = tx.prepare_new([(r["resourceType"], dict(r), r["id"]) for r in part])
            items = []
            for r, got in zip(part, prepared, strict=True):
                if not isinstance(got, tuple):
                    raise RuntimeError(f"invalid synthetic resource: {got.message}")
                items.append(_Item(r["resourceType"], r["id"], got[1], got[2]))
            write_batch(store, tx, items)
    store.db.analyze()


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """Median wall and CPU seconds of ``fn`` (SQLite runs in-process: CPU time is the work
    itself, wall time also counts waiting for a shared machine)."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus), out


def variable(**kw: Any) -> Any:
    return TypeAdapter(Variable).validate_python(kw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--db", type=Path, default=None, help="SQLite file (reused when present)")
    args = ap.parse_args()
    n = args.patients
    db = args.db or Path(tempfile.gettempdir()) / f"healthmesh-node-analytics-{n}.sqlite"

    t = time.perf_counter()
    resources = generate(n)
    print(
        f"generated {len(resources):,} resources for {n:,} patients in "
        f"{time.perf_counter() - t:.1f} s"
    )
    fresh = not db.exists()
    store = FhirStore(db)
    if fresh:
        t = time.perf_counter()
        load(store, resources)
        print(f"loaded into {db} in {time.perf_counter() - t:.1f} s")
    else:
        print(f"reusing {db} ({store.count('Patient'):,} patients)")
    t = time.perf_counter()
    memory = ResourceData(resources)
    print(f"ResourceData built in {time.perf_counter() - t:.1f} s")
    sql = SqlNodeData(store)

    cohort = Cohort.model_validate(
        {
            "include": [
                {"kind": "condition", "codes": [f"{ICD10}|E11*"], "start": "2016-01-01"},
                {"kind": "age", "min": 40, "max": 80},
            ],
            "exclude": [{"kind": "condition", "codes": ["J11.1"]}],
        }
    )
    broad = Cohort.model_validate(
        {
            "include": [{"kind": "age", "min": 18}, {"kind": "encounter", "start": "2016-01-01"}],
        }
    )
    sex = variable(kind="sex", name="sex")
    metformin = variable(kind="medication", name="metformin", codes=[f"{ATC}|A10BA02"])
    hba1c = variable(kind="observation", name="hba1c", codes=[f"{LOINC}|4548-4"], pick="last")
    age = variable(kind="age", name="age")
    ops: list[tuple[str, Callable[[Any], Any]]] = [
        ("count (3 criteria)", lambda d: d.count(cohort)),
        ("count (broad)", lambda d: d.count(broad)),
        ("crosstab sex x metformin", lambda d: d.crosstab(cohort, [sex, metformin])),
        ("moments last HbA1c", lambda d: d.moments(cohort, hba1c)),
        ("matrix age, sex, HbA1c", lambda d: d.matrix(cohort, [age, sex, hba1c])[1]),
    ]
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; seconds are medians")
    print(
        f"{'operation':<26}{'SQL wall':>9}{'SQL cpu':>9}{'mem wall':>9}{'mem cpu':>9}"
        f"{'SQL patients/cpu-s':>20}  agree"
    )
    for name, op in ops:
        ts, cs, got = median_time(lambda op=op: op(sql), args.repeats)
        tm, cm, want = median_time(lambda op=op: op(memory), max(1, args.repeats // 2))
        agree = "yes" if _agree(got, want) else "NO"
        print(f"{name:<26}{ts:>9.3f}{cs:>9.3f}{tm:>9.3f}{cm:>9.3f}{n / cs:>20,.0f}  {agree}")
    print(f"\n3-criteria cohort: {sql.count(cohort):,} patients; broad: {sql.count(broad):,}")
    store.close()


def _agree(a: Any, b: Any) -> bool:
    if hasattr(a, "shape"):
        return bool(a.shape == b.shape and (abs(a - b) <= 1e-9 * (1 + abs(b))).all())
    if hasattr(a, "total"):
        return a.n == b.n and math.isclose(a.total, b.total, rel_tol=1e-9)
    return bool(a == b)


if __name__ == "__main__":
    main()
