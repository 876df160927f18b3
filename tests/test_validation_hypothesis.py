"""Generated odd and bad inputs across the public API (hypothesis, derandomized).

Every call either matches the NumPy reference on the same (converted) inputs or raises a
:class:`ChainruleError`; a valid input must not raise, and nothing else may escape. The
oracle below states the input policy independently of ``_validate``: numeric (bool, int,
float) arrays are converted to the network's dtype, must have the documented shape and be
finite; everything else is refused.

Each test counts what it tried; ``FUZZ_COUNTS`` (printed with ``-s``) totals them.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chainrule
from chainrule import ChainruleError, Network, NonFiniteError
from chainrule import reference as ref
from chainrule import spec
from chainrule.backends.registry import available_backends
from conftest import hidden_activations

TOL = {np.dtype(np.float64): (1e-10, 1e-12), np.dtype(np.float32): (1e-4, 1e-6)}
BACKENDS = available_backends()
FUZZ_COUNTS: Counter = Counter()

fuzz_settings = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                         suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.data_too_large])

HIDDEN = list(spec.HIDDEN_ACTIVATIONS) + [a for a in hidden_activations() if a[1] > 0]
OUTPUTS = ["sigmoid", "softmax", "identity", "tanh", "relu"]


# --------------------------------------------------------------------------- the oracle

def convert(value, dt):
    """The policy: a numeric array converted to ``dt``, or ``None`` where it is refused."""
    try:
        a = np.asarray(value)
    except (ValueError, TypeError):
        return None
    if a.dtype.kind not in "biuf":
        return None
    with np.errstate(over="ignore"):
        return a.astype(dt)


def finite(a):
    return a is not None and bool(np.isfinite(a).all())


def expect_X(value, n_x, dt):
    a = convert(value, dt)
    if a is None:
        return None
    if a.ndim == 1 and n_x == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2 or a.shape[0] != n_x or a.shape[1] == 0 or not finite(a):
        return None
    return a


def expect_AL(value, n_out, m, loss, dt):
    a = convert(value, dt)
    if a is None or not finite(a):
        return None
    if a.ndim == 1 and n_out == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2 or a.shape[0] != n_out or a.shape[1] == 0 or (m is not None and a.shape[1] != m):
        return None
    if loss != "mean_squared_error" and (a.min() < 0 or a.max() > 1):
        return None
    return a


def expect_Y(value, n_out, m, loss, dt):
    raw = convert(value, np.float64)
    if raw is None:
        return None
    if loss == "categorical_crossentropy" and (raw.ndim == 1 or raw.ndim == 2 and raw.shape[0] == 1):
        labels = raw.reshape(-1)
        if labels.shape[0] != m or not finite(labels) or np.any(labels != np.round(labels)) \
                or np.any(labels < 0) or np.any(labels >= n_out):
            return None
        Y = np.zeros((n_out, m), dt)
        Y[labels.astype(int), np.arange(m)] = 1
        return Y
    a = convert(value, dt)
    if a.ndim == 1 and n_out == 1:
        a = a.reshape(1, -1)
    if a.shape != (n_out, m) or not finite(a):
        return None
    if loss == "binary_crossentropy" and not np.isin(a, (0, 1)).all():
        return None
    if loss == "categorical_crossentropy" and (np.any(a < 0) or not np.allclose(a.sum(0), 1)):
        return None
    return a


def assert_close(actual, expected, what, scale=1.0):
    assert isinstance(actual, np.ndarray), what
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (what, actual.dtype, expected.dtype)
    rtol, atol = TOL[expected.dtype]
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * max(1.0, scale),
                               err_msg=what)


def forward_scale(X, params, L):
    """A bound on the size of every Z: rounding error in the products scales with it."""
    B = float(np.max(np.abs(X))) if X.size else 0.0
    for l in range(1, L + 1):
        W, b = params[f"W{l}"], params[f"b{l}"]
        B = float(np.abs(W).sum(axis=1).max()) * B + float(np.abs(b).max())
    return B


def call(fn, *args, **kwargs):
    """``("ok", result)`` or ``("error", exc)`` for a ChainruleError; anything else escapes."""
    try:
        return "ok", fn(*args, **kwargs)
    except ChainruleError as exc:
        assert str(exc), "an error must say what is wrong"
        return "error", exc


# --------------------------------------------------------------------------- strategies

@st.composite
def networks(draw, max_L=3, max_n=5):
    """A valid network with random (finite, moderate) parameters."""
    L = draw(st.integers(1, max_L))
    dims = [draw(st.integers(1, max_n)) for _ in range(L + 1)]
    output = draw(st.sampled_from(OUTPUTS if dims[-1] >= 2 else [o for o in OUTPUTS
                                                                   if o != "softmax"]))
    acts = [draw(st.sampled_from(HIDDEN)) for _ in range(L - 1)] + [output]
    dtype = draw(st.sampled_from(["float64", "float32"]))
    net = Network(dims, activations=acts, dtype=dtype, backend=draw(st.sampled_from(BACKENDS)),
                  init="xavier", seed=draw(st.integers(0, 2 ** 16)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    net.parameters = {k: rng.uniform(-1, 1, v.shape).astype(dtype)
                      for k, v in net.parameters.items()}
    return net


ARRAY_VARIANTS = ["same"] * 8 + ["T", "extra_row", "missing_row", "extra_col", "ravel", "3d",
                                 "scalar", "empty", "nan", "inf", "-inf", "overflow32", "object",
                                 "complex", "str", "ragged", "none"]
DTYPES = ["float64", "float32", "int64", "int32", "uint8", "bool"]
LAYOUTS = ["c", "c", "fortran", "strided", "readonly", "list", "reversed"]


@st.composite
def variants(draw, a, kinds=ARRAY_VARIANTS, dtypes=DTYPES):
    """``a`` (valid, float64) as given by a user: another dtype or layout, or made bad."""
    kind = draw(st.sampled_from(kinds))
    FUZZ_COUNTS[f"variant {kind}"] += 1
    rows, cols = a.shape
    if kind == "same":
        dt = draw(st.sampled_from(dtypes))
        if dt == "bool":
            b = a > 0.5
        elif dt.startswith(("int", "uint")):
            b = np.round(np.abs(a) if dt == "uint8" else a).astype(dt)
        else:
            b = a.astype(dt)
        layout = draw(st.sampled_from(LAYOUTS))
        if layout == "fortran":
            return np.asfortranarray(b)
        if layout == "strided":
            big = np.zeros((rows, 2 * cols + 1), b.dtype)
            big[:, 1::2] = b
            return big[:, 1::2]
        if layout == "readonly":
            b = b.copy()
            b.setflags(write=False)
            return b
        if layout == "list":
            return b.tolist()
        if layout == "reversed":
            return np.flip(np.flip(b).copy())
        return b
    if kind == "T":
        return a.T.copy()
    if kind == "extra_row":
        return np.vstack([a, a[:1]])
    if kind == "missing_row":
        return a[1:] if rows > 1 else np.vstack([a, a])
    if kind == "extra_col":
        return np.hstack([a, a[:, :1]])
    if kind == "ravel":
        return a.ravel()
    if kind == "3d":
        return a[None]
    if kind == "scalar":
        return a.flat[0]
    if kind == "empty":
        return a[:, :0]
    if kind in ("nan", "inf", "-inf", "overflow32"):
        b = a.copy()
        i, j = draw(st.integers(0, rows - 1)), draw(st.integers(0, cols - 1))
        b[i, j] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "overflow32": 1e39}[kind]
        return b
    if kind == "object":
        return a.astype(object)
    if kind == "complex":
        return a.astype(complex)
    if kind == "str":
        return a.astype(str)
    if kind == "ragged":
        lst = a.tolist()
        if len(lst) >= 2:
            lst[-1] = lst[-1] + [0.0]
            return lst
        return [lst[0], lst[0] + [0.0]]
    return None


def labels_for(net, m, rng):
    """Valid labels for ``net``'s loss, shape (n[L], m), float64."""
    n_out = net.layer_dims[-1]
    if net.loss == "binary_crossentropy":
        return (rng.random((n_out, m)) > 0.5).astype(float)
    if net.loss == "categorical_crossentropy":
        Y = np.zeros((n_out, m))
        Y[rng.integers(0, n_out, m), np.arange(m)] = 1
        return Y
    return rng.uniform(-1, 1, (n_out, m))


