"""Network.fit against plain NumPy versions of the course's formulas, written here.

The course code below (``course_*``) is independent of chainrule: a 2-layer network
(ReLU hidden layer, sigmoid output), ``random_mini_batches``, the optimisers of
"Optimization methods", L2 and inverted dropout of "Regularization", the schedules of the
learning-rate-decay exercise. Network.fit must reproduce it on seeded inputs.
"""

import math

import numpy as np
import pytest

from chainrule import Network, available_backends, optim
from chainrule.backends.registry import BACKENDS

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-4, atol=1e-6)}

BACKEND_PARAMS = [pytest.param(b, marks=pytest.mark.skipif(
    b not in available_backends(), reason=f"backend {b} not available")) for b in BACKENDS]


# --------------------------------------------------------------------------- the course, plainly

def course_forward(X, p, masks=None):
    Z1 = p["W1"] @ X + p["b1"]
    A1 = np.maximum(0, Z1)
    if masks is not None:
        D1, keep_prob = masks
        A1 = A1 * D1
        A1 = A1 / keep_prob
    Z2 = p["W2"] @ A1 + p["b2"]
    A2 = 1 / (1 + np.exp(-Z2))
    return Z1, A1, Z2, A2


def course_cost(A2, Y, p, lambd):
    m = Y.shape[1]
    cross_entropy = -np.sum(Y * np.log(A2) + (1 - Y) * np.log(1 - A2)) / m
    L2 = lambd / (2 * m) * (np.sum(np.square(p["W1"])) + np.sum(np.square(p["W2"])))
    return cross_entropy + L2


def course_backward(X, Y, p, cache, lambd, masks=None):
    m = X.shape[1]
    Z1, A1, Z2, A2 = cache
    dZ2 = A2 - Y
    dW2 = 1 / m * dZ2 @ A1.T + lambd / m * p["W2"]
    db2 = 1 / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = p["W2"].T @ dZ2
    if masks is not None:
        D1, keep_prob = masks
        dA1 = dA1 * D1
        dA1 = dA1 / keep_prob
    dZ1 = dA1 * (Z1 > 0)
    dW1 = 1 / m * dZ1 @ X.T + lambd / m * p["W1"]
    db1 = 1 / m * np.sum(dZ1, axis=1, keepdims=True)
    return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}


def course_random_mini_batches(X, Y, mini_batch_size, seed):
    np.random.seed(seed)
    m = X.shape[1]
    permutation = list(np.random.permutation(m))
    shuffled_X = X[:, permutation]
    shuffled_Y = Y[:, permutation]
    batches = []
    num_complete = math.floor(m / mini_batch_size)
    for k in range(num_complete):
        batches.append((shuffled_X[:, k * mini_batch_size:(k + 1) * mini_batch_size],
                        shuffled_Y[:, k * mini_batch_size:(k + 1) * mini_batch_size]))
    if m % mini_batch_size != 0:
        batches.append((shuffled_X[:, num_complete * mini_batch_size:],
                        shuffled_Y[:, num_complete * mini_batch_size:]))
    return batches


def course_update(p, grads, state, optimizer, lr, t, beta=0.9, beta1=0.9, beta2=0.999,
                  epsilon=1e-8, eps_inside=False):
    for key in ("W1", "b1", "W2", "b2"):
        g = grads["d" + key]
        if optimizer == "gd":
            p[key] = p[key] - lr * g
        elif optimizer == "momentum":
            state["v" + key] = beta * state["v" + key] + (1 - beta) * g
            p[key] = p[key] - lr * state["v" + key]
        elif optimizer == "rmsprop":
            state["s" + key] = beta * state["s" + key] + (1 - beta) * g ** 2
            denom = np.sqrt(state["s" + key] + epsilon) if eps_inside else \
                np.sqrt(state["s" + key]) + epsilon
            p[key] = p[key] - lr * g / denom
        elif optimizer == "adam":
            state["v" + key] = beta1 * state["v" + key] + (1 - beta1) * g
            v_corrected = state["v" + key] / (1 - beta1 ** t)
            state["s" + key] = beta2 * state["s" + key] + (1 - beta2) * np.power(g, 2)
            s_corrected = state["s" + key] / (1 - beta2 ** t)
            denom = np.sqrt(s_corrected + epsilon) if eps_inside else \
                np.sqrt(s_corrected) + epsilon
            p[key] = p[key] - lr * v_corrected / denom


