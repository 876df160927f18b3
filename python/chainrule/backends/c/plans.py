"""The C backend's network ops (``forward``, ``backward`` in per-call buffers) and its
training engine ``fit_epochs`` (``cr_fit_epochs``, csrc/train.h), which ``fit`` runs by chunks
of steps and ``Network.step`` by one step (``chainrule.training.step``): one compiled
training path. A step hands over the course's ``X`` (as ``X.T``), which the engine reads
where it lies (``x_columns``), and the engine keeps, per thread, the config, the workspace
and the pointer tables of the parameters while the same arrays come back.
"""

from __future__ import annotations

import contextlib
import threading
import time

import numpy as np

from ... import reference as ref
from ..engine import ChunkResult, running_sums, with_handover
from ..engine import generic as generic_fit_epochs
from ..registry import Ops, register
from .wrappers import (ShapeError, _array, _backward_into, _check_network, _forward_into,
                       _out, _scale)
from . import blas as _blas
from . import wrappers as _w


def _fresh(dt, dims, m):
    L = len(dims) - 1
    return dict(
        Zs=[np.empty((dims[l], m), dt) for l in range(1, L + 1)],
        As=[None] + [np.empty((dims[l], m), dt) for l in range(1, L + 1)],
        dZs=[np.empty((dims[l], m), dt) for l in range(1, L + 1)],
        dWs=[np.empty((dims[l], dims[l - 1]), dt) for l in range(1, L + 1)],
        dbs=[np.empty((dims[l], 1), dt) for l in range(1, L + 1)],
    )


def _forward_checked(X, Ws, bs, codes, masks, buf):
    """The forward into ``buf``; an ``X`` that is not C-contiguous (a column block, or
    ``X_rows.T``) is read where it lies (``cr_dense_forward_view``)."""
    Zs, As = buf["Zs"], buf["As"]
    As[0] = X
    for l in range(1, len(Ws) + 1):
        if l == 1 and not X.flags.c_contiguous:
            _w._forward_view_into(X, _w.view_layout(X), Ws[0], bs[0], *codes[0], Zs[0], As[1])
        else:
            _forward_into(As[l - 1], Ws[l - 1], bs[l - 1], *codes[l - 1], Zs[l - 1], As[l])
        if masks is not None and l < len(masks) and masks[l] is not None:
            np.multiply(As[l], masks[l], out=As[l])
    return Zs, As


def _output_delta(Y, Zs, As, activation, loss, convention, out):
    name, _ = ref.parse_activation(activation)
    if (name, loss) in ref.FUSED_OUTPUT_LOSS:
        np.subtract(As[-1], Y, out=out)
        if convention == "J":
            np.divide(out, Y.shape[1], out=out)
        return out
    return ref.output_delta(As[-1], Y, Zs[-1], activation, loss, convention).astype(
        out.dtype, copy=False)


def _backward_checked(Y, Zs, As, Ws, codes, activations, loss, convention, lambd, masks,
                      need_dA, buf):
    """The backward into ``buf``'s dZs, dWs, dbs (and new dA arrays when ``need_dA``)."""
    L = len(Ws)
    m = Y.shape[1]
    s, l2 = _scale(convention, m), float(lambd) / m
    dZs, dWs, dbs = buf["dZs"], buf["dWs"], buf["dbs"]
    dAs = [None] * L
    dZs[L - 1] = _output_delta(Y, Zs, As, activations[L - 1], loss, convention, dZs[L - 1])
    for l in range(L, 0, -1):
        first = l == 1
        mask = None if (first or masks is None or l - 1 >= len(masks)) else masks[l - 1]
        dA_prev = np.empty_like(As[l - 1]) if need_dA else None
        code_prev = (0, 0.0) if first else codes[l - 2]
        _backward_into(dZs[l - 1], As[l - 1], Ws[l - 1], None if first else Zs[l - 2], mask,
                       *code_prev, s, l2, None if first else dZs[l - 2], dWs[l - 1],
                       dbs[l - 1], dA_prev)
        dAs[l - 1] = dA_prev
    return dZs, dWs, dbs, dAs


