"""Time one training step (forward + backward + SGD) of the C backend against NumPy and PyTorch.

A plain script, not an asv benchmark. Every variant runs interleaved in one process (one
step of each per round), and the medians over the rounds are reported with ratios, and
which BLAS each variant ran (threadpoolctl)::

    python benchmarks/c_step.py                 # cat and wide workloads, small sizes
    python benchmarks/c_step.py --rounds 30 --workloads cat
    python benchmarks/c_step.py --threshold     # C loops vs BLAS per layer (the cut-off)

Variants: ``numpy`` (the numpy backend's train_step), ``c/<blas>`` (the c backend with each
BLAS source that loads here: mkl, scipy, numpy), ``torch`` (autograd, same network, X not
requiring grad), ``gemm/openblas`` and ``gemm/torch`` (only the step's matrix products, via
NumPy and via torch: the floor each BLAS sets).
"""

from __future__ import annotations

import os
import sys

# Several thread pools share 2 cores here (NumPy's OpenBLAS, SciPy's, MKL's OpenMP, torch's
# OpenMP). OpenMP runtimes spin for 200 ms after each parallel region by default, which takes
# the core the next variant needs; interleaved timings would then measure who spins. So the
# pools sleep at once unless --spin is given (set before any of them loads).
if "--spin" not in sys.argv:
    os.environ.setdefault("KMP_BLOCKTIME", "0")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_info

from chainrule.backends import c as cb
from chainrule import reference as ref
from chainrule.backends.registry import Ops

WORKLOADS = {
    # name: (layer_dims, m, hidden, output, dtype)
    "cat": ([12288, 20, 7, 5, 1], 209, "relu", "sigmoid", "float64"),
    "wide": ([2048, 2048, 2048, 1], 512, "relu", "sigmoid", "float32"),
    "planar": ([2, 4, 1], 400, "tanh", "sigmoid", "float64"),
    "small": ([2, 20, 7, 5, 1], 300, "relu", "sigmoid", "float64"),
    "mid32": ([784, 128, 64, 10], 1000, "relu", "sigmoid", "float32"),
    "mid64": ([784, 128, 64, 10], 256, "relu", "sigmoid", "float64"),
}


