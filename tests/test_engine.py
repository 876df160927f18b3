"""The training engine (``fit_epochs``): Philox masks, the NumPy reference and the compiled ones.

Oracles: Random123's known-answer vectors for Philox4x32-10; today's step-by-step fit
(``FitRun`` on the numpy backend, with the same permutations and masks fed in) for the
reference engine; the reference engine for the compiled ones, within the dtype tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import Network
from chainrule.backends import Ops, available_backends
from chainrule.backends import philox as _philox
from chainrule.backends.engine import fit_epochs as ref_fit_epochs
from chainrule.backends.engine import n_batches
from chainrule.backends.plan import FitPlan
from chainrule.errors import InputError
from chainrule.optim import make_optimizer

from conftest import (OPTIMIZER_CONFIGS, OPTIMIZER_IDS, OPTIMIZER_NAMES, TOLERANCES, assert_close,
                      optimizer_counts_steps, optimizer_keeps)

try:
    from chainrule.core import philox as core_philox
except ImportError as exc:  # numba missing: the compiled tests show as skipped
    core_philox = None
    _NUMBA_MISSING = str(exc)
else:
    _NUMBA_MISSING = ""

needs_numba = pytest.mark.skipif(core_philox is None, reason=f"numba: {_NUMBA_MISSING}")

# Random123's kat_vectors for philox4x32_10: counter words, key words, output words.
PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]

# Every registered optimiser (chainrule.optim.OPTIMIZERS), with its defaults and a variant.
OPTIMIZERS, OPT_IDS = OPTIMIZER_CONFIGS, OPTIMIZER_IDS

# (m, mini_batch_size): a last smaller batch; one example per batch.
BATCHING = [(23, 8), (5, 1)]


# --------------------------------------------------------------------------- Philox

@pytest.mark.parametrize("counter,key,expected", PHILOX_KAT)
def test_philox4x32_numpy_matches_random123_known_answers(counter, key, expected):
    actual = _philox.philox4x32(np.array(counter, dtype=np.uint32), key)
    assert actual.dtype == np.uint32
    assert tuple(int(x) for x in actual) == expected


@needs_numba
@pytest.mark.parametrize("counter,key,expected", PHILOX_KAT)
def test_philox4x32_numba_matches_random123_known_answers(counter, key, expected):
    out = np.zeros((1, 4), dtype=np.uint64)
    core_philox.philox4x32_block(np.array([counter], dtype=np.uint64), key[0], key[1], out)
    assert tuple(int(x) for x in out[0]) == expected


def test_philox4x32_numpy_vectorises_over_counters():
    counters = np.array([c for c, _, _ in PHILOX_KAT[:2]], dtype=np.uint32)
    # the same key for both rows: the first row's vector under key (0, 0) again
    actual = _philox.philox4x32(counters, (0, 0))
    assert tuple(int(x) for x in actual[0]) == PHILOX_KAT[0][2]
    assert tuple(int(x) for x in actual[1]) != PHILOX_KAT[1][2]  # other key


def test_dropout_mask_follows_the_counter_layout():
    """Entry (i, j) is word q & 3 of philox((q >> 2, layer, batch, 0)), q = i mb + j."""
    key, layer, batch, n, mb, p = 0x0123456789ABCDEF, 2, 7, 3, 5, 0.6
    D = _philox.dropout_mask(key, layer, batch, n, mb, p, np.float64)
    k0, k1 = key & 0xFFFFFFFF, key >> 32
    for i in range(n):
        for j in range(mb):
            q = i * mb + j
            word = _philox.philox4x32(np.array([q >> 2, layer, batch, 0], np.uint32),
                                      (k0, k1))[q & 3]
            u = (int(word) >> 8) * 2.0 ** -24
            assert D[i, j] == (1 / p if u < p else 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_mask_keeps_about_p_and_scales_by_one_over_p(dtype):
    D = _philox.dropout_mask(99, 1, 0, 200, 300, 0.7, dtype)
    assert D.dtype == dtype and D.shape == (200, 300)
    assert set(np.unique(D)) == {0.0, dtype(1) / dtype(0.7)}
    assert abs(np.mean(D > 0) - 0.7) < 0.01  # 60000 Bernoulli(0.7): sd 0.0019


def test_dropout_masks_differ_by_key_layer_and_batch():
    base = _philox.dropout_keep(5, 1, 0, 10, 20, 0.5)
    for other in (_philox.dropout_keep(6, 1, 0, 10, 20, 0.5),
                  _philox.dropout_keep(5, 2, 0, 10, 20, 0.5),
                  _philox.dropout_keep(5, 1, 1, 10, 20, 0.5),
                  _philox.dropout_keep(5 + 2 ** 32, 1, 0, 10, 20, 0.5)):
        assert (other != base).mean() > 0.3


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n,mb", [(1, 1), (1, 3), (3, 5), (7, 13), (64, 128)])
def test_dropout_masks_bit_identical_numpy_numba(dtype, n, mb):
    dtype = np.dtype(dtype)
    for key in (0, 1, 2 ** 63 - 1, 0xDEADBEEF12345678):
        for p in (0.5, 0.8, 0.999):
            expected = _philox.dropout_mask(key, 3, 11, n, mb, p, dtype)
            actual = np.empty((n, mb), dtype)
            core_philox.dropout_mask(actual, np.uint64(key), 3, 11, p,
                                     dtype.type(1) / dtype.type(p))
            assert actual.tobytes() == expected.tobytes()


# --------------------------------------------------------------------------- problems

def _problem(kind, m, dtype, seed=0):
    """``(layer_dims, activations, loss, X, Y)`` of a small classification/regression task."""
    rng = np.random.default_rng(seed)
    if kind == "binary":
        dims, acts, loss = [3, 5, 4, 1], [("relu", 0.0), ("tanh", 0.0), ("sigmoid", 0.0)], \
            "binary_crossentropy"
        X = rng.standard_normal((3, m))
        Y = (X[0] + X[1] * X[2] > 0).astype(float)[None]
    elif kind == "softmax":
        dims, acts, loss = [4, 6, 3], [("leaky_relu", 0.1), ("softmax", 0.0)], \
            "categorical_crossentropy"
        X = rng.standard_normal((4, m))
        Y = np.eye(3)[:, rng.integers(0, 3, m)]
    elif kind == "sigmoid-cce":  # sigmoid + categorical CE: the non-fused output delta
        dims, acts, loss = [3, 4, 2], [("sigmoid", 0.0), ("sigmoid", 0.0)], \
            "categorical_crossentropy"
        X = rng.standard_normal((3, m))
        Y = np.eye(2)[:, rng.integers(0, 2, m)]
    else:  # regression
        dims, acts, loss = [2, 5, 2], [("tanh", 0.0), ("identity", 0.0)], "mean_squared_error"
        X = rng.standard_normal((2, m))
        Y = np.stack([np.sin(X[0]), X[0] * X[1]])
    return dims, acts, loss, X.astype(dtype), Y.astype(dtype)


def _schedule(m, epochs, keep_probs, seed=3):
    """Each epoch's permutation and dropout key, drawn as fit draws them."""
    rng = np.random.default_rng(seed)
    perms, keys = [], []
    for _ in range(epochs):
        perms.append(rng.permutation(m))
        keys.append(rng.integers(0, 2 ** 63, dtype=np.int64) if min(keep_probs, default=1) < 1
                    else 0)
    return np.array(perms, dtype=np.int64), np.array(keys, dtype=np.int64)


