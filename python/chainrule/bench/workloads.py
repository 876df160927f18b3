"""The workloads: one full-batch training step (``Problem``) and whole fits (``TrainWorkload``).

Seeded data and parameters in the course's layout (examples are columns), shared by every
implementation that ``chainrule bench`` times, by the asv suites and by the calibration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import reference as ref


@dataclass(frozen=True)
class Workload:
    name: str
    layer_dims: tuple
    m: int
    dtype: str
    hidden: str
    output: str


# The asv suites (benchmarks/common.py) read this table.
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

    @property
    def L(self):
        return len(self.Ws)

    def parameters(self):
        """Copies of the parameters as the reference's dict ``{"W1": ..., "b1": ...}``."""
        p = {}
        for l in range(1, self.L + 1):
            p[f"W{l}"], p[f"b{l}"] = self.Ws[l - 1].copy(), self.bs[l - 1].copy()
        return p

    def copies(self):
        """Copies of ``(Ws, bs)``, for an op that updates them in place."""
        return [W.copy() for W in self.Ws], [b.copy() for b in self.bs]

    def reference(self):
        """``(AL, caches, grads)`` of the reference formulas at the problem's parameters."""
        params = self.parameters()
        AL, caches = ref.model_forward(self.X, params, self.activations)
        grads = ref.model_backward(AL, self.Y, caches, self.activations, self.loss)
        return AL, caches, grads


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


def workload_problem(name, threads=1, seed=0, dtype=None, m=None):
    """The problem of step workload ``name`` (in its own dtype and ``m`` unless given)."""
    w = WORKLOADS[name]
    return make_problem(w.layer_dims, w.m if m is None else m, dtype or w.dtype, w.hidden,
                        w.output, seed, threads)


def reference_step(problem):
    """The parameters after one step, by the reference formulas (the oracle)."""
    _, _, grads = problem.reference()
    new = ref.update_parameters_with_gd(problem.parameters(), grads, problem.learning_rate)
    L = problem.L
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



# --------------------------------------------------------------------------- whole fits
@dataclass(frozen=True)
class TrainWorkload:
    """A realistic fit: data ``source`` (``digits`` or ``synthetic``) of ``m`` examples,
    mini-batch Adam for ``epochs``; ``quick_m``/``quick_epochs`` size the ``--quick`` run."""

    name: str
    source: str
    layer_dims: tuple
    m: int
    dtype: str
    hidden: str
    output: str
    epochs: int
    batch_size: int
    learning_rate: float = 1e-3
    quick_m: int = 0
    quick_epochs: int = 1
    batch_norm: bool = False  # batch norm on every hidden layer (PyTorch: BatchNorm1d)

    def sized(self, quick=False):
        """This workload, or its ``--quick`` size."""
        if not quick:
            return self
        from dataclasses import replace

        return replace(self, m=self.quick_m or self.m, epochs=self.quick_epochs)

    @property
    def steps(self):
        """Mini-batch steps of the whole fit (complete batches, then the smaller rest)."""
        return self.epochs * -(-self.m // self.batch_size)

    def label(self):
        """Short: name, data size, layers, dtype."""
        return (f"{self.name} {self.m}×{self.layer_dims[0]} {list(self.layer_dims)} "
                f"{self.dtype.replace('float', 'f')}" + (" BN" if self.batch_norm else ""))

    def description(self):
        return (f"{self.label()}: {self.hidden}/{self.output}"
                f"{', batch norm on the hidden layers' if self.batch_norm else ''}, Adam {self.learning_rate:g}, "
                f"batch {self.batch_size}, {self.epochs} epoch{'s' if self.epochs > 1 else ''}"
                f" ({self.steps} steps)")


TRAIN_WORKLOADS = {
    "digits": TrainWorkload("digits", "digits", (64, 64, 10), 1347, "float64", "relu",
                            "softmax", epochs=10, batch_size=64, quick_m=1347, quick_epochs=2),
    "mnist-like": TrainWorkload("mnist-like", "synthetic", (784, 128, 64, 10), 60000,
                                "float32", "relu", "softmax", epochs=1, batch_size=128,
                                quick_m=3000),
    # the same fit with batch norm on every hidden layer (issue 22: the ratio to mnist-like)
    "mnist-like-bn": TrainWorkload("mnist-like-bn", "synthetic", (784, 128, 64, 10), 60000,
                                   "float32", "relu", "softmax", epochs=1, batch_size=128,
                                   quick_m=3000, batch_norm=True),
    "tabular": TrainWorkload("tabular", "synthetic", (20, 64, 64, 1), 100000, "float32",
                             "relu", "sigmoid", epochs=1, batch_size=256, quick_m=5000),
}


@dataclass
class TrainData:
    """A fit's data, examples as rows (``X_rows`` is C-contiguous ``(m, n[0])``, as
    scikit-learn, PyTorch and JAX take it; ``X_rows.T`` is the course's ``(n[0], m)``
    without a copy) and integer labels ``y`` (class index, or 0/1 for a sigmoid output)."""

    workload: TrainWorkload
    X_rows: np.ndarray
    y: np.ndarray
    seed: int = 0

    @property
    def X(self):
        """The course's layout ``(n[0], m)``: a view of ``X_rows``."""
        return self.X_rows.T

    @property
    def Y(self):
        """Labels for ``Network.fit``: integer classes ``(m,)`` for softmax, ``(1, m)``
        floats for a sigmoid output."""
        if self.workload.output == "softmax":
            return self.y
        return self.y.reshape(1, -1).astype(self.workload.dtype)


def _digits(m, rng):
    """scikit-learn's bundled 8x8 digits scaled to [0, 1], a seeded permutation, the first m."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError("the digits workload needs scikit-learn: pip install scikit-learn") \
            from exc
    X, y = load_digits(return_X_y=True)
    order = rng.permutation(len(y))
    return X[order[:m]] / 16.0, y[order[:m]]


def train_data(workload, seed=0):
    """Seeded data for ``workload``. Synthetic data are uniform in [0, 1) with labels from a
    random linear teacher (learnable, so the fits' accuracies say that each one trained)."""
    w = workload
    rng = np.random.default_rng(seed)
    if w.source == "digits":
        X, y = _digits(w.m, rng)
    else:
        X = rng.random((w.m, w.layer_dims[0]), dtype=np.float32)
        n_out = max(w.layer_dims[-1], 2)
        teacher = rng.standard_normal((w.layer_dims[0], n_out)).astype(np.float32)
        scores = (X - 0.5) @ teacher
        y = np.argmax(scores, axis=1) if w.output == "softmax" else (scores[:, 0] > scores[:, 1])
    X = np.ascontiguousarray(X, dtype=w.dtype)
    return TrainData(w, X, np.asarray(y, dtype=np.int64), seed)
