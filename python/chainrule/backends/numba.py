"""The ``numba`` backend: thin wrappers that cast, allocate and call the kernels of
``chainrule.core``.

Validation is the model's job; here every array is made C-contiguous in the one dtype
of the call (a copy only when it is not already), outputs are allocated, and the
kernels do the arithmetic. Importing this module fails (and the backend is unavailable)
when numba or scipy is missing: numba's ``np.dot`` inside ``@njit`` needs SciPy's BLAS.

The training engine's workspaces are cached per thread (``threading.local``) and per
(layer sizes, batch size, dtype), so two models training in two threads never share
buffers. ``Network.step`` is one step of this ``fit_epochs`` (:mod:`chainrule.training.step`),
the course's X read where it lies.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (numba's np.dot needs it; fail early here)

import chainrule.core as core
from chainrule.core import train as core_train

from .. import reference as ref
from .. import spec
from . import compose
from . import engine
from .compose import refusal_words
from .engine import ChunkResult
from .registry import Ops, register

def _hold_numba_compiler_across_fork():
    """A fork waits for a compilation in another thread to finish: the child would inherit
    numba's compiler lock held by a thread that does not exist there and hang at its first
    compilation. The lock is taken before the fork and released on both sides."""
    import os

    from numba.core.compiler_lock import global_compiler_lock

    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=global_compiler_lock.acquire,
                            after_in_parent=global_compiler_lock.release,
                            after_in_child=global_compiler_lock.release)


_hold_numba_compiler_across_fork()

# The codes come from the one table; core keeps equal constants for @njit (a test checks).
_ACT = spec.ACTIVATION_CODES
_LOSS = spec.LOSS_CODES
_EMPTY = {np.dtype(np.float32): np.zeros((0, 0), np.float32),
          np.dtype(np.float64): np.zeros((0, 0), np.float64)}
_WORKSPACES_PER_THREAD = 4


def _c(x, dtype):
    return np.ascontiguousarray(x, dtype=dtype)


def _c_or_f(x, dtype):
    """``x`` as it is when it has ``dtype`` and is C- or F-contiguous (``np.dot`` in the
    kernel takes either: the forward reads ``X_rows.T`` in place) or a 2-D view with unit
    stride along one axis (a column block of either), else a C-contiguous copy."""
    if x.dtype == dtype and x.ndim == 2 and x.flags.aligned and (
            x.flags.c_contiguous or x.flags.f_contiguous or x.itemsize in x.strides):
        return x
    return _c(x, dtype)


@register("dense_forward", "numba")
def dense_forward(A_prev, W, b, activation):
    dtype = W.dtype
    n, m = W.shape[0], A_prev.shape[1]
    Z = np.empty((n, m), dtype)
    A = np.empty((n, m), dtype)
    _dense_forward_into(A_prev, W, b, activation, Z, A)
    return Z, A


def _dense_forward_into(A_prev, W, b, activation, Z, A):
    dtype = W.dtype
    A_prev, W, b = _c_or_f(A_prev, dtype), _c(W, dtype), _c(b, dtype)
    name, alpha = ref.parse_activation(activation)
    scratch = np.empty((2, A_prev.shape[1]))
    if A_prev.flags.c_contiguous or A_prev.flags.f_contiguous:
        core.dense_forward(A_prev, W, b, Z, A, _ACT[name], alpha, scratch[0], scratch[1])
    else:  # a column block of a wider X: NumPy's product reads it in place (BLAS's strides)
        np.matmul(W, A_prev, out=Z)
        core.bias_activation(Z, b, A, _ACT[name], alpha, scratch[0], scratch[1])


@register("forward", "numba")
def forward(X, Ws, bs, activations, masks=None, out=None):
    """The generic composition of :func:`dense_forward`; with ``out`` (and no masks) into
    those arrays (``predict``/``score`` reuse them)."""
    dtype = Ws[0].dtype
    m = X.shape[1]
    if out is None or masks is not None or not all(
            a.dtype == dtype and a.shape == (W.shape[0], m) and a.flags.c_contiguous
            and a.flags.writeable for arrays in out for a, W in zip(arrays, Ws)):
        return compose.forward(_numba_ops(), X, Ws, bs, activations, masks)
    Zs, As = list(out[0]), [X] + list(out[1])
    for l in range(1, len(Ws) + 1):
        _dense_forward_into(As[l - 1], Ws[l - 1], bs[l - 1], activations[l - 1], Zs[l - 1],
                            As[l])
    return Zs, As


def _numba_ops():
    ops = _OPS.get("ops")
    if ops is None:
        ops = _OPS["ops"] = Ops("numba")
    return ops


_OPS = {}


@register("dense_backward", "numba")
def dense_backward(dZ, A_prev, W, Z_prev, activation_prev, convention="L", lambd=0.0,
                   mask_prev=None, need_dA_prev=False):
    dtype = W.dtype
    dZ, A_prev, W = _c(dZ, dtype), _c(A_prev, dtype), _c(W, dtype)
    m = A_prev.shape[1]
    has_prev = Z_prev is not None
    has_mask = has_prev and mask_prev is not None
    empty = _EMPTY[dtype]
    dW = np.empty(W.shape, dtype)
    db = np.empty((W.shape[0], 1), dtype)
    dZ_prev = np.empty(A_prev.shape, dtype) if has_prev else empty
    dA_prev = np.empty(A_prev.shape, dtype) if need_dA_prev else empty
    act, alpha = (_ACT[activation_prev[0]], float(activation_prev[1])) if has_prev else (0, 0.0)
    core.dense_backward(dZ, A_prev, W, _c(Z_prev, dtype) if has_prev else empty, act, alpha,
                        1.0 / m if convention == "L" else 1.0, lambd / m,
                        _c(mask_prev, dtype) if has_mask else empty, has_mask, has_prev,
                        need_dA_prev, dW, db, dZ_prev, dA_prev)
    if need_dA_prev and not has_prev and mask_prev is not None:
        dA_prev *= mask_prev  # the input layer's dA0 = (W^T dZ) * mask, as the reference
    return (dZ_prev if has_prev else None), dW, db, (dA_prev if need_dA_prev else None)


_local = threading.local()


# --------------------------------------------------------------------------- the training engine
# fit_epochs (contract: chainrule.backends.engine): arguments packed for core.train.fit_epochs.

_NO_PERM = np.zeros((0, 0), dtype=np.int64)
_NO_KEYS = np.zeros(0, dtype=np.uint64)
_F64 = np.dtype(np.float64)
_NONE_1D = {dtype: a[0, :0] for dtype, a in
            ((d, np.zeros((1, 0), d)) for d in (np.dtype(np.float32), _F64))}


class _EngineWorkspace:
    __slots__ = ("buf", "offs", "scratch", "out")

    def __init__(self, layer_dims, s, dtype):
        size, self.offs = core_train.workspace_layout(layer_dims, s)
        self.buf = np.empty(size, dtype)
        self.scratch = np.empty((3, s))
        self.out = np.zeros(8, dtype=np.int64)


def _engine_workspace(layer_dims, s, dtype):
    """This thread's cached workspace of the engine for these sizes, batch size and dtype."""
    try:
        cache = _local.engine_workspaces
    except AttributeError:
        cache = _local.engine_workspaces = OrderedDict()
    key = (tuple(layer_dims), s, dtype.num)
    ws = cache.get(key)
    if ws is None:
        ws = cache[key] = _EngineWorkspace(layer_dims, s, dtype)
        while len(cache) > _WORKSPACES_PER_THREAD:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return ws