def _start(net, optimizer):
    """Fresh copies of the network's ``Ws, bs`` and a zero optimiser state for them."""
    Ws = [net.parameters[f"W{l}"].copy() for l in range(1, net.L + 1)]
    bs = [net.parameters[f"b{l}"].copy() for l in range(1, net.L + 1)]
    opt = make_optimizer(optimizer)
    opt.reset({key: value for l in range(1, net.L + 1)
               for key, value in ((f"W{l}", Ws[l - 1]), (f"b{l}", bs[l - 1]))})
    return Ws, bs, opt


def _fit_with_fed_schedule(monkeypatch, net, X, Y, perms, keys, probs, **kw):
    """``net.fit`` in the course-exact mode (masks drawn step by step, the steps composed
    from the numpy backend's ops) with the epochs' permutations and the counter-based masks
    fed in instead of the ones drawn from the model's generator: fit's loop (epochs, batches,
    chunks, learning rates, records) against one call of the reference."""
    from chainrule.training import loop as _training

    m, s = X.shape[1], kw["mini_batch_size"]
    steps = iter([(e, k) for e in range(len(perms)) for k in range(n_batches(m, s))])

    def permutation(m_, epoch, rng, shuffle, shuffle_seed):
        return perms[epoch]

    def masks(rng, layer_dims, probs_, mb, dtype):
        e, k = next(steps)
        out = [None]
        for l, p in enumerate(probs_, 1):
            out.append(None if p == 1 else
                       _philox.dropout_mask(keys[e], l, k, layer_dims[l], mb, p, dtype))
        return out + [None]

    monkeypatch.setattr(_training, "permutation", permutation)
    monkeypatch.setattr(_training, "dropout_masks", masks)
    return net.fit(X, Y, keep_prob=probs, progress=False, dropout_rng="generator", **kw)


# --------------------------------------------------------------------------- reference engine

@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("m,s", BATCHING, ids=["last-smaller", "mb1"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("lambd", [0.0, 0.7], ids=["no-l2", "l2"])
@pytest.mark.parametrize("dropout", [False, True], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=OPT_IDS)
def test_reference_engine_matches_todays_fit(monkeypatch, optimizer, dropout, lambd, weighted,
                                             m, s, dtype):
    dims, acts, loss, X, Y = _problem("binary", m, dtype)
    epochs, lr = 3, 0.05
    probs = [0.6, 0.85] if dropout else [1.0, 1.0]
    w = np.linspace(0.2, 2.0, m) if weighted else None
    perms, keys = _schedule(m, epochs, probs)
    net = Network(dims, activations=acts, loss=loss, seed=4, dtype=dtype, backend="numpy")
    Ws, bs, opt = _start(net, optimizer)

    res = ref_fit_epochs(FitPlan.build(dims, acts, loss, opt, mini_batch_size=s, lambd=lambd,
                                       keep_probs=probs),
                         np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T),
                         None if w is None else w.astype(dtype), perms=perms,
                         lrs=np.full(epochs, lr), keys=keys, k0=0,
                         n_steps=epochs * n_batches(m, s), t=opt.t, state=opt.state, Ws=Ws,
                         bs=bs)

    _fit_with_fed_schedule(monkeypatch, net, X, Y, perms, keys, probs, epochs=epochs,
                           learning_rate=lr, optimizer=dict(optimizer), mini_batch_size=s,
                           lambd=lambd, sample_weight=w)
    assert res.status == 0 and res.steps == epochs * n_batches(m, s)
    assert (res.epoch, res.batch) == (epochs, 0)
    for l in range(1, net.L + 1):
        assert_close(Ws[l - 1], net.parameters[f"W{l}"], dtype, f"W{l}")
        assert_close(bs[l - 1], net.parameters[f"b{l}"], dtype, f"b{l}")
    for key, value in net.optimizer_.state.items():
        assert_close(opt.state[key], value, dtype, key)
    assert res.t == net.optimizer_.t
    np.testing.assert_allclose(res.cost_sum / res.weight_sum, net.history_["cost"],
                               **TOLERANCES[np.dtype(dtype)])
    np.testing.assert_allclose(res.weight_sum, w.sum() if weighted else m)


def test_reference_engine_chunks_compose_to_one_call():
    """Calls of a few steps each, continued at (epoch, batch), equal one call."""
    m, s, epochs = 23, 8, 3
    dims, acts, loss, X, Y = _problem("softmax", m, np.float64)
    probs = [0.7]
    perms, keys = _schedule(m, epochs, probs)
    net = Network(dims, activations=acts, loss=loss, seed=1, backend="numpy")
    XT, YT, lrs = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T), np.array([.1, .05, .02])
    config = {"name": "adam"}
    Ws, bs, opt = _start(net, config)
    plan = FitPlan.build(dims, acts, loss, opt, mini_batch_size=s, lambd=0.1, keep_probs=probs)
    one = ref_fit_epochs(plan, XT, YT, None, perms=perms, lrs=lrs, keys=keys, k0=0,
                         n_steps=100, t=0, state=opt.state, Ws=Ws, bs=bs)
    Ws2, bs2, opt2 = _start(net, config)
    plan2 = FitPlan.build(dims, acts, loss, opt2, mini_batch_size=s, lambd=0.1,
                          keep_probs=probs)
    e, k, t = 0, 0, 0
    cost_sum = np.zeros(epochs)
    while e < epochs:
        part = ref_fit_epochs(plan2, XT, YT, None, perms=perms[e:], lrs=lrs[e:], keys=keys[e:],
                              k0=k, n_steps=2, t=t, state=opt2.state, Ws=Ws2, bs=bs2)
        cost_sum[e:] += part.cost_sum
        e, k, t = e + part.epoch, part.batch, part.t
    assert one.steps == 9 and t == one.t == 9
    for P, Q in zip(Ws + bs, Ws2 + bs2):
        np.testing.assert_array_equal(P, Q)
    np.testing.assert_array_equal(cost_sum, one.cost_sum)


