"""Fuzz the C backend's wrappers: shapes, dtypes and strides from hypothesis.

Every input either computes the NumPy reference's result or raises a clear error
(:class:`chainrule.errors.InputError` / :class:`~chainrule.errors.ShapeError`), never a
silent misread (``ffi.from_buffer`` would read float32 memory as double).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from chainrule.backends import numpy as nb  # noqa: E402
from conftest import hidden_activations  # noqa: E402
from chainrule.errors import InputError, ShapeError  # noqa: E402

pytestmark = pytest.mark.skipif(importlib.util.find_spec("chainrule._cdense") is None,
                                reason="chainrule._cdense was not built")

LAYOUTS = ["C", "F", "transposed", "strided", "readonly", "misaligned", "big-endian"]
DTYPES = ["float64", "float32"]
ODD_DTYPES = ["float16", "int32", "int64", "complex128"]
TOL = {"float64": dict(rtol=1e-9, atol=1e-11), "float32": dict(rtol=1e-3, atol=1e-4)}


def make(values, shape, dtype, layout):
    """``values`` (float64, C order, ``shape``) as an array of ``dtype`` laid out as asked."""
    x = values.astype(dtype)
    if layout == "F":
        return np.asfortranarray(x)
    if layout == "transposed":
        return np.ascontiguousarray(x.T).T
    if layout == "strided":
        wide = np.zeros((shape[0], 2 * shape[1]), dtype)
        wide[:, ::2] = x
        return wide[:, ::2]
    if layout == "readonly":
        x.flags.writeable = False
    if layout == "misaligned":  # one byte into a byte buffer: C-contiguous but not aligned
        raw = np.zeros(x.nbytes + 1, np.uint8)[1:]
        y = raw.view(x.dtype).reshape(shape)
        y[...] = x
        return y
    if layout == "big-endian":  # the same values, another dtype: must be refused, not misread
        return x.astype(x.dtype.newbyteorder(">"))
    return x


@st.composite
def layer_case(draw, with_backward):
    n, n_prev, m = (draw(st.integers(1, 6)) for _ in range(3))
    W_dtype = draw(st.sampled_from(DTYPES + ["int64"]))
    names = ["A_prev", "W", "b"] + (["dZ", "Z_prev", "mask"] if with_backward else [])
    shapes = {"A_prev": (n_prev, m), "W": (n, n_prev), "b": (n, 1), "dZ": (n, m),
              "Z_prev": (n_prev, m), "mask": (n_prev, m)}
    # mostly one dtype everywhere; sometimes one array of another dtype or shape
    odd = draw(st.sampled_from([None] * 4 + names))
    wrong_shape = draw(st.sampled_from([None] * 6 + names))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    arrays = {}
    for name in names:
        shape = shapes[name]
        if name == wrong_shape:
            shape = (shape[0] + 1, shape[1]) if draw(st.booleans()) else (shape[0], shape[1] + 1)
        dtype = W_dtype if name == "W" else (
            draw(st.sampled_from(DTYPES + ODD_DTYPES)) if name == odd else W_dtype)
        values = rng.standard_normal(shape)
        if name == "mask":
            values = (values > 0) * 2.0
        arrays[name] = make(values, shape, dtype, draw(st.sampled_from(LAYOUTS)))
    case = dict(arrays=arrays, activation=draw(st.sampled_from(
        hidden_activations() + ([] if with_backward else ["softmax"]))))
    if with_backward:
        case.update(convention=draw(st.sampled_from("LJ")),
                    lambd=draw(st.sampled_from([0.0, 0.5])),
                    use_mask=draw(st.booleans()), need=draw(st.booleans()),
                    first=draw(st.booleans()))
    return case


def valid(arrays):
    dtypes = {a.dtype for a in arrays.values()}
    if len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.float64):
        return False
    W, A_prev = arrays["W"], arrays["A_prev"]
    n, n_prev = W.shape
    m = A_prev.shape[1]
    want = {"A_prev": (n_prev, m), "W": (n, n_prev), "b": (n, 1), "dZ": (n, m),
            "Z_prev": (n_prev, m), "mask": (n_prev, m)}
    return all(a.shape == want[k] for k, a in arrays.items())


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(layer_case(with_backward=False))
def test_dense_forward_reference_or_clear_error(case):
    from chainrule.backends import c as cb
    a = case["arrays"]
    args = (a["A_prev"], a["W"], a["b"], case["activation"])
    if not valid(a):
        with pytest.raises((InputError, ShapeError)):
            cb.dense_forward(*args)
        return
    dtype = a["W"].dtype.name
    for actual, expected in zip(cb.dense_forward(*args), nb.dense_forward(*args)):
        assert actual.dtype == expected.dtype and actual.shape == expected.shape
        np.testing.assert_allclose(actual, expected, **TOL[dtype])


@SETTINGS
@given(layer_case(with_backward=True))
def test_dense_backward_reference_or_clear_error(case):
    from chainrule.backends import c as cb
    a = dict(case["arrays"])
    if case["first"]:
        a.pop("Z_prev")
    if not case["use_mask"] or (case["first"] and not case["need"]):
        a.pop("mask")
    a.pop("b")
    args = (a["dZ"], a["A_prev"], a["W"], a.get("Z_prev"),
            None if case["first"] else case["activation"], case["convention"], case["lambd"],
            a.get("mask"), case["need"])
    if not valid(a):
        with pytest.raises((InputError, ShapeError)):
            cb.dense_backward(*args)
        return
    dtype = a["W"].dtype.name
    for actual, expected in zip(cb.dense_backward(*args), nb.dense_backward(*args)):
        if expected is None:
            assert actual is None
            continue
        assert actual.dtype == expected.dtype and actual.shape == expected.shape
        np.testing.assert_allclose(actual, expected, **TOL[dtype])
