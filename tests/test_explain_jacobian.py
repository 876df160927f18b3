"""Jacobians in numerator layout, analytic vs finite differences, and the transposition to the
course's gradients."""

import numpy as np
import pytest

from chainrule import Network, reference as ref
from chainrule.errors import InputError
from chainrule.explain import jacobians

NETS = [
    ([3, 2, 1], "tanh", "sigmoid", 2),
    ([2, 3, 2, 1], "relu", "sigmoid", 3),
    ([3, 2, 3], "sigmoid", "softmax", 2),
    ([2, 2, 2], "tanh", "identity", 1),
]


def _setup(dims, hidden, output, m, seed=0):
    rng = np.random.default_rng(seed)
    net = Network(dims, hidden=hidden, output=output, backend="numpy", seed=seed)
    X = rng.standard_normal((dims[0], m))
    if output == "softmax":
        Y = np.eye(dims[-1])[:, rng.integers(0, dims[-1], m)]
    elif output == "sigmoid":
        Y = (rng.random((dims[-1], m)) > 0.5).astype(float)
    else:
        Y = rng.standard_normal((dims[-1], m))
    return net, X, Y


@pytest.mark.parametrize("dims, hidden, output, m", NETS)
def test_jacobians_analytic_equals_numeric(dims, hidden, output, m):
    net, X, Y = _setup(dims, hidden, output, m)
    report = jacobians(net, X, Y)
    L = len(dims) - 1
    names = {j.name for j in report.jacobians}
    for l in range(1, L + 1):
        assert {f"∂Z{l}/∂W{l}", f"∂Z{l}/∂b{l}", f"∂Z{l}/∂A{l - 1}", f"∂A{l}/∂Z{l}"} <= names
    assert f"∂ℓ/∂Z{L}" in names
    for j in report.jacobians:
        assert j.analytic.shape == j.numeric.shape
        scale = max(1.0, float(np.max(np.abs(j.analytic))))
        assert j.max_difference < 1e-6 * scale, j.name


@pytest.mark.parametrize("dims, hidden, output, m", NETS)
def test_jacobians_transposed_rows_are_the_course_gradients(dims, hidden, output, m):
    net, X, Y = _setup(dims, hidden, output, m)
    report = jacobians(net, X, Y)
    AL, caches = ref.model_forward(X, net.parameters, net.activations)
    grads = ref.model_backward(AL, Y, caches, net.activations, net.loss, convention="J")
    for t in report.transpositions:
        np.testing.assert_array_equal(t.course, grads[t.name])  # the course's own value
        assert t.from_jacobians.shape == grads[t.name].shape
        assert t.max_difference < 1e-6, t.name


def test_jacobians_closed_forms():
    net, X, Y = _setup([3, 2, 1], "tanh", "sigmoid", 3)
    report = jacobians(net, X, Y)
    W1 = net.parameters["W1"]
    (A0, _, _), Z1 = ref.model_forward(X, net.parameters, net.activations)[1][0]
    J_ZA = report["∂Z1/∂A0"].analytic
    # the block of one example (column k of Z by column k of A_prev) is W itself
    m = 3
    for k in range(m):
        np.testing.assert_array_equal(J_ZA[k::m, k::m], W1)
    np.testing.assert_allclose(report["∂Z1/∂A0"].numeric[0::m, 0::m], W1, atol=1e-8)
    J_AZ = report["∂A1/∂Z1"].analytic
    np.testing.assert_array_equal(J_AZ, np.diag(np.diag(J_AZ)))  # diagonal
    np.testing.assert_allclose(np.diag(J_AZ), (1 - np.tanh(Z1) ** 2).reshape(-1))
    # per-example losses: m x m diagonal, diag = A - Y (convention L's dZ[L])
    AL = ref.model_forward(X, net.parameters, net.activations)[0]
    J_lZ = report["∂ℓ/∂Z2"]
    assert J_lZ.analytic.shape == (m, m)
    np.testing.assert_allclose(J_lZ.analytic, np.diag((AL - Y).reshape(-1)))
    np.testing.assert_allclose(J_lZ.numeric, np.diag((AL - Y).reshape(-1)), atol=1e-7)
    # dZ/dW = I ⊗ A_prevᵀ
    np.testing.assert_array_equal(report["∂Z1/∂W1"].analytic, np.kron(np.eye(2), A0.T))


def test_jacobians_softmax_is_not_diagonal():
    net, X, Y = _setup([3, 2, 3], "sigmoid", "softmax", 2)
    J = jacobians(net, X, Y)["∂A2/∂Z2"].analytic
    assert np.count_nonzero(J - np.diag(np.diag(J))) > 0


def test_jacobians_report_text():
    net, X, Y = _setup([3, 2, 1], "tanh", "sigmoid", 2)
    text = str(jacobians(net, X, Y))
    assert "numerator layout" in text
    assert "reshape(rowᵀ, (2, 3)) vs the course's dW1" in text
    assert "2 × 2 diagonal" in text


def test_jacobians_needs_a_network():
    with pytest.raises(InputError):
        jacobians({"W1": np.eye(2)}, np.eye(2), np.eye(2))
