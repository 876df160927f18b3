"""What ``Network.predict``/``score`` run on dense ``X``: ``A[L]`` without the caches, ``X``
read where it lies (C- or F-ordered, column-block views: no copy), in column blocks whose
activations stay in the cache, into Z/A buffers kept per thread from call to call, and no
separate pass over ``X`` for NaN/inf (``Z[1]`` and ``A[L]`` are checked by a sum; only when
that is not finite is ``X`` looked at, to word the error as the full validator does).
:class:`Predicting`, a base of ``Network``, holds the methods that call them."""

from __future__ import annotations

import threading

import numpy as np

from . import _threads
from . import _validate as check
from . import reference as ref
from ._threads import limits_threads as _thread_limited
from .errors import NonFiniteError
from .training.batches import sparse_column_blocks


# The columns of one block of predict/score: about 2**17 entries of the widest layer's
# activations (its Z and A, 0.5 MB each in float32, stay in the cache for the bias,
# activation and next product; X is read in place and not counted) and at least 1024
# columns (the products stay large enough for the BLAS, the calls few: each block costs
# about 50 us of Python). Measured on a 2-core AMD EPYC (AVX-512), 2026-12-06, predict_proba
# against the forward's products alone, 1 / 2 threads: 60000 x 784 [784, 128, 64, 10] f32
# 1024 columns 76.8 / 40.7 ms (products 77.8 / 41.4), 16384 columns 85.0 / 48.2 ms;
# 100000 x 20 [20, 64, 64, 1] f32 2048 columns 12.5 / 6.4 ms (products 13.2 / 7.1), 16384
# columns (the former rule's, which counted X's rows) 13.8 / 8.8 ms, 1024 columns 12.3 /
# 11.1 ms (a hundred blocks' Python on two threads).
_BLOCK_ENTRIES = 1 << 17