def test_reference_engine_runs_the_other_outputs_as_todays_fit(monkeypatch):
    """softmax + categorical CE, sigmoid + categorical CE (not fused), identity + MSE."""
    for kind in ("softmax", "sigmoid-cce", "regression"):
        m, s, epochs, lr = 23, 8, 2, 0.05
        dims, acts, loss, X, Y = _problem(kind, m, np.float64)
        probs = [0.75] * (len(dims) - 2)
        w = np.linspace(0.5, 1.5, m)
        perms, keys = _schedule(m, epochs, probs)
        net = Network(dims, activations=acts, loss=loss, seed=2, backend="numpy")
        Ws, bs, opt = _start(net, {"name": "adam"})
        res = ref_fit_epochs(FitPlan.build(dims, acts, loss, opt, mini_batch_size=s, lambd=0.2,
                                           keep_probs=probs),
                             np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T), w,
                             perms=perms, lrs=np.full(epochs, lr), keys=keys, k0=0, n_steps=99,
                             t=0, state=opt.state, Ws=Ws, bs=bs)
        _fit_with_fed_schedule(monkeypatch, net, X, Y, perms, keys, probs, epochs=epochs,
                               learning_rate=lr, optimizer="adam", mini_batch_size=s,
                               lambd=0.2, sample_weight=w)
        assert res.steps == epochs * n_batches(m, s)
        for l in range(1, net.L + 1):
            assert_close(Ws[l - 1], net.parameters[f"W{l}"], np.float64, f"{kind} W{l}")
            assert_close(bs[l - 1], net.parameters[f"b{l}"], np.float64, f"{kind} b{l}")
        np.testing.assert_allclose(res.cost_sum / res.weight_sum, net.history_["cost"],
                                   **TOLERANCES[np.dtype(np.float64)])


# --------------------------------------------------------------------------- compiled engines

ENGINES = {b: pytest.param(b, marks=pytest.mark.skipif(b not in available_backends(),
                                                      reason=f"backend {b} unavailable"))
           for b in ("numba", "c")}


def _engine(name):
    """The registered ``fit_epochs`` of a backend ("numpy": the reference formulas)."""
    return ref_fit_epochs if name == "numpy" else Ops(name).fit_epochs


def _run_both(engine, kind, m, s, dtype, optimizer, probs, lambd, weighted, epochs=3,
              shuffle=True, n_steps=None, seed=4):
    """The reference's and ``engine``'s results from the same start."""
    dims, acts, loss, X, Y = _problem(kind, m, dtype)
    perms, keys = _schedule(m, epochs, probs)
    if not shuffle:
        perms = None
    w = np.linspace(0.2, 2.0, m).astype(dtype) if weighted else None
    net = Network(dims, activations=acts, loss=loss, seed=seed, dtype=dtype, backend="numpy")
    lrs = np.array([0.05, 0.03, 0.02, 0.01][:epochs])
    n_steps = epochs * n_batches(m, s) if n_steps is None else n_steps
    out = []
    for fn in (ref_fit_epochs, _engine(engine)):
        Ws, bs, opt = _start(net, optimizer)
        plan = FitPlan.build(dims, acts, loss, opt, mini_batch_size=s, lambd=lambd,
                             keep_probs=probs)
        res = fn(plan, np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T), w, perms=perms,
                 lrs=lrs, keys=keys, k0=0, n_steps=n_steps, t=0, state=opt.state, Ws=Ws, bs=bs)
        out.append((res, Ws, bs, opt.state))
    return out


