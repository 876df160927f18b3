"""The "c" backend: checked wrappers around the compiled module ``chainrule._cdense``.

This is the only module that touches ``ffi``/``lib``. Before every call into C it checks
dtype, shape and contiguity (``ffi.from_buffer`` reads a float32 buffer as ``double[]``
without complaint), allocates every output, and turns a non-zero status into
:class:`CKernelError`.

BLAS
----
The C kernels call a Fortran ``?gemm`` through a function pointer handed over at import,
so the extension links no BLAS. The source is chosen by ``CHAINRULE_C_BLAS``:

``auto`` (default)
    the first of ``numpy``, ``scipy``, ``mkl`` that loads.
``mkl``
    ``libmkl_rt`` of the ``mkl`` wheel (``pip install 'chainrule[mkl]'``), LP64 interface.
``scipy``
    ``scipy.linalg.cython_blas`` (SciPy's OpenBLAS): what Numba uses.
``numpy``
    NumPy's own OpenBLAS (64-bit integers), found through threadpoolctl.
``none``
    no BLAS: the C loops compute every product (slow on large layers; for testing).

Training step
-------------
``train_step`` and ``train_loop`` run a whole step in one C call (``cr_train_step``) where
the output's ``dZ[L]`` is ``A[L] - Y`` (``ref.FUSED_OUTPUT_LOSS``) and there is no dropout:
forward, backward, ``update_is_safe``'s check and the update, in buffers kept per thread
with the cffi pointers to them, and to the parameters while the same arrays come back
(checked again at every call: shape, dtype, C-contiguous, aligned, writeable). Other
outputs and dropout take the per-layer path (``_step``). On planar [2, 4, 1] m=400 the
Python calls of the per-layer path and libm's scalar ``tanh``/``exp`` made the step slower
than NumPy's; the whole step with the vectorised ``sigmoid``/``tanh`` of ``dense.c`` is
about 5x faster than NumPy's (benchmarks/C_STEP_NOTES.md).

Threads
-------
:func:`set_num_threads` limits the threads of that BLAS (``CHAINRULE_C_THREADS`` does the
same at import); :func:`blas_info` says which library runs. Measurements and the reasons
for these defaults: ``benchmarks/C_STEP_NOTES.md``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import sys
import threading

import numpy as np

from . import reference as ref
from ._compose import cost as _cost
from ._compose import update_is_safe as _update_is_safe
from ._dispatch import _AUTO_PREDICATES, _AUTO_PREFERENCE, register
from .errors import ChainruleError, InputError, ShapeError

from ._cdense import ffi, lib  # ImportError here: the "c" backend is unavailable

__all__ = ["CKernelError", "blas_info", "set_num_threads", "get_num_threads",
           "set_blas_threshold", "dense_forward", "dense_backward", "sgd_update",
           "forward", "backward", "train_step", "train_loop"]


class CKernelError(ChainruleError, RuntimeError):
    """A C kernel returned a non-zero status (a bug: the wrapper checks every argument first)."""


_STATUS = {
    lib.CR_BAD_SIZE: "a size is < 1 or too large to address",
    lib.CR_BAD_ACTIVATION: "unknown activation code",
    lib.CR_NO_DERIVATIVE: "softmax has no elementwise derivative (hidden layers only use "
                          "elementwise activations)",
    lib.CR_MISSING_BUFFER: "a required buffer is NULL",
}
_ACTIVATION_CODE = {
    "sigmoid": lib.CR_SIGMOID, "relu": lib.CR_RELU, "tanh": lib.CR_TANH,
    "leaky_relu": lib.CR_LEAKY_RELU, "identity": lib.CR_IDENTITY, "softmax": lib.CR_SOFTMAX,
}
_CTYPE = {np.dtype(np.float64): "double[]", np.dtype(np.float32): "float[]"}
_FN = {
    np.dtype(np.float64): (lib.cr_dense_forward_f64, lib.cr_dense_backward_f64,
                           lib.cr_sgd_update_f64, lib.cr_all_finite_f64,
                           lib.cr_dense_update_f64, lib.cr_max_abs_f64),
    np.dtype(np.float32): (lib.cr_dense_forward_f32, lib.cr_dense_backward_f32,
                           lib.cr_sgd_update_f32, lib.cr_all_finite_f32,
                           lib.cr_dense_update_f32, lib.cr_max_abs_f32),
}
_NULL = ffi.NULL


def _check_status(status, fn):
    if status != 0:
        raise CKernelError(f"{fn} returned status {status}: {_STATUS.get(status, 'unknown')}")


# --------------------------------------------------------------------------- BLAS

def _capsule_pointer(capsule):
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object,
                                                                  ctypes.c_char_p]
    return get_pointer(capsule, get_name(capsule))


def _blas_from_scipy():
    from scipy.linalg import cython_blas
    capi = cython_blas.__pyx_capi__
    path = None
    try:
        from threadpoolctl import threadpool_info
        path = next((i["filepath"] for i in threadpool_info()
                     if i["user_api"] == "blas" and "scipy" in i["filepath"]
                     and "numpy" not in i["filepath"]), None)
    except Exception:  # threadpoolctl only names the library; the pointers are what matter
        pass
    return (_capsule_pointer(capi["dgemm"]), _capsule_pointer(capi["sgemm"]), 4,
            path or "scipy.linalg.cython_blas")


def _blas_from_mkl():
    # MKL's OpenMP threads spin 200 ms after each call by default; on 2 shared cores they
    # then take the core the rest of the step (and every other process) needs. Measured with
    # the mid32 workload of benchmarks/c_step.py on the loaded 2-core machine: one c step
    # took 23.7 ms with the default spin and 6.0 ms with KMP_BLOCKTIME=0. A user's own
    # setting wins; this only applies before the OpenMP runtime starts.
    os.environ.setdefault("KMP_BLOCKTIME", "0")
    candidates = sorted(glob.glob(os.path.join(sys.prefix, "lib", "libmkl_rt.so*")))
    found = ctypes.util.find_library("mkl_rt")
    if found:
        candidates.append(found)
    for path in candidates:
        try:
            mkl = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
        return (ctypes.cast(mkl.dgemm, ctypes.c_void_p).value,
                ctypes.cast(mkl.sgemm, ctypes.c_void_p).value, 4, path)
    raise ImportError("libmkl_rt not found: pip install mkl")


def _blas_from_numpy():
    from threadpoolctl import threadpool_info
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
    for info in threadpool_info():
        path = info["filepath"]
        if info["internal_api"] != "openblas" or "numpy" not in os.path.relpath(path, numpy_dir):
            continue
        handle = ctypes.CDLL(path)
        for prefix, suffix, int_bytes in (("scipy_", "_64_", 8), ("", "_64_", 8),
                                          ("scipy_", "_", 4), ("", "_", 4)):
            try:
                d = getattr(handle, f"{prefix}dgemm{suffix}")
                s = getattr(handle, f"{prefix}sgemm{suffix}")
            except AttributeError:
                continue
            return (ctypes.cast(d, ctypes.c_void_p).value, ctypes.cast(s, ctypes.c_void_p).value,
                    int_bytes, path)
    raise ImportError("NumPy's OpenBLAS was not found")


# In the order "auto" tries them. NumPy's own OpenBLAS first: it is loaded anyway (no extra
# thread pool to stall the others) and, measured with benchmarks/c_step.py on this 2-core
# AMD EPYC (Zen 4), it ran the GEMMs of every workload at least as fast as MKL 2026.2 with
# one thread (cat step 8.3 vs 10.1 ms, wide 229 vs 258 ms; a 128 x 784 x 1000 sgemm 1.2 vs
# 2.5 ms: MKL does not take its AVX-512 paths on AMD). MKL only helped with two threads on
# the overloaded machine, where OpenBLAS's spinning threads stall; it is there on request
# (CHAINRULE_C_BLAS=mkl, or use_blas("mkl")), and last for "auto".
_BLAS_SOURCES = {"numpy": _blas_from_numpy, "scipy": _blas_from_scipy, "mkl": _blas_from_mkl}
_blas = {"source": "none", "filepath": None, "int_bytes": 4}
_loaded_blas = {}  # source -> (dgemm, sgemm, int_bytes, path): each library is looked up once


def use_blas(source="auto"):
    """Point the C kernels at a BLAS: ``"auto"``, ``"numpy"``, ``"scipy"``, ``"mkl"`` or ``"none"``.

    Returns the source that was taken. ``"auto"`` tries ``numpy``, ``scipy``, ``mkl`` in
    turn; a named source that does not load raises ``ImportError``. It also sets the
    measured C-loop cut-off for that library (see :func:`set_blas_threshold`).
    """
    source = (source or "auto").strip().lower()
    if source not in ("auto", "none") and source not in _BLAS_SOURCES:
        raise InputError(f"unknown BLAS source {source!r}; choose auto, mkl, scipy, numpy or none")
    order = list(_BLAS_SOURCES) if source == "auto" else ([] if source == "none" else [source])
    errors = []
    for name in order:
        try:
            if name not in _loaded_blas:
                _loaded_blas[name] = _BLAS_SOURCES[name]()
        except Exception as exc:  # a missing package or library: try the next one
            errors.append(f"{name}: {exc}")
            continue
        dgemm, sgemm, int_bytes, path = _loaded_blas[name]
        _check_status(lib.cr_set_blas(ffi.cast("cr_dgemm_t", dgemm),
                                      ffi.cast("cr_sgemm_t", sgemm), int_bytes), "cr_set_blas")
        _blas.update(source=name, filepath=path, int_bytes=int_bytes)
        set_blas_threshold(_MEASURED_THRESHOLD[name])
        return name
    if source not in ("auto", "none"):
        raise ImportError(f"BLAS source {source!r} did not load: {'; '.join(errors)}")
    _check_status(lib.cr_set_blas(_NULL, _NULL, 4), "cr_set_blas")
    _blas.update(source="none", filepath=None, int_bytes=4)
    return "none"


def set_blas_threshold(threshold):
    """Products of fewer than ``threshold`` multiply-adds (``n n_prev m``) use the C loops.

    ``0`` sends every product to BLAS. Returns the previous threshold.
    """
    previous = int(lib.cr_get_blas_threshold())
    _check_status(lib.cr_set_blas_threshold(int(threshold)), "cr_set_blas_threshold")
    return previous


def _controller():
    from threadpoolctl import ThreadpoolController
    controller = ThreadpoolController()
    if _blas["filepath"] is None:
        return None
    libs = [c for c in controller.lib_controllers
            if os.path.realpath(c.filepath) == os.path.realpath(_blas["filepath"])]
    return libs[0] if libs else None


def set_num_threads(n_threads):
    """Limit the threads of the BLAS the C kernels call (the C loops are single-threaded).

    Returns the previous number, or ``None`` when no BLAS is in use. A model's
    ``n_threads`` setting is meant to call this when its backend is ``"c"``;
    ``CHAINRULE_C_THREADS`` sets it at import. On a 2-core machine shared with other work,
    one thread gave steadier and often faster steps than two (benchmarks/C_STEP_NOTES.md).
    """
    n_threads = int(n_threads)
    if n_threads < 1:
        raise InputError(f"n_threads must be >= 1, got {n_threads}")
    controller = _controller()
    if controller is None:
        return None
    previous = controller.num_threads
    controller.set_num_threads(n_threads)
    return previous


def get_num_threads():
    """The threads of the BLAS the C kernels call (``None`` when no BLAS is in use)."""
    controller = _controller()
    return None if controller is None else controller.num_threads


def blas_info():
    """Which BLAS the C kernels call: ``source``, ``filepath``, ``int_bytes``, ``num_threads``,
    ``threshold`` (the C-loop cut-off in multiply-adds) and threadpoolctl's record of it."""
    controller = _controller()
    info = dict(_blas, threshold=int(lib.cr_get_blas_threshold()),
                num_threads=None if controller is None else controller.num_threads)
    info["threadpoolctl"] = None if controller is None else controller.info()
    return info


