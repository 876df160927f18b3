"""The implementations that ``chainrule bench`` times side by side, one class each.

Every implementation trains the same network on the same batch with plain full-batch
gradient descent (no momentum, no L2), starting from the same parameters. Each offers:

``setup(problem)``
    build its own state from a :class:`chainrule.bench.Problem` (imports happen here,
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


class Implementation(abc.ABC):
    """One implementation of a training step; ``setup`` once, then ``step`` is timed."""

    name = "?"
    kind = "peer"
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
    """A chainrule backend's ``train_step`` op (what ``Network.step`` runs, without validation)."""

    kind = "chainrule"

    def __init__(self, backend):
        self.backend = backend
        self.name = f"chainrule[{backend}]"

    def setup(self, problem):
        from .backends import registry as _dispatch

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
        ok, _ = self.ops.train_step(p.X, p.Y, self.Ws, self.bs, p.activations, p.loss,
                                    p.learning_rate, 0.0, None, False)
        if not ok:
            raise FloatingPointError(f"{self.name}: a step's gradient was not finite")

    def version(self):
        from . import __version__

        return __version__


# --------------------------------------------------------------------------- course style
def _sigmoid(Z):
    A = 1 / (1 + np.exp(-Z))
    return A, Z


def _relu(Z):
    A = np.maximum(0, Z)
    return A, Z


def _tanh(Z):
    return np.tanh(Z), Z


def _softmax(Z):
    E = np.exp(Z - np.max(Z, axis=0, keepdims=True))
    return E / np.sum(E, axis=0, keepdims=True), Z


def _relu_backward(dA, cache):
    Z = cache
    dZ = np.array(dA, copy=True)
    dZ[Z <= 0] = 0
    return dZ


def _sigmoid_backward(dA, cache):
    Z = cache
    s = 1 / (1 + np.exp(-Z))
    return dA * s * (1 - s)


def _tanh_backward(dA, cache):
    Z = cache
    return dA * (1 - np.tanh(Z) ** 2)


_COURSE_FORWARD = {"sigmoid": _sigmoid, "relu": _relu, "tanh": _tanh, "softmax": _softmax}
_COURSE_BACKWARD = {"sigmoid": _sigmoid_backward, "relu": _relu_backward, "tanh": _tanh_backward}


def linear_forward(A, W, b):
    Z = np.dot(W, A) + b
    cache = (A, W, b)
    return Z, cache


def linear_activation_forward(A_prev, W, b, activation):
    Z, linear_cache = linear_forward(A_prev, W, b)
    A, activation_cache = _COURSE_FORWARD[activation](Z)
    cache = (linear_cache, activation_cache)
    return A, cache


def L_model_forward(X, parameters, hidden, output):
    caches = []
    A = X
    L = len(parameters) // 2
    for l in range(1, L):
        A_prev = A
        A, cache = linear_activation_forward(A_prev, parameters["W" + str(l)],
                                             parameters["b" + str(l)], hidden)
        caches.append(cache)
    AL, cache = linear_activation_forward(A, parameters["W" + str(L)], parameters["b" + str(L)],
                                          output)
    caches.append(cache)
    return AL, caches


def linear_backward(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(dZ, A_prev.T)
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ)
    return dA_prev, dW, db


def linear_activation_backward(dA, cache, activation):
    linear_cache, activation_cache = cache
    dZ = _COURSE_BACKWARD[activation](dA, activation_cache)
    return linear_backward(dZ, linear_cache)


def L_model_backward(AL, Y, caches, hidden, output):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    current_cache = caches[L - 1]
    if output == "sigmoid":
        dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
        dA_prev_temp, dW_temp, db_temp = linear_activation_backward(dAL, current_cache, "sigmoid")
    else:  # softmax with cross-entropy: the course derives dZ[L] = A[L] - Y directly
        dA_prev_temp, dW_temp, db_temp = linear_backward(AL - Y, current_cache[0])
    grads["dA" + str(L - 1)] = dA_prev_temp
    grads["dW" + str(L)] = dW_temp
    grads["db" + str(L)] = db_temp
    for l in reversed(range(L - 1)):
        current_cache = caches[l]
        dA_prev_temp, dW_temp, db_temp = linear_activation_backward(grads["dA" + str(l + 1)],
                                                                    current_cache, hidden)
        grads["dA" + str(l)] = dA_prev_temp
        grads["dW" + str(l + 1)] = dW_temp
        grads["db" + str(l + 1)] = db_temp
    return grads


def update_parameters(params, grads, learning_rate):
    parameters = params.copy()
    L = len(parameters) // 2
    for l in range(L):
        parameters["W" + str(l + 1)] = (parameters["W" + str(l + 1)]
                                        - learning_rate * grads["dW" + str(l + 1)])
        parameters["b" + str(l + 1)] = (parameters["b" + str(l + 1)]
                                        - learning_rate * grads["db" + str(l + 1)])
    return parameters


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


# --------------------------------------------------------------------------- the floor
class GemmFloor(Implementation):
    """Only the matrix products a step needs, into preallocated outputs: ``W A_prev`` per layer,
    ``dZ A_prev^T`` per layer and ``W^T dZ`` for every layer but the first."""

    name = "bare GEMMs (floor)"
    kind = "floor"
    trains = False

    def setup(self, problem):
        self.p = problem
        X, Ws = problem.X, problem.Ws
        m = X.shape[1]
        self.Ws = [np.array(W) for W in Ws]
        self.As = [X] + [np.ones((W.shape[0], m), dtype=X.dtype) for W in Ws]
        self.dZs = [np.ones((W.shape[0], m), dtype=X.dtype) for W in Ws]
        self.dWs = [np.empty_like(W) for W in Ws]
        self.dAs = [np.empty((W.shape[1], m), dtype=X.dtype) for W in Ws]
        self.WTs = [W.T for W in self.Ws]
        self.ATs = [A.T for A in self.As]

    def step(self):
        matmul = np.matmul
        Ws, As, dZs, dWs, dAs, WTs, ATs = self.Ws, self.As, self.dZs, self.dWs, self.dAs, \
            self.WTs, self.ATs
        L = len(Ws)
        for l in range(L):
            matmul(Ws[l], As[l], out=As[l + 1])
        for l in range(L - 1, -1, -1):
            matmul(dZs[l], ATs[l], out=dWs[l])
            if l:
                matmul(WTs[l], dZs[l], out=dAs[l])

    def version(self):
        return np.__version__


# --------------------------------------------------------------------------- PyTorch
class Torch(Implementation):
    """Idiomatic PyTorch on the CPU: ``nn.Sequential`` of ``nn.Linear``, a logits loss
    (``BCEWithLogitsLoss`` / ``CrossEntropyLoss``, both means over the batch) and
    ``optim.SGD`` without momentum."""

    name = "pytorch (cpu)"
    traced = False

    def setup(self, problem):
        import torch

        self.torch = torch
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
def _configure_jax_threads(threads):
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
    traced = False

    def setup(self, problem):
        _configure_jax_threads(problem.threads)
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
    "floor": GemmFloor,
}
