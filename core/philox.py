"""Philox4x32-10 (Salmon et al. 2011, Random123) and the counter-based dropout masks.

The numba twin of ``chainrule.backends.philox`` (which documents the mask's definition); both
give bit-identical masks. All words are held in uint64 with values below 2^32, so the
32x32 -> 64-bit products of the rounds are exact.
"""

from __future__ import annotations

import numpy as np

from ._config import inline, kernel

M0 = np.uint64(0xD2511F53)
M1 = np.uint64(0xCD9E8D57)
W0 = np.uint64(0x9E3779B9)
W1 = np.uint64(0xBB67AE85)
LO32 = np.uint64(0xFFFFFFFF)
SHIFT32 = np.uint64(32)
SHIFT8 = np.uint64(8)
TWO_M24 = 2.0 ** -24


@inline
def philox4x32(c0, c1, c2, c3, k0, k1):
    """The four output words of counter ``(c0, c1, c2, c3)`` under key ``(k0, k1)``
    (uint64 holding 32-bit values)."""
    for r in range(10):
        p0 = M0 * c0
        p1 = M1 * c2
        c0, c1, c2, c3 = ((p1 >> SHIFT32) ^ c1 ^ k0, p1 & LO32,
                          (p0 >> SHIFT32) ^ c3 ^ k1, p0 & LO32)
        k0 = (k0 + W0) & LO32
        k1 = (k1 + W1) & LO32
    return c0, c1, c2, c3


@kernel
def philox4x32_block(counter, k0, k1, out):
    """``out[r] = philox(counter[r], (k0, k1))`` for the rows of ``counter`` (R, 4) uint64;
    ``out`` (R, 4) uint64. For the known-answer tests."""
    for r in range(counter.shape[0]):
        o0, o1, o2, o3 = philox4x32(counter[r, 0], counter[r, 1], counter[r, 2],
                                    counter[r, 3], np.uint64(k0), np.uint64(k1))
        out[r, 0] = o0
        out[r, 1] = o1
        out[r, 2] = o2
        out[r, 3] = o3


@inline
def dropout_fill(M, key, layer, batch, p, scale):
    """``M[i, j] = scale if u(q) < p else 0`` with ``q = i mb + j`` for M (n, mb): the scaled
    inverted-dropout mask of hidden ``layer`` (1-based), ``batch`` of the epoch whose
    64-bit dropout key is ``key`` (uint64). ``scale = dtype(1) / dtype(p)``."""
    n, mb = M.shape
    k0 = key & LO32
    k1 = (key >> SHIFT32) & LO32
    c1 = np.uint64(layer) & LO32
    c2 = np.uint64(batch) & LO32
    zero = np.uint64(0)
    size = n * mb
    flat = M.reshape(size)
    for blk in range((size + 3) // 4):
        o0, o1, o2, o3 = philox4x32(np.uint64(blk), c1, c2, zero, k0, k1)
        q = 4 * blk
        flat[q] = scale if np.float64(o0 >> SHIFT8) * TWO_M24 < p else 0.0
        if q + 1 < size:
            flat[q + 1] = scale if np.float64(o1 >> SHIFT8) * TWO_M24 < p else 0.0
        if q + 2 < size:
            flat[q + 2] = scale if np.float64(o2 >> SHIFT8) * TWO_M24 < p else 0.0
        if q + 3 < size:
            flat[q + 3] = scale if np.float64(o3 >> SHIFT8) * TWO_M24 < p else 0.0


@kernel
def dropout_mask(M, key, layer, batch, p, scale):
    """:func:`dropout_fill` as a kernel of its own (M (n, mb) C-contiguous)."""
    dropout_fill(M, key, layer, batch, p, scale)
