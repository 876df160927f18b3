"""The C backend's network ops: per-thread workspaces and the whole-step plans.

``train_step`` runs a whole step in one C call (``cr_train_step``) where
the output's ``dZ[L]`` is ``A[L] - Y`` (``spec.FUSED_OUTPUT_LOSS``) and there is no dropout:
forward, backward, ``update_is_safe``'s check and the update, in buffers kept per thread
with the cffi pointers to them, and to the parameters while the same arrays come back
(checked again at every call: shape, dtype, C-contiguous, aligned, writeable). Other
outputs and dropout take the per-layer path (``_step``). On planar [2, 4, 1] m=400 the
Python calls of the per-layer path and libm's scalar ``tanh``/``exp`` made the step slower
than NumPy's; the whole step with the vectorised ``sigmoid``/``tanh`` of ``dense.c`` is
about 5x faster than NumPy's (docs/benchmarks.md).
"""

from __future__ import annotations

import threading
import time

import numpy as np

from ... import reference as ref
from ..engine import ChunkResult, with_handover
from ..engine import generic as generic_fit_epochs
from ..compose import cost as _cost
from ..compose import learning_rate_fits as _learning_rate_fits
from ..compose import update_is_safe as _update_is_safe
from ..registry import Ops, register
from .wrappers import (STEP_FN, ShapeError, _array, _backward_into, _buf, _check_network,
                       _check_status, _contiguous, _forward_into, _FN, _out, _scale, new)
from . import blas as _blas
from . import wrappers as _w


class _Workspace(threading.local):
    """Per-thread buffers reused by train_step (their arrays never leave)."""

    def __init__(self):
        self.key = None
        self.buffers = None
        self.plan = None  # the plan of the last whole-step call
        self.spare_plan = None  # the one before it, of another shape (a smaller last batch)


_workspace = _Workspace()


def _buffers(dt, dims, m):
    key = (dt, tuple(dims), m)
    if _workspace.key != key:
        L = len(dims) - 1
        _workspace.buffers = dict(
            Zs=[np.empty((dims[l], m), dt) for l in range(1, L + 1)],
            As=[None] + [np.empty((dims[l], m), dt) for l in range(1, L + 1)],
            dZs=[np.empty((dims[l], m), dt) for l in range(1, L + 1)],
            dWs=[np.empty((dims[l], dims[l - 1]), dt) for l in range(1, L + 1)],
            dbs=[np.empty((dims[l], 1), dt) for l in range(1, L + 1)],
        )
        _workspace.key = key
    return _workspace.buffers


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
                      need_dA, buf, dWs=None):
    """``dWs``: where each dW goes (``None`` entries skip that dW); default ``buf["dWs"]``."""
    L = len(Ws)
    m = Y.shape[1]
    s, l2 = _scale(convention, m), float(lambd) / m
    dZs, dbs = buf["dZs"], buf["dbs"]
    dWs = buf["dWs"] if dWs is None else dWs
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



# rounding inside the GEMM cannot reach it.
_BOUND_LIMIT = {np.dtype(np.float64): np.finfo(np.float64).max / 16,
                np.dtype(np.float32): float(np.finfo(np.float32).max) / 16}


def _fuse_update(n, n_prev, m, lambd):
    """Whether layer (n, n_prev) updates W straight from dZ A_prev^T (no dW stored).

    The fused update must know, before touching any W, that dW is finite. It bounds it from
    the inputs, ``|dW| <= s m max|dZ| max|A_prev| + l2 max|W|``, which reads dZ and A_prev
    (and W); storing dW instead costs writing it, scanning it and reading it again in the
    update, about three passes over an (n, n_prev) array. Fused wins where the layer's
    weights outweigh its activations: the 2048 x 2048 layers of the wide benchmark (m =
    512), not the input layer of the cat one (12288 x 209 inputs, 20 x 12288 weights).
    """
    return (n + n_prev) * m + (n * n_prev if lambd else 0) < 3 * n * n_prev