@st.composite
def label_variants(draw, net, Y):
    """Labels as a user might give them, including bad values for the loss."""
    kind = draw(st.sampled_from(["array"] * 4 + ["int_labels", "bad_value", "soft"]))
    if kind == "array" or net.loss == "mean_squared_error":
        return draw(variants(Y))
    if kind == "int_labels" and net.loss == "categorical_crossentropy":
        labels = np.argmax(Y, axis=0)
        return draw(st.sampled_from([labels, labels[None], labels.astype(float),
                                     labels + net.layer_dims[-1], labels - 1, labels + 0.5]))
    if kind == "soft" and net.loss == "categorical_crossentropy":
        return np.full_like(Y, 1 / Y.shape[0])
    b = Y.copy()
    b.flat[draw(st.integers(0, b.size - 1))] = draw(st.sampled_from([2.0, -1.0, 0.5]))
    return b


# --------------------------------------------------------------------------- forward / predict

def check_forward(data):
    net = data.draw(networks())
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    n_x, L, dt = net.layer_dims[0], net.L, net.dtype
    X = rng.uniform(-3, 3, (n_x, data.draw(st.integers(1, 6))))
    given_X = data.draw(variants(X))
    method = data.draw(st.sampled_from(["forward", "predict_proba", "predict"]))
    outcome, result = call(getattr(net, method), given_X)
    Xc = expect_X(given_X, n_x, dt)
    if Xc is None:
        assert outcome == "error", f"{method} accepted an invalid X: {given_X!r}"
        FUZZ_COUNTS["forward: refused"] += 1
        return
    expected, _ = ref.model_forward(Xc, net.parameters, net.activations)
    if not np.isfinite(expected).all():
        assert outcome == "error" and isinstance(result, NonFiniteError)
        FUZZ_COUNTS["forward: overflow reported"] += 1
        return
    assert outcome == "ok", f"{method} refused a valid X: {result}"
    AL = result[0] if method == "forward" else result
    if method == "predict":
        out = net.activations[-1][0]
        if out == "sigmoid":  # compare where the reference is not within rounding of 0.5
            clear = np.abs(expected - 0.5) > 1e-3
            np.testing.assert_array_equal(AL[clear], (expected > 0.5)[clear])
        elif out == "softmax":
            top2 = np.sort(expected, axis=0)[-2:]
            clear = top2[1] - top2[0] > 1e-3
            np.testing.assert_array_equal(AL[clear], np.argmax(expected, 0)[clear])
        else:
            assert_close(AL, expected, "predict", forward_scale(Xc, net.parameters, L))
    else:
        assert_close(AL, expected, method, forward_scale(Xc, net.parameters, L))
    if method == "forward":
        for l, ((A_prev, W, b), Z) in enumerate(result[1], 1):
            assert Z.shape == (net.layer_dims[l], Xc.shape[1]) and W is net.parameters[f"W{l}"]
    FUZZ_COUNTS["forward: matched reference"] += 1


