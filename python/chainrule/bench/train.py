"""The fit comparison (``chainrule bench --train``): realistic whole fits, side by side.

Every implementation trains the workload's network from scratch on the same data with
shuffled mini-batches and Adam (lr 1e-3, β1 0.9, β2 0.999, ε 1e-8) for the workload's
epochs, then scores the training data (as every peer's benchmark does: the timed work is
fit + score; the score is the accuracy column), each as its users write it:

- chainrule: ``Network(...).fit(X, Y, optimizer="adam", mini_batch_size=...)`` then
  ``score(X, Y)`` per backend (and ``auto``), with ``X`` the examples-as-rows array's
  transpose (no copy);
- scikit-learn: ``MLPClassifier(solver="adam", alpha=0, ...).fit`` (it runs every epoch:
  ``tol=0``, no early stopping), then ``score``;
- PyTorch: ``nn.Sequential`` (with batch norm: ``Linear(bias=False)``, ``BatchNorm1d``,
  activation), ``torch.optim.Adam``, a loop over ``torch.randperm``
  mini-batches with ``model.train()``, ``zero_grad`` / ``backward`` / ``step`` (no DataLoader),
  then ``model.eval()`` and one forward of all the data under ``torch.no_grad()``;
- JAX: one ``jax.jit`` step (the gradient and Adam's update), compiled once: the warm-up
  fit compiles it and is not timed; mini-batches gathered with NumPy; the score one jitted
  forward of all the data;
- the floor: only the GEMMs of the same mini-batch steps and of the final scoring forward,
  on data laid out once, untimed, as the products want it (:class:`floor.MiniBatchFloor`).

Each sample is one whole fit (model construction included); the implementations run in
rounds whose order rotates, after one untimed warm-up fit each (JIT compilation, caches);
with several threads each fit starts after ``SETTLE_SECONDS`` idle (thread pools still
spinning from the fit before would take its cores). The training accuracy after the fit
(the timed score) is reported as a check that each one trained.
"""

from __future__ import annotations

import datetime
import os
import platform
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from ..backends import registry as _dispatch
from .env import blas_info, cpu_model, load_average, threads_limited, versions
from .floor import MiniBatchFloor
from .peers import configure_jax_threads
from .workloads import TRAIN_WORKLOADS, train_data

BETA1, BETA2, EPSILON = 0.9, 0.999, 1e-8


class ChainruleFit:
    """``Network.fit`` on one backend (``"auto"``: what auto picks for this fit)."""

    kind = "chainrule"
    package = None

    def __init__(self, backend):
        self.backend = backend
        self.name = f"chainrule[{backend}]"

    def setup(self, data, threads):
        from ..model import Network

        self.Network = Network
        if self.backend != "auto" and not _dispatch._load(self.backend):
            raise ImportError(str(_dispatch.import_error(self.backend)))
        self.data, self.w = data, data.workload
        self.X, self.Y = data.X, data.Y

    def run(self):
        w = self.w
        self.net = self.Network(list(w.layer_dims), hidden=w.hidden, output=w.output,
                                dtype=w.dtype, backend=self.backend, seed=0,
                                batch_norm=w.batch_norm)
        self.net.fit(self.X, self.Y, epochs=w.epochs, learning_rate=w.learning_rate,
                     optimizer="adam", mini_batch_size=w.batch_size, progress=False)
        self.score = float(self.net.score(self.X, self.Y))
        if self.backend == "auto":
            self.name = f"chainrule[auto → {self.net.backend}]"

    def accuracy(self):
        return self.score

    def version(self):
        from .. import __version__

        return __version__


