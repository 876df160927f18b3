"""The NumPy reference against finite differences, hand-checked values and its own identities."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import reference as ref
from chainrule import spec

from conftest import hidden_activations

# every hidden activation of the table by name (default alpha), and each with an alpha set
HIDDEN = list(spec.HIDDEN_ACTIVATIONS) + [a for a in hidden_activations() if a[1]]
OUTPUT_LOSS = [("sigmoid", "binary_crossentropy"), ("softmax", "categorical_crossentropy"),
               ("identity", "mean_squared_error"), ("sigmoid", "mean_squared_error"),
               ("tanh", "mean_squared_error")]


def _problem(rng, dims, hidden, output, loss, m=5, dtype=np.float64):
    L = len(dims) - 1
    params = ref.initialize_parameters(dims, "xavier", rng=rng, dtype=dtype)
    for l in range(1, L + 1):  # non-zero biases, so db is exercised
        params[f"b{l}"] = rng.standard_normal((dims[l], 1)).astype(dtype) * 0.1
    X = rng.standard_normal((dims[0], m)).astype(dtype)
    if loss == "binary_crossentropy":
        Y = (rng.random((dims[-1], m)) > 0.5).astype(dtype)
    elif loss == "categorical_crossentropy":
        Y = np.eye(dims[-1], dtype=dtype)[:, rng.integers(0, dims[-1], m)]
    else:
        Y = rng.random((dims[-1], m)).astype(dtype)
    activations = [hidden] * (L - 1) + [output]
    return params, X, Y, activations


def _relative(g, ga):
    return np.linalg.norm(g - ga) / (np.linalg.norm(g) + np.linalg.norm(ga))


def test_linear_forward_hand_checked():
    A_prev = np.array([[1.0, 2.0], [3.0, 4.0]])
    W = np.array([[1.0, -1.0]])
    b = np.array([[0.5]])
    Z, cache = ref.linear_forward(A_prev, W, b)
    np.testing.assert_array_equal(Z, [[-1.5, -1.5]])
    assert cache[0] is A_prev and cache[1] is W and cache[2] is b


def test_linear_backward_hand_checked():
    # dZ (1, 2), A_prev (2, 2), W (1, 2): every entry by hand.
    dZ = np.array([[1.0, 3.0]])
    A_prev = np.array([[1.0, 2.0], [3.0, 4.0]])
    W = np.array([[2.0, -1.0]])
    dA_prev, dW, db = ref.linear_backward(dZ, (A_prev, W, np.zeros((1, 1))), "L")
    np.testing.assert_array_equal(dW, [[(1 * 1 + 3 * 2) / 2, (1 * 3 + 3 * 4) / 2]])
    np.testing.assert_array_equal(db, [[2.0]])
    np.testing.assert_array_equal(dA_prev, [[2.0, 6.0], [-1.0, -3.0]])
    dA_prev_J, dW_J, db_J = ref.linear_backward(dZ / 2, (A_prev, W, np.zeros((1, 1))), "J")
    np.testing.assert_array_equal(dW_J, dW)
    np.testing.assert_array_equal(db_J, db)
    np.testing.assert_array_equal(dA_prev_J * 2, dA_prev)


def test_linear_backward_skips_dA_prev_on_request():
    rng = np.random.default_rng(1)
    dA_prev, dW, db = ref.linear_backward(rng.random((3, 4)), (rng.random((2, 4)), rng.random((3, 2)),
                                                              None), compute_dA_prev=False)
    assert dA_prev is None and dW.shape == (3, 2) and db.shape == (3, 1)


@pytest.mark.parametrize("hidden", HIDDEN, ids=str)
@pytest.mark.parametrize("output,loss", OUTPUT_LOSS)
def test_model_backward_matches_finite_differences(hidden, output, loss):
    rng = np.random.default_rng(0)
    dims = [3, 4, 3, 3 if output == "softmax" else 2]
    params, X, Y, acts = _problem(rng, dims, hidden, output, loss)
    if hidden in ("relu", "leaky_relu", ("leaky_relu", 0.2)):
        # Keep pre-activations away from the kink, where central differences are not the derivative.
        for l in range(1, len(dims)):
            params[f"b{l}"] += 0.3 * np.sign(params[f"b{l}"])
    difference, report = ref.gradient_check(params, X, Y, acts, loss)
    assert difference < 1e-7, report
    assert set(report) == set(params)


@pytest.mark.parametrize("lambd", [0.0, 0.7])
def test_gradient_check_with_l2(lambd):
    rng = np.random.default_rng(3)
    params, X, Y, acts = _problem(rng, [2, 3, 1], "tanh", "sigmoid", "binary_crossentropy")
    difference, _ = ref.gradient_check(params, X, Y, acts, "binary_crossentropy", lambd=lambd)
    assert difference < 1e-7


def test_gradient_check_detects_a_wrong_gradient(monkeypatch):
    rng = np.random.default_rng(4)
    params, X, Y, acts = _problem(rng, [2, 3, 1], "tanh", "sigmoid", "binary_crossentropy")
    original = ref.linear_backward

    def missing_one_over_m(dZ, cache, convention="L", lambd=0.0, compute_dA_prev=True):
        dA_prev, dW, db = original(dZ, cache, convention, lambd, compute_dA_prev)
        return dA_prev, dW * cache[0].shape[1], db

    monkeypatch.setattr(ref, "linear_backward", missing_one_over_m)
    difference, report = ref.gradient_check(params, X, Y, acts, "binary_crossentropy")
    assert difference > 1e-2
    assert report["W1"]["difference"] > 1e-2 and report["b1"]["difference"] < 1e-7


@pytest.mark.parametrize("output,loss", OUTPUT_LOSS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conventions_L_and_J(output, loss, dtype):
    rng = np.random.default_rng(1)
    m = 7
    params, X, Y, acts = _problem(rng, [4, 5, 3], "relu", output, loss, m=m, dtype=dtype)
    AL, caches = ref.model_forward(X, params, acts)
    gL = ref.model_backward(AL, Y, caches, acts, loss, convention="L")
    gJ = ref.model_backward(AL, Y, caches, acts, loss, convention="J")
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for key in gL:
        assert gL[key].dtype == dtype, key
        if key[:2] in ("dW", "db"):  # identical gradients of J
            np.testing.assert_allclose(gJ[key], gL[key], rtol=rtol, atol=rtol * 1e-2, err_msg=key)
        else:  # dZ and dA: exactly the factor m
            np.testing.assert_allclose(gL[key], m * gJ[key], rtol=rtol, atol=rtol * 1e-2, err_msg=key)


@pytest.mark.parametrize("output,loss", [("sigmoid", "binary_crossentropy"),
                                         ("softmax", "categorical_crossentropy"),
                                         ("identity", "mean_squared_error")])
@pytest.mark.parametrize("convention", ["L", "J"])
def test_from_dAL_agrees_with_fused_start(output, loss, convention):
    rng = np.random.default_rng(2)
    params, X, Y, acts = _problem(rng, [3, 4, 3], "tanh", output, loss, m=6)
    AL, caches = ref.model_forward(X, params, acts)
    fused = ref.model_backward(AL, Y, caches, acts, loss, convention)
    chained = ref.model_backward(AL, Y, caches, acts, loss, convention, from_dAL=True)
    for key in fused:
        np.testing.assert_allclose(chained[key], fused[key], rtol=1e-10, atol=1e-13, err_msg=key)


def test_model_backward_keys_are_the_courses():
    rng = np.random.default_rng(0)
    params, X, Y, acts = _problem(rng, [2, 3, 3, 1], "relu", "sigmoid", "binary_crossentropy")
    AL, caches = ref.model_forward(X, params, acts)
    grads = ref.model_backward(AL, Y, caches, acts)
    expected = {f"dA{l}" for l in range(3)} | {f"{p}{l}" for l in (1, 2, 3) for p in ("dZ", "dW", "db")}
    assert set(grads) == expected
    for l in (1, 2, 3):
        assert grads[f"dW{l}"].shape == params[f"W{l}"].shape
        assert grads[f"db{l}"].shape == params[f"b{l}"].shape
    assert grads["dA0"].shape == X.shape


def test_caches_have_the_course_shape():
    rng = np.random.default_rng(0)
    params, X, Y, acts = _problem(rng, [2, 3, 1], "relu", "sigmoid", "binary_crossentropy")
    AL, caches = ref.model_forward(X, params, acts)
    (A_prev, W, b), Z = caches[1]
    assert W is params["W2"] and b is params["b2"]
    np.testing.assert_array_equal(Z, W @ A_prev + b)
    np.testing.assert_array_equal(AL, ref.sigmoid(Z))


def test_relu_derivative_is_zero_at_zero():
    Z = np.array([[-1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(ref.activation_derivative(Z, "relu"), [[0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(ref.activation_derivative(Z, ("leaky_relu", 0.1)), [[0.1, 0.1, 1.0]])
    np.testing.assert_array_equal(ref.activation_backward(np.ones_like(Z), Z, "relu"), [[0, 0, 1.0]])


@pytest.mark.parametrize("name", spec.ACTIVATION_NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_keep_dtype_and_shape(name, dtype):
    Z = np.linspace(-3, 3, 12, dtype=dtype).reshape(3, 4)
    A = ref.activation_forward(Z, name)
    assert A.dtype == dtype and A.shape == Z.shape
    dZ = ref.activation_backward(np.ones_like(Z), Z, name)
    assert dZ.dtype == dtype and dZ.shape == Z.shape


def test_softmax_columns_sum_to_one_and_survive_large_logits():
    Z = np.array([[1000.0, -5.0], [1001.0, 0.0], [999.0, 5.0]])
    A = ref.softmax(Z)
    np.testing.assert_allclose(A.sum(axis=0), 1.0)
    assert np.isfinite(A).all()


def test_sigmoid_survives_large_negative_inputs():
    A = ref.sigmoid(np.array([[-1000.0, 0.0, 1000.0]]))
    np.testing.assert_array_equal(A, [[0.0, 0.5, 1.0]])


def test_compute_cost_hand_checked():
    AL = np.array([[0.8, 0.9, 0.4]])
    Y = np.array([[1, 1, 0]])
    expected = -(np.log(0.8) + np.log(0.9) + np.log(0.6)) / 3
    assert ref.compute_cost(AL, Y, "binary_crossentropy") == pytest.approx(expected, rel=1e-14)
    AL = np.array([[0.7, 0.1], [0.3, 0.9]])
    Y = np.array([[1, 0], [0, 1]])
    assert ref.compute_cost(AL, Y, "categorical_crossentropy") == pytest.approx(
        -(np.log(0.7) + np.log(0.9)) / 2, rel=1e-14)
    AL = np.array([[1.0, 2.0], [0.0, 0.0]])
    Y = np.zeros((2, 2))
    assert ref.compute_cost(AL, Y, "mean_squared_error") == pytest.approx((1 + 4) / (2 * 2))


def test_compute_cost_is_finite_when_sigmoid_saturates():
    for dtype in (np.float32, np.float64):
        AL = np.array([[1.0, 0.0]], dtype=dtype)
        Y = np.array([[0.0, 1.0]], dtype=dtype)
        assert np.isfinite(ref.compute_cost(AL, Y))


def test_dropout_masks_apply_forward_and_backward():
    rng = np.random.default_rng(5)
    params, X, Y, acts = _problem(rng, [3, 4, 1], "relu", "sigmoid", "binary_crossentropy", m=6)
    keep_prob = 0.5
    D1 = (rng.random((4, 6)) < keep_prob)
    masks = {1: D1 / keep_prob}
    AL, caches = ref.model_forward(X, params, acts, dropout_masks=masks)
    A1 = ref.relu(params["W1"] @ X + params["b1"]) * D1 / keep_prob
    np.testing.assert_allclose(AL, ref.sigmoid(params["W2"] @ A1 + params["b2"]))
    grads = ref.model_backward(AL, Y, caches, acts, dropout_masks=masks)
    dA1 = params["W2"].T @ (AL - Y) * D1 / keep_prob
    np.testing.assert_allclose(grads["dA1"], dA1)
    np.testing.assert_allclose(grads["dZ1"], dA1 * (caches[0][1] > 0))


@pytest.mark.parametrize("init,scale", [("he", lambda n: np.sqrt(2 / n)),
                                        ("xavier", lambda n: np.sqrt(1 / n)),
                                        ("random", lambda n: 0.01)])
def test_initializers_follow_the_course(init, scale):
    dims = [5, 4, 3]
    params = ref.initialize_parameters(dims, init, legacy_seed=3)
    np.random.seed(3)
    for l in (1, 2):
        expected = np.random.randn(dims[l], dims[l - 1]) * scale(dims[l - 1])
        np.testing.assert_array_equal(params[f"W{l}"], expected)
        np.testing.assert_array_equal(params[f"b{l}"], np.zeros((dims[l], 1)))


def test_initializers_seeded_shapes_and_dtypes():
    dims = [400, 300, 2]
    for init in ref.INITIALIZERS:
        a = ref.initialize_parameters(dims, init, rng=np.random.default_rng(7), dtype=np.float32)
        b = ref.initialize_parameters(dims, init, rng=np.random.default_rng(7), dtype=np.float32)
        for k in a:
            assert a[k].dtype == np.float32 and a[k].flags.c_contiguous
            np.testing.assert_array_equal(a[k], b[k])
    zeros = ref.initialize_parameters(dims, "zeros")
    assert not np.any(zeros["W1"])
    glorot = ref.initialize_parameters(dims, "glorot_uniform", rng=np.random.default_rng(0))
    r = np.sqrt(6 / (400 + 300))
    assert np.abs(glorot["W1"]).max() <= r and np.abs(glorot["W1"]).max() > 0.9 * r
    he = ref.initialize_parameters(dims, "he", rng=np.random.default_rng(0))
    assert he["W1"].std() == pytest.approx(np.sqrt(2 / 400), rel=0.02)


def test_update_parameters_with_gd():
    params = {"W1": np.ones((2, 2)), "b1": np.zeros((2, 1))}
    grads = {"dW1": np.full((2, 2), 2.0), "db1": np.ones((2, 1))}
    new = ref.update_parameters_with_gd(params, grads, 0.5)
    np.testing.assert_array_equal(new["W1"], np.zeros((2, 2)))
    np.testing.assert_array_equal(new["b1"], np.full((2, 1), -0.5))
    np.testing.assert_array_equal(params["W1"], np.ones((2, 2)))  # not in place


@pytest.mark.parametrize("dims,m", [([1, 1, 1], 1), ([3, 1, 2], 1), ([2, 1, 1, 1, 1, 1, 1], 4),
                                    ([5, 2, 2, 2, 2, 2, 1], 3)])
def test_odd_shapes_match_finite_differences(dims, m):
    rng = np.random.default_rng(8)
    params, X, Y, acts = _problem(rng, dims, "tanh", "sigmoid", "binary_crossentropy", m=m)
    difference, _ = ref.gradient_check(params, X, Y, acts)
    assert difference < 1e-7
