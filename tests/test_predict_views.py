"""predict / score / forward read X where it lies (C- or F-ordered, column blocks, strided
views) without a copy and without a pass of their own for NaN/inf: every layout, backend and
dtype against the reference; the refusals keep their messages."""

from __future__ import annotations

import os
import re
import tracemalloc
import warnings

import numpy as np
import pytest

from chainrule import Network
from chainrule import reference as ref
from chainrule.errors import InputError, NonFiniteError
from chainrule._scoring import block_columns

from conftest import TOLERANCES

DIMS = [13, 9, 4, 3]


def _layouts(rng, m, dtype):
    """``X`` (13, m) in every layout a user may hand over: name -> array."""
    rows = rng.standard_normal((m, DIMS[0])).astype(dtype)
    wide = rng.standard_normal((DIMS[0], 2 * m + 3)).astype(dtype)
    rows2 = rng.standard_normal((2 * m, DIMS[0] + 5)).astype(dtype)
    return {
        "C": np.ascontiguousarray(rows.T),
        "F (X_rows.T)": rows.T,
        "column block of a C array": wide[:, 3:3 + m],
        "every other column": wide[:, 1:1 + 2 * m:2],
        "rows of a wider array, transposed": rows2[::2, 2:2 + DIMS[0]].T,
        "reversed columns": rows.T[:, ::-1],
        "float64 given to either dtype": rows.T.astype(np.float64),
    }


def _expected(net, X):
    params = {k: v.astype(np.float64) for k, v in net.parameters.items()}
    return ref.model_forward(np.asarray(X, dtype=np.float64), params, net.activations)[0]


@pytest.mark.parametrize("m", [1, 2, 37])
def test_every_layout_matches_the_reference(backend, dtype, rng, m):
    net = Network(DIMS, hidden="relu", output="softmax", dtype=dtype, backend=backend, seed=3)
    tol = TOLERANCES[dtype]
    labels = rng.integers(0, 3, m)
    for name, X in _layouts(rng, m, dtype).items():
        AL_ref = _expected(net, X)
        AL, caches = net.forward(X)
        np.testing.assert_allclose(AL, AL_ref, err_msg=f"forward, {name}", **tol)
        np.testing.assert_allclose(net.predict_proba(X), AL_ref, err_msg=name, **tol)
        np.testing.assert_array_equal(net.predict(X), np.argmax(net.predict_proba(X), axis=0))
        assert net.score(X, labels) == pytest.approx(
            np.mean(np.argmax(net.predict_proba(X), axis=0) == labels))
        np.testing.assert_array_equal(caches[0][0][0], np.asarray(X, dtype=dtype))


def test_large_inputs_go_in_blocks_that_match_the_reference(backend, dtype, rng):
    dims = [5, 7, 1]
    B = block_columns(dims)
    m = 2 * B + 3 * B // 4 + 1  # three blocks, the last one shorter
    net = Network(dims, hidden="tanh", output="sigmoid", dtype=dtype, backend=backend, seed=1)
    rows = rng.standard_normal((m, dims[0])).astype(dtype)
    Y = (rng.random((1, m)) < 0.5).astype(dtype)
    for X in (rows.T, np.ascontiguousarray(rows.T)):
        AL_ref = _expected(net, X)
        np.testing.assert_allclose(net.predict_proba(X), AL_ref, **TOLERANCES[dtype])
        np.testing.assert_allclose(net.forward(X)[0], AL_ref, **TOLERANCES[dtype])
        np.testing.assert_array_equal(net.predict(X), (net.predict_proba(X) > 0.5).astype(int))
        assert net.score(X, Y) == pytest.approx(np.mean((AL_ref > 0.5) == Y), abs=2 / m)


