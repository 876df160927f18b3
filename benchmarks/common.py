"""Shared by the asv suites: backends, workloads and seeded problems, from ``chainrule.bench``
(the one harness: ``chainrule bench`` and these suites build the same problems).

An unavailable backend raises ``NotImplementedError`` in ``setup``, which asv shows as n/a.
History mode runs these suites over commits that have ``chainrule.bench`` (the package).

``CHAINRULE_BENCH_FULL=1`` runs every workload at its full size; by default only the small
ones run. ``CHAINRULE_BENCH_THREADS=N`` sets the BLAS and numba threads (default 1; 0
leaves the libraries' defaults).
"""

import os

import numpy as np

from chainrule import bench
from chainrule.backends import registry as _dispatch
from chainrule import reference as ref  # noqa: F401  (the suites compare with it)
from chainrule.bench.env import limit_threads as _limit_threads

FULL = os.environ.get("CHAINRULE_BENCH_FULL", "").strip() not in ("", "0")
THREADS = int(os.environ.get("CHAINRULE_BENCH_THREADS", "1") or 0)

BACKENDS = list(_dispatch.BACKENDS)
DTYPES = ["float64", "float32"]
WORKLOADS = bench.WORKLOADS
WORKLOAD_NAMES = list(WORKLOADS) if FULL else list(bench.QUICK_WORKLOADS)

PARAMS = [BACKENDS, WORKLOAD_NAMES, DTYPES]
PARAM_NAMES = ["backend", "workload", "dtype"]

TRAIN_WORKLOAD_NAMES = list(bench.TRAIN_WORKLOADS)


def limit_threads():
    """Limit every BLAS/OpenMP pool loaded so far (and numba's) to ``THREADS``."""
    if THREADS > 0:
        _limit_threads(THREADS)


def ops(backend):
    """The backend's ops, or ``NotImplementedError`` (asv: n/a) when it does not import here."""
    try:  # only this backend is imported: another one's import would count in peakmem_
        ops = _dispatch.Ops(backend)
    except ImportError as exc:
        raise NotImplementedError(f"backend {backend!r} is not available: {exc}") from None
    limit_threads()  # after the import: a backend may bring its own BLAS
    return ops


def problem(workload, dtype, m=None):
    """Seeded data, labels and parameters of a step workload in ``dtype`` (course layout)."""
    return bench.workload_problem(workload, dtype=dtype, m=m)


def train_data(workload):
    """A fit workload's data: the ``--quick`` size unless ``CHAINRULE_BENCH_FULL``;
    ``NotImplementedError`` (asv: n/a) when it needs what is not installed (digits:
    scikit-learn)."""
    w = bench.TRAIN_WORKLOADS[workload].sized(quick=not FULL)
    try:
        return bench.train_data(w)
    except ImportError as exc:
        raise NotImplementedError(str(exc)) from None


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
