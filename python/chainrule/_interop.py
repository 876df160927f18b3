"""A model you can take anywhere: chainrule's layout converted, checked, to and from
scikit-learn's MLP, PyTorch's ``nn.Sequential``, Keras's ``Dense`` weights and ONNX.

Like :mod:`chainrule.io`, this module never imports the model: it works on arrays and
activation names, and its classmethods build the class they are called on. ``Network``
takes the methods of :class:`InteropMixin` as a base class.

The layouts (chainrule's ``W[l]`` is ``(n[l], n[l-1])`` with examples as columns; the peers
take examples as rows: scikit-learn's ``coefs_`` and Keras's kernels are ``W[l]ᵀ``,
PyTorch's ``weight`` and ONNX's ``Gemm(transB=1)`` take ``W[l]`` as is; every bias is 1-D)
are tabulated in ``docs/interop.md``; the activation names per peer are the tables below.

Every export refuses what the other side cannot express, naming the layer and the reason;
nothing is half-converted.
"""

from __future__ import annotations

import importlib
import json
import math
import numbers
import re

import numpy as np

from . import io
from .errors import InputError, ShapeError

__all__ = ["InteropMixin", "fold_batch_norm", "SKLEARN_ACTIVATIONS", "TORCH_MODULES",
           "KERAS_ACTIVATIONS", "ONNX_OPS", "ONNX_OPSET", "ONNX_IR_VERSION"]

# ---------------------------------------------------------------- the tables, one per peer
# chainrule name -> the peer's; None where the peer has none. A test checks that every
# activation of spec.ACTIVATION_TABLE has an entry in each table.
SKLEARN_ACTIVATIONS = {"sigmoid": "logistic", "relu": "relu", "tanh": "tanh",
                       "identity": "identity", "leaky_relu": None, "softmax": "softmax"}
# scikit-learn's hidden activations are these; its outputs are chosen by its own rules
# (identity for a regressor; logistic for a binary or multilabel classifier, softmax for
# a multiclass one: MLPClassifier._initialize).
_SKLEARN_HIDDEN = ("identity", "logistic", "tanh", "relu")
_SKLEARN_OUTPUT_LOSS = {"identity": "mean_squared_error", "logistic": "binary_crossentropy",
                        "softmax": "categorical_crossentropy"}
# torch.nn module class names; "identity" is no module (a Linear followed by a Linear), as a
# PyTorch user writes a linear layer.
TORCH_MODULES = {"sigmoid": "Sigmoid", "relu": "ReLU", "tanh": "Tanh", "leaky_relu": "LeakyReLU",
                 "identity": None, "softmax": "Softmax"}
# keras.layers.Dense(activation=...) names (leaky_relu: a LeakyReLU(negative_slope=alpha)
# layer after a linear Dense, since Dense's string takes Keras's default slope).
KERAS_ACTIVATIONS = {"sigmoid": "sigmoid", "relu": "relu", "tanh": "tanh",
                     "leaky_relu": "leaky_relu", "identity": "linear", "softmax": "softmax"}
# ONNX operators (default domain); identity needs none: the Gemm's output is the layer's.
ONNX_OPS = {"sigmoid": "Sigmoid", "relu": "Relu", "tanh": "Tanh", "leaky_relu": "LeakyRelu",
            "identity": None, "softmax": "Softmax"}  # leaky_relu in float64: PRelu (onnx_model)
# Pinned so that every onnxruntime since 1.13 loads the file (opset 17 needs IR version 8);
# the newest onnx package would otherwise stamp its own, newer, IR version.
ONNX_OPSET = 17
ONNX_IR_VERSION = 8

_EXTRA_OF = {"onnx": "onnx", "onnxruntime": "onnx", "torch": "torch", "sklearn": "sklearn"}


