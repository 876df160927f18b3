"""``Network.step``'s op on the C backend, one step of the training engine (``cr_fit_epochs``)
reading the course's X and Y where they lie (``x_columns``), against the numpy backend's
step (the generic composition of the same engine's formulas)."""

from __future__ import annotations

import importlib.util
import threading

import numpy as np
import pytest

from chainrule import reference as ref
from chainrule.backends.compose import update_is_safe
from chainrule.backends.registry import Ops
from chainrule.errors import InputError
from conftest import hidden_activations, network_problem, step_loop
from chainrule.training.step import train_step

HAVE_C = importlib.util.find_spec("chainrule._cdense") is not None
pytestmark = pytest.mark.skipif(not HAVE_C, reason="chainrule._cdense was not built")
if HAVE_C:
    from chainrule.backends import c as cb

DTYPES = ["float64", "float32"]
TOL = {"float64": dict(rtol=1e-9, atol=1e-12), "float32": dict(rtol=2e-4, atol=2e-5)}
HIDDEN = hidden_activations()
OUTPUTS = [("sigmoid", "binary_crossentropy"), ("softmax", "categorical_crossentropy"),
           ("identity", "mean_squared_error")]


@pytest.fixture(params=["loops", "blas"])
def path(request):
    """Every product through the C loops, then through BLAS."""
    previous = cb.set_blas_threshold(10**18 if request.param == "loops" else 0)
    yield request.param
    cb.set_blas_threshold(previous)


problem = network_problem  # seeded X, Y, Ws, bs (tests/conftest.py)


def copies(Ws, bs):
    return [W.copy() for W in Ws], [b.copy() for b in bs]


def assert_params(actual, expected, dtype):
    for a, e in zip(actual[0] + actual[1], expected[0] + expected[1]):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a, e, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", HIDDEN, ids=str)
@pytest.mark.parametrize("output", OUTPUTS, ids=lambda o: o[0])
@pytest.mark.parametrize("dims,m", [([3, 4, 2, 1], 1), ([1, 1, 1], 7), ([5, 6, 3], 17),
                                    ([2, 1, 4], 9)], ids=str)
