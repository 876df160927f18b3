"""Batch normalization in a :class:`chainrule.Network` (``docs/batchnorm.md``): the running
statistics as model state, the arrays the engines update in place, the eval-mode layers
folded with the running statistics, and the reference's training-mode forward and backward
through batch-norm layers (:meth:`~chainrule.Network.forward` and
:meth:`~chainrule.Network.backward` hand a network with batch norm to them)."""

from __future__ import annotations

import numpy as np

from . import _validate as check
from . import reference as ref
from .errors import NonFiniteError


class BatchNormMixin:
    """``has_batch_norm``, ``running_statistics``, ``batch_norm_arrays``, ``eval_arrays`` and
    the batch-norm forward/backward of :class:`chainrule.Network` (a mixin)."""

    @property
    def has_batch_norm(self):
        """Whether some layer is batch-normalized."""
        return any(self.batch_norm)

    @property
    def running_statistics(self):
        """``{"running_mean1": ..., "running_var1": ...}`` of the batch-norm layers (the
        arrays themselves; assign a whole dict to replace them, checked)."""
        return self._running

    @running_statistics.setter
    def running_statistics(self, value):
        self._refuse_while_fitting()
        if not isinstance(value, dict):
            raise check.InputError(f"running_statistics must be a dict, got "
                                   f"{type(value).__name__}")
        self._running = check.running_statistics(value, self.layer_dims, self.dtype,
                                                 self.batch_norm)

    def batch_norm_arrays(self):
        """``gammas, running_means, running_vars``: per layer the arrays themselves (``None``
        for a layer without batch norm), updated in place by the engines."""
        L, r = self.L, self._running
        return (list(self._parameters._gammas),
                [r.get(f"running_mean{l}") for l in range(1, L + 1)],
                [r.get(f"running_var{l}") for l in range(1, L + 1)])

    def eval_arrays(self):
        """``Ws, bs`` of the eval-mode forward: :meth:`layer_arrays`, or with batch norm each
        batch-norm layer folded with its running statistics, ``W' = (gamma / sqrt(var +
        eps)) W`` and ``b' = beta - gamma mean / sqrt(var + eps)`` (new arrays; the forward
        of ``A = g(W' A_prev + b')`` is the eval-mode one, within rounding)."""
        Ws, bs = self.layer_arrays()
        if not self.has_batch_norm:
            return Ws, bs
        gammas, means, varis = self.batch_norm_arrays()
        eps = self.dtype.type(self.batch_norm_epsilon)
        for l, gamma in enumerate(gammas):
            if gamma is not None:
                scale = gamma / np.sqrt(varis[l] + eps)
                Ws[l] = np.ascontiguousarray(scale * Ws[l])
                bs[l] = bs[l] - scale * means[l]
        return Ws, bs

    def _forward_batch_norm(self, X, training):
        """The reference's forward of a network with batch norm (validated ``X``)."""
        if training and X.shape[1] < 2:
            raise check.InputError(
                f"forward(training=True) of a network with batch norm needs at least 2 "
                f"examples (the batch's variance of one example is 0 and says nothing), got "
                f"X of shape {X.shape}")
        with np.errstate(over="ignore", invalid="ignore"):
            AL, caches = ref.model_forward(X, dict(self._parameters), self.activations,
                                           training=training, running=self._running,
                                           epsilon=self.batch_norm_epsilon)
        if not check.all_finite(AL):
            raise NonFiniteError("forward: A[L] has NaN or inf; scale the inputs or check "
                                 "the parameters")
        return AL, caches

    def _backward_batch_norm(self, AL, Y, caches, convention):
        """The reference's backward through batch-norm layers (caches of
        ``forward(X, training=True)``): adds ``dgamma{l}``, ``dbeta{l}`` (no ``db{l}``)."""
        if not isinstance(caches, (list, tuple)) or len(caches) != self.L:
            raise check.InputError(f"caches must be the list of L = {self.L} caches that "
                                   f"forward(X, training=True) returned")
        for l, cache in enumerate(caches, 1):
            want = 3 if self.batch_norm[l - 1] else 2
            if not isinstance(cache, tuple) or len(cache) != want or (want == 3 and
                                                                       cache[2] is None):
                raise check.InputError(f"cache {l} is not a training-mode cache of this "
                                       f"network's layer {l}: call forward(X, training=True)")
        m = caches[0][0][0].shape[1]
        AL = check.AL(AL, self.layer_dims[-1], m, self.loss, self.dtype)
        Y = check.Y(Y, self.layer_dims[-1], m, self.loss, self.dtype)
        return ref.model_backward(AL, Y, list(caches), self.activations, self.loss, convention)
