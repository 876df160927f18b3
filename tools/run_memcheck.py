"""Run the C kernels over a sweep of shapes under valgrind memcheck; report invalid accesses.

Usage::

    python tools/run_memcheck.py            # runs itself under valgrind, prints a summary
    python tools/run_memcheck.py --inner    # the sweep alone (what valgrind runs)

The sweep covers every op of the C backend (forward with every activation, backward with
and without ``Z_prev``, mask, L2 and ``dA_prev``, SGD, the
finiteness checks, Network.step's engine step on small networks), both dtypes,
the C loops and the BLAS path, and shapes with ``m = 1``, ``n = 1``, ``n_prev = 1``.
Each result is compared with the NumPy reference, so every output byte is read back.
``PYTHONMALLOC=malloc`` lets memcheck see Python's and NumPy's allocations at their exact
sizes, so one element past an array is an invalid access.

Exit status 0 when valgrind reports no invalid read or write, no use of an uninitialised
value inside the C module, and the sweep itself passed; 1 otherwise; 77 when valgrind is
not installed.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys

SHAPES = [(1, 1, 1), (1, 3, 1), (3, 1, 2), (2, 5, 1), (1, 1, 7), (4, 3, 9), (7, 2, 17)]
ACTIVATIONS = ["sigmoid", "relu", "tanh", ("leaky_relu", 0.1), "identity"]


def sweep():
    import numpy as np

    from chainrule.backends import c as cb
    from chainrule.backends import numpy as nb

    rng = np.random.default_rng(0)
    count = 0
    # the C loops, and the first BLAS that loads (NumPy's ILP64 OpenBLAS, else SciPy's)
    blas = next((source for source in ("numpy", "scipy") if _loads(cb, source)), None)
    sources = ["none"] + ([blas] if blas else [])
    for source, dt, (n, n_prev, m) in itertools.product(sources, ("float64", "float32"), SHAPES):
        cb.use_blas(source)
        cb.set_blas_threshold(0)
        tol = dict(rtol=1e-4, atol=1e-5) if dt == "float32" else dict(rtol=1e-9, atol=1e-12)
        A_prev = rng.standard_normal((n_prev, m)).astype(dt)
        W = rng.standard_normal((n, n_prev)).astype(dt)
        b = rng.standard_normal((n, 1)).astype(dt)
        dZ = rng.standard_normal((n, m)).astype(dt)
        Z_prev = rng.standard_normal((n_prev, m)).astype(dt)
        mask = (rng.random((n_prev, m)) < 0.5).astype(dt) * 2
        for act in ACTIVATIONS + ["softmax"]:
            for actual, expected in zip(cb.dense_forward(A_prev, W, b, act),
                                        nb.dense_forward(A_prev, W, b, act)):
                np.testing.assert_allclose(actual, expected, **tol)
            count += 1
        for act, (conv, lambd), mk, need, first in itertools.product(
                ACTIVATIONS, (("L", 0.0), ("J", 0.5)), (None, mask), (False, True), (False, True)):
            if first and mk is not None and not need:
                continue  # nothing to mask: the input layer computes no dA_prev
            args = (dZ, A_prev, W, None if first else Z_prev, None if first else act, conv,
                    lambd, mk, need)
            for actual, expected in zip(cb.dense_backward(*args), nb.dense_backward(*args)):
                if expected is None:
                    assert actual is None
                else:
                    np.testing.assert_allclose(actual, expected, **tol)
            count += 1
        fn = cb.wrappers._FN[np.dtype(dt)]
        assert fn[4](cb.wrappers._buf(dZ), dZ.size) == np.abs(dZ).max()
        W2, b2 = W.copy(), b.copy()
        cb.sgd_update([W2], [b2], [dZ[:, :1] @ A_prev[:, :1].T], [b], 0.1)
        assert cb.wrappers._all_finite([W2, b2])
    count += _sweep_train_step(cb, sources, rng)
    count += _sweep_fit_epochs(cb, sources, rng)
    cb.use_blas("auto")
    print(f"memcheck sweep: {count} kernel calls checked (BLAS: {blas})", flush=True)


STEP_NETS = [([1, 1], ["sigmoid"], "binary_crossentropy"),
             ([3, 1, 2], ["tanh", "softmax"], "categorical_crossentropy"),
             ([2, 5, 4, 1], ["relu", ("leaky_relu", 0.1), "identity"], "mean_squared_error"),
             ([1, 6, 1], ["identity", "sigmoid"], "binary_crossentropy"),
             ([3, 40, 30, 2], ["tanh", "relu", "softmax"], "categorical_crossentropy")]


def _sweep_train_step(cb, sources, rng):
    """Network.step's op on C (one engine step on the course's X, x_columns) against the
    numpy backend's."""
    import numpy as np

    from chainrule import reference as ref
    from chainrule.backends.registry import Ops
    from chainrule.training.step import train_step

    count = refused = 0
    for source, dt, (dims, acts, loss), m, lambd in itertools.product(
            sources, ("float64", "float32"), STEP_NETS, (1, 5), (0.0, 0.3)):
        cb.use_blas(source)
        cb.set_blas_threshold(0)
        tol = dict(rtol=1e-4, atol=1e-5) if dt == "float32" else dict(rtol=1e-9, atol=1e-12)
        acts = [ref.parse_activation(a) for a in acts]
        X = rng.standard_normal((dims[0], m)).astype(dt)
        if loss == "categorical_crossentropy":
            Y = np.eye(dims[-1], dtype=dt)[:, rng.integers(0, dims[-1], m)]
        else:
            Y = (rng.random((dims[-1], m)) < 0.5).astype(dt)
        p = ref.initialize_parameters(dims, rng=rng, dtype=dt)
        L = len(dims) - 1
        Ws = [p[f"W{l}"] for l in range(1, L + 1)]
        bs = [p[f"b{l}"] for l in range(1, L + 1)]
        expected = ([W.copy() for W in Ws], [b.copy() for b in bs])
        ok_e, J_e = train_step(Ops("numpy"), X, Y, *expected, acts, loss, 0.1, lambd, None, True)
        ok, J = train_step(Ops("c"), X, Y, Ws, bs, acts, loss, 0.1, lambd, None, True)
        assert ok and ok_e and abs(J - J_e) <= 1e-4 * abs(J_e)
        for actual, wanted in zip(Ws + bs, expected[0] + expected[1]):
            np.testing.assert_allclose(actual, wanted, **tol)
        # a learning rate that overflows the update unless a gradient is tiny: refused as
        # update_is_safe refuses it, and then nothing is touched
        before = [x.copy() for x in Ws + bs]
        huge = float(np.finfo(dt).max)
        with np.errstate(all="ignore"):
            ok_e, _ = train_step(Ops("numpy"), X, Y, [W.copy() for W in Ws],
                                              [b.copy() for b in bs], acts, loss, huge, lambd)
            ok, _ = train_step(Ops("c"), X, Y, Ws, bs, acts, loss, huge, lambd)
        assert ok == ok_e
        if not ok:
            refused += 1
            for actual, wanted in zip(Ws + bs, before):
                np.testing.assert_array_equal(actual, wanted)
        count += 2
    assert refused > 0
    return count


