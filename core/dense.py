"""Fused kernels of one dense layer: forward ``Z = W A_prev + b; A = g(Z)`` and its backward.

The caller (``chainrule.backends.numba``) guarantees: every array C-contiguous and of one
float dtype (float32 or float64), shapes consistent, outputs allocated. Activations and
losses are small ints (the codes below). The GEMMs are ``np.dot(..., out=...)``, which
numba sends to SciPy's BLAS; everything else happens in one sweep around them.
"""

from __future__ import annotations

import numpy as np

from . import vmath
from ._config import inline, kernel

# Activation codes: equal to chainrule.spec's (core imports no chainrule; a test checks)
SIGMOID, RELU, TANH, LEAKY_RELU, IDENTITY, SOFTMAX = 0, 1, 2, 3, 4, 5
# Loss codes: equal to chainrule.spec's
BINARY_CE, CATEGORICAL_CE, MSE = 0, 1, 2


# --------------------------------------------------------------------------- forward

@kernel
def bias_activation(Z, b, A, act, alpha, colmax, colsum):
    """``Z = Z + b; A = g(Z)`` in one sweep (Z, A: (n, m); b: (n, 1); colmax, colsum: (m,) float64).

    ``Z`` holds ``W A_prev`` on entry and ``Z`` on exit. ``colmax, colsum`` are scratch for
    softmax. ReLU: ``A = Z if not Z <= 0 else 0`` so NaN passes through as in ``np.maximum``.
    """
    n, m = Z.shape
    if act == SOFTMAX:
        # A[:, k] = exp(Z[:, k] - max_i Z[i, k]) / sum_i (...); rows are swept whole, so
        # the loops run along k (contiguous) and vectorise.
        for k in range(m):
            colmax[k] = -np.inf
            colsum[k] = 0.0
        for i in range(n):
            bi = b[i, 0]
            zr = Z[i]
            for k in range(m):
                z = zr[k] + bi
                zr[k] = z
                colmax[k] = z if z > colmax[k] else colmax[k]
        for i in range(n):
            zr = Z[i]
            ar = A[i]
            for k in range(m):
                e = vmath.exp_neg(zr[k] - colmax[k])
                ar[k] = e
                colsum[k] += e
        for i in range(n):
            ar = A[i]
            for k in range(m):
                ar[k] = ar[k] / colsum[k]
        return
    for i in range(n):
        bi = b[i, 0]
        zr = Z[i]
        ar = A[i]
        if act == SIGMOID:
            for k in range(m):
                z = zr[k] + bi
                zr[k] = z
                ar[k] = vmath.sigmoid(z)
        elif act == TANH:
            for k in range(m):
                z = zr[k] + bi
                zr[k] = z
                ar[k] = vmath.tanh(z)
        elif act == RELU:
            for k in range(m):
                z = zr[k] + bi
                zr[k] = z
                ar[k] = 0.0 if z <= 0 else z
        elif act == LEAKY_RELU:
            for k in range(m):
                z = zr[k] + bi
                zr[k] = z
                ar[k] = z if z > 0 else z * alpha
        else:  # IDENTITY
            for k in range(m):
                z = zr[k] + bi
                zr[k] = z
                ar[k] = z


@kernel
def dense_forward(A_prev, W, b, Z, A, act, alpha, colmax, colsum):
    """``Z = W A_prev + b; A = g(Z)``: one GEMM into ``Z``, then bias and g in one sweep.

    A_prev (n_prev, m), W (n, n_prev), b (n, 1), Z and A (n, m) outputs, colmax/colsum (m,)
    float64 scratch.
    """
    np.dot(W, A_prev, Z)
    bias_activation(Z, b, A, act, alpha, colmax, colsum)


# --------------------------------------------------------------------------- backward

@inline
def g_prime_from_z(z, act, alpha):
    """``g'(z)`` for the elementwise activations; ``g'(0) = 0`` for ReLU (the course's
    ``dZ[Z <= 0] = 0``)."""
    if act == SIGMOID:
        s = vmath.sigmoid(z)
        return s * (1.0 - s)
    if act == TANH:
        t = vmath.tanh(z)
        return 1.0 - t * t
    if act == RELU:
        return 1.0 if z > 0 else 0.0
    if act == LEAKY_RELU:
        return 1.0 if z > 0 else alpha
    return 1.0