def _step(X, Y, Ws, bs, activations, codes, loss, lr, lambd, masks, compute_cost, buf):
    """One training step; ``(ok, cost)``. Updates nothing unless update_is_safe (every
    gradient finite, no update past the dtype's maximum)."""
    fn = _FN[X.dtype]
    Zs, As = _forward_checked(X, Ws, bs, codes, masks, buf)
    J = _cost(Y, As[-1], Ws, loss, lambd) if compute_cost else float("nan")
    m = X.shape[1]
    s, l2 = 1.0 / m, lambd / m
    fused = [_fuse_update(*W.shape, m, lambd) for W in Ws]
    dWs = [None if f else dW for f, dW in zip(fused, buf["dWs"])]
    dZs, _, dbs, _ = _backward_checked(Y, Zs, As, Ws, codes, activations, loss, "L", lambd,
                                       masks, False, buf, dWs)
    limit = _BOUND_LIMIT[X.dtype]
    for l, W in enumerate(Ws):
        if fused[l]:
            max_dZ = fn[5](_buf(dZs[l]), dZs[l].size)
            bound_db = m * max_dZ * s
            bound = bound_db * fn[5](_buf(As[l]), As[l].size)
            if l2:
                bound += l2 * fn[5](_buf(W), W.size)
            if (bound < limit and bound_db < limit and lr >= 0
                    and fn[5](_buf(W), W.size) + lr * bound < limit
                    and fn[5](_buf(bs[l]), bs[l].size) + lr * bound_db < limit):
                continue  # update_is_safe holds for W and b: no need to store dW
            # too large to be sure: compute dW after all and check it exactly
            fused[l] = False
            dWs[l] = buf["dWs"][l]
            _backward_into(dZs[l], As[l], W, None, None, 0, 0.0, s, l2, None, dWs[l],
                           dbs[l], None)
        if not _update_is_safe([W, bs[l]], [dWs[l], dbs[l]], lr):
            return False, J
    for l, (W, b) in enumerate(zip(Ws, bs)):
        if fused[l]:
            # W - lr (s dZ A_prev^T + l2 W) = (1 - lr l2) W + (-lr s) dZ A_prev^T
            n, n_prev = W.shape
            _check_status(fn[4](_buf(dZs[l]), _buf(As[l]), _buf(dbs[l]), -lr * s, 1.0 - lr * l2,
                                lr, _out(W), _out(b), n, n_prev, m), "cr_dense_update")
        else:
            _check_status(fn[2](_out(W), _buf(dWs[l]), lr, W.size), "cr_sgd_update")
            _check_status(fn[2](_out(b), _buf(dbs[l]), lr, b.size), "cr_sgd_update")
    return True, J



# --------------------------------------------------------------------------- whole step in C
# For the output activations and losses whose dZ[L] is A[L] - Y (ref.FUSED_OUTPUT_LOSS),
# without dropout, cr_train_step runs the whole step in one call: forward, backward,
# update_is_safe's check and the update. A plan holds what it needs for one network shape:
# the buffers, cffi pointer arrays to them, and pointer arrays to the last parameters seen
# (kept while the same arrays come back, so that a step passes only X and Y).




_CSCALAR = {np.dtype(np.float64): "double", np.dtype(np.float32): "float"}


