"""Compiled Dice kernels (numba): popcount of AND over uint64 words, parallel over rows/pairs.

numpy's ``bitwise_count`` path in :mod:`.similarity` materialises the AND of every pair and
is memory-bound; these loops keep a pair in registers, which is what anonlink's C++ kernel
does. The SWAR popcount below is compiled by LLVM to the ``popcnt`` instruction.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)
_S1, _S2, _S4, _S56 = np.uint64(1), np.uint64(2), np.uint64(4), np.uint64(56)


@numba.njit(inline="always")
def _popcount(x: np.uint64) -> np.uint64:
    x = x - ((x >> _S1) & _M1)
    x = (x & _M2) + ((x >> _S2) & _M2)
    x = (x + (x >> _S4)) & _M4
    return (x * _H01) >> _S56


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