def test_train_step_matches_numpy(path, dtype, hidden, output, dims, m):
    act, loss = output
    if act == "sigmoid" or act == "identity":
        dims = dims[:-1] + [1 if act == "sigmoid" else dims[-1]]
    if act == "softmax" and dims[-1] == 1:
        dims = dims[:-1] + [2]
    acts = [ref.parse_activation(a) for a in [hidden] * (len(dims) - 2) + [act]]
    X, Y, Ws, bs = problem(dims, loss, m, dtype)
    for lambd, want_cost in ((0.0, False), (0.3, True)):
        expected, actual = copies(Ws, bs), copies(Ws, bs)
        ok_e, J_e = train_step(Ops("numpy"), X, Y, *expected, acts, loss, 0.1, lambd, None,
                                            want_cost)
        for _ in range(2):  # the second step reuses the plan and the parameter pointers
            ok, J = train_step(Ops("c"), X, Y, *actual, acts, loss, 0.1, lambd, None, want_cost)
            ok_e, J_e = train_step(Ops("numpy"), X, Y, *expected, acts, loss, 0.1, lambd, None,
                                                want_cost) if _ else (ok_e, J_e)
            assert ok and ok_e
            if want_cost:
                assert J == pytest.approx(J_e, rel=1e-4 if dtype == "float32" else 1e-10)
            else:
                assert np.isnan(J)
        # the course's X read where it lies (its rows when X.T is contiguous: m or n0 = 1)
        assert cb.plans._fit_plans.plan.cols == (not X.T.flags.c_contiguous)
        assert_params(actual, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_wide_steps_match_numpy_and_the_row_layout(dtype):
    """A wide layer and thousands of examples, several steps with L2: the course's layout
    (x_columns) gives the numpy step's parameters and the row layout's (the same engine
    given X.T contiguous) within the dtype's tolerance."""
    from chainrule.training.step import one_step, step_plan

    dims, loss = [600, 40, 3], "categorical_crossentropy"
    acts = [ref.parse_activation(a) for a in ["relu", "softmax"]]
    X, Y, Ws, bs = problem(dims, loss, 2000, dtype)
    expected, actual, rows = copies(Ws, bs), copies(Ws, bs), copies(Ws, bs)
    plan = step_plan(dims, acts, loss, 2000, 0.2)
    XT, YT = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)
    for _ in range(3):
        ok_e, J_e = train_step(Ops("numpy"), X, Y, *expected, acts, loss, 0.5, 0.2, None, True)
        ok, J = train_step(Ops("c"), X, Y, *actual, acts, loss, 0.5, 0.2, None, True)
        r = cb.fit_epochs(plan, XT, YT, None, perms=None, lrs=np.array([0.5]), keys=None,
                          k0=0, n_steps=1, t=0, state={}, Ws=rows[0], bs=rows[1])
        assert ok and ok_e and r.steps == 1
        assert J == pytest.approx(J_e, rel=1e-4 if dtype == "float32" else 1e-10)
    assert_params(actual, expected, dtype)
    assert_params(actual, rows, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fused", [False, True])
def test_unsafe_update_is_refused_and_touches_nothing(dtype, fused):
    dims = [3, 40, 30, 2] if fused else [4, 5, 1]
    loss = "mean_squared_error"
    acts = [ref.parse_activation(a) for a in ["tanh"] * (len(dims) - 2) + ["identity"]]
    X, Y, Ws, bs = problem(dims, loss, 6, dtype)
    huge = float(np.finfo(dtype).max)
    # |dZ[L]| = |A - 100 Y| is in the tens: lr |g| alone passes the dtype's maximum
    cases = {"overflowing update": (X, 100 * Y, huge / 4),
             "non-finite gradient": (X, np.where(np.arange(Y.size).reshape(Y.shape) == 0,
                                                 np.asarray(np.inf, dtype), Y), 0.1)}
    for name, (X_case, Y_case, lr) in cases.items():
        before = copies(Ws, bs)
        with np.errstate(all="ignore"):
            Zs, As = Ops("numpy").forward(X_case, Ws, bs, acts)
            _, dWs, dbs, _ = Ops("numpy").backward(Y_case, Zs, As, Ws, acts, loss)
            assert not update_is_safe(Ws + bs, dWs + dbs, lr), name
            ok, _ = train_step(Ops("c"), X_case, Y_case, Ws, bs, acts, loss, lr)
            n_done, _ = step_loop(cb, X_case, Y_case, Ws, bs, acts, loss, lr, 0.0, 3, 1)
        assert not ok and n_done == 0, name
        for a, e in zip(Ws + bs, before[0] + before[1]):
            np.testing.assert_array_equal(a, e)


def test_safe_update_near_the_limit_agrees_with_update_is_safe():
    """Learning rates around the overflow threshold: applied exactly when update_is_safe."""
    dims, loss = [2, 3, 1], "mean_squared_error"
    acts = [ref.parse_activation(a) for a in ["relu", "identity"]]
    X, Y, Ws, bs = problem(dims, loss, 5, "float64")
    Y = 1000 * Y  # gradients above 1, so that the learning rates below are finite
    Zs, As = Ops("numpy").forward(X, Ws, bs, acts)
    _, dWs, dbs, _ = Ops("numpy").backward(Y, Zs, As, Ws, acts, loss)
    g_max = max(float(np.abs(g).max()) for g in dWs + dbs)
    assert g_max > 4
    outcomes = set()
    for factor in (0.25, 0.999, 1.001, 4.0):
        lr = factor * (np.finfo(np.float64).max / g_max)
        with np.errstate(over="ignore"):
            expected = update_is_safe(Ws + bs, dWs + dbs, lr)
        outcomes.add(expected)
        params = copies(Ws, bs)
        with np.errstate(all="ignore"):
            ok, _ = train_step(Ops("c"), X, Y, *params, acts, loss, lr)
        assert ok == expected, factor
        if not ok:
            for a, e in zip(params[0] + params[1], Ws + bs):
                np.testing.assert_array_equal(a, e)
    assert outcomes == {True, False}


def test_cached_parameters_are_checked_again_at_every_call():
    dims, loss = [2, 3, 1], "binary_crossentropy"
    acts = [ref.parse_activation(a) for a in ["tanh", "sigmoid"]]
    X, Y, Ws, bs = problem(dims, loss, 5, "float64")
    assert train_step(Ops("c"), X, Y, Ws, bs, acts, loss, 0.1)[0]
    Ws[0].flags.writeable = False
    before = Ws[0].copy()
    with pytest.raises(InputError):
        train_step(Ops("c"), X, Y, Ws, bs, acts, loss, 0.1)
    np.testing.assert_array_equal(Ws[0], before)
    Ws[0].flags.writeable = True
    # new arrays (same shapes): the step writes into them, not into the old ones
    expected, fresh = copies(Ws, bs), copies(Ws, bs)
    old = Ws[0].copy()
    train_step(Ops("numpy"), X, Y, *expected, acts, loss, 0.1)
    train_step(Ops("c"), X, Y, *fresh, acts, loss, 0.1)
    np.testing.assert_array_equal(Ws[0], old)
    assert_params(fresh, expected, "float64")
    # non-contiguous, read-only X and Y are read through a copy
    X_f, Y_f = np.asfortranarray(X), np.asfortranarray(Y)
    X_f.flags.writeable = False
    expected, actual = copies(Ws, bs), copies(Ws, bs)
    train_step(Ops("numpy"), X, Y, *expected, acts, loss, 0.1)
    train_step(Ops("c"), X_f[:, ::1], Y_f, *actual, acts, loss, 0.1)
    assert_params(actual, expected, "float64")


def test_two_models_in_two_threads():
    """Each thread has its own plan and buffers: two models trained at once give what each
    gives alone."""
    nets = [([4, 8, 3], ["relu", "softmax"], "categorical_crossentropy", "float32"),
            ([3, 5, 1], ["tanh", "sigmoid"], "binary_crossentropy", "float64")]
    setups = []
    for dims, acts, loss, dtype in nets:
        acts = [ref.parse_activation(a) for a in acts]
        X, Y, Ws, bs = problem(dims, loss, 31, dtype)
        alone = copies(Ws, bs)
        step_loop(cb, X, Y, *alone, acts, loss, 0.05, 0.0, 200, 0)
        setups.append((X, Y, copies(Ws, bs), acts, loss, alone))
    errors = []

    def train(X, Y, params, acts, loss, _):
        try:
            for _ in range(200):
                assert train_step(Ops("c"), X, Y, *params, acts, loss, 0.05)[0]
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=train, args=s) for s in setups]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for X, Y, params, acts, loss, alone in setups:
        for a, e in zip(params[0] + params[1], alone[0] + alone[1]):
            np.testing.assert_array_equal(a, e)


