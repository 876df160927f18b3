"""The checked calls into ``chainrule._cdense``: the only module that touches ``ffi``/``lib``.

Before every call into C it checks dtype, shape and contiguity (``ffi.from_buffer`` reads a
float32 buffer as ``double[]`` without complaint), allocates every output, and turns a
non-zero status into :class:`CKernelError`. The layer ops ``dense_forward``,
``dense_backward`` and ``sgd_update`` are registered here; the network ops and the whole-step
plans are in :mod:`.plans`, the BLAS the kernels call in :mod:`.blas`.
"""

from __future__ import annotations

import operator

import numpy as np

from ... import spec
from ...reference import parse_activation
from ...errors import ChainruleError, InputError, ShapeError
from ..compose import refusal_words as _refusal_words
from ..registry import register

from ..._cdense import ffi, lib  # ImportError here: the "c" backend is unavailable


class CKernelError(ChainruleError, RuntimeError):
    """A C kernel returned a non-zero status (a bug: the wrapper checks every argument first)."""


_STATUS = {
    lib.CR_BAD_SIZE: "a size is < 1 or too large to address",
    lib.CR_BAD_ACTIVATION: "unknown activation code",
    lib.CR_NO_DERIVATIVE: "softmax has no elementwise derivative (hidden layers only use "
                          "elementwise activations)",
    lib.CR_MISSING_BUFFER: "a required buffer is NULL",
}
# The codes of the one table; csrc/dense.h's enum cr_activation holds the same (a test checks).
_ACTIVATION_CODE = dict(spec.ACTIVATION_CODES)
_OUTPUT_ONLY = {a.code for a in spec.ACTIVATION_TABLE if a.output_only}
_CTYPE = {np.dtype(np.float64): "double[]", np.dtype(np.float32): "float[]"}
_FN = {
    np.dtype(np.float64): (lib.cr_dense_forward_f64, lib.cr_dense_backward_f64,
                           lib.cr_sgd_update_f64, lib.cr_all_finite_f64,
                           lib.cr_max_abs_f64),
    np.dtype(np.float32): (lib.cr_dense_forward_f32, lib.cr_dense_backward_f32,
                           lib.cr_sgd_update_f32, lib.cr_all_finite_f32,
                           lib.cr_max_abs_f32),
}
NULL = ffi.NULL


def _check_status(status, fn):
    if status != 0:
        raise CKernelError(f"{fn} returned status {status}: {_STATUS.get(status, 'unknown')}")


def new(ctype, init=None):
    """``ffi.new``: a C array or pointer owned by Python (freed with the returned object)."""
    return ffi.new(ctype, init)


def set_blas_pointers(dgemm, sgemm, int_bytes):
    """Hand the kernels a Fortran ``dgemm``/``sgemm`` (addresses, or ``None`` for no BLAS)."""
    if dgemm is None:
        _check_status(lib.cr_set_blas(NULL, NULL, 4), "cr_set_blas")
        return
    _check_status(lib.cr_set_blas(ffi.cast("cr_dgemm_t", dgemm), ffi.cast("cr_sgemm_t", sgemm),
                                  int_bytes), "cr_set_blas")


def parallel_thresholds(macs=None, entries=None):
    """The engine's cut-offs for running a part of a step on several threads (multiply-adds
    of a product, entries of an element-wise pass); with arguments, set them. Returns the
    values before the call."""
    out = ffi.new("double[2]")
    lib.cr_get_parallel_thresholds(out, out + 1)
    before = (float(out[0]), float(out[1]))
    if macs is not None or entries is not None:
        macs = before[0] if macs is None else float(macs)
        entries = before[1] if entries is None else float(entries)
        _check_status(lib.cr_set_parallel_thresholds(macs, entries),
                      "cr_set_parallel_thresholds")
    return before


def get_blas_threshold():
    return int(lib.cr_get_blas_threshold())


def set_blas_threshold(threshold):
    """Products of fewer than ``threshold`` multiply-adds (``n n_prev m``) use the C loops.

    ``0`` sends every product to BLAS. Returns the previous threshold.
    """
    previous = get_blas_threshold()
    _check_status(lib.cr_set_blas_threshold(int(threshold)), "cr_set_blas_threshold")
    return previous


# --------------------------------------------------------------------------- checks

def _dtype_of(W):
    if not isinstance(W, np.ndarray):
        raise InputError(f"W must be a NumPy array, got {type(W).__name__}")
    dt = W.dtype
    if dt not in _CTYPE:
        raise InputError(f"the C backend computes in float32 or float64, got W of dtype {dt}")
    return dt


