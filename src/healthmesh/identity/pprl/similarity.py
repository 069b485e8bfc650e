"""Dice similarity of packed Bloom filters: compiled kernels (numba) with a numpy reference.

Filters are viewed as rows of uint64 words; Dice = 2 |a & b| / (|a| + |b|). All-pairs
scoring works block by block so memory stays bounded; candidate-pair scoring gathers rows.
``kernel="numpy"`` selects the pure-numpy path (``np.bitwise_count``), kept as the reference
the compiled kernels are tested against. anonlink's C++ kernel is a test dependency only.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from healthmesh.identity.pprl import _kernels


def as_words(packed: NDArray[np.uint8]) -> NDArray[np.uint64]:
    """View packed filters (rows of bytes, a multiple of 8 wide) as rows of uint64 words."""
    if packed.shape[1] % 8:
        raise ValueError("filter width must be a multiple of 64 bits")
    return np.ascontiguousarray(packed).view(np.uint64)


def popcounts(words: NDArray[np.uint64]) -> NDArray[np.int64]:
    """Number of set bits per row."""
    return np.asarray(np.bitwise_count(words).sum(axis=1, dtype=np.int64), dtype=np.int64)


def dice_pairs(
    a: NDArray[np.uint64],
    b: NDArray[np.uint64],
    ia: NDArray[np.int64],
    ib: NDArray[np.int64],
    *,
    counts_a: NDArray[np.int64] | None = None,
    counts_b: NDArray[np.int64] | None = None,
    chunk: int = 1 << 20,
    kernel: str = "compiled",
) -> NDArray[np.float32]:
    """Dice coefficient of the candidate pairs (a[ia[i]], b[ib[i]])."""
    ca = popcounts(a) if counts_a is None else counts_a
    cb = popcounts(b) if counts_b is None else counts_b
    if kernel == "compiled" and ia.shape[0] >= 2048:  # below that, thread start-up dominates
        return _kernels.dice_pairs(a, b, ia.astype(np.int64), ib.astype(np.int64), ca, cb)
    out = np.empty(ia.shape[0], dtype=np.float32)
    for start in range(0, ia.shape[0], chunk):
        sa, sb = ia[start : start + chunk], ib[start : start + chunk]
        inter = np.bitwise_count(a[sa] & b[sb]).sum(axis=1, dtype=np.int64)
        denom = ca[sa] + cb[sb]
        out[start : start + chunk] = np.where(denom > 0, 2.0 * inter / np.maximum(denom, 1), 0.0)
    return out


def dice_all_pairs(
    a: NDArray[np.uint64],
    b: NDArray[np.uint64],
    threshold: float,
    *,
    block: int = 256,
    kernel: str = "compiled",
    cap: int = 64,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
    """All pairs with Dice >= ``threshold`` (no blocking), as (index a, index b, score),
    ordered by index a then index b.

    Example:
        >>> x = np.array([[0b1111], [0b0011]], dtype=np.uint64)
        >>> [round(float(s), 2) for s in dice_all_pairs(x, x, 0.6)[2]]
        [1.0, 0.67, 0.67, 1.0]
    """
    ca, cb = popcounts(a), popcounts(b)
    if kernel == "compiled":
        return _compiled_all_pairs(a, b, ca, cb, threshold, cap)
    out_a, out_b, out_s = [], [], []
    for start in range(0, a.shape[0], block):
        rows = a[start : start + block]
        inter = np.bitwise_count(rows[:, None, :] & b[None, :, :]).sum(axis=2, dtype=np.int32)
        denom = ca[start : start + block, None] + cb[None, :]
        score = (2.0 * inter / np.maximum(denom, 1)).astype(np.float32)
        ra, rb = np.nonzero(score >= threshold)
        out_a.append(ra.astype(np.int64) + start)
        out_b.append(rb.astype(np.int64))
        out_s.append(score[ra, rb])
    if not out_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(out_a), np.concatenate(out_b), np.concatenate(out_s)


def _compiled_all_pairs(
    a: NDArray[np.uint64],
    b: NDArray[np.uint64],
    ca: NDArray[np.int64],
    cb: NDArray[np.int64],
    threshold: float,
    cap: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
    idx, val, cnt = _kernels.dice_above(a, b, ca, cb, float(threshold), int(cap))
    take = np.minimum(cnt, cap)
    rows = np.repeat(np.arange(a.shape[0], dtype=np.int64), take)
    mask = np.arange(cap)[None, :] < take[:, None]
    cols = idx[mask].astype(np.int64)
    scores = val[mask]
    overflow = np.flatnonzero(cnt > cap)
    if overflow.size:  # rows with more candidates than the buffer: redo them densely
        keep = ~np.isin(rows, overflow)
        rows, cols, scores = rows[keep], cols[keep], scores[keep]
        dense = _kernels.dice_block(a[overflow], b, ca[overflow], cb)
        ra, rb = np.nonzero(dense >= np.float32(threshold))
        rows = np.concatenate([rows, overflow[ra]])
        cols = np.concatenate([cols, rb.astype(np.int64)])
        scores = np.concatenate([scores, dense[ra, rb]])
        order = np.lexsort((cols, rows))
        rows, cols, scores = rows[order], cols[order], scores[order]
    return rows, cols, scores
