"""SqlNodeData equals ResourceData (the normative reference) on random patients and random
cohorts, with the cases the index cannot decide alone: dateTimes in zones from -12:00 to
+14:00 near midnight and window edges, partial and date-only dates, Conditions dated by a
Period or only by recordedDate, Observations dated by a Period or only by issued, ties in
observation order, resources recorded in error, references the reference does not follow."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter

from healthmesh.analytics.cohort import Cohort, Variable
from healthmesh.analytics.memory_data import ResourceData
from healthmesh.fhir.store import FhirStore
from healthmesh.node.analytics import SqlNodeData

from .test_sql_node_data import load

ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
ZONES = ["+14:00", "+08:00", "+05:30", "Z", "-05:00", "-12:00"]
DAYS = [dt.date(2022, 3, 1) + dt.timedelta(days=k) for k in range(6)]
CODES = ["E11.9", "E11.2", "I10", "J11.1"]


def _when(rng: random.Random) -> str:
    day = rng.choice(DAYS)
    shape = rng.random()
    if shape < 0.08:
        return str(day.year)
    if shape < 0.16:
        return f"{day.year}-{day.month:02d}"
    if shape < 0.3:
        return day.isoformat()
    hour = rng.choice([0, 1, 11, 22, 23])
    return f"{day.isoformat()}T{hour:02d}:{rng.choice([0, 30, 59]):02d}:00{rng.choice(ZONES)}"


def _dated(rng: random.Random, rtype: str) -> dict[str, Any]:
    """The date elements of a Condition or an Observation, sometimes unusual."""
    r = rng.random()
    if rtype == "Condition":
        if r < 0.1:
            return {"onsetPeriod": {"start": _when(rng)}, "recordedDate": _when(rng)}
        if r < 0.2:
            return {"recordedDate": _when(rng)}
        if r < 0.25:
            return {}
        return {"onsetDateTime": _when(rng), **({"recordedDate": _when(rng)} if r > 0.9 else {})}
    if r < 0.1:
        return {
            "effectivePeriod": {"start": "2022-03-02", "end": "2022-03-04"},
            "issued": "2022-03-03T01:00:00+09:00",
        }
    if r < 0.2:
        return {
            "issued": _when(rng).replace("T00:", "T10:")
            if len(_when(rng)) > 10
            else "2022-03-02T23:30:00-05:00"
        }
    if r < 0.25:
        return {}
    return {"effectiveDateTime": _when(rng)}


def resources(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        pid = f"p{i:03d}"
        subject = {"reference": f"Patient/{pid}"}
        patient: dict[str, Any] = {"resourceType": "Patient", "id": pid}
        if rng.random() < 0.9:
            patient["gender"] = rng.choice(["female", "male", "other", "unknown"])
        if rng.random() < 0.9:
            patient["birthDate"] = rng.choice(
                ["1960", "1980-02", "1980-02-29", "2000-03-01", "1959-12-31", "2010-06-15"]
            )
        if rng.random() < 0.1:
            patient["deceasedDateTime"] = _when(rng)
        elif rng.random() < 0.05:
            patient["deceasedBoolean"] = True
        out.append(patient)
        for k in range(rng.randint(0, 3)):
            cond: dict[str, Any] = {
                "resourceType": "Condition",
                "id": f"{pid}-c{k}",
                "subject": subject
                if rng.random() > 0.05
                else {"reference": f"http://other.org/fhir/Patient/{pid}"},
                "code": {
                    "coding": [
                        {
                            "system": ICD10 if rng.random() > 0.2 else "http://local",
                            "code": rng.choice(CODES),
                        }
                    ]
                },
                **_dated(rng, "Condition"),
            }
            if rng.random() < 0.08:
                cond["verificationStatus"] = {
                    "coding": [{"code": rng.choice(["refuted", "entered-in-error", "confirmed"])}]
                }
            out.append(cond)
        for k in range(rng.randint(0, 4)):
            obs: dict[str, Any] = {
                "resourceType": "Observation",
                "id": f"{pid}-o{k}",
                "status": "final",
                "subject": subject,
                "code": {"coding": [{"system": LOINC, "code": "4548-4"}]},
                **_dated(rng, "Observation"),
            }
            if rng.random() < 0.9:
                obs["valueQuantity"] = {"value": rng.choice([5.5, 6.0, 6.5, 7.25, 9])}
            if rng.random() < 0.05:
                obs["status"] = "entered-in-error"
            out.append(obs)
        if rng.random() < 0.3:
            out.append(
                {
                    "resourceType": "Encounter",
                    "id": f"{pid}-e",
                    "status": "finished",
                    "subject": subject,
                    "class": {"code": rng.choice(["AMB", "IMP", "EMER"])},
                    "period": {"start": _when(rng)},
                }
            )
        if rng.random() < 0.2:
            out.append(
                {
                    "resourceType": "MedicationDispense",
                    "id": f"{pid}-m",
                    "status": "completed",
                    "subject": subject,
                    "medicationCodeableConcept": {
                        "coding": [{"system": "http://www.whocc.no/atc", "code": "A10BA02"}]
                    },
                    "whenHandedOver": _when(rng),
                }
            )
        if rng.random() < 0.06:
            out.append(
                {
                    "resourceType": "Consent",
                    "id": f"{pid}-k",
                    "status": "active",
                    "patient": subject,
                    "scope": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                "code": "research",
                            }
                        ]
                    },
                    "dateTime": _when(rng),
                    "provision": {"type": rng.choice(["deny", "permit"])},
                }
            )
    return out


def _window(rng: random.Random) -> dict[str, Any]:
    start = rng.choice([None, *DAYS, dt.date(2022, 1, 1)])
    end = rng.choice([None, *DAYS, dt.date(2022, 2, 28)])
    return {"start": start and start.isoformat(), "end": end and end.isoformat()}


def random_criterion(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(
        ["condition", "condition", "observation", "encounter", "medication", "age", "sex"]
    )
    if kind == "condition":
        return {
            "kind": kind,
            "codes": [rng.choice(["E11*", f"{ICD10}|E11*", "I10", f"{ICD10}|J11.1"])],
            **_window(rng),
        }
    if kind == "observation":
        return {
            "kind": kind,
            "codes": [f"{LOINC}|4548-4"],
            **_window(rng),
            **rng.choice([{}, {"min": 6.0}, {"max": 6.5}]),
        }
    if kind == "encounter":
        return {"kind": kind, **_window(rng), **rng.choice([{}, {"classes": ["AMB", "EMER"]}])}
    if kind == "medication":
        return {"kind": kind, "codes": ["A10*"], **_window(rng)}
    if kind == "age":
        return {"kind": kind, **rng.choice([{"min": 42}, {"max": 22}, {"min": 46, "max": 66}])}
    return {"kind": kind, "values": rng.sample(["female", "male", "other", "unknown"], 2)}


def _var(**kw: Any) -> Any:
    return TypeAdapter(Variable).validate_python(kw)


VARIABLES = [
    _var(kind="age", name="age"),
    _var(kind="sex", name="sex", levels=["male", "female", "unknown"]),
    _var(kind="condition", name="t2d", codes=["E11*"], start="2022-03-02", end="2022-03-04"),
    *(
        _var(kind="observation", name=f"h_{p}", codes=[f"{LOINC}|4548-4"], pick=p)
        for p in ("last", "first", "mean", "min", "max")
    ),
    _var(
        kind="observation",
        name="h_win",
        codes=[f"{LOINC}|4548-4"],
        start="2022-03-03",
        end="2022-03-03",
    ),
    _var(kind="survival", name="s", start_codes=["E11*", "I10"], censor_date="2022-03-04"),
]

DATA = resources(160, seed=5)


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], scope="module"
)
def both(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SqlNodeData, ResourceData]]:
    if request.param == "sqlite":
        url = str(tmp_path_factory.mktemp("eq") / "n.sqlite")
        schema = None
    else:
        import uuid

        import psycopg

        base = request.getfixturevalue("pg_server_url")
        schema = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'create schema "{schema}"')
        url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    store = FhirStore(url, validator=lambda _r: None)
    load(store, DATA)
    yield SqlNodeData(store), ResourceData(DATA)
    store.close()
    if schema is not None:
        import psycopg

        with psycopg.connect(request.getfixturevalue("pg_server_url"), autocommit=True) as conn:
            conn.execute(f'drop schema "{schema}" cascade')


@pytest.mark.parametrize("seed", range(40))
def test_random_cohorts_have_the_same_members(
    both: tuple[SqlNodeData, ResourceData], seed: int
) -> None:
    sql, memory = both
    rng = random.Random(seed)
    include = [random_criterion(rng) for _ in range(rng.randint(1, 2))]
    exclude = [random_criterion(rng) for _ in range(rng.randint(0, 1))]
    cohort = Cohort.model_validate(
        {"include": include, "exclude": exclude, "reference_date": "2026-02-28"}
    )
    assert sql.members(cohort) == memory.members(cohort), (include, exclude)


def test_single_criteria_match_the_reference(both: tuple[SqlNodeData, ResourceData]) -> None:
    sql, memory = both
    rng = random.Random(99)
    nonempty = 0
    for _ in range(120):
        cohort = Cohort.model_validate({"include": [random_criterion(rng)]})
        got = sql.members(cohort)
        assert got == memory.members(cohort), cohort.include
        nonempty += bool(got)
    assert nonempty > 60  # the criteria select something, so equality means something


def test_variables_match_the_reference(both: tuple[SqlNodeData, ResourceData]) -> None:
    sql, memory = both
    everyone = Cohort()
    for v in VARIABLES:
        names, x = sql.matrix(everyone, [v])
        names_m, x_m = memory.matrix(everyone, [v])
        assert names == names_m
        np.testing.assert_allclose(x, x_m, rtol=1e-12, err_msg=v.name)
        assert x.shape[0] > 5, v.name
        if v.kind not in ("survival", "sex"):
            assert sql.crosstab(everyone, [v]) == memory.crosstab(everyone, [v]), v.name
    design = [VARIABLES[0], VARIABLES[1], VARIABLES[3]]
    a, b = sql.cross_moments(everyone, design), memory.cross_moments(everyone, design)
    assert a.n == b.n > 0
    np.testing.assert_allclose(a.products, b.products, rtol=1e-12)
