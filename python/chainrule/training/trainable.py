"""What :class:`chainrule.Network` learns besides its parameters, and ``fit`` and ``step``: the
:class:`Trainable` base holds the optimiser, the training state, the history and their
``get_state``/``set_state`` schema, so that the model module stays about parameters and passes.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np

from .. import _validate as check
from .._threads import limits_threads as _thread_limited
from .. import reference as ref
from ..backends.engine import gradients_bn
from ..errors import InputError, NonFiniteError
from . import config as _fit_config
from . import state as _state
from . import step as _step
from . import stream as _stream
from .config import FitConfig
from .loop import FitRun, refused_step


_FITTING = {}  # id(network) -> the thread whose fit trains it
_FITTING_LOCK = threading.Lock()


@contextlib.contextmanager
def _only_fit(net):
    """One fit of a network at a time: a fit from a callback of its own fit (nested) or from
    another thread while one runs is refused, since both would train the same arrays."""
    me = threading.get_ident()
    with _FITTING_LOCK:
        owner = _FITTING.get(id(net))
        if owner is None:
            _FITTING[id(net)] = me
    if owner is not None:
        where = ("from inside its own fit (a callback?)" if owner == me else
                 "from another thread while a fit runs there")
        raise InputError(f"fit was called {where}: one network trains in one fit at a time "
                         f"(both would update the same parameters); return True from the "
                         f"callback to stop, then fit again, or train a copy "
                         f"(copy.deepcopy(net)) in the other thread")
    try:
        yield
    finally:
        with _FITTING_LOCK:
            del _FITTING[id(net)]


class Trainable:
    """Training state, ``fit`` and ``step`` for a network with ``layer_dims``, ``dtype``,
    ``rng`` and ``parameters`` (see ``Network``)."""

    def _reset_training_state(self):
        self.history_ = {"epoch": [], "cost": []}
        self._optimizer = None  # the Optimizer of the last fit (its state is model state)
        self._opt_pending = None  # optimiser state restored by set_state, adopted by fit
        self.train_state_ = None  # training counters and bookkeeping (see get_state)
        self.stop_reason_ = None

    def _upgrade_pickled_training_state(self):
        if "_train" in self.__dict__:  # pickled before training/ (a dict of counters)
            train = self.__dict__.pop("_train")
            self.train_state_ = None if train is None else _state.TrainState(**train)
            self._optimizer = self.__dict__.pop("optimizer_", None)

    def get_state(self):
        """Everything learned, as ``{name: ndarray}`` copies.

        The parameters ``W1, b1, ...`` (and batch norm's running statistics
        ``bn/running_mean1, bn/running_var1, ...``); after :meth:`fit`, also the optimiser state
        ``opt/v_dW1, opt/s_db1, ..., opt/t`` and the training state ``train/...`` (epoch
        and step counters, the generator's state, early-stopping bookkeeping and the
        fingerprint of the fit's arguments), all numeric, so that a checkpoint written
        with :func:`chainrule.io.save` lets ``fit(..., resume=path)`` continue exactly.
        """
        return _state.get_state(self.parameters, self.optimizer_state(), self.train_state_,
                                self.rng, self.running_statistics)

    def set_state(self, state):
        """Restore :meth:`get_state`'s output (validated; the model is unchanged on error)."""
        params, opt, train, rng, running = _state.set_state(state, self.layer_dims, self.dtype,
                                                            self.batch_norm)
        self.parameters, self._optimizer, self._opt_pending = params, None, opt
        self._running = running
        if train is not None:
            self.rng = rng
            self.history_ = _state.history_up_to(self.history_, train.epoch)
        self.train_state_ = train

    @property
    def epochs_trained_(self):
        """Epochs trained by the fits so far (what ``continue_training`` continues from)."""
        return 0 if self.train_state_ is None else int(self.train_state_.epoch)

    @property
    def steps_trained_(self):
        """Parameter updates applied by the fits so far."""
        return 0 if self.train_state_ is None else int(self.train_state_.steps)

    @property
    def optimizer_(self):
        return self._optimizer

    @optimizer_.setter
    def optimizer_(self, opt):  # adopting an optimiser drops the restored, pending state
        self._optimizer, self._opt_pending = opt, None

    def optimizer_state(self):
        """The optimiser state: of :attr:`optimizer_`, or the one :meth:`set_state` restored."""
        return self._optimizer.get_state() if self._optimizer is not None else self._opt_pending

    @_thread_limited
    def fit(self, X, Y, *args, **kwargs):
        # Signature and docstring come from chainrule.training.config (the arguments, once).
        if _stream.is_stream(X):  # a dask array, chunks, a generator: training/stream.py
            return _stream.fit_stream(self, X, Y, args, kwargs)  # (one fit per block)
        with _only_fit(self):
            FitRun(self, X, Y, FitConfig.from_call(args, kwargs)).execute()
        return self

    fit.__signature__ = _fit_config.signature()
    fit.__doc__ = _fit_config.docstring() + """

        Notes
        -----
        ``X`` may also be a stream (``Y=None`` unless ``X`` is a dask array): a dask array,
        a list of ``(X_block, Y_block)`` chunks, a callable returning a fresh iterator of
        them per epoch, an iterator read once, or a
        :class:`~chainrule.training.stream.Stream`; the data are then read chunk by chunk
        through a shuffle buffer and each block is one engine run (docs/scaling.md)."""

    @_thread_limited
    def step(self, X, Y, learning_rate):
        """One step of gradient descent on ``X, Y``; returns the cost before the update.

        It is one step of the engine ``fit`` runs (:mod:`chainrule.training.step`), on the
        whole batch, so it obeys the same update-safety rule: a step whose cost, gradient or
        new parameters would not be finite raises :class:`NonFiniteError` and leaves the
        parameters (and batch norm's running averages) as they were.
        """
        if getattr(self, "_fitting", False):
            raise check.InputError("step was called while fit runs (from a callback): fit "
                                   "trains the same parameters; return True from the "
                                   "callback to stop, then step")
        learning_rate = check.positive_finite(learning_rate, "learning_rate")
        X, Y = self.validate_data(X, Y)
        m = X.shape[1]
        norm, bn, flags = None, None, None
        if any(self.batch_norm):
            if m < 2:
                raise InputError(f"batch norm needs at least 2 examples in a training "
                                 f"batch: step got m = {m}")
            norm, flags = self.batch_norm_arrays(), self.batch_norm
            bn = (self.batch_norm_momentum, self.batch_norm_epsilon, self.batch_norm_unbiased)
        ops = self.ops_for(m)
        Ws, bs = self.layer_arrays()
        # the plan per batch size (the shape, activations and loss are set at construction;
        # the ids notice an attribute assigned anew)
        key = (m, bn, id(self.layer_dims), id(self.activations), self.loss)
        cached = self.__dict__.get("_step_plan")
        if cached is None or cached[0] != key:
            cached = self._step_plan = (key, _step.step_plan(
                self.layer_dims, self.activations, self.loss, m, batch_norm=flags, bn=bn))
        plan = cached[1]
        flat = self._parameters._flat  # every parameter is a view of it
        before = flat.copy()
        running = {k: v.copy() for k, v in self._running.items()} if norm else {}
        r = _step.one_step(ops, plan, X, Y, Ws, bs, learning_rate, norm=norm)
        if r.steps == 1 and check.all_finite(flat):
            return float(r.cost_sum[0] / r.weight_sum[0])
        flat[...] = before  # the engine's rule refused it; this is its guarantee everywhere
        for k, v in running.items():
            self._running[k][...] = v
        raise NonFiniteError(refused_step("step", r.what or "update of the parameters",
                                          learning_rate, self._parameters,
                                          self._step_gradients(X, Y), self.dtype))

    def _step_gradients(self, X, Y):
        """``{"dW1": ...}`` of a refused step, for its message (the reference's formulas)."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if any(self.batch_norm):
                AL, caches = self._forward_batch_norm(X, True)
                grads = gradients_bn(AL, Y, caches, self.activations, self.loss, 0.0, None,
                                     None, float(X.shape[1]))
                return {f"d{k}": grads[f"d{k}"] for k in self._parameters}
            AL, caches = ref.model_forward(X, dict(self._parameters.items()),
                                           self.activations)
            grads = ref.model_backward(AL, Y, caches, self.activations, self.loss, "L")
        return {k: v for k, v in grads.items() if k[1] in "Wb"}