class _Plan:
    """Buffers and pointers of cr_train_step for one (dtype, dims, m, activations, loss, L2)."""

    def __init__(self, dt, dims, m, acts, codes, loss, l2):
        L = len(dims) - 1
        self.key = (dt, tuple(dims), m, acts, loss, l2)
        self.dt, self.dims, self.m, self.L = dt, tuple(dims), m, L
        self.acts, self.loss, self.l2 = acts, loss, l2
        self.X_shape, self.Y_shape = (dims[0], m), (dims[-1], m)
        self.W_shapes = [(dims[l], dims[l - 1]) for l in range(1, L + 1)]
        self.b_shapes = [(dims[l], 1) for l in range(1, L + 1)]
        buf = _fresh(dt, dims, m)
        self.As = buf["As"][1:]
        self.arrays = buf  # the buffers the pointers below point into
        self._keep = []  # their cffi views, alive as long as the plan
        scalar = _CSCALAR[dt]
        self.ptr_type = f"{scalar} *[]"
        self.Z, self.A, self.dZ, self.dW, self.db = (
            self._pointers(a) for a in (buf["Zs"], self.As, buf["dZs"], buf["dWs"], buf["dbs"]))
        self.codes = new("int[]", [c for c, _ in codes])
        self.alphas = new(f"{scalar}[]", [a for _, a in codes])
        self.fuse = new("int[]", [int(_fuse_update(*shape, m, l2))
                                      for shape in self.W_shapes])
        self.fused_now = new("int[]", L)
        self.dims_c = new("long long[]", list(dims))
        self.applied = new("int *")
        self.Ws = self.bs = None  # the parameters the pointers W_ptr, b_ptr point into
        self.W_ptr = self.b_ptr = None

    def _pointers(self, arrays):
        views = [_out(a) for a in arrays]
        self._keep.extend(views)
        return new(self.ptr_type, views)

    def set_params(self, Ws, bs):
        self.Ws, self.bs = list(Ws), list(bs)
        self._param_bufs = [_out(p) for p in self.Ws + self.bs]
        self.W_ptr = new(self.ptr_type, self._param_bufs[:self.L])
        self.b_ptr = new(self.ptr_type, self._param_bufs[self.L:])
        # cr_train_step's arguments after X and Y, up to the learning rate
        self.args = (self.W_ptr, self.b_ptr, self.codes, self.alphas, self.Z, self.A, self.dZ,
                     self.dW, self.db, self.fuse, self.fused_now, self.dims_c, self.L, self.m)

    def same_params(self, Ws, bs):
        """Whether ``Ws, bs`` are the arrays of the last call and still fit (a shape, dtype
        or flag can be changed in place)."""
        if self.Ws is None or len(Ws) != self.L or len(bs) != self.L:
            return False
        dt = self.dt
        for p, q, shape in zip(Ws, self.Ws, self.W_shapes):
            if p is not q or p.shape != shape or p.dtype != dt:
                return False
        for p, q, shape in zip(bs, self.bs, self.b_shapes):
            if p is not q or p.shape != shape or p.dtype != dt:
                return False
        for p in self.Ws + self.bs:
            flags = p.flags
            if not (flags.writeable and flags.c_contiguous and flags.aligned):
                return False
        return True


def _plan(X, Y, Ws, bs, activations, loss, lambd, masks):
    """The plan for this call, its arguments checked; ``None`` where cr_train_step does not
    apply (dropout masks, an output and loss without ``dZ[L] = A[L] - Y``)."""
    if masks is not None and any(mask is not None for mask in masks):
        return None, X, Y
    try:
        acts = tuple(activations)
    except TypeError:
        return None, X, Y
    l2 = bool(lambd)
    plan = _workspace.plan
    if (plan is not None and plan.acts == acts and plan.loss == loss and plan.l2 == l2
            and isinstance(X, np.ndarray) and isinstance(Y, np.ndarray)
            and X.dtype == plan.dt and Y.dtype == plan.dt
            and X.shape == plan.X_shape and Y.shape == plan.Y_shape
            and plan.same_params(Ws, bs)):
        return plan, _contiguous(X), _contiguous(Y)
    try:
        fused_output = (ref.parse_activation(acts[-1])[0], loss) in ref.FUSED_OUTPUT_LOSS
    except Exception:  # no layers, or a bad activation: the checks below say what is wrong
        fused_output = False
    if not fused_output:
        return None, X, Y
    dt, X, Ws, bs, codes, _ = _check_network(X, Ws, bs, activations, None, update=True)
    Y = _check_Y(Y, dt, (Ws[-1].shape[0], X.shape[1]))
    dims, m = _dims(Ws), X.shape[1]
    key = (dt, tuple(dims), m, acts, loss, l2)
    if plan is None or plan.key != key:
        spare = _workspace.spare_plan
        if spare is not None and spare.key == key:
            _workspace.spare_plan, plan = plan, spare
        else:
            _workspace.spare_plan = None  # free the older buffers first
            _workspace.spare_plan, plan = plan, _Plan(dt, dims, m, acts, codes, loss, l2)
        _workspace.plan = plan
    plan.set_params(Ws, bs)
    return plan, X, Y


