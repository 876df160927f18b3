"""``Network``: a thin model. It holds parameters, validates at the boundary and calls the ops
of its backend; the numerics live in the reference and the kernels."""

from __future__ import annotations

import numpy as np

from . import _validate as check
from . import reference as ref
from ._compose import cost as _cost
from ._dispatch import Ops, choose_backend
from .errors import NonFiniteError

_DEFAULT_LOSS = {"sigmoid": "binary_crossentropy", "softmax": "categorical_crossentropy"}


class Network:
    """A fully-connected network in the course's notation (examples are columns).

    Parameters
    ----------
    layer_dims : sequence of int
        ``[n[0], n[1], ..., n[L]]``: the input size, then each layer's units.
    activations : sequence, optional
        One activation per layer (``L`` entries): ``"sigmoid"``, ``"relu"``, ``"tanh"``,
        ``"leaky_relu"`` or ``("leaky_relu", alpha)``, ``"identity"``, ``"softmax"``
        (output only). Default: ``hidden`` for layers ``1..L-1`` and ``output`` for ``L``.
    hidden, output : str
        The hidden and output activations when ``activations`` is not given.
    loss : str, optional
        ``"binary_crossentropy"``, ``"categorical_crossentropy"`` or
        ``"mean_squared_error"``. Default: binary CE for a sigmoid output, categorical
        CE for softmax, MSE otherwise.
    init : str
        ``"he"``, ``"xavier"``, ``"glorot_uniform"``, ``"random"`` (×0.01) or ``"zeros"``.
    seed : int
        Seeds the model's ``numpy.random.Generator`` (initialisation, and later shuffling
        and dropout).
    legacy_seed : int, optional
        Draw the weights exactly as the course does (``np.random.seed`` + ``randn``).
    dtype : {"float64", "float32"}
        The dtype of parameters and computation; float32 stays float32 end to end.
    backend : {"auto", "numpy", "numba", "c"}
        Which kernels to run; ``CHAINRULE_BACKEND`` overrides ``"auto"``.

    Attributes
    ----------
    parameters : dict
        ``W1, b1, ..., WL, bL`` with shapes ``(n[l], n[l-1])`` and ``(n[l], 1)``.
    backend : str
        The backend in use.
    history_ : dict
        After :meth:`fit`: ``"epoch"`` and ``"cost"`` lists.

    Examples
    --------
    >>> from chainrule import Network
    >>> from chainrule.datasets import load_planar_dataset
    >>> X, Y = load_planar_dataset()
    >>> net = Network([2, 4, 1], hidden="tanh", output="sigmoid", backend="numpy")
    >>> _ = net.fit(X, Y, epochs=2000, learning_rate=1.2, progress=False)
    >>> float(net.score(X, Y)) > 0.85
    True
    """

    def __init__(self, layer_dims, activations=None, hidden="relu", output="sigmoid", loss=None,
                 init="he", seed=0, dtype="float64", backend="auto", legacy_seed=None):
        self.layer_dims = check.layer_dims(layer_dims)
        L = len(self.layer_dims) - 1
        if activations is None:
            activations = [hidden] * (L - 1) + [output]
        self.activations = check.activations(activations, L)
        out_name = self.activations[-1][0]
        self.loss = check.loss(_DEFAULT_LOSS.get(out_name, "mean_squared_error") if loss is None
                               else loss, out_name, self.layer_dims[-1])
        self.init = check.init(init)
        self.seed = check.seed(seed)
        self.dtype = check.dtype(dtype)
        self.rng = np.random.default_rng(seed)
        self._parameters = ref.initialize_parameters(
            self.layer_dims, init, rng=self.rng, legacy_seed=check.seed(legacy_seed, "legacy_seed"),
            dtype=self.dtype)
        self._backend_request = check.backend(backend)
        try:
            self.backend = choose_backend(self.layer_dims, None, self.dtype, self._backend_request)
        except ValueError as exc:  # a bad CHAINRULE_BACKEND
            raise check.InputError(str(exc)) from exc
        self._ops = Ops(self.backend)
        self.history_ = {"epoch": [], "cost": []}

    # ------------------------------------------------------------------ state
    @property
    def L(self):
        """The number of layers with parameters."""
        return len(self.layer_dims) - 1

    @property
    def parameters(self):
        """``{"W1": ..., "b1": ..., ...}``; assigning validates shapes and dtype and copies."""
        return self._parameters

    @parameters.setter
    def parameters(self, value):
        self._parameters = check.parameters(value, self.layer_dims, self.dtype)

    def get_config(self):
        """The constructor arguments as JSON-compatible values; ``Network.from_config`` inverts it."""
        return {
            "layer_dims": list(self.layer_dims),
            "activations": [[name, alpha] for name, alpha in self.activations],
            "loss": self.loss,
            "init": self.init,
            "seed": self.seed,
            "dtype": self.dtype.name,
            "backend": self._backend_request,
        }

    @classmethod
    def from_config(cls, config):
        """A new network (freshly initialised) from :meth:`get_config`'s output."""
        config = dict(config)
        config["activations"] = [tuple(a) if isinstance(a, (list, tuple)) else a
                                 for a in config["activations"]]
        return cls(**config)

    def get_state(self):
        """Everything learned, as ``{name: ndarray}`` copies: the parameters ``W1, b1, ...``
        (and, where training adds them, optimiser state)."""
        return {k: v.copy() for k, v in self._parameters.items()}

    def set_state(self, state):
        """Restore :meth:`get_state`'s output (validated; the model is unchanged on error)."""
        self.parameters = {k: v for k, v in state.items() if k[:1] in "Wb" and k[1:].isdigit()}

    def _Ws_bs(self):
        p = self._parameters
        return ([p[f"W{l}"] for l in range(1, self.L + 1)],
                [p[f"b{l}"] for l in range(1, self.L + 1)])

    def _use_backend_for(self, m):
        """Re-resolve ``auto`` for a batch of ``m`` examples (the rule may depend on m)."""
        backend = choose_backend(self.layer_dims, m, self.dtype, self._backend_request)
        if backend != self.backend:
            self.backend = backend
            self._ops = Ops(backend)
        return self._ops

    def _check_XY(self, X, *Y):
        X = check.X(X, self.layer_dims[0], self.dtype)
        if not Y:
            return X
        Y, = Y
        return X, check.Y(Y, self.layer_dims[-1], X.shape[1], self.loss, self.dtype)

    def __repr__(self):
        acts = [a if n == "leaky_relu" else n for n, a in self.activations]
        return (f"Network({self.layer_dims}, activations={acts}, loss={self.loss!r}, "
                f"dtype={self.dtype.name!r}, backend={self.backend!r})")

    # ------------------------------------------------------------------ forward / backward
    def forward(self, X):
        """Forward pass. Returns ``(AL, caches)`` with the course's caches ``((A_prev, W, b), Z)``.

        Parameters
        ----------
        X : array, shape (n[0], m)

        Returns
        -------
        AL : array, shape (n[L], m)
        caches : list of L tuples ``((A_prev, W, b), Z)``
        """
        X = self._check_XY(X)
        ops = self._use_backend_for(X.shape[1])
        Ws, bs = self._Ws_bs()
        Zs, As = ops.forward(X, Ws, bs, self.activations)
        if not np.isfinite(As[-1]).all():
            l = next(l for l in range(1, self.L + 1) if not np.isfinite(As[l]).all())
            raise NonFiniteError(f"forward: A[{l}] has NaN or inf (overflow in layer {l}, "
                                 f"max |Z{l}| = {np.nanmax(np.abs(Zs[l - 1]))}); scale the "
                                 f"inputs or check the parameters")
        caches = [((As[l - 1], Ws[l - 1], bs[l - 1]), Zs[l - 1]) for l in range(1, self.L + 1)]
        return As[-1], caches

    def backward(self, AL, Y, caches, convention="L"):
        """Backward pass from a :meth:`forward`'s output.

        Returns
        -------
        grads : dict
            The course's keys ``dA0..dA{L-1}``, ``dZ1..dZL``, ``dW1..dWL``, ``db1..dbL``;
            each has the shape of what it differentiates.
        """
        convention = check.convention(convention)
        As, Ws, Zs, m = check.caches(caches, self.layer_dims, self.dtype)
        As.append(check.AL(AL, self.layer_dims[-1], m, self.loss, self.dtype))
        Y = check.Y(Y, self.layer_dims[-1], m, self.loss, self.dtype)
        ops = self._use_backend_for(m)
        dZs, dWs, dbs, dAs = ops.backward(Y, Zs, As, Ws, self.activations, self.loss,
                                          convention, 0.0, None, True)
        grads = {}
        for l in range(1, self.L + 1):
            grads[f"dA{l - 1}"] = dAs[l - 1]
            grads[f"dZ{l}"] = dZs[l - 1]
            grads[f"dW{l}"] = dWs[l - 1]
            grads[f"db{l}"] = dbs[l - 1]
        return grads

    def cost(self, AL, Y):
        """The cost ``J`` of predictions ``AL`` against labels ``Y`` (a float)."""
        AL = check.AL(AL, self.layer_dims[-1], None, self.loss, self.dtype)
        Y = check.Y(Y, self.layer_dims[-1], AL.shape[1], self.loss, self.dtype)
        return _cost(Y, AL, self._Ws_bs()[0], self.loss)

    # ------------------------------------------------------------------ training
    def step(self, X, Y, learning_rate):
        """One step of gradient descent on ``X, Y``; returns the cost before the update.

        A step whose gradient is not finite raises :class:`NonFiniteError` and leaves
        the parameters as they were.
        """
        learning_rate = check.positive_finite(learning_rate, "learning_rate")
        X, Y = self._check_XY(X, Y)
        ops = self._use_backend_for(X.shape[1])
        Ws, bs = self._Ws_bs()
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite is reported below
            ok, J = ops.train_step(X, Y, Ws, bs, self.activations, self.loss, learning_rate, 0.0,
                                   None, True)
        if not ok:
            raise NonFiniteError("the gradient of this step is not finite (NaN or inf); the "
                                 "parameters were left unchanged — lower the learning rate or "
                                 "check the input scale")
        return J

    def fit(self, X, Y, epochs=1000, learning_rate=0.0075, cost_every=100, progress=True,
            print_cost=False):
        """Full-batch gradient descent for ``epochs`` steps.

        Parameters
        ----------
        X : array, shape (n[0], m)
        Y : array, shape (n[L], m) (or integer labels of shape (m,) for softmax)
        epochs : int
            Number of gradient-descent steps over the whole batch.
        learning_rate : float
        cost_every : int
            Record the cost every this many epochs (and at the last one) in ``history_``.
        progress : bool
            Show a progress bar with the cost (tqdm).
        print_cost : bool
            Print the cost whenever it is recorded, as the course does.

        Returns
        -------
        self

        Raises
        ------
        NonFiniteError
            If a step's gradient is not finite; the parameters are those of the last
            good step and ``history_`` holds the costs up to it.
        """
        learning_rate = check.positive_finite(learning_rate, "learning_rate")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise check.InputError(f"epochs must be an integer >= 0, got {epochs!r}")
        if isinstance(cost_every, bool) or not isinstance(cost_every, (int, np.integer)) \
                or cost_every <= 0:
            raise check.InputError(f"cost_every must be an integer > 0, got {cost_every!r}")
        X, Y = self._check_XY(X, Y)
        ops = self._use_backend_for(X.shape[1])
        Ws, bs = self._Ws_bs()
        bar = _progress_bar(epochs, progress)
        done = 0
        try:
            while done < epochs:
                # Chunks end where a cost is recorded, so a compiled loop runs between them.
                chunk = min(cost_every - done % cost_every, epochs - done)
                with np.errstate(over="ignore", invalid="ignore"):  # reported below
                    n_done, costs = ops.train_loop(X, Y, Ws, bs, self.activations, self.loss,
                                                   learning_rate, 0.0, chunk, cost_every)
                if n_done and (done % cost_every == 0):
                    self._record(done, float(costs[0]), print_cost, bar)
                done += n_done
                if bar is not None:
                    bar.update(n_done)
                if n_done < chunk:
                    raise NonFiniteError(
                        f"epoch {done}: the gradient is not finite (NaN or inf); training stopped "
                        f"and the parameters of epoch {done - 1} were kept — lower the learning "
                        f"rate (now {learning_rate}) or scale the inputs")
            if epochs:
                AL = ops.forward(X, Ws, bs, self.activations)[1][-1]
                self._record(epochs, _cost(Y, AL, Ws, self.loss), print_cost, bar)
        finally:
            if bar is not None:
                bar.close()
        return self

    def _record(self, epoch, J, print_cost, bar):
        self.history_["epoch"].append(int(epoch))
        self.history_["cost"].append(J)
        if bar is not None:
            bar.set_postfix(cost=f"{J:.6f}")
        if print_cost:
            print(f"Cost after iteration {epoch}: {J}")

    # ------------------------------------------------------------------ prediction
    def predict_proba(self, X):
        """``A[L]`` for ``X``: probabilities for sigmoid/softmax outputs. Shape ``(n[L], m)``."""
        return self.forward(X)[0]

    def predict(self, X):
        """Predictions: 0/1 of shape ``(1, m)`` (sigmoid), class indices ``(m,)`` (softmax),
        or ``A[L]`` for other outputs."""
        AL = self.predict_proba(X)
        out = self.activations[-1][0]
        if out == "sigmoid":
            return (AL > 0.5).astype(np.int64)
        if out == "softmax":
            return np.argmax(AL, axis=0)
        return AL

    def score(self, X, Y):
        """Accuracy for classifiers (fraction of correct predictions); R² for regression."""
        X = self._check_XY(X)
        Yv = check.Y(Y, self.layer_dims[-1], X.shape[1], self.loss, self.dtype)
        pred = self.predict(X)
        out = self.activations[-1][0]
        if out == "sigmoid" and self.layer_dims[-1] == 1:
            return float(np.mean(pred == Yv))
        if out == "softmax":
            return float(np.mean(pred == np.argmax(Yv, axis=0)))
        residual = np.sum((Yv - pred) ** 2)
        total = np.sum((Yv - Yv.mean(axis=1, keepdims=True)) ** 2)
        return float(1 - residual / total) if total else 0.0

    # ------------------------------------------------------------------ files
    def save(self, path):
        """Save to ``path`` atomically (``.npz`` + JSON metadata, no pickle).

        See :func:`chainrule.io.save`.
        """
        from .io import save
        return save(self, path)

    @classmethod
    def load(cls, path, backend=None):
        """A network from a :meth:`save`'d file; raises ``ModelFileError`` for a bad file.

        See :func:`chainrule.io.load`.
        """
        from .io import load
        return load(path, backend=backend)


def _progress_bar(total, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a dependency, but the model must not need it to train
        return None
    return tqdm(total=total, unit="epoch", leave=False, dynamic_ncols=True)