def _array(x, name, dt, shape):
    """``x`` as a C-contiguous array of dtype ``dt`` and the given shape (a copy only if
    ``x`` is not contiguous); a different dtype or shape is an error, never a cast."""
    if not isinstance(x, np.ndarray):
        raise InputError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if x.dtype != dt:
        raise InputError(f"{name} has dtype {x.dtype} but W has dtype {dt}: give every array "
                         f"the same dtype (float32 or float64)")
    if x.shape != shape:
        raise ShapeError(f"{name} has shape {x.shape}, expected {shape}")
    return _contiguous(x)


def _contiguous(x):
    """``x``, or a C-contiguous, aligned copy of it (C reads whole elements in row order)."""
    if x.flags.c_contiguous and x.flags.aligned:
        return x
    return np.array(x, order="C", copy=True)


def _buf(x):
    return ffi.from_buffer(_CTYPE[x.dtype], x)


def _out(x):
    return ffi.from_buffer(_CTYPE[x.dtype], x, require_writable=True)


def _activation(spec, name):
    act, alpha = parse_activation(spec)
    if act not in _ACTIVATION_CODE:
        raise InputError(f"{name}: unknown activation {act!r}; valid: "
                         f"{', '.join(_ACTIVATION_CODE)}")
    if not np.isfinite(alpha):
        raise InputError(f"{name}: alpha must be finite, got {alpha!r}")
    return _ACTIVATION_CODE[act], alpha


def ref_name(activation):
    return parse_activation(activation)[0]


def _2d(x, name):
    if not isinstance(x, np.ndarray):
        raise InputError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if x.ndim != 2:
        raise ShapeError(f"{name} must be 2-D, got shape {x.shape}")
    if 0 in x.shape:
        raise ShapeError(f"{name} has shape {x.shape}: every dimension must be >= 1")
    return x.shape


def _scale(convention, m):
    if convention == "L":
        return 1.0 / m
    if convention == "J":
        return 1.0
    raise InputError(f"convention must be 'L' or 'J', got {convention!r}")


# --------------------------------------------------------------------------- unchecked calls
# Arrays here are already checked: right dtype, shape, C-contiguous.

def _forward_into(A_prev, W, b, code, alpha, Z, A):
    n, n_prev = W.shape
    status = _FN[W.dtype][0](_buf(A_prev), _buf(W), _buf(b), code, alpha, _out(Z), _out(A),
                             n, n_prev, A_prev.shape[1])
    _check_status(status, "cr_dense_forward")


_VIEW_FN = {np.dtype(np.float64): lib.cr_dense_forward_view_f64,
            np.dtype(np.float32): lib.cr_dense_forward_view_f32}
_CPTR = {np.dtype(np.float64): "double *", np.dtype(np.float32): "float *"}


def view_layout(X):
    """``(lda, x_rows)`` when ``cr_dense_forward_view`` reads ``X`` (2-D, aligned, of the
    kernels' dtype) where it lies: rows ``lda`` entries apart (``x_rows = 0``) or, for
    ``X_rows.T`` of examples-as-rows data, columns ``lda`` apart (``x_rows = 1``); else
    ``None`` (the caller copies)."""
    if X.ndim != 2 or not X.flags.aligned or X.dtype not in _VIEW_FN:
        return None
    size = X.itemsize
    s0, s1 = X.strides
    n_prev, m = X.shape
    if (s1 == size or m == 1) and s0 % size == 0 and s0 // size >= m:
        return s0 // size, 0
    if (s0 == size or n_prev == 1) and s1 % size == 0 and s1 // size >= n_prev:
        return s1 // size, 1
    return None


def _forward_view_into(X, layout, W, b, code, alpha, Z, A):
    """``_forward_into`` for an input ``X`` read in place (``layout``: :func:`view_layout`)."""
    n, n_prev = W.shape
    lda, x_rows = layout
    status = _VIEW_FN[W.dtype](ffi.cast(_CPTR[W.dtype], X.__array_interface__["data"][0]), lda,
                               x_rows, _buf(W), _buf(b), code, alpha, _out(Z), _out(A), n,
                               n_prev, X.shape[1])
    _check_status(status, "cr_dense_forward_view")


