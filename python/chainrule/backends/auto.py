"""The policy behind ``backend="auto"``: the measured table, where it lives, and the rule.

``chainrule bench --calibrate --write`` measures every backend and writes the table to
:data:`TABLE_PATH` (``backends/_auto_table.py``, a Python literal), the shipped default;
``chainrule bench --calibrate`` stores this machine's table in the user's cache directory
(``chainrule._wisdom``), which :func:`current_table` prefers. :func:`auto_rule` picks from a
table; :func:`choose` (what ``choose_backend`` calls) also passes over a backend whose first
use would cost more than the work saves (``chainrule._coldstart``: numba's compile). The per-backend vetoes (:data:`_AUTO_PREDICATES`) are here too, so the whole
policy is one module. Nothing here imports a backend: the C veto reads the BLAS the C backend
loaded from ``sys.modules`` (it is only asked when that backend is available, hence loaded).
"""

from __future__ import annotations

import os
import sys

import numpy as np

from .. import _coldstart, _wisdom

TABLE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_auto_table.py")


def auto_rule(layer_dims, m, dtype, available, *, table=None, threads=None, batch_norm=False):
    """The measured rule behind ``backend="auto"``.

    ``chainrule bench --calibrate --write`` times every backend's training steps (``fit``'s
    mini-batch steps by default, ``--measure step`` the single step) on networks
    ``[w, w, ..., 1]`` over a grid of width ``w``, batch ``m`` and dtype, and writes the
    medians to ``chainrule/backends/_auto_table.py``. Here a network is placed on that
    grid by its effective width ``sqrt(mean_l n[l] n[l-1])`` (the per-layer products set
    the work per example) and its ``m`` (a network the table measured itself, as the
    benchmark workloads, is looked up under its own layer sizes instead), the nearest measured cell (log scale) is
    looked up, and the fastest available backend there is picked, but only if it was
    measured at least ``_AUTO_MARGIN`` faster than NumPy. A backend the table has no
    measurement for is never picked; neither is one whose registered predicate
    (``_AUTO_PREDICATES``) declines the shape. With ``m`` unknown (``None``) a backend
    must beat NumPy at every measured ``m`` of the nearest width.

    A measured network's rows may say the threads the fit ran on and whether its hidden
    layers had batch norm (``chainrule bench --calibrate`` times the ``bench --train``
    workloads so): a network with ``batch_norm`` is looked up among rows with batch norm, and
    among rows of several thread counts the one nearest ``threads`` is taken (``None``:
    unknown, the fewest: a single step's).
    """
    table = current_table() if table is None else table
    dtype = np.dtype(dtype).name
    row = _nearest_row(layer_dims, m, dtype, table, threads, batch_norm)
    if not row:
        return "numpy"
    best, best_seconds = "numpy", None
    for backend in available:
        if backend == "numpy":
            continue
        predicate = _AUTO_PREDICATES.get(backend)
        if predicate is not None and not predicate(layer_dims, m, np.dtype(dtype)):
            continue
        ratios = [c["seconds"].get(backend, np.inf) / c["seconds"].get("numpy", np.nan)
                  for c in row]
        if not all(r <= _AUTO_MARGIN for r in ratios):  # NaN (no numpy timing) fails too
            continue
        seconds = max(ratios)
        if best_seconds is None or seconds < best_seconds:
            best, best_seconds = backend, seconds
    return best


_rows = {}  # (id(table), dims, m, dtype, ...) -> (table, row): auto asks at every public call


def _nearest_row(layer_dims, m, dtype, table, threads=None, batch_norm=False):
    """The table's cells nearest to this network (its own rows when it was measured as such:
    those of its batch norm, at the thread count nearest ``threads``), one cell when ``m``
    is known; ``[]`` when the table has nothing for this dtype. Remembered per table (the
    table is kept with it, so its ``id`` stays its own)."""
    key = (id(table), tuple(int(n) for n in layer_dims), None if m is None else int(m), dtype,
           None if threads is None else int(threads), bool(batch_norm))
    found = _rows.get(key)
    if found is not None and found[0] is table:
        return found[1]
    if len(_rows) > 256:
        _rows.clear()
    row = _find_nearest_row(layer_dims, m, dtype, table, threads, batch_norm)
    _rows[key] = (table, row)
    return row


def _row_threads(cell, table):
    """The threads a cell was measured on (the table's, for a cell that does not say)."""
    return int(cell.get("threads", table.get("threads", 1)))


def _find_nearest_row(layer_dims, m, dtype, table, threads=None, batch_norm=False):
    dims = [int(n) for n in layer_dims]
    # A network measured as such (the benchmark workloads) is looked up by its own shape,
    # its batch norm and the measured thread count nearest this fit's.
    row = [c for c in table.get("networks", ())
           if c["dtype"] == dtype and [int(n) for n in c["layer_dims"]] == dims
           and bool(c.get("batch_norm", False)) == bool(batch_norm)]
    counts = sorted({_row_threads(c, table) for c in row})
    if len(counts) > 1:
        n = counts[0] if threads is None else min(
            counts, key=lambda k: (abs(np.log(k) - np.log(max(int(threads), 1))), k))
        row = [c for c in row if _row_threads(c, table) == n]
    if not row:
        cells = [c for c in table.get("cells", ()) if c["dtype"] == dtype]
        if not cells:
            return []
        work = [dims[l] * dims[l - 1] for l in range(1, len(dims))]
        width = float(np.sqrt(np.mean(work))) if work else 1.0
        log_w = np.log(max(width, 1.0))
        nearest_w = min({c["width"] for c in cells}, key=lambda w: abs(np.log(w) - log_w))
        row = [c for c in cells if c["width"] == nearest_w]
    if m is not None:
        log_m = np.log(max(int(m), 1))
        row = [min(row, key=lambda c: abs(np.log(c["m"]) - log_m))]
    return row