def course_model(X, Y, p, optimizer, learning_rate, num_epochs, mini_batch_size, seed,
                 decay=None, decay_rate=1.0, lambd=0.0, **hyper):
    """The course's ``model`` of "Optimization methods" (plus L2), on a copy of ``p``."""
    p = {k: v.copy() for k, v in p.items()}
    state = {k: np.zeros_like(v) for key, v in p.items() for k in ("v" + key, "s" + key)}
    t = 0
    learning_rate0 = learning_rate
    costs = []
    m = X.shape[1]
    saved = np.random.get_state()
    try:
        for i in range(num_epochs):
            seed = seed + 1
            cost_total = 0
            for mb_X, mb_Y in course_random_mini_batches(X, Y, mini_batch_size, seed):
                cache = course_forward(mb_X, p)
                cost_total += course_cost(cache[3], mb_Y, p, lambd) * mb_X.shape[1]
                grads = course_backward(mb_X, mb_Y, p, cache, lambd)
                t = t + 1
                course_update(p, grads, state, optimizer, learning_rate, t, **hyper)
            costs.append(cost_total / m)
            if decay:
                learning_rate = decay(learning_rate0, i, decay_rate)
    finally:
        np.random.set_state(saved)
    return p, costs, state, t


def course_update_lr(learning_rate0, epoch_num, decay_rate):
    return learning_rate0 / (1 + decay_rate * epoch_num)


def course_schedule_lr_decay(learning_rate0, epoch_num, decay_rate, time_interval=1000):
    return learning_rate0 / (1 + decay_rate * np.floor(epoch_num / time_interval))


# --------------------------------------------------------------------------- fixtures

def moons(m=150, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, m)
    label = rng.integers(0, 2, m)
    X = np.vstack([np.cos(t) + label, np.sin(t) * (1 - 2 * label) + 0.5 * label])
    X += rng.normal(scale=0.15, size=X.shape)
    return X, label.reshape(1, -1).astype(np.float64)


def net_2layer(seed=0, backend="numpy", dtype="float64", n_h=5):
    return Network([2, n_h, 1], hidden="relu", output="sigmoid", seed=seed, backend=backend,
                   dtype=dtype)


def assert_params_close(actual, expected, dtype=np.float64):
    for key in ("W1", "b1", "W2", "b2"):
        np.testing.assert_allclose(actual[key], expected[key], **TOL[dtype], err_msg=key)


# --------------------------------------------------------------------------- optimisers

OPTIMISER_CASES = [
    ("gd", {}, {}),
    ("momentum", {"beta": 0.9}, {"beta": 0.9}),
    ("momentum", {"beta": 0.5}, {"beta": 0.5}),
    ("rmsprop", {"beta": 0.9}, {"beta": 0.9}),
    ("rmsprop", {"beta": 0.99, "eps_inside_sqrt": True}, {"beta": 0.99, "eps_inside": True}),
    ("adam", {}, {}),
    ("adam", {"eps_inside_sqrt": True, "epsilon": 1e-4}, {"eps_inside": True, "epsilon": 1e-4}),
    ("adam", {"beta1": 0.8, "beta2": 0.99}, {"beta1": 0.8, "beta2": 0.99}),
]


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("name, ours, theirs", OPTIMISER_CASES)
def test_fit_optimiser_matches_course_model(name, ours, theirs, backend):
    X, Y = moons()
    net = net_2layer(seed=1, backend=backend)
    p0 = {k: v.copy() for k, v in net.parameters.items()}
    expected, costs, state, t = course_model(X, Y, p0, name, 0.01, 7, 32, seed=10, **theirs)
    net.fit(X, Y, epochs=7, learning_rate=0.01, optimizer=optim.make_optimizer(name, **ours),
            mini_batch_size=32, shuffle_seed=10, progress=False)
    assert_params_close(net.parameters, expected)
    np.testing.assert_allclose(net.history_["cost"], costs, **TOL[np.float64])
    assert net.history_["epoch"] == list(range(7))
    saved = net.get_state()
    for key in ("W1", "b1", "W2", "b2"):
        if name in ("momentum", "adam"):
            np.testing.assert_allclose(saved[f"opt/v_d{key}"], state["v" + key],
                                       **TOL[np.float64])
        if name in ("rmsprop", "adam"):
            np.testing.assert_allclose(saved[f"opt/s_d{key}"], state["s" + key],
                                       **TOL[np.float64])
    if name == "adam":
        assert int(saved["opt/t"]) == t == 7 * 5  # 150 examples: 4 batches of 32 and one of 22