@inline
def g_prime_from_a(a, z, act, alpha):
    """``g'(z)`` from ``a = g(z)`` where that is cheaper: sigmoid ``a (1 - a)``, tanh ``1 - a^2``,
    ReLU ``a > 0`` (same as ``z > 0``); leaky ReLU reads ``z`` (alpha may be negative)."""
    if act == SIGMOID:
        return a * (1.0 - a)
    if act == TANH:
        return 1.0 - a * a
    if act == RELU:
        return 1.0 if a > 0 else 0.0
    if act == LEAKY_RELU:
        return 1.0 if z > 0 else alpha
    return 1.0


@kernel
def delta_from_z(D, Z, act, alpha, mask, has_mask, dA, need_dA, db, s, has_db):
    """``dA = D * mask; D = dA * g'(Z)``, and ``db = s sum_k D`` in the same sweep.

    D (n, m) holds ``W^T dZ`` on entry and ``dZ`` on exit; ``dA`` (n, m) receives the masked
    ``W^T dZ`` when ``need_dA``; mask (n, m) is read when ``has_mask``; db (n, 1) is
    written when ``has_db``.
    """
    n, m = D.shape
    for i in range(n):
        dr = D[i]
        zr = Z[i]
        acc = 0.0
        if has_mask:
            mr = mask[i]
            if need_dA:
                ar = dA[i]
                for k in range(m):
                    v = dr[k] * mr[k]
                    ar[k] = v
                    v = v * g_prime_from_z(zr[k], act, alpha)
                    dr[k] = v
                    acc += v
            else:
                for k in range(m):
                    v = dr[k] * mr[k] * g_prime_from_z(zr[k], act, alpha)
                    dr[k] = v
                    acc += v
        else:
            if need_dA:
                ar = dA[i]
                for k in range(m):
                    v = dr[k]
                    ar[k] = v
                    v = v * g_prime_from_z(zr[k], act, alpha)
                    dr[k] = v
                    acc += v
            else:
                for k in range(m):
                    v = dr[k] * g_prime_from_z(zr[k], act, alpha)
                    dr[k] = v
                    acc += v
        if has_db:
            db[i, 0] = s * acc


@kernel
def row_sums(D, db, s):
    """``db = s sum_k D[:, k]`` (D (n, m), db (n, 1))."""
    n, m = D.shape
    for i in range(n):
        dr = D[i]
        acc = 0.0
        for k in range(m):
            acc += dr[k]
        db[i, 0] = s * acc


@kernel
def scale_add(dW, s, c, W):
    """``dW = s dW + c W`` in place (the 1/m of convention "L" and the L2 term ``(lambd/m) W``)."""
    n, n_prev = dW.shape
    for i in range(n):
        gr = dW[i]
        wr = W[i]
        for j in range(n_prev):
            gr[j] = s * gr[j] + c * wr[j]


@kernel
def dense_backward(dZ, A_prev, W, Z_prev, act_prev, alpha_prev, s, l2, mask_prev, has_mask,
                   has_prev, need_dA, dW, db, dZ_prev, dA_prev):
    """``dW = s dZ A_prev^T + l2 W``, ``db = s sum_k dZ``,
    ``dZ_prev = (W^T dZ) * mask_prev * g'(Z_prev)``.

    dZ (n, m), A_prev (n_prev, m), W and dW (n, n_prev), db (n, 1); Z_prev, mask_prev,
    dZ_prev, dA_prev (n_prev, m). ``s`` is 1/m (convention "L") or 1 ("J"), ``l2`` is
    ``lambd / m``. ``W^T dZ`` goes straight into ``dA_prev`` when ``need_dA``, else into
    ``dZ_prev``, and the activation derivative is applied there in place: no temporary.
    Without ``has_prev`` (the input layer) there is no ``dZ_prev`` and the product is
    skipped unless ``need_dA``.
    """
    np.dot(dZ, A_prev.T, dW)
    if s != 1.0 or l2 != 0.0:
        scale_add(dW, s, l2, W)
    row_sums(dZ, db, s)
    if has_prev:
        np.dot(W.T, dZ, dZ_prev)
        delta_from_z(dZ_prev, Z_prev, act_prev, alpha_prev, mask_prev, has_mask, dA_prev,
                     need_dA, db, 0.0, False)
    elif need_dA:
        np.dot(W.T, dZ, dA_prev)


ACTIVATION_CODES = {"sigmoid": SIGMOID, "relu": RELU, "tanh": TANH, "leaky_relu": LEAKY_RELU,
                    "identity": IDENTITY, "softmax": SOFTMAX}
LOSS_CODES = {"binary_crossentropy": BINARY_CE, "categorical_crossentropy": CATEGORICAL_CE,
              "mean_squared_error": MSE}
