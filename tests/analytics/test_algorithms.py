"""The built-in descriptive algorithms one by one: what a node releases, what is refused, and
what DP does to them."""

from __future__ import annotations

from typing import Any

import pytest

from healthmesh.analytics.local import run_local
from healthmesh.analytics.memory_data import ResourceData
from healthmesh.analytics.registry import BUILTINS
from healthmesh.analytics.sdk import NodeContext
from healthmesh.errors import DisclosureRisk, InvalidInput
from healthmesh.privacy import Guard, MemoryBudgetStore, MemoryReleaseLog, PrivacyPolicy

from .stats_resources import SBP, region, split

AGE = {"kind": "age", "name": "age"}
BP = {"kind": "observation", "name": "sbp", "codes": [SBP]}
SEX = {"kind": "sex", "name": "sex", "levels": ["female", "male", "other"]}


@pytest.fixture(scope="module")
def nodes() -> dict[str, ResourceData]:
    return {f"n{i}": ResourceData(p) for i, p in enumerate(split(region(600, seed=11), 3, seed=1))}


class _Ctx:
    def __init__(self, data: ResourceData, policy: PrivacyPolicy | None = None) -> None:
        self.node = "n"
        self.data = data
        self.guard = Guard(policy or PrivacyPolicy(), researcher="r", study="s", task_id="t", log=MemoryReleaseLog(), budget=MemoryBudgetStore())


def _release(name: str, method: str, data: ResourceData, args: dict[str, Any], policy: PrivacyPolicy | None = None) -> dict[str, Any]:
    ctx: NodeContext = _Ctx(data, policy)  # type: ignore[assignment]
    return BUILTINS[name].node_methods[method](ctx, args)


def test_node_releases_hold_no_individual_values(nodes: dict[str, ResourceData]) -> None:
    data = nodes["n0"]
    assert set(_release("moments", "moments", data, {"variable": BP})) == {"n", "sum", "sum_sq"}
    q = _release("quantiles", "count_le", data, {"variable": BP, "thresholds": [120.0, 140.0]})
    assert set(q) == {"counts"} and all(isinstance(c, int) for c in q["counts"])
    c = _release("correlation", "correlation", data, {"variables": [AGE, BP]})
    assert set(c) == {"n", "sums", "products"} and len(c["products"]) == 3  # upper triangle


def test_crosstab_with_a_small_cell_is_refused(nodes: dict[str, ResourceData]) -> None:
    # 'other' sex is ~2%: every node has 1-4 of them, so every node refuses its whole table
    with pytest.raises(DisclosureRisk, match=r"^min-cell-size: no node released"):
        run_local(BUILTINS["crosstab"], {"variables": [SEX]}, nodes)
    with pytest.raises(DisclosureRisk, match=r"^min-cell-size: a cross-tabulation count"):
        _release("crosstab", "crosstab", nodes["n0"], {"variables": [SEX]})


def test_histogram_small_bin_refused(nodes: dict[str, ResourceData]) -> None:
    with pytest.raises(DisclosureRisk, match=r"^min-cell-size: a histogram bin count"):
        _release("histogram", "histogram", nodes["n0"], {"variable": BP, "edges": [0, 95, 300]})
    assert _release("histogram", "histogram", nodes["n0"], {"variable": BP, "edges": [0, 140, 300]})


