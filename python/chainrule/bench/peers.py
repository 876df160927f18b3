"""The peers of the step comparison, one class each: a chainrule backend's single step
(``chainrule.training.step.train_step``),
NumPy written the course's way, PyTorch, JAX and scikit-learn (the floor is in ``floor``).

Every implementation trains the same network on the same batch with plain full-batch
gradient descent (no momentum, no L2), starting from the same parameters. Each offers:

``setup(problem)``
    build its own state from a :class:`chainrule.bench.workloads.Problem` (imports happen here,
    so a missing peer raises ``ImportError``);
``set_params(Ws, bs)`` / ``get_params() -> (Ws, bs)``
    parameters in the course's layout (``W`` is ``(n[l], n[l-1])``, ``b`` is ``(n[l], 1)``);
``step()``
    one training step: forward, backward and the SGD update, with the result ready.

``kind`` is ``"chainrule"``, ``"peer"`` or ``"floor"``; ``traced`` says whether its
memory goes through Python's allocator (so ``tracemalloc`` sees it).
"""

from __future__ import annotations

import abc
import os
import sys

import numpy as np

from ..explain.course_style import L_model_backward, L_model_forward, update_parameters
from ..training.step import train_step


class Implementation(abc.ABC):
    """One implementation of a training step; ``setup`` once, then ``step`` is timed."""

    name = "?"
    kind = "peer"
    #: The package whose version the table reports (``None``: chainrule's, NumPy's).
    package = None
    traced = True
    #: ``set_params``/``get_params`` are meaningful (the floor only multiplies matrices).
    trains = True

    @abc.abstractmethod
    def setup(self, problem):
        """Prepare for ``problem`` (a ``bench.Problem``): copy its parameters and data."""

    @abc.abstractmethod
    def step(self):
        """One training step (forward, backward, SGD update) on the problem's batch."""

    def set_params(self, Ws, bs):
        raise TypeError(f"{self.name} does not train: it has no parameters to set")

    def get_params(self):
        raise TypeError(f"{self.name} does not train: it has no parameters to read")

    def version(self):
        return ""


# --------------------------------------------------------------------------- chainrule
class Chainrule(Implementation):
    """A chainrule backend's single step, ``train_step(ops, ...)`` (what ``Network.step`` runs,
    without validation)."""

    kind = "chainrule"

    def __init__(self, backend):
        self.backend = backend
        self.name = f"chainrule[{backend}]"

    def setup(self, problem):
        from ..backends import registry as _dispatch

        self.ops = _dispatch.Ops(self.backend)
        self.p = problem
        self.set_params(problem.Ws, problem.bs)

    def set_params(self, Ws, bs):
        self.Ws = [np.array(W, order="C") for W in Ws]
        self.bs = [np.array(b, order="C") for b in bs]

    def get_params(self):
        return self.Ws, self.bs

    def step(self):
        p = self.p
        ok, _ = train_step(self.ops, p.X, p.Y, self.Ws, self.bs, p.activations, p.loss,
                                    p.learning_rate, 0.0, None, False)
        if not ok:
            raise FloatingPointError(f"{self.name}: a step's gradient was not finite")

    def version(self):
        from .. import __version__

        return __version__


# --------------------------------------------------------------------------- course style
# The course's own code (L_model_forward, L_model_backward, update_parameters):
# chainrule.explain.course_style, one copy for this peer, the doctor's examples and the
# tests' corpus.


class CourseNumpy(Implementation):
    """NumPy as the course writes it: caches, a grads dict, ``dA0`` computed, new arrays
    at every update."""

    name = "numpy course-style"

    def setup(self, problem):
        self.p = problem
        self.hidden = problem.hidden
        self.output = problem.output
        self.set_params(problem.Ws, problem.bs)

    def set_params(self, Ws, bs):
        self.parameters = {}
        for l, (W, b) in enumerate(zip(Ws, bs), 1):
            self.parameters[f"W{l}"] = np.array(W)
            self.parameters[f"b{l}"] = np.array(b)

    def get_params(self):
        L = len(self.parameters) // 2
        return ([self.parameters[f"W{l}"] for l in range(1, L + 1)],
                [self.parameters[f"b{l}"] for l in range(1, L + 1)])

    def step(self):
        p = self.p
        AL, caches = L_model_forward(p.X, self.parameters, self.hidden, self.output)
        grads = L_model_backward(AL, p.Y, caches, self.hidden, self.output)
        self.parameters = update_parameters(self.parameters, grads, p.learning_rate)

    def version(self):
        return np.__version__


# --------------------------------------------------------------------------- PyTorch
class Torch(Implementation):
    """Idiomatic PyTorch on the CPU: ``nn.Sequential`` of ``nn.Linear``, a logits loss
    (``BCEWithLogitsLoss`` / ``CrossEntropyLoss``, both means over the batch) and
    ``optim.SGD`` without momentum."""

    name = "pytorch (cpu)"
    package = "pytorch"
    traced = False

    def setup(self, problem):
        import torch

        self.torch = torch
        if problem.threads:
            torch.set_num_threads(problem.threads)
        self.p = problem
        dtype = {"float32": torch.float32, "float64": torch.float64}[problem.dtype.name]
        layers = []
        hidden = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}
        dims = problem.layer_dims
        for l in range(1, len(dims)):
            layers.append(torch.nn.Linear(dims[l - 1], dims[l]))
            if l < len(dims) - 1:
                layers.append(hidden[problem.hidden]())
        self.model = torch.nn.Sequential(*layers).to(dtype)
        self.linears = [layer for layer in self.model if isinstance(layer, torch.nn.Linear)]
        self.X = torch.from_numpy(np.ascontiguousarray(problem.X.T))
        if problem.output == "sigmoid":
            self.criterion = torch.nn.BCEWithLogitsLoss()
            self.target = torch.from_numpy(np.ascontiguousarray(problem.Y.T))
        else:
            self.criterion = torch.nn.CrossEntropyLoss()
            self.target = torch.from_numpy(np.argmax(problem.Y, axis=0))
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=problem.learning_rate,
                                         momentum=0.0)
        self.set_params(problem.Ws, problem.bs)

    def set_params(self, Ws, bs):
        with self.torch.no_grad():
            for layer, W, b in zip(self.linears, Ws, bs):
                layer.weight.copy_(self.torch.from_numpy(np.array(W)))
                layer.bias.copy_(self.torch.from_numpy(np.array(b).ravel()))

    def get_params(self):
        Ws = [layer.weight.detach().numpy().copy() for layer in self.linears]
        bs = [layer.bias.detach().numpy().reshape(-1, 1).copy() for layer in self.linears]
        return Ws, bs

    def step(self):
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.criterion(self.model(self.X), self.target)
        loss.backward()
        self.optimizer.step()

    def version(self):
        return self.torch.__version__


