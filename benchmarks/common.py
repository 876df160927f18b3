"""Shared by the asv suites: backends, workloads and seeded problems.

The suites import only what every commit of chainrule has (the registry, ``reference``,
``Network``), so history mode can run them over older commits. An unavailable backend
raises ``NotImplementedError`` in ``setup``, which asv shows as n/a.

``CHAINRULE_BENCH_FULL=1`` runs every workload; by default only the small ones run.
"""

import os

import numpy as np

try:
    from chainrule.backends import registry as _dispatch
except ImportError:  # commits before the backends/ package
    from chainrule import _dispatch
from chainrule import reference as ref

FULL = os.environ.get("CHAINRULE_BENCH_FULL", "").strip() not in ("", "0")

BACKENDS = list(_dispatch.BACKENDS)
DTYPES = ["float64", "float32"]

# name: (layer_dims, m, natural dtype, hidden, output). Keep in step with
# chainrule.bench.WORKLOADS (tests/test_bench.py checks that they agree).
WORKLOADS = {
    "planar": ((2, 4, 1), 400, "float64", "tanh", "sigmoid"),
    "cat": ((12288, 20, 7, 5, 1), 209, "float64", "relu", "sigmoid"),
    "mnist-like": ((784, 128, 64, 10), 256, "float32", "relu", "softmax"),
    "wide": ((2048, 2048, 2048, 1), 512, "float32", "relu", "sigmoid"),
}
WORKLOAD_NAMES = list(WORKLOADS) if FULL else ["planar", "mnist-like"]

PARAMS = [BACKENDS, WORKLOAD_NAMES, DTYPES]
PARAM_NAMES = ["backend", "workload", "dtype"]

LEARNING_RATE = 0.01
LOSS = {"sigmoid": "binary_crossentropy", "softmax": "categorical_crossentropy"}


# Threads for BLAS and numba: 1 unless CHAINRULE_BENCH_THREADS says otherwise, so that
# numbers from a shared 2-core machine repeat ("0" leaves the libraries' defaults).
THREADS = int(os.environ.get("CHAINRULE_BENCH_THREADS", "1") or 0)


def limit_threads():
    """Limit every BLAS/OpenMP pool loaded so far (and numba's) to ``THREADS``."""
    if THREADS <= 0:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=THREADS)
    import sys

    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(THREADS, numba.config.NUMBA_NUM_THREADS))


def ops(backend):
    """The backend's ops, or ``NotImplementedError`` (asv: n/a) when it does not import here."""
    try:  # only this backend is imported: another one's import would count in peakmem_
        ops = _dispatch.Ops(backend)
    except ImportError as exc:
        raise NotImplementedError(f"backend {backend!r} is not available: {exc}") from None
    limit_threads()  # after the import: a backend may bring its own BLAS
    return ops


class Problem:
    """Seeded data, labels and parameters of a workload in one dtype (course layout)."""

    def __init__(self, workload, dtype, seed=0, m=None):
        layer_dims, m_workload, _, hidden, output = WORKLOADS[workload]
        m = m_workload if m is None else m
        dtype = np.dtype(dtype)
        rng = np.random.default_rng(seed)
        self.layer_dims, self.m, self.hidden, self.output = list(layer_dims), m, hidden, output
        self.X = rng.random((layer_dims[0], m)).astype(dtype)
        nL = layer_dims[-1]
        if output == "softmax":
            self.Y = np.zeros((nL, m), dtype=dtype)
            self.Y[rng.integers(0, nL, m), np.arange(m)] = 1
        else:
            self.Y = (rng.random((nL, m)) < 0.5).astype(dtype)
        params = ref.initialize_parameters(self.layer_dims, "he" if hidden == "relu" else "xavier",
                                           rng=rng, dtype=dtype)
        L = len(layer_dims) - 1
        self.L = L
        self.Ws = [params[f"W{l}"] for l in range(1, L + 1)]
        self.bs = [(0.01 * rng.standard_normal((layer_dims[l], 1))).astype(dtype)
                   for l in range(1, L + 1)]
        self.activations = ([ref.parse_activation(hidden)] * (L - 1)
                            + [ref.parse_activation(output)])
        self.loss = LOSS[output]
        self.learning_rate = LEARNING_RATE

    def parameters(self):
        p = {}
        for l in range(1, self.L + 1):
            p[f"W{l}"], p[f"b{l}"] = self.Ws[l - 1].copy(), self.bs[l - 1].copy()
        return p

    def copies(self):
        return [W.copy() for W in self.Ws], [b.copy() for b in self.bs]

    def reference(self):
        """``(AL, caches, grads)`` of the reference formulas."""
        params = self.parameters()
        AL, caches = ref.model_forward(self.X, params, self.activations)
        grads = ref.model_backward(AL, self.Y, caches, self.activations, self.loss)
        return AL, caches, grads


def max_rel_error(actual, expected):
    """``max |a - e| / max |e|`` over matching arrays (0 when both are zero)."""
    worst = 0.0
    for a, e in zip(actual, expected):
        a, e = np.asarray(a, dtype=np.float64), np.asarray(e, dtype=np.float64)
        if a.shape != e.shape:
            return float("inf")
        scale = np.abs(e).max()
        diff = np.abs(a - e).max()
        worst = max(worst, float(diff / scale) if scale else float(diff))
    return worst