# The C-loop cut-off per BLAS, in multiply-adds n * n_prev * m of one layer. Measured with
# `python benchmarks/c_step.py --threshold` (one layer's forward + backward, C loops against
# the BLAS call, 2-core AMD EPYC, shared): OpenBLAS costs 1-3 us a call and beats the loops
# from about 4 000 multiply-adds; MKL costs 30-300 us a call for small products (it wakes its
# OpenMP threads) and only beats the loops from about 250 000.
_MEASURED_THRESHOLD = {"mkl": 250_000, "numpy": 4_096, "scipy": 4_096, "none": 0}


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
    act, alpha = ref.parse_activation(spec)
    if act not in _ACTIVATION_CODE:
        raise InputError(f"{name}: unknown activation {act!r}; valid: "
                         f"{', '.join(_ACTIVATION_CODE)}")
    if not np.isfinite(alpha):
        raise InputError(f"{name}: alpha must be finite, got {alpha!r}")
    return _ACTIVATION_CODE[act], alpha


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
        _NULL if Z_prev is None else _buf(Z_prev),
        _NULL if mask_prev is None else _buf(mask_prev), code_prev, alpha_prev, s, l2,
        _NULL if dZ_prev is None else _out(dZ_prev), _NULL if dW is None else _out(dW), _out(db),
        _NULL if dA_prev is None else _out(dA_prev), n, n_prev, dZ.shape[1])
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
        if code_prev == lib.CR_SOFTMAX:
            raise InputError("activation_prev: softmax is only supported as the output "
                             "activation (it has no elementwise derivative)")
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


