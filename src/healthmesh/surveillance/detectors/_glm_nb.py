"""Negative binomial regression with estimated size, step for step as ``MASS::glm.nb``.

``surveillance::glrnb`` estimates its in-control mean with ``glm.nb``; to match R's
thresholds we replay MASS's alternation exactly (a Poisson start, ``theta.ml`` Newton steps on
the old means, refits started from the previous linear predictor, the same stopping rule),
for a batch of series at once on top of :func:`fit_log_glm`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, gammaln, polygamma

from healthmesh.surveillance.detectors._glm import GlmBatch, fit_log_glm

FloatArray = npt.NDArray[np.float64]


def theta_ml(y: FloatArray, mu: FloatArray, limit: int = 25) -> FloatArray:
    """MASS ``theta.ml`` per row (unit weights), vectorised over rows."""
    n = y.shape[1]
    t0 = n / ((y / mu - 1) ** 2).sum(axis=1)
    eps = np.finfo(np.float64).eps ** 0.25
    active = np.ones(y.shape[0], dtype=np.bool_)
    it = 0
    while True:
        it += 1
        if it >= limit or not active.any():
            break
        t = np.abs(t0[active])[:, None]
        ya, ma = y[active], mu[active]
        score = (digamma(t + ya) - digamma(t) + np.log(t) + 1 - np.log(t + ma)
                 - (ya + t) / (ma + t)).sum(axis=1)
        info = (-polygamma(1, t + ya) + polygamma(1, t) - 1 / t + 2 / (ma + t)
                - (ya + t) / (ma + t) ** 2).sum(axis=1)
        delta = score / info
        t0[active] = t[:, 0] + delta
        idx = np.flatnonzero(active)
        active[idx[np.abs(delta) <= eps]] = False
    return np.asarray(np.maximum(t0, 0.0))


def _loglik(th: FloatArray, mu: FloatArray, y: FloatArray) -> FloatArray:
    t = th[:, None]
    return np.asarray((gammaln(t + y) - gammaln(t) - gammaln(y + 1) + t * np.log(t)
                       + y * np.log(mu + (y == 0)) - (t + y) * np.log(t + mu)).sum(axis=1))


def fit_glm_nb(x: FloatArray, y: FloatArray, maxit: int = 25, epsilon: float = 1e-8) -> tuple[
    GlmBatch, FloatArray
]:
    """Fit ``glm.nb(y ~ X)`` per row; returns the last ``glm.fit`` batch and theta."""
    fit = fit_log_glm(x, y)
    mu = fit.mu
    th = theta_ml(y, mu, maxit)
    d1 = np.sqrt(2 * np.maximum(1.0, fit.df_residual))
    del_ = np.ones_like(th)
    lm = _loglik(th, mu, y)
    lm0 = lm + 2 * d1
    active = np.ones(y.shape[0], dtype=np.bool_)
    for _ in range(maxit):
        active &= (np.abs(lm0 - lm) / d1 + np.abs(del_)) > epsilon
        if not active.any():
            break
        idx = np.flatnonzero(active)
        sub = fit_log_glm(x[idx], y[idx], theta=th[idx], mustart=mu[idx])
        t_new = theta_ml(y[idx], mu[idx], maxit)
        del_[idx] = th[idx] - t_new
        th[idx] = t_new
        mu[idx] = sub.mu
        lm0[idx] = lm[idx]
        lm[idx] = _loglik(th[idx], mu[idx], y[idx])
        for name in ("coef", "mu", "eta", "weights", "cov_unscaled", "deviance", "converged",
                     "iterations", "df_residual"):
            getattr(fit, name)[idx] = getattr(sub, name)
    return fit, th
