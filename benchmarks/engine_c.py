"""Time the training engine (``fit_epochs``) on the issue-12 workloads: C against the NumPy
reference engine, the numba engine (when present) and the GEMM-only floor of the same steps.

A plain script, not an asv benchmark. Variants run interleaved, one run of each per round;
the medians over the rounds and their ratios are printed, with the CPU line and the BLAS::

    python benchmarks/engine_c.py                    # both workloads, 5 rounds, 1 thread
    python benchmarks/engine_c.py --rounds 3 --workloads mnist --threads 2

Each run is a whole fit of the workload from the same start (epochs x mini-batches, Adam,
shuffled), in one engine call: what the training loop's chunks add up to. The floor runs only
the matrix products of the same steps (row layout: A_prev W^T, dZ^T A_prev, dZ W) through
NumPy's OpenBLAS, into preallocated arrays.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from chainrule import reference as ref
from chainrule.backends.engine import fit_epochs as ref_fit_epochs
from chainrule.optim import make_optimizer

WORKLOADS = {
    # name: dims, m, epochs, batch, dtype, data
    "mnist": ([784, 128, 64, 10], 60000, 1, 128, "float32", "synthetic"),
    "digits": ([64, 64, 10], 1347, 10, 64, "float64", "digits"),
}


def problem(name, seed=0):
    dims, m, epochs, s, dt, data = WORKLOADS[name]
    rng = np.random.default_rng(seed)
    if data == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        X, y = load_digits(return_X_y=True)
        X, _, y, _ = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)
    else:
        X = rng.random((m, dims[0]))
        y = rng.integers(0, dims[-1], m)
    XT = np.ascontiguousarray(X, dtype=dt)
    YT = np.ascontiguousarray(np.eye(dims[-1], dtype=dt)[y])
    params = ref.initialize_parameters(dims, "he", rng=rng, dtype=np.dtype(dt))
    L = len(dims) - 1
    Ws = [params[f"W{l}"] for l in range(1, L + 1)]
    bs = [params[f"b{l}"] for l in range(1, L + 1)]
    perms = np.array([rng.permutation(XT.shape[0]) for _ in range(epochs)], dtype=np.int64)
    acts = [("relu", 0.0)] * (L - 1) + [("softmax", 0.0)]
    return dict(XT=XT, YT=YT, Ws=Ws, bs=bs, perms=perms, epochs=epochs, s=s, acts=acts,
                dims=dims)


def run_engine(fit, p):
    Ws, bs = [W.copy() for W in p["Ws"]], [b.copy() for b in p["bs"]]
    opt = make_optimizer("adam")
    opt.reset({k: v for l in range(1, len(Ws) + 1)
               for k, v in ((f"W{l}", Ws[l - 1]), (f"b{l}", bs[l - 1]))})
    E, m, s = p["epochs"], p["XT"].shape[0], p["s"]
    steps = E * (-(-m // s))
    c0, t0 = time.process_time(), time.perf_counter()
    res = fit(p["XT"], p["YT"], None, p["perms"], np.full(E, 1e-3), np.zeros(E, np.int64), 0,
              steps, s, 0.0, [1.0] * (len(Ws) - 1), p["acts"], "categorical_crossentropy",
              opt, 0, opt.state, Ws, bs)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert res.steps == steps, res
    return elapsed, cpu, res.cost_sum / res.weight_sum


def run_floor(p):
    """The GEMMs of the same steps, nothing else."""
    dims, s, m, E = p["dims"], p["s"], p["XT"].shape[0], p["epochs"]
    dt = p["XT"].dtype
    L = len(dims) - 1
    Ws = p["Ws"]
    sizes = [min(s, m - k) for k in range(0, m, s)] * E
    A = [p["XT"][:s].copy()] + [np.empty((s, n), dt) for n in dims[1:]]
    dZ = [np.empty((s, n), dt) for n in dims[1:]]
    dW = [np.empty_like(W) for W in Ws]
    for z in dZ:
        z[...] = 0.01
    c0, t0 = time.process_time(), time.perf_counter()
    for mb in sizes:
        for l in range(L):
            np.matmul(A[l][:mb], Ws[l].T, out=A[l + 1][:mb])
        for l in range(L - 1, -1, -1):
            np.matmul(dZ[l][:mb].T, A[l][:mb], out=dW[l])
            if l:
                np.matmul(dZ[l][:mb], Ws[l], out=dZ[l - 1][:mb])
    return time.perf_counter() - t0, time.process_time() - c0, None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workloads", nargs="*", default=list(WORKLOADS))
    parser.add_argument("--no-numpy", action="store_true", help="skip the reference engine")
    args = parser.parse_args()

    from chainrule.backends.c import plans as c_plans
    variants = {"c": lambda p: run_engine(c_plans.fit_epochs, p)}
    from chainrule.backends.registry import Ops, available_backends
    if "numba" in available_backends():
        variants["numba"] = lambda p: run_engine(Ops("numba").fit_epochs, p)
    if not args.no_numpy:
        variants["numpy"] = lambda p: run_engine(ref_fit_epochs, p)
    variants["floor"] = run_floor

    cpu = subprocess.run("lscpu | grep -E 'Model name'", shell=True, capture_output=True,
                         text=True).stdout.strip()
    flags = open("/proc/cpuinfo").read()
    print(cpu, "| AVX-512:", "yes" if "avx512f" in flags else "no", "| threads:", args.threads)
    blas = [f"{i['internal_api']} {i.get('version')} ({i['filepath'].split('/')[-1]})"
            for i in threadpool_info() if i["user_api"] == "blas"]
    print("BLAS:", "; ".join(blas))
    with threadpool_limits(args.threads):
        for name in args.workloads:
            p = problem(name)
            for fn in variants.values():  # warm-up (numba compiles, plans are made)
                fn(p)
            times = {k: [] for k in variants}
            cpus = {k: [] for k in variants}
            costs = {}
            for _ in range(args.rounds):
                for k, fn in variants.items():
                    elapsed, cpu, cost = fn(p)
                    times[k].append(elapsed)
                    cpus[k].append(cpu)
                    if cost is not None:
                        costs[k] = cost
            med = {k: statistics.median(v) for k, v in times.items()}
            med_cpu = {k: statistics.median(v) for k, v in cpus.items()}
            dims, m, E, s, dt, _ = WORKLOADS[name]
            print(f"\n{name}: {m}x{dims[0]} {dims} adam batch {s}, {E} epoch(s), {dt}, "
                  f"medians of {args.rounds} interleaved runs: wall s (process CPU s)")
            for k, v in med.items():
                c = med_cpu[k]
                print(f"  {k:6s} {v:8.4f} ({c:7.4f})  x floor {v / med['floor']:5.2f} "
                      f"({c / med_cpu['floor']:5.2f})  x c {v / med['c']:5.2f} "
                      f"({c / med_cpu['c']:5.2f})  wall min {min(times[k]):.4f}")
            base = costs.get("numpy")
            if base is not None:
                for k, c in costs.items():
                    print(f"  epoch costs {k}: {np.array2string(c, precision=6)}")


if __name__ == "__main__":
    main()
