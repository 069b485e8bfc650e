"""Keyed blocking for PPRL: nodes send HMAC tokens of coarse values, the hub joins on them.

A token is the first 8 bytes of HMAC-SHA256(project secret, rule name + value), so the hub
sees only equality between records, per rule. Rules combine attributes (e.g. surname +
birth year) so that token frequencies are flat. Candidate pairs are produced per rule by
sorting both sides on the token and expanding equal runs, capped per block.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

MISSING = np.uint64(0)


def blocking_tokens(
    secret: bytes, rules: Sequence[tuple[str, ...]], records: Sequence[Mapping[str, str | None]]
) -> NDArray[np.uint64]:
    """(records, rules) matrix of keyed tokens; 0 where a rule's value is missing."""
    key = hmac.digest(secret, b"blocking", hashlib.sha256)
    out = np.zeros((len(records), len(rules)), dtype=np.uint64)
    for j, rule in enumerate(rules):
        prefix = ("|".join(rule) + "=").encode()
        cache: dict[str, int] = {}
        for i, rec in enumerate(records):
            parts = [rec.get(c) for c in rule]
            if not all(parts):
                continue
            value = "\x1f".join(str(p) for p in parts)
            tok = cache.get(value)
            if tok is None:
                tok = (
                    int.from_bytes(
                        hmac.digest(key, prefix + value.encode(), hashlib.sha256)[:8], "big"
                    )
                    or 1
                )
                cache[value] = tok
            out[i, j] = tok
    return out


def candidate_pairs(
    tokens_a: NDArray[np.uint64], tokens_b: NDArray[np.uint64], *, max_block: int = 250_000
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Unique (index a, index b) pairs that share a token under at least one rule.

    Blocks whose product exceeds ``max_block`` pairs are skipped (they carry no signal).
    """
    keys: list[NDArray[np.int64]] = []
    width = np.int64(max(tokens_b.shape[0], 1))
    for j in range(tokens_a.shape[1]):
        ia, ib = rule_pairs(tokens_a[:, j], tokens_b[:, j], max_block)
        keys.append(ia * width + ib)
    if not keys:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    flat = np.unique(np.concatenate(keys))
    return flat // width, flat % width


def rule_pairs(
    ta: NDArray[np.uint64], tb: NDArray[np.uint64], max_block: int = 250_000
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Pairs (index a, index b) with equal non-missing tokens under one rule."""
    parts = list(iter_rule_pairs(ta, tb, max_block))
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def iter_rule_pairs(
    ta: NDArray[np.uint64],
    tb: NDArray[np.uint64],
    max_block: int = 250_000,
    batch: int = 8_000_000,
) -> Iterator[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """Like :func:`rule_pairs`, in batches of about ``batch`` pairs (whole blocks each), so
    memory stays bounded however many pairs a rule produces."""
    va, vb = np.flatnonzero(ta != MISSING), np.flatnonzero(tb != MISSING)
    oa, ob = va[np.argsort(ta[va], kind="stable")], vb[np.argsort(tb[vb], kind="stable")]
    sa, sb = ta[oa], tb[ob]
    ua, starts_a, counts_a = np.unique(sa, return_index=True, return_counts=True)
    ub, starts_b, counts_b = np.unique(sb, return_index=True, return_counts=True)
    _, pa, pb = np.intersect1d(ua, ub, assume_unique=True, return_indices=True)
    ca, cb = counts_a[pa], counts_b[pb]
    ok = ca * cb <= max_block
    ca, cb, st_a, st_b = ca[ok], cb[ok], starts_a[pa][ok], starts_b[pb][ok]
    sizes = ca * cb
    if sizes.size == 0:
        return
    group = np.cumsum(sizes) // max(batch, 1)
    bounds = np.r_[0, np.flatnonzero(np.diff(group)) + 1, sizes.size]
    for lo, hi in itertools.pairwise(bounds.tolist()):
        sz = sizes[lo:hi]
        total = int(sz.sum())
        if total == 0:
            continue
        block = np.repeat(np.arange(lo, hi), sz)
        offset = np.arange(total) - np.repeat(np.cumsum(sz) - sz, sz)
        ra = st_a[block] + offset // cb[block]
        rb = st_b[block] + offset % cb[block]
        yield oa[ra].astype(np.int64), ob[rb].astype(np.int64)
