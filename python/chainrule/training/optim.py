r"""Optimisers and learning-rate schedules, in the course's exact form.

An optimiser updates the parameters in place from the gradients of one step; its state
(the moving averages ``v``, ``s`` and Adam's step counter ``t``) is part of the model
state, so a checkpoint holds it (:meth:`chainrule.Network.get_state` keys ``opt/v_dW1``,
``opt/s_db2``, ``opt/t``...).

=============  =====================================================================
optimiser      update for every ``W[l]`` (and likewise ``b[l]``)
=============  =====================================================================
``gd``         ``W = W - lr dW``
``momentum``   ``v = β v + (1-β) dW``;  ``W = W - lr v``
``rmsprop``    ``s = β s + (1-β) dW²``;  ``W = W - lr dW / (√s + ε)``
``adam``       ``t = t + 1``; ``v = β1 v + (1-β1) dW``; ``s = β2 s + (1-β2) dW²``;
               ``v̂ = v / (1-β1^t)``; ``ŝ = s / (1-β2^t)``; ``W = W - lr v̂ / (√ŝ + ε)``
=============  =====================================================================

Each class is one row of the table ``OPTIMIZERS`` (name -> class), which everything else
reads: the CLI's ``--optimizer`` choices and flags, ``NetworkClassifier``'s options, ``fit``'s
config, the state schema, the engines (a class's ``code``, :meth:`Optimizer.hyperparameters`
vector and ``state_prefixes``; :meth:`Optimizer.bound`, the cheap form of the update-safety
rule) and the tests' parameter lists. A class with ``code = None`` runs on every backend's
generic composition of ``fit_epochs``; one whose code the compiled engines know
(``core/train.py``, ``csrc/train.h``: a test checks they agree) runs compiled.

``v`` and ``s`` start at zero (the course's ``initialize_velocity`` /
``initialize_adam``); ``t`` counts the steps (mini-batches), as the course's
``t = t + 1`` before each Adam update. Published course versions put ``ε`` outside
the square root (the default here) or inside it: ``eps_inside_sqrt=True`` gives
``W = W - lr v̂ / √(ŝ + ε)`` (and ``dW / √(s + ε)`` for RMSprop).

Schedules (the course's week-2 ``update_lr`` and ``schedule_lr_decay``):
``lr = lr0 / (1 + decay_rate · epoch)`` and
``lr = lr0 / (1 + decay_rate · floor(epoch / time_interval))``.
"""

from __future__ import annotations

import abc
import inspect
import math
import numbers

import numpy as np

from .. import _validate as check
from ..backends.compose import unsafe_update, update_is_safe
from ..errors import InputError

__all__ = ["Optimizer", "GradientDescent", "Momentum", "RMSprop", "Adam", "OPTIMIZERS",
           "make_optimizer", "hyperparameter_names", "optimizer_choices", "inverse_time_decay",
           "scheduled_decay"]


def _unit_interval(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise InputError(f"{what} must be a number in [0, 1), got {value!r}")
    return float(value)


def _positive(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value) or value <= 0:
        raise InputError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)


def _floor(epsilon, inside):
    """The least denominator ``√s + ε`` (``√(s + ε)`` with ε inside the root) can take."""
    return math.sqrt(epsilon) if inside else epsilon


