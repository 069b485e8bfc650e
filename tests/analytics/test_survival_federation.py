"""A study with Kaplan–Meier, Cox (both strata) and a poisson GLM run end to end through the
in-process federation (hub, node agents, SQL stores, sealed results) equals the same
computations run over ResourceData."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from healthmesh.analytics import cox, glm, kaplan_meier
from healthmesh.analytics.local import run_local
from healthmesh.analytics.memory_data import ResourceData
from healthmesh.federation.inprocess import InProcessFederation, NodeSpec

from .model_resources import AGE, BMI, DM, OS, SEX, VISITS, region

COMPUTATIONS: list[dict[str, Any]] = [
    {"name": "km", "algorithm": "kaplan_meier", "params": {"survival": "os", "times": "binned"}},
    {
        "name": "cox",
        "algorithm": "cox",
        "params": {"survival": "os", "covariates": ["age", "sex", "dm"]},
    },
    {
        "name": "cox1",
        "algorithm": "cox",
        "params": {"survival": "os", "covariates": ["age", "sex", "dm"], "strata": "none"},
    },
    {
        "name": "visits",
        "algorithm": "glm",
        "params": {
            "outcome": "visits",
            "covariates": ["age", "sex", "bmi", "dm"],
            "family": "poisson",
        },
    },
]
LOCAL = {
    "km": (kaplan_meier.ALGORITHM, {"survival": OS, "times": "binned"}),
    "cox": (cox.ALGORITHM, {"survival": OS, "covariates": [AGE, SEX, DM]}),
    "cox1": (cox.ALGORITHM, {"survival": OS, "covariates": [AGE, SEX, DM], "strata": "none"}),
    "visits": (
        glm.ALGORITHM,
        {"outcome": VISITS, "covariates": [AGE, SEX, BMI, DM], "family": "poisson"},
    ),
}


@pytest.mark.slow
def test_models_through_the_federation_equal_local_runs() -> None:
    institutions = region([90, 60, 70], seed=61)
    memory = {name: ResourceData(res) for name, res in institutions.items()}
    with InProcessFederation(
        [NodeSpec(n, "hospital") for n in institutions], job_timeout=60
    ) as fed:
        for name, res in institutions.items():
            fed.load(name, res)
        study = fed.submit(
            {
                "title": "Breast cancer survival",
                "purpose": "Survival after breast cancer by age, sex and diabetes; visit rates.",
                "institutions": fed.names,
                "variables": [OS, AGE, SEX, BMI, DM, VISITS],
                "cohort": {},
                "computations": COMPUTATIONS,
            }
        )
        fed.approve(study.study_id, computations=list(LOCAL))
        for name, (algorithm, params) in LOCAL.items():
            job = fed.run(study.study_id, name)
            assert job.status == "done", job.error
            want = run_local(algorithm, {"cohort": {}, **params}, memory).result
            got = job.result
            assert got is not None and got["n_by_node"] == want["n_by_node"]
            if name == "km":
                assert got["times"] == want["times"] and got["n_risk"] == want["n_risk"]
                np.testing.assert_allclose(got["survival"], want["survival"], atol=1e-12)
            else:
                a = np.array([r["estimate"] for r in got["coefficients"]])
                b = np.array([r["estimate"] for r in want["coefficients"]])
                assert np.max(np.abs(a - b)) < 1e-10
