r"""Counter-based dropout masks: Philox4x32-10 (Salmon et al. 2011, Random123), in NumPy.

The same generator is written once per backend (this vectorised one, ``chainrule.core.philox``
for numba, ``csrc/`` for C); every backend draws bit-identical masks because a mask entry
is a pure function of (key, layer, batch, unit, position), not of a generator's state.

Philox4x32-10 maps a 128-bit counter ``(c0, c1, c2, c3)`` and a 64-bit key ``(k0, k1)`` to
four 32-bit words by ten rounds of

    hi0, lo0 = mulhilo(0xD2511F53, c0);  hi1, lo1 = mulhilo(0xCD9E8D57, c2)
    (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)

with the key bumped by the Weyl constants ``(0x9E3779B9, 0xBB67AE85)`` between rounds.

The dropout mask (the shared engine spec): for hidden layer ``l`` (1-based) and batch
``k`` of an epoch with 64-bit key ``key`` (``k0`` = low, ``k1`` = high 32 bits), the entry of
unit ``i`` and batch position ``j`` (``0 <= j < mb``), with ``q = i mb + j``, is word
``q & 3`` of ``philox((q >> 2, l, k, 0), (k0, k1))``; ``u = (word >> 8) 2^-24`` (exact in
float32 and float64); the unit is kept when ``u < p`` (compared in float64) and the
scaled mask is ``keep * (1/p)`` with ``1/p`` computed in the network dtype
(``dtype(1) / dtype(p)``, as the course's ``D / keep_prob``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["philox4x32", "uniform24", "dropout_keep", "dropout_mask", "split_key"]

M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
W0, W1 = 0x9E3779B9, 0xBB67AE85
ROUNDS = 10
_LO = np.uint64(0xFFFFFFFF)
_32 = np.uint64(32)


def philox4x32(counter, key):
    """Philox4x32-10 of counters ``(..., 4)`` (uint32 words) under ``key = (k0, k1)``.

    Returns the ``(..., 4)`` uint32 output words. Vectorised over the leading axes.
    """
    c = np.asarray(counter, dtype=np.uint64) & _LO
    c0, c1, c2, c3 = (c[..., i].copy() for i in range(4))
    k0, k1 = int(key[0]) & 0xFFFFFFFF, int(key[1]) & 0xFFFFFFFF
    for r in range(ROUNDS):
        p0 = M0 * c0  # < 2^64: the 32x32 -> 64-bit product is exact in uint64
        p1 = M1 * c2
        c0, c1, c2, c3 = ((p1 >> _32) ^ c1 ^ np.uint64(k0), p1 & _LO,
                          (p0 >> _32) ^ c3 ^ np.uint64(k1), p0 & _LO)
        if r < ROUNDS - 1:
            k0, k1 = (k0 + W0) & 0xFFFFFFFF, (k1 + W1) & 0xFFFFFFFF
    return np.stack([c0, c1, c2, c3], axis=-1).astype(np.uint32)


def split_key(key):
    """``(k0, k1)``: the low and high 32 bits of a 64-bit key (an int, int64 or uint64)."""
    key = int(key) & 0xFFFFFFFFFFFFFFFF
    return key & 0xFFFFFFFF, key >> 32


def uniform24(key, layer, batch, size):
    """The ``size`` uniforms ``u_q = (word_q >> 8) 2^-24`` (float64) of ``(layer, batch)``."""
    n_blocks = (size + 3) // 4
    counter = np.zeros((n_blocks, 4), dtype=np.uint64)
    counter[:, 0] = np.arange(n_blocks, dtype=np.uint64)
    counter[:, 1] = int(layer) & 0xFFFFFFFF
    counter[:, 2] = int(batch) & 0xFFFFFFFF
    words = philox4x32(counter, split_key(key)).reshape(-1)[:size]
    return (words >> np.uint32(8)).astype(np.float64) * 2.0 ** -24


def dropout_keep(key, layer, batch, n, mb, p):
    """The boolean keep pattern ``(n, mb)`` of hidden layer ``layer``, batch ``batch``."""
    return (uniform24(key, layer, batch, n * mb) < float(p)).reshape(n, mb)


def dropout_mask(key, layer, batch, n, mb, p, dtype):
    """The scaled inverted-dropout mask ``D / p`` of shape ``(n, mb)`` in ``dtype``.

    Examples
    --------
    >>> dropout_mask(7, 1, 0, 2, 3, 0.5, np.float64)
    array([[2., 2., 0.],
           [0., 2., 2.]])
    """
    dtype = np.dtype(dtype)
    keep = dropout_keep(key, layer, batch, n, mb, p)
    return keep.astype(dtype) * (dtype.type(1) / dtype.type(p))