def _require(module, purpose):
    """``import module``, or an ImportError that names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRA_OF.get(top, top)
        hint = (" (a plain install may bring the CUDA build; the CPU build is enough)"
                if top == "torch" else "")
        raise ImportError(f"{purpose} needs {top}, which is not installed here: "
                          f"pip install \"chainrule[{extra}]\" (from a source tree: "
                          f"pip install \".[{extra}]\"){hint}") from exc


# ---------------------------------------------------------------- batch norm, folded
def fold_batch_norm(W, b, gamma, beta, mean, var, eps=1e-5):
    """A linear layer followed by batch norm at inference, folded into one linear layer.

    ``Z̃ = γ (Z − μ)/√(v+ε) + β`` with ``Z = W A_prev + b`` is ``W' A_prev + b'`` with
    ``W' = (γ/√(v+ε)) W`` (row ``i`` scaled by ``γ_i/√(v_i+ε)``) and
    ``b' = β + γ (b − μ)/√(v+ε)``; without a bias before the norm (the course drops ``b``),
    ``b' = β − γ μ/√(v+ε)``. ``mean`` and ``var`` are what inference uses (PyTorch's
    ``running_mean``/``running_var``, Keras's ``moving_mean``/``moving_variance``).

    Parameters
    ----------
    W : array, shape (n, n_prev)
    b : array, shape (n, 1), or None (no bias before the norm)
    gamma, beta, mean, var : arrays of n entries, shape (n,) or (n, 1)
    eps : float > 0

    Returns
    -------
    W_folded : array, shape (n, n_prev)
    b_folded : array, shape (n, 1)

    Examples
    --------
    >>> import numpy as np
    >>> W, b = np.array([[1.0, 2.0]]), np.array([[0.5]])
    >>> Wf, bf = fold_batch_norm(W, b, gamma=[2.0], beta=[1.0], mean=[0.5], var=[3.0], eps=1.0)
    >>> Wf.tolist(), bf.tolist()
    ([[1.0, 2.0]], [[1.0]])
    """
    W = np.asarray(W)
    if W.ndim != 2 or W.dtype.kind != "f":
        raise ShapeError(f"fold_batch_norm: W must be a 2-D float array (n, n_prev), got "
                         f"shape {W.shape} of dtype {W.dtype}")
    n = W.shape[0]

    def column(value, what):
        a = np.asarray(value, dtype=W.dtype)
        if a.shape not in ((n,), (n, 1)):
            raise ShapeError(f"fold_batch_norm: {what} must have shape ({n},) or ({n}, 1) "
                             f"(one per unit of W's {n} rows), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise InputError(f"fold_batch_norm: {what} has NaN or inf")
        return a.reshape(n, 1)

    b = np.zeros((n, 1), W.dtype) if b is None else column(b, "b")
    gamma, beta = column(gamma, "gamma"), column(beta, "beta")
    mean, var = column(mean, "mean"), column(var, "var")
    if np.any(var < 0):
        raise InputError(f"fold_batch_norm: var must be >= 0, got a minimum of {var.min()}")
    if not (isinstance(eps, numbers.Real) and math.isfinite(eps) and eps > 0):
        raise InputError(f"fold_batch_norm: eps must be a finite number > 0, got {eps!r}")
    scale = gamma / np.sqrt(var + eps)
    return scale * W, beta + scale * (b - mean)


def _torch_running_var(net, var):
    """The running variance as PyTorch keeps it (unbiased): a network that keeps the biased
    one cannot say what PyTorch would hold."""
    if not getattr(net, "batch_norm_unbiased", True):
        raise InputError("state_dict: this network keeps the biased running variance "
                         "(batch_norm_unbiased=False); PyTorch's BatchNorm1d keeps the "
                         "unbiased one")
    return np.array(var)


# ---------------------------------------------------------------- shared checks
def _as_array(value, where):
    """A NumPy array from an array-like or a (CPU) torch tensor, without grad."""
    if hasattr(value, "detach"):  # a torch tensor: no torch import needed
        value = value.detach().cpu().numpy()
    a = np.asarray(value)
    if a.dtype.kind not in "iuf":
        raise InputError(f"{where} must be a numeric array, got dtype {a.dtype}")
    return a


def _layers_from_pairs(pairs, where):
    """``(layer_dims, Ws, bs)`` from ``[(W, b), ...]`` in chainrule's layout (b of shape (n,)
    or (n, 1)), with every shape checked against its neighbours."""
    if not pairs:
        raise InputError(f"{where}: no layers found")
    dims, Ws, bs = [], [], []
    for l, (W, b) in enumerate(pairs, 1):
        if W.ndim != 2:
            raise ShapeError(f"{where}: layer {l}'s weight must be 2-D (n[{l}], n[{l - 1}]), "
                             f"got shape {W.shape}")
        n, n_prev = W.shape
        if dims and n_prev != dims[-1]:
            raise ShapeError(f"{where}: layer {l}'s weight has shape {W.shape}, so it takes "
                             f"{n_prev} inputs, but layer {l - 1} has {dims[-1]} units "
                             f"(expected ({n}, {dims[-1]}))")
        if b.shape not in ((n,), (n, 1)):
            raise ShapeError(f"{where}: layer {l}'s bias must have {n} entries (shape ({n},)), "
                             f"got shape {b.shape}")
        if not dims:
            dims.append(n_prev)
        dims.append(n)
        Ws.append(W)
        bs.append(b.reshape(n, 1))
    return dims, Ws, bs


def _float_dtype(dtype, arrays, where):
    """The network dtype: ``dtype`` if given, else that of the arrays (float32/float64)."""
    if dtype is not None:
        return dtype
    kinds = {a.dtype for a in arrays}
    if len(kinds) == 1 and next(iter(kinds)) in (np.float32, np.float64):
        return next(iter(kinds)).name
    raise InputError(f"{where}: the weights have dtype(s) {sorted(str(k) for k in kinds)}; "
                     f"chainrule computes in float32 or float64: pass dtype='float32' or "
                     f"dtype='float64' to convert")


def _build(cls, dims, Ws, bs, activations, loss, dtype, backend, norms=None, eps=None,
           momentum=None):
    """A ``cls`` (the network class) with these layers and parameters, all checked by it.

    ``norms``: per layer ``None`` or ``(gamma, beta, running_mean, running_var)`` of a
    batch-norm layer (whose ``bs`` entry is then ignored: the bias before a batch norm is
    folded into its running mean by the caller), with the networks's ``eps`` and the
    course's ``momentum`` (beta)."""
    flags = [False] * len(Ws) if norms is None else [n is not None for n in norms]
    extra = {}
    if any(flags):
        extra = dict(batch_norm=flags[:-1], batch_norm_epsilon=eps,
                     batch_norm_momentum=momentum)
    net = cls(dims, activations=list(activations), loss=loss, dtype=dtype, backend=backend,
              **extra)
    params, running = {}, {}
    for l, (W, b) in enumerate(zip(Ws, bs), 1):
        params[f"W{l}"] = np.asarray(W, dtype)
        if flags[l - 1]:
            gamma, beta, mean, var = (np.asarray(a, dtype).reshape(-1, 1) for a in norms[l - 1])
            params[f"gamma{l}"], params[f"beta{l}"] = gamma, beta
            running[f"running_mean{l}"], running[f"running_var{l}"] = mean, var
        else:
            params[f"b{l}"] = np.asarray(b, dtype)
    net.parameters = params
    if running:
        net.running_statistics = running
    return net