# --------------------------------------------------------------------------- network ops

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
        if code[0] == lib.CR_SOFTMAX and l < len(Ws):
            raise InputError(f"layer {l}: softmax is only supported as the output activation")
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


class _Workspace(threading.local):
    """Per-thread buffers reused by train_step / train_loop (their arrays never leave)."""

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
    Zs, As = buf["Zs"], buf["As"]
    As[0] = X
    for l in range(1, len(Ws) + 1):
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
def forward(X, Ws, bs, activations, masks=None):
    dt, X, Ws, bs, codes, masks = _check_network(X, Ws, bs, activations, masks)
    Zs, As = _forward_checked(X, Ws, bs, codes, masks, _fresh(dt, _dims(Ws), X.shape[1]))
    return list(Zs), list(As)


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
_STEP_FN = {np.dtype(np.float64): lib.cr_train_step_f64,
            np.dtype(np.float32): lib.cr_train_step_f32}


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
        self.codes = ffi.new("int[]", [c for c, _ in codes])
        self.alphas = ffi.new(f"{scalar}[]", [a for _, a in codes])
        self.fuse = ffi.new("int[]", [int(_fuse_update(*shape, m, l2))
                                      for shape in self.W_shapes])
        self.fused_now = ffi.new("int[]", L)
        self.dims_c = ffi.new("long long[]", list(dims))
        self.applied = ffi.new("int *")
        self.Ws = self.bs = None  # the parameters the pointers W_ptr, b_ptr point into
        self.W_ptr = self.b_ptr = None

    def _pointers(self, arrays):
        views = [_out(a) for a in arrays]
        self._keep.extend(views)
        return ffi.new(self.ptr_type, views)

    def set_params(self, Ws, bs):
        self.Ws, self.bs = list(Ws), list(bs)
        self._param_bufs = [_out(p) for p in self.Ws + self.bs]
        self.W_ptr = ffi.new(self.ptr_type, self._param_bufs[:self.L])
        self.b_ptr = ffi.new(self.ptr_type, self._param_bufs[self.L:])
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
    status = _STEP_FN[plan.dt](_buf(X), _buf(Y), *plan.args, lr, lambd, _BOUND_LIMIT[plan.dt],
                               plan.applied)
    if status:
        _check_status(status, "cr_train_step")
    J = float("nan")
    if compute_cost:
        J = ref.compute_cost(plan.As[-1], Y, plan.loss)
        if lambd:
            J += J_l2
    return bool(plan.applied[0]), J


