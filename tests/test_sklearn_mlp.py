"""chainrule.sklearn.MLPClassifier / MLPRegressor against scikit-learn's own MLPs, the oracle:
the same signature and defaults, the same initial parameters (scikit-learn's random stream),
the same loss and gradient, SGD step for step, and Adam up to where its ε sits."""

import inspect
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("scipy")

from sklearn import neural_network as skl  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.preprocessing import LabelBinarizer, StandardScaler  # noqa: E402

from chainrule import sklearn as crs  # noqa: E402

EXTRAS = {"MLPClassifier": {"keep_prob": 1.0, "class_weight": None, "backend": "auto",
                            "n_threads": None},
          "MLPRegressor": {"keep_prob": 1.0, "backend": "auto", "n_threads": None}}


def digits(n=300):
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X[:n]), y[:n]


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_signature_and_defaults_are_sklearns(name):
    ours = inspect.signature(getattr(crs, name).__init__).parameters
    theirs = inspect.signature(getattr(skl, name).__init__).parameters
    for p, param in theirs.items():
        assert p in ours, p
        assert ours[p].default == param.default, p
        assert ours[p].kind == param.kind, p
    assert {p: ours[p].default for p in ours if p not in theirs and p != "self"} == EXTRAS[name]


def _sklearn_buffers(X, layer_units):
    activations = [X] + [None] * (len(layer_units) - 1)
    deltas = [None] * (len(layer_units) - 1)
    coef_grads = [np.empty((a, b)) for a, b in zip(layer_units[:-1], layer_units[1:])]
    intercept_grads = [np.empty(b) for b in layer_units[1:]]
    return activations, deltas, coef_grads, intercept_grads


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_loss_and_gradient_equal_sklearns(activation, n_classes, backend):
    """``alpha`` is chainrule's ``λ``: the same loss (mean + alpha/2 ‖W‖²/n) and gradient."""
    X, y = digits(60)
    y = y % n_classes
    w = np.random.default_rng(0).random(len(y)) + 0.5
    kw = dict(hidden_layer_sizes=(7, 5), activation=activation, solver="lbfgs", alpha=0.3,
              max_iter=1, random_state=0)
    ours = crs.MLPClassifier(backend=backend, **kw)
    theirs = skl.MLPClassifier(**kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.fit(X, y)
        theirs.fit(X, y)
    Y = LabelBinarizer().fit_transform(y).astype(float)
    theta = np.random.default_rng(1).normal(0, 0.3, size=sum(
        c.size for c in theirs.coefs_) + sum(b.size for b in theirs.intercepts_))
    layer_units = [X.shape[1], 7, 5, Y.shape[1]]
    for sw in (None, w):
        J, g = ours._loss_grad_lbfgs(theta, X, Y, sw)
        J_ref, g_ref = theirs._loss_grad_lbfgs(theta.copy(), X, Y, sw,
                                               *_sklearn_buffers(X, layer_units))
        assert J == pytest.approx(J_ref, rel=1e-10)
        np.testing.assert_allclose(g, g_ref, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("schedule", ["constant", "invscaling", "adaptive"])
def test_sgd_follows_sklearn_step_for_step(nesterov, schedule):
    """Same initial parameters (scikit-learn's stream), batches in order: the same SGD."""
    X, y = digits()
    kw = dict(hidden_layer_sizes=(16,), solver="sgd", learning_rate=schedule,
              learning_rate_init=0.05, nesterovs_momentum=nesterov, shuffle=False,
              max_iter=8, batch_size=50, random_state=3, tol=1e-2, n_iter_no_change=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = crs.MLPClassifier(**kw).fit(X, y)
        theirs = skl.MLPClassifier(**kw).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours._optimizer.learning_rate == pytest.approx(theirs._optimizer.learning_rate)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-9)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)


def test_adam_matches_sklearn_up_to_epsilon():
    """chainrule's Adam (the course's) and scikit-learn's differ only in where ε sits: with
    the same start and batches the losses agree closely."""
    X, y = digits()
    kw = dict(hidden_layer_sizes=(16,), shuffle=False, max_iter=20, random_state=0,
              learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = crs.MLPClassifier(**kw).fit(X, y)
        theirs = skl.MLPClassifier(**kw).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-3)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_attributes_are_sklearns(solver):
    X, y = digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = crs.MLPClassifier(hidden_layer_sizes=(9, 4), solver=solver, max_iter=5,
                                 random_state=0).fit(X, y)
        theirs = skl.MLPClassifier(hidden_layer_sizes=(9, 4), solver=solver, max_iter=5,
                                   random_state=0).fit(X, y)
    for name in ("n_layers_", "n_outputs_", "out_activation_", "n_features_in_", "n_iter_"):
        assert getattr(ours, name) == getattr(theirs, name), name
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    assert [c.shape for c in ours.coefs_] == [c.shape for c in theirs.coefs_]
    assert [b.shape for b in ours.intercepts_] == [b.shape for b in theirs.intercepts_]
    if solver != "lbfgs":
        assert ours.t_ == theirs.t_
        assert len(ours.loss_curve_) == len(theirs.loss_curve_)
        assert ours.loss_ == ours.loss_curve_[-1]
        assert ours.best_loss_ == min(ours.loss_curve_)
    # coefs_ is the network's W.T: the estimator's view and the network's arrays agree
    np.testing.assert_array_equal(ours.coefs_[0], ours.network_.parameters["W1"].T)


def test_verbose_prints_sklearns_lines(capsys):
    X, y = digits(100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        crs.MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, verbose=True,
                          random_state=0).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == ["Iteration 1", "Iteration 2",
                                                      "Iteration 3"]
    assert all(len(line.split("loss = ")[1].split(".")[1]) == 8 for line in lines)


def test_statistically_equivalent_on_breast_cancer():
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    scores = {"ours": [], "theirs": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for seed in range(3):
            Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=seed)
            for key, cls in (("ours", crs.MLPClassifier), ("theirs", skl.MLPClassifier)):
                clf = cls(hidden_layer_sizes=(32,), max_iter=60, random_state=seed)
                scores[key].append(clf.fit(Xtr, ytr).score(Xte, yte))
    assert abs(np.mean(scores["ours"]) - np.mean(scores["theirs"])) < 0.02, scores


def test_extras_dropout_and_class_weight():
    X, y = digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = crs.MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0)
        drop = crs.MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0,
                                 keep_prob=0.5)
        weighted = crs.MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0,
                                     class_weight={0: 5.0})
        for clf in (plain, drop, weighted):
            clf.fit(X, y)
    assert not np.allclose(plain.coefs_[0], drop.coefs_[0])
    assert not np.allclose(plain.coefs_[0], weighted.coefs_[0])


