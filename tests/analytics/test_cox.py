"""Node-stratified federated Cox equals statsmodels PHReg(strata=node, ties=breslow) pooled."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.duration.hazard_regression import PHReg

from healthmesh.analytics import cox
from healthmesh.errors import InvalidInput

from .model_doubles import ArrayData, LocalHub, RecordingGuard

OS = {"kind": "survival", "name": "os", "start_codes": ["|C50*"], "censor_date": "2025-12-31"}
AGE = {"kind": "age", "name": "age"}
SEX = {"kind": "sex", "name": "sex"}
DM = {"kind": "condition", "name": "dm", "codes": ["|E11*"]}
COLUMNS = ["age", "sex_male", "dm"]
PARAMS = {"cohort": {}, "survival": OS, "covariates": [AGE, SEX, DM]}


def _node(n: int, rng: np.random.Generator, baseline: float, *, ties: bool) -> ArrayData:
    age = rng.integers(30, 90, n).astype(float)
    sex = rng.integers(0, 2, n).astype(float)
    dm = (rng.random(n) < 0.25).astype(float)
    hazard = baseline * np.exp(0.03 * (age - 60) + 0.4 * sex + 0.7 * dm)
    death = rng.exponential(1 / hazard)
    censor = rng.uniform(0, 3 / baseline, n)
    time = np.minimum(death, censor) * 365
    if ties:
        time = np.ceil(time / 7) * 7  # weekly: many tied event times
    return ArrayData(
        {
            "age": age,
            "sex_male": sex,
            "dm": dm,
            "os_time": time,
            "os_event": (death <= censor).astype(float),
        }
    )


def _nodes(sizes: list[int], seed: int, *, ties: bool = False) -> dict[str, ArrayData]:
    rng = np.random.default_rng(seed)
    return {f"n{i}": _node(s, rng, baseline=0.05 * (i + 1), ties=ties) for i, s in enumerate(sizes)}


def _pooled(nodes: dict[str, ArrayData]):
    t = {
        k: np.concatenate([d.table[k] for d in nodes.values()])
        for k in ["os_time", "os_event", *COLUMNS]
    }
    strata = np.concatenate([np.full(len(d.table["age"]), i) for i, d in enumerate(nodes.values())])
    x = np.column_stack([t[c] for c in COLUMNS])
    model = PHReg(t["os_time"], x, status=t["os_event"], strata=strata, ties="breslow")
    return model.fit(maxiter=100)


@pytest.mark.parametrize(
    ("sizes", "ties"),
    [([800, 800, 800], False), ([2000, 60, 400, 150, 1200, 90], False), ([900, 300, 500], True)],
    ids=["3 balanced", "6 unbalanced", "tied times"],
)
def test_equals_statsmodels_phreg_stratified_by_node(sizes: list[int], ties: bool) -> None:
    nodes = _nodes(sizes, seed=sum(sizes), ties=ties)
    hub = LocalHub(cox.ALGORITHM, nodes)
    out = hub.run(PARAMS)
    ref = _pooled(nodes)
    coef = np.array([r["estimate"] for r in out["coefficients"]])
    se = np.array([r["se"] for r in out["coefficients"]])
    assert [r["name"] for r in out["coefficients"]] == COLUMNS
    assert np.max(np.abs(coef - ref.params)) < 1e-8
    assert np.max(np.abs(se - ref.bse)) < 1e-8
    np.testing.assert_allclose([r["p"] for r in out["coefficients"]], ref.pvalues, rtol=1e-6)
    np.testing.assert_allclose(
        [r["hazard_ratio"] for r in out["coefficients"]], np.exp(ref.params), rtol=1e-8
    )
    assert out["log_likelihood"] == pytest.approx(ref.llf, rel=1e-11)
    assert out["n"] == sum(sizes) and out["events"] == int(
        sum(d.table["os_event"].sum() for d in nodes.values())
    )
    assert out["strata"] == "node" and out["ties"] == "breslow" and out["iterations"] <= 8
    assert hub.rounds == out["iterations"] + 1


def test_breslow_terms_match_statsmodels_at_any_beta() -> None:
    d = _nodes([300], seed=5, ties=True)["n0"].table
    x = np.column_stack([d[c] for c in COLUMNS])
    model = PHReg(d["os_time"], x, status=d["os_event"], ties="breslow")
    for beta in (np.zeros(3), np.array([0.05, -0.3, 1.2])):
        loglik, score, info = cox.breslow(d["os_time"], d["os_event"], x, beta)
        assert loglik == pytest.approx(model.loglike(beta), rel=1e-12)
        np.testing.assert_allclose(score, model.score(beta), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(info, -model.hessian(beta), rtol=1e-9)


def test_node_releases_only_p_sized_sums_and_guards() -> None:
    guard = RecordingGuard()
    hub = LocalHub(cox.ALGORITHM, _nodes([400, 500], seed=6), guard)
    hub.run(PARAMS)
    for part in hub.sent:
        assert set(part) == {"names", "n", "events", "overflow", "loglik", "score", "info"}
        assert np.shape(part["info"]) == (3, 3)
    kinds = [k for k, _ in guard.log]
    assert kinds.count("cohort") == 2 and kinds.count("glm") == 2 * hub.rounds


def test_node_with_too_few_events_is_dropped() -> None:
    nodes = _nodes([700, 600], seed=7)
    few = nodes["n1"].table
    few["os_event"][:] = 0.0
    few["os_event"][:3] = 1.0
    hub = LocalHub(cox.ALGORITHM, nodes)
    out = hub.run(PARAMS)
    assert hub.refused == {"n1": "min-cell-size"} and set(out["n_by_node"]) == {"n0"}
    ref = _pooled({"n0": nodes["n0"]})
    assert (
        np.max(np.abs(np.array([r["estimate"] for r in out["coefficients"]]) - ref.params)) < 1e-8
    )


def test_monotone_likelihood_is_a_clear_error() -> None:
    nodes = _nodes([300, 300], seed=8)
    for d in nodes.values():  # only diabetics die: the dm coefficient goes to infinity
        d.table["os_event"] = d.table["dm"].copy()
    with pytest.raises(InvalidInput, match="monotone likelihood"):
        LocalHub(cox.ALGORITHM, nodes).run(PARAMS)


def test_constant_covariate_is_refused() -> None:
    nodes = _nodes([300, 300], seed=9)
    for d in nodes.values():
        d.table["dm"] = np.ones(300)
    with pytest.raises(InvalidInput, match=r"singular|constant"):
        LocalHub(cox.ALGORITHM, nodes).run(PARAMS)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"covariates": []}, "at least one covariate"),
        ({"survival": AGE}, "survival variable"),
        ({"covariates": [OS]}, r"distinct|survival variable"),
        ({"covariates": [{**OS, "name": "os2"}]}, "survival variable cannot be a covariate"),
        ({"max_iter": 1000}, "max_iter"),
    ],
)
def test_validate_names_the_bad_parameter(change: dict, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        cox.ALGORITHM.validate({**PARAMS, **change})
