"""Scalar exp-based functions written so that LLVM vectorises the loops that call them.

Numba lowers ``math.exp``/``math.tanh`` to libm calls: 8-21 ns per element and no SIMD
(without SVML). These use only +, *, /, floor, compares and an int-to-float bit cast, so a
loop over them becomes AVX code (about 1-2 ns per element here; see
the former benchmarks/numba_step.py; now `chainrule bench --impls numba`). They compute in float64 whatever the array dtype.

``exp(y) = 2^n e^r`` with ``n = round(y / ln 2)``, ``|r| <= ln(2)/2`` (Cody-Waite: ``ln 2``
split into a high part exact in products with ``n`` and a low part), ``e^r - 1`` by its
Taylor series to ``r^13`` (truncation error below 2^-56 relative on that interval), and
``2^n`` built from its IEEE bits. Keeping ``e^r - 1`` separate gives ``expm1`` without
cancellation, which ``tanh`` needs near 0. Accuracy: a few ulp (tests compare with NumPy).

Only ``y <= 0`` is needed (``sigmoid``, ``tanh`` and ``softmax`` are written with
``exp(-|z|)``): ``y < -708`` is raised to -708, so results below ``e^-708 ~ 3e-308`` come
out as about 3e-308 instead of smaller or 0 (an absolute error below 3.3e-308). NaN passes
through.
"""

from __future__ import annotations

import math

import numpy as np

from ._config import inline

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01   # 0x3fe62e42fee00000: n * LN2_HI is exact for |n| < 2^11
LN2_LO = 1.90821492927058770002e-10
Y_MIN = -708.0


@inline
def exp_parts(y):
    """``(s, q)`` with ``e^y = s (1 + q)``, ``s = 2^n`` and ``q = e^r - 1``; for ``y <= 0``."""
    y = Y_MIN if y < Y_MIN else y
    n = np.floor(y * LOG2E + 0.5)
    n = 0.0 if n != n else n  # NaN: keep the bit cast defined; q carries the NaN
    r = (y - n * LN2_HI) - n * LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    q = r + r * (r * p)
    s = np.int64((np.int64(n) + 1023) << 52).view(np.float64)
    return s, q


@inline
def exp_neg(y):
    """``e^y`` for ``y <= 0``."""
    s, q = exp_parts(y)
    return s + s * q


@inline
def sigmoid(z):
    """``1 / (1 + e^-z)``, from ``e = e^-|z|`` so the exponential never overflows."""
    e = exp_neg(-abs(z))
    h = 1.0 / (1.0 + e)
    return h if z >= 0 else e * h


@inline
def tanh(z):
    """``tanh(z) = -expm1(-2|z|) / (2 + expm1(-2|z|))`` with the sign of z."""
    a = abs(z)
    a = 20.0 if a > 20.0 else a  # tanh(20) rounds to 1 in float64
    s, q = exp_parts(-2.0 * a)
    em = s * q + (s - 1.0)
    return math.copysign(-em / (2.0 + em), z)


SQRT2 = 1.4142135623730951
EXPONENT_BIAS = 1023
MANTISSA_BITS = np.int64(0x000FFFFFFFFFFFFF)
ONE_BITS = np.int64(0x3FF0000000000000)


@inline
def log_positive(a):
    """``log(a)`` for a normal ``a > 0`` (the cost's clipped probabilities); NaN passes through.

    ``a = 2^e m`` from the IEEE bits with ``m`` in ``[sqrt(1/2), sqrt(2))``; then
    ``log(m) = 2 atanh(s) = 2 (s + s^3/3 + ... + s^21/21)`` with ``s = (m - 1)/(m + 1)``,
    ``|s| <= 0.172`` (the next term is below 2^-55 relative), and ``log(a) = e ln 2 + log(m)``
    with ``ln 2`` split as in :func:`exp_parts`.
    """
    x = np.float64(a)
    bits = x.view(np.int64)
    e = (bits >> 52) - EXPONENT_BIAS
    m = np.int64((bits & MANTISSA_BITS) | ONE_BITS).view(np.float64)
    big = m > SQRT2
    m = m * 0.5 if big else m
    k = np.float64(e + 1 if big else e)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    p = 1.0 / 21.0
    p = p * z + 1.0 / 19.0
    p = p * z + 1.0 / 17.0
    p = p * z + 1.0 / 15.0
    p = p * z + 1.0 / 13.0
    p = p * z + 1.0 / 11.0
    p = p * z + 1.0 / 9.0
    p = p * z + 1.0 / 7.0
    p = p * z + 1.0 / 5.0
    p = p * z + 1.0 / 3.0
    log_m = 2.0 * s + 2.0 * s * (z * p)
    log_a = k * LN2_HI + (k * LN2_LO + log_m)
    return log_a if x == x else x  # NaN in, NaN out