def _backward_into(dZ, A_prev, W, Z_prev, mask_prev, code_prev, alpha_prev, s, l2,
                   dZ_prev, dW, db, dA_prev):
    n, n_prev = W.shape
    status = _FN[W.dtype][1](
        _buf(dZ), _buf(A_prev), _buf(W),
        NULL if Z_prev is None else _buf(Z_prev),
        NULL if mask_prev is None else _buf(mask_prev), code_prev, alpha_prev, s, l2,
        NULL if dZ_prev is None else _out(dZ_prev), NULL if dW is None else _out(dW), _out(db),
        NULL if dA_prev is None else _out(dA_prev), n, n_prev, dZ.shape[1])
    _check_status(status, "cr_dense_backward")


def _writable_param(x, name, dt):
    if not isinstance(x, np.ndarray) or x.dtype != dt:
        raise InputError(f"{name} must be a NumPy array of dtype {dt}")
    if not (x.flags.c_contiguous and x.flags.aligned and x.flags.writeable):
        raise InputError(f"{name} is updated in place: it must be C-contiguous, aligned and "
                         f"writeable")
    return x


# --------------------------------------------------------------------------- layer ops

@register("dense_forward", "c")
def dense_forward(A_prev, W, b, activation):
    """``Z = W A_prev + b; A = g(Z)`` in one C call. Returns ``(Z, A)``, shape ``(n, m)``."""
    dt = _dtype_of(W)
    n, n_prev = _2d(W, "W")
    _, m = _2d(A_prev, "A_prev")
    A_prev = _array(A_prev, "A_prev", dt, (n_prev, m))
    b = _array(b, "b", dt, (n, 1))
    code, alpha = _activation(activation, "activation")
    Z = np.empty((n, m), dt)
    A = np.empty((n, m), dt)
    _forward_into(A_prev, _contiguous(W), b, code, alpha, Z, A)
    return Z, A


@register("dense_backward", "c")
def dense_backward(dZ, A_prev, W, Z_prev, activation_prev, convention="L", lambd=0.0,
                   mask_prev=None, need_dA_prev=False):
    """``dW = s dZ A_prev^T + (lambd/m) W``, ``db = s sum_k dZ``,
    ``dZ_prev = (W^T dZ) * mask_prev * g'(Z_prev)`` in one C call.

    Returns ``(dZ_prev, dW, db, dA_prev)``; ``dZ_prev`` is ``None`` when ``Z_prev`` is
    (the input layer), ``dA_prev`` unless ``need_dA_prev``.
    """
    dt = _dtype_of(W)
    n, n_prev = _2d(W, "W")
    _, m = _2d(dZ, "dZ")
    W = _contiguous(W)
    dZ = _array(dZ, "dZ", dt, (n, m))
    A_prev = _array(A_prev, "A_prev", dt, (n_prev, m))
    code_prev, alpha_prev = 0, 0.0
    if Z_prev is not None:
        Z_prev = _array(Z_prev, "Z_prev", dt, (n_prev, m))
        code_prev, alpha_prev = _activation(activation_prev, "activation_prev")
        if code_prev in _OUTPUT_ONLY:
            raise InputError(f"activation_prev: {ref_name(activation_prev)} is only supported as the "
                             f"output activation (it has no elementwise derivative)")
    if mask_prev is not None:
        mask_prev = _array(mask_prev, "mask_prev", dt, (n_prev, m))
    lambd = float(lambd)
    if not np.isfinite(lambd):
        raise InputError(f"lambd must be finite, got {lambd!r}")
    dZ_prev = np.empty((n_prev, m), dt) if Z_prev is not None else None
    dA_prev = np.empty((n_prev, m), dt) if need_dA_prev else None
    dW = np.empty((n, n_prev), dt)
    db = np.empty((n, 1), dt)
    _backward_into(dZ, A_prev, W, Z_prev, mask_prev, code_prev, alpha_prev,
                   _scale(convention, m), lambd / m, dZ_prev, dW, db, dA_prev)
    return dZ_prev, dW, db, dA_prev


