"""``Network``: a thin model. It holds parameters, validates at the boundary and calls the ops
of its backend; the numerics live in the reference and the kernels."""

from __future__ import annotations

import numpy as np

from . import _validate as check
from . import io, spec
from . import reference as ref
from ._threads import limits_threads as _thread_limited
from .backends.compose import cost as _cost
from .backends.compose import update_is_safe
from .backends.registry import BACKENDS, Ops, choose_backend
from .errors import NonFiniteError
from .training import Trainable
from .training.loop import first_nonfinite, refused_step


_ALIGN = 64  # bytes: each parameter starts on a cache line, as large numpy allocations do


def _pack(params, dtype):
    """``params`` (validated arrays) copied into one zeroed buffer; returns ``(flat, views)``
    where each view is a C-contiguous, aligned, writable ``flat`` slice of its entry's shape
    (the gaps between them stay 0)."""
    step = _ALIGN // dtype.itemsize
    offsets, end = [], 0
    for a in params.values():
        offsets.append(end)
        end += -(-a.size // step) * step
    raw = np.zeros(end + step, dtype)
    start = (-raw.ctypes.data % _ALIGN) // dtype.itemsize
    flat = raw[start:start + end]
    views = {}
    for (key, a), offset in zip(params.items(), offsets):
        view = flat[offset:offset + a.size].reshape(a.shape)
        view[...] = a
        views[key] = view
    return flat, views


class ParameterDict(dict):
    """``Network.parameters``: a dict whose item assignment is checked like assigning the
    whole dict (shape, finite; a numeric array is cast to the network's dtype and stored as a
    C-contiguous, writable copy). Entries cannot be removed or added; while ``fit`` runs (from a callback)
    nothing can be assigned (:meth:`Network.fit` would train on the arrays it holds).

    The arrays are views of one buffer, ``_flat`` (with zero gaps between them), so that a
    step saves, checks and restores all the parameters with one call each; ``_Ws``/``_bs``
    list them by layer (``_Ws[l-1] = W[l]``). An assignment stores every entry anew.
    """

    def __init__(self, params, owner):
        super().__init__()
        self._owner = owner
        self._store(params)

    def _store(self, params):
        """Take ``params`` (checked arrays of the owner's dtype) as the new entries."""
        self._flat, views = _pack(params, self._owner.dtype)
        for key, view in views.items():
            super().__setitem__(key, view)
        L = len(views) // 2
        self._Ws = [views[f"W{l}"] for l in range(1, L + 1)]
        self._bs = [views[f"b{l}"] for l in range(1, L + 1)]

    def __setitem__(self, key, value):
        self.update({key: value})

    def update(self, *args, **kwargs):
        """Assign several entries at once: all are checked before any is stored (a refused
        entry leaves every entry as it was)."""
        owner = self._owner
        owner._refuse_while_fitting()
        new = dict(self)
        for key, value in dict(*args, **kwargs).items():
            if key not in self:
                raise check.InputError(f"{key!r} is not a parameter of this network (it has "
                                       f"{', '.join(self)}); parameters cannot be added")
            a = np.asarray(value) if not isinstance(value, np.ndarray) else value
            if a.dtype.kind not in "iuf":
                raise check.InputError(f"parameters[{key!r}] must be a numeric array, got "
                                       f"{type(value).__name__} of dtype {a.dtype}")
            with np.errstate(over="ignore"):  # an overflow to inf is refused as not finite
                new[key] = a.astype(owner.dtype, copy=False)  # cast to the network's dtype
        self._store(check.parameters(new, owner.layer_dims, owner.dtype))

    def __ior__(self, other):  # ``net.parameters |= {...}``: dict's own would skip the checks
        self.update(other)
        return self

    def _removal(self, *args, **kwargs):
        raise check.InputError("the parameters of a network cannot be removed; assign "
                               "net.parameters = {'W1': ..., 'b1': ..., ...} or "
                               "net.parameters['W1'] = ... instead")

    __delitem__ = pop = popitem = clear = setdefault = _removal

    def __reduce__(self):  # a copy or pickle of the dict alone is a plain dict
        return dict, (dict(self),)


class Network(Trainable):
    """A fully-connected network in the course's notation (examples are columns).

    Parameters
    ----------
    layer_dims : sequence of int
        ``[n[0], n[1], ..., n[L]]``: the input size, then each layer's units.
    activations : sequence, optional
        One activation per layer (``L`` entries): a name of :mod:`chainrule.spec`'s table
        ({activations}; {output_only} for the output only) or ``(name, alpha)``.
        Default: ``hidden`` for layers ``1..L-1``, ``output`` for ``L``.
    hidden, output : str
        The hidden and output activations when ``activations`` is not given.
    loss : str, optional
        {losses}. Default: the output activation's ``default_loss`` in the table (binary CE
        for sigmoid, categorical CE for softmax, else MSE).
    init : str
        ``"he"``, ``"xavier"``, ``"glorot_uniform"``, ``"random"`` (×0.01) or ``"zeros"``.
    seed : int
        Seeds the model's ``numpy.random.Generator`` (initialisation, and later shuffling
        and dropout).
    legacy_seed : int, optional
        Draw the weights exactly as the course does (``np.random.seed`` + ``randn``).
    dtype : {"float64", "float32"}
        The dtype of parameters and computation; float32 stays float32 end to end.
    backend : {backends}
        Which kernels to run; ``CHAINRULE_BACKEND`` overrides ``"auto"``.
    n_threads : int, optional
        Limit every BLAS thread pool (threadpoolctl, ``user_api="blas"``; this includes the
        BLAS the C backend calls) to this many threads while the model computes
        (:meth:`forward`, :meth:`backward`, :meth:`step`, :meth:`fit`, :meth:`predict`, ...),
        restoring the previous numbers after each call. ``None`` leaves the pools alone.
        Results with another thread count agree within rounding, not bit for bit (a BLAS
        splits a GEMM differently); the same count on the same machine repeats exactly.

    Attributes
    ----------
    parameters : dict
        ``W1, b1, ..., WL, bL`` with shapes ``(n[l], n[l-1])`` and ``(n[l], 1)``.
    backend : str
        The backend in use.
    history_ : dict
        After :meth:`fit`: lists ``"epoch"``, ``"cost"``, ``"score"``, ``"lr"``,
        ``"skipped"`` and, with validation data, ``"val_cost"``, ``"val_score"``.
    optimizer_ : Optimizer or None
        The optimiser of the last :meth:`fit`, with its state.
    train_state_ : chainrule.training.TrainState or None
        The counters the next ``fit(continue_training=True)`` continues from
        (:attr:`epochs_trained_`, :attr:`steps_trained_`).
    stop_reason_ : str or None
        Why the last fit ended: ``"completed"``, ``"early_stopping"``, ``"callback"``,
        ``"interrupted"`` or ``"nonfinite"``.

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
                 init="he", seed=0, dtype="float64", backend="auto", legacy_seed=None,
                 n_threads=None):
        self.layer_dims = check.layer_dims(layer_dims)
        L = len(self.layer_dims) - 1
        if activations is None:
            activations = [hidden] * (L - 1) + [output]
        self.activations = check.activations(activations, L)
        out_name = self.activations[-1][0]
        self.loss = check.loss(spec.default_loss(out_name) if loss is None
                               else loss, out_name, self.layer_dims[-1])
        self.init = check.init(init)
        self.seed = check.seed(seed)
        self.dtype = check.dtype(dtype)
        self.rng = np.random.default_rng(seed)
        self._parameters = ParameterDict(ref.initialize_parameters(
            self.layer_dims, init, rng=self.rng, legacy_seed=check.seed(legacy_seed, "legacy_seed"),
            dtype=self.dtype), self)
        self._backend_request = check.backend(backend)
        self.n_threads = check.n_threads(n_threads)
        try:
            self.backend = choose_backend(self.layer_dims, None, self.dtype, self._backend_request)
        except ValueError as exc:  # a bad CHAINRULE_BACKEND
            raise check.InputError(str(exc)) from exc
        self._ops = Ops(self.backend)
        self._reset_training_state()

    # ------------------------------------------------------------------ state
    @property
    def L(self):
        """The number of layers with parameters."""
        return len(self.layer_dims) - 1

    @property
    def parameters(self):
        """``{"W1": ..., "b1": ..., ...}``; assigning the dict or one entry validates shapes,
        dtype and finiteness and stores copies. Refused while :meth:`fit` runs (from a
        callback): return ``True`` from ``on_epoch_end`` to stop, assign, then continue with
        ``fit(..., continue_training=True)``."""
        return self._parameters

    @parameters.setter
    def parameters(self, value):
        self._refuse_while_fitting()
        self._parameters = ParameterDict(
            check.parameters(value, self.layer_dims, self.dtype), self)

    def _refuse_while_fitting(self):
        if getattr(self, "_fitting", False):
            raise check.InputError(
                "the parameters cannot be assigned while fit runs (fit trains the arrays it "
                "holds, so the assignment would be lost): return True from the callback's "
                "on_epoch_end to stop, assign, then fit(..., continue_training=True)")

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
            "n_threads": self.n_threads,
        }

    @classmethod
    def from_config(cls, config):
        """A new network (freshly initialised) from :meth:`get_config`'s output."""
        config = dict(config)
        config["activations"] = [tuple(a) if isinstance(a, (list, tuple)) else a
                                 for a in config["activations"]]
        return cls(**config)

    def __getstate__(self):
        # No backend objects in a pickle: only arrays, plain values and the generator.
        state = dict(self.__dict__)
        state.pop("_ops", None)
        state["_parameters"] = dict(self._parameters)
        state.pop("_fitting", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("n_threads", None)  # pickled before n_threads existed
        self._parameters = ParameterDict(self._parameters, self)
        self._upgrade_pickled_training_state()
        try:
            self._ops = Ops(self.backend)
        except ImportError:  # unpickled where that backend is missing: let the policy choose
            self.backend = choose_backend(self.layer_dims, None, self.dtype, "auto")
            self._ops = Ops(self.backend)

    # ------------------------------------------------------------------ for chainrule.training
    def layer_arrays(self):
        """``Ws, bs``: the parameter arrays themselves (``Ws[l-1] = W[l]``), updated in place."""
        p = self._parameters
        return list(p._Ws), list(p._bs)

    def ops_for(self, m, steps=None):
        """The ops for ``steps`` steps on batches of ``m`` examples (``auto`` is re-resolved:
        it may depend on both)."""
        if self._backend_request == self.backend:  # a forced one (env and shape do not matter)
            return self._ops
        backend = choose_backend(self.layer_dims, m, self.dtype, self._backend_request,
                                 steps=steps)
        if backend != self.backend:
            self.backend = backend
            self._ops = Ops(backend)
        return self._ops

    def validate_data(self, X, *Y):
        """``X`` (and ``Y``) checked and converted to this network's shapes and dtype."""
        X = check.X(X, self.layer_dims[0], self.dtype)
        if not Y:
            return X
        Y, = Y
        return X, check.Y(Y, self.layer_dims[-1], X.shape[1], self.loss, self.dtype)

    _check_XY = validate_data  # the name explain/ calls

    def __repr__(self):
        acts = [a if spec.ACTIVATIONS[n].has_alpha else n for n, a in self.activations]
        return (f"Network({self.layer_dims}, activations={acts}, loss={self.loss!r}, "
                f"dtype={self.dtype.name!r}, backend={self.backend!r})")

    # ------------------------------------------------------------------ forward / backward
    @_thread_limited
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
        Zs, As, Ws, bs = self._forward(X)
        return As[-1], list(zip(zip(As, Ws, bs), Zs))

    def _forward(self, X):
        """:meth:`forward`'s pass: ``Zs, As, Ws, bs`` (``As[0]`` is the validated ``X``)."""
        X = self.validate_data(X)
        ops = self.ops_for(X.shape[1])
        Ws, bs = self.layer_arrays()
        Zs, As = ops.forward(X, Ws, bs, self.activations)
        if not check.all_finite(As[-1]):
            l = next(l for l in range(1, self.L + 1) if not check.all_finite(As[l]))
            raise NonFiniteError(f"forward: A[{l}] has NaN or inf (overflow in layer {l}, "
                                 f"max |Z{l}| = {np.nanmax(np.abs(Zs[l - 1]))}); scale the "
                                 f"inputs or check the parameters")
        return Zs, As, Ws, bs

    @_thread_limited
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
        ops = self.ops_for(m)
        dZs, dWs, dbs, dAs = ops.backward(Y, Zs, As, Ws, self.activations, self.loss,
                                          convention, 0.0, None, True)
        grads = {}
        for l in range(1, self.L + 1):
            grads[f"dA{l - 1}"] = dAs[l - 1]
            grads[f"dZ{l}"] = dZs[l - 1]
            grads[f"dW{l}"] = dWs[l - 1]
            grads[f"db{l}"] = dbs[l - 1]
        return grads

    @_thread_limited
    def cost(self, AL, Y):
        """The cost ``J`` of predictions ``AL`` against labels ``Y`` (a float)."""
        AL = check.AL(AL, self.layer_dims[-1], None, self.loss, self.dtype)
        Y = check.Y(Y, self.layer_dims[-1], AL.shape[1], self.loss, self.dtype)
        return _cost(Y, AL, self.layer_arrays()[0], self.loss)

    # ------------------------------------------------------------------ training
    @_thread_limited
    def step(self, X, Y, learning_rate):
        """One step of gradient descent on ``X, Y``; returns the cost before the update.

        The update-safety rule (:func:`chainrule.backends.compose.update_is_safe`): a step
        whose gradient is not finite, or whose update would overflow the dtype, raises
        :class:`NonFiniteError` and leaves the parameters as they were.
        """
        if getattr(self, "_fitting", False):
            raise check.InputError("step was called while fit runs (from a callback): fit "
                                   "trains the same parameters; return True from the "
                                   "callback to stop, then step")
        learning_rate = check.positive_finite(learning_rate, "learning_rate")
        X, Y = self.validate_data(X, Y)
        ops = self.ops_for(X.shape[1])
        Ws, bs = self.layer_arrays()
        flat = self._parameters._flat  # every parameter is a view of it
        before = flat.copy()
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite is reported below
            ok, J = ops.train_step(X, Y, Ws, bs, self.activations, self.loss, learning_rate, 0.0,
                                   None, True)
        # The cost must be finite in the network's dtype (a compiled step sums it in float64).
        if ok and abs(J) <= float(np.finfo(self.dtype).max) and check.all_finite(flat):
            return J
        J = J if abs(J) <= float(np.finfo(self.dtype).max) else float("inf")
        flat[...] = before  # the backend's check is the rule; this is its guarantee on
        #                     every backend
        with np.errstate(over="ignore", invalid="ignore"):
            Zs, As = ops.forward(X, Ws, bs, self.activations)
            grads = ops.backward(Y, Zs, As, Ws, self.activations, self.loss, "L", 0.0, None,
                                 False)[1:3]
        named = {f"d{k}{l}": g for k, gs in zip(("W", "b"), grads) for l, g in enumerate(gs, 1)}
        bad = first_nonfinite(J, *grads) or next(
            (f"update of {k[1:]}" for k, g in named.items()
             if not update_is_safe([self._parameters[k[1:]]], [g], learning_rate)),
            "update of the parameters")
        raise NonFiniteError(refused_step("step", bad, learning_rate, self._parameters, named,
                                          self.dtype))

    def score_from(self, X, Yv, AL):
        """:meth:`score` on validated arrays, from their forward pass ``AL``."""
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging fit scores NaN/-inf
            return ref.score(AL, Yv, self.activations[-1])

    # ------------------------------------------------------------------ prediction
    @_thread_limited
    def predict_proba(self, X):
        """``A[L]`` for ``X``: probabilities for sigmoid/softmax outputs. Shape ``(n[L], m)``."""
        return self._forward(X)[1][-1]

    @_thread_limited
    def predict(self, X):
        """Predictions: 0/1 of shape ``(1, m)`` (sigmoid), class indices ``(m,)`` (softmax),
        or ``A[L]`` for other outputs."""
        return ref.predict(self._forward(X)[1][-1], self.activations[-1])

    @_thread_limited
    def score(self, X, Y):
        """Accuracy for classifiers (fraction of correct predictions); R² for regression."""
        X = self.validate_data(X)
        Yv = check.Y(Y, self.layer_dims[-1], X.shape[1], self.loss, self.dtype)
        AL = self.predict_proba(X)
        return ref.score(AL, Yv, self.activations[-1], ref.predict(AL, self.activations[-1]))

    # ------------------------------------------------------------------ files
    def save(self, path):
        """Save to ``path`` atomically (``.npz`` + JSON metadata, no pickle); see :func:`chainrule.io.save`."""
        return io.save(self, path)

    @classmethod
    def load(cls, path, backend=None):
        """A network from a :meth:`save`'d file; raises ``ModelFileError`` for a bad file.

        ``backend`` overrides the saved backend request; by default the saved one is used,
        or ``"auto"`` with a warning when it is not available here.
        """
        return io.restore(cls, path, backend)

    # ------------------------------------------------------------------ display
    def summary(self, m=None):
        """The layers with the shapes of ``W``, ``b``, ``Z`` and ``A`` for ``m`` examples
        (``"m"`` when None), parameter counts, activations and backend: text for ``print``,
        a table in a notebook. See :func:`chainrule.explain.display.network_text`."""
        from .explain.display import Rich, network_html, network_text

        return Rich(network_text(self, m), network_html(self, m))

    def _repr_html_(self):
        from .explain.display import network_html

        return network_html(self)


for _key, _text in {"{activations}": spec.activation_help(), "{losses}": spec.loss_help(),
                    "{backends}": "{" + ", ".join(f'"{b}"' for b in ("auto",) + BACKENDS) + "}",
                    "{output_only}": ", ".join(a.name for a in spec.ACTIVATION_TABLE
                                               if a.output_only)}.items():
    Network.__doc__ = Network.__doc__.replace(_key, _text)


def load(path, backend=None):
    """A network from a file written by :func:`chainrule.save` (:meth:`Network.load`)."""
    return Network.load(path, backend)
