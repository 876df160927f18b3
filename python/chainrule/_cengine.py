"""Checked wrappers of the C training engine (``cr_fit_epochs``, csrc/train.h).

:func:`fit_epochs` runs a chunk of mini-batch steps (possibly crossing epoch ends) in one C
call: the gather of each batch from examples-contiguous ``XT``/``YT``, inverted dropout with
Philox4x32-10 masks (:func:`dropout_mask`), forward, the weighted cost with L2, backward and
the update of gd / momentum / rmsprop / adam under the update-safety rule. Every array is
checked here (dtype, shape, C-contiguous, aligned, writeable where written); the workspace
is allocated once per thread and network shape (a plan, as the c backend's train_step
plans), never per step.

Temporary home: moves into ``backends/c/`` (wrappers / plans) with the package restructure.
"""

from __future__ import annotations

import threading

import numpy as np

from . import _cbackend as _cb  # sets the BLAS pointer of the C kernels
from ._engine_ref import ChunkResult
from .optim import make_optimizer
from .errors import InputError, ShapeError

from ._cdense import ffi, lib  # ImportError here: the "c" backend is unavailable

__all__ = ["LOSS_CODE", "OPTIMIZER_CODE", "fit_epochs", "dropout_mask", "philox4x32_10"]

LOSS_CODE = {"binary_crossentropy": lib.CR_BINARY_CROSSENTROPY,
             "categorical_crossentropy": lib.CR_CATEGORICAL_CROSSENTROPY,
             "mean_squared_error": lib.CR_MEAN_SQUARED_ERROR}
OPTIMIZER_CODE = {"gd": lib.CR_GD, "momentum": lib.CR_MOMENTUM, "rmsprop": lib.CR_RMSPROP,
                  "adam": lib.CR_ADAM}
# The optimiser state each optimiser keeps, by optim.py's prefixes.
_PREFIXES = {"gd": (), "momentum": ("v",), "rmsprop": ("s",), "adam": ("v", "s")}
_STATUS = dict(_cb._STATUS)
_STATUS.update({lib.CR_BAD_INDEX: "a permutation entry is outside [0, m)",
                lib.CR_BAD_LOSS: "unknown loss code", lib.CR_BAD_OPTIMIZER:
                "unknown optimiser code or a hyperparameter out of range",
                lib.CR_BAD_PROBABILITY: "a keep probability is outside (0, 1]",
                lib.CR_SMALL_WORKSPACE: "the workspace is too small"})
_FIT = {np.dtype(np.float64): lib.cr_fit_epochs_f64, np.dtype(np.float32): lib.cr_fit_epochs_f32}
_MASK = {np.dtype(np.float64): lib.cr_dropout_mask_f64,
         np.dtype(np.float32): lib.cr_dropout_mask_f32}
_PTR = {np.dtype(np.float64): "double *[]", np.dtype(np.float32): "float *[]"}


def _check_status(status, fn):
    if status != 0:
        raise _cb.CKernelError(f"{fn} returned status {status}: "
                               f"{_STATUS.get(status, 'unknown')}")


# --------------------------------------------------------------------------- Philox, masks

def philox4x32_10(counter, key):
    """Philox4x32-10 of ``counter`` (4 uint32) and ``key`` (2 uint32): a tuple of 4 ints."""
    c = ffi.new("unsigned int[4]", [int(x) & 0xFFFFFFFF for x in counter])
    k = ffi.new("unsigned int[2]", [int(x) & 0xFFFFFFFF for x in key])
    out = ffi.new("unsigned int[4]")
    _check_status(lib.cr_philox4x32_10(c, k, out), "cr_philox4x32_10")
    return tuple(int(x) for x in out)


def dropout_mask(key, layer, batch, n, mb, p, dtype):
    """The scaled dropout mask ``D / p`` (shape ``(n, mb)``, ``dtype``) of hidden layer
    ``layer`` (1-based), batch ``batch`` of an epoch whose dropout key is ``key``: entry
    ``(i, j)`` keeps the unit when ``(word >> 8) 2^-24 < p`` for word ``q & 3`` of Philox at
    counter ``(q >> 2, layer, batch, 0)``, ``q = i mb + j``, key (low, high 32 bits of key)."""
    dt = np.dtype(dtype)
    if dt not in _MASK:
        raise InputError(f"dropout masks are float32 or float64, got {dt}")
    n, mb, layer, batch = int(n), int(mb), int(layer), int(batch)
    if n < 1 or mb < 1:
        raise ShapeError(f"a mask needs n >= 1 and mb >= 1, got ({n}, {mb})")
    p = float(p)
    if not 0 < p <= 1:
        raise InputError(f"keep probability must be in (0, 1], got {p!r}")
    out = np.empty((n, mb), dt)
    _check_status(_MASK[dt](int(key) & 0xFFFFFFFFFFFFFFFF, layer, batch, p, _cb._out(out), n,
                            mb), "cr_dropout_mask")
    return out


# --------------------------------------------------------------------------- the engine