def _check_network(X, Ws, bs, activations, masks=None, update=False, view=False):
    """Check a whole network once; returns ``(dtype, X, Ws, bs, codes, masks)``.

    ``update``: ``Ws, bs`` will be updated in place, so they must be C-contiguous and
    writeable (a copy would silently lose the update); otherwise they are only read.
    ``view``: an ``X`` that :func:`view_layout` reads in place is kept as it is (no copy).
    """
    if len(Ws) == 0 or len(Ws) != len(bs) or len(activations) != len(Ws):
        raise ShapeError(f"got {len(Ws)} weights, {len(bs)} biases and {len(activations)} "
                         f"activations: give one of each per layer")
    dt = _dtype_of(Ws[0])
    _, m = _2d(X, "X")
    n_prev = _2d(Ws[0], "W[1]")[1]
    if not (view and isinstance(X, np.ndarray) and X.dtype == dt and X.shape == (n_prev, m)
            and view_layout(X) is not None):
        X = _array(X, "X", dt, (n_prev, m))
    codes, Ws_c, bs_c = [], [], []
    for l, (W, b, act) in enumerate(zip(Ws, bs, activations), 1):
        n = _2d(W, f"W[{l}]")[0]
        if update:
            _writable_param(W, f"W[{l}]", dt)
            _writable_param(b, f"b[{l}]", dt)
        W = _array(W, f"W[{l}]", dt, (n, n_prev))
        b = _array(b, f"b[{l}]", dt, (n, 1))
        code = _activation(act, f"layer {l}")
        if code[0] in _OUTPUT_ONLY and l < len(Ws):
            raise InputError(f"layer {l}: {ref_name(act)} is only supported as the output "
                             f"activation")
        codes.append(code)
        Ws_c.append(W)
        bs_c.append(b)
        n_prev = n
    if masks is not None:
        masks = list(masks)
        for l in range(1, len(Ws) + 1):
            if l < len(masks) and masks[l] is not None:
                masks[l] = _array(masks[l], f"masks[{l}]", dt, (Ws[l - 1].shape[0], m))
    return dt, X, Ws_c, bs_c, codes, masks


@register("sgd_update", "c")
def sgd_update(Ws, bs, dWs, dbs, learning_rate):
    """``W -= lr dW``, ``b -= lr db`` in place, one C call per array."""
    lr = float(learning_rate)
    for l, (W, b, dW, db) in enumerate(zip(Ws, bs, dWs, dbs), 1):
        dt = _dtype_of(W)
        for p, g, name in ((W, dW, "W"), (b, db, "b")):
            _writable_param(p, f"{name}[{l}]", dt)
            g = _array(g, f"d{name}[{l}]", dt, p.shape)
            _check_status(_FN[dt][2](_out(p), _buf(g), lr, p.size), "cr_sgd_update")


def _all_finite(arrays):
    for x in arrays:
        if not _FN[x.dtype][3](_buf(x), x.size):
            return False
    return True


# --------------------------------------------------------------------------- training engine
# cr_fit_epochs (csrc/train.h): the checks of its arrays, its config, its call. The plans
# (per-thread workspaces) and the op are in plans.py.

# csrc/train.h's enum cr_loss holds spec's codes (a test checks).
_LOSS_CODE = dict(spec.LOSS_CODES)
_FIT_STATUS = dict(_STATUS)
_FIT_STATUS.update({
    lib.CR_BAD_INDEX: "a permutation entry is outside [0, m)",
    lib.CR_BAD_LOSS: "unknown loss code",
    lib.CR_BAD_OPTIMIZER: "unknown optimiser code or a hyperparameter out of range",
    lib.CR_BAD_PROBABILITY: "a keep probability is outside (0, 1]",
    lib.CR_SMALL_WORKSPACE: "the workspace is too small",
    lib.CR_BAD_LAYOUT: "the course's layout (x_columns) takes no permutation",
})
_FIT_FN = {np.dtype(np.float64): lib.cr_fit_epochs_f64,
           np.dtype(np.float32): lib.cr_fit_epochs_f32}
_MASK_FN = {np.dtype(np.float64): lib.cr_dropout_mask_f64,
            np.dtype(np.float32): lib.cr_dropout_mask_f32}
_PTR = {np.dtype(np.float64): "double *[]", np.dtype(np.float32): "float *[]"}
_NO_STATE = (NULL,) * 4  # the v and s tables of an optimiser without state (gd)


def _check_fit_status(status, fn):
    if status != 0:
        raise CKernelError(f"{fn} returned status {status}: "
                           f"{_FIT_STATUS.get(status, 'unknown')}")


def philox4x32_10(counter, key):
    """Philox4x32-10 of ``counter`` (4 uint32) and ``key`` (2 uint32): a tuple of 4 ints."""
    c = ffi.new("unsigned int[4]", [int(x) & 0xFFFFFFFF for x in counter])
    k = ffi.new("unsigned int[2]", [int(x) & 0xFFFFFFFF for x in key])
    out = ffi.new("unsigned int[4]")
    _check_fit_status(lib.cr_philox4x32_10(c, k, out), "cr_philox4x32_10")
    return tuple(int(x) for x in out)


