"""The training state: the counters of a fit, and the model state as arrays (checkpoints).

:func:`get_state` and :func:`set_state` are :meth:`chainrule.Network.get_state` and
``set_state``: the parameters ``W1, b1, ...``, the optimiser state ``opt/...`` and the
training state ``train/...`` (all numeric arrays, so that ``io.save`` writes them without
pickle). :class:`TrainState` holds the counters one fit continues from.
"""

from __future__ import annotations

import hashlib
import json
import zlib

import numpy as np

from .. import _validate as check
from .._state_checks import validate_state
from ..errors import InputError


def encode_json(value):
    """A JSON-compatible value as a ``uint8`` array (training state must be numeric arrays)."""
    return np.frombuffer(json.dumps(value, sort_keys=True).encode("utf-8"), dtype=np.uint8).copy()


def decode_json(array, what):
    try:
        return json.loads(np.asarray(array, dtype=np.uint8).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        raise InputError(f"training state {what} is not readable: {exc}") from exc


def signature(args, arrays):
    """SHA-256 (hex) of the fit arguments and a digest of the data: a resumed fit must match
    its checkpoint.

    Each array enters by its dtype, shape and the CRC-32 of all its bytes in C order (a
    copy only for an array that is not C-contiguous; the fit passes its C-contiguous
    examples-as-rows arrays): every entry counts, so one changed label changes it, at
    about 0.2 s for 60000 x 784 float64 values on a shared 2-core machine. It detects
    accidents (other data), not a forgery.
    """
    h = hashlib.sha256(json.dumps(args, sort_keys=True, default=str).encode())
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(a)
        h.update(json.dumps([a.dtype.str, list(a.shape)]).encode())
        h.update(zlib.crc32(a.reshape(-1).view(np.uint8)).to_bytes(4, "little"))
    return h.hexdigest()


LEGACY_SIGNATURE_SAMPLE = 4096  # entries of each array in a checkpoint written before 0.2


def legacy_signature(args, arrays):
    """The signature that checkpoints written before every entry counted recorded (a
    sampled digest: ``LEGACY_SIGNATURE_SAMPLE`` evenly spaced entries of each array in C
    order, plus the last one); a resume from such a file is compared with it, so that a fit
    interrupted under an earlier version still resumes."""
    h = hashlib.sha256(json.dumps(args, sort_keys=True, default=str).encode())
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = np.asarray(a)
        h.update(json.dumps([a.dtype.str, list(a.shape)]).encode())
        if a.size:  # positions in C order, whatever the memory layout
            step = max(1, a.size // LEGACY_SIGNATURE_SAMPLE)
            at = np.append(np.arange(0, a.size, step), a.size - 1)
            h.update(np.ascontiguousarray(a[np.unravel_index(at, a.shape)]).tobytes())
    return h.hexdigest()


def with_start(fingerprint, start):
    """A checkpointing fit's recorded signature: its fingerprint and the epoch the call
    started from (``"<hex>@<start>"``), so that a resume knows where the call ends."""
    return f"{fingerprint}@{int(start)}"


def split_start(recorded):
    """``(fingerprint, start)`` of :func:`with_start`'s string (start 0 for a file written
    before it recorded one)."""
    fingerprint, _, start = str(recorded).partition("@")
    return fingerprint, int(start) if start.isdigit() else 0


class TrainState:
    """The counters and bookkeeping one fit continues from (``Network.train_state_``).

    ``epoch``: epochs trained; ``steps``: updates applied; ``skipped``: steps skipped
    (``on_nonfinite="skip"``); ``best``, ``best_epoch``, ``wait``, ``best_params``,
    ``best_running`` (batch norm's running statistics of that epoch): early stopping;
    ``signature``: the fingerprint of the fit's arguments and data (a resumed fit
    must match it); ``optimizer``: the optimiser's configuration.
    """

    __slots__ = ("epoch", "steps", "skipped", "best", "best_epoch", "wait", "best_params",
                 "best_running", "signature", "optimizer")
    # name -> dtype of its array in get_state (the scalars of the schema)
    SCALARS = {"epoch": np.int64, "steps": np.int64, "skipped": np.int64, "best": np.float64,
               "best_epoch": np.int64, "wait": np.int64}
    JSON = ("signature", "optimizer")

    def __init__(self, signature=None, optimizer=None, epoch=0, steps=0, skipped=0,
                 best=float("inf"), best_epoch=-1, wait=0, best_params=None, best_running=None):
        self.epoch, self.steps, self.skipped = epoch, steps, skipped
        self.best, self.best_epoch, self.wait = best, best_epoch, wait
        self.best_params, self.signature, self.optimizer = best_params, signature, optimizer
        self.best_running = best_running

    def __repr__(self):
        return f"TrainState(epoch={self.epoch}, steps={self.steps}, skipped={self.skipped})"


def history_up_to(history, epoch):
    """``history`` without its records after ``epoch`` (a state restored to an earlier epoch
    keeps the history that agrees with its counters). A list shorter than ``epoch``'s (a
    metric recorded from some fit on) ends at the same last record."""
    epochs = history.get("epoch", [])
    drop = sum(1 for e in epochs if e > epoch)
    if not drop:
        return history
    return {k: list(v[:max(0, len(v) - drop)]) for k, v in history.items()}


def get_state(parameters, optimizer_state, train, rng, running=None):
    """The model state as ``{name: ndarray}`` copies (see ``Network.get_state``); the running
    statistics of batch norm as ``bn/running_mean1``, ``bn/running_var1``..."""
    state = {k: v.copy() for k, v in parameters.items()}
    for k, v in (running or {}).items():
        state[f"bn/{k}"] = v.copy()
    for k, v in (optimizer_state or {}).items():
        state[f"opt/{k}"] = np.array(v, copy=True)
    if train is not None:
        for key, dtype in TrainState.SCALARS.items():
            state[f"train/{key}"] = np.array(getattr(train, key), dtype=dtype)
        for key in TrainState.JSON:
            state[f"train/{key}"] = encode_json(getattr(train, key))
        state["train/rng"] = encode_json(rng.bit_generator.state)
        for k, v in (train.best_params or {}).items():
            state[f"train/best/{k}"] = v.copy()
        for k, v in (train.best_running or {}).items():
            state[f"train/best_bn/{k}"] = v.copy()
    return state


def set_state(state, layer_dims, dtype, batch_norm=None):
    """Parse and check :func:`get_state`'s output; returns ``(parameters, optimizer_state,
    train, rng, running)`` (``train`` and ``rng`` are ``None`` without training state;
    ``running`` the batch-norm running statistics, ``{}`` without). ``batch_norm``: the
    network's per-layer flags (the state must have the same layers). Raises
    ``InputError`` and changes nothing on error.

    Every entry is checked first by the one state rule
    (:func:`chainrule._state_checks.validate_state`: types, shapes, ranges, finiteness), as
    :func:`chainrule.io.load` checks a file."""
    state = validate_state(state, layer_dims, dtype)
    params = {k: v for k, v in state.items() if "/" not in k}
    params = check.parameters(params, layer_dims, dtype, batch_norm)
    flags = [f"gamma{l}" in params for l in range(1, len(layer_dims))]
    running = check.running_statistics({k[3:]: v for k, v in state.items()
                                        if k.startswith("bn/")}, layer_dims, dtype, flags)
    opt = {k[4:]: np.asarray(v) for k, v in state.items() if k.startswith("opt/")}
    for k, v in opt.items():
        target = k.split("_d", 1)[-1]  # v_dW1 -> W1
        if k != "t" and (target not in params or v.shape != params[target].shape):
            expected = params[target].shape if target in params else "no such parameter"
            raise InputError(f"optimiser state opt/{k} has shape {v.shape}; expected "
                             f"{expected} (the shape of {target})")
    train = rng = None
    if "train/epoch" in state:
        try:
            def scalar(key, kind):
                a = np.asarray(state[key]).reshape(-1)
                if a.size != 1:
                    raise InputError(f"training state {key} must hold one number, "
                                     f"got shape {np.shape(state[key])}")
                return kind(a[0])

            values = {key: scalar(f"train/{key}", float if dtype_ == np.float64 else int)
                      for key, dtype_ in TrainState.SCALARS.items()}
            values.update({key: decode_json(state[f"train/{key}"], key)
                           for key in TrainState.JSON})
        except KeyError as exc:
            raise InputError(f"the training state lacks {exc.args[0]}") from exc
        best = {k[len("train/best/"):]: v for k, v in state.items()
                if k.startswith("train/best/")}
        values["best_params"] = check.parameters(best, layer_dims, dtype, batch_norm) \
            if best else None
        best_bn = {k[len("train/best_bn/"):]: v for k, v in state.items()
                   if k.startswith("train/best_bn/")}
        values["best_running"] = check.running_statistics(best_bn, layer_dims, dtype, flags) \
            if best_bn else None
        train = TrainState(**values)
        rng_state = decode_json(state["train/rng"], "rng")
        rng = np.random.default_rng()
        try:
            rng.bit_generator.state = rng_state
        except (TypeError, ValueError, KeyError) as exc:
            raise InputError(f"the saved generator state is not readable: {exc}") from exc
    return params, ({k: v.copy() for k, v in opt.items()} or None), train, rng, running
