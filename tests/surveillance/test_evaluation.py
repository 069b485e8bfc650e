"""Detection quality on the labelled benchmarks equals R's (same parameters, same alarms)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from healthmesh.surveillance.detectors import (
    EarsC,
    Farrington,
    FarringtonFlexible,
    SeriesFrame,
    bayes_system,
)
from healthmesh.surveillance.evaluation import algo_quality, outbreak_metrics, outbreak_runs

NOUFAILY_RANGE = np.arange(576, 625)
# The benchmark's sts objects are weekly from 2000-01-03 (Farrington b=5, w=3, alpha=0.005).
NOUFAILY_DATES = [dt.date(2000, 1, 3) + dt.timedelta(weeks=i) for i in range(624)]
EARS = {
    "EARS_C1": EarsC("C1"), "EARS_C1_a0.005": EarsC("C1", alpha=0.005),
    "EARS_C2": EarsC("C2"), "EARS_C2_a0.005": EarsC("C2", alpha=0.005),
    "EARS_C3": EarsC("C3"), "EARS_C3_a0.005": EarsC("C3", alpha=0.005),
}
FF = {
    "FF_farrington": FarringtonFlexible.farrington(b=5, w=3, alpha=0.005),
    "FF_noufaily": FarringtonFlexible.noufaily(b=5, w=3, alpha=0.005),
}
METRICS = ("n_weeks_nonob", "n_alarm_NA", "FPR", "specificity", "n_weeks_ob", "sensitivity",
           "n_outbreaks", "POD", "POD_week1")


@pytest.fixture(scope="module")
def noufaily(shared_data):
    base = shared_data / "surveillance" / "benchmark_noufaily"
    series = pd.read_csv(base / "series.csv.gz")
    alarms = pd.read_csv(base / "alarms.csv.gz")
    outbreaks = pd.read_csv(base / "outbreaks.csv").set_index(["scenario", "rep"])
    metrics = pd.read_csv(base / "metrics_overall.csv").set_index("algorithm")
    obs = series.pivot_table(index=["scenario", "rep"], columns="t", values="y")
    cur = series.pivot_table(index=["scenario", "rep"], columns="t", values="cur_cases")
    return obs, cur, alarms, outbreaks, metrics


def _r_matrix(alarms: pd.DataFrame, algorithm: str, value: str, index) -> np.ndarray:
    sub = alarms[alarms.algorithm == algorithm]
    return sub.pivot_table(index=["scenario", "rep"], columns="t", values=value,
                           dropna=False).reindex(index).to_numpy()


def _noufaily_metrics(cur, outbreaks, alarm: np.ndarray, index) -> dict:
    flags = cur.loc[index, NOUFAILY_RANGE].to_numpy() > 0
    firsts = [int(outbreaks.loc[key, "start"] - NOUFAILY_RANGE[0]) for key in index]
    return outbreak_metrics(zip(flags, alarm, strict=True), first_week=firsts).as_dict()


def test_metrics_from_r_alarms_equal_r_metrics(noufaily) -> None:
    obs, cur, alarms, outbreaks, metrics = noufaily
    for algorithm in metrics.index:
        alarm = _r_matrix(alarms, algorithm, "alarm", obs.index)
        ours = _noufaily_metrics(cur, outbreaks, alarm, obs.index)
        for name in METRICS:
            assert ours[name] == pytest.approx(metrics.loc[algorithm, name], rel=1e-12), name


def test_ears_alarms_and_metrics_equal_r(noufaily) -> None:
    obs, cur, alarms, outbreaks, metrics = noufaily
    frame = SeriesFrame(observed=obs.to_numpy())
    for algorithm, det in EARS.items():
        res = det.run(frame, NOUFAILY_RANGE)
        r_alarm = _r_matrix(alarms, algorithm, "alarm", obs.index)
        np.testing.assert_array_equal(res.alarm, np.nan_to_num(r_alarm, nan=0).astype(bool))
        alarm = np.where(np.isnan(res.upperbound), np.nan, res.alarm.astype(float))
        ours = _noufaily_metrics(cur, outbreaks, alarm, obs.index)
        for name in METRICS:
            assert ours[name] == pytest.approx(metrics.loc[algorithm, name], rel=1e-12), name


@pytest.mark.parametrize("algorithm", sorted(FF))
def test_farrington_alarms_equal_r_one_rep_per_scenario(noufaily, algorithm) -> None:
    obs, _cur, alarms, _outbreaks, _metrics = noufaily
    index = [key for key in obs.index if key[1] == 1]
    frame = SeriesFrame(observed=obs.loc[index].to_numpy(), dates=NOUFAILY_DATES)
    res = FF[algorithm].run(frame, NOUFAILY_RANGE)
    r_alarm = _r_matrix(alarms, algorithm, "alarm", index)
    r_bound = _r_matrix(alarms, algorithm, "upperbound", index)
    np.testing.assert_array_equal(res.alarm, np.nan_to_num(r_alarm, nan=0).astype(bool))
    # the file rounds bounds to 7 significant digits
    np.testing.assert_allclose(res.upperbound, r_bound, rtol=1e-6, equal_nan=True)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", sorted(FF))
def test_farrington_metrics_equal_r_all_series(noufaily, algorithm) -> None:
    obs, cur, _alarms, outbreaks, metrics = noufaily
    res = FF[algorithm].run(SeriesFrame(observed=obs.to_numpy(), dates=NOUFAILY_DATES),
                            NOUFAILY_RANGE)
    ours = _noufaily_metrics(cur, outbreaks, res.alarm.astype(float), obs.index)
    for name in METRICS:
        assert ours[name] == pytest.approx(metrics.loc[algorithm, name], rel=1e-12), name


def test_point_source_benchmark_equals_r(shared_data) -> None:
    base = shared_data / "surveillance" / "benchmark_pointsource"
    series = pd.read_csv(base / "series.csv.gz")
    alarms = pd.read_csv(base / "alarms.csv.gz")
    expected = pd.read_csv(base / "metrics_overall.csv").set_index("algorithm")
    obs = series.pivot_table(index="series", columns="t", values="observed")
    state = series.pivot_table(index="series", columns="t", values="state")
    rng = np.arange(300, 401)
    frame = SeriesFrame(observed=obs.to_numpy())
    dets = {"EARS_C1": EarsC("C1"), "EARS_C2": EarsC("C2"), "EARS_C3": EarsC("C3"), **FF}
    flags = state[rng].to_numpy() > 0
    for algorithm, det in dets.items():
        res = det.run(frame, rng)
        r_alarm = alarms[alarms.algorithm == algorithm].pivot_table(
            index="series", columns="t", values="alarm").to_numpy()
        np.testing.assert_array_equal(res.alarm, r_alarm.astype(bool))
        m = outbreak_metrics(zip(flags, res.alarm, strict=True))
        row = expected.loc[algorithm]
        assert (m.TP, m.FP, m.n_outbreaks) == (row.TP, row.FP, row.outbreaks)
        assert m.n_weeks_nonob - m.FP == row.TN and m.n_weeks_ob - m.TP == row.FN
        assert m.sensitivity == pytest.approx(row.sens, rel=1e-12)
        assert m.specificity == pytest.approx(row.spec, rel=1e-12)
        pod = m.POD
        assert pod == pytest.approx(row.POD, rel=1e-12)


def test_vignette_quality_values(shared_data) -> None:
    base = shared_data / "surveillance" / "benchmark_pointsource"
    series = pd.read_csv(base / "vignette_seed1234_series.csv")
    table = pd.read_csv(base / "vignette_seed1234_single_series.csv").set_index("algorithm")
    frame = SeriesFrame.from_counts(series.observed.to_numpy())
    rng = np.arange(300, 401)
    dets = {"bayes(6,6,0)": bayes_system(1), "bayes(6,6,1)": bayes_system(2),
            "bayes(4,0,2)": bayes_system(3), "farrington(3,0,5)": Farrington(b=5, w=3)}
    for label, det in dets.items():
        q = algo_quality(series.state.to_numpy()[rng - 1], det.run(frame, rng).alarm[0])
        row = table.loc[label]
        assert (q.TP, q.FP, q.TN, q.FN) == (row.TP, row.FP, row.TN, row.FN)
        for name in ("sens", "spec", "dist", "mlag"):
            assert getattr(q, name) == pytest.approx(row[name], rel=1e-12), name


def test_outbreak_runs_and_quality_edge_cases() -> None:
    assert outbreak_runs(np.zeros(3, dtype=bool)) == []
    q = algo_quality([0, 0, 0], [0, 1, 0])
    assert (q.FP, q.mlag) == (1, 0.0)
    q = algo_quality([1, 1, 0, 1], [0, 0, 0, 0], penalty=5)
    assert q.mlag == 5.0
