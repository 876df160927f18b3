"""Network ops composed from a backend's layer ops: the ``generic`` entries of the registry.

Each takes the calling backend's :class:`~chainrule.backends.registry.Ops` first. A compiled
backend may register its own, faster, version of any of these; this one is the definition
they are tested against. :func:`update_is_safe` is the one rule of when a step may update.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from .. import reference as ref


def forward(ops, X, Ws, bs, activations, masks=None, out=None):
    """The layers' ``dense_forward`` in turn (``out`` is ignored: the layer ops allocate)."""
    Zs, As = [], [X]
    for l in range(1, len(Ws) + 1):
        Z, A = ops.dense_forward(As[-1], Ws[l - 1], bs[l - 1], activations[l - 1])
        if masks is not None and masks[l] is not None:
            A = A * masks[l]
        Zs.append(Z)
        As.append(A)
    return Zs, As


def backward(ops, Y, Zs, As, Ws, activations, loss, convention="L", lambd=0.0, masks=None,
             need_dA=False):
    L = len(Ws)
    dZL = ref.output_delta(As[L], Y, Zs[L - 1], activations[L - 1], loss, convention)
    return ops.backward_delta(dZL, Zs, As, Ws, activations, convention, lambd, masks, need_dA)


def backward_delta(ops, dZL, Zs, As, Ws, activations, convention="L", lambd=0.0, masks=None,
                   need_dA=False):
    L = len(Ws)
    dZs, dWs, dbs = [None] * L, [None] * L, [None] * L
    dAs = [None] * L
    dZ = dZL
    for l in range(L, 0, -1):
        dZs[l - 1] = dZ
        first = l == 1
        dZ, dWs[l - 1], dbs[l - 1], dA_prev = ops.dense_backward(
            dZ, As[l - 1], Ws[l - 1], None if first else Zs[l - 2],
            None if first else activations[l - 2], convention, lambd,
            None if (first or masks is None) else masks[l - 1], need_dA)
        dAs[l - 1] = dA_prev
    return dZs, dWs, dbs, dAs


def sgd_update(ops, Ws, bs, dWs, dbs, learning_rate):
    for W, b, dW, db in zip(Ws, bs, dWs, dbs):
        W -= learning_rate * dW
        b -= learning_rate * db


def update_is_safe(params, grads, learning_rate):
    """True when every gradient is finite and ``p - lr g`` is finite for every entry: the
    gradient-descent form of :func:`unsafe_update` (the one rule of when a step may update).

    The cheap bound ``max|p| + lr max|g| < the dtype's max`` proves most steps safe without
    computing anything; where it cannot (and whenever ``lr`` itself is not finite in the
    parameters' dtype), the candidates ``p - lr g`` are computed and checked exactly. A step
    that fails is not applied.
    """
    for p, g in zip(params, grads):
        if p.size == 0:
            continue
        g_max = np.abs(g).max()
        if not np.isfinite(g_max):
            return False
        big = float(np.finfo(p.dtype).max)
        if not learning_rate_fits(learning_rate, p.dtype):  # lr * 0 would be NaN
            return False
        if float(np.abs(p).max()) + learning_rate * float(g_max) >= big:
            with np.errstate(over="ignore", invalid="ignore"):
                if not np.isfinite(p - p.dtype.type(learning_rate) * g).all():
                    return False
    return True


def learning_rate_fits(learning_rate, dtype):
    """Whether ``learning_rate`` is finite in ``dtype`` (the update multiplies by it there)."""
    with np.errstate(over="ignore"):
        return bool(np.isfinite(np.dtype(dtype).type(learning_rate)))


def unsafe_update(J, grads, candidates):
    """What makes a step unsafe, or ``None`` when it may be committed: the update-safety rule.

    A step is applied only when its cost ``J``, every gradient and every candidate (a new
    parameter or a new optimiser-state entry, computed without touching the current ones)
    are finite. ``grads`` and ``candidates`` are ``(name, array)`` pairs; the answer names the
    first one that is not finite: ``"cost"``, ``"gradient dW2"``, ``"update of W1"``,
    ``"update of v_dW1"``. A refused step must leave parameters, optimiser state and
    counters as they were (compute the candidates, check here, then commit).
    """
    if J is not None and not math.isfinite(J):
        return "cost"
    name = first_nonfinite_name(grads)
    if name is not None:
        return f"gradient {name}"
    name = first_nonfinite_name(candidates)
    return None if name is None else f"update of {name}"


def first_nonfinite_name(named):
    """The name of the first of the ``(name, array)`` pairs with a NaN or inf, or ``None``
    (what :func:`unsafe_update` checks of its gradients and candidates)."""
    for name, a in named:
        if not np.isfinite(a).all():
            return name
    return None


def refusal_words(code, param="", prefix=""):
    """:func:`unsafe_update`'s words for what a compiled engine reports by code (``core.train``
    ``BAD_*``, csrc's ``enum cr_nonfinite``): 1 ``"cost"``, 2 ``"gradient d<param>"``, 3
    ``"update of <param>"``, 4 ``"update of <prefix>_d<param>"`` (``param`` e.g. ``"W2"``,
    ``prefix`` ``"v"`` or ``"s"``): one vocabulary on every path."""
    if code == 1:
        return "cost"
    if code == 2:
        return f"gradient d{param}"
    if code == 3:
        return f"update of {param}"
    return f"update of {prefix}_d{param}"


def cost(Y, AL, Ws, loss, lambd=0.0):
    """The cost J of the forward pass, with the L2 term when ``lambd``."""
    J = ref.compute_cost(AL, Y, loss)
    if lambd:
        J += ref.l2_cost({f"W{l}": W for l, W in enumerate(Ws, 1)}, lambd, Y.shape[1])
    return J


def fit_session(ops):
    """The context of a whole fit: nothing to set up for a backend that registers none."""
    return contextlib.nullcontext()


# op name -> composition (the registry's fallback for every backend; that of fit_epochs,
# engine.generic, is added there: the engine checks its steps with unsafe_update above)
GENERIC = {
    "forward": forward,
    "backward": backward,
    "backward_delta": backward_delta,
    "sgd_update": sgd_update,
    "fit_session": fit_session,
}
