"""The hub-side PPRL linker: encodings in, links out; it never sees plaintext.

Candidates come from keyed blocking tokens (or all pairs for small tables), are scored by
Dice on the CLKs plus a bonus when both keyed identity tokens exist and agree, thresholded
without labels (:mod:`.threshold`) and resolved one-to-one, best first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from healthmesh.identity.engine.clustering import greedy_one_to_one
from healthmesh.identity.pprl.blocking import candidate_pairs
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
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32], int]:
    """Candidate pairs with score >= ``floor``: all pairs when small or unblocked, else blocked.

    Returns (left, right, score, number of candidates compared).
    """
    wa, wb = as_words(a.clks), as_words(b.clks)
    blocked = a.blocking.shape[1] > 0 and (len(a) * len(b) > ALL_PAIRS_LIMIT or a.id_tokens.any())
    if not blocked:
        ia, ib, dice = dice_all_pairs(wa, wb, floor)
        n_cand = len(a) * len(b)
    else:
        ta = np.column_stack([a.blocking, a.id_tokens])
        tb = np.column_stack([b.blocking, b.id_tokens])
        ia_all, ib_all = candidate_pairs(ta, tb)
        n_cand = int(ia_all.shape[0])
        ca, cb = popcounts(wa), popcounts(wb)
        keep_a, keep_b, keep_s = [], [], []
        for s in range(0, n_cand, chunk):
            sa, sb = ia_all[s : s + chunk], ib_all[s : s + chunk]
            d = dice_pairs(wa, wb, sa, sb, counts_a=ca, counts_b=cb)
            d = d + _bonus(a, b, sa, sb, id_bonus)
            m = d >= floor
            keep_a.append(sa[m])
            keep_b.append(sb[m])
            keep_s.append(d[m])
        ia = np.concatenate(keep_a) if keep_a else np.zeros(0, np.int64)
        ib = np.concatenate(keep_b) if keep_b else np.zeros(0, np.int64)
        dice = np.concatenate(keep_s) if keep_s else np.zeros(0, np.float32)
        return ia, ib, dice.astype(np.float32), n_cand
    return ia, ib, (dice + _bonus(a, b, ia, ib, id_bonus)).astype(np.float32), n_cand


def _bonus(
    a: EncodedTable, b: EncodedTable, ia: NDArray[np.int64], ib: NDArray[np.int64], id_bonus: float
) -> NDArray[np.float32]:
    ta, tb = a.id_tokens[ia], b.id_tokens[ib]
    agree = (ta != 0) & (ta == tb)
    return np.where(agree, np.float32(id_bonus), np.float32(0.0)).astype(np.float32)


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
