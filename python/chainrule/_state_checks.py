"""Checks of a network's state (:meth:`Network.get_state`'s dict) and history: pure functions.

One rule for every door a state comes in by: :func:`chainrule.io.load` (a file),
``Network.set_state`` (a dict) and :func:`chainrule.io.save` (refusing to write what load
would refuse). Each function returns a cleaned copy or raises :class:`InputError` naming
the entry, what it holds and what was expected; nothing here touches a network.

The state's entries (see ``Network.get_state``):

- ``W1, b1, ..., WL, bL``: the parameters (``_validate.parameters``: shapes, one dtype,
  finite); a batch-norm layer has ``gamma{l}, beta{l}`` instead of ``b{l}``, and its
  running statistics ``bn/running_mean{l}``, ``bn/running_var{l}`` (``(n[l], 1)``, finite,
  variances ``>= 0``);
- ``opt/<p>_d<param>``: optimiser moments, shaped like ``<param>``, finite; the second
  moments ``s_d...`` (moving averages of squared gradients) are also ``>= 0``;
  ``opt/t``: Adam's step count, one integer ``>= 0``;
- ``train/epoch, steps, skipped, wait``: integers ``>= 0``; ``train/best_epoch``: an
  integer ``>= -1`` (``-1``: nothing recorded yet); ``train/best``: a number, not NaN
  (``inf`` until the first validation record);
- ``train/signature``, ``train/optimizer``, ``train/rng``: UTF-8 JSON as ``uint8`` arrays (a
  hex digest, a dict with ``name``, a NumPy generator state that a ``PCG64`` accepts);
- ``train/best/W1, ...``: the best parameters seen by early stopping (like the parameters);
  ``train/best_bn/running_mean1, ...``: the running statistics of that epoch (batch norm).

If any ``train/...`` entry is present, all of ``TRAIN_KEYS`` must be.
"""

from __future__ import annotations

import json
import math
import numbers
import re

import numpy as np

from . import _validate as check
from .errors import InputError

TRAIN_COUNTERS = {"train/epoch": 0, "train/steps": 0, "train/skipped": 0, "train/wait": 0,
                  "train/best_epoch": -1}  # name -> smallest valid value
TRAIN_JSON = ("train/signature", "train/optimizer", "train/rng")
TRAIN_KEYS = tuple(TRAIN_COUNTERS) + ("train/best",) + TRAIN_JSON
# Optimiser moments whose values are averages of squares (so never negative).
NONNEGATIVE_MOMENTS = ("s",)
_PARAM = re.compile(r"(W|b|gamma|beta)[0-9]+")
_MOMENT = re.compile(r"([a-z]+)_d((?:W|b|gamma|beta)[1-9][0-9]*)")
_JSON_LIMIT = 1 << 20  # bytes: far above any real signature, optimiser config or rng state

COUNTER_MAX = 2 ** 62  # opt/t and the train/ counters: far from int64's wrap at 2**63

__all__ = ["validate_state", "validate_history", "TRAIN_KEYS"]


def _array(value, key):
    """``value`` as a numeric ndarray (object, str, None... refused)."""
    try:
        a = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"state entry {key!r} cannot be read as an array ({exc})") from exc
    if a.dtype.kind not in "biuf":
        raise InputError(f"state entry {key!r} has dtype {a.dtype} ({type(value).__name__}); "
                         f"expected a numeric array")
    return a


def _one_integer(value, key, low):
    a = _array(value, key)
    if a.size != 1:
        raise InputError(f"state entry {key!r} must hold one integer, got shape {a.shape}")
    if a.dtype.kind not in "iu":
        raise InputError(f"state entry {key!r} must be an integer, got dtype {a.dtype} "
                         f"(value {a.reshape(-1)[0].item()!r})")
    v = int(a.reshape(-1)[0])
    if v < low:
        raise InputError(f"state entry {key!r} is {v}; expected an integer >= {low}")
    if v > COUNTER_MAX:  # int64 counters that a fit adds to must not wrap
        raise InputError(f"state entry {key!r} is {v}; expected an integer <= 2**62 "
                         f"(a counter the training adds to, kept in 64 bits)")
    return np.array(v, dtype=np.int64)