def test_minibatches_are_the_courses_random_mini_batches():
    X, Y = moons(m=70)
    from chainrule.training import batches as _training

    perm = _training.permutation(70, 3, None, True, 10)  # epoch 3: the course's seed 10 + 4
    idx = _training.batches(70, 16, perm)
    course = course_random_mini_batches(X, Y, 16, 14)
    assert [len(i) for i in idx] == [16, 16, 16, 16, 6]
    for i, (cX, cY) in zip(idx, course):
        np.testing.assert_array_equal(X[:, i], cX)
        np.testing.assert_array_equal(Y[:, i], cY)


def test_minibatches_from_the_model_generator_reshuffle_every_epoch():
    X, Y = moons(m=64)
    net = net_2layer()
    rng = np.random.default_rng()
    rng.bit_generator.state = net.rng.bit_generator.state
    seen = []

    class Spy:
        def on_epoch_end(self, n, epoch, logs):
            seen.append(n.rng.bit_generator.state["state"]["state"])

    net.fit(X, Y, epochs=3, learning_rate=0.1, mini_batch_size=16, progress=False,
            callbacks=[Spy()])
    perms = [rng.permutation(64) for _ in range(3)]
    assert not np.array_equal(perms[0], perms[1])
    assert seen[-1] == rng.bit_generator.state["state"]["state"]


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_fit_plain_full_batch_gd_matches_course_loop(backend):
    X, Y = moons()
    net = net_2layer(seed=2, backend=backend)
    p = {k: v.copy() for k, v in net.parameters.items()}
    costs = []
    for i in range(300):
        cache = course_forward(X, p)
        costs.append(course_cost(cache[3], Y, p, 0.0))
        grads = course_backward(X, Y, p, cache, 0.0)
        course_update(p, grads, {}, "gd", 0.5, i + 1)
    costs.append(course_cost(course_forward(X, p)[3], Y, p, 0.0))  # the trained model's
    net.fit(X, Y, epochs=300, learning_rate=0.5, cost_every=100, progress=False)
    assert_params_close(net.parameters, p)
    # Record e: the parameters after e steps (the course's "Cost after iteration e"), and
    # the trained model at the end.
    assert net.history_["epoch"] == [0, 100, 200, 300]
    np.testing.assert_allclose(net.history_["cost"], [costs[i] for i in (0, 100, 200, 300)],
                               **TOL[np.float64])


# --------------------------------------------------------------------------- schedules

def test_inverse_time_decay_matches_course_update_lr():
    for epoch in (0, 1, 7, 1000):
        assert optim.inverse_time_decay(0.5, epoch, 0.3) == pytest.approx(
            course_update_lr(0.5, epoch, 0.3), rel=1e-15)


def test_scheduled_decay_matches_course_schedule_lr_decay():
    for epoch in (0, 999, 1000, 2500):
        assert optim.scheduled_decay(0.5, epoch, 0.3, 1000) == pytest.approx(
            course_schedule_lr_decay(0.5, epoch, 0.3, 1000), rel=1e-15)


@pytest.mark.parametrize("interval", [None, 2])
def test_fit_with_decay_matches_course_model(interval):
    X, Y = moons()
    net = net_2layer(seed=3)
    p0 = {k: v.copy() for k, v in net.parameters.items()}
    if interval is None:
        decay = course_update_lr
    else:
        def decay(lr0, epoch, rate):
            return course_schedule_lr_decay(lr0, epoch, rate, time_interval=interval)
    expected, costs, _, _ = course_model(X, Y, p0, "gd", 0.3, 6, 64, seed=10, decay=decay,
                                         decay_rate=0.7)
    net.fit(X, Y, epochs=6, learning_rate=0.3, mini_batch_size=64, shuffle_seed=10,
            decay_rate=0.7, decay_interval=interval, progress=False)
    assert_params_close(net.parameters, expected)
    np.testing.assert_allclose(net.history_["cost"], costs, **TOL[np.float64])
    lrs = [0.3] + [decay(0.3, i, 0.7) for i in range(5)]
    np.testing.assert_allclose(net.history_["lr"], lrs, rtol=1e-15)


