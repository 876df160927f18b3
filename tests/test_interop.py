"""Conversions to and from scikit-learn, PyTorch, Keras and ONNX (chainrule._interop), each
checked against the peer's own predictions; every refusal has its message checked."""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest

from chainrule import Network, _interop, spec
from chainrule.errors import InputError, ShapeError

sklearn_nn = pytest.importorskip("sklearn.neural_network")
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402

from chainrule.sklearn import NetworkClassifier, NetworkRegressor  # noqa: E402

F64 = dict(rtol=1e-12, atol=1e-12)  # the peer computes the same float64 sums in another order
F32 = dict(rtol=1e-6, atol=1e-6)

# (output activation, units, loss): every kind of output the peers know.
OUTPUTS = {
    "binary": ("sigmoid", 1, None),
    "multilabel": ("sigmoid", 3, None),
    "multiclass": ("softmax", 3, None),
    "regression": ("identity", 2, None),
}
HIDDEN = [a for a in spec.HIDDEN_ACTIVATIONS]


def random_net(dims, activations, dtype="float64", seed=0, loss=None):
    """A network with seeded, non-trivial parameters (nonzero biases)."""
    net = Network(dims, activations=activations, loss=loss, dtype=dtype, seed=seed,
                  backend="numpy")
    rng = np.random.default_rng(seed + 100)
    net.parameters = {k: rng.normal(scale=0.8, size=v.shape) for k, v in net.parameters.items()}
    return net


def rows(m=13, n=4, seed=1):
    return np.random.default_rng(seed).normal(size=(m, n))


def fitted_mlp(kind, hidden="relu", sizes=(5, 4), seed=0, **params):
    X = rows(40, 4, seed)
    y = {"binary": (X[:, 0] > 0).astype(int),
         "multiclass": np.digitize(X[:, 0], [-0.5, 0.5]),
         "multilabel": (X[:, :3] > 0).astype(int),
         "regression": X[:, :2] @ np.array([[1.0, -2.0], [0.5, 3.0]])}[kind]
    cls = sklearn_nn.MLPRegressor if kind == "regression" else sklearn_nn.MLPClassifier
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cls(hidden_layer_sizes=sizes, activation=hidden, max_iter=30, random_state=seed,
                   **params).fit(X, y), X, y


# ---------------------------------------------------------------- the tables
@pytest.mark.parametrize("table", ["SKLEARN_ACTIVATIONS", "TORCH_MODULES", "KERAS_ACTIVATIONS",
                                   "ONNX_OPS"])
def test_every_activation_of_spec_has_an_entry_in_each_peer_table(table):
    assert set(getattr(_interop, table)) == set(spec.ACTIVATION_NAMES)