def test_alternating_batch_sizes_match_numpy():
    """Mini-batches with a smaller last batch, column blocks of X (views): each step still
    matches the numpy step."""
    dims, loss = [3, 6, 1], "binary_crossentropy"
    acts = [ref.parse_activation(a) for a in ["relu", "sigmoid"]]
    X, Y, Ws, bs = problem(dims, loss, 13, "float64")
    expected, actual = copies(Ws, bs), copies(Ws, bs)
    for _ in range(3):
        for cols in (slice(0, 8), slice(8, 13)):
            train_step(Ops("numpy"), X[:, cols], Y[:, cols], *expected, acts, loss, 0.1)
            train_step(Ops("c"), X[:, cols], Y[:, cols], *actual, acts, loss, 0.1)
    assert_params(actual, expected, "float64")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fused", [False, True])
def test_per_layer_path_refuses_an_overflowing_update(dtype, fused):
    """With fixed dropout masks (the engine's composition over the C layer ops) an update
    that would pass the dtype's maximum is refused too, as update_is_safe refuses it."""
    dims = [3, 40, 30, 2] if fused else [4, 5, 1]
    loss = "mean_squared_error"
    acts = [ref.parse_activation(a) for a in ["tanh"] * (len(dims) - 2) + ["identity"]]
    X, Y, Ws, bs = problem(dims, loss, 6, dtype)
    Y = 100 * Y
    masks = [None] + [np.ones((n, 6), dtype) for n in dims[1:-1]] + [None]
    lr = float(np.finfo(dtype).max) / 4
    Zs, As = Ops("numpy").forward(X, Ws, bs, acts)
    _, dWs, dbs, _ = Ops("numpy").backward(Y, Zs, As, Ws, acts, loss)
    assert not update_is_safe(Ws + bs, dWs + dbs, lr)
    before = copies(Ws, bs)
    with np.errstate(all="ignore"):
        ok, _ = train_step(Ops("c"), X, Y, Ws, bs, acts, loss, lr, 0.0, masks)
    assert not ok
    for a, e in zip(Ws + bs, before[0] + before[1]):
        np.testing.assert_array_equal(a, e)
    ok, _ = train_step(Ops("c"), X, Y, Ws, bs, acts, loss, 0.01, 0.0, masks)
    expected = copies(*before)
    train_step(Ops("numpy"), X, Y, *expected, acts, loss, 0.01, 0.0, masks)
    assert ok
    assert_params((Ws, bs), expected, dtype)