def test_forward_fuzz_matches_reference_or_raises():
    n = Counter()

    @settings(fuzz_settings, max_examples=300)
    @given(st.data())
    def run(data):
        n["tried"] += 1
        check_forward(data)

    run()
    FUZZ_COUNTS["tried forward/predict"] += n["tried"]
    assert n["tried"] >= 300


# --------------------------------------------------------------------------- backward / cost

def check_backward(data):
    net = data.draw(networks())
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    n_out, dt, L = net.layer_dims[-1], net.dtype, net.L
    m = data.draw(st.integers(1, 5))
    AL, caches = net.forward(rng.uniform(-2, 2, (net.layer_dims[0], m)))
    Y = labels_for(net, m, rng)
    given_AL, given_Y, given_caches = AL, Y, caches
    convention = data.draw(st.sampled_from(["L", "J", "L", "J", "X", None, "l"]))
    target = data.draw(st.sampled_from(["none", "AL", "Y", "caches"]))
    if target == "AL":
        given_AL = data.draw(variants(AL.astype(float)))
    elif target == "Y":
        given_Y = data.draw(label_variants(net, Y))
    elif target == "caches":
        how = data.draw(st.sampled_from(["drop", "extra", "swap", "Z", "A", "W", "b", "tuple",
                                         "not_a_list", "other_m"]))
        given_caches = list(caches)
        l = data.draw(st.integers(0, L - 1))
        (A_prev, W, b), Z = caches[l]
        if how == "drop":
            given_caches.pop(l)
        elif how == "extra":
            given_caches.append(caches[l])
        elif how == "swap" and L > 1:
            given_caches.reverse()
        elif how in "ZAWb":
            arr = {"Z": Z, "A": A_prev, "W": W, "b": b}[how].astype(float)
            new = data.draw(variants(arr))
            parts = {"Z": Z, "A": A_prev, "W": W, "b": b, how: new}
            given_caches[l] = ((parts["A"], parts["W"], parts["b"]), parts["Z"])
        elif how == "tuple":
            given_caches[l] = (A_prev, W, b, Z)
        elif how == "not_a_list":
            given_caches = data.draw(st.sampled_from([None, 3, "caches", {1: caches}]))
        elif how == "other_m":
            given_caches = net.forward(rng.uniform(-2, 2, (net.layer_dims[0], m + 1)))[1]
    outcome, result = call(net.backward, given_AL, given_Y, given_caches, convention)

    # The oracle: validity of every piece, then the reference on the converted pieces.
    valid = convention in ("L", "J") and isinstance(given_caches, (list, tuple)) \
        and len(given_caches) == L
    caches_c = []
    cm = None
    for l in range(1, L + 1):
        if not valid:
            break
        c = given_caches[l - 1]
        if not (isinstance(c, tuple) and len(c) == 2 and isinstance(c[0], tuple)
                and len(c[0]) == 3):
            valid = False
            break
        (A_prev, W, b), Z = c
        n, n_prev = net.layer_dims[l], net.layer_dims[l - 1]
        A_prev, W, b, Z = (convert(x, dt) for x in (A_prev, W, b, Z))
        if not all(finite(x) for x in (A_prev, W, b, Z)) or A_prev.ndim != 2:
            valid = False
            break
        cm = A_prev.shape[1] if cm is None else cm
        if A_prev.shape != (n_prev, cm) or W.shape != (n, n_prev) or b.shape != (n, 1) \
                or Z.shape != (n, cm) or cm == 0:
            valid = False
            break
        caches_c.append(((A_prev, W, b), Z))
    ALc = expect_AL(given_AL, n_out, cm, net.loss, dt) if valid else None
    Yc = expect_Y(given_Y, n_out, cm, net.loss, dt) if valid else None
    if not valid or ALc is None or Yc is None:
        assert outcome == "error", f"backward accepted invalid input ({target})"
        FUZZ_COUNTS["backward: refused"] += 1
        return
    assert outcome == "ok", f"backward refused valid input ({target}): {result}"
    expected = ref.model_backward(ALc, Yc, caches_c, net.activations, net.loss, convention)
    assert sorted(result) == sorted(expected)
    scale = max(1.0, cm * forward_scale(caches_c[0][0][0], net.parameters, L)) ** 2
    for key in expected:
        assert_close(result[key], expected[key], key, scale)
    FUZZ_COUNTS["backward: matched reference"] += 1


