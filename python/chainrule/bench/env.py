"""The machine and its thread pools: CPU model, BLAS libraries, load, thread limits, pinning."""

from __future__ import annotations

import os
import platform
import sys

import numpy as np

from .._wisdom import cpu_model


def blas_info():
    """The BLAS/OpenMP libraries loaded now, as threadpoolctl sees them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [dict(api=i.get("internal_api"), version=i.get("version"),
                 threads=i.get("num_threads"), lib=os.path.basename(i.get("filepath", "")),
                 arch=i.get("architecture"), owner=_owner(i.get("filepath", "")))
            for i in threadpool_info()]


def _owner(path):
    """The package a shared library ships with: the folder after ``site-packages``
    (``numpy.libs`` -> numpy, ``torch/lib`` -> torch)."""
    parts = path.split(os.sep)
    if "site-packages" in parts[:-2]:
        top = parts[parts.index("site-packages") + 1]
        return top.replace(".libs", "").replace("_", "-")
    return "system"


def load_average():
    """The 1-minute load average (other processes share the cores), or None."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def configure_numba_threads(threads):
    """numba starts its worker pool with NUMBA_NUM_THREADS threads, read at import; idle
    workers of a larger pool than the threads used were measured to slow PyTorch's small
    steps in the same process ~20x (planar: 6 ms instead of 0.3 ms), so set it first."""
    if "numba" not in sys.modules:
        os.environ.setdefault("NUMBA_NUM_THREADS", str(threads))


def pin_to_cpus(threads):
    """Restrict this thread (and the threads it starts later, such as XLA's pool, which
    ignores every thread setting) to ``threads`` CPUs. Returns the previous set, or None."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if threads >= len(allowed):
        return None
    os.sched_setaffinity(0, allowed[:threads])
    return set(allowed)


def limit_threads(threads):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    limiter = threadpool_limits(limits=threads)
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return limiter


def versions(impls=()):
    """Python, NumPy, chainrule, numba (if loaded) and each peer's package version."""
    from .. import __version__

    out = {"python": platform.python_version(), "numpy": np.__version__,
           "chainrule": __version__}
    for impl in impls:
        package = getattr(impl, "package", None)
        if package and package not in out:
            out[package] = impl.version()
    if "numba" in sys.modules:
        out["numba"] = sys.modules["numba"].__version__
    return out


class threads_limited:
    """``with threads_limited(n):`` BLAS/OpenMP pools (threadpoolctl) and numba limited to
    ``n`` threads and the process pinned to ``n`` CPUs; ``n = 0``: the libraries' defaults.
    ``relimit()`` limits pools loaded since (a peer's import brings its own)."""

    def __init__(self, threads):
        self.threads = threads
        self.limiters, self.pinned = [], None

    def __enter__(self):
        if self.threads:
            configure_numba_threads(self.threads)
            self.pinned = pin_to_cpus(self.threads)
            self.relimit()
        return self

    def relimit(self):
        if self.threads:
            self.limiters.append(limit_threads(self.threads))

    def __exit__(self, *exc):
        for limiter in reversed(self.limiters):
            if limiter is not None:
                limiter.restore_original_limits()
        if self.pinned is not None:
            os.sched_setaffinity(0, self.pinned)
        return False
