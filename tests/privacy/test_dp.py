"""OpenDP mechanisms: the noise has the scale the privacy settings promise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from healthmesh.errors import InvalidInput
from healthmesh.privacy.dp import noise_scale, noised
from healthmesh.privacy.policy import DpSettings

DRAWS = 20_000


def test_laplace_scale_is_sensitivity_over_epsilon() -> None:
    assert noise_scale("laplace", True, 1.0, 0.5, 0.0) == pytest.approx(2.0, rel=1e-6)
    assert noise_scale("laplace", True, 3.0, 0.5, 0.0) == pytest.approx(6.0, rel=1e-6)
    assert noise_scale("laplace", False, 2.0, 0.25, 0.0) == pytest.approx(8.0, rel=1e-6)


def test_discrete_laplace_counts_have_the_promised_variance() -> None:
    settings = DpSettings(epsilon=0.5)  # scale b = 2
    x = np.array(noised([100] * DRAWS, integer=True, sensitivity=1, settings=settings)) - 100
    assert np.all(x == np.round(x))  # counts stay whole numbers
    r = math.exp(-1 / 2.0)
    expected = 2 * r / (1 - r) ** 2  # variance of the discrete Laplace with scale 2
    assert abs(x.mean()) < 5 * math.sqrt(expected / DRAWS)
    assert x.var() == pytest.approx(expected, rel=0.08)  # ~5 standard errors


def test_continuous_laplace_sums() -> None:
    settings = DpSettings(epsilon=1.0)
    x = np.array(noised([0.0] * DRAWS, integer=False, sensitivity=3.0, settings=settings))
    assert x.var() == pytest.approx(2 * 3.0**2, rel=0.08)  # Laplace(b = 3): 2 b^2


def test_gaussian_scale_meets_epsilon_delta_and_draws_match() -> None:
    settings = DpSettings(mechanism="gaussian", epsilon=0.5, delta=1e-6)
    sigma = noise_scale("gaussian", False, 1.0, 0.5, 1e-6)
    # the classical analytic bound sqrt(2 ln(1.25/delta)) / epsilon is looser than zCDP's
    assert 5.0 < sigma < math.sqrt(2 * math.log(1.25 / 1e-6)) / 0.5
    x = np.array(noised([0.0] * DRAWS, integer=False, sensitivity=1.0, settings=settings))
    assert x.var() == pytest.approx(sigma**2, rel=0.06)
    assert abs(np.mean(np.abs(x) > 2 * sigma) - 0.0455) < 0.01  # normal tails


def test_more_privacy_more_noise() -> None:
    loose = np.array(noised([0] * DRAWS, integer=True, sensitivity=1, settings=DpSettings(epsilon=2.0, epsilon_cap=2.0)))
    tight = np.array(noised([0] * DRAWS, integer=True, sensitivity=1, settings=DpSettings(epsilon=0.2)))
    assert tight.var() > 50 * loose.var()


@pytest.mark.parametrize(("values", "sens"), [([1.0], 0.0), ([1.0], math.inf), ([math.nan], 1.0), ([math.inf], 1.0)])
def test_bad_input(values: list[float], sens: float) -> None:
    with pytest.raises(InvalidInput):
        noised(values, integer=False, sensitivity=sens, settings=DpSettings())


def test_empty() -> None:
    assert noised([], integer=True, sensitivity=1, settings=DpSettings()) == []