# --------------------------------------------------------------------------- L2 and dropout

@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("optimizer", ["adam", "gd"])
def test_fit_with_l2_matches_course_regularisation(optimizer, backend):
    X, Y = moons()
    net = net_2layer(seed=4, backend=backend)
    p0 = {k: v.copy() for k, v in net.parameters.items()}
    expected, costs, _, _ = course_model(X, Y, p0, optimizer, 0.01, 5, 50, seed=3, lambd=0.7)
    net.fit(X, Y, epochs=5, learning_rate=0.01, optimizer=optimizer, mini_batch_size=50,
            shuffle_seed=3, lambd=0.7, progress=False)
    assert_params_close(net.parameters, expected)
    np.testing.assert_allclose(net.history_["cost"], costs, **TOL[np.float64])


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_backward_with_l2_passes_gradient_check(backend):
    X, Y = moons(m=20)
    net = Network([2, 4, 3, 1], hidden="tanh", output="sigmoid", seed=5, backend=backend)
    lambd = 0.9
    ops = net._ops
    Ws, bs = net.layer_arrays()

    def J(theta_params):
        A = X
        for l in range(1, 4):
            Z = theta_params[f"W{l}"] @ A + theta_params[f"b{l}"]
            A = np.tanh(Z) if l < 3 else 1 / (1 + np.exp(-Z))
        m = X.shape[1]
        ce = -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / m
        return ce + lambd / (2 * m) * sum(np.sum(theta_params[f"W{l}"] ** 2) for l in (1, 2, 3))

    Zs, As = ops.forward(X, Ws, bs, net.activations)
    _, dWs, dbs, _ = ops.backward(Y, Zs, As, Ws, net.activations, net.loss, "L", lambd, None,
                                  False)
    params = dict(net.parameters)
    grad, approx = [], []
    for l in range(1, 4):
        for key, g in ((f"W{l}", dWs[l - 1]), (f"b{l}", dbs[l - 1])):
            for idx in np.ndindex(*params[key].shape):
                plus = {k: v.copy() for k, v in params.items()}
                minus = {k: v.copy() for k, v in params.items()}
                plus[key][idx] += 1e-7
                minus[key][idx] -= 1e-7
                approx.append((J(plus) - J(minus)) / 2e-7)
                grad.append(g[idx])
    grad, approx = np.array(grad), np.array(approx)
    difference = np.linalg.norm(grad - approx) / (np.linalg.norm(grad) + np.linalg.norm(approx))
    assert difference < 1e-7


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_fit_with_dropout_matches_course_dropout(backend):
    X, Y = moons(m=40)
    net = net_2layer(seed=6, n_h=7, backend=backend)
    p = {k: v.copy() for k, v in net.parameters.items()}
    rng = np.random.default_rng()
    rng.bit_generator.state = net.rng.bit_generator.state  # masks come from the model's generator
    keep_prob = 0.8
    for _ in range(5):
        D1 = rng.random((7, 40)) < keep_prob
        cache = course_forward(X, p, (D1, keep_prob))
        grads = course_backward(X, Y, p, cache, 0.0, (D1, keep_prob))
        course_update(p, grads, {}, "gd", 0.3, 1)
    net.fit(X, Y, epochs=5, learning_rate=0.3, keep_prob=keep_prob, progress=False,
            dropout_rng="generator")
    assert_params_close(net.parameters, p)


def test_dropout_is_off_at_prediction():
    X, Y = moons(m=40)
    net = net_2layer(seed=6)
    net.fit(X, Y, epochs=3, learning_rate=0.1, keep_prob=0.5, progress=False)
    first = net.predict_proba(X)
    np.testing.assert_array_equal(first, net.predict_proba(X))
    np.testing.assert_allclose(first, course_forward(X, net.parameters)[3], **TOL[np.float64])