class Optimizer(abc.ABC):
    """Base class: ``update`` applies one step in place; ``state`` holds the moving averages.

    Subclasses name their state arrays ``<prefix>_d<param>`` (``v_dW1``, ``s_db2``) as the
    course's dictionaries ``v["dW1"]``, ``s["db2"]``.

    What the table says of each class: ``name``; ``code``, the integer the compiled engines
    know it by (``None``: composed from the backend's layer ops); ``state_prefixes``, the
    state arrays it keeps; ``uses_t``, whether it counts steps; :meth:`hyperparameters`, the
    engines' vector; :meth:`bound`, its step's bounds.
    """

    name = "optimizer"
    code: int | None = None
    state_prefixes: tuple = ()
    uses_t = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__:
            # A subclass computes its own update unless it says which compiled one it is:
            # it runs on the generic composition (never silently as its parent's kernel).
            cls.code = None

    def __init__(self):
        self.state = {}
        self.t = 0

    def get_config(self):
        """The hyperparameters as JSON-compatible values (``make_optimizer(**config)`` inverts it)."""
        return {"name": self.name}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"

    def reset(self, parameters):
        """Zero state for ``parameters`` (``{"W1": ..., "b1": ...}``), ``t = 0``."""
        self.t = 0
        self.state = {f"{p}_d{k}": np.zeros_like(v) for p in self.state_prefixes
                      for k, v in parameters.items()}

    def get_state(self):
        """``{"v_dW1": ..., "t": array(t)}`` (copies); empty for plain gradient descent."""
        out = {k: v.copy() for k, v in self.state.items()}
        if self.uses_t:
            out["t"] = np.array(self.t, dtype=np.int64)
        return out

    def set_state(self, state, parameters):
        """Adopt ``state`` (from :meth:`get_state`) for ``parameters``; checks keys and shapes."""
        expected = {f"{p}_d{k}": v for p in self.state_prefixes for k, v in parameters.items()}
        keys = set(state) - {"t"}
        if keys != set(expected) or (self.uses_t and "t" not in state):
            raise InputError(f"the saved optimiser state (keys {sorted(state)}) does not fit the "
                             f"{self.name} optimiser of this network (keys "
                             f"{sorted(expected) + (['t'] if self.uses_t else [])})")
        new = {}
        for k, ref in expected.items():
            a = np.asarray(state[k])
            if a.shape != ref.shape:
                raise InputError(f"optimiser state {k} has shape {a.shape}, expected {ref.shape}")
            new[k] = np.array(a, dtype=ref.dtype, order="C")
        self.state = new
        if self.uses_t:
            t = np.asarray(state["t"]).reshape(-1)
            if t.size != 1:
                raise InputError(f"optimiser state t must be one number, got shape {t.shape}")
            self.t = int(t[0])
        else:
            self.t = 0

    def hyperparameters(self):
        """``(β1, β2, ε, eps_inside_sqrt)`` as the compiled engines read them (the plan's
        vector; a class that has fewer leaves the others 0): RMSprop's β is β2."""
        return (0.0, 0.0, 0.0, 0.0)

    def bound(self, p, v, s, lr, g_max, t):
        """Upper bounds ``(max|P|, max|v|, max|s|)`` after a step from bounds ``p, v, s``
        before it, the largest gradient ``g_max``, learning rate ``lr`` and step counter
        ``t`` (the cheap form of the update-safety rule: bounds far below the dtype's max
        prove the step finite without computing candidates); ``None`` when this optimiser
        has no such bound (its steps are then always checked exactly)."""
        return None

    def update(self, ops, Ws, bs, dWs, dbs, learning_rate):
        """Apply one step in place to the lists ``Ws, bs`` (``Ws[l-1] = W[l]``) if it is safe.

        The update-safety rule (:func:`chainrule.backends.compose.unsafe_update`): the new
        parameters and the new state are computed as candidates first and committed only
        when all are finite. Returns ``None`` when applied; otherwise what was not finite
        (``"update of W1"``, ``"update of s_db2"``), with parameters, state and ``t`` as
        they were.
        """
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            new_params, new_state, t = self._candidates(Ws, bs, dWs, dbs, learning_rate)
        bad = unsafe_update(None, (), list(new_params.items()) + list(new_state.items()))
        if bad is not None:
            return bad
        self._commit(Ws, bs, dWs, dbs, new_params, new_state, t)
        return None

    def apply(self, ops, Ws, bs, dWs, dbs, learning_rate):
        """:meth:`update` without its checks, for a caller whose bounds (:meth:`bound`, with
        the learning rate as the parameters' dtype holds it) have proved every new value
        finite: the training engines' fast path. Applies the step in place."""
        new_params, new_state, t = self._candidates(Ws, bs, dWs, dbs, learning_rate)
        self._commit(Ws, bs, dWs, dbs, new_params, new_state, t)

    def _commit(self, Ws, bs, dWs, dbs, new_params, new_state, t):
        for key, P, _ in self._pairs(Ws, bs, dWs, dbs):
            P[...] = new_params[key]
        for key, value in new_state.items():
            self.state[key][...] = value
        self.t = t

    def update_named(self, triples, learning_rate):
        """:meth:`update` over ``(key, param, grad)`` triples instead of the layer lists: the
        step of a network with batch norm (``W1, gamma1, beta1, W2, b2, ...``; the state
        entries ``v_dgamma1``...). Candidates first, committed only when all are finite
        (the same rule); returns ``None`` or what was not finite."""
        self._named = list(triples)
        try:
            return Optimizer.update(self, None, (), (), (), (), learning_rate)
        finally:
            del self._named

    @abc.abstractmethod
    def _candidates(self, Ws, bs, dWs, dbs, learning_rate):
        """``(new parameters {W1: ...}, new state {v_dW1: ...}, new t)`` of one step, as new
        arrays: nothing of the current parameters or state is touched."""

    def _pairs(self, Ws, bs, dWs, dbs):
        """``(key, param, grad)`` for every ``W[l]`` and ``b[l]``, in the order ``W1, b1, W2, ...``
        (or :meth:`update_named`'s triples)."""
        if getattr(self, "_named", None) is not None:
            yield from self._named
            return
        for l, (W, b, dW, db) in enumerate(zip(Ws, bs, dWs, dbs), 1):
            yield f"W{l}", W, dW
            yield f"b{l}", b, db


