"""scipy.sparse input: Network.fit/predict and the MLP drop-ins train on CSR/CSC X a block
of rows at a time, with the results of the dense fit."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

sp = pytest.importorskip("scipy.sparse")

from chainrule import Network  # noqa: E402
from chainrule.errors import InputError, ShapeError  # noqa: E402
from chainrule.training import batches, loop  # noqa: E402
from conftest import assert_close  # noqa: E402


def sparse_problem(n_x=30, m=257, density=0.2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n_x, m))
    X[X > density] = 0
    Y = (X.sum(axis=0, keepdims=True) > n_x * density / 2).astype(float)
    return X, Y


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few rows: a chunk of mini-batches is one or two batches, a prediction
    block a few columns, so that every epoch is trained from many separate blocks."""
    monkeypatch.setattr(loop, "SPARSE_BLOCK_BYTES", 2 * 30 * 8 * 64)
    monkeypatch.setattr(batches, "SPARSE_BLOCK_BYTES", 30 * 8 * 20)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_fit_and_predict_equal_the_dense_fit(backend, dtype, fmt, small_blocks):
    X, Y = sparse_problem()
    Xs = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    w = np.random.default_rng(1).random(X.shape[1]) + 0.5
    nets = []
    for data in (X, Xs):
        net = Network([30, 8, 4, 1], hidden="tanh", seed=3, backend=backend, dtype=dtype)
        net.fit(data, Y, epochs=4, learning_rate=0.01, optimizer="adam", mini_batch_size=64,
                sample_weight=w, validation_fraction=0.2, progress=False)
        nets.append(net)
    dense, sparse = nets
    for key in dense.parameters:
        assert_close(sparse.parameters[key], dense.parameters[key], dtype, key)
    for key in ("cost", "val_cost", "val_score"):
        assert_close(np.array(sparse.history_[key], dtype=dtype),
                     np.array(dense.history_[key], dtype=dtype), dtype, key)
    assert_close(sparse.predict_proba(Xs), dense.predict_proba(X), dtype, "predict_proba")
    np.testing.assert_array_equal(sparse.predict(Xs), dense.predict(X))
    assert sparse.score(Xs, Y) == pytest.approx(dense.score(X, Y))


def test_regression_records_score_in_blocks(small_blocks):
    """A regressor's record scores R² with a forward pass over the training set: in blocks."""
    X, Y = sparse_problem()
    Y = X[:3] * 2.0 - 1.0
    out = []
    for data in (X, sp.csr_matrix(X)):
        net = Network([30, 6, 3], output="identity", seed=0, backend="numpy")
        net.fit(data, Y, epochs=3, learning_rate=0.01, mini_batch_size=50, progress=False)
        out.append(net.history_["score"])
    np.testing.assert_allclose(out[1], out[0], rtol=1e-12)


def test_sparse_full_batch_is_refused():
    X, Y = sparse_problem()
    net = Network([30, 4, 1], backend="numpy")
    with pytest.raises(InputError, match="mini_batch_size"):
        net.fit(sp.csr_matrix(X), Y, epochs=1, progress=False)


