"""Issue 15 §1: the update-safety rule (``backends.compose.unsafe_update`` / ``update_is_safe``).

A step is applied only when its cost, every gradient, every new parameter and every new
optimiser-state entry are finite; a refused step leaves parameters, optimiser state and the
counters as they were. Each kind of overflow is planted for every optimiser x backend x dtype,
in ``fit`` (raise and skip), and in ``step``.
"""

import numpy as np
import pytest

from chainrule import Network, NonFiniteError
from chainrule.backends import compose

from conftest import OPTIMIZER_NAMES as OPTIMIZERS  # every registered optimiser
from conftest import optimizer_keeps
M = 16


def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, M))
    return X, (rng.random((1, M)) > 0.5).astype(float)


def finite(net):
    return all(np.isfinite(v).all() for k, v in net.get_state().items()
               if np.asarray(v).dtype.kind == "f" and k != "train/best")  # inf: no record yet


def same(a, b):
    return sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)


def trained(backend, dtype, optimizer):
    """A network one good epoch into an ``optimizer`` fit (so that it has optimiser state)."""
    X, Y = data()
    net = Network([3, 4, 1], dtype=dtype, backend=backend, seed=1)
    net.fit(X, Y, epochs=1, learning_rate=0.01, optimizer=optimizer, progress=False)
    return net


def huge_lr(dtype):
    return float(np.finfo(dtype).max) / 4  # finite, but lr * g overflows for any |g| > 4



def large_W2(net):
    """W2 so large that the gradient of W1 is finite but its square (RMSprop/Adam's ``s``)
    is not; the clipped cross-entropy keeps the cost finite."""
    state = net.get_state()
    big = 1e20 if net.dtype == np.float32 else 1e160
    state["W2"] = np.sign(state["W2"] + 1e-3) * big
    net.set_state(state)


# ---- the rule itself

def test_unsafe_update_names_the_first_non_finite_quantity():
    g, ok = np.ones(2), np.zeros(2)
    assert compose.unsafe_update(1.0, [("dW1", ok)], [("W1", ok)]) is None
    assert compose.unsafe_update(np.nan, [("dW1", ok)], [("W1", ok)]) == "cost"
    assert compose.unsafe_update(1.0, [("dW1", g * np.inf)], [("W1", ok)]) == "gradient dW1"
    assert compose.unsafe_update(1.0, [("dW1", g)], [("v_dW1", g * np.nan)]) == "update of v_dW1"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_update_is_safe_is_exact_where_the_bound_cannot_decide(dtype):
    big = np.finfo(dtype).max
    p = np.array([big / 2, 0.0], dtype=dtype)
    g = np.array([0.0, 1.0], dtype=dtype)
    # max|p| + lr max|g| = big / 2 + big * 0.6 overflows the bound, but no entry does
    assert compose.update_is_safe([p], [g], float(big) * 0.6)
    assert not compose.update_is_safe([p], [np.array([-1.0, 0.0], dtype=dtype)], float(big))
    # an lr past the dtype's maximum is inf there, and inf * 0 is NaN
    assert not compose.update_is_safe([np.zeros(1, dtype)], [np.zeros(1, dtype)], 1e39 if
                                      dtype == np.float32 else float("inf"))


# ---- fit: every optimiser x backend x dtype

