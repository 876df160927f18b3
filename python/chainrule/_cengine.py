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

import dataclasses
import threading

import numpy as np

from . import _cbackend as _cb  # sets the BLAS pointer of the C kernels
from .errors import InputError, ShapeError

from ._cdense import ffi, lib  # ImportError here: the "c" backend is unavailable

__all__ = ["LOSS_CODE", "OPTIMIZER_CODE", "FitChunk", "fit_epochs", "dropout_mask",
           "philox4x32_10"]

LOSS_CODE = {"binary_crossentropy": lib.CR_BINARY_CROSSENTROPY,
             "categorical_crossentropy": lib.CR_CATEGORICAL_CROSSENTROPY,
             "mean_squared_error": lib.CR_MEAN_SQUARED_ERROR}
OPTIMIZER_CODE = {"gd": lib.CR_GD, "momentum": lib.CR_MOMENTUM, "rmsprop": lib.CR_RMSPROP,
                  "adam": lib.CR_ADAM}
# The optimiser state each optimiser keeps, by optim.py's prefixes.
_PREFIXES = {"gd": (), "momentum": ("v",), "rmsprop": ("s",), "adam": ("v", "s")}
_NONFINITE = {lib.CR_FINITE: None, lib.CR_NONFINITE_COST: "cost",
              lib.CR_NONFINITE_DW: "gradient dW", lib.CR_NONFINITE_DB: "gradient db",
              lib.CR_NONFINITE_W: "new W", lib.CR_NONFINITE_B: "new b",
              lib.CR_NONFINITE_STATE: "new optimiser state"}
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

@dataclasses.dataclass
class FitChunk:
    """What one :func:`fit_epochs` call did.

    ``steps`` applied; ``refused``: the call stopped at a step it did not apply, at
    (``epoch``, ``batch``), because of ``what`` (``"cost"``, ``"gradient dW"``, ``"new W"``...)
    in ``layer`` (1-based; 0 for the cost); otherwise (``epoch``, ``batch``) is where the
    next call continues (``epoch`` indexes the chunk's arrays: ``len(lrs)`` when they are
    used up). ``t``: Adam's step count after the call. Per epoch of the chunk (arrays of
    ``len(lrs)``, added to what was given): ``cost_sum`` (sum of ``J_b sum(w_b)``),
    ``weight_sum`` (sum of ``sum(w_b)``) and ``correct`` (right predictions on the batches).
    """

    steps: int
    refused: bool
    epoch: int
    batch: int
    what: str | None
    layer: int
    t: int
    cost_sum: np.ndarray
    weight_sum: np.ndarray
    correct: np.ndarray


class _Plan:
    """The C config, the workspace and the result struct of one network and training setup."""

    def __init__(self, key, dt, dims, codes, loss, probs, s, lambd, optimizer, hyper):
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
        cfg.optimizer = OPTIMIZER_CODE[optimizer]
        cfg.beta = hyper.get("beta", 0.0)
        cfg.beta1 = hyper.get("beta1", 0.0)
        cfg.beta2 = hyper.get("beta2", 0.0)
        cfg.epsilon = hyper.get("epsilon", 0.0)
        cfg.eps_inside_sqrt = int(bool(hyper.get("eps_inside_sqrt", False)))
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


def _hyper(optimizer, hyper):
    """The optimiser's hyperparameters with optim.py's defaults, checked."""
    defaults = {"gd": {}, "momentum": {"beta": 0.9},
                "rmsprop": {"beta": 0.9, "epsilon": 1e-8, "eps_inside_sqrt": False},
                "adam": {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8,
                         "eps_inside_sqrt": False}}
    if optimizer not in defaults:
        raise InputError(f"unknown optimizer {optimizer!r}; valid: {', '.join(defaults)}")
    out = dict(defaults[optimizer])
    for k, v in (hyper or {}).items():
        if k == "name":
            continue
        if k not in out:
            raise InputError(f"optimizer {optimizer!r} does not take {k!r}")
        out[k] = v
    for k in ("beta", "beta1", "beta2"):
        if k in out and not 0 <= float(out[k]) < 1:
            raise InputError(f"{k} must be in [0, 1), got {out[k]!r}")
    if "epsilon" in out and not (np.isfinite(out["epsilon"]) and out["epsilon"] > 0):
        raise InputError(f"epsilon must be a finite number > 0, got {out['epsilon']!r}")
    return out


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


