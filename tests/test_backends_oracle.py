"""The oracle suite: every op of the contract, for every registered backend, against the NumPy
reference formulas (``chainrule.reference``), both dtypes, awkward shapes.

A backend is tested here the moment it is named in ``registry.BACKENDS`` (numbagg's
COMPARISONS pattern); its own file keeps only what is particular to it (allocation, threads,
memory checks, fuzzing). Activations and losses come from the one table (``chainrule.spec``).
"""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import reference as ref
from chainrule.backends.registry import ALL_OPS, LAYER_OPS, NETWORK_OPS, Ops

from chainrule.backends.plan import FitPlan

from conftest import (OPTIMIZER_NAMES, assert_close, hidden_activations, network_problem,
                      optimizer_counts_steps, output_losses, step_loop)
from chainrule.training.step import train_step

HIDDEN = hidden_activations()
OUTPUTS = output_losses()
# (n, n_prev, m): m = 1, n = 1, n_prev = 1, and a size where the C kernels call BLAS
LAYER_SHAPES = [(3, 4, 5), (1, 3, 1), (4, 1, 2), (1, 1, 1), (40, 50, 60)]
# (dims, m, hidden): one and several hidden layers, a single layer, width 1, m = 1; every
# hidden activation of the table appears in at least one
_SHAPES = [([3, 4, 2, 2], 1), ([5, 6, 3, 2], 17), ([4, 2], 7), ([1, 1, 1, 2], 3), ([2, 3, 2], 4)]
NETWORKS = [(*_SHAPES[i % len(_SHAPES)], HIDDEN[i % len(HIDDEN)])
            for i in range(max(len(_SHAPES), len(HIDDEN)))]


def _id(a):
    return f"{a[0]}{a[1]:g}" if a[0] == "leaky_relu" else a[0]


def _layer(rng, dtype, n, n_prev, m):
    A_prev = rng.standard_normal((n_prev, m)).astype(dtype)
    W = (rng.standard_normal((n, n_prev)) * 0.5).astype(dtype)
    b = rng.standard_normal((n, 1)).astype(dtype)
    return A_prev, W, b


def _network(dims, output, loss, m, dtype, hidden, seed=0):
    n_out = max(dims[-1], 2) if loss == "categorical_crossentropy" else dims[-1]
    dims = dims[:-1] + [n_out]
    if output[0] == "softmax" and n_out < 2:
        dims[-1] = 2
    X, Y, Ws, bs = network_problem(dims, loss, m, dtype, seed)
    acts = [hidden] * (len(dims) - 2) + [output]
    return X, Y, Ws, bs, acts


def _params(Ws, bs):
    p = {}
    for l, (W, b) in enumerate(zip(Ws, bs), 1):
        p[f"W{l}"], p[f"b{l}"] = W, b
    return p


def _masks(rng, dims, m, dtype, keep=0.7):
    """Scaled inverted-dropout masks indexed like ``As`` (None for the input and output)."""
    masks = [None] + [((rng.random((n, m)) < keep) / keep).astype(dtype) for n in dims[1:-1]]
    return masks + [None]


def _expected_backward(X, Y, Ws, bs, acts, loss, convention, lambd, masks):
    """The reference's forward and backward: ``(Zs, As, grads)``."""
    D = None if masks is None else {l: M for l, M in enumerate(masks) if M is not None}
    AL, caches = ref.model_forward(X, _params(Ws, bs), acts, D)
    grads = ref.model_backward(AL, Y, caches, acts, loss, convention, dropout_masks=D,
                               lambd=lambd)
    Zs = [Z for _, Z in caches]
    As = [X] + [lin[0] for lin, _ in caches[1:]] + [AL]
    return Zs, As, grads


def _expected_step(X, Y, Ws, bs, acts, loss, lr, lambd, masks):
    """The reference's step: ``(new parameters, cost before the update)``."""
    Zs, As, grads = _expected_backward(X, Y, Ws, bs, acts, loss, "L", lambd, masks)
    J = ref.compute_cost(As[-1], Y, loss)
    if lambd:
        J += ref.l2_cost(_params(Ws, bs), lambd, X.shape[1])
    return ref.update_parameters_with_gd(_params(Ws, bs), grads, lr), J