class SklearnFit:
    """``MLPClassifier(solver="adam").fit`` for every epoch (no early stop, no L2)."""

    name = "scikit-learn MLPClassifier"
    kind = "peer"
    package = "scikit-learn"

    def setup(self, data, threads):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        self.MLPClassifier, self.ConvergenceWarning = MLPClassifier, ConvergenceWarning
        self.data, self.w = data, data.workload
        if data.workload.hidden not in ("relu", "tanh", "logistic", "identity"):
            raise ValueError(f"scikit-learn has no {data.workload.hidden!r} activation")
        if data.workload.batch_norm:
            raise ValueError("scikit-learn's MLP has no batch norm")

    def run(self):
        w = self.w
        self.clf = self.MLPClassifier(
            hidden_layer_sizes=tuple(w.layer_dims[1:-1]), activation=w.hidden, solver="adam",
            alpha=0.0, batch_size=w.batch_size, learning_rate_init=w.learning_rate,
            beta_1=BETA1, beta_2=BETA2, epsilon=EPSILON, max_iter=w.epochs, shuffle=True,
            tol=0.0, n_iter_no_change=w.epochs + 1, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", self.ConvergenceWarning)
            self.clf.fit(self.data.X_rows, self.data.y)
        self.score = float(self.clf.score(self.data.X_rows, self.data.y))

    def accuracy(self):
        return self.score

    def version(self):
        import sklearn

        return sklearn.__version__


class TorchFit:
    """A plain PyTorch training loop: shuffled index mini-batches, ``torch.optim.Adam``."""

    name = "pytorch (cpu)"
    kind = "peer"
    package = "pytorch"

    def setup(self, data, threads):
        import torch

        self.torch = torch
        if threads:
            torch.set_num_threads(threads)
        self.data, self.w = data, data.workload
        self.dtype = {"float32": torch.float32, "float64": torch.float64}[data.workload.dtype]
        self.X = torch.from_numpy(data.X_rows)
        if data.workload.output == "softmax":
            self.y = torch.from_numpy(data.y)
            self.criterion = torch.nn.CrossEntropyLoss()
        else:
            self.y = torch.from_numpy(data.y.astype(data.workload.dtype).reshape(-1, 1))
            self.criterion = torch.nn.BCEWithLogitsLoss()

    def run(self):
        torch, w = self.torch, self.w
        torch.manual_seed(0)
        act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[w.hidden]
        layers = []
        for l in range(1, len(w.layer_dims)):
            hidden = l < len(w.layer_dims) - 1
            bn = hidden and w.batch_norm  # Linear(bias=False) -> BatchNorm1d -> activation
            layers.append(torch.nn.Linear(w.layer_dims[l - 1], w.layer_dims[l], bias=not bn))
            if bn:
                layers.append(torch.nn.BatchNorm1d(w.layer_dims[l]))
            if hidden:
                layers.append(act())
        model = self.model = torch.nn.Sequential(*layers).to(self.dtype)
        optimizer = torch.optim.Adam(model.parameters(), lr=w.learning_rate,
                                     betas=(BETA1, BETA2), eps=EPSILON)
        X, y, criterion, b = self.X, self.y, self.criterion, w.batch_size
        m = X.shape[0]
        for _ in range(w.epochs):
            model.train()
            perm = torch.randperm(m)
            for start in range(0, m, b):
                idx = perm[start:start + b]
                optimizer.zero_grad()
                loss = criterion(model(X[idx]), y[idx])
                loss.backward()
                optimizer.step()
        model.eval()
        with torch.no_grad():
            out = model(X)
        if w.output == "softmax":
            pred = out.argmax(dim=1).numpy()
        else:
            pred = (out[:, 0] > 0).numpy()
        self.score = float(np.mean(pred == self.data.y))

    def accuracy(self):
        return self.score

    def version(self):
        return self.torch.__version__


class JaxFit:
    """One ``jax.jit`` training step (``jax.grad`` of the mean loss, Adam with bias
    correction), compiled once; float64 turns ``jax_enable_x64`` on."""

    name = "jax jit (cpu)"
    kind = "peer"
    package = "jax"

    def setup(self, data, threads):
        if data.workload.batch_norm:
            raise ValueError("this JAX loop has no batch norm")
        configure_jax_threads(threads)
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_platforms", "cpu")
        if data.workload.dtype == "float64":
            jax.config.update("jax_enable_x64", True)
        self.jax, self.data, self.w = jax, data, data.workload
        hidden = {"relu": jax.nn.relu, "tanh": jnp.tanh}[self.w.hidden]
        softmax = self.w.output == "softmax"
        lr = self.w.learning_rate

        def forward(params, X):
            A = X
            for W, b in params[:-1]:
                A = hidden(A @ W + b)
            W, b = params[-1]
            return A @ W + b

        def loss_fn(params, X, y):
            Z = forward(params, X)
            if softmax:
                logp = jax.nn.log_softmax(Z, axis=1)
                return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
            z = Z[:, 0]
            return jnp.mean(jax.nn.softplus(z) - y * z)

        def step(params, mom, vel, t, X, y):
            grads = jax.grad(loss_fn)(params, X, y)
            t = t + 1
            mom = jax.tree_util.tree_map(lambda m, g: BETA1 * m + (1 - BETA1) * g, mom, grads)
            vel = jax.tree_util.tree_map(lambda v, g: BETA2 * v + (1 - BETA2) * g * g, vel, grads)
            c1, c2 = 1 - BETA1 ** t, 1 - BETA2 ** t
            params = jax.tree_util.tree_map(
                lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + EPSILON),
                params, mom, vel)
            return params, mom, vel, t

        self.step = jax.jit(step)
        self.forward = jax.jit(forward)
        self.y = data.y if softmax else data.y.astype(self.w.dtype)

    def _init(self, rng):
        dims, dtype = self.w.layer_dims, self.w.dtype
        return [((rng.standard_normal((dims[l - 1], dims[l])) * np.sqrt(2 / dims[l - 1]))
                 .astype(dtype), np.zeros(dims[l], dtype=dtype)) for l in range(1, len(dims))]

    def run(self):
        jax, w = self.jax, self.w
        rng = np.random.default_rng(0)
        params = self._init(rng)
        mom = jax.tree_util.tree_map(np.zeros_like, params)
        vel = jax.tree_util.tree_map(np.zeros_like, params)
        t = np.asarray(0, dtype=w.dtype)
        X, y, b = self.data.X_rows, self.y, w.batch_size
        m = X.shape[0]
        for _ in range(w.epochs):
            perm = rng.permutation(m)
            for start in range(0, m, b):
                idx = perm[start:start + b]
                params, mom, vel, t = self.step(params, mom, vel, t, X[idx], y[idx])
        self.params = jax.block_until_ready(params)
        Z = np.asarray(self.forward(self.params, self.data.X_rows))
        pred = Z.argmax(axis=1) if self.w.output == "softmax" else Z[:, 0] > 0
        self.score = float(np.mean(pred == self.data.y))

    def accuracy(self):
        return self.score

    def version(self):
        import jaxlib

        return f"{self.jax.__version__} (jaxlib {jaxlib.__version__})"


