"""The step comparison: one full-batch training step of each workload, side by side.

In one process, interleaved (round robin over the implementations, many repeats), it
times a full-batch training step (forward, backward, SGD update) of:

- each available chainrule backend (its single step, ``training.step.train_step``);
- NumPy written the course's way (``L_model_forward`` / ``L_model_backward`` /
  ``update_parameters``, ``dA0`` included);
- PyTorch on the CPU, JAX ``jit`` on the CPU and scikit-learn's ``MLPClassifier.partial_fit``
  (each optional: a missing one is reported as missing);
- the bare matrix products a step needs (the floor).

Before timing, every implementation takes one step from the same parameters and its
update is compared with the NumPy reference's; one that disagrees is reported and
not timed.
"""

from __future__ import annotations

import datetime
import os
import platform
from dataclasses import dataclass

import numpy as np

from ..backends import registry as _dispatch
from .env import blas_info, cpu_model, load_average, threads_limited, versions
from .floor import GemmFloor
from .peers import PEERS, Chainrule, CourseNumpy
from .timing import peak_memory, time_interleaved
from .workloads import CHECK_RTOL, QUICK_WORKLOADS, WORKLOADS, reference_step, update_error, \
    workload_problem

#: Every implementation of the step comparison but the backends, in table order.
STEP_IMPLEMENTATIONS = dict(PEERS, floor=GemmFloor)


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
    names = list(_dispatch.BACKENDS) + list(STEP_IMPLEMENTATIONS)
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
        return Chainrule(name)
    return STEP_IMPLEMENTATIONS[name]()


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
    rows, used = [], []
    with threads_limited(threads) as limits:
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
            limits.relimit()  # peers load their own BLAS/OpenMP copies at setup
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
        info = dict(load=load_average(), date=now.strftime("%Y-%m-%d %H:%M UTC"),
                    pinned=limits.pinned is not None,
                    cpu=cpu_model(), cores=os.cpu_count(), platform=platform.platform(),
                    threads=threads, repeats=repeats, versions=versions(used), blas=blas_info())
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
        course = next((r.median for r in timed if r.name == CourseNumpy.name), float("nan"))
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

