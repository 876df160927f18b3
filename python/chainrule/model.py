"""``Network``: a thin model. It holds parameters, validates at the boundary and calls the ops
of its backend; the numerics live in the reference and the kernels. Its bases hold the rest:
batch norm (:mod:`._batchnorm`), predict/score (:mod:`._scoring`), files and pickles
(:mod:`._persistence`), the summary (:mod:`._summary`), the peers' layouts (:mod:`._interop`)
and fit/step (:mod:`.training`)."""

from __future__ import annotations

import numpy as np

from . import _validate as check
from . import spec
from . import reference as ref
from ._batchnorm import BatchNormMixin
from ._interop import InteropMixin
from ._scoring import Predicting
from ._summary import Summarised
from . import _threads
from ._threads import limits_threads as _thread_limited
from ._parameters import ParameterDict
from ._persistence import Persistent
from .backends.compose import cost as _cost
from .backends.registry import BACKENDS, Ops, choose_backend
from .training import Trainable


class Network(BatchNormMixin, Predicting, InteropMixin, Persistent, Summarised, Trainable):
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
    batch_norm : bool or sequence of bool
        Batch normalization (``docs/batchnorm.md``) on every hidden layer (``True``) or one
        bool per hidden layer. Such a layer computes ``Z = W A_prev`` (no ``b``),
        ``Z_tilde = gamma * (Z - mu) / sqrt(sigma^2 + eps) + beta``, ``A = g(Z_tilde)``, then
        dropout; its parameters are ``W{l}, gamma{l}, beta{l}`` (L2 applies to ``W`` only).
        Training (:meth:`fit`, :meth:`step`, ``forward(training=True)``) uses the batch's
        statistics (a mini-batch of one example is refused); :meth:`predict`,
        :meth:`score` and :meth:`forward` use the running averages.
    batch_norm_momentum : float
        The course's ``beta`` of the running averages, ``mu_hat <- beta mu_hat + (1 - beta)
        mu`` (default 0.9). PyTorch's ``BatchNorm1d(momentum=)`` is ``1 - beta``; Keras's
        ``BatchNormalization(momentum=)`` is ``beta`` itself.
    batch_norm_epsilon : float
        The ``eps`` inside the square root (default 1e-5, PyTorch's and the paper's).
    batch_norm_unbiased : bool
        Store the running variance unbiased, ``m/(m-1) sigma^2`` of each batch (default, as
        the paper's inference rule and PyTorch), or the biased ``sigma^2`` (Keras).

    Attributes
    ----------
    parameters : dict
        ``W1, b1, ..., WL, bL`` with shapes ``(n[l], n[l-1])`` and ``(n[l], 1)`` (a
        batch-norm layer: ``W{l}, gamma{l}, beta{l}``).
    running_statistics : dict
        ``running_mean{l}``, ``running_var{l}`` ``(n[l], 1)`` of the batch-norm layers (model
        state: saved, checkpointed; they start at 0 and 1).
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
                 n_threads=None, batch_norm=False, batch_norm_momentum=ref.BATCHNORM_BETA,
                 batch_norm_epsilon=ref.BATCHNORM_EPSILON, batch_norm_unbiased=True):
        self.layer_dims = check.layer_dims(layer_dims)
        L = len(self.layer_dims) - 1
        self.batch_norm = check.batch_norm(batch_norm, L)
        self.batch_norm_momentum = check.batch_norm_momentum(batch_norm_momentum)
        self.batch_norm_epsilon = check.positive_finite(batch_norm_epsilon, "batch_norm_epsilon")
        self.batch_norm_unbiased = bool(batch_norm_unbiased)
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
            dtype=self.dtype, batch_norm=self.batch_norm[:-1]), self)
        self._running = ref.initialize_running_statistics(self._parameters)
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
            check.parameters(value, self.layer_dims, self.dtype, self.batch_norm), self)

    def _refuse_while_fitting(self):
        if getattr(self, "_fitting", False):
            raise check.InputError(
                "the parameters cannot be assigned while fit runs (fit trains the arrays it "
                "holds, so the assignment would be lost): return True from the callback's "
                "on_epoch_end to stop, assign, then fit(..., continue_training=True)")

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
        trained = self.__dict__.get("_fit_backend")
        if steps is None and trained is not None:
            # after a fit, its backend serves the model (a second backend beside it would
            # bring a second BLAS pool: on few cores the two pools' threads stall each other)
            backend = trained
        else:
            # a fit's threads (its BLAS pools, under n_threads if set), read once per fit
            threads = None if steps is None else (self.n_threads or _threads.blas_threads())
            backend = choose_backend(self.layer_dims, m, self.dtype, self._backend_request,
                                     steps=steps, threads=threads,
                                     batch_norm=self.has_batch_norm)
            if steps is not None:
                self._fit_backend = backend
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
        acts = [(n, a) if spec.ACTIVATIONS[n].has_alpha else n for n, a in self.activations]
        bn = "" if not self.has_batch_norm else f"batch_norm={self.batch_norm[:-1]}, "
        return (f"Network({self.layer_dims}, activations={acts}, loss={self.loss!r}, {bn}"
                f"dtype={self.dtype.name!r}, backend={self.backend!r})")

    # ------------------------------------------------------------------ forward / backward
    @_thread_limited
    def forward(self, X, training=False):
        """Forward pass. Returns ``(AL, caches)`` with the course's caches ``((A_prev, W, b), Z)``.

        Parameters
        ----------
        X : array, shape (n[0], m)
        training : bool
            Only for a network with batch norm: use the batch's statistics (the training
            forward, whose caches :meth:`backward` takes; the running averages are not
            updated) instead of the running ones (default: eval mode).

        Returns
        -------
        AL : array, shape (n[L], m)
        caches : list of L tuples ``((A_prev, W, b), Z)``; a batch-norm layer's is
            ``((A_prev, W, None), Z_tilde, bn_cache)`` (``reference.model_forward``'s)
        """
        if self.has_batch_norm:
            return self._forward_batch_norm(self.validate_data(X), bool(training))
        Zs, As, Ws, bs = self._forward(X)
        return As[-1], list(zip(zip(As, Ws, bs), Zs))

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
        if self.has_batch_norm:
            return self._backward_batch_norm(AL, Y, caches, convention)
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


for _key, _text in {"{activations}": spec.activation_help(), "{losses}": spec.loss_help(),
                    "{backends}": "{" + ", ".join(f'"{b}"' for b in ("auto",) + BACKENDS) + "}",
                    "{output_only}": ", ".join(a.name for a in spec.ACTIVATION_TABLE
                                               if a.output_only)}.items():
    Network.__doc__ = Network.__doc__.replace(_key, _text)


def load(path, backend=None):
    """A network from a file written by :func:`chainrule.save` (:meth:`Network.load`)."""
    return Network.load(path, backend)
