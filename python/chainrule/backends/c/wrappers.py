"""The checked calls into ``chainrule._cdense``: the only module that touches ``ffi``/``lib``.

Before every call into C it checks dtype, shape and contiguity (``ffi.from_buffer`` reads a
float32 buffer as ``double[]`` without complaint), allocates every output, and turns a
non-zero status into :class:`CKernelError`. The layer ops ``dense_forward``,
``dense_backward`` and ``sgd_update`` are registered here; the network ops and the whole-step
plans are in :mod:`.plans`, the BLAS the kernels call in :mod:`.blas`.
"""

from __future__ import annotations

import numpy as np

from ... import spec
from ...reference import parse_activation
from ...errors import ChainruleError, InputError, ShapeError
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
                           lib.cr_dense_update_f64, lib.cr_max_abs_f64),
    np.dtype(np.float32): (lib.cr_dense_forward_f32, lib.cr_dense_backward_f32,
                           lib.cr_sgd_update_f32, lib.cr_all_finite_f32,
                           lib.cr_dense_update_f32, lib.cr_max_abs_f32),
}
NULL = ffi.NULL


def _check_status(status, fn):
    if status != 0:
        raise CKernelError(f"{fn} returned status {status}: {_STATUS.get(status, 'unknown')}")




NULL = ffi.NULL
STEP_FN = {np.dtype(np.float64): lib.cr_train_step_f64,
           np.dtype(np.float32): lib.cr_train_step_f32}


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


def _check_network(X, Ws, bs, activations, masks=None, update=False):
    """Check a whole network once; returns ``(dtype, X, Ws, bs, codes, masks)``.

    ``update``: ``Ws, bs`` will be updated in place, so they must be C-contiguous and
    writeable (a copy would silently lose the update); otherwise they are only read.
    """
    if len(Ws) == 0 or len(Ws) != len(bs) or len(activations) != len(Ws):
        raise ShapeError(f"got {len(Ws)} weights, {len(bs)} biases and {len(activations)} "
                         f"activations: give one of each per layer")
    dt = _dtype_of(Ws[0])
    _, m = _2d(X, "X")
    n_prev = _2d(Ws[0], "W[1]")[1]
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


# Largest gradient bound the fused update accepts: far enough below the dtype's maximum that
