"""Federated GLM (IRLS over N nodes) against statsmodels GLM on the pooled data, in one run.

For each family (binomial, poisson, gaussian) the data are split across ``--nodes`` nodes of
unequal size and fitted through the in-process federation (``run_local``: JSON boundary, the
real ReleaseGuard at each node) and with statsmodels on the pooled rows. Prints the largest
absolute coefficient and standard-error difference, iterations and the median wall time of
both over ``--repeats`` runs.

``--data numpy`` (default): ``--rows`` rows of numpy data (NodeData answering ``matrix()``).
``--data resources``: FHIR R4 resources of synthetic institutions read by ``ResourceData``
(the normative NodeData; cohort, consent and variables evaluated from the resources).

    .venv/bin/python benchmarks/federated_glm.py [--nodes 5] [--rows 200000] [--repeats 5]
    .venv/bin/python benchmarks/federated_glm.py --data resources --rows 5000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import statsmodels.api as sm

from healthmesh.analytics import glm
from healthmesh.analytics.cohort import Cohort, Variable, columns
from healthmesh.analytics.local import run_local

# the FHIR-shaped generator lives with the tests (tests/analytics/model_resources.py)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

COLUMNS = ["age", "sex_male", "bmi", "dm"]
VARS: list[dict[str, Any]] = [
    {"kind": "age", "name": "age"},
    {"kind": "sex", "name": "sex"},
    {"kind": "observation", "name": "bmi", "codes": ["http://loinc.org|39156-5"]},
    {"kind": "condition", "name": "dm", "codes": ["|E11*"]},
]
OUTCOME = {
    "binomial": {"kind": "condition", "name": "y_bin", "codes": ["|I63*"]},
    "poisson": {"kind": "observation", "name": "y_count", "codes": ["|visits"]},
    "gaussian": {"kind": "observation", "name": "y_cont", "codes": ["|8480-6"]},
}
SM_FAMILY = {
    "binomial": sm.families.Binomial,
    "poisson": sm.families.Poisson,
    "gaussian": sm.families.Gaussian,
}


class ArrayData:
    """NodeData.matrix over numpy columns (the GLM reads nothing else)."""

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    def members(self, cohort: Cohort) -> frozenset[str]:
        return frozenset(str(i) for i in range(len(self.table["age"])))

    def matrix(self, cohort: Cohort, variables: Sequence[Variable]) -> tuple[list[str], np.ndarray]:
        names = [c for v in variables for c in columns(v)]
        return names, np.column_stack([self.table[c] for c in names])


def numpy_nodes(rows: int, n_nodes: int, seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Synthetic rows split over nodes whose sizes differ up to 10x."""
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 90, rows).astype(float)
    sex = rng.integers(0, 2, rows).astype(float)
    bmi = rng.normal(25, 4, rows)
    dm = (rng.random(rows) < 0.2).astype(float)
    eta = -6 + 0.05 * age + 0.4 * sex + 0.06 * bmi + 0.8 * dm
    t = {
        "age": age,
        "sex_male": sex,
        "bmi": bmi,
        "dm": dm,
        "y_bin": (rng.random(rows) < 1 / (1 + np.exp(-eta))).astype(float),
        "y_count": rng.poisson(np.exp(-1 + 0.01 * age + 0.2 * sex + 0.02 * bmi + 0.5 * dm)) * 1.0,
        "y_cont": 100 + 0.5 * age + 4 * sex + 0.8 * bmi + 6 * dm + rng.normal(0, 12, rows),
    }
    shares = rng.uniform(1, 10, n_nodes)
    cuts = (np.cumsum(shares)[:-1] / shares.sum() * rows).astype(int)
    parts = np.split(rng.permutation(rows), cuts)
    nodes = {f"n{i}": ArrayData({k: v[idx] for k, v in t.items()}) for i, idx in enumerate(parts)}
    return nodes, t


def resource_nodes(rows: int, n_nodes: int, seed: int) -> tuple[dict[str, Any], list[Any]]:
    """FHIR resources of ``n_nodes`` synthetic institutions, read by ResourceData."""
    from healthmesh.analytics.memory_data import ResourceData
    from tests.analytics.model_resources import region

    rng = np.random.default_rng(seed)
    shares = rng.uniform(1, 10, n_nodes)
    sizes = [max(20, int(rows * s / shares.sum())) for s in shares]
    inst = region(sizes, seed)
    nodes = {name: ResourceData(res) for name, res in inst.items()}
    return nodes, [r for res in inst.values() for r in res]


def timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, float]:
    """The last result and the median wall time (s) after one untimed warm-up run."""
    fn()
    walls, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
    return out, statistics.median(walls)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--data", choices=["numpy", "resources"], default="numpy")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    t0 = time.perf_counter()
    if a.data == "numpy":
        nodes, table = numpy_nodes(a.rows, a.nodes, a.seed)
        outcomes, covariates = OUTCOME, VARS
    else:
        from tests.analytics import model_resources as mr

        nodes, pooled = resource_nodes(a.rows, a.nodes, a.seed)
        outcomes, covariates = mr.OUTCOMES, mr.COVARIATES
    print(f"data={a.data} nodes={a.nodes} rows~{a.rows} built in {time.perf_counter() - t0:.1f} s")
    print(
        f"{'family':9} {'n':>8} {'max|dcoef|':>11} {'max|dse|':>10} {'iter':>4} "
        f"{'federated s':>12} {'pooled sm s':>12}"
    )
    for family in glm.FAMILIES:
        params = {
            "cohort": {},
            "outcome": outcomes[family],
            "covariates": covariates,
            "family": family,
        }
        run, fed_s = timed(lambda p=params: run_local(glm.ALGORITHM, p, nodes), a.repeats)
        if a.data == "numpy":
            y, x = table[OUTCOME[family]["name"]], np.column_stack([table[c] for c in COLUMNS])
        else:
            from pydantic import TypeAdapter

            from healthmesh.analytics.memory_data import ResourceData

            va = TypeAdapter(Variable)
            m = ResourceData(pooled).matrix(
                Cohort(), [va.validate_python(v) for v in (outcomes[family], *covariates)]
            )[1]
            y, x = m[:, 0], m[:, 1:]

        def pooled_fit(y: np.ndarray = y, x: np.ndarray = x, f: str = family) -> Any:
            return sm.GLM(y, sm.add_constant(x), family=SM_FAMILY[f]()).fit(tol=1e-13, maxiter=100)

        ref, sm_s = timed(pooled_fit, a.repeats)
        res = run.result
        coef = np.array([r["estimate"] for r in res["coefficients"]])
        se = np.array([r["se"] for r in res["coefficients"]])
        print(
            f"{family:9} {res['n']:>8} {np.max(np.abs(coef - ref.params)):>11.2e} "
            f"{np.max(np.abs(se - ref.bse)):>10.2e} {res['iterations']:>4} "
            f"{fed_s:>12.3f} {sm_s:>12.3f}"
        )


if __name__ == "__main__":
    main()
