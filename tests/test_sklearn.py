"""chainrule.sklearn: scikit-learn's own estimator checks, pickling, Pipeline, GridSearchCV
(n_jobs=2) and a search on a Dask LocalCluster through joblib's dask backend."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris, make_regression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from chainrule.sklearn import NetworkClassifier, NetworkRegressor

# Small and quick, yet trained enough for the checks' accuracy thresholds.
CHECKED = [
    NetworkClassifier(hidden_layer_sizes=(8,), learning_rate=0.05, max_iter=40, random_state=0,
                      backend="numpy"),
    NetworkRegressor(hidden_layer_sizes=(8,), learning_rate=0.05, max_iter=60, random_state=0,
                     backend="numpy"),
]


@parametrize_with_checks(CHECKED)
def test_sklearn_check_estimator(estimator, check):
    check(estimator)


def _iris():
    X, y = load_iris(return_X_y=True)
    return X, y


def test_classifier_pickle_roundtrip_predicts_the_same():
    X, y = _iris()
    clf = NetworkClassifier(hidden_layer_sizes=(8,), learning_rate=0.02, max_iter=30,
                            random_state=0).fit(X, y)
    blob = pickle.dumps(clf)
    assert b"_ops" not in blob  # no backend handles in the pickled state
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    # The unpickled estimator keeps training from where it was.
    again.partial_fit(X, y)
    assert again.n_iter_ == clf.n_iter_ + 1


def test_classifier_binary_and_multiclass_outputs():
    X, y = _iris()
    binary = NetworkClassifier(hidden_layer_sizes=(8,), learning_rate=0.02, max_iter=50,
                               random_state=0).fit(X, np.where(y == 0, "setosa", "other"))
    assert binary.network_.activations[-1][0] == "sigmoid"
    assert binary.network_.layer_dims[-1] == 1
    proba = binary.predict_proba(X)
    assert proba.shape == (150, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert set(binary.predict(X)) <= {"setosa", "other"}
    assert binary.score(X, np.where(y == 0, "setosa", "other")) > 0.95
    multi = NetworkClassifier(hidden_layer_sizes=(8,), learning_rate=0.02, max_iter=100,
                              random_state=0).fit(X, y)
    assert multi.network_.activations[-1][0] == "softmax"
    assert multi.predict_proba(X).shape == (150, 3)
    assert multi.score(X, y) > 0.9


def test_regressor_single_and_multi_output():
    X, y = make_regression(n_samples=200, n_features=4, n_targets=2, noise=0.1, random_state=0)
    y = y / y.std(axis=0)
    reg = NetworkRegressor(hidden_layer_sizes=(16,), learning_rate=0.01, max_iter=150,
                           random_state=0).fit(X, y)
    assert reg.predict(X).shape == (200, 2)
    assert reg.score(X, y) > 0.95
    reg1 = NetworkRegressor(hidden_layer_sizes=(16,), learning_rate=0.01, max_iter=150,
                            random_state=0).fit(X, y[:, 0])
    assert reg1.predict(X).shape == (200,)
    assert reg1.score(X, y[:, 0]) > 0.95


def test_warm_start_continues_and_random_state_reproduces():
    X, y = _iris()
    kw = dict(hidden_layer_sizes=(8,), learning_rate=0.02, max_iter=10, random_state=3)
    a = NetworkClassifier(**kw).fit(X, y)
    b = NetworkClassifier(**kw).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    warm = NetworkClassifier(warm_start=True, **kw).fit(X, y)
    first = warm.network_.parameters["W1"].copy()
    warm.fit(X, y)
    assert warm.n_iter_ == 20
    assert not np.array_equal(first, warm.network_.parameters["W1"])
    # Ten epochs twice with warm start (optimiser state kept) equal twenty at once.
    twenty = NetworkClassifier(**{**kw, "max_iter": 20}).fit(X, y)
    np.testing.assert_allclose(warm.predict_proba(X), twenty.predict_proba(X), rtol=1e-10,
                               atol=1e-12)
    cold = clone(warm).set_params(warm_start=False).fit(X, y)
    assert cold.n_iter_ == 10


def test_partial_fit_equals_fit_epoch_by_epoch():
    X, y = _iris()
    kw = dict(hidden_layer_sizes=(8,), learning_rate=0.02, max_iter=5, random_state=1)
    full = NetworkClassifier(**kw).fit(X, y)
    inc = NetworkClassifier(**kw)
    for _ in range(5):
        inc.partial_fit(X, y, classes=np.unique(y))
    np.testing.assert_allclose(inc.predict_proba(X), full.predict_proba(X), rtol=1e-10,
                               atol=1e-12)
    with pytest.raises(ValueError, match="classes"):
        NetworkClassifier().partial_fit(X, y)


def test_class_weight_by_label_changes_the_fit():
    X, y = _iris()
    labels = np.where(y == 2, "c", "ab")
    kw = dict(hidden_layer_sizes=(4,), learning_rate=0.02, max_iter=20, random_state=0)
    plain = NetworkClassifier(**kw).fit(X, labels)
    heavy = NetworkClassifier(class_weight={"c": 5.0}, **kw).fit(X, labels)
    # Weighting class "c" up raises its predicted probability on average.
    assert heavy.predict_proba(X)[:, 1].mean() > plain.predict_proba(X)[:, 1].mean()
    balanced = NetworkClassifier(class_weight="balanced", **kw).fit(X, labels)
    assert balanced.n_iter_ == 20


def test_pipeline_and_grid_search_with_two_jobs():
    X, y = _iris()
    pipe = make_pipeline(StandardScaler(),
                         NetworkClassifier(hidden_layer_sizes=(8,), max_iter=30,
                                           random_state=0, backend="numpy"))
    search = GridSearchCV(pipe, {"networkclassifier__learning_rate": [0.003, 0.03]}, cv=3,
                          n_jobs=2)
    search.fit(X, y)
    assert search.best_params_["networkclassifier__learning_rate"] == 0.03
    assert search.score(X, y) > 0.9


def test_grid_search_on_a_dask_local_cluster():
    distributed = pytest.importorskip("distributed")
    joblib = pytest.importorskip("joblib")
    X, y = _iris()
    search = GridSearchCV(
        NetworkClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0,
                          backend="numpy"),
        {"learning_rate": [0.003, 0.03], "optimizer": ["adam", "momentum"]}, cv=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with joblib.parallel_backend("dask"):
            search.fit(X, y)
        assert client.scheduler_info()["workers"]
    local = GridSearchCV(clone(search.estimator), search.param_grid, cv=2).fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               local.cv_results_["mean_test_score"])


@pytest.mark.parametrize("change", [{"hidden_layer_sizes": (7, 5)}, {"activation": "tanh"},
                                    {"dtype": "float32"}])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_warm_start_with_another_architecture_is_refused_and_changes_nothing(change, method):
    """scikit-learn's MLP would continue with mismatched weights; chainrule refuses."""
    X, y = _iris()
    clf = NetworkClassifier(hidden_layer_sizes=(4,), max_iter=3, warm_start=True,
                            random_state=0, backend="numpy").fit(X, y)
    net, W1 = clf.network_, clf.network_.parameters["W1"].copy()
    clf.set_params(**change)
    key = next(iter(change))
    kwargs = {"classes": np.unique(y)} if method == "partial_fit" else {}
    with pytest.raises(ValueError, match=f"architecture has changed: {key} was"):
        getattr(clf, method)(X, y, **kwargs)
    assert clf.network_ is net and clf.n_iter_ == 3
    np.testing.assert_array_equal(clf.network_.parameters["W1"], W1)
    # Without warm start the new architecture is built.
    clf.set_params(warm_start=False).fit(X, y)
    built = {"hidden_layer_sizes": tuple(clf.network_.layer_dims[1:-1]),
             "activation": clf.network_.activations[0][0],
             "dtype": clf.network_.dtype.name}[key]
    assert built == change[key]


