"""Gradient check report: chainrule.explain.gradient_check and the reference's pieces it reuses."""

import numpy as np
import pytest

from chainrule import Network, reference as ref
from chainrule.errors import InputError
from chainrule.explain import gradient_check
from chainrule.explain.gradcheck import THRESHOLDS, constant_factor


def _data(dims, m, loss, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((dims[0], m))
    if loss == "categorical_crossentropy":
        Y = np.eye(dims[-1])[:, rng.integers(0, dims[-1], m)]
    elif loss == "binary_crossentropy":
        Y = (rng.random((dims[-1], m)) > 0.5).astype(float)
    else:
        Y = rng.standard_normal((dims[-1], m))
    return X, Y


CASES = [
    ([3, 4, 1], "tanh", "sigmoid", "binary_crossentropy"),
    ([4, 5, 3, 1], "relu", "sigmoid", "binary_crossentropy"),
    ([4, 5, 3], "tanh", "softmax", "categorical_crossentropy"),
    ([3, 4, 2], "sigmoid", "identity", "mean_squared_error"),
    ([2, 3, 1], ("leaky_relu", 0.1), "sigmoid", "binary_crossentropy"),
]


@pytest.mark.parametrize("dims, hidden, output, loss", CASES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradient_check_network_passes(dims, hidden, output, loss, dtype):
    X, Y = _data(dims, 6, loss)
    net = Network(dims, hidden=hidden, output=output, dtype=dtype, backend="numpy", seed=1)
    report = gradient_check(net, X, Y)
    assert report.passed, str(report)
    assert report.dtype == np.dtype(dtype)
    assert report.threshold == THRESHOLDS[np.dtype(dtype)]
    assert [p.name for p in report.parameters] == [f"{p}{l}" for l in range(1, len(dims))
                                                   for p in "Wb"]
    assert "PASSED" in str(report)


def test_gradient_check_thresholds_are_the_course_and_the_float32_policy():
    assert THRESHOLDS[np.dtype(np.float64)] == 2e-7
    assert THRESHOLDS[np.dtype(np.float32)] == 1e-4


def test_gradient_check_float32_numeric_gradient_is_float64():
    # With eps = 1e-7 a float32 difference would be noise; the report must still agree
    # with the float64 check of the same (upcast) parameters to float32 rounding.
    X, Y = _data([3, 4, 1], 5, "binary_crossentropy")
    net32 = Network([3, 4, 1], hidden="tanh", dtype="float32", backend="numpy")
    net64 = Network([3, 4, 1], hidden="tanh", dtype="float64", backend="numpy")
    net64.parameters = {k: v.astype(np.float64) for k, v in net32.parameters.items()}
    r32, r64 = gradient_check(net32, X, Y), gradient_check(net64, X, Y)
    for p32, p64 in zip(r32.parameters, r64.parameters):
        assert p32.worst[0][2] == pytest.approx(p64.worst[0][2], rel=1e-4, abs=1e-7) or \
            p32.worst[0][0] != p64.worst[0][0]
    assert r32.difference < 1e-4 and r64.difference < 2e-7


def _two_layer_fn(mistake=None):
    """fn(parameters, X, Y) -> (cost, grads) for a tanh/sigmoid network, optionally wrong."""
    def fn(parameters, X, Y):
        AL, caches = ref.model_forward(X, parameters, ["tanh", "sigmoid"])
        cost = ref.compute_cost(AL, Y)
        grads = ref.model_backward(AL, Y, caches, ["tanh", "sigmoid"])
        grads = {k: v for k, v in grads.items() if k[:2] in ("dW", "db")}
        m = X.shape[1]
        if mistake == "missing_1_over_m":
            grads["dW1"] = grads["dW1"] * m
        if mistake == "one_entry":
            grads["dW1"] = grads["dW1"].copy()
            grads["dW1"][1, 2] += 0.1
        return cost, grads
    return fn


def _params(seed=0):
    return ref.initialize_parameters([3, 4, 1], "xavier", rng=np.random.default_rng(seed))


def test_gradient_check_function_protocol_passes():
    X, Y = _data([3, 4, 1], 5, "binary_crossentropy")
    report = gradient_check(_two_layer_fn(), X, Y, parameters=_params())
    assert report.passed, str(report)
    assert report.difference < 2e-7


def test_gradient_check_names_the_wrong_parameter_and_the_factor_m():
    X, Y = _data([3, 4, 1], 5, "binary_crossentropy")
    report = gradient_check(_two_layer_fn("missing_1_over_m"), X, Y, parameters=_params())
    assert not report.passed
    assert [p.name for p in report.failed()] == ["W1"]
    assert report["W1"].factor == pytest.approx(5, rel=1e-4)
    text = str(report)
    assert "FAILED" in text and "the 1/m is missing" in text and "WRONG" in text


def test_gradient_check_worst_entry_index():
    X, Y = _data([3, 4, 1], 5, "binary_crossentropy")
    report = gradient_check(_two_layer_fn("one_entry"), X, Y, parameters=_params(), worst=2)
    assert not report.passed
    index, analytic, numeric = report["W1"].worst[0]
    assert index == (1, 2)
    assert analytic - numeric == pytest.approx(0.1, rel=1e-5)
    assert len(report["W1"].worst) == 2
    assert report["W1"].factor is None
    assert "dW1[1, 2]" in str(report)


def test_gradient_check_max_entries_samples():
    X, Y = _data([3, 4, 1], 5, "binary_crossentropy")
    report = gradient_check(_two_layer_fn(), X, Y, parameters=_params(), max_entries=3)
    assert report.passed
    assert [p.n_checked for p in report.parameters] == [3, 3, 3, 1]
    assert "sampled" in str(report)


def test_gradient_check_rounding_near_saturation_retries_with_10_epsilon():
    # A saturated sigmoid (A close to 1 with y = 0): 1 - A cancels and the cost carries
    # rounding error that 2 eps = 2e-7 magnifies beyond the threshold; the analytic
    # gradient is right, and the check with 10 eps says so.
    X, Y = _data([3, 4, 1], 5, "binary_crossentropy")
    params = _params()
    params["b2"] = np.array([[8.0]])
    Y = np.zeros_like(Y)
    report = gradient_check(_two_layer_fn(), X, Y, parameters=params)
    assert report.retry_difference is not None and report.difference >= 2e-7
    assert report.retry_difference < 2e-7
    assert report.passed
    assert "repeated with epsilon = 1e-06" in str(report)


def test_gradient_check_input_errors():
    X, Y = _data([3, 4, 1], 5, "binary_crossentropy")
    with pytest.raises(InputError, match="parameters="):
        gradient_check(_two_layer_fn(), X, Y)
    with pytest.raises(InputError, match="Network or a function"):
        gradient_check(42, X, Y)

    def bad_shape(parameters, X, Y):
        cost, grads = _two_layer_fn()(parameters, X, Y)
        grads["dW1"] = grads["dW1"].T
        return cost, grads

    with pytest.raises(InputError, match="shape of what it differentiates"):
        gradient_check(bad_shape, X, Y, parameters=_params())

    def no_db(parameters, X, Y):
        cost, grads = _two_layer_fn()(parameters, X, Y)
        del grads["db2"]
        return cost, grads

    with pytest.raises(InputError, match="db2"):
        gradient_check(no_db, X, Y, parameters=_params())


def test_central_difference_scalar_and_vector():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2))
    D = ref.central_difference(lambda t: float(np.sum(t ** 3)), x, 1e-6)
    np.testing.assert_allclose(D, (3 * x ** 2).reshape(-1), rtol=1e-7, atol=1e-9)
    A = rng.standard_normal((4, 6))
    D = ref.central_difference(lambda t: A @ t.reshape(-1), x, 1e-7)
    np.testing.assert_allclose(D.T, A, rtol=1e-7, atol=1e-8)


def test_relative_difference():
    assert ref.relative_difference(np.zeros(3), np.zeros(3)) == 0.0
    assert ref.relative_difference(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)


def test_reference_gradient_check_still_works():
    X, Y = _data([3, 4, 1], 5, "binary_crossentropy")
    difference, report = ref.gradient_check(_params(), X, Y, ["tanh", "sigmoid"])
    assert difference < 2e-7
    assert set(report) == {"W1", "b1", "W2", "b2"}


def test_constant_factor():
    e = np.array([1.0, -2.0, 3.0])
    assert constant_factor(5 * e, e) == pytest.approx(5)
    assert constant_factor(e + np.array([0, 0, 1.0]), e) is None
    assert constant_factor(e, np.zeros(3)) is None


def test_gradient_check_retry_does_not_hide_a_wrong_entry():
    X, Y = _data([3, 4, 1], 5, "binary_crossentropy")
    params = _params()
    params["b2"] = np.array([[8.0]])
    report = gradient_check(_two_layer_fn("one_entry"), X, np.zeros_like(Y), parameters=params)
    assert not report.passed
    assert [p.name for p in report.failed()] == ["W1"]