def fit_epochs(XT, YT, Ws, bs, activations, loss, *, mini_batch_size, lrs, k0=0, n_steps=None,
               w=None, perms=None, keys=None, lambd=0.0, keep_probs=None, optimizer="gd",
               hyper=None, state=None, t=0, cost_sum=None, weight_sum=None, correct=None):
    """Run up to ``n_steps`` mini-batch steps from batch ``k0`` of the chunk's first epoch.

    Parameters
    ----------
    XT, YT : arrays (m, n0), (m, nL), C-contiguous, of the network's dtype
        The examples as rows (``X.T``, ``Y.T`` of the course's ``X``, ``Y``).
    Ws, bs : lists of arrays (n[l], n[l-1]), (n[l], 1)
        Updated in place (C-contiguous, writeable).
    activations : list of names or ``(name, alpha)``; loss : name
    mini_batch_size : int
        ``s``; batch ``k`` of an epoch is ``order[k s:(k+1) s]`` (the last one smaller).
    lrs : array (E,) float64
        The learning rate of each epoch of the chunk; E = ``len(lrs)`` epochs at most.
    k0 : int
        The first step's batch in epoch 0 of the chunk.
    n_steps : int or None
        The step budget (may cross epoch ends); None: to the end of the E epochs.
    w : array (m,) or None
        Example weights (sample times class weights), of the network's dtype.
    perms : int64 array (E, m) or None
        Each epoch's example order; None: the given order.
    keys : uint64/int64 array (E,) or None
        Each epoch's 64-bit dropout key (needed when some keep probability < 1).
    lambd : float; keep_probs : list of L-1 floats or None
    optimizer : ``"gd"``, ``"momentum"``, ``"rmsprop"``, ``"adam"``; hyper : dict
        Its hyperparameters (optim.py's names and defaults).
    state : dict
        The optimiser's state arrays by optim.py's keys (``v_dW1``, ``s_db2``...), updated
        in place.
    t : int
        Adam's step count before the call.
    cost_sum, weight_sum : float64 arrays (E,) or None; correct : int64 array (E,) or None
        Per-epoch accumulators, added to in place (None: fresh zeros).

    Returns
    -------
    FitChunk
    """
    L = len(Ws)
    if L == 0 or len(bs) != L or len(activations) != L:
        raise ShapeError(f"got {len(Ws)} weights, {len(bs)} biases and {len(activations)} "
                         f"activations: give one of each per layer")
    dt = _cb._dtype_of(Ws[0])
    dims = [Ws[0].shape[1] if Ws[0].ndim == 2 else -1] + [W.shape[0] for W in Ws]
    if not isinstance(XT, np.ndarray) or XT.ndim != 2:
        raise ShapeError("XT must be a 2-D array (m, n0)")
    m = XT.shape[0]
    if m < 1:
        raise ShapeError("XT has no examples")
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
    n_batches = -(-m // s)
    k0 = int(k0)
    if not 0 <= k0 < n_batches:
        raise InputError(f"k0 = {k0} is not a batch of an epoch (0 .. {n_batches - 1})")
    n_steps = E * n_batches - k0 if n_steps is None else int(n_steps)
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
    probs = None
    if keep_probs is not None:
        probs = [float(p) for p in keep_probs]
        if len(probs) != L - 1:
            raise InputError(f"keep_probs has {len(probs)} entries, expected L - 1 = {L - 1}")
        if not all(0 < p <= 1 for p in probs):
            raise InputError("every keep probability must be in (0, 1]")
        if all(p == 1 for p in probs):
            probs = None
    keys_c = ffi.NULL
    if probs is not None:
        if keys is None:
            raise InputError("dropout needs one 64-bit key per epoch (keys)")
        keys = np.ascontiguousarray(keys)
        if keys.dtype not in (np.dtype(np.int64), np.dtype(np.uint64)) or keys.shape != (E,):
            raise InputError(f"keys must be int64 or uint64 of shape ({E},), got "
                             f"{keys.dtype} {keys.shape}")
        keys = keys.view(np.uint64)
        keys_c = ffi.from_buffer("unsigned long long[]", keys)
    hyper = _hyper(optimizer, hyper)
    state = {} if state is None else state
    pointers = {}
    for prefix in ("v", "s"):
        if prefix not in _PREFIXES[optimizer]:
            pointers[prefix] = (ffi.NULL, ffi.NULL)
            continue
        arrays = []
        for kind, params in (("W", Ws), ("b", bs)):
            row = []
            for l, P in enumerate(params, 1):
                name = f"{prefix}_d{kind}{l}"
                if name not in state:
                    raise InputError(f"the {optimizer} state has no {name}")
                row.append(_cb._out(_inout(state[name], f"state {name}", dt, P.shape)))
            arrays.append(ffi.new(_PTR[dt], row))
        pointers[prefix] = tuple(arrays)
    acc = []
    for name, arr, adt in (("cost_sum", cost_sum, np.float64), ("weight_sum", weight_sum,
                                                                  np.float64),
                           ("correct", correct, np.int64)):
        arr = np.zeros(E, adt) if arr is None else _inout(arr, name, np.dtype(adt), (E,))
        acc.append(arr)
    cost_sum, weight_sum, correct = acc

    acts = tuple(codes)
    key = (dt, tuple(dims), acts, loss, tuple(probs or ()), s, lambd, optimizer,
           tuple(sorted(hyper.items())))
    plan = _plans.plan
    if plan is None or plan.key != key:
        plan = _plans.plan = _Plan(key, dt, dims, codes, loss, probs, s, lambd, optimizer,
                                   hyper)
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
    return FitChunk(steps=int(r.steps), refused=bool(r.refused), epoch=int(r.epoch),
                    batch=int(r.batch), what=_NONFINITE.get(r.what, "unknown"),
                    layer=int(r.layer), t=int(plan.t[0]), cost_sum=cost_sum,
                    weight_sum=weight_sum, correct=correct)