def dropout_mask(key, layer, batch, n, mb, p, dtype):
    """The scaled dropout mask ``D / p`` ``(n, mb)`` of hidden layer ``layer`` (1-based),
    batch ``batch``, epoch key ``key``, by csrc's Philox: bit-identical to
    :func:`chainrule.backends.philox.dropout_mask`."""
    dt = np.dtype(dtype)
    if dt not in _MASK_FN:
        raise InputError(f"dropout masks are float32 or float64, got {dt}")
    n, mb, layer, batch, p = int(n), int(mb), int(layer), int(batch), float(p)
    if n < 1 or mb < 1:
        raise ShapeError(f"a mask needs n >= 1 and mb >= 1, got ({n}, {mb})")
    if not 0 < p <= 1:
        raise InputError(f"keep probability must be in (0, 1], got {p!r}")
    out = np.empty((n, mb), dt)
    _check_fit_status(_MASK_FN[dt](int(key) & 0xFFFFFFFFFFFFFFFF, layer, batch, p, _out(out),
                                   n, mb), "cr_dropout_mask")
    return out


def _as_is(x, name, dt, shape, writable=False):
    """``x`` itself, checked: dtype, shape, C-contiguous and aligned (and writeable). Never a
    copy: the engine's data would be copied at every chunk, its state updated in a copy."""
    if type(x) is np.ndarray and x.dtype == dt and x.shape == shape:
        f = x.flags  # the common case at the cost of one flags object (a single step's)
        if f.c_contiguous and f.aligned and (f.writeable or not writable):
            return x
    if not isinstance(x, np.ndarray):
        raise InputError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if x.dtype != dt:
        raise InputError(f"{name} has dtype {x.dtype}, expected {dt}")
    if x.shape != shape:
        raise ShapeError(f"{name} has shape {x.shape}, expected {shape}")
    if not (x.flags.c_contiguous and x.flags.aligned):
        raise InputError(f"{name} must be C-contiguous and aligned (convert it once per fit)")
    if writable and not x.flags.writeable:
        raise InputError(f"{name} is updated in place: it must be writeable")
    return x


class FitConfig:
    """``struct cr_fit_config`` of a :class:`~chainrule.backends.plan.FitPlan` (its Python
    twin) in dtype ``dt``, with the arrays it points to kept alive, and the size of the
    workspace it needs."""

    def __init__(self, dt, plan, x_columns=False):
        self.dims_c = ffi.new("long long[]", plan.layer_dims)
        self.act_c = ffi.new("int[]", [layer.code for layer in plan.layers])
        self.alpha_c = ffi.new("double[]", [layer.alpha for layer in plan.layers])
        self.keep_c = ffi.new("double[]", plan.keep_probs) if plan.drops else NULL
        cfg = ffi.new("struct cr_fit_config *")
        cfg.n_layers = plan.L
        cfg.dims, cfg.activation, cfg.alpha = self.dims_c, self.act_c, self.alpha_c
        cfg.loss = _LOSS_CODE[plan.loss]
        cfg.keep_prob = self.keep_c
        cfg.mini_batch_size = plan.mini_batch_size
        cfg.lambd = plan.lambd
        cfg.optimizer = plan.optimizer_code
        cfg.hyper = list(plan.hyper)
        cfg.x_columns = int(x_columns)  # the data in the course's layout (Network.step)
        if plan.batch_norm:  # the arrays are set per call (fit_epochs_call's norm)
            self.bn_c = ffi.new("int[]", [int(layer.batch_norm) for layer in plan.layers])
            cfg.batch_norm = self.bn_c
            cfg.bn_momentum, cfg.bn_epsilon = plan.bn_momentum, plan.bn_epsilon
            cfg.bn_unbiased = int(plan.bn_unbiased)
        self.cfg, self.dt = cfg, dt
        self.work_bytes = int(lib.cr_fit_workspace_bytes(cfg, dt.itemsize))
        if self.work_bytes < 0:
            raise InputError("the network and training options do not fit the C engine "
                             "(a size too large to address?)")
        # the engine's workspace, with its pointer made once
        self.work = np.empty(self.work_bytes, np.uint8)
        self.work_c = ffi.from_buffer("char[]", self.work, require_writable=True)
        self.result = ffi.new("struct cr_fit_result *")
        self.t = ffi.new("long long *")
        self.params = None  # (Ws, bs, W table, b table): kept while the same arrays come back

    def param_tables(self, Ws, bs):
        """The cffi pointer tables of ``Ws`` and ``bs`` (checked by the caller), reused while
        the same array objects come back (kept alive here, so their buffers stay put)."""
        p = self.params
        if (p is None or len(p[0]) != len(Ws) or not all(map(operator.is_, p[0], Ws))
                or not all(map(operator.is_, p[1], bs))):
            ptr = _PTR[self.dt]
            p = self.params = (list(Ws), list(bs), ffi.new(ptr, [_out(W) for W in Ws]),
                               ffi.new(ptr, [_out(b) for b in bs]))
        return p[2], p[3]