def test_sparse_bad_shape_and_values():
    X, Y = sparse_problem()
    net = Network([30, 4, 1], backend="numpy")
    with pytest.raises(ShapeError, match="examples are rows"):
        net.fit(sp.csr_matrix(X.T), Y, epochs=1, mini_batch_size=8, progress=False)
    bad = sp.csr_matrix(X)
    bad.data[0] = np.nan
    with pytest.raises(InputError, match="NaN or inf"):
        net.fit(bad, Y, epochs=1, mini_batch_size=8, progress=False)


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_mlp_sparse_equals_dense(solver, backend):
    pytest.importorskip("sklearn")
    from chainrule.sklearn import MLPClassifier

    X, Y = sparse_problem(m=300)
    Xr, y = X.T, Y[0]
    models = []
    for data in (Xr, sp.csr_matrix(Xr)):
        clf = MLPClassifier(hidden_layer_sizes=(8,), solver=solver, max_iter=15,
                            random_state=0, backend=backend, batch_size=64)
        with pytest.warns(Warning) if solver != "lbfgs" else _nothing():
            clf.fit(data, y)
        models.append(clf)
    for a, b in zip(models[0].coefs_, models[1].coefs_):
        np.testing.assert_allclose(b, a, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(models[1].predict_proba(sp.csc_matrix(Xr)),
                               models[0].predict_proba(Xr), rtol=1e-7, atol=1e-9)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


MEMORY_SCRIPT = textwrap.dedent("""
    import json, tracemalloc
    import numpy as np, scipy.sparse as sp
    from chainrule import Network
    n_x, m = 2000, 10000
    X = sp.random(n_x, m, density=0.001, format="csc", random_state=0, dtype=np.float64)
    Y = (np.asarray(X.sum(axis=0)) > 1).astype(np.float64)
    net = Network([n_x, 8, 1], seed=0, backend="{backend}")
    # compile first (numba's compiler allocates Python objects that tracemalloc would count)
    net.fit(X[:, :400], Y[:, :400], epochs=1, mini_batch_size=200, optimizer="adam",
            progress=False)
    net.predict_proba(X[:, :400])
    tracemalloc.start()
    net.fit(X, Y, epochs=1, mini_batch_size=200, optimizer="adam", progress=False)
    A = net.predict_proba(X)
    peak = tracemalloc.get_traced_memory()[1]
    print(json.dumps({{"peak": peak, "dense": n_x * m * 8, "finite": bool(np.isfinite(A).all())}}))
""")


@pytest.mark.parametrize("backend_name", ["numpy", "numba", "c"])
def test_peak_memory_stays_well_below_the_dense_matrix(backend_name):
    from chainrule import available_backends

    if backend_name not in available_backends():
        pytest.skip(f"backend {backend_name} is not available")
    run = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT.format(backend=backend_name)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["finite"]
    # the dense X would take 160 MB; the blocks take under 8 MB each
    assert out["peak"] < out["dense"] / 8, out


@pytest.mark.parametrize("name", ["NetworkClassifier", "NetworkRegressor"])
def test_network_estimators_take_sparse(name, small_blocks):
    """The error "dense data is required" is gone: the same fit as on the dense X."""
    pytest.importorskip("sklearn")
    from chainrule import sklearn as crs

    X, Y = sparse_problem(m=200)
    Xr = X.T
    y = (X[0] > np.median(X[0])).astype(int) if name == "NetworkClassifier" else X[0] * 3.0
    fits = []
    for data in (Xr, sp.csr_matrix(Xr)):
        est = getattr(crs, name)(hidden_layer_sizes=(6,), max_iter=4, mini_batch_size=32,
                                 random_state=0, backend="numpy")
        fits.append(est.fit(data, y))
    np.testing.assert_allclose(fits[1].network_.parameters["W1"],
                               fits[0].network_.parameters["W1"], rtol=1e-12)
    np.testing.assert_allclose(fits[1].predict(sp.csc_matrix(Xr)), fits[0].predict(Xr),
                               rtol=1e-12)


def test_sparse_validation_data_and_checkpoint(tmp_path):
    X, Y = sparse_problem()
    Xs = sp.csr_matrix(X)
    runs = []
    for data, val in ((X, X[:, :50]), (Xs, sp.csc_matrix(X[:, :50]))):
        net = Network([30, 5, 1], seed=0, backend="numpy")
        net.fit(data, Y, epochs=3, mini_batch_size=40, validation_data=(val, Y[:, :50]),
                progress=False)
        runs.append(net.history_["val_cost"])
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-12)
    path = tmp_path / "ck.npz"
    full = Network([30, 5, 1], seed=0, backend="numpy")
    full.fit(Xs, Y, epochs=4, mini_batch_size=40, progress=False)
    first = Network([30, 5, 1], seed=0, backend="numpy")
    first.fit(Xs, Y, epochs=4, mini_batch_size=40, checkpoint=path, progress=False,
              callbacks=[lambda net, epoch, logs: epoch == 1])  # stops after epoch 1
    resumed = Network([30, 5, 1], seed=0, backend="numpy")
    resumed.fit(Xs, Y, epochs=4, mini_batch_size=40, resume=path, progress=False)
    for key in full.parameters:
        np.testing.assert_allclose(resumed.parameters[key], full.parameters[key], rtol=1e-12)


ESTIMATOR_MEMORY_SCRIPT = textwrap.dedent("""
    import json, tracemalloc, warnings
    import numpy as np, scipy.sparse as sp
    from chainrule.sklearn import MLPClassifier
    warnings.simplefilter("ignore")
    m, n_x = 10000, 2000
    X = sp.random(m, n_x, density=0.001, format="csr", random_state=0, dtype=np.float64)
    y = np.asarray(X.sum(axis=1)).ravel() > 1
    kw = dict(hidden_layer_sizes=(8,), solver="{solver}", max_iter=2, random_state=0,
              early_stopping={early})
    # compile first, on blocks of the same shapes (the engine's per-shape workspaces)
    MLPClassifier(**kw).fit(X[:1000], y[:1000]).predict(X[:1000])
    tracemalloc.start()
    clf = MLPClassifier(**kw).fit(X, y)
    clf.predict_proba(X)
    peak = tracemalloc.get_traced_memory()[1]
    print(json.dumps({{"peak": peak, "dense": n_x * m * 8}}))
""")


@pytest.mark.parametrize("solver, early", [("adam", True), ("sgd", False), ("lbfgs", False)])
def test_estimator_peak_memory_stays_well_below_the_dense_matrix(solver, early):
    pytest.importorskip("sklearn")
    script = ESTIMATOR_MEMORY_SCRIPT.format(solver=solver, early=early)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    # the 160 MB dense X, against blocks of under 8 MB, the engine's workspaces for batches of
    # 200 rows and the validation split's scoring blocks
    assert out["peak"] < out["dense"] / 5, out
