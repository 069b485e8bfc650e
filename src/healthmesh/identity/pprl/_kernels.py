"""Compiled Dice kernels (numba): popcount of AND over uint64 words, parallel over rows/pairs.

numpy's ``bitwise_count`` path in :mod:`.similarity` materialises the AND of every pair and
is memory-bound; these loops keep a pair in registers, as anonlink's C++ kernel does. The
popcount is LLVM's ``ctpop`` intrinsic (the ``popcnt`` instruction); all-pairs scoring
processes four left rows per pass over the right rows and keeps only pairs at or above the
threshold, so no dense score matrix is written.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic
from numpy.typing import NDArray


def _popcount_intrinsic(typingctx: Any, x: Any) -> Any:
    sig = types.uint64(types.uint64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        fnty = ir.FunctionType(ir.IntType(64), [ir.IntType(64)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.ctpop.i64")  # type: ignore[no-untyped-call]
        return builder.call(fn, args)

    return sig, codegen


_popcount: Any = intrinsic(_popcount_intrinsic)


@numba.njit(parallel=True, cache=True, nogil=True)
def dice_block(
    a: NDArray[np.uint64], b: NDArray[np.uint64], ca: NDArray[np.int64], cb: NDArray[np.int64]
) -> NDArray[np.float32]:
    """Dense Dice matrix of every row of ``a`` against every row of ``b``."""
    na, nb, w = a.shape[0], b.shape[0], a.shape[1]
    out = np.empty((na, nb), dtype=np.float32)
    for i in numba.prange(na):
        for j in range(nb):
            inter = np.uint64(0)
            for k in range(w):
                inter += _popcount(a[i, k] & b[j, k])
            denom = ca[i] + cb[j]
            out[i, j] = 2.0 * inter / denom if denom > 0 else 0.0
    return out


@numba.njit(inline="always")
def _keep(
    i: int, j: int, inter: np.uint64, ca: Any, cb: Any, threshold: float,
    idx: Any, val: Any, cnt: Any,
) -> None:  # fmt: skip
    denom = ca[i] + cb[j]
    if denom > 0 and 2.0 * inter >= threshold * denom:
        c = cnt[i]
        if c < idx.shape[1]:
            idx[i, c] = j
            val[i, c] = 2.0 * inter / denom
        cnt[i] = c + 1


@numba.njit(parallel=True, cache=True, nogil=True)
def dice_above(
    a: NDArray[np.uint64],
    b: NDArray[np.uint64],
    ca: NDArray[np.int64],
    cb: NDArray[np.int64],
    threshold: float,
    cap: int,
) -> tuple[NDArray[np.int32], NDArray[np.float32], NDArray[np.int64]]:
    """Per left row, up to ``cap`` right rows with Dice >= threshold (``cnt`` may exceed
    ``cap``: such rows must be redone with :func:`dice_block`)."""
    na, nb, w = a.shape[0], b.shape[0], a.shape[1]
    idx = np.empty((na, cap), dtype=np.int32)
    val = np.empty((na, cap), dtype=np.float32)
    cnt = np.zeros(na, dtype=np.int64)
    tiles = (na + 3) // 4
    for t in numba.prange(tiles):
        i0 = t * 4
        if i0 + 4 <= na:
            for j in range(nb):
                s0 = np.uint64(0)
                s1 = np.uint64(0)
                s2 = np.uint64(0)
                s3 = np.uint64(0)
                for k in range(w):
                    x = b[j, k]
                    s0 += _popcount(a[i0, k] & x)
                    s1 += _popcount(a[i0 + 1, k] & x)
                    s2 += _popcount(a[i0 + 2, k] & x)
                    s3 += _popcount(a[i0 + 3, k] & x)
                _keep(i0, j, s0, ca, cb, threshold, idx, val, cnt)
                _keep(i0 + 1, j, s1, ca, cb, threshold, idx, val, cnt)
                _keep(i0 + 2, j, s2, ca, cb, threshold, idx, val, cnt)
                _keep(i0 + 3, j, s3, ca, cb, threshold, idx, val, cnt)
        else:
            for i in range(i0, na):
                for j in range(nb):
                    s = np.uint64(0)
                    for k in range(w):
                        s += _popcount(a[i, k] & b[j, k])
                    _keep(i, j, s, ca, cb, threshold, idx, val, cnt)
    return idx, val, cnt


@numba.njit(parallel=True, cache=True, nogil=True)
def dice_pairs(
    a: NDArray[np.uint64],
    b: NDArray[np.uint64],
    ia: NDArray[np.int64],
    ib: NDArray[np.int64],
    ca: NDArray[np.int64],
    cb: NDArray[np.int64],
) -> NDArray[np.float32]:
    """Dice of the listed pairs."""
    n, w = ia.shape[0], a.shape[1]
    out = np.empty(n, dtype=np.float32)
    for p in numba.prange(n):
        i, j = ia[p], ib[p]
        inter = np.uint64(0)
        for k in range(w):
            inter += _popcount(a[i, k] & b[j, k])
        denom = ca[i] + cb[j]
        out[p] = 2.0 * inter / denom if denom > 0 else 0.0
    return out
