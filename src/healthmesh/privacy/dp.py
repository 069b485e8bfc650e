"""Differential privacy of released counts and sums, through OpenDP (the ``opendp`` package).

What is used: ``opendp.measurements.make_laplace`` and ``make_gaussian`` on vectors — over
integers for counts (OpenDP then samples the discrete Laplace / discrete Gaussian, exact and free
of floating-point attacks) and over finite floats for sums. Noise scales are calibrated by
``opendp.prelude.binary_search_param`` against the privacy map of the measurement itself:
``max_divergence`` (pure epsilon) for Laplace; for Gaussian zero-concentrated DP converted with
``make_zCDP_to_approxDP`` and ``make_fix_delta`` to (epsilon, delta). These constructors sit behind
OpenDP's ``contrib`` feature flag, enabled here when OpenDP is first
used (it is imported lazily: importing it takes seconds).

Nothing here charges a budget: :mod:`healthmesh.privacy.guard` charges, then calls these.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from healthmesh.errors import InvalidInput
from healthmesh.privacy.policy import DpSettings


@functools.cache
def _opendp() -> Any:
    """``opendp.prelude`` with ``contrib`` enabled, imported on first use (it takes seconds)."""
    import opendp.prelude as prelude

    prelude.enable_features("contrib")
    return prelude


def _space(integer: bool, gaussian: bool) -> tuple[Any, Any]:
    dp = _opendp()
    atom = dp.atom_domain(T=int) if integer else dp.atom_domain(T=float, nan=False)
    t = int if integer else float
    metric = dp.l2_distance(T=t) if gaussian else dp.l1_distance(T=t)
    return dp.vector_domain(atom), metric


def _measurement(integer: bool, gaussian: bool, scale: float, delta: float) -> Any:
    dp = _opendp()
    space = _space(integer, gaussian)
    if not gaussian:
        return space >> dp.m.then_laplace(scale=scale)
    zcdp = space >> dp.m.then_gaussian(scale=scale)
    return dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(zcdp), delta=delta)


@functools.lru_cache(maxsize=256)
def noise_scale(
    mechanism: str, integer: bool, sensitivity: float, epsilon: float, delta: float
) -> float:
    """The smallest noise scale OpenDP certifies for (epsilon[, delta]) at this sensitivity."""
    dp = _opendp()
    gaussian = mechanism == "gaussian"
    d_in: float | int = math.ceil(sensitivity) if integer else float(sensitivity)
    d_out: Any = (epsilon, delta) if gaussian else epsilon
    scale = dp.binary_search_param(
        lambda s: _measurement(integer, gaussian, s, delta), d_in=d_in, d_out=d_out
    )
    return float(scale)


def noised(
    values: Sequence[float], *, integer: bool, sensitivity: float, settings: DpSettings
) -> list[float]:
    """``values`` with noise for one release of ``settings.epsilon`` (and ``delta``).

    ``sensitivity`` bounds how much one person changes the whole vector: L1 for Laplace, L2 for
    Gaussian. With ``integer`` the values are counts (rounded to whole numbers first).

    Example::

        >>> len(noised([10, 20], integer=True, sensitivity=1, settings=DpSettings()))
        2
    """
    if not values:
        return []
    if not (math.isfinite(sensitivity) and sensitivity > 0):
        raise InvalidInput("differential privacy needs a finite, positive sensitivity")
    if not all(math.isfinite(v) for v in values):
        raise InvalidInput("differential privacy needs finite values")
    gaussian = settings.mechanism == "gaussian"
    scale = noise_scale(settings.mechanism, integer, sensitivity, settings.epsilon, settings.delta)
    meas = _measurement(integer, gaussian, scale, settings.delta)
    data = [round(v) for v in values] if integer else [float(v) for v in values]
    return [float(x) for x in meas(data)]