def _refuse_batch_norm(net, where, peer):
    """What a peer without batch norm cannot take: a clear refusal naming the layers."""
    layers = [l for l, f in enumerate(getattr(net, "batch_norm", ()), 1) if f]
    if layers:
        raise InputError(f"{where}: layers {layers} use batch norm, which {peer} cannot "
                         f"express; export to PyTorch (to_torch, state_dict) or ONNX "
                         f"(to_onnx folds it into the Gemm)")


# ---------------------------------------------------------------- scikit-learn
def _sklearn_output(net):
    """``(kind, out_activation, W_L, b_L)``: how sklearn expresses the output layer.

    A 2-unit softmax becomes one logistic unit (``softmax(z)_1 = σ(z_1 − z_0)``), as
    scikit-learn's binary classifier has it.
    """
    L, (out, _), n_out = net.L, net.activations[-1], net.layer_dims[-1]
    W, b = net.parameters[f"W{L}"], net.parameters[f"b{L}"]
    expected = {"sigmoid": "binary_crossentropy", "softmax": "categorical_crossentropy",
                "identity": "mean_squared_error"}
    if out not in expected:
        raise InputError(f"layer {L} (output): scikit-learn's MLP cannot express a {out} "
                         f"output (its outputs are identity for MLPRegressor, logistic or "
                         f"softmax for MLPClassifier)")
    if net.loss != expected[out]:
        raise InputError(f"layer {L} (output): a {out} output trained with {net.loss}; "
                         f"scikit-learn's MLP trains a {out} output with "
                         f"{expected[out]} (its own loss), so the model would not be the "
                         f"same one")
    if out == "identity":
        return "regressor", "identity", W, b
    if out == "sigmoid":
        return ("binary" if n_out == 1 else "multilabel"), "logistic", W, b
    if n_out == 2:
        return "binary", "logistic", W[1:] - W[:1], b[1:] - b[:1]
    return "multiclass", "softmax", W, b


def _sklearn_hidden(net):
    """The one hidden activation scikit-learn's MLP can have (``"relu"`` when L = 1)."""
    names = [name for name, _ in net.activations[:-1]]
    for l, name in enumerate(names, 1):
        if SKLEARN_ACTIVATIONS[name] not in _SKLEARN_HIDDEN:
            raise InputError(f"layer {l}: scikit-learn's MLP has no {name} activation (its "
                             f"hidden activations are {', '.join(_SKLEARN_HIDDEN)})")
        if name != names[0]:
            raise InputError(f"layer {l}: {name}, but layer 1 has {names[0]}; scikit-learn's "
                             f"MLP uses one activation for every hidden layer")
    return SKLEARN_ACTIVATIONS[names[0]] if names else "relu"


def to_sklearn(net, classes=None, **params):
    """See :meth:`InteropMixin.to_sklearn`."""
    _refuse_batch_norm(net, "to_sklearn", "scikit-learn's MLP")
    nn = _require("sklearn.neural_network", "to_sklearn")
    preprocessing = _require("sklearn.preprocessing", "to_sklearn")
    hidden = _sklearn_hidden(net)
    kind, out_activation, W_L, b_L = _sklearn_output(net)
    Ws = [net.parameters[f"W{l}"] for l in range(1, net.L)] + [W_L]
    bs = [net.parameters[f"b{l}"] for l in range(1, net.L)] + [b_L]
    sizes = tuple(int(n) for n in net.layer_dims[1:-1])
    n_out = W_L.shape[0]
    if kind == "regressor":
        if classes is not None:
            raise InputError("classes is for a classifier; this network has an identity "
                             "output (a regressor)")
        mlp = nn.MLPRegressor(hidden_layer_sizes=sizes, activation=hidden, **params)
    elif kind == "multilabel" and classes is not None:
        raise InputError(f"classes: a multilabel MLPClassifier's classes_ are the indices of "
                         f"its {n_out} logistic outputs (layer {net.L}); leave classes out")
    else:
        n_classes = net.layer_dims[-1] if kind != "binary" else 2
        labels = np.arange(n_classes) if classes is None else np.asarray(classes)
        if labels.ndim != 1 or len(labels) != n_classes or \
                not np.array_equal(np.unique(labels), labels):
            raise InputError(f"classes must be {n_classes} distinct labels in sorted order, "
                             f"as scikit-learn keeps classes_ (the {kind} output of layer "
                             f"{net.L} has {net.layer_dims[-1]} unit(s)), got {classes!r}")
        mlp = nn.MLPClassifier(hidden_layer_sizes=sizes, activation=hidden, **params)
        lb = preprocessing.LabelBinarizer()
        if kind == "multilabel":
            lb.fit(np.eye(n_classes, dtype=int))
        else:
            lb.fit(labels)
        mlp._label_binarizer = lb
        mlp.classes_ = labels if kind != "multilabel" else lb.classes_
    # What MLP*._initialize sets on a first fit (so that partial_fit continues from here).
    mlp.coefs_ = [np.array(W.T) for W in Ws]
    mlp.intercepts_ = [np.array(b[:, 0]) for b in bs]
    mlp.n_features_in_ = int(net.layer_dims[0])
    mlp.n_outputs_ = int(n_out)
    mlp.n_layers_ = net.L + 1
    mlp.out_activation_ = out_activation
    mlp.n_iter_, mlp.t_ = 0, 0
    mlp.loss_curve_, mlp._no_improvement_count = [], 0
    mlp.best_loss_, mlp.validation_scores_, mlp.best_validation_score_ = np.inf, None, None
    mlp._best_coefs = [c.copy() for c in mlp.coefs_]
    mlp._best_intercepts = [i.copy() for i in mlp.intercepts_]
    return mlp


