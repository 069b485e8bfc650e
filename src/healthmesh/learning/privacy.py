"""Privacy accounting of a training run: the noise a run needs for a target (ε, δ), and the ε
it spent. Built on Flower's RDP accountant (``flwr.supercore.privacy_accounting``, which wraps
Google's ``dp-accounting``); only the calibration search is written here.

- Record level (DP-SGD at an institution with ``n`` training rows): every step is a
  Poisson-sampled Gaussian mechanism (rate ``batch / n``), composed ``rounds * steps`` times.
- Client level (Flower's client-side fixed clipping): every round is a Gaussian mechanism on
  the sum of clipped updates, all clients take part (no amplification), composed ``rounds``
  times.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from flwr.supercore.privacy_accounting import (
    GaussianPrivacyEvent,
    NeighboringRelation,
    PrivacyConfig,
    SamplingMethod,
)
from flwr.supercore.privacy_accounting.rdp_accountant import RdpAccountant

from healthmesh.errors import InvalidInput


def epsilon_spent(
    noise: float, *, population: int, sample: int, steps: int, delta: float, poisson: bool
) -> float:
    """ε at ``delta`` after ``steps`` Gaussian releases with noise multiplier ``noise``.

    ``poisson``: each release samples ``sample`` of ``population`` in expectation (DP-SGD);
    otherwise there is no sampling amplification (client-level DP, everyone takes part).
    """
    logging.getLogger("absl").setLevel(logging.ERROR)  # per-order convergence chatter
    method = SamplingMethod.POISSON if poisson else SamplingMethod.NO_AMPLIFICATION
    acc = RdpAccountant(
        PrivacyConfig(
            target_delta=delta,
            population_size=population,
            neighboring_relation=NeighboringRelation.ADD_OR_REMOVE_ONE,
            sampling_method=method,
        )
    )
    acc.compose(GaussianPrivacyEvent(noise, min(sample, population), population), count=steps)
    return acc.get_epsilon(delta)


@lru_cache(maxsize=256)
def calibrate_noise(
    epsilon: float, *, population: int, sample: int, steps: int, delta: float, poisson: bool
) -> float:
    """The smallest noise multiplier (to 0.5 %) whose run spends at most ``epsilon``."""
    if epsilon <= 0 or not 0 < delta < 1:
        raise InvalidInput("epsilon must be > 0 and delta in (0, 1)")

    def eps(z: float) -> float:
        return epsilon_spent(
            z, population=population, sample=sample, steps=steps, delta=delta, poisson=poisson
        )

    lo, hi = 0.05, 1.0
    while eps(hi) > epsilon:
        lo, hi = hi, hi * 2
        if hi > 1e5:
            raise InvalidInput("no noise level reaches this epsilon")
    while hi / lo > 1.005:
        mid = (lo * hi) ** 0.5
        if eps(mid) > epsilon:
            lo = mid
        else:
            hi = mid
    return hi
