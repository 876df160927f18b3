"""A whole training step (forward, backward, SGD update) in one compiled call (``Network.step``),
and the kernels it shares with the engine (``train.py``).

Everything lives in a workspace the caller allocates once per (layer sizes, m, dtype): one
flat buffer holding each layer's ``Z, A, dZ`` (n[l], m), ``dW`` and ``db`` (see
:func:`workspace_layout`), and three float64 scratch rows of length m (softmax's, and
``1/m``). A step allocates nothing.

Inside, the backward pass uses convention "J" (``dZ[L] = (A[L] - Y) / m``, no ``1/m`` in
``dW, db``): the gradients are those of convention "L" without a scaling sweep, and the
``dZ`` are never returned.
"""

from __future__ import annotations

import numpy as np
from numba.core import types
from numba.extending import overload

from . import vmath
from ._config import FASTMATH, inline, kernel
from .dense import (BINARY_CE, CATEGORICAL_CE, IDENTITY, MSE, SIGMOID, SOFTMAX,
                    bias_activation, g_prime_from_a, scale_add)


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
    float64, the per-example factors. The one output delta of both compiled paths: the
    engine passes its gathered batch and ``w_k / Σw`` (``1/mb``), the whole step ``Y.T`` (a
    view) and ``1/m``."""
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


@kernel
def cost(AL, Y, loss, eps):
    """``J``: ``-(1/m) sum(Y log A + (1-Y) log(1-A))``, ``-(1/m) sum(Y log A)`` or
    ``(1/(2m)) sum (A-Y)^2``; ``A`` clipped to ``[eps, 1-eps]`` inside the logs only (so the
    vectorisable :func:`vmath.log_positive` applies)."""
    n, m = AL.shape
    total = 0.0
    for i in range(n):
        ar = AL[i]
        yr = Y[i]
        if loss == MSE:
            for k in range(m):
                d = ar[k] - yr[k]
                total += d * d
        else:
            for k in range(m):
                a = ar[k]
                a = eps if a < eps else a
                a = 1.0 - eps if a > 1.0 - eps else a
                y = yr[k]
                if loss == BINARY_CE:
                    total -= y * vmath.log_positive(a) + (1.0 - y) * vmath.log_positive(1.0 - a)
                else:
                    total -= y * vmath.log_positive(a)
    return total / (2.0 * m) if loss == MSE else total / m


@kernel
def sum_squares(W):
    """``||W||_F^2``."""
    n, n_prev = W.shape
    total = 0.0
    for i in range(n):
        wr = W[i]
        for j in range(n_prev):
            total += wr[j] * wr[j]
    return total


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


@inline
def update_is_safe(P, G, learning_rate, dtype_max):
    """Every ``G`` finite and ``max|P| + lr max|G| < dtype max``: ``P - lr G`` cannot overflow
    (the rule of ``chainrule._compose.update_is_safe``)."""
    finite, g_max = abs_max(G)
    if not finite:
        return False
    _, p_max = abs_max(P)
    return p_max + learning_rate * g_max < dtype_max


@kernel
def sgd_update(W, dW, learning_rate):
    """``W = W - lr dW`` in place."""
    n, n_prev = W.shape
    for i in range(n):
        wr = W[i]
        gr = dW[i]
        for j in range(n_prev):
            wr[j] -= learning_rate * gr[j]


@inline
def _view(buf, start, rows, cols):
    """The ``(rows, cols)`` C-contiguous block of the flat workspace starting at ``start``."""
    return buf[start:start + rows * cols].reshape((rows, cols))


@kernel
def train_step(X, Y, Ws, bs, acts, alphas, loss, learning_rate, lambd, want_cost, eps,
               dtype_max, buf, offs, scratch):
    """Forward, backward and, only if the update is safe (every ``dW, db`` finite and
    ``max|p| + lr max|g| < dtype_max``), ``W -= lr dW; b -= lr db``.

    X (n[0], m), Y (n[L], m); Ws, bs tuples of the L layers' parameters (updated in place);
    acts (L,) int64 codes, alphas (L,) float64. The workspace is one flat buffer ``buf`` of
    the parameters' dtype: layer ``l`` (0-based) keeps ``Z, A, dZ`` (n, m), ``dW`` (n, n_prev)
    and ``db`` (n, 1) at the offsets ``offs[l, 0..4]``; ``scratch`` (3, m) float64 (softmax's
    column max and sum; row 2 holds ``1/m``, the output delta's factor). One flat
    buffer instead of five tuples of arrays: each array argument costs about 0.07 us to
    unbox at every call, which matters at 6 us per step.
    Returns ``(ok, J)``: whether the update was applied, and the cost before it (L2 term
    included) when ``want_cost``, else NaN.
    """
    L = len(Ws)
    m = X.shape[1]
    inv_m = 1.0 / m
    colmax = scratch[0]
    colsum = scratch[1]
    # forward: the input layer reads X, the others the previous A
    for l in range(L):
        n, n_prev = Ws[l].shape
        Z = _view(buf, offs[l, 0], n, m)
        if l == 0:
            np.dot(Ws[0], X, Z)
        else:
            np.dot(Ws[l], _view(buf, offs[l - 1, 1], n_prev, m), Z)
        bias_activation(Z, bs[l], _view(buf, offs[l, 1], n, m), acts[l], alphas[l], colmax,
                        colsum)
    n_L = Ws[L - 1].shape[0]
    AL = _view(buf, offs[L - 1, 1], n_L, m)
    J = np.nan
    if want_cost:
        J = cost(AL, Y, loss, eps)
        if lambd != 0.0:
            squares = 0.0
            for l in range(L):
                squares += sum_squares(Ws[l])
            J += lambd / (2.0 * m) * squares
    # backward
    output_delta(AL, Y.T, _view(buf, offs[L - 1, 0], n_L, m), acts[L - 1], alphas[L - 1],
                 loss, scratch[2], _view(buf, offs[L - 1, 2], n_L, m),
                 _view(buf, offs[L - 1, 4], n_L, 1))
    for l in range(L - 1, -1, -1):
        n, n_prev = Ws[l].shape
        dZ = _view(buf, offs[l, 2], n, m)
        dW = _view(buf, offs[l, 3], n, n_prev)
        if l == 0:
            np.dot(dZ, X.T, dW)  # the input layer: no W^T dZ
        else:
            A_prev = _view(buf, offs[l - 1, 1], n_prev, m)
            np.dot(dZ, A_prev.T, dW)
            dZ_prev = _view(buf, offs[l - 1, 2], n_prev, m)
            np.dot(Ws[l].T, dZ, dZ_prev)
            delta_from_a(dZ_prev, A_prev, _view(buf, offs[l - 1, 0], n_prev, m), acts[l - 1],
                         alphas[l - 1], _view(buf, offs[l - 1, 4], n_prev, 1))
    ok = True
    for l in range(L):
        n, n_prev = Ws[l].shape
        dW = _view(buf, offs[l, 3], n, n_prev)
        if lambd != 0.0:
            scale_add(dW, 1.0, lambd * inv_m, Ws[l])
        ok = (ok and update_is_safe(Ws[l], dW, learning_rate, dtype_max)
              and update_is_safe(bs[l], _view(buf, offs[l, 4], n, 1), learning_rate, dtype_max))
    if ok:
        for l in range(L):
            n, n_prev = Ws[l].shape
            sgd_update(Ws[l], _view(buf, offs[l, 3], n, n_prev), learning_rate)
            sgd_update(bs[l], _view(buf, offs[l, 4], n, 1), learning_rate)
    return ok, J


def workspace_layout(layer_dims, m):
    """``(size, offs)``: the flat workspace's length and the (L, 5) offsets of each layer's
    ``Z, A, dZ, dW, db`` for :func:`train_step` (plain Python; the caller allocates)."""
    L = len(layer_dims) - 1
    offs = np.empty((L, 5), dtype=np.int64)
    at = 0
    for l in range(L):
        n, n_prev = layer_dims[l + 1], layer_dims[l]
        for k, size in enumerate((n * m, n * m, n * m, n * n_prev, n)):
            offs[l, k] = at
            at += size
    return at, offs