def _json(value, key):
    a = _array(value, key)
    if a.dtype != np.uint8 or a.ndim != 1:
        raise InputError(f"state entry {key!r} must be UTF-8 JSON as a 1-D uint8 array, got "
                         f"dtype {a.dtype} and shape {a.shape}")
    if a.size > _JSON_LIMIT:
        raise InputError(f"state entry {key!r} holds {a.size} bytes of JSON; expected at most "
                         f"{_JSON_LIMIT}")
    try:
        return json.loads(a.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"state entry {key!r} is not readable JSON: {exc}") from exc


def _encode(obj):
    return np.frombuffer(json.dumps(obj, sort_keys=True).encode("utf-8"), np.uint8).copy()


def check_rng_state(rng_state, key="train/rng"):
    """``rng_state`` (a ``bit_generator.state`` dict) if a fresh ``default_rng`` accepts it."""
    if not isinstance(rng_state, dict):
        raise InputError(f"state entry {key!r} must be a generator state (a dict), got "
                         f"{type(rng_state).__name__}")
    rng = np.random.default_rng()
    expected = type(rng.bit_generator).__name__
    if rng_state.get("bit_generator") != expected:
        raise InputError(f"state entry {key!r} is the state of bit generator "
                         f"{rng_state.get('bit_generator')!r}; expected {expected!r}")
    try:
        rng.bit_generator.state = rng_state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise InputError(f"state entry {key!r} is not a valid {expected} state: "
                         f"{type(exc).__name__}: {exc}") from exc
    return rng_state


def _moment(key, value, params, dtype):
    match = _MOMENT.fullmatch(key[len("opt/"):])
    if match is None:
        raise InputError(f"state entry {key!r} is not an optimiser moment "
                         f"(opt/<v|s>_d<W|b><layer>) nor opt/t")
    prefix, target = match.groups()
    if target not in params:
        raise InputError(f"optimiser state {key} is for {target}, which this network "
                         f"does not have (it has {', '.join(params)})")
    a = _array(value, key)
    if a.shape != params[target].shape:
        raise InputError(f"optimiser state {key} has shape {a.shape}; expected "
                         f"{params[target].shape} (the shape of {target})")
    with np.errstate(over="ignore"):
        out = np.array(a, dtype=dtype, order="C")
    if not np.isfinite(out).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(out))[0])
        raise InputError(f"optimiser state {key} contains NaN or inf ({key}{list(bad)} = "
                         f"{out[bad].item()}"
                         + (f", {a[bad].item()!r} before conversion to {dtype.name}"
                            if a.dtype != dtype else "") + "); expected finite values")
    if prefix in NONNEGATIVE_MOMENTS and (out < 0).any():
        bad = tuple(int(i) for i in np.argwhere(out < 0)[0])
        raise InputError(f"optimiser state {key} is an average of squared gradients but "
                         f"{key}{list(bad)} = {out[bad].item()} < 0; expected values >= 0")
    return out


