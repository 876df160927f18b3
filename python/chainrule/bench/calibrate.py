"""The calibration behind ``backend="auto"``: the shipped table and this machine's wisdom.

``calibrate`` times every available backend on a grid of networks ``[w] * (depth + 1) +
[1]`` (ReLU, sigmoid output) over width ``w``, batch ``m`` and dtype, and on the step
workloads as they are. ``measure="fit"`` (the default) times what users run: seconds per
mini-batch step of ``Network.fit`` with Adam (mini-batches of ``m`` over ``FIT_BATCHES * m``
examples, one epoch per sample, everything ``fit`` does per epoch included);
``measure="step"`` times the single full-batch step alone (``training.step.train_step``).
``first_use_seconds`` measures what numba's first use costs a first fit (cold and warm cache), in fresh interpreters.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from .._threads import usable_cpus
from ..backends import auto
from ..backends import registry as _dispatch
from .env import cpu_model, load_average, threads_limited, versions
from .peers import Chainrule, Implementation
from .timing import time_interleaved
from .workloads import (QUICK_WORKLOADS, TRAIN_WORKLOADS, WORKLOADS, make_problem,
                        workload_problem)

CALIBRATION_GRID = dict(widths=(4, 16, 64, 256, 1024), ms=(16, 64, 256, 1024),
                        dtypes=("float64", "float32"), depth=3, workloads=tuple(WORKLOADS),
                        fit_workloads=tuple(TRAIN_WORKLOADS))
QUICK_CALIBRATION_GRID = dict(widths=(4, 64), ms=(16, 256), dtypes=("float64", "float32"),
                              depth=2, workloads=QUICK_WORKLOADS,
                              fit_workloads=tuple(TRAIN_WORKLOADS))

#: Mini-batches per epoch when ``measure="fit"``.
FIT_BATCHES = 8


class FitSteps(Implementation):
    """``Network.fit`` for ``epochs`` epochs of ``batches`` Adam mini-batches of the
    problem's ``m`` (the data are the problem's columns repeated; ``batch_norm``: on every
    hidden layer); ``step()`` runs that fit."""

    kind = "chainrule"
    trains = False

    def __init__(self, backend, batch_norm=False, batches=FIT_BATCHES, epochs=1):
        self.backend, self.batch_norm = backend, batch_norm
        self.batches, self.epochs = batches, epochs
        self.name = f"chainrule[{backend}] fit"

    def setup(self, problem):
        from ..model import Network

        self.p = problem
        self.X = np.tile(problem.X, (1, self.batches))
        self.Y = np.tile(problem.Y, (1, self.batches))
        self.m = problem.m
        self.net = Network(list(problem.layer_dims), hidden=problem.hidden,
                           output=problem.output, dtype=problem.dtype.name,
                           backend=self.backend, seed=0, batch_norm=self.batch_norm)

    def step(self):
        self.net.fit(self.X, self.Y, epochs=self.epochs, learning_rate=1e-3, optimizer="adam",
                     mini_batch_size=self.m, progress=False)


def _median_seconds(problem, backends, repeats, target_s, measure="fit", batch_norm=False,
                    batches=FIT_BATCHES, epochs=1):
    """``{backend: median seconds per step}`` for ``problem``, backends interleaved
    (``measure="fit"``: fits of ``epochs`` epochs of ``batches`` mini-batches)."""
    per_call = batches * epochs if measure == "fit" else 1
    impls = []
    for b in backends:
        impl = FitSteps(b, batch_norm, batches, epochs) if measure == "fit" else Chainrule(b)
        impl.setup(problem)
        impls.append(impl)
    times = time_interleaved(impls, repeats, target_s)
    return {i.backend: float(np.median(times[i.name])) / per_call for i in impls}


#: The thread counts the ``bench --train`` workloads are calibrated at (0: the libraries'
#: defaults, what a fit runs on unless told otherwise).
FIT_THREADS = (1, 0)


# One backend's fit steps of one workload at the libraries' default threads, alone in a fresh
# interpreter: interleaved in one process, two backends' BLAS pools (NumPy's OpenBLAS for c
# and numpy, SciPy's for numba) keep spinning threads on each other's cores (on 2 cores the
# fits ran 2-10x slower than alone).
_FIT_ROW = """
import json
from chainrule.bench.calibrate import _median_seconds
from chainrule.bench.workloads import TRAIN_WORKLOADS, make_problem
w = TRAIN_WORKLOADS[{name!r}]
p = make_problem(w.layer_dims, w.batch_size, w.dtype, w.hidden, w.output, threads=0)
print(json.dumps(_median_seconds(p, [{backend!r}], {repeats}, {target_s}, "fit",
                                 batch_norm=w.batch_norm, batches=-(-w.m // w.batch_size),
                                 epochs=w.epochs)))
"""


def _alone(name, backend, repeats, target_s):
    """``_FIT_ROW`` in a fresh interpreter: ``{backend: seconds}``."""
    import json

    code = _FIT_ROW.format(name=name, backend=backend, repeats=repeats, target_s=target_s)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=900, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def fit_networks(workloads=tuple(TRAIN_WORKLOADS), threads=FIT_THREADS, backends=None,
                 repeats=5, target_s=0.02, log=print):
    """The ``bench --train`` workloads as ``auto`` meets them: seconds per mini-batch step of
    their ``Network.fit`` (Adam, the workload's batch size, batches per epoch, epochs and
    batch norm, so a fit's own cost is spread over its steps) at each thread count
    (one thread: backends interleaved; the default threads: each backend alone in a fresh
    interpreter): ``networks`` rows that also say ``batch_norm`` and ``threads``."""
    backends = backends or _dispatch.available_backends()
    rows = []
    for n in threads:
        count = n or usable_cpus()
        with threads_limited(n):
            for name in workloads:
                w = TRAIN_WORKLOADS[name]
                if n == 1:
                    problem = make_problem(w.layer_dims, w.batch_size, w.dtype, w.hidden,
                                           w.output, threads=n)
                    seconds = _median_seconds(problem, backends, repeats, target_s, "fit",
                                              batch_norm=w.batch_norm,
                                              batches=-(-w.m // w.batch_size),
                                              epochs=w.epochs)
                else:
                    seconds = {}
                    for b in backends:
                        seconds.update(_alone(name, b, repeats, target_s))
                rows.append(dict(layer_dims=list(w.layer_dims), m=w.batch_size, dtype=w.dtype,
                                 batch_norm=bool(w.batch_norm), threads=count, workload=name,
                                 seconds=seconds))
                log(f"{name} ({count} thread{'s' if count > 1 else ''}): " + "  ".join(
                    f"{b} {s * 1e6:9.1f} µs" for b, s in seconds.items()))
    return rows


def calibrate(grid=CALIBRATION_GRID, repeats=7, target_s=0.002, threads=1, backends=None,
              log=print, note="", measure="fit", fit_threads=FIT_THREADS):
    """Median seconds per step of each available backend for every ``(w, m, dtype)`` of the
    grid (``cells``), for the grid's step ``workloads`` as they are and (``measure="fit"``)
    for its ``fit_workloads`` (``bench --train``'s) at ``fit_threads`` (``networks``).

    Returns the table ``chainrule.backends._auto_table`` holds: ``{"backends": [...], "cells":
    [{"width", "m", "dtype", "seconds": {backend: median}}], "networks": [...], ...}``.
    """
    if measure not in ("fit", "step"):
        raise ValueError(f"measure must be 'fit' or 'step', got {measure!r}")
    backends = backends or _dispatch.available_backends()
    cells, networks = [], []
    with threads_limited(threads):
        for dtype in grid["dtypes"]:
            for w in grid["widths"]:
                for m in grid["ms"]:
                    dims = (w,) * (grid["depth"] + 1) + (1,)
                    problem = make_problem(dims, m, dtype, "relu", "sigmoid", threads=threads)
                    seconds = _median_seconds(problem, backends, repeats, target_s, measure)
                    cells.append(dict(width=w, m=m, dtype=dtype, seconds=seconds))
                    log(f"{dtype} width {w:5d} m {m:5d}: " + "  ".join(
                        f"{b} {s * 1e6:9.1f} µs" for b, s in seconds.items()))
        for name in grid.get("workloads", ()):
            problem = workload_problem(name, threads=threads)
            seconds = _median_seconds(problem, backends, repeats, target_s, measure)
            networks.append(dict(layer_dims=list(problem.layer_dims), m=problem.m,
                                 dtype=problem.dtype.name, seconds=seconds))
            log(f"{name}: " + "  ".join(f"{b} {s * 1e6:9.1f} µs" for b, s in seconds.items()))
    if measure == "fit" and fit_threads and grid.get("fit_workloads"):
        networks += fit_networks(grid["fit_workloads"], threads=fit_threads, backends=backends,
                                 repeats=max(3, repeats // 2 + 1), log=log)
    return dict(backends=list(backends), grid=dict(grid), threads=threads, cpu=cpu_model(),
                note=note, load=load_average(), versions=versions(), measure=measure,
                date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
                cells=cells, networks=networks)


# The main job (``python -m chainrule train``'s planar fit), short, in a fresh interpreter:
# the model's construction and its first fit, timed from before chainrule's import.
_FIRST_FIT = """
import time
t0 = time.perf_counter()
from chainrule import Network, datasets
X, Y = datasets.load_planar_dataset()
net = Network([2, 4, 1], hidden="tanh", output="sigmoid", init="xavier", backend={backend!r})
net.fit(X, Y, epochs=20, learning_rate=1.2, progress=False)
print(time.perf_counter() - t0)
"""


def _first_fit(backend, cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, CHAINRULE_WISDOM="0")
    out = subprocess.run([sys.executable, "-c", _FIRST_FIT.format(backend=backend)], env=env,
                         check=True, capture_output=True, text=True).stdout
    return float(out.split()[-1])


def first_use_seconds(backends=("numba",), repeats=1, baseline="c"):
    """``{backend: {"cold": s, "warm": s}}``: the main job's first fit (import and
    construction included) on ``backend`` with an empty numba cache, then with the cache it
    left, minus the same on ``baseline`` (C, compiled at install; NumPy without it), each in
    a fresh interpreter, the median of ``repeats``. A backend that does not import here is
    left out."""
    available = _dispatch.available_backends()
    baseline = baseline if baseline in available else "numpy"
    out = {}
    for backend in backends:
        if backend not in available:
            continue
        cold, warm = [], []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory(prefix="chainrule-compile-") as cache:
                base = _first_fit(baseline, cache)
                cold.append(_first_fit(backend, cache) - base)
                warm.append(_first_fit(backend, cache) - base)
        out[backend] = {"cold": max(float(np.median(cold)), 0.0),
                        "warm": max(float(np.median(warm)), 0.0)}
    return out


def rule_summary(table):
    """Lines saying, per cell, which backend ``auto`` picks and its speed-up over NumPy."""
    base = table.get("threads", 1)
    rows = [(c["dtype"], c["width"], c["m"], c["seconds"],
             (c["width"],) * (table["grid"]["depth"] + 1) + (1,), base, False)
            for c in table["cells"]]
    rows += [(c["dtype"], c.get("workload", str(c["layer_dims"])), c["m"], c["seconds"],
              c["layer_dims"], c.get("threads", base), c.get("batch_norm", False))
             for c in table.get("networks", ())]
    lines = ["| dtype | width (or network) | m | threads | batch norm | "
             + " | ".join(f"{b} µs" for b in table["backends"]) + " | auto picks |",
             "|---|---:|---:|---:|---|" + "---:|" * len(table["backends"]) + "---|"]
    for dtype, width, m, seconds, dims, threads, bn in rows:
        pick = auto.auto_rule(dims, m, np.dtype(dtype), table["backends"], table=table,
                              threads=threads, batch_norm=bn)
        why = ""
        if pick != "numpy" and seconds.get("numpy"):
            why = f" ({seconds[pick] / seconds['numpy']:.2f}× numpy's time)"
        elif len(seconds) > 1:
            why = f" (none at most {auto._AUTO_MARGIN:g}× numpy's time)"
        lines.append(f"| {dtype} | {width} | {m} | {threads} | {'yes' if bn else 'no'} | "
                     + " | ".join(
            f"{seconds[b] * 1e6:.1f}" for b in table["backends"]) + f" | {pick}{why} |")
    return "\n".join(lines)


def write_table(table, path):
    """Write the table as the Python module ``chainrule/backends/_auto_table.py`` (a literal)."""
    import pprint

    text = ('"""Measured seconds per training step behind ``backend="auto"``.\n\n'
            "Generated by ``python -m chainrule bench --calibrate --write``; do not edit by hand.\n"
            '"""\n\nTABLE = ' + pprint.pformat(table, width=100, sort_dicts=True) + "\n")
    with open(path, "w") as f:
        f.write(text)


#: A BLAS other than the C backend's default must take at most this fraction of the
#: default's time per step (geometric mean over the problems) to be taken instead.
C_BLAS_MARGIN = 0.9
C_BLAS_PROBLEMS = ("planar", "cat", "mnist-like")


def c_blas_choice(problems=C_BLAS_PROBLEMS, sources=("numpy", "scipy", "mkl"), rounds=7,
                  calls=5, threads=0, log=print):
    """Which BLAS the C backend should call on this machine, measured, never assumed.

    ``Network.step`` (the public single step) on each step workload of ``problems`` with
    each BLAS source that loads here (MKL only when the ``mkl`` wheel is installed), the
    sources switched in turn in ``rounds`` interleaved rounds of ``calls`` steps, at
    ``threads`` (0: the libraries' default threads, as users run). The default is the first
    source that loads in ``blas._BLAS_SOURCES``' order; another is picked only when its
    geometric-mean time per step is at most ``C_BLAS_MARGIN`` of the default's. Returns
    ``{"source", "reason", "seconds": {source: {problem: median s}}}``, or ``None`` when the
    C backend is not available."""
    if "c" not in _dispatch.available_backends():
        return None
    from ..backends import c as cb
    from ..backends.c import blas as cblas
    from ..model import Network

    before = cblas.current["source"]
    loaded = []
    for source in sources:
        try:
            cb.use_blas(source)
        except ImportError:
            continue
        loaded.append(source)
    if not loaded:
        cb.use_blas(before)
        return None
    steps = []
    for name in problems:
        p = workload_problem(name, threads=threads)
        net = Network(list(p.layer_dims), hidden=p.hidden, output=p.output,
                      dtype=p.dtype.name, backend="c", seed=0)
        net.parameters = p.parameters()
        steps.append((name, net, p))
    times = {s: {name: [] for name, _, _ in steps} for s in loaded}
    try:
        with threads_limited(threads):
            for r in range(rounds + 1):
                for i in range(len(loaded)):
                    source = loaded[(i + r) % len(loaded)]
                    cb.use_blas(source)
                    for name, net, p in steps:
                        t0 = time.perf_counter()
                        for _ in range(calls):
                            net.step(p.X, p.Y, 1e-6)
                        if r:  # the first round warms every library up
                            times[source][name].append((time.perf_counter() - t0) / calls)
    finally:
        cb.use_blas(before)
    seconds = {s: {name: float(np.median(t)) for name, t in per.items()}
               for s, per in times.items()}
    default = loaded[0]
    ratios = {s: {name: seconds[s][name] / seconds[default][name] for name in seconds[s]}
              for s in loaded}
    geomean = {s: float(np.exp(np.mean(np.log(list(r.values()))))) for s, r in ratios.items()}
    best = min(loaded, key=lambda s: geomean[s])
    pick = best if geomean[best] <= C_BLAS_MARGIN else default
    detail = "; ".join(f"{s} {geomean[s]:.2f}x (" + ", ".join(
        f"{name} {r:.2f}x" for name, r in ratios[s].items()) + ")" for s in loaded)
    if pick == default:
        reason = (f"{default} kept: no other BLAS took at most {C_BLAS_MARGIN:g}x its time per "
                  f"Network.step (geometric mean; {detail})")
    else:
        reason = (f"{pick} took {geomean[pick]:.2f}x {default}'s time per Network.step "
                  f"(geometric mean; {detail})")
    log(f"C backend BLAS: {pick} — {reason}")
    return dict(source=pick, reason=reason, seconds=seconds,
                threads=threads or "default")


# One layer's (n, n_prev, m), from a 2 x 64 product to 100 x 100 x 100.
THRESHOLD_SHAPES = ((1, 2, 64), (4, 2, 400), (8, 8, 64), (16, 16, 64), (20, 7, 209), (7, 5, 209),
                    (16, 16, 128), (32, 32, 32), (32, 32, 64), (64, 64, 64), (32, 32, 256),
                    (100, 100, 100))


def c_blas_threshold(rounds=5, sources=("numpy", "scipy", "mkl"), shapes=THRESHOLD_SHAPES,
                     dtypes=("float64", "float32"), log=print):
    """The C backend's cut-off between its own loops and a BLAS call, per BLAS source: one
    layer's forward and backward (with ``dZ_prev``), median µs over ``rounds`` interleaved
    rounds of 20 calls, loops (threshold ∞) against BLAS (threshold 0). What
    ``_MEASURED_THRESHOLD`` of the C backend was set from. A source that does not load is
    skipped. Returns a list of rows."""
    import time

    from ..backends import c as cb

    rows = []
    try:
        for source in sources:
            try:
                cb.use_blas(source)
            except ImportError:
                continue
            for dtype in dtypes:
                for n, n_prev, m in shapes:
                    rng = np.random.default_rng(0)
                    A = rng.standard_normal((n_prev, m)).astype(dtype)
                    W = rng.standard_normal((n, n_prev)).astype(dtype)
                    b = np.zeros((n, 1), dtype)
                    dZ = rng.standard_normal((n, m)).astype(dtype)
                    times = {"loops": [], "blas": []}
                    for _ in range(rounds):
                        for mode, threshold in (("loops", 10**18), ("blas", 0)):
                            cb.set_blas_threshold(threshold)
                            t0 = time.perf_counter()
                            for _ in range(20):
                                cb.dense_forward(A, W, b, "relu")
                                cb.dense_backward(dZ, A, W, A, "relu", "L", 0.0, None, False)
                            times[mode].append((time.perf_counter() - t0) / 20)
                    row = dict(blas=source, dtype=dtype, n=n, n_prev=n_prev, m=m,
                               macs=n * n_prev * m,
                               loops_us=float(np.median(times["loops"])) * 1e6,
                               blas_us=float(np.median(times["blas"])) * 1e6)
                    rows.append(row)
                    log(f"{source} {dtype} {n}x{n_prev}x{m} ({row['macs']} multiply-adds): "
                        f"loops {row['loops_us']:.1f} µs, BLAS {row['blas_us']:.1f} µs")
    finally:
        cb.use_blas("auto")
    return rows
