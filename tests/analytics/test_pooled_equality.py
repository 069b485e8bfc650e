"""Every descriptive algorithm run over 3 to 5 nodes equals the same computation on the pooled
data (ResourceData over all resources, with numpy as the reference for the statistics)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from healthmesh.analytics.cohort import Cohort
from healthmesh.analytics.local import run_local
from healthmesh.analytics.memory_data import ResourceData
from healthmesh.analytics.registry import BUILTINS

from .contract_resources import HBA1C, ICD10
from .data_contract import var
from .stats_resources import DM, METFORMIN, SBP, region, split

COHORT: dict[str, Any] = {"include": [{"kind": "age", "min": 18}]}
AGE = {"kind": "age", "name": "age"}
SEX = {"kind": "sex", "name": "sex"}
SEX3 = {"kind": "sex", "name": "sex", "levels": ["female", "male", "other"]}
DMV = {"kind": "condition", "name": "dm", "codes": [f"{ICD10}|E11*"]}
METV = {"kind": "medication", "name": "metformin", "codes": METFORMIN["codes"]}
A1C = {"kind": "observation", "name": "hba1c", "codes": [HBA1C], "pick": "last"}
A1C_MEAN = {"kind": "observation", "name": "hba1c", "codes": [HBA1C], "pick": "mean"}
BP = {"kind": "observation", "name": "sbp", "codes": [SBP]}


@pytest.fixture(scope="module")
def resources() -> list[dict[str, Any]]:
    return region(1500, seed=7)


@pytest.fixture(scope="module")
def pooled(resources: list[dict[str, Any]]) -> ResourceData:
    return ResourceData(resources)


@pytest.fixture(scope="module", params=[3, 4, 5])
def nodes(request: pytest.FixtureRequest, resources: list[dict[str, Any]]) -> dict[str, ResourceData]:
    k = request.param
    return {f"node{i}": ResourceData(part) for i, part in enumerate(split(resources, k, seed=k))}


def _values(pooled: ResourceData, variable: dict[str, Any], cohort: dict[str, Any] = COHORT) -> np.ndarray:
    _, x = pooled.matrix(Cohort.model_validate(cohort), [var(**variable)])
    return x[:, 0]


def test_count(nodes: dict[str, ResourceData], pooled: ResourceData) -> None:
    params = {"cohort": {"include": [DM]}, "criteria": [METFORMIN, {"kind": "sex", "values": ["female"]}]}
    run = run_local(BUILTINS["count"], params, nodes)
    assert run.refused == {}
    dm = Cohort.model_validate({"include": [DM]})
    assert run.result["n"] == pooled.count(dm) > 50
    assert run.result["criteria"] == [
        pooled.count(Cohort.model_validate({"include": [DM, METFORMIN]})),
        pooled.count(Cohort.model_validate({"include": [DM, {"kind": "sex", "values": ["female"]}]})),
    ]
    assert sum(run.result["by_node"].values()) == run.result["n"]


def test_crosstab(nodes: dict[str, ResourceData], pooled: ResourceData) -> None:
    cohort = {**COHORT, "include": [*COHORT["include"], {"kind": "sex", "values": ["female", "male"]}]}
    params = {"cohort": cohort, "variables": [SEX, DMV]}
    run = run_local(BUILTINS["crosstab"], params, nodes)
    assert run.refused == {}
    expected = pooled.crosstab(Cohort.model_validate(cohort), [var(**SEX), var(**DMV)])
    assert {tuple(c["key"]): c["n"] for c in run.result["cells"]} == expected
    assert run.result["n"] == sum(expected.values())
    assert run.result["variables"] == ["sex", "dm"]


@pytest.mark.parametrize("variable", [A1C, A1C_MEAN, BP, AGE, DMV])
def test_moments(nodes: dict[str, ResourceData], pooled: ResourceData, variable: dict[str, Any]) -> None:
    run = run_local(BUILTINS["moments"], {"cohort": COHORT, "variable": variable}, nodes)
    assert run.refused == {}
    x = _values(pooled, variable)
    assert run.result["n"] == len(x) > 100
    assert run.result["mean"] == pytest.approx(x.mean(), rel=1e-10)
    assert run.result["variance"] == pytest.approx(x.var(ddof=1), rel=1e-10)
    assert run.result["sd"] == pytest.approx(x.std(ddof=1), rel=1e-10)
    assert "min" not in run.result and "max" not in run.result


def test_histogram(nodes: dict[str, ResourceData], pooled: ResourceData) -> None:
    edges = [80, 110, 130, 150, 170, 200]
    run = run_local(BUILTINS["histogram"], {"cohort": COHORT, "variable": BP, "edges": edges}, nodes)
    assert run.refused == {}
    expected, _ = np.histogram(_values(pooled, BP), bins=edges)
    assert run.result["counts"] == expected.tolist()
    assert run.result["edges"] == edges


@pytest.mark.parametrize(
    ("variable", "probs", "tolerance"),
    [
        (BP, [0.1, 0.25, 0.5, 0.75, 0.9], None),
        (A1C, [0.25, 0.5, 0.75], 1e-4),  # values to one decimal: many ties
        (AGE, [0.5], 1e-9),
    ],
)
def test_quantiles(
    nodes: dict[str, ResourceData], pooled: ResourceData, variable: dict[str, Any], probs: list[float], tolerance: float | None
) -> None:
    params: dict[str, Any] = {"cohort": COHORT, "variable": variable, "probs": probs}
    if tolerance is not None:
        params["tolerance"] = tolerance
    run = run_local(BUILTINS["quantiles"], params, nodes)
    assert run.refused == {}
    x = _values(pooled, variable)
    tol = run.result["tolerance"]
    assert tol == (tolerance if tolerance is not None else pytest.approx(1e-6 * x.std(ddof=1)))
    for q in run.result["quantiles"]:
        exact = float(np.quantile(x, q["p"], method="inverted_cdf"))
        assert exact <= q["value"] <= exact + tol, (q, exact)
    assert run.result["rounds"] < 20


def test_correlation(nodes: dict[str, ResourceData], pooled: ResourceData) -> None:
    variables = [AGE, BP, A1C, SEX3, DMV]
    run = run_local(BUILTINS["correlation"], {"cohort": COHORT, "variables": variables}, nodes)
    assert run.refused == {}
    names, x = pooled.matrix(Cohort.model_validate(COHORT), [var(**v) for v in variables])
    assert run.result["names"] == names == ["age", "sbp", "hba1c", "sex_male", "sex_other", "dm"]
    assert run.result["n"] == x.shape[0]
    np.testing.assert_allclose(run.result["correlation"], np.corrcoef(x, rowvar=False), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(run.result["covariance"], np.cov(x, rowvar=False), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(run.result["means"], x.mean(axis=0), rtol=1e-10)


def test_a_refusing_node_is_dropped_and_named(resources: list[dict[str, Any]]) -> None:
    parts = split(resources, 3, seed=3)
    nodes = {f"node{i}": ResourceData(p) for i, p in enumerate(parts)}
    # node "tiny": three patients only, below the minimum cell size of 5
    three = [r for r in parts[0] if r["resourceType"] == "Patient"][:3]
    ids = {p["id"] for p in three}
    tiny = three + [r for r in parts[0] if r["resourceType"] != "Patient" and (r.get("subject") or r.get("patient"))["reference"][8:] in ids]
    nodes["tiny"] = ResourceData(tiny)
    run = run_local(BUILTINS["moments"], {"variable": AGE}, nodes)
    assert run.refused == {"tiny": "min-cell-size"}
    assert run.nodes == ["node0", "node1", "node2"]
    pooled = ResourceData(resources)
    x = _values(pooled, AGE, {})
    assert run.result["n"] == len(x)
    assert math.isclose(run.result["mean"], x.mean(), rel_tol=1e-10)
