"""Batch normalization in the NumPy reference: both backwards against finite differences and each
other, in both conventions; the m x m coupling block; the classic mistake; the network family
(model_forward / model_backward / running averages / eval mode); float64 parity with PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import reference as ref
from chainrule.errors import InputError, ShapeError

FD_RTOL = 1e-7  # the style guide's oracle 2: float64, central differences, eps = 1e-7
BACKWARDS = [ref.batchnorm_backward, ref.batchnorm_backward_staged]


def _bn_problem(rng, n=4, m=6):
    Z = rng.standard_normal((n, m)) * 2 + rng.standard_normal((n, 1))
    gamma = rng.standard_normal((n, 1))
    beta = rng.standard_normal((n, 1))
    G = rng.standard_normal((n, m))  # l_k = sum_i G[i, k] Z_tilde[i, k]: one loss per example
    return Z, gamma, beta, G


def _J(G, Z, gamma, beta):
    """J = (1/m) sum_k l_k with l_k = sum_i G[i, k] Z_tilde[i, k]."""
    return float(np.sum(G * ref.batchnorm_forward(Z, gamma, beta)[0])) / Z.shape[1]


# --------------------------------------------------------------------------- forward

def test_batchnorm_forward_hand_checked():
    Z = np.array([[1.0, 3.0], [2.0, 2.0]])
    gamma, beta = np.array([[2.0], [1.0]]), np.array([[0.5], [-1.0]])
    with np.errstate(invalid="ignore"):
        Z_tilde, cache = ref.batchnorm_forward(Z, gamma, beta, eps=0.0)
    # unit 0: mu = 2, sigma^2 = 1, Z_hat = [-1, 1]; unit 1: constant, Z_hat = 0 / 0 -> needs eps
    assert np.allclose(Z_tilde[0], [2 * -1 + 0.5, 2 * 1 + 0.5])
    assert np.allclose(cache.mu, [[2.0], [2.0]]) and np.allclose(cache.var, [[1.0], [0.0]])
    Z_tilde, cache = ref.batchnorm_forward(Z, gamma, beta, eps=1e-5)
    assert np.allclose(Z_tilde[1], [-1.0, -1.0])  # a constant unit gives beta
    assert np.allclose(cache.s, np.sqrt(cache.var + 1e-5))


def test_batchnorm_forward_normalizes_each_unit(rng):
    Z, gamma, beta, _ = _bn_problem(rng, n=5, m=40)
    Z_tilde, cache = ref.batchnorm_forward(Z, gamma, beta, eps=0.0)
    np.testing.assert_allclose(cache.Z_hat.mean(axis=1), 0, atol=1e-14)
    np.testing.assert_allclose(cache.Z_hat.var(axis=1), 1, rtol=1e-12)  # biased: ddof=0
    np.testing.assert_allclose(Z_tilde.mean(axis=1, keepdims=True), beta, atol=1e-14)
    np.testing.assert_allclose(Z_tilde.std(axis=1, keepdims=True), np.abs(gamma), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_keeps_the_dtype(rng, dtype):
    Z, gamma, beta, G = (a.astype(dtype) for a in _bn_problem(rng))
    Z_tilde, cache = ref.batchnorm_forward(Z, gamma, beta)
    assert Z_tilde.dtype == dtype
    for backward in BACKWARDS:
        assert all(x.dtype == dtype for x in backward(G, cache))


# --------------------------------------------------------------------------- backward

@pytest.mark.parametrize("convention", ["L", "J"])
@pytest.mark.parametrize("m", [2, 3, 7, 32])
def test_batchnorm_backward_staged_equals_compact(rng, convention, m):
    Z, gamma, beta, G = _bn_problem(rng, n=5, m=m)
    _, cache = ref.batchnorm_forward(Z, gamma, beta)
    staged = ref.batchnorm_backward_staged(G, cache, convention)
    compact = ref.batchnorm_backward(G, cache, convention)
    for name, actual, expected in zip(("dZ", "dgamma", "dbeta"), compact, staged):
        np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("backward", BACKWARDS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("convention", ["L", "J"])
def test_batchnorm_backward_matches_finite_differences(rng, backward, convention):
    Z, gamma, beta, G = _bn_problem(rng)
    m = Z.shape[1]
    _, cache = ref.batchnorm_forward(Z, gamma, beta)
    # the start of each convention: "L" differentiates the per-example losses, "J" the cost
    dZ_tilde = G if convention == "L" else G / m
    dZ, dgamma, dbeta = backward(dZ_tilde, cache, convention)
    num_dZ = ref.central_difference(lambda Z_: _J(G, Z_, gamma, beta), Z).reshape(Z.shape)
    num_dgamma = ref.central_difference(lambda g_: _J(G, Z, g_, beta), gamma).reshape(gamma.shape)
    num_dbeta = ref.central_difference(lambda b_: _J(G, Z, gamma, b_), beta).reshape(beta.shape)
    # "L": every dZ is m times J's; dgamma and dbeta carry the 1/m (both are dJ/dtheta)
    scale = m if convention == "L" else 1
    assert ref.relative_difference(dZ, scale * num_dZ) < FD_RTOL
    assert ref.relative_difference(dgamma, num_dgamma) < FD_RTOL
    assert ref.relative_difference(dbeta, num_dbeta) < FD_RTOL


@pytest.mark.parametrize("backward", BACKWARDS, ids=lambda f: f.__name__)
def test_batchnorm_backward_L_is_m_times_J(rng, backward):
    Z, gamma, beta, G = _bn_problem(rng)
    m = Z.shape[1]
    _, cache = ref.batchnorm_forward(Z, gamma, beta)
    dZ_L, dgamma_L, dbeta_L = backward(G, cache, "L")
    dZ_J, dgamma_J, dbeta_J = backward(G / m, cache, "J")
    np.testing.assert_allclose(dZ_L, m * dZ_J, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dgamma_L, dgamma_J, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dbeta_L, dbeta_J, rtol=1e-12, atol=1e-14)


def test_batchnorm_backward_gradient_sums_to_zero(rng):
    # mu absorbs any shift of a unit: sum_k dZ[i, k] = 0 (why b is dropped: db would be 0)
    Z, gamma, beta, G = _bn_problem(rng)
    _, cache = ref.batchnorm_forward(Z, gamma, beta)
    dZ, _, _ = ref.batchnorm_backward(G, cache)
    np.testing.assert_allclose(dZ.sum(axis=1), 0, atol=1e-12)
    # ... and, with eps = 0, sigma^2 absorbs a scaling: sum_k dZ[i, k] Z_hat[i, k] = 0
    # (eps > 0 leaves eps / (sigma^2 + eps) of it)
    _, cache = ref.batchnorm_forward(Z, gamma, beta, eps=0.0)
    dZ, _, _ = ref.batchnorm_backward(G, cache)
    np.testing.assert_allclose(np.sum(dZ * cache.Z_hat, axis=1), 0, atol=1e-12)


def test_batchnorm_jacobian_block_matches_finite_differences(rng):
    Z, gamma, beta, _ = _bn_problem(rng, n=3, m=5)
    n, m = Z.shape
    _, cache = ref.batchnorm_forward(Z, gamma, beta)
    # the full (n m) x (n m) Jacobian of Z_tilde (C order) by central differences
    numeric = ref.central_difference(lambda Z_: ref.batchnorm_forward(Z_, gamma, beta)[0],
                                     Z).reshape(n * m, n * m).T
    for i in range(n):
        block = ref.batchnorm_jacobian(cache, i)
        expected = numeric[i * m:(i + 1) * m, i * m:(i + 1) * m]
        assert block.shape == (m, m)
        assert ref.relative_difference(block, expected) < FD_RTOL
        # dense: every example moves every other example's Z_tilde of the unit
        assert np.all(block[~np.eye(m, dtype=bool)] != 0)
        for i2 in range(n):
            if i2 != i:  # units do not couple
                assert np.max(np.abs(numeric[i * m:(i + 1) * m, i2 * m:(i2 + 1) * m])) < 1e-8
    # the backward is the transposed Jacobian applied to dZ_tilde
    G = rng.standard_normal((n, m))
    dZ, _, _ = ref.batchnorm_backward(G, cache, "J")
    for i in range(n):
        np.testing.assert_allclose(dZ[i], ref.batchnorm_jacobian(cache, i).T @ G[i],
                                   rtol=1e-10, atol=1e-12)


def test_batchnorm_classic_mistake_disagrees_with_finite_differences(rng):
    """mu and sigma^2 treated as constants: dZ = (gamma / s) dZ_tilde, the diagonal only."""
    Z, gamma, beta, G = _bn_problem(rng)
    _, cache = ref.batchnorm_forward(Z, gamma, beta)
    numeric = ref.central_difference(lambda Z_: _J(G, Z_, gamma, beta), Z).reshape(Z.shape)
    wrong = (cache.gamma / cache.s) * (G / Z.shape[1])
    right, _, _ = ref.batchnorm_backward(G / Z.shape[1], cache, "J")
    assert ref.relative_difference(right, numeric) < FD_RTOL
    assert ref.relative_difference(wrong, numeric) > 1e-2
    # the missing terms are exactly the two sums through mu and sigma^2
    m = Z.shape[1]
    missing = -(cache.gamma / (m * cache.s)) * (np.sum(G / m, axis=1, keepdims=True)
                                                + cache.Z_hat * np.sum(G / m * cache.Z_hat,
                                                                       axis=1, keepdims=True))
    np.testing.assert_allclose(wrong + missing, right, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- bad input

def test_batchnorm_refuses_one_example_in_training():
    Z, gamma, beta = np.ones((3, 1)), np.ones((3, 1)), np.zeros((3, 1))
    with pytest.raises(InputError, match=r"at least 2 examples; got m = 1"):
        ref.batchnorm_forward(Z, gamma, beta)
    # eval mode normalizes each example with the running statistics: m = 1 is fine
    out = ref.batchnorm_forward_eval(Z, gamma, beta, np.zeros((3, 1)), np.ones((3, 1)))
    assert out.shape == (3, 1)


@pytest.mark.parametrize("gamma_shape, beta_shape, bad", [
    ((3,), (3, 1), r"gamma must have shape \(3, 1\).*got \(3,\)"),
    ((1, 3), (3, 1), r"gamma must have shape \(3, 1\).*got \(1, 3\)"),
    ((3, 1), (4, 1), r"beta must have shape \(3, 1\).*got \(4, 1\)"),
])
def test_batchnorm_forward_names_expected_and_given_shapes(gamma_shape, beta_shape, bad):
    with pytest.raises(ShapeError, match=bad):
        ref.batchnorm_forward(np.ones((3, 4)), np.ones(gamma_shape), np.zeros(beta_shape))
    with pytest.raises(ShapeError, match=r"Z must be 2-D \(n, m\).*got shape \(4,\)"):
        ref.batchnorm_forward(np.ones(4), np.ones((4, 1)), np.zeros((4, 1)))


@pytest.mark.parametrize("backward", BACKWARDS, ids=lambda f: f.__name__)
def test_batchnorm_backward_names_bad_shapes_and_convention(rng, backward):
    Z, gamma, beta, G = _bn_problem(rng)
    _, cache = ref.batchnorm_forward(Z, gamma, beta)
    with pytest.raises(ShapeError, match=r"shape \(4, 6\) of Z_tilde.*got \(6, 4\)"):
        backward(G.T, cache)
    with pytest.raises(InputError, match="convention must be 'L' or 'J'"):
        backward(G, cache, "K")


def test_batchnorm_forward_eval_names_running_statistics():
    with pytest.raises(ShapeError, match=r"running_var must have shape \(2, 1\).*got \(2,\)"):
        ref.batchnorm_forward_eval(np.ones((2, 3)), np.ones((2, 1)), np.zeros((2, 1)),
                                   np.zeros((2, 1)), np.ones(2))


# --------------------------------------------------------------------------- running averages

def test_batchnorm_running_update_formula(rng):
    Z, gamma, beta, _ = _bn_problem(rng, n=3, m=5)
    _, cache = ref.batchnorm_forward(Z, gamma, beta)
    mean0, var0 = rng.standard_normal((3, 1)), rng.random((3, 1)) + 0.5
    mean, var = ref.batchnorm_running_update(mean0, var0, cache, beta=0.8)
    np.testing.assert_allclose(mean, 0.8 * mean0 + 0.2 * Z.mean(axis=1, keepdims=True))
    np.testing.assert_allclose(var, 0.8 * var0 + 0.2 * Z.var(axis=1, ddof=1, keepdims=True))
    _, var_b = ref.batchnorm_running_update(mean0, var0, cache, beta=0.8, unbiased=False)
    np.testing.assert_allclose(var_b, 0.8 * var0 + 0.2 * Z.var(axis=1, keepdims=True))


# --------------------------------------------------------------------------- the network family

NETWORKS = [
    # dims, hidden activations, output, loss, batch norm on the hidden layers
    ([4, 5, 3, 1], ["tanh", "sigmoid"], "sigmoid", "binary_crossentropy", [True, True]),
    ([4, 6, 5, 3], ["tanh", ("leaky_relu", 0.2)], "softmax", "categorical_crossentropy",
     [False, True]),
    ([3, 5, 2], ["tanh"], "identity", "mean_squared_error", [True]),
]


def _network(rng, dims, hidden, output, loss, batch_norm, m=7):
    params = ref.initialize_parameters(dims, "xavier", rng=rng, batch_norm=batch_norm)
    for key in params:  # gamma, beta and b away from 1 and 0, so all of them are exercised
        if key[0] in "bg":
            params[key] = params[key] + 0.3 * rng.standard_normal(params[key].shape)
    X = rng.standard_normal((dims[0], m))
    if loss == "binary_crossentropy":
        Y = (rng.random((dims[-1], m)) > 0.5).astype(float)
    elif loss == "categorical_crossentropy":
        Y = np.eye(dims[-1])[:, rng.integers(0, dims[-1], m)]
    else:
        Y = rng.standard_normal((dims[-1], m))
    return params, X, Y, list(hidden) + [output]


def test_initialize_parameters_with_batch_norm_keys_and_same_draws():
    dims = [4, 5, 3, 1]
    plain = ref.initialize_parameters(dims, rng=np.random.default_rng(3))
    bn = ref.initialize_parameters(dims, rng=np.random.default_rng(3), batch_norm=[True, False])
    assert list(bn) == ["W1", "gamma1", "beta1", "W2", "b2", "W3", "b3"]
    assert np.array_equal(bn["gamma1"], np.ones((5, 1)))
    assert np.array_equal(bn["beta1"], np.zeros((5, 1)))
    for l in (1, 2, 3):
        assert np.array_equal(bn[f"W{l}"], plain[f"W{l}"])
    assert ref.batch_norm_layers(bn) == [1]
    assert ref.batch_norm_layers(ref.initialize_parameters(dims, batch_norm=True)) == [1, 2]
    with pytest.raises(InputError, match="one bool per hidden layer, 2 .* got 3"):
        ref.initialize_parameters(dims, batch_norm=[True, True, True])


@pytest.mark.parametrize("dims, hidden, output, loss, batch_norm", NETWORKS)
@pytest.mark.parametrize("convention", ["L", "J"])
def test_model_backward_through_batchnorm_matches_finite_differences(rng, dims, hidden, output,
                                                                     loss, batch_norm,
                                                                     convention):
    params, X, Y, activations = _network(rng, dims, hidden, output, loss, batch_norm)
    m = X.shape[1]
    lambd = 0.3
    # a fixed inverted-dropout mask on the first hidden layer (after its activation)
    masks = {1: (rng.random((dims[1], m)) < 0.8) / 0.8}

    def J(p, X_=X):
        AL, _ = ref.model_forward(X_, p, activations, masks)
        return ref.compute_cost(AL, Y, loss) + ref.l2_cost(p, lambd, m)

    AL, caches = ref.model_forward(X, params, activations, masks)
    grads = ref.model_backward(AL, Y, caches, activations, loss, convention, from_dAL=False,
                               dropout_masks=masks, lambd=lambd)
    analytic, numeric = {}, {}
    for l in range(1, len(dims)):
        keys = (["gamma", "beta"] if batch_norm[l - 1:l] == [True] else ["b"]) + ["W"]
        assert (f"db{l}" in grads) == ("b" in keys)
        for name in keys:
            key = f"{name}{l}"
            assert grads[f"d{key}"].shape == params[key].shape
            analytic[key] = grads[f"d{key}"].ravel()
            numeric[key] = {eps: ref.central_difference(
                lambda v, key=key: J({**params, key: v}), params[key], eps)
                for eps in (1e-7, 1e-5)}
    assert analytic.keys() == {k for k in params}
    # all parameters together (the course's check) with eps = 1e-7; each one on its own with
    # eps = 1e-5, where the difference's rounding (1e-16 |J| / eps) is far below a small
    # gradient's 1e-7 (a gamma of the last BN layer has entries ~1e-3)
    together = ref.relative_difference(np.concatenate(list(analytic.values())),
                                       np.concatenate([n[1e-7] for n in numeric.values()]))
    assert together < FD_RTOL
    for key in analytic:
        assert ref.relative_difference(analytic[key], numeric[key][1e-5]) < FD_RTOL, key
    # dA0 is a derivative of J in "J", of the summed loss m J in "L"
    numeric = ref.central_difference(lambda X_: J(params, X_), X, 1e-5).reshape(X.shape)
    scale = m if convention == "L" else 1
    assert ref.relative_difference(grads["dA0"], scale * numeric) < FD_RTOL


@pytest.mark.parametrize("dims, hidden, output, loss, batch_norm", NETWORKS)
def test_model_backward_batchnorm_L_is_m_times_J(rng, dims, hidden, output, loss, batch_norm):
    params, X, Y, activations = _network(rng, dims, hidden, output, loss, batch_norm)
    m = X.shape[1]
    AL, caches = ref.model_forward(X, params, activations)
    g_L = ref.model_backward(AL, Y, caches, activations, loss, "L")
    g_J = ref.model_backward(AL, Y, caches, activations, loss, "J")
    assert g_L.keys() == g_J.keys()
    for key in g_L:
        factor = m if key.startswith(("dA", "dZ")) else 1  # dZ, dZ_tilde, dA: m times
        np.testing.assert_allclose(g_L[key], factor * g_J[key], rtol=1e-11, atol=1e-13,
                                   err_msg=key)
    bn = [l for l, on in enumerate(batch_norm, start=1) if on]
    assert all(f"dZ_tilde{l}" in g_L and f"dgamma{l}" in g_L and f"dbeta{l}" in g_L for l in bn)


def test_upstream_of_batchnorm_L_is_the_summed_loss_not_one_examples(rng):
    """Without batch norm dA0[:, k] in "L" is the derivative of example k's own loss; with it,
    only of the sum of all of them (every example's loss depends on every column of X)."""
    for batch_norm in (False, True):
        params, X, Y, activations = _network(rng, [3, 4, 1], ["tanh"], "sigmoid",
                                             "binary_crossentropy", [batch_norm])
        AL, caches = ref.model_forward(X, params, activations)
        dA0 = ref.model_backward(AL, Y, caches, activations, convention="L")["dA0"]
        k = 2

        def loss_k(x_k):
            X_ = X.copy()
            X_[:, k] = x_k
            return ref.example_losses(ref.model_forward(X_, params, activations)[0], Y)[k]

        own = ref.central_difference(loss_k, X[:, k])
        summed = ref.central_difference(
            lambda x_k: np.sum(ref.example_losses(ref.model_forward(
                np.column_stack([X[:, :k], x_k, X[:, k + 1:]]), params, activations)[0], Y)),
            X[:, k])
        assert ref.relative_difference(dA0[:, k], summed) < FD_RTOL
        if batch_norm:
            assert ref.relative_difference(dA0[:, k], own) > 1e-3
        else:
            assert ref.relative_difference(dA0[:, k], own) < FD_RTOL


@pytest.mark.parametrize("convention", ["L", "J"])
def test_linear_batchnorm_activation_backward_is_model_backwards_layer(rng, convention):
    params, X, Y, activations = _network(rng, *NETWORKS[0])
    AL, caches = ref.model_forward(X, params, activations)
    grads = ref.model_backward(AL, Y, caches, activations, convention=convention, lambd=0.2)
    dA_prev, dW, dgamma, dbeta = ref.linear_batchnorm_activation_backward(
        grads["dA2"], caches[1], activations[1], convention, lambd=0.2)
    for name, actual in (("dA1", dA_prev), ("dW2", dW), ("dgamma2", dgamma), ("dbeta2", dbeta)):
        np.testing.assert_allclose(actual, grads[name], rtol=1e-12, atol=1e-15, err_msg=name)
    # and the cache is the documented triple
    (A_prev, W, b), Z_tilde, bn_cache = caches[1]
    assert b is None and A_prev is caches[1][0][0] and isinstance(bn_cache, ref.BatchNormCache)
    np.testing.assert_array_equal(Z_tilde, bn_cache.gamma * bn_cache.Z_hat + bn_cache.beta)


def test_reference_gradient_check_passes_through_batchnorm(rng):
    params, X, Y, activations = _network(rng, *NETWORKS[0])
    difference, report = ref.gradient_check(params, X, Y, activations, lambd=0.1)
    assert difference < 2e-7
    assert {"gamma1", "beta1", "gamma2", "beta2", "W3", "b3"} <= set(report)
    assert "b1" not in report


def test_update_parameters_with_gd_updates_gamma_and_beta(rng):
    params, X, Y, activations = _network(rng, *NETWORKS[0])
    AL, caches = ref.model_forward(X, params, activations)
    grads = ref.model_backward(AL, Y, caches, activations)
    new = ref.update_parameters_with_gd(params, grads, 0.5)
    assert new.keys() == params.keys()
    np.testing.assert_allclose(new["gamma1"], params["gamma1"] - 0.5 * grads["dgamma1"])
    np.testing.assert_allclose(new["beta2"], params["beta2"] - 0.5 * grads["dbeta2"])


def test_model_forward_eval_mode_uses_running_statistics(rng):
    params, X, Y, activations = _network(rng, *NETWORKS[0])
    running = ref.initialize_running_statistics(params)
    assert sorted(running) == ["running_mean1", "running_mean2", "running_var1", "running_var2"]
    _, caches = ref.model_forward(X, params, activations)
    running = ref.update_running_statistics(running, caches, beta=0.7)
    AL, eval_caches = ref.model_forward(X, params, activations, training=False, running=running)
    # by hand, layer by layer
    A = X
    for l, g in enumerate(activations, start=1):
        Z = params[f"W{l}"] @ A
        if f"gamma{l}" in params:
            Z = (params[f"gamma{l}"] * (Z - running[f"running_mean{l}"])
                 / np.sqrt(running[f"running_var{l}"] + ref.BATCHNORM_EPSILON)
                 + params[f"beta{l}"])
        else:
            Z = Z + params[f"b{l}"]
        A = ref.activation_forward(Z, g)
    np.testing.assert_allclose(AL, A, rtol=1e-13, atol=1e-15)
    # each example on its own: one column gives that column's prediction
    AL_1, _ = ref.model_forward(X[:, 3:4], params, activations, training=False, running=running)
    np.testing.assert_allclose(AL_1, AL[:, 3:4], rtol=1e-13, atol=1e-15)
    with pytest.raises(InputError, match="eval-mode forward"):
        ref.model_backward(AL, Y, eval_caches, activations)
    with pytest.raises(InputError, match="eval-mode forward"):
        ref.update_running_statistics(running, eval_caches)
    with pytest.raises(InputError, match="needs running="):
        ref.model_forward(X, params, activations, training=False)
    with pytest.raises(InputError, match="running_var2"):
        ref.model_forward(X, params, activations, training=False,
                          running={k: v for k, v in running.items() if k != "running_var2"})


def test_model_forward_batchnorm_errors_name_the_layer(rng):
    params, X, Y, activations = _network(rng, *NETWORKS[0])
    with pytest.raises(InputError, match=r"layer 1 \(batch norm\).*got m = 1"):
        ref.model_forward(X[:, :1], params, activations)
    bad = {**params, "gamma2": np.ones((3,))}
    with pytest.raises(ShapeError, match=r"layer 2 \(batch norm\): gamma2 must have shape "
                                         r"\(3, 1\).*got \(3,\)"):
        ref.model_forward(X, bad, activations)
    with pytest.raises(InputError, match="layer 1 has gamma1 and b1"):
        ref.model_forward(X, {**params, "b1": np.zeros((5, 1))}, activations)


# --------------------------------------------------------------------------- PyTorch parity

def _reference_training(params, X, Y, activations, optimizer, steps, lr, beta, eps, convention,
                        batch=16):
    """The reference as a training loop: mini-batches in order, SGD or the course's Adam."""
    params = {k: v.copy() for k, v in params.items()}
    running = ref.initialize_running_statistics(params)
    v = {k: np.zeros_like(p) for k, p in params.items()}
    s = {k: np.zeros_like(p) for k, p in params.items()}
    b1, b2, adam_eps = 0.9, 0.999, 1e-8
    m_total = X.shape[1]
    for t in range(1, steps + 1):
        start = ((t - 1) * batch) % m_total
        Xb, Yb = X[:, start:start + batch], Y[:, start:start + batch]
        AL, caches = ref.model_forward(Xb, params, activations, epsilon=eps)
        grads = ref.model_backward(AL, Yb, caches, activations, convention=convention)
        running = ref.update_running_statistics(running, caches, beta=beta)
        if optimizer == "sgd":
            params = ref.update_parameters_with_gd(params, grads, lr)
            continue
        for k in params:
            g = grads[f"d{k}"]
            v[k] = b1 * v[k] + (1 - b1) * g
            s[k] = b2 * s[k] + (1 - b2) * g * g
            v_hat, s_hat = v[k] / (1 - b1 ** t), s[k] / (1 - b2 ** t)
            params[k] = params[k] - lr * v_hat / (np.sqrt(s_hat) + adam_eps)
    return params, running


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.5), ("adam", 0.01)])
@pytest.mark.parametrize("convention", ["L", "J"])
def test_batchnorm_training_matches_pytorch(optimizer, lr, convention):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.set_num_threads(1)
    rng = np.random.default_rng(7)
    dims, beta, eps, steps = [5, 8, 6, 1], 0.9, 1e-3, 20
    activations = ["tanh", "relu", "sigmoid"]
    X = rng.standard_normal((dims[0], 64)) * 3 + 1
    Y = (rng.random((1, 64)) > 0.5).astype(float)
    params = ref.initialize_parameters(dims, "he", rng=rng, batch_norm=True)
    params["b3"] = rng.standard_normal((1, 1)) * 0.1

    # PyTorch: Linear(bias=False) -> BatchNorm1d(momentum = 1 - beta, eps) -> activation
    layers = []
    for l, act in ((1, nn.Tanh()), (2, nn.ReLU())):
        linear = nn.Linear(dims[l - 1], dims[l], bias=False, dtype=torch.float64)
        bn = nn.BatchNorm1d(dims[l], eps=eps, momentum=1 - beta, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(params[f"W{l}"]))
            bn.weight.copy_(torch.from_numpy(params[f"gamma{l}"][:, 0]))
            bn.bias.copy_(torch.from_numpy(params[f"beta{l}"][:, 0]))
        layers += [linear, bn, act]
    out = nn.Linear(dims[2], dims[3], dtype=torch.float64)
    with torch.no_grad():
        out.weight.copy_(torch.from_numpy(params["W3"]))
        out.bias.copy_(torch.from_numpy(params["b3"][:, 0]))
    net = nn.Sequential(*layers, out)
    opt = (torch.optim.SGD(net.parameters(), lr=lr) if optimizer == "sgd"
           else torch.optim.Adam(net.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8))
    loss_fn = nn.BCEWithLogitsLoss()  # the mean over examples: J
    Xt, Yt = torch.from_numpy(X.T.copy()), torch.from_numpy(Y.T.copy())  # rows at the border
    net.train()
    for t in range(steps):
        start = (t * 16) % 64
        opt.zero_grad()
        loss_fn(net(Xt[start:start + 16]), Yt[start:start + 16]).backward()
        opt.step()

    expected, running = _reference_training(params, X, Y, activations, optimizer, steps, lr,
                                            beta, eps, convention)
    tol = dict(rtol=0, atol=1e-10)
    for l in (1, 2):
        linear, bn = layers[3 * (l - 1)], layers[3 * (l - 1) + 1]
        np.testing.assert_allclose(expected[f"W{l}"], linear.weight.detach().numpy(), **tol)
        np.testing.assert_allclose(expected[f"gamma{l}"][:, 0], bn.weight.detach().numpy(), **tol)
        np.testing.assert_allclose(expected[f"beta{l}"][:, 0], bn.bias.detach().numpy(), **tol)
        np.testing.assert_allclose(running[f"running_mean{l}"][:, 0], bn.running_mean.numpy(),
                                   **tol)
        np.testing.assert_allclose(running[f"running_var{l}"][:, 0], bn.running_var.numpy(),
                                   **tol)
    np.testing.assert_allclose(expected["W3"], out.weight.detach().numpy(), **tol)
    np.testing.assert_allclose(expected["b3"][:, 0], out.bias.detach().numpy(), **tol)
    # the parameters moved: the comparison is not of two copies of the start
    assert np.max(np.abs(expected["W1"] - params["W1"])) > 1e-3

    # eval mode: the running statistics, on new examples
    X_new = rng.standard_normal((dims[0], 10)) * 3 + 1
    net.eval()
    with torch.no_grad():
        torch_pred = torch.sigmoid(net(torch.from_numpy(X_new.T.copy()))).numpy().T
    AL, _ = ref.model_forward(X_new, expected, activations, training=False, running=running,
                              epsilon=eps)
    np.testing.assert_allclose(AL, torch_pred, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- explain.gradient_check

def _cost_and_grads(activations):
    """A learner's fn(parameters, X, Y) -> (cost, grads) on the reference family."""
    def fn(parameters, X, Y):
        AL, caches = ref.model_forward(X, parameters, activations)
        return ref.compute_cost(AL, Y), ref.model_backward(AL, Y, caches, activations)
    return fn


def test_explain_gradient_check_through_batchnorm_layers(rng, monkeypatch):
    from chainrule.explain import gradient_check

    params, X, Y, activations = _network(rng, *NETWORKS[0])
    report = gradient_check(_cost_and_grads(activations), X, Y, parameters=params)
    assert report.passed, str(report)
    assert [p.name for p in report.parameters] == list(params)  # gamma, beta checked too

    def constants(dZ_tilde, cache, convention="L"):  # the classic mistake
        _, dgamma, dbeta = ref.batchnorm_backward_staged(dZ_tilde, cache, convention)
        return (cache.gamma / cache.s) * dZ_tilde, dgamma, dbeta

    monkeypatch.setattr(ref, "batchnorm_backward", constants)
    report = gradient_check(_cost_and_grads(activations), X, Y, parameters=params)
    assert not report.passed
    failed = {p.name for p in report.failed()}
    # the layers below the first wrong dZ are wrong; the top layer and the last BN's own
    # gamma, beta (computed before the mistake) are right
    assert {"W1", "W2"} <= failed and not {"W3", "b3", "gamma2", "beta2"} & failed


# --------------------------------------------------------------------------- the Jacobian picture

def test_batchnorm_jacobians_block_diagonal_beside_the_diagonal(rng):
    from chainrule.explain import batchnorm_jacobians

    n, m = 3, 4
    report = batchnorm_jacobians(rng.standard_normal((n, m)), rng.standard_normal((n, 1)),
                                 rng.standard_normal((n, 1)), activation="tanh")
    for jac in report.jacobians:
        assert jac.analytic.shape == (n * m, n * m)
        assert jac.max_difference < 1e-6, jac.name
    blocks = np.kron(np.eye(n), np.ones((m, m))).astype(bool)
    J_bn, J_act = report["∂Z̃/∂Z"].analytic, report["∂A/∂Z̃"].analytic
    assert np.all(J_bn[blocks] != 0) and np.all(J_bn[~blocks] == 0)  # dense blocks, units apart
    assert np.count_nonzero(J_act - np.diag(np.diag(J_act))) == 0  # the activation: diagonal
    assert "the m examples of a unit coupled" in str(report)
    with pytest.raises(InputError, match="softmax couples"):
        batchnorm_jacobians(np.ones((2, 3)), activation="softmax")
    with pytest.raises(InputError, match="m = 1"):
        batchnorm_jacobians(np.ones((2, 1)))


def test_batchnorm_jacobians_plot_writes_a_png(rng, tmp_path):
    pytest.importorskip("matplotlib")
    from chainrule.explain import batchnorm_jacobians

    report = batchnorm_jacobians(rng.standard_normal((2, 4)))
    path = tmp_path / "bn.png"
    fig = report.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    titles = [ax.get_title() for ax in fig.axes]
    assert any("∂Z̃/∂Z" in t for t in titles) and any("∂A/∂Z̃" in t for t in titles)