def test_poisson_loss_is_refused_clearly():
    with pytest.raises(ValueError, match="poisson"):
        crs.MLPRegressor(loss="poisson").fit([[0.0], [1.0]], [1.0, 2.0])


def test_import_without_sklearn_names_the_extra():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "try:\n    import chainrule.sklearn\nexcept ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert "[sklearn]" in out.stdout and "scikit-learn" in out.stdout, out.stdout + out.stderr


def test_dropout_needs_adam():
    with pytest.raises(ValueError, match="keep_prob"):
        crs.MLPClassifier(solver="sgd", keep_prob=0.5).fit([[0.0], [1.0]], [0, 1])


def test_bench_compares_both_libraries():
    from chainrule.bench import sklearn_mlp

    rows = sklearn_mlp.compare(repeats=1, names=["breast_cancer"], max_iter=5)
    row, = rows
    assert row["data"] == "breast_cancer" and row["chainrule_s"] > 0 and row["sklearn_s"] > 0
    assert row["n_iter"] == (5, 5)
    assert abs(row["chainrule_score"] - row["sklearn_score"]) < 0.1


def _estimator_checks():
    from sklearn.utils.estimator_checks import parametrize_with_checks

    return parametrize_with_checks([crs.MLPClassifier(max_iter=20, random_state=0),
                                    crs.MLPRegressor(max_iter=20, random_state=0)])


@_estimator_checks()
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_one_hot_pipeline_and_sparse_partial_fit(solver):
    """The practitioner's case: a ColumnTransformer with a OneHotEncoder gives CSR."""
    import scipy.sparse as sp
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 20, 400), rng.integers(0, 5, 400)])
    y = (X[:, 0] % 3 == 0) | (X[:, 1] == 2)
    encode = ColumnTransformer([("onehot", OneHotEncoder(), [0, 1])])
    assert sp.issparse(encode.fit_transform(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe = make_pipeline(encode, crs.MLPClassifier(hidden_layer_sizes=(16,), solver=solver,
                                                       learning_rate_init=0.01, max_iter=100,
                                                       random_state=0)).fit(X, y)
    assert pipe.score(X, y) > 0.95
    Xs = encode.transform(X)
    dense, sparse = (crs.MLPClassifier(hidden_layer_sizes=(8,), solver=solver, random_state=0)
                     for _ in range(2))
    for _ in range(3):
        dense.partial_fit(Xs.toarray(), y, classes=[False, True])
        sparse.partial_fit(Xs, y, classes=[False, True])
    np.testing.assert_allclose(sparse.coefs_[0], dense.coefs_[0], rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(sparse.loss_curve_, dense.loss_curve_, rtol=1e-9)


def test_warm_start_with_other_layer_sizes_is_refused():
    X, y = digits(100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = crs.MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, warm_start=True).fit(X, y)
        before = [c.copy() for c in clf.coefs_]
        clf.set_params(hidden_layer_sizes=(6,))
        with pytest.raises(ValueError, match="layer sizes"):
            clf.fit(X, y)
    np.testing.assert_array_equal(clf.coefs_[0], before[0])


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_n_threads_limits_blas_during_fit_and_predict(solver, monkeypatch):
    from chainrule import _sklearn_mlp

    seen = []
    real = _sklearn_mlp.limited

    def spy(n):
        seen.append(n)
        return real(n)

    monkeypatch.setattr(_sklearn_mlp, "limited", spy)
    X, y = digits(100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = crs.MLPClassifier(hidden_layer_sizes=(5,), solver=solver, max_iter=2,
                                n_threads=1).fit(X, y)
    clf.predict(X)
    assert seen and set(seen) == {1}


@pytest.mark.parametrize("class_weight", ["balanced", {0: 3.0, 2: 0.5}])
def test_class_weight_is_sample_weight_by_class(class_weight):
    """class_weight multiplies the examples' weights by their class's: the same fit as the
    equivalent sample_weight, on both solver families."""
    from sklearn.utils.class_weight import compute_sample_weight

    X, y = digits(150)
    y = y % 3
    sw = compute_sample_weight(class_weight, y)
    for solver in ("sgd", "adam"):
        kw = dict(hidden_layer_sizes=(6,), solver=solver, max_iter=3, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            a = crs.MLPClassifier(class_weight=class_weight, **kw).fit(X, y)
            b = crs.MLPClassifier(**kw).fit(X, y, sample_weight=sw)
        np.testing.assert_allclose(a.coefs_[0], b.coefs_[0], rtol=1e-6, atol=1e-9)