@register("train_step", "c")
def train_step(X, Y, Ws, bs, activations, loss, learning_rate, lambd=0.0, masks=None,
               compute_cost=False):
    """Forward, backward and (if update_is_safe) the SGD update, in reused buffers: one C
    call (cr_train_step) where the output's dZ[L] is A[L] - Y and there is no dropout."""
    lr, lambd = float(learning_rate), float(lambd)
    plan, X_c, Y_c = _plan(X, Y, Ws, bs, activations, loss, lambd, masks)
    if plan is not None:
        return _run_plan(plan, X_c, Y_c, lr, lambd, compute_cost)
    dt, X, Ws, bs, codes, masks = _check_network(X, Ws, bs, activations, masks, update=True)
    Y = _check_Y(Y, dt, (Ws[-1].shape[0], X.shape[1]))
    buf = _buffers(dt, _dims(Ws), X.shape[1])
    return _step(X, Y, Ws, bs, activations, codes, loss, lr, lambd, masks, compute_cost, buf)


@register("train_loop", "c")
def train_loop(X, Y, Ws, bs, activations, loss, learning_rate, lambd=0.0, n_steps=1,
               cost_every=1):
    """``n_steps`` full-batch steps, checking the arguments once."""
    lr, lambd = float(learning_rate), float(lambd)
    costs = np.full(n_steps, np.nan)
    plan, X_c, Y_c = _plan(X, Y, Ws, bs, activations, loss, lambd, None)
    if plan is not None:
        for i in range(n_steps):
            ok, costs[i] = _run_plan(plan, X_c, Y_c, lr, lambd,
                                     cost_every > 0 and i % cost_every == 0)
            if not ok:
                return i, costs
        return n_steps, costs
    dt, X, Ws, bs, codes, _ = _check_network(X, Ws, bs, activations, update=True)
    Y = _check_Y(Y, dt, (Ws[-1].shape[0], X.shape[1]))
    buf = _buffers(dt, _dims(Ws), X.shape[1])
    for i in range(n_steps):
        ok, costs[i] = _step(X, Y, Ws, bs, activations, codes, loss, lr, lambd, None,
                             cost_every > 0 and i % cost_every == 0, buf)
        if not ok:
            return i, costs
    return n_steps, costs


