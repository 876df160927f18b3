"""The numba training engine's driver: packs the arguments of ``fit_epochs`` (the NumPy
reference's signature, :func:`chainrule._engine_ref.fit_epochs`) for
:func:`chainrule.core.train.fit_epochs` and keeps its workspaces.

Workspaces are cached per thread (``threading.local``) and per (layer sizes, batch size,
dtype), so two models training in two threads never share buffers, and a call allocates
nothing but its small per-epoch accumulators.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (numba's np.dot needs it; fail early here)

from chainrule.core import train as core_train
from chainrule.core.dense import ACTIVATION_CODES, LOSS_CODES

from ._engine_ref import WHAT, ChunkResult

_WORKSPACES_PER_THREAD = 4
_NO_PERM = np.zeros((0, 0), dtype=np.int64)
_local = threading.local()


class _Workspace:
    __slots__ = ("buf", "offs", "scratch", "out")

    def __init__(self, layer_dims, s, dtype):
        size, self.offs = core_train.workspace_layout(layer_dims, s)
        self.buf = np.empty(size, dtype)
        self.scratch = np.empty((3, s))
        self.out = np.zeros(8, dtype=np.int64)


def _workspace(layer_dims, s, dtype):
    try:
        cache = _local.workspaces
    except AttributeError:
        cache = _local.workspaces = OrderedDict()
    key = (tuple(layer_dims), s, dtype.num)
    ws = cache.get(key)
    if ws is None:
        ws = cache[key] = _Workspace(layer_dims, s, dtype)
        while len(cache) > _WORKSPACES_PER_THREAD:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return ws


def _hyper(config):
    """``(β1, β2, ε, eps_inside_sqrt)`` as the kernel reads them (RMSprop's β is β2)."""
    name = config["name"]
    if name == "momentum":
        return np.array([config.get("beta", 0.9), 0.0, 0.0, 0.0])
    if name == "rmsprop":
        return np.array([0.0, config.get("beta", 0.9), config.get("epsilon", 1e-8),
                         float(config.get("eps_inside_sqrt", False))])
    if name == "adam":
        return np.array([config.get("beta1", 0.9), config.get("beta2", 0.999),
                         config.get("epsilon", 1e-8), float(config.get("eps_inside_sqrt", False))])
    return np.zeros(4)


def _keys(keys, E):
    if keys is None:
        return np.zeros(E, dtype=np.uint64)
    return np.array([int(k) & 0xFFFFFFFFFFFFFFFF for k in keys], dtype=np.uint64)


def fit_epochs(XT, YT, w, perms, lrs, keys, k0, n_steps, mini_batch_size, lambd, keep_probs,
               activations, loss, optimizer, t, state, Ws, bs):
    """:func:`chainrule._engine_ref.fit_epochs` in one compiled call (same arguments and
    result; the counter-based dropout masks only)."""
    dtype = Ws[0].dtype
    L = len(Ws)
    layer_dims = [Ws[0].shape[1]] + [W.shape[0] for W in Ws]
    m = XT.shape[0]
    s = min(int(mini_batch_size), m)
    XT = np.ascontiguousarray(XT, dtype=dtype)
    YT = np.ascontiguousarray(YT, dtype=dtype)
    lrs = np.ascontiguousarray(lrs, dtype=np.float64)
    E = lrs.shape[0]
    has_w = w is not None
    w = np.ascontiguousarray(w, dtype=dtype) if has_w else XT[0, :0]
    has_perm = perms is not None
    perms = np.ascontiguousarray(perms, dtype=np.int64) if has_perm else _NO_PERM
    probs = np.ones(L)
    probs[:L - 1] = keep_probs
    scales = np.array([float(dtype.type(1) / dtype.type(p)) for p in probs])
    acts = np.array([ACTIVATION_CODES[name] for name, _ in activations], dtype=np.int64)
    alphas = np.array([float(alpha) for _, alpha in activations])
    name = optimizer["name"]
    Ws_t, bs_t = tuple(Ws), tuple(bs)
    prefixes = {"gd": (), "momentum": ("v",), "rmsprop": ("s",), "adam": ("v", "s")}[name]
    v = s_ = (Ws_t, bs_t)
    if "v" in prefixes:
        v = (tuple(state[f"v_dW{l}"] for l in range(1, L + 1)),
             tuple(state[f"v_db{l}"] for l in range(1, L + 1)))
    if "s" in prefixes:
        s_ = (tuple(state[f"s_dW{l}"] for l in range(1, L + 1)),
              tuple(state[f"s_db{l}"] for l in range(1, L + 1)))
    ws = _workspace(layer_dims, s, dtype)
    cost_sum, weight_sum = np.zeros(E), np.zeros(E)
    correct = np.zeros(E, dtype=np.int64)
    finfo = np.finfo(dtype)
    t = core_train.fit_epochs(
        XT, YT, w, has_w, perms, has_perm, lrs, _keys(keys, E), int(k0), int(n_steps), s,
        float(lambd), probs, scales, acts, alphas, LOSS_CODES[loss],
        core_train.OPTIMIZER_CODES[name], _hyper(optimizer), int(t), Ws_t, bs_t, v[0], v[1],
        s_[0], s_[1], float(finfo.eps), float(finfo.max), ws.buf, ws.offs, ws.scratch,
        cost_sum, weight_sum, correct, ws.out)
    steps, status, epoch, batch, code, layer, is_b, is_s = (int(x) for x in ws.out)
    what = ""
    if status:
        what = WHAT[code]
        param = f"{'b' if is_b else 'W'}{layer + 1}"
        if code == core_train.BAD_GRADIENT:
            what += f" d{param}"
        elif code == core_train.BAD_PARAMETER:
            what += f" {param}"
        elif code == core_train.BAD_STATE:
            what += f" {'s' if is_s else 'v'}_d{param}"
    return ChunkResult(steps, status, epoch, batch, what, int(t), cost_sum, weight_sum,
                       correct)
