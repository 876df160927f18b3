"""The C training engine (``cr_fit_epochs`` through ``chainrule.backends.c``).

Oracles: Random123's known-answer vectors for its Philox4x32-10; the NumPy masks of
``chainrule.backends.philox`` bit for bit; the NumPy reference engine
(``chainrule.backends.engine``) within the dtype tolerance. The grid every engine runs (every optimiser x dropout x L2 x
weights x dtype x batching, the outputs, the planted refusals) is tests/test_engine.py's;
here what is the C engine's own: its output paths, m = 1 and one-unit layers, the BLAS path
with transposed flags, chunks composing bit for bit, the refusal categories, the exact check
beyond the bound, the argument checks.
"""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.backends import Ops
from chainrule.backends import philox as _philox
from chainrule import reference as ref
from chainrule.backends.engine import fit_epochs as ref_fit_epochs
from chainrule.backends.engine import n_batches
from chainrule.backends.plan import FitPlan
from chainrule.errors import InputError, ShapeError
from chainrule.optim import make_optimizer

from conftest import TOLERANCES, assert_close
from test_engine import OPT_IDS, OPTIMIZERS, PHILOX_KAT, _problem, _schedule

cb = pytest.importorskip("chainrule.backends.c", reason="the C backend is not built")
ce = cb.plans  # the op fit_epochs
cw = cb.wrappers  # the checked calls: philox4x32_10, dropout_mask


# --------------------------------------------------------------------------- Philox, masks

@pytest.mark.parametrize("counter,key,expected", PHILOX_KAT)
def test_philox4x32_c_matches_random123_known_answers(counter, key, expected):
    assert cw.philox4x32_10(counter, key) == expected


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("n,mb", [(1, 1), (1, 3), (3, 5), (7, 13), (64, 128), (5, 67)])
def test_dropout_mask_c_bit_identical_to_numpy(dtype, n, mb):
    for key in (0, 1, 2 ** 63 - 1, 0xDEADBEEF12345678, 2 ** 64 - 1):
        # 0.3, 0.7: not float32 numbers (the comparison is in float64 everywhere)
        for p, layer, batch in ((0.5, 1, 0), (0.8, 3, 11), (0.999, 2, 2 ** 32 - 1),
                                (0.3, 4, 7), (0.7, 1, 468), (1.0, 1, 0)):
            expected = _philox.dropout_mask(key, layer, batch, n, mb, p, dtype)
            actual = cw.dropout_mask(key, layer, batch, n, mb, p, dtype)
            assert actual.dtype == expected.dtype and actual.shape == expected.shape
            assert actual.tobytes() == expected.tobytes()


def test_dropout_mask_c_rejects_bad_arguments():
    with pytest.raises(InputError):
        cw.dropout_mask(1, 1, 0, 2, 2, 0.0, np.float64)
    with pytest.raises(InputError):
        cw.dropout_mask(1, 1, 0, 2, 2, 0.5, np.int32)
    with pytest.raises(ShapeError):
        cw.dropout_mask(1, 1, 0, 0, 2, 0.5, np.float64)


# --------------------------------------------------------------------------- the engine

def _network(dims, dtype, seed=4):
    rng = np.random.default_rng(seed)
    p = ref.initialize_parameters(dims, rng=rng, dtype=dtype)
    L = len(dims) - 1
    return [p[f"W{l}"] for l in range(1, L + 1)], [p[f"b{l}"] for l in range(1, L + 1)]


def _fresh_state(optimizer, Ws, bs):
    opt = make_optimizer(optimizer)
    opt.reset({key: value for l in range(1, len(Ws) + 1)
               for key, value in ((f"W{l}", Ws[l - 1]), (f"b{l}", bs[l - 1]))})
    return opt


