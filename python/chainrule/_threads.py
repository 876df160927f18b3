"""A model's ``n_threads``: limit every BLAS thread pool for the duration of a public call.

Several BLAS copies can be loaded at once (NumPy's OpenBLAS, SciPy's, the one the C backend
calls, maybe MKL); on 2 cores their pools stall each other. threadpoolctl limits them all
(``user_api="blas"``). That covers every backend: NumPy's products, Numba's ``np.dot``
(SciPy's BLAS) and the C kernels' ``?gemm`` (``chainrule._cbackend.set_num_threads`` acts on
the same threadpoolctl record of that library). The Numba kernels are not ``parallel=True``,
so Numba's own threading layer is not used and not touched.
"""

from __future__ import annotations

import contextlib
import sys
import threading

_cache = {"modules": -1, "controller": None}
_active = threading.local()  # the limit in force in this thread, so nested calls skip it


def _controller():
    # Building a ThreadpoolController scans the loaded libraries (about 1 ms here); reusing
    # one makes entering a limit about 13 µs. BLAS libraries arrive with imports (numpy,
    # scipy, numba, the C backend loading its BLAS), so the scan is redone only when
    # sys.modules has grown since the last one.
    n_modules = len(sys.modules)
    if _cache["modules"] != n_modules:
        from threadpoolctl import ThreadpoolController
        _cache["controller"] = ThreadpoolController()
        _cache["modules"] = len(sys.modules)
    return _cache["controller"]


@contextlib.contextmanager
def limited(n_threads):
    """Limit every BLAS pool to ``n_threads`` inside the block (``None``: leave them alone),
    and restore the previous numbers after it."""
    if n_threads is None or getattr(_active, "n_threads", None) == n_threads:
        yield
        return
    outer = getattr(_active, "n_threads", None)
    with _controller().limit(limits=n_threads, user_api="blas"):
        _active.n_threads = n_threads
        try:
            yield
        finally:
            _active.n_threads = outer
