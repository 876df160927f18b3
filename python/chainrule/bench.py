"""``chainrule bench``: one training step of each workload, timed side by side.

In one process, interleaved (round robin over the implementations, many repeats), it
times a full-batch training step (forward, backward, SGD update) of:

- each available chainrule backend (its ``train_step`` op);
- NumPy written the course's way (``L_model_forward`` / ``L_model_backward`` /
  ``update_parameters``, ``dA0`` included);
- PyTorch on the CPU, JAX ``jit`` on the CPU and scikit-learn's ``MLPClassifier.partial_fit``
  (each optional: a missing one is reported as missing);
- the bare matrix products a step needs (the floor).

Before timing, every implementation takes one step from the same parameters and its
update is compared with the NumPy reference's; one that disagrees is reported and
not timed. ``--calibrate`` times the backends on a grid of shapes and writes the table
behind ``backend="auto"`` (see :func:`chainrule.backends.auto.auto_rule`).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import tracemalloc
from dataclasses import dataclass, field

import numpy as np

from . import _peers
from .backends import auto as _auto
from .backends import registry as _dispatch
from . import reference as ref


@dataclass(frozen=True)
class Workload:
    name: str
    layer_dims: tuple
    m: int
    dtype: str
    hidden: str
    output: str


# Keep in step with benchmarks/common.py (tests/test_bench.py checks that they agree).
WORKLOADS = {
    "planar": Workload("planar", (2, 4, 1), 400, "float64", "tanh", "sigmoid"),
    "cat": Workload("cat", (12288, 20, 7, 5, 1), 209, "float64", "relu", "sigmoid"),
    "mnist-like": Workload("mnist-like", (784, 128, 64, 10), 256, "float32", "relu", "softmax"),
    "wide": Workload("wide", (2048, 2048, 2048, 1), 512, "float32", "relu", "sigmoid"),
}
QUICK_WORKLOADS = ("planar", "mnist-like")
LEARNING_RATE = 0.01

# Relative error of each layer's update vs the reference, ||u - u_ref|| / ||u_ref||.
CHECK_RTOL = {"float64": 1e-7, "float32": 2e-3}

_LOSS = {"sigmoid": "binary_crossentropy", "softmax": "categorical_crossentropy"}


@dataclass
class Problem:
    """One workload's data and initial parameters (the course's layout), shared by all."""

    layer_dims: tuple
    X: np.ndarray
    Y: np.ndarray
    Ws: list
    bs: list
    hidden: str
    output: str
    learning_rate: float = LEARNING_RATE
    threads: int = 1
    activations: list = field(default_factory=list)
    loss: str = ""

    @property
    def dtype(self):
        return self.X.dtype

    @property
    def m(self):
        return self.X.shape[1]


def make_problem(layer_dims, m, dtype="float64", hidden="relu", output="sigmoid", seed=0,
                 threads=1, learning_rate=LEARNING_RATE):
    """Seeded inputs in [0, 1), labels (0/1 or one-hot), He (ReLU) or Xavier (tanh) weights
    and small random biases (so every ``db`` path is exercised from the first step)."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    n0, nL = layer_dims[0], layer_dims[-1]
    X = rng.random((n0, m)).astype(dtype)
    if output == "softmax":
        Y = np.zeros((nL, m), dtype=dtype)
        Y[rng.integers(0, nL, m), np.arange(m)] = 1
    else:
        Y = (rng.random((nL, m)) < 0.5).astype(dtype)
    params = ref.initialize_parameters(list(layer_dims), "he" if hidden == "relu" else "xavier",
                                       rng=rng, dtype=dtype)
    L = len(layer_dims) - 1
    Ws = [params[f"W{l}"] for l in range(1, L + 1)]
    bs = [(0.01 * rng.standard_normal((layer_dims[l], 1))).astype(dtype) for l in range(1, L + 1)]
    activations = [ref.parse_activation(hidden)] * (L - 1) + [ref.parse_activation(output)]
    return Problem(tuple(layer_dims), X, Y, Ws, bs, hidden, output, learning_rate, threads,
                   activations, _LOSS[output])