class FloorFit(MiniBatchFloor):
    def setup(self, data, threads):
        super().setup(data)


FIT_PEERS = {"sklearn": SklearnFit, "torch": TorchFit, "jax": JaxFit, "floor": FloorFit}


def fit_implementation_names(include=None):
    """chainrule backends, ``auto``, then the peers and the floor, in table order."""
    names = list(_dispatch.BACKENDS) + ["auto"] + list(FIT_PEERS)
    if include:
        unknown = set(include) - set(names)
        if unknown:
            raise ValueError(f"unknown implementation(s) {sorted(unknown)}; known: {names}")
        names = [n for n in names if n in include]
    return names


def make_fit_implementation(name):
    return ChainruleFit(name) if name in _dispatch.BACKENDS + ("auto",) else FIT_PEERS[name]()


@dataclass
class FitRow:
    workload: str
    label: str
    name: str
    kind: str
    status: str  # "ok" or "missing: ..."
    threads: int = 1
    median: float = float("nan")
    q1: float = float("nan")
    q3: float = float("nan")
    best: float = float("nan")
    accuracy: float = float("nan")
    steps: int = 0
    description: str = ""


# The pause before each timed fit with several threads: thread pools spin for a while after
# their last task (OpenBLAS's workers up to about 0.1 s, XLA's and OpenMP's too), and on a
# machine with as many cores as threads a pool still spinning from the fit before takes the
# cores from the next one's (a 0.044 s chainrule fit took 0.125 s right after NumPy products).
# After the pause every fit starts as a user's first fit does.
SETTLE_SECONDS = 0.2


def time_fits(impls, repeats, settle=0.0):
    """Seconds per whole fit: ``{name: array}``; one untimed warm-up fit each, then
    ``repeats`` rounds over all of them, the order rotating every round, each fit after
    ``settle`` idle seconds."""
    for impl in impls:
        impl.run()
    samples = {id(impl): [] for impl in impls}
    n = len(impls)
    for r in range(repeats):
        for i in range(n):
            impl = impls[(i + r) % n]
            if settle:
                time.sleep(settle)
            t0 = time.perf_counter()
            impl.run()
            samples[id(impl)].append(time.perf_counter() - t0)
    return {id(impl): np.array(samples[id(impl)]) for impl in impls}


