"""One step of gradient descent on the whole batch, as one step of the backend's training engine.

``Network.step`` (and :func:`train_step`, what the benchmarks, auto's calibration and the
tests time and check) runs the same compiled path as ``fit``: the backend's ``fit_epochs``
with a plan of gradient descent on one batch of all ``m`` examples (:func:`step_plan`), one
step (``n_steps=1``), the course's ``X`` and ``Y`` read where they lie (``X.T`` is handed
over; the C and numba engines read the columns without a copy). So a step obeys the one
update-safety rule of every fit (the cost, every gradient and every new parameter finite, or
nothing is written) and reports what it refused in the rule's words.
"""

from __future__ import annotations

import functools

import numpy as np

from ..backends import engine
from ..backends.plan import FitPlan
from .optim import OPTIMIZERS

__all__ = ["step_plan", "one_step", "train_step"]


@functools.lru_cache(maxsize=16)
def _cached_plan(layer_dims, activations, loss, lambd, m, batch_norm, bn):
    return FitPlan.build(list(layer_dims), list(activations), loss, OPTIMIZERS["gd"](),
                         mini_batch_size=m, lambd=lambd,
                         batch_norm=None if batch_norm is None else list(batch_norm),
                         **({} if bn is None else dict(zip(
                             ("bn_momentum", "bn_epsilon", "bn_unbiased"), bn))))


def step_plan(layer_dims, activations, loss, m, lambd=0.0, batch_norm=None, bn=None):
    """The (cached) plan of one full-batch step: gradient descent, ``mini_batch_size = m``,
    L2 strength ``lambd``; ``batch_norm`` one flag per layer and ``bn`` ``(momentum,
    epsilon, unbiased)`` for a network with batch norm."""
    acts = tuple(tuple(a) if isinstance(a, list) else a for a in activations)
    return _cached_plan(tuple(int(n) for n in layer_dims), acts, loss, float(lambd), int(m),
                        None if batch_norm is None else tuple(bool(f) for f in batch_norm),
                        None if bn is None else tuple(bn))


def _masks_callable(masks):
    """``train_step``'s ``masks`` (``masks[l]`` multiplies ``A[l]``, ``l = 1..L-1``) as the
    engine's ``masks(e, k, mb) -> {l: D[l] / p[l]}``."""
    table = {l: D for l, D in enumerate(masks) if l >= 1 and D is not None}
    return lambda e, k, mb: table


def one_step(ops, plan, X, Y, Ws, bs, learning_rate, norm=None, masks=None):
    """One step of ``plan`` (:func:`step_plan`) on ``X (n0, m), Y (nL, m)`` with ``ops``'
    engine; returns its :class:`~chainrule.backends.engine.ChunkResult` (``steps`` 1 and
    the cost ``cost_sum[0] / weight_sum[0]`` when applied; ``status`` 1 and ``what`` in the
    rule's words when refused, nothing written). ``norm``: batch norm's arrays (the
    engine's); ``masks``: fixed masks per layer (the course-exact mode, composed)."""
    XT = X.T
    if not (XT.flags.c_contiguous or X.flags.c_contiguous):
        XT = np.ascontiguousarray(X).T  # neither layout: one copy, in the course's
    # Y in X's layout: rows beside rows (one small copy where Y has several rows), the
    # course's Y beside the course's X (read where it lies)
    YT = np.ascontiguousarray(Y.T) if XT.flags.c_contiguous else Y.T
    lrs = np.array([float(learning_rate)])
    if masks is not None and any(D is not None for D in masks):
        return engine.fit_epochs(plan, XT, YT, None, perms=None, lrs=lrs, keys=None, k0=0,
                                 n_steps=1, t=0, state={}, Ws=Ws, bs=bs,
                                 masks=_masks_callable(masks), ops=ops, norm=norm)
    return ops.fit_epochs(plan, XT, YT, None, perms=None, lrs=lrs, keys=None, k0=0, n_steps=1,
                          t=0, state={}, Ws=Ws, bs=bs, norm=norm)


def train_step(ops, X, Y, Ws, bs, activations, loss, learning_rate, lambd=0.0, masks=None,
               compute_cost=False):
    """One full-batch gradient-descent step of ``ops``' engine on the course's ``X, Y``:
    ``(ok, J)``, ``ok`` whether the update was applied (the update-safety rule), ``J`` the
    cost before it (with the L2 term of ``lambd``) when ``compute_cost`` and applied, else
    NaN. ``Ws, bs`` are updated in place."""
    dims = [Ws[0].shape[1]] + [W.shape[0] for W in Ws]
    plan = step_plan(dims, activations, loss, X.shape[1], lambd)
    r = one_step(ops, plan, X, Y, Ws, bs, learning_rate, masks=masks)
    ok = r.steps == 1
    J = float(r.cost_sum[0] / r.weight_sum[0]) if ok and compute_cost else float("nan")
    return ok, J
