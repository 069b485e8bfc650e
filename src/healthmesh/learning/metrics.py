"""Evaluation metrics computed at a node on its own test rows: accuracy and Harrell's C-index.

The concordance index is written here (a dozen lines of numpy) because lifelines is not a
dependency; it follows lifelines' ``concordance_index(T, predicted, E)`` conventions: a pair
is comparable when the earlier time is an event (a death tied in time with a censoring counts,
the censored subject having survived at least as long), tied predictions count one half.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from healthmesh.errors import InvalidInput

FloatArray = npt.NDArray[np.float64]


def accuracy(logits: FloatArray, y: FloatArray) -> float:
    """Share of rows whose predicted class (probability > 0.5, i.e. logit > 0) equals ``y``."""
    if len(y) == 0:
        raise InvalidInput("accuracy of an empty test set")
    return float(np.mean((logits > 0).astype(np.float64) == y))


def concordance_index(time: FloatArray, predicted: FloatArray, event: FloatArray) -> float:
    """Harrell's C: the share of comparable pairs whose ``predicted`` survival ranks agree.

    ``predicted`` is higher for longer expected survival (pass ``-risk_score``).

    >>> concordance_index(np.array([1., 2., 3.]), np.array([1., 2., 3.]), np.array([1., 1., 1.]))
    1.0
    """
    t, p, e = (np.asarray(a, dtype=np.float64) for a in (time, predicted, event))
    if not (len(t) == len(p) == len(e)):
        raise InvalidInput("time, predicted and event must have the same length")
    ti, tj = t[:, None], t[None, :]
    comparable = (e[:, None] == 1) & ((ti < tj) | ((ti == tj) & (e[None, :] == 0)))
    n = comparable.sum()
    if n == 0:
        raise InvalidInput("no comparable pairs: the C-index is undefined")
    pi, pj = p[:, None], p[None, :]
    score = np.where(pi < pj, 1.0, np.where(pi == pj, 0.5, 0.0))
    return float((score * comparable).sum() / n)