def time_scores(impls, data, repeats, settle=0.0):
    """``score`` alone after the fits: ``{name: median seconds}`` of every fitted chainrule
    implementation's ``net.score(X, Y)`` and of the forward's products alone (``"products"``:
    :class:`floor.ForwardProducts` into arrays allocated once), interleaved, ``2 repeats + 1``
    rounds after one untimed call each, each call after ``settle`` idle seconds (as the fits:
    right after the products on two BLAS threads, OpenBLAS's spinning worker took a core from
    the score's, 85 ms against 56 ms after a pause, 2-core AMD EPYC)."""
    from .floor import ForwardProducts

    nets = [(impl.name, impl.net) for impl in impls if impl.kind == "chainrule"]
    if not nets:
        return {}
    products = ForwardProducts(nets[0][1].layer_arrays()[0], data.X.shape[1], data.X.dtype)
    calls = [("products", lambda: products.run(data.X))] + [
        (name, lambda net=net: net.score(data.X, data.Y)) for name, net in nets]
    samples = {name: [] for name, _ in calls}
    for _, call in calls:
        call()
    for r in range(2 * repeats + 1):
        for i in range(len(calls)):
            name, call = calls[(i + r) % len(calls)]
            if settle:
                time.sleep(settle)
            t0 = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) for name, t in samples.items()}


def compare_train(workloads=tuple(TRAIN_WORKLOADS), include=None, repeats=5, threads=1,
                  quick=False, log=print):
    """Time every implementation's whole fit on every workload with ``threads`` threads
    (0: the libraries' defaults). Returns ``(rows, info)``."""
    rows, used, scores = [], [], {}
    with threads_limited(threads) as limits:
        for wname in workloads:
            w = TRAIN_WORKLOADS[wname].sized(quick)
            try:
                data = train_data(w)
            except ImportError as exc:
                rows.append(FitRow(wname, w.label(), "all", "missing", f"missing: {exc}",
                                   threads, description=w.description()))
                continue
            ready = []
            for name in fit_implementation_names(include):
                impl = make_fit_implementation(name)
                try:
                    impl.setup(data, threads)
                except Exception as exc:
                    rows.append(FitRow(wname, w.label(), impl.name, impl.kind,
                                       f"missing: {type(exc).__name__}: "
                                       f"{str(exc).splitlines()[0][:80]}", threads,
                                       description=w.description()))
                    continue
                ready.append(impl)
            limits.relimit()  # peers load their own BLAS/OpenMP copies at setup
            log(f"{wname}: {w.steps} steps; timing {', '.join(i.name for i in ready)} "
                f"({repeats} rounds, {threads or 'default'} threads)")
            settle = SETTLE_SECONDS if threads != 1 else 0.0
            times = time_fits(ready, repeats, settle=settle)
            for impl in ready:
                t = times[id(impl)]
                q1, q3 = (float(q) for q in np.percentile(t, [25, 75]))
                rows.append(FitRow(wname, w.label(), impl.name, impl.kind, "ok", threads,
                                   float(np.median(t)), q1, q3, float(np.min(t)),
                                   impl.accuracy(), w.steps, w.description()))
                used.append(impl)
            scores[wname] = dict(label=w.label(), seconds=time_scores(ready, data, repeats, settle))
        now = datetime.datetime.now(datetime.timezone.utc)
        info = dict(load=load_average(), date=now.strftime("%Y-%m-%d %H:%M UTC"),
                    cpu=cpu_model(), cores=os.cpu_count(), platform=platform.platform(),
                    threads=threads, pinned=limits.pinned is not None, repeats=repeats,
                    quick=quick, versions=versions(used), blas=blas_info(), scores=scores)
    return rows, info


def rows_to_json(rows):
    return [asdict(r) for r in rows]


def rows_from_json(items):
    return [FitRow(**item) for item in items]


def _s(seconds):
    if not np.isfinite(seconds):
        return "—"
    if seconds < 0.1:  # three significant digits: digits' 0.006 s fits were 0.0058-0.0068
        return f"{seconds:.3g}"
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


def _ratio(a, b):
    return f"{a / b:.2f}×" if np.isfinite(a) and np.isfinite(b) and b > 0 else "—"


