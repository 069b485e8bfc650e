"""Node-stratified federated Cox equals statsmodels PHReg(strata=node, ties=breslow) pooled."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.duration.hazard_regression import PHReg

from healthmesh.analytics import _cox_grid as cox_grid
from healthmesh.analytics import _survival as sv
from healthmesh.analytics import cox
from healthmesh.errors import Conflict, InvalidInput

from .model_doubles import ArrayData, LocalHub, RecordingGuard
from .model_resources import released_times

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
    [([500, 500, 500], False), ([700, 60, 250, 100, 400, 90], False), ([900, 300, 500], True)],
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


# ---- one baseline hazard for all nodes (strata none): risk-set sums on the hub's grid ----


def _released_pooled(nodes: dict[str, ArrayData], k: int, bin_days: float | None):
    """Pooled rows with every node's times released by the independent coarsening rule."""
    rows = []
    for d in nodes.values():
        t = sv.to_grid(d.table["os_time"], bin_days).copy()
        e = d.table["os_event"]
        for flag in (1.0, 0.0):
            idx = np.flatnonzero(e == flag)
            order = idx[np.argsort(t[idx], kind="stable")]
            t[order] = released_times(t[idx], k)
        rows.append(np.column_stack([t, e, *[d.table[c] for c in COLUMNS]]))
    return np.vstack(rows)


def _phreg(m: np.ndarray):
    return PHReg(m[:, 0], m[:, 2:], status=m[:, 1], ties="breslow").fit(maxiter=100)


def _assert_fit(out: dict, ref) -> None:
    coef = np.array([r["estimate"] for r in out["coefficients"]])
    se = np.array([r["se"] for r in out["coefficients"]])
    assert np.max(np.abs(coef - ref.params)) < 1e-8
    assert np.max(np.abs(se - ref.bse)) < 1e-8
    assert out["log_likelihood"] == pytest.approx(ref.llf, rel=1e-11)
    assert out["strata"] == "none"


def test_pooled_baseline_without_coarsening_equals_phreg_on_raw_data() -> None:
    nodes = _nodes([400, 100, 250], seed=31)
    hub = LocalHub(cox.ALGORITHM, nodes, RecordingGuard(min_cell=1))
    out = hub.run({**PARAMS, "strata": "none"})
    raw = np.vstack(
        [
            np.column_stack([d.table[c] for c in ["os_time", "os_event", *COLUMNS]])
            for d in nodes.values()
        ]
    )
    _assert_fit(out, _phreg(raw))


@pytest.mark.parametrize("bin_days", [None, 30.0])
def test_pooled_baseline_equals_phreg_on_released_times(bin_days: float | None) -> None:
    nodes = _nodes([900, 120, 500, 60], seed=32, ties=True)
    params = {**PARAMS, "strata": "none", "times": "binned" if bin_days else "exact"}
    if bin_days:
        params["bin_days"] = bin_days
    hub = LocalHub(cox.ALGORITHM, nodes)
    out = hub.run(params)
    _assert_fit(out, _phreg(_released_pooled(nodes, 5, bin_days)))
    first = [p for p in hub.sent if "event_times" in p]
    assert len(first) == 4 and all(min(p["event_counts"]) >= 5 for p in first)


def test_released_times_make_every_risk_set_whole_groups() -> None:
    rng = np.random.default_rng(33)
    time = rng.integers(0, 400, 300).astype(float)
    event = (rng.random(300) < 0.4).astype(float)
    released = cox_grid.released_times(time, event, 5, None)
    assert np.all(released >= time)  # patients only ever move later
    for g in np.unique(released):
        at_risk = int(np.sum(released >= g))
        assert at_risk == 0 or at_risk >= 5
        assert int(np.sum((released == g) & (event == 1))) in (0, *range(5, 301))
        assert int(np.sum((released == g) & (event == 0))) in (0, *range(5, 301))


def test_node_refuses_a_grid_without_its_event_times() -> None:
    data = _nodes([200], seed=34)["n0"]
    ctx = LocalHub(cox.ALGORITHM, {"a": data}).ctxs["a"]
    args = {**PARAMS, "strata": "none", "beta": [0.0, 0.0, 0.0]}
    with pytest.raises(InvalidInput, match="grid lacks"):
        cox.node_risk_sets(ctx, {**args, "grid": [1.0, 2.0]})
    with pytest.raises(InvalidInput, match="increasing"):
        cox.node_risk_sets(ctx, {**args, "grid": [2.0, 1.0]})
    with pytest.raises(InvalidInput, match="beta"):
        cox.node_risk_sets(ctx, {**args, "beta": None, "grid": []})


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"strata": "site"}, "strata"),
        ({"times": "binned"}, "strata 'none'"),
        ({"strata": "none", "times": "daily"}, "times"),
        ({"strata": "none", "bin_days": 30}, "binned"),
    ],
)
def test_validate_strata_and_times(change: dict, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        cox.ALGORITHM.validate({**PARAMS, **change})


def test_data_changing_during_the_fit_is_a_conflict() -> None:
    class Growing(ArrayData):
        def matrix(self, cohort, variables):
            names, m = super().matrix(cohort, variables)
            return names, (m if self.calls == 1 else np.vstack([m, m[m[:, 1] == 0][:1]]))

    nodes = _nodes([300, 300], seed=35)
    nodes["n1"] = Growing(nodes["n1"].table)
    for strata in ("node", "none"):
        nodes["n1"].calls = 0
        with pytest.raises(Conflict, match="node n1 changed"):
            LocalHub(cox.ALGORITHM, nodes).run({**PARAMS, "strata": strata})


def test_one_baseline_refuses_a_node_with_few_censorings() -> None:
    nodes = _nodes([400, 300], seed=36)
    t = nodes["n1"].table
    t["os_event"][:] = 1.0
    t["os_event"][:3] = 0.0  # 3 censored: their group would be below min cell
    hub = LocalHub(cox.ALGORITHM, nodes)
    out = hub.run({**PARAMS, "strata": "none"})
    assert hub.refused == {"n1": "min-cell-size"} and set(out["n_by_node"]) == {"n0"}