def _check_Y(Y, dt, shape):
    return _array(Y, "Y", dt, shape)


@register("forward", "c")
def forward(X, Ws, bs, activations, masks=None, out=None):
    dt, X, Ws, bs, codes, masks = _check_network(X, Ws, bs, activations, masks, view=True)
    m = X.shape[1]
    if out is not None and _usable_out(out, dt, Ws, m):
        buf = dict(Zs=list(out[0]), As=[None] + list(out[1]))
    else:
        buf = _fresh(dt, _dims(Ws), m)
    Zs, As = _forward_checked(X, Ws, bs, codes, masks, buf)
    return list(Zs), list(As)


def _usable_out(out, dt, Ws, m):
    """Whether ``out = (Zs, As[1:])`` are C-contiguous, aligned, writeable arrays of the
    outputs' shapes and ``dt`` (else the forward allocates its own)."""
    Zs, As = out
    if len(Zs) != len(Ws) or len(As) != len(Ws):
        return False
    return all(isinstance(a, np.ndarray) and a.dtype == dt and a.shape == (W.shape[0], m)
               and a.flags.c_contiguous and a.flags.aligned and a.flags.writeable
               for arrays in (Zs, As) for a, W in zip(arrays, Ws))


def _dims(Ws):
    return [Ws[0].shape[1]] + [W.shape[0] for W in Ws]


@register("backward", "c")
def backward(Y, Zs, As, Ws, activations, loss, convention="L", lambd=0.0, masks=None,
             need_dA=False):
    L = len(Ws)
    if len(Zs) != L or len(As) != L + 1:
        raise ShapeError(f"expected {L} Zs and {L + 1} As, got {len(Zs)} and {len(As)}")
    dt, X, Ws, _, codes, masks = _check_network(
        As[0], Ws, [np.zeros((W.shape[0], 1), W.dtype) for W in Ws], activations, masks)
    m = X.shape[1]
    Zs = [_array(Z, f"Zs[{l}]", dt, (W.shape[0], m)) for l, (Z, W) in enumerate(zip(Zs, Ws), 1)]
    As = [X] + [_array(A, f"As[{l}]", dt, (W.shape[0], m))
                for l, (A, W) in enumerate(zip(As[1:], Ws), 1)]
    Y = _check_Y(Y, dt, As[-1].shape)
    _scale(convention, m)
    buf = _fresh(dt, _dims(Ws), m)
    dZs, dWs, dbs, dAs = _backward_checked(Y, Zs, As, Ws, codes, activations, loss,
                                           convention, lambd, masks, need_dA, buf)
    return list(dZs), list(dWs), list(dbs), (dAs if need_dA else None)


# --------------------------------------------------------------------------- training engine
# fit_epochs: a chunk of mini-batch steps in one C call (cr_fit_epochs, csrc/train.h), with
# the reference engine's arguments and result (chainrule.backends.engine.fit_epochs). The
# workspace (the gathered batch, activations, masks, gradients of one batch) is kept per
# thread and per network and training setup: a call allocates only its small accumulators.

class _FitPlans(threading.local):
    def __init__(self):
        self.plan = None  # (key, FitConfig, workspace)


_fit_plans = _FitPlans()


@register("fit_session", "c")
def fit_session():
    """The engine's threads for the whole fit, the BLAS at one thread meanwhile."""
    return _blas.engine_session()