def test_extreme_quantile_refused_median_not(nodes: dict[str, ResourceData]) -> None:
    with pytest.raises(DisclosureRisk, match="min-cell-size"):
        run_local(BUILTINS["quantiles"], {"variable": BP, "probs": [0.001]}, nodes)
    run = run_local(BUILTINS["quantiles"], {"variable": BP, "probs": [0.5]}, nodes)
    assert run.refused == {} and 120 < run.result["quantiles"][0]["value"] < 170


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("count", {"criteria": [{"kind": "x"}]}, "parameter criteria"),
        ("count", {"criteria": [{"kind": "sex", "values": ["female"]}] * 21}, "at most 20"),
        ("crosstab", {"variables": []}, "1 to 3"),
        ("crosstab", {"variables": [AGE, AGE]}, "distinct"),
        ("moments", {}, "variable is required"),
        ("moments", {"variable": SEX}, "not numeric"),
        ("moments", {"variable": AGE, "bound": -1}, "bound"),
        ("histogram", {"variable": AGE, "edges": [1]}, "edges"),
        ("histogram", {"variable": AGE, "edges": "1,2"}, "edges"),
        ("histogram", {"variable": AGE, "edges": list(range(1002))}, "at most"),
        ("quantiles", {"variable": AGE, "probs": [0]}, "probs"),
        ("quantiles", {"variable": AGE, "probs": [0.5], "tolerance": 0}, "tolerance"),
        ("correlation", {"variables": [AGE]}, "2 to 30"),
        ("correlation", {"variables": [AGE, {"kind": "survival", "name": "s", "start_codes": ["C50*"], "censor_date": "2025-01-01"}]}, "survival"),
    ],
)
def test_bad_parameters(name: str, params: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        BUILTINS[name].validate(params)


def test_count_criteria_of_an_empty_cohort(nodes: dict[str, ResourceData]) -> None:
    run = run_local(BUILTINS["count"], {"cohort": {"include": [{"kind": "age", "min": 150}]}, "criteria": [{"kind": "sex", "values": ["male"]}]}, nodes)
    assert run.result == {"n": 0, "by_node": {"n0": 0, "n1": 0, "n2": 0}, "criteria": [0]}


def test_moments_of_an_empty_cohort(nodes: dict[str, ResourceData]) -> None:
    run = run_local(BUILTINS["moments"], {"cohort": {"include": [{"kind": "age", "min": 150}]}, "variable": AGE}, nodes)
    assert run.result == {"n": 0, "mean": None, "variance": None, "sd": None}


def test_bound_clips_values(nodes: dict[str, ResourceData]) -> None:
    run = run_local(BUILTINS["moments"], {"variable": BP, "bound": 30}, nodes)
    assert run.result["mean"] == pytest.approx(30.0) and run.result["variance"] == pytest.approx(0.0, abs=1e-9)


def _dp_factory(epsilon: float) -> Any:
    policy = PrivacyPolicy.parse({"dp": {"epsilon": epsilon, "epsilon_cap": 10.0}})
    budgets: dict[str, MemoryBudgetStore] = {}

    def make(node: str) -> Guard:
        budgets.setdefault(node, MemoryBudgetStore())
        return Guard(policy, researcher="r", study="s", task_id="t", log=MemoryReleaseLog(), budget=budgets[node])

    return make


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("count", {}),
        ("crosstab", {"variables": [{"kind": "sex", "name": "sex"}], "cohort": {"include": [{"kind": "sex", "values": ["female", "male"]}]}}),
        ("histogram", {"variable": BP, "edges": [100, 140, 180]}),
    ],
)
def test_dp_counts_near_exact_ones(nodes: dict[str, ResourceData], name: str, params: dict[str, Any]) -> None:
    exact = run_local(BUILTINS[name], params, nodes).result
    noisy = run_local(BUILTINS[name], params, nodes, guard_factory=_dp_factory(0.1)).result
    assert noisy != exact  # discrete Laplace of scale 10: P(all zero) < 1e-3
    assert _close(noisy, exact, 150)  # > 6 sd of three nodes' noise


def test_dp_moments_and_correlation(nodes: dict[str, ResourceData]) -> None:
    params = {"variable": BP, "bound": 250}
    exact = run_local(BUILTINS["moments"], params, nodes).result
    noisy = run_local(BUILTINS["moments"], params, nodes, guard_factory=_dp_factory(5.0)).result
    assert noisy != exact
    assert noisy["mean"] == pytest.approx(exact["mean"], abs=5)
    params = {"variables": [AGE, BP], "bound": 250}
    exact = run_local(BUILTINS["correlation"], params, nodes).result
    noisy = run_local(BUILTINS["correlation"], params, nodes, guard_factory=_dp_factory(5.0)).result
    assert noisy["names"] == exact["names"] and noisy["means"] != exact["means"]
    assert noisy["means"] == pytest.approx(exact["means"], abs=10)


def _close(a: Any, b: Any, tol: float) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and not isinstance(a, bool):
        return abs(a - b) <= tol
    return a == b