# ---------------------------------------------------------------- scikit-learn
@pytest.mark.parametrize("hidden", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("kind", list(OUTPUTS))
def test_from_sklearn_predicts_as_the_mlp(kind, hidden):
    mlp, X, _ = fitted_mlp(kind, hidden)
    net = Network.from_sklearn(mlp, backend="numpy")
    assert net.activations[0][0] == {"logistic": "sigmoid"}.get(hidden, hidden)
    expected = mlp.predict(X) if kind == "regression" else mlp.predict_proba(X)
    actual = net.predict_proba(X.T).T
    if kind == "binary":
        actual = np.column_stack([1 - actual[:, 0], actual[:, 0]])
    np.testing.assert_allclose(actual, expected, **F64)
    back = net.to_sklearn(classes=None if kind in ("multilabel", "regression") else mlp.classes_)
    for a, b in zip(back.coefs_ + back.intercepts_, mlp.coefs_ + mlp.intercepts_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.predict(X), mlp.predict(X))


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_classifier_from_sklearn_predicts_labels_and_probabilities_as_the_mlp(kind):
    mlp, X, y = fitted_mlp(kind, "tanh")
    labels = np.array(["ant", "bee", "cat"])[: len(np.unique(y))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X, labels[y])
    clf = NetworkClassifier.from_sklearn(mlp, backend="numpy")
    np.testing.assert_array_equal(clf.classes_, mlp.classes_)
    np.testing.assert_allclose(clf.predict_proba(X), mlp.predict_proba(X), **F64)
    np.testing.assert_array_equal(clf.predict(X), mlp.predict(X))
    assert clf.get_params()["activation"] == "tanh" and clf.get_params()["lambd"] == mlp.alpha
    back = clf.to_sklearn()
    np.testing.assert_allclose(back.predict_proba(X), mlp.predict_proba(X), **F64)
    np.testing.assert_array_equal(back.predict(X), mlp.predict(X))


def test_regressor_from_sklearn_and_back_predicts_as_the_mlp():
    mlp, X, y = fitted_mlp("regression", "relu")
    reg = NetworkRegressor.from_sklearn(mlp, backend="numpy")
    np.testing.assert_allclose(reg.predict(X), mlp.predict(X), **F64)
    assert reg.n_outputs_ == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = sklearn_nn.MLPRegressor(hidden_layer_sizes=(3,), max_iter=20,
                                      random_state=0).fit(X, y[:, 0])
    reg1 = NetworkRegressor.from_sklearn(one, backend="numpy")
    assert reg1.predict(X).shape == (len(X),)
    np.testing.assert_allclose(reg1.to_sklearn().predict(X), one.predict(X), **F64)


@pytest.mark.parametrize("hidden", ["identity", "sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("kind", list(OUTPUTS))
def test_to_sklearn_predicts_as_the_network(kind, hidden):
    out, n_out, _ = OUTPUTS[kind]
    net = random_net([4, 5, 3, n_out], [hidden, hidden, out])
    X = rows()
    mlp = net.to_sklearn()
    AL = net.predict_proba(X.T).T
    if kind == "regression":
        np.testing.assert_allclose(mlp.predict(X), AL, **F64)
        return
    proba = mlp.predict_proba(X)
    if kind == "binary":
        np.testing.assert_allclose(proba[:, 1], AL[:, 0], **F64)
        np.testing.assert_array_equal(mlp.predict(X), net.predict(X.T)[0])
    else:
        np.testing.assert_allclose(proba, AL, **F64)
    if kind == "multiclass":
        np.testing.assert_array_equal(mlp.predict(X), net.predict(X.T))
    if kind == "multilabel":
        np.testing.assert_array_equal(mlp.predict(X), (AL > 0.5).astype(int))


def test_to_sklearn_of_a_network_without_hidden_layer_and_with_labels():
    net = random_net([4, 3], ["softmax"])
    X = rows()
    mlp = net.to_sklearn(classes=["a", "b", "c"])
    assert mlp.hidden_layer_sizes == ()
    np.testing.assert_allclose(mlp.predict_proba(X), net.predict_proba(X.T).T, **F64)
    np.testing.assert_array_equal(mlp.predict(X), np.array(["a", "b", "c"])[net.predict(X.T)])


def test_to_sklearn_turns_a_two_unit_softmax_into_one_logistic_unit():
    net = random_net([4, 6, 2], ["relu", "softmax"])
    X = rows()
    mlp = net.to_sklearn()
    assert mlp.out_activation_ == "logistic" and mlp.coefs_[-1].shape == (6, 1)
    np.testing.assert_allclose(mlp.predict_proba(X), net.predict_proba(X.T).T, **F64)
    np.testing.assert_array_equal(mlp.predict(X), net.predict(X.T))


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_sklearn_gd_step_from_an_exported_network_equals_chainrules(kind):
    """Exported, then fitted further by scikit-learn (one full-batch SGD step without
    momentum, with L2), it lands on the parameters chainrule's gd step gives."""
    out, n_out, _ = {"binary": OUTPUTS["binary"], "multiclass": OUTPUTS["multiclass"],
                     "regression": OUTPUTS["regression"]}[kind]
    net = random_net([4, 5, n_out], ["tanh", out])
    X = rows(30)
    if kind == "regression":
        Y = np.random.default_rng(5).normal(size=(n_out, 30))
        y = Y.T
    elif kind == "binary":
        y = (X[:, 0] > 0).astype(int)
        Y = y.reshape(1, -1).astype(float)
    else:
        y = np.digitize(X[:, 0], [-0.5, 0.5])
        Y = np.eye(3)[:, y]
    mlp = net.to_sklearn(solver="sgd", momentum=0.0, alpha=0.2, batch_size=30, shuffle=False,
                         learning_rate_init=0.3)
    mlp.partial_fit(X, y)
    # scikit-learn's alpha is chainrule's lambd: + alpha/(2n) Σ‖W‖², dW += (alpha/n) W
    net.fit(X.T, Y, epochs=1, learning_rate=0.3, optimizer="gd", lambd=0.2, progress=False)
    for l in (1, 2):
        np.testing.assert_allclose(mlp.coefs_[l - 1], net.parameters[f"W{l}"].T, **F64)
        np.testing.assert_allclose(mlp.intercepts_[l - 1], net.parameters[f"b{l}"][:, 0], **F64)


@pytest.mark.parametrize("activations, loss, words", [
    (["relu", "tanh", "sigmoid"], None, "layer 2: tanh, but layer 1 has relu"),
    ([("leaky_relu", 0.1), ("leaky_relu", 0.1), "sigmoid"], None, "layer 1: scikit-learn's MLP "
                                                                  "has no leaky_relu"),
    (["relu", "relu", "relu"], None, "layer 3 (output): scikit-learn's MLP cannot express a relu"),
    (["relu", "relu", "sigmoid"], "mean_squared_error", "layer 3 (output): a sigmoid output "
                                                        "trained with mean_squared_error"),
])
def test_to_sklearn_refuses_what_the_mlp_cannot_express(activations, loss, words):
    net = random_net([4, 5, 3, 1], activations, loss=loss)
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")):
        net.to_sklearn()


@pytest.mark.parametrize("classes, words", [
    ([0, 1, 2], "must be 2 distinct labels"),
    ([1, 0], "in sorted order"),
    ([1, 1], "distinct"),
])
def test_to_sklearn_refuses_bad_classes(classes, words):
    with pytest.raises(InputError, match=words):
        random_net([4, 3, 1], ["relu", "sigmoid"]).to_sklearn(classes=classes)


def test_to_sklearn_refuses_classes_for_a_regressor_or_multilabel():
    with pytest.raises(InputError, match="classes is for a classifier"):
        random_net([4, 3, 1], ["relu", "identity"]).to_sklearn(classes=[0, 1])
    with pytest.raises(InputError, match="multilabel MLPClassifier's classes_ are the indices"):
        random_net([4, 3, 2], ["relu", "sigmoid"]).to_sklearn(classes=[0, 1])


def test_from_sklearn_of_a_float32_mlp_is_a_float32_network():
    mlp, X, _ = fitted_mlp("multiclass", "relu")
    X32 = X.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X32, np.digitize(X[:, 0], [-0.5, 0.5]))
    assert mlp.coefs_[0].dtype == np.float32
    net = Network.from_sklearn(mlp, backend="numpy")
    assert net.dtype == np.float32
    np.testing.assert_allclose(net.predict_proba(X32.T).T, mlp.predict_proba(X32), **F32)
    assert Network.from_sklearn(mlp, dtype="float64").dtype == np.float64


def test_from_sklearn_refuses_an_unfitted_or_foreign_model():
    with pytest.raises(NotFittedError, match="not fitted yet.*call fit before from_sklearn"):
        Network.from_sklearn(sklearn_nn.MLPClassifier())
    from sklearn.linear_model import LogisticRegression
    with pytest.raises(InputError, match="takes a fitted .*MLPClassifier.*got LogisticRegression"):
        Network.from_sklearn(LogisticRegression())
    mlp, _, _ = fitted_mlp("regression", loss="poisson")
    mlp2, X, _ = fitted_mlp("regression")
    with pytest.raises(InputError, match="no 'exp' output activation"):
        Network.from_sklearn(mlp)
    with pytest.raises(NotFittedError):
        NetworkClassifier().to_sklearn()
    with pytest.raises(NotFittedError):
        NetworkClassifier().transform(X)


def test_from_sklearn_refuses_a_model_with_wrong_shapes():
    mlp, _, _ = fitted_mlp("multiclass")
    mlp.coefs_[1] = mlp.coefs_[1][:3]
    with pytest.raises(ShapeError, match="layer 2's weight has shape \\(4, 3\\), so it takes 3 "
                                         "inputs, but layer 1 has 5 units"):
        Network.from_sklearn(mlp)


def test_estimator_from_sklearn_refuses_the_other_kind_and_multilabel():
    reg, _, _ = fitted_mlp("regression")
    clf, _, _ = fitted_mlp("multiclass")
    multilabel, _, _ = fitted_mlp("multilabel")
    with pytest.raises(TypeError, match="NetworkClassifier.from_sklearn takes an MLPClassifier"):
        NetworkClassifier.from_sklearn(reg)
    with pytest.raises(TypeError, match="NetworkRegressor.from_sklearn takes an MLPRegressor"):
        NetworkRegressor.from_sklearn(clf)
    with pytest.raises(ValueError, match="multilabel .*use chainrule.Network.from_sklearn"):
        NetworkClassifier.from_sklearn(multilabel)


def test_estimator_imported_from_sklearn_continues_with_warm_start():
    mlp, X, y = fitted_mlp("multiclass", "relu")
    clf = NetworkClassifier.from_sklearn(mlp, backend="numpy", warm_start=True, max_iter=3)
    before = clf.network_.parameters["W1"].copy()
    clf.fit(X, y)
    assert clf.n_iter_ == 3 and not np.array_equal(clf.network_.parameters["W1"], before)


def test_transform_returns_the_hidden_activations_as_rows():
    mlp, X, _ = fitted_mlp("multiclass", "tanh", sizes=(5, 4))
    clf = NetworkClassifier.from_sklearn(mlp, backend="numpy")
    A1 = np.tanh(X @ mlp.coefs_[0] + mlp.intercepts_[0])
    A2 = np.tanh(A1 @ mlp.coefs_[1] + mlp.intercepts_[1])
    np.testing.assert_allclose(clf.transform(X, layer=1), A1, **F64)
    np.testing.assert_allclose(clf.transform(X, layer=2), A2, **F64)
    np.testing.assert_allclose(clf.transform(X), A2, **F64)
    for bad in (0, 3, True, 1.0, "1"):
        with pytest.raises(ValueError, match="layer must be a hidden layer, an integer from 1 "
                                             "to 2 .*layer 3 is the output"):
            clf.transform(X, layer=bad)
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.transform(X[:, :3])


def test_sklearn_missing_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.neural_network", None)
    with pytest.raises(ImportError, match=r'to_sklearn needs sklearn.*pip install "\.\[sklearn\]"'):
        random_net([4, 3, 1], ["relu", "sigmoid"]).to_sklearn()


# ---------------------------------------------------------------- PyTorch layout, no torch
def test_state_dict_has_the_keys_of_the_matching_sequential():
    net = random_net([4, 5, 3, 2, 3], ["relu", "identity", ("leaky_relu", 0.2), "softmax"])
    sd = net.state_dict()
    # Linear, ReLU, Linear (identity: no module), Linear, LeakyReLU, Linear, Softmax
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias",
                        "5.weight", "5.bias"]
    assert sd["0.weight"].shape == (5, 4) and sd["0.bias"].shape == (5,)
    np.testing.assert_array_equal(sd["5.weight"], net.parameters["W4"])
    sd["0.weight"][0, 0] = 99.0  # a copy
    assert net.parameters["W1"][0, 0] != 99.0
    back = Network.from_state_dict(sd, [a for a in net.activations], backend="numpy")
    assert back.activations == net.activations and back.layer_dims == net.layer_dims
    np.testing.assert_array_equal(back.parameters["W4"], net.parameters["W4"])


def test_from_state_dict_takes_the_dtype_of_the_arrays_or_the_one_given():
    sd = random_net([3, 2, 1], ["relu", "sigmoid"]).state_dict()
    sd32 = {k: v.astype(np.float32) for k, v in sd.items()}
    assert Network.from_state_dict(sd32, ["relu", "sigmoid"]).dtype == np.float32
    assert Network.from_state_dict(sd32, ["relu", "sigmoid"], dtype="float64").dtype == np.float64
    sd16 = {k: v.astype(np.float16) for k, v in sd.items()}
    with pytest.raises(InputError, match="dtype='float32' or dtype='float64' to convert"):
        Network.from_state_dict(sd16, ["relu", "sigmoid"])


@pytest.mark.parametrize("change, words, error", [
    (lambda sd: sd.update({"1.running_mean": np.zeros(2)}), "the batch norm at index 1 "
                                                            "lacks 1.running_var", InputError),
    (lambda sd: sd.update({"fc.weight": np.zeros(2)}), "cannot read key 'fc.weight'", InputError),
    (lambda sd: sd.pop("2.weight"), "layer 2 \\(index 2\\) has a bias but no '2.weight'",
     InputError),
    (lambda sd: sd.update({"2.weight": np.zeros((1, 3))}), "layer 2's weight has shape \\(1, 3\\)",
     ShapeError),
    (lambda sd: sd.update({"2.bias": np.zeros(2)}), "layer 2's bias must have 1 entries",
     ShapeError),
    (lambda sd: sd.update({"4.weight": np.zeros((1, 1)), "4.bias": np.zeros(1)}),
     "3 linear layers .* activations names 2", InputError),
])
def test_from_state_dict_refuses_what_it_cannot_read(change, words, error):
    sd = random_net([3, 2, 1], ["relu", "sigmoid"]).state_dict()
    change(sd)
    with pytest.raises(error, match=words):
        Network.from_state_dict(sd, ["relu", "sigmoid"])


def test_from_state_dict_refuses_a_non_dict_and_bad_activations():
    with pytest.raises(InputError, match="takes a dict of arrays"):
        Network.from_state_dict([np.zeros((2, 2))], ["relu"])
    sd = random_net([3, 2, 1], ["relu", "sigmoid"]).state_dict()
    with pytest.raises(InputError, match="layer 1: softmax is only supported as the output"):
        Network.from_state_dict(sd, ["softmax", "sigmoid"])


# ---------------------------------------------------------------- Keras layout, no keras
def test_keras_weights_are_kernels_in_by_out_and_round_trip():
    net = random_net([4, 5, 3], ["relu", "softmax"])
    weights = net.keras_weights()
    assert [w.shape for w in weights] == [(4, 5), (5,), (5, 3), (3,)]
    X = rows()
    A1 = np.maximum(X @ weights[0] + weights[1], 0)
    Z2 = A1 @ weights[2] + weights[3]
    expected = np.exp(Z2 - Z2.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(net.predict_proba(X.T).T, expected, **F64)
    back = Network.from_keras_weights(weights, ["relu", "softmax"], backend="numpy")
    for k, v in net.parameters.items():
        np.testing.assert_array_equal(back.parameters[k], v)
    with pytest.raises(InputError, match="4 arrays for 3 activations"):
        Network.from_keras_weights(weights, ["relu", "relu", "softmax"])
    with pytest.raises(ShapeError, match="layer 2's kernel must be 2-D"):
        Network.from_keras_weights(weights[:2] + [weights[3], weights[3]], ["relu", "softmax"])


def _keras(monkeypatch):
    """Keras 3 on its PyTorch backend (its numpy backend needs jax; tensorflow is large)."""
    if "keras" not in sys.modules:
        pytest.importorskip("torch")
        monkeypatch.setenv("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # keras's own
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("kind", list(OUTPUTS))
def test_keras_model_with_the_weights_predicts_as_the_network(kind, hidden, monkeypatch):
    keras = _keras(monkeypatch)
    out, n_out, _ = OUTPUTS[kind]
    hidden = ("leaky_relu", 0.3) if hidden == "leaky_relu" else hidden
    net = random_net([4, 5, n_out], [hidden, out], dtype="float32")
    layers = [keras.Input((4,))]
    for (name, alpha), n in zip(net.activations, net.layer_dims[1:]):
        if name == "leaky_relu":
            layers += [keras.layers.Dense(n), keras.layers.LeakyReLU(negative_slope=alpha)]
        else:
            layers.append(keras.layers.Dense(n, activation=_interop.KERAS_ACTIVATIONS[name]))
    model = keras.Sequential(layers)
    model.set_weights(net.keras_weights())
    X = rows().astype(np.float32)
    np.testing.assert_allclose(np.asarray(model.predict(X, verbose=0)),
                               net.predict_proba(X.T).T, **F32)
    back = Network.from_keras_weights(model.get_weights(), net.activations, backend="numpy")
    for k, v in net.parameters.items():
        np.testing.assert_array_equal(back.parameters[k], v)


# ---------------------------------------------------------------- exported, then fitted further
EXPORTS = {
    "sklearn": (lambda net: net.to_sklearn(), lambda net, m: Network.from_sklearn(m)),
    "state_dict": (lambda net: net.state_dict(),
                   lambda net, sd: Network.from_state_dict(sd, net.activations, net.loss)),
    "keras": (lambda net: net.keras_weights(),
              lambda net, w: Network.from_keras_weights(w, net.activations, net.loss)),
    "torch": (lambda net: net.to_torch(), lambda net, seq: Network.from_torch(seq)),
}


@pytest.mark.parametrize("peer", list(EXPORTS))
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_exported_reimported_and_fitted_further_equals_the_original(peer, kind):
    if peer == "torch":
        pytest.importorskip("torch")
    out, n_out, _ = OUTPUTS[kind]
    X = rows(24).T
    rng = np.random.default_rng(3)
    Y = {"binary": (X[:1] > 0).astype(float), "multiclass": np.eye(3)[:, rng.integers(0, 3, 24)],
         "regression": rng.normal(size=(2, 24))}[kind]
    net = Network([4, 6, n_out], hidden="tanh", output=out, backend="numpy", seed=1)
    fit = dict(epochs=4, learning_rate=0.05, optimizer="adam", mini_batch_size=8, shuffle_seed=7,
               progress=False)
    net.fit(X, Y, **fit)
    export, reimport = EXPORTS[peer]
    again = reimport(net, export(net))
    again = Network.from_state_dict(again.state_dict(), again.activations, again.loss,
                                    backend="numpy")
    assert again.loss == net.loss and again.activations == net.activations
    net.fit(X, Y, **fit)
    again.fit(X, Y, **fit)
    for key, value in net.parameters.items():
        np.testing.assert_allclose(again.parameters[key], value, **F64)


# ---------------------------------------------------------------- PyTorch
def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("dtype, tol", [("float64", F64), ("float32", F32)])
@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("kind", list(OUTPUTS))
def test_to_torch_forward_matches_the_network(kind, hidden, dtype, tol):
    torch = _torch()
    out, n_out, _ = OUTPUTS[kind]
    hidden = ("leaky_relu", 0.3) if hidden == "leaky_relu" else hidden
    net = random_net([4, 5, 3, n_out], [hidden, hidden, out], dtype=dtype)
    seq = net.to_torch()
    assert list(seq.state_dict()) == list(net.state_dict())
    X = rows().astype(dtype)
    with torch.no_grad():
        actual = seq(torch.from_numpy(X)).numpy()
    assert actual.dtype == np.dtype(dtype)
    np.testing.assert_allclose(actual, net.predict_proba(X.T).T, **tol)
    back = Network.from_torch(seq, backend="numpy")
    assert back.activations == net.activations and back.dtype == net.dtype
    for k, v in net.parameters.items():
        np.testing.assert_array_equal(back.parameters[k], v)


def test_from_torch_reads_a_users_sequential():
    torch = _torch()
    nn = torch.nn
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Dropout(0.5), nn.Linear(6, 5, bias=False),
                        nn.Linear(5, 3), nn.Identity(), nn.Softmax(dim=-1)).double().eval()
    net = Network.from_torch(seq, backend="numpy")
    assert net.activations == [("tanh", 0.0), ("identity", 0.0), ("softmax", 0.0)]
    assert net.loss == "categorical_crossentropy" and net.dtype == np.float64
    X = rows()
    with torch.no_grad():
        expected = seq(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(net.predict_proba(X.T).T, expected, **F64)
    sd = Network.from_state_dict(seq.state_dict(), net.activations, backend="numpy")
    np.testing.assert_allclose(sd.predict_proba(X.T).T, expected, **F64)


@pytest.mark.parametrize("make, words", [
    (lambda nn: nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2), nn.Sigmoid()),
     "the output layer has a BatchNorm1d; chainrule normalizes hidden layers only"),
    (lambda nn: nn.Sequential(nn.Linear(3, 2), nn.GELU()), "module 1 is a GELU: chainrule reads"),
    (lambda nn: nn.Sequential(nn.ReLU(), nn.Linear(3, 2)), "module 0 \\(ReLU\\) comes before"),
    (lambda nn: nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Tanh()),
     "module 2 \\(Tanh\\) is a second activation after layer 1"),
    (lambda nn: nn.Sequential(nn.Linear(3, 2), nn.Softmax(dim=0)), "Softmax\\(dim=0\\)"),
    (lambda nn: nn.Sequential(nn.Dropout()), "has no Linear layer"),
    (lambda nn: nn.Linear(3, 2), "takes a torch.nn.Sequential"),
    (lambda nn: nn.Sequential(nn.Linear(3, 2), nn.Softmax(dim=1), nn.Linear(2, 1)),
     "layer 1: softmax is only supported as the output"),
    (lambda nn: nn.Sequential(nn.Linear(3, 2).half()), "dtype='float32' or dtype='float64'"),
])
def test_from_torch_refuses_what_chainrule_cannot_express(make, words):
    torch = _torch()
    with pytest.raises(InputError, match=words):
        Network.from_torch(make(torch.nn))