@register("fit_epochs", "c")
def fit_epochs(plan, XT, YT, w, *, perms, lrs, keys, k0, n_steps, t, state, Ws, bs,
               masks=None, norm=None, sums=None):
    """:func:`chainrule.backends.engine.fit_epochs` in one C call (``cr_fit_epochs``).

    ``XT``, ``YT``, ``w``, ``perms`` (int64) and the optimiser ``state`` must already be
    C-contiguous arrays of the network's dtype: nothing is copied per call. ``XT, YT`` may
    instead be ``X.T, Y.T`` of the course's C-contiguous ``X (n0, m), Y (nL, m)`` when
    ``perms`` is None (``Network.step``'s call): the engine reads the columns where they
    lie. The course-exact masks (``masks``) are the reference's only. An optimiser without a code
    (``plan.optimizer_code``) runs on the generic composition until it is compiled too, and
    so does a plan with batch-norm layers (``norm``: the engine's).
    """
    if plan.batch_norm and (masks is not None or plan.optimizer_code is None):
        return generic_fit_epochs(Ops("c"), plan, XT, YT, w, perms=perms, lrs=lrs, keys=keys,
                                  k0=k0, n_steps=n_steps, t=t, state=state, Ws=Ws, bs=bs,
                                  masks=masks, norm=norm, sums=sums)
    if plan.batch_norm:
        def compiled(perms, lrs, keys, k0, n_steps, t, sums):
            res = _compiled(plan, XT, YT, w, perms, lrs, keys, k0, n_steps, t, state, Ws, bs,
                            norm, sums)
            return res, res.status == 1  # every refusal: the composition decides and words it

        return with_handover(compiled, plan, XT, YT, w, perms=perms, lrs=lrs, keys=keys,
                             k0=k0, n_steps=n_steps, t=t, state=state, Ws=Ws, bs=bs,
                             norm=norm, ops=Ops("c"), sums=sums)
    if masks is not None:
        raise _w.InputError("the C engine draws the counter-based dropout masks only; the "
                            "course-exact masks run on the reference engine")
    if plan.optimizer_code is None:
        return generic_fit_epochs(Ops("c"), plan, XT, YT, w, perms=perms, lrs=lrs, keys=keys,
                                  k0=k0, n_steps=n_steps, t=t, state=state, Ws=Ws, bs=bs,
                                  sums=sums)
    return _compiled(plan, XT, YT, w, perms, lrs, keys, k0, n_steps, t, state, Ws, bs, None,
                     sums)


class _Static:
    """What every call of one plan shares in a dtype and layout: the config, the workspace,
    the shapes the arrays are checked against."""

    def __init__(self, plan, dt, cols, previous):
        self.plan, self.dt, self.cols = plan, dt, cols
        self.key = (dt, plan.key)
        if previous is not None and previous.key == self.key and previous.cols == cols:
            self.fc = previous.fc
        else:
            self.fc = _w.FitConfig(dt, plan, cols)
        self.dims = dims = tuple(plan.layer_dims)
        self.W_shapes = [(dims[l], dims[l - 1]) for l in range(1, plan.L + 1)]
        self.b_shapes = [(dims[l], 1) for l in range(1, plan.L + 1)]
        self.names = [(f"W[{l}]", f"b[{l}]") for l in range(1, plan.L + 1)]


_NO_LIMIT = contextlib.nullcontext()  # (reusable)


