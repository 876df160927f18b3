"""Network: every backend agrees with the NumPy reference; training; prediction."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TOLERANCES, assert_close

import chainrule
from chainrule import Network, datasets
from chainrule import reference as ref
from chainrule.errors import InputError, NonFiniteError, ShapeError

CASES = [
    ([3, 4, 1], ["relu", "sigmoid"], None),
    ([3, 5, 4, 3], ["tanh", ("leaky_relu", 0.1), "softmax"], None),
    ([2, 3, 2], ["sigmoid", "identity"], "mean_squared_error"),
    ([1, 1, 1], ["relu", "sigmoid"], None),
    ([4, 2, 2, 2, 1], ["leaky_relu", "identity", "tanh", "sigmoid"], None),
]


def _labels(net, rng, m):
    n_out = net.layer_dims[-1]
    if net.loss == "binary_crossentropy":
        return (rng.random((n_out, m)) > 0.5).astype(float)
    if net.loss == "categorical_crossentropy":
        return np.eye(n_out)[:, rng.integers(0, n_out, m)]
    return rng.standard_normal((n_out, m))


@pytest.mark.parametrize("dims,acts,loss", CASES)
@pytest.mark.parametrize("m", [1, 7])
@pytest.mark.parametrize("convention", ["L", "J"])
def test_network_forward_backward_match_reference(backend, dtype, dims, acts, loss, m, convention):
    rng = np.random.default_rng(0)
    net = Network(dims, activations=acts, loss=loss, dtype=dtype, backend=backend, seed=1)
    X = rng.standard_normal((dims[0], m))
    Y = _labels(net, rng, m)
    AL, caches = net.forward(X)
    params64 = {k: v.astype(np.float64) for k, v in net.parameters.items()}
    expected_AL, expected_caches = ref.model_forward(X.astype(dtype), net.parameters, net.activations)
    assert_close(AL, expected_AL, dtype, "AL")
    grads = net.backward(AL, Y, caches, convention=convention)
    expected = ref.model_backward(expected_AL, Y.astype(dtype), expected_caches, net.activations,
                                  net.loss, convention)
    assert set(grads) == set(expected)
    for key in expected:
        assert_close(grads[key], expected[key], dtype, key)
    assert params64  # parameters untouched by forward/backward
    for k, v in net.parameters.items():
        assert v.dtype == dtype


def test_network_backward_conventions_identity(backend):
    rng = np.random.default_rng(3)
    net = Network([3, 4, 2, 1], hidden="tanh", backend=backend)
    m = 9
    X, Y = rng.standard_normal((3, m)), (rng.random((1, m)) > 0.5).astype(float)
    AL, caches = net.forward(X)
    gL, gJ = net.backward(AL, Y, caches, "L"), net.backward(AL, Y, caches, "J")
    for key in gL:
        factor = 1 if key[:2] in ("dW", "db") else m
        np.testing.assert_allclose(gL[key], factor * gJ[key], rtol=1e-12, atol=1e-14, err_msg=key)


def test_step_matches_reference_update(backend, dtype):
    rng = np.random.default_rng(1)
    net = Network([2, 3, 1], hidden="tanh", dtype=dtype, backend=backend)
    X, Y = rng.standard_normal((2, 10)), (rng.random((1, 10)) > 0.5).astype(float)
    before = {k: v.copy() for k, v in net.parameters.items()}
    AL, caches = ref.model_forward(X.astype(dtype), before, net.activations)
    grads = ref.model_backward(AL, Y.astype(dtype), caches, net.activations)
    expected = ref.update_parameters_with_gd(before, grads, 0.5)
    J = net.step(X, Y, 0.5)
    assert J == pytest.approx(ref.compute_cost(AL, Y.astype(dtype)), rel=TOLERANCES[dtype]["rtol"])
    for key in expected:
        assert_close(net.parameters[key], expected[key], dtype, key)


def test_fit_planar_reaches_course_accuracy(backend):
    X, Y = datasets.load_planar_dataset()
    net = Network([2, 4, 1], hidden="tanh", init="xavier", seed=2, backend=backend)
    net.fit(X, Y, epochs=5000, learning_rate=1.2, progress=False)
    assert net.score(X, Y) > 0.85
    costs = net.history_["cost"]
    assert costs[-1] < costs[0] and net.history_["epoch"][-1] == 5000
    assert len(costs) == 5000 // 100 + 1


def test_fit_history_and_cost_every():
    X, Y = datasets.make_moons(m=50)
    net = Network([2, 3, 1], hidden="tanh", backend="numpy")
    net.fit(X, Y, epochs=25, learning_rate=0.1, cost_every=10, progress=False)
    assert net.history_["epoch"] == [0, 10, 20, 25]
    AL, _ = net.forward(X)
    assert net.history_["cost"][-1] == pytest.approx(net.cost(AL, Y))


def test_fit_float32_stays_float32(backend):
    X, Y = datasets.make_circles(m=60)
    net = Network([2, 5, 1], hidden="relu", dtype="float32", backend=backend)
    net.fit(X, Y, epochs=20, learning_rate=0.1, progress=False)
    assert all(v.dtype == np.float32 for v in net.parameters.values())
    assert net.predict_proba(X).dtype == np.float32


def test_fit_stops_on_non_finite_and_keeps_parameters():
    X, Y = datasets.make_moons(m=40)
    net = Network([2, 3, 1], hidden="relu", output="identity", loss="mean_squared_error",
                  backend="numpy")
    with pytest.raises(NonFiniteError):
        net.fit(X * 1e150, Y, epochs=50, learning_rate=1e10, cost_every=5, progress=False)
    assert all(np.isfinite(v).all() for v in net.parameters.values())


def test_step_failure_leaves_parameters_unchanged():
    X = np.full((2, 4), 1e300)
    Y = np.ones((1, 4))
    net = Network([2, 2, 1], hidden="identity", output="identity", loss="mean_squared_error")
    before = {k: v.copy() for k, v in net.parameters.items()}
    with pytest.raises(NonFiniteError):
        net.step(X, Y, 1.0)
    for k in before:
        np.testing.assert_array_equal(net.parameters[k], before[k])


def test_predict_binary_and_softmax_and_regression():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 6))
    binary = Network([3, 2, 1])
    assert binary.predict(X).shape == (1, 6) and set(np.unique(binary.predict(X))) <= {0, 1}
    multi = Network([3, 4, 3], output="softmax")
    assert multi.loss == "categorical_crossentropy"
    pred = multi.predict(X)
    assert pred.shape == (6,) and pred.max() < 3
    np.testing.assert_allclose(multi.predict_proba(X).sum(axis=0), 1.0)
    reg = Network([3, 4, 2], output="identity")
    assert reg.loss == "mean_squared_error"
    np.testing.assert_array_equal(reg.predict(X), reg.predict_proba(X))


def test_softmax_accepts_integer_labels():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 5))
    labels = np.array([0, 2, 1, 1, 0])
    net = Network([3, 4, 3], output="softmax")
    AL, caches = net.forward(X)
    assert net.cost(AL, labels) == pytest.approx(net.cost(AL, np.eye(3)[:, labels]))


def test_network_parameters_setter_validates_and_copies():
    net = Network([3, 2, 1])
    params = {k: v.copy() for k, v in net.parameters.items()}
    params["W1"] = np.asfortranarray(params["W1"] + 1)
    net.parameters = params
    assert net.parameters["W1"].flags.c_contiguous
    params["W1"][0, 0] = 123.0
    assert net.parameters["W1"][0, 0] != 123.0
    bad = dict(params, W2=params["W2"].T)
    with pytest.raises(ShapeError, match=r"W2 has shape \(2, 1\).*expected \(1, 2\).*transposed"):
        net.parameters = bad


def test_errors_name_the_layer_and_shapes():
    net = Network([3, 4, 1])
    with pytest.raises(ShapeError, match=r"examples are rows: pass X.T"):
        net.forward(np.zeros((10, 3)))
    with pytest.raises(InputError, match="unknown activation 'relu6'.*sigmoid, relu"):
        Network([2, 2, 1], hidden="relu6")
    with pytest.raises(InputError, match="learning_rate must be a finite number > 0"):
        net.step(np.zeros((3, 2)), np.zeros((1, 2)), -1.0)
    with pytest.raises(InputError, match=r"labels in \{0, 1\}"):
        net.step(np.zeros((3, 2)), np.array([[0, 2]]), 0.1)
    with pytest.raises(InputError, match=r"layer_dims\[1\]"):
        Network([2, 0, 1])


def test_legacy_seed_reproduces_course_draws():
    net = Network([2, 4, 1], init="random", legacy_seed=2)
    np.random.seed(2)
    np.testing.assert_array_equal(net.parameters["W1"], np.random.randn(4, 2) * 0.01)
    np.testing.assert_array_equal(net.parameters["W2"], np.random.randn(1, 4) * 0.01)


def test_config_round_trip():
    net = Network([3, 4, 2], activations=[("leaky_relu", 0.2), "softmax"], dtype="float32", seed=5)
    again = Network.from_config(net.get_config())
    assert again.get_config() == net.get_config()
    for k, v in net.get_state().items():
        np.testing.assert_array_equal(again.get_state()[k], v)


def test_available_backends_and_version():
    assert "numpy" in chainrule.available_backends()
    assert chainrule.__version__


def test_repr_names_a_leaky_relu_with_its_alpha_and_rebuilds_the_network():
    net = Network([2, 3, 3, 1], activations=["relu", ("leaky_relu", 0.1), "sigmoid"])
    text = repr(net)
    assert "('leaky_relu', 0.1)" in text
    again = eval(text, {"Network": Network})
    assert again.activations == net.activations and again.layer_dims == net.layer_dims
