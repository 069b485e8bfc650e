"""Turning scored pairs into decisions: one-to-one assignment and clusters of persons.

Greedy best-first assignment is the rule anonlink uses for two deduplicated sources; it is
a few lines over sorted arrays. Clusters are connected components (scipy.sparse.csgraph).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def greedy_one_to_one(
    left: NDArray[np.int64], right: NDArray[np.int64], score: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """Mask of pairs kept when each left and right record may be used once, best first.

    >>> greedy_one_to_one(np.array([0, 0, 1]), np.array([0, 1, 0]), np.array([0.9, 0.8, 0.7]))
    array([ True, False, False])
    """
    order = np.argsort(-score, kind="stable")
    used_l: set[int] = set()
    used_r: set[int] = set()
    keep = np.zeros(score.shape[0], dtype=bool)
    for idx in order.tolist():
        a, b = int(left[idx]), int(right[idx])
        if a in used_l or b in used_r:
            continue
        used_l.add(a)
        used_r.add(b)
        keep[idx] = True
    return keep


def connected_clusters(
    n: int, left: NDArray[np.int64], right: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Cluster label per record (0..n-1) from matched pairs, by connected components.

    >>> connected_clusters(4, np.array([0, 2]), np.array([1, 3])).tolist()
    [0, 0, 1, 1]
    """
    graph = coo_matrix((np.ones(left.shape[0]), (left, right)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, dtype=np.int64)


def pairs_within_clusters(labels: NDArray[np.int64]) -> set[tuple[int, int]]:
    """All unordered record pairs (i < j) that share a cluster label."""
    out: set[tuple[int, int]] = set()
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    bounds = np.flatnonzero(np.diff(sorted_labels)) + 1
    for group in np.split(order, bounds):
        members = sorted(group.tolist())
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                out.add((a, b))
    return out