def _compiled(plan, XT, YT, w, perms, lrs, keys, k0, n_steps, t, state, Ws, bs, norm, sums):
    """One cr_fit_epochs call, its arguments checked (``norm``: batch norm's, or None;
    ``sums``: the running sums it adds to, :func:`~chainrule.backends.engine.running_sums`)."""
    L = plan.L
    if len(Ws) != L or len(bs) != L:
        raise ShapeError(f"got {len(Ws)} weights and {len(bs)} biases for a plan of {L} "
                         f"layers: give one of each per layer")
    dt = _w._dtype_of(Ws[0])
    if not isinstance(XT, np.ndarray) or XT.ndim != 2 or XT.shape[0] < 1:
        raise ShapeError(f"XT must be a 2-D array (m, {plan.n_x}) with m >= 1")
    m = XT.shape[0]
    # the course's X, Y (x_columns): X.T of a C-contiguous X, no permutation
    cols = perms is None and not XT.flags.c_contiguous and XT.T.flags.c_contiguous
    st = _fit_plans.plan
    if st is None or st.plan is not plan or st.dt != dt or st.cols != cols:
        st = _fit_plans.plan = _Static(plan, dt, cols, st)
    dims = st.dims
    if cols:
        X, Y = XT.T, (YT.T if YT.T.flags.c_contiguous else np.ascontiguousarray(YT.T))
        _w._as_is(X, "X", dt, (dims[0], m))
        _w._as_is(Y, "Y", dt, (dims[-1], m))
    else:
        X, Y = _w._as_is(XT, "XT", dt, (m, dims[0])), _w._as_is(YT, "YT", dt, (m, dims[-1]))
    for l, (W_name, b_name) in enumerate(st.names):
        _w._as_is(Ws[l], W_name, dt, st.W_shapes[l], writable=True)
        _w._as_is(bs[l], b_name, dt, st.b_shapes[l], writable=True)
    if not (type(lrs) is np.ndarray and lrs.dtype == np.float64 and lrs.ndim == 1
            and lrs.flags.c_contiguous):
        lrs = np.ascontiguousarray(lrs, dtype=np.float64).reshape(-1)
    E = lrs.size  # any rates: one that makes the update non-finite refuses the step
    sums = running_sums(sums, E)
    k0, n_steps, n_batches = int(k0), int(n_steps), -(-m // plan.mini_batch_size)
    if not 0 <= k0 < n_batches:
        raise _w.InputError(f"k0 = {k0} is not a batch of an epoch (0 .. {n_batches - 1})")
    if n_steps < 0:
        raise _w.InputError(f"n_steps must be >= 0, got {n_steps}")
    if w is not None:
        _w._as_is(w, "w", dt, (m,))
    if perms is not None:
        _w._as_is(perms, "perms", np.dtype(np.int64), (E, m))
        if perms.size and (perms.min() < 0 or perms.max() >= m):
            raise _w.InputError(f"perms holds an index outside [0, {m})")
    if not plan.drops:
        keys = None
    else:
        keys = np.ascontiguousarray(keys)
        if keys.dtype not in (np.dtype(np.int64), np.dtype(np.uint64)) or keys.shape != (E,):
            raise _w.InputError(f"keys must be int64 or uint64 of shape ({E},), got "
                                f"{keys.dtype} {keys.shape}")
        keys = keys.view(np.uint64)
    prefixes = plan.state_prefixes
    if norm is not None:  # a batch-norm layer's bs entry is beta; its gamma beside it
        for l, layer in enumerate(plan.layers, 1):
            if layer.batch_norm:
                for name, arrays in (("gamma", norm[0]), ("running_mean", norm[1]),
                                     ("running_var", norm[2])):
                    _w._as_is(arrays[l - 1], f"{name}[{l}]", dt, (dims[l], 1), writable=True)
    kinds = [("W", Ws), ("b", bs)] if prefixes else []
    for prefix in prefixes:
        for kind, params in kinds + ([("gamma", norm[0])] if norm is not None else []):
            for l, P in enumerate(params, 1):
                if P is None:
                    continue
                name = "beta" if kind == "b" and plan.layers[l - 1].batch_norm else kind
                key = f"{prefix}_d{name}{l}"
                if key not in state:
                    raise _w.InputError(f"the optimiser state has no {key}")
                _w._as_is(state[key], f"state {key}", dt, P.shape, writable=True)
    key, fc = st.key, st.fc
    if n_steps == 1 and not _blas.in_session():
        # one step outside a fit (Network.step): the engine on one thread, the products on
        # the BLAS's own threads, as for any single product (no pool switch per call)
        n_threads, blas_limit, choice = 1, _NO_LIMIT, None
    else:
        n_threads, blas_limit, choice = _blas.engine_call_threads(key)
    if choice is not None and choice.probing():
        n_steps = choice.probe_steps(n_steps)  # fewer steps on the other choice: it may lose
    fc.cfg.n_threads = n_threads
    fc.cfg.max_seconds = 0.0 if choice is None else choice.max_seconds(n_steps)
    with blas_limit:
        began = time.perf_counter()
        r, t, cost_sum, weight_sum, correct = _w.fit_epochs_call(
            fc, X, Y, m, w, perms, lrs, keys, Ws, bs, state, prefixes, t, k0, n_steps, norm,
            sums)
    if choice is not None:
        choice.observe(n_threads, int(r.steps), time.perf_counter() - began)
    return ChunkResult(int(r.steps), int(r.refused), int(r.epoch), int(r.batch),
                       _w.refusal_words(r) if r.refused and norm is None else "", t, cost_sum,
                       weight_sum, correct)