# A backend must be measured this much faster than NumPy (median ratio) to be picked:
# medians on a shared 2-core machine move by a few per cent between runs.
_AUTO_MARGIN = 0.9


def _numba_is_faster(layer_dims, m, dtype):
    """Where ``backend="auto"`` may pick numba: every float32/float64 network measured so far.

    Measured on the 2-core development machine (shared, so medians of single calls,
    interleaved; SciPy's and NumPy's OpenBLAS limited to 1 thread), one training step,
    ReLU hidden / sigmoid output, numba / numpy time:
    [2,4,1] m=1: 0.09; m=4096: 0.19-0.20; m=65536: 0.04. [3,100,100,100,1] m=32: 0.33-0.41.
    [64,256,256,10] m=64: 0.55-0.69; m=2048: 0.67-0.71. [1000,1000,1] m=512: 0.76-0.92.
    [784,128,64,10] m=8192: 0.80-0.95 (GEMM-bound: the two are within noise there).
    Small networks gain most (the step is one compiled call instead of dozens of NumPy
    calls); large ones are GEMM-bound and numba is never measurably slower.
    ``chainrule bench --impls numpy,numba,floor`` times such steps.
    """
    return np.dtype(dtype) in (np.dtype(np.float32), np.dtype(np.float64))


def _prefer_c(layer_dims, m, dtype):
    """Whether ``auto`` may pick the C backend for this network, batch and dtype.

    Measured with ``chainrule bench``, one training step, NumPy's OpenBLAS behind both,
    interleaved (docs/benchmarks.md, "The C backend"): with the whole step in one C call the C step
    is faster than NumPy's (planar [2, 4, 1] m=400: 0.13-0.17x; [784, 128, 64, 10]:
    0.80x; cat 0.92x; wide 0.93x: the same GEMMs, fewer passes, no allocation per step).
    Without a BLAS (``CHAINRULE_C_BLAS=none``) the C loops only win on small layers (below
    about 250 000 multiply-adds per layer and batch).
    """
    blas = sys.modules.get("chainrule.backends.c.blas")
    if blas is not None and blas.current["source"] != "none":
        return True
    m = 256 if m is None else m
    return max(a * b for a, b in zip(layer_dims[:-1], layer_dims[1:])) * m <= 250_000


# Vetoes per backend: predicate(layer_dims, m, dtype) -> bool (False: never pick it here).
_AUTO_PREDICATES: dict[str, object] = {"numba": _numba_is_faster, "c": _prefer_c}


def _auto_table():
    """The calibration table (``chainrule.backends._auto_table.TABLE``); empty if missing."""
    try:
        from ._auto_table import TABLE
    except ImportError:
        return {}
    return TABLE


# --------------------------------------------------------------------------- this machine, first use
def current_table():
    """This machine's calibration (``chainrule bench --calibrate``, see ``chainrule._wisdom``)
    when there is a usable one, else the shipped table."""
    return _wisdom.table(_auto_table())


def seconds_per_step(layer_dims, m, dtype, table, threads=None, batch_norm=False):
    """``{backend: seconds per step}`` of the table's nearest cell(s) (their median when
    ``m`` is unknown)."""
    row = _nearest_row(layer_dims, m, np.dtype(dtype).name, table, threads, batch_norm)
    key = ("seconds", id(row))
    found = _rows.get(key)
    if found is not None and found[0] is row:
        return dict(found[1])
    names = {b for c in row for b in c["seconds"]}
    seconds = {b: float(np.median([c["seconds"][b] for c in row if b in c["seconds"]]))
               for b in names}
    _rows[key] = (row, seconds)
    return dict(seconds)


def _first_use_cost(backend):
    costs = _wisdom.first_use_seconds(_coldstart.DEFAULT_FIRST_USE_SECONDS)
    return _coldstart.first_use_seconds(backend, costs)


def choose(layer_dims, m, dtype, load, backends, *, steps=None, table=None, threads=None,
           batch_norm=False):
    """``backend="auto"``: the table's pick (this machine's calibration, else the shipped
    one) among the backends that ``load``, passing over one whose first use in this process
    (numba: compiling or loading its cache) costs more than ``steps`` steps would save
    (``chainrule._coldstart``; ``steps=None``: nothing to save). A backend with a first-use
    cost is not even imported unless it is chosen."""
    table = current_table() if table is None else table
    deferred = [b for b in backends if b in _coldstart.DEFAULT_FIRST_USE_SECONDS
                and _coldstart.installed(b) and _first_use_cost(b) > 0.0]
    candidates = [b for b in backends if b in deferred or load(b)]
    seconds = seconds_per_step(layer_dims, m, dtype, table, threads, batch_norm)
    while True:
        pick = _coldstart.choose(
            candidates, lambda c: auto_rule(layer_dims, m, dtype, c, table=table,
                                            threads=threads, batch_norm=batch_norm),
            seconds, steps, _first_use_cost)
        if pick not in deferred or load(pick):
            return pick
        candidates.remove(pick)  # found, but its import failed
