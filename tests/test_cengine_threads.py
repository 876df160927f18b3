"""The C engine on several threads (OpenMP, csrc/train.c "threads") and the choice of threads.

Oracles: the NumPy reference engine within the dtype tolerance, and the engine on one thread.
The cut-offs are set to 0 here so that every part of a step splits, even on these small
networks: uneven parts, empty parts (a batch of one example over three threads), products
split along rows and along columns. Without OpenMP (``cr_openmp() == 0``) the engine runs
every call on one thread, and the tests of the split are skipped.
"""

from __future__ import annotations

import numpy as np
import pytest

from chainrule import Network
from chainrule.backends.engine import fit_epochs as ref_fit_epochs
from chainrule.backends.plan import FitPlan
from chainrule.backends.engine import n_batches

from conftest import assert_close
from test_cengine import _assert_same, _fresh_state, _network, _refusal_problem
from test_engine import OPT_IDS, OPTIMIZERS, _problem, _schedule

cb = pytest.importorskip("chainrule.backends.c", reason="the C backend is not built")
ce, cw, blas = cb.plans, cb.wrappers, cb.blas
openmp = pytest.mark.skipif(not cw.lib.cr_openmp(), reason="built without OpenMP")


@pytest.fixture
def split_everything():
    """Every part of a step on the engine's threads, whatever its size."""
    before = cw.parallel_thresholds(0, 0)
    yield
    cw.parallel_thresholds(*before)


def _on_threads(monkeypatch, n):
    monkeypatch.setattr(blas, "engine_threads", lambda: n)


def _run(engine, dims, acts, loss, X, Y, dtype, *, optimizer, s, epochs=2, lambd=0.0,
         probs=None, w=None, init=None, shuffle=True, lrs=None):
    dtype = np.dtype(dtype)
    m = X.shape[1]
    probs = [1.0] * (len(dims) - 2) if probs is None else probs
    perms, keys = _schedule(m, epochs, probs)
    XT, YT = np.ascontiguousarray(X.T, dtype=dtype), np.ascontiguousarray(Y.T, dtype=dtype)
    Ws, bs = _network(dims, dtype)
    if init is not None:
        init(Ws, bs)
    opt = _fresh_state(optimizer, Ws, bs)
    plan = FitPlan.build(dims, acts, loss, opt, mini_batch_size=s, lambd=lambd, keep_probs=probs)
    res = engine(plan, XT, YT, None if w is None else np.asarray(w, dtype),
                 perms=perms if shuffle else None,
                 lrs=np.full(epochs, 0.05) if lrs is None else np.asarray(lrs, np.float64),
                 keys=keys, k0=0, n_steps=epochs * n_batches(m, s), t=0, state=opt.state,
                 Ws=Ws, bs=bs)
    return res, Ws, bs, opt.state


CASES = {  # (problem, m, mini-batch size, options)
    "binary-dropout-l2": ("binary", 23, 8, dict(probs=[0.8, 0.7], lambd=0.3)),
    "softmax-weights": ("softmax", 23, 8, dict(w="random")),
    "one-example-batches": ("binary", 5, 1, dict(probs=[0.9, 1.0])),
    "full-batch": ("softmax", 23, 23, dict(lambd=0.1)),
}


@openmp
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=OPT_IDS)
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("threads", [2, 3])
def test_threads_match_the_reference(threads, case, optimizer, dtype, monkeypatch,
                                     split_everything):
    kind, m, s, options = CASES[case]
    options = dict(options)
    dims, acts, loss, X, Y = _problem(kind, m, dtype)
    if options.get("w") == "random":
        options["w"] = np.random.default_rng(1).uniform(0.2, 2.0, m)
    expected = _run(ref_fit_epochs, dims, acts, loss, X, Y, dtype, optimizer=optimizer, s=s,
                    **options)
    _on_threads(monkeypatch, threads)
    actual = _run(ce.fit_epochs, dims, acts, loss, X, Y, dtype, optimizer=optimizer, s=s,
                  **options)
    _assert_same(expected, actual, dtype)


