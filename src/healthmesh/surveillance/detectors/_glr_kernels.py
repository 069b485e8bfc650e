"""Compiled (numba) negative binomial GLR chart: a line-by-line port of the C routine
``glr_nb_window`` of R ``surveillance`` (``M = -1``, ``Mtilde = 1``, ``dir = inc``).

The chart is O(n^3) per series (a Newton search for every window ``k..n``), which R runs in
C; pure numpy cannot keep the C code's warm-started sequential search without a Python loop
per window, so this kernel is compiled. It runs the chart with R's restart after each alarm.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _segment(x: FloatArray, mu0: FloatArray, alpha: float, c_arl: float,
             out: FloatArray) -> int:  # pragma: no cover - compiled
    lx = x.size
    for n in range(lx):
        max_glr = -1e99
        kappa_ml = 0.5
        for k in range(0, n + 1):
            kappa_old = 0.4
            kappa_new = kappa_ml
            it = 0
            while kappa_new > -18 and abs(kappa_new - kappa_old) > 1e-6 and it < 1000:
                it += 1
                kappa_old = kappa_new
                ek = math.exp(kappa_old)
                score = 0.0
                fisher = 0.0
                for i in range(k, n + 1):
                    score += (x[i] - ek * mu0[i]) / (1 + alpha * ek * mu0[i])
                for i in range(k, n + 1):
                    fisher += mu0[i] * (alpha * x[i] + 1) / (1 + alpha * ek * mu0[i]) ** 2
                kappa_new = kappa_old + score / (ek * fisher)
            kappa_ml = max(0.0, kappa_new) if not math.isnan(kappa_new) else 0.0
            lnk = 0.0
            ek = math.exp(kappa_ml)
            for i in range(k, n + 1):
                lnk += kappa_ml * x[i] + (x[i] + 1 / alpha) * math.log(
                    (1 + alpha * mu0[i]) / (1 + alpha * mu0[i] * ek))
            if lnk > max_glr:
                max_glr = lnk
        out[n] = max_glr
        if max_glr >= c_arl:
            return n
    return -1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def nb_chart(x: FloatArray, mu0: FloatArray, alpha: float,
             c_arl: float) -> tuple[FloatArray, npt.NDArray[np.bool_]]:  # pragma: no cover
    """GLR statistic and alarms of one series, restarting after each alarm."""
    glr = np.zeros(x.size)
    alarm = np.zeros(x.size, dtype=np.bool_)
    start = 0
    while start < x.size:
        stop = _segment(x[start:], mu0[start:], alpha, c_arl, glr[start:])
        if stop < 0:
            break
        alarm[start + stop] = True
        start += stop + 1
    return glr, alarm
