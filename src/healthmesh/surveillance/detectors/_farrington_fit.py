"""The model-fitting procedure shared by both Farrington detectors, batched over many fits.

One fit is R's ``algo.farrington.fitGLM.fast`` / ``.flexible``: a quasi-Poisson GLM, the
dispersion ``phi = max(1, dispersion)``, optionally Anscombe-residual reweighting of past
outbreaks and a refit; then the trend is kept only if significant, ``b >= 3`` and not
extrapolating, otherwise everything is refitted without it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import t as student_t

from healthmesh.surveillance.detectors._glm import GlmBatch, fit_log_glm

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
_EPS = float(np.finfo(np.float64).eps)


def anscombe_weights(
    fit: GlmBatch, x: FloatArray, y: FloatArray, phi: FloatArray, threshold: float
) -> FloatArray:
    """R ``anscombe.residuals`` then ``algo.farrington.assign.weights``, per fit."""
    hat = fit.hat(x)
    mu = fit.mu
    with np.errstate(divide="ignore", invalid="ignore"):
        s = 1.5 * (y ** (2 / 3) * mu ** (-1 / 6) - np.sqrt(mu)) / np.sqrt(phi[:, None] * (1 - hat))
        high = s > threshold
        gamma = y.shape[1] / np.where(high, s**-2.0, 1.0).sum(axis=1)
        omega = np.where(high, gamma[:, None] * s**-2.0, gamma[:, None])
    return np.asarray(omega)


@dataclass
class FitOutcome:
    """A fitted batch with what the threshold step needs."""

    fit: GlmBatch
    phi: FloatArray  # max(1, dispersion), as stored in R's model$phi
    disp_summary: FloatArray  # what summary.glm(model)$dispersion returns afterwards
    converged: BoolArray  # the first (unweighted) fit converged


def fit_procedure(
    x: FloatArray,
    y: FloatArray,
    *,
    reweight: bool,
    weights_threshold: float,
    overwrite_weights: bool,
) -> FitOutcome:
    """One call of R's fit function on a batch (same design structure for all fits)."""
    first = fit_log_glm(x, y)
    phi = np.maximum(first.dispersion(y), 1.0)
    if not reweight:
        return FitOutcome(first, phi, first.dispersion(y), first.converged)
    omega = anscombe_weights(first, x, y, phi, weights_threshold)
    second = fit_log_glm(x, y, omega)
    phi2 = np.maximum(second.dispersion(y), 1.0)
    disp = second.dispersion(y, omega if overwrite_weights else None)
    return FitOutcome(second, phi2, disp, first.converged)


def take(outcome: FitOutcome, rows: npt.NDArray[np.int64]) -> FitOutcome:
    """Subset of a batch."""
    f = outcome.fit
    return FitOutcome(
        GlmBatch(
            f.coef[rows], f.mu[rows], f.eta[rows], f.weights[rows], f.cov_unscaled[rows],
            f.deviance[rows], f.converged[rows], f.iterations[rows], f.df_residual[rows],
        ),
        outcome.phi[rows],
        outcome.disp_summary[rows],
        outcome.converged[rows],
    )


@dataclass
class FinalModel:
    """Per fit: prediction on link scale, its standard error, and the trend decision."""

    eta0: FloatArray
    se_eta0: FloatArray
    phi: FloatArray
    do_trend: BoolArray
    trend_coef: FloatArray
    ok: BoolArray  # False where R gives up (no convergence with or without trend)


def fit_with_trend_selection(
    x_trend: FloatArray,
    x0_trend: FloatArray,
    y: FloatArray,
    *,
    trend: bool,
    b: int,
    p_threshold: float,
    reweight: bool,
    weights_threshold: float,
    overwrite_weights: bool,
    fail_on_nonconvergence: bool,
    predict_with_phi: bool = False,
) -> FinalModel:
    """Fit with a time trend (column 1), keep it only where R would, refit the rest without.

    ``x_trend`` (B, n, p) has the intercept in column 0 and the time in column 1; ``x0_trend``
    (B, p) is the design row of the monitored time point. ``predict_with_phi`` scales the
    prediction error with ``phi`` (classic ``algo.farrington``) instead of the summary
    dispersion (``farringtonFlexible``).
    """
    n_fit = y.shape[0]
    shared = x_trend.ndim == 2
    x_flat = np.delete(x_trend, 1, axis=-1)
    x0_flat = np.delete(x0_trend, 1, axis=-1)
    eta0 = np.full(n_fit, np.nan)
    se0 = np.full(n_fit, np.nan)
    phi = np.full(n_fit, np.nan)
    coef_t = np.full(n_fit, np.nan)
    do_trend = np.zeros(n_fit, dtype=np.bool_)
    ok = np.ones(n_fit, dtype=np.bool_)
    need_flat = np.arange(n_fit)
    if trend:
        with_t = fit_procedure(x_trend, y, reweight=reweight, weights_threshold=weights_threshold,
                               overwrite_weights=overwrite_weights)
        conv = with_t.converged
        e0, s0 = with_t.fit.predict_link(
            x0_trend, with_t.phi if predict_with_phi else with_t.disp_summary
        )
        with np.errstate(over="ignore"):
            fit_resp = np.maximum(np.exp(e0), _EPS)
        se_coef = np.sqrt(with_t.fit.cov_unscaled[:, 1, 1] * with_t.disp_summary)
        with np.errstate(divide="ignore", invalid="ignore"):
            tval = with_t.fit.coef[:, 1] / se_coef
        pval = 2 * student_t.cdf(-np.abs(tval), with_t.fit.df_residual)
        keep = conv & (b >= 3) & (pval < p_threshold) & (fit_resp <= y.max(axis=1))
        eta0[keep], se0[keep], phi[keep] = e0[keep], s0[keep], with_t.phi[keep]
        coef_t[keep] = with_t.fit.coef[keep, 1]
        do_trend = keep
        need_flat = np.flatnonzero(~keep)
    if need_flat.size:
        xf = x_flat if shared else x_flat[need_flat]
        x0f = x0_flat if shared else x0_flat[need_flat]
        flat = fit_procedure(xf, y[need_flat], reweight=reweight,
                             weights_threshold=weights_threshold,
                             overwrite_weights=overwrite_weights)
        e0, s0 = flat.fit.predict_link(
            x0f, flat.phi if predict_with_phi else flat.disp_summary
        )
        eta0[need_flat], se0[need_flat], phi[need_flat] = e0, s0, flat.phi
        if fail_on_nonconvergence:
            ok[need_flat] = flat.converged
    return FinalModel(eta0, se0, phi, do_trend, coef_t, ok)