def test_backward_fuzz_matches_reference_or_raises():
    n = Counter()

    @settings(fuzz_settings, max_examples=300)
    @given(st.data())
    def run(data):
        n["tried"] += 1
        check_backward(data)

    run()
    FUZZ_COUNTS["tried backward"] += n["tried"]
    assert n["tried"] >= 300


def check_cost(data):
    net = data.draw(networks(max_L=2))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    m = data.draw(st.integers(1, 5))
    AL, _ = net.forward(rng.uniform(-2, 2, (net.layer_dims[0], m)))
    Y = labels_for(net, m, rng)
    given_AL = data.draw(variants(AL.astype(float))) if data.draw(st.booleans()) else AL
    if net.loss != "mean_squared_error" and data.draw(st.booleans()):
        given_AL = AL * 2 - 0.5  # not probabilities
    given_Y = data.draw(label_variants(net, Y))
    outcome, result = call(net.cost, given_AL, given_Y)
    ALc = expect_AL(given_AL, net.layer_dims[-1], None, net.loss, net.dtype)
    Yc = None if ALc is None else expect_Y(given_Y, net.layer_dims[-1], ALc.shape[1], net.loss,
                                           net.dtype)
    if ALc is None or Yc is None:
        assert outcome == "error", "cost accepted invalid input"
        FUZZ_COUNTS["cost: refused"] += 1
        return
    assert outcome == "ok", f"cost refused valid input: {result}"
    expected = ref.compute_cost(ALc, Yc, net.loss)
    rtol, atol = TOL[net.dtype]
    assert isinstance(result, float) and math.isclose(result, expected, rel_tol=rtol,
                                                      abs_tol=atol)
    FUZZ_COUNTS["cost: matched reference"] += 1