@openmp
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_the_same_threads_give_the_same_bits(dtype, monkeypatch, split_everything):
    dims, acts, loss, X, Y = _problem("binary", 41, dtype)
    _on_threads(monkeypatch, 3)
    runs = [_run(ce.fit_epochs, dims, acts, loss, X, Y, dtype, optimizer={"name": "adam"}, s=8,
                 probs=[0.8, 0.9], lambd=0.2) for _ in range(2)]
    (r1, Ws1, bs1, st1), (r2, Ws2, bs2, st2) = runs
    for P, Q in zip(Ws1 + bs1 + list(st1.values()), Ws2 + bs2 + list(st2.values())):
        np.testing.assert_array_equal(P, Q)
    np.testing.assert_array_equal(r1.cost_sum, r2.cost_sum)


@openmp
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kind", ["cost", "parameter", "gradient", "state"])
def test_threads_refuse_as_the_reference_does(kind, dtype, monkeypatch, split_everything):
    dims, acts, loss, X, Y, kw = _refusal_problem(kind, dtype)
    with np.errstate(all="ignore"):
        expected = _run(ref_fit_epochs, dims, acts, loss, X, Y, dtype, s=8, epochs=3, **kw)
        _on_threads(monkeypatch, 2)
        actual = _run(ce.fit_epochs, dims, acts, loss, X, Y, dtype, s=8, epochs=3, **kw)
    assert expected[0].status == 1
    _assert_same(expected, actual, dtype)


@openmp
def test_a_call_out_of_time_stops_after_a_step_and_the_rest_continues(monkeypatch):
    """max_seconds: a call returns after the step that ends past it; the calls continue from
    where it stopped and end where one call would (within the tolerance: the calls may run on
    different threads)."""
    dtype = np.float64
    dims, acts, loss, X, Y = _problem("binary", 23, dtype)
    m, s, epochs = 23, 4, 3
    perms, keys = _schedule(m, epochs, [1.0, 1.0])
    XT, YT, lrs = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T), np.full(epochs, 0.05)
    total = epochs * n_batches(m, s)
    Ws, bs = _network(dims, dtype)
    opt = _fresh_state({"name": "adam"}, Ws, bs)
    one = ce.fit_epochs(FitPlan.build(dims, acts, loss, opt, mini_batch_size=s), XT, YT, None,
                        perms=perms, lrs=lrs, keys=keys, k0=0, n_steps=total, t=0,
                        state=opt.state, Ws=Ws, bs=bs)
    Ws2, bs2 = _network(dims, dtype)
    opt2 = _fresh_state({"name": "adam"}, Ws2, bs2)
    monkeypatch.setattr(blas.ThreadChoice, "MAX_CALL_SECONDS", 1e-12)
    _on_threads(monkeypatch, 2)
    e, k, t, calls = 0, 0, 0, 0
    with blas.engine_session():
        while e < epochs:
            part = ce.fit_epochs(FitPlan.build(dims, acts, loss, opt2, mini_batch_size=s), XT,
                                 YT, None, perms=perms[e:], lrs=lrs[e:], keys=keys[e:], k0=k,
                                 n_steps=total, t=t, state=opt2.state, Ws=Ws2, bs=bs2)
            assert part.steps == 1 and part.status == 0
            e, k, t, calls = e + part.epoch, part.batch, part.t, calls + 1
    assert calls == total and t == one.t == total
    for l, (P, Q) in enumerate(zip(Ws2 + bs2, Ws + bs)):
        assert_close(P, Q, dtype, f"parameter {l}")


# --------------------------------------------------------------------------- the choice

