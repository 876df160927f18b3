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

``forward(X, Ws, bs, activations, masks=None, out=None) -> (Zs, As)``
    ``Zs[l-1] = Z[l]``; ``As[0] = X``, ``As[l] = A[l]`` (times ``masks[l]`` when given).
    ``X`` may also be F-contiguous (``X_rows.T``) or a column block of either layout: a
    backend reads it in place or copies it. ``out = (Zs, As[1:])``: C-contiguous arrays of
    the outputs' shapes and dtype that a backend may write into and return (``predict`` and
    ``score`` reuse them from call to call); the generic composition ignores them.
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
The training op (generic: :func:`chainrule.backends.engine.fit_epochs` composed from the
backend's ``forward``, ``backward_delta`` and ``sgd_update``; numba and C register one
compiled call)

``fit_epochs(plan, XT, YT, w, *, perms, lrs, keys, k0, n_steps, t, state, Ws, bs, norm=None,
sums=None) -> ChunkResult``
    ``plan`` (:class:`~chainrule.backends.plan.FitPlan`, built once per fit) holds the
    layers, the loss, ``lambd``, the mini-batch size and the optimiser (its code,
    hyperparameter vector and state prefixes) and which layers are batch-normalized (then
    ``bs`` holds their ``beta`` and ``norm = (gammas, running_means, running_vars)`` the
    rest, updated in place; every backend runs such a plan on the engine's composition,
    :func:`chainrule.backends.engine.fit_epochs`); the call runs
    up to ``n_steps`` mini-batch steps from batch ``k0`` of the chunk's first epoch, possibly
    crossing epoch ends: the batch gather from examples-as-rows ``XT`` (m, n[0]), ``YT``
    (m, n[L]) in the order ``perms[e]`` (``None``: the identity), forward with inverted
    dropout (counter-based masks of key ``keys[e]``, :mod:`chainrule.backends.philox`), the
    cost with example weights ``w`` and the L2 term, backward, and the update of the
    optimiser (its ``state`` arrays updated in place, ``t`` returned) with learning rate
    ``lrs[e]``. A backend whose compiled engine does not know the plan's optimiser
    (``plan.optimizer_code is None``) runs the generic composition. A step whose
    cost, gradients, new parameters or new optimiser state are not all finite is not
    applied and ends the call (``status = 1``). Returns the steps done, where the next step
    is, ``t`` and per chunk epoch ``Σ_b J_b Σw_b``, ``Σ_b Σw_b`` (added, step by step, to
    ``sums`` when given: the running sums of a fit's epochs) and the correct predictions
    of the batches (see :class:`~chainrule.backends.engine.ChunkResult`).

``fit_session() -> context manager``
    entered once around a whole fit (generic: nothing). The C backend decides there how many
    threads its engine splits the steps over and keeps the BLAS at one thread per call for
    the whole fit (see :func:`chainrule.backends.c.blas.engine_session`).

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

from ..errors import InputError
from . import auto, compose, engine

BACKENDS = ("numpy", "numba", "c")
LAYER_OPS = ("dense_forward", "dense_backward")
NETWORK_OPS = ("forward", "backward", "backward_delta", "sgd_update", "fit_epochs",
               "fit_session")
ALL_OPS = LAYER_OPS + NETWORK_OPS

_MODULES = {
    "numpy": "chainrule.backends.numpy",
    "numba": "chainrule.backends.numba",
    "c": "chainrule.backends.c",
}
_HOW_TO_GET = {
    "numpy": "numpy is a core dependency: reinstall chainrule",
    "numba": 'install the numba extra: pip install ".[numba]" (numba and scipy)',
    "c": ("the C extension chainrule._cdense was not built: reinstall with a C compiler "
          "present (pip install --force-reinstall --no-binary chainrule chainrule, or "
          "pip install -e . from a checkout)"),
}



def _raise_unavailable(backend):
    """ImportError with how to get ``backend``; or, when it failed on its configuration (an
    InputError, e.g. a bad environment variable), that error, which says what to change."""
    exc = _IMPORT_ERRORS.get(backend)
    if isinstance(exc, InputError):
        raise InputError(f"backend {backend!r} is not available: {exc}") from exc
    if exc is None:
        raise ImportError(f"backend {backend!r} is not available; {_how_to_get(backend)}")
    raise ImportError(f"backend {backend!r} is not available ({exc}); "
                      f"{_how_to_get(backend)}") from exc


def _how_to_get(backend):
    return _HOW_TO_GET.get(backend, f"see {_MODULES.get(backend, backend)} for what it needs")


_REGISTRY: dict[str, dict[str, object]] = {}
# op name -> generic composition, each taking the backend's Ops first (the fallback)
_GENERIC = {**compose.GENERIC, "fit_epochs": engine.generic}
_IMPORT_ERRORS: dict[str, BaseException] = {}
_LOADED: set[str] = set()


def register(op, backend):
    """Decorator: register ``fn`` as ``op`` for ``backend``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {BACKENDS}")
    if op not in ALL_OPS:
        raise ValueError(f"unknown op {op!r}; known: {ALL_OPS}")

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


def choose_backend(layer_dims, m, dtype, backend="auto", *, steps=None, threads=None,
                   batch_norm=False):
    """Resolve ``backend`` (possibly ``"auto"``) to an available backend name.

    ``auto`` picks, among the available backends, the one the policy rule expects to
    be fastest for this network, batch size and dtype; it never picks one expected to
    be slower than NumPy, nor one whose first use (numba's compile) costs more than
    ``steps`` training steps would save (``None``: nothing to save). ``threads`` (the
    fit's) and ``batch_norm`` select the calibration's rows measured so, where it has them.
    """
    backend = requested_backend(backend)
    if backend != "auto":
        if not _load(backend):
            _raise_unavailable(backend)
        return backend
    return auto.choose(layer_dims, m, np.dtype(dtype), _load, BACKENDS, steps=steps,
                       threads=threads, batch_norm=batch_norm)


class Ops:
    """The operations of one backend, looked up by attribute: ``ops.forward(...)``."""

    def __init__(self, backend):
        if not _load(backend):
            _raise_unavailable(backend)
        self.backend = backend

    def __getattr__(self, op):
        if op not in ALL_OPS:
            raise AttributeError(op)
        fn = _REGISTRY.get(op, {}).get(self.backend)
        if fn is None:
            generic = _GENERIC.get(op)
            if generic is None:
                raise AttributeError(f"op {op!r} is registered neither for backend "
                                     f"{self.backend!r} nor as a generic composition")
            # Generic compositions call back into this backend's layer ops.
            fn = functools.partial(generic, self)
        # Bind on the instance: later lookups skip __getattr__ (it cost ~0.8 µs a call,
        # a tenth of a compiled planar step).
        setattr(self, op, fn)
        return fn

    def __repr__(self):
        return f"Ops({self.backend!r})"