def _assert_same(expected, actual, dtype):
    (r1, W1, b1, s1), (r2, W2, b2, s2) = expected, actual
    assert (r2.steps, r2.status, r2.epoch, r2.batch, r2.t) == \
        (r1.steps, r1.status, r1.epoch, r1.batch, r1.t)
    for l, (a, b) in enumerate(zip(W2 + b2, W1 + b1)):
        assert_close(a, b, dtype, f"parameter {l}")
    assert sorted(s1) == sorted(s2)
    for key in s1:
        assert_close(s2[key], s1[key], dtype, key)
    tol = TOLERANCES[np.dtype(dtype)]
    np.testing.assert_allclose(r2.cost_sum, r1.cost_sum, rtol=tol["rtol"], atol=tol["atol"])
    np.testing.assert_allclose(r2.weight_sum, r1.weight_sum, rtol=1e-12)
    # a prediction within rounding of the threshold may flip: at most one per epoch
    assert np.abs(r2.correct - r1.correct).max(initial=0) <= 1


@pytest.mark.parametrize("engine", list(ENGINES.values()))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("m,s", BATCHING, ids=["last-smaller", "mb1"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("lambd", [0.0, 0.7], ids=["no-l2", "l2"])
@pytest.mark.parametrize("dropout", [False, True], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=OPT_IDS)
def test_engine_matches_reference(engine, optimizer, dropout, lambd, weighted, m, s, dtype):
    probs = [0.6, 0.85] if dropout else [1.0, 1.0]
    if s == 1 and "epsilon" in optimizer:
        # One example per batch with ReLU and dropout gives gradient entries near 0 with a
        # large relative rounding error (cancellation); where |g| ~ ε RMSprop's and Adam's
        # g / (√s + ε) turn it into an absolute error of about lr δg / ε in the parameter,
        # for any two implementations. A larger ε keeps that within the tolerance.
        optimizer = dict(optimizer, epsilon=1e-3)
    expected, actual = _run_both(engine, "binary", m, s, dtype, optimizer, probs, lambd,
                                 weighted)
    _assert_same(expected, actual, dtype)


@pytest.mark.parametrize("engine", list(ENGINES.values()))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kind", ["softmax", "sigmoid-cce", "regression"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=OPT_IDS)
def test_engine_matches_reference_on_every_output(engine, optimizer, kind, dtype):
    expected, actual = _run_both(engine, kind, 23, 8, dtype, optimizer, [0.7], 0.3, True)
    _assert_same(expected, actual, dtype)


@pytest.mark.parametrize("engine", list(ENGINES.values()))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", ["no-shuffle", "full-batch", "one-example", "budget"])
def test_engine_matches_reference_on_awkward_batching(engine, case, dtype):
    kw = dict(m=23, s=8, shuffle=True, n_steps=None)
    if case == "no-shuffle":
        kw.update(shuffle=False)
    elif case == "full-batch":
        kw.update(s=23, shuffle=False)
    elif case == "one-example":
        kw.update(m=1, s=1)
    else:  # a budget that stops inside an epoch
        kw.update(n_steps=4)
    expected, actual = _run_both(engine, "binary", kw["m"], kw["s"], dtype,
                                 {"name": "adam"}, [0.5, 0.9], 0.1, True,
                                 shuffle=kw["shuffle"], n_steps=kw["n_steps"])
    _assert_same(expected, actual, dtype)


# (n[0], m, hidden units, epochs, weighted, keep_probs, batch size past m): the course's X as
# the single step and a full-batch fit pass it (XT = X.T, F-ordered, one batch of all m).
COURSE_LAYOUT = {
    "planar": (2, 40, 4, 2, False, [1.0], 0),
    "dropout-weighted": (3, 17, 5, 3, True, [0.7], 4),
    "m1": (4, 1, 3, 2, False, [1.0], 0),
    "n0-1": (1, 9, 3, 2, True, [1.0], 2),
    "wide": (600, 2000, 6, 3, False, [1.0], 0),
}
# The engines that take an F-ordered XT (X.T of the course's X) without a copy.
COURSE_LAYOUT_ENGINES = [ENGINES["numba"], ENGINES["c"]]


@pytest.mark.parametrize("engine", COURSE_LAYOUT_ENGINES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", list(COURSE_LAYOUT))
@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=OPT_IDS)
def test_engine_takes_the_course_layout_x(engine, optimizer, case, dtype):
    """``XT = X.T`` of a C-contiguous X (F-ordered, as the single step passes it) with one
    batch of all m examples and no permutations: the same parameters, state, costs and
    correct counts as the rows ``ascontiguousarray(X.T)``, and as the reference; X is left
    as it was."""
    n0, m, n1, epochs, weighted, probs, past = COURSE_LAYOUT[case]
    rng = np.random.default_rng(n0 + m)
    dims, acts, loss = [n0, n1, 1], [("tanh", 0.0), ("sigmoid", 0.0)], "binary_crossentropy"
    X = rng.standard_normal((n0, m)).astype(dtype)
    Y = (X.sum(axis=0, keepdims=True) + 0.3 * rng.standard_normal((1, m)) > 0).astype(dtype)
    X_before = X.copy()
    w = np.linspace(0.5, 1.5, m).astype(dtype) if weighted else None
    keys = _schedule(m, epochs, probs)[1]
    lrs = np.array([0.1, 0.05, 0.02][:epochs])
    net = Network(dims, activations=acts, loss=loss, seed=2, dtype=dtype, backend="numpy")
    out = []
    for fn, XT in ((ref_fit_epochs, np.ascontiguousarray(X.T)),
                   (_engine(engine), np.ascontiguousarray(X.T)), (_engine(engine), X.T)):
        Ws, bs, opt = _start(net, optimizer)
        plan = FitPlan.build(dims, acts, loss, opt, mini_batch_size=m + past, lambd=0.3,
                             keep_probs=probs)
        res = fn(plan, XT, np.ascontiguousarray(Y.T), w, perms=None, lrs=lrs, keys=keys, k0=0,
                 n_steps=epochs, t=0, state=opt.state, Ws=Ws, bs=bs)
        assert res.steps == epochs and res.status == 0
        out.append((res, Ws, bs, opt.state))
    assert X.T.flags.f_contiguous
    _assert_same(out[0], out[2], dtype)
    _assert_same(out[1], out[2], dtype)
    np.testing.assert_array_equal(X, X_before)


@pytest.mark.parametrize("engine", COURSE_LAYOUT_ENGINES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=OPT_IDS)
def test_engine_takes_the_course_layout_x_with_batch_norm(engine, optimizer, dtype):
    """Batch norm's stages read the course's X too: parameters, running statistics and
    optimiser state as with the rows, and as the reference."""
    import copy

    rng = np.random.default_rng(5)
    m, epochs = 30, 3
    X = (rng.standard_normal((5, m)) * 2 + 0.5).astype(dtype)
    Y = (X[:1] + X[1:2] > 0.5).astype(dtype)
    base = Network([5, 6, 4, 1], batch_norm=True, backend="numpy", dtype=dtype, seed=2)
    lrs = np.array([0.1, 0.05, 0.02][:epochs])
    out = []
    for fn, XT in ((ref_fit_epochs, np.ascontiguousarray(X.T)),
                   (_engine(engine), np.ascontiguousarray(X.T)), (_engine(engine), X.T)):
        net = copy.deepcopy(base)
        opt = make_optimizer(optimizer)
        opt.reset(net.parameters)
        plan = FitPlan.build(net.layer_dims, net.activations, net.loss, opt,
                             mini_batch_size=m, lambd=0.2, batch_norm=net.batch_norm)
        Ws, bs = net.layer_arrays()
        res = fn(plan, XT, np.ascontiguousarray(Y.T), None, perms=None, lrs=lrs, keys=None,
                 k0=0, n_steps=epochs, t=0, state=opt.state, Ws=Ws, bs=bs,
                 norm=net.batch_norm_arrays())
        assert res.steps == epochs and res.status == 0
        gammas, means, varis = net.batch_norm_arrays()
        extra = [a for a in gammas + means + varis if a is not None]
        out.append((res, Ws, bs + extra, opt.state))
    _assert_same(out[0], out[2], dtype)
    _assert_same(out[1], out[2], dtype)


@pytest.mark.parametrize("engine", COURSE_LAYOUT_ENGINES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_engine_refuses_in_the_course_layout_as_in_rows(engine, dtype):
    """A refused step of an F-ordered ``XT`` (one batch of all m) is refused in the same
    words, changing nothing, as with the rows."""
    X, Y, lrs, _ = _planted("lr", dtype)
    dims, acts, loss = [2, 1], [("sigmoid", 0.0)], "binary_crossentropy"
    net = Network(dims, activations=acts, loss=loss, seed=2, dtype=dtype, backend="numpy")
    out = []
    for XT in (np.ascontiguousarray(X.T), X.T):
        Ws, bs, opt = _start(net, {"name": "momentum"})
        plan = FitPlan.build(dims, acts, loss, opt, mini_batch_size=4)
        res = _engine(engine)(plan, XT, np.ascontiguousarray(Y.T), None, perms=None, lrs=lrs,
                              keys=None, k0=0, n_steps=2, t=0, state=opt.state, Ws=Ws, bs=bs)
        out.append((res, Ws, bs, opt.state))
    assert out[1][0].status == 1 and out[1][0].steps == 1
    assert out[1][0].what == out[0][0].what
    _assert_same(out[0], out[1], dtype)


@pytest.mark.parametrize("engine", ["numpy", *ENGINES.values()])
def test_engine_chunks_compose_to_one_call(engine):
    """Calls of a few steps each, continued at (epoch, batch), end where one call does."""
    fn = _engine(engine)
    m, s, epochs = 23, 8, 3
    dims, acts, loss, X, Y = _problem("softmax", m, np.float64)
    probs = [0.7]
    perms, keys = _schedule(m, epochs, probs)
    net = Network(dims, activations=acts, loss=loss, seed=1, backend="numpy")
    XT, YT, lrs = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T), np.array([.1, .05, .02])
    config = {"name": "adam"}
    Ws, bs, opt = _start(net, config)
    plan = FitPlan.build(dims, acts, loss, opt, mini_batch_size=s, lambd=0.1, keep_probs=probs)
    one = fn(plan, XT, YT, None, perms=perms, lrs=lrs, keys=keys, k0=0, n_steps=100, t=0,
             state=opt.state, Ws=Ws, bs=bs)
    Ws2, bs2, opt2 = _start(net, config)
    plan2 = FitPlan.build(dims, acts, loss, opt2, mini_batch_size=s, lambd=0.1,
                          keep_probs=probs)
    e, k, t, calls = 0, 0, 0, 0
    sums = np.zeros((2, epochs))
    while e < epochs:
        running = np.ascontiguousarray(sums[:, e:])  # the epochs' sums so far, continued
        part = fn(plan2, XT, YT, None, perms=perms[e:], lrs=lrs[e:], keys=keys[e:], k0=k,
                  n_steps=2, t=t, state=opt2.state, Ws=Ws2, bs=bs2, sums=running)
        assert np.shares_memory(part.cost_sum, running)  # added in place
        sums[:, e:] = running
        e, k, t, calls = e + part.epoch, part.batch, part.t, calls + 1
    assert one.steps == 9 and t == one.t == 9 and calls == 5
    for P, Q in zip(Ws + bs, Ws2 + bs2):
        np.testing.assert_array_equal(Q, P)
    # the running sums continue step after step: the sums of one call, bit for bit
    np.testing.assert_array_equal(sums[0], one.cost_sum)
    np.testing.assert_array_equal(sums[1], one.weight_sum)


@pytest.mark.parametrize("engine", ["numpy", *ENGINES.values()])
def test_engine_refuses_running_sums_of_the_wrong_shape(engine):
    fn = _engine(engine)
    dims, acts, loss, X, Y = _problem("binary", 6, np.float64)
    net = Network(dims, activations=acts, loss=loss, seed=1, backend="numpy")
    Ws, bs, opt = _start(net, {"name": "gd"})
    plan = FitPlan.build(dims, acts, loss, opt, mini_batch_size=3)
    XT, YT = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)
    before = [P.copy() for P in Ws + bs]
    for bad in (np.zeros(2), np.zeros((2, 2)), np.zeros((2, 1), np.float32),
                np.zeros((2, 2))[:, :1], [[0.0], [0.0]]):
        with pytest.raises(InputError, match=r"sums must be .* \(2, 1\)"):
            fn(plan, XT, YT, None, perms=None, lrs=np.array([0.1]), keys=None, k0=0,
               n_steps=1, t=0, state=opt.state, Ws=Ws, bs=bs, sums=bad)
    for P, Q in zip(before, Ws + bs):  # refused before any step
        np.testing.assert_array_equal(Q, P)


# --------------------------------------------------------------------------- update safety

def _planted(plant, dtype):
    """A 1-layer network's data and learning rates whose second step must be refused."""
    big = 1e160 if dtype == np.float64 else 1e25
    X = np.array([[0.5, -1.0, 0.3, 2.0], [1.0, 0.2, -0.7, 0.4]], dtype=dtype)
    Y = np.array([[1.0, 0.0, 1.0, 0.0]], dtype=dtype)
    lrs = np.array([0.1, 0.1])
    if plant == "lr":  # full batches; epoch 1's learning rate is inf
        lrs[1] = np.inf
    elif plant == "nan":  # batch 1 holds a NaN
        X[0, 2] = np.nan
    else:  # batch 1: values whose gradient squared overflows (s of RMSprop and Adam); of
        # opposite signs, so one of the two examples is misclassified whatever W is
        X[0, 2], X[0, 3], Y[0, 2], Y[0, 3] = big, -big, 1.0, 1.0
    s = 4 if plant == "lr" else 2
    return X, Y, lrs, s


EXPECTED_REFUSAL = {"lr": ((1, 0), "update of W"), "nan": ((0, 1), "cost"),
                    "huge": ((0, 1), "update of s_dW1")}


@pytest.mark.parametrize("engine", ["numpy", *ENGINES.values()])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("plant", ["lr", "nan", "huge"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=OPT_IDS)
def test_engine_refuses_a_nonfinite_step_and_changes_nothing(engine, optimizer, plant, dtype):
    if plant == "huge" and not optimizer_keeps(optimizer["name"], "s"):
        pytest.skip("only an optimiser with s (RMSprop, Adam) squares the gradient")
    fn = _engine(engine)
    X, Y, lrs, s = _planted(plant, dtype)
    acts = [("sigmoid", 0.0)]
    net = Network([2, 1], activations=acts, seed=3, dtype=dtype, backend="numpy")
    XT, YT = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)
    chunk = dict(perms=None, lrs=lrs, keys=None, k0=0, t=0)
    Ws, bs, opt = _start(net, optimizer)
    with np.errstate(all="ignore"):
        res = fn(FitPlan.build([2, 1], acts, "binary_crossentropy", opt, mini_batch_size=s),
                 XT, YT, None, **chunk, n_steps=10, state=opt.state, Ws=Ws, bs=bs)
    (epoch, batch), what = EXPECTED_REFUSAL[plant]
    assert (res.status, res.steps, res.epoch, res.batch) == (1, 1, epoch, batch)
    assert res.what.startswith(what), res.what
    # the model is exactly where one step leaves it
    Ws1, bs1, opt1 = _start(net, optimizer)
    one = fn(FitPlan.build([2, 1], acts, "binary_crossentropy", opt1, mini_batch_size=s),
             XT, YT, None, **chunk, n_steps=1, state=opt1.state, Ws=Ws1, bs=bs1)
    assert one.status == 0
    assert res.t == one.t == (1 if optimizer_counts_steps(optimizer["name"]) else 0)
    for P, Q in zip(Ws + bs, Ws1 + bs1):
        np.testing.assert_array_equal(P, Q)
    for key in opt.state:
        np.testing.assert_array_equal(opt.state[key], opt1.state[key])
    np.testing.assert_array_equal(res.cost_sum, one.cost_sum)


@pytest.mark.parametrize("engine", list(ENGINES.values()))
@pytest.mark.parametrize("name", [n for n in OPTIMIZER_NAMES if optimizer_keeps(n, "s")])
def test_engine_decides_by_the_exact_rule_when_the_bounds_cannot(engine, name):
    """With ε = 1e-45 the cheap bound of |P'| (lr max|g| / ε) exceeds float32's range, so every
    step takes the exact path (candidates, then commit): still the reference's result."""
    optimizer = {"name": name, "epsilon": 1e-45}
    expected, actual = _run_both(engine, "binary", 23, 8, np.float32, optimizer, [0.7, 0.9],
                                 0.1, True)
    assert expected[0].status == 0
    _assert_same(expected, actual, np.float32)


@pytest.mark.parametrize("backend", ["numpy", pytest.param("numba", marks=needs_numba)])
def test_generic_composition_of_a_backends_ops_is_the_reference(backend):
    """fit_epochs composed from a backend's forward/backward_delta/sgd_update (what every
    backend without a compiled engine runs) ends where the reference formulas do."""
    for optimizer in ({"name": "gd"}, {"name": "adam"}):
        m, s, epochs = 23, 8, 2
        dims, acts, loss, X, Y = _problem("binary", m, np.float64)
        probs = [0.6, 0.9]
        perms, keys = _schedule(m, epochs, probs)
        w = np.linspace(0.5, 1.5, m)
        net = Network(dims, activations=acts, loss=loss, seed=5, backend="numpy")
        results = []
        for ops in (None, Ops(backend)):
            Ws, bs, opt = _start(net, optimizer)
            plan = FitPlan.build(dims, acts, loss, opt, mini_batch_size=s, lambd=0.2,
                                 keep_probs=probs)
            res = ref_fit_epochs(plan, np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T), w,
                                 perms=perms, lrs=np.full(epochs, 0.05), keys=keys, k0=0,
                                 n_steps=99, t=0, state=opt.state, Ws=Ws, bs=bs, ops=ops)
            results.append((res, Ws, bs, opt.state))
        _assert_same(results[0], results[1], np.float64)


