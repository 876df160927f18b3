"""The public calls' fast path (issue 12 §4): ``step``, ``forward`` and ``predict`` accept
well-formed arrays with attribute checks and one finiteness pass, and everything else still
reaches the full validator, with its messages; a refused step still leaves the model as it
was, whatever the backend reports."""

import re

import numpy as np
import pytest

from chainrule import Network
from chainrule import _validate as check
from chainrule.errors import InputError, NonFiniteError, ShapeError
from chainrule.backends.engine import ChunkResult


def planar_like(m=40, dtype=np.float64):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((2, m)).astype(dtype),
            (rng.random((1, m)) > 0.5).astype(dtype))


def raised(call):
    with pytest.raises(Exception) as info:
        call()
    return type(info.value), str(info.value)


def with_entry(a, index, value):
    a = a.copy()
    a[index] = value
    return a


# (name, X or None, Y or None, lr, error, pattern): each is a C-contiguous array of the
# network's dtype and shape (what the fast path looks at) or one attribute away from it.
X0, Y0 = planar_like()
BAD = [
    ("X nan", with_entry(X0, (1, 3), np.nan), None, 0.1, InputError,
     r"X contains NaN or inf: X\[1, 3\] = nan; expected finite values"),
    ("X inf", with_entry(X0, (0, 0), np.inf), None, 0.1, InputError, r"X\[0, 0\] = inf"),
    ("X -inf", with_entry(X0, (0, 39), -np.inf), None, 0.1, InputError, r"X\[0, 39\] = -inf"),
    ("X rows", np.ascontiguousarray(X0.T), None, 0.1, ShapeError, "examples are rows: pass X.T"),
    ("X 3 features", np.zeros((3, 40)), None, 0.1, ShapeError, r"expected \(2, m\)"),
    ("X m=0", np.zeros((2, 0)), None, 0.1, ShapeError, "m = 0 examples"),
    ("X 1-D", np.zeros(2), None, 0.1, ShapeError, r"pass X.reshape\(2, 1\)"),
    ("X object", X0.astype(object), None, 0.1, InputError, "has dtype object"),
    ("Y 0.5", None, with_entry(Y0, (0, 7), 0.5), 0.1, InputError,
     r"Y has labels outside \{0, 1\} \(e.g. 0.5\)"),
    ("Y 2", None, with_entry(Y0, (0, 0), 2.0), 0.1, InputError, r"outside \{0, 1\} \(e.g. 2.0\)"),
    ("Y nan", None, with_entry(Y0, (0, 5), np.nan), 0.1, InputError,
     r"Y contains NaN or inf: Y\[0, 5\] = nan"),
    ("Y inf", None, with_entry(Y0, (0, 5), np.inf), 0.1, InputError, r"Y\[0, 5\] = inf"),
    ("Y transposed", None, np.ascontiguousarray(Y0.T), 0.1, ShapeError, "looks transposed"),
    ("Y other m", None, Y0[:, :39].copy(), 0.1, ShapeError, "there are m = 40 examples"),
    ("lr nan", None, None, float("nan"), InputError, "learning_rate must be a finite number"),
    ("lr inf", None, None, float("inf"), InputError, "learning_rate must be a finite number"),
    ("lr 0", None, None, 0.0, InputError, "learning_rate must be a finite number > 0"),
    ("lr -1", None, None, -1.0, InputError, "learning_rate must be a finite number > 0"),
    ("lr True", None, None, True, InputError, "learning_rate must be a finite number > 0"),
]


@pytest.mark.parametrize("name, X, Y, lr, error, pattern", BAD, ids=[b[0] for b in BAD])
def test_step_fast_path_refuses_what_the_validator_refuses(backend, name, X, Y, lr, error,
                                                           pattern):
    net = Network([2, 4, 1], hidden="tanh", output="sigmoid", backend=backend)
    before = {k: v.copy() for k, v in net.parameters.items()}
    X = X0 if X is None else X
    Y = Y0 if Y is None else Y
    kind, message = raised(lambda: net.step(X, Y, lr))
    assert kind is error
    assert re.search(pattern, message), message
    # the same message as the full validator's for the same values in a list (no fast path)
    if X.dtype != object:
        assert raised(lambda: net.step(X.tolist(), Y.tolist(), lr)) == (kind, message)
    assert all(np.array_equal(v, before[k]) for k, v in net.parameters.items())
    if Y is Y0 and lr == 0.1:  # a bad X: forward and predict say the same
        assert raised(lambda: net.forward(X)) == (kind, message)
        assert raised(lambda: net.predict(X)) == (kind, message)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fast_path_returns_the_given_arrays(dtype):
    net = Network([2, 4, 1], hidden="tanh", output="sigmoid", backend="numpy", dtype=dtype)
    X, Y = planar_like(dtype=dtype)
    Xv, Yv = net.validate_data(X, Y)
    assert Xv is X and Yv is Y  # no copy, as the full validator (which returns them too)
    other = np.float64 if dtype == "float32" else np.float32
    Xc, Yc = net.validate_data(X.astype(other), Y.astype(other))  # converted, not refused
    assert Xc.dtype == net.dtype and Yc.dtype == net.dtype and np.array_equal(Xc, X.astype(other))
    F = np.asfortranarray(X)
    assert check.X(F, 2, net.dtype, order="K") is F
    assert check.X(F, 2, net.dtype).flags.c_contiguous