# --------------------------------------------------------------------------- auto policy

def _prefer_c(layer_dims, m, dtype):
    """Whether ``auto`` should pick the C backend for this network, batch and dtype.

    Measured with ``chainrule bench``, one training step, NumPy's OpenBLAS behind both,
    interleaved (benchmarks/C_STEP_NOTES.md): with the whole step in one C call the C step
    is faster than NumPy's (planar [2, 4, 1] m=400: 0.13-0.17x; [784, 128, 64, 10]:
    0.80x; cat 0.92x; wide 0.93x: the same GEMMs, fewer passes, no allocation per step). Without a BLAS (``CHAINRULE_C_BLAS=none``) the C loops only win
    on small layers (below about 250 000 multiply-adds per layer and batch).
    """
    if _blas["source"] != "none":
        return True
    m = 256 if m is None else m
    return max(a * b for a, b in zip(layer_dims[:-1], layer_dims[1:])) * m <= 250_000


_AUTO_PREFERENCE.append("c")
_AUTO_PREDICATES["c"] = _prefer_c


# --------------------------------------------------------------------------- set-up

use_blas(os.environ.get("CHAINRULE_C_BLAS", "auto"))
if os.environ.get("CHAINRULE_C_THREADS"):
    set_num_threads(int(os.environ["CHAINRULE_C_THREADS"]))