# --------------------------------------------------------------------------- fit on the engine

FIT_BACKENDS = [pytest.param(b, marks=pytest.mark.skipif(
    b not in available_backends(), reason=f"backend {b} unavailable")) for b in ("numba", "c")]


@pytest.mark.parametrize("backend", FIT_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("lambd", [0.0, 0.5], ids=["no-l2", "l2"])
@pytest.mark.parametrize("dropout", [False, True], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("optimizer", OPTIMIZER_NAMES)
def test_fit_on_every_backend_ends_at_the_numpy_reference(backend, optimizer, dropout, lambd,
                                                         weighted, dtype):
    """Network.fit (shuffled mini-batches, the last one smaller, a decaying learning rate)
    on a compiled backend ends at the numpy backend's parameters, optimiser state and
    history."""
    m = 45
    dims, acts, loss, X, Y = _problem("binary", m, dtype)
    kw = dict(epochs=3, learning_rate=0.02, optimizer=optimizer, mini_batch_size=16,
              decay_rate=0.5, lambd=lambd, keep_prob=[0.7, 0.9] if dropout else 1.0,
              sample_weight=np.linspace(0.3, 1.7, m) if weighted else None, progress=False)
    if "epsilon" in make_optimizer(optimizer).get_config():
        kw["optimizer"] = make_optimizer(optimizer, epsilon=1e-4)  # see the mb1 note above
    nets = [Network(dims, activations=acts, loss=loss, seed=3, dtype=dtype, backend=b).fit(
        X, Y, **kw) for b in ("numpy", backend)]
    expected, actual = nets
    assert actual.backend == backend
    for key, value in expected.parameters.items():
        assert_close(actual.parameters[key], value, dtype, key)
    for key, value in expected.optimizer_.get_state().items():
        np.testing.assert_allclose(actual.optimizer_.get_state()[key], value,
                                   **TOLERANCES[np.dtype(dtype)], err_msg=key)
    tol = TOLERANCES[np.dtype(dtype)]
    np.testing.assert_allclose(actual.history_["cost"], expected.history_["cost"], **tol)
    np.testing.assert_allclose(actual.history_["score"], expected.history_["score"],
                               atol=1.01 / m)  # a prediction at the threshold may flip
    assert actual.rng.bit_generator.state == expected.rng.bit_generator.state


@pytest.mark.parametrize("backend", ["numpy", *FIT_BACKENDS])
def test_fit_does_not_depend_on_the_chunk_size(backend, monkeypatch):
    """One step per fit_epochs call or one call per record: the same fit (a skipped step,
    dropout, shuffling, records every 2 epochs)."""
    from chainrule.training import loop

    X, Y = _problem("softmax", 37, np.float64)[3:]
    dims, acts, loss = _problem("softmax", 1, np.float64)[:3]
    X[:, 5] = 1e308  # a step whose cost or gradient is not finite: skipped
    kw = dict(epochs=5, learning_rate=0.05, optimizer="adam", mini_batch_size=8, keep_prob=0.8,
              cost_every=2, on_nonfinite="skip", progress=False)
    nets = []
    for seconds in (1e-12, 1e9):
        monkeypatch.setattr(loop, "CHUNK_SECONDS", seconds)
        with np.errstate(all="ignore"):
            nets.append(Network(dims, activations=acts, loss=loss, seed=1, backend=backend,
                            n_threads=1).fit(X, Y, **kw))
    small, large = nets
    assert small.history_["skipped"][-1] == large.history_["skipped"][-1] > 0
    for key, value in large.parameters.items():
        np.testing.assert_array_equal(small.parameters[key], value, err_msg=key)
    # the engine continues each epoch's running cost sums: the same bits however the
    # calls (sized by time) split the epochs
    assert small.history_["cost"] == large.history_["cost"]
    assert small.history_["epoch"] == large.history_["epoch"] == [0, 2, 4]


@pytest.mark.parametrize("needs_state", ["callback", "validation", "early_stopping",
                                         "full_score", None])
def test_fit_calls_the_engine_in_chunks_that_stop_at_records(monkeypatch, needs_state):
    """The chunks of a fit, about CHUNK_SECONDS: never across the epoch boundary of a record
    that looks at the parameters (a callback, validation, early stopping, a score by a
    forward pass); across the others, whose records are the engine's sums, with the same
    history."""
    from chainrule.training import loop

    calls = []
    original = loop.FitRun._run_chunk

    def spy(self, first, epochs, k0, n_steps, sums=None):
        calls.append(([e for e, _, _ in epochs], k0, n_steps))
        return original(self, first, epochs, k0, n_steps, sums)

    X, Y = _problem("binary", 40, np.float64)[3:]
    dims, acts, loss = _problem("binary", 1, np.float64)[:3]
    kw = dict(epochs=7, mini_batch_size=10, cost_every=3, progress=False)
    options = {"callback": dict(callbacks=[lambda net, epoch, logs: None]),
               "validation": dict(validation_data=(X[:, :8], Y[:, :8])),
               "early_stopping": dict(early_stopping=True, patience=100),
               "full_score": dict(full_score=True), None: {}}[needs_state]
    reference = Network(dims, activations=acts, loss=loss, seed=1, backend="numpy").fit(
        X, Y, **kw, **options)
    monkeypatch.setattr(loop, "CHUNK_SECONDS", 1e9)  # one chunk unless a record stops it
    monkeypatch.setattr(loop.FitRun, "_run_chunk", spy)
    net = Network(dims, activations=acts, loss=loss, seed=1, backend="numpy").fit(
        X, Y, **kw, **options)
    covered = [e for epochs, _, _ in calls for e in epochs]
    assert sorted(set(covered)) == list(range(7))
    assert sum(n for _, _, n in calls) == 7 * 4
    crossing = [epochs for epochs, _, _ in calls
                if epochs[0] <= 0 < epochs[-1] or epochs[0] <= 3 < epochs[-1]]
    if needs_state:  # records after epochs 0, 3, 6: chunks {0}, {1, 2, 3}, {4, 5, 6}
        assert not crossing, calls
    else:
        assert crossing, calls
    assert net.history_ == reference.history_


def test_fit_hashes_the_data_only_for_checkpoints(tmp_path):
    X, Y = _problem("binary", 30, np.float64)[3:]
    dims, acts, loss = _problem("binary", 1, np.float64)[:3]
    net = Network(dims, activations=acts, loss=loss, seed=1, backend="numpy")
    net.fit(X, Y, epochs=2, mini_batch_size=8, progress=False)
    assert net.train_state_.signature == ""
    net.save(tmp_path / "saved.npz")
    with pytest.raises(ValueError, match="no fingerprint"):
        Network(dims, activations=acts, loss=loss, seed=1, backend="numpy").fit(
            X, Y, epochs=3, mini_batch_size=8, progress=False, resume=tmp_path / "saved.npz")
    net.fit(X, Y, epochs=2, mini_batch_size=8, progress=False, checkpoint=tmp_path / "c.npz")
    digest, start = net.train_state_.signature.split("@")
    assert len(digest) == 64 and start == "0"  # SHA-256 hex, the call's first epoch


def test_signature_is_a_digest_of_values_shape_and_dtype():
    from chainrule.training.state import signature

    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 1000))
    base = signature({"a": 1}, [X])
    assert signature({"a": 1}, [np.asfortranarray(X)]) == base  # layout does not matter
    one = X.copy()
    one[17, 333] += 1e-12  # one entry, between any evenly spaced samples
    for other in (X * 2, X[:, :999], X.astype(np.float32), X.reshape(60, 500), one):
        assert signature({"a": 1}, [other]) != base
    assert signature({"a": 2}, [X]) != base