class _Prepared:
    """What a compiled call needs that depends only on the plan and the dtype, built once:
    the kernel's constant arrays, the names of the optimiser state it reads, and the
    workspace of the last batch size (a call then does only its own work)."""

    __slots__ = ("compiled", "batch_norm", "drops", "fconst", "iconst", "bn", "state_names",
                 "gamma_names", "layer_dims", "s", "ws")

    def __init__(self, plan, dtype):
        layers = plan.layers
        L = len(layers)
        self.compiled = plan.optimizer_code is not None
        self.batch_norm = plan.batch_norm
        self.drops = plan.drops
        self.bn = [layer.batch_norm for layer in layers]
        self.layer_dims = tuple(plan.layer_dims)
        self.s, self.ws = None, None
        if not self.compiled:
            return
        probs = [layer.keep_prob for layer in layers]
        finfo = np.finfo(dtype)
        self.fconst, self.iconst = core_train.constants(
            probs, [float(dtype.type(1) / dtype.type(p)) for p in probs],
            [layer.alpha for layer in layers], [layer.code for layer in layers],
            [int(f) for f in self.bn], _LOSS[plan.loss], plan.optimizer_code, plan.lambd,
            float(finfo.eps), float(finfo.max), plan.hyper,
            (plan.bn_momentum, plan.bn_epsilon, float(plan.bn_unbiased)))
        # a batch-norm layer's bs entry is its beta (state v_dbeta{l}, ...)
        bname = ["beta" if f else "b" for f in self.bn]
        self.state_names = {
            p: ([f"{p}_dW{l}" for l in range(1, L + 1)],
                [f"{p}_d{bname[l - 1]}{l}" for l in range(1, L + 1)])
            for p in ("v", "s") if p in plan.state_prefixes}
        self.gamma_names = {p: [f"{p}_dgamma{l}" if self.bn[l - 1] else None
                                for l in range(1, L + 1)] for p in self.state_names}

    def workspace(self, s, dtype):
        if s != self.s:
            self.ws = _engine_workspace(self.layer_dims, s, dtype)
            self.s = s
        return self.ws