def test_every_op_is_covered_here():
    """A new op in the contract needs a test here."""
    tested = {name[len("test_"):].split("_matches")[0] for name in globals()
              if name.startswith("test_") and "_matches_reference" in name}
    assert set(LAYER_OPS + NETWORK_OPS) <= tested, set(LAYER_OPS + NETWORK_OPS) - tested
    assert set(ALL_OPS) == set(LAYER_OPS + NETWORK_OPS)


# --------------------------------------------------------------------------- layer ops

@pytest.mark.parametrize("activation", HIDDEN + [("softmax", 0.0)], ids=_id)
@pytest.mark.parametrize("shape", LAYER_SHAPES, ids=str)
def test_dense_forward_matches_reference(backend, dtype, rng, activation, shape):
    A_prev, W, b = _layer(rng, dtype, *shape)
    Z, A = Ops(backend).dense_forward(A_prev, W, b, activation)
    Z_expected = ref.linear_forward(A_prev, W, b)[0]
    assert_close(Z, Z_expected, dtype, "Z")
    assert_close(A, ref.activation_forward(Z_expected, activation), dtype, "A")


@pytest.mark.parametrize("layout", ["fortran", "strided", "readonly"])
def test_dense_forward_matches_reference_for_odd_layouts(backend, dtype, rng, layout):
    A_prev, W, b = _layer(rng, dtype, 4, 6, 9)
    if layout == "fortran":
        A_prev, W = np.asfortranarray(A_prev), np.asfortranarray(W)
    elif layout == "strided":
        A_prev = np.repeat(A_prev, 2, axis=1)[:, ::2]
    else:
        for x in (A_prev, W, b):
            x.setflags(write=False)
    Z, A = Ops(backend).dense_forward(A_prev, W, b, ("tanh", 0.0))
    Z_expected = ref.linear_forward(np.array(A_prev), W, b)[0]
    assert_close(Z, Z_expected, dtype, "Z")
    assert_close(A, np.tanh(Z_expected), dtype, "A")


@pytest.mark.parametrize("activation_prev", HIDDEN, ids=_id)
@pytest.mark.parametrize("shape", LAYER_SHAPES, ids=str)
@pytest.mark.parametrize("convention", ["L", "J"])
@pytest.mark.parametrize("lambd,with_mask,need_dA", [(0.0, False, False), (0.7, True, True)],
                         ids=["plain", "l2+mask+dA"])
def test_dense_backward_matches_reference(backend, dtype, rng, activation_prev, shape,
                                          convention, lambd, with_mask, need_dA):
    n, n_prev, m = shape
    A_prev, W, _ = _layer(rng, dtype, n, n_prev, m)
    dZ = rng.standard_normal((n, m)).astype(dtype)
    Z_prev = rng.standard_normal((n_prev, m)).astype(dtype)
    mask = ((rng.random((n_prev, m)) < 0.6) / 0.6).astype(dtype) if with_mask else None
    dZ_prev, dW, db, dA_prev = Ops(backend).dense_backward(
        dZ, A_prev, W, Z_prev, activation_prev, convention, lambd, mask, need_dA)
    dA_e, dW_e, db_e = ref.linear_backward(dZ, (A_prev, W, None), convention, lambd)
    if mask is not None:
        dA_e = dA_e * mask
    assert_close(dW, dW_e, dtype, "dW")
    assert_close(db, db_e, dtype, "db")
    assert_close(dZ_prev, ref.activation_backward(dA_e, Z_prev, activation_prev), dtype,
                 "dZ_prev")
    if need_dA:
        assert_close(dA_prev, dA_e, dtype, "dA_prev")
    else:
        assert dA_prev is None


@pytest.mark.parametrize("layout", ["fortran", "strided", "readonly"])
def test_dense_backward_matches_reference_for_odd_layouts(backend, dtype, rng, layout):
    A_prev, W, _ = _layer(rng, dtype, 3, 4, 5)
    dZ, Z_prev = rng.standard_normal((3, 5)).astype(dtype), rng.standard_normal((4, 5)).astype(dtype)
    mask = ((rng.random((4, 5)) < 0.6) / 0.6).astype(dtype)
    dA_e, dW_e, db_e = ref.linear_backward(dZ, (A_prev, W, None), "L", 0.1)
    dA_e = dA_e * mask
    expected = (ref.activation_backward(dA_e, Z_prev, ("sigmoid", 0.0)), dW_e, db_e, dA_e)
    args = [dZ, A_prev, W, Z_prev, mask]
    if layout == "fortran":
        args = [np.asfortranarray(x) for x in args]
    elif layout == "strided":
        args = [np.repeat(x, 2, axis=1)[:, ::2] for x in args]
    else:
        for x in args:
            x.setflags(write=False)
    dZ, A_prev, W, Z_prev, mask = args
    actual = Ops(backend).dense_backward(dZ, A_prev, W, Z_prev, ("sigmoid", 0.0), "L", 0.1, mask,
                                         True)
    for name, a, e in zip(["dZ_prev", "dW", "db", "dA_prev"], actual, expected):
        assert_close(a, e, dtype, name)