def test_blocks_run_on_several_threads_and_match_one_thread(backend, rng, monkeypatch):
    """With more than one BLAS thread to use, the blocks of predict/score are shared among
    that many threads, the caller's among them (each product on one BLAS thread); the result is the one-thread one,
    within the dtype tolerance, and a model's ``n_threads=1`` keeps them on the caller's."""
    import threading

    from chainrule import _threads

    dims = [6, 9, 3]
    m = 5 * block_columns(dims) + 17
    X = rng.standard_normal((m, dims[0])).T
    labels = rng.integers(0, 3, m)
    one = Network(dims, output="softmax", backend=backend, seed=2, n_threads=1)
    expected, expected_score = one.predict_proba(X), one.score(X, labels)
    net = Network(dims, output="softmax", backend=backend, seed=2)
    seen = set()
    forward = net.ops_for(m).forward

    def spy(*args, **kwargs):
        seen.add(threading.current_thread().name)
        return forward(*args, **kwargs)

    # two threads to use (on any machine), unless a model's n_threads limits them
    monkeypatch.setattr(_threads, "blas_threads",
                        lambda: getattr(_threads._active, "n_threads", None) or 2)
    monkeypatch.setattr(net.ops_for(m), "forward", spy)
    np.testing.assert_allclose(net.predict_proba(X), expected, **TOLERANCES[np.dtype(np.float64)])
    assert net.score(X, labels) == pytest.approx(expected_score, abs=1 / m)
    # the caller's thread works beside one pool thread (every time: a short job's two
    # parts never both land on one pool thread)
    caller = threading.current_thread().name
    assert len(seen) == 2 and caller in seen, seen
    assert all(n.startswith("chainrule") for n in seen - {caller}), seen
    seen.clear()
    monkeypatch.setattr(one.ops_for(m), "forward", spy)
    monkeypatch.setattr(_threads, "pool", None)  # one thread: the pool is not asked
    one.predict_proba(X)
    assert seen == {threading.current_thread().name}


def _split_work_in_a_child(seed):
    from chainrule import _validate

    dims = [6, 9, 3]
    X = np.random.default_rng(seed).standard_normal((dims[0], 5 * block_columns(dims) + 17))
    net = Network(dims, output="softmax", backend="numpy", seed=2)
    big = np.zeros(_validate._FINITE_PARALLEL + 5)
    return float(net.predict_proba(X).sum()), _validate.all_finite(big)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_splits_work_on_its_own_threads(monkeypatch):
    """A child forked after its parent split predict's blocks and a finiteness check among
    threads inherits the pools but not their threads: it makes its own (before, its work
    waited for ever)."""
    import multiprocessing

    from chainrule import _threads

    monkeypatch.setattr(_threads, "blas_threads",
                        lambda: getattr(_threads._active, "n_threads", None) or 2)
    expected = _split_work_in_a_child(0)  # the parent's pool exists and has run
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.map_async(_split_work_in_a_child, [0]).get(timeout=120) == [expected]


@pytest.mark.parametrize("bad, where", [(np.nan, "X[2, 4] = nan"), (-np.inf, "X[2, 4] = -inf"),
                                        (np.inf, "X[2, 4] = inf")])
@pytest.mark.parametrize("large", [False, True], ids=["one block", "blocks"])
def test_nan_or_inf_in_X_is_refused_with_its_place(backend, bad, where, large):
    dims = [5, 7, 1]
    m = 3 * block_columns(dims) if large else 9
    net = Network(dims, hidden="relu", output="sigmoid", backend=backend, seed=1)
    rows = np.random.default_rng(0).random((m, dims[0]))
    rows[-5 if large else 4, 2] = bad  # a ReLU turns -inf into 0: Z[1] still sees it
    X = rows.T
    where = where.replace("4]", f"{m - 5}]") if large else where
    message = "X contains NaN or inf: " + re.escape(where)
    for call in (net.forward, net.predict, net.predict_proba,
                 lambda X: net.score(X, np.ones((1, m)))):
        with pytest.raises(InputError, match=message):
            call(X)


