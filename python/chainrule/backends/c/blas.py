"""The BLAS the C kernels call: discovery, choice, threads.

The C kernels call a Fortran ``?gemm`` through a function pointer handed over at import,
so the extension links no BLAS. The source is chosen by ``CHAINRULE_C_BLAS``:

``auto`` (default)
    the one this machine's calibration found fastest (``chainrule bench --calibrate``
    measures every source that loads, MKL included when the ``mkl`` wheel is installed, and
    records the winner in the wisdom, ``chainrule._wisdom.c_blas``) if it loads; else the
    first of ``numpy``, ``scipy``, ``mkl`` that loads.
``mkl``
    ``libmkl_rt`` of the ``mkl`` wheel (``pip install ".[mkl]"``), LP64 interface.
``scipy``
    ``scipy.linalg.cython_blas`` (SciPy's OpenBLAS): what Numba uses.
``numpy``
    NumPy's own OpenBLAS (64-bit integers), found through threadpoolctl.
``none``
    no BLAS: the C loops compute every product (slow on large layers; for testing).

:func:`set_num_threads` limits the threads of that BLAS (``CHAINRULE_C_THREADS`` does the
same at import); :func:`blas_info` says which library runs. Measurements and the reasons
for these defaults: docs/benchmarks.md ("The C kernel").
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import os
import sys
import threading

import numpy as np

from ..._threads import usable_cpus
from ...errors import InputError
from . import wrappers


def _capsule_pointer(capsule):
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object,
                                                                  ctypes.c_char_p]
    return get_pointer(capsule, get_name(capsule))


def _blas_from_scipy():
    from scipy.linalg import cython_blas
    capi = cython_blas.__pyx_capi__
    path = None
    try:
        from threadpoolctl import threadpool_info
        path = next((i["filepath"] for i in threadpool_info()
                     if i["user_api"] == "blas" and "scipy" in i["filepath"]
                     and "numpy" not in i["filepath"]), None)
    except Exception:  # threadpoolctl only names the library; the pointers are what matter
        pass
    return (_capsule_pointer(capi["dgemm"]), _capsule_pointer(capi["sgemm"]), 4,
            path or "scipy.linalg.cython_blas")


def _blas_from_mkl():
    # MKL's OpenMP threads spin 200 ms after each call by default; on 2 shared cores they
    # then take the core the rest of the step (and every other process) needs. Measured with
    # the mid32 workload of the former benchmarks/c_step.py on the loaded 2-core machine: one c step
    # took 23.7 ms with the default spin and 6.0 ms with KMP_BLOCKTIME=0. A user's own
    # setting wins; this only applies before the OpenMP runtime starts.
    os.environ.setdefault("KMP_BLOCKTIME", "0")
    candidates = sorted(glob.glob(os.path.join(sys.prefix, "lib", "libmkl_rt.so*")))
    found = ctypes.util.find_library("mkl_rt")
    if found:
        candidates.append(found)
    for path in candidates:
        try:
            mkl = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            continue
        return (ctypes.cast(mkl.dgemm, ctypes.c_void_p).value,
                ctypes.cast(mkl.sgemm, ctypes.c_void_p).value, 4, path)
    raise ImportError("libmkl_rt not found: pip install mkl")


def _blas_from_numpy():
    from threadpoolctl import threadpool_info
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
    for info in threadpool_info():
        path = info["filepath"]
        if info["internal_api"] != "openblas" or "numpy" not in os.path.relpath(path, numpy_dir):
            continue
        handle = ctypes.CDLL(path)
        for prefix, suffix, int_bytes in (("scipy_", "_64_", 8), ("", "_64_", 8),
                                          ("scipy_", "_", 4), ("", "_", 4)):
            try:
                d = getattr(handle, f"{prefix}dgemm{suffix}")
                s = getattr(handle, f"{prefix}sgemm{suffix}")
            except AttributeError:
                continue
            return (ctypes.cast(d, ctypes.c_void_p).value, ctypes.cast(s, ctypes.c_void_p).value,
                    int_bytes, path)
    raise ImportError("NumPy's OpenBLAS was not found")


# In the order "auto" tries them. NumPy's own OpenBLAS first: it is loaded anyway (no extra
# thread pool to stall the others) and, measured with the former benchmarks/c_step.py on this 2-core
# AMD EPYC (Zen 4), it ran the GEMMs of every workload at least as fast as MKL 2026.2 with
# one thread (cat step 8.3 vs 10.1 ms, wide 229 vs 258 ms; a 128 x 784 x 1000 sgemm 1.2 vs
# 2.5 ms: MKL does not take its AVX-512 paths on AMD). MKL only helped with two threads on
# the overloaded machine, where OpenBLAS's spinning threads stall; it is there on request
# (CHAINRULE_C_BLAS=mkl, or use_blas("mkl")), and last for "auto".
_BLAS_SOURCES = {"numpy": _blas_from_numpy, "scipy": _blas_from_scipy, "mkl": _blas_from_mkl}
current = {"source": "none", "filepath": None, "int_bytes": 4}  # the BLAS in use
_loaded_blas = {}  # source -> (dgemm, sgemm, int_bytes, path): each library is looked up once


def use_blas(source="auto"):
    """Point the C kernels at a BLAS: ``"auto"``, ``"numpy"``, ``"scipy"``, ``"mkl"`` or ``"none"``.

    Returns the source that was taken. ``"auto"`` tries ``numpy``, ``scipy``, ``mkl`` in
    turn; a named source that does not load raises ``ImportError``. It also sets the
    measured C-loop cut-off for that library (see :func:`set_blas_threshold`).
    """
    source = (source or "auto").strip().lower()
    if source not in ("auto", "none") and source not in _BLAS_SOURCES:
        raise InputError(f"unknown BLAS source {source!r}; choose auto, mkl, scipy, numpy or none")
    if source == "auto":
        from ... import _wisdom

        measured = _wisdom.c_blas()
        order = ([measured] if measured in _BLAS_SOURCES else []) + [
            s for s in _BLAS_SOURCES if s != measured]
    else:
        order = [] if source == "none" else [source]
    errors = []
    for name in order:
        try:
            if name not in _loaded_blas:
                _loaded_blas[name] = _BLAS_SOURCES[name]()
        except Exception as exc:  # a missing package or library: try the next one
            errors.append(f"{name}: {exc}")
            continue
        dgemm, sgemm, int_bytes, path = _loaded_blas[name]
        wrappers.set_blas_pointers(dgemm, sgemm, int_bytes)
        current.update(source=name, filepath=path, int_bytes=int_bytes)
        set_blas_threshold(_MEASURED_THRESHOLD[name])
        return name
    if source not in ("auto", "none"):
        raise ImportError(f"BLAS source {source!r} did not load: {'; '.join(errors)}")
    wrappers.set_blas_pointers(None, None, 4)
    current.update(source="none", filepath=None, int_bytes=4)
    return "none"


set_blas_threshold = wrappers.set_blas_threshold


_found = {"path": None, "shared": None, "lib": None}  # the last match, and what it was for


def _controller():
    # threadpoolctl's record of the library in use, from the shared (rescanned only when a
    # library may have been loaded) ThreadpoolController of chainrule._threads; the match by
    # real path is kept while the library and the scan are the same (the real paths of
    # every library took about 150 us of each fit)
    if current["filepath"] is None:
        return None
    from ..._threads import _controller as shared_controller
    shared = shared_controller()
    if _found["path"] == current["filepath"] and _found["shared"] is shared:
        return _found["lib"]
    target = os.path.realpath(current["filepath"])
    libs = [c for c in shared.lib_controllers if os.path.realpath(c.filepath) == target]
    _found.update(path=current["filepath"], shared=shared, lib=libs[0] if libs else None)
    return _found["lib"]


# A process forked from this one runs the engine on one thread: GNU OpenMP's threads do not
# survive a fork, and a child entering a parallel region after its parent ran one waits for
# them forever (a multiprocessing "fork" pool hung; tests/test_cengine_threads.py). Children
# of a fork are usually the parallel work themselves.
_forked = {"child": False}
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _forked.update(child=True))


def engine_threads():
    """The threads the training engine (``cr_fit_epochs``) splits its steps over now.

    As many as the BLAS would use (so a model's ``n_threads``, a threadpoolctl limit,
    ``OPENBLAS_NUM_THREADS`` and ``CHAINRULE_C_THREADS`` all apply), at most the CPUs this
    process may run on; the usable CPUs when no BLAS is in use; 1 when the extension was
    built without OpenMP, and in a process forked from the one that loaded it. During the
    call the BLAS runs one thread per product (:func:`engine_call_threads`): the engine's
    threads each call it on their share.
    """
    if not wrappers.lib.cr_openmp() or _forked["child"]:
        return 1
    controller = _controller()
    cpus = usable_cpus()
    n = cpus if controller is None else controller.num_threads
    return max(1, min(int(n), cpus))


class ThreadChoice:
    """Which of ``n`` threads and one thread a fit's next engine call runs on, from the speeds
    of its calls.

    More threads win on a quiet machine once the products are large enough (the engine's
    cut-offs), and lose badly where another process keeps a core busy: each of a step's
    parallel parts waits for its slowest thread, which the scheduler may have paused for a
    time slice (a tabular fit went from 0.05 s to over a second here). So the choice is
    measured, not assumed: the first call runs on ``n`` threads, the second tries one, and
    from then on the choice with the lower time per step (the least of its last three
    calls: a call slowed by a passing load does not decide; more threads must be 10 %
    faster, a tie goes to one), with the other tried again
    after ``interval`` calls (2, doubling each time it loses, up to 32) on a quarter of the
    call's steps (``probe_steps``), stopped by the engine once it has taken twice what the
    current choice would (``max_seconds``): a losing try costs a few percent at most. A
    current choice that turns twice as slow as the other's best (a load arrived) is left at
    once. The times are kept per network and options for the process, so the next fit
    starts from them. With ``adaptive=False`` every call runs on ``n`` threads (a model's
    ``n_threads``: the same threads, the same bits).
    """

    FIRST_INTERVAL, MAX_INTERVAL, KEPT = 2, 32, 3
    MAX_CALL_SECONDS = 0.25  # no call runs longer, past its step (a load may arrive mid-call)
    remembered = {}  # (n, key) -> {threads: [seconds per step of its last calls]}

    def __init__(self, n, key=None, adaptive=True):
        self.n = max(1, int(n))
        self.adaptive = adaptive
        self.per_step = self.remembered.setdefault((self.n, key), {}) if adaptive else {}
        self.current = (self._best() if adaptive else None) or self.n
        self.calls, self.interval, self.next_probe = 0, self.FIRST_INTERVAL, 1

    MARGIN = 0.9  # more threads must be at least 10 % faster a step: a tie goes to one

    def _best(self):
        if len(self.per_step) < 2:
            return None
        one, many = min(self.per_step[1]), min(self.per_step[self.n])
        return self.n if many < self.MARGIN * one else 1

    def _other(self):
        return 1 if self.current == self.n else self.n

    def probing(self):
        """Whether the next call tries the other choice."""
        return self.adaptive and self.n > 1 and self.calls >= self.next_probe

    def pick(self):
        """The threads of the next call."""
        return self._other() if self.probing() else self.current

    @staticmethod
    def probe_steps(n_steps):
        return max(1, n_steps // 4)

    def max_seconds(self, n_steps):
        """How long the next call of ``n_steps`` steps may run (the engine stops after the
        step that ends past it)."""
        times = self.per_step.get(self.current)
        if self.probing() and times:
            return min(self.MAX_CALL_SECONDS, 2 * min(times) * n_steps)
        return self.MAX_CALL_SECONDS

    def observe(self, threads, steps, seconds):
        """A call on ``threads`` threads took ``seconds`` for ``steps`` steps."""
        self.calls += 1
        if self.n == 1 or steps < 1 or not self.adaptive:
            return
        if not self.per_step and self.calls == 1:
            return  # the first call of a new network pays for its workspace and threads
        times = self.per_step.setdefault(threads, [])
        times.append(seconds / steps)
        del times[:-self.KEPT]
        if threads == self.current:
            other = self.per_step.get(self._other())
            if other and times[-1] > 2 * min(other):  # slowed down: a load arrived
                del times[:-1]  # its earlier, faster times no longer hold
                self.current, self.interval = self._other(), self.FIRST_INTERVAL
                self.next_probe = self.calls + self.interval
            return
        best = self._best()
        if best is not None and best != self.current:
            self.current, self.interval = best, self.FIRST_INTERVAL
        elif best is not None:  # the try lost: try less often
            self.interval = min(self.MAX_INTERVAL, 2 * self.interval)
        self.next_probe = self.calls + self.interval


_session = threading.local()  # the fit in progress in this thread: its ThreadChoices by key


@contextlib.contextmanager
def engine_session():
    """For a whole fit: the engine's threads measured call by call (:class:`ThreadChoice`
    over :func:`engine_threads`; exactly those under a model's ``n_threads``), and every
    BLAS pool at one thread until the fit ends when they are more than one.

    The BLAS limit is for the whole fit, not per call: a product between two calls (a
    record's cost, the validation score) run on several BLAS threads leaves the BLAS's
    workers spinning after it (OpenBLAS: up to about 0.1 s), and on a machine with as many
    cores as threads they take the cores from the engine's threads (a 0.044 s tabular fit
    took 0.125 s after products run just before it). Nested sessions use the outer one's.
    """
    if getattr(_session, "choices", None) is not None:
        yield
        return
    from ..._threads import _active, limited
    n = engine_threads()
    # a model's n_threads (its limit is in force in this thread): exactly that many
    _session.fixed = getattr(_active, "n_threads", None) is not None
    _session.n, _session.choices = n, {}
    try:
        with (limited(1) if n > 1 else contextlib.nullcontext()):
            yield
    finally:
        _session.choices = None


def in_session():
    """Whether this thread is inside :func:`engine_session` (a fit)."""
    return getattr(_session, "choices", None) is not None


def engine_call_threads(key=None):
    """For one engine call of the plan ``key``: ``(threads, context, choice)``. Inside
    :func:`engine_session`, the pick of the session's :class:`ThreadChoice` for ``key``, no
    context, and the choice (to ``observe`` the call); outside, :func:`engine_threads`, a
    context that keeps every BLAS pool at one thread during the call (none when it runs on
    one), and ``None``."""
    choices = getattr(_session, "choices", None)
    if choices is not None:
        choice = choices.get(key)
        if choice is None:
            choice = choices[key] = ThreadChoice(_session.n, key, adaptive=not _session.fixed)
        return choice.pick(), contextlib.nullcontext(), choice
    from ..._threads import limited
    n = engine_threads()
    return n, (limited(1) if n > 1 else contextlib.nullcontext()), None


def set_num_threads(n_threads):
    """Limit the threads of the BLAS the C kernels call (the C loops are single-threaded).

    Returns the previous number, or ``None`` when no BLAS is in use. A model's
    ``n_threads`` setting is meant to call this when its backend is ``"c"``;
    ``CHAINRULE_C_THREADS`` sets it at import. On a 2-core machine shared with other work,
    one thread gave steadier and often faster steps than two (docs/benchmarks.md).
    """
    n_threads = int(n_threads)
    if n_threads < 1:
        raise InputError(f"n_threads must be >= 1, got {n_threads}")
    controller = _controller()
    if controller is None:
        return None
    previous = controller.num_threads
    controller.set_num_threads(n_threads)
    return previous


def get_num_threads():
    """The threads of the BLAS the C kernels call (``None`` when no BLAS is in use)."""
    controller = _controller()
    return None if controller is None else controller.num_threads


def blas_info():
    """Which BLAS the C kernels call: ``source``, ``filepath``, ``int_bytes``, ``num_threads``,
    ``threshold`` (the C-loop cut-off in multiply-adds) and threadpoolctl's record of it."""
    controller = _controller()
    info = dict(current, threshold=wrappers.get_blas_threshold(),
                num_threads=None if controller is None else controller.num_threads)
    info["threadpoolctl"] = None if controller is None else controller.info()
    return info


# The C-loop cut-off per BLAS, in multiply-adds n * n_prev * m of one layer. Measured with
# `chainrule bench --c-threshold` (one layer's forward + backward, C loops against
# the BLAS call, 2-core AMD EPYC, shared): OpenBLAS costs 1-3 us a call and beats the loops
# from about 4 000 multiply-adds; MKL costs 30-300 us a call for small products (it wakes its
# OpenMP threads) and only beats the loops from about 250 000.
_MEASURED_THRESHOLD = {"mkl": 250_000, "numpy": 4_096, "scipy": 4_096, "none": 0}
