"""Federated Kaplan–Meier and node-stratified Cox over FHIR resources (ResourceData,
run_local, the real Guard) equal statsmodels on the pooled institutions' data."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import TypeAdapter
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import SurvfuncRight

from healthmesh.analytics import _cox_grid as cox_grid
from healthmesh.analytics import _survival as sv
from healthmesh.analytics import cox, kaplan_meier
from healthmesh.analytics.cohort import Cohort, Variable
from healthmesh.analytics.local import run_local
from healthmesh.analytics.memory_data import ResourceData

from .model_resources import AGE, DM, OS, SEX, institution, region, released_times

VAR = TypeAdapter(Variable)


@pytest.fixture(scope="module")
def nodes() -> dict[str, ResourceData]:
    return {name: ResourceData(res) for name, res in region([400, 150, 250], seed=21).items()}


def _matrix(data: ResourceData, variables: list[dict]) -> np.ndarray:
    return data.matrix(Cohort(), [VAR.validate_python(v) for v in variables])[1]


@pytest.mark.parametrize(
    ("times", "bin_days"), [("exact", None), ("binned", 30.0), ("binned", 7.0)]
)
def test_kaplan_meier_equals_survfunc_on_released_times(
    nodes: dict[str, ResourceData], times: str, bin_days: float | None
) -> None:
    params = {"cohort": {}, "survival": OS, "times": times}
    if bin_days:
        params["bin_days"] = bin_days
    run = run_local(kaplan_meier.ALGORITHM, params, nodes)
    pooled_t, pooled_e = [], []
    for data in nodes.values():
        m = _matrix(data, [OS])
        t, e = sv.to_grid(m[:, 0], bin_days), m[:, 1]
        for flag in (1.0, 0.0):
            rel = released_times(t[e == flag], 5)
            pooled_t.append(rel)
            pooled_e.append(np.full(rel.size, flag))
    ref = SurvfuncRight(np.concatenate(pooled_t), np.concatenate(pooled_e))
    out = run.result
    np.testing.assert_array_equal(out["times"], ref.surv_times)
    np.testing.assert_array_equal(out["n_risk"], ref.n_risk)
    np.testing.assert_allclose(out["survival"], ref.surv_prob, rtol=0, atol=1e-10)
    se = np.array([np.nan if s is None else s for s in out["se"]])
    np.testing.assert_allclose(se, ref.surv_prob_se, rtol=0, atol=1e-10)
    assert out["n"] == sum(len(_matrix(d, [OS])) for d in nodes.values())


def test_cox_equals_phreg_stratified_by_institution(nodes: dict[str, ResourceData]) -> None:
    covariates = [AGE, SEX, DM]
    run = run_local(cox.ALGORITHM, {"cohort": {}, "survival": OS, "covariates": covariates}, nodes)
    parts = [_matrix(d, [OS, *covariates]) for d in nodes.values()]
    m = np.vstack(parts)
    strata = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])
    ref = PHReg(m[:, 0], m[:, 2:], status=m[:, 1], strata=strata, ties="breslow").fit(maxiter=100)
    coef = np.array([r["estimate"] for r in run.result["coefficients"]])
    se = np.array([r["se"] for r in run.result["coefficients"]])
    assert np.max(np.abs(coef - ref.params)) < 1e-8
    assert np.max(np.abs(se - ref.bse)) < 1e-8
    assert run.result["log_likelihood"] == pytest.approx(ref.llf, rel=1e-11)
    assert run.refused == {}


def test_small_institution_refuses_survival_releases(nodes: dict[str, ResourceData]) -> None:
    with_tiny = {**nodes, "tiny": ResourceData(institution("tiny", 7, seed=5))}
    run = run_local(kaplan_meier.ALGORITHM, {"cohort": {}, "survival": OS}, with_tiny)
    assert run.refused == {"tiny": "min-cell-size"}
    fit = run_local(
        cox.ALGORITHM, {"cohort": {}, "survival": OS, "covariates": [AGE, SEX, DM]}, with_tiny
    )
    assert fit.refused == {"tiny": "min-cell-size"} and "tiny" not in fit.result["n_by_node"]


def test_cox_with_one_baseline_equals_phreg_on_released_times(
    nodes: dict[str, ResourceData],
) -> None:
    covariates = [AGE, SEX, DM]
    params = {
        "cohort": {},
        "survival": OS,
        "covariates": covariates,
        "strata": "none",
        "times": "binned",
    }
    run = run_local(cox.ALGORITHM, params, nodes)
    rows = []
    for data in nodes.values():
        m = _matrix(data, [OS, *covariates])
        m[:, 0] = cox_grid.released_times(m[:, 0], m[:, 1], 5, 30.0)
        rows.append(m)
    m = np.vstack(rows)
    ref = PHReg(m[:, 0], m[:, 2:], status=m[:, 1], ties="breslow").fit(maxiter=100)
    coef = np.array([r["estimate"] for r in run.result["coefficients"]])
    assert np.max(np.abs(coef - ref.params)) < 1e-8
    assert run.result["log_likelihood"] == pytest.approx(ref.llf, rel=1e-11)
