"""Linking many institutions' field-group encodings at the hub into persons (no plaintext).

For every pair of institutions the hub takes the candidate pairs that share a keyed
blocking or identity token and scores them (:mod:`.fs_scoring`). One Fellegi-Sunter model is
fitted by EM on all pairs of institutions together (plus random pairs of each), so sparse
sources (pharmacies: name and phone) and full ones share what each field group says: u from
random pairs, m by EM on the candidates. The prior of a pair of institutions is over *all*
their record pairs (as Splink's "probability two random records match"): the expected number
of matches among its candidates under the fitted model, divided by ``n_a * n_b``; u for
scoring comes from random pairs alone (see :func:`.fs_scoring.fit`). A pair
links when its posterior is >= 0.5; within one pair of institutions each record links at
most once (each institution holds a person once), best first; persons are the connected
components of the links.

Term-frequency adjustment (as Splink does for names): exact agreement on a common name says
less than on a rare one. The hub counts each keyed (surname, given) blocking token over all
records — equality classes it already sees, never the names — and, for a pair agreeing
exactly on the name group with equal tokens, replaces the average u of that level by the
token's frequency.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from healthmesh.identity.engine.clustering import connected_clusters, greedy_one_to_one
from healthmesh.identity.engine.fellegi_sunter import FSParameters
from healthmesh.identity.pprl.encode import EncodedTable
from healthmesh.identity.pprl.fs_scoring import (
    SegmentView,
    blocked_pairs,
    comparison_vectors,
    fit,
    random_pairs,
)
from healthmesh.identity.pprl.groups import GroupSchema


@dataclass
class RegionLinks:
    """The persons found: one cluster label per record, records ordered institution by
    institution as given (``keys``: (institution, local id) of each record)."""

    keys: list[tuple[str, str]]
    labels: NDArray[np.int64]
    params: FSParameters
    candidates: int
    links: int

    def clusters(self) -> dict[tuple[str, str], int]:
        """(institution, local id) -> cluster label."""
        return {k: int(c) for k, c in zip(self.keys, self.labels.tolist(), strict=True)}


def link_region(
    tables: Mapping[str, EncodedTable],
    schema: GroupSchema,
    *,
    probability: float = 0.5,
    random_per_pair: int = 20_000,
    seed: int = 1,
    tf_adjust: Mapping[int, int] | None = None,
) -> RegionLinks:
    """Cluster the records of all institutions into persons.

    ``tf_adjust`` maps a group index to the blocking rule whose token is that group's exact
    value (e.g. the name group -> the (surname, given) rule) for term-frequency adjustment.

    Example:
        >>> from healthmesh.identity.pprl.groups import chinese_groups
        >>> link_region({}, chinese_groups()).labels.size
        0
    """
    names = list(tables)
    offsets = dict(
        zip(names, np.cumsum([0, *(len(tables[n]) for n in names)]).tolist(), strict=False)
    )
    views = {n: SegmentView(tables[n], schema) for n in names}
    rng = np.random.default_rng(seed)
    scored: list[tuple[str, str, NDArray[np.int64], NDArray[np.int64], NDArray[np.int8]]] = []
    rand: list[NDArray[np.int8]] = []
    for a, b in itertools.combinations(names, 2):
        ia, ib = blocked_pairs(tables[a], tables[b])
        gamma = comparison_vectors(views[a], views[b], ia, ib)
        scored.append((a, b, ia, ib, gamma))
        ra, rb = random_pairs(len(tables[a]), len(tables[b]), random_per_pair, rng)
        rand.append(comparison_vectors(views[a], views[b], ra, rb))
    width = len(schema.groups) + 1
    keys = [(n, str(x)) for n in names for x in tables[n].ids.tolist()]
    if not scored:
        return RegionLinks(
            keys, np.arange(len(keys), dtype=np.int64), FSParameters([], [], 0.0), 0, 0
        )
    fitted, params = fit(
        np.concatenate([g for *_, g in scored]) if scored else np.zeros((0, width), np.int8),
        np.concatenate(rand) if rand else np.zeros((0, width), np.int8),
        schema,
    )
    freqs = {
        g: _token_frequencies([tables[n].blocking[:, rule] for n in names])
        for g, rule in (tf_adjust or {}).items()
    }
    cut = float(np.log2(probability / (1.0 - probability)))
    left: list[NDArray[np.int64]] = []
    right: list[NDArray[np.int64]] = []
    n_cand = 0
    for a, b, ia, ib, gamma in scored:
        n_cand += int(ia.shape[0])
        if gamma.shape[0] == 0:
            continue
        expected = float(fitted.probability(gamma).sum())
        prior = min(max(expected, 0.5) / (len(tables[a]) * len(tables[b])), 0.5)
        weight = params.match_weight(gamma) + float(
            np.log2(prior / (1 - prior)) - np.log2(params.prior / (1 - params.prior))
        )
        for g, rule in (tf_adjust or {}).items():
            weight += _tf_adjustment(
                params,
                g,
                gamma[:, g],
                tables[a].blocking[ia, rule],
                tables[b].blocking[ib, rule],
                freqs[g],
            )
        idx = np.flatnonzero(weight >= cut)
        keep = greedy_one_to_one(ia[idx], ib[idx], weight[idx])
        left.append(ia[idx[keep]] + offsets[a])
        right.append(ib[idx[keep]] + offsets[b])
    la = np.concatenate(left) if left else np.zeros(0, np.int64)
    rb_ = np.concatenate(right) if right else np.zeros(0, np.int64)
    labels = connected_clusters(len(keys), la, rb_)
    return RegionLinks(keys, labels, params, n_cand, int(la.shape[0]))


def _token_frequencies(
    columns: list[NDArray[np.uint64]],
) -> tuple[NDArray[np.uint64], NDArray[np.float64]]:
    """Sorted distinct non-missing tokens and their share of all records with a token."""
    tokens = np.concatenate(columns) if columns else np.zeros(0, np.uint64)
    tokens = tokens[tokens != 0]
    values, counts = np.unique(tokens, return_counts=True)
    return values, counts / max(int(tokens.shape[0]), 1)


def _tf_adjustment(
    params: FSParameters,
    group: int,
    level: NDArray[np.int8],
    tok_a: NDArray[np.uint64],
    tok_b: NDArray[np.uint64],
    freqs: tuple[NDArray[np.uint64], NDArray[np.float64]],
) -> NDArray[np.float64]:
    """log2(u of the exact level / frequency of the shared value) where it applies, else 0."""
    values, share = freqs
    top = params.u[group].shape[0] - 1
    out = np.zeros(level.shape[0])
    applies = (level == top) & (tok_a == tok_b) & (tok_a != 0)
    if not applies.any() or values.size == 0:
        return out
    pos = np.clip(np.searchsorted(values, tok_a[applies]), 0, values.size - 1)
    found = values[pos] == tok_a[applies]
    u_value = np.where(found, share[pos], 1.0 / max(values.size, 1))
    u_value = np.maximum(u_value, float(share.min()))
    out[np.flatnonzero(applies)] = np.log2(float(params.u[group][top]) / u_value)
    return out