def sklearn_layers(mlp):
    """``(layer_dims, activations, loss, Ws, bs)`` of a fitted MLPClassifier/MLPRegressor."""
    nn = _require("sklearn.neural_network", "from_sklearn")
    validation = _require("sklearn.utils.validation", "from_sklearn")
    if not isinstance(mlp, (nn.MLPClassifier, nn.MLPRegressor)):
        raise InputError(f"from_sklearn takes a fitted sklearn.neural_network.MLPClassifier "
                         f"or MLPRegressor, got {type(mlp).__name__}")
    validation.check_is_fitted(mlp, ["coefs_", "intercepts_"],
                               msg=f"this {type(mlp).__name__} is not fitted yet (it has no "
                                   f"coefs_): call fit before from_sklearn")
    hidden, out = mlp.activation, mlp.out_activation_
    if hidden not in _SKLEARN_HIDDEN:
        raise InputError(f"{type(mlp).__name__}: unknown hidden activation {hidden!r}")
    if out not in _SKLEARN_OUTPUT_LOSS:
        raise InputError(f"{type(mlp).__name__}: chainrule has no {out!r} output activation "
                         f"(out_activation_ of loss={getattr(mlp, 'loss', None)!r}); it reads "
                         f"identity, logistic and softmax outputs")
    coefs, intercepts = list(mlp.coefs_), list(mlp.intercepts_)
    if len(coefs) != len(intercepts):
        raise ShapeError(f"{type(mlp).__name__}: {len(coefs)} coefs_ but {len(intercepts)} "
                         f"intercepts_")
    pairs = []
    for l, (c, i) in enumerate(zip(coefs, intercepts), 1):
        c = _as_array(c, f"coefs_[{l - 1}]")
        i = _as_array(i, f"intercepts_[{l - 1}]")
        if c.ndim != 2:
            raise ShapeError(f"coefs_[{l - 1}] (layer {l}) must be 2-D (n[{l - 1}], n[{l}]), "
                             f"got shape {c.shape}")
        pairs.append((c.T, i))
    dims, Ws, bs = _layers_from_pairs(pairs, type(mlp).__name__)
    back = {v: k for k, v in SKLEARN_ACTIVATIONS.items() if v}
    activations = [back[hidden]] * (len(Ws) - 1) + [back[out]]
    return dims, activations, _SKLEARN_OUTPUT_LOSS[out], Ws, bs


# ---------------------------------------------------------------- PyTorch
def _torch_layout(activations, batch_norm=None):
    """The ``nn.Sequential`` indices: ``[(linear index, activation module index or None,
    BatchNorm1d index or None)]`` (a batch-norm layer: ``Linear(bias=False)``, then
    ``BatchNorm1d``, then the activation)."""
    out, i = [], 0
    batch_norm = batch_norm or [False] * len(activations)
    for (name, _), bn in zip(activations, batch_norm):
        has_module = TORCH_MODULES[name] is not None
        norm = i + 1 if bn else None
        j = i + (2 if bn else 1)
        out.append((i, j if has_module else None, norm))
        i = j + (1 if has_module else 0)
    return out


_TORCH_KEY = re.compile(r"^(\d+)\.(weight|bias|running_mean|running_var|num_batches_tracked)$")
_BN_KEYS = ("running_mean", "running_var", "num_batches_tracked")


