"""A model's ``n_threads``: limit every BLAS thread pool for the duration of a public call.

Several BLAS copies can be loaded at once (NumPy's OpenBLAS, SciPy's, the one the C backend
calls, maybe MKL); on 2 cores their pools stall each other. threadpoolctl limits them all
(``user_api="blas"``). That covers every backend: NumPy's products, Numba's ``np.dot``
(SciPy's BLAS) and the C kernels' ``?gemm`` (``chainrule.backends.c.set_num_threads`` acts on
the same threadpoolctl record of that library). The Numba kernels are not ``parallel=True``,
so Numba's own threading layer is not used and not touched.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading

_cache = {"key": None, "controller": None}
_active = threading.local()  # the limit in force in this thread, so nested calls skip it


def _loaded_blas_key():
    # BLAS libraries arrive with imports (numpy, scipy, numba, the C backend) or when the C
    # backend switches library (backends.c.use_blas may dlopen one without an import).
    blas = sys.modules.get("chainrule.backends.c.blas")
    return len(sys.modules), None if blas is None else blas.current["filepath"]


def _controller():
    # Building a ThreadpoolController scans the loaded libraries (about 1 ms here); reusing
    # one makes entering a limit about 10-25 µs. The scan is redone when a BLAS may have
    # been loaded since the last one.
    key = _loaded_blas_key()
    if _cache["key"] != key:
        from threadpoolctl import ThreadpoolController
        _cache["controller"] = ThreadpoolController()
        _cache["key"] = _loaded_blas_key()
    return _cache["controller"]


class _ProcessLimit:
    """The BLAS pools are process-wide: one limit shared by every thread's ``limited`` block.

    The first block to enter records the pools' numbers and applies its limit; overlapping
    blocks (other threads) count in; while several are active the smallest limit holds; the
    last one to leave restores the recorded numbers exactly (a per-thread save/restore would
    leave the pools at whatever another thread had set when it saved).
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.active = []  # the limits of the blocks inside, one entry per block
        self.original = None  # the limiter that recorded the numbers before the first block

    def enter(self, n_threads):
        with self.lock:
            before = min(self.active) if self.active else None
            self.active.append(n_threads)
            if self.original is None:
                self.original = _controller().limit(limits=n_threads, user_api="blas")
            elif n_threads < before:
                _controller().limit(limits=n_threads, user_api="blas")  # kept: restored below

    def leave(self, n_threads):
        with self.lock:
            self.active.remove(n_threads)
            if not self.active:
                original, self.original = self.original, None
                original.restore_original_limits()
            elif min(self.active) != min(self.active + [n_threads]):
                _controller().limit(limits=min(self.active), user_api="blas")


_process_limit = _ProcessLimit()


@contextlib.contextmanager
def limited(n_threads):
    """Limit every BLAS pool to ``n_threads`` inside the block (``None``: leave them alone),
    and restore the previous numbers after it (after the last of overlapping blocks in
    several threads: see :class:`_ProcessLimit`)."""
    if n_threads is None or getattr(_active, "n_threads", None) == n_threads:
        yield
        return
    outer = getattr(_active, "n_threads", None)
    _process_limit.enter(n_threads)
    _active.n_threads = n_threads
    try:
        yield
    finally:
        _active.n_threads = outer
        _process_limit.leave(n_threads)


_pools = {}
_pools_lock = threading.Lock()


def pool(n):
    """A pool of ``n`` threads for work split in parts whose calls release the GIL (the
    blocks of predict/score, the finiteness check of a large array), made once per size.
    Work running in one never splits again (:func:`in_pool`): a part waiting for parts
    queued behind it on the same pool would wait for ever."""
    with _pools_lock:
        executor = _pools.get(n)
        if executor is None:
            from concurrent.futures import ThreadPoolExecutor
            executor = _pools[n] = ThreadPoolExecutor(n, thread_name_prefix="chainrule",
                                                      initializer=_mark_pool_thread)
        return executor


def _mark_pool_thread():
    _active.in_pool = True


def run_parts(part, n):
    """``[part(0), ..., part(n - 1)]``: the first on the calling thread, the others on
    :func:`pool` ``(n - 1)``, so that the caller always works beside them (a pool of ``n``
    threads may hand both parts of a short job to one of its threads, while the caller only
    waits). The caller counts as a pool thread meanwhile (:func:`in_pool`: its part never
    splits again). Every part has finished when this returns or raises."""
    if n <= 1:
        return [part(0)]
    futures = [pool(n - 1).submit(part, p) for p in range(1, n)]
    outer = getattr(_active, "in_pool", False)
    _active.in_pool = True
    try:
        first = part(0)
    except BaseException:
        from concurrent.futures import wait
        wait(futures)  # nothing of this call runs on after it
        raise
    finally:
        _active.in_pool = outer
    return [first] + [f.result() for f in futures]


def _forget_pools():
    # A forked child inherits the pools but not their threads: work handed to one would
    # wait for ever. It makes its own on first use.
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


def in_pool():
    """Whether this thread is one of :func:`pool`'s."""
    return getattr(_active, "in_pool", False)


def usable_cpus():
    """The CPUs this process may run on (its affinity; the CPU count where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def blas_threads():
    """The threads a BLAS call would use now: the largest pool of the loaded BLAS libraries
    (a threadpoolctl limit, ``OMP_NUM_THREADS`` and a model's ``n_threads`` included), at
    most the CPUs this process may run on; the CPUs when no BLAS is loaded. A threadpoolctl
    query: for once per fit (``backend="auto"``'s choice), not per step."""
    cpus = usable_cpus()
    n = getattr(_active, "n_threads", None)  # inside a ``limited`` block: its limit
    if n is None:
        try:
            pools = [info.get("num_threads") for info in _controller().info()
                     if info.get("user_api") == "blas"]
        except Exception:  # threadpoolctl cannot read this platform's pools
            pools = []
        n = max((int(p) for p in pools if p), default=cpus)
    return max(1, min(int(n), cpus))


def limits_threads(method):
    """Decorator: run a public method of a model with the BLAS pools limited to the model's
    ``n_threads``; entered once per call (nested public calls reuse it), never per step."""
    @functools.wraps(method)
    def limited_method(self, *args, **kwargs):
        if self.n_threads is None:
            return method(self, *args, **kwargs)
        with limited(self.n_threads):
            return method(self, *args, **kwargs)
    return limited_method