def test_cost_fuzz_matches_reference_or_raises():
    n = Counter()

    @settings(fuzz_settings, max_examples=150)
    @given(st.data())
    def run(data):
        n["tried"] += 1
        check_cost(data)

    run()
    FUZZ_COUNTS["tried cost"] += n["tried"]
    assert n["tried"] >= 150


# --------------------------------------------------------------------------- constructor

DIM_ITEMS = st.one_of(st.integers(-2, 5), st.sampled_from([2.0, True, "3", None, np.int64(3),
                                                           np.int32(0), np.uint8(2)]))
ACT_ITEMS = st.sampled_from(["relu", "tanh", "sigmoid", "identity", "leaky_relu", "softmax",
                             ("leaky_relu", 0.2), ("leaky_relu", math.nan), ("leaky_relu", "x"),
                             ("relu",), ["tanh", 0], "rlu", "ReLU", "", 3, None])


def expect_activation(spec, is_output):
    if isinstance(spec, str):
        name, alpha = spec, 0.0
    elif isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[0], str):
        name = spec[0]
        try:
            alpha = float(spec[1])
        except (TypeError, ValueError):
            return None
    else:
        return None
    if name not in ref.ACTIVATIONS or not math.isfinite(alpha) or \
            name == "softmax" and not is_output:
        return None
    return name


