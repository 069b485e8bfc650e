"""Many small log-link GLMs fitted at once, step for step as R's ``glm.fit``.

R ``surveillance`` fits one quasi-Poisson GLM per series and time point; we fit thousands in
one batch. statsmodels fits one model per call and stops on its own criteria, so its results
drift from R's by more than the 1e-6 our thresholds must meet; here we replay R's iteratively
reweighted least squares exactly: the same starting values (``y + 0.1`` for Poisson,
``y + (y == 0) / 6`` for the negative binomial), the same ``mu >= DBL_EPSILON`` clamp, the
same convergence test ``|dev - devold| / (|dev| + 0.1) < 1e-8`` with at most 25 iterations,
and, like R, the working weights and ``(X'WX)^-1`` of the *last* iteration (before the final
coefficient update), which R's ``summary.glm``, ``hatvalues`` and ``predict`` use. Each fit
keeps its own iteration count: converged fits are frozen while the others go on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
_EPS = float(np.finfo(np.float64).eps)


@dataclass
class GlmBatch:
    """Results of a batch of ``B`` fits with ``n`` observations and ``p`` coefficients.

    Attributes mirror R's ``glm`` object: ``coef`` (B, p), ``mu`` and ``eta`` (B, n),
    ``weights`` the working weights of the last iteration (B, n), ``cov_unscaled``
    ``(X'WX)^-1`` of the last iteration (B, p, p), ``deviance``, ``converged``, ``iterations``
    and ``df_residual`` (B,).
    """

    coef: FloatArray
    mu: FloatArray
    eta: FloatArray
    weights: FloatArray
    cov_unscaled: FloatArray
    deviance: FloatArray
    converged: BoolArray
    iterations: npt.NDArray[np.int64]
    df_residual: FloatArray

    def dispersion(self, y: FloatArray, weights: FloatArray | None = None) -> FloatArray:
        """R ``summary.glm(...)$dispersion``: ``sum(w * r^2) / df.r`` over ``w > 0``.

        ``weights`` replaces the working weights, as happens in R when a caller overwrites
        ``model$weights`` (``algo.farrington.fitGLM.flexible`` does).
        """
        w = self.weights if weights is None else weights
        resid = (y - self.mu) / np.maximum(np.exp(self.eta), _EPS)
        total = np.where(w > 0, w * resid**2, 0.0).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(np.where(self.df_residual > 0, total / self.df_residual, np.nan))

    def hat(self, x: FloatArray) -> FloatArray:
        """Diagonal of the hat matrix of the last weighted least-squares step (R ``hatvalues``).

        ``x`` is (B, n, p), or (n, p) when all fits share one design.
        """
        if x.ndim == 2:
            n_fit, n_par = self.coef.shape
            outer = np.einsum("ni,nj->nij", x, x).reshape(x.shape[0], n_par * n_par)
            quad = self.cov_unscaled.reshape(n_fit, n_par * n_par) @ outer.T
        else:
            quad = np.einsum("bni,bij,bnj->bn", x, self.cov_unscaled, x)
        h = self.weights * quad
        return np.asarray(np.where(h > 1 - 10 * _EPS, 1.0, h))

    def predict_link(self, x0: FloatArray, dispersion: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Linear predictor and its standard error at one new point per fit, ``x0`` (B, p) or
        (p,) when shared."""
        x0b = np.broadcast_to(x0, self.coef.shape)
        eta0 = np.einsum("bi,bi->b", x0b, self.coef)
        var = np.einsum("bi,bij,bj->b", x0b, self.cov_unscaled, x0b)
        return eta0, np.sqrt(var * dispersion)


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """Run batched small-matrix algebra on one BLAS thread (threads only add overhead)."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _dev_poisson(y: FloatArray, mu: FloatArray, wt: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(y > 0, wt * (y * np.log(y / mu) - (y - mu)), mu * wt)
    return np.asarray(2.0 * r)


def _dev_negbin(y: FloatArray, mu: FloatArray, wt: FloatArray, theta: FloatArray) -> FloatArray:
    th = theta[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = y * np.log(np.maximum(1.0, y) / mu) - (y + th) * np.log((y + th) / (mu + th))
    return np.asarray(2.0 * wt * r)


def fit_log_glm(
    x: FloatArray,
    y: FloatArray,
    prior_weights: FloatArray | None = None,
    *,
    theta: FloatArray | None = None,
    mustart: FloatArray | None = None,
    maxit: int = 25,
    epsilon: float = 1e-8,
) -> GlmBatch:
    """Fit ``B`` log-link GLMs: Poisson/quasi-Poisson, or negative binomial with known ``theta``.

    Parameters
    ----------
    x:
        Design matrices, (B, n, p), or one design (n, p) shared by all fits (then the
        weighted cross-products are single matrix products over the batch).
    y:
        Responses, (B, n).
    prior_weights:
        Prior weights (B, n); zero drops an observation as R does. Default all ones.
    theta:
        Negative binomial size per fit (B,); ``None`` for (quasi-)Poisson.
    mustart:
        Starting means (B, n); default R's family ``initialize``.

    Returns
    -------
    GlmBatch
    """
    shared = x.ndim == 2
    n_fit, n_par = y.shape[0], x.shape[-1]
    outer = np.einsum("ni,nj->nij", x, x).reshape(x.shape[0], n_par * n_par) if shared else None
    wt = np.ones_like(y) if prior_weights is None else prior_weights
    if mustart is None:
        mustart = y + 0.1 if theta is None else y + (y == 0) / 6.0
    eta = np.log(mustart)
    mu = np.maximum(np.exp(eta), _EPS)

    def deviance(yy: FloatArray, mm: FloatArray, ww: FloatArray, idx: npt.NDArray[np.int64]) -> (
        FloatArray
    ):
        if theta is None:
            return np.asarray(_dev_poisson(yy, mm, ww).sum(axis=1))
        return np.asarray(_dev_negbin(yy, mm, ww, theta[idx]).sum(axis=1))

    all_idx = np.arange(n_fit)
    devold = deviance(y, mu, wt, all_idx)
    coef = np.zeros((n_fit, n_par))
    w_last = np.zeros_like(y)
    cov = np.zeros((n_fit, n_par, n_par))
    dev = devold.copy()
    converged = np.zeros(n_fit, dtype=np.bool_)
    iters = np.zeros(n_fit, dtype=np.int64)
    active = all_idx
    for it in range(1, maxit + 1):
        if active.size == 0:
            break
        # a plain slice while every fit is still iterating: views instead of gathered copies
        sel: slice | npt.NDArray[np.int64] = slice(None) if active.size == n_fit else active
        ya, wa = y[sel], wt[sel]
        eta_a, mu_a = eta[sel], mu[sel]
        mu_eta = np.maximum(np.exp(eta_a), _EPS)
        var = mu_a if theta is None else mu_a + mu_a**2 / theta[sel][:, None]
        z = eta_a + (ya - mu_a) / mu_eta
        wsq = np.where(wa > 0, wa * mu_eta**2 / var, 0.0)
        if outer is not None:
            a = (wsq @ outer).reshape(-1, n_par, n_par)
            rhs = (wsq * z) @ x
        else:
            xa = x[sel]
            xw = xa * wsq[:, :, None]
            a = np.matmul(xw.transpose(0, 2, 1), xa)
            rhs = np.einsum("bni,bn->bi", xw, z)
        inv = np.linalg.inv(a)
        beta = np.einsum("bij,bj->bi", inv, rhs)
        eta_new = beta @ x.T if outer is not None else np.einsum("bni,bi->bn", xa, beta)
        mu_new = np.maximum(np.exp(eta_new), _EPS)
        dev_new = deviance(ya, mu_new, wa, active)
        coef[sel], eta[sel], mu[sel] = beta, eta_new, mu_new
        w_last[sel], cov[sel], dev[sel] = wsq, inv, dev_new
        iters[sel] = it
        done = np.abs(dev_new - devold[sel]) / (np.abs(dev_new) + 0.1) < epsilon
        converged[active[done]] = True
        devold[sel] = dev_new
        active = active[~done]
    n_ok = (wt > 0).sum(axis=1)
    return GlmBatch(
        coef=coef,
        mu=mu,
        eta=eta,
        weights=w_last,
        cov_unscaled=cov,
        deviance=dev,
        converged=converged,
        iterations=iters,
        df_residual=(n_ok - n_par).astype(np.float64),
    )