@pytest.mark.parametrize("need_dA", [False, True])
@pytest.mark.parametrize("with_mask", [False, True])
def test_dense_backward_matches_reference_at_the_input_layer(backend, dtype, rng, need_dA,
                                                             with_mask):
    """``Z_prev is None``: no ``dZ_prev``, and ``W^T dZ`` (times the mask) only if asked."""
    A_prev, W, _ = _layer(rng, dtype, 3, 5, 4)
    dZ = rng.standard_normal((3, 4)).astype(dtype)
    mask = ((rng.random((5, 4)) < 0.5) / 0.5).astype(dtype) if with_mask else None
    dZ_prev, dW, db, dA_prev = Ops(backend).dense_backward(dZ, A_prev, W, None, None, "L", 0.0,
                                                           mask, need_dA)
    dA_e, dW_e, db_e = ref.linear_backward(dZ, (A_prev, W, None), "L")
    assert dZ_prev is None
    assert_close(dW, dW_e, dtype, "dW")
    assert_close(db, db_e, dtype, "db")
    if need_dA:
        assert_close(dA_prev, dA_e if mask is None else dA_e * mask, dtype, "dA_prev")
    else:
        assert dA_prev is None


def test_dense_forward_matches_reference_for_relu_exactly_at_zero(backend, dtype):
    """ReLU at exactly 0: A = 0 and g'(0) = 0, as the course's ``dZ[Z <= 0] = 0``."""
    A_prev = np.zeros((2, 3), dtype)
    W = np.ones((2, 2), dtype)
    b = np.array([[0.0], [1.0]], dtype)
    Z, A = Ops(backend).dense_forward(A_prev, W, b, ("relu", 0.0))
    np.testing.assert_array_equal(A, [[0, 0, 0], [1, 1, 1]])
    dZ_prev, *_ = Ops(backend).dense_backward(np.ones((1, 3), dtype), A_prev[:1],
                                              np.ones((1, 1), dtype), Z[:1], ("relu", 0.0))
    np.testing.assert_array_equal(dZ_prev, np.zeros((1, 3)))


# --------------------------------------------------------------------------- network ops

@pytest.mark.parametrize("output,loss", OUTPUTS, ids=lambda p: _id(p) if isinstance(p, tuple)
                         else p[:4])
@pytest.mark.parametrize("dims,m,hidden", NETWORKS, ids=lambda x: str(x) if isinstance(x, (list, int)) else _id(x))
@pytest.mark.parametrize("with_masks", [False, True], ids=["", "dropout"])
def test_forward_matches_reference(backend, dtype, output, loss, dims, m, hidden, with_masks):
    X, Y, Ws, bs, acts = _network(dims, output, loss, m, dtype, hidden)
    masks = _masks(np.random.default_rng(1), [W.shape[1] for W in Ws] + [Ws[-1].shape[0]], m,
                   dtype) if with_masks else None
    Zs, As = Ops(backend).forward(X, Ws, bs, acts, masks)
    Zs_e, As_e, _ = _expected_backward(X, Y, Ws, bs, acts, loss, "L", 0.0, masks)
    assert len(Zs) == len(Ws) and len(As) == len(Ws) + 1
    for l, (Z, Z_e) in enumerate(zip(Zs, Zs_e), 1):
        assert_close(Z, Z_e, dtype, f"Z{l}")
    for l, (A, A_e) in enumerate(zip(As, As_e)):
        assert_close(A, A_e, dtype, f"A{l}")