def _prepared(plan, dtype):
    """This thread's :class:`_Prepared` of ``plan`` and ``dtype``: the last one when the
    plan is the same object (a fit's calls, the engine's single steps), else cached per
    ``(plan.key, dtype)``."""
    last = getattr(_local, "last_prepared", None)
    if last is not None and last[0] is plan and last[1] is dtype:
        return last[2]
    try:
        cache = _local.prepared
    except AttributeError:
        cache = _local.prepared = OrderedDict()
    key = (plan.key, dtype.num)
    prep = cache.get(key)
    if prep is None:
        prep = cache[key] = _Prepared(plan, dtype)
        while len(cache) > _WORKSPACES_PER_THREAD:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    _local.last_prepared = (plan, dtype, prep)
    return prep


def _as_c(x, dtype):
    """``x`` when it is already a C-contiguous ndarray of ``dtype`` (the usual case, checked
    faster than ``np.ascontiguousarray`` does), else a C-contiguous copy."""
    if x.__class__ is np.ndarray and x.dtype is dtype and x.flags.c_contiguous:
        return x
    return np.ascontiguousarray(x, dtype=dtype)


@register("fit_epochs", "numba")
def fit_epochs(plan, XT, YT, w, *, perms, lrs, keys, k0, n_steps, t, state, Ws, bs,
               norm=None, sums=None):
    """:func:`chainrule.backends.engine.fit_epochs` in one compiled call,
    :func:`chainrule.core.train.fit_epochs` (same arguments and result; the counter-based
    dropout masks only). The workspace is this thread's, cached per shape. An optimiser
    without a code (``plan.optimizer_code``) runs on the generic composition over this
    backend's layer ops until its update is compiled too. A plan with batch norm runs
    compiled too (``norm``: the engine's); a step the compiled loop hands over (a bound it
    cannot prove, anything not finite, a batch of one) runs on the composition, which
    applies or refuses it, and the compiled loop goes on from the next one.

    ``XT = X.T`` of the course's C-contiguous X (F-ordered) is read in place, not copied,
    when one batch covers every example and there is no ``perms`` (a single step, a
    full-batch fit); otherwise an ``XT`` that is not C-contiguous is copied once per call."""
    prep = _prepared(plan, Ws[0].dtype)
    if not prep.compiled:
        return engine.generic(Ops("numba"), plan, XT, YT, w, perms=perms, lrs=lrs, keys=keys,
                              k0=k0, n_steps=n_steps, t=t, state=state, Ws=Ws, bs=bs,
                              norm=norm, sums=sums)
    if not prep.batch_norm:
        return _compiled(prep, plan, XT, YT, w, perms, lrs, keys, k0, n_steps, t, state, Ws,
                         bs, None, sums)

    def compiled(perms, lrs, keys, k0, n_steps, t, sums):
        res = _compiled(prep, plan, XT, YT, w, perms, lrs, keys, k0, n_steps, t, state, Ws,
                        bs, norm, sums)
        return res, res.status == core_train.HANDOVER

    return engine.with_handover(compiled, plan, XT, YT, w, perms=perms, lrs=lrs, keys=keys,
                                k0=k0, n_steps=n_steps, t=t, state=state, Ws=Ws, bs=bs,
                                norm=norm, ops=Ops("numba"), sums=sums)