def _run_plan(plan, X, Y, lr, lambd, compute_cost):
    """One step through cr_train_step; ``(ok, cost)`` as train_step's."""
    J_l2 = 0.0
    if compute_cost and lambd:  # of the parameters before the update
        J_l2 = ref.l2_cost({f"W{l}": W for l, W in enumerate(plan.Ws, 1)}, lambd, plan.m)
    status = STEP_FN[plan.dt](_buf(X), _buf(Y), *plan.args, lr, lambd, _BOUND_LIMIT[plan.dt],
                               plan.applied)
    if status:
        _check_status(status, "cr_train_step")
    J = float("nan")
    if compute_cost:
        J = ref.compute_cost(plan.As[-1], Y, plan.loss)
        if lambd:
            J += J_l2
    return bool(plan.applied[0]), J


def _lr_fits(lr, Ws):
    """cr_train_step bounds the update in double but multiplies by lr in the parameters'
    dtype: an lr past that dtype's maximum (inf there, and inf * 0 = NaN) takes the checked
    path, where update_is_safe refuses it."""
    return _learning_rate_fits(lr, Ws[0].dtype)


@register("train_step", "c")
def train_step(X, Y, Ws, bs, activations, loss, learning_rate, lambd=0.0, masks=None,
               compute_cost=False):
    """Forward, backward and (if update_is_safe) the SGD update, in reused buffers: one C
    call (cr_train_step) where the output's dZ[L] is A[L] - Y and there is no dropout."""
    lr, lambd = float(learning_rate), float(lambd)
    plan, X_c, Y_c = _plan(X, Y, Ws, bs, activations, loss, lambd, masks)
    if plan is not None and _lr_fits(lr, Ws):
        return _run_plan(plan, X_c, Y_c, lr, lambd, compute_cost)
    dt, X, Ws, bs, codes, masks = _check_network(X, Ws, bs, activations, masks, update=True)
    Y = _check_Y(Y, dt, (Ws[-1].shape[0], X.shape[1]))
    buf = _buffers(dt, _dims(Ws), X.shape[1])
    return _step(X, Y, Ws, bs, activations, codes, loss, lr, lambd, masks, compute_cost, buf)


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
               masks=None, norm=None):
    """:func:`chainrule.backends.engine.fit_epochs` in one C call (``cr_fit_epochs``).

    ``XT``, ``YT``, ``w``, ``perms`` (int64) and the optimiser ``state`` must already be
    C-contiguous arrays of the network's dtype: nothing is copied per call. The course-exact
    masks (``masks``) are the reference's only. An optimiser without a code
    (``plan.optimizer_code``) runs on the generic composition until it is compiled too, and
    so does a plan with batch-norm layers (``norm``: the engine's).
    """
    if plan.batch_norm and (masks is not None or plan.optimizer_code is None):
        return generic_fit_epochs(Ops("c"), plan, XT, YT, w, perms=perms, lrs=lrs, keys=keys,
                                  k0=k0, n_steps=n_steps, t=t, state=state, Ws=Ws, bs=bs,
                                  masks=masks, norm=norm)
    if plan.batch_norm:
        def compiled(perms, lrs, keys, k0, n_steps, t):
            res = _compiled(plan, XT, YT, w, perms, lrs, keys, k0, n_steps, t, state, Ws, bs,
                            norm)
            return res, res.status == 1  # every refusal: the composition decides and words it

        return with_handover(compiled, plan, XT, YT, w, perms=perms, lrs=lrs, keys=keys,
                             k0=k0, n_steps=n_steps, t=t, state=state, Ws=Ws, bs=bs,
                             norm=norm, ops=Ops("c"))
    if masks is not None:
        raise _w.InputError("the C engine draws the counter-based dropout masks only; the "
                            "course-exact masks run on the reference engine")
    if plan.optimizer_code is None:
        return generic_fit_epochs(Ops("c"), plan, XT, YT, w, perms=perms, lrs=lrs, keys=keys,
                                  k0=k0, n_steps=n_steps, t=t, state=state, Ws=Ws, bs=bs)
    return _compiled(plan, XT, YT, w, perms, lrs, keys, k0, n_steps, t, state, Ws, bs, None)