def _both(dims, acts, loss, X, Y, dtype, *, optimizer, s, epochs=3, lambd=0.0, probs=None,
          w=None, shuffle=True, lrs=None, k0=0, n_steps=None, t=0, seed=3, init=None):
    """Run the reference and the C engine on copies of one start (``init(Ws, bs)`` may
    change it); ``(expected, actual)``, each ``(result, Ws, bs, state)``."""
    dtype = np.dtype(dtype)
    m = X.shape[1]
    probs = [1.0] * (len(dims) - 2) if probs is None else probs
    perms, keys = _schedule(m, epochs, probs, seed)
    perms = perms if shuffle else None
    lrs = np.full(epochs, 0.05) if lrs is None else np.asarray(lrs, dtype=np.float64)
    n_steps = epochs * n_batches(m, s) if n_steps is None else n_steps
    XT, YT = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)
    wd = None if w is None else np.asarray(w, dtype=dtype)
    Ws0, bs0 = _network(dims, dtype)
    if init is not None:
        init(Ws0, bs0)
    out = []
    for engine in (ref_fit_epochs, ce.fit_epochs):
        Ws, bs = [W.copy() for W in Ws0], [b.copy() for b in bs0]
        opt = _fresh_state(optimizer, Ws, bs)
        plan = FitPlan.build(dims, acts, loss, opt, mini_batch_size=s, lambd=lambd,
                             keep_probs=probs)
        res = engine(plan, XT, YT, wd, perms=perms, lrs=lrs, keys=keys, k0=k0, n_steps=n_steps,
                     t=t, state=opt.state, Ws=Ws, bs=bs)
        out.append((res, Ws, bs, opt.state))
    return out


def _assert_same(expected, actual, dtype, steps=None):
    (r_e, Ws_e, bs_e, st_e), (r_a, Ws_a, bs_a, st_a) = expected, actual
    assert (r_a.steps, r_a.status, r_a.epoch, r_a.batch, r_a.t) == \
        (r_e.steps, r_e.status, r_e.epoch, r_e.batch, r_e.t)
    assert r_a.what == r_e.what
    if steps is not None:
        assert r_a.steps == steps
    for l, (P, Q) in enumerate(zip(Ws_a, Ws_e), 1):
        assert_close(P, Q, dtype, f"W{l}")
    for l, (P, Q) in enumerate(zip(bs_a, bs_e), 1):
        assert_close(P, Q, dtype, f"b{l}")
    assert sorted(st_a) == sorted(st_e)
    for key in st_e:
        assert_close(st_a[key], st_e[key], dtype, key)
    tol = TOLERANCES[np.dtype(dtype)]
    np.testing.assert_allclose(r_a.cost_sum, r_e.cost_sum, **tol)
    np.testing.assert_allclose(r_a.weight_sum, r_e.weight_sum, **tol)
    np.testing.assert_array_equal(r_a.correct, r_e.correct)


# The every-optimiser x dropout x L2 x weights x dtype grid, the outputs softmax + CE,
# sigmoid + CCE and identity + MSE, and the planted refusals run for every engine in
# tests/test_engine.py. Here: the C engine's other output paths, dZ[L] = dA[L] g'(Z[L])
# (sigmoid + MSE) and softmax's Jacobian times dA (softmax + MSE or BCE).
EXTRA = {
    "sigmoid-mse": lambda m, dt: _retarget(_problem("sigmoid-cce", m, dt),
                                           "mean_squared_error"),
    "softmax-mse": lambda m, dt: _retarget(_problem("softmax", m, dt), "mean_squared_error"),
    "softmax-bce": lambda m, dt: _retarget(_problem("softmax", m, dt), "binary_crossentropy"),
}


