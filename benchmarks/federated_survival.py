"""Federated Kaplan–Meier and node-stratified Cox against statsmodels on the pooled data.

The data are split across ``--nodes`` nodes of unequal size (each with its own baseline
hazard) and run through the in-process federation (``run_local``: JSON boundary, the real
ReleaseGuard with min cell 5). Kaplan–Meier (exact times, then 30-day bins) is compared with
statsmodels ``SurvfuncRight`` on the pooled *released* times (the node-side min-cell coarsening
applied, see analytics/_survival.py); Cox with ``PHReg(strata=node, ties="breslow")``. Prints
the largest absolute differences, the share of event times moved by coarsening, iterations and
median wall times of both over ``--repeats`` runs.

    .venv/bin/python benchmarks/federated_survival.py [--nodes 5] [--rows 20000] [--repeats 3]
    .venv/bin/python benchmarks/federated_survival.py --data resources --rows 5000
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
from pydantic import TypeAdapter
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import SurvfuncRight

from healthmesh.analytics import _survival as sv
from healthmesh.analytics import cox, kaplan_meier
from healthmesh.analytics.cohort import Cohort, Variable, columns
from healthmesh.analytics.local import run_local

# the FHIR-shaped generator and the independent coarsening rule live with the tests
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.analytics import model_resources as mr

COVARIATES = [mr.AGE, mr.SEX, mr.DM]
VA: TypeAdapter[Variable] = TypeAdapter(Variable)


class ArrayData:
    """NodeData.matrix over numpy columns."""

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    def members(self, cohort: Cohort) -> frozenset[str]:
        return frozenset(str(i) for i in range(len(self.table["age"])))

    def matrix(self, cohort: Cohort, variables: Sequence[Variable]) -> tuple[list[str], np.ndarray]:
        names = [c for v in variables for c in columns(v)]
        return names, np.column_stack([self.table[c] for c in names])


def numpy_nodes(rows: int, n_nodes: int, seed: int) -> dict[str, Any]:
    """Nodes of sizes differing up to 10x; integer days, so event times tie."""
    rng = np.random.default_rng(seed)
    shares = rng.uniform(1, 10, n_nodes)
    nodes = {}
    for i, share in enumerate(shares):
        n = int(rows * share / shares.sum())
        age = rng.integers(30, 90, n).astype(float)
        sex = rng.integers(0, 2, n).astype(float)
        dm = (rng.random(n) < 0.25).astype(float)
        hazard = 0.05 * (1 + i / 2) * np.exp(0.03 * (age - 60) + 0.4 * sex + 0.7 * dm)
        death = rng.exponential(1 / hazard)
        censor = rng.uniform(0, 10, n)
        t = {"age": age, "sex_male": sex, "dm": dm, "os_event": (death <= censor) * 1.0}
        t["os_time"] = np.ceil(np.minimum(death, censor) * 365)
        nodes[f"n{i}"] = ArrayData(t)
    return nodes


def resource_nodes(rows: int, n_nodes: int, seed: int) -> dict[str, Any]:
    from healthmesh.analytics.memory_data import ResourceData

    rng = np.random.default_rng(seed)
    shares = rng.uniform(1, 10, n_nodes)
    sizes = [max(30, int(rows * s / shares.sum())) for s in shares]
    return {name: ResourceData(res) for name, res in mr.region(sizes, seed).items()}


def timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, float]:
    """The last result and the median wall time (s) after one untimed warm-up run."""
    out = fn()
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        walls.append(time.perf_counter() - t0)
    return out, statistics.median(walls)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data", choices=["numpy", "resources"], default="numpy")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    t0 = time.perf_counter()
    build = numpy_nodes if a.data == "numpy" else resource_nodes
    nodes = build(a.rows, a.nodes, a.seed)
    mats = {
        k: d.matrix(Cohort(), [VA.validate_python(v) for v in (mr.OS, *COVARIATES)])[1]
        for k, d in nodes.items()
    }
    km_mats = {k: d.matrix(Cohort(), [VA.validate_python(mr.OS)])[1] for k, d in nodes.items()}
    print(
        f"data={a.data} nodes={a.nodes} n={sum(len(m) for m in km_mats.values())} "
        f"events={int(sum(m[:, 1].sum() for m in km_mats.values()))} "
        f"built in {time.perf_counter() - t0:.1f} s"
    )
    for label, bin_days in (("KM exact", None), ("KM 30-day", 30.0)):
        params: dict[str, Any] = {"cohort": {}, "survival": mr.OS}
        if bin_days:
            params |= {"times": "binned", "bin_days": bin_days}
        run, fed_s = timed(lambda p=params: run_local(kaplan_meier.ALGORITHM, p, nodes), a.repeats)

        def pooled(b: float | None = bin_days, run: Any = run) -> tuple[SurvfuncRight, int, float]:
            ts, es, moved, shift = [], [], 0, 0.0
            for m in (km_mats[k] for k in run.nodes):  # nodes that refused are left out of both
                t = sv.to_grid(m[:, 0], b)
                for flag in (1.0, 0.0):
                    rel = mr.released_times(t[m[:, 1] == flag], 5)
                    if flag:
                        delta = rel - np.sort(t[m[:, 1] == flag])
                        moved, shift = moved + int(np.sum(delta > 0)), shift + float(delta.sum())
                    ts.append(rel)
                    es.append(np.full(rel.size, flag))
            return SurvfuncRight(np.concatenate(ts), np.concatenate(es)), moved, shift

        (ref, moved, shift), sm_s = timed(pooled, a.repeats)
        r = run.result
        dsurv = np.max(np.abs(np.array(r["survival"]) - ref.surv_prob))
        se = np.array([np.nan if s is None else s for s in r["se"]])
        dse = np.nanmax(np.abs(se - ref.surv_prob_se))
        print(
            f"{label:10} times={len(r['times']):>5} events moved by coarsening="
            f"{moved / max(r['events'], 1):.1%} (by {shift / max(moved, 1):.1f} d) "
            f"max|dS|={dsurv:.2e} max|dSE|={dse:.2e} "
            f"federated {fed_s:.3f} s, pooled statsmodels {sm_s:.3f} s refused={run.refused}"
        )
    for label, extra in (
        ("Cox strata=node", {}),
        ("Cox one baseline, exact", {"strata": "none"}),
        ("Cox one baseline, 30-day", {"strata": "none", "times": "binned", "bin_days": 30.0}),
    ):
        cox_line(label, extra, nodes, mats, a.repeats)


def cox_line(
    label: str, extra: dict[str, Any], nodes: dict[str, Any], mats: dict[str, Any], repeats: int
) -> None:
    """Fit Cox federated and with PHReg on the pooled (released) data; print one line."""
    params = {"cohort": {}, "survival": mr.OS, "covariates": COVARIATES, **extra}
    run, fed_s = timed(lambda: run_local(cox.ALGORITHM, params, nodes), repeats)
    rows = []
    for k in run.nodes:
        m = mats[k].copy()
        if extra:  # one baseline: the nodes' released times (events, censorings coarsened)
            t = sv.to_grid(m[:, 0], extra.get("bin_days"))
            for flag in (1.0, 0.0):
                idx = np.flatnonzero(m[:, 1] == flag)
                order = idx[np.argsort(t[idx], kind="stable")]
                t[order] = mr.released_times(t[idx], 5)
            m[:, 0] = t
        rows.append(m)
    m = np.vstack(rows)
    strata = np.concatenate([np.full(len(r), i) for i, r in enumerate(rows)]) if not extra else None

    def cox_fit() -> Any:
        model = PHReg(m[:, 0], m[:, 2:], status=m[:, 1], strata=strata, ties="breslow")
        return model.fit(maxiter=100)

    ref, sm_s = timed(cox_fit, repeats)
    r = run.result
    coef = np.array([c["estimate"] for c in r["coefficients"]])
    se = np.array([c["se"] for c in r["coefficients"]])
    print(
        f"{label}: max|dcoef|={np.max(np.abs(coef - ref.params)):.2e} "
        f"max|dse|={np.max(np.abs(se - ref.bse)):.2e} iterations={r['iterations']} "
        f"federated {fed_s:.3f} s, pooled PHReg {sm_s:.3f} s refused={run.refused}"
    )


if __name__ == "__main__":
    main()