def test_the_choice_tries_one_thread_then_keeps_the_faster():
    first = blas.ThreadChoice.FIRST_INTERVAL
    choice = blas.ThreadChoice(4, key=("test", 1))
    assert choice.pick() == 4 and not choice.probing()
    choice.observe(4, 10, 1.0)  # the first call of a new network is not counted
    assert choice.probing() and choice.pick() == 1
    assert choice.max_seconds(10) == blas.ThreadChoice.MAX_CALL_SECONDS  # nothing known of 4
    choice.observe(1, 10, 0.2)  # 0.02 s a step on one thread
    for _ in range(first):
        assert choice.pick() == 4 and not choice.probing()
        choice.observe(4, 10, 0.1)  # 0.01 s a step on four
    assert choice.probing() and choice.pick() == 1
    # a try runs at most twice the current choice's time for its steps
    assert choice.max_seconds(3) == pytest.approx(2 * 0.01 * 3)
    choice.observe(1, 3, 0.09)  # lost again: tried half as often
    assert choice.pick() == 4 and choice.interval == 2 * first
    for _ in range(2 * first):
        choice.observe(choice.pick(), 10, 0.1)
    assert choice.pick() == 1
    choice.observe(1, 10, 0.05)  # one thread is now faster (0.005 s a step): it is kept
    assert choice.current == 1 and choice.interval == first and not choice.probing()


def test_the_choice_leaves_threads_that_slow_down_and_remembers():
    key = ("test", 2)
    choice = blas.ThreadChoice(2, key=key)
    choice.observe(2, 10, 1.0)  # not counted
    choice.observe(1, 10, 2.0)
    choice.observe(2, 10, 1.0)
    assert choice.pick() == 2
    choice.observe(2, 10, 5.0)  # a load arrived: 0.5 s a step, more than twice 0.2
    assert choice.pick() == 1 and not choice.probing()
    later = blas.ThreadChoice(2, key=key)  # the next fit of the same network
    assert later.current == 1
    assert blas.ThreadChoice(1, key=key).pick() == 1
    single = blas.ThreadChoice(1, key=("test", 3))
    single.observe(1, 10, 1.0)
    assert not single.probing() and single.pick() == 1


def test_probe_steps_are_a_quarter_and_at_least_one():
    assert blas.ThreadChoice.probe_steps(100) == 25
    assert blas.ThreadChoice.probe_steps(3) == 1


# --------------------------------------------------------------------------- a whole fit

def _blas_threads():
    from threadpoolctl import threadpool_info
    return sorted((i["filepath"], i["num_threads"]) for i in threadpool_info()
                  if i["user_api"] == "blas")


@openmp
@pytest.mark.parametrize("mini_batch_size", [16, None])
def test_a_fit_on_threads_matches_numpy_and_restores_the_blas(mini_batch_size, monkeypatch,
                                                               split_everything):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 61))
    Y = (X[0] * X[1] > 0).astype(float)[None]
    inside = []

    def record(net, epoch, logs):
        inside.append(_blas_threads())

    before = _blas_threads()
    _on_threads(monkeypatch, 2)
    nets = {}
    for backend in ("numpy", "c"):
        net = Network([5, 7, 4, 1], hidden="relu", output="sigmoid", backend=backend, seed=2)
        net.fit(X, Y, epochs=6, learning_rate=0.01, optimizer="adam",
                mini_batch_size=mini_batch_size, keep_prob=0.9, lambd=0.1, progress=False,
                callbacks=[record] if backend == "c" else None)
        nets[backend] = net
    for key, value in nets["numpy"].parameters.items():
        assert_close(nets["c"].parameters[key], value, np.float64, key)
    assert _blas_threads() == before
    assert inside and all(n == 1 for rec in inside for _, n in rec)  # one BLAS thread inside


def test_a_fit_session_nests_and_ends():
    with blas.engine_session():
        with blas.engine_session():
            assert blas._session.choices is not None
        assert blas._session.choices is not None
    assert blas._session.choices is None


def test_a_models_n_threads_fixes_the_threads(monkeypatch):
    """Under a model's n_threads the engine runs every call on exactly those threads (the
    same threads, the same bits): no tries of one thread."""
    from chainrule._threads import limited

    _on_threads(monkeypatch, 2)
    with limited(2), blas.engine_session():
        n, _, choice = blas.engine_call_threads(("test", "fixed"))
        assert n == 2 and not choice.adaptive
        for _ in range(10):
            choice.observe(2, 10, 1.0)
            assert choice.pick() == 2 and not choice.probing()
    with blas.engine_session():
        assert blas.engine_call_threads(("test", "free"))[2].adaptive


