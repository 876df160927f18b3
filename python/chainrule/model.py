"""``Network``: a thin model. It holds parameters, validates at the boundary and calls the ops
of its backend; the numerics live in the reference and the kernels."""

from __future__ import annotations

import functools
import math
import numbers

import numpy as np

from . import _training
from . import _validate as check
from . import reference as ref
from ._compose import cost as _cost
from ._dispatch import Ops, choose_backend
from .errors import NonFiniteError
from .optim import inverse_time_decay, make_optimizer, scheduled_decay

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
        # ---- arguments
        learning_rate = check.positive_finite(learning_rate, "learning_rate")
        epochs = _nonneg_int(epochs, "epochs")
        X, Y = self._check_XY(X, Y)
        m = X.shape[1]
        if mini_batch_size is not None:
            mini_batch_size = _nonneg_int(mini_batch_size, "mini_batch_size")
            if mini_batch_size == 0:
                raise check.InputError("mini_batch_size must be >= 1 (or None for full batch)")
        if cost_every is None:
            cost_every = 1 if mini_batch_size is not None else 100
        cost_every = _nonneg_int(cost_every, "cost_every")
        if cost_every == 0:
            raise check.InputError("cost_every must be an integer > 0")
        if shuffle_seed is not None:
            shuffle_seed = _nonneg_int(shuffle_seed, "shuffle_seed")
        decay_rate = _nonneg_float(decay_rate, "decay_rate")
        if decay_interval is not None:
            decay_interval = _nonneg_int(decay_interval, "decay_interval")
            if decay_interval == 0:
                raise check.InputError("decay_interval must be an integer > 0")
        lambd = _nonneg_float(lambd, "lambd")
        probs = _training.keep_probs(keep_prob, self.L)
        opt = make_optimizer(optimizer)
        if on_nonfinite not in ("raise", "skip"):
            raise check.InputError(f"on_nonfinite must be 'raise' or 'skip', got {on_nonfinite!r}")
        patience = _nonneg_int(patience, "patience")
        min_delta = _nonneg_float(min_delta, "min_delta")
        checkpoint_every = _nonneg_int(checkpoint_every, "checkpoint_every")
        if checkpoint is not None and checkpoint_every == 0:
            raise check.InputError("checkpoint_every must be an integer > 0")
        callbacks = list(callbacks or [])
        out_name = self.activations[-1][0]
        w = _training.example_weights(sample_weight, class_weight, Y, out_name,
                                      self.layer_dims[-1], m, self.dtype)

        saved = self._load_checkpoint(resume) if resume is not None else None

        # ---- validation data
        X_val = Y_val = None
        if validation_data is not None:
            try:
                X_val, Y_val = validation_data
            except (TypeError, ValueError) as exc:
                raise check.InputError("validation_data must be a pair (X_val, Y_val)") from exc
            X_val, Y_val = self._check_XY(X_val, Y_val)
        elif validation_fraction:
            if isinstance(validation_fraction, bool) or \
                    not isinstance(validation_fraction, numbers.Real) or \
                    not 0 < validation_fraction < 1:
                raise check.InputError(f"validation_fraction must be in (0, 1), got "
                                       f"{validation_fraction!r}")
            n_val = int(round(m * validation_fraction))
            if not 1 <= n_val < m:
                raise check.InputError(f"validation_fraction={validation_fraction} of m = {m} "
                                       f"examples leaves {n_val} for validation and {m - n_val} "
                                       f"for training; each needs at least 1")
            split_seed = None if self.seed is None else [int(self.seed), 0x5EED]
            perm = np.random.default_rng(split_seed).permutation(m)
            val, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
            X_val, Y_val = np.ascontiguousarray(X[:, val]), np.ascontiguousarray(Y[:, val])
            X, Y = np.ascontiguousarray(X[:, tr]), np.ascontiguousarray(Y[:, tr])
            w = None if w is None else w[tr]
            m = X.shape[1]

        args = {"epochs": epochs, "learning_rate": learning_rate, "cost_every": cost_every,
                "optimizer": opt.get_config(), "mini_batch_size": mini_batch_size,
                "shuffle": bool(shuffle), "shuffle_seed": shuffle_seed,
                "decay_rate": decay_rate, "decay_interval": decay_interval, "lambd": lambd,
                "keep_prob": probs, "validation_fraction": float(validation_fraction or 0),
                "early_stopping": bool(early_stopping), "patience": patience,
                "min_delta": min_delta, "restore_best": bool(restore_best),
                "on_nonfinite": on_nonfinite, "class_weight": repr(class_weight)}
        signature = _training.signature(args, [X, Y, w, X_val, Y_val])

        # ---- where to start
        if saved is not None:
            self._resume_from(saved, resume, signature)
            start, end = self._train["epoch"], epochs
            opt = self._adopt_optimizer(opt, required=True)
        elif continue_training and self._train is not None:
            start = self._train["epoch"]
            end = start + epochs
            opt = self._adopt_optimizer(opt, required=False)
            self._train["signature"] = signature
        else:
            start, end = 0, epochs
            opt.reset(self._parameters)
            self.optimizer_, self._opt_pending = opt, None
            self.history_ = {"epoch": [], "cost": [], "score": [], "lr": [], "skipped": []}
            if X_val is not None:
                self.history_.update(val_cost=[], val_score=[])
            self._train = {"epoch": 0, "steps": 0, "skipped": 0, "best": float("inf"),
                           "best_epoch": -1, "wait": 0, "best_params": None,
                           "signature": signature, "optimizer": opt.get_config()}
        for key in ("score", "lr", "skipped") + (("val_cost", "val_score")
                                                 if X_val is not None else ()):
            self.history_.setdefault(key, [])
        self._train["optimizer"] = opt.get_config()

        def lr_of(epoch):
            if not decay_rate or epoch <= 1:
                return learning_rate
            if decay_interval is None:
                return float(inverse_time_decay(learning_rate, epoch - 1, decay_rate))
            return float(scheduled_decay(learning_rate, epoch - 1, decay_rate, decay_interval))

        ops = self._use_backend_for(m if mini_batch_size is None else min(mini_batch_size, m))
        Ws, bs = self._Ws_bs()
        fast = (opt.name == "gd" and (mini_batch_size is None) and dropout_off(probs)
                and w is None and not decay_rate and on_nonfinite == "raise")
        fit = dict(X=X, Y=Y, w=w, m=m, ops=ops, Ws=Ws, bs=bs, opt=opt, lambd=lambd,
                   fused_gd=opt.name == "gd" and self.loss != "mean_squared_error",
                   probs=probs, mini_batch_size=mini_batch_size, shuffle=shuffle,
                   shuffle_seed=shuffle_seed, on_nonfinite=on_nonfinite)
        bar = _progress_bar(end - start, progress)
        self.stop_reason_ = None
        for cb in callbacks:
            if hasattr(cb, "on_fit_begin"):
                cb.on_fit_begin(self)
        guard = _training.InterruptGuard()
        loop = self._loop_full_batch if mini_batch_size is None else self._loop_mini_batches
        record = functools.partial(
            self._record_epoch, fit=fit, X_val=X_val, Y_val=Y_val,
            early_stopping=early_stopping, patience=patience, min_delta=min_delta,
            restore_best=restore_best, callbacks=callbacks, print_cost=print_cost, bar=bar)
        try:
            with guard:
                loop(fit, start, end, cost_every, lr_of, fast, record, checkpoint,
                     checkpoint_every, bar, guard)
            self.stop_reason_ = self.stop_reason_ or "completed"
        except KeyboardInterrupt:
            self.stop_reason_ = "interrupted"
            raise
        except NonFiniteError:
            self.stop_reason_ = "nonfinite"
            raise
        finally:
            if bar is not None:
                bar.close()
        if early_stopping and restore_best and self._train["best_params"] is not None:
            self._parameters = {k: v.copy() for k, v in self._train["best_params"].items()}
        if checkpoint is not None and end > start:
            self._save_checkpoint(checkpoint)  # the finished model
        for cb in callbacks:
            if hasattr(cb, "on_fit_end"):
                cb.on_fit_end(self)
        return self

    # ---- pieces of fit
    def _loop_full_batch(self, fit, start, end, cost_every, lr_of, fast, record, checkpoint,
                         checkpoint_every, bar, guard):
        """One step per epoch. Record ``e`` describes the parameters after ``e`` steps (the
        course's "Cost after iteration e"): at ``e = 0, cost_every, ...`` and at ``end``."""
        epoch = start
        recorded = self.history_["epoch"]
        while True:
            if (epoch % cost_every == 0 or epoch == end) and \
                    (not recorded or recorded[-1] < epoch):
                if record(epoch, None, lr_of(epoch), per_epoch=False):
                    return
            if epoch == end:
                return
            if checkpoint is not None and epoch > start and epoch % checkpoint_every == 0:
                self._save_checkpoint(checkpoint)
            guard.check()
            nxt = min(end, epoch + cost_every - epoch % cost_every)
            if checkpoint is not None:
                nxt = min(nxt, epoch + checkpoint_every - epoch % checkpoint_every)
            if fast:  # the backend's compiled loop, up to the next record or checkpoint
                self._fast_chunk(fit, lr_of(epoch), epoch, nxt - epoch, guard)
            else:
                for e in range(epoch, nxt):
                    self._step(fit, fit["X"], fit["Y"], fit["w"], lr_of(e), f"epoch {e}")
                    self._train["epoch"] = e + 1
                    guard.check()
            if bar is not None:
                bar.update(nxt - epoch)
            epoch = nxt
            self._train["epoch"] = epoch

    def _loop_mini_batches(self, fit, start, end, cost_every, lr_of, fast, record, checkpoint,
                           checkpoint_every, bar, guard):
        """Epochs of mini-batches. Record ``i`` describes epoch ``i``: its mean mini-batch
        cost (the course's ``cost_avg``) and the scores after it; at ``i = 0, cost_every,
        ...`` and at the last epoch."""
        for epoch in range(start, end):
            lr = lr_of(epoch)
            J = self._epoch(fit, lr, epoch, guard)
            self._train["epoch"] = epoch + 1
            if bar is not None:
                bar.update(1)
            stop = False
            if epoch % cost_every == 0 or epoch == end - 1:
                stop = record(epoch, J, lr, per_epoch=True)
            if stop or epoch == end - 1:
                return  # the last checkpoint is written by fit
            if checkpoint is not None and (epoch + 1) % checkpoint_every == 0:
                self._save_checkpoint(checkpoint)
            guard.check()

    def _adopt_optimizer(self, opt, required):
        """Continue the optimiser of the previous fit (or of a restored state) if it fits."""
        current = self.optimizer_
        if current is not None and current.get_config() == opt.get_config():
            return current
        state = current.get_state() if current is not None else self._opt_pending
        if current is None and state is None and not opt._prefixes:
            state = {}
        if state is not None and (current is None or current.name == opt.name):
            try:
                opt.set_state(state, self._parameters)
            except check.InputError:
                if required:
                    raise
                opt.reset(self._parameters)
        elif required and opt._prefixes:
            raise check.InputError("the checkpoint holds no state for the "
                                   f"{opt.name} optimiser")
        else:
            opt.reset(self._parameters)
        self.optimizer_, self._opt_pending = opt, None
        return opt

    def _load_checkpoint(self, path):
        """The network saved at ``path``, checked to be this one; adopts its seed (which
        decides the validation split)."""
        from .io import load

        saved = load(path, backend=self._backend_request)
        mine, theirs = self.get_config(), saved.get_config()
        for key in ("layer_dims", "activations", "loss", "dtype"):
            if mine[key] != theirs[key]:
                raise check.InputError(f"cannot resume from {path}: its network has {key} = "
                                       f"{theirs[key]!r}, this one {mine[key]!r}")
        if "train/epoch" not in saved.get_state():
            raise check.InputError(f"cannot resume from {path}: it holds no training state "
                                   f"(it was not written by fit(checkpoint=...))")
        self.seed = saved.seed
        return saved

    def _resume_from(self, saved, path, signature):
        state = saved.get_state()
        if _training.decode_json(state["train/signature"], "signature") != signature:
            raise check.InputError(f"cannot resume from {path}: it was written by a fit with "
                                   f"other arguments or data; resume with the same ones")
        self.set_state(state)
        self.history_ = {k: list(v) for k, v in saved.history_.items()}

    def _save_checkpoint(self, path):
        from .io import save

        save(self, path)

    def _step(self, fit, Xb, Yb, wb, lr, where):
        """One step on a batch; returns its cost, or ``None`` if it was skipped."""
        ops, Ws, bs = fit["ops"], fit["Ws"], fit["bs"]
        masks = _training.dropout_masks(self.rng, self.layer_dims, fit["probs"], Xb.shape[1],
                                        self.dtype)
        if fit["fused_gd"] and wb is None:
            # The backend's fused step (mask and L2 inside). With a cross-entropy loss the
            # clipped cost is finite whenever A[L] is, and a non-finite A[L] makes the
            # gradient non-finite, which the step refuses: ok covers the cost too.
            with np.errstate(over="ignore", invalid="ignore"):
                ok, J = ops.train_step(Xb, Yb, Ws, bs, self.activations, self.loss, lr,
                                       fit["lambd"], masks, True)
            bad = None if ok and math.isfinite(J) else "gradient or cost"
            if bad is None:
                self._train["steps"] += 1
                return J
        else:
            with np.errstate(over="ignore", invalid="ignore"):  # non-finite is reported below
                J, dWs, dbs = self._cost_and_gradients(fit, Xb, Yb, wb, masks)
            bad = _first_nonfinite(J, dWs, dbs)
        if bad is not None:
            if fit["on_nonfinite"] == "skip":
                self._train["skipped"] += 1
                return None
            raise NonFiniteError(
                f"{where}: the {bad} is not finite (NaN or inf); training stopped and the model "
                f"kept the parameters and optimiser state of the last good step — lower the "
                f"learning rate (now {lr}), scale the inputs or use on_nonfinite='skip'")
        fit["opt"].update(ops, Ws, bs, dWs, dbs, lr)
        self._train["steps"] += 1
        return J

    def _cost_and_gradients(self, fit, Xb, Yb, wb, masks):
        """The batch's cost and ``dWs, dbs`` (weighted by ``wb`` when given)."""
        ops, Ws, bs = fit["ops"], fit["Ws"], fit["bs"]
        mb = Xb.shape[1]
        Zs, As = ops.forward(Xb, Ws, bs, self.activations, masks)
        lambd = fit["lambd"]
        if wb is None:
            J = _cost(Yb, As[-1], Ws, self.loss, lambd)
            _, dWs, dbs, _ = ops.backward(Yb, Zs, As, Ws, self.activations, self.loss, "L",
                                          lambd, masks, False)
        else:
            sw = float(np.sum(wb, dtype=np.float64))
            J = ref.compute_cost(As[-1], Yb, self.loss, sample_weight=wb)
            if lambd:
                J += ref.l2_cost(self._parameters, lambd, sw)
            dZL = ref.output_delta(As[-1], Yb, Zs[-1], self.activations[-1], self.loss, "L")
            dZL = dZL * (wb * self.dtype.type(mb / sw))
            _, dWs, dbs, _ = ops.backward_delta(dZL, Zs, As, Ws, self.activations, "L",
                                                lambd * mb / sw, masks, False)
        return J, dWs, dbs

    def _epoch(self, fit, lr, epoch, guard):
        """One epoch in mini-batches; returns the epoch's cost (weighted mean of the batches')."""
        X, Y, w, m = fit["X"], fit["Y"], fit["w"], fit["m"]
        perm = _training.permutation(m, epoch, self.rng, fit["shuffle"], fit["shuffle_seed"])
        total = weight = 0.0
        for k, idx in enumerate(_training.batches(m, fit["mini_batch_size"], perm)):
            wb = None if w is None else w[idx]
            J = self._step(fit, X[:, idx], Y[:, idx], wb, lr, f"epoch {epoch}, mini-batch {k}")
            if J is not None:
                share = len(idx) if wb is None else float(np.sum(wb, dtype=np.float64))
                total += J * share
                weight += share
            guard.check()
        return total / weight if weight else float("nan")

    def _fast_chunk(self, fit, lr, epoch, n, guard):
        """``n`` full-batch gradient-descent epochs in the backend's compiled loop.

        The loop stops at a non-finite gradient; a non-finite cost (recorded every step)
        is found afterwards and the chunk replayed up to it, so either way the model
        ends at the last good step."""
        ops, Ws, bs = fit["ops"], fit["Ws"], fit["bs"]
        before = [W.copy() for W in Ws], [b.copy() for b in bs]
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite is reported below
            n_done, costs = ops.train_loop(fit["X"], fit["Y"], Ws, bs, self.activations,
                                           self.loss, lr, fit["lambd"], n, 1)
        bad_cost = np.flatnonzero(~np.isfinite(costs[:n_done]))
        if bad_cost.size:
            # Replay up to the first non-finite cost from the chunk's start (deterministic).
            n_done = int(bad_cost[0])
            for P, saved in zip(Ws + bs, before[0] + before[1]):
                P[...] = saved
            if n_done:
                with np.errstate(over="ignore", invalid="ignore"):
                    ops.train_loop(fit["X"], fit["Y"], Ws, bs, self.activations, self.loss, lr,
                                   fit["lambd"], n_done, 0)
        self._train["steps"] += n_done
        if n_done < n:
            self._train["epoch"] = epoch + n_done
            what = "cost" if bad_cost.size else "gradient"
            raise NonFiniteError(
                f"epoch {epoch + n_done}: the {what} is not finite (NaN or inf); training "
                f"stopped and the parameters of the last good step were kept — lower the "
                f"learning rate (now {lr}) or scale the inputs")

    def _record_epoch(self, epoch, J, lr, per_epoch, fit, X_val, Y_val, early_stopping,
                      patience, min_delta, restore_best, callbacks, print_cost, bar):
        """Append one record to ``history_``; run early stopping and callbacks. True = stop.

        ``J=None``: evaluate the cost of the current parameters on the training data
        (with the L2 term and the example weights, without dropout).
        """
        Ws, bs = fit["Ws"], fit["bs"]
        with np.errstate(over="ignore", invalid="ignore"):
            AL = fit["ops"].forward(fit["X"], Ws, bs, self.activations)[1][-1]
        if J is None:
            w, lambd = fit["w"], fit["lambd"]
            if w is None:
                J = _cost(fit["Y"], AL, Ws, self.loss, lambd)
            else:
                J = ref.compute_cost(AL, fit["Y"], self.loss, sample_weight=w)
                if lambd:
                    J += ref.l2_cost(self._parameters, lambd, float(np.sum(w, dtype=np.float64)))
        logs = {"epoch": int(epoch), "cost": float(J), "lr": float(lr),
                "score": self._score_checked(fit["X"], fit["Y"], AL),
                "skipped": int(self._train["skipped"])}
        if X_val is not None:
            AL = fit["ops"].forward(X_val, fit["Ws"], fit["bs"], self.activations)[1][-1]
            logs["val_cost"] = ref.compute_cost(AL, Y_val, self.loss)
            logs["val_score"] = self._score_checked(X_val, Y_val, AL)
        for key, value in logs.items():
            self.history_.setdefault(key, []).append(value)
        stop = False
        t = self._train
        if early_stopping:
            value = logs.get("val_cost", logs["cost"])
            if value < t["best"] - min_delta:
                t["best"], t["best_epoch"], t["wait"] = float(value), int(epoch), 0
                if restore_best:
                    t["best_params"] = {k: v.copy() for k, v in self._parameters.items()}
            else:
                t["wait"] += 1
                if t["wait"] >= patience:
                    stop = True
                    self.stop_reason_ = "early_stopping"
        if bar is not None:
            bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()
                             if k in ("cost", "val_cost", "val_score")})
        if print_cost:
            unit = "epoch" if per_epoch else "iteration"
            print(f"Cost after {unit} {epoch}: {J}")
        for cb in callbacks:
            fn = getattr(cb, "on_epoch_end", cb)
            if fn(self, int(epoch), dict(logs)) is True:
                stop = True
                self.stop_reason_ = self.stop_reason_ or "callback"
        return stop

    def _score_checked(self, X, Yv, AL=None):
        """:meth:`score` on validated arrays (``AL`` if already computed)."""
        if AL is None:
            Ws, bs = self._Ws_bs()
            AL = self._ops.forward(X, Ws, bs, self.activations)[1][-1]
        out = self.activations[-1][0]
        if out == "sigmoid" and self.layer_dims[-1] == 1:
            return float(np.mean((AL > 0.5) == Yv))
        if out == "softmax":
            return float(np.mean(np.argmax(AL, axis=0) == np.argmax(Yv, axis=0)))
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging fit scores NaN/-inf
            residual = np.sum((Yv - AL) ** 2)
            total = np.sum((Yv - Yv.mean(axis=1, keepdims=True)) ** 2)
            return float(1 - residual / total) if total else 0.0

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


def _nonneg_int(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise check.InputError(f"{what} must be an integer >= 0, got {value!r}")
    return int(value)


def _nonneg_float(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value) or value < 0:
        raise check.InputError(f"{what} must be a finite number >= 0, got {value!r}")
    return float(value)


def dropout_off(probs):
    return all(p == 1.0 for p in probs)


def _first_nonfinite(J, dWs, dbs):
    """The name of the first non-finite quantity of a step (``"cost"``, ``"gradient dW2"``), or None."""
    if not math.isfinite(J):
        return "cost"
    for l, (dW, db) in enumerate(zip(dWs, dbs), 1):
        if not np.isfinite(dW).all():
            return f"gradient dW{l}"
        if not np.isfinite(db).all():
            return f"gradient db{l}"
    return None


def _progress_bar(total, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a dependency, but the model must not need it to train
        return None
    return tqdm(total=total, unit="epoch", leave=False, dynamic_ncols=True)
