"""Federated Kaplan–Meier equals statsmodels SurvfuncRight on the pooled (released) times."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.duration.survfunc import SurvfuncRight

from healthmesh.analytics import _survival as sv
from healthmesh.analytics import kaplan_meier as km
from healthmesh.errors import InvalidInput

from .model_doubles import ArrayData, LocalHub, RecordingGuard, split
from .model_resources import released_times

OS = {"kind": "survival", "name": "os", "start_codes": ["|C50*"], "censor_date": "2025-12-31"}


def _table(n: int, seed: int, *, integer: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    death = rng.weibull(1.3, n) * 900
    censor = rng.uniform(0, 2000, n)
    time = np.minimum(death, censor)
    if integer:
        time = np.floor(time)
    return {"os_time": time, "os_event": (death <= censor).astype(float)}


def _nodes(
    table: dict[str, np.ndarray], shares: list[float], seed: int = 0
) -> dict[str, ArrayData]:
    parts = split(len(table["os_time"]), shares, np.random.default_rng(seed))
    return {
        f"n{i}": ArrayData({k: v[idx] for k, v in table.items()}) for i, idx in enumerate(parts)
    }


def _pooled_released(nodes: dict[str, ArrayData], k: int, bin_days: float | None) -> SurvfuncRight:
    times, status = [], []
    for d in nodes.values():
        t = sv.to_grid(d.table["os_time"], bin_days)
        e = d.table["os_event"]
        for flag in (1.0, 0.0):
            rel = released_times(t[e == flag], k)
            times.append(rel)
            status.append(np.full(rel.size, flag))
    return SurvfuncRight(np.concatenate(times), np.concatenate(status))


def _assert_equal(out: dict, ref: SurvfuncRight) -> None:
    np.testing.assert_array_equal(out["times"], ref.surv_times)
    np.testing.assert_array_equal(out["n_risk"], ref.n_risk)
    np.testing.assert_array_equal(out["n_events"], ref.n_events)
    np.testing.assert_allclose(out["survival"], ref.surv_prob, rtol=0, atol=1e-10)
    se = np.array([np.nan if s is None else s for s in out["se"]])
    np.testing.assert_allclose(se, ref.surv_prob_se, rtol=0, atol=1e-10)


@pytest.mark.parametrize("shares", [[1, 1, 1], [20, 1, 4, 9, 2]])
def test_exact_times_without_min_cell_equal_statsmodels_on_raw_pooled_data(
    shares: list[float],
) -> None:
    table = _table(3000, seed=1)
    out = LocalHub(km.ALGORITHM, _nodes(table, shares), RecordingGuard(min_cell=1)).run(
        {"cohort": {}, "survival": OS}
    )
    _assert_equal(out, SurvfuncRight(table["os_time"], table["os_event"]))
    assert out["n"] == 3000 and out["events"] == int(table["os_event"].sum())


@pytest.mark.parametrize("shares", [[1, 1, 1], [20, 1, 4, 9, 2]])
def test_exact_times_with_min_cell_equal_statsmodels_on_released_times(shares: list[float]) -> None:
    nodes = _nodes(_table(3000, seed=2), shares)
    hub = LocalHub(km.ALGORITHM, nodes)
    out = hub.run({"cohort": {}, "survival": OS, "times": "exact"})
    _assert_equal(out, _pooled_released(nodes, 5, None))
    for part in hub.sent:
        assert min(part["events"]) >= 5 and min(part["censored"]) >= 5
    assert min(out["n_risk"]) >= 5


def test_large_ties_release_exact_times_unchanged() -> None:
    rng = np.random.default_rng(3)
    table = {
        "os_time": rng.integers(1, 12, 4000).astype(float),
        "os_event": (rng.random(4000) < 0.6).astype(float),
    }
    out = LocalHub(km.ALGORITHM, _nodes(table, [1, 1, 2])).run({"cohort": {}, "survival": OS})
    _assert_equal(out, SurvfuncRight(table["os_time"], table["os_event"]))


@pytest.mark.parametrize("bin_days", [30.0, 91.5])
def test_binned_times_equal_statsmodels_on_the_same_bins(bin_days: float) -> None:
    nodes = _nodes(_table(2500, seed=4, integer=True), [3, 1, 2, 5])
    out = LocalHub(km.ALGORITHM, nodes).run(
        {"cohort": {}, "survival": OS, "times": "binned", "bin_days": bin_days}
    )
    assert all(t % bin_days == 0 for t in out["times"])
    _assert_equal(out, _pooled_released(nodes, 5, bin_days))
    assert out["bin_days"] == bin_days and out["times_mode"] == "binned"


def test_default_grid_is_30_days() -> None:
    nodes = _nodes(_table(800, seed=5), [1, 1])
    out = LocalHub(km.ALGORITHM, nodes).run({"cohort": {}, "survival": OS, "times": "binned"})
    assert out["bin_days"] == 30.0 and all(t % 30 == 0 for t in out["times"])


def test_coarsening_rule_by_hand() -> None:
    t = np.array([1, 2, 2, 3, 7, 8, 9, 9, 10], dtype=float)
    assert sv.coarsen(t, 3) == ([2.0, 8.0, 10.0], [3, 3, 3])
    assert sv.coarsen(np.arange(1.0, 8.0), 3) == ([3.0, 7.0], [3, 4])
    assert sv.coarsen(np.array([4.0, 4.0]), 3) == ([4.0], [2])
    assert sv.coarsen(np.array([]), 3) == ([], [])
    assert sv.to_grid(np.array([0.0, 0.5, 30.0, 30.1]), 30.0).tolist() == [0.0, 30.0, 30.0, 60.0]


def test_median_and_curve_ending_at_zero() -> None:
    table = {"os_time": np.repeat([10.0, 20.0, 30.0], 6), "os_event": np.ones(18)}
    out = LocalHub(km.ALGORITHM, _nodes(table, [1])).run({"cohort": {}, "survival": OS})
    assert out["survival"] == pytest.approx([2 / 3, 1 / 3, 0.0])
    assert out["median"] == 20.0 and out["se"][-1] is None
    ref = SurvfuncRight(table["os_time"], table["os_event"])
    np.testing.assert_allclose(out["se"][:2], ref.surv_prob_se[:2], atol=1e-12)


def test_node_with_too_few_events_is_refused_and_dropped() -> None:
    big = _table(600, seed=6)
    small = {
        "os_time": np.array([5.0, 9.0, 40, 41, 42, 43, 44, 45]),
        "os_event": np.array([1.0, 1, 0, 0, 0, 0, 0, 0]),
    }
    nodes = {"a": ArrayData(big), "b": ArrayData(small)}
    out = LocalHub(km.ALGORITHM, nodes).run({"cohort": {}, "survival": OS})
    assert out["refused"] == {"b": "min-cell-size"}
    assert set(out["n_by_node"]) == {"a"}
    _assert_equal(out, _pooled_released({"a": nodes["a"]}, 5, None))


def test_bad_survival_data_at_a_node_is_refused() -> None:
    bad = {"os_time": np.array([-1.0] + [3.0] * 9), "os_event": np.ones(10)}
    with pytest.raises(InvalidInput, match="times >= 0"):
        LocalHub(km.ALGORITHM, {"a": ArrayData(bad)}).run({"cohort": {}, "survival": OS})


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"survival": {"kind": "age", "name": "age"}}, "survival variable"),
        ({"survival": None}, "required"),
        ({"times": "weekly"}, "times"),
        ({"bin_days": 7}, "binned"),
        ({"times": "binned", "bin_days": 0}, "bin_days"),
    ],
)
def test_validate_names_the_bad_parameter(change: dict, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        km.ALGORITHM.validate({"cohort": {}, "survival": OS, **change})
