"""One registry of operations, ``{op: {backend: callable}}``, and the policy that picks a backend.

The model calls ``ops.<name>(...)`` and never branches on a backend's name.

The operation contract
----------------------
Every op receives arrays that the public layer already validated: one floating dtype
(float32 or float64) for all of them, C-contiguous, shapes consistent. Layers are
0-based in the lists: ``Ws[l - 1]`` is ``W[l]``. An activation is a pair
``(name, alpha)`` (see :func:`chainrule.reference.parse_activation`).

Layer ops (the fused kernels)

``dense_forward(A_prev, W, b, activation) -> (Z, A)``
    ``Z = W A_prev + b; A = g(Z)``.
``dense_backward(dZ, A_prev, W, Z_prev, activation_prev, convention, lambd, mask_prev, need_dA_prev)
-> (dZ_prev, dW, db, dA_prev)``
    ``dW = s dZ A_prev^T + (lambd/m) W``, ``db = s sum_k dZ`` (``s = 1/m`` for "L", 1 for "J"),
    ``dA_prev = (W^T dZ) * mask_prev`` and ``dZ_prev = dA_prev * g'(Z_prev)``.
    ``Z_prev is None`` marks the input layer: ``dZ_prev`` is ``None`` and ``W^T dZ`` is
    skipped unless ``need_dA_prev``. ``dA_prev`` is ``None`` unless ``need_dA_prev``.

Network ops (a generic composition of the layer ops is registered for every backend; a
backend may register a faster one of its own)

``forward(X, Ws, bs, activations, masks=None) -> (Zs, As)``
    ``Zs[l-1] = Z[l]``; ``As[0] = X``, ``As[l] = A[l]`` (times ``masks[l]`` when given).
``backward(Y, Zs, As, Ws, activations, loss, convention, lambd, masks, need_dA)
-> (dZs, dWs, dbs, dAs)``
    ``dZs[l-1] = dZ[l]`` etc.; ``dAs[l] = dA[l]`` for ``l = 0 .. L-1`` when ``need_dA``,
    else ``None``.
``backward_delta(dZL, Zs, As, Ws, activations, convention, lambd, masks, need_dA)
-> (dZs, dWs, dbs, dAs)``
    the same pass started from a given ``dZ[L]`` (``backward`` is ``output_delta`` then
    this); training uses it for per-example weights, ``dZ[L][:, k] = w_k (A[L] - Y)[:, k]``.
``sgd_update(Ws, bs, dWs, dbs, learning_rate) -> None``
    in place: ``W -= lr dW``, ``b -= lr db``.
``train_step(X, Y, Ws, bs, activations, loss, learning_rate, lambd=0.0, masks=None,
compute_cost=False) -> (ok, cost)``
    forward, backward and, only if every gradient is finite and the update cannot
    overflow (``_compose.update_is_safe``: ``max|p| + lr max|g| < dtype max``), the
    in-place SGD update; ``ok`` says whether the update was applied (a failed step
    leaves ``Ws, bs`` untouched). ``cost`` is the cost of the forward pass (before the update, L2 term
    included) when ``compute_cost``, else NaN.
``train_loop(X, Y, Ws, bs, activations, loss, learning_rate, lambd, n_steps, cost_every)
-> (n_done, costs)``
    ``n_steps`` full-batch steps without returning to Python; ``costs[i]`` is the cost
    before step ``i`` when ``i % cost_every == 0`` (else NaN). It stops at the first step
    whose gradient is not finite, leaving the parameters of the last good step
    (``n_done < n_steps``).

Selection
---------
``CHAINRULE_BACKEND=numpy|numba|c`` forces a backend (``auto`` or unset lets the policy
choose). A backend is available when its module imports; a forced one that does not
raises ``ImportError`` naming what to install.
"""

from __future__ import annotations

import functools
import importlib
import os

import numpy as np