def block_columns(layer_dims):
    """Columns per block of :meth:`Network.predict` and :meth:`Network.score`."""
    return max(1024, (_BLOCK_ENTRIES // max(layer_dims[1:])) // 64 * 64)


# predict/score's Z and A of each layer, kept per thread for the last two (dtype, sizes,
# block width) (a blocked call's full blocks and its last one) and handed to the forward op
# as ``out``: fresh arrays of a few MB cost their page faults at every call (a 5000 x 20
# tabular score took 25 ms for 2 ms of products).
_scratch_space = threading.local()


def _scratch(dtype, layer_dims, m):
    kept = getattr(_scratch_space, "kept", None)
    if kept is None:
        kept = _scratch_space.kept = {}
    key = (dtype, tuple(layer_dims), m)
    out = kept.get(key)
    if out is None:
        if len(kept) >= 2:
            kept.pop(next(iter(kept)))
        out = kept[key] = tuple([np.empty((n, m), dtype) for n in layer_dims[1:]]
                                for _ in range(2))
    return out


def output(net, X):
    """``A[L]`` of ``net`` for ``X`` of shape ``(n[0], m)``; a scipy.sparse ``X`` in dense
    blocks of columns, never densified whole."""
    if not check.is_sparse(X):
        return dense_output(net, X)
    rows = check.sparse_X(X, net.layer_dims[0], net.dtype)
    out = np.empty((net.layer_dims[-1], rows.shape[0]), dtype=net.dtype)
    for a, b, block in sparse_column_blocks(rows.T, net.dtype):
        out[:, a:b] = dense_output(net, block)
    return out


def dense_output(net, X):
    """``A[L]`` of ``net`` for a dense ``X``; a block that is not finite hands the whole
    ``X`` to ``net._forward`` for its error message. The layers are ``net.eval_arrays()``
    (with batch norm, each batch-norm layer folded into its ``W, b`` with the running
    statistics: the eval-mode forward is then a plain one)."""
    X = check.X(X, net.layer_dims[0], net.dtype, order="K", finite=False)
    m = X.shape[1]
    B = min(m, block_columns(net.layer_dims))
    ops = net.ops_for(m)
    Ws, bs = net.eval_arrays()
    if B == m:  # one block: no slicing, A[L] copied out of the kept buffer
        out = _scratch(net.dtype, net.layer_dims, m)
        with np.errstate(invalid="ignore"):
            Zs, As = ops.forward(X, Ws, bs, net.activations, out=out)
        if not (check.sum_finite(Zs[0]) and check.sum_finite(As[-1])):
            if not (check.all_finite(Zs[0]) and check.all_finite(As[-1])):
                return net._forward(X)[1][-1]  # raises, with today's message
        return As[-1].copy() if As[-1] is out[1][-1] else As[-1]
    AL = np.empty((net.layer_dims[-1], m), net.dtype)
    starts = range(0, m, B)

    def blocks(part, parts):  # this part's blocks; True when every one is finite
        with np.errstate(invalid="ignore"):
            for k in starts[part::parts]:
                Xb = X[:, k:k + B]
                Zs, As = ops.forward(Xb, Ws, bs, net.activations,
                                     out=_scratch(net.dtype, net.layer_dims, Xb.shape[1]))
                if not (check.sum_finite(Zs[0]) and check.sum_finite(As[-1])):
                    if not (check.all_finite(Zs[0]) and check.all_finite(As[-1])):
                        return False
                AL[:, k:k + B] = As[-1]
        return True

    n = 1 if _threads.in_pool() else min(_threads.blas_threads(), len(starts))
    if n > 1:
        # the blocks on n threads, each product on one BLAS thread: every pass of a block
        # (products, bias, activation, the finiteness sums) runs in parallel, where the
        # BLAS's own threads would split the products only (the kernels release the GIL)
        with _threads.limited(1):
            finite = all(_threads.run_parts(lambda part: blocks(part, n), n))
    else:
        finite = blocks(0, 1)
    if not finite:
        return net._forward(X)[1][-1]  # raises, with today's message
    return AL



class Predicting:
    """``predict``, ``predict_proba``, ``score``, ``score_from`` and the eval-mode pass
    ``_forward`` of :class:`chainrule.Network` (a mixin)."""

    def _forward(self, X):
        """:meth:`forward`'s pass: ``Zs, As, Ws, bs`` (``As[0]`` is the validated ``X``); with
        batch norm, the eval-mode pass of the folded layers (:meth:`eval_arrays`).

        ``X`` as ``fit`` takes it: C- or F-ordered (``X_rows.T``) without a copy, and without
        a pass of its own for NaN/inf: ``Z[1] = W[1] X + b[1]`` is not finite when ``X`` is
        not (finite parameters; NaN and inf reach every product they enter), so ``X`` is
        looked at only when ``Z[1]`` is not finite, to say what is wrong with it."""
        X = check.X(X, self.layer_dims[0], self.dtype, order="K", finite=False)
        ops = self.ops_for(X.shape[1])
        Ws, bs = self.eval_arrays()
        with np.errstate(invalid="ignore"):  # a NaN/inf is reported below, with its cause
            Zs, As = ops.forward(X, Ws, bs, self.activations)
        if not check.sum_finite(Zs[0]) and not check.all_finite(Zs[0]):
            check.X(X, self.layer_dims[0], self.dtype, order="K")  # refuses a NaN/inf in X
        if not check.sum_finite(As[-1]) and not check.all_finite(As[-1]):
            l = next(l for l in range(1, self.L + 1) if not check.all_finite(As[l]))
            raise NonFiniteError(f"forward: A[{l}] has NaN or inf (overflow in layer {l}, "
                                 f"max |Z{l}| = {np.nanmax(np.abs(Zs[l - 1]))}); scale the "
                                 f"inputs or check the parameters")
        return Zs, As, Ws, bs

    def score_from(self, X, Yv, AL):
        """:meth:`score` on validated arrays, from their forward pass ``AL``."""
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging fit scores NaN/-inf
            return ref.score(AL, Yv, self.activations[-1])

    def _output(self, X):
        """``A[L]`` for ``X`` without the caches (see :func:`chainrule._scoring.output`); with
        batch norm, the eval-mode forward (the running statistics), a sparse ``X`` in dense
        blocks of columns."""
        return output(self, X)

    @_thread_limited
    def predict_proba(self, X):
        """``A[L]`` for ``X``: probabilities for sigmoid/softmax outputs. Shape ``(n[L], m)``.

        ``X`` may be a scipy.sparse matrix (CSR/CSC): it is densified a block of columns at
        a time."""
        return self._output(X)

    @_thread_limited
    def predict(self, X):
        """Predictions: 0/1 of shape ``(1, m)`` (sigmoid), class indices ``(m,)`` (softmax),
        or ``A[L]`` for other outputs."""
        return ref.predict(self._output(X), self.activations[-1])

    @_thread_limited
    def score(self, X, Y):
        """Accuracy for classifiers (fraction of correct predictions); R² for regression."""
        if not check.is_sparse(X):
            X = check.X(X, self.layer_dims[0], self.dtype, order="K", finite=False)
        labels = check.class_labels(Y, self.layer_dims[-1], X.shape[1], self.loss)
        Yv = None if labels is not None else \
            check.Y(Y, self.layer_dims[-1], X.shape[1], self.loss, self.dtype)
        AL = self._output(X)
        predictions = ref.predict(AL, self.activations[-1])
        if labels is not None and predictions.ndim == 1:  # argmax classes against the labels
            return float(np.mean(predictions == labels))  # (no one-hot: its argmax is labels)
        if Yv is None:
            Yv = check.Y(Y, self.layer_dims[-1], X.shape[1], self.loss, self.dtype)
        return ref.score(AL, Yv, self.activations[-1], predictions)
