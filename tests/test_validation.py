"""Bad input at every public entry point: the error type and what its message says."""

from __future__ import annotations

import math

import numpy as np
import pytest

from chainrule import spec

from chainrule import ChainruleError, InputError, Network, NonFiniteError, ShapeError
from chainrule import reference as ref


@pytest.fixture
def net():
    return Network([3, 4, 1], hidden="tanh", backend="numpy", seed=0)


@pytest.fixture
def XY():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 5))
    return X, (X[:1] > 0).astype(float)


def test_errors_are_chainrule_and_value_errors():
    for cls in (ShapeError, InputError):
        assert issubclass(cls, ChainruleError) and issubclass(cls, ValueError)
    assert issubclass(NonFiniteError, ChainruleError)


# --------------------------------------------------------------------------- constructor

@pytest.mark.parametrize("kwargs, error, pattern", [
    (dict(layer_dims=[2, 0, 1]), InputError, r"layer_dims\[1\] = n\[1\] must be a positive integer, got 0"),
    (dict(layer_dims=[2, -3, 1]), InputError, r"n\[1\] must be a positive integer, got -3"),
    (dict(layer_dims=[2, 2.5, 1]), InputError, r"got 2.5"),
    (dict(layer_dims=[2, True]), InputError, r"got True"),
    (dict(layer_dims=[2]), InputError, "at least one layer"),
    (dict(layer_dims="2,4,1"), InputError, "list of layer sizes"),
    (dict(layer_dims=7), InputError, "list of layer sizes"),
    (dict(layer_dims=[2, 3, 1], hidden="rlu"), InputError,
     f"layer 1: unknown activation 'rlu'; valid: {spec.activation_help()}"),
    (dict(layer_dims=[2, 3, 1], output="Sigmoid"), InputError, "layer 2: unknown activation"),
    (dict(layer_dims=[2, 3, 1], activations=["relu"]), InputError,
     "activations has 1 entries but the network has L = 2 layers"),
    (dict(layer_dims=[2, 3, 1], activations=5), InputError, "one activation per layer"),
    (dict(layer_dims=[2, 3, 1], activations=[("leaky_relu", math.nan), "sigmoid"]), InputError,
     "alpha must be finite"),
    (dict(layer_dims=[2, 3, 1], activations=[("leaky_relu", "x"), "sigmoid"]), InputError,
     "alpha must be a number"),
    (dict(layer_dims=[2, 3, 3], activations=["softmax", "softmax"]), InputError,
     "softmax is only supported as the output"),
    (dict(layer_dims=[2, 3, 1], loss="hinge"), InputError,
     "unknown loss 'hinge'; valid: binary_crossentropy, categorical_crossentropy, "
     "mean_squared_error"),
    (dict(layer_dims=[2, 3, 1], output="tanh", loss="binary_crossentropy"), InputError,
     "use a sigmoid output, not 'tanh'"),
    (dict(layer_dims=[2, 3, 1], output="sigmoid", loss="categorical_crossentropy"), InputError,
     "at least 2 units"),
    (dict(layer_dims=[2, 3, 3], output="softmax", loss="mean_squared_error"), InputError,
     "softmax output goes with categorical_crossentropy"),
    (dict(layer_dims=[2, 3, 1], init="normal"), InputError,
     "unknown init 'normal'; valid: zeros, random, he, xavier, glorot_uniform"),
    (dict(layer_dims=[2, 3, 1], dtype="float16"), InputError, "'float32' or 'float64'"),
    (dict(layer_dims=[2, 3, 1], dtype="int64"), InputError, "'float32' or 'float64'"),
    (dict(layer_dims=[2, 3, 1], backend="gpu"), InputError,
     "unknown backend 'gpu'; valid: auto, numpy, numba, c"),
    (dict(layer_dims=[2, 3, 1], seed=-1), InputError, r"seed must be None or an integer"),
    (dict(layer_dims=[2, 3, 1], seed=1.5), InputError, r"seed must be None or an integer"),
    (dict(layer_dims=[2, 3, 1], legacy_seed="3"), InputError, r"legacy_seed must be"),
])
def test_constructor_rejects(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        Network(**kwargs)


def test_constructor_bad_environment_backend(monkeypatch):
    monkeypatch.setenv("CHAINRULE_BACKEND", "gpu")
    with pytest.raises(InputError, match="unknown backend 'gpu'"):
        Network([2, 3, 1])


# --------------------------------------------------------------------------- X

@pytest.mark.parametrize("method", ["forward", "predict", "predict_proba"])
def test_X_as_rows_suggests_transpose(net, XY, method):
    with pytest.raises(ShapeError, match=r"X has shape \(5, 3\) but layer 1 expects n\[0\] = 3 "
                                         r"input features: expected \(3, m\) — it looks like "
                                         r"examples are rows: pass X.T"):
        getattr(net, method)(XY[0].T)


@pytest.mark.parametrize("X, error, pattern", [
    (np.ones((2, 5)), ShapeError, r"X has shape \(2, 5\).*expected \(3, m\)$"),
    (np.ones(3), ShapeError, r"1-D shape \(3,\).*a single example\? pass X.reshape\(3, 1\)"),
    (np.ones((3, 5, 1)), ShapeError, "3-D"),
    (np.float64(1.0), ShapeError, "0-D"),
    (np.ones((3, 0)), ShapeError, "m = 0 examples"),
    (np.array([[1.0, np.nan]] * 3), InputError, r"X contains NaN or inf: X\[0, 1\] = nan"),
    (np.array([[1.0, -np.inf]] * 3), InputError, r"X\[0, 1\] = -inf"),
    (np.ones((3, 2), dtype=object), InputError, "dtype object.*expected a numeric"),
    (np.ones((3, 2), dtype=complex), InputError, "dtype complex128"),
    (np.array([["a", "b"]] * 3), InputError, "dtype <U1"),
    ([[1, 2], [3], [4, 5]], InputError, "cannot be read as an array"),
    (None, InputError, "dtype object"),
])
def test_forward_rejects_X(net, X, error, pattern):
    with pytest.raises(error, match=pattern):
        net.forward(X)


def test_X_overflowing_float32_names_the_cause():
    net = Network([2, 3, 1], dtype="float32", backend="numpy")
    with pytest.raises(InputError, match="overflows float32 on conversion from float64"):
        net.forward(np.array([[1.0, 1e39], [0.0, 0.0]]))


@pytest.mark.parametrize("dtype", ["int64", "int8", "uint16", "bool", "float32"])
def test_numeric_X_is_converted(net, XY, dtype):
    X = (XY[0] * 3).astype(dtype)
    AL, caches = net.forward(X)
    expected, _ = ref.model_forward(X.astype(np.float64), net.parameters, net.activations)
    np.testing.assert_allclose(AL, expected, rtol=1e-12)
    assert AL.dtype == np.float64 and caches[0][0][0].dtype == np.float64


def test_noncontiguous_and_readonly_X(net, XY):
    X = XY[0]
    expected = net.forward(X)[0]
    F = np.asfortranarray(X)
    R = X.copy()
    R.setflags(write=False)
    big = np.zeros((3, 11))
    big[:, ::2] = np.hstack([X, np.zeros((3, 1))])
    for given in (F, R, big[:, :-1:2], X.tolist()):
        np.testing.assert_array_equal(net.forward(given)[0], expected)
    assert not R.flags.writeable  # untouched


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_forward_overflow_raises_non_finite():
    net = Network([1, 1], activations=["identity"], backend="numpy")
    net.parameters = {"W1": np.array([[1e300]]), "b1": np.zeros((1, 1))}
    with pytest.raises(NonFiniteError, match=r"A\[1\] has NaN or inf \(overflow in layer 1"):
        net.forward(np.array([[1e300]]))


# --------------------------------------------------------------------------- Y

@pytest.mark.parametrize("Y, error, pattern", [
    (np.ones((5, 1)), ShapeError, r"Y has shape \(5, 1\) but the output layer has n\[L\] = 1 "
                                  r"units and there are m = 5 examples: expected \(1, 5\) — it "
                                  r"looks transposed: pass Y.T"),
    (np.ones((1, 4)), ShapeError, r"expected \(1, 5\)$"),
    (np.array([[0, 1, 2, 0, 1]]), InputError, r"labels outside \{0, 1\} \(e.g. 2.0\)"),
    (np.array([[0, 1, 0.5, 0, 1]]), InputError, r"labels outside \{0, 1\}"),
    (np.array([[0, 1, np.nan, 0, 1]]), InputError, r"Y\[0, 2\] = nan"),
    (np.array([["0", "1", "0", "1", "0"]]), InputError, "Y has dtype <U1"),
])
@pytest.mark.parametrize("method", ["step", "fit", "score"])
def test_Y_rejected(net, XY, Y, error, pattern, method):
    args = (XY[0], Y) + ((0.1,) if method == "step" else ())
    kwargs = {"progress": False, "epochs": 2} if method == "fit" else {}
    before = {k: v.copy() for k, v in net.parameters.items()}
    with pytest.raises(error, match=pattern):
        getattr(net, method)(*args, **kwargs)
    for k in before:
        np.testing.assert_array_equal(net.parameters[k], before[k])


def test_Y_bool_and_int_accepted(net, XY):
    X, Y = XY
    assert net.score(X, Y.astype(bool)) == net.score(X, Y.astype(np.int32)) == net.score(X, Y)


def test_softmax_labels():
    net = Network([2, 3, 3], output="softmax", backend="numpy")
    X = np.ones((2, 4))
    net.step(X, np.array([0, 2, 1, 1]), 0.1)
    with pytest.raises(InputError, match=r"class label 3 but the output layer has 3 units: "
                                         r"expected integers in \[0, 2\]"):
        net.step(X, np.array([0, 3, 1, 1]), 0.1)
    with pytest.raises(InputError, match="class label 0.5"):
        net.step(X, np.array([0, 0.5, 1, 1]), 0.1)
    with pytest.raises(ShapeError, match=r"3 class labels but there are m = 4 examples"):
        net.step(X, np.array([0, 1, 1]), 0.1)
    with pytest.raises(InputError, match="one-hot columns"):
        net.step(X, np.full((3, 4), 0.5), 0.1)


# --------------------------------------------------------------------------- learning rate, fit

@pytest.mark.parametrize("lr", [0, -0.1, math.nan, math.inf, True, "0.1", None, 1j])
def test_learning_rate_rejected(net, XY, lr):
    with pytest.raises(InputError, match=r"learning_rate must be a finite number > 0"):
        net.step(*XY, lr)
    with pytest.raises(InputError, match=r"learning_rate must be a finite number > 0"):
        net.fit(*XY, learning_rate=lr, epochs=1, progress=False)


@pytest.mark.parametrize("epochs", [-1, 1.5, True, "3"])
def test_epochs_rejected(net, XY, epochs):
    with pytest.raises(InputError, match="epochs must be an integer >= 0"):
        net.fit(*XY, epochs=epochs, progress=False)


# --------------------------------------------------------------------------- parameters

def test_parameters_transposed_W_dimension_analysis(net):
    p = dict(net.parameters)
    p["W2"] = p["W2"].T
    with pytest.raises(ShapeError, match=r"^W2 has shape \(4, 1\) but layer 2 maps 4 units to 1: "
                                         r"expected \(1, 4\) = \(n\[2\], n\[1\]\) — is it "
                                         r"transposed\?$"):
        net.parameters = p


@pytest.mark.parametrize("change, error, pattern", [
    (lambda p: p.pop("b2"), InputError, r"missing \['b2'\], unexpected \[\]"),
    (lambda p: p.update(W3=np.ones((1, 1))), InputError, r"unexpected \['W3'\]"),
    (lambda p: p.update(b1=np.zeros(4)), ShapeError,
     r"b1 has shape \(4,\) but layer 1 maps 3 units to 4: expected \(4, 1\) = \(n\[1\], 1\)"),
    (lambda p: p.update(W1=p["W1"].astype(np.float32)), InputError,
     r"parameters mix dtypes \['float32', 'float64'\]"),
    (lambda p: p["W1"].__setitem__((0, 0), np.nan), InputError, r"W1\[0, 0\] = nan"),
    (lambda p: p.update(b2=np.array([[np.inf]])), InputError, r"b2 contains NaN or inf"),
    (lambda p: p.update(W2=p["W2"].astype(object)), InputError, "parameters mix dtypes"),
])
def test_parameters_rejected_and_unchanged(net, change, error, pattern):
    before = {k: v.copy() for k, v in net.parameters.items()}
    p = {k: v.copy() for k, v in net.parameters.items()}
    change(p)
    with pytest.raises(error, match=pattern):
        net.parameters = p
    for k in before:
        np.testing.assert_array_equal(net.parameters[k], before[k])


def test_parameters_not_a_dict(net):
    with pytest.raises(InputError, match="must be a dict"):
        net.parameters = list(net.parameters.values())


def test_integer_parameters_converted(net):
    p = {k: np.ones(v.shape, dtype=np.int64) for k, v in net.parameters.items()}
    net.parameters = p
    assert all(v.dtype == np.float64 for v in net.parameters.values())


# --------------------------------------------------------------------------- backward, cost

def test_backward_caches_checked(net, XY):
    X, Y = XY
    AL, caches = net.forward(X)
    with pytest.raises(InputError, match="caches has 1 entries but this network has L = 2"):
        net.backward(AL, Y, caches[:1])
    with pytest.raises(InputError, match="caches must be the list"):
        net.backward(AL, Y, None)
    with pytest.raises(InputError, match=r"cache 2 is not \(\(A_prev, W, b\), Z\)"):
        net.backward(AL, Y, [caches[0], (1, 2, 3)])
    (A_prev, W, b), Z = caches[1]
    with pytest.raises(ShapeError, match=r"cache 2: Z2 has shape \(5, 1\).*is it transposed"):
        net.backward(AL, Y, [caches[0], ((A_prev, W, b), Z.T)])
    with pytest.raises(ShapeError, match=r"cache 2: W2 has shape \(4, 1\).*transposed"):
        net.backward(AL, Y, [caches[0], ((A_prev, W.T, b), Z)])
    with pytest.raises(InputError, match=r"cache 1: A\[0\] contains NaN"):
        bad = X.copy()
        bad[1, 1] = np.nan
        net.backward(AL, Y, [((bad,) + caches[0][0][1:], caches[0][1]), caches[1]])
    other = Network([3, 4, 1], backend="numpy").forward(X[:, :3])[1]
    with pytest.raises(ShapeError, match=r"AL has shape \(1, 5\).*m = 3 examples"):
        net.backward(AL, Y, other)
    with pytest.raises(InputError, match="convention must be 'L'"):
        net.backward(AL, Y, caches, convention="K")


def test_backward_AL_checked(net, XY):
    X, Y = XY
    AL, caches = net.forward(X)
    with pytest.raises(ShapeError, match=r"AL has shape \(5, 1\).*expected \(1, 5\) — it looks "
                                         r"transposed: pass AL.T"):
        net.backward(AL.T, Y, caches)
    with pytest.raises(InputError, match=r"AL has values outside \[0, 1\]"):
        net.backward(AL + 1, Y, caches)


def test_backward_uses_the_caches_W(net, XY):
    """The course's backward reads W from the caches; so does Network.backward."""
    X, Y = XY
    AL, caches = net.forward(X)
    net.step(X, Y, 0.5)  # the network's W change; the caches keep the old ones
    expected = ref.model_backward(AL, Y, caches, net.activations, net.loss)
    actual = net.backward(AL, Y, caches)
    for k in expected:
        np.testing.assert_allclose(actual[k], expected[k], rtol=1e-12, atol=1e-14)


def test_cost_checked(net, XY):
    X, Y = XY
    AL = net.forward(X)[0]
    assert net.cost(AL, Y) == pytest.approx(ref.compute_cost(AL, Y))
    assert net.cost(AL.ravel(), Y.ravel()) == pytest.approx(ref.compute_cost(AL, Y))
    with pytest.raises(ShapeError, match=r"AL has shape \(5, 1\).*pass AL.T"):
        net.cost(AL.T, Y)
    with pytest.raises(ShapeError, match=r"AL has 3-D shape|AL has shape \(1, 1, 5\)"):
        net.cost(AL[None], Y)
    with pytest.raises(InputError, match=r"outside \[0, 1\]"):
        net.cost(AL * 3, Y)
    with pytest.raises(ShapeError, match=r"Y has shape \(1, 4\).*expected \(1, 5\)"):
        net.cost(AL, Y[:, :4])