def _retarget(problem, loss):
    dims, acts, _, X, Y = problem
    return dims, acts, loss, X, Y


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kind", list(EXTRA))
@pytest.mark.parametrize("optimizer", [{"name": "gd"}, {"name": "adam"}], ids=["gd", "adam"])
def test_c_engine_matches_reference_for_every_output(kind, optimizer, dtype):
    dims, acts, loss, X, Y = EXTRA[kind](23, dtype)
    probs = [0.75] * (len(dims) - 2)
    expected, actual = _both(dims, acts, loss, X, Y, dtype, optimizer=optimizer, s=8,
                             lambd=0.3, probs=probs, w=np.linspace(0.5, 1.5, 23))
    _assert_same(expected, actual, dtype, steps=9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", ["m1", "n1", "blas"])
def test_c_engine_matches_reference_on_awkward_shapes(case, dtype):
    optimizer = {"name": "adam"}
    if case == "m1":  # one example: one batch of one, smaller than mini_batch_size
        dims, acts, loss, X, Y = _problem("softmax", 1, dtype)
        s, probs = 4, [0.7]
    elif case == "n1":  # a hidden layer and the output of one unit
        dims, acts, loss = [3, 1, 1], [("tanh", 0.0), ("sigmoid", 0.0)], "binary_crossentropy"
        _, _, _, X, Y = _problem("binary", 13, dtype)
        s, probs = 5, [0.8]
    else:  # every product through BLAS (transposed flags), a wider network
        rng = np.random.default_rng(5)
        dims, acts, loss = [20, 33, 17, 4], [("relu", 0.0), ("leaky_relu", 0.2),
                                             ("softmax", 0.0)], "categorical_crossentropy"
        X = rng.standard_normal((20, 70)).astype(dtype)
        Y = np.eye(4, dtype=dtype)[:, rng.integers(0, 4, 70)]
        s, probs = 16, [0.8, 0.9]
    previous = cb.set_blas_threshold(0) if case == "blas" else None
    try:
        expected, actual = _both(dims, acts, loss, X, Y, dtype, optimizer=optimizer, s=s,
                                 lambd=0.2, probs=probs, w=np.linspace(0.5, 1.5, X.shape[1]))
    finally:
        if previous is not None:
            cb.set_blas_threshold(previous)
    _assert_same(expected, actual, dtype)


def _one_identity_step(X, Y, w, output, loss):
    """One C engine step of rate 0 through one layer with ``W = I, b = 0`` (so ``A[L] =
    g(X)``) over all of ``X``: the step's result and the engine's ``A[L]``."""
    n, m = X.shape
    dtype = X.dtype
    plan = FitPlan.build([n, n], [output], loss, make_optimizer("gd"), mini_batch_size=m)
    W, b = np.eye(n, dtype=dtype), np.zeros((n, 1), dtype)
    res = ce.fit_epochs(plan, np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T), w,
                        perms=None, lrs=np.array([0.0]), keys=None, k0=0, n_steps=1, t=0,
                        state={}, Ws=[W], bs=[b])
    assert res.steps == 1
    return res, Ops("c").forward(X, [W], [b], [(output, 0.0)])[1][-1]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_c_engine_binary_cost_matches_numpy_across_probabilities(weighted, dtype):
    """One output unit's binary cross-entropy runs a vectorised log (csrc/dense.c,
    cr_log_positive): the cost of a step matches NumPy's log to a few ulp per term, over
    probabilities from the clip at eps to 1 - eps, with 0/1 and soft labels and weights."""
    rng = np.random.default_rng(5)
    m = 3001
    z = np.concatenate([np.linspace(-40, 40, m - 5), [-800.0, 800.0, 0.0, 1e-9, -1e-9]])
    X = z[None, :].astype(dtype)  # W = 1, b = 0: A = sigmoid(z)
    Y = (rng.random((1, m)) > 0.5).astype(dtype)
    Y[0, ::7] = rng.random(len(Y[0, ::7])).astype(dtype)  # soft labels too
    w = (rng.random(m) + 0.5).astype(dtype) if weighted else None
    res, AL = _one_identity_step(X, Y, w, "sigmoid", "binary_crossentropy")
    # the reference in float64 on the dtype's clip (eps of the dtype), as the engine judges
    eps = np.finfo(dtype).eps
    A = np.clip(AL, eps, 1 - eps).astype(np.float64)
    Y64 = Y.astype(np.float64)
    losses = -(Y64 * np.log(A) + (1 - Y64) * np.log((1 - np.clip(AL, eps, 1 - eps))
                                                     .astype(np.float64)))[0]
    expected = np.average(losses, weights=None if w is None else w.astype(np.float64))
    # the logs and the sum in float64 in both: a few ulp of float64 apart (float32: 1 - y
    # of a soft label is rounded to float32 in the engine, as the reference's would be)
    rtol = 64 * np.finfo(np.float64).eps if dtype == np.float64 else 1e-9
    np.testing.assert_allclose(res.cost_sum[0] / res.weight_sum[0], expected, rtol=rtol)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("n", [3, 10, 1500], ids=["3-classes", "10-classes", "1500-classes"])
