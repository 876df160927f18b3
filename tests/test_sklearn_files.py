"""The estimators' pickle-free files (issue 24): save/load keep the fitted network and the
estimator's parameters and attributes (classes_, n_features_in_, ...)."""

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.datasets import load_iris, make_regression  # noqa: E402

from chainrule import Network  # noqa: E402
from chainrule.errors import ModelFileError  # noqa: E402
from chainrule.sklearn import NetworkClassifier, NetworkRegressor  # noqa: E402


def test_classifier_with_string_labels_roundtrips(tmp_path):
    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = NetworkClassifier(hidden_layer_sizes=(8,), learning_rate=0.02, max_iter=30,
                            class_weight={"setosa": 2.0, "virginica": 1.0}, dtype=np.float32,
                            random_state=0, backend="numpy").fit(X, labels)
    path = clf.save(tmp_path / "clf.npz")
    back = NetworkClassifier.load(path)
    assert back.get_params() == {**clf.get_params(), "dtype": "float32"}
    np.testing.assert_array_equal(back.classes_, clf.classes_)
    assert back.classes_.dtype == clf.classes_.dtype
    assert back.n_features_in_ == 4 and back.n_iter_ == clf.n_iter_ and back.t_ == clf.t_
    assert back.loss_curve_ == clf.loss_curve_
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    back.partial_fit(X, labels)  # a loaded estimator continues (same architecture)
    assert back.n_iter_ == clf.n_iter_ + 1


def test_regressor_with_two_targets_roundtrips(tmp_path):
    X, Y = make_regression(n_samples=80, n_features=3, n_targets=2, random_state=0)
    reg = NetworkRegressor(hidden_layer_sizes=(6, 4), learning_rate=0.01, max_iter=20,
                           random_state=1, backend="numpy").fit(X, Y / 100)
    back = NetworkRegressor.load(reg.save(tmp_path / "reg.npz"))
    assert back.n_outputs_ == 2 and back.n_features_in_ == 3
    assert back.hidden_layer_sizes == (6, 4)
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))


def test_one_target_regressor_predicts_1d(tmp_path):
    X, y = make_regression(n_samples=50, n_features=2, random_state=0)
    reg = NetworkRegressor(max_iter=5, random_state=0, backend="numpy").fit(X, y / 100)
    back = NetworkRegressor.load(reg.save(tmp_path / "r.npz"))
    assert back.predict(X).shape == (50,)


def test_wrong_class_and_bare_network_files_are_refused(tmp_path):
    X, y = load_iris(return_X_y=True)
    clf = NetworkClassifier(max_iter=2, random_state=0, backend="numpy").fit(X, y)
    path = clf.save(tmp_path / "clf.npz")
    with pytest.raises(ModelFileError, match="holds a NetworkClassifier, not a NetworkRegressor"):
        NetworkRegressor.load(path)
    net_path = Network([2, 3, 1]).save(tmp_path / "net.npz")
    with pytest.raises(ModelFileError, match="bare Network"):
        NetworkClassifier.load(net_path)
    # The file is still a network file: chainrule.load reads the network inside.
    assert Network.load(path).layer_dims == clf.network_.layer_dims


def test_saving_an_unfitted_estimator_raises(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        NetworkClassifier().save(tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()
