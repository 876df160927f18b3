"""Whole-fit wall time of Network.fit on the two workloads of issue 12, one backend per line.

    python benchmarks/engine_fit.py [digits|mnist] [reps]

Prints one line per (backend, X layout): the median and min of ``reps`` timed fits after
one warm-up fit (JIT compiled and cached), BLAS limited to one thread (threadpoolctl).
``digits``: 1347 x 64 (scikit-learn's digits, 75 %), [64, 64, 10] relu/softmax, Adam 1e-3,
batch 64, 10 epochs, float64. ``mnist``: 60000 x 784 synthetic, [784, 128, 64, 10],
Adam 1e-3, batch 128, 1 epoch, float32. Layout ``cols``: X given as (n[0], m) C-ordered
(one copy to examples-as-rows per fit); ``rows``: X = X_rows.T (as scikit-learn holds data).
Run it from a checkout with PYTHONPATH pointing at another version to compare versions.
"""

import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

import chainrule
from chainrule import Network


def workload(name):
    rng = np.random.default_rng(0)
    if name == "digits":
        from sklearn.datasets import load_digits

        data = load_digits()
        X = (data.data[:1347] / 16.0).T.copy()
        Y = np.eye(10)[:, data.target[:1347]]
        return X, Y, [64, 64, 10], "float64", dict(mini_batch_size=64, epochs=10)
    m = 60000
    X = rng.random((784, m), dtype=np.float32)
    Y = np.eye(10, dtype=np.float32)[:, rng.integers(0, 10, m)]
    return X, Y, [784, 128, 64, 10], "float32", dict(mini_batch_size=128, epochs=1)


def main():
    which = sys.argv[1] if len(sys.argv) > 1 else "digits"
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    backends = sys.argv[3].split(",") if len(sys.argv) > 3 else ["numpy", "numba", "c"]
    X, Y, dims, dtype, kw = workload(which)
    X_rows = np.ascontiguousarray(X.T)
    layouts = {"cols": X, "rows": X_rows.T}
    # Import every backend (and the BLAS it loads: numba's is SciPy's) before limiting the
    # BLAS thread pools: threadpoolctl limits only the libraries already loaded.
    available = chainrule.available_backends()
    with threadpool_limits(1):
        cases = [(b, lay) for b in backends for lay in layouts if b in available]
        times = {case: [] for case in cases}
        for rep in range(reps + 1):
            for b, lay in cases:
                net = Network(dims, hidden="relu", output="softmax", dtype=dtype, seed=0,
                              backend=b)
                start = time.perf_counter()
                net.fit(layouts[lay], Y, learning_rate=1e-3, optimizer="adam", progress=False,
                        **kw)
                if rep:  # the first round warms up (JIT)
                    times[(b, lay)].append(time.perf_counter() - start)
    where = chainrule.__file__.rsplit("/python/", 1)[0]
    for (b, lay), t in times.items():
        print(f"{which:6s} {b:5s} X {lay}: median {np.median(t):.3f} s  min {min(t):.3f} s"
              f"  (n={len(t)}, {where})")


if __name__ == "__main__":
    main()