class GradientDescent(Optimizer):
    """``W = W - lr dW`` (the backend's fused ``sgd_update``)."""

    name = "gd"
    code = 0

    def bound(self, p, v, s, lr, g_max, t):
        return p + lr * g_max, 0.0, 0.0

    def update(self, ops, Ws, bs, dWs, dbs, learning_rate):
        # The rule's gradient-descent form (update_is_safe), then the backend's sgd_update.
        for key, P, dP in self._pairs(Ws, bs, dWs, dbs):
            if not update_is_safe([P], [dP], learning_rate):
                return f"gradient d{key}" if not np.isfinite(dP).all() else f"update of {key}"
        ops.sgd_update(Ws, bs, dWs, dbs, learning_rate)
        return None

    def apply(self, ops, Ws, bs, dWs, dbs, learning_rate):
        ops.sgd_update(Ws, bs, dWs, dbs, learning_rate)

    def _candidates(self, Ws, bs, dWs, dbs, learning_rate):
        return ({key: P - learning_rate * dP for key, P, dP in self._pairs(Ws, bs, dWs, dbs)},
                {}, 0)


class Momentum(Optimizer):
    """``v = β v + (1-β) dW``; ``W = W - lr v`` (course default ``β = 0.9``)."""

    name = "momentum"
    code = 1
    state_prefixes = ("v",)

    def __init__(self, beta=0.9):
        super().__init__()
        self.beta = _unit_interval(beta, "beta")

    def get_config(self):
        return {"name": self.name, "beta": self.beta}

    def hyperparameters(self):
        return (self.beta, 0.0, 0.0, 0.0)

    def bound(self, p, v, s, lr, g_max, t):
        v = self.beta * v + (1 - self.beta) * g_max
        return p + lr * v, v, 0.0

    def _candidates(self, Ws, bs, dWs, dbs, learning_rate):
        beta, params, state = self.beta, {}, {}
        for key, P, dP in self._pairs(Ws, bs, dWs, dbs):
            v = self.state[f"v_d{key}"] * beta
            v += (1 - beta) * dP
            state[f"v_d{key}"], params[key] = v, P - learning_rate * v
        return params, state, self.t


class RMSprop(Optimizer):
    """``s = β s + (1-β) dW²``; ``W = W - lr dW / (√s + ε)`` (or ``/ √(s + ε)``)."""

    name = "rmsprop"
    code = 2
    state_prefixes = ("s",)

    def __init__(self, beta=0.9, epsilon=1e-8, eps_inside_sqrt=False):
        super().__init__()
        self.beta = _unit_interval(beta, "beta")
        self.epsilon = _positive(epsilon, "epsilon")
        self.eps_inside_sqrt = check.boolean(eps_inside_sqrt, "eps_inside_sqrt")

    def get_config(self):
        return {"name": self.name, "beta": self.beta, "epsilon": self.epsilon,
                "eps_inside_sqrt": self.eps_inside_sqrt}

    def hyperparameters(self):
        return (0.0, self.beta, self.epsilon, float(self.eps_inside_sqrt))

    def bound(self, p, v, s, lr, g_max, t):
        # |dW| / (√s + ε) <= |dW| / ε (/ √ε with ε inside the root); the square dW² is an
        # intermediate in the dtype, so it is bounded too (it overflows before (1-β) dW²)
        s = max(self.beta * s + (1 - self.beta) * g_max * g_max, g_max * g_max)
        return p + lr * g_max / _floor(self.epsilon, self.eps_inside_sqrt), 0.0, s

    def _candidates(self, Ws, bs, dWs, dbs, learning_rate):
        beta, eps, params, state = self.beta, self.epsilon, {}, {}
        for key, P, dP in self._pairs(Ws, bs, dWs, dbs):
            s = self.state[f"s_d{key}"] * beta
            s += (1 - beta) * np.square(dP)
            denom = np.sqrt(s + eps) if self.eps_inside_sqrt else np.sqrt(s) + eps
            state[f"s_d{key}"], params[key] = s, P - learning_rate * dP / denom
        return params, state, self.t