def test_c_engine_categorical_cost_and_count_match_numpy(n, dtype, weighted):
    """Categorical cross-entropy's terms by the vectorised log in blocks of rows (cce_sum;
    1500 classes: longer than a block, one example at a time) and the count of right
    predictions (argmax by selects): NumPy's cost to a few ulp, over probabilities down to
    the clip, one-hot, soft and all-zero label columns, ties, weighted or not."""
    rng = np.random.default_rng(9)
    m = 517
    X = (rng.standard_normal((n, m)) * 12).astype(dtype)  # W = I, b = 0: A = softmax(X)
    X[:, 3] = 0  # a tie everywhere: the first class leads in both argmaxes
    Y = np.eye(n, dtype=dtype)[:, rng.integers(0, n, m)]
    Y[:, ::9] = rng.dirichlet(np.ones(n), size=len(range(0, m, 9))).T.astype(dtype)  # soft
    Y[:, 5] = 0  # an example without a label: loss 0
    w = (rng.random(m) + 0.5).astype(dtype) if weighted else None
    res, AL = _one_identity_step(X, Y, w, "softmax", "categorical_crossentropy")
    eps = np.finfo(dtype).eps
    A = np.clip(AL, eps, 1 - eps).astype(np.float64)
    losses = -(Y.astype(np.float64) * np.log(A)).sum(axis=0)
    expected = np.average(losses, weights=None if w is None else w.astype(np.float64))
    rtol = 64 * np.finfo(np.float64).eps if dtype == np.float64 else 1e-9
    np.testing.assert_allclose(res.cost_sum[0] / res.weight_sum[0], expected, rtol=rtol)
    right = int(np.sum(np.argmax(AL, axis=0) == np.argmax(Y, axis=0)))
    assert int(res.correct[0]) == right


def test_c_engine_partial_chunks_and_decayed_rates():
    """A budget that ends inside an epoch, a start inside one, and per-epoch rates."""
    dims, acts, loss, X, Y = _problem("softmax", 23, np.float64)
    for k0, n_steps in ((0, 4), (2, 5), (1, 100)):
        expected, actual = _both(dims, acts, loss, X, Y, np.float64, optimizer={"name": "adam"},
                                 s=8, probs=[0.7], lrs=[0.1, 0.05, 0.02], k0=k0,
                                 n_steps=n_steps, t=7)
        _assert_same(expected, actual, np.float64)


def test_c_engine_chunks_compose_to_one_call():
    m, s, epochs = 23, 8, 3
    dims, acts, loss, X, Y = _problem("softmax", m, np.float64)
    probs = [0.7]
    perms, keys = _schedule(m, epochs, probs)
    XT, YT, lrs = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T), np.array([.1, .05, .02])
    config = {"name": "adam"}
    Ws, bs = _network(dims, np.float64)
    Ws2, bs2 = [W.copy() for W in Ws], [b.copy() for b in bs]
    opt, opt2 = _fresh_state(config, Ws, bs), _fresh_state(config, Ws2, bs2)
    plan = FitPlan.build(dims, acts, loss, opt, mini_batch_size=s, lambd=0.1, keep_probs=probs)
    one = ce.fit_epochs(plan, XT, YT, None, perms=perms, lrs=lrs, keys=keys, k0=0, n_steps=100,
                        t=0, state=opt.state, Ws=Ws, bs=bs)
    e, k, t = 0, 0, 0
    cost_sum = np.zeros(epochs)
    while e < epochs:
        part = ce.fit_epochs(plan, XT, YT, None, perms=perms[e:], lrs=lrs[e:], keys=keys[e:],
                             k0=k, n_steps=2, t=t, state=opt2.state, Ws=Ws2, bs=bs2)
        cost_sum[e:] += part.cost_sum
        e, k, t = e + part.epoch, part.batch, part.t
    assert one.steps == 9 and t == one.t == 9 and one.status == 0
    for P, Q in zip(Ws + bs + list(opt.state.values()), Ws2 + bs2 + list(opt2.state.values())):
        np.testing.assert_array_equal(P, Q)  # the same C arithmetic in the same order
    np.testing.assert_allclose(cost_sum, one.cost_sum, rtol=1e-14)


