"""Batch norm in ``Network`` (issue 22): the model, its state, and training on every backend.

Oracles: the reference's batch-norm formulas (``reference.model_forward`` /
``model_backward``, ``update_running_statistics``), finite differences of the network's cost,
and PyTorch (``Linear(bias=False) -> BatchNorm1d(momentum=1-beta, eps) -> activation``, float64).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from chainrule import Network
from chainrule import reference as ref
from chainrule.backends import available_backends
from chainrule.errors import ChainruleError, InputError, NonFiniteError

from conftest import OPTIMIZER_CONFIGS, OPTIMIZER_IDS, TOLERANCES

BACKENDS = [b for b in ("numpy", "numba", "c") if b in available_backends()]


def _data(n_x=4, m=24, seed=0, dtype=np.float64, classes=1):
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n_x, m)) * 2 + 0.5).astype(dtype)
    if classes == 1:
        Y = (X[:1] + X[1:2] > 0.5).astype(dtype)
    else:
        Y = np.eye(classes, dtype=dtype)[:, rng.integers(0, classes, m)]
    return X, Y


# --------------------------------------------------------------------------- the model

def test_parameters_and_running_statistics_of_a_batch_norm_network():
    net = Network([4, 6, 5, 1], batch_norm=[True, False], backend="numpy", seed=3)
    assert list(net.parameters) == ["W1", "gamma1", "beta1", "W2", "b2", "W3", "b3"]
    assert np.all(net.parameters["gamma1"] == 1) and np.all(net.parameters["beta1"] == 0)
    assert net.parameters["gamma1"].shape == (6, 1)
    assert sorted(net.running_statistics) == ["running_mean1", "running_var1"]
    assert np.all(net.running_statistics["running_mean1"] == 0)
    assert np.all(net.running_statistics["running_var1"] == 1)
    # the W draws are those of the same network without batch norm
    plain = Network([4, 6, 5, 1], backend="numpy", seed=3)
    np.testing.assert_array_equal(net.parameters["W1"], plain.parameters["W1"])
    assert Network([4, 6, 5, 1], batch_norm=True).batch_norm == [True, True, False]
    assert "batch_norm=[True, False]" in repr(net)
    text = str(net.summary())
    assert "BN → relu" in text and "gamma, beta" in text
    assert "36" in text  # 6*4 + 2*6


@pytest.mark.parametrize("bad, words", [([True], "one bool per hidden layer"),
                                        ("yes", "bool"), ([1, 0], "one bool")])
def test_batch_norm_argument_is_checked(bad, words):
    with pytest.raises(InputError, match=words):
        Network([4, 6, 5, 1], batch_norm=bad)


@pytest.mark.parametrize("kwargs, words", [(dict(batch_norm_momentum=1.0), r"\[0, 1\)"),
                                           (dict(batch_norm_epsilon=0.0), "batch_norm_epsilon")])
def test_batch_norm_hyperparameters_are_checked(kwargs, words):
    with pytest.raises(InputError, match=words):
        Network([4, 6, 1], batch_norm=True, **kwargs)


def test_parameter_assignment_knows_the_batch_norm_layers():
    net = Network([4, 6, 1], batch_norm=True, backend="numpy")
    net.parameters["gamma1"] = np.full((6, 1), 2.0)
    assert np.all(net.parameters["gamma1"] == 2.0)
    with pytest.raises(ChainruleError, match="gamma1"):
        net.parameters["gamma1"] = np.ones((5, 1))
    with pytest.raises(InputError, match="missing"):
        net.parameters = {"W1": np.ones((6, 4)), "b1": np.zeros((6, 1)),
                          "W2": np.ones((1, 6)), "b2": np.zeros((1, 1))}


def test_forward_uses_running_statistics_unless_training():
    X, _ = _data()
    net = Network([4, 6, 5, 1], batch_norm=True, backend="numpy", seed=1)
    net.running_statistics = {"running_mean1": np.full((6, 1), 0.3),
                              "running_var1": np.full((6, 1), 2.0),
                              "running_mean2": np.full((5, 1), -0.1),
                              "running_var2": np.full((5, 1), 0.5)}
    params = dict(net.parameters)
    AL_eval, _ = net.forward(X)
    expect_eval, _ = ref.model_forward(X, params, net.activations, training=False,
                                       running=net.running_statistics)
    # the eval forward folds each batch norm into its W, b: equal within rounding
    np.testing.assert_allclose(AL_eval, expect_eval, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net.predict_proba(X), expect_eval, rtol=1e-12, atol=1e-14)
    AL_train, caches = net.forward(X, training=True)
    expect_train, _ = ref.model_forward(X, params, net.activations)
    np.testing.assert_allclose(AL_train, expect_train, rtol=0, atol=0)
    assert not np.allclose(AL_train, AL_eval)
    assert len(caches[0]) == 3 and len(caches[-1]) == 2
    with pytest.raises(InputError, match="at least 2 examples"):
        net.forward(X[:, :1], training=True)
    assert net.predict(X[:, :1]).shape == (1, 1)  # eval mode takes one example
    with pytest.raises(InputError, match="negative"):
        net.running_statistics = {**net.running_statistics,
                                  "running_var1": np.full((6, 1), -1.0)}


def _flat_cost(net, X, Y):
    keys = list(net.parameters)

    def J(theta):
        params, at = {}, 0
        for k in keys:
            P = net.parameters[k]
            params[k] = theta[at:at + P.size].reshape(P.shape)
            at += P.size
        AL, _ = ref.model_forward(X, params, net.activations, epsilon=net.batch_norm_epsilon)
        return ref.compute_cost(AL, Y, net.loss)

    theta = np.concatenate([net.parameters[k].ravel() for k in keys])
    return J, theta, keys


@pytest.mark.parametrize("convention", ["L", "J"])
@pytest.mark.parametrize("hidden, output, classes", [("relu", "sigmoid", 1),
                                                     ("tanh", "softmax", 3)])
def test_network_gradients_through_batch_norm_match_finite_differences(convention, hidden,
                                                                       output, classes):
    X, Y = _data(m=9, classes=classes, seed=4)
    net = Network([4, 5, 4, classes], hidden=hidden, output=output, batch_norm=[True, True],
                  backend="numpy", seed=2, batch_norm_epsilon=1e-3)
    rng = np.random.default_rng(0)
    net.parameters["gamma1"] = rng.uniform(0.5, 1.5, (5, 1))
    net.parameters["beta1"] = rng.standard_normal((5, 1)) * 0.3
    AL, caches = net.forward(X, training=True)
    grads = net.backward(AL, Y, caches, convention=convention)
    J, theta, keys = _flat_cost(net, X, Y)
    numeric = ref.central_difference(J, theta, 1e-6)
    analytic = np.concatenate([grads[f"d{k}"].ravel() for k in keys])
    # every dW, dgamma, dbeta carries the 1/m in both conventions (the derivative of J)
    assert ref.relative_difference(numeric, analytic) < 1e-7
    if convention == "L":  # the L/J identity: dZ, dA are m times J's
        grads_J = net.backward(AL, Y, caches, convention="J")
        m = X.shape[1]
        for key in ("dZ1", "dZ_tilde1", "dA1", "dZ2"):
            np.testing.assert_allclose(grads[key], m * grads_J[key], rtol=1e-12, atol=1e-14)


def test_backward_refuses_eval_mode_caches():
    X, Y = _data()
    net = Network([4, 6, 1], batch_norm=True, backend="numpy")
    AL, caches = net.forward(X)
    with pytest.raises(InputError, match="training=True"):
        net.backward(AL, Y, caches)


# --------------------------------------------------------------------------- state and files

def _trained(backend="numpy", **fit):
    X, Y = _data(m=30)
    net = Network([4, 6, 5, 1], batch_norm=True, backend=backend, seed=5)
    net.fit(X, Y, **{"epochs": 3, "mini_batch_size": 8, "optimizer": "adam", "progress": False,
                     "learning_rate": 0.01, **fit})
    return net, X, Y


def test_state_save_load_pickle_and_config_keep_batch_norm(tmp_path):
    net, X, Y = _trained()
    assert not np.all(net.running_statistics["running_var1"] == 1)
    state = net.get_state()
    assert {"bn/running_mean1", "bn/running_var2", "opt/v_dgamma1", "opt/s_dbeta2"} <= set(state)
    path = net.save(tmp_path / "bn.npz")
    for other in (Network.load(path), pickle.loads(pickle.dumps(net))):
        assert other.batch_norm == net.batch_norm
        for k in net.parameters:
            np.testing.assert_array_equal(other.parameters[k], net.parameters[k])
        for k in net.running_statistics:
            np.testing.assert_array_equal(other.running_statistics[k],
                                          net.running_statistics[k])
        np.testing.assert_array_equal(other.predict_proba(X), net.predict_proba(X))
    fresh = Network.from_config(net.get_config())
    assert fresh.batch_norm == net.batch_norm
    assert fresh.batch_norm_momentum == net.batch_norm_momentum
    fresh.set_state(state)
    np.testing.assert_array_equal(fresh.predict_proba(X), net.predict_proba(X))
    # a state without batch norm does not fit, and nothing changes
    before = fresh.get_state()
    with pytest.raises(InputError):
        fresh.set_state(Network([4, 6, 5, 1]).get_state())
    for k, v in fresh.get_state().items():
        np.testing.assert_array_equal(v, before[k])
    # a state whose running statistics are missing is refused
    with pytest.raises(InputError, match="running"):
        fresh.set_state({k: v for k, v in state.items() if k != "bn/running_var1"})


def test_old_configs_and_pickles_without_batch_norm_still_load():
    net = Network([3, 4, 1], backend="numpy")
    config = net.get_config()
    assert "batch_norm" not in config  # configs of networks without BN are unchanged
    state = net.__getstate__()
    for key in ("batch_norm", "batch_norm_momentum", "batch_norm_epsilon",
                "batch_norm_unbiased", "_running"):
        state.pop(key)
    old = Network.__new__(Network)
    old.__setstate__(state)
    assert old.batch_norm == [False, False] and old.running_statistics == {}
    X, Y = _data(n_x=3)
    old.fit(X, Y, epochs=2, progress=False)


def test_checkpoint_resume_is_exact(tmp_path):
    X, Y = _data(m=30)
    kw = dict(epochs=6, mini_batch_size=8, optimizer="adam", progress=False,
              learning_rate=0.01, keep_prob=0.8)
    whole = Network([4, 6, 5, 1], batch_norm=True, backend="numpy", seed=5).fit(X, Y, **kw)
    ckpt = tmp_path / "ckpt.npz"

    def crash(net, epoch, logs):
        if epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Network([4, 6, 5, 1], batch_norm=True, backend="numpy", seed=5).fit(
            X, Y, checkpoint=ckpt, callbacks=[crash], **kw)
    resumed = Network([4, 6, 5, 1], batch_norm=True, backend="numpy", seed=99)
    resumed.fit(X, Y, resume=ckpt, **kw)
    state = resumed.get_state()
    assert "bn/running_var1" in state
    for k, v in whole.get_state().items():
        if k != "train/signature":
            np.testing.assert_array_equal(state[k], v, err_msg=k)


def test_a_batch_of_one_is_refused_before_anything_changes():
    X, Y = _data(m=17)
    net = Network([4, 6, 1], batch_norm=True, backend="numpy")
    before = net.get_state()
    with pytest.raises(InputError, match="batch of one"):
        net.fit(X, Y, epochs=1, mini_batch_size=8, progress=False)
    with pytest.raises(InputError, match="batch of one"):
        net.fit(X, Y, epochs=1, mini_batch_size=1, progress=False)
    after = net.get_state()
    assert set(after) == set(before)
    for k, v in before.items():
        np.testing.assert_array_equal(after[k], v)


def test_step_updates_parameters_and_running_statistics_as_the_reference():
    X, Y = _data(m=12)
    net = Network([4, 6, 1], batch_norm=True, backend="numpy", seed=1)
    params, running = dict(net.parameters), dict(net.running_statistics)
    params = {k: v.copy() for k, v in params.items()}
    AL, caches = ref.model_forward(X, params, net.activations)
    grads = ref.model_backward(AL, Y, caches, net.activations, net.loss)
    expected = ref.update_parameters_with_gd(params, grads, 0.1)
    expected_running = ref.update_running_statistics(running, caches, 0.9)
    J = net.step(X, Y, 0.1)
    assert J == pytest.approx(ref.compute_cost(AL, Y, net.loss), rel=1e-14)
    for k in expected:
        np.testing.assert_allclose(net.parameters[k], expected[k], rtol=1e-13, atol=1e-15)
    for k in expected_running:
        np.testing.assert_allclose(net.running_statistics[k], expected_running[k],
                                   rtol=1e-13, atol=1e-15)


def test_a_nonfinite_step_changes_nothing():
    X, Y = _data(m=12)
    net = Network([4, 6, 1], batch_norm=True, backend="numpy", seed=1)
    net.parameters["gamma1"] = np.full((6, 1), 100.0)  # |dW2| well above 1
    before = net.get_state()
    with pytest.raises(NonFiniteError, match="update of"):
        net.step(X, Y, 1.7e308)
    for k, v in net.get_state().items():
        np.testing.assert_array_equal(v, before[k])


# --------------------------------------------------------------------------- every backend

def _fit_on(backend, dtype, optimizer, keep_prob, lambd, weighted, biased=False):
    X, Y = _data(m=23, dtype=dtype, seed=9)
    w = np.linspace(0.5, 2.0, X.shape[1]) if weighted else None
    net = Network([4, 6, 5, 1], batch_norm=[True, False], dtype=dtype, backend=backend,
                  seed=4, batch_norm_unbiased=not biased)
    net.fit(X, Y, epochs=3, mini_batch_size=7, optimizer=dict(optimizer), learning_rate=0.05,
            keep_prob=keep_prob, lambd=lambd, sample_weight=w, progress=False)
    return net


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("optimizer", OPTIMIZER_CONFIGS, ids=OPTIMIZER_IDS)
@pytest.mark.parametrize("keep_prob, lambd, weighted", [(1.0, 0.0, False), (0.8, 0.3, True)])
def test_fit_with_batch_norm_agrees_on_every_backend(dtype, optimizer, keep_prob, lambd,
                                                     weighted):
    nets = {b: _fit_on(b, dtype, optimizer, keep_prob, lambd, weighted) for b in BACKENDS}
    oracle = nets["numpy"]
    tol = TOLERANCES[np.dtype(dtype)]
    for backend, net in nets.items():
        state, expected = net.get_state(), oracle.get_state()
        assert set(state) == set(expected)
        for k, v in expected.items():
            if k.startswith("train/"):
                continue
            np.testing.assert_allclose(state[k], v, err_msg=f"{backend} {k}", **tol)
        np.testing.assert_allclose(net.history_["cost"], oracle.history_["cost"], **tol)


def test_fit_step_matches_the_reference_step_by_step():
    """Three full-batch steps of gradient descent by fit equal three reference steps (the
    running averages unbiased, then biased)."""
    X, Y = _data(m=16)
    for unbiased in (True, False):
        net = Network([4, 6, 5, 1], batch_norm=True, backend="numpy", seed=6,
                      batch_norm_unbiased=unbiased, batch_norm_momentum=0.7)
        params = {k: v.copy() for k, v in net.parameters.items()}
        running = {k: v.copy() for k, v in net.running_statistics.items()}
        for _ in range(3):
            AL, caches = ref.model_forward(X, params, net.activations)
            grads = ref.model_backward(AL, Y, caches, net.activations, net.loss, lambd=0.2)
            params = ref.update_parameters_with_gd(params, grads, 0.1)
            running = ref.update_running_statistics(running, caches, 0.7, unbiased)
        net.fit(X, Y, epochs=3, learning_rate=0.1, lambd=0.2, progress=False)
        for k in params:
            np.testing.assert_allclose(net.parameters[k], params[k], rtol=1e-12, atol=1e-14)
        for k in running:
            np.testing.assert_allclose(net.running_statistics[k], running[k], rtol=1e-12,
                                       atol=1e-14)


# --------------------------------------------------------------------------- PyTorch

@pytest.mark.parametrize("optimizer, lr", [("gd", 0.5), ("adam", 0.01)])
def test_network_with_batch_norm_matches_pytorch(optimizer, lr):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.set_num_threads(1)
    rng = np.random.default_rng(7)
    dims, beta, eps = [5, 8, 6, 1], 0.8, 1e-3
    X = rng.standard_normal((dims[0], 64)) * 3 + 1
    Y = (rng.random((1, 64)) > 0.5).astype(float)
    net = Network(dims, hidden="tanh", output="sigmoid", batch_norm=True, backend="numpy",
                  seed=3, batch_norm_momentum=beta, batch_norm_epsilon=eps)
    net.parameters["b3"] = rng.standard_normal((1, 1)) * 0.1
    start = {k: v.copy() for k, v in net.parameters.items()}

    layers = []
    for l in (1, 2):
        linear = nn.Linear(dims[l - 1], dims[l], bias=False, dtype=torch.float64)
        bn = nn.BatchNorm1d(dims[l], eps=eps, momentum=1 - beta, dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(start[f"W{l}"]))
        layers += [linear, bn, nn.Tanh()]
    out = nn.Linear(dims[2], dims[3], dtype=torch.float64)
    with torch.no_grad():
        out.weight.copy_(torch.from_numpy(start["W3"]))
        out.bias.copy_(torch.from_numpy(start["b3"][:, 0]))
    model = nn.Sequential(*layers, out)
    opt = (torch.optim.SGD(model.parameters(), lr=lr) if optimizer == "gd"
           else torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8))
    loss_fn = nn.BCEWithLogitsLoss()
    Xt, Yt = torch.from_numpy(X.T.copy()), torch.from_numpy(Y.T.copy())
    model.train()
    for t in range(20):  # 5 epochs of 4 batches of 16, in order
        at = (t * 16) % 64
        opt.zero_grad()
        loss_fn(model(Xt[at:at + 16]), Yt[at:at + 16]).backward()
        opt.step()

    net.fit(X, Y, epochs=5, mini_batch_size=16, shuffle=False, optimizer=optimizer,
            learning_rate=lr, progress=False)
    assert net.steps_trained_ == 20
    tol = dict(rtol=0, atol=1e-10)
    for l in (1, 2):
        linear, bn = layers[3 * (l - 1)], layers[3 * (l - 1) + 1]
        np.testing.assert_allclose(net.parameters[f"W{l}"], linear.weight.detach().numpy(),
                                   **tol)
        np.testing.assert_allclose(net.parameters[f"gamma{l}"][:, 0],
                                   bn.weight.detach().numpy(), **tol)
        np.testing.assert_allclose(net.parameters[f"beta{l}"][:, 0],
                                   bn.bias.detach().numpy(), **tol)
        np.testing.assert_allclose(net.running_statistics[f"running_mean{l}"][:, 0],
                                   bn.running_mean.numpy(), **tol)
        np.testing.assert_allclose(net.running_statistics[f"running_var{l}"][:, 0],
                                   bn.running_var.numpy(), **tol)
    np.testing.assert_allclose(net.parameters["W3"], out.weight.detach().numpy(), **tol)
    assert np.max(np.abs(net.parameters["W1"] - start["W1"])) > 1e-3
    X_new = rng.standard_normal((dims[0], 10)) * 3 + 1
    model.eval()
    with torch.no_grad():
        expected = torch.sigmoid(model(torch.from_numpy(X_new.T.copy()))).numpy().T
    np.testing.assert_allclose(net.predict_proba(X_new), expected, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- around it

def test_gradient_check_runs_through_batch_norm_layers():
    from chainrule.explain import gradient_check

    X, Y = _data(m=10)
    net = Network([4, 5, 3, 1], batch_norm=True, backend="numpy", seed=2,
                  batch_norm_epsilon=1e-2)
    net.parameters["gamma2"] = np.linspace(0.5, 1.5, 3).reshape(3, 1)
    report = gradient_check(net, X, Y)
    assert report.passed, str(report)


def test_sklearn_estimators_take_batch_norm():
    from chainrule.sklearn import NetworkClassifier, NetworkRegressor

    X, Y = _data(m=40)
    clf = NetworkClassifier(hidden_layer_sizes=(6, 4), batch_norm=True, max_iter=3,
                            mini_batch_size=10, random_state=0, backend="numpy")
    clf.fit(X.T, Y[0])
    assert clf.network_.batch_norm == [True, True, False]
    assert clf.predict(X.T).shape == (40,)
    reg = NetworkRegressor(hidden_layer_sizes=(6, 4), batch_norm=[False, True], max_iter=2,
                           mini_batch_size=10, random_state=0, backend="numpy")
    reg.fit(X.T, X[0] * 2)
    assert reg.network_.batch_norm == [False, True, False]
    reg.set_params(batch_norm=True, warm_start=True)
    with pytest.raises(ValueError, match="batch_norm"):
        reg.fit(X.T, X[0] * 2)
    with pytest.raises(InputError, match="one bool per hidden layer"):
        NetworkClassifier(hidden_layer_sizes=(6,), batch_norm=[True, True]).fit(X.T, Y[0])


def test_cli_train_with_batch_norm(tmp_path, capsys):
    from chainrule.cli import main

    ckpt = tmp_path / "bn.npz"
    rc = main(["train", "--dataset", "moons", "--layers", "2,8,1", "--optimizer", "adam",
               "--lr", "0.02", "--mini-batch-size", "32", "--epochs", "20", "--batch-norm",
               "--batch-norm-momentum", "0.8", "--backend", "numpy", "--no-progress",
               "--checkpoint", str(ckpt)])
    out = capsys.readouterr().out
    assert rc == 0 and "batch_norm=[True]" in out
    net = Network.load(ckpt)
    assert net.batch_norm == [True, False] and net.batch_norm_momentum == 0.8
    assert not np.all(net.running_statistics["running_var1"] == 1)


# --------------------------------------------------------------------------- interop

def _bn_net_trained():
    X, Y = _data(m=32, classes=3)
    net = Network([4, 6, 5, 3], output="softmax", batch_norm=[True, False], backend="numpy",
                  seed=8, batch_norm_momentum=0.8, batch_norm_epsilon=1e-3)
    net.fit(X, Y, epochs=4, mini_batch_size=8, optimizer="adam", learning_rate=0.02,
            progress=False)
    return net, X


def test_state_dict_has_batchnorm1d_keys():
    net, _ = _bn_net_trained()
    sd = net.state_dict()
    assert sorted(sd) == ["0.weight", "1.bias", "1.num_batches_tracked", "1.running_mean",
                          "1.running_var", "1.weight", "3.bias", "3.weight", "5.bias",
                          "5.weight"]
    np.testing.assert_array_equal(sd["1.weight"], net.parameters["gamma1"][:, 0])
    np.testing.assert_array_equal(sd["1.running_var"],
                                  net.running_statistics["running_var1"][:, 0])
    assert int(sd["1.num_batches_tracked"]) == net.steps_trained_ == 16
    back = Network.from_state_dict(sd, ["relu", "relu", "softmax"], batch_norm_epsilon=1e-3,
                                   batch_norm_momentum=0.8)
    assert back.batch_norm == net.batch_norm
    X = _data(m=7)[0]
    np.testing.assert_allclose(back.predict_proba(X), net.predict_proba(X), rtol=0,
                               atol=1e-15)
    biased = Network([4, 6, 1], batch_norm=True, batch_norm_unbiased=False)
    with pytest.raises(InputError, match="biased"):
        biased.state_dict()


def test_to_torch_and_from_torch_keep_batch_norm():
    torch = pytest.importorskip("torch")
    net, _ = _bn_net_trained()
    X = _data(m=9)[0]
    seq = net.to_torch()
    kinds = [type(mod).__name__ for mod in seq]
    assert kinds[:3] == ["Linear", "BatchNorm1d", "ReLU"] and seq[0].bias is None
    assert seq[1].momentum == pytest.approx(0.2) and seq[1].eps == 1e-3
    with torch.no_grad():
        out = seq(torch.from_numpy(X.T.copy())).numpy().T
    np.testing.assert_allclose(out, net.predict_proba(X), rtol=0, atol=1e-12)
    # a PyTorch model with a biased Linear before its BatchNorm1d: the bias moves into the
    # running mean, and eval predictions agree
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6, dtype=torch.float64),
                          nn.BatchNorm1d(6, momentum=0.3, eps=1e-4, dtype=torch.float64),
                          nn.Tanh(), nn.Linear(6, 1, dtype=torch.float64), nn.Sigmoid())
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 4, dtype=torch.float64) * 2 + 1)
    model.eval()
    back = Network.from_torch(model)
    assert back.batch_norm == [True, False]
    assert back.batch_norm_momentum == pytest.approx(0.7) and back.batch_norm_epsilon == 1e-4
    with torch.no_grad():
        expected = model(torch.from_numpy(X.T.copy())).numpy().T
    np.testing.assert_allclose(back.predict_proba(X), expected, rtol=0, atol=1e-12)
    with pytest.raises(InputError, match="must follow a Linear"):
        Network.from_torch(nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.BatchNorm1d(6),
                                         nn.Linear(6, 1)))


def test_to_onnx_folds_batch_norm_into_the_gemm(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    net, _ = _bn_net_trained()
    X = _data(m=9)[0]
    path = net.to_onnx(tmp_path / "bn.onnx", dtype="float64")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"X": X.T.copy()})[0].T
    np.testing.assert_allclose(out, net.predict_proba(X), rtol=0, atol=1e-12)


def test_sklearn_and_keras_exports_refuse_batch_norm_by_name():
    net = Network([4, 6, 1], batch_norm=True)
    with pytest.raises(InputError, match="batch norm"):
        net.to_sklearn()
    with pytest.raises(InputError, match="batch norm"):
        net.keras_weights()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_a_refused_fit_step_changes_nothing(backend, optimizer):
    X, Y = _data(m=12)
    net = Network([4, 6, 1], batch_norm=True, backend=backend, seed=1)
    net.parameters["gamma1"] = np.full((6, 1), 100.0)
    net.fit(X, Y, epochs=1, learning_rate=1e-3, optimizer=optimizer, progress=False)
    before = {k: v for k, v in net.get_state().items() if not k.startswith("train/")}
    # gd: the update of W2 overflows; Adam (a step of about lr per entry): beta1 near the
    # dtype's max makes the forward overflow (the cost)
    if optimizer == "adam":
        net.parameters["beta1"] = np.full((6, 1), 1e308)
    before = {k: v for k, v in net.get_state().items() if not k.startswith("train/")}
    with pytest.raises(NonFiniteError):
        net.fit(X, Y, epochs=1, learning_rate=1.7e308, optimizer=optimizer, progress=False,
                continue_training=True)
    after = net.get_state()
    for k, v in before.items():
        np.testing.assert_array_equal(after[k], v, err_msg=k)


@pytest.mark.parametrize("compiled", [b for b in BACKENDS if b != "numpy"])
def test_compiled_engines_run_batch_norm_and_hand_over_what_they_cannot_prove(monkeypatch,
                                                                              compiled):
    from chainrule.backends import engine

    calls = []
    real = engine.fit_epochs

    def counting(*args, **kwargs):
        calls.append(kwargs.get("n_steps"))
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "fit_epochs", counting)
    X, Y = _data(m=40, dtype=np.float32)
    net = Network([4, 6, 5, 1], batch_norm=True, backend=compiled, dtype="float32", seed=2)
    net.fit(X, Y, epochs=2, mini_batch_size=10, optimizer="adam", progress=False)
    assert calls == []  # every step compiled
    # float32 and an lr whose bound passes the dtype's max: the compiled loop cannot prove
    # the step finite and hands it over; the composition applies or refuses it, as numpy's
    nets = {}
    for backend in ("numpy", compiled):
        calls.clear()
        nets[backend] = Network([4, 6, 5, 1], batch_norm=True, backend=backend,
                                dtype="float32", seed=2)
        with pytest.warns(Warning):  # it diverges, on purpose
            nets[backend].fit(X, Y, epochs=2, mini_batch_size=10, learning_rate=3e37,
                              progress=False, on_nonfinite="skip")
    assert calls and all(n == 1 for n in calls)  # the compiled one's: single steps handed over
    a, b = nets["numpy"].get_state(), nets[compiled].get_state()
    for k, v in a.items():
        np.testing.assert_allclose(b[k], v, err_msg=k, equal_nan=True,
                                   **TOLERANCES[np.dtype(np.float32)])
    assert nets["numpy"].history_["skipped"] == nets[compiled].history_["skipped"]


def test_eval_forward_folds_batch_norm_on_dense_and_sparse_x():
    sparse = pytest.importorskip("scipy.sparse")
    net, _ = _bn_net_trained()
    X = _data(m=30)[0]
    X[np.abs(X) < 1] = 0
    expect, _ = ref.model_forward(X, dict(net.parameters), net.activations, training=False,
                                  running=net.running_statistics, epsilon=1e-3)
    np.testing.assert_allclose(net.predict_proba(X), expect, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(net.predict_proba(sparse.csc_matrix(X)), expect, rtol=1e-12,
                               atol=1e-14)
    assert net.score(X, expect) == net.score(sparse.csr_matrix(X), expect)


@pytest.mark.parametrize("backend", ["numpy", "numba", "c"])
def test_restore_best_restores_that_epochs_running_statistics(backend, tmp_path):
    """Early stopping's restore_best gives back the best epoch's parameters and its running
    averages (a model of one epoch's W, gamma, beta and another's statistics predicts
    neither); a checkpoint written at the end keeps them."""
    if backend not in available_backends():
        pytest.skip(f"{backend} unavailable")
    X, Y = _data(m=120, seed=3)
    Xv, Yv = _data(m=60, seed=4)
    seen = {}

    def record(net, epoch, logs):
        seen[epoch] = ({k: v.copy() for k, v in net.parameters.items()},
                       {k: v.copy() for k, v in net.running_statistics.items()})

    net = Network([4, 6, 5, 1], batch_norm=True, seed=0, backend=backend)
    net.fit(X, Y, epochs=60, learning_rate=0.5, optimizer="adam", mini_batch_size=30,
            validation_data=(Xv, Yv), early_stopping=True, patience=3, restore_best=True,
            callbacks=[record], checkpoint=str(tmp_path / "c.npz"), progress=False)
    best = net.train_state_.best_epoch
    assert net.stop_reason_ == "early_stopping" and best < max(seen)
    params, running = seen[best]
    for key, value in params.items():
        np.testing.assert_array_equal(net.parameters[key], value, err_msg=key)
    for key, value in running.items():
        np.testing.assert_array_equal(net.running_statistics[key], value, err_msg=key)
        assert not np.array_equal(seen[max(seen)][1][key], value)  # not vacuous
    again = Network.load(str(tmp_path / "c.npz"))
    for key, value in running.items():
        np.testing.assert_array_equal(again.running_statistics[key], value, err_msg=key)
        np.testing.assert_array_equal(again.train_state_.best_running[key], value, err_msg=key)
