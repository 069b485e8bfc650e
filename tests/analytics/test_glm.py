"""Federated GLM (IRLS) equals statsmodels GLM on the pooled data; guards and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import statsmodels.api as sm

from healthmesh.analytics import glm
from healthmesh.errors import Conflict, InvalidInput

from .model_doubles import ArrayData, LocalHub, RecordingGuard, split

AGE = {"kind": "age", "name": "age"}
SEX = {"kind": "sex", "name": "sex"}  # column sex_male (female is the reference)
BMI = {"kind": "observation", "name": "bmi", "codes": ["http://loinc.org|39156-5"]}
DM = {"kind": "condition", "name": "dm", "codes": ["|E11*"]}
OUTCOMES = {
    "binomial": {"kind": "condition", "name": "y_bin", "codes": ["|I63*"]},
    "poisson": {"kind": "observation", "name": "y_count", "codes": ["|visits"]},
    "gaussian": {"kind": "observation", "name": "y_cont", "codes": ["http://loinc.org|8480-6"]},
}
COLUMNS = ["age", "sex_male", "bmi", "dm"]
SHARES = {
    "3 balanced": [1, 1, 1],
    "6 unbalanced": [12, 1, 3, 0.4, 6, 2],
}


def _table(n: int, seed: int, missing: float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 90, n).astype(float)
    sex = rng.integers(0, 2, n).astype(float)
    bmi = rng.normal(25, 4, n)
    dm = (rng.random(n) < 0.2).astype(float)
    eta = -6 + 0.05 * age + 0.4 * sex + 0.06 * bmi + 0.8 * dm
    t = {
        "age": age,
        "sex_male": sex,
        "bmi": bmi,
        "dm": dm,
        "y_bin": (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float),
        "y_count": rng.poisson(np.exp(-1 + 0.01 * age + 0.2 * sex + 0.02 * bmi + 0.5 * dm)).astype(
            float
        ),
        "y_cont": 100 + 0.5 * age + 4 * sex + 0.8 * bmi + 6 * dm + rng.normal(0, 12, n),
    }
    if missing:
        t["bmi"][rng.random(n) < missing] = np.nan
    return t


def _nodes(table: dict[str, np.ndarray], shares: list[float], seed: int) -> dict[str, ArrayData]:
    n = len(table["age"])
    parts = split(n, shares, np.random.default_rng(seed))
    return {
        f"n{i}": ArrayData({k: v[idx] for k, v in table.items()}) for i, idx in enumerate(parts)
    }


def _params(family: str, **kw: object) -> dict[str, object]:
    return {
        "cohort": {},
        "outcome": OUTCOMES[family],
        "covariates": [AGE, SEX, BMI, DM],
        "family": family,
        **kw,
    }


def _pooled(table: dict[str, np.ndarray], family: str) -> sm.GLM:
    y = table[OUTCOMES[family]["name"]]
    x = np.column_stack([table[c] for c in COLUMNS])
    keep = ~np.isnan(x).any(axis=1)
    fam = {
        "binomial": sm.families.Binomial(),
        "poisson": sm.families.Poisson(),
        "gaussian": sm.families.Gaussian(),
    }
    return sm.GLM(y[keep], sm.add_constant(x[keep]), family=fam[family]).fit(tol=1e-13, maxiter=100)


@pytest.mark.parametrize("shares", SHARES.values(), ids=SHARES.keys())
@pytest.mark.parametrize("family", glm.FAMILIES)
def test_equals_statsmodels_on_pooled_data(family: str, shares: list[float]) -> None:
    table = _table(4000, seed=1, missing=0.05)
    hub = LocalHub(glm.ALGORITHM, _nodes(table, shares, seed=2))
    out = hub.run(_params(family))
    ref = _pooled(table, family)
    coef = np.array([r["estimate"] for r in out["coefficients"]])
    se = np.array([r["se"] for r in out["coefficients"]])
    assert [r["name"] for r in out["coefficients"]] == ["intercept", *COLUMNS]
    assert np.max(np.abs(coef - ref.params)) < 1e-8
    assert np.max(np.abs(se - ref.bse)) < 1e-8
    assert np.allclose([r["z"] for r in out["coefficients"]], ref.tvalues, rtol=1e-7, atol=0)
    assert np.allclose([r["p"] for r in out["coefficients"]], ref.pvalues, rtol=1e-6, atol=1e-300)
    assert out["deviance"] == pytest.approx(ref.deviance, rel=1e-10)
    assert out["pearson_chi2"] == pytest.approx(ref.pearson_chi2, rel=1e-8)
    assert out["scale"] == pytest.approx(ref.scale, rel=1e-8)
    assert out["log_likelihood"] == pytest.approx(ref.llf, rel=1e-10)
    assert out["aic"] == pytest.approx(ref.aic, rel=1e-10)
    assert out["n"] == ref.nobs and out["df_resid"] == ref.df_resid
    assert sum(out["n_by_node"].values()) == out["n"] and len(out["n_by_node"]) == len(shares)
    assert out["converged"] and out["iterations"] <= 10


def test_gaussian_is_one_step_and_binomial_few() -> None:
    table = _table(2000, seed=3)
    for family, most in (("gaussian", 2), ("binomial", 8)):
        out = LocalHub(glm.ALGORITHM, _nodes(table, [1, 2], seed=4)).run(_params(family))
        assert out["iterations"] <= most


def test_node_releases_only_sums_and_guards_once_per_job() -> None:
    table = _table(1500, seed=5)
    guard = RecordingGuard()
    hub = LocalHub(glm.ALGORITHM, _nodes(table, [1, 1, 1], seed=6), guard=guard)
    out = hub.run(_params("binomial"))
    p = 5
    for part in hub.sent:
        assert set(part) <= {
            "names",
            "n",
            "overflow",
            "xtwx",
            "xtwz",
            "deviance",
            "pearson",
            "loglik",
            "boundary",
        }
        assert np.shape(part["xtwx"]) == (p, p) and np.shape(part["xtwz"]) == (p,)
    kinds = [k for k, _ in guard.log]
    assert kinds.count("cohort") == 3  # first round, each node
    assert kinds.count("glm") == 3 * hub.rounds
    assert all(v[1] == p for k, v in guard.log if k == "glm")
    assert hub.rounds == out["iterations"] + 1


def test_refusing_node_is_dropped_and_fit_uses_the_rest() -> None:
    table = _table(1200, seed=7)
    nodes = _nodes(table, [10, 10, 0.12], seed=8)  # last node: ~5 patients, fails the GLM ratio
    small = nodes["n2"].table["age"].size
    assert 5 <= small < 5 / 0.33
    hub = LocalHub(glm.ALGORITHM, nodes)
    out = hub.run(_params("poisson"))
    assert hub.refused == {"n2": "glm-parameters"}
    rest = {k: np.concatenate([nodes["n0"].table[k], nodes["n1"].table[k]]) for k in table}
    ref = _pooled(rest, "poisson")
    coef = np.array([r["estimate"] for r in out["coefficients"]])
    assert np.max(np.abs(coef - ref.params)) < 1e-8
    assert set(out["n_by_node"]) == {"n0", "n1"}


def test_complete_separation_is_a_clear_error() -> None:
    table = _table(600, seed=9)
    table["y_bin"] = (table["bmi"] > 25).astype(float)
    with pytest.raises(InvalidInput, match="separation"):
        LocalHub(glm.ALGORITHM, _nodes(table, [1, 1], seed=1)).run(_params("binomial"))


def test_quasi_separation_by_a_dummy_is_a_clear_error() -> None:
    table = _table(800, seed=10)
    table["y_bin"][table["dm"] == 1] = 1.0  # every diabetic has the outcome
    with pytest.raises(InvalidInput, match="separation"):
        LocalHub(glm.ALGORITHM, _nodes(table, [1, 1, 1], seed=1)).run(_params("binomial"))


def test_collinear_and_constant_covariates_are_refused() -> None:
    table = _table(500, seed=11)
    table["dm"] = table["sex_male"].copy()
    with pytest.raises(InvalidInput, match="singular"):
        LocalHub(glm.ALGORITHM, _nodes(table, [1, 1], seed=1)).run(_params("gaussian"))
    table["dm"] = np.zeros(500)
    with pytest.raises(InvalidInput, match="constant"):
        LocalHub(glm.ALGORITHM, _nodes(table, [1, 1], seed=1)).run(_params("poisson"))


def test_iteration_limit_is_a_clear_error() -> None:
    table = _table(800, seed=12)
    with pytest.raises(InvalidInput, match="did not converge in 2 iterations"):
        LocalHub(glm.ALGORITHM, _nodes(table, [1, 1], seed=1)).run(_params("poisson", max_iter=2))


def test_outcome_outside_the_family_is_refused() -> None:
    table = _table(300, seed=13)
    table["y_bin"] = table["y_count"]
    with pytest.raises(InvalidInput, match="0/1"):
        LocalHub(glm.ALGORITHM, _nodes(table, [1], seed=1)).run(_params("binomial"))
    table["y_count"] = -table["y_count"] - 1
    with pytest.raises(InvalidInput, match="non-negative"):
        LocalHub(glm.ALGORITHM, _nodes(table, [1], seed=1)).run(_params("poisson"))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"family": "gamma"}, "family"),
        ({"outcome": {"kind": "sex", "name": "s"}}, "outcome"),
        (
            {
                "outcome": {
                    "kind": "survival",
                    "name": "s",
                    "start_codes": ["|C*"],
                    "censor_date": "2025-01-01",
                }
            },
            "outcome",
        ),
        ({"covariates": [AGE, AGE]}, "distinct"),
        ({"covariates": [{"kind": "age"}]}, "bad variable"),
        ({"covariates": AGE}, "list"),
        ({"max_iter": 0}, "max_iter"),
        ({"tol": "small"}, "tol"),
        ({"cohort": {"include": [{"kind": "nope"}]}}, "bad cohort"),
    ],
)
def test_validate_names_the_bad_parameter(change: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        glm.ALGORITHM.validate({**_params("binomial"), **change})


def test_bad_beta_from_the_hub_is_refused() -> None:
    data = ArrayData(_table(100, seed=14))
    ctx = LocalHub(glm.ALGORITHM, {"a": data}).ctxs["a"]
    with pytest.raises(InvalidInput, match="beta"):
        glm.node_irls(ctx, {**_params("gaussian"), "beta": [0.0, 1.0]})


class _GrowingData(ArrayData):
    """A node whose data gain a row after the first round (written during the fit)."""

    def matrix(self, cohort, variables):
        names, m = super().matrix(cohort, variables)
        return names, (m if self.calls == 1 else np.vstack([m, m[:1]]))


def test_data_changing_during_the_fit_is_a_conflict() -> None:
    table = _table(400, seed=15)
    nodes = {"a": ArrayData(table), "b": _GrowingData(table)}
    with pytest.raises(Conflict, match="node b changed during the fit"):
        LocalHub(glm.ALGORITHM, nodes).run(_params("poisson"))


def test_gaussian_exact_fit_gives_a_strict_json_result() -> None:
    table = {k: v[:300] for k, v in _table(300, seed=16).items()}
    table["y_cont"] = 3 + 2 * table["age"] - table["dm"]
    for shares in ([1], [1, 1]):  # one node: residuals exactly 0
        out = LocalHub(glm.ALGORITHM, _nodes(table, shares, seed=1)).run(_params("gaussian"))
        coef = [r["estimate"] for r in out["coefficients"]]
        assert coef == pytest.approx([3, 2, 0, 0, -1], abs=1e-9)
        json.dumps(out, allow_nan=False)


def test_absent_cohort_means_every_patient() -> None:
    table = _table(500, seed=17)
    params = _params("binomial")
    del params["cohort"]
    out = LocalHub(glm.ALGORITHM, _nodes(table, [1, 1], seed=1)).run(params)
    assert out["n"] == 500
