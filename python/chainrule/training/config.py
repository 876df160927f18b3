"""The arguments of :meth:`chainrule.Network.fit`, defined once.

Each argument is one field of :class:`FitConfig`: its default, its documentation (the
``Parameters`` section of ``fit``'s docstring is generated from it) and its validator.
``Network.fit(X, Y, *args, **kwargs)`` forwards into :meth:`FitConfig.from_call`; its
signature is generated from the fields too (:func:`signature`). :meth:`FitConfig.fingerprint`
gives the dict a checkpoint's fingerprint is computed from.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import numbers
import textwrap
from dataclasses import dataclass, field

from .. import _validate as check
from ..errors import InputError
from .batches import keep_probs
from .optim import make_optimizer, optimizer_choices

# fit's first arguments may be given by position, as the course's model(X, Y, ...) functions.
POSITIONAL = ("epochs", "learning_rate", "cost_every", "progress", "print_cost")


def _arg(default, doc, check=None, fingerprint=None, type_=""):
    """A field: ``check(value, config)`` returns the validated value; ``fingerprint(value)``
    is its entry in the checkpoint fingerprint (``None``: not part of it)."""
    return field(default=default, metadata=dict(doc=doc, check=check, fingerprint=fingerprint,
                                                type=type_))


def _epochs(value):
    value = check.nonneg_int(value, "epochs")
    if value > 2 ** 62:  # the epoch and step counters are 64-bit
        raise InputError(f"epochs must be an integer <= 2**62, got {value}")
    return value


def _mini_batch_size(value, config):
    if value is None:
        return None
    return check.positive_int(value, "mini_batch_size",
                              "mini_batch_size must be >= 1 (or None for full batch)")


def _cost_every(value, config):
    if value is None:
        value = 1 if config.mini_batch_size is not None else 100
    return check.positive_int(value, "cost_every")


def _optional(validator):
    return lambda value, config: None if value is None else validator(value)


def _on_nonfinite(value, config):
    if value not in ("raise", "skip"):
        raise InputError(f"on_nonfinite must be 'raise' or 'skip', got {value!r}")
    return value


def _checkpoint_every(value, config):
    value = check.nonneg_int(value, "checkpoint_every")
    if config.checkpoint is not None and value == 0:
        raise InputError("checkpoint_every must be an integer > 0")
    return value


def _validation_fraction(value, config):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not (value == 0 or 0 < value < 1):  # NaN fails too
        raise InputError(f"validation_fraction must be in (0, 1) (or 0: none), got {value!r}")
    if value and config.validation_data is not None:
        raise InputError(f"validation_fraction={value!r} and validation_data were both given: "
                         f"validate on one of them (validation_fraction=0 to use "
                         f"validation_data)")
    return value


def _decay_interval(value, config):
    if value is None:
        return None
    value = check.positive_int(value, "decay_interval")
    if not config.decay_rate:
        raise InputError(f"decay_interval={value} schedules a decay, but decay_rate is 0: give "
                         f"decay_rate > 0 too (or leave decay_interval out)")
    return value


def _shuffle_seed(value, config):
    if value is None:
        return None
    value = check.nonneg_int(value, "shuffle_seed")
    if value + config.epochs >= 2 ** 32:  # epoch i permutes with seed shuffle_seed + i + 1
        raise InputError(f"shuffle_seed + epochs must be < 2**32 (epoch i seeds NumPy with "
                         f"shuffle_seed + i + 1), got shuffle_seed = {value} with epochs = "
                         f"{config.epochs}")
    return value


_HOOKS = ("on_fit_begin", "on_epoch_end", "on_fit_end")


def _callbacks(value, config):
    if value is None:
        return []
    if callable(value) or isinstance(value, (str, bytes, dict)) or \
            not hasattr(value, "__iter__"):
        raise InputError(f"callbacks must be a list of callables f(net, epoch, logs) or "
                         f"Callback objects, got {type(value).__name__} {value!r:.60}")
    out = list(value)
    for i, cb in enumerate(out):
        if not callable(cb) and not any(callable(getattr(cb, h, None)) for h in _HOOKS):
            raise InputError(f"callbacks[{i}] is {type(cb).__name__} {cb!r:.60}; expected a "
                             f"callable f(net, epoch, logs) or a chainrule.callbacks.Callback "
                             f"(with {', '.join(_HOOKS)})")
    return out


def _checkpoint(value, config):
    if value is None:
        return None
    from .. import io  # io imports neither the model nor training
    from ..errors import ChainruleError

    try:
        return io.check_save_path(value)
    except ChainruleError as exc:  # InputError or ModelFileError, naming the argument
        raise type(exc)(f"checkpoint: {exc}") from exc


def _resume(value, config):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)):
        raise InputError(f"resume must be the path of a checkpoint written by "
                         f"fit(checkpoint=...), got {type(value).__name__} {value!r:.60}")
    return value


def _same(value, config=None):
    return value


def _bool(name):
    return lambda value, config: check.boolean(value, name)


def _dropout_rng(value, config):
    if value not in ("counter", "generator"):
        raise InputError(f"dropout_rng must be 'counter' or 'generator', got {value!r}")
    return value


@dataclass
class FitConfig:
    """The validated arguments of one ``fit`` call (see ``Network.fit`` for each)."""

    epochs: int = _arg(
        1000, "Epochs of this call (with ``resume``: the total of the interrupted call).",
        lambda v, c: _epochs(v), int, "int")
    learning_rate: float = _arg(
        0.0075,
        "``lr0``. With ``decay_rate``, epoch ``i`` trains with ``lr0 / (1 + decay_rate · "
        "(i-1))`` (epochs 0 and 1 with ``lr0``): the course updates the rate to "
        "``decay(lr0, i, decay_rate)`` at the end of epoch ``i``. With ``decay_interval`` the "
        "scheduled variant ``lr0 / (1 + decay_rate · floor((i-1) / decay_interval))``.",
        lambda v, c: check.positive_finite(v, "learning_rate"), float, "float")
    cost_every: int | None = _arg(
        None,
        "Record ``history_`` (and run validation, early stopping, callbacks, the progress "
        "bar) after every this many epochs and after the last one. Default: 1 with "
        "mini-batches, 100 for full-batch training.", _cost_every, int, "int, optional")
    progress: bool = _arg(
        True,
        "Show progress on stderr: tqdm's bar in a terminal (the notebook bar in Jupyter where "
        "ipywidgets is installed), plain lines at each tenth of the epochs elsewhere (a log, "
        "a pipe); then one summary line (epochs, time, cost, score) that stays.",
        _bool("progress"), type_="bool")
    print_cost: bool = _arg(False, "Print the cost whenever it is recorded, as the course does.",
                            _bool("print_cost"), type_="bool")
    optimizer: object = _arg(
        "gd", "See :mod:`chainrule.optim` (e.g. ``optim.Adam(eps_inside_sqrt=True)``).",
        lambda v, c: make_optimizer(v), lambda opt: opt.get_config(),
        f"{optimizer_choices()} or Optimizer")
    mini_batch_size: int | None = _arg(
        None, "``None``: one batch of all ``m`` columns (no shuffling).", _mini_batch_size,
        _same, "int, optional")
    shuffle: bool = _arg(True, "Permute the columns every epoch (with mini-batches).",
                         _bool("shuffle"), fingerprint=bool, type_="bool")
    shuffle_seed: int | None = _arg(
        None,
        "The course's seeding: epoch ``i`` permutes with seed ``shuffle_seed + i + 1`` "
        "(``seed = seed + 1`` then ``np.random.seed(seed)``). Default: the model's generator.",
        _shuffle_seed, _same, "int, optional")
    decay_rate: float = _arg(
        0.0, "Learning-rate decay (see ``learning_rate``); ``decay_rate=0`` keeps ``lr0``.",
        lambda v, c: check.nonneg_float(v, "decay_rate"), _same, "float")
    decay_interval: int | None = _arg(
        None, "The interval of the scheduled decay (see ``learning_rate``).",
        _decay_interval, _same, "int, optional")
    lambd: float = _arg(0.0, "L2 regularisation strength ``λ``.",
                        lambda v, c: check.nonneg_float(v, "lambd"), _same, "float")
    keep_prob: object = _arg(
        1.0,
        "Dropout keep probability, one number or one per hidden layer (1 = no dropout). "
        "Masks: see ``dropout_rng``; prediction never drops.",
        fingerprint=_same, type_="float or sequence of float")
    dropout_rng: str = _arg(
        "counter",
        "Where the dropout masks come from. ``\"counter\"``: counter-based masks "
        "(Philox4x32-10 of a key drawn per epoch from the model's generator, the layer, the "
        "batch and the unit), identical on every backend and drawn inside the compiled "
        "training loop. ``\"generator\"``: the course's ``rand(n[l], m) < keep_prob`` drawn "
        "from the model's generator at every step (the course-exact mode; its steps are "
        "composed from the backend's layer ops).", _dropout_rng, _same,
        '{"counter", "generator"}')
    sample_weight: object = _arg(None, "One weight per example.", type_="array, shape (m,), optional")
    class_weight: object = _arg(
        None,
        "``{class index: weight}``; classes are the 0/1 labels of a 1-unit sigmoid output or "
        "the rows of a softmax output. Multiplies ``sample_weight``.", fingerprint=repr,
        type_='dict or "balanced", optional')
    validation_data: object = _arg(None, "Data scored at every record.",
                                   type_="tuple (X_val, Y_val), optional")
    validation_fraction: float = _arg(
        0.0,
        "Or hold out this fraction of the columns (a permutation seeded by the model's seed, "
        "not its generator, so a resumed fit holds out the same ones).", _validation_fraction,
        lambda v: float(v or 0), "float")
    early_stopping: bool = _arg(
        False,
        "Stop when the monitored value (``val_cost``, else ``cost``) has not improved by "
        "``min_delta`` for ``patience`` records; with ``restore_best`` the parameters of the "
        "best record are restored at the end.", _bool("early_stopping"), fingerprint=bool,
        type_="bool")
    patience: int = _arg(10, "Records without improvement before early stopping.",
                         lambda v, c: check.nonneg_int(v, "patience"), _same, "int")
    min_delta: float = _arg(0.0, "The improvement that counts for early stopping.",
                            lambda v, c: check.nonneg_float(v, "min_delta"), _same, "float")
    restore_best: bool = _arg(True, "Restore the best record's parameters after early "
                              "stopping.", _bool("restore_best"), fingerprint=bool, type_="bool")
    full_score: bool = _arg(
        False,
        "With mini-batches, score the whole training set at every record (one forward pass "
        "over all m examples). By default ``history_[\"score\"]`` is the running accuracy of "
        "the epoch's batches (their forward passes, with dropout, before each update: free); "
        "regressors' R² and multi-unit sigmoid outputs always take the full pass.",
        _bool("full_score"), type_="bool")
    callbacks: object = _arg(
        None,
        "Callables ``f(net, epoch, logs)`` or :class:`chainrule.callbacks.Callback` objects, "
        "called after every record; returning ``True`` stops training.",
        _callbacks, type_="list, optional")
    on_nonfinite: str = _arg(
        "raise",
        "A step with a NaN/inf cost or gradient raises :class:`NonFiniteError` (the model keeps "
        "the parameters and optimiser state of the last good step), or is skipped (counted in "
        '``history_["skipped"]``).', _on_nonfinite, _same, '{"raise", "skip"}')
    checkpoint: object = _arg(
        None,
        "Save the model (parameters, optimiser and training state, history) to this file "
        "every ``checkpoint_every`` epochs, atomically (:func:`chainrule.io.save`); the path "
        "is checked before training (:func:`chainrule.io.check_save_path`).", _checkpoint,
        type_="str or path, optional")
    checkpoint_every: int = _arg(1, "Epochs between checkpoints.", _checkpoint_every,
                                 type_="int")
    resume: object = _arg(
        None,
        "Continue the interrupted fit of that checkpoint: the same arguments and data give "
        "results identical to an uninterrupted run.", _resume, type_="str or path, optional")
    continue_training: bool = _arg(
        False,
        "Keep the optimiser state, epoch counter and history of the previous fit and train "
        "``epochs`` more (what ``partial_fit`` uses). Default: start them afresh (the "
        "parameters always continue from their current values).", _bool("continue_training"),
        type_="bool")

    @classmethod
    def from_call(cls, args, kwargs):
        """The config of ``fit(X, Y, *args, **kwargs)``, validated except ``keep_prob`` (which
        needs the number of layers: :meth:`validated`)."""
        if len(args) > len(POSITIONAL):
            raise TypeError(f"fit() takes at most {len(POSITIONAL) + 2} positional arguments "
                            f"(X, Y, {', '.join(POSITIONAL)}), got {len(args) + 2}")
        given = dict(zip(POSITIONAL, args))
        for name in kwargs:
            if name in given:
                raise TypeError(f"fit() got multiple values for argument {name!r}")
        given.update(kwargs)
        return cls(**given)

    def validated(self, L):
        """A copy with every argument checked and normalised (``keep_prob``: one per hidden
        layer of a network with ``L`` layers), in field order."""
        out = dataclasses.replace(self)
        for f in dataclasses.fields(self):
            validator = f.metadata["check"]
            if validator is not None:
                setattr(out, f.name, validator(getattr(out, f.name), out))
        out.keep_prob = keep_probs(self.keep_prob, L)
        return out

    def fingerprint(self):
        """The arguments a resumed fit must share with its checkpoint (a JSON-able dict)."""
        return {f.name: f.metadata["fingerprint"](getattr(self, f.name))
                for f in dataclasses.fields(self) if f.metadata["fingerprint"] is not None}


_FIT_DOC = r"""Train with the course's optimisers, mini-batches, regularisation and schedules.