def test_an_overflow_inside_the_network_keeps_its_message(backend):
    """Z[1] overflows to inf, A[1] = inf, Z[2] = 0 inf = NaN: the forward's error, as
    before, in one block and in several."""
    net = Network([2, 3, 1], hidden="relu", output="sigmoid", dtype="float32", backend=backend,
                  seed=0)
    net.parameters = {"W1": np.full((3, 2), 3e38), "b1": np.zeros((3, 1)),
                      "W2": np.zeros((1, 3)), "b2": np.zeros((1, 1))}
    for m in (5, 3 * block_columns(net.layer_dims)):
        X = np.ones((2, m), np.float32)
        for call in (net.forward, net.predict):
            with pytest.raises(NonFiniteError,
                               match=r"forward: A\[1\] has NaN or inf \(overflow in layer 1"):
                with np.errstate(over="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # nanmax of all-NaN
                    call(X)


def test_F_ordered_X_is_not_copied(backend):
    """predict_proba of ``X_rows.T`` allocates far less than ``X``: no copy, no mask of it.
    (One thread: with several, each keeps its own blocks' buffers of a few MB.)"""
    net = Network([64, 8, 1], backend=backend, seed=0, n_threads=1)
    rows = np.random.default_rng(0).random((60000, 64))
    X = rows.T
    net.predict_proba(X)  # first calls: compiled kernels, workspaces
    tracemalloc.start()
    try:
        net.predict_proba(X)
        net.score(X, np.ones((1, X.shape[1])))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X.nbytes / 4, f"peak {peak} bytes for an X of {X.nbytes}"


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_view_layout_reads_only_unit_stride_views(dt):
    cw = pytest.importorskip("chainrule.backends.c.wrappers")
    a = np.zeros((6, 10), dt)
    assert cw.view_layout(a) == (10, 0)
    assert cw.view_layout(a[:, 2:7]) == (10, 0)
    assert cw.view_layout(a.T) == (10, 1)
    assert cw.view_layout(a[::2].T) == (20, 1)
    assert cw.view_layout(a[:, ::2]) is None
    assert cw.view_layout(a[:, ::-1]) is None
    assert cw.view_layout(np.broadcast_to(a[:1], (6, 10))) is None


def test_reused_buffers_never_leak_into_results(backend, dtype, rng):
    """predict/score reuse their Z and A buffers: what one call returned stays as it was."""
    net = Network(DIMS, hidden="relu", output="softmax", dtype=dtype, backend=backend, seed=2)
    X1 = rng.standard_normal((DIMS[0], 50)).astype(dtype)
    X2 = rng.standard_normal((DIMS[0], 50)).astype(dtype)
    first = net.predict_proba(X1)
    kept = first.copy()
    second = net.predict_proba(X2)
    np.testing.assert_array_equal(first, kept)
    assert not np.shares_memory(first, second)
    np.testing.assert_allclose(second, _expected(net, X2), **TOLERANCES[dtype])


@pytest.mark.parametrize("labels_as", ["int", "float", "row", "one-hot", "list"])
def test_score_of_class_labels_without_the_one_hot(labels_as, rng):
    """score takes class labels as the one-hot they stand for: the same accuracy for
    integer, integral float, (1, m) and list labels and for the one-hot; bad labels get
    check.Y's words."""
    from chainrule.errors import InputError, ShapeError

    dims, m = [5, 7, 4], 301
    net = Network(dims, output="softmax", seed=1, backend="numpy")
    X = rng.standard_normal((dims[0], m))
    labels = rng.integers(0, dims[-1], m)
    expected = float(np.mean(net.predict(X) == labels))
    Y = {"int": labels, "float": labels.astype(float), "row": labels[None, :],
         "one-hot": np.eye(dims[-1])[:, labels], "list": labels.tolist()}[labels_as]
    assert net.score(X, Y) == expected
    bad = labels.astype(float)
    bad[7] = 4.0
    with pytest.raises(InputError, match=r"class label 4\.0 .* 4 units"):
        net.score(X, bad)
    bad[7] = 1.5
    with pytest.raises(InputError, match="class label 1.5"):
        net.score(X, bad)
    with pytest.raises(ShapeError, match="300 class labels but there are m = 301"):
        net.score(X, labels[:-1])