def state_dict_layers(state_dict, n_layers):
    """``(layer_dims, Ws, bs, norms)`` from ``nn.Sequential`` keys ``"i.weight"``,
    ``"i.bias"``; an index with ``running_mean`` is a ``BatchNorm1d`` of the linear layer
    before it (``norms[l-1] = (gamma, beta, running_mean, running_var)``, the linear bias,
    if any, folded into the running mean; ``None`` for a layer without)."""
    if not hasattr(state_dict, "items"):
        raise InputError(f"from_state_dict takes a dict of arrays (a state_dict), got "
                         f"{type(state_dict).__name__}")
    found = {}
    for key, value in state_dict.items():
        match = _TORCH_KEY.match(str(key))
        if match is None:
            raise InputError(f"from_state_dict: cannot read key {key!r}: only nn.Linear "
                             f"weights and biases and BatchNorm1d entries are read (keys are "
                             f"'<index>.weight', '<index>.bias', '<index>.running_mean'... "
                             f"of an nn.Sequential)")
        found.setdefault(int(match.group(1)), {})[match.group(2)] = \
            _as_array(value, f"state_dict[{key!r}]")
    indices = sorted(found)
    linear = [i for i in indices if "running_mean" not in found[i]
              and "running_var" not in found[i]]
    if len(linear) != n_layers:
        raise InputError(f"from_state_dict: the state dict has {len(linear)} linear layers "
                         f"(indices {linear}) but activations names {n_layers}: give one "
                         f"activation per layer")
    pairs, norms = [], []
    for l, i in enumerate(linear, 1):
        entry = found[i]
        if "weight" not in entry:
            raise InputError(f"from_state_dict: layer {l} (index {i}) has a bias but no "
                             f"'{i}.weight'")
        W = entry["weight"]
        b = entry.get("bias")
        if b is None:  # nn.Linear(bias=False)
            b = np.zeros(W.shape[:1], W.dtype if W.dtype.kind == "f" else np.float64)
        pairs.append((W, b))
        following = [j for j in indices if j > i and (l == n_layers or j < linear[l])
                     and ("running_mean" in found[j] or "running_var" in found[j])]
        if len(following) > 1:
            raise InputError(f"from_state_dict: layer {l} (index {i}) is followed by "
                             f"{len(following)} batch norms (indices {following}); chainrule "
                             f"applies one")
        if not following:
            norms.append(None)
            continue
        j = following[0]
        bn = found[j]
        missing = [k for k in ("running_mean", "running_var") if k not in bn]
        if missing:
            raise InputError(f"from_state_dict: the batch norm at index {j} lacks "
                             f"{', '.join(f'{j}.{k}' for k in missing)}")
        n = W.shape[0]
        ones, zeros = np.ones(n, bn["running_var"].dtype), np.zeros(n, bn["running_var"].dtype)
        gamma, beta = bn.get("weight", ones), bn.get("bias", zeros)
        # W A + b then batch norm at inference: the bias moves into the running mean
        norms.append((gamma, beta, bn["running_mean"] - b.reshape(-1), bn["running_var"]))
    dims, Ws, bs = _layers_from_pairs(pairs, "from_state_dict")
    if n_layers and norms[-1] is not None:
        raise InputError(f"from_state_dict: the output layer ({n_layers}) has a batch norm; "
                         f"chainrule normalizes hidden layers only")
    return dims, Ws, bs, norms


def torch_layers(seq):
    """``(activations, pairs)`` read from an ``nn.Sequential`` of Linear and activations."""
    torch = _require("torch", "from_torch")
    nn = torch.nn
    if not isinstance(seq, nn.Sequential):
        raise InputError(f"from_torch takes a torch.nn.Sequential of Linear layers and "
                         f"activations, got {type(seq).__name__}")
    by_class = {getattr(nn, cls_name): name for name, cls_name in TORCH_MODULES.items()
                if cls_name is not None}
    activations, pairs, norms = [], [], []
    pending = None  # the activation after the last Linear, not yet given
    for index, module in enumerate(seq):
        kind = type(module)
        if kind is nn.BatchNorm1d:
            if not pairs or pending is not None or norms[-1] is not None:
                raise InputError(f"from_torch: module {index} (BatchNorm1d) must follow a "
                                 f"Linear directly (Linear, BatchNorm1d, activation: the "
                                 f"course's order), once")
            if not module.track_running_stats or module.momentum is None:
                raise InputError(f"from_torch: module {index} (BatchNorm1d) needs running "
                                 f"statistics with an exponential momentum (chainrule's "
                                 f"running averages); got track_running_stats="
                                 f"{module.track_running_stats}, momentum={module.momentum}")
            n = module.num_features
            ones = torch.ones(n, dtype=module.running_mean.dtype)
            gamma = module.weight if module.affine else ones
            beta = module.bias if module.affine else ones * 0
            b = pairs[-1][1]
            norms[-1] = (_as_array(gamma, f"[{index}].weight"), _as_array(beta, f"[{index}].bias"),
                         _as_array(module.running_mean, f"[{index}].running_mean") - b,
                         _as_array(module.running_var, f"[{index}].running_var"),
                         float(module.eps), 1.0 - float(module.momentum))
            continue
        if kind is nn.Linear:
            norms.append(None)
            if pairs:
                activations.append(pending or "identity")
            b = module.bias if module.bias is not None else \
                torch.zeros(module.out_features, dtype=module.weight.dtype)
            pairs.append((_as_array(module.weight, f"[{index}].weight"),
                          _as_array(b, f"[{index}].bias")))
            pending = None
        elif kind in (nn.Identity, nn.Dropout):  # no-ops at inference
            continue
        elif kind in by_class:
            if not pairs:
                raise InputError(f"from_torch: module {index} ({kind.__name__}) comes before "
                                 f"the first Linear; chainrule's layers are Linear then "
                                 f"activation")
            if pending is not None:
                raise InputError(f"from_torch: module {index} ({kind.__name__}) is a second "
                                 f"activation after layer {len(pairs)}; chainrule applies one")
            name = by_class[kind]
            if name == "softmax" and module.dim not in (1, -1):
                raise InputError(f"from_torch: module {index} is Softmax(dim={module.dim}); "
                                 f"chainrule's softmax runs over the units (dim=1 for rows)")
            pending = (name, float(module.negative_slope)) if name == "leaky_relu" else name
        else:
            reason = ("chainrule reads Linear, BatchNorm1d, ReLU, Sigmoid, Tanh, LeakyReLU, "
                      "Softmax, and Identity/Dropout (no-ops at inference)")
            raise InputError(f"from_torch: module {index} is a {kind.__name__}: {reason}")
    if not pairs:
        raise InputError("from_torch: the Sequential has no Linear layer")
    activations.append(pending or "identity")
    if norms[-1] is not None:
        raise InputError("from_torch: the output layer has a BatchNorm1d; chainrule "
                         "normalizes hidden layers only")
    return activations, pairs, norms