One epoch is one pass over the training columns, in mini-batches of
``mini_batch_size`` (a seeded permutation per epoch, complete batches then the
smaller rest, as the course's ``random_mini_batches``) or, by default, one full
batch. Each batch takes one step:

- forward with inverted dropout on the hidden layers,
  ``A[l] = A[l] * D[l] / keep_prob`` with ``D[l]`` a Bernoulli(``keep_prob``) mask
  (see ``dropout_rng``);
- the cost ``J = (1/Σw) Σ_k w_k L(a_k, y_k) + λ/(2Σw) Σ_l ‖W[l]‖²`` (without
  weights ``w_k = 1`` and ``Σw = m``: the course's
  ``compute_cost_with_regularization``);
- backward with the same masks, ``dW[l] += (λ/Σw) W[l]``, and
  ``dZ[L][:, k]`` multiplied by ``w_k m / Σw``;
- if the cost, every gradient and every new parameter and optimiser-state entry are
  finite, the optimiser's update (see :mod:`chainrule.optim`) with the epoch's
  learning rate; otherwise nothing changes (see ``on_nonfinite``).

The steps run in chunks of the backend's ``fit_epochs`` op (one compiled call for many
steps on numba and C), sized to take about 0.05-0.1 s so that Ctrl-C is answered
between two chunks.

