"""Validation at the public boundary: clear errors that name the layer and the dimension analysis.

Kernels and the reference never validate; everything that reaches them went through here.

Messages follow one pattern: ``<what> has <given> but <why>: expected <expected>[ — <hint>]``.

Dtype policy
------------
Arrays given to the network (``X``, ``Y``, ``AL``, caches, parameters) may be bool, integer
or floating point: they are converted to the network's dtype (``float32`` or ``float64``),
C-contiguous, and must then be finite. Object, complex, string and other dtypes are
refused. Parameters must all share one dtype.
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings

import numpy as np

from . import _threads
from . import reference as ref
from . import spec as _spec
from .backends.registry import BACKENDS
from .errors import InputError, ShapeError

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floating point
# numpy < 2 warns (instead of raising) on ragged nested lists.
_RaggedWarning = getattr(np, "exceptions", np).VisibleDeprecationWarning


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def dtype(value):
    """``"float32"``/``"float64"`` (or the numpy dtypes, in either byte order) -> the native
    numpy dtype; anything else is refused."""
    try:
        dt = np.dtype(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"dtype must be 'float32' or 'float64', got {value!r}") from exc
    if dt.kind == "f" and not dt.isnative:
        dt = dt.newbyteorder("=")  # '>f8' is float64 in the other byte order: compute natively
    if dt not in FLOAT_DTYPES:
        given = repr(value) if isinstance(value, str) and value == dt.name else \
            f"{value!r} ({dt.name})"
        raise InputError(f"dtype must be 'float32' or 'float64', got {given}")
    return dt


def backend(value):
    """``"auto"`` or a known backend name (whether it is installed is checked by the dispatcher)."""
    valid = ("auto",) + BACKENDS
    if value is None:
        return "auto"
    if not isinstance(value, str) or value.strip().lower() not in valid:
        raise InputError(f"unknown backend {value!r}; valid: {', '.join(valid)}")
    return value.strip().lower()


def seed(value, what="seed"):
    """``None`` or an integer in ``[0, 2**32)`` (what ``np.random.seed`` also accepts)."""
    if value is None:
        return None
    if not _is_int(value) or not 0 <= value < 2 ** 32:
        raise InputError(f"{what} must be None or an integer in [0, 2**32), got {value!r}")
    return int(value)


def init(value):
    if not isinstance(value, str) or value not in ref.INITIALIZERS:
        raise InputError(f"unknown init {value!r}; valid: {', '.join(ref.INITIALIZERS)}")
    return value


def layer_dims(dims):
    """A sequence of at least two positive integers ``[n[0], ..., n[L]]``."""
    if isinstance(dims, (str, bytes)):
        raise InputError(f"layer_dims must be a list of layer sizes like [2, 4, 1], got {dims!r}")
    try:
        dims = list(dims)
    except TypeError as exc:
        raise InputError(f"layer_dims must be a list of layer sizes like [2, 4, 1], got {dims!r}") from exc
    if len(dims) < 2:
        raise InputError(f"layer_dims needs the input size and at least one layer, got {dims!r}")
    out = []
    for l, n in enumerate(dims):
        if not _is_int(n) or n <= 0:
            raise InputError(f"layer_dims[{l}] = n[{l}] must be a positive integer, got {n!r}")
        out.append(int(n))
    return out


def activations(specs, L):
    """One activation spec per layer, ``L`` in all; a single string is one spec."""
    if isinstance(specs, (str, tuple)) and L == 1:
        specs = [specs]
    try:
        specs = list(specs)
    except TypeError as exc:
        raise InputError(f"activations must be a list with one activation per layer (L = {L}), "
                         f"got {specs!r}") from exc
    if len(specs) != L:
        raise InputError(f"activations has {len(specs)} entries but the network has L = {L} "
                         f"layers: give one per layer")
    return [activation(a, l, l == L) for l, a in enumerate(specs, 1)]


def activation(spec, layer, is_output):
    """Parse and check an activation spec for ``layer``; returns ``(name, alpha)``."""
    valid = _spec.activation_help()
    if not (isinstance(spec, str) or isinstance(spec, (tuple, list)) and len(spec) == 2
            and isinstance(spec[0], str)):
        raise InputError(f"layer {layer}: cannot read activation {spec!r}; give a name "
                         f"({valid}) or (name, alpha)")
    try:
        name, alpha = ref.parse_activation(spec)
    except (TypeError, ValueError) as exc:
        raise InputError(f"layer {layer}: cannot read activation {spec!r}; alpha must be a "
                         f"number") from exc
    if name not in _spec.ACTIVATIONS:
        raise InputError(f"layer {layer}: unknown activation {name!r}; valid: {valid}")
    if _spec.ACTIVATIONS[name].output_only and not is_output:
        raise InputError(f"layer {layer}: {name} is only supported as the output activation")
    if not math.isfinite(alpha):
        raise InputError(f"layer {layer}: leaky_relu alpha must be finite, got {alpha!r}")
    return name, alpha


def loss(name, output_activation, n_out):
    if not isinstance(name, str) or name not in _spec.LOSSES:
        raise InputError(f"unknown loss {name!r}; valid: {_spec.loss_help()}")
    if n_out < _spec.LOSSES[name].min_units:
        raise InputError(f"{name} needs an output layer of at least "
                         f"{_spec.LOSSES[name].min_units} units (one per class); use "
                         f"binary_crossentropy with 1 unit")
    out = _spec.ACTIVATIONS.get(output_activation)
    if out is not None and out.output_only and name != out.fused_loss:
        raise InputError(f"a {output_activation} output goes with {out.fused_loss}, not {name!r}")
    outputs = _spec.loss_outputs(name)
    if output_activation not in outputs:
        raise InputError(f"{name} needs probabilities from the output layer: use a "
                         f"{' or '.join(outputs)} output, not {output_activation!r}")
    return name


def positive_finite(value, what):
    if type(value) is float and 0.0 < value < math.inf:  # the common case, without the ABCs
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value <= 0:
        raise InputError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)


def n_threads(value):
    """``None`` (leave the BLAS thread pools alone) or an integer >= 1."""
    if value is None:
        return None
    if not _is_int(value) or value < 1:
        raise InputError(f"n_threads must be None or an integer >= 1, got {value!r}")
    return int(value)


def boolean(value, what):
    """``True`` or ``False`` (NumPy's too); a string such as ``"no"``, a number or None is
    refused rather than taken by its truth value."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise InputError(f"{what} must be True or False, got {type(value).__name__} {value!r:.60}")


def nonneg_int(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InputError(f"{what} must be an integer >= 0, got {value!r}")
    return int(value)


def positive_int(value, what, zero_message=None):
    """An integer > 0; a negative one gets :func:`nonneg_int`'s message, 0 ``zero_message``."""
    value = nonneg_int(value, what)
    if value == 0:
        raise InputError(zero_message or f"{what} must be an integer > 0")
    return value


def nonneg_float(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value) or value < 0:
        raise InputError(f"{what} must be a finite number >= 0, got {value!r}")
    return float(value)


def convention(value):
    if not isinstance(value, str) or value not in ref.CONVENTIONS:
        raise InputError(f"convention must be 'L' (the lectures) or 'J' (derivatives of the cost), "
                         f"got {value!r}")
    return value


def _asarray(a, name):
    """``np.asarray(a)`` with numpy's complaints (ragged lists...) turned into ``InputError``."""
    if hasattr(a, "toarray") and hasattr(a, "nnz"):  # scipy.sparse: np.asarray gives an object
        raise InputError(f"{name} is a scipy.sparse {type(a).__name__} of shape "
                         f"{getattr(a, 'shape', '?')}; this call computes on dense arrays: "
                         f"pass {name}.toarray() (it needs the memory of every entry). A "
                         f"sparse X is taken by fit (with mini_batch_size), predict, "
                         f"predict_proba and score, a block at a time")
    if isinstance(a, np.ma.MaskedArray):  # np.asarray would drop the mask silently
        masked = int(np.count_nonzero(np.ma.getmaskarray(a)))
        if masked:
            raise InputError(f"{name} is a masked array with {masked} masked entries, and "
                             f"chainrule does not ignore masks: fill them "
                             f"({name}.filled(value)) or leave out their examples")
        a = a.data
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", _RaggedWarning)
            return np.asarray(a)
    except (ValueError, TypeError, _RaggedWarning) as exc:
        raise InputError(f"{name} cannot be read as an array ({exc}); give a rectangular numeric "
                         f"array") from exc


def _as_float_array(a, name, dt, order="C"):
    """A numeric ``a`` as a C-contiguous array of ``dt`` (``order="K"``: an F-contiguous one
    is kept too); object, complex, str... are refused."""
    a = _asarray(a, name)
    if a.dtype.kind not in _NUMERIC_KINDS:
        raise InputError(f"{name} has dtype {a.dtype} but chainrule computes in {dt.name}: "
                         f"expected a numeric (bool, integer or float) array")
    if a.dtype == dt and (a.flags.c_contiguous or (order == "K" and a.flags.f_contiguous)):
        if a.flags.aligned:
            return a
        # unaligned (a buffer unpickled by Dask's workers, np.frombuffer at an odd offset):
        # the compiled kernels need aligned data, so one aligned copy in the same layout
        return np.require(a, dt, ["C" if a.flags.c_contiguous else "F", "A"])
    # np.asarray keeps a 0-d array 0-d (ascontiguousarray would make it 1-d). An overflow to
    # inf is reported by _finite, with its cause.
    with np.errstate(over="ignore"):
        return np.asarray(a, dtype=dt, order="C")


# all_finite of a large array: its mask a chunk at a time (about 256 KB, kept in the cache:
# no temporary the size of the array, which cost more than the pass itself), the chunks of an
# array of more than about 4M entries shared among the BLAS's threads. 60000 x 784 float32
# (X of a fit) on a 2-core AMD EPYC: 11.4-12.4 ms in one mask, 5.1-5.8 ms so.
_FINITE_CHUNK = 1 << 18
_FINITE_PARALLEL = 1 << 22


def all_finite(a):
    """Whether every entry of the floating-point array ``a`` is finite (no warning, no copy
    of ``a``)."""
    if a.size <= _FINITE_CHUNK or not (a.flags.c_contiguous or a.flags.f_contiguous):
        return np.count_nonzero(np.isfinite(a)) == a.size
    flat = a.ravel(order="K")  # a view: the entries in memory order
    n = _threads.blas_threads() if flat.size >= _FINITE_PARALLEL and not _threads.in_pool() \
        else 1
    if n == 1:
        return _finite_chunks(flat)
    bounds = [flat.size * t // n for t in range(n + 1)]
    parts = [flat[bounds[t]:bounds[t + 1]] for t in range(n)]
    return all(_threads.run_parts(lambda t: _finite_chunks(parts[t]), n))


def _finite_chunks(flat):
    mask = np.empty(min(_FINITE_CHUNK, flat.size), dtype=bool)
    for start in range(0, flat.size, _FINITE_CHUNK):
        chunk = flat[start:start + _FINITE_CHUNK]
        view = mask[:chunk.size]
        np.isfinite(chunk, out=view)
        if not view.all():
            return False
    return True


def sum_finite(a):
    """A sufficient test that every entry of ``a`` is finite, at the cost of a sum (no
    temporary array): a NaN or inf makes the sum NaN or inf. A sum that overflows from finite
    entries answers ``False`` too; callers then check exactly (:func:`all_finite`). Small
    arrays are checked exactly at once (cheaper than the sum's error-state switch)."""
    if a.size <= 65536:
        return all_finite(a)
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.add.reduce(a, axis=None)))


def _finite(a, name, source=None):
    """Refuse NaN/inf in ``a``; ``source`` (the array before conversion) tells an overflow on
    conversion (``1e39`` into float32) from a NaN or inf that was there already."""
    if not all_finite(a):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        where = f"{name}[{', '.join(map(str, bad))}]" if bad else name
        hint = ""
        if isinstance(source, np.ndarray) and source.dtype != a.dtype and \
                source.size == a.size and source.dtype.kind in _NUMERIC_KINDS:
            before = source.reshape(a.shape)[bad]
            if np.isfinite(before):
                hint = (f" (the finite value {before.item()!r} overflows {a.dtype.name} on "
                        f"conversion from {source.dtype.name})")
        raise InputError(f"{name} contains NaN or inf: {where} = {a[bad].item()}{hint}; "
                         f"expected finite values")


def _float_finite(a, name, dt):
    out = _as_float_array(a, name, dt)
    _finite(out, name, a if isinstance(a, np.ndarray) else None)
    return out


def X(X, n_x, dt, order="C", finite=True):
    """``X`` of shape ``(n[0], m)``, converted to ``dt``, C-contiguous (``order="K"``: or
    F-contiguous, as ``X_rows.T`` of examples-as-rows data, kept without a copy), finite.

    ``finite=False`` skips the pass over an ``X`` that needs no conversion (one that does is
    still checked: the conversion is a pass anyway, and an overflow on conversion is told
    apart there): the caller checks what the kernels made of it (:func:`sum_finite` of
    ``Z[1]``) and, only when that is not finite, calls this again to word the error."""
    if (type(X) is np.ndarray and X.dtype == dt and X.ndim == 2 and X.shape[0] == n_x
            and X.shape[1] and (X.flags.c_contiguous or order == "K" and X.flags.f_contiguous)
            and X.flags.aligned and (not finite or all_finite(X))):
        return X  # already what the checks below would return (X itself), at a fraction
    X = _asarray(X, "X")
    original = X
    X = _as_float_array(X, "X", dt, order)
    if X.ndim == 1 and n_x == 1:
        X = X.reshape(1, -1)
    if X.ndim != 2:
        hint = (f" — a single example? pass X.reshape({n_x}, 1)"
                if X.ndim == 1 and X.shape[0] == n_x else "")
        raise ShapeError(f"X has {X.ndim}-D shape {X.shape} but layer 1 takes columns of "
                         f"n[0] = {n_x} features: expected 2-D ({n_x}, m){hint}")
    if X.shape[0] != n_x:
        hint = (" — it looks like examples are rows: pass X.T (examples are columns)"
                if X.shape[1] == n_x else "")
        raise ShapeError(f"X has shape {X.shape} but layer 1 expects n[0] = {n_x} input features: "
                         f"expected ({n_x}, m){hint}")
    if X.shape[1] == 0:
        raise ShapeError(f"X has shape {X.shape}: m = 0 examples; expected ({n_x}, m) with m >= 1")
    _finite(X, "X", original)
    return X


def is_sparse(X):
    """True for a scipy.sparse matrix or array (scipy is optional: without it loaded, no
    sparse input can exist)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


def sparse_X(X, n_x, dt):
    """A scipy.sparse ``X`` of shape ``(n[0], m)`` as CSR rows of examples (``X.T``, shape
    ``(m, n[0])``, values in ``dt``, finite); the matrix is never densified here."""
    if X.ndim != 2 or X.shape[0] != n_x:
        hint = (" — it looks like examples are rows: pass X.T (examples are columns)"
                if X.ndim == 2 and X.shape[1] == n_x else "")
        raise ShapeError(f"sparse X has shape {X.shape} but layer 1 expects n[0] = {n_x} input "
                         f"features: expected ({n_x}, m){hint}")
    if X.shape[1] == 0:
        raise ShapeError(f"X has shape {X.shape}: m = 0 examples; expected ({n_x}, m) with m >= 1")
    rows = X.T.tocsr().astype(dt, copy=False)
    if not all_finite(rows.data):
        raise InputError("sparse X has NaN or inf among its stored values")
    return rows


def AL(AL, n_out, m, loss_name, dt, name="AL"):
    """``AL`` of shape ``(n[L], m)`` (``m`` from the caches, or ``None`` to take AL's), finite;
    probabilities in ``[0, 1]`` for the cross-entropy losses."""
    AL = _float_finite(AL, name, dt)
    if AL.ndim == 1 and n_out == 1:
        AL = AL.reshape(1, -1)
    if AL.ndim != 2 or AL.shape[0] != n_out or (m is not None and AL.shape[1] != m):
        transposed = AL.ndim == 2 and AL.shape[1] == n_out and AL.shape[0] in (m, None if m
                                                                                else AL.shape[0])
        hint = f" — it looks transposed: pass {name}.T" if transposed else ""
        examples = "" if m is None else f" and there are m = {m} examples"
        raise ShapeError(f"{name} has shape {AL.shape} but the output layer has n[L] = {n_out} "
                         f"units{examples}: expected ({n_out}, {'m' if m is None else m}){hint}")
    if AL.shape[1] == 0:
        raise ShapeError(f"{name} has shape {AL.shape}: m = 0 examples")
    if loss_name in ("binary_crossentropy", "categorical_crossentropy") and \
            (AL.min() < 0 or AL.max() > 1):
        raise InputError(f"{name} has values outside [0, 1] but {loss_name} needs probabilities "
                         f"(min {AL.min()}, max {AL.max()})")
    return AL


def Y(Y, n_out, m, loss_name, dt):
    """``Y`` of shape ``(n[L], m)``; integer class labels are one-hot encoded for softmax."""
    if (type(Y) is np.ndarray and Y.dtype == dt and Y.shape == (n_out, m)
            and Y.flags.c_contiguous and loss_name != "categorical_crossentropy"
            and (_labels_01(Y) if loss_name == "binary_crossentropy" else all_finite(Y))):
        return Y  # already what the checks below would return (Y itself), at a fraction
    Y = _asarray(Y, "Y")
    if Y.dtype.kind not in _NUMERIC_KINDS:
        raise InputError(f"Y has dtype {Y.dtype}: expected a numeric (bool, integer or float) "
                         f"array")
    if loss_name == "categorical_crossentropy" and (Y.ndim == 1 or Y.ndim == 2 and Y.shape[0] == 1):
        labels = _checked_labels(Y, n_out, m)
        onehot = np.zeros((n_out, m), dtype=dt)
        onehot[labels.astype(np.intp), np.arange(m)] = 1
        return onehot
    original = Y
    Y = _as_float_array(Y, "Y", dt)
    if Y.ndim == 1 and n_out == 1:
        Y = Y.reshape(1, -1)
    if Y.shape != (n_out, m):
        hint = " — it looks transposed: pass Y.T" if Y.shape == (m, n_out) else ""
        raise ShapeError(f"Y has shape {Y.shape} but the output layer has n[L] = {n_out} units and "
                         f"there are m = {m} examples: expected ({n_out}, {m}){hint}")
    _finite(Y, "Y", original)
    if loss_name == "binary_crossentropy" and not _labels_01(Y):
        example = Y[(Y != 0) & (Y != 1)][0].item()
        raise InputError(f"Y has labels outside {{0, 1}} (e.g. {example!r}) but "
                         f"binary_crossentropy needs labels in {{0, 1}}")
    if loss_name == "categorical_crossentropy" and (np.any(Y < 0) or
                                                    not np.allclose(Y.sum(axis=0), 1)):
        raise InputError("Y is not a distribution per column but categorical_crossentropy needs "
                         "one-hot columns (each >= 0, summing to 1), or integer labels of "
                         "shape (m,)")
    return Y


def _checked_labels(Y, n_out, m):
    """Class labels ``Y`` (numeric, of shape ``(m,)`` or ``(1, m)``) as a 1-D array, each an
    integer in ``[0, n_out)``; else the errors of :func:`Y`."""
    labels = Y.reshape(-1)
    if labels.shape[0] != m:
        raise ShapeError(f"Y has {labels.shape[0]} class labels but there are m = {m} "
                         f"examples: expected shape ({m},) or one-hot ({n_out}, {m})")
    with np.errstate(invalid="ignore"):
        bad = (labels < 0) | (labels >= n_out)
        if labels.dtype.kind == "f":
            bad |= ~np.isfinite(labels) | (labels != np.round(labels))
    if bad.any():
        label = labels[bad][0].item()
        raise InputError(f"Y has class label {label!r} but the output layer has {n_out} "
                         f"units: expected integers in [0, {n_out - 1}]")
    return labels


def class_labels(Y, n_out, m, loss_name):
    """For a softmax/categorical cross-entropy output: ``Y`` given as class labels (an
    integer or integral float array of shape ``(m,)`` or ``(1, m)``), checked as :func:`Y`
    checks them and returned as a 1-D array without the one-hot; None for any other ``Y``
    (one-hot or soft columns: :func:`Y`'s to check)."""
    if loss_name != "categorical_crossentropy" or isinstance(Y, (list, tuple)):
        return None
    if not (isinstance(Y, np.ndarray) and Y.dtype.kind in "iuf" and
            (Y.ndim == 1 or Y.ndim == 2 and Y.shape[0] == 1 and n_out > 1)):
        return None
    return _checked_labels(Y, n_out, m)


def _labels_01(Y):
    """Whether every entry of ``Y`` is 0 or 1 (so finite): its nonzero entries are its ones."""
    return np.count_nonzero(Y) == np.count_nonzero(Y == 1)


def _check_array(a, key, shape, what, layer, n_prev, n, dt):
    original = a
    a = _as_float_array(a, key, dt)
    if a.shape != shape:
        hint = " — is it transposed?" if a.shape == shape[::-1] else ""
        raise ShapeError(f"{key} has shape {a.shape} but layer {layer} maps {n_prev} units to "
                         f"{n}: expected {shape} = {what}{hint}")
    _finite(a, key, original)
    return a


def batch_norm(value, L):
    """``Network(batch_norm=...)``: ``True``/``False`` (every hidden layer) or one bool per
    hidden layer; returns ``L`` bools (the output layer never normalizes)."""
    n_hidden = L - 1
    if isinstance(value, (bool, np.bool_)):
        flags = [bool(value)] * n_hidden
    else:
        try:
            flags = list(value)
        except TypeError:
            raise InputError(f"batch_norm must be a bool or one bool per hidden layer "
                             f"({n_hidden}), got {value!r}") from None
        if len(flags) != n_hidden or any(not isinstance(f, (bool, np.bool_)) for f in flags):
            raise InputError(f"batch_norm must be a bool or one bool per hidden layer "
                             f"({n_hidden} for this network), got {value!r}")
        flags = [bool(f) for f in flags]
    return flags + [False]


def batch_norm_momentum(value):
    """The course's beta of the running averages, in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise InputError(f"batch_norm_momentum (the course's beta of the running averages, "
                         f"PyTorch's 1 - momentum) must be a number in [0, 1), got {value!r}")
    return float(value)


def parameter_keys(L, flags=None):
    """The parameter names of an ``L``-layer network, in order: ``W{l}, b{l}``, or ``W{l},
    gamma{l}, beta{l}`` for a batch-norm layer (``flags[l-1]``)."""
    flags = [False] * L if flags is None else flags
    keys = []
    for l in range(1, L + 1):
        keys += [f"W{l}", f"gamma{l}", f"beta{l}"] if flags[l - 1] else [f"W{l}", f"b{l}"]
    return keys


def parameters(params, dims, dt, batch_norm=None):
    """Check ``W1, b1, ..., WL, bL`` against ``dims``; returns C-contiguous copies in ``dt``.

    ``batch_norm``: one bool per layer (a batch-norm layer has ``gamma{l}, beta{l}`` instead
    of ``b{l}``); ``None`` infers it from the keys (a layer with ``gamma{l}``)."""
    L = len(dims) - 1
    if not isinstance(params, dict):
        raise InputError(f"parameters must be a dict with keys W1, b1, ..., W{L}, b{L}, got "
                         f"{type(params).__name__}")
    if batch_norm is None:
        batch_norm = [f"gamma{l}" in params for l in range(1, L + 1)]
    keys = parameter_keys(L, batch_norm)
    expected_keys = set(keys)
    if set(params) != expected_keys:
        missing = sorted(expected_keys - set(params))
        extra = sorted(map(str, set(params) - expected_keys))
        raise InputError(f"parameters keys do not match a {L}-layer network: missing {missing}, "
                         f"unexpected {extra}")
    arrays = {k: _asarray(v, k) for k, v in params.items()}
    dtypes = {a.dtype for a in arrays.values()}
    if len(dtypes) > 1:
        raise InputError(f"parameters mix dtypes {sorted(str(d) for d in dtypes)}; "
                         f"expected one dtype ({dt.name})")
    out = {}
    for l in range(1, L + 1):
        n, n_prev = dims[l], dims[l - 1]
        out[f"W{l}"] = _check_array(arrays[f"W{l}"], f"W{l}", (n, n_prev),
                                    f"(n[{l}], n[{l - 1}])", l, n_prev, n, dt).copy()
        for p in (("gamma", "beta") if batch_norm[l - 1] else ("b",)):
            out[f"{p}{l}"] = _check_array(arrays[f"{p}{l}"], f"{p}{l}", (n, 1),
                                          f"(n[{l}], 1)", l, n_prev, n, dt).copy()
    return out


def running_statistics(stats, dims, dt, batch_norm):
    """``{running_mean{l}, running_var{l}}`` of the batch-norm layers: shape ``(n[l], 1)``,
    finite, variances ``>= 0``; returns C-contiguous copies in ``dt``."""
    L = len(dims) - 1
    expected = {f"running_{p}{l}" for l in range(1, L + 1) if batch_norm[l - 1]
                for p in ("mean", "var")}
    if set(stats) != expected:
        raise InputError(f"the running statistics do not match the batch-norm layers: missing "
                         f"{sorted(expected - set(stats))}, unexpected "
                         f"{sorted(map(str, set(stats) - expected))}")
    out = {}
    for key in sorted(expected):
        l = int(key.rsplit("_", 1)[1].lstrip("meanvr"))
        a = _check_array(_asarray(stats[key], key), key, (dims[l], 1), f"(n[{l}], 1)", l,
                         dims[l - 1], dims[l], dt).copy()
        if key.startswith("running_var") and (a < 0).any():
            raise InputError(f"{key} (layer {l}'s running variance) has negative entries")
        out[key] = a
    return out


def caches(caches, dims, dt):
    """The course's caches ``[((A_prev, W, b), Z), ...]`` for a network of ``dims``.

    Returns ``(As, Ws, Zs, m)`` with ``As[l-1] = A[l-1]`` (``l = 1..L``), converted to ``dt``.
    """
    L = len(dims) - 1
    if not isinstance(caches, (list, tuple)):
        raise InputError(f"caches must be the list of L = {L} caches that forward returned, got "
                         f"{type(caches).__name__}")
    if len(caches) != L:
        raise InputError(f"caches has {len(caches)} entries but this network has L = {L} layers: "
                         f"pass the caches of this network's forward")
    As, Ws, Zs = [], [], []
    m = None
    for l, cache in enumerate(caches, 1):
        try:
            (A_prev, W, b), Z = cache
        except (TypeError, ValueError) as exc:
            raise InputError(f"cache {l} is not ((A_prev, W, b), Z) as forward returns") from exc
        n, n_prev = dims[l], dims[l - 1]
        A_prev = _float_finite(A_prev, f"cache {l}: A[{l - 1}]", dt)
        if m is None and A_prev.ndim == 2:
            m = A_prev.shape[1]
        if A_prev.ndim != 2 or A_prev.shape != (n_prev, m):
            hint = " — is it transposed?" if A_prev.shape == (m, n_prev) else ""
            raise ShapeError(f"cache {l}: A[{l - 1}] has shape {A_prev.shape} but layer {l} takes "
                             f"n[{l - 1}] = {n_prev} units and m = {m} examples: expected "
                             f"({n_prev}, {m}) = (n[{l - 1}], m){hint}")
        if m == 0:
            raise ShapeError(f"cache {l}: A[{l - 1}] has shape {A_prev.shape}: m = 0 examples")
        W = _check_array(W, f"cache {l}: W{l}", (n, n_prev), f"(n[{l}], n[{l - 1}])", l,
                         n_prev, n, dt)
        _check_array(b, f"cache {l}: b{l}", (n, 1), f"(n[{l}], 1)", l, n_prev, n, dt)
        Z = _float_finite(Z, f"cache {l}: Z{l}", dt)
        if Z.shape != (n, m):
            hint = " — is it transposed?" if Z.shape == (m, n) else ""
            raise ShapeError(f"cache {l}: Z{l} has shape {Z.shape} but layer {l} has n[{l}] = {n} "
                             f"units and m = {m} examples: expected ({n}, {m}){hint}")
        As.append(A_prev)
        Ws.append(W)
        Zs.append(Z)
    return As, Ws, Zs, m