@openmp
def test_a_fit_with_n_threads_gives_the_same_bits_twice(monkeypatch, split_everything):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((6, 97))
    Y = (X[0] - X[2] > 0).astype(float)[None]
    _on_threads(monkeypatch, 2)
    nets = []
    for _ in range(2):
        net = Network([6, 9, 5, 1], hidden="tanh", output="sigmoid", backend="c", seed=4,
                      n_threads=2)
        net.fit(X, Y, epochs=5, learning_rate=0.01, optimizer="adam", mini_batch_size=8,
                progress=False)
        nets.append(net)
    for key, value in nets[0].parameters.items():
        np.testing.assert_array_equal(nets[1].parameters[key], value)


def _fork_fit(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((5, 120))
    Y = (X[0] > 0).astype(float)[None]
    net = Network([5, 8, 1], backend="c", seed=seed)
    net.fit(X, Y, epochs=5, mini_batch_size=16, optimizer="adam", learning_rate=0.01,
            progress=False)
    return blas.engine_threads(), float(net.score(X, Y))


@openmp
def test_a_forked_child_trains_on_one_thread(split_everything):
    """GNU OpenMP's threads do not survive a fork: a child that entered a parallel region
    after its parent had run one waited forever. A forked child runs the engine on one
    thread."""
    import multiprocessing

    if blas.engine_threads() < 2:
        pytest.skip("one usable CPU: the parent runs no parallel region")
    _fork_fit(0)  # the parent runs parallel regions (every part splits)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map_async(_fork_fit, [1, 2]).get(timeout=120)
    assert [threads for threads, _ in results] == [1, 1]
    assert all(score > 0.5 for _, score in results)


@openmp
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("layout", ["rows", "course"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=OPT_IDS)
def test_a_long_input_layer_split_along_k_matches_the_reference(optimizer, layout, dtype,
                                                                monkeypatch, split_everything):
    """On two threads an input layer with n[0] >= 2 (mb + n[1]) (here 70 inputs, batches of
    8 and a last one of 7, 6 units) is split along K: each thread multiplies half of the
    inputs for the whole batch and the halves are summed before the bias and g (forward_par
    in csrc/train_template.h). With dropout, example weights, L2, the rows layout
    (permutations) and the course's X read in place: the reference's numbers, and the same
    bits on a second run."""
    rng = np.random.default_rng(11)
    dims, acts, loss = [70, 6, 3], [("relu", 0.0), ("softmax", 0.0)], "categorical_crossentropy"
    m, s, epochs, probs = 23, 8, 3, [0.8]
    X = rng.standard_normal((dims[0], m)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[:, rng.integers(0, 3, m)]
    w = rng.uniform(0.2, 2.0, m).astype(dtype)
    perms, keys = _schedule(m, epochs, probs)
    if layout == "course":
        perms, XT = None, X.T  # F-ordered: the engine reads the course's columns in place
        assert not XT.flags.c_contiguous
    else:
        XT = np.ascontiguousarray(X.T)
    YT = np.ascontiguousarray(Y.T)
    lrs = np.array([0.05, 0.03, 0.02])
    _on_threads(monkeypatch, 2)
    runs = []
    for engine in (ref_fit_epochs, ce.fit_epochs, ce.fit_epochs):
        Ws, bs = _network(dims, dtype)
        opt = _fresh_state(optimizer, Ws, bs)
        plan = FitPlan.build(dims, acts, loss, opt, mini_batch_size=s, lambd=0.2,
                             keep_probs=probs)
        res = engine(plan, XT, YT, w, perms=perms, lrs=lrs, keys=keys, k0=0,
                     n_steps=epochs * n_batches(m, s), t=0, state=opt.state, Ws=Ws, bs=bs)
        assert res.steps == epochs * n_batches(m, s) and res.status == 0
        runs.append((res, Ws, bs, opt.state))
    _assert_same(runs[0], runs[1], dtype)
    (r1, Ws1, bs1, st1), (r2, Ws2, bs2, st2) = runs[1], runs[2]
    for P, Q in zip(Ws1 + bs1 + list(st1.values()), Ws2 + bs2 + list(st2.values())):
        np.testing.assert_array_equal(P, Q)
    np.testing.assert_array_equal(r1.cost_sum, r2.cost_sum)