# --------------------------------------------------------------------------- JAX
def configure_jax_threads(threads):
    """XLA reads its thread settings once, at import: set them before the first import.
    Its CPU client still starts a pool as large as the CPUs it may run on, so
    ``chainrule.bench`` also pins the process to ``threads`` CPUs (measured: without the pin,
    "one thread" JAX ran the wide step on both cores, 2x the CPU time of its wall time)."""
    if "jax" in sys.modules or threads != 1:
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "intra_op_parallelism_threads" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false "
                                   "intra_op_parallelism_threads=1").strip()


class Jax(Implementation):
    """``jax.jit`` of one step (``jax.grad`` of the mean loss, then ``p - lr g``), the course's
    column layout; float64 needs ``jax_enable_x64``, set here."""

    name = "jax jit (cpu)"
    package = "jax"
    traced = False

    def setup(self, problem):
        configure_jax_threads(problem.threads)
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_platforms", "cpu")
        self.jax = jax
        self.p = problem
        hidden = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}[problem.hidden]
        output = problem.output
        lr = problem.learning_rate

        def loss_fn(params, X, Y):
            A = X
            for W, b in params[:-1]:
                A = hidden(W @ A + b)
            W, b = params[-1]
            Z = W @ A + b
            m = X.shape[1]
            if output == "sigmoid":  # binary cross-entropy from the logits
                return jnp.sum(jax.nn.softplus(Z) - Y * Z) / m
            return -jnp.sum(Y * jax.nn.log_softmax(Z, axis=0)) / m

        def step(params, X, Y):
            grads = jax.grad(loss_fn)(params, X, Y)
            return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)

        self._step = jax.jit(step)
        self.X = jax.device_put(problem.X)
        self.Y = jax.device_put(problem.Y)
        self.set_params(problem.Ws, problem.bs)

    def set_params(self, Ws, bs):
        self.params = [(self.jax.device_put(np.array(W)), self.jax.device_put(np.array(b)))
                       for W, b in zip(Ws, bs)]

    def get_params(self):
        return ([np.asarray(W) for W, _ in self.params], [np.asarray(b) for _, b in self.params])

    def step(self):
        self.params = self._step(self.params, self.X, self.Y)
        self.jax.block_until_ready(self.params)

    def version(self):
        import jaxlib

        return f"{self.jax.__version__} (jaxlib {jaxlib.__version__})"


# --------------------------------------------------------------------------- scikit-learn
class Sklearn(Implementation):
    """``MLPClassifier.partial_fit`` on the whole batch: ``solver="sgd"``, no momentum,
    ``alpha=0``, ``batch_size=m``, no shuffling. It also computes the loss each call."""

    name = "scikit-learn MLPClassifier"
    package = "scikit-learn"

    def setup(self, problem):
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        self.p = problem
        m = problem.X.shape[1]
        self.clf = MLPClassifier(hidden_layer_sizes=tuple(problem.layer_dims[1:-1]),
                                 activation=problem.hidden, solver="sgd", alpha=0.0,
                                 batch_size=m, learning_rate="constant",
                                 learning_rate_init=problem.learning_rate, momentum=0.0,
                                 nesterovs_momentum=False, shuffle=False, max_iter=1,
                                 random_state=0)
        self.X = np.ascontiguousarray(problem.X.T)
        if problem.output == "sigmoid":
            self.y = problem.Y.ravel().astype(np.int64)
            self.classes = np.array([0, 1])
        else:
            self.y = np.argmax(problem.Y, axis=0)
            self.classes = np.arange(problem.Y.shape[0])
        # The first call builds the network (its own random init) and takes one step;
        # the parameters are then overwritten in place with ours.
        self.clf.partial_fit(self.X, self.y, classes=self.classes)
        if self.clf.out_activation_ != problem.output.replace("sigmoid", "logistic"):
            raise ValueError(f"sklearn chose output {self.clf.out_activation_!r}")
        self.set_params(problem.Ws, problem.bs)

    def set_params(self, Ws, bs):
        for coef, intercept, W, b in zip(self.clf.coefs_, self.clf.intercepts_, Ws, bs):
            coef[...] = W.T
            intercept[...] = b.ravel()

    def get_params(self):
        return ([c.T.copy() for c in self.clf.coefs_],
                [i.reshape(-1, 1).copy() for i in self.clf.intercepts_])

    def step(self):
        self.clf.partial_fit(self.X, self.y)

    def version(self):
        import sklearn

        return sklearn.__version__


PEERS = {
    "course": CourseNumpy,
    "torch": Torch,
    "jax": Jax,
    "sklearn": Sklearn,
}