def markdown_train(runs):
    """The fit comparison as markdown: one column group per thread setting of ``runs``
    (a list of ``(rows, info)``, the first one the reference for the speed-up)."""
    first = runs[0][1]
    settings = [info["threads"] for _, info in runs]
    label = {t: ("1 thread" if t == 1 else "default threads" if t == 0 else f"{t} threads")
             for t in settings}
    lines = [f"### chainrule bench --train — {first['date']}", "",
             f"- machine: {first['cpu']}, {first['cores']} logical cores; {first['platform']}; "
             "load average at the end of each run: " + ", ".join(
                 f"{label[i['threads']]} {i['load']:.1f}" for _, i in runs
                 if i.get("load") is not None),
             "- versions: " + ", ".join(f"{k} {v}" for k, v in first["versions"].items())]
    for _, info in runs:
        blas = sorted({f"{b['api']} {b['version']} from {b['owner']} ({b['threads']} threads)"
                       for b in info["blas"]})
        lines.append(f"- BLAS/OpenMP with {label[info['threads']]}: "
                     + ("; ".join(blas) if blas else "unknown"))
    described = {}
    for r in runs[0][0]:
        described.setdefault(r.workload, r.description)
    lines.append("- workloads: " + "; ".join(described.values()))
    lines.append(f"- wall seconds of a whole fit, median of {first['repeats']} interleaved "
                 "runs after an untimed warm-up fit (IQR in brackets), each fit + a score of "
                 "the training data; × peer = / the fastest of scikit-learn, PyTorch, JAX; "
                 "× floor = / the GEMMs alone (every mini-batch step's and the scoring "
                 "forward's, on data laid out once as they want it); "
                 + (f"speed-up = {label[settings[0]]} / {label[settings[1]]}; "
                    if len(settings) > 1 else "")
                 + "accuracy on the training data after the fit"
                 + ("; 1 thread: BLAS, numba, torch and XLA limited, the process pinned to one "
                    "CPU" if 1 in settings else "")
                 + (f"; with more threads each fit after {SETTLE_SECONDS:g} s idle (pools "
                    "spinning from the fit before would take its cores)"
                    if any(t != 1 for t in settings) else ""))
    lines.append("")
    head = "| workload | implementation |"
    sep = "|---|---|"
    for t in settings:
        head += f" {label[t]} s | × peer | × floor |"
        sep += "---:|---:|---:|"
    if len(settings) > 1:
        head += " speed-up |"
        sep += "---:|"
    head += " accuracy |"
    sep += "---:|"
    lines += [head, sep]
    keyed = [{(r.workload, r.name.split(" → ")[0]): r for r in rows} for rows, _ in runs]
    order = [(r.workload, r.name.split(" → ")[0]) for r in runs[0][0]]
    stats = []
    for rows, _ in runs:
        per = {}
        for r in rows:
            if r.status != "ok":
                continue
            s = per.setdefault(r.workload, dict(peer=np.inf, floor=np.nan))
            if r.kind == "peer":
                s["peer"] = min(s["peer"], r.median)
            elif r.kind == "floor":
                s["floor"] = r.median
        stats.append(per)
    for key in order:
        first_row = keyed[0][key]
        line = f"| {first_row.label} | {first_row.name} |"
        if first_row.status != "ok":
            line += " — | — | — |" * len(settings) + (" — |" if len(settings) > 1 else "")
            lines.append(line + f" {first_row.status} |")
            continue
        medians = []
        for k, (rows, _) in enumerate(runs):
            r = keyed[k].get(key)
            if r is None or r.status != "ok":
                line += " — | — | — |"
                medians.append(np.nan)
                continue
            s = stats[k].get(key[0], {})
            peer = s.get("peer", np.nan)
            line += (f" {_s(r.median)} [{_s(r.q1)}–{_s(r.q3)}] | "
                     f"{_ratio(r.median, peer if np.isfinite(peer) else np.nan)} | "
                     f"{_ratio(r.median, s.get('floor', np.nan))} |")
            medians.append(r.median)
        if len(settings) > 1:
            line += f" {_ratio(medians[0], medians[1])} |"
        acc = first_row.accuracy
        line += f" {100 * acc:.1f} % |" if np.isfinite(acc) else " — |"
        lines.append(line)
    for rows, info in runs:
        scores = {k: v for k, v in info.get("scores", {}).items() if v["seconds"]}
        if not scores:
            continue
        lines += ["", f"`score(X, Y)` of the training data alone, {label[info['threads']]}: "
                  "median seconds of interleaved calls after the fits"
                  + ("" if info["threads"] == 1 else
                     f", each after {SETTLE_SECONDS:g} s idle as the fits")
                  + ", and × the forward's products alone (into arrays allocated once)", "",
                  "| workload | implementation | s | × products |", "|---|---|---:|---:|"]
        for entry in scores.values():
            seconds = entry["seconds"]
            for name, t in seconds.items():
                lines.append(f"| {entry['label']} | {name} | {_s(t)} | "
                             f"{_ratio(t, seconds['products'])} |")
    return "\n".join(lines) + "\n"