def check_constructor(data):
    def mostly_(good, odd):  # mostly a valid value, so that valid configurations occur too
        return mostly(data, good, odd)

    good_dims = st.lists(st.integers(1, 5), min_size=2, max_size=4)
    dims = mostly_(good_dims, st.one_of(
        st.lists(DIM_ITEMS, max_size=4),
        st.sampled_from(["2,3,1", 5, None, (3, 2), np.array([2, 3])])))
    acts = mostly_(st.none(), st.one_of(st.lists(ACT_ITEMS, min_size=1, max_size=4), ACT_ITEMS))
    if acts is None and isinstance(dims, list) and len(dims) >= 2 and data.draw(st.booleans()):
        acts = [data.draw(st.sampled_from(HIDDEN)) for _ in dims[2:]] + [
            data.draw(st.sampled_from(OUTPUTS))]
    loss = mostly_(st.none(), st.sampled_from([*ref.LOSSES, "mse", "", 0]))
    init = mostly_(st.sampled_from(ref.INITIALIZERS), st.sampled_from(["normal", None, 1]))
    dtype = mostly_(st.sampled_from(["float64", "float32", np.float32, "f8"]),
                   st.sampled_from([None, "float16", "int32", "x"]))
    backend = mostly_(st.sampled_from([*BACKENDS, "auto"]), st.sampled_from([None, "gpu", 1,
                                                                            " NumPy "]))
    seed = mostly_(st.sampled_from([0, 1, 2 ** 32 - 1, np.int64(5)]),
                  st.sampled_from([-1, 2 ** 32, 1.5, None, "1", True]))
    outcome, net = call(Network, dims, activations=acts, loss=loss, init=init, dtype=dtype,
                        backend=backend, seed=seed)

    # The oracle.
    valid = not isinstance(dims, (str, type(None), int))
    dims_list = list(dims) if valid else []
    valid = valid and len(dims_list) >= 2 and all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in dims_list)
    L = len(dims_list) - 1
    names = []
    if valid:
        specs = acts
        if specs is None:
            specs = ["relu"] * (L - 1) + ["sigmoid"]
        elif isinstance(specs, (str, tuple)) and L == 1:
            specs = [specs]
        elif not isinstance(specs, list):
            valid = False
        valid = valid and len(specs) == L
        names = [expect_activation(s, l == L) for l, s in enumerate(specs, 1)] if valid else []
        valid = valid and None not in names
    if valid:
        out = names[-1]
        lo = loss if loss is not None else {"sigmoid": "binary_crossentropy",
                                            "softmax": "categorical_crossentropy"}.get(
            out, "mean_squared_error")
        valid = (isinstance(lo, str) and lo in ref.LOSSES
                 and not (lo == "categorical_crossentropy" and dims_list[-1] < 2)
                 and not (out == "softmax" and lo != "categorical_crossentropy")
                 and not (lo == "binary_crossentropy" and out != "sigmoid")
                 and not (lo == "categorical_crossentropy" and out not in ("softmax", "sigmoid")))
    valid = valid and isinstance(init, str) and init in ref.INITIALIZERS
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    valid = valid and dt in (np.float32, np.float64)
    valid = valid and (backend is None or isinstance(backend, str)
                       and backend.strip().lower() in ("auto", *BACKENDS))
    valid = valid and (seed is None or isinstance(seed, (int, np.integer))
                       and not isinstance(seed, bool) and 0 <= seed < 2 ** 32)
    if not valid:
        assert outcome == "error", "Network accepted an invalid configuration"
        FUZZ_COUNTS["constructor: refused"] += 1
        return
    assert outcome == "ok", f"Network refused a valid configuration: {net}"
    assert net.layer_dims == [int(n) for n in dims_list]
    assert [a[0] for a in net.activations] == names
    expected = ref.initialize_parameters(net.layer_dims, init,
                                         rng=np.random.default_rng(seed), dtype=dt)
    for key, value in expected.items():
        assert net.parameters[key].dtype == dt and net.parameters[key].shape == value.shape
        if seed is not None:
            np.testing.assert_array_equal(net.parameters[key], value)
    FUZZ_COUNTS["constructor: matched reference"] += 1


def test_constructor_fuzz_valid_or_raises():
    n = Counter()

    @settings(fuzz_settings, max_examples=250)
    @given(st.data())
    def run(data):
        n["tried"] += 1
        check_constructor(data)

    run()
    FUZZ_COUNTS["tried constructor"] += n["tried"]
    assert n["tried"] >= 250


# --------------------------------------------------------------------------- parameters setter