def _check_grads(dZs, dWs, dbs, dAs, grads, dtype, need_dA):
    for l in range(1, len(dWs) + 1):
        assert_close(dZs[l - 1], grads[f"dZ{l}"], dtype, f"dZ{l}")
        assert_close(dWs[l - 1], grads[f"dW{l}"], dtype, f"dW{l}")
        assert_close(dbs[l - 1], grads[f"db{l}"], dtype, f"db{l}")
        if need_dA:
            assert_close(dAs[l - 1], grads[f"dA{l - 1}"], dtype, f"dA{l - 1}")
    if not need_dA:
        assert dAs is None or all(dA is None for dA in dAs)


@pytest.mark.parametrize("output,loss", OUTPUTS, ids=lambda p: _id(p) if isinstance(p, tuple)
                         else p[:4])
@pytest.mark.parametrize("dims,m,hidden", NETWORKS, ids=lambda x: str(x) if isinstance(x, (list, int)) else _id(x))
@pytest.mark.parametrize("convention", ["L", "J"])
@pytest.mark.parametrize("lambd,with_masks,need_dA", [(0.0, False, True), (0.3, True, False)],
                         ids=["plain", "l2+dropout"])
def test_backward_matches_reference(backend, dtype, output, loss, dims, m, hidden, convention,
                                    lambd, with_masks, need_dA):
    X, Y, Ws, bs, acts = _network(dims, output, loss, m, dtype, hidden)
    masks = _masks(np.random.default_rng(2), [W.shape[1] for W in Ws] + [Ws[-1].shape[0]], m,
                   dtype) if with_masks else None
    Zs, As, grads = _expected_backward(X, Y, Ws, bs, acts, loss, convention, lambd, masks)
    out = Ops(backend).backward(Y, Zs, As, Ws, acts, loss, convention, lambd, masks, need_dA)
    _check_grads(*out, grads, dtype, need_dA)


@pytest.mark.parametrize("output,loss", OUTPUTS[:3], ids=lambda p: _id(p)
                         if isinstance(p, tuple) else p[:4])
@pytest.mark.parametrize("dims,m,hidden", NETWORKS, ids=lambda x: str(x) if isinstance(x, (list, int)) else _id(x))
def test_backward_delta_matches_reference(backend, dtype, output, loss, dims, m, hidden):
    """From a given ``dZ[L]`` (here the reference's own output delta)."""
    X, Y, Ws, bs, acts = _network(dims, output, loss, m, dtype, hidden)
    Zs, As, grads = _expected_backward(X, Y, Ws, bs, acts, loss, "L", 0.0, None)
    dZL = ref.output_delta(As[-1], Y, Zs[-1], acts[-1], loss, "L")
    out = Ops(backend).backward_delta(dZL, Zs, As, Ws, acts, "L", 0.0, None, True)
    _check_grads(*out, grads, dtype, True)


def test_sgd_update_matches_reference(backend, dtype, rng):
    Ws = [rng.standard_normal((3, 2)).astype(dtype), rng.standard_normal((1, 3)).astype(dtype)]
    bs = [rng.standard_normal((3, 1)).astype(dtype), rng.standard_normal((1, 1)).astype(dtype)]
    dWs, dbs = [np.ones_like(W) for W in Ws], [np.full_like(b, 2.0) for b in bs]
    expected = ref.update_parameters_with_gd(
        _params(Ws, bs), {f"d{k}": v for k, v in _params(dWs, dbs).items()}, 0.1)
    Ops(backend).sgd_update(Ws, bs, dWs, dbs, 0.1)
    for key, actual in _params(Ws, bs).items():
        assert_close(actual, expected[key], dtype, key)


@pytest.mark.parametrize("output,loss", OUTPUTS, ids=lambda p: _id(p) if isinstance(p, tuple)
                         else p[:4])
@pytest.mark.parametrize("dims,m,hidden", NETWORKS, ids=lambda x: str(x) if isinstance(x, (list, int)) else _id(x))
@pytest.mark.parametrize("lambd,with_masks", [(0.0, False), (0.4, False), (0.2, True)],
                         ids=["plain", "l2", "l2+dropout"])