def test_all_finite_and_labels_01_are_exact():
    a = np.zeros((3, 5))
    assert check.all_finite(a) and check.all_finite(np.zeros((0, 2)))
    big = np.full((2, 3), np.finfo(np.float64).max)  # finite, though its sum is not
    assert check.all_finite(big)
    for value in (np.nan, np.inf, -np.inf):
        assert not check.all_finite(with_entry(a, (2, 4), value))
    Y = np.array([[0.0, 1.0, -0.0, 1.0]])
    assert check._labels_01(Y)
    for value in (0.5, 2.0, -1.0, np.nan, np.inf, 1 + 2 ** -52, 1 - 2 ** -53):
        assert not check._labels_01(with_entry(Y, (0, 1), value))


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("order", ["C", "F"])
def test_all_finite_of_a_large_array_finds_every_place(threads, order, monkeypatch):
    """Large arrays are checked a chunk at a time and, past about 4M entries, in parts on
    the BLAS's threads: a NaN or inf anywhere is found (the first and last entries, the
    edges of chunks and of the threads' parts), in either layout and in a strided view."""
    from chainrule import _threads

    monkeypatch.setattr(_threads, "blas_threads", lambda: threads)
    chunk, parallel = check._FINITE_CHUNK, check._FINITE_PARALLEL
    a = np.zeros((4, parallel // 4 + 5), dtype=np.float32, order=order)
    flat = a.ravel(order="K")
    assert np.shares_memory(flat, a) and check.all_finite(a)
    n = flat.size
    places = {0, n - 1, chunk - 1, chunk, n // 2, n // threads, n // threads - 1,
              2 * n // 3, 2 * n // 3 + 1}
    for q in sorted(q for q in places if q < n):
        for value in (np.nan, np.inf, -np.inf):
            flat[q] = value
            assert not check.all_finite(a), (q, value)
            strided = a[:, ::2]  # not contiguous: the plain check; NumPy's answer
            assert check.all_finite(strided) == bool(np.isfinite(strided).all())
            flat[q] = 0
    assert check.all_finite(a) and check.all_finite(a[:, ::2])
    small = np.zeros(chunk + 3)
    small[-1] = np.nan
    assert not check.all_finite(small)


def test_all_finite_inside_the_pool_does_not_split_again(monkeypatch):
    """A check running on one of the pool's threads stays on it: parts queued behind busy
    workers of the same pool would never run (a check from predict's blocks, say)."""
    from chainrule import _threads

    monkeypatch.setattr(_threads, "blas_threads", lambda: 2)
    a = np.zeros(check._FINITE_PARALLEL + 7)
    a[-1] = np.inf
    futures = [_threads.pool(2).submit(check.all_finite, a) for _ in range(2)]
    assert [f.result(timeout=60) for f in futures] == [False, False]
    assert not _threads.in_pool() and check.all_finite(a[:-1])


def test_parameters_are_aligned_views_of_one_buffer(backend, dtype):
    net = Network([2, 5, 3, 1], backend=backend, dtype=dtype)
    p = net.parameters
    flat = p._flat
    for k, v in p.items():
        assert np.shares_memory(v, flat), k
        assert v.dtype == net.dtype and v.flags.c_contiguous and v.flags.writeable
        assert v.ctypes.data % 64 == 0, k
    Ws, bs = net.layer_arrays()
    assert all(W is p[f"W{l}"] for l, W in enumerate(Ws, 1))
    assert all(b is p[f"b{l}"] for l, b in enumerate(bs, 1))
    old = p["b1"]
    p["W1"] = np.ones((5, 2))  # stored anew: one buffer still holds them all
    assert np.array_equal(p["W1"], np.ones((5, 2))) and np.array_equal(p["b1"], old)
    assert all(np.shares_memory(v, p._flat) for v in p.values())
    assert net.layer_arrays()[0][0] is p["W1"]
    X, Y = planar_like()
    net.step(X, Y, 0.1)  # trains the arrays the dict holds
    assert not np.array_equal(p["W1"], np.ones((5, 2)))


def test_a_step_the_backend_reports_applied_but_not_finite_is_rolled_back(monkeypatch):
    """The model's guarantee does not rest on the backend's check alone."""
    net = Network([2, 4, 1], hidden="tanh", output="sigmoid", backend="numpy")
    before = {k: v.copy() for k, v in net.parameters.items()}
    X, Y = planar_like()

    def lying_engine(plan, XT, YT, w, *, Ws, bs, **kwargs):  # says "applied", wrote inf
        bs[1][...] = np.inf
        Ws[0][...] = 0.0
        return ChunkResult(1, 0, 1, 0, "", 0, np.array([0.5]), np.array([1.0]),
                           np.zeros(1, np.int64))

    monkeypatch.setattr(net._ops, "fit_epochs", lying_engine, raising=False)
    with pytest.raises(NonFiniteError):
        net.step(X, Y, 0.1)
    assert all(np.array_equal(v, before[k]) for k, v in net.parameters.items())


def test_forward_fast_path_still_reports_an_overflow(backend):
    net = Network([2, 4, 1], hidden="relu", output="identity", loss="mean_squared_error", backend=backend)
    net.parameters["W1"] = np.full((4, 2), 1e300)
    net.parameters["W2"] = np.full((1, 4), 1e300)
    X, _ = planar_like()
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(NonFiniteError, match=r"forward: A\[2\] has NaN or inf"):
            net.forward(np.abs(X) + 1)
        with pytest.raises(NonFiniteError, match=r"forward: A\[2\] has NaN or inf"):
            net.predict(np.abs(X) + 1)