def test_torch_sgd_step_from_an_exported_network_equals_chainrules():
    torch = _torch()
    net = random_net([4, 5, 3], ["relu", "softmax"])
    X = rows(20)
    y = np.random.default_rng(2).integers(0, 3, 20)
    seq = net.to_torch()
    logits = seq[:-1]  # without the Softmax: CrossEntropyLoss takes logits
    loss = torch.nn.functional.cross_entropy(logits(torch.from_numpy(X)), torch.from_numpy(y))
    loss.backward()
    with torch.no_grad():
        for p in seq.parameters():
            p -= 0.1 * p.grad
    net.fit(X.T, np.eye(3)[:, y], epochs=1, learning_rate=0.1, optimizer="gd", progress=False)
    back = Network.from_torch(seq, backend="numpy")
    for k, v in net.parameters.items():
        np.testing.assert_allclose(back.parameters[k], v, **F64)


def test_torch_missing_extra_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    net = random_net([4, 3, 1], ["relu", "sigmoid"])
    with pytest.raises(ImportError, match=r'to_torch needs torch.*pip install "\.\[torch\]"'):
        net.to_torch()
    assert list(net.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]  # no torch


# ---------------------------------------------------------------- batch norm, folded
def test_fold_batch_norm_equals_the_norm_applied_after_the_layer():
    rng = np.random.default_rng(0)
    n, n_prev, m, eps = 5, 4, 7, 1e-3
    W, b, A = rng.normal(size=(n, n_prev)), rng.normal(size=(n, 1)), rng.normal(size=(n_prev, m))
    gamma, beta, mean = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    var = rng.uniform(0.1, 2.0, size=n)
    Z = W @ A + b
    expected = gamma[:, None] * (Z - mean[:, None]) / np.sqrt(var[:, None] + eps) + beta[:, None]
    Wf, bf = _interop.fold_batch_norm(W, b, gamma, beta, mean, var, eps)
    np.testing.assert_allclose(Wf @ A + bf, expected, **F64)
    # the formulas, without a bias before the norm
    Wf, bf = _interop.fold_batch_norm(W, None, gamma, beta, mean[:, None], var, eps)
    s = gamma / np.sqrt(var + eps)
    np.testing.assert_allclose(Wf, s[:, None] * W, **F64)
    np.testing.assert_allclose(bf[:, 0], beta - gamma * mean / np.sqrt(var + eps), **F64)