def test_dropout_keep_prob_per_hidden_layer_validated():
    X, Y = moons(m=40)
    net = Network([2, 4, 4, 1], seed=0, backend="numpy")
    net.fit(X, Y, epochs=2, learning_rate=0.1, keep_prob=[0.5, 1.0], progress=False)
    with pytest.raises(ValueError, match="one per hidden layer"):
        net.fit(X, Y, epochs=1, keep_prob=[0.5], progress=False)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        net.fit(X, Y, epochs=1, keep_prob=0.0, progress=False)


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_training_features_agree_across_backends(backend, dtype):
    """Same seed, same masks, same batches: every backend ends where NumPy does."""
    X, Y = moons(m=90)
    kw = dict(epochs=4, learning_rate=0.01, optimizer="adam", mini_batch_size=32, lambd=0.3,
              keep_prob=0.7, sample_weight=np.linspace(0.5, 1.5, 90), progress=False)
    expected = Network([2, 6, 5, 1], seed=8, backend="numpy", dtype=dtype).fit(X, Y, **kw)
    actual = Network([2, 6, 5, 1], seed=8, backend=backend, dtype=dtype).fit(X, Y, **kw)
    for key, value in expected.parameters.items():
        assert actual.parameters[key].dtype == dtype
        np.testing.assert_allclose(actual.parameters[key], value, **TOL[dtype], err_msg=key)
    np.testing.assert_array_equal(actual.rng.bit_generator.state["state"]["state"],
                                  expected.rng.bit_generator.state["state"]["state"])


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_dropout_masks_identical_across_backends(backend, monkeypatch):
    from chainrule.training import loop as _training

    drawn = {}
    original = _training.dropout_masks

    def recording(name):
        def masks(*args):
            out = original(*args)
            drawn.setdefault(name, []).append([None if D is None else D.copy() for D in out])
            return out
        return masks

    X, Y = moons(m=50)
    for name in ("numpy", backend):
        drawn[name] = []
        monkeypatch.setattr(_training, "dropout_masks", recording(name))
        Network([2, 6, 5, 1], seed=13, backend=name).fit(
            X, Y, epochs=3, learning_rate=0.05, optimizer="momentum", mini_batch_size=20,
            keep_prob=[0.6, 0.9], progress=False, dropout_rng="generator")
    assert len(drawn[backend]) == 3 * 3  # 50 examples: batches of 20, 20, 10
    for expected, actual in zip(drawn["numpy"], drawn[backend]):
        assert expected[0] is None and expected[-1] is None
        for D_expected, D_actual in zip(expected[1:-1], actual[1:-1]):
            np.testing.assert_array_equal(D_actual, D_expected)
            assert set(np.unique(D_expected)) <= {0.0, 1 / 0.6, 1 / 0.9}


# --------------------------------------------------------------------------- weights

def test_integer_sample_weights_equal_repeated_examples():
    X, Y = moons(m=30)
    counts = np.random.default_rng(0).integers(1, 4, 30)
    weighted = net_2layer(seed=9).fit(X, Y, epochs=20, learning_rate=0.5, progress=False,
                                      sample_weight=counts, lambd=0.2)
    repeated = net_2layer(seed=9).fit(np.repeat(X, counts, axis=1), np.repeat(Y, counts, axis=1),
                                      epochs=20, learning_rate=0.5, progress=False, lambd=0.2)
    assert_params_close(weighted.parameters, repeated.parameters)
    np.testing.assert_allclose(weighted.history_["cost"], repeated.history_["cost"],
                               **TOL[np.float64])


