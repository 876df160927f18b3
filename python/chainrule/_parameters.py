"""``Network.parameters``: :class:`ParameterDict`, the checked dict of ``W1, b1, ...`` whose
arrays are views of one aligned buffer (so that a step saves, checks and restores all the
parameters with one call each)."""

from __future__ import annotations

import numpy as np

from . import _validate as check

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
    list them by layer (``_Ws[l-1] = W[l]``; a batch-norm layer's ``beta{l}`` in ``_bs`` and
    its ``gamma{l}`` in ``_gammas``). An assignment stores every entry anew.
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
        L = self._owner.L
        # A batch-norm layer's beta sits where b would (the engines' bs list) and its gamma
        # in _gammas (None for a layer without batch norm).
        self._Ws = [views[f"W{l}"] for l in range(1, L + 1)]
        self._bs = [views.get(f"b{l}", views.get(f"beta{l}")) for l in range(1, L + 1)]
        self._gammas = [views.get(f"gamma{l}") for l in range(1, L + 1)]

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
        self._store(check.parameters(new, owner.layer_dims, owner.dtype, owner.batch_norm))

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