def check_parameters(data):
    net = data.draw(networks())
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    before = {k: v.copy() for k, v in net.parameters.items()}
    new = {k: rng.uniform(-1, 1, v.shape) for k, v in before.items()}
    how = data.draw(st.sampled_from(["one", "one", "all_dtype", "drop", "extra", "mixed",
                                     "not_a_dict"]))
    given_params = dict(new)
    if how == "one":
        key = data.draw(st.sampled_from(sorted(new)))
        given_params[key] = data.draw(variants(new[key], dtypes=["float64"]))
    elif how == "all_dtype":
        dt = data.draw(st.sampled_from(DTYPES))
        given_params = {k: (v > 0 if dt == "bool" else np.round(v).astype(dt)
                            if dt.startswith(("int", "uint")) else v.astype(dt))
                        for k, v in new.items()}
    elif how == "drop":
        given_params.pop(data.draw(st.sampled_from(sorted(new))))
    elif how == "extra":
        given_params["W99"] = np.zeros((1, 1))
    elif how == "mixed":
        key = data.draw(st.sampled_from(sorted(new)))
        given_params[key] = new[key].astype(np.float32)
    else:
        given_params = list(new.values())

    outcome, _ = call(setattr, net, "parameters", given_params)
    expected = None
    if isinstance(given_params, dict) and set(given_params) == set(new):
        conv = {k: convert(v, net.dtype) for k, v in given_params.items()}
        raw_dtypes = {np.asarray(v).dtype if convert(v, net.dtype) is not None else None
                      for v in given_params.values()}
        if all(v is not None for v in conv.values()) and len(raw_dtypes) == 1 and all(
                conv[k].shape == new[k].shape and finite(conv[k]) for k in new):
            expected = conv
    if expected is None:
        assert outcome == "error", f"parameters accepted invalid input ({how})"
        for k in before:  # unchanged on error
            np.testing.assert_array_equal(net.parameters[k], before[k])
        FUZZ_COUNTS["parameters: refused"] += 1
        return
    assert outcome == "ok", f"parameters refused valid input ({how})"
    for k, v in expected.items():
        assert_close(net.parameters[k], v, k)
        assert net.parameters[k].flags.c_contiguous and net.parameters[k].flags.writeable
    X = rng.uniform(-1, 1, (net.layer_dims[0], 3))
    AL_expected, _ = ref.model_forward(X.astype(net.dtype), expected, net.activations)
    assert_close(net.forward(X)[0], AL_expected, "forward after set",
                 forward_scale(X, expected, net.L))
    FUZZ_COUNTS["parameters: matched reference"] += 1


def test_parameters_fuzz_valid_or_raises():
    n = Counter()

    @settings(fuzz_settings, max_examples=200)
    @given(st.data())
    def run(data):
        n["tried"] += 1
        check_parameters(data)

    run()
    FUZZ_COUNTS["tried parameters"] += n["tried"]
    assert n["tried"] >= 200


# --------------------------------------------------------------------------- step / fit / score

GOOD_LEARNING_RATES = st.one_of(st.floats(1e-3, 1.0), st.sampled_from(
    [1, np.float32(0.1), np.float64(0.5)]))
BAD_LEARNING_RATES = st.sampled_from([0, 0.0, -0.1, math.nan, math.inf, -math.inf, True, "0.1",
                                      None, 1j, [0.1], np.array(0.1)])


def mostly(data, good, odd):
    """Draw from ``good`` four times in five, else from ``odd`` (hypothesis' own choice
    between strategies leans towards the later ones)."""
    return data.draw(odd if data.draw(st.integers(0, 4)) == 4 else good)


def expect_lr(lr):
    return (isinstance(lr, (int, float, np.floating, np.integer)) and not isinstance(lr, bool)
            and math.isfinite(lr) and lr > 0)


