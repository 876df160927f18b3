"""Mini-batches, dropout masks and example weights: what one epoch's steps are made of."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import InputError, ShapeError


# --------------------------------------------------------------------------- mini-batches

def permutation(m, epoch, rng, shuffle, shuffle_seed):
    """The column order of epoch ``epoch`` (0-based), or ``None`` to keep the given order.

    With ``shuffle_seed`` the course's ``random_mini_batches``: the seed is incremented
    before every epoch (``seed = seed + 1``) and the permutation is
    ``np.random.seed(seed); np.random.permutation(m)`` — drawn here from a private
    ``RandomState(shuffle_seed + epoch + 1)``, which gives the same numbers without
    touching NumPy's global generator. Otherwise the model's generator draws it.
    """
    if not shuffle:
        return None
    if shuffle_seed is not None:
        return np.random.RandomState(shuffle_seed + epoch + 1).permutation(m)
    return rng.permutation(m)


def batches(m, mini_batch_size, perm):
    """Index arrays of the mini-batches: ``perm[k s:(k+1) s]`` for the complete batches of
    size ``s = mini_batch_size``, then the smaller rest ``perm[floor(m/s) s:]`` if any."""
    order = np.arange(m) if perm is None else perm
    return [order[k:k + mini_batch_size] for k in range(0, m, mini_batch_size)]


# --------------------------------------------------------------------------- dropout

def keep_probs(keep_prob, L):
    """One keep probability per hidden layer ``1..L-1`` from a number or a sequence."""
    if isinstance(keep_prob, numbers.Real) and not isinstance(keep_prob, bool):
        probs = [keep_prob] * (L - 1)
    else:
        try:
            probs = list(keep_prob)
        except TypeError as exc:
            raise InputError(f"keep_prob must be a number in (0, 1] or one per hidden layer, "
                             f"got {keep_prob!r}") from exc
        if len(probs) != L - 1:
            raise InputError(f"keep_prob has {len(probs)} entries but the network has L - 1 = "
                             f"{L - 1} hidden layers: give one per hidden layer")
    out = []
    for l, p in enumerate(probs, 1):
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 < p <= 1:
            raise InputError(f"keep_prob of hidden layer {l} must be in (0, 1], got {p!r}")
        out.append(float(p))
    return out


def dropout_off(probs):
    return all(p == 1.0 for p in probs)


def dropout_masks(rng, layer_dims, probs, m, dtype):
    """Scaled inverted-dropout masks ``D[l] / keep_prob[l]`` for the hidden layers.

    ``D[l] = (rand(n[l], m) < keep_prob[l])`` as in the course, drawn from ``rng`` layer
    by layer (``rng.random``). Returns the list indexed like ``As`` (``masks[0]`` and
    ``masks[L]`` are ``None``, as is any layer with ``keep_prob = 1``), or ``None`` when
    no layer drops.
    """
    if dropout_off(probs):
        return None
    masks = [None]
    for l, p in enumerate(probs, 1):
        if p == 1.0:
            masks.append(None)
            continue
        D = rng.random((layer_dims[l], m)) < p
        masks.append(D.astype(dtype) / dtype.type(p))
    masks.append(None)
    return masks


# --------------------------------------------------------------------------- weights

def example_weights(sample_weight, class_weight, Y, output, n_out, m, dtype):
    """``w_k = sample_weight[k] * class_weight[class of k]`` (shape ``(m,)``), or ``None``."""
    w = None
    if sample_weight is not None:
        w = np.asarray(sample_weight)
        if w.dtype == object or w.dtype.kind not in "fiub":
            raise InputError(f"sample_weight must be numeric, got dtype {w.dtype}")
        w = w.astype(np.float64).reshape(-1) if w.ndim == 2 and 1 in w.shape else \
            w.astype(np.float64)
        if w.shape != (m,):
            raise ShapeError(f"sample_weight has shape {np.shape(sample_weight)} but X has m = "
                             f"{m} examples: expected ({m},)")
        if not np.isfinite(w).all() or (w < 0).any():
            raise InputError("sample_weight must be finite and >= 0")
    if class_weight is not None:
        if output == "sigmoid" and n_out == 1:
            labels = Y[0].astype(np.intp)
            n_classes = 2
        elif output == "softmax":
            labels = np.argmax(Y, axis=0)
            n_classes = n_out
        else:
            raise InputError("class_weight needs a classifier: a 1-unit sigmoid or a softmax "
                             "output")
        if isinstance(class_weight, str):
            if class_weight != "balanced":
                raise InputError(f"class_weight must be a dict or 'balanced', got "
                                 f"{class_weight!r}")
            counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
            table = np.where(counts > 0, m / (n_classes * np.maximum(counts, 1)), 0.0)
        elif isinstance(class_weight, dict):
            table = np.ones(n_classes)
            for c, cw in class_weight.items():
                if isinstance(c, bool) or not isinstance(c, numbers.Integral) or \
                        not 0 <= c < n_classes:
                    raise InputError(f"class_weight key {c!r} is not a class index in "
                                     f"[0, {n_classes - 1}]")
                if isinstance(cw, bool) or not isinstance(cw, numbers.Real) or \
                        not math.isfinite(cw) or cw < 0:
                    raise InputError(f"class_weight[{c}] must be a finite number >= 0, got {cw!r}")
                table[int(c)] = float(cw)
        else:
            raise InputError(f"class_weight must be a dict or 'balanced', got {class_weight!r}")
        cw = table[labels]
        w = cw if w is None else w * cw
    if w is None:
        return None
    if not w.sum() > 0:
        raise InputError("the example weights (sample_weight times class_weight) sum to 0: "
                         "nothing to learn from")
    with np.errstate(over="ignore", under="ignore"):
        out = w.astype(dtype)
    name = np.dtype(dtype).name
    if not np.isfinite(out).all():
        raise InputError(f"the example weights (sample_weight times class_weight) overflow "
                         f"{name} (largest {float(w.max()):.3g}); scale them down")
    if not weight_sum(out) > 0:
        raise InputError(f"the example weights (sample_weight times class_weight) underflow "
                         f"to 0 in {name} (largest {float(w.max()):.3g}); scale them up: only "
                         f"their ratios matter")
    return out


def weight_sum(w):
    """``Σw`` in float64: the denominator of a weighted cost."""
    return float(np.sum(w, dtype=np.float64))


# The dense rows one chunk of a sparse X's mini-batches (or one block of a record's forward
# pass) may take.
SPARSE_BLOCK_BYTES = 8 << 20


def sparse_column_blocks(X, dtype):
    """``(a, b, X[:, a:b] dense and C-ordered)`` over a sparse ``X`` of shape ``(n[0], m)``,
    each block under ``SPARSE_BLOCK_BYTES``."""
    columns = X.tocsc()
    step = max(1, SPARSE_BLOCK_BYTES // (max(1, X.shape[0]) * np.dtype(dtype).itemsize))
    for a in range(0, X.shape[1], step):
        b = min(X.shape[1], a + step)
        yield a, b, columns[:, a:b].astype(dtype, copy=False).toarray(order="C")