def _torch_dtype(torch, dtype):
    return {np.float32: torch.float32, np.float64: torch.float64}[np.dtype(dtype).type]


# ---------------------------------------------------------------- ONNX
def onnx_model(net, dtype, classes, input_name, output_name, library_version):
    """The ONNX ``ModelProto`` of ``net`` (checked by ``onnx.checker``)."""
    onnx = _require("onnx", "to_onnx")
    from onnx import helper, numpy_helper  # noqa: PLC0415 (the extra is checked above)

    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise InputError(f"to_onnx: dtype must be 'float32' or 'float64', got {dtype}")
    if not (isinstance(input_name, str) and isinstance(output_name, str) and input_name
            and output_name and input_name != output_name):
        raise InputError(f"to_onnx: input_name and output_name must be two different "
                         f"non-empty strings, got {input_name!r} and {output_name!r}")
    elem = helper.np_dtype_to_tensor_dtype(dtype)
    nodes, inits = [], []
    A = input_name
    for l, (name, alpha) in enumerate(net.activations, 1):
        last = l == net.L
        if f"gamma{l}" in net.parameters:  # batch norm at inference, folded into the Gemm
            P, r = net.parameters, net.running_statistics
            W64, b64 = fold_batch_norm(np.asarray(P[f"W{l}"], np.float64), None,
                                       P[f"gamma{l}"], P[f"beta{l}"], r[f"running_mean{l}"],
                                       r[f"running_var{l}"], net.batch_norm_epsilon)
            W = np.ascontiguousarray(W64, dtype)
            b = np.ascontiguousarray(b64[:, 0], dtype)
        else:
            W = np.ascontiguousarray(net.parameters[f"W{l}"], dtype)
            b = np.ascontiguousarray(net.parameters[f"b{l}"][:, 0], dtype)
        inits += [numpy_helper.from_array(W, f"W{l}"), numpy_helper.from_array(b, f"b{l}")]
        op = ONNX_OPS[name]
        Z = output_name if last and op is None else f"Z{l}"
        nodes.append(helper.make_node("Gemm", [A, f"W{l}", f"b{l}"], [Z], name=f"dense{l}",
                                      transB=1))
        if op is None:
            A = Z
            continue
        A = output_name if last else f"A{l}"
        inputs, attrs = [Z], {"axis": 1} if name == "softmax" else {}
        if name == "leaky_relu" and dtype == np.float64:
            # LeakyRelu's alpha is a float32 attribute (0.3 would become 0.30000001): in
            # float64 the slope is a double tensor of PRelu, so the file computes what
            # chainrule does.
            op, inputs = "PRelu", [Z, f"alpha{l}"]
            inits.append(numpy_helper.from_array(np.array([alpha], dtype), f"alpha{l}"))
        elif name == "leaky_relu":
            attrs = {"alpha": float(alpha)}
        nodes.append(helper.make_node(op, inputs, [A], name=f"{name}{l}", **attrs))
    graph = helper.make_graph(
        nodes, "chainrule_network",
        [helper.make_tensor_value_info(input_name, elem, ["m", int(net.layer_dims[0])])],
        [helper.make_tensor_value_info(output_name, elem, ["m", int(net.layer_dims[-1])])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                              producer_name="chainrule", producer_version=library_version)
    model.ir_version = ONNX_IR_VERSION
    meta = {
        "chainrule.layer_dims": json.dumps([int(n) for n in net.layer_dims]),
        "chainrule.activations": json.dumps([[n, a] for n, a in net.activations]),
        "chainrule.loss": net.loss,
        "chainrule.input": f"{input_name}: (m, {net.layer_dims[0]}), examples as rows",
        "chainrule.output": f"{output_name}: (m, {net.layer_dims[-1]}), A[L] as rows",
    }
    if classes is not None:
        labels = np.asarray(classes)
        n_classes = 2 if net.layer_dims[-1] == 1 else net.layer_dims[-1]
        if labels.ndim != 1 or len(labels) != n_classes:
            raise InputError(f"to_onnx: classes must list {n_classes} labels (layer {net.L} "
                             f"has {net.layer_dims[-1]} unit(s)), got {classes!r}")
        meta["chainrule.classes"] = json.dumps(labels.tolist())
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    return model


# ---------------------------------------------------------------- Network's methods
class InteropMixin:
    """Conversions of :class:`chainrule.Network` (see :mod:`chainrule._interop` and the
    Interoperability page of the docs). Works on ``layer_dims``, ``activations``, ``loss``,
    ``dtype`` and ``parameters``; the classmethods build ``cls``."""

    # ---- scikit-learn
    def to_sklearn(self, classes=None, **params):
        """A fitted ``MLPClassifier``/``MLPRegressor`` that predicts as this network does.

        ``coefs_[l-1] = W[l]ᵀ``, ``intercepts_[l-1] = b[l]`` (1-D). The output picks the
        estimator by scikit-learn's own rules: identity → ``MLPRegressor``; a 1-unit sigmoid
        → binary ``MLPClassifier`` (one logistic unit; a 2-unit softmax is converted to it);
        softmax → multiclass; a sigmoid of several units → multilabel.

        Parameters
        ----------
        classes : array of labels, optional
            The sorted labels (``classes_``); default ``0, 1, ...``.
        **params
            Further estimator parameters (``max_iter``, ``learning_rate_init``...).

        Raises
        ------
        InputError
            What scikit-learn's MLP cannot express (another activation per hidden layer,
            leaky_relu, a relu output, a loss other than its own): the message names the
            layer.
        """
        return to_sklearn(self, classes, **params)

    @classmethod
    def from_sklearn(cls, mlp, dtype=None, backend="auto"):
        """A network from a fitted ``MLPClassifier``/``MLPRegressor`` (same predictions).

        ``dtype`` defaults to that of ``coefs_``. The loss is the one scikit-learn trained
        with: binary cross-entropy (logistic), categorical (softmax), mean squared error.
        """
        dims, activations, loss, Ws, bs = sklearn_layers(mlp)
        dtype = _float_dtype(dtype, Ws + bs, "from_sklearn")
        return _build(cls, dims, Ws, bs, activations, loss, dtype, backend)

    # ---- PyTorch
    def state_dict(self):
        """The parameters with the keys of the matching ``nn.Sequential`` (NumPy copies).

        ``"i.weight"`` is ``W[l]`` (``nn.Linear``'s ``(out, in)``) and ``"i.bias"`` is
        ``b[l]`` as ``(n[l],)``; each activation but identity is a parameterless module
        after its Linear, so the indices skip it as PyTorch numbers modules. A batch-norm
        layer is ``Linear(bias=False)`` at ``i`` then ``BatchNorm1d`` at ``i + 1``:
        ``weight`` = gamma, ``bias`` = beta, ``running_mean``, ``running_var`` (unbiased, as
        PyTorch keeps it) and ``num_batches_tracked`` (the steps trained). Load it with
        ``seq.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``.
        """
        sd = {}
        layout = _torch_layout(self.activations, getattr(self, "batch_norm", None))
        for l, (i, _, j) in enumerate(layout, 1):
            sd[f"{i}.weight"] = np.array(self.parameters[f"W{l}"])
            if j is None:
                sd[f"{i}.bias"] = np.array(self.parameters[f"b{l}"][:, 0])
                continue
            r = self.running_statistics
            sd[f"{j}.weight"] = np.array(self.parameters[f"gamma{l}"][:, 0])
            sd[f"{j}.bias"] = np.array(self.parameters[f"beta{l}"][:, 0])
            sd[f"{j}.running_mean"] = np.array(r[f"running_mean{l}"][:, 0])
            sd[f"{j}.running_var"] = _torch_running_var(self, r[f"running_var{l}"][:, 0])
            sd[f"{j}.num_batches_tracked"] = np.array(self.steps_trained_, dtype=np.int64)
        return sd

    @classmethod
    def from_state_dict(cls, state_dict, activations, loss=None, dtype=None, backend="auto",
                        batch_norm_epsilon=1e-5, batch_norm_momentum=0.9):
        """A network from an ``nn.Sequential``'s state dict (arrays or CPU tensors).

        ``activations`` names one per linear layer (as the constructor's); the linear
        layers are the ``"i.weight"``/``"i.bias"`` pairs in index order (gaps are the
        parameterless modules between them). An index with ``running_mean`` is a
        ``BatchNorm1d`` of the linear layer before it (a bias of that Linear is folded
        into the running mean); a state dict holds neither its ``eps`` nor its momentum:
        give ``batch_norm_epsilon`` and ``batch_norm_momentum`` (the course's beta, PyTorch's
        ``1 - momentum``).
        """
        if isinstance(activations, (str, tuple)):
            activations = [activations]
        activations = list(activations)
        dims, Ws, bs, norms = state_dict_layers(state_dict, len(activations))
        dtype = _float_dtype(dtype, Ws, "from_state_dict")
        return _build(cls, dims, Ws, bs, activations, loss, dtype, backend, norms,
                      batch_norm_epsilon, batch_norm_momentum)

    def to_torch(self):
        """An ``nn.Sequential`` (eval mode, this network's dtype) computing ``A[L]`` for
        examples as rows: ``Linear`` layers, each followed by its activation module
        (``Softmax(dim=1)`` for a softmax output; none for identity); a batch-norm layer is
        ``Linear(bias=False)``, ``BatchNorm1d(eps, momentum=1 - beta)`` with its running
        statistics, then the activation."""
        torch = _require("torch", "to_torch")
        nn = torch.nn
        tdtype = _torch_dtype(torch, self.dtype)
        modules = []
        sd = self.state_dict()
        layout = _torch_layout(self.activations, getattr(self, "batch_norm", None))
        for l, (name, alpha) in enumerate(self.activations, 1):
            n, n_prev = self.parameters[f"W{l}"].shape
            i, _, j = layout[l - 1]
            linear = nn.Linear(n_prev, n, bias=j is None, dtype=tdtype)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(sd[f"{i}.weight"]))
                if j is None:
                    linear.bias.copy_(torch.from_numpy(sd[f"{i}.bias"]))
            modules.append(linear)
            if j is not None:
                bn = nn.BatchNorm1d(n, eps=self.batch_norm_epsilon,
                                    momentum=1 - self.batch_norm_momentum, dtype=tdtype)
                bn.load_state_dict({k.split(".", 1)[1]: torch.from_numpy(np.asarray(v))
                                    for k, v in sd.items() if k.startswith(f"{j}.")})
                modules.append(bn)
            if name == "leaky_relu":
                modules.append(nn.LeakyReLU(negative_slope=alpha))
            elif name == "softmax":
                modules.append(nn.Softmax(dim=1))
            elif TORCH_MODULES[name] is not None:
                modules.append(getattr(nn, TORCH_MODULES[name])())
        return nn.Sequential(*modules).eval()

    @classmethod
    def from_torch(cls, seq, loss=None, dtype=None, backend="auto"):
        """A network from an ``nn.Sequential`` of ``Linear`` layers and activation modules
        (``ReLU``, ``Sigmoid``, ``Tanh``, ``LeakyReLU``, ``Softmax(dim=1)``; ``Identity`` and
        ``Dropout`` are no-ops at inference; a Linear without a module after it is
        linear; ``Linear`` then ``BatchNorm1d`` is a batch-norm layer, its running
        statistics kept, its ``eps`` and ``1 - momentum`` the network's, a bias of the
        Linear folded into the running mean). ``dtype`` defaults to the weights'."""
        activations, pairs, norms = torch_layers(seq)
        dims, Ws, bs = _layers_from_pairs(pairs, "from_torch")
        dtype = _float_dtype(dtype, Ws, "from_torch")
        settings = {(n[4], n[5]) for n in norms if n is not None}
        if len(settings) > 1:
            raise InputError(f"from_torch: the BatchNorm1d modules differ in (eps, 1 - "
                             f"momentum) {sorted(settings)}; a chainrule network has one of each")
        eps, beta = settings.pop() if settings else (None, None)
        return _build(cls, dims, Ws, bs, activations, loss, dtype, backend,
                      [None if n is None else n[:4] for n in norms], eps, beta)

    # ---- Keras
    def keras_weights(self):
        """``[kernel1, bias1, kernel2, ...]``: what ``model.set_weights`` takes for a Keras
        ``Sequential`` of ``Dense`` layers (``kernel = W[l]ᵀ``, ``(n[l-1], n[l])``; ``bias``
        ``(n[l],)``); the Dense activations are :data:`KERAS_ACTIVATIONS`."""
        _refuse_batch_norm(self, "keras_weights", "a Sequential of Dense layers")
        out = []
        for l in range(1, self.L + 1):
            out += [np.array(self.parameters[f"W{l}"].T),
                    np.array(self.parameters[f"b{l}"][:, 0])]
        return out

    @classmethod
    def from_keras_weights(cls, weights, activations, loss=None, dtype=None, backend="auto"):
        """A network from ``model.get_weights()`` of Dense layers (kernel, bias, ...)."""
        weights = [_as_array(w, f"weights[{i}]") for i, w in enumerate(weights)]
        if isinstance(activations, (str, tuple)):
            activations = [activations]
        activations = list(activations)
        if len(weights) != 2 * len(activations):
            raise InputError(f"from_keras_weights: {len(weights)} arrays for "
                             f"{len(activations)} activations; Dense layers give two each "
                             f"(kernel, bias)")
        pairs = []
        for l in range(len(activations)):
            kernel = weights[2 * l]
            if kernel.ndim != 2:
                raise ShapeError(f"from_keras_weights: layer {l + 1}'s kernel must be 2-D "
                                 f"(n[{l}], n[{l + 1}]), got shape {kernel.shape}")
            pairs.append((kernel.T, weights[2 * l + 1]))
        dims, Ws, bs = _layers_from_pairs(pairs, "from_keras_weights")
        dtype = _float_dtype(dtype, Ws, "from_keras_weights")
        return _build(cls, dims, Ws, bs, activations, loss, dtype, backend)

    # ---- ONNX
    def to_onnx(self, path, dtype="float32", classes=None, input_name="X", output_name="AL"):
        """Write the network as an ONNX model for inference (``onnxruntime``), atomically.

        Each layer is ``Gemm(A_prev, W[l], b[l], transB=1)`` on examples as rows, followed by
        its activation (``Relu``, ``Sigmoid``, ``Tanh``, ``LeakyRelu(alpha)`` (in float64
        ``PRelu`` with a double slope), ``Softmax(axis=1)``; none for identity). Opset
        :data:`ONNX_OPSET`, IR version :data:`ONNX_IR_VERSION`; checked by ``onnx.checker``
        (float32 files run on onnxruntime 1.16 and later; see the Interoperability page for
        float64 there). The metadata
        (``metadata_props``) holds ``chainrule.layer_dims``, ``chainrule.activations``,
        ``chainrule.loss``, the input and output layouts and, if given, ``chainrule.classes``.

        Parameters
        ----------
        path : str or os.PathLike
            Written only once the model is complete and checked (a temporary file then
            ``os.replace``): a failed export writes nothing.
        dtype : {"float32", "float64"}
        classes : array of labels, optional
        input_name, output_name : str
            The graph's input ``(m, n[0])`` and output ``(m, n[L])``.

        Returns
        -------
        path : str
        """
        model = onnx_model(self, dtype, classes, input_name, output_name,
                           io.library_version())
        data = model.SerializeToString()
        return io.write_atomically(path, lambda f: f.write(data))
