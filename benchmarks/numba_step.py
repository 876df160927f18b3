"""Time one training step of the numba backend against NumPy, bare GEMMs and variants.

A plain script (not an asv suite). Everything compared within one process is interleaved
round-robin and reported as medians. Variants that need other compile options (fastmath
off, libm's scalar exp/tanh instead of the vectorisable ones) run in child processes of
this script with their own settings and no disk cache.

    python benchmarks/numba_step.py            # everything (a few minutes on 2 cores)
    python benchmarks/numba_step.py --quick    # fewer repeats, no child variants

Rows: "numpy step" / "numba step" are ``Ops(backend).train_step(...)`` called from Python
(no cost), "+cost" with ``compute_cost=True``; "numba loop/200" is the time per step inside
one ``train_loop`` of 200 steps (cost once; "+cost": every step, as ``Network.fit`` asks);
"bare GEMMs" are the 2L - 1 matrix products a step needs (L forward, L for dW, L - 1 for
dA; "+dA0" adds the input layer's, which training skips), through NumPy's BLAS or,
inside one @njit call, through SciPy's BLAS as the kernels do.
The mnist-like workload runs twice: BLAS threads as configured, and limited to 1 (on a
shared 2-core machine two OpenBLAS pools of 2 threads each stall one another).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

WORKLOADS = {
    # name: (layer_dims, activations, loss, m, dtype, learning_rate)
    "planar": ([2, 4, 1], [("tanh", 0.0), ("sigmoid", 0.0)], "binary_crossentropy", 400,
               np.float64, 1.2),
    "mnist": ([784, 128, 64, 10], [("relu", 0.0), ("relu", 0.0), ("softmax", 0.0)],
              "categorical_crossentropy", 256, np.float32, 0.05),
}


def make_problem(name, seed=0):
    from chainrule import reference as ref
    dims, acts, loss, m, dtype, lr = WORKLOADS[name]
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((dims[0], m)).astype(dtype)
    if loss == "categorical_crossentropy":
        Y = np.zeros((dims[-1], m), dtype)
        Y[rng.integers(0, dims[-1], m), np.arange(m)] = 1
    else:
        Y = (rng.random((1, m)) > 0.5).astype(dtype)
    params = ref.initialize_parameters(dims, "he", rng=rng, dtype=dtype)
    L = len(dims) - 1
    Ws = [params[f"W{l}"] for l in range(1, L + 1)]
    bs = [params[f"b{l}"] for l in range(1, L + 1)]
    return X, Y, Ws, bs, acts, loss, lr


def interleaved(fns, repeats, number):
    """Median seconds per call of each fn: ``repeats`` rounds, each timing ``number`` single
    calls of every fn in turn. Timing single calls (not batches) keeps the median clear of
    the preemptions a shared 2-core machine inflicts on long batches."""
    times = {k: [] for k in fns}
    for f in fns.values():
        f()
    clock = time.perf_counter_ns
    for _ in range(repeats):
        for k, f in fns.items():
            ts = times[k]
            for _ in range(number):
                t0 = clock()
                f()
                ts.append(clock() - t0)
    return {k: float(np.median(v)) * 1e-9 for k, v in times.items()}


def step_fns(name, lambd=0.0):
    """The callables timed for one workload: numpy step, numba step, numba loop, bare GEMMs."""
    import numba
    from chainrule.backends.registry import Ops
    numpy_ops, numba_ops = Ops("numpy"), Ops("numba")
    X, Y, Ws, bs, acts, loss, _ = make_problem(name)
    lr = 1e-6  # tiny: the parameters barely move while timing, the work is the same
    Wn, bn = [W.copy() for W in Ws], [b.copy() for b in bs]
    n_loop = 200

    def numba_loop():
        numba_ops.train_loop(X, Y, Ws, bs, acts, loss, lr, lambd, n_loop, n_loop)

    def numba_loop_cost():  # the cost of every step, as Network.fit's compiled chunks ask
        numba_ops.train_loop(X, Y, Ws, bs, acts, loss, lr, lambd, n_loop, 1)

    # The GEMMs a step needs: L forward, L for dW, L - 1 for dA (not the input layer's).
    m = X.shape[1]
    Zs = [np.empty((W.shape[0], m), W.dtype) for W in Ws]
    dWs = [np.empty_like(W) for W in Ws]
    dAs = [np.empty((W.shape[1], m), W.dtype) for W in Ws]

    def gemms_numpy():
        A = X
        for W, Z in zip(Ws, Zs):
            np.matmul(W, A, out=Z)
            A = Z
        for l in range(len(Ws) - 1, -1, -1):
            np.matmul(Zs[l], (X if l == 0 else Zs[l - 1]).T, out=dWs[l])
            if l:
                np.matmul(Ws[l].T, Zs[l], out=dAs[l])

    @numba.njit
    def _gemms_numba(X, Ws, Zs, dWs, dAs):
        np.dot(Ws[0], X, Zs[0])
        for l in range(1, len(Ws)):
            np.dot(Ws[l], Zs[l - 1], Zs[l])
        for l in range(len(Ws) - 1, 0, -1):
            np.dot(Zs[l], Zs[l - 1].T, dWs[l])
            np.dot(Ws[l].T, Zs[l], dAs[l])
        np.dot(Zs[0], X.T, dWs[0])

    def gemms_numpy_with_dA0():
        gemms_numpy()
        np.matmul(Ws[0].T, Zs[0], out=dA0)  # the input layer's dA0, which training never needs

    dA0 = np.empty(X.shape, X.dtype)
    Wt, Zt, dWt, dAt = tuple(Ws), tuple(Zs), tuple(dWs), tuple(dAs)
    fns = {
        "numpy step": lambda: numpy_ops.train_step(X, Y, Wn, bn, acts, loss, lr, lambd),
        "numba step": lambda: numba_ops.train_step(X, Y, Ws, bs, acts, loss, lr, lambd),
        "numba step +cost": lambda: numba_ops.train_step(X, Y, Ws, bs, acts, loss, lr, lambd,
                                                         None, True),
        f"numba loop/{n_loop}": numba_loop,
        f"numba loop/{n_loop} +cost": numba_loop_cost,
        "bare GEMMs numpy": gemms_numpy,
        "bare GEMMs numpy +dA0": gemms_numpy_with_dA0,
        "bare GEMMs numba(scipy BLAS)": lambda: _gemms_numba(X, Wt, Zt, dWt, dAt),
    }
    return fns, n_loop


def measure(name, repeats, threads):
    from threadpoolctl import threadpool_limits
    fns, n_loop = step_fns(name)
    number = 100 if name == "planar" else 3
    with threadpool_limits(limits=threads):
        loop = {k: v for k, v in fns.items() if k.startswith("numba loop")}
        rest = {k: v for k, v in fns.items() if k not in loop}
        out = interleaved(rest, repeats, number)
        out.update({k: v / n_loop for k, v in interleaved(loop, repeats, 2).items()})
    return {k: v * 1e6 for k, v in out.items()}


def compile_times():
    """First call in a fresh process with an empty cache dir, then again with it warm."""
    code = ("import time; t0 = time.perf_counter(); import chainrule; "
            "from benchmarks.numba_step import make_problem; from chainrule.backends.registry import Ops; "
            "t1 = time.perf_counter(); ops = Ops('numba'); "
            "X, Y, Ws, bs, acts, loss, lr = make_problem('{w}'); "
            "ops.train_step(X, Y, Ws, bs, acts, loss, lr); t2 = time.perf_counter(); "
            "ops.train_loop(X, Y, Ws, bs, acts, loss, lr, 0.0, 2, 1); t3 = time.perf_counter(); "
            "print(t1 - t0, t2 - t1, t3 - t2)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=root)
        for w in ("planar", "mnist"):
            for state in ("cold", "warm"):
                r = subprocess.run([sys.executable, "-c", code.format(w=w)], env=env, cwd=root,
                                   capture_output=True, text=True, check=True)
                imp, step, loop = (float(x) for x in r.stdout.split())
                out[f"{w} {state}"] = {"import s": imp, "first train_step s": step,
                                       "first train_loop s": loop}
    return out


def child_variant(env_extra, args):
    env = dict(os.environ, CHAINRULE_NUMBA_CACHE="0", **env_extra)
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", *args], env=env,
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def scalar_libm():
    """Swap the vectorisable exp/tanh/sigmoid for libm's, before anything compiles."""
    import math

    import chainrule.core.vmath as vmath
    from numba import njit
    vmath.exp_neg = njit(inline="always")(lambda y: math.exp(y))
    vmath.sigmoid = njit(inline="always")(lambda z: 1.0 / (1.0 + math.exp(-z)))
    vmath.tanh = njit(inline="always")(lambda z: math.tanh(z))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--child", action="store_true")
    p.add_argument("--scalar-libm", action="store_true")
    p.add_argument("--workloads", default="planar,mnist")
    args = p.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    repeats = 7 if args.quick else 21
    if args.scalar_libm:
        scalar_libm()
    if args.child:
        res = {w: measure(w, repeats, None) for w in args.workloads.split(",")}
        print(json.dumps(res))
        return
    import scipy

    import chainrule.backends.numba  # noqa: F401  (loads SciPy's BLAS too)
    import chainrule.core as core
    from threadpoolctl import threadpool_info
    print("numpy", np.__version__, "scipy", scipy.__version__, "fastmath", core.FASTMATH)
    for info in threadpool_info():
        print("  BLAS:", info.get("internal_api"), info.get("version"), info.get("filepath"),
              "threads", info.get("num_threads"))
    results = {}
    for w in args.workloads.split(","):
        for threads in ((None, 1) if w == "mnist" else (None,)):
            key = f"{w} (BLAS threads {threads or 'default'})"
            results[key] = measure(w, repeats, threads)
    if not args.quick:
        results["variant: fastmath off"] = child_variant({"CHAINRULE_NUMBA_FASTMATH": "0"},
                                                         ["--workloads", "planar"])
        results["variant: libm scalar exp/tanh"] = child_variant({}, ["--scalar-libm",
                                                                      "--workloads", "planar"])
        results["variant: libm scalar + fastmath off"] = child_variant(
            {"CHAINRULE_NUMBA_FASTMATH": "0"}, ["--scalar-libm", "--workloads", "planar"])
        results["compile"] = compile_times()
    for key, res in results.items():
        print(key)
        for k, v in res.items():
            if isinstance(v, dict):
                print(f"  {k}: " + ", ".join(f"{a} {b:.3g}" for a, b in v.items()))
            else:
                print(f"  {k:32s} {v:10.2f} us")
    for key, res in results.items():
        if key.startswith("mnist"):
            g, step = res["bare GEMMs numpy"], res["numba step"]
            print(f"{key}: numba step / bare GEMMs (numpy) = {step / g:.3f}, "
                  f"/ bare GEMMs (numba) = {step / res['bare GEMMs numba(scipy BLAS)']:.3f}, "
                  f"/ bare GEMMs +dA0 = {step / res['bare GEMMs numpy +dA0']:.3f}; "
                  f"numpy step / bare GEMMs = {res['numpy step'] / g:.3f}")


if __name__ == "__main__":
    main()