# --------------------------------------------------------------------------- refusals

def _refusal_problem(kind, dtype):
    """A problem whose step ``refused_at`` is refused, and the options that make it so."""
    dims, acts, loss, X, Y = _problem("softmax", 23, dtype)
    big = float(np.finfo(dtype).max)
    if kind == "cost":  # a NaN example in the second batch (identity order): the cost
        X = X.copy()
        X[1, 9] = np.nan
        return dims, acts, loss, X, Y, dict(optimizer={"name": "adam"}, shuffle=False)
    if kind == "parameter":  # gd: p - lr g overflows (|g| > 1 somewhere)
        return dims, acts, loss, X * dtype(50), Y, dict(optimizer={"name": "gd"}, lrs=[big] * 3)
    if kind == "gradient":
        # W2 rows of +-0.6 max: softmax saturates to (1/2, 0, 1/2) (the clipped cost is
        # finite) and W2^T dZ2 = 0.6 max (1/2 + 1 + 1/2) overflows for class 1: dW1 is not
        # finite; small inputs keep Z2 finite
        def init(Ws, bs):
            Ws[1][...] = dtype(0.6 * big) * np.array([[1], [-1], [1]], dtype)

        return dims, acts, loss, X * dtype(1e-3), Y, dict(optimizer={"name": "momentum"},
                                                           init=init)
    # "state": inputs so large that g^2 overflows in Adam's s; W, b stay finite
    return dims, acts, loss, X * dtype(big ** 0.75), Y, dict(optimizer={"name": "adam"})


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kind", ["cost", "parameter", "gradient", "state"])
def test_c_engine_refuses_as_the_reference_does(kind, dtype):
    dims, acts, loss, X, Y, kw = _refusal_problem(kind, dtype)
    with np.errstate(all="ignore"):
        expected, actual = _both(dims, acts, loss, X, Y, dtype, s=8, **kw)
    assert expected[0].status == 1, "the problem must make the reference refuse"
    word = {"cost": "cost", "parameter": "update of W", "gradient": "gradient",
            "state": "update of s_d"}[kind]
    assert expected[0].what.startswith(word), expected[0].what
    _assert_same(expected, actual, dtype)


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=OPT_IDS)
def test_c_engine_refused_step_changes_nothing(optimizer):
    """The first step refused: parameters, state, t and accumulators exactly as given."""
    dims, acts, loss, X, Y = _problem("softmax", 23, np.float64)
    # large inputs, large gradients: every optimiser's update overflows at this rate
    XT, YT = np.ascontiguousarray(X.T * 1e3), np.ascontiguousarray(Y.T)
    Ws, bs = _network(dims, np.float64)
    opt = _fresh_state(optimizer, Ws, bs)
    for v in opt.state.values():
        v[...] = np.random.default_rng(1).random(v.shape)  # a state that is not all zeros
    before = [P.copy() for P in Ws + bs + list(opt.state.values())]
    huge = np.finfo(np.float64).max
    res = ce.fit_epochs(FitPlan.build(dims, acts, loss, opt, mini_batch_size=8), XT, YT, None,
                        perms=None, lrs=[huge], keys=None, k0=1, n_steps=3, t=41,
                        state=opt.state, Ws=Ws, bs=bs)
    assert (res.steps, res.status, res.epoch, res.batch, res.t) == (0, 1, 0, 1, 41)
    assert res.what.startswith("update of"), res.what
    for P, Q in zip(Ws + bs + list(opt.state.values()), before):
        assert P.tobytes() == Q.tobytes()
    assert not res.cost_sum.any() and not res.weight_sum.any() and not res.correct.any()