def test_class_weight_matches_weighted_course_gradient():
    X, Y = moons(m=30)
    net = net_2layer(seed=10)
    p = {k: v.copy() for k, v in net.parameters.items()}
    w = np.where(Y[0] == 1, 3.0, 0.5)
    cache = course_forward(X, p)
    Z1, A1, Z2, A2 = cache
    dZ2 = (A2 - Y) * w
    dW2 = dZ2 @ A1.T / w.sum()
    db2 = dZ2.sum(axis=1, keepdims=True) / w.sum()
    dZ1 = (p["W2"].T @ dZ2) * (Z1 > 0)
    dW1 = dZ1 @ X.T / w.sum()
    db1 = dZ1.sum(axis=1, keepdims=True) / w.sum()
    expected = {"W1": p["W1"] - 0.1 * dW1, "b1": p["b1"] - 0.1 * db1,
                "W2": p["W2"] - 0.1 * dW2, "b2": p["b2"] - 0.1 * db2}
    cost = -np.sum(w * (Y * np.log(A2) + (1 - Y) * np.log(1 - A2))) / w.sum()
    net.fit(X, Y, epochs=1, learning_rate=0.1, class_weight={0: 0.5, 1: 3.0}, progress=False)
    assert_params_close(net.parameters, expected)
    assert net.history_["cost"][0] == pytest.approx(cost, rel=1e-12)


def test_sample_weight_validated():
    X, Y = moons(m=30)
    net = net_2layer()
    with pytest.raises(ValueError, match=r"expected \(30,\)"):
        net.fit(X, Y, epochs=1, sample_weight=np.ones(29), progress=False)
    with pytest.raises(ValueError, match=">= 0"):
        net.fit(X, Y, epochs=1, sample_weight=-np.ones(30), progress=False)
    with pytest.raises(ValueError, match="sum to 0"):
        net.fit(X, Y, epochs=1, sample_weight=np.zeros(30), progress=False)


# --------------------------------------------------------------------------- early stopping, history, callbacks

def test_early_stopping_restores_the_best_parameters():
    X, Y = moons(m=200)
    X_val, Y_val = moons(m=60, seed=1)
    snapshots = {}

    def keep(net, epoch, logs):
        snapshots[epoch] = {k: v.copy() for k, v in net.parameters.items()}

    net = net_2layer(seed=11).fit(X, Y, epochs=300, learning_rate=0.3, optimizer="adam",
                                  mini_batch_size=20, validation_data=(X_val, Y_val),
                                  early_stopping=True, patience=5, progress=False,
                                  callbacks=[keep])
    history = net.history_
    assert net.stop_reason_ == "early_stopping"
    assert len(history["epoch"]) < 300
    best = int(np.argmin(history["val_cost"]))
    assert len(history["epoch"]) - 1 - best == 5
    assert_params_close(net.parameters, snapshots[history["epoch"][best]])
    for key in ("cost", "score", "val_cost", "val_score", "lr"):
        assert len(history[key]) == len(history["epoch"])


def test_validation_fraction_holds_out_a_seeded_split():
    X, Y = moons(m=100)
    a = net_2layer(seed=12).fit(X, Y, epochs=3, learning_rate=0.1, validation_fraction=0.2,
                                progress=False, cost_every=1)
    b = net_2layer(seed=12).fit(X, Y, epochs=3, learning_rate=0.1, validation_fraction=0.2,
                                progress=False, cost_every=1)
    assert a.history_["val_cost"] == b.history_["val_cost"]
    assert a.history_["epoch"] == [0, 1, 2, 3]  # full batch: after 0, 1, 2 and 3 steps
    assert len(a.history_["val_score"]) == 4


def test_callbacks_receive_logs_and_can_stop():
    from chainrule.callbacks import Callback

    X, Y = moons(m=50)
    calls = []

    class Stop(Callback):
        def on_fit_begin(self, net):
            calls.append("begin")

        def on_epoch_end(self, net, epoch, logs):
            calls.append((epoch, sorted(logs)))
            return epoch == 2

        def on_fit_end(self, net):
            calls.append("end")

    net = net_2layer().fit(X, Y, epochs=10, learning_rate=0.1, cost_every=1, progress=False,
                           callbacks=[Stop()])
    assert calls[0] == "begin" and calls[-1] == "end"
    assert [c[0] for c in calls[1:-1]] == [0, 1, 2]
    assert calls[1][1] == ["cost", "epoch", "lr", "score", "skipped"]
    assert net.stop_reason_ == "callback"


