"""Network(n_threads=...): the BLAS pools are limited during a call and restored after it."""

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from chainrule import Network
from chainrule.errors import InputError

from conftest import assert_close


def _blas_threads():
    return sorted({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})


def _data(rng, n_x=48, m=300):
    X = rng.standard_normal((n_x, m))
    Y = (X[:3].sum(axis=0, keepdims=True) > 0).astype(float)
    return X, Y


def _train_and_evaluate(backend, n_threads, X, Y):
    """Train a seeded model with ``n_threads``, then every public computation on it."""
    net = Network([48, 64, 32, 1], backend=backend, seed=3, n_threads=n_threads)
    net.fit(X, Y, epochs=4, mini_batch_size=64, optimizer="adam", learning_rate=0.01,
            progress=False)
    net.fit(X, Y, epochs=30, cost_every=10, progress=False, continue_training=True)
    AL, caches = net.forward(X)
    out = {f"param {k}": v for k, v in net.parameters.items()}
    out.update({f"grad {k}": v for k, v in net.backward(AL, Y, caches).items()})
    out["proba"] = net.predict_proba(X)
    out["cost"] = np.asarray(net.history_["cost"])
    out["step"] = np.asarray(net.step(X, Y, 0.1))
    out["score"] = np.asarray(net.score(X, Y))
    return net, out


def test_n_threads_results_match_unlimited_within_tolerance(backend, rng):
    """A BLAS splits a GEMM differently with more threads, and the sums round differently
    (1 ulp seen on an AVX2 EPYC): other thread counts agree within the dtype tolerance."""
    X, Y = _data(rng)
    limited_net, limited = _train_and_evaluate(backend, 1, X, Y)
    free_net, free = _train_and_evaluate(backend, None, X, Y)
    assert limited_net.history_["epoch"] == free_net.history_["epoch"]
    assert limited.keys() == free.keys()
    for key, expected in free.items():
        assert_close(limited[key], expected, name=key)


@pytest.mark.parametrize("n_threads", [1, None])
def test_n_threads_same_count_is_bit_identical(backend, rng, n_threads):
    """The same thread count on the same machine gives the same bits, run after run."""
    X, Y = _data(rng)
    first_net, first = _train_and_evaluate(backend, n_threads, X, Y)
    second_net, second = _train_and_evaluate(backend, n_threads, X, Y)
    assert first_net.history_ == second_net.history_
    for key, expected in first.items():
        np.testing.assert_array_equal(second[key], expected, err_msg=key)


def test_n_threads_limits_blas_during_fit_and_restores(backend, rng):
    X, Y = _data(rng, m=40)
    net = Network([48, 8, 1], backend=backend, n_threads=1)
    seen = []

    def record(net_, epoch, logs):
        seen.append(_blas_threads())
        if backend == "c":  # the BLAS the C kernels call, or None when they call none
            from chainrule.backends import c as _cbackend
            seen.append([_cbackend.get_num_threads() or 1])

    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        net.fit(X, Y, epochs=3, mini_batch_size=16, progress=False, callbacks=[record])
        after = _blas_threads()
    assert before == [2]
    assert seen and all(s == [1] for s in seen)
    assert after == before


def test_n_threads_limits_every_public_call(backend, rng, monkeypatch):
    X, Y = _data(rng, m=20)
    net = Network([48, 5, 1], backend=backend, n_threads=1)
    seen = []
    from chainrule import _validate

    check_X = _validate.X  # every public call checks X through it, inside its thread limit
    monkeypatch.setattr(_validate, "X", lambda *a, **k: (seen.append(_blas_threads()),
                                                         check_X(*a, **k))[1])
    with threadpool_limits(limits=2, user_api="blas"):
        AL, caches = net.forward(X)
        net.step(X, Y, 0.1)
        net.predict(X)
        net.score(X, Y)
        assert _blas_threads() == [2]
    assert len(seen) == 5 and all(s == [1] for s in seen)  # score validates, then predicts


def test_n_threads_none_leaves_pools_alone(rng):
    X, Y = _data(rng, m=20)
    net = Network([48, 5, 1], backend="numpy")
    seen = []
    with threadpool_limits(limits=2, user_api="blas"):
        net.fit(X, Y, epochs=2, cost_every=1, progress=False,
                callbacks=[lambda *a: seen.append(_blas_threads())])
    assert seen == [[2], [2], [2]]


def test_n_threads_in_config_and_file(tmp_path):
    net = Network([3, 2, 1], n_threads=2, backend="numpy")
    assert net.get_config()["n_threads"] == 2
    assert Network.from_config(net.get_config()).n_threads == 2
    net.save(tmp_path / "m.npz")
    assert Network.load(tmp_path / "m.npz").n_threads == 2
    assert Network([3, 1], backend="numpy").get_config()["n_threads"] is None


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_n_threads_rejects_non_positive_integers(bad):
    with pytest.raises(InputError, match="n_threads"):
        Network([3, 1], n_threads=bad)


def test_n_threads_follows_a_c_backend_blas_switch(rng):
    _cbackend = pytest.importorskip("chainrule.backends.c")
    X, Y = _data(rng, m=40)
    net = Network([48, 8, 1], backend="c", n_threads=1)
    net.predict(X)  # the limit's library scan happens here, before the switch
    previous = _cbackend.blas_info()["source"]
    sources = [s for s in ("scipy", "numpy", "mkl") if s != previous]
    seen = []
    try:
        for source in sources:
            try:
                _cbackend.use_blas(source)
            except ImportError:
                continue
            with threadpool_limits(limits=2, user_api="blas"):
                net.fit(X, Y, epochs=1, mini_batch_size=16, progress=False,
                        callbacks=[lambda *a: seen.append(_cbackend.get_num_threads())])
                assert _cbackend.get_num_threads() == 2
            break
    finally:
        _cbackend.use_blas(previous)
    if not seen:
        pytest.skip("no other BLAS source loads here")
    assert seen == [1]


def test_run_parts_works_on_the_caller_beside_the_pool():
    """run_parts: part 0 on the caller (marked as a pool thread meanwhile), the others on
    the pool; results in order; a failing part raises after every part has finished."""
    import threading
    import time as _time

    from chainrule import _threads

    caller = threading.current_thread().name
    seen = {}

    def part(p):
        seen[p] = (threading.current_thread().name, _threads.in_pool())
        return p * p

    for n in (1, 2, 3):
        seen.clear()
        assert _threads.run_parts(part, n) == [p * p for p in range(n)]
        assert seen[0] == (caller, n > 1)
        assert all(name.startswith("chainrule") and inside for p, (name, inside) in seen.items()
                   if p)
        names = {name for name, _ in seen.values()}
        # (n = 3: the pool's two threads may take its two parts, or one of them both)
        assert len(names) == n if n <= 2 else 2 <= len(names) <= 3
        assert not _threads.in_pool()  # restored
    finished = []

    def failing(p):
        if p == 0:
            raise ValueError("part 0")
        _time.sleep(0.05)
        finished.append(p)

    with pytest.raises(ValueError, match="part 0"):
        _threads.run_parts(failing, 3)
    assert sorted(finished) == [1, 2] and not _threads.in_pool()