def _compiled(plan, XT, YT, w, perms, lrs, keys, k0, n_steps, t, state, Ws, bs, norm):
    """One cr_fit_epochs call, its arguments checked (``norm``: batch norm's, or None)."""
    L = plan.L
    if len(Ws) != L or len(bs) != L:
        raise ShapeError(f"got {len(Ws)} weights and {len(bs)} biases for a plan of {L} "
                         f"layers: give one of each per layer")
    dt = _w._dtype_of(Ws[0])
    dims = plan.layer_dims
    if not isinstance(XT, np.ndarray) or XT.ndim != 2 or XT.shape[0] < 1:
        raise ShapeError(f"XT must be a 2-D array (m, {dims[0]}) with m >= 1")
    m = XT.shape[0]
    _w._as_is(XT, "XT", dt, (m, dims[0]))
    _w._as_is(YT, "YT", dt, (m, dims[-1]))
    for l, (W, b) in enumerate(zip(Ws, bs), 1):
        _w._as_is(W, f"W[{l}]", dt, (dims[l], dims[l - 1]), writable=True)
        _w._as_is(b, f"b[{l}]", dt, (dims[l], 1), writable=True)
    lrs = np.ascontiguousarray(lrs, dtype=np.float64).reshape(-1)
    E = lrs.size  # any rates: one that makes the update non-finite refuses the step
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
    kinds = [("W", Ws), ("b", bs)]
    if norm is not None:  # a batch-norm layer's bs entry is beta; its gamma beside it
        for l, layer in enumerate(plan.layers, 1):
            if layer.batch_norm:
                for name, arrays in (("gamma", norm[0]), ("running_mean", norm[1]),
                                     ("running_var", norm[2])):
                    _w._as_is(arrays[l - 1], f"{name}[{l}]", dt, (dims[l], 1), writable=True)
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

    key = (dt, plan.key)
    cached = _fit_plans.plan
    if cached is None or cached[0] != key:
        fc = _w.FitConfig(dt, plan)
        cached = _fit_plans.plan = (key, fc, np.empty(fc.work_bytes, np.uint8))
    _, fc, work = cached
    n_threads, blas_limit, choice = _blas.engine_call_threads(key)
    if choice is not None and choice.probing():
        n_steps = choice.probe_steps(n_steps)  # fewer steps on the other choice: it may lose
    fc.cfg.n_threads = n_threads
    fc.cfg.max_seconds = 0.0 if choice is None else choice.max_seconds(n_steps)
    with blas_limit:
        began = time.perf_counter()
        r, t, cost_sum, weight_sum, correct = _w.fit_epochs_call(
            fc, work, XT, YT, w, perms, lrs, keys, Ws, bs, state, prefixes, t, k0, n_steps,
            norm)
    if choice is not None:
        choice.observe(n_threads, int(r.steps), time.perf_counter() - began)
    return ChunkResult(int(r.steps), int(r.refused), int(r.epoch), int(r.batch),
                       _w.refusal_words(r) if r.refused and norm is None else "", t, cost_sum,
                       weight_sum, correct)