def test_fold_batch_norm_equals_torch_batchnorm1d_in_eval_mode():
    torch = _torch()
    torch.manual_seed(0)
    seq = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)).double()
    seq.train()
    with torch.no_grad():
        for _ in range(3):  # running statistics away from (0, 1)
            seq(torch.randn(16, 4, dtype=torch.float64) * 3 + 1)
        seq[1].weight.uniform_(0.5, 2.0)
        seq[1].bias.uniform_(-1.0, 1.0)
    seq.eval()
    bn = {k: v.numpy() for k, v in seq[1].state_dict().items()}
    Wf, bf = _interop.fold_batch_norm(seq[0].weight.detach().numpy(),
                                      seq[0].bias.detach().numpy(), bn["weight"], bn["bias"],
                                      bn["running_mean"], bn["running_var"], seq[1].eps)
    X = rows()
    with torch.no_grad():
        expected = seq(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(X @ Wf.T + bf[:, 0], expected, **F64)


@pytest.mark.parametrize("kwargs, words, error", [
    (dict(W=np.ones(3)), "W must be a 2-D float array", ShapeError),
    (dict(gamma=np.ones(4)), "gamma must have shape \\(3,\\) or \\(3, 1\\)", ShapeError),
    (dict(var=-np.ones(3)), "var must be >= 0", InputError),
    (dict(mean=[np.nan, 0, 0]), "mean has NaN or inf", InputError),
    (dict(eps=0.0), "eps must be a finite number > 0", InputError),
])
def test_fold_batch_norm_refuses_bad_input(kwargs, words, error):
    args = dict(W=np.ones((3, 2)), b=None, gamma=np.ones(3), beta=np.zeros(3), mean=np.zeros(3),
                var=np.ones(3), eps=1e-5)
    args.update(kwargs)
    with pytest.raises(error, match=words):
        _interop.fold_batch_norm(**args)


# ---------------------------------------------------------------- ONNX
def _ort():
    pytest.importorskip("onnx")
    return pytest.importorskip("onnxruntime")


def _run_onnx(path, X):
    ort = _ort()
    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    return session.run(None, {name: X})[0]


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("kind", list(OUTPUTS))
def test_to_onnx_float32_matches_the_network_in_onnxruntime(kind, hidden, tmp_path):
    _ort()
    out, n_out, _ = OUTPUTS[kind]
    hidden = ("leaky_relu", 0.3) if hidden == "leaky_relu" else hidden
    net = random_net([4, 5, 3, n_out], [hidden, hidden, out])
    path = net.to_onnx(tmp_path / "net.onnx")
    X = rows()
    actual = _run_onnx(path, X.astype(np.float32))
    assert actual.dtype == np.float32 and actual.shape == (len(X), n_out)
    net32 = Network.from_state_dict(net.state_dict(), net.activations, dtype="float32",
                                    backend="numpy")
    np.testing.assert_allclose(actual, net32.predict_proba(X.T.astype(np.float32)).T, **F32)
    np.testing.assert_allclose(actual, net.predict_proba(X.T).T, **F32)


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("kind", list(OUTPUTS))
def test_to_onnx_float64_matches_the_network(kind, hidden, tmp_path):
    _ort()
    out, n_out, _ = OUTPUTS[kind]
    hidden = ("leaky_relu", 0.3) if hidden == "leaky_relu" else hidden  # 0.3: not a float32
    net = random_net([4, 5, 3, n_out], [hidden, hidden, out])
    path = net.to_onnx(tmp_path / "net.onnx", dtype="float64")
    X = rows()
    np.testing.assert_allclose(_run_onnx(path, X), net.predict_proba(X.T).T, **F64)


def test_to_onnx_pins_opset_and_ir_and_writes_the_metadata(tmp_path):
    _ort()
    import onnx
    net = random_net([4, 5, 3], [("leaky_relu", 0.25), "softmax"])
    path = net.to_onnx(tmp_path / "net.onnx", classes=["a", "b", "c"], input_name="input",
                       output_name="probabilities")
    assert path == os.path.abspath(tmp_path / "net.onnx")
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == _interop.ONNX_IR_VERSION == 8
    assert [(o.domain, o.version) for o in model.opset_import] == [("", _interop.ONNX_OPSET)]
    assert [n.op_type for n in model.graph.node] == ["Gemm", "LeakyRelu", "Gemm", "Softmax"]
    gemm = model.graph.node[0]
    assert {a.name: a.i for a in gemm.attribute} == {"transB": 1}
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["probabilities"]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["chainrule.classes"] == '["a", "b", "c"]'
    assert meta["chainrule.layer_dims"] == "[4, 5, 3]"
    assert meta["chainrule.loss"] == "categorical_crossentropy"
    assert "examples as rows" in meta["chainrule.input"]
    X = rows().astype(np.float32)
    np.testing.assert_allclose(_run_onnx(path, X), net.predict_proba(X.T).T, **F32)


@pytest.mark.parametrize("kwargs, words", [
    (dict(dtype="float16"), "dtype must be 'float32' or 'float64'"),
    (dict(classes=[0, 1]), "classes must list 3 labels"),
    (dict(input_name="X", output_name="X"), "two different non-empty strings"),
])
def test_to_onnx_that_fails_writes_nothing(kwargs, words, tmp_path):
    _ort()
    net = random_net([4, 5, 3], ["relu", "softmax"])
    new, old = tmp_path / "new.onnx", tmp_path / "old.onnx"
    old.write_bytes(b"previous")
    for path in (new, old):
        with pytest.raises(InputError, match=words):
            net.to_onnx(path, **kwargs)
    assert not new.exists() and old.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.onnx"]  # no temporary file


def test_to_onnx_interrupted_while_writing_keeps_the_previous_file(tmp_path, monkeypatch):
    _ort()
    from chainrule import io

    old = tmp_path / "old.onnx"
    old.write_bytes(b"previous")
    real = io._replace

    def failing(path, target, existing, write):
        def write_then_fail(f):
            write(f)
            raise OSError(28, "No space left on device")
        return real(path, target, existing, write_then_fail)

    monkeypatch.setattr(io, "_replace", failing)
    with pytest.raises(OSError, match="cannot write .*No space left"):
        random_net([4, 2], ["sigmoid"]).to_onnx(old)
    assert old.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.onnx"]


def test_to_onnx_refuses_a_directory(tmp_path):
    _ort()
    with pytest.raises(OSError, match="it is a directory"):
        random_net([4, 2], ["sigmoid"]).to_onnx(tmp_path)


@pytest.mark.parametrize("missing", ["onnx"])
def test_onnx_missing_extra_is_named_and_nothing_is_written(missing, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, missing, None)
    with pytest.raises(ImportError, match=r'to_onnx needs onnx.*pip install "\.\[onnx\]"'):
        random_net([4, 2], ["sigmoid"]).to_onnx(tmp_path / "net.onnx")
    assert list(tmp_path.iterdir()) == []


def test_estimator_exports_onnx_with_its_classes(tmp_path):
    _ort()
    import onnx
    mlp, X, y = fitted_mlp("multiclass", "relu")
    clf = NetworkClassifier.from_sklearn(mlp, backend="numpy")
    path = clf.to_onnx(tmp_path / "clf.onnx")
    proba = _run_onnx(path, X.astype(np.float32))
    np.testing.assert_allclose(proba, mlp.predict_proba(X), **F32)
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert meta["chainrule.classes"] == "[0, 1, 2]"
    with pytest.raises(NotFittedError):
        NetworkClassifier().to_onnx(tmp_path / "unfitted.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf.onnx"]


# ---------------------------------------------------------------- the docs page runs
def test_the_interoperability_page_examples_run(tmp_path, monkeypatch):
    """Every ```python block of docs/interop.md, in order, in one namespace."""
    pytest.importorskip("torch")
    _ort()
    import pathlib
    import re

    text = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "interop.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 5
    monkeypatch.chdir(tmp_path)
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for block in blocks:
            exec(compile(block, "docs/interop.md", "exec"), namespace)
