"""What :class:`chainrule.Network` learns besides its parameters, and ``fit`` itself: the
:class:`Trainable` base holds the optimiser, the training state, the history and their
``get_state``/``set_state`` schema, so that the model module stays about parameters and passes.
"""

from __future__ import annotations

import contextlib
import threading

from .._threads import limits_threads as _thread_limited
from ..errors import InputError
from . import config as _fit_config
from . import state as _state
from .config import FitConfig
from .loop import FitRun


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
    """Training state and ``fit`` for a network with ``layer_dims``, ``dtype``, ``rng`` and
    ``parameters`` (see ``Network``)."""

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

        The parameters ``W1, b1, ...``; after :meth:`fit`, also the optimiser state
        ``opt/v_dW1, opt/s_db1, ..., opt/t`` and the training state ``train/...`` (epoch
        and step counters, the generator's state, early-stopping bookkeeping and the
        fingerprint of the fit's arguments), all numeric, so that a checkpoint written
        with :func:`chainrule.io.save` lets ``fit(..., resume=path)`` continue exactly.
        """
        return _state.get_state(self.parameters, self.optimizer_state(), self.train_state_,
                                self.rng)

    def set_state(self, state):
        """Restore :meth:`get_state`'s output (validated; the model is unchanged on error)."""
        params, opt, train, rng = _state.set_state(state, self.layer_dims, self.dtype)
        self.parameters, self._optimizer, self._opt_pending = params, None, opt
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
        with _only_fit(self):
            FitRun(self, X, Y, FitConfig.from_call(args, kwargs)).execute()
        return self

    fit.__signature__ = _fit_config.signature()
    fit.__doc__ = _fit_config.docstring()
