"""Streaming fits (issue 26): one epoch over an ``m x 20`` float32 memmap, read in chunks.

Compared, all on one thread (BLAS pools limited), the same chunks, 200-example
mini-batches, Adam, one hidden layer of 32 ReLU units, a sigmoid output:

- ``stream``: ``Network.fit(Stream(X.T, Y, chunk_size=c, shuffle_buffer=c))`` (one engine
  run per block);
- ``in_memory``: ``Network.fit(X.T, Y)`` on the same memmap (the array path);
- ``mlp_partial_fit``: scikit-learn's ``MLPClassifier.partial_fit`` once per chunk;
- ``incremental_*``: dask-ml's ``Incremental`` around ``NetworkClassifier`` and
  ``MLPClassifier`` on a dask array of ``m_inc`` rows in 10 blocks.

As a script (``python -m benchmarks.bench_streaming [m]``) it prints the times and the
ratios; asv runs the ``time_`` methods at ``m = 200_000`` (``CHAINRULE_BENCH_FULL=1``:
2,000,000).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np

N_FEATURES, HIDDEN, BATCH = 20, 32, 200
FULL = os.environ.get("CHAINRULE_BENCH_FULL", "").strip() not in ("", "0")


def make_memmap(m, directory=None, chunk=250_000):
    """An ``m x 20`` float32 memmap (examples as rows) and its 0/1 labels ``(1, m)``."""
    path = os.path.join(directory or tempfile.gettempdir(), f"chainrule_stream_{m}.npy")
    w = np.random.default_rng(1).standard_normal(N_FEATURES).astype(np.float32)
    if not os.path.exists(path):
        X = np.lib.format.open_memmap(path + ".tmp", mode="w+", dtype=np.float32,
                                      shape=(m, N_FEATURES))
        for a in range(0, m, chunk):
            X[a:a + chunk] = np.random.default_rng(a).standard_normal(
                (min(chunk, m - a), N_FEATURES))
        X.flush()
        del X
        os.replace(path + ".tmp", path)
    X = np.load(path, mmap_mode="r")
    y = np.empty(m, np.float32)
    for a in range(0, m, chunk):
        y[a:a + chunk] = X[a:a + chunk] @ w > 0
    return X, y.reshape(1, m)


def _network():
    from chainrule import Network
    return Network([N_FEATURES, HIDDEN, 1], hidden="relu", output="sigmoid", seed=0,
                   dtype="float32")


FIT = dict(epochs=1, mini_batch_size=BATCH, optimizer="adam", learning_rate=0.001,
           progress=False)


def run_stream(X, Y, chunk):
    from chainrule.training.stream import Stream
    return _network().fit(Stream(X.T, Y, chunk_size=chunk, shuffle_buffer=chunk), None, **FIT)


def run_in_memory(X, Y):
    return _network().fit(X.T, Y, **FIT)


def run_mlp_partial_fit(X, Y, chunk):
    from sklearn.neural_network import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), batch_size=BATCH, learning_rate_init=0.001,
                        random_state=0)
    y = Y[0].astype(int)
    for a in range(0, X.shape[0], chunk):
        clf.partial_fit(np.asarray(X[a:a + chunk]), y[a:a + chunk], classes=[0, 1])
    return clf


def run_incremental(estimator, X, y, blocks=10):
    import dask.array as da
    from dask_ml.wrappers import Incremental
    Xd = da.from_array(np.asarray(X), chunks=(X.shape[0] // blocks, N_FEATURES))
    yd = da.from_array(y, chunks=X.shape[0] // blocks)
    return Incremental(estimator).fit(Xd, yd, classes=[0, 1])


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def compare(m, chunk=100_000, m_inc=200_000):
    """Times (s) and accuracies of every contender; one run each after a warm-up."""
    from threadpoolctl import threadpool_info, threadpool_limits
    from sklearn.neural_network import MLPClassifier

    from chainrule.sklearn import NetworkClassifier

    X, Y = make_memmap(m)
    with threadpool_limits(1):
        run_stream(X[:20_000], Y[:, :20_000], 5_000)  # compile/load once
        run_in_memory(X[:20_000], Y[:, :20_000])
        t = {}
        t["stream"], net_s = _timed(run_stream, X, Y, chunk)
        t["in_memory"], net_m = _timed(run_in_memory, X, Y)
        t["mlp_partial_fit"], mlp = _timed(run_mlp_partial_fit, X, Y, chunk)
        Xi, yi = np.asarray(X[:m_inc]), Y[0, :m_inc].astype(int)
        kw = dict(hidden_layer_sizes=(HIDDEN,), random_state=0)
        # warm: the first estimator fit of a process pays one-time costs (about 1.5 s here,
        # the engine's first calls at these shapes; MLP's far less): measured apart
        t["incremental_network_first"], _ = _timed(
            run_incremental, NetworkClassifier(learning_rate=0.001, dtype="float32", **kw),
            Xi[:20_000], yi[:20_000])
        run_incremental(MLPClassifier(learning_rate_init=0.001, **kw), Xi[:20_000], yi[:20_000])
        t["incremental_network"], inc_n = _timed(
            run_incremental, NetworkClassifier(learning_rate=0.001, dtype="float32", **kw), Xi, yi)
        t["incremental_mlp"], inc_m = _timed(
            run_incremental, MLPClassifier(learning_rate_init=0.001, **kw), Xi, yi)
    test = slice(0, 100_000)
    Xt, Yt = np.asarray(X[test]), Y[:, test]
    acc = {"stream": net_s.score(Xt.T, Yt), "in_memory": net_m.score(Xt.T, Yt),
           "mlp_partial_fit": mlp.score(Xt, Yt[0].astype(int)),
           "incremental_network": inc_n.score(Xt, Yt[0].astype(int)),
           "incremental_mlp": inc_m.score(Xt, Yt[0].astype(int))}
    blas = sorted({(i["internal_api"], i.get("version")) for i in threadpool_info()})
    return t, acc, blas


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    m = int(argv[0]) if argv else 2_000_000
    import platform
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor()) \
        if os.path.exists("/proc/cpuinfo") else platform.processor()
    t, acc, blas = compare(m)
    print(f"CPU: {cpu}; BLAS: {blas}; one thread; m = {m} x {N_FEATURES} float32 memmap, "
          f"chunks of 100000, batches of {BATCH}, 1 epoch")
    for k in t:
        print(f"  {k:26s} {t[k]:8.3f} s" + (f"   accuracy {acc[k]:.4f}" if k in acc else ""))
    print(f"  mlp_partial_fit / stream       = {t['mlp_partial_fit'] / t['stream']:.2f}x")
    print(f"  stream / in_memory             = {t['stream'] / t['in_memory']:.2f}x")
    print(f"  incremental mlp / network      = "
          f"{t['incremental_mlp'] / t['incremental_network']:.2f}x")


def _train_shard(params, X, Y, lr):
    """One epoch on one shard from ``params``; returns the new parameters (on a worker)."""
    net = _network()
    net.parameters = params
    net.fit(X.T, Y, **dict(FIT, learning_rate=lr))
    return net.parameters, X.shape[0]


def model_averaging(m=400_000, workers=2, rounds=3, lr=0.001):
    """Data parallel by model averaging on a LocalCluster: each round, every worker trains
    one epoch on its shard from the current parameters; the parameters are then averaged,
    weighted by shard size. Against one process streaming the same rounds (epochs) over
    all the data. Returns ``{name: (seconds, accuracy)}``."""
    import distributed
    from threadpoolctl import threadpool_limits

    X, Y = make_memmap(m)
    Xa, Ya = np.asarray(X), Y
    shards = np.array_split(np.arange(m), workers)
    test = (np.asarray(X[:100_000]).T, Y[:, :100_000])
    out = {}
    with threadpool_limits(1):
        run_stream(X[:20_000], Y[:, :20_000], 5_000)
        start = time.perf_counter()
        net = _network().fit(Xa.T, Ya, **dict(FIT, epochs=rounds, learning_rate=lr))
        out["one process, in memory"] = (time.perf_counter() - start, net.score(*test))
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                      processes=False, dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            data = [client.scatter((Xa[s], Ya[:, s]), broadcast=False) for s in shards]
            params = _network().parameters
            start = time.perf_counter()
            for _ in range(rounds):
                futures = [client.submit(lambda p, d: _train_shard(p, d[0], d[1], lr),
                                         params, d, pure=False) for d in data]
                results = client.gather(futures)
                total = sum(n for _, n in results)
                params = {k: sum(p[k] * (n / total) for p, n in results) for k in params}
            seconds = time.perf_counter() - start
        net = _network()
        net.parameters = params
        out[f"model averaging, {workers} workers"] = (seconds, net.score(*test))
    return out


class _StreamData:
    """The memmapped data of the streaming benchmarks (``m`` rows: 200,000; 2,000,000 with
    CHAINRULE_BENCH_FULL), one BLAS thread."""

    timeout = 900

    def setup(self):
        from threadpoolctl import threadpool_limits
        self.m = 2_000_000 if FULL else 200_000
        self.X, self.Y = make_memmap(self.m)
        self._limit = threadpool_limits(1)
        run_stream(self.X[:20_000], self.Y[:, :20_000], 5_000)

    def teardown(self):
        if hasattr(self, "_limit"):  # (a setup that skipped set none)
            self._limit.restore_original_limits()


class Streaming(_StreamData):
    """asv: chainrule's streaming fit and its in-memory fit of the same data."""

    def time_stream(self):
        run_stream(self.X, self.Y, 100_000)

    def time_in_memory(self):
        run_in_memory(self.X, self.Y)


class StreamingMLP(_StreamData):
    """asv: scikit-learn's MLPClassifier.partial_fit over the same chunks (n/a without it)."""

    def setup(self):
        try:
            import sklearn  # noqa: F401
        except ImportError:
            raise NotImplementedError("scikit-learn is not installed")  # asv: n/a
        super().setup()

    def time_mlp_partial_fit(self):
        run_mlp_partial_fit(self.X, self.Y, 100_000)


if __name__ == "__main__":
    if sys.argv[1:2] == ["averaging"]:
        for name, (sec, acc) in model_averaging().items():
            print(f"  {name:32s} {sec:7.3f} s   accuracy {acc:.4f}")
    else:
        main()