def workload_problem(name, threads=1, seed=0):
    w = WORKLOADS[name]
    return make_problem(w.layer_dims, w.m, w.dtype, w.hidden, w.output, seed, threads)


def reference_step(problem):
    """The parameters after one step, by the reference formulas (the oracle)."""
    L = len(problem.Ws)
    params = {}
    for l in range(1, L + 1):
        params[f"W{l}"], params[f"b{l}"] = problem.Ws[l - 1], problem.bs[l - 1]
    AL, caches = ref.model_forward(problem.X, params, problem.activations)
    grads = ref.model_backward(AL, problem.Y, caches, problem.activations, problem.loss)
    new = ref.update_parameters_with_gd(params, grads, problem.learning_rate)
    return ([new[f"W{l}"] for l in range(1, L + 1)], [new[f"b{l}"] for l in range(1, L + 1)])


def update_error(problem, Ws, bs, expected=None):
    """The largest relative error, over all ``W[l]`` and ``b[l]``, of an implementation's
    update ``new - old`` against the reference's."""
    Ws_ref, bs_ref = expected if expected is not None else reference_step(problem)
    worst = 0.0
    for old, new, new_ref in zip(problem.Ws + problem.bs, list(Ws) + list(bs),
                                 list(Ws_ref) + list(bs_ref)):
        new = np.asarray(new, dtype=np.float64)
        if new.shape != old.shape:
            return float("inf")
        u_ref = new_ref.astype(np.float64) - old
        u = new - old
        scale = np.linalg.norm(u_ref)
        err = np.linalg.norm(u - u_ref) / scale if scale else np.linalg.norm(u)
        worst = max(worst, float(err) if np.isfinite(err) else float("inf"))
    return worst


def check_implementation(impl, problem, expected=None):
    """One step from the problem's parameters; returns ``(ok, relative error)``.
    Leaves the implementation at the problem's parameters."""
    if not impl.trains:
        return True, float("nan")
    impl.set_params(problem.Ws, problem.bs)
    impl.step()
    Ws, bs = impl.get_params()
    err = update_error(problem, Ws, bs, expected)
    impl.set_params(problem.Ws, problem.bs)
    return err <= CHECK_RTOL[problem.dtype.name], err


# --------------------------------------------------------------------------- implementations
def implementation_names(include=None):
    """chainrule backends (as ``numpy``, ``numba``, ``c``) and peers (``course``, ``torch``,
    ``jax``, ``sklearn``, ``floor``), in table order."""
    names = list(_dispatch.BACKENDS) + list(_peers.PEERS)
    if include:
        unknown = set(include) - set(names)
        if unknown:
            raise ValueError(f"unknown implementation(s) {sorted(unknown)}; known: {names}")
        names = [n for n in names if n in include]
    return names


def make_implementation(name):
    if name in _dispatch.BACKENDS:
        if not _dispatch._load(name):
            raise ImportError(str(_dispatch.import_error(name)))
        return _peers.Chainrule(name)
    return _peers.PEERS[name]()


# --------------------------------------------------------------------------- timing
def _time_once(impl, k):
    t0 = time.perf_counter()
    for _ in range(k):
        impl.step()
    return (time.perf_counter() - t0) / k


def time_interleaved(impls, repeats, target_s):
    """Seconds per step: ``{name: array of repeats}``. Each sample runs ``k`` steps, ``k``
    chosen so a sample lasts about ``target_s``; the order rotates every round so no
    implementation always runs right after the same one."""
    inner = {}
    for impl in impls:
        impl.step()  # warm-up (caches, JIT, thread pools)
        t = min(_time_once(impl, 1) for _ in range(3))
        inner[impl.name] = max(1, int(target_s / max(t, 1e-9)))
    samples = {impl.name: [] for impl in impls}
    n = len(impls)
    for r in range(repeats):
        for i in range(n):
            impl = impls[(i + r) % n]
            samples[impl.name].append(_time_once(impl, inner[impl.name]))
    return {name: np.array(s) for name, s in samples.items()}


