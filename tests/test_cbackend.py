"""The C backend (``chainrule.backends.c`` over ``chainrule._cdense``) against the NumPy reference."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from chainrule import Network
from chainrule.backends import numpy as nb
from chainrule import reference as ref
from chainrule.backends import auto
from chainrule.backends.auto import auto_rule
from chainrule.backends.registry import Ops, available_backends
from chainrule.errors import InputError, ShapeError
from conftest import hidden_activations, network_problem, step_loop
from chainrule.training.step import train_step

HAVE_C = importlib.util.find_spec("chainrule._cdense") is not None
TESTS = os.path.dirname(os.path.abspath(__file__))


def test_cdense_module_imports():
    """The compiled module imports. With ``CHAINRULE_REQUIRE_C=1`` (CI) its absence fails
    instead of turning every C test into a skip."""
    if not HAVE_C:
        if os.environ.get("CHAINRULE_REQUIRE_C") == "1":
            pytest.fail("chainrule._cdense was not built, and CHAINRULE_REQUIRE_C=1")
        pytest.skip("chainrule._cdense was not built (no C compiler at install)")
    from chainrule._cdense import ffi, lib
    assert lib.cr_dense_forward_f64 and lib.cr_dense_backward_f32 and ffi.sizeof("double") == 8
    assert "c" in available_backends()


pytestmark_c = pytest.mark.skipif(not HAVE_C, reason="chainrule._cdense was not built")

if HAVE_C:
    from chainrule.backends import c as cb
else:  # the module-level tests below are all skipped
    cb = None

DTYPES = ["float64", "float32"]
TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=2e-4, atol=2e-5)}
ACTIVATIONS = hidden_activations()  # the table's, softmax added where a test takes it
# (n, n_prev, m): m = 1, n = 1, n_prev = 1, odd sizes, and one above the BLAS cut-off
SHAPES = [(1, 1, 1), (3, 1, 5), (1, 4, 1), (4, 3, 7), (9, 13, 33), (40, 30, 50)]


def assert_match(actual, expected, dtype):
    if expected is None:
        assert actual is None
        return
    assert actual.shape == expected.shape
    assert actual.dtype == np.dtype(dtype)
    np.testing.assert_allclose(actual, expected, **TOL[dtype])


@pytest.fixture(params=["loops", "blas"])
def path(request):
    """Run the test through the C loops, then through BLAS (every product above the cut-off)."""
    if not HAVE_C:
        pytest.skip("chainrule._cdense was not built")
    previous = cb.set_blas_threshold(10**18 if request.param == "loops" else 0)
    yield request.param
    cb.set_blas_threshold(previous)


def layer(rng, n, n_prev, m, dtype):
    A_prev = rng.standard_normal((n_prev, m)).astype(dtype)
    W = rng.standard_normal((n, n_prev)).astype(dtype)
    b = rng.standard_normal((n, 1)).astype(dtype)
    dZ = rng.standard_normal((n, m)).astype(dtype)
    Z_prev = rng.standard_normal((n_prev, m)).astype(dtype)
    return A_prev, W, b, dZ, Z_prev


# --------------------------------------------------------------------------- layer ops

@pytestmark_c
def test_dense_forward_tiny_case_by_hand():
    A_prev = np.array([[1.0, 2.0], [3.0, -4.0]])
    W = np.array([[1.0, -1.0], [0.5, 0.0]])
    b = np.array([[0.5], [-1.0]])
    Z, A = cb.dense_forward(A_prev, W, b, "relu")
    np.testing.assert_array_equal(Z, [[-1.5, 6.5], [-0.5, 0.0]])
    np.testing.assert_array_equal(A, [[0.0, 6.5], [0.0, 0.0]])


@pytestmark_c
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("activation", ACTIVATIONS + ["softmax"])
def test_dense_forward_matches_reference(path, dtype, shape, activation):
    A_prev, W, b, _, _ = layer(np.random.default_rng(0), *shape, dtype)
    for actual, expected in zip(cb.dense_forward(A_prev, W, b, activation),
                                nb.dense_forward(A_prev, W, b, activation)):
        assert_match(actual, expected, dtype)


@pytestmark_c
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, m", [(1, 3), (10, 255), (10, 256), (10, 257), (3, 1347),
                                  (700, 9)])
def test_forward_softmax_matches_numpy_across_blocks_and_extremes(path, dtype, n, m):
    """The forward's softmax (blocks of 256 columns, the vectorised exponential) against
    NumPy's over the columns of the Z it returns, with a column of huge logits, one with a
    -inf (an overflowing product), one with a NaN (NaN throughout, as NumPy's max makes it)
    and one spanning the exponential's range."""
    rng = np.random.default_rng(7)
    A_prev = (rng.standard_normal((n, m)) * 30).astype(dtype)
    big = float(np.finfo(dtype).max)
    A_prev[:, -1] = np.linspace(-big / 4, big / 4, n)
    W = np.eye(n, dtype=dtype)
    if m > 2:
        W[0, 0] = 2  # row 0 doubled: 2 * (-max) overflows to -inf
        A_prev[0, 0] = -big
        A_prev[n // 2, 1] = np.nan
    if m > 3:
        A_prev[:, 2] = np.linspace(-800, 0, n)
    b = np.zeros((n, 1), dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        Z, A = cb.dense_forward(A_prev, W, b, "softmax")
        shifted = Z.astype(np.float64) - Z.max(axis=0, keepdims=True)
        e = np.exp(shifted)
        expected = (e / e.sum(axis=0, keepdims=True)).astype(dtype)
    assert A.dtype == np.dtype(dtype)
    if m > 2:
        assert Z[0, 0] == -np.inf and np.isnan(Z[:, 1]).all() and np.isnan(A[:, 1]).all()
    if m > 2 and n > 1:  # (a lone -inf is its own max: NaN, as NumPy's)
        assert not np.isnan(A[:, 0]).any()
        assert 0 <= float(A[0, 0]) < 3.4e-308  # e^-inf: held at about 3e-308 (vmath)
    np.testing.assert_array_equal(np.isnan(A), np.isnan(expected))
    np.testing.assert_allclose(A, expected, **TOL[dtype])


@pytestmark_c
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("convention", ["L", "J"])
@pytest.mark.parametrize("regularisation", ["none", "dropout", "dropout+l2"])
@pytest.mark.parametrize("need_dA_prev", [False, True])
def test_dense_backward_matches_reference(path, dtype, shape, activation, convention,
                                          regularisation, need_dA_prev):
    rng = np.random.default_rng(1)
    A_prev, W, b, dZ, Z_prev = layer(rng, *shape, dtype)
    mask = None
    if "dropout" in regularisation:
        mask = ((rng.random(A_prev.shape) < 0.8) / 0.8).astype(dtype)
    lambd = 0.7 if "l2" in regularisation else 0.0
    args = (dZ, A_prev, W, Z_prev, activation, convention, lambd, mask, need_dA_prev)
    for actual, expected in zip(cb.dense_backward(*args), nb.dense_backward(*args)):
        assert_match(actual, expected, dtype)


@pytestmark_c
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("need_dA_prev", [False, True])
def test_dense_backward_input_layer_skips_dA_prev(path, dtype, need_dA_prev):
    A_prev, W, _, dZ, _ = layer(np.random.default_rng(2), 5, 4, 6, dtype)
    args = (dZ, A_prev, W, None, None, "L", 0.1, None, need_dA_prev)
    actual, expected = cb.dense_backward(*args), nb.dense_backward(*args)
    assert actual[0] is None
    assert (actual[3] is None) == (not need_dA_prev)
    for a, e in zip(actual, expected):
        assert_match(a, e, dtype)


@pytestmark_c
@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_at_exactly_zero(path, dtype):
    """g'(0) = 0 for ReLU (the course's dZ[Z <= 0] = 0); g(0) = 0."""
    A_prev = np.array([[1.0, -1.0, 0.0]], dtype)
    W = np.array([[1.0], [0.0]], dtype)
    b = np.zeros((2, 1), dtype)
    Z, A = cb.dense_forward(A_prev, W, b, "relu")
    np.testing.assert_array_equal(A, [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    Z_prev = np.array([[0.0, 2.0, -0.0]], dtype)
    dZ = np.ones((2, 3), dtype)
    dZ_prev, *_ = cb.dense_backward(dZ, A_prev, W, Z_prev, "relu", "L")
    np.testing.assert_array_equal(dZ_prev, [[0.0, 1.0, 0.0]])


@pytestmark_c
@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_ops_accept_noncontiguous_and_readonly_inputs(path, dtype):
    rng = np.random.default_rng(3)
    A_prev = np.asfortranarray(rng.standard_normal((6, 9)).astype(dtype))
    W = rng.standard_normal((8, 12)).astype(dtype)[::2, ::2]  # strided view (4, 6)
    b = rng.standard_normal((4, 1)).astype(dtype)
    dZ = rng.standard_normal((9, 4)).astype(dtype).T  # transposed view (4, 9)
    Z_prev = rng.standard_normal((6, 9)).astype(dtype)
    for x in (A_prev, W, b, dZ, Z_prev):
        x.flags.writeable = False
    for actual, expected in zip(cb.dense_forward(A_prev, W, b, "tanh"),
                                nb.dense_forward(A_prev, W, b, "tanh")):
        assert_match(actual, expected, dtype)
    args = (dZ, A_prev, W, Z_prev, "sigmoid", "J", 0.3, None, True)
    for actual, expected in zip(cb.dense_backward(*args), nb.dense_backward(*args)):
        assert_match(actual, expected, dtype)


@pytestmark_c
def test_layer_ops_reject_mixed_dtypes_and_bad_shapes():
    A_prev, W, b, dZ, Z_prev = layer(np.random.default_rng(4), 3, 2, 5, "float64")
    with pytest.raises(InputError, match="dtype float32 but W has dtype float64"):
        cb.dense_forward(A_prev.astype("float32"), W, b, "relu")
    with pytest.raises(InputError, match="float32 or float64"):
        cb.dense_forward(A_prev, W.astype(np.int64), b, "relu")
    with pytest.raises(ShapeError, match=r"b has shape \(2, 1\), expected \(3, 1\)"):
        cb.dense_forward(A_prev, W, b[:2], "relu")
    with pytest.raises(ShapeError, match="A_prev has shape"):
        cb.dense_forward(A_prev[:1], W, b, "relu")
    with pytest.raises(ShapeError, match="2-D"):
        cb.dense_forward(A_prev[0], W, b, "relu")
    with pytest.raises(ShapeError, match="every dimension"):
        cb.dense_forward(A_prev[:, :0], W, b, "relu")
    with pytest.raises(InputError, match="unknown activation"):
        cb.dense_forward(A_prev, W, b, "swish")
    with pytest.raises(InputError, match="softmax"):
        cb.dense_backward(dZ, A_prev, W, Z_prev, "softmax")
    with pytest.raises(InputError, match="convention"):
        cb.dense_backward(dZ, A_prev, W, Z_prev, "relu", "K")
    with pytest.raises(InputError, match="NumPy array"):
        cb.dense_forward(A_prev.tolist(), W, b, "relu")


@pytestmark_c
def test_sgd_update_refuses_a_copy_it_would_lose():
    W = np.zeros((4, 4))[:, ::2]
    with pytest.raises(InputError, match="in place"):
        cb.sgd_update([W], [np.zeros((4, 1))], [np.ones((4, 2))], [np.ones((4, 1))], 0.1)


# --------------------------------------------------------------------------- network ops

NETS = [([3, 1], ["sigmoid"], "binary_crossentropy"),
        ([4, 5, 3, 1], ["relu", "tanh", "sigmoid"], "binary_crossentropy"),
        ([2, 6, 3], [("leaky_relu", 0.05), "softmax"], "categorical_crossentropy"),
        ([5, 4, 2], ["sigmoid", "identity"], "mean_squared_error"),
        ([6, 4, 2], ["relu", "tanh"], "mean_squared_error"),
        # a layer whose weights outweigh its activations: train_step's fused update
        ([3, 40, 30, 2], ["tanh", "relu", "identity"], "mean_squared_error")]


problem = network_problem  # seeded X, Y, Ws, bs (tests/conftest.py)


@pytestmark_c
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("net", NETS, ids=lambda n: str(n[0]))
@pytest.mark.parametrize("m", [1, 17])
def test_network_forward_backward_match_numpy(path, dtype, net, m):
    dims, acts, loss = net
    acts = [ref.parse_activation(a) for a in acts]
    X, Y, Ws, bs = problem(dims, loss, m, dtype)
    rng = np.random.default_rng(9)
    masks = [None] + [((rng.random((n, m)) < 0.7) / 0.7).astype(dtype) for n in dims[1:-1]] + [None]
    c, numpy_ops = Ops("c"), Ops("numpy")
    for convention in ("L", "J"):
        Zs_e, As_e = numpy_ops.forward(X, Ws, bs, acts, masks)
        Zs_a, As_a = c.forward(X, Ws, bs, acts, masks)
        for a, e in zip(Zs_a + As_a, Zs_e + As_e):
            assert_match(a, e, dtype)
        expected = numpy_ops.backward(Y, Zs_e, As_e, Ws, acts, loss, convention, 0.4, masks, True)
        actual = c.backward(Y, Zs_e, As_e, Ws, acts, loss, convention, 0.4, masks, True)
        for a_list, e_list in zip(actual, expected):
            for a, e in zip(a_list, e_list):
                assert_match(a, e, dtype)


@pytestmark_c
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("net", NETS, ids=lambda n: str(n[0]))
def test_repeated_steps_matches_numpy(dtype, net):
    dims, acts, loss = net
    acts = [ref.parse_activation(a) for a in acts]
    X, Y, Ws, bs = problem(dims, loss, 23, dtype)
    runs = {}
    for backend in ("numpy", "c"):
        W_copy, b_copy = [W.copy() for W in Ws], [b.copy() for b in bs]
        n_done, costs = step_loop(Ops(backend), X, Y, W_copy, b_copy, acts, loss, 0.05, 0.1, 25, 5)
        runs[backend] = (n_done, costs, W_copy, b_copy)
    assert runs["c"][0] == runs["numpy"][0] == 25
    np.testing.assert_allclose(runs["c"][1], runs["numpy"][1], rtol=1e-3 if dtype == "float32"
                               else 1e-9)
    tol = dict(rtol=1e-3, atol=1e-4) if dtype == "float32" else dict(rtol=1e-8, atol=1e-10)
    for a, e in zip(runs["c"][2] + runs["c"][3], runs["numpy"][2] + runs["numpy"][3]):
        np.testing.assert_allclose(a, e, **tol)


@pytestmark_c
def test_train_step_with_masks_and_cost_matches_numpy():
    dims, acts, loss = NETS[1]
    acts = [ref.parse_activation(a) for a in acts]
    X, Y, Ws, bs = problem(dims, loss, 11, "float64")
    rng = np.random.default_rng(3)
    masks = [None] + [((rng.random((n, 11)) < 0.5) / 0.5) for n in dims[1:-1]] + [None]
    out = {}
    for backend in ("numpy", "c"):
        W_copy, b_copy = [W.copy() for W in Ws], [b.copy() for b in bs]
        ok, J = train_step(Ops(backend), X, Y, W_copy, b_copy, acts, loss, 0.1, 0.2, masks, True)
        out[backend] = (ok, J, W_copy + b_copy)
    assert out["c"][0] and out["numpy"][0]
    assert out["c"][1] == pytest.approx(out["numpy"][1], rel=1e-12)
    for a, e in zip(out["c"][2], out["numpy"][2]):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12)


@pytestmark_c
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("net", [4, -1])
def test_train_step_non_finite_gradient_leaves_parameters(dtype, net):
    dims, acts, loss = NETS[net]
    acts = [ref.parse_activation(a) for a in acts]
    X, Y, Ws, bs = problem(dims, loss, 5, dtype)
    X[0, 0] = np.finfo(dtype).max  # overflows inside the products
    for W in Ws:
        W[:] = np.finfo(dtype).max / 4
    before = [W.copy() for W in Ws] + [b.copy() for b in bs]
    with np.errstate(all="ignore"):
        expected_ok, _ = train_step(Ops("numpy"), X, Y, [W.copy() for W in Ws],
                                                 [b.copy() for b in bs], acts, loss, 0.1)
        ok, _ = train_step(Ops("c"), X, Y, Ws, bs, acts, loss, 0.1)
    assert not expected_ok and not ok
    for a, e in zip(Ws + bs, before):
        np.testing.assert_array_equal(a, e)


@pytestmark_c
@pytest.mark.parametrize("dtype", DTYPES)
def test_network_fit_with_backend_c_matches_numpy(dtype):
    from chainrule.datasets import load_planar_dataset
    X, Y = load_planar_dataset()
    nets = {b: Network([2, 4, 1], hidden="tanh", dtype=dtype, backend=b) for b in ("numpy", "c")}
    for net in nets.values():
        net.fit(X, Y, epochs=300, learning_rate=1.2, progress=False)
    assert nets["c"].backend == "c"
    tol = dict(rtol=1e-3, atol=1e-4) if dtype == "float32" else dict(rtol=1e-8, atol=1e-10)
    for k, v in nets["numpy"].parameters.items():
        np.testing.assert_allclose(nets["c"].parameters[k], v, **tol)


# --------------------------------------------------------------------------- BLAS, threads, policy

@pytestmark_c
@pytest.mark.parametrize("source", ["none", "scipy", "numpy", "mkl"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_blas_source_gives_the_reference(source, dtype):
    try:
        cb.use_blas(source)
    except ImportError as exc:
        pytest.skip(f"BLAS source {source} not available here: {exc}")
    previous = cb.set_blas_threshold(0)
    try:
        assert cb.blas_info()["source"] == source
        A_prev, W, b, dZ, Z_prev = layer(np.random.default_rng(6), 33, 20, 41, dtype)
        for a, e in zip(cb.dense_forward(A_prev, W, b, "relu"), nb.dense_forward(A_prev, W, b, "relu")):
            assert_match(a, e, dtype)
        args = (dZ, A_prev, W, Z_prev, "tanh", "L", 0.2, None, True)
        for a, e in zip(cb.dense_backward(*args), nb.dense_backward(*args)):
            assert_match(a, e, dtype)
    finally:
        cb.set_blas_threshold(previous)
        cb.use_blas(os.environ.get("CHAINRULE_C_BLAS", "auto"))


@pytestmark_c
def test_use_blas_rejects_unknown_source():
    with pytest.raises(InputError, match="unknown BLAS source"):
        cb.use_blas("atlas")


@pytestmark_c
def test_set_num_threads_limits_the_blas_in_use():
    info = cb.blas_info()
    if info["source"] == "none":
        assert cb.set_num_threads(1) is None
        return
    previous = cb.set_num_threads(1)
    try:
        assert cb.get_num_threads() == 1
        assert cb.blas_info()["threadpoolctl"]["num_threads"] == 1
    finally:
        cb.set_num_threads(previous)
    with pytest.raises(InputError):
        cb.set_num_threads(0)


@pytestmark_c
def test_environment_variables_choose_blas_and_threads():
    code = ("from chainrule.backends import c as cb; i = cb.blas_info(); "
            "print(i['source'], i['num_threads'])")
    env = dict(os.environ, CHAINRULE_C_BLAS="none")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["none", "None"], out.stderr
    env = dict(os.environ, CHAINRULE_C_BLAS="numpy", CHAINRULE_C_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if "numpy" not in out.stdout:
        pytest.skip(f"NumPy's OpenBLAS is not usable here: {out.stderr[-300:]}")
    assert out.stdout.split() == ["numpy", "1"], out.stderr


@pytestmark_c
@pytest.mark.parametrize("name, value, says", [
    ("CHAINRULE_C_BLAS", "no_such_blas", "choose auto, mkl, scipy, numpy or none"),
    ("CHAINRULE_C_THREADS", "many", "an integer >= 1"),
    ("CHAINRULE_C_THREADS", "0", "an integer >= 1"),
])
def test_a_bad_environment_variable_is_named_not_blamed_on_the_build(name, value, says):
    code = ("import chainrule\ntry:\n    chainrule.Network([2, 3, 1], backend='c')\n"
            "except chainrule.ChainruleError as e:\n    print(type(e).__name__, e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, **{name: value}))
    assert out.stdout.startswith("InputError"), out.stdout + out.stderr
    assert f"{name}={value!r}" in out.stdout and says in out.stdout
    assert "not built" not in out.stdout


@pytestmark_c
def test_auto_policy_picks_c_only_where_measured_faster():
    # auto_rule picks c where the calibration table (chainrule/backends/_auto_table.py, written by
    # `chainrule bench --calibrate --write`) measured it at least 10 % faster than NumPy and
    # c's predicate allows it; the committed table changes with each calibration, so the
    # picks are checked against a table given here, and the committed one only for sanity.
    cat, planar = [12288, 20, 7, 5, 1], [2, 4, 1]
    f64 = np.dtype("float64")
    table = dict(backends=["numpy", "c"], grid=dict(depth=3), cells=[], networks=[
        dict(layer_dims=cat, m=209, dtype="float64", seconds={"numpy": 1.0, "c": 0.5}),
        dict(layer_dims=planar, m=400, dtype="float64", seconds={"numpy": 1.0, "c": 1.02})])
    assert auto_rule(cat, 209, f64, ["numpy", "c"], table=table) == (
        "c" if auto._prefer_c(cat, 209, f64) else "numpy")
    assert auto_rule(planar, 400, f64, ["numpy", "c"], table=table) == "numpy"
    assert auto_rule(cat, 209, f64, ["numpy"], table=table) == "numpy"
    for dims, m, dt in [(cat, 209, "float64"), (planar, 400, "float64"),
                        ([2048, 2048, 2048, 1], 512, "float32"),
                        ([784, 128, 64, 10], None, "float32")]:
        assert auto_rule(dims, m, np.dtype(dt), ["numpy", "c"]) in (
            ("c", "numpy") if auto._prefer_c(dims, m, np.dtype(dt)) else ("numpy",))


# --------------------------------------------------------------------------- without the module

def test_fallback_when_the_module_is_absent():
    """With chainrule._cdense missing, "c" is not available, auto picks another backend and
    forcing "c" raises an ImportError that says how to get it."""
    code = textwrap.dedent("""
        import sys
        sys.modules["chainrule._cdense"] = None  # import fails as if it was never built
        import chainrule
        from chainrule.backends.registry import choose_backend
        assert "c" not in chainrule.available_backends(), chainrule.available_backends()
        assert choose_backend([12288, 20, 1], 209, "float64", "auto") != "c"
        try:
            chainrule.Network([2, 3, 1], backend="c")
        except ImportError as exc:
            assert "C extension" in str(exc), exc
        else:
            raise AssertionError("backend='c' did not raise")
        net = chainrule.Network([2, 3, 1])
        print("fallback", net.backend)
    """)
    env = dict(os.environ)
    env.pop("CHAINRULE_BACKEND", None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "fallback" in proc.stdout


# --------------------------------------------------------------------------- memory safety

@pytestmark_c
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_kernels_are_memory_safe_under_valgrind():
    """tools/run_memcheck.py: a sweep of shapes (m = 1, n = 1, n_prev = 1 included) under
    memcheck reports no invalid access (about 40 s)."""
    script = os.path.join(TESTS, os.pardir, "tools", "run_memcheck.py")
    proc = subprocess.run([sys.executable, script],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 invalid accesses, 0 inside chainrule._cdense" in proc.stdout
