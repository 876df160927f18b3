"""Threads: two models training at once, and one model predicting from several threads, give
the results each gives alone (no kernel keeps global mutable state)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from chainrule import Network
from chainrule.backends.registry import BACKENDS, available_backends

BACKEND_PARAMS = [pytest.param(b, marks=pytest.mark.skipif(
    b not in available_backends(), reason=f"backend {b!r} not available")) for b in BACKENDS]
DTYPES = ["float64", "float32"]
# Same backend, same inputs: equal up to what a BLAS may reorder; a race would be far larger.
TOL = {"float64": 1e-12, "float32": 1e-5}


def run_threads(targets):
    """Run each callable in its own thread, started together; re-raise the first error."""
    barrier = threading.Barrier(len(targets))
    results, errors = [None] * len(targets), []

    def wrap(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except BaseException as exc:  # noqa: BLE001  (reported in the main thread)
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(i, fn)) for i, fn in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def problem(seed, dims, m):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((dims[0], m))
    Y = (X[:1] + 0.5 * X[1:2] > 0).astype(float)
    return X, Y


def train(seed, backend, dtype, dims=(16, 48, 24, 1), m=400, epochs=60):
    X, Y = problem(seed, dims, m)
    net = Network(list(dims), hidden="tanh", seed=seed, backend=backend, dtype=dtype)
    net.fit(X, Y, epochs=epochs, learning_rate=0.3, cost_every=10, progress=False)
    return net


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_two_models_training_in_two_threads_match_alone(backend, dtype):
    alone = [train(seed, backend, dtype) for seed in (1, 2)]
    for _ in range(3):
        together = run_threads([lambda s=seed: train(s, backend, dtype) for seed in (1, 2)])
        for a, t in zip(alone, together):
            for k in a.parameters:
                np.testing.assert_allclose(t.parameters[k], a.parameters[k], rtol=TOL[dtype],
                                           atol=TOL[dtype], err_msg=k)
            np.testing.assert_allclose(t.history_["cost"], a.history_["cost"], rtol=TOL[dtype])
    # The two models differ, so a mix-up between threads would show.
    assert not np.allclose(alone[0].parameters["W1"], alone[1].parameters["W1"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_one_model_predicting_from_many_threads_matches_alone(backend, dtype):
    net = train(3, backend, dtype, epochs=5)
    inputs = [problem(100 + i, net.layer_dims, m)[0] for i, m in enumerate([1, 7, 64, 300] * 2)]
    expected = [(net.predict_proba(X), net.predict(X)) for X in inputs]
    before = {k: v.copy() for k, v in net.parameters.items()}

    def worker(i):
        out = []
        for r in range(20):
            j = (i + r) % len(inputs)
            out.append((j, net.predict_proba(inputs[j]), net.predict(inputs[j])))
        return out

    for results in run_threads([lambda i=i: worker(i) for i in range(8)]):
        for j, proba, pred in results:
            np.testing.assert_allclose(proba, expected[j][0], rtol=TOL[dtype], atol=TOL[dtype])
            np.testing.assert_array_equal(pred, expected[j][1])
    for k in before:
        np.testing.assert_array_equal(net.parameters[k], before[k])


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_training_while_another_model_predicts(backend):
    """A model training in one thread does not disturb another model's predictions."""
    server = train(4, backend, "float64", epochs=5)
    X = problem(7, server.layer_dims, 200)[0]
    expected = server.predict_proba(X)

    def predict_many():
        return [server.predict_proba(X) for _ in range(30)]

    trained, predictions = run_threads([lambda: train(5, backend, "float64"), predict_many])
    alone = train(5, backend, "float64")
    for k in alone.parameters:
        np.testing.assert_allclose(trained.parameters[k], alone.parameters[k], rtol=1e-12,
                                   atol=1e-12)
    for p in predictions:
        np.testing.assert_allclose(p, expected, rtol=1e-12, atol=1e-12)


def test_threads_saving_and_loading_one_path(tmp_path):
    """Several threads save different models to one path while others load it: every load
    is exactly one of the saved models (the last rename wins; nothing is ever mixed)."""
    path = tmp_path / "shared.npz"
    nets = [Network([30, 40, 1], seed=s, backend="numpy") for s in range(4)]
    nets[0].save(path)
    W1s = [n.parameters["W1"] for n in nets]

    def saver(net):
        for _ in range(10):
            net.save(path)

    def loader():
        found = []
        for _ in range(20):
            loaded = Network.load(path)
            matches = [i for i, W in enumerate(W1s) if np.array_equal(W, loaded.parameters["W1"])]
            assert len(matches) == 1
            for k, v in nets[matches[0]].parameters.items():
                np.testing.assert_array_equal(loaded.parameters[k], v)
            found.append(matches[0])
        return found

    run_threads([lambda n=n: saver(n) for n in nets] + [loader, loader])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.npz"]