def peak_memory(impl, steps=2):
    """Peak bytes allocated during one step, as ``tracemalloc`` sees them (NumPy's arrays
    included); ``None`` for implementations whose allocator it cannot see."""
    if not impl.traced:
        return None
    impl.step()
    tracemalloc.start()
    try:
        peak = 0
        for _ in range(steps):
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            impl.step()
            peak = max(peak, tracemalloc.get_traced_memory()[1] - base)
    finally:
        tracemalloc.stop()
    return peak


# --------------------------------------------------------------------------- environment
def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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


def _load_average():
    """The 1-minute load average (other processes share the cores), or None."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _configure_numba_threads(threads):
    """numba starts its worker pool with NUMBA_NUM_THREADS threads, read at import; idle
    workers of a larger pool than the threads used were measured to slow PyTorch's small
    steps in the same process ~20x (planar: 6 ms instead of 0.3 ms), so set it first."""
    if "numba" not in sys.modules:
        os.environ.setdefault("NUMBA_NUM_THREADS", str(threads))


def _pin_to_cpus(threads):
    """Restrict this thread (and the threads it starts later, such as XLA's pool, which
    ignores every thread setting) to ``threads`` CPUs. Returns the previous set, or None."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if threads >= len(allowed):
        return None
    os.sched_setaffinity(0, allowed[:threads])
    return set(allowed)


def _limit_threads(threads):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    limiter = threadpool_limits(limits=threads)
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return limiter


def versions(impls):
    from . import __version__

    out = {"python": platform.python_version(), "numpy": np.__version__,
           "chainrule": __version__}
    for impl in impls:
        if impl.kind == "peer" and not isinstance(impl, _peers.CourseNumpy):
            out[impl.name.split()[0]] = impl.version()
    if "numba" in sys.modules:
        out["numba"] = sys.modules["numba"].__version__
    return out


# --------------------------------------------------------------------------- the comparison
@dataclass
class Row:
    workload: str
    name: str
    kind: str
    status: str  # "ok", "missing: ...", "wrong: ..."
    median: float = float("nan")
    q1: float = float("nan")
    q3: float = float("nan")
    best: float = float("nan")
    peak: int | None = None
    error: float = float("nan")


def compare(workloads=QUICK_WORKLOADS, include=None, repeats=15, target_s=0.002, threads=1,
            log=print):
    """Check, then time, every implementation on every workload. Returns ``(rows, info)``."""
    _configure_numba_threads(threads)
    limiters, rows, used = [], [], []
    pinned = _pin_to_cpus(threads)
    try:
        for wname in workloads:
            problem = workload_problem(wname, threads=threads)
            expected = reference_step(problem)
            ready, wrows = [], {}
            for name in implementation_names(include):
                try:
                    impl = make_implementation(name)
                    impl.setup(problem)
                except Exception as exc:  # a peer that is not installed or will not build
                    label = name if name not in _dispatch.BACKENDS else f"chainrule[{name}]"
                    rows.append(Row(wname, label, "missing", f"missing: {type(exc).__name__}: "
                                                              f"{str(exc).splitlines()[0][:80]}"))
                    continue
                ok, err = check_implementation(impl, problem, expected)
                row = Row(wname, impl.name, impl.kind, "ok" if ok else
                          f"wrong: update differs from the reference by {err:.2e} (relative)",
                          error=err)
                wrows[impl.name] = row
                rows.append(row)
                if ok:
                    ready.append(impl)
                    used.append(impl)
            # Peers load their own BLAS/OpenMP copies at setup: limit them all, now.
            limiters.append(_limit_threads(threads))
            log(f"{wname}: timing {', '.join(i.name for i in ready)} ({repeats} rounds)")
            times = time_interleaved(ready, repeats, target_s)
            for impl in ready:
                t = times[impl.name]
                row = wrows[impl.name]
                row.median = float(np.median(t))
                row.q1, row.q3 = (float(q) for q in np.percentile(t, [25, 75]))
                row.best = float(np.min(t))
                row.peak = peak_memory(impl)
        now = datetime.datetime.now(datetime.timezone.utc)
        info = dict(load=_load_average(), date=now.strftime("%Y-%m-%d %H:%M UTC"),
                    pinned=pinned is not None,
                    cpu=cpu_model(), cores=os.cpu_count(), platform=platform.platform(),
                    threads=threads, repeats=repeats, versions=versions(used), blas=blas_info())
    finally:
        for limiter in reversed(limiters):
            if limiter is not None:
                limiter.restore_original_limits()
        if pinned is not None:
            os.sched_setaffinity(0, pinned)
    return rows, info


