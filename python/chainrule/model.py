"""``Network``: a thin model. It holds parameters, validates at the boundary and calls the ops
of its backend; the numerics live in the reference and the kernels."""

from __future__ import annotations

import functools

import numpy as np

from . import _threads, _training
from . import _validate as check
from . import reference as ref
from ._compose import cost as _cost
from ._dispatch import Ops, choose_backend
from .errors import NonFiniteError

_DEFAULT_LOSS = {"sigmoid": "binary_crossentropy", "softmax": "categorical_crossentropy"}


def _thread_limited(method):
    """Run a public method with the BLAS pools limited to ``n_threads``: entered once per
    call (nested public calls reuse it), never per step."""
    @functools.wraps(method)
    def limited(self, *args, **kwargs):
        if self.n_threads is None:
            return method(self, *args, **kwargs)
        with _threads.limited(self.n_threads):
            return method(self, *args, **kwargs)
    return limited


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
    n_threads : int, optional
        Limit every BLAS thread pool (threadpoolctl, ``user_api="blas"``; this includes the
        BLAS the C backend calls) to this many threads while the model computes
        (:meth:`forward`, :meth:`backward`, :meth:`step`, :meth:`fit`, :meth:`predict`, ...),
        restoring the previous numbers after each call. ``None`` leaves the pools alone.

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
        self.n_threads = check.n_threads(n_threads)
        try:
            self.backend = choose_backend(self.layer_dims, None, self.dtype, self._backend_request)
        except ValueError as exc:  # a bad CHAINRULE_BACKEND
            raise check.InputError(str(exc)) from exc
        self._ops = Ops(self.backend)
        self.history_ = {"epoch": [], "cost": []}
        self.optimizer_ = None  # the Optimizer of the last fit (its state is model state)
        self._opt_pending = None  # optimiser state restored by set_state, adopted by fit
        self._train = None  # training counters and bookkeeping (see get_state)
        self.stop_reason_ = None

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
            "n_threads": self.n_threads,
        }

    @classmethod
    def from_config(cls, config):
        """A new network (freshly initialised) from :meth:`get_config`'s output."""
        config = dict(config)
        config["activations"] = [tuple(a) if isinstance(a, (list, tuple)) else a
                                 for a in config["activations"]]
        return cls(**config)

    def get_state(self):
        """Everything learned, as ``{name: ndarray}`` copies.

        The parameters ``W1, b1, ...``; after :meth:`fit`, also the optimiser state
        ``opt/v_dW1, opt/s_db1, ..., opt/t`` and the training state ``train/...`` (epoch
        and step counters, the generator's state, early-stopping bookkeeping and the
        fingerprint of the fit's arguments), all numeric, so that a checkpoint written
        with :func:`chainrule.io.save` lets ``fit(..., resume=path)`` continue exactly.
        """
        state = {k: v.copy() for k, v in self._parameters.items()}
        opt = self.optimizer_.get_state() if self.optimizer_ is not None else self._opt_pending
        for k, v in (opt or {}).items():
            state[f"opt/{k}"] = np.array(v, copy=True)
        if self._train is not None:
            t = self._train
            state["train/epoch"] = np.array(t["epoch"], dtype=np.int64)
            state["train/steps"] = np.array(t["steps"], dtype=np.int64)
            state["train/skipped"] = np.array(t["skipped"], dtype=np.int64)
            state["train/best"] = np.array(t["best"], dtype=np.float64)
            state["train/best_epoch"] = np.array(t["best_epoch"], dtype=np.int64)
            state["train/wait"] = np.array(t["wait"], dtype=np.int64)
            state["train/signature"] = _training.encode_json(t["signature"])
            state["train/optimizer"] = _training.encode_json(t["optimizer"])
            state["train/rng"] = _training.encode_json(self.rng.bit_generator.state)
            for k, v in (t["best_params"] or {}).items():
                state[f"train/best/{k}"] = v.copy()
        return state

    def set_state(self, state):
        """Restore :meth:`get_state`'s output (validated; the model is unchanged on error)."""
        params = {k: v for k, v in state.items() if k[:1] in "Wb" and k[1:].isdigit()}
        params = check.parameters(params, self.layer_dims, self.dtype)
        opt = {k[4:]: np.asarray(v) for k, v in state.items() if k.startswith("opt/")}
        for k, v in opt.items():
            target = k.split("_d", 1)[-1]  # v_dW1 -> W1
            if k != "t" and (target not in params or v.shape != params[target].shape):
                expected = params[target].shape if target in params else "no such parameter"
                raise check.InputError(f"optimiser state opt/{k} has shape {v.shape}; expected "
                                       f"{expected} (the shape of {target})")
        train = None
        if "train/epoch" in state:
            try:
                def scalar(key, kind):
                    a = np.asarray(state[key]).reshape(-1)
                    if a.size != 1:
                        raise check.InputError(f"training state {key} must hold one number, "
                                               f"got shape {np.shape(state[key])}")
                    return kind(a[0])

                train = {
                    "epoch": scalar("train/epoch", int), "steps": scalar("train/steps", int),
                    "skipped": scalar("train/skipped", int),
                    "best": scalar("train/best", float),
                    "best_epoch": scalar("train/best_epoch", int),
                    "wait": scalar("train/wait", int),
                    "signature": _training.decode_json(state["train/signature"], "signature"),
                    "optimizer": _training.decode_json(state["train/optimizer"], "optimizer"),
                }
            except KeyError as exc:
                raise check.InputError(f"the training state lacks {exc.args[0]}") from exc
            best = {k[len("train/best/"):]: v for k, v in state.items()
                    if k.startswith("train/best/")}
            train["best_params"] = check.parameters(best, self.layer_dims, self.dtype) \
                if best else None
            rng_state = _training.decode_json(state["train/rng"], "rng")
            rng = np.random.default_rng()
            try:
                rng.bit_generator.state = rng_state
            except (TypeError, ValueError, KeyError) as exc:
                raise check.InputError(f"the saved generator state is not readable: {exc}") \
                    from exc
        self._parameters = params
        self.optimizer_ = None
        self._opt_pending = {k: v.copy() for k, v in opt.items()} or None
        if train is not None:
            self.rng = rng
        self._train = train

    def __getstate__(self):
        # No backend objects in a pickle: only arrays, plain values and the generator.
        state = dict(self.__dict__)
        state.pop("_ops", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("n_threads", None)  # pickled before n_threads existed
        try:
            self._ops = Ops(self.backend)
        except ImportError:  # unpickled where that backend is missing: let the policy choose
            self.backend = choose_backend(self.layer_dims, None, self.dtype, "auto")
            self._ops = Ops(self.backend)

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

    @_thread_limited
    def cost(self, AL, Y):
        """The cost ``J`` of predictions ``AL`` against labels ``Y`` (a float)."""
        AL = check.AL(AL, self.layer_dims[-1], None, self.loss, self.dtype)
        Y = check.Y(Y, self.layer_dims[-1], AL.shape[1], self.loss, self.dtype)
        return _cost(Y, AL, self._Ws_bs()[0], self.loss)

    # ------------------------------------------------------------------ training
    @_thread_limited
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

    @_thread_limited
    def fit(self, X, Y, epochs=1000, learning_rate=0.0075, cost_every=None, progress=True,
            print_cost=False, *, optimizer="gd", mini_batch_size=None, shuffle=True,
            shuffle_seed=None, decay_rate=0.0, decay_interval=None, lambd=0.0, keep_prob=1.0,
            sample_weight=None, class_weight=None, validation_data=None,
            validation_fraction=0.0, early_stopping=False, patience=10, min_delta=0.0,
            restore_best=True, callbacks=None, on_nonfinite="raise", checkpoint=None,
            checkpoint_every=1, resume=None, continue_training=False):
        r"""Train with the course's optimisers, mini-batches, regularisation and schedules.

        One epoch is one pass over the training columns, in mini-batches of
        ``mini_batch_size`` (a seeded permutation per epoch, complete batches then the
        smaller rest, as the course's ``random_mini_batches``) or, by default, one full
        batch. Each batch takes one step:

        - forward with inverted dropout on the hidden layers,
          ``A[l] = A[l] * D[l] / keep_prob`` with ``D[l] = rand(n[l], m) < keep_prob``;
        - the cost ``J = (1/Σw) Σ_k w_k L(a_k, y_k) + λ/(2Σw) Σ_l ‖W[l]‖²`` (without
          weights ``w_k = 1`` and ``Σw = m``: the course's
          ``compute_cost_with_regularization``);
        - backward with the same masks, ``dW[l] += (λ/Σw) W[l]``, and
          ``dZ[L][:, k]`` multiplied by ``w_k m / Σw``;
        - if the cost and every gradient are finite, the optimiser's update (see
          :mod:`chainrule.optim`) with the epoch's learning rate.

        Parameters
        ----------
        X : array, shape (n[0], m)
        Y : array, shape (n[L], m) (or integer labels of shape (m,) for softmax)
        epochs : int
            Epochs of this call (with ``resume``: the total of the interrupted call).
        learning_rate : float
            ``lr0``. With ``decay_rate``, epoch ``i`` trains with ``lr0 / (1 + decay_rate · (i-1))``
            (epochs 0 and 1 with ``lr0``): the course updates the rate to
            ``decay(lr0, i, decay_rate)`` at the end of epoch ``i``. With ``decay_interval``
            the scheduled variant ``lr0 / (1 + decay_rate · floor((i-1) / decay_interval))``.
        cost_every : int, optional
            Record ``history_`` (and run validation, early stopping, callbacks, the progress
            bar) after every this many epochs and after the last one. Default: 1 with
            mini-batches, 100 for full-batch training.
        progress : bool
            A tqdm progress bar over epochs.
        print_cost : bool
            Print the cost whenever it is recorded, as the course does.
        optimizer : {"gd", "momentum", "rmsprop", "adam"} or Optimizer
            See :mod:`chainrule.optim` (e.g. ``optim.Adam(eps_inside_sqrt=True)``).
        mini_batch_size : int, optional
            ``None``: one batch of all ``m`` columns (no shuffling).
        shuffle : bool
            Permute the columns every epoch (with mini-batches).
        shuffle_seed : int, optional
            The course's seeding: epoch ``i`` permutes with seed ``shuffle_seed + i + 1``
            (``seed = seed + 1`` then ``np.random.seed(seed)``). Default: the model's generator.
        decay_rate, decay_interval : float, int
            Learning-rate decay (above); ``decay_rate=0`` keeps ``lr0``.
        lambd : float
            L2 regularisation strength ``λ``.
        keep_prob : float or sequence of float
            Dropout keep probability, one number or one per hidden layer (1 = no dropout).
            Masks come from the model's generator; prediction never drops.
        sample_weight : array, shape (m,), optional
        class_weight : dict or "balanced", optional
            ``{class index: weight}``; classes are the 0/1 labels of a 1-unit sigmoid output or
            the rows of a softmax output. Multiplies ``sample_weight``.
        validation_data : tuple (X_val, Y_val), optional
        validation_fraction : float
            Or hold out this fraction of the columns (a permutation seeded by the model's
            seed, not its generator, so a resumed fit holds out the same ones).
        early_stopping : bool
            Stop when the monitored value (``val_cost``, else ``cost``) has not improved by
            ``min_delta`` for ``patience`` records; with ``restore_best`` the parameters of
            the best record are restored at the end.
        callbacks : list, optional
            Callables ``f(net, epoch, logs)`` or :class:`chainrule.callbacks.Callback`
            objects, called after every record; returning ``True`` stops training.
        on_nonfinite : {"raise", "skip"}
            A step with a NaN/inf cost or gradient raises :class:`NonFiniteError` (the model
            keeps the parameters and optimiser state of the last good step), or is skipped
            (counted in ``history_["skipped"]``).
        checkpoint : str or path, optional
            Save the model (parameters, optimiser and training state, history) to this
            file every ``checkpoint_every`` epochs, atomically (:func:`chainrule.io.save`).
        resume : str or path, optional
            Continue the interrupted fit of that checkpoint: the same arguments and data
            give results identical to an uninterrupted run.
        continue_training : bool
            Keep the optimiser state, epoch counter and history of the previous fit and
            train ``epochs`` more (what ``partial_fit`` uses). Default: start them afresh
            (the parameters always continue from their current values).

        Returns
        -------
        self

        Raises
        ------
        NonFiniteError
            A step's cost or gradient was not finite (``on_nonfinite="raise"``); the model
            is at the last good step, ``history_`` holds the records up to it.
        KeyboardInterrupt
            Re-raised after Ctrl-C: the model is at the last completed step (a first
            Ctrl-C is honoured between steps; a second one interrupts at once), with its
            history; ``stop_reason_ == "interrupted"``.
        """
        _training.FitRun(
            self, X, Y, epochs=epochs, learning_rate=learning_rate, cost_every=cost_every,
            progress=progress, print_cost=print_cost, optimizer=optimizer,
            mini_batch_size=mini_batch_size, shuffle=shuffle, shuffle_seed=shuffle_seed,
            decay_rate=decay_rate, decay_interval=decay_interval, lambd=lambd,
            keep_prob=keep_prob, sample_weight=sample_weight, class_weight=class_weight,
            validation_data=validation_data, validation_fraction=validation_fraction,
            early_stopping=early_stopping, patience=patience, min_delta=min_delta,
            restore_best=restore_best, callbacks=callbacks, on_nonfinite=on_nonfinite,
            checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume,
            continue_training=continue_training).execute()
        return self

    def _score_checked(self, X, Yv, AL):
        """:meth:`score` on validated arrays, from their forward pass ``AL``."""
        out = self.activations[-1][0]
        if out == "sigmoid" and self.layer_dims[-1] == 1:
            return float(np.mean((AL > 0.5) == Yv))
        if out == "softmax":
            return float(np.mean(np.argmax(AL, axis=0) == np.argmax(Yv, axis=0)))
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging fit scores NaN/-inf
            return _r_squared(Yv, AL)

    # ------------------------------------------------------------------ prediction
    @_thread_limited
    def predict_proba(self, X):
        """``A[L]`` for ``X``: probabilities for sigmoid/softmax outputs. Shape ``(n[L], m)``."""
        return self.forward(X)[0]

    @_thread_limited
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

    @_thread_limited
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
        return _r_squared(Yv, pred)

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


def _r_squared(Y, P):
    """``R² = 1 - Σ(Y - P)² / Σ(Y - mean(Y))²`` (0 when ``Y`` is constant)."""
    residual = np.sum((Y - P) ** 2)
    total = np.sum((Y - Y.mean(axis=1, keepdims=True)) ** 2)
    return float(1 - residual / total) if total else 0.0