FIT_NETS = [([1, 1], [("sigmoid", 0.0)], "binary_crossentropy"),
            ([3, 1, 2], [("tanh", 0.0), ("softmax", 0.0)], "categorical_crossentropy"),
            ([2, 5, 4, 1], [("relu", 0.0), ("leaky_relu", 0.1), ("identity", 0.0)],
             "mean_squared_error"),
            ([2, 3, 2], [("sigmoid", 0.0), ("sigmoid", 0.0)], "mean_squared_error")]
FIT_OPTIMIZERS = [{"name": "gd"}, {"name": "momentum"}, {"name": "rmsprop"},
                  {"name": "adam", "eps_inside_sqrt": True}]


def _sweep_fit_epochs(cb, sources, rng):
    """cr_fit_epochs (the C training engine) against the NumPy reference engine: batches
    of one, a last smaller batch and m = 1, with and without shuffle, dropout and weights."""
    import numpy as np

    from chainrule.backends.c import plans as ce
    from chainrule import reference as ref
    from chainrule.backends.engine import fit_epochs as ref_fit_epochs
    from chainrule.backends.plan import FitPlan
    from chainrule.optim import make_optimizer

    count = refused = 0
    for i, (source, dt, (dims, acts, loss), (m, s)) in enumerate(itertools.product(
            sources, ("float64", "float32"), FIT_NETS, ((1, 3), (5, 1), (7, 3)))):
        opt = FIT_OPTIMIZERS[i % len(FIT_OPTIMIZERS)]
        cb.use_blas(source)
        cb.set_blas_threshold(0)
        tol = dict(rtol=1e-4, atol=1e-5) if dt == "float32" else dict(rtol=1e-9, atol=1e-12)
        drop, weighted, shuffle = (i // 4) % 2 == 0, i % 3 == 0, i % 5 != 0
        L, E = len(dims) - 1, 2
        XT = rng.standard_normal((m, dims[0])).astype(dt)
        YT = (rng.random((m, dims[-1])) < 0.5).astype(dt)
        w = rng.random(m).astype(dt) + 0.5 if weighted else None
        perms = np.array([rng.permutation(m) for _ in range(E)]) if shuffle else None
        keys = rng.integers(0, 2 ** 63, E, dtype=np.int64)
        probs = [0.7 if drop else 1.0] * (L - 1)
        p = ref.initialize_parameters(dims, rng=rng, dtype=dt)
        runs = []
        for engine in (ref_fit_epochs, ce.fit_epochs):
            Ws = [p[f"W{l}"].copy() for l in range(1, L + 1)]
            bs = [p[f"b{l}"].copy() for l in range(1, L + 1)]
            o = make_optimizer(opt)
            o.reset({k: v for l in range(1, L + 1)
                     for k, v in ((f"W{l}", Ws[l - 1]), (f"b{l}", bs[l - 1]))})
            plan = FitPlan.build(dims, acts, loss, o, mini_batch_size=s, lambd=0.2,
                                 keep_probs=probs)
            res = engine(plan, XT, YT, w, perms=perms, lrs=[0.1, 0.05], keys=keys, k0=0,
                         n_steps=100, t=0, state=o.state, Ws=Ws, bs=bs)
            runs.append((res, Ws + bs + [o.state[k] for k in sorted(o.state)]))
        (expected, want), (actual, got) = runs
        assert actual[:5] == expected[:5], (actual, expected)
        for a, e in zip(got, want):
            np.testing.assert_allclose(a, e, **tol)
        np.testing.assert_allclose(actual.cost_sum, expected.cost_sum, **tol)
        # a rate at which the update overflows: refused, nothing touched
        before = [x.copy() for x in got]
        with np.errstate(all="ignore"):
            res = ce.fit_epochs(FitPlan.build(dims, acts, loss, o, mini_batch_size=s,
                                              keep_probs=probs),
                                XT * 1e3, YT, w, perms=perms, lrs=[float(np.finfo(dt).max)] * E,
                                keys=keys, k0=0, n_steps=100, t=0, state=o.state, Ws=Ws, bs=bs)
        if res.status and res.steps == 0:  # the first step refused
            refused += 1
            for a, b in zip(got, before):
                np.testing.assert_array_equal(a, b)
        count += 2
    assert refused > 0
    return count


def _loads(cb, source):
    try:
        cb.use_blas(source)
    except ImportError:
        return False
    return True


_ERROR = re.compile(r"==\d+== (Invalid (read|write|free)|Conditional jump or move depends on "
                    r"uninitialised|Use of uninitialised|Syscall param .* uninitialised|"
                    r"Source and destination overlap|Mismatched free)")


def run_under_valgrind():
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind is not installed")
        return 77
    env = dict(os.environ, PYTHONMALLOC="malloc", OPENBLAS_NUM_THREADS="1",
               MKL_NUM_THREADS="1", OMP_NUM_THREADS="1", CHAINRULE_C_BLAS="none")
    cmd = [valgrind, "--tool=memcheck", "--leak-check=no", "--track-origins=no",
           "--num-callers=30", sys.executable, os.path.abspath(__file__), "--inner"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    log = proc.stderr.splitlines()
    # group valgrind's report into error blocks (an error line, then its stack)
    blocks, current = [], None
    for line in log:
        if _ERROR.search(line):
            current = [line]
            blocks.append(current)
        elif current is not None and re.match(r"==\d+== +(at|by) ", line):
            current.append(line)
        else:
            current = None
    # glibc's dynamic loader reads past strings with word-sized loads on purpose (a known
    # memcheck false positive while libraries load); anything else invalid counts
    invalid = [b for b in blocks if ("Invalid" in b[0] or "overlap" in b[0] or "free" in b[0])
               and not any("dl-load.c" in x or "dl-open.c" in x for x in b)]
    ours = [b for b in blocks if any("_cdense" in x or " cr_" in x for x in b)]
    print(proc.stdout.strip())
    print(f"valgrind: {len(blocks)} error blocks, {len(invalid)} invalid accesses, "
          f"{len(ours)} inside chainrule._cdense; sweep exit status {proc.returncode}")
    for b in (invalid + ours)[:10]:
        print("\n".join(b[:12]))
    return 0 if (proc.returncode == 0 and not invalid and not ours
                 and "memcheck sweep:" in proc.stdout) else 1


if __name__ == "__main__":
    if "--inner" in sys.argv:
        sweep()
    else:
        sys.exit(run_under_valgrind())
