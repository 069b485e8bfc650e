"""Metrics and losses against references: C-index against the pairwise definition, the Cox
loss against statsmodels' Breslow partial likelihood, the DP calibration against its accountant."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from statsmodels.duration.hazard_regression import PHReg

from healthmesh.errors import InvalidInput
from healthmesh.learning.metrics import accuracy, concordance_index
from healthmesh.learning.models import cox_loss
from healthmesh.learning.privacy import calibrate_noise, epsilon_spent


def _c_index_loop(t, p, e) -> float:
    num = den = 0.0
    for i in range(len(t)):
        for j in range(len(t)):
            if e[i] == 1 and (t[i] < t[j] or (t[i] == t[j] and e[j] == 0)):
                den += 1
                num += 1.0 if p[i] < p[j] else 0.5 if p[i] == p[j] else 0.0
    return num / den


def test_concordance_matches_pairwise_definition() -> None:
    rng = np.random.default_rng(1)
    t = rng.integers(1, 15, 60).astype(float)  # many ties in time
    e = (rng.random(60) < 0.6).astype(float)
    p = rng.integers(0, 5, 60).astype(float)  # ties in predictions
    assert concordance_index(t, p, e) == pytest.approx(_c_index_loop(t, p, e))
    assert concordance_index(t, t, np.ones(60)) == 1.0
    with pytest.raises(InvalidInput):
        concordance_index(t, p, np.zeros(60))


def test_accuracy() -> None:
    assert accuracy(np.array([2.0, -1.0, 0.5]), np.array([1.0, 0.0, 0.0])) == pytest.approx(2 / 3)


def test_cox_loss_is_breslow_partial_likelihood() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(80, 3))
    t = rng.integers(1, 20, 80).astype(float)
    e = (rng.random(80) < 0.7).astype(float)
    beta = np.array([0.3, -0.5, 0.1])
    ll = PHReg(t, x, status=e, ties="breslow").loglike(beta)
    ours = cox_loss(torch.tensor(x @ beta), torch.tensor(t), torch.tensor(e))
    assert float(ours) * e.sum() == pytest.approx(-ll, rel=1e-6)


def test_calibrated_noise_spends_the_target() -> None:
    z = calibrate_noise(1.0, population=200, sample=4, steps=300, delta=1e-3, poisson=True)
    eps = epsilon_spent(z, population=200, sample=4, steps=300, delta=1e-3, poisson=True)
    assert 0.98 < eps <= 1.0
    assert epsilon_spent(z * 0.9, population=200, sample=4, steps=300, delta=1e-3,
                         poisson=True) > 1.0
