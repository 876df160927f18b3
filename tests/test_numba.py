"""The numba backend's own properties (chainrule.core + chainrule.backends.numba): its vector
math, whole runs against the numpy backend, allocations, threads, imports, the auto policy.
Every op against the reference: tests/test_backends_oracle.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import tracemalloc

import numpy as np
import pytest

import chainrule
from chainrule.backends import auto
from chainrule.backends import registry as _dispatch
from chainrule import reference as ref
from chainrule.backends.plan import FitPlan
from chainrule.backends.registry import Ops
from chainrule.optim import make_optimizer
from conftest import step_loop
from chainrule.training.step import train_step

pytestmark = pytest.mark.skipif(
    "numba" not in chainrule.available_backends(),
    reason=f"numba backend unavailable: {_dispatch.import_error('numba')}")

DTYPES = [np.float32, np.float64]
# float32: the kernels compute exp/tanh in float64 and round once; NumPy works in float32.
TOL = {np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12),
       np.dtype(np.float32): dict(rtol=2e-4, atol=2e-6)}
JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")
needs_jit = pytest.mark.skipif(JIT_DISABLED,
                               reason="measures compiled code (NUMBA_DISABLE_JIT set)")


@pytest.fixture(scope="module")
def numba_ops():
    return Ops("numba")


@pytest.fixture(scope="module")
def numpy_ops():
    return Ops("numpy")


# --------------------------------------------------------------------------- vectorised math

def test_vmath_matches_numpy_to_a_few_ulp():
    from numba import njit

    from chainrule.core import vmath

    @njit
    def apply(x, t, s):
        for i in range(x.size):
            t[i] = vmath.tanh(x[i])
            s[i] = vmath.sigmoid(x[i])

    x = np.concatenate([np.linspace(-30, 30, 20001), np.logspace(-300, 2.5, 3000),
                        -np.logspace(-300, 2.5, 3000), [0.0, -0.0, 800.0, -800.0]])
    t, s = np.empty_like(x), np.empty_like(x)
    apply(x, t, s)
    np.testing.assert_allclose(t, np.tanh(x), rtol=4 * np.finfo(float).eps, atol=0)
    with np.errstate(over="ignore"):
        expected = 1 / (1 + np.exp(-x))
    # below e^-708 the exponential is held at about 3e-308 (see vmath's docstring)
    np.testing.assert_allclose(s, expected, rtol=4 * np.finfo(float).eps, atol=4e-308)
    nan = np.array([np.nan])
    apply(nan, t[:1], s[:1])
    assert np.isnan(t[0]) and np.isnan(s[0])


def test_vmath_log_matches_numpy_to_a_few_ulp():
    from numba import njit

    from chainrule.core import vmath

    @njit
    def apply(x, out):
        for i in range(x.size):
            out[i] = vmath.log_positive(x[i])

    x = np.concatenate([np.logspace(-307, 0, 20001), np.linspace(1e-16, 1, 20001),
                        1 - np.logspace(-16, -1, 2000), [np.finfo(np.float32).eps, 2.0, 1e300]])
    out = np.empty_like(x)
    apply(x, out)
    np.testing.assert_allclose(out, np.log(x), rtol=4 * np.finfo(float).eps, atol=0)
    apply(np.array([np.nan]), out[:1])
    assert np.isnan(out[0])


def test_l2_cost_counts_every_layer_without_the_biases():
    Ws = {f"W{l}": np.full((2, 2), float(l)) for l in range(1, 5)}
    expected = 0.5 / (2 * 3) * sum(4 * l * l for l in range(1, 5))
    assert ref.l2_cost(Ws, 0.5, 3) == pytest.approx(expected)


# --------------------------------------------------------------------------- network ops



def _network(rng, dtype, dims, hidden, output, loss, m):
    L = len(dims) - 1
    acts = [hidden] * (L - 1) + [output]
    X = rng.standard_normal((dims[0], m)).astype(dtype)
    if loss == "categorical_crossentropy":
        Y = np.zeros((dims[-1], m), dtype)
        Y[rng.integers(0, dims[-1], m), np.arange(m)] = 1
    elif loss == "binary_crossentropy":
        Y = (rng.random((dims[-1], m)) > 0.5).astype(dtype)
    else:
        Y = rng.standard_normal((dims[-1], m)).astype(dtype)
    p = ref.initialize_parameters(dims, "xavier", rng=rng, dtype=dtype)
    Ws = [p[f"W{l}"] for l in range(1, L + 1)]
    bs = [(rng.standard_normal(p[f"b{l}"].shape) * 0.1).astype(dtype) for l in range(1, L + 1)]
    return X, Y, Ws, bs, acts


def test_repeated_steps_stops_at_first_non_finite_step(numba_ops, numpy_ops, rng):
    # Identity output, MSE and a far too large learning rate: the weights blow up to inf.
    X, Y, Ws, bs, acts = _network(rng, np.float64, [3, 4, 1], ("identity", 0.0),
                                  ("identity", 0.0), "mean_squared_error", 8)
    X *= 100
    Wn, bn = [W.copy() for W in Ws], [b.copy() for b in bs]
    n_e, costs_e = step_loop(numpy_ops, X, Y, Wn, bn, acts, "mean_squared_error", 50.0, 0.0, 100, 1)
    n_a, costs_a = step_loop(numba_ops, X, Y, Ws, bs, acts, "mean_squared_error", 50.0, 0.0, 100, 1)
    assert 0 < n_a < 100
    assert n_a == n_e
    for a, e in zip(Ws + bs, Wn + bn):
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, e, rtol=1e-6)


# --------------------------------------------------------------------------- whole runs

@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-7), ("float32", 2e-3)])
def test_training_run_matches_numpy_backend(dtype, rtol):
    from chainrule.datasets import load_planar_dataset
    X, Y = load_planar_dataset()
    nets = {}
    for backend in ("numpy", "numba"):
        net = chainrule.Network([2, 4, 1], hidden="tanh", dtype=dtype, backend=backend, seed=3)
        net.fit(X, Y, epochs=300, learning_rate=1.2, cost_every=50, progress=False)
        nets[backend] = net
    assert nets["numba"].backend == "numba"
    for k, v in nets["numpy"].parameters.items():
        np.testing.assert_allclose(nets["numba"].parameters[k], v, rtol=rtol, atol=rtol * 1e-2)
    np.testing.assert_allclose(nets["numba"].history_["cost"], nets["numpy"].history_["cost"],
                               rtol=rtol)


def test_mnist_like_run_matches_numpy_backend(rng):
    X = rng.standard_normal((20, 64)).astype(np.float32)
    labels = rng.integers(0, 4, 64)
    nets = {}
    for backend in ("numpy", "numba"):
        net = chainrule.Network([20, 16, 8, 4], hidden="relu", output="softmax",
                                dtype="float32", backend=backend, seed=1)
        net.fit(X, labels, epochs=40, learning_rate=0.1, cost_every=10, progress=False)
        nets[backend] = net
    for k, v in nets["numpy"].parameters.items():
        np.testing.assert_allclose(nets["numba"].parameters[k], v, rtol=2e-3, atol=2e-5)


# --------------------------------------------------------------------------- allocation, threads

def _single_step(numba_ops, X, Y, Ws, bs, acts, loss, s=None, lambd=0.1, lr=1e-3,
                 n_steps=1):
    """One step of the engine as ``Network.step`` takes it: ``XT = X.T`` (F-ordered), one
    batch of all m examples, gradient descent; or ``n_steps`` batches of ``s``."""
    plan = FitPlan.build([X.shape[0]] + [W.shape[0] for W in Ws], acts, loss,
                         make_optimizer("gd"), mini_batch_size=s or X.shape[1], lambd=lambd)
    YT, lrs = np.ascontiguousarray(Y.T), np.array([lr])
    return lambda: numba_ops.fit_epochs(plan, X.T, YT, None, perms=None, lrs=lrs, keys=None,
                                        k0=0, n_steps=n_steps, t=0, state={}, Ws=Ws, bs=bs)


@needs_jit
def test_single_step_allocates_nothing(numba_ops, rng):
    X, Y, Ws, bs, acts = _network(rng, np.float64, [20, 30, 5], ("relu", 0.0), ("softmax", 0.0),
                                  "categorical_crossentropy", 500)
    step = _single_step(numba_ops, X, Y, Ws, bs, acts, "categorical_crossentropy")
    step()
    step()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(5):
            step()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    # a copy of X would be 80 kB, one (30, 500) float64 buffer 120 kB; a few small Python
    # objects remain (the result's sums)
    assert peak < 4096, peak


@pytest.mark.parametrize("dtype", DTYPES)
def test_single_step_reads_the_course_x_in_place(numba_ops, rng, monkeypatch, dtype):
    """The kernel gets X's own buffer when one batch covers every example, the rows (a
    C-contiguous copy) when the batches are smaller."""
    from chainrule.backends import numba as numba_backend

    X, Y, Ws, bs, acts = _network(rng, dtype, [7, 4, 1], ("tanh", 0.0), ("sigmoid", 0.0),
                                  "binary_crossentropy", 30)
    real = numba_backend.core_train.fit_epochs
    seen = []

    def spy(XT, X_cols, *rest):
        seen.append((XT, X_cols))
        return real(XT, X_cols, *rest)

    monkeypatch.setattr(numba_backend.core_train, "fit_epochs", spy)
    for s in (None, 30, 45):
        _single_step(numba_ops, X, Y, Ws, bs, acts, "binary_crossentropy", s)()
        XT, X_cols = seen.pop()
        assert XT.size == 0 and X_cols.shape == X.shape
        assert X_cols.ctypes.data == X.ctypes.data
    _single_step(numba_ops, X, Y, Ws, bs, acts, "binary_crossentropy", 8)()
    XT, X_cols = seen.pop()
    assert X_cols.size == 0 and XT.flags.c_contiguous and XT.shape == (30, 7)
    assert not np.shares_memory(XT, X)


@needs_jit
def test_compiled_steps_make_no_nrt_allocation():
    # numba's own allocator (NRT) is invisible to tracemalloc: count its allocations. Every
    # array argument costs one when it crosses into numba, so compare a 1-step engine call
    # with a 50-step one on the same arguments: the steps themselves must add none.
    code = textwrap.dedent("""
        import numpy as np
        from numba.core.runtime import rtsys
        from chainrule.backends.registry import Ops
        from chainrule.backends.plan import FitPlan
        from chainrule.optim import make_optimizer
        from chainrule import reference as ref
        ops = Ops("numba")
        rng = np.random.default_rng(0)

        def allocations(f):
            before = rtsys.get_allocation_stats().alloc
            f()
            return rtsys.get_allocation_stats().alloc - before

        for dtype in (np.float32, np.float64):
            X = rng.standard_normal((6, 40)).astype(dtype)
            Y = np.zeros((3, 40), dtype)
            Y[rng.integers(0, 3, 40), np.arange(40)] = 1
            p = ref.initialize_parameters([6, 5, 4, 3], rng=rng, dtype=dtype)
            Ws = [p["W1"], p["W2"], p["W3"]]; bs = [p["b1"], p["b2"], p["b3"]]
            acts = [("tanh", 0.0), ("relu", 0.0), ("softmax", 0.0)]
            opt = make_optimizer("adam")
            opt.reset(p)
            plan = FitPlan.build([6, 5, 4, 3], acts, "categorical_crossentropy", opt,
                                 mini_batch_size=40, lambd=0.2)
            XT, YT = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)
            loop = lambda n: ops.fit_epochs(plan, XT, YT, None, perms=None,
                                            lrs=np.full(n, 0.1), keys=None, k0=0, n_steps=n,
                                            t=0, state=opt.state, Ws=Ws, bs=bs)
            loop(1)
            one, fifty = allocations(lambda: loop(1)), allocations(lambda: loop(50))
            assert one == fifty, (one, fifty)
        print("ok")
    """)
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_two_models_train_in_two_threads(numba_ops):
    # Same shapes, so the same workspace and plan keys: each thread must get its own
    # buffers. The kernels release the GIL, so the two threads' steps really overlap.
    problems = [_network(np.random.default_rng(s), np.float64, [5, 8, 1], ("tanh", 0.0),
                         ("sigmoid", 0.0), "binary_crossentropy", 64) for s in (1, 2)]

    def train(X, Y, Ws, bs, acts, barrier=None):
        single = _single_step(numba_ops, X, Y, Ws, bs, acts, "binary_crossentropy", lr=0.5)
        batches = _single_step(numba_ops, X, Y, Ws, bs, acts, "binary_crossentropy", s=16,
                               lr=0.5, n_steps=4)
        if barrier is not None:
            barrier.wait()
        for _ in range(40):
            for _ in range(25):
                single()
            batches()
            step_loop(numba_ops, X, Y, Ws, bs, acts, "binary_crossentropy", 0.5, 0.0, 2, 1)

    sequential = []
    for X, Y, Ws, bs, acts in problems:
        Wc, bc = [W.copy() for W in Ws], [b.copy() for b in bs]
        train(X, Y, Wc, bc, acts)
        sequential.append(Wc + bc)
    errors = []
    barrier = threading.Barrier(2)

    def work(*args):
        try:
            train(*args, barrier)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=p) for p in problems]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (X, Y, Ws, bs, acts), expected in zip(problems, sequential):
        for a, e in zip(Ws + bs, expected):
            np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- dispatch, fallback

def _run(code, **env_extra):
    env = dict(os.environ, **env_extra)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True)


@pytest.mark.parametrize("missing", ["numba", "scipy"])
def test_import_works_without_numba_or_scipy(missing):
    r = _run(f"""
        import sys
        sys.modules[{missing!r}] = None  # the import of {missing} now fails
        import chainrule
        from chainrule.datasets import load_planar_dataset
        assert "numba" not in chainrule.available_backends(), chainrule.available_backends()
        X, Y = load_planar_dataset()
        net = chainrule.Network([2, 4, 1], hidden="tanh")
        assert net.backend in ("numpy", "c"), net.backend
        net.fit(X, Y, epochs=5, progress=False)
        try:
            chainrule.Network([2, 4, 1], backend="numba")
        except ImportError as exc:
            assert '".[numba]"' in str(exc), exc
        else:
            raise AssertionError("backend='numba' should raise ImportError")
        print("ok")
    """)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


@needs_jit
def test_import_without_a_writable_cache_dir():
    # Simulate a read-only install with no writable cache anywhere: no numba cache locator
    # can place a cache (ZipCacheLocator only serves zip imports), so cache=True would raise.
    r = _run("""
        import numpy as np
        import chainrule.core as core
        assert core.UNCACHED, "expected kernels compiled without a disk cache"
        from chainrule.backends.registry import Ops
        from chainrule.training.step import train_step
        X = np.ones((2, 3)); Y = np.ones((1, 3)); W = [np.ones((1, 2))]; b = [np.zeros((1, 1))]
        ok, J = train_step(Ops("numba"), X, Y, W, b, [("sigmoid", 0.0)], "binary_crossentropy",
                           0.1, 0.0, None, True)
        assert ok and np.isfinite(J)
        print("ok")
    """, NUMBA_CACHE_LOCATOR_CLASSES="ZipCacheLocator", NUMBA_CACHE_DIR="")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_auto_prefers_numba_where_measured_faster():
    assert "numba" in auto._AUTO_PREDICATES
    available = ["numpy", "numba"]
    assert auto.auto_rule([2, 4, 1], 400, np.dtype(np.float64), available) == "numba"
    assert auto.auto_rule([784, 128, 64, 10], 256, np.dtype(np.float32), available) == "numba"
    assert auto.auto_rule([2, 4, 1], None, np.dtype(np.float64), ["numpy"]) == "numpy"