# --------------------------------------------------------------------------- arguments

def _args(dtype=np.float64):
    dims, acts, loss, X, Y = _problem("softmax", 10, dtype)
    Ws, bs = _network(dims, dtype)
    opt = _fresh_state({"name": "momentum"}, Ws, bs)
    return dict(layer_dims=dims, activations=acts, loss=loss, optimizer=opt, mini_batch_size=4,
                lambd=0.0, keep_probs=[1.0], XT=np.ascontiguousarray(X.T),
                YT=np.ascontiguousarray(Y.T), w=None, perms=None, lrs=[0.1], keys=None, k0=0,
                n_steps=2, t=0, state=opt.state, Ws=Ws, bs=bs)


_PLAN_ARGS = ("layer_dims", "activations", "loss", "optimizer", "mini_batch_size", "lambd",
              "keep_probs")


def _call(args):
    """``ce.fit_epochs`` with the plan of ``args`` (built first: it checks its own fields)."""
    args = dict(args)
    plan = FitPlan.build(*(args.pop(k) for k in _PLAN_ARGS[:4]),
                         **{k: args.pop(k) for k in _PLAN_ARGS[4:]})
    return ce.fit_epochs(plan, args.pop("XT"), args.pop("YT"), args.pop("w"), **args)


@pytest.mark.parametrize("change,error", [
    (lambda a: a.update(XT=a["XT"].astype(np.float32)), InputError),  # dtype
    # not C-contiguous, with a permutation (without one, X.T of the course's X is read
    # where it lies: test_cbackend_step.py)
    (lambda a: a.update(XT=np.asfortranarray(a["XT"]), perms=np.array([np.arange(10)])),
     InputError),
    (lambda a: a.update(YT=a["YT"][:5]), ShapeError),  # another m
    (lambda a: a.update(perms=np.array([np.arange(10) + 1])), InputError),  # index m
    (lambda a: a.update(keep_probs=[0.5]), InputError),  # dropout without keys
    (lambda a: a.update(keep_probs=[1.5], keys=np.zeros(1, np.int64)), InputError),
    (lambda a: a.update(k0=3), InputError),  # batches 0..2 only
    (lambda a: a.update(state={}), InputError),  # momentum without v
    (lambda a: a.update(masks=lambda e, k, mb: {}), InputError),  # course-exact masks
    (lambda a: a.update(loss="hinge"), InputError),
])
def test_c_engine_checks_its_arguments(change, error):
    args = _args()
    change(args)
    before = [P.copy() for P in args["Ws"]]
    with pytest.raises(error):
        _call(args)
    for P, Q in zip(args["Ws"], before):
        np.testing.assert_array_equal(P, Q)


def test_c_engine_read_only_parameters_are_refused():
    args = _args()
    args["Ws"][0].flags.writeable = False
    with pytest.raises(InputError, match="writeable"):
        _call(args)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=OPT_IDS)
def test_c_engine_applies_what_only_the_exact_check_proves_safe(optimizer, dtype):
    """A rate so large that the bound from the maxima cannot prove the update finite (the
    engine then checks every candidate): applied or refused exactly as the reference."""
    dims, acts, loss, X, Y = _problem("softmax", 23, dtype)
    big = float(np.finfo(dtype).max)
    for lr in (0.3 * big, 1e-3 * big):
        with np.errstate(all="ignore"):
            expected, actual = _both(dims, acts, loss, X * dtype(1e-3), Y, dtype,
                                     optimizer=optimizer, s=8, lrs=[lr] * 3, n_steps=2)
        _assert_same(expected, actual, dtype)