def _us(seconds):
    if not np.isfinite(seconds):
        return "—"
    us = seconds * 1e6
    return f"{us:,.0f}" if us >= 100 else f"{us:.1f}"


def _ratio(a, b):
    return f"{a / b:.2f}×" if np.isfinite(a) and np.isfinite(b) and b > 0 else "—"


def markdown(rows, info):
    """The comparison as a markdown table with its date, machine and versions."""
    lines = [f"### chainrule bench — {info['date']}", "",
             f"- machine: {info['cpu']}, {info['cores']} logical cores; {info['platform']}"
             + (f"; load average {info['load']:.1f} at the end" if info.get("load") is not None
                else ""),
             f"- threads: {info['threads']} (BLAS limited with threadpoolctl, "
             "torch.set_num_threads, NUMBA_NUM_THREADS"
             + ("; the process pinned to as many CPUs, for XLA's pool)" if info.get("pinned")
                else ")"),
             "- versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items())]
    blas = sorted({f"{b['api']} {b['version']} from {b['owner']} ({b['lib']}, {b['threads']} "
                   f"threads)" for b in info["blas"]})
    lines.append("- BLAS/OpenMP loaded: " + ("; ".join(blas) if blas else "unknown"))
    lines.append(f"- one full-batch step (forward, backward, SGD update), median of "
                 f"{info['repeats']} interleaved samples; IQR = interquartile range; min = fastest "
                 "sample (the least disturbed by other processes); ratios are of medians; peak = "
                 "tracemalloc peak per step")
    lines.append("")
    lines.append("| workload | implementation | µs/step (median) | IQR µs | min µs | "
                 "× numpy course | × best peer | × GEMM floor | peak MiB/step | check |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    by_workload = {}
    for r in rows:
        by_workload.setdefault(r.workload, []).append(r)
    for wname, wrows in by_workload.items():
        w = WORKLOADS.get(wname)
        label = (f"{wname} {list(w.layer_dims)} m={w.m} {w.dtype.replace('float', 'f')}"
                 if w else wname)
        timed = [r for r in wrows if np.isfinite(r.median)]
        course = next((r.median for r in timed if r.name == _peers.CourseNumpy.name), float("nan"))
        floor = next((r.median for r in timed if r.kind == "floor"), float("nan"))
        peers = [r.median for r in timed if r.kind == "peer"]
        best_peer = min(peers) if peers else float("nan")
        for r in wrows:
            if r.status.startswith("missing"):
                dashes = " — |" * 7
                lines.append(f"| {label} | {r.name} |{dashes} {r.status} |")
                continue
            peak = "n/a (not traced)" if r.peak is None and r.status == "ok" else (
                f"{r.peak / 2**20:.2f}" if r.peak is not None else "—")
            check = ("no update to check" if r.kind == "floor" else
                     f"ok (rel. err {r.error:.1g})" if r.status == "ok" else r.status)
            lines.append(f"| {label} | {r.name} | {_us(r.median)} | {_us(r.q3 - r.q1)} | "
                         f"{_us(r.best)} | "
                         f"{_ratio(r.median, course)} | {_ratio(r.median, best_peer)} | "
                         f"{_ratio(r.median, floor)} | {peak} | {check} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- calibration for auto
CALIBRATION_GRID = dict(widths=(4, 16, 64, 256, 1024), ms=(16, 64, 256, 1024),
                        dtypes=("float64", "float32"), depth=3, workloads=tuple(WORKLOADS))
QUICK_CALIBRATION_GRID = dict(widths=(4, 64), ms=(16, 256), dtypes=("float64", "float32"),
                              depth=2, workloads=QUICK_WORKLOADS)


def _median_seconds(problem, backends, repeats, target_s):
    """``{backend: median seconds per train_step}`` for ``problem``, backends interleaved."""
    impls = []
    for b in backends:
        impl = _peers.Chainrule(b)
        impl.setup(problem)
        impls.append(impl)
    times = time_interleaved(impls, repeats, target_s)
    return {i.backend: float(np.median(times[i.name])) for i in impls}


def calibrate(grid=CALIBRATION_GRID, repeats=7, target_s=0.002, threads=1, backends=None,
              log=print, note=""):
    """Median seconds per ``train_step`` of each available backend on networks
    ``[w] * (depth + 1) + [1]`` (ReLU, sigmoid output) for every ``(w, m, dtype)`` of the
    grid, and on the grid's ``workloads`` as they are (``networks``).

    Returns the table ``chainrule.backends._auto_table`` holds: ``{"backends": [...], "cells":
    [{"width", "m", "dtype", "seconds": {backend: median}}]}``.
    """
    _configure_numba_threads(threads)
    backends = backends or _dispatch.available_backends()
    limiter = _limit_threads(threads)
    pinned = _pin_to_cpus(threads)
    cells = []
    try:
        for dtype in grid["dtypes"]:
            for w in grid["widths"]:
                for m in grid["ms"]:
                    dims = (w,) * (grid["depth"] + 1) + (1,)
                    problem = make_problem(dims, m, dtype, "relu", "sigmoid", threads=threads)
                    seconds = _median_seconds(problem, backends, repeats, target_s)
                    cells.append(dict(width=w, m=m, dtype=dtype, seconds=seconds))
                    log(f"{dtype} width {w:5d} m {m:5d}: " + "  ".join(
                        f"{b} {s * 1e6:9.1f} µs" for b, s in seconds.items()))
        networks = []
        for name in grid.get("workloads", ()):
            problem = workload_problem(name, threads=threads)
            seconds = _median_seconds(problem, backends, repeats, target_s)
            networks.append(dict(layer_dims=list(problem.layer_dims), m=problem.m,
                                 dtype=problem.dtype.name, seconds=seconds))
            log(f"{name}: " + "  ".join(f"{b} {s * 1e6:9.1f} µs" for b, s in seconds.items()))
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
        if pinned is not None:
            os.sched_setaffinity(0, pinned)
    return dict(backends=list(backends), grid=dict(grid), threads=threads, cpu=cpu_model(),
                note=note, load=_load_average(), versions=versions([]),
                date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
                cells=cells, networks=networks)


def rule_summary(table):
    """Lines saying, per cell, which backend ``auto`` picks and its speed-up over NumPy."""
    rows = [(c["dtype"], c["width"], c["m"], c["seconds"],
             (c["width"],) * (table["grid"]["depth"] + 1) + (1,)) for c in table["cells"]]
    rows += [(c["dtype"], str(c["layer_dims"]), c["m"], c["seconds"], c["layer_dims"])
             for c in table.get("networks", ())]
    lines = ["| dtype | width (or network) | m | "
             + " | ".join(f"{b} µs" for b in table["backends"]) + " | auto picks |",
             "|---|---:|---:|" + "---:|" * len(table["backends"]) + "---|"]
    for dtype, width, m, seconds, dims in rows:
        pick = _auto.auto_rule(dims, m, np.dtype(dtype), table["backends"], table=table)
        lines.append(f"| {dtype} | {width} | {m} | " + " | ".join(
            f"{seconds[b] * 1e6:.1f}" for b in table["backends"]) + f" | {pick} |")
    return "\n".join(lines)


def write_table(table, path):
    """Write the table as the Python module ``chainrule/backends/_auto_table.py`` (a literal)."""
    import pprint

    text = ('"""Measured seconds per training step behind ``backend="auto"``.\n\n'
            "Generated by ``python -m chainrule bench --calibrate --write``; do not edit by hand.\n"
            '"""\n\nTABLE = ' + pprint.pformat(table, width=100, sort_dicts=True) + "\n")
    with open(path, "w") as f:
        f.write(text)


# --------------------------------------------------------------------------- CLI
def add_parser(subparsers):
    p = subparsers.add_parser(
        "bench", help="time one training step against NumPy, PyTorch, JAX and scikit-learn",
        description="Time one full-batch training step of each workload for every chainrule "
                    "backend and the peers that are installed, interleaved in one process, after "
                    "checking that they all compute the same update; print a markdown table. "
                    "With --calibrate, measure the rule behind backend='auto'.")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="small workloads (planar, mnist-like), few repeats: seconds (default)")
    mode.add_argument("--full", action="store_true",
                      help="all workloads (planar, cat, mnist-like, wide), more repeats: minutes")
    p.add_argument("--workloads", default=None,
                   help=f"comma-separated subset of {', '.join(WORKLOADS)}")
    p.add_argument("--impls", default=None,
                   help="comma-separated subset of " + ", ".join(implementation_names()))
    p.add_argument("--repeats", type=int, default=None,
                   help="interleaved rounds (default 15 quick, 41 full)")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS/torch/XLA/numba threads (default 1: repeatable numbers)")
    p.add_argument("--output", "-o", default="chainrule-bench.md",
                   help="markdown file to write (default chainrule-bench.md; '-' for none)")
    p.add_argument("--calibrate", action="store_true",
                   help="time the backends on a grid of (width, m, dtype) and print the rule "
                        "behind backend='auto'")
    p.add_argument("--note", default="", help="with --calibrate: a note stored in the table "
                                               "(e.g. which commits were measured)")
    p.add_argument("--write", nargs="?", const="", default=None, metavar="PATH",
                   help="with --calibrate: write the table (default: chainrule/backends/_auto_table.py "
                        "of this installation)")
    p.set_defaults(func=run_bench)


def run_bench(args):
    if args.threads < 1:
        print("error: --threads must be >= 1", file=sys.stderr)
        return 2
    if args.calibrate:
        grid = CALIBRATION_GRID if args.full else QUICK_CALIBRATION_GRID
        table = calibrate(grid, repeats=args.repeats or (9 if args.full else 5),
                          threads=args.threads, note=args.note)
        print(rule_summary(table))
        if args.write is not None:
            path = args.write or _auto.TABLE_PATH
            write_table(table, path)
            print(f"wrote {path}")
        return 0
    names = [n for n in (args.workloads or "").split(",") if n] or (
        list(WORKLOADS) if args.full else list(QUICK_WORKLOADS))
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        print(f"error: unknown workload(s) {unknown}; known: {list(WORKLOADS)}", file=sys.stderr)
        return 2
    include = [n for n in (args.impls or "").split(",") if n] or None
    try:
        implementation_names(include)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    repeats = args.repeats or (41 if args.full else 15)
    target = 0.02 if args.full else 0.002
    rows, info = compare(names, include, repeats, target, args.threads,
                         log=lambda s: print(s, file=sys.stderr))
    text = markdown(rows, info)
    print(text)
    if args.output and args.output != "-":
        with open(args.output, "w") as f:
            f.write(text)
        print(f"wrote {args.output}", file=sys.stderr)
    wrong = [r for r in rows if r.status.startswith("wrong")]
    return 1 if wrong else 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m chainrule.bench")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub)
    args = parser.parse_args(["bench"] + list(sys.argv[1:] if argv is None else argv))
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