def test_fit_takes_examples_as_rows_without_a_copy():
    """X = X_rows.T (F-ordered, as sklearn holds data) reaches the engine as X_rows itself."""
    from chainrule.training.config import FitConfig
    from chainrule.training.loop import FitRun

    X, Y = _problem("binary", 30, np.float64)[3:]
    dims, acts, loss = _problem("binary", 1, np.float64)[:3]
    net = Network(dims, activations=acts, loss=loss, seed=1, backend="numpy")
    X_rows = np.ascontiguousarray(X.T)
    run = FitRun(net, X_rows.T, Y, FitConfig(epochs=1, mini_batch_size=8, progress=False))
    assert run.XT is X_rows or np.shares_memory(run.XT, X_rows)
    run = FitRun(net, X, Y, FitConfig(epochs=1, mini_batch_size=8, progress=False))
    assert run.XT.flags.c_contiguous and not np.shares_memory(run.XT, X)  # one copy


def test_fit_history_score_is_the_running_batch_accuracy_unless_full_score():
    X, Y = _problem("binary", 60, np.float64)[3:]
    dims, acts, loss = _problem("binary", 1, np.float64)[:3]
    kw = dict(epochs=3, mini_batch_size=16, learning_rate=0.1, optimizer="adam", progress=False)
    running = Network(dims, activations=acts, loss=loss, seed=1, backend="numpy").fit(X, Y, **kw)
    full = Network(dims, activations=acts, loss=loss, seed=1, backend="numpy").fit(
        X, Y, full_score=True, **kw)
    for key in running.parameters:
        np.testing.assert_array_equal(running.parameters[key], full.parameters[key])
    assert full.history_["score"][-1] == full.score(X, Y)
    assert all(0 <= s <= 1 and (s * 60) % 1 == 0 for s in running.history_["score"])
    assert running.history_["score"] != full.history_["score"]


def test_fit_dropout_rng_is_validated_and_recorded_in_the_fingerprint(tmp_path):
    X, Y = _problem("binary", 30, np.float64)[3:]
    dims, acts, loss = _problem("binary", 1, np.float64)[:3]
    net = Network(dims, activations=acts, loss=loss, seed=1, backend="numpy")
    with pytest.raises(ValueError, match="dropout_rng"):
        net.fit(X, Y, epochs=1, dropout_rng="philox", progress=False)
    path = tmp_path / "c.npz"
    net.fit(X, Y, epochs=2, keep_prob=0.8, checkpoint=path, progress=False)
    with pytest.raises(ValueError, match="other arguments or data"):
        Network(dims, activations=acts, loss=loss, seed=1, backend="numpy").fit(
            X, Y, epochs=3, keep_prob=0.8, dropout_rng="generator", resume=path, progress=False)
