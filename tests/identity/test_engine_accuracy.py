"""Plaintext linkage accuracy on FEBRL (thresholds chosen without labels) and EM sanity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from healthmesh.identity.engine.clustering import pairs_within_clusters
from healthmesh.identity.engine.fellegi_sunter import FSParameters, fit_em
from healthmesh.identity.engine.linker import link
from healthmesh.identity.engine.presets import febrl_spec, prepare_febrl

from .metrics import prf


@pytest.fixture(scope="module")
def febrl4(shared_data: Path) -> tuple[pd.DataFrame, pd.DataFrame, set[tuple[object, object]]]:
    d = shared_data / "febrl"
    a = prepare_febrl(pd.read_csv(d / "febrl4a.csv", dtype=str))
    b = prepare_febrl(pd.read_csv(d / "febrl4b.csv", dtype=str))
    truth = {tuple(x) for x in pd.read_csv(d / "febrl4_true_links.csv").values.tolist()}
    return a, b, truth


def test_febrl4_plaintext_f1_at_least_0999(febrl4: tuple[pd.DataFrame, pd.DataFrame, set]) -> None:
    a, b, truth = febrl4
    result = link(a, b, febrl_spec(with_ssn=True))
    p, r, f1 = prf(result.matches(), truth)
    print(f"FEBRL4 plaintext P={p:.4f} R={r:.4f} F1={f1:.4f}")
    assert f1 >= 0.999
    # EM runs on the blocked pairs plus 50,000 random pairs: its prior must count the matches
    assert result.params.prior * (len(result.left) + 50_000) == pytest.approx(len(truth), rel=0.05)


def test_febrl3_dedup_f1(shared_data: Path) -> None:
    d = shared_data / "febrl"
    frame = prepare_febrl(pd.read_csv(d / "febrl3.csv", dtype=str))
    truth = {tuple(sorted(x)) for x in pd.read_csv(d / "febrl3_true_links.csv").values.tolist()}
    result = link(frame, None, febrl_spec(with_ssn=True))
    ids = frame["id"].to_numpy()
    pred = {tuple(sorted((ids[i], ids[j]))) for i, j in pairs_within_clusters(result.clusters())}
    p, r, f1 = prf(pred, truth)
    print(f"FEBRL3 dedup P={p:.4f} R={r:.4f} F1={f1:.4f}")
    assert len(truth) == 6538
    assert f1 >= 0.995


def test_em_recovers_known_parameters() -> None:
    rng = np.random.default_rng(5)
    m = [np.array([0.05, 0.15, 0.8]), np.array([0.1, 0.9]), np.array([0.2, 0.8])]
    u = [np.array([0.9, 0.08, 0.02]), np.array([0.7, 0.3]), np.array([0.95, 0.05])]
    n, prior = 60_000, 0.05
    is_match = rng.random(n) < prior
    cols = []
    for mk, uk in zip(m, u, strict=True):
        col = np.where(is_match, rng.choice(len(mk), n, p=mk), rng.choice(len(uk), n, p=uk))
        cols.append(col)
    gamma = np.column_stack(cols).astype(np.int8)
    gamma[rng.random(n) < 0.05, 1] = -1  # missing values are ignored
    fitted = fit_em(gamma, [3, 2, 2])
    assert fitted.prior == pytest.approx(prior, abs=0.01)
    for est, true in zip(fitted.m, m, strict=True):
        assert np.abs(est - true).max() < 0.05
    for est, true in zip(fitted.u, u, strict=True):
        assert np.abs(est - true).max() < 0.02
    again = FSParameters.from_json(fitted.to_json())
    assert np.allclose(again.match_weight(gamma[:10]), fitted.match_weight(gamma[:10]))