BACKENDS = ("numpy", "numba", "c")
LAYER_OPS = ("dense_forward", "dense_backward")
NETWORK_OPS = ("forward", "backward", "backward_delta", "sgd_update", "train_step", "train_loop")

_MODULES = {
    "numpy": "chainrule._numpy_backend",
    "numba": "chainrule._numba_backend",
    "c": "chainrule._cbackend",
}
_HOW_TO_GET = {
    "numpy": "numpy is a core dependency: reinstall chainrule",
    "numba": "install the numba extra: pip install 'chainrule[numba]' (numba and scipy)",
    "c": ("the C extension chainrule._cdense was not built: reinstall with a C compiler "
          "present (pip install --force-reinstall --no-binary chainrule chainrule, or "
          "pip install -e . from a checkout)"),
}

_REGISTRY: dict[str, dict[str, object]] = {}
_IMPORT_ERRORS: dict[str, BaseException] = {}
_LOADED: set[str] = set()


def register(op, backend):
    """Decorator: register ``fn`` as ``op`` for ``backend``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {BACKENDS}")
    if op not in LAYER_OPS + NETWORK_OPS:
        raise ValueError(f"unknown op {op!r}; known: {LAYER_OPS + NETWORK_OPS}")

    def decorator(fn):
        _REGISTRY.setdefault(op, {})[backend] = fn
        return fn

    return decorator


def _load(backend):
    """Import a backend's module (which registers its ops); return True if it imported."""
    if backend in _LOADED:
        return True
    if backend in _IMPORT_ERRORS:
        return False
    try:
        importlib.import_module(_MODULES[backend])
    except Exception as exc:  # ImportError, or numba failing at import on an odd platform
        _IMPORT_ERRORS[backend] = exc
        return False
    _LOADED.add(backend)
    return True


def available_backends():
    """The backends whose modules import here, in preference order, e.g. ``['numpy', 'numba']``."""
    return [b for b in BACKENDS if _load(b)]


def import_error(backend):
    """Why ``backend`` is unavailable (the exception), or ``None``."""
    _load(backend)
    return _IMPORT_ERRORS.get(backend)


def requested_backend(backend="auto"):
    """The backend asked for: ``CHAINRULE_BACKEND`` overrides ``"auto"``."""
    if backend in (None, "auto"):
        backend = os.environ.get("CHAINRULE_BACKEND", "auto").strip().lower() or "auto"
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of "
                         f"{('auto',) + BACKENDS}")
    return backend


def choose_backend(layer_dims, m, dtype, backend="auto"):
    """Resolve ``backend`` (possibly ``"auto"``) to an available backend name.

    ``auto`` picks, among the available backends, the one the policy rule expects to
    be fastest for this network, batch size and dtype; it never picks one expected to
    be slower than NumPy.
    """
    backend = requested_backend(backend)
    if backend != "auto":
        if not _load(backend):
            raise ImportError(f"backend {backend!r} is not available ({_IMPORT_ERRORS[backend]}); "
                              f"{_HOW_TO_GET[backend]}") from _IMPORT_ERRORS[backend]
        return backend
    return auto_rule(layer_dims, m, np.dtype(dtype), available_backends())