def fit_epochs_call(fc, XT, YT, m, w, perms, lrs, keys, Ws, bs, state, prefixes, t, k0,
                    n_steps, norm, sums):
    """One cr_fit_epochs call on checked arrays (see plans.fit_epochs; ``XT, YT`` the course's
    ``X, Y`` for a config of ``x_columns``), ``m`` examples; returns
    ``(result struct, t, cost_sum, weight_sum, correct)``. ``norm``: batch norm's
    ``(gammas, running_means, running_vars)`` (a batch-norm layer's ``bs`` entry is its
    beta, its state ``v_dbeta{l}``...), or None. ``sums``: the checked (2, E) running sums
    the engine adds to (``cost_sum, weight_sum`` are its rows)."""
    dt, L, E = fc.dt, len(Ws), lrs.size
    states = _NO_STATE
    if prefixes:
        ptr = _PTR[dt]
        flags = [False] * L if norm is None else [g is not None for g in norm[0]]
        bname = ["beta" if f else "b" for f in flags]
        states = []
        for prefix in ("v", "s"):
            if prefix in prefixes:
                states.append(ffi.new(ptr, [_out(state[f"{prefix}_dW{l}"])
                                            for l in range(1, L + 1)]))
                states.append(ffi.new(ptr, [_out(state[f"{prefix}_d{bname[l - 1]}{l}"])
                                            for l in range(1, L + 1)]))
            else:
                states += [NULL, NULL]
    if norm is not None:  # kept alive until the call returns
        buffers = []

        def table(arrays):
            ptrs = []
            for a in arrays:
                if a is None:
                    ptrs.append(NULL)
                else:
                    buffers.append(_out(a))
                    ptrs.append(ffi.cast("void *", buffers[-1]))
            return ffi.new("void *[]", ptrs)

        gammas, means, varis = norm
        keep = [table(gammas), table(means), table(varis)]
        for prefix, slot in (("v", "bn_v_gamma"), ("s", "bn_s_gamma")):
            keep.append(table([state[f"{prefix}_dgamma{l}"] if flags[l - 1] else None
                               for l in range(1, L + 1)]) if prefix in prefixes else NULL)
            setattr(fc.cfg, slot, keep[-1])
        fc.cfg.bn_gamma, fc.cfg.bn_mean, fc.cfg.bn_var = keep[:3]
    cost_sum, weight_sum = sums
    sums_c = ffi.from_buffer("double[]", sums, require_writable=True)  # both rows, E apart
    correct = np.zeros(E, dtype=np.int64)
    fc.t[0] = int(t)
    status = _FIT_FN[dt](
        _buf(XT), _buf(YT), NULL if w is None else _buf(w),
        NULL if perms is None else ffi.from_buffer("long long[]", perms),
        ffi.from_buffer("double[]", lrs),
        NULL if keys is None else ffi.from_buffer("unsigned long long[]", keys), fc.cfg,
        *fc.param_tables(Ws, bs), *states,
        fc.t, sums_c, sums_c + E,
        ffi.from_buffer("long long[]", correct, require_writable=True), fc.result,
        fc.work_c, fc.work.size, m, E, k0, n_steps)
    _check_fit_status(status, "cr_fit_epochs")
    return fc.result, int(fc.t[0]), cost_sum, weight_sum, correct


def refusal_words(r):
    """What a refused step found non-finite, in the update-safety rule's words
    (:func:`chainrule.backends.compose.refusal_words`)."""
    return _refusal_words(int(r.what), f"{'b' if r.bias else 'W'}{int(r.layer)}",
                          chr(r.state) if r.what == lib.CR_NONFINITE_STATE else "")
