"""Hub-side scoring of field-group encodings by Fellegi-Sunter, fitted by EM (no labels).

Each candidate pair gets a comparison vector: per group (:mod:`.groups`) the Dice of the two
segments cut into levels (``-1`` when the group is missing on either side), and the keyed
identity tokens (agree / differ, ``-1`` unless both exist). EM (the plaintext engine's
:func:`~healthmesh.identity.engine.fellegi_sunter.fit_em`) learns how much each level says,
on the blocked candidates plus random pairs (so non-matches stay identifiable when blocks
are tight); a pair links when it is more likely a match than not (posterior >= 0.5).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from healthmesh.identity.engine.fellegi_sunter import FSParameters, fit_em
from healthmesh.identity.pprl.blocking import candidate_pairs
from healthmesh.identity.pprl.encode import EncodedTable
from healthmesh.identity.pprl.groups import GroupSchema, split_segments
from healthmesh.identity.pprl.similarity import as_words, dice_pairs, popcounts

#: Dice cut points between levels of one group: unlike, some agreement, close, equal.
#: Equal values give Dice 1.0; one changed token of ~10 about 0.9; unrelated values ~0.5.
DICE_LEVELS: tuple[float, ...] = (0.7, 0.85, 0.985)


class SegmentView:
    """An encoded table's segments as uint64 words, with their popcounts (0 = missing)."""

    def __init__(self, table: EncodedTable, schema: GroupSchema) -> None:
        segments = split_segments(table.clks, schema)
        self.words = [as_words(s) for s in segments]
        self.counts = [popcounts(w) for w in self.words]
        self.id_tokens = table.id_tokens


def levels(schema: GroupSchema) -> list[int]:
    """Number of levels per comparison: one per group, then the identity token."""
    return [len(DICE_LEVELS) + 1] * len(schema.groups) + [2]


def comparison_vectors(
    a: SegmentView, b: SegmentView, ia: NDArray[np.int64], ib: NDArray[np.int64]
) -> NDArray[np.int8]:
    """(pairs, groups + 1) int8 levels of the pairs (a[ia], b[ib]); ``-1`` for missing."""
    cols = []
    for wa, wb, ca, cb in zip(a.words, b.words, a.counts, b.counts, strict=True):
        dice = dice_pairs(wa, wb, ia, ib, counts_a=ca, counts_b=cb)
        level = np.searchsorted(np.asarray(DICE_LEVELS, np.float32), dice, side="right")
        present = (ca[ia] > 0) & (cb[ib] > 0)
        cols.append(np.where(present, level, -1).astype(np.int8))
    ta, tb = a.id_tokens[ia], b.id_tokens[ib]
    both = (ta != 0) & (tb != 0)
    cols.append(np.where(both, (ta == tb).astype(np.int8), -1).astype(np.int8))
    return np.column_stack(cols).astype(np.int8) if cols else np.zeros((ia.shape[0], 0), np.int8)


def blocked_pairs(
    a: EncodedTable, b: EncodedTable, *, max_block: int = 250_000
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Candidate pairs sharing a keyed blocking token or the keyed identity token."""
    ta = np.column_stack([a.blocking, a.id_tokens])
    tb = np.column_stack([b.blocking, b.id_tokens])
    return candidate_pairs(ta, tb, max_block=max_block)


def random_pairs(
    n_a: int, n_b: int, count: int, rng: np.random.Generator
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """``count`` random (index a, index b) pairs (almost all non-matches)."""
    if n_a == 0 or n_b == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return rng.integers(0, n_a, count), rng.integers(0, n_b, count)


def u_from_random(
    gamma: NDArray[np.int8], schema: GroupSchema, weights: NDArray[np.float64] | None = None
) -> list[NDArray[np.float64]]:
    """u probabilities (level shares among non-matches) from random pairs, which are almost
    all non-matches (Splink's ``estimate_u_using_random_sampling``); missing levels ignored.

    ``weights`` (each pair's probability of being a non-match) removes the few matches a
    random sample holds: unweighted, they put u of an exact phone or identity number at
    about the match rate itself, so such agreement could never outweigh the prior.
    """
    out = []
    w = np.ones(gamma.shape[0]) if weights is None else weights
    for k, n in enumerate(levels(schema)):
        col = gamma[:, k].astype(np.int64) if gamma.shape[0] else np.zeros(0, np.int64)
        present = col >= 0
        counts = np.bincount(col[present], weights=w[present], minlength=n)[:n]
        share = counts / max(float(counts.sum()), 1.0)
        out.append(np.maximum(share, 1e-6))
    return out


def fit(
    candidates: NDArray[np.int8], random: NDArray[np.int8], schema: GroupSchema
) -> tuple[FSParameters, FSParameters]:
    """(fitted, scoring) models. ``fitted``: m, u and prior by EM on the candidates plus the
    random pairs (it gives each candidate's posterior). ``scoring``: the same m with u from
    the random pairs alone — candidates are blocked on some fields, so EM's u of those
    fields is inflated, which would undo the term-frequency adjustment; its prior is left
    to the caller (over all pairs, not over candidates)."""
    fitted = fit_em(np.concatenate([candidates, random]), levels(schema))
    non_match = 1.0 - fitted.probability(random) if random.shape[0] else None
    scoring = FSParameters(fitted.m, u_from_random(random, schema, non_match), fitted.prior)
    return fitted, scoring
