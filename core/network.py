"""The backward kernels of the training engine (``train.py``) that are not layer ops: the
output delta of every output/loss pair, the hidden layers' ``dZ`` from ``A``, and the
one-pass finiteness check with the largest magnitude (the update-safety rule's inputs).

``Network.step`` has no kernel of its own: it is one step of ``train.fit_epochs``.
"""

from __future__ import annotations

import numpy as np
from numba.core import types
from numba.extending import overload

from ._config import FASTMATH, inline, kernel
from .dense import (BINARY_CE, CATEGORICAL_CE, IDENTITY, MSE, SIGMOID, SOFTMAX,
                    g_prime_from_a)


@kernel
def delta_from_a(D, A, Z, act, alpha, db):
    """``D = D * g'(Z)`` in place (D holds ``W^T dZ`` on entry); ``db = sum_k D`` in the same
    sweep."""
    n, m = D.shape
    for i in range(n):
        dr = D[i]
        ar = A[i]
        zr = Z[i]
        acc = 0.0
        for k in range(m):
            v = dr[k] * g_prime_from_a(ar[k], zr[k], act, alpha)
            dr[k] = v
            acc += v
        db[i, 0] = acc


@inline
def loss_derivative(a, y, loss):
    """``dL/da`` per example (convention "L"), as ``reference.cost_derivative``."""
    if loss == BINARY_CE:
        return -(y / a - (1.0 - y) / (1.0 - a))
    if loss == CATEGORICAL_CE:
        return -(y / a)
    return a - y


@inline
def fused_output(act, loss):
    """Whether ``dZ[L] = A[L] - Y`` (``spec.FUSED_OUTPUT_LOSS``: sigmoid with binary CE,
    softmax (with categorical CE, its only loss), identity with MSE)."""
    return ((act == SIGMOID and loss == BINARY_CE) or act == SOFTMAX
            or (act == IDENTITY and loss == MSE))


@kernel
def output_delta(AL, YbT, ZL, act, alpha, loss, c, dZ, db):
    """``dZ[L][:, k] = c_k (A[L] - Y)`` for the fused pairs, else ``c_k dL/dA * g'(Z)``;
    ``db[L] = Σ_k dZ[L]``. AL, ZL, dZ (n, mb); YbT (mb, n), the labels as rows; c (≥ mb,)
    float64, the per-example factors (``w_k / Σw``, or ``1/mb``)."""
    n, mb = AL.shape
    fused = fused_output(act, loss)
    for i in range(n):
        ar = AL[i]
        zr = ZL[i]
        dr = dZ[i]
        acc = 0.0
        if fused:
            for k in range(mb):
                v = (ar[k] - YbT[k, i]) * c[k]
                dr[k] = v
                acc += v
        else:
            for k in range(mb):
                v = (loss_derivative(ar[k], YbT[k, i], loss) * c[k]
                     * g_prime_from_a(ar[k], zr[k], act, alpha))
                dr[k] = v
                acc += v
        db[i, 0] = acc


def abs_max(G):
    """``(finite, max|G|)``. This plain version runs under ``NUMBA_DISABLE_JIT=1``; kernels
    compile the overload below."""
    return bool(np.isfinite(G).all()), np.abs(G).max(initial=0)


@overload(abs_max, jit_options=dict(fastmath=FASTMATH, error_model="numpy"))
def _abs_max(G):
    """One pass over G's bits: the largest ``|g|`` is the largest sign-cleared bit pattern
    (IEEE order), and it is at or above the bits of inf exactly when some g is inf or NaN.
    An integer max reduction vectorises; a float one does not unless NaNs are ruled out."""
    if G.dtype == types.float32:
        int_t, float_t = np.int32, np.float32
        magnitude, inf_bits = np.int32(0x7FFFFFFF), np.int32(0x7F800000)
    else:
        int_t, float_t = np.int64, np.float64
        magnitude, inf_bits = np.int64(0x7FFFFFFFFFFFFFFF), np.int64(0x7FF0000000000000)

    def impl(G):
        B = G.view(int_t)
        n, n_prev = B.shape
        best = int_t(0)
        for i in range(n):
            br = B[i]
            for j in range(n_prev):
                b = br[j] & magnitude
                best = b if b > best else best
        return best < inf_bits, int_t(best).view(float_t)

    return impl