def test_train_step_matches_reference(backend, dtype, output, loss, dims, m, hidden, lambd,
                                      with_masks):
    X, Y, Ws, bs, acts = _network(dims, output, loss, m, dtype, hidden)
    masks = _masks(np.random.default_rng(3), [W.shape[1] for W in Ws] + [Ws[-1].shape[0]], m,
                   dtype) if with_masks else None
    expected, J_expected = _expected_step(X, Y, Ws, bs, acts, loss, 0.05, lambd, masks)
    ok, J = train_step(Ops(backend), X, Y, Ws, bs, acts, loss, 0.05, lambd, masks, True)
    assert ok
    np.testing.assert_allclose(J, J_expected, rtol=1e-3 if dtype == np.float32 else 1e-9)
    for key, actual in _params(Ws, bs).items():
        assert_close(actual, expected[key], dtype, key)
    ok, J = train_step(Ops(backend), X, Y, Ws, bs, acts, loss, 0.05, lambd, masks, False)
    assert ok and np.isnan(J)  # no cost asked: NaN


@pytest.mark.parametrize("output,loss", OUTPUTS, ids=lambda p: _id(p) if isinstance(p, tuple)
                         else p[:4])
@pytest.mark.parametrize("cost_every", [1, 3])
def test_repeated_steps_matches_reference(backend, dtype, output, loss, cost_every):
    X, Y, Ws, bs, acts = _network([3, 5, 2], output, loss, 11, dtype, ("tanh", 0.0))
    params, costs_expected = _params([W.copy() for W in Ws], [b.copy() for b in bs]), []
    for i in range(7):
        L = len(Ws)
        params, J = _expected_step(X, Y, [params[f"W{l}"] for l in range(1, L + 1)],
                                   [params[f"b{l}"] for l in range(1, L + 1)], acts, loss, 0.1,
                                   0.05, None)
        costs_expected.append(J if i % cost_every == 0 else np.nan)
    n_done, costs = step_loop(Ops(backend), X, Y, Ws, bs, acts, loss, 0.1, 0.05, 7, cost_every)
    assert n_done == 7
    np.testing.assert_array_equal(np.isnan(costs), np.isnan(costs_expected))
    np.testing.assert_allclose(costs, costs_expected, rtol=1e-3 if dtype == np.float32 else 1e-9)
    for key, actual in _params(Ws, bs).items():
        assert_close(actual, params[key], dtype, key)


@pytest.mark.parametrize("where", ["gradient", "overflow"])
def test_train_step_matches_reference_in_refusing_an_unsafe_update(backend, dtype, rng, where):
    """Where the reference's update would be non-finite, the step is refused and every
    parameter is left as it was (``compose.update_is_safe``); so is the loop."""
    X, Y, Ws, bs, acts = _network([3, 4, 1], ("identity", 0.0), "mean_squared_error", 5, dtype,
                                  ("tanh", 0.0))
    lr = 0.1
    if where == "gradient":
        Y[0, 0] = np.inf
    else:
        lr = float(np.finfo(dtype).max) / 4
        Y *= 100
    before = [P.copy() for P in Ws + bs]
    with np.errstate(all="ignore"):
        expected, _ = _expected_step(X, Y, Ws, bs, acts, "mean_squared_error", lr, 0.0, None)
        assert not all(np.isfinite(v).all() for v in expected.values())
        ok, _ = train_step(Ops(backend), X, Y, Ws, bs, acts, "mean_squared_error", lr)
        n_done, _ = step_loop(Ops(backend), X, Y, Ws, bs, acts, "mean_squared_error", lr, 0.0,
                                            3, 1)
    assert not ok and n_done == 0
    for actual, saved in zip(Ws + bs, before):
        np.testing.assert_array_equal(actual, saved)


@pytest.mark.parametrize("output,loss", OUTPUTS, ids=lambda p: _id(p) if isinstance(p, tuple)
                         else p)