def test_progress_bar_can_be_turned_off(capsys):
    X, Y = moons(m=50)
    net_2layer().fit(X, Y, epochs=5, learning_rate=0.1, progress=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    net_2layer().fit(X, Y, epochs=5, learning_rate=0.1, progress=True)
    assert "epoch" in capsys.readouterr().err


def test_print_cost_prints_as_the_course(capsys):
    X, Y = moons(m=50)
    net_2layer().fit(X, Y, epochs=3, learning_rate=0.1, mini_batch_size=16, progress=False,
                     print_cost=True)
    assert capsys.readouterr().out.splitlines()[0].startswith("Cost after epoch 0: ")


def test_fit_arguments_are_validated():
    X, Y = moons(m=30)
    net = net_2layer()
    with pytest.raises(ValueError, match="unknown optimizer"):
        net.fit(X, Y, optimizer="lbfgs", progress=False)
    with pytest.raises(ValueError, match="beta1"):
        net.fit(X, Y, optimizer=optim.Adam(beta1=1.0), progress=False)
    with pytest.raises(ValueError, match="on_nonfinite"):
        net.fit(X, Y, on_nonfinite="ignore", progress=False)
    with pytest.raises(ValueError, match="mini_batch_size"):
        net.fit(X, Y, mini_batch_size=0, progress=False)
    with pytest.raises(ValueError, match="lambd"):
        net.fit(X, Y, lambd=-1.0, progress=False)


# --------------------------------------------------------------------------- digits

@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_digits_reach_97_percent(backend):
    # No wall-clock bound here: speed is a benchmark's claim (bench_train), and a unit test's
    # timing depends on the machine and its load.
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X[order] / 16.0, y[order]
    n_train = 1347
    net = Network([64, 64, 10], hidden="relu", output="softmax", seed=0, backend=backend)
    net.fit(X[:n_train].T, y[:n_train], epochs=30, learning_rate=0.01, optimizer="adam",
            mini_batch_size=64, progress=False)
    accuracy = net.score(X[n_train:].T, y[n_train:])
    assert accuracy >= 0.97, accuracy


def test_pacer_reaches_a_long_call_at_the_second_and_never_overshoots():
    from chainrule.training.loop import CHUNK_SECONDS, Pacer

    fast = Pacer(first=8)
    assert fast.steps() == 8
    fast.observe(8, 8 * 20e-6)  # 20 us a step: the next call fills a quarter chunk
    assert fast.steps() == int(CHUNK_SECONDS / 4 / 20e-6)
    fast.observe(fast.steps(), fast.steps() * 20e-6)  # then 4x, up to a whole chunk
    assert fast.steps() == int(CHUNK_SECONDS / 20e-6)
    slow = Pacer(first=8)
    slow.observe(8, 8 * 0.01)  # 10 ms a step: a chunk's worth at most
    assert slow.steps() == int(CHUNK_SECONDS / 0.01)
    compiled = Pacer(first=8)
    compiled.observe(8, 5.0)  # the first call compiled: one step next
    assert compiled.steps() == 1
    compiled.observe(1, 30e-6)
    assert compiled.steps() == int(CHUNK_SECONDS / 4 / 30e-6)


def test_the_first_engine_call_is_sized_by_a_guess_of_the_step():
    """A fit's first call takes a quarter chunk at a pessimistic guess of its step's time:
    a small network's whole fit is one call, a large network's first call a few steps."""
    from chainrule.training.loop import Pacer

    assert Pacer.first_steps([64, 64, 10], 64) >= 220  # digits' 10 epochs: one call
    assert Pacer.first_steps([784, 128, 64, 10], 128) <= 8  # mnist-sized: a few steps
    assert Pacer.first_steps([12288, 20, 7, 5, 1], 209) >= 1
    assert Pacer.first_steps([100, 512, 520, 1], 3000) == 1
    assert Pacer.first_steps([2, 4, 1], 400) > Pacer.first_steps([2, 40, 1], 400)

    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 1347))
    y = rng.integers(0, 10, 1347)
    net = Network([64, 64, 10], output="softmax", backend="numpy", seed=0)
    calls = []
    ops = net.ops_for(1347)
    fit_epochs = ops.fit_epochs

    def counted(*args, **kwargs):
        calls.append(kwargs["n_steps"])
        return fit_epochs(*args, **kwargs)

    ops.fit_epochs = counted
    try:
        net.fit(X, y, epochs=10, mini_batch_size=64, optimizer="adam", progress=False)
    finally:
        del ops.fit_epochs
    assert calls == [220] and net.train_state_.steps == 220