def validate_state(state, layer_dims, dtype):
    """A checked, cleaned copy of ``state`` for a network of ``layer_dims`` and ``dtype``.

    Parameters
    ----------
    state : dict
        ``{name: array-like}`` as :meth:`Network.get_state` returns it.
    layer_dims : sequence of int
        ``[n[0], ..., n[L]]``.
    dtype : str or numpy dtype
        The network's dtype (``float32``/``float64``).

    Returns
    -------
    dict
        The same keys; parameters, moments and ``train/best/...`` as C-contiguous arrays
        of ``dtype``; counters as ``int64`` 0-d arrays; ``train/best`` as a ``float64``
        0-d array; the JSON entries as ``uint8`` arrays. Inputs are never modified.

    Raises
    ------
    InputError
        For the first entry that is not right (a ``ShapeError`` for a parameter's shape).
    """
    dims = check.layer_dims(layer_dims)
    dt = check.dtype(dtype)
    if not isinstance(state, dict):
        raise InputError(f"a state must be a dict {{name: array}} as get_state returns, got "
                         f"{type(state).__name__}")
    for key in state:
        if not isinstance(key, str):
            raise InputError(f"state keys must be strings (W1, opt/v_dW1, train/epoch, ...), "
                             f"got {key!r}")
    params = check.parameters({k: v for k, v in state.items() if _PARAM.fullmatch(k)}, dims, dt)
    out = dict(params)
    flags = [f"gamma{l}" in params for l in range(1, len(dims))]
    running = check.running_statistics({k[3:]: v for k, v in state.items()
                                        if k.startswith("bn/")}, dims, dt, flags)
    out.update({f"bn/{k}": v for k, v in running.items()})
    train_keys = [k for k in state if k.startswith("train/")]
    for key, value in state.items():
        if key in params or key.startswith("bn/"):
            continue
        if key == "opt/t":
            out[key] = _one_integer(value, key, 0)
        elif key.startswith("opt/"):
            out[key] = _moment(key, value, params, dt)
        elif key.startswith(("train/best/", "train/best_bn/")):
            continue  # below, all together
        elif key in TRAIN_COUNTERS:
            out[key] = _one_integer(value, key, TRAIN_COUNTERS[key])
        elif key == "train/best":
            a = _array(value, key)
            if a.size != 1 or a.dtype.kind != "f" and a.dtype.kind not in "iu":
                raise InputError(f"state entry {key!r} must hold one number, got dtype "
                                 f"{a.dtype} and shape {a.shape}")
            best = float(a.reshape(-1)[0])
            if math.isnan(best) or best == -math.inf:
                raise InputError(f"state entry {key!r} (the best validation cost) is {best}; "
                                 f"expected a number (inf before the first record)")
            out[key] = np.array(best, dtype=np.float64)
        elif key in TRAIN_JSON:
            obj = _json(value, key)
            if key == "train/rng":
                check_rng_state(obj, key)
            elif key == "train/optimizer" and not (isinstance(obj, dict)
                                                    and isinstance(obj.get("name"), str)):
                raise InputError(f"state entry {key!r} must be an optimiser configuration "
                                 f"(a dict with a 'name'), got {obj!r:.80}")
            elif key == "train/signature" and not isinstance(obj, str):
                raise InputError(f"state entry {key!r} must be a fingerprint (a string), got "
                                 f"{type(obj).__name__}")
            out[key] = _encode(obj)
        else:
            raise InputError(f"state entry {key!r} is not a parameter (W1, b1, ...), an "
                             f"optimiser entry (opt/...) or a training entry (train/...)")
    if train_keys:
        missing = [k for k in TRAIN_KEYS if k not in state]
        if missing:
            raise InputError(f"the training state lacks {', '.join(missing)} (it has "
                             f"{', '.join(sorted(train_keys))})")
        best = {k[len("train/best/"):]: v for k, v in state.items()
                if k.startswith("train/best/")}
        if best:
            try:
                best = check.parameters(best, dims, dt, flags)
            except InputError as exc:
                raise type(exc)(f"the early-stopping best parameters (train/best/...): "
                                f"{exc}") from exc
            out.update({f"train/best/{k}": v for k, v in best.items()})
        best_bn = {k[len("train/best_bn/"):]: v for k, v in state.items()
                   if k.startswith("train/best_bn/")}
        if best_bn:
            try:
                best_bn = check.running_statistics(best_bn, dims, dt, flags)
            except InputError as exc:
                raise type(exc)(f"the early-stopping best running statistics "
                                f"(train/best_bn/...): {exc}") from exc
            out.update({f"train/best_bn/{k}": v for k, v in best_bn.items()})
    return out


def validate_history(history):
    """A checked copy of ``history_``: ``{str: list of numbers}``, ``epoch`` integers >= 0.

    ``epoch`` and ``cost`` have the same length; every other list is at most as long (a
    metric recorded from some fit on is shorter). ``None`` or ``{}`` gives the empty history.
    """
    if history is None or history == {}:
        return {"epoch": [], "cost": []}
    if not isinstance(history, dict):
        raise InputError(f"the history must be a dict of lists, got {type(history).__name__}")
    out = {}
    for key, values in history.items():
        if not isinstance(key, str) or not isinstance(values, list):
            raise InputError(f"history entry {key!r} must be a list of numbers, got "
                             f"{type(values).__name__}")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, numbers.Real) and v is not None:
                raise InputError(f"history entry {key!r} holds {v!r:.60}; expected numbers")
        out[key] = list(values)
    epochs = out.get("epoch", [])
    if len(out.get("cost", [])) != len(epochs):  # recorded together by every fit
        raise InputError(f"the history has {len(epochs)} epochs but {len(out.get('cost', []))} "
                         f"costs; they are recorded together")
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in epochs):
        raise InputError("history entry 'epoch' must hold integers >= 0")
    for key, values in out.items():
        if len(values) > len(epochs):
            raise InputError(f"history entry {key!r} has {len(values)} values but only "
                             f"{len(epochs)} epochs were recorded")
    return out