class _Plan:
    """The C config, the workspace and the result struct of one network and training setup
    (per thread: a plan is written by every call)."""

    def __init__(self, key, dt, dims, codes, loss, probs, s, lambd, config):
        self.key = key
        L = len(dims) - 1
        self.dt, self.L = dt, L
        self.dims_c = ffi.new("long long[]", list(dims))
        self.act_c = ffi.new("int[]", [c for c, _ in codes])
        self.alpha_c = ffi.new("double[]", [a for _, a in codes])
        self.keep_c = ffi.new("double[]", list(probs)) if probs else ffi.NULL
        cfg = ffi.new("struct cr_fit_config *")
        cfg.n_layers = L
        cfg.dims, cfg.activation, cfg.alpha = self.dims_c, self.act_c, self.alpha_c
        cfg.loss = LOSS_CODE[loss]
        cfg.keep_prob = self.keep_c
        cfg.mini_batch_size = s
        cfg.lambd = lambd
        cfg.optimizer = OPTIMIZER_CODE[config["name"]]
        cfg.beta = config.get("beta", 0.0)
        cfg.beta1 = config.get("beta1", 0.0)
        cfg.beta2 = config.get("beta2", 0.0)
        cfg.epsilon = config.get("epsilon", 0.0)
        cfg.eps_inside_sqrt = int(bool(config.get("eps_inside_sqrt", False)))
        self.cfg = cfg
        nbytes = lib.cr_fit_workspace_bytes(cfg, dt.itemsize)
        if nbytes < 0:
            raise InputError("the network and training options do not fit the C engine "
                             "(a size too large to address?)")
        self.work = np.empty(nbytes, np.uint8)
        self.work_c = ffi.from_buffer("char[]", self.work, require_writable=True)
        self.result = ffi.new("struct cr_fit_result *")
        self.t = ffi.new("long long *")


class _Plans(threading.local):
    def __init__(self):
        self.plan = None


_plans = _Plans()


def _input(x, name, dt, shape):
    """A read-only input: the given array, never a copy (a copy per call would be a copy per
    chunk of the data; convert once per fit)."""
    if not isinstance(x, np.ndarray):
        raise InputError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if x.dtype != dt:
        raise InputError(f"{name} has dtype {x.dtype}, expected {dt}")
    if x.shape != shape:
        raise ShapeError(f"{name} has shape {x.shape}, expected {shape}")
    if not (x.flags.c_contiguous and x.flags.aligned):
        raise InputError(f"{name} must be C-contiguous and aligned (np.ascontiguousarray once "
                         f"per fit)")
    return x


def _inout(x, name, dt, shape):
    _input(x, name, dt, shape)
    if not x.flags.writeable:
        raise InputError(f"{name} is updated in place: it must be writeable")
    return x


def _what(r):
    """The reference engine's words for what a refused step found non-finite."""
    kind, l = ("b" if r.bias else "W"), int(r.layer)
    if r.what == lib.CR_NONFINITE_COST:
        return "cost"
    if r.what == lib.CR_NONFINITE_GRADIENT:
        return f"gradient d{kind}{l}"
    if r.what == lib.CR_NONFINITE_PARAMETER:
        return f"new parameter {kind}{l}"
    return f"new optimiser state {chr(r.state)}_d{kind}{l}"


