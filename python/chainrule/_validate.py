"""Validation at the public boundary: clear errors that name the layer and the dimension analysis.

Kernels and the reference never validate; everything that reaches them went through here.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from . import reference as ref
from .errors import InputError, ShapeError

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def dtype(value):
    """``"float32"``/``"float64"`` (or the numpy dtypes) -> numpy dtype; anything else is refused."""
    try:
        dt = np.dtype(value)
    except TypeError as exc:
        raise InputError(f"dtype must be 'float32' or 'float64', got {value!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise InputError(f"dtype must be 'float32' or 'float64', got {dt.name!r}")
    return dt


def layer_dims(dims):
    """A sequence of at least two positive integers ``[n[0], ..., n[L]]``."""
    try:
        dims = list(dims)
    except TypeError as exc:
        raise InputError(f"layer_dims must be a list of layer sizes like [2, 4, 1], got {dims!r}") from exc
    if len(dims) < 2:
        raise InputError(f"layer_dims needs the input size and at least one layer, got {dims!r}")
    out = []
    for l, n in enumerate(dims):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n <= 0:
            raise InputError(f"layer_dims[{l}] = n[{l}] must be a positive integer, got {n!r}")
        out.append(int(n))
    return out


def activation(spec, layer, is_output):
    """Parse and check an activation spec for ``layer``; returns ``(name, alpha)``."""
    try:
        name, alpha = ref.parse_activation(spec)
    except (TypeError, ValueError) as exc:
        raise InputError(f"layer {layer}: cannot read activation {spec!r}; use a name or "
                         f"(name, alpha)") from exc
    if name not in ref.ACTIVATIONS:
        raise InputError(f"layer {layer}: unknown activation {name!r}; valid: "
                         f"{', '.join(ref.ACTIVATIONS)}")
    if name == "softmax" and not is_output:
        raise InputError(f"layer {layer}: softmax is only supported as the output activation")
    if not math.isfinite(alpha):
        raise InputError(f"layer {layer}: leaky_relu alpha must be finite, got {alpha!r}")
    return name, alpha


def loss(name, output_activation, n_out):
    if name not in ref.LOSSES:
        raise InputError(f"unknown loss {name!r}; valid: {', '.join(ref.LOSSES)}")
    if name == "categorical_crossentropy" and n_out < 2:
        raise InputError("categorical_crossentropy needs an output layer of at least 2 units "
                         "(one per class); use binary_crossentropy with 1 unit")
    if output_activation == "softmax" and name != "categorical_crossentropy":
        raise InputError(f"a softmax output goes with categorical_crossentropy, not {name!r}")
    return name


def positive_finite(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value <= 0:
        raise InputError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)


def convention(value):
    if value not in ref.CONVENTIONS:
        raise InputError(f"convention must be 'L' (the lectures) or 'J' (derivatives of the cost), "
                         f"got {value!r}")
    return value


def _as_float_array(a, name, dt):
    if isinstance(a, np.ndarray) and a.dtype == object or not isinstance(a, np.ndarray) and \
            np.asarray(a).dtype == object:
        raise InputError(f"{name} has dtype object; give a numeric array")
    a = np.asarray(a)
    if a.dtype.kind not in "fiub":
        raise InputError(f"{name} has dtype {a.dtype}; give a numeric (float or integer) array")
    return np.ascontiguousarray(a, dtype=dt)


def _finite(a, name):
    if not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a))[0]
        raise InputError(f"{name} contains NaN or inf (first at index {tuple(int(i) for i in bad)})")


def X(X, n_x, dt):
    """``X`` of shape ``(n[0], m)``, converted to ``dt``, C-contiguous, finite."""
    X = _as_float_array(X, "X", dt)
    if X.ndim == 1 and n_x == 1:
        X = X.reshape(1, -1)
    if X.ndim != 2:
        raise ShapeError(f"X must be 2-D with shape (n[0], m) = ({n_x}, m), got {X.ndim}-D {X.shape}")
    if X.shape[0] != n_x:
        hint = (f" — it looks like examples are rows: pass X.T (examples are columns)"
                if X.shape[1] == n_x else "")
        raise ShapeError(f"X has shape {X.shape} but layer 1 expects n[0] = {n_x} input features: "
                         f"expected ({n_x}, m){hint}")
    if X.shape[1] == 0:
        raise ShapeError(f"X has shape {X.shape}: m = 0 examples; give at least one column")
    _finite(X, "X")
    return X


def Y(Y, n_out, m, loss_name, dt):
    """``Y`` of shape ``(n[L], m)``; integer class labels are one-hot encoded for softmax."""
    Y = np.asarray(Y)
    if Y.dtype == object:
        raise InputError("Y has dtype object; give a numeric array")
    if loss_name == "categorical_crossentropy" and (Y.ndim == 1 or (Y.ndim == 2 and Y.shape[0] == 1)):
        labels = Y.reshape(-1)
        if labels.shape[0] != m:
            raise ShapeError(f"Y has {labels.shape[0]} labels but X has m = {m} examples")
        if labels.dtype.kind == "f" and np.any(labels != np.round(labels)) or \
                np.any(labels < 0) or np.any(labels >= n_out):
            raise InputError(f"class labels must be integers in [0, {n_out - 1}] "
                             f"(the output layer has {n_out} units)")
        onehot = np.zeros((n_out, m), dtype=dt)
        onehot[labels.astype(np.intp), np.arange(m)] = 1
        return onehot
    Y = _as_float_array(Y, "Y", dt)
    if Y.ndim == 1 and n_out == 1:
        Y = Y.reshape(1, -1)
    if Y.shape != (n_out, m):
        hint = " — it looks transposed: pass Y.T" if Y.shape == (m, n_out) else ""
        raise ShapeError(f"Y has shape {Y.shape} but the output layer has n[L] = {n_out} units and "
                         f"X has m = {m} examples: expected ({n_out}, {m}){hint}")
    _finite(Y, "Y")
    if loss_name == "binary_crossentropy" and np.any((Y != 0) & (Y != 1)):
        raise InputError("binary_crossentropy needs labels in {0, 1}; Y has other values "
                         f"(e.g. {Y[(Y != 0) & (Y != 1)][0]!r})")
    if loss_name == "categorical_crossentropy" and not np.allclose(Y.sum(axis=0), 1):
        raise InputError("categorical_crossentropy needs one-hot columns in Y (each column sums "
                         "to 1), or integer labels of shape (m,)")
    return Y


def parameters(params, dims, dt):
    """Check ``W1, b1, ..., WL, bL`` against ``dims``; returns C-contiguous copies in ``dt``."""
    L = len(dims) - 1
    if not isinstance(params, dict):
        raise InputError(f"parameters must be a dict with keys W1, b1, ..., W{L}, b{L}")
    expected_keys = {f"{p}{l}" for l in range(1, L + 1) for p in "Wb"}
    if set(params) != expected_keys:
        missing = sorted(expected_keys - set(params))
        extra = sorted(set(params) - expected_keys)
        raise InputError(f"parameters keys do not match a {L}-layer network: missing {missing}, "
                         f"unexpected {extra}")
    dtypes = {np.asarray(v).dtype for v in params.values()}
    if len(dtypes) > 1:
        raise InputError(f"parameters mix dtypes {sorted(str(d) for d in dtypes)}; "
                         f"use one dtype ({dt.name})")
    out = {}
    for l in range(1, L + 1):
        n, n_prev = dims[l], dims[l - 1]
        for key, shape, what in ((f"W{l}", (n, n_prev), f"(n[{l}], n[{l - 1}])"),
                                 (f"b{l}", (n, 1), f"(n[{l}], 1)")):
            a = _as_float_array(params[key], key, dt)
            if a.shape != shape:
                hint = " — is it transposed?" if a.shape == shape[::-1] else ""
                raise ShapeError(f"{key} has shape {a.shape} but layer {l} maps {n_prev} units to "
                                 f"{n}: expected {shape} = {what}{hint}")
            _finite(a, key)
            out[key] = a.copy()
    return out