def make_problem(dims, m, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((dims[0], m)).astype(dtype)
    Y = (rng.random((dims[-1], m)) < 0.5).astype(dtype)
    params = ref.initialize_parameters(dims, "he", rng=rng, dtype=dtype)
    L = len(dims) - 1
    Ws = [params[f"W{l}"] for l in range(1, L + 1)]
    bs = [params[f"b{l}"] for l in range(1, L + 1)]
    return X, Y, Ws, bs


def chainrule_step(backend, X, Y, Ws, bs, activations, lr=1e-4):
    ops = Ops(backend)
    Ws, bs = [W.copy() for W in Ws], [b.copy() for b in bs]

    def step():
        ops.train_step(X, Y, Ws, bs, activations, "binary_crossentropy", lr)
    return step


def c_step(source, X, Y, Ws, bs, activations, lr=1e-4):
    inner = chainrule_step("c", X, Y, Ws, bs, activations, lr)

    def step():
        cb.use_blas(source)
        inner()
    return step


def torch_step(X, Y, Ws, bs, hidden, lr=1e-4):
    import torch
    tX, tY = torch.from_numpy(X), torch.from_numpy(Y)
    tWs = [torch.from_numpy(W.copy()).requires_grad_() for W in Ws]
    tbs = [torch.from_numpy(b.copy()).requires_grad_() for b in bs]
    g = {"relu": torch.relu, "tanh": torch.tanh}[hidden]

    def step():
        A = tX
        for l, (W, b) in enumerate(zip(tWs, tbs), 1):
            Z = torch.addmm(b, W, A)
            A = g(Z) if l < len(tWs) else Z
        # sigmoid output + binary cross-entropy, as BCE-with-logits (PyTorch's fused pair)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(A, tY)
        loss.backward()
        with torch.no_grad():
            for p in tWs + tbs:
                p -= lr * p.grad
                p.grad = None
    return step


def gemm_floor(X, Ws, matmul):
    """The step's products: W A_prev per layer, dZ A_prev^T per layer, W^T dZ for l >= 2."""
    As = [X]
    for W in Ws:
        As.append(np.ascontiguousarray(W @ As[-1]))
    dZs = [np.ones_like(A) for A in As[1:]]
    ops = []
    for l, W in enumerate(Ws, 1):
        ops.append((W, As[l - 1]))
    for l, W in enumerate(Ws, 1):
        ops.append((dZs[l - 1], np.ascontiguousarray(As[l - 1].T)))
        if l >= 2:
            ops.append((np.ascontiguousarray(W.T), dZs[l - 1]))
    return lambda: [matmul(a, b) for a, b in ops]


def run_workload(name, rounds, variants_wanted, args_threads=None):
    dims, m, hidden, output, dtype = WORKLOADS[name]
    L = len(dims) - 1
    activations = [(hidden, 0.0)] * (L - 1) + [(output, 0.0)]
    X, Y, Ws, bs = make_problem(dims, m, dtype)
    variants = {"numpy": chainrule_step("numpy", X, Y, Ws, bs, activations)}
    for source in ("numpy", "scipy", "mkl"):
        if variants_wanted and f"c/{source}" not in variants_wanted:
            continue  # loading a BLAS adds a thread pool that can stall the others
        try:
            cb.use_blas(source)
        except ImportError:
            continue
        variants[f"c/{source}"] = c_step(source, X, Y, Ws, bs, activations)
    try:
        if variants_wanted and not {"torch", "gemm/torch"} & set(variants_wanted):
            raise ImportError("torch not asked for")
        import torch
        torch.set_num_threads(args_threads or 2)
        variants["torch"] = torch_step(X, Y, Ws, bs, hidden)
        variants["gemm/torch"] = gemm_floor(
            X, Ws, lambda a, b: torch.mm(torch.from_numpy(a), torch.from_numpy(b)))
    except ImportError:
        pass
    variants["gemm/openblas"] = gemm_floor(X, Ws, np.matmul)
    if args_threads:  # again: the BLAS libraries loaded since main() set the limit
        from threadpoolctl import threadpool_limits
        threadpool_limits(args_threads)
    if variants_wanted:
        variants = {k: v for k, v in variants.items() if k in variants_wanted}
    for fn in variants.values():  # warm-up: first-touch, thread pools, caches
        fn()
        fn()
    times = {k: [] for k in variants}
    for _ in range(rounds):
        for k, fn in variants.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    cb.use_blas("auto")
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    return dict(workload=name, dims=dims, m=m, dtype=dtype, rounds=rounds, median_ms=med,
                ratio_to_torch={k: v / med["torch"] for k, v in med.items()} if "torch" in med
                else None,
                ratio_to_numpy={k: v / med["numpy"] for k, v in med.items()} if "numpy" in med
                else None)


def threshold_sweep(rounds):
    """One layer's forward + backward (with dZ_prev) through the C loops and through BLAS."""
    rows = []
    for source in ("mkl", "scipy"):
        try:
            cb.use_blas(source)
        except ImportError:
            continue
        for dtype in ("float64", "float32"):
            for n, n_prev, m in [(1, 2, 64), (4, 2, 400), (8, 8, 64), (16, 16, 64),
                                 (20, 7, 209), (7, 5, 209), (16, 16, 128), (32, 32, 32),
                                 (32, 32, 64), (64, 64, 64), (32, 32, 256), (100, 100, 100)]:
                rng = np.random.default_rng(0)
                A = rng.standard_normal((n_prev, m)).astype(dtype)
                W = rng.standard_normal((n, n_prev)).astype(dtype)
                b = np.zeros((n, 1), dtype)
                dZ = rng.standard_normal((n, m)).astype(dtype)

                def layer():
                    cb.dense_forward(A, W, b, "relu")
                    cb.dense_backward(dZ, A, W, A, "relu", "L", 0.0, None, False)
                t = {"loops": [], "blas": []}
                for _ in range(rounds):
                    for mode, thr in (("loops", 10**18), ("blas", 0)):
                        cb.set_blas_threshold(thr)
                        t0 = time.perf_counter()
                        for _ in range(20):
                            layer()
                        t[mode].append((time.perf_counter() - t0) / 20)
                med = {k: statistics.median(v) * 1e6 for k, v in t.items()}
                rows.append(dict(blas=source, dtype=dtype, n=n, n_prev=n_prev, m=m,
                                 macs=n * n_prev * m, loops_us=round(med["loops"], 1),
                                 blas_us=round(med["blas"], 1)))
    cb.use_blas("auto")
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--workloads", nargs="*", default=list(WORKLOADS))
    p.add_argument("--variants", nargs="*", default=None)
    p.add_argument("--threshold", action="store_true")
    p.add_argument("--spin", action="store_true",
                   help="leave the OpenMP runtimes' spin-wait at their defaults")
    p.add_argument("--threads", type=int, default=None,
                   help="limit every BLAS/OpenMP pool (and torch) to this many threads")
    p.add_argument("--json", help="write the results there as well")
    args = p.parse_args(argv)
    results = {"loadavg_before": open("/proc/loadavg").read().split()[:3]}
    if args.threads:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
        try:
            import torch
            torch.set_num_threads(args.threads)
        except ImportError:
            pass
    if args.threshold:
        results["threshold"] = threshold_sweep(args.rounds)
        for r in results["threshold"]:
            print(r)
    else:
        results["steps"] = []
        for name in args.workloads:
            r = run_workload(name, args.rounds, args.variants, args.threads)
            results["steps"].append(r)
            print(f"\n{name} {r['dims']} m={r['m']} {r['dtype']} ({r['rounds']} rounds)")
            for k, v in r["median_ms"].items():
                extra = ""
                if r["ratio_to_torch"]:
                    extra += f"  x torch {r['ratio_to_torch'][k]:.2f}"
                if r["ratio_to_numpy"]:
                    extra += f"  x numpy {r['ratio_to_numpy'][k]:.2f}"
                print(f"  {k:14s} {v:9.3f} ms{extra}")
    results["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
    print(f"\nload average before {results['loadavg_before']}, after {results['loadavg_after']}")
    results["threadpoolctl"] = [{k: i.get(k) for k in ("internal_api", "version", "num_threads",
                                                      "architecture", "filepath")}
                                for i in threadpool_info()]
    print("\nBLAS libraries loaded:")
    for i in results["threadpoolctl"]:
        print(" ", i)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