@pytest.mark.parametrize("optimizer", OPTIMIZER_NAMES)
def test_fit_epochs_matches_reference(backend, dtype, output, loss, optimizer):
    """Shuffled mini-batches (the last one smaller) over two epochs, counter-based dropout,
    L2 and example weights: the backend's fit_epochs ends where the reference formulas do
    (:func:`chainrule.backends.engine.fit_epochs` with ``ops=None``)."""
    from chainrule.backends.engine import fit_epochs
    from chainrule.optim import make_optimizer

    X, Y, Ws0, bs0, acts = _network([3, 5, 4, 2], output, loss, 11, dtype, ("tanh", 0.0))
    gen = np.random.default_rng(1)
    perms = np.stack([gen.permutation(11) for _ in range(2)])
    keys, lrs = np.array([12345, 2 ** 62 + 7]), np.array([0.05, 0.02])
    w = np.linspace(0.5, 1.5, 11).astype(dtype)
    results = []
    for engine in (fit_epochs, Ops(backend).fit_epochs):
        Ws, bs = [W.copy() for W in Ws0], [b.copy() for b in bs0]
        opt = make_optimizer(optimizer)
        opt.reset(_params(Ws, bs))
        with np.errstate(all="ignore"):
            plan = FitPlan.build([3, 5, 4, 2], acts, loss, opt, mini_batch_size=4, lambd=0.1,
                                 keep_probs=[0.7, 0.9])
            res = engine(plan, np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T), w,
                         perms=perms, lrs=lrs, keys=keys, k0=0, n_steps=100, t=0,
                         state=opt.state, Ws=Ws, bs=bs)
        results.append((res, _params(Ws, bs), opt.state))
    (expected, p_expected, s_expected), (actual, p_actual, s_actual) = results
    assert (actual.steps, actual.status, actual.t) == (expected.steps, 0, expected.t) == \
        (6, 0, 6 if optimizer_counts_steps(optimizer) else 0)
    for key, value in p_expected.items():
        assert_close(p_actual[key], value, dtype, key)
    for key, value in s_expected.items():
        assert_close(s_actual[key], value, dtype, key)
    np.testing.assert_allclose(actual.cost_sum, expected.cost_sum,
                               rtol=1e-4 if dtype == np.float32 else 1e-9)
    np.testing.assert_array_equal(actual.correct, expected.correct)


@pytest.mark.parametrize("optimizer", OPTIMIZER_NAMES)
def test_fit_session_matches_reference(backend, dtype, optimizer):
    """fit_epochs calls inside the backend's fit_session (a fit's whole run, entered twice:
    sessions nest) end where the reference does, and the session leaves the BLAS pools as
    it found them."""
    from threadpoolctl import threadpool_info

    from chainrule.backends.engine import fit_epochs
    from chainrule.optim import make_optimizer

    def pools():
        return sorted((i["filepath"], i["num_threads"]) for i in threadpool_info())

    X, Y, Ws0, bs0, acts = _network([3, 5, 4, 2], ("softmax", 0.0), "categorical_crossentropy",
                                    11, dtype, ("relu", 0.0))
    perms = np.stack([np.random.default_rng(2).permutation(11) for _ in range(3)])
    lrs, keys = np.array([0.05, 0.03, 0.02]), np.zeros(3, dtype=np.int64)
    XT, YT = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)
    before = pools()
    ops = Ops(backend)
    results = []
    for session in (None, ops.fit_session):
        Ws, bs = [W.copy() for W in Ws0], [b.copy() for b in bs0]
        opt = make_optimizer(optimizer)
        opt.reset(_params(Ws, bs))
        plan = FitPlan.build([3, 5, 4, 2], acts, "categorical_crossentropy", opt,
                             mini_batch_size=4)
        kw = dict(perms=perms, lrs=lrs, keys=keys, k0=0, n_steps=9, t=0, state=opt.state,
                  Ws=Ws, bs=bs)
        if session is None:
            res = fit_epochs(plan, XT, YT, None, **kw)
        else:
            with session(), session():
                res = ops.fit_epochs(plan, XT, YT, None, **kw)
                while res.steps < 9:  # a call may stop early (the C engine's time limit)
                    more = ops.fit_epochs(plan, XT, YT, None, **{
                        **kw, "perms": perms[res.epoch:], "lrs": lrs[res.epoch:],
                        "keys": keys[res.epoch:], "k0": res.batch, "n_steps": 9 - res.steps,
                        "t": res.t})
                    res = res._replace(steps=res.steps + more.steps, t=more.t,
                                       epoch=res.epoch + more.epoch, batch=more.batch)
        results.append((res, _params(Ws, bs), opt.state))
    (expected, p_expected, s_expected), (actual, p_actual, s_actual) = results
    assert (actual.steps, actual.t) == (expected.steps, expected.t) == \
        (9, 9 * optimizer_counts_steps(optimizer))
    for key, value in p_expected.items():
        assert_close(p_actual[key], value, dtype, key)
    for key, value in s_expected.items():
        assert_close(s_actual[key], value, dtype, key)
    assert pools() == before