def overflowing_fit(backend, dtype, optimizer, weighted):
    """Inputs x 1e4 (|g| ~ 1e4) at lr = max/2 after one good epoch: ``(before, net, error)``
    (``error``: the NonFiniteError, or None when the step was applied)."""
    X, Y = data()
    net = trained(backend, dtype, optimizer)
    before = net.get_state()
    try:
        net.fit(X * 1e4, Y, epochs=1, learning_rate=float(np.finfo(dtype).max) / 2,
                optimizer=optimizer, progress=False, continue_training=True,
                sample_weight=np.ones(M) if weighted else None)
    except NonFiniteError as exc:
        return before, net, exc
    return before, net, None


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_an_overflowing_update_is_refused_and_nothing_changes(backend, dtype, optimizer, weighted):
    """With |g| ~ 1e4 and lr = max/2 the first update of gd, momentum and RMSprop (|update|
    ~ 1.6 lr) overflows; Adam's is about lr, finite. Every backend decides as the numpy
    reference does (for any registered optimiser), and a refused step changes nothing."""
    before, net, exc = overflowing_fit(backend, dtype, optimizer, weighted)
    expected = exc if backend == "numpy" else overflowing_fit("numpy", dtype, optimizer,
                                                              weighted)[2]
    assert (exc is None) == (expected is None), (exc, expected)
    if exc is not None:
        assert "update of" in str(exc) and "would overflow" in str(exc), exc
        assert "was not applied" in str(exc) and "lower the learning rate" in str(exc), exc
        assert net.stop_reason_ == "nonfinite"
        after = net.get_state()
        for key in before:  # parameters, optimiser state and every counter as they were
            if key != "train/signature":
                assert np.array_equal(before[key], after[key]), key
    assert finite(net)


def test_the_overflow_test_refuses_for_the_course_optimisers():
    """The test above is not vacuous: gd, momentum and RMSprop refuse that step."""
    for optimizer in ("gd", "momentum", "rmsprop"):
        assert overflowing_fit("numpy", np.float64, optimizer, False)[2] is not None


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_each_optimiser_commits_only_finite_candidates(optimizer, dtype):
    """The optimiser itself: an update whose new parameter or state overflows returns what,
    and leaves parameters, state and t exactly as they were."""
    from chainrule.backends.registry import Ops
    from chainrule.training.optim import make_optimizer

    big = float(np.finfo(dtype).max)
    Ws, bs = [np.ones((2, 2), dtype)], [np.ones((2, 1), dtype)]
    opt = make_optimizer(optimizer)
    opt.reset({"W1": Ws[0], "b1": bs[0]})
    good = [np.full((2, 2), 0.5, dtype)], [np.full((2, 1), 0.5, dtype)]
    assert opt.update(Ops("numpy"), Ws, bs, *good, 0.1) is None  # a good step: t = 1
    saved = ([W.copy() for W in Ws + bs], opt.get_state())
    # a gradient whose square overflows (s) and whose step overflows (W) with lr near max
    dW = np.full((2, 2), np.sqrt(big) * 2, dtype)
    with np.errstate(all="ignore"):  # the optimiser's own candidates: the oracle
        new_params, new_state, _ = opt._candidates(Ws, bs, [dW], [np.zeros((2, 1), dtype)],
                                                   big / 2)
    overflows = not all(np.isfinite(a).all() for a in [*new_params.values(),
                                                        *new_state.values()])
    bad = opt.update(Ops("numpy"), Ws, bs, [dW], [np.zeros((2, 1), dtype)], big / 2)
    assert (bad is not None) == overflows, bad
    if optimizer in ("gd", "momentum", "rmsprop", "adam"):
        assert overflows  # the course's optimisers: the test is not vacuous
    if bad is not None:
        assert bad.startswith("update of"), bad
        assert all(np.array_equal(a, b) for a, b in zip(saved[0], Ws + bs))
        assert same(saved[1], opt.get_state())
    else:
        assert all(np.isfinite(a).all() for a in Ws + bs)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_skipping_overflowing_updates_never_leaves_a_nan_model(backend, dtype, optimizer):
    X, Y = data()
    net = trained(backend, dtype, optimizer)
    params = {k: v.copy() for k, v in net.parameters.items()}
    net.fit(X * 1e4, Y, epochs=3, learning_rate=huge_lr(dtype), optimizer=optimizer,
            progress=False, continue_training=True, on_nonfinite="skip", sample_weight=np.ones(M))
    assert finite(net)
    assert net.stop_reason_ == "completed"
    assert net.train_state_.skipped + net.train_state_.steps - 1 == 3  # 1: the first fit's
    if net.train_state_.skipped == 3:
        assert same(params, net.parameters)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_an_overflowing_optimiser_state_is_refused(backend, dtype, optimizer):
    """A finite gradient whose square overflows: RMSprop's and Adam's ``s`` would be inf
    (their parameter update is then 0, finite): refused; gd and momentum stay finite."""
    X, Y = data()
    net = trained(backend, dtype, optimizer)
    large_W2(net)
    before = net.get_state()
    try:
        net.fit(X, Y, epochs=1, learning_rate=1e-30, optimizer=optimizer, progress=False,
                continue_training=True, cost_every=1)
    except NonFiniteError as exc:
        assert optimizer_keeps(optimizer, "s"), exc
        assert "update of s_d" in str(exc)
        after = net.get_state()
        assert all(np.array_equal(before[k], after[k]) for k in before
                   if k != "train/signature")
    else:  # no s to overflow
        assert not optimizer_keeps(optimizer, "s"), optimizer
    assert finite(net)