def fit_epochs(XT, YT, w, perms, lrs, keys, k0, n_steps, mini_batch_size, lambd, keep_probs,
               activations, loss, optimizer, t, state, Ws, bs, masks=None):
    """Run up to ``n_steps`` mini-batch steps from batch ``k0`` of the chunk's first epoch,
    in one C call (``cr_fit_epochs``); the arguments and the result are those of the
    reference engine, :func:`chainrule._engine_ref.fit_epochs`.

    ``XT`` (m, n0), ``YT`` (m, nL), ``w`` (m,) and the optimiser ``state`` arrays must
    already be C-contiguous arrays of the network's dtype (no copy is made per call);
    ``perms`` an int64 (E, m) array of indices in [0, m); ``Ws``, ``bs`` and ``state`` are
    updated in place. The course-exact masks (``masks``) are the reference's only.

    Returns
    -------
    ChunkResult
    """
    if masks is not None:
        raise InputError("the C engine draws the counter-based dropout masks only; the "
                         "course-exact masks run on the reference engine")
    L = len(Ws)
    if L == 0 or len(bs) != L or len(activations) != L:
        raise ShapeError(f"got {len(Ws)} weights, {len(bs)} biases and {len(activations)} "
                         f"activations: give one of each per layer")
    dt = _cb._dtype_of(Ws[0])
    if Ws[0].ndim != 2:
        raise ShapeError(f"W[1] must be 2-D, got shape {Ws[0].shape}")
    dims = [Ws[0].shape[1]] + [W.shape[0] for W in Ws]
    if not isinstance(XT, np.ndarray) or XT.ndim != 2 or XT.shape[0] < 1:
        raise ShapeError(f"XT must be a 2-D array (m, {dims[0]}) with m >= 1")
    m = XT.shape[0]
    _input(XT, "XT", dt, (m, dims[0]))
    _input(YT, "YT", dt, (m, dims[-1]))
    codes = []
    for l, (W, b, act) in enumerate(zip(Ws, bs, activations), 1):
        _inout(W, f"W[{l}]", dt, (dims[l], dims[l - 1]))
        _inout(b, f"b[{l}]", dt, (dims[l], 1))
        code = _cb._activation(act, f"layer {l}")
        if code[0] == lib.CR_SOFTMAX and l < L:
            raise InputError(f"layer {l}: softmax is only supported as the output activation")
        codes.append(code)
    if loss not in LOSS_CODE:
        raise InputError(f"unknown loss {loss!r}; valid: {', '.join(LOSS_CODE)}")
    s = int(mini_batch_size)
    if s < 1:
        raise InputError(f"mini_batch_size must be >= 1, got {mini_batch_size!r}")
    lrs = np.ascontiguousarray(lrs, dtype=np.float64).reshape(-1)
    E = lrs.size
    if not (np.isfinite(lrs).all() and (lrs >= 0).all()):
        raise InputError("every learning rate must be finite and >= 0")
    k0, n_steps = int(k0), int(n_steps)
    if not 0 <= k0 < -(-m // s):
        raise InputError(f"k0 = {k0} is not a batch of an epoch (0 .. {-(-m // s) - 1})")
    if n_steps < 0:
        raise InputError(f"n_steps must be >= 0, got {n_steps}")
    if w is not None:
        _input(w, "w", dt, (m,))
    if perms is not None:
        _input(perms, "perms", np.dtype(np.int64), (E, m))
        if perms.size and (perms.min() < 0 or perms.max() >= m):
            raise InputError(f"perms holds an index outside [0, {m})")
    lambd = float(lambd)
    if not (np.isfinite(lambd) and lambd >= 0):
        raise InputError(f"lambd must be finite and >= 0, got {lambd!r}")
    probs = [float(p) for p in keep_probs]
    if len(probs) != L - 1:
        raise InputError(f"keep_probs has {len(probs)} entries, expected L - 1 = {L - 1}")
    if not all(0 < p <= 1 for p in probs):
        raise InputError("every keep probability must be in (0, 1]")
    if all(p == 1 for p in probs):
        probs = None
    keys_c = ffi.NULL
    if probs is not None:
        keys = np.ascontiguousarray(keys)
        if keys.dtype not in (np.dtype(np.int64), np.dtype(np.uint64)) or keys.shape != (E,):
            raise InputError(f"keys must be int64 or uint64 of shape ({E},), got "
                             f"{keys.dtype} {keys.shape}")
        keys_c = ffi.from_buffer("unsigned long long[]", keys.view(np.uint64))
    config = make_optimizer(optimizer).get_config()
    name = config["name"]
    pointers = {}
    for prefix in ("v", "s"):
        if prefix not in _PREFIXES[name]:
            pointers[prefix] = (ffi.NULL, ffi.NULL)
            continue
        arrays = []
        for kind, params in (("W", Ws), ("b", bs)):
            row = []
            for l, P in enumerate(params, 1):
                key = f"{prefix}_d{kind}{l}"
                if key not in state:
                    raise InputError(f"the {name} optimiser state has no {key}")
                row.append(_cb._out(_inout(state[key], f"state {key}", dt, P.shape)))
            arrays.append(ffi.new(_PTR[dt], row))
        pointers[prefix] = tuple(arrays)
    cost_sum, weight_sum = np.zeros(E), np.zeros(E)
    correct = np.zeros(E, dtype=np.int64)

    key = (dt, tuple(dims), tuple(codes), loss, tuple(probs or ()), s, lambd,
           tuple(sorted(config.items())))
    plan = _plans.plan
    if plan is None or plan.key != key:
        plan = _plans.plan = _Plan(key, dt, dims, codes, loss, probs, s, lambd, config)
    plan.t[0] = int(t)
    W_c = ffi.new(_PTR[dt], [_cb._out(W) for W in Ws])
    b_c = ffi.new(_PTR[dt], [_cb._out(b) for b in bs])
    status = _FIT[dt](
        _cb._buf(XT), _cb._buf(YT), ffi.NULL if w is None else _cb._buf(w),
        ffi.NULL if perms is None else ffi.from_buffer("long long[]", perms),
        ffi.from_buffer("double[]", lrs), keys_c, plan.cfg, W_c, b_c,
        pointers["v"][0], pointers["v"][1], pointers["s"][0], pointers["s"][1], plan.t,
        ffi.from_buffer("double[]", cost_sum, require_writable=True),
        ffi.from_buffer("double[]", weight_sum, require_writable=True),
        ffi.from_buffer("long long[]", correct, require_writable=True),
        plan.result, plan.work_c, plan.work.size, m, E, k0, n_steps)
    _check_status(status, "cr_fit_epochs")
    r = plan.result
    return ChunkResult(int(r.steps), int(r.refused), int(r.epoch), int(r.batch),
                       _what(r) if r.refused else "", int(plan.t[0]), cost_sum, weight_sum,
                       correct)