@pytest.mark.parametrize("class_weight, words", [
    ({"c": 2.0, "zz": 1.0}, r"keys \['zz'\] that are not classes"),
    ({5: 2.0}, r"keys \[5\] that are not classes"),
    ({"c": -1.0}, "finite numbers >= 0"),
    ({"c": float("nan")}, "finite numbers >= 0"),
    ({"c": "heavy"}, "finite numbers >= 0"),
])
def test_class_weight_that_is_not_a_weight_per_class_raises(class_weight, words):
    X, y = _iris()
    labels = np.where(y == 2, "c", "ab")
    clf = NetworkClassifier(hidden_layer_sizes=(4,), max_iter=2, class_weight=class_weight,
                            random_state=0, backend="numpy")
    with pytest.raises(ValueError, match=words):
        clf.fit(X, labels)
    assert not hasattr(clf, "network_") and not hasattr(clf, "classes_")


@pytest.mark.parametrize("params", [
    {"learning_rate": -1.0}, {"learning_rate": float("nan")}, {"mini_batch_size": 0},
    {"mini_batch_size": "big"}, {"optimizer": "adamw"}, {"activation": "rlu"},
    {"keep_prob": 0.0}, {"lambd": -1.0}, {"validation_fraction": 1.5}, {"patience": -1},
    {"dtype": "int32"}, {"backend": "gpu"}, {"hidden_layer_sizes": (0,)}, {"max_iter": 0},
    {"beta1": 1.5}, {"epsilon": -1.0}, {"decay_rate": -1.0}, {"warm_start": "yes"},
    {"init": "glorot"}, {"verbose": "loud"},
])
@pytest.mark.parametrize("cls", [NetworkClassifier, NetworkRegressor])
def test_estimator_parameters_are_checked_before_any_work(cls, params, monkeypatch):
    X, y = _iris()
    fitted = cls(hidden_layer_sizes=(4,), max_iter=2, random_state=0, backend="numpy").fit(X, y)
    net = fitted.network_
    import chainrule.sklearn as crsk

    monkeypatch.setattr(crsk, "validate_data", lambda *a, **k: pytest.fail("data was checked"))
    fitted.set_params(**params)
    with pytest.raises((ValueError, TypeError)):
        fitted.fit(X, y)
    assert fitted.network_ is net and fitted.n_iter_ == 2