def test_a_parameter_overflow_does_not_blame_the_learning_rate():
    X, Y = data()
    net = trained("numpy", "float32", "momentum")
    state = net.get_state()
    state["b2"] = np.full_like(state["b2"], 3.3e38)  # the output: A[2] = 1, cost finite
    state["opt/v_db2"] = np.full_like(state["opt/v_db2"], -2e37)  # b2 + 1.8e37: inf
    net.set_state(state)
    with pytest.raises(NonFiniteError, match="near the largest float32") as info:
        net.fit(X, Y, epochs=1, learning_rate=1.0, optimizer="momentum", progress=False,
                continue_training=True)
    assert "lower the learning rate" not in str(info.value)


# ---- step

def test_step_refuses_an_overflowing_update(backend, dtype):
    X, Y = data()
    for output in ("sigmoid", "identity"):
        net = Network([3, 4, 1], dtype=dtype, backend=backend, output=output, seed=1)
        before = net.get_state()
        lr = 1e39 if dtype == np.float32 else 1e308
        with pytest.raises(NonFiniteError, match="step: the (update of|gradient).*was not applied"):
            net.step(X * 1e3, Y, lr)
        assert same(before, net.get_state())


def test_overflowing_weights_are_named_not_the_learning_rate():
    """The forward pass overflows on a weight near the dtype's maximum: the gradient is not
    finite, and the message names the weight (the learning rate is tiny, not the cause)."""
    X, Y = data()
    for backend in ("numpy", "c"):
        net = Network([3, 4, 1], backend=backend, seed=0)
        net.parameters = {k: (np.full_like(v, 1.7e308) if k == "W1" else v)
                          for k, v in net.parameters.items()}
        with pytest.raises(NonFiniteError, match="W1 is near the largest float64") as info:
            net.step(X, Y, 1e-6)
        assert "lower the learning rate" not in str(info.value)


@pytest.mark.parametrize("mini_batch_size", [None, 8])
def test_a_learning_rate_past_float32_is_refused_by_every_backend(backend, mini_batch_size):
    """lr = 1e39 is inf in float32 (and inf * 0 = NaN): no backend applies a non-finite
    update. Every engine multiplies by lr in float32 (the Numba engine's cheap bound too),
    so every backend refuses the first step."""
    X, Y = data()
    net = Network([3, 4, 1], dtype="float32", backend=backend, seed=1)
    before = {k: v.copy() for k, v in net.parameters.items()}
    with pytest.raises(NonFiniteError, match="not applied"):
        net.fit(X, Y, epochs=2, learning_rate=1e39, progress=False,
                mini_batch_size=mini_batch_size)
    assert finite(net)
    assert same(before, net.parameters) and net.steps_trained_ == 0
