"""The privacy policy: defaults and what is refused."""

from __future__ import annotations

import pytest

from healthmesh.errors import InvalidInput
from healthmesh.privacy.policy import PrivacyPolicy


def test_defaults() -> None:
    p = PrivacyPolicy()
    assert (p.min_cell, p.glm_ratio, p.differencing, p.dp) == (5, 0.33, True, None)


@pytest.mark.parametrize(
    ("settings", "where"),
    [
        ({"min_cell": 2}, "min_cell"),
        ({"min_cell": 0}, "min_cell"),
        ({"glm_ratio": 0}, "glm_ratio"),
        ({"glm_ratio": 1.5}, "glm_ratio"),
        ({"dp": {"epsilon": 0}}, "dp.epsilon"),
        ({"dp": {"mechanism": "gaussian", "delta": 0}}, "dp"),
        ({"dp": {"epsilon": 2, "epsilon_cap": 1}}, "dp"),
        ({"dp": {"mechanism": "exponential"}}, "dp.mechanism"),
        ({"min_size": 5}, "min_size"),
    ],
)
def test_refused_settings(settings: dict, where: str) -> None:
    with pytest.raises(InvalidInput) as err:
        PrivacyPolicy.parse(settings)
    assert err.value.location == where


def test_accepted_settings() -> None:
    p = PrivacyPolicy.parse({"min_cell": 3, "dp": {"mechanism": "gaussian", "epsilon": 0.5, "delta": 1e-6}})
    assert p.min_cell == 3 and p.dp is not None and p.dp.delta == 1e-6
    assert PrivacyPolicy.parse(None) == PrivacyPolicy()