def auto_rule(layer_dims, m, dtype, available, *, table=None):
    """The measured rule behind ``backend="auto"``.

    ``chainrule bench --calibrate --write`` times every backend's ``train_step`` on
    networks ``[w, w, ..., 1]`` over a grid of width ``w``, batch ``m`` and dtype, and
    writes the medians to ``chainrule/_auto_table.py``. Here a network is placed on that
    grid by its effective width ``sqrt(mean_l n[l] n[l-1])`` (the per-layer products set
    the work per example) and its ``m`` (a network the table measured itself, as the
    benchmark workloads, is looked up under its own layer sizes instead), the nearest measured cell (log scale) is
    looked up, and the fastest available backend there is picked, but only if it was
    measured at least ``_AUTO_MARGIN`` faster than NumPy. A backend the table has no
    measurement for is never picked; neither is one whose registered predicate
    (``_AUTO_PREDICATES``) declines the shape. With ``m`` unknown (``None``) a backend
    must beat NumPy at every measured ``m`` of the nearest width.
    """
    table = _auto_table() if table is None else table
    dtype = np.dtype(dtype).name
    dims = [int(n) for n in layer_dims]
    # A network measured as such (the benchmark workloads) is looked up by its own shape.
    row = [c for c in table.get("networks", ())
           if c["dtype"] == dtype and [int(n) for n in c["layer_dims"]] == dims]
    if not row:
        cells = [c for c in table.get("cells", ()) if c["dtype"] == dtype]
        if not cells:
            return "numpy"
        work = [dims[l] * dims[l - 1] for l in range(1, len(dims))]
        width = float(np.sqrt(np.mean(work))) if work else 1.0
        log_w = np.log(max(width, 1.0))
        nearest_w = min({c["width"] for c in cells}, key=lambda w: abs(np.log(w) - log_w))
        row = [c for c in cells if c["width"] == nearest_w]
    if m is not None:
        log_m = np.log(max(int(m), 1))
        row = [min(row, key=lambda c: abs(np.log(c["m"]) - log_m))]
    best, best_seconds = "numpy", None
    for backend in available:
        if backend == "numpy":
            continue
        predicate = _AUTO_PREDICATES.get(backend)
        if predicate is not None and not predicate(layer_dims, m, np.dtype(dtype)):
            continue
        ratios = [c["seconds"].get(backend, np.inf) / c["seconds"].get("numpy", np.nan)
                  for c in row]
        if not all(r <= _AUTO_MARGIN for r in ratios):  # NaN (no numpy timing) fails too
            continue
        seconds = max(ratios)
        if best_seconds is None or seconds < best_seconds:
            best, best_seconds = backend, seconds
    return best


# A backend must be measured this much faster than NumPy (median ratio) to be picked:
# medians on a shared 2-core machine move by a few per cent between runs.
_AUTO_MARGIN = 0.9

# Optional vetoes that compiled backends may register: predicate(layer_dims, m, dtype) -> bool.
# (_AUTO_PREFERENCE is kept for backends that append to it; the measured table orders them.)
_AUTO_PREFERENCE: list[str] = []
_AUTO_PREDICATES: dict[str, object] = {}


def _auto_table():
    """The calibration table (``chainrule._auto_table.TABLE``); empty if it is missing."""
    try:
        from ._auto_table import TABLE
    except ImportError:
        return {}
    return TABLE


class Ops:
    """The operations of one backend, looked up by attribute: ``ops.forward(...)``."""

    def __init__(self, backend):
        if not _load(backend):
            raise ImportError(f"backend {backend!r} is not available; {_HOW_TO_GET[backend]}")
        _load("numpy")  # the generic compositions live with the numpy backend
        self.backend = backend

    def __getattr__(self, op):
        if op not in LAYER_OPS + NETWORK_OPS:
            raise AttributeError(op)
        table = _REGISTRY.get(op, {})
        fn = table.get(self.backend) or table.get("generic")
        if fn is None:
            raise AttributeError(f"op {op!r} is registered neither for backend {self.backend!r} "
                                 f"nor as a generic composition")
        if fn is table.get("generic"):
            # Generic compositions call back into this backend's layer ops.
            fn = functools.partial(fn, self)
        # Bind on the instance: later lookups skip __getattr__ (it cost ~0.8 µs a call,
        # a tenth of a compiled planar step).
        setattr(self, op, fn)
        return fn

    def __repr__(self):
        return f"Ops({self.backend!r})"


def register_generic(op):
    """Decorator: the backend-independent composition of ``op`` from layer ops.

    The function takes the :class:`Ops` of the calling backend as its first argument.
    """
    def decorator(fn):
        _REGISTRY.setdefault(op, {})["generic"] = fn
        return fn

    return decorator
