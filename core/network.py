"""A whole training step (forward, backward, SGD update) in one compiled call, and a loop of them.

Everything lives in a workspace the caller allocates once per (layer sizes, m, dtype):
``Zs[l], As[l], dZs[l]`` of shape ``(n[l+1], m)``, ``dWs[l], dbs[l]`` like ``Ws[l], bs[l]``
(tuples, 0-based: index ``l`` is layer ``l + 1``), and two float64 scratch rows of length m
for softmax. A step allocates nothing.

Inside, the backward pass uses convention "J" (``dZ[L] = (A[L] - Y) / m``, no ``1/m`` in
``dW, db``): the gradients are those of convention "L" without a scaling sweep, and the
``dZ`` are never returned.
"""

from __future__ import annotations

import numpy as np

from . import vmath
from ._config import inline, kernel
from .dense import (BINARY_CE, CATEGORICAL_CE, IDENTITY, LEAKY_RELU, MSE, RELU, SIGMOID,
                    SOFTMAX, TANH, bias_activation, scale_add)


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
def delta_from_a(D, A, Z, act, alpha, db):
    """``D = D * g'(Z)`` in place (D holds ``W^T dZ`` on entry) and ``db = sum_k D`` in the same sweep."""
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


@kernel
def output_delta(AL, Y, ZL, act, alpha, loss, inv_m, dZ, db):
    """``dZ[L] = (A[L] - Y) / m`` for the fused pairs, else ``(dL/dA[L]) / m * g'(Z[L])``;
    ``db[L] = sum_k dZ[L]`` in the same sweep. Softmax comes only with categorical CE."""
    n, m = AL.shape
    fused = ((act == SIGMOID and loss == BINARY_CE) or act == SOFTMAX
             or (act == IDENTITY and loss == MSE))
    for i in range(n):
        ar = AL[i]
        yr = Y[i]
        zr = ZL[i]
        dr = dZ[i]
        acc = 0.0
        if fused:
            for k in range(m):
                v = (ar[k] - yr[k]) * inv_m
                dr[k] = v
                acc += v
        else:
            for k in range(m):
                v = (loss_derivative(ar[k], yr[k], loss) * inv_m
                     * g_prime_from_a(ar[k], zr[k], act, alpha))
                dr[k] = v
                acc += v
        db[i, 0] = acc


@kernel
def cost(AL, Y, loss, eps):
    """``J``: ``-(1/m) sum(Y log A + (1-Y) log(1-A))``, ``-(1/m) sum(Y log A)`` or
    ``(1/(2m)) sum (A-Y)^2``; ``A`` clipped to ``[eps, 1-eps]`` inside the logs only."""
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
                    total -= y * np.log(a) + (1.0 - y) * np.log(1.0 - a)
                else:
                    total -= y * np.log(a)
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


@kernel
def update_bound(P, G):
    """``(finite, max|P|, max|G|)``: ``finite`` is False when any entry of G is NaN or inf.

    ``x - x`` is 0 exactly for finite x and NaN otherwise, so the check is a vectorisable
    sum next to the two maxima.
    """
    n, n_prev = G.shape
    acc = 0.0
    p_max = 0.0
    g_max = 0.0
    for i in range(n):
        pr = P[i]
        gr = G[i]
        for j in range(n_prev):
            g = gr[j]
            acc += g - g
            a = abs(g)
            g_max = a if a > g_max else g_max
            a = abs(pr[j])
            p_max = a if a > p_max else p_max
    return acc == 0.0, p_max, g_max


@inline
def update_is_safe(P, G, learning_rate, dtype_max):
    """Every ``G`` finite and ``max|P| + lr max|G| < dtype max``: ``P - lr G`` cannot overflow
    (the rule of ``chainrule._compose.update_is_safe``)."""
    finite, p_max, g_max = update_bound(P, G)
    return finite and p_max + learning_rate * g_max < dtype_max


@kernel
def sgd_update(W, dW, learning_rate):
    """``W = W - lr dW`` in place."""
    n, n_prev = W.shape
    for i in range(n):
        wr = W[i]
        gr = dW[i]
        for j in range(n_prev):
            wr[j] -= learning_rate * gr[j]


@kernel
def train_step(X, Y, Ws, bs, acts, alphas, loss, learning_rate, lambd, want_cost, eps,
               dtype_max, Zs, As, dZs, dWs, dbs, colmax, colsum):
    """Forward, backward and, only if the update is safe (every ``dW, db`` finite and
    ``max|p| + lr max|g| < dtype_max``), ``W -= lr dW; b -= lr db``.

    X (n[0], m), Y (n[L], m); Ws, bs tuples of the L layers' parameters (updated in place);
    acts (L,) int64 codes, alphas (L,) float64; the workspace as in the module docstring.
    Returns ``(ok, J)``: whether the update was applied, and the cost before it (L2 term
    included) when ``want_cost``, else NaN.
    """
    L = len(Ws)
    m = X.shape[1]
    inv_m = 1.0 / m
    # forward: the input layer reads X, the others the previous A
    np.dot(Ws[0], X, Zs[0])
    bias_activation(Zs[0], bs[0], As[0], acts[0], alphas[0], colmax, colsum)
    for l in range(1, L):
        np.dot(Ws[l], As[l - 1], Zs[l])
        bias_activation(Zs[l], bs[l], As[l], acts[l], alphas[l], colmax, colsum)
    J = np.nan
    if want_cost:
        J = cost(As[L - 1], Y, loss, eps)
        if lambd != 0.0:
            squares = 0.0
            for l in range(L):
                squares += sum_squares(Ws[l])
            J += lambd / (2.0 * m) * squares
    # backward
    output_delta(As[L - 1], Y, Zs[L - 1], acts[L - 1], alphas[L - 1], loss, inv_m,
                 dZs[L - 1], dbs[L - 1])
    for l in range(L - 1, 0, -1):
        np.dot(dZs[l], As[l - 1].T, dWs[l])
        np.dot(Ws[l].T, dZs[l], dZs[l - 1])
        delta_from_a(dZs[l - 1], As[l - 1], Zs[l - 1], acts[l - 1], alphas[l - 1], dbs[l - 1])
    np.dot(dZs[0], X.T, dWs[0])  # the input layer: no W^T dZ
    ok = True
    for l in range(L):
        if lambd != 0.0:
            scale_add(dWs[l], 1.0, lambd * inv_m, Ws[l])
        ok = (ok and update_is_safe(Ws[l], dWs[l], learning_rate, dtype_max)
              and update_is_safe(bs[l], dbs[l], learning_rate, dtype_max))
    if ok:
        for l in range(L):
            sgd_update(Ws[l], dWs[l], learning_rate)
            sgd_update(bs[l], dbs[l], learning_rate)
    return ok, J


@kernel
def train_loop(X, Y, Ws, bs, acts, alphas, loss, learning_rate, lambd, n_steps, cost_every,
               eps, dtype_max, Zs, As, dZs, dWs, dbs, colmax, colsum, costs):
    """``n_steps`` full-batch steps; ``costs[i]`` is the cost before step i when
    ``i % cost_every == 0`` (else NaN). Stops at the first step whose gradient is not finite
    (or whose update is unsafe; its parameters untouched) and returns the number of steps applied."""
    for i in range(n_steps):
        want = cost_every > 0 and i % cost_every == 0
        ok, J = train_step(X, Y, Ws, bs, acts, alphas, loss, learning_rate, lambd, want, eps,
                           dtype_max, Zs, As, dZs, dWs, dbs, colmax, colsum)
        costs[i] = J
        if not ok:
            return i
    return n_steps
