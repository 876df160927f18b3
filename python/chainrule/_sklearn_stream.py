"""The estimators (:mod:`chainrule.sklearn`) on streamed data: ``fit``/``partial_fit`` on a
dask array or on chunks of rows, and ``predict``/``predict_proba`` on a dask array as a
dask array computed blockwise (dask-ml's ``ParallelPostFit``).

A streamed ``X`` is a ``dask.array.Array`` of shape ``(n_samples, n_features)`` (with ``y``
a dask array or an array), a :class:`~chainrule.training.stream.Stream` in the ``"rows"``
layout, a list of ``(X_block, y_block)`` chunks of rows, a callable returning a fresh
iterator of them per epoch, or an iterator of them (read once: ``max_iter=1`` or
``partial_fit``). The chunks are validated and encoded as they are read and trained
through :func:`chainrule.training.stream.fit_stream` (see there for the shuffling).
"""

from __future__ import annotations

import numpy as np

from sklearn.utils.validation import check_is_fitted

from .training.stream import Stream, blockwise, is_dask, is_stream

__all__ = ["fit", "predict", "is_dask", "is_stream"]


def _classes(est, stream, y):
    """Every label of a streamed ``y``: ``da.unique`` on dask, else one pass over the
    chunks' labels."""
    if is_dask(y):
        return np.unique(np.asarray(_dask_unique(y).compute()))
    if stream.one_shot:
        raise ValueError("a classifier needs every label before training, and an iterator of "
                         "chunks can be read once: call partial_fit(X, y, classes=...) or "
                         "pass a callable returning a fresh iterator, or a list of chunks")
    labels = [np.unique(np.asarray(c[2])) for c in stream.raw_chunks(
        range(stream.n_chunks()) if stream.addressable else None)]
    return np.unique(np.concatenate(labels))


def _dask_unique(y):
    import dask.array as da  # y is a dask array, so dask is installed

    return da.unique(y)


def _n_features_and_y_ndim(stream):
    if stream.kind in ("dask", "array"):
        return int(stream.X.shape[1]), len(stream.Y.shape)
    X, y, _ = stream.first_chunk()
    return int(np.shape(X)[1]), np.ndim(y)


def fit(est, X, y, sample_weight, incremental, classes, first):
    """``est.fit``/``partial_fit`` on a streamed ``X`` (after its parameters are checked)."""
    if sample_weight is not None:
        raise ValueError("sample_weight is not taken with a streamed X: give each chunk's "
                         "weights as its third entry, (X_block, y_block, w_block)")
    if isinstance(X, Stream):
        if y is not None:
            raise ValueError("a Stream carries its y: call fit(stream, None)")
        if X.layout != "rows":
            raise ValueError("the estimators take examples as rows: Stream(..., layout='rows')")
        stream = X
    else:
        stream = Stream(X, y, layout="rows")
    n_features, y_ndim = _n_features_and_y_ndim(stream)
    if first:
        if est._is_classifier:
            est.classes_ = None
            found = _classes(est, stream, stream.Y if stream.kind in ("dask", "array")
                             else None) if classes is None else classes
            est._encode_y(np.asarray(found), True, found)
        else:
            est._encode_y(np.zeros((1,) if y_ndim == 1 else (1, _n_outputs(stream))),
                          True, None)
        est.n_features_in_ = n_features
    elif getattr(est, "n_features_in_", n_features) != n_features:
        raise ValueError(f"X has {n_features} features, but {type(est).__name__} is expecting "
                         f"{est.n_features_in_} features as input")
    dtype = np.dtype(est.dtype)

    def transform(Xb, yb, wb):
        Xb = np.asarray(Xb, dtype=dtype)
        if Xb.ndim != 2 or Xb.shape[1] != n_features:
            raise ValueError(f"a chunk's X has shape {Xb.shape}; expected (rows, {n_features})")
        return Xb.T, est._encode_y(np.asarray(yb), False), wb

    stream.transform = transform
    if first:
        est.network_ = est._new_network(n_features, _n_outputs_of(est))
        est._network_params = est._architecture_params()
        est.n_iter_ = 0
        est.t_ = 0
    batch = 200 if est.mini_batch_size == "auto" else est.mini_batch_size
    kwargs = dict(optimizer=est._optimizer_spec(), mini_batch_size=batch,
                  decay_rate=est.decay_rate, lambd=est.lambd, keep_prob=est.keep_prob,
                  progress=bool(est.verbose), print_cost=bool(est.verbose) and est.verbose > 1,
                  class_weight=est._class_weight_indices(), learning_rate=est.learning_rate,
                  continue_training=not first)
    if incremental:
        est.network_.fit(stream, None, epochs=1, **kwargs)
    else:
        # Without a held-out fraction (a stream cannot hold one out), early stopping
        # watches the training cost.
        est.network_.fit(stream, None, epochs=est.max_iter, early_stopping=est.early_stopping,
                         patience=est.patience, **kwargs)
    history = est.network_.history_
    est.loss_curve_ = list(history["cost"])
    est.n_iter_ = int(est.network_.epochs_trained_)
    est.t_ = int(est.network_.steps_trained_)
    return est


def _n_outputs(stream):
    if stream.kind in ("dask", "array"):
        return int(stream.Y.shape[1])
    return int(np.shape(stream.first_chunk()[1])[1])


def _n_outputs_of(est):
    if est._is_classifier:
        return 1 if len(est.classes_) == 2 else len(est.classes_)
    return est.n_outputs_


def predict(est, method, X):
    """``est.<method>(X)`` over the row blocks of a dask ``X``, as a dask array."""
    check_is_fitted(est, "network_")
    fn, dtype = getattr(est, method), est.network_.dtype
    if method == "predict_proba":
        return blockwise(fn, X, len(est.classes_), dtype)
    if est._is_classifier:
        return blockwise(fn, X, None, est.classes_.dtype)
    return blockwise(fn, X, None if est._y_1d else est.n_outputs_, dtype)
