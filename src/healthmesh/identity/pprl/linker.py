"""The hub-side PPRL linker: encodings in, links out; it never sees plaintext.

Candidates come from keyed blocking tokens (or all pairs for small tables), are scored by
Dice on the CLKs plus a bonus when both keyed identity tokens exist and agree (a penalty of
the same size when both exist and differ: both passed the check digit), thresholded
without labels (:mod:`.threshold`) and resolved one-to-one, best first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from healthmesh.identity.engine.clustering import greedy_one_to_one
from healthmesh.identity.pprl.blocking import iter_rule_pairs
from healthmesh.identity.pprl.encode import EncodedTable
from healthmesh.identity.pprl.similarity import as_words, dice_all_pairs, dice_pairs, popcounts
from healthmesh.identity.pprl.threshold import ThresholdEstimate, estimate_threshold

ALL_PAIRS_LIMIT = 50_000_000


@dataclass
class PPRLResult:
    """Scored candidates, the threshold chosen and the accepted one-to-one links."""

    left: NDArray[np.int64]
    right: NDArray[np.int64]
    score: NDArray[np.float32]
    estimate: ThresholdEstimate
    accepted: NDArray[np.bool_]
    candidates: int

    def links(self, a: EncodedTable, b: EncodedTable) -> list[tuple[object, object]]:
        """Accepted links as (left id, right id)."""
        idx = np.flatnonzero(self.accepted)
        return list(
            zip(a.ids[self.left[idx]].tolist(), b.ids[self.right[idx]].tolist(), strict=True)
        )


def score_candidates(
    a: EncodedTable,
    b: EncodedTable,
    *,
    floor: float = 0.6,
    id_bonus: float = 0.2,
    chunk: int = 4_000_000,
    top_k: int = 5,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32], int]:
    """Candidate pairs with score >= ``floor``: all pairs when small or unblocked, else blocked.

    Blocked scoring streams rule by rule and keeps the ``top_k`` best candidates per left
    record, so memory follows the table sizes, not the number of candidate pairs.
    Returns (left, right, score, number of comparisons made).
    """
    wa, wb = as_words(a.clks), as_words(b.clks)
    blocked = a.blocking.shape[1] > 0 and (len(a) * len(b) > ALL_PAIRS_LIMIT or a.id_tokens.any())
    if not blocked:
        ia, ib, dice = dice_all_pairs(wa, wb, floor)
        dice = (dice + _bonus(a, b, ia, ib, id_bonus)).astype(np.float32)
        return ia, ib, dice, len(a) * len(b)
    ta = np.column_stack([a.blocking, a.id_tokens])
    tb = np.column_stack([b.blocking, b.id_tokens])
    ca, cb = popcounts(wa), popcounts(wb)
    pend_a: list[NDArray[np.int64]] = [np.zeros(0, np.int64)]
    pend_b: list[NDArray[np.int64]] = [np.zeros(0, np.int64)]
    pend_s: list[NDArray[np.float32]] = [np.zeros(0, np.float32)]
    n_cand = pending = 0
    for rule in range(ta.shape[1]):
        for sa, sb in iter_rule_pairs(ta[:, rule], tb[:, rule], batch=chunk):
            n_cand += int(sa.shape[0])
            d = dice_pairs(wa, wb, sa, sb, counts_a=ca, counts_b=cb)
            d = d + _bonus(a, b, sa, sb, id_bonus)
            m = d >= floor
            pend_a.append(sa[m])
            pend_b.append(sb[m])
            pend_s.append(d[m].astype(np.float32))
            pending += int(m.sum())
            if pending > 4 * len(a) * top_k:  # reduce now and then: bounded memory
                kept = _top_k(*_cat(pend_a, pend_b, pend_s), top_k, len(b))
                pend_a, pend_b, pend_s = [kept[0]], [kept[1]], [kept[2]]
                pending = int(kept[0].shape[0])
    kept = _top_k(*_cat(pend_a, pend_b, pend_s), top_k, len(b))
    return kept[0], kept[1], kept[2], n_cand


def _cat(
    pa: list[NDArray[np.int64]], pb: list[NDArray[np.int64]], ps: list[NDArray[np.float32]]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
    return np.concatenate(pa), np.concatenate(pb), np.concatenate(ps)


def _top_k(
    ia: NDArray[np.int64], ib: NDArray[np.int64], score: NDArray[np.float32], k: int, nb: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
    """Drop duplicate pairs and keep the ``k`` best-scored pairs of each left record."""
    _, first = np.unique(ia * max(nb, 1) + ib, return_index=True)
    ia, ib, score = ia[first], ib[first], score[first]
    by_score = np.argsort(-score, kind="stable")
    order = by_score[np.argsort(ia[by_score], kind="stable")]
    ia, ib, score = ia[order], ib[order], score[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ia)) + 1] if ia.size else np.zeros(0, np.int64)
    rank = np.arange(ia.size) - np.repeat(starts, np.diff(np.r_[starts, ia.size]))
    keep = rank < k
    return ia[keep], ib[keep], score[keep]


def _bonus(
    a: EncodedTable, b: EncodedTable, ia: NDArray[np.int64], ib: NDArray[np.int64], id_bonus: float
) -> NDArray[np.float32]:
    ta, tb = a.id_tokens[ia], b.id_tokens[ib]
    both = (ta != 0) & (tb != 0)
    # two *validated* numbers that differ are strong evidence against a match
    out = np.where(both, np.where(ta == tb, np.float32(id_bonus), np.float32(-id_bonus)), 0.0)
    return out.astype(np.float32)


def link_encoded(
    a: EncodedTable,
    b: EncodedTable,
    *,
    threshold: float | None = None,
    one_to_one: bool = True,
    id_bonus: float = 0.2,
) -> PPRLResult:
    """Link two encoded tables. ``threshold=None`` estimates it from the data (no labels).

    Example:
        >>> from healthmesh.identity.pprl.bloom import EncodingSchema, FieldEncoding
        >>> from healthmesh.identity.pprl.encode import encode_table
        >>> schema = EncodingSchema([FieldEncoding("n")])
        >>> recs = [{"id": str(i), "n": f"name{i:03d}x"} for i in range(50)]
        >>> t = encode_table(b"k" * 32, schema, recs)
        >>> len(link_encoded(t, t, threshold=0.9).links(t, t))
        50
    """
    ia, ib, score, n_cand = score_candidates(a, b, id_bonus=id_bonus)
    estimate = (
        estimate_threshold(ia, score, len(a))
        if threshold is None
        else ThresholdEstimate(threshold, float("nan"), float("nan"), float("nan"))
    )
    accepted = score >= estimate.threshold
    if one_to_one and accepted.any():
        idx = np.flatnonzero(accepted)
        keep = greedy_one_to_one(ia[idx], ib[idx], score[idx].astype(np.float64))
        accepted = np.zeros_like(accepted)
        accepted[idx[keep]] = True
    return PPRLResult(ia, ib, score, estimate, accepted, n_cand)