class Adam(Optimizer):
    """Adam with bias correction, the course's ``update_parameters_with_adam``.

    ``t = t + 1``; ``v = β1 v + (1-β1) dW``; ``v̂ = v / (1-β1^t)``;
    ``s = β2 s + (1-β2) dW²``; ``ŝ = s / (1-β2^t)``; ``W = W - lr v̂ / (√ŝ + ε)``
    (``√(ŝ + ε)`` with ``eps_inside_sqrt=True``). Defaults ``β1 = 0.9, β2 = 0.999,
    ε = 1e-8``.
    """

    name = "adam"
    code = 3
    state_prefixes = ("v", "s")
    uses_t = True

    def __init__(self, beta1=0.9, beta2=0.999, epsilon=1e-8, eps_inside_sqrt=False):
        super().__init__()
        self.beta1 = _unit_interval(beta1, "beta1")
        self.beta2 = _unit_interval(beta2, "beta2")
        self.epsilon = _positive(epsilon, "epsilon")
        self.eps_inside_sqrt = check.boolean(eps_inside_sqrt, "eps_inside_sqrt")

    def get_config(self):
        return {"name": self.name, "beta1": self.beta1, "beta2": self.beta2,
                "epsilon": self.epsilon, "eps_inside_sqrt": self.eps_inside_sqrt}

    def hyperparameters(self):
        return (self.beta1, self.beta2, self.epsilon, float(self.eps_inside_sqrt))

    def bound(self, p, v, s, lr, g_max, t):
        # |v̂| / (√ŝ + ε) <= |v̂| / ε (/ √ε with ε inside the root)
        b1, b2 = self.beta1, self.beta2
        v = b1 * v + (1 - b1) * g_max
        s = max(b2 * s + (1 - b2) * g_max * g_max, g_max * g_max)  # dW² too, as RMSprop
        return p + lr * (v / (1 - b1 ** (t + 1))) / _floor(self.epsilon, self.eps_inside_sqrt), \
            v, s

    def _candidates(self, Ws, bs, dWs, dbs, learning_rate):
        t = self.t + 1
        beta1, beta2, eps, params, state = self.beta1, self.beta2, self.epsilon, {}, {}
        for key, P, dP in self._pairs(Ws, bs, dWs, dbs):
            v = self.state[f"v_d{key}"] * beta1
            v += (1 - beta1) * dP
            s = self.state[f"s_d{key}"] * beta2
            s += (1 - beta2) * np.square(dP)
            v_corrected = v / (1 - beta1 ** t)
            s_corrected = s / (1 - beta2 ** t)
            denom = np.sqrt(s_corrected + eps) if self.eps_inside_sqrt else np.sqrt(s_corrected) + eps
            state[f"v_d{key}"], state[f"s_d{key}"] = v, s
            params[key] = P - learning_rate * v_corrected / denom
        return params, state, t


OPTIMIZERS = {"gd": GradientDescent, "momentum": Momentum, "rmsprop": RMSprop, "adam": Adam}


def hyperparameter_names(name):
    """The hyperparameters the registered optimiser ``name`` takes (its constructor's
    keywords, e.g. ``("beta1", "beta2", "epsilon", "eps_inside_sqrt")`` for ``"adam"``): what
    the CLI's flags and ``NetworkClassifier``'s parameters hand it."""
    return tuple(inspect.signature(OPTIMIZERS[name]).parameters)


def optimizer_choices():
    """``{"gd", "momentum", ...}``: the registered names, for docs and error messages."""
    return "{" + ", ".join(f'"{name}"' for name in OPTIMIZERS) + "}"


def make_optimizer(optimizer="gd", **hyperparameters):
    """An :class:`Optimizer` from a name (``gd``, ``momentum``, ``rmsprop``, ``adam``) and its
    hyperparameters, or a fresh copy of an :class:`Optimizer` instance's configuration.

    Examples
    --------
    >>> make_optimizer("adam", beta2=0.99)
    Adam(beta1=0.9, beta2=0.99, epsilon=1e-08, eps_inside_sqrt=False)
    """
    if isinstance(optimizer, Optimizer):
        if hyperparameters:
            raise InputError("give hyperparameters either to the Optimizer instance or by name, "
                             "not both")
        config = optimizer.get_config()
        return make_optimizer(config.pop("name"), **config)
    if isinstance(optimizer, dict):
        config = dict(optimizer)
        return make_optimizer(config.pop("name", "gd"), **config, **hyperparameters)
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {optimizer!r}; valid: {', '.join(OPTIMIZERS)}, "
                         f"an Optimizer or a dict with a 'name'")
    try:
        return OPTIMIZERS[optimizer](**hyperparameters)
    except TypeError as exc:
        raise InputError(f"optimizer {optimizer!r} does not take {sorted(hyperparameters)}: "
                         f"{exc}") from exc


# --------------------------------------------------------------------------- schedules

def inverse_time_decay(learning_rate0, epoch_num, decay_rate):
    """``lr = lr0 / (1 + decay_rate · epoch_num)`` (the course's ``update_lr``)."""
    return learning_rate0 / (1 + decay_rate * epoch_num)


def scheduled_decay(learning_rate0, epoch_num, decay_rate, time_interval=1000):
    """``lr = lr0 / (1 + decay_rate · floor(epoch_num / time_interval))`` (``schedule_lr_decay``)."""
    return learning_rate0 / (1 + decay_rate * np.floor(epoch_num / time_interval))