def _compiled(prep, plan, XT, YT, w, perms, lrs, keys, k0, n_steps, t, state, Ws, bs, norm,
              sums):
    """One call of the compiled loop (``norm``: batch norm's arrays, or None; ``sums``: the
    running sums it adds to, :func:`chainrule.backends.engine.running_sums`)."""
    dtype = Ws[0].dtype
    m = XT.shape[0]
    s = plan.mini_batch_size
    s = m if s > m else s
    has_perm = perms is not None
    flags = XT.flags
    if (not has_perm and s == m and flags.f_contiguous and not flags.c_contiguous
            and XT.dtype == dtype and XT.ndim == 2 and flags.aligned):
        X, XT = XT.T, _EMPTY[dtype]  # one batch of all m examples: the course's X in place
    else:
        X, XT = _EMPTY[dtype], _as_c(XT, dtype)
    YT = _as_c(YT, dtype)
    lrs = _as_c(lrs, _F64)
    E = lrs.shape[0]
    has_w = w is not None
    w = _as_c(w, dtype) if has_w else _NONE_1D[dtype]
    perms = _as_c(perms, np.dtype(np.int64)) if has_perm else _NO_PERM
    if keys is not None:
        keys = np.array([int(k) & 0xFFFFFFFFFFFFFFFF for k in keys], dtype=np.uint64)
    else:
        keys = np.zeros(E, dtype=np.uint64) if prep.drops else _NO_KEYS
    Ws_t, bs_t = tuple(Ws), tuple(bs)
    v = s_ = (Ws_t, bs_t)
    names = prep.state_names
    if names:
        if "v" in names:
            v = tuple(tuple(state[k] for k in ks) for ks in names["v"])
        if "s" in names:
            s_ = tuple(tuple(state[k] for k in ks) for ks in names["s"])
    if norm is None:
        Gs = vGs = sGs = RMs = RVs = bs_t
    else:
        gammas, means, varis = norm
        Gs = tuple(g if g is not None else b for g, b in zip(gammas, bs))
        RMs = tuple(a if a is not None else b for a, b in zip(means, bs))
        RVs = tuple(a if a is not None else b for a, b in zip(varis, bs))
        vGs = sGs = Gs
        if "v" in names:
            vGs = tuple(state[k] if k else b for k, b in zip(prep.gamma_names["v"], bs))
        if "s" in names:
            sGs = tuple(state[k] if k else b for k, b in zip(prep.gamma_names["s"], bs))
    ws = prep.workspace(s, dtype)
    sums = engine.running_sums(sums, E)
    correct = np.zeros(E, dtype=np.int64)
    t = core_train.fit_epochs(
        XT, X, YT, w, has_w, perms, has_perm, lrs, keys, int(k0), int(n_steps), s,
        prep.fconst, prep.iconst, int(t), Ws_t, bs_t, v[0], v[1], s_[0], s_[1], ws.buf,
        ws.offs, ws.scratch, sums, correct, ws.out, Gs, vGs, sGs, RMs, RVs)
    steps, status, epoch, batch, code, layer, is_b, is_s = ws.out.tolist()
    what = refusal_words(code, f"{'b' if is_b else 'W'}{layer + 1}", "s" if is_s else "v") \
        if status == 1 else ""
    return ChunkResult(steps, status, epoch, batch, what, t, sums[0], sums[1], correct)