def check_training(data):
    net = data.draw(networks(max_L=2, max_n=4))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 16)))
    m = data.draw(st.integers(1, 5))
    X = rng.uniform(-1, 1, (net.layer_dims[0], m))
    Y = labels_for(net, m, rng)
    lr = mostly(data, GOOD_LEARNING_RATES, BAD_LEARNING_RATES)
    given_X = mostly(data, st.just(X), variants(X))
    given_Y = mostly(data, st.just(Y), label_variants(net, Y))
    method = data.draw(st.sampled_from(["step", "fit", "score"]))
    epochs = mostly(data, st.sampled_from([1, 2, 3, 0]), st.sampled_from([-1, 1.5, True, None]))
    before = {k: v.copy() for k, v in net.parameters.items()}
    if method == "step":
        outcome, result = call(net.step, given_X, given_Y, lr)
    elif method == "fit":
        outcome, result = call(net.fit, given_X, given_Y, epochs=epochs, learning_rate=lr,
                               progress=False)
    else:
        outcome, result = call(net.score, given_X, given_Y)

    dt = net.dtype
    Xc = expect_X(given_X, net.layer_dims[0], dt)
    Yc = None if Xc is None else expect_Y(given_Y, net.layer_dims[-1], Xc.shape[1], net.loss, dt)
    valid = Xc is not None and Yc is not None
    if method != "score":
        valid = valid and expect_lr(lr)
    if method == "fit":
        valid = valid and isinstance(epochs, int) and not isinstance(epochs, bool) and epochs >= 0
    if not valid:
        assert outcome == "error", f"{method} accepted invalid input"
        for k in before:
            np.testing.assert_array_equal(net.parameters[k], before[k])
        FUZZ_COUNTS[f"{method}: refused"] += 1
        return
    assert outcome == "ok", f"{method} refused valid input: {result}"
    params = {k: v.astype(dt) for k, v in before.items()}
    if method == "score":
        AL, _ = ref.model_forward(Xc, params, net.activations)
        out = net.activations[-1][0]
        compared = True
        if out == "sigmoid" and net.layer_dims[-1] == 1:
            compared = bool((np.abs(AL - 0.5) > 1e-3).all())  # no prediction within rounding
            if compared:
                assert result == pytest.approx(np.mean((AL > 0.5) == Yc))
        elif out == "softmax":
            top2 = np.sort(AL, axis=0)[-2:]
            compared = bool((top2[1] - top2[0] > 1e-3).all())
            if compared:
                assert result == pytest.approx(np.mean(np.argmax(AL, 0) == np.argmax(Yc, 0)))
        elif out != "sigmoid":
            total = np.sum((Yc - Yc.mean(axis=1, keepdims=True)) ** 2)
            r2 = 1 - np.sum((Yc - AL) ** 2) / total if total else 0.0
            assert result == pytest.approx(r2, rel=1e-3, abs=1e-4)
        else:
            compared = False
        FUZZ_COUNTS["score: matched reference" if compared else "score: accepted, a tie"] += 1
        return
    steps = 1 if method == "step" else epochs
    J = None
    for _ in range(steps):
        AL, caches = ref.model_forward(Xc, params, net.activations)
        J = ref.compute_cost(AL, Yc, net.loss) if J is None else J
        grads = ref.model_backward(AL, Yc, caches, net.activations, net.loss)
        params = ref.update_parameters_with_gd(params, grads, float(lr))
    for k in params:
        assert_close(net.parameters[k], params[k], f"{method} {k}", 10.0 * steps)
    if method == "step":
        rtol, atol = TOL[dt]
        assert math.isclose(result, J, rel_tol=rtol, abs_tol=atol)
    FUZZ_COUNTS[f"{method}: matched reference"] += 1


def test_training_fuzz_matches_reference_or_raises():
    n = Counter()

    @settings(fuzz_settings, max_examples=250)
    @given(st.data())
    def run(data):
        n["tried"] += 1
        check_training(data)

    run()
    FUZZ_COUNTS["tried step/fit/score"] += n["tried"]
    assert n["tried"] >= 250


def test_fuzz_total_is_at_least_1000():
    """Runs last in this file: the inputs the tests above completed (when they all ran).
    ("tried" also counts examples hypothesis abandoned while drawing them.)"""
    outcomes = {k: v for k, v in FUZZ_COUNTS.items() if ": " in k and not k.startswith("variant")}
    done = sum(outcomes.values())
    refused = sum(v for k, v in outcomes.items() if k.endswith("refused"))
    print("\nfuzz counts:", dict(sorted(FUZZ_COUNTS.items())))
    matched = sum(v for k, v in outcomes.items() if k.endswith("matched reference"))
    print(f"fuzz: {done} inputs completed: {matched} matched the reference, {refused} refused "
          f"with a ChainruleError, {done - matched - refused} accepted where the reference has a "
          f"tie (not compared); 0 other outcomes")
    if len([k for k in FUZZ_COUNTS if k.startswith("tried")]) < 6:
        pytest.skip("run with all the fuzz tests to count")
    assert done >= 1000