Parameters
----------
X : array, shape (n[0], m)
Y : array, shape (n[L], m) (or integer labels of shape (m,) for softmax)
{parameters}

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


def docstring():
    """``Network.fit``'s docstring: the text above with the fields' ``Parameters`` entries."""
    return textwrap.indent(_FIT_DOC.replace("{parameters}", parameters_doc(0)), " " * 8).lstrip()


def signature(X_Y=("X", "Y")):
    """The signature of ``fit(self, X, Y, ...)`` generated from the fields."""
    P = inspect.Parameter
    params = [P("self", P.POSITIONAL_OR_KEYWORD)]
    params += [P(name, P.POSITIONAL_OR_KEYWORD) for name in X_Y]
    for f in dataclasses.fields(FitConfig):
        kind = P.POSITIONAL_OR_KEYWORD if f.name in POSITIONAL else P.KEYWORD_ONLY
        params.append(P(f.name, kind, default=f.default))
    return inspect.Signature(params)


def parameters_doc(indent=8):
    """The numpydoc ``Parameters`` entries of the fields, for ``fit``'s docstring."""
    lines = []
    for f in dataclasses.fields(FitConfig):
        lines.append(f"{f.name} : {f.metadata['type']}")
        lines += textwrap.wrap(f.metadata["doc"], 88, initial_indent="    ",
                               subsequent_indent="    ")
    return textwrap.indent("\n".join(lines), " " * indent)
