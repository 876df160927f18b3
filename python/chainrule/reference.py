r"""NumPy reference: the formulas of the Deep Learning Specialization, written plainly.

This module is both the fallback backend and the test oracle. Every function is
one formula; validation happens at the public boundary (``chainrule.Network`` and
``chainrule._validate``), not here.

Notation (examples are columns)
-------------------------------
=================  ==========================  ================
quantity           formula                     shape
=================  ==========================  ================
``X = A[0]``       input                       ``(n[0], m)``
``W[l]``           weights                     ``(n[l], n[l-1])``
``b[l]``           bias                        ``(n[l], 1)``
``Z[l]``           ``W[l] A[l-1] + b[l]``      ``(n[l], m)``
``A[l]``           ``g[l](Z[l])``              ``(n[l], m)``
``Y``              labels                      ``(n[L], m)``
=================  ==========================  ================

A gradient ``dX`` always has the shape of ``X``.

Two conventions
---------------
The cost is the average of per-example losses, ``J = (1/m) sum_k L(a_k, y_k)``.
Where the ``1/m`` is written differs between texts:

``"L"`` (the lectures)
    ``dZ[L] = A[L] - Y`` is the derivative of the per-example losses ``L`` (not of
    ``J``); the ``1/m`` enters in ``dW`` and ``db``::

        dW[l]     = (1/m) dZ[l] A[l-1]^T          (n[l], n[l-1])
        db[l]     = (1/m) sum_k dZ[l][:, k]       (n[l], 1)
        dA[l-1]   = W[l]^T dZ[l]                  (n[l-1], m)
        dZ[l-1]   = dA[l-1] * g'[l-1](Z[l-1])     (n[l-1], m)

``"J"`` (every quantity a derivative of the cost J)
    ``dZ[L] = (A[L] - Y) / m``; then no ``1/m`` anywhere else::

        dW[l] = dZ[l] A[l-1]^T,   db[l] = sum_k dZ[l][:, k],   dA[l-1] = W[l]^T dZ[l]

Both give identical ``dW`` and ``db`` (to rounding); every ``dZ`` and ``dA`` of
``"L"`` is exactly ``m`` times the one of ``"J"``.

Why ``W^T``: dimension analysis
-------------------------------
``Z[l][i, k] = sum_j W[l][i, j] A[l-1][j, k] + b[l][i]``, so by the scalar chain
rule ``dA[l-1][j, k] = sum_i W[l][i, j] dZ[l][i, k]``: the sum runs over the
*first* index of ``W``. That is the matrix product ``W[l]^T dZ[l]``, and it is the
only product of ``W[l]`` ``(n[l], n[l-1])`` and ``dZ[l]`` ``(n[l], m)`` that has
the shape ``(n[l-1], m)`` of ``A[l-1]``. Likewise ``dW[l][i, j] = sum_k dZ[l][i, k]
A[l-1][j, k]`` is ``dZ[l] A[l-1]^T``, shape ``(n[l], n[l-1])`` like ``W[l]``.

Losses
------
``binary_crossentropy``
    ``J = -(1/m) sum(Y log A + (1 - Y) log(1 - A))``; with a sigmoid output
    ``dZ[L] = A - Y``.
``categorical_crossentropy``
    ``J = -(1/m) sum(Y log A)`` (columns of Y one-hot); with a softmax output
    ``dZ[L] = A - Y``.
``mean_squared_error``
    ``J = (1/(2m)) sum ||a_k - y_k||^2``: one half of the mean over *examples* of
    the squared error (summed over output units), so that with an identity output
    ``dZ[L] = A - Y`` as well.

``A`` is clipped to ``[eps, 1 - eps]`` (``eps`` the machine epsilon of its dtype)
inside the logarithms only, so a saturated sigmoid gives a large finite cost
instead of ``inf``; for any unsaturated ``A`` the value is the course formula.

Caches
------
As in the course: a layer's cache is ``(linear_cache, activation_cache)`` with
``linear_cache = (A_prev, W, b)`` and ``activation_cache = Z``. A layer with batch
normalization has the cache ``(linear_cache, Z_tilde, batchnorm_cache)``: ``linear_cache =
(A_prev, W, None)`` (its ``b`` is dropped), ``Z_tilde`` what the activation took, and the
:class:`BatchNormCache` of :func:`batchnorm_forward`.

Batch normalization
-------------------
A layer whose parameters hold ``gamma{l}`` and ``beta{l}`` (and no ``b{l}``) normalizes
``Z = W A_prev`` over the m examples of the mini-batch before its activation::

    mu      = (1/m) sum_k Z[:, k]                   (n[l], 1)
    sigma^2 = (1/m) sum_k (Z[:, k] - mu)^2          (n[l], 1)   biased, in training
    s       = sqrt(sigma^2 + eps)                   (n[l], 1)
    Z_hat   = (Z - mu) / s                          (n[l], m)
    Z_tilde = gamma * Z_hat + beta                  (n[l], m)   A = g(Z_tilde)

The backward (convention "J")::

    dbeta  = sum_k dZ_tilde[:, k],   dgamma = sum_k dZ_tilde[:, k] * Z_hat[:, k]
    dZ     = (gamma / (m s)) * (m dZ_tilde - dbeta - Z_hat * dgamma)

In convention "L" every ``dZ_tilde``, ``dZ`` and ``dA`` is m times J's, and ``dgamma``,
``dbeta`` (like ``dW``) carry the ``1/m``. The batch statistics couple the examples:
``dZ_tilde[i, j] / dZ[i, k] = (gamma_i / s_i)(delta_jk - 1/m - Z_hat[i, j] Z_hat[i, k] / m)``
is a dense m x m block per unit, so below a batch-norm layer "L" is the derivative of the
summed loss ``sum_k L_k = m J``, not of one example's loss.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from . import spec as _spec
from .errors import InputError, ShapeError

__all__ = [
    "ACTIVATIONS", "LOSSES", "INITIALIZERS", "CONVENTIONS", "FUSED_OUTPUT_LOSS",
    "parse_activation", "sigmoid", "relu", "tanh", "leaky_relu", "identity", "softmax",
    "activation_forward", "activation_derivative", "activation_backward",
    "linear_forward", "linear_activation_forward", "model_forward",
    "linear_backward", "linear_activation_backward", "model_backward", "output_delta",
    "compute_cost", "example_losses", "cost_derivative", "l2_cost",
    "initialize_parameters", "update_parameters_with_gd",
    "gradient_check", "dictionary_to_vector", "vector_to_dictionary", "central_difference",
    "relative_difference", "predict", "score", "r_squared",
    "BATCHNORM_EPSILON", "BATCHNORM_BETA", "BatchNormCache", "batchnorm_forward",
    "batchnorm_backward", "batchnorm_backward_staged", "batchnorm_forward_eval",
    "batchnorm_jacobian", "batchnorm_running_update", "linear_batchnorm_activation_forward",
    "linear_batchnorm_activation_backward", "initialize_running_statistics",
    "update_running_statistics", "batch_norm_layers",
]

# The names and rules come from the one table (chainrule.spec); the formulas are here.
ACTIVATIONS = _spec.ACTIVATION_NAMES
LOSSES = _spec.LOSS_NAMES
INITIALIZERS = ("zeros", "random", "he", "xavier", "glorot_uniform")
CONVENTIONS = ("L", "J")
DEFAULT_LEAKY_ALPHA = _spec.DEFAULT_LEAKY_ALPHA

# Output activation and loss pairs whose dZ[L] simplifies to A[L] - Y.
FUSED_OUTPUT_LOSS = _spec.FUSED_OUTPUT_LOSS


def parse_activation(spec):
    """Return ``(name, alpha)`` for ``"relu"``, ``"leaky_relu"``, ``("leaky_relu", 0.2)``.

    ``alpha`` only matters for ``leaky_relu``; it is ``0.0`` for the others.
    """
    if isinstance(spec, (tuple, list)):
        name, alpha = spec
        return str(name), float(alpha)
    name = str(spec)
    row = _spec.ACTIVATIONS.get(name)
    return name, (DEFAULT_LEAKY_ALPHA if row is not None and row.has_alpha else 0.0)


# --------------------------------------------------------------------------- activations
# Each g is next to its derivative g'(Z); both take Z, as the course's *_backward do.

def sigmoid(Z):
    """``A = 1 / (1 + exp(-Z))``."""
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-Z))


def sigmoid_prime(Z):
    """``g'(Z) = s (1 - s)`` with ``s = sigmoid(Z)``."""
    s = sigmoid(Z)
    return s * (1 - s)


def relu(Z):
    """``A = max(0, Z)``."""
    return np.maximum(Z, 0)


def relu_prime(Z):
    """``g'(Z) = 1 where Z > 0 else 0``; ``g'(0) = 0`` as the course's ``dZ[Z <= 0] = 0``."""
    return (Z > 0).astype(Z.dtype)


def tanh(Z):
    """``A = tanh(Z)``."""
    return np.tanh(Z)


def tanh_prime(Z):
    """``g'(Z) = 1 - tanh(Z)^2``."""
    return 1 - np.tanh(Z) ** 2


def leaky_relu(Z, alpha=DEFAULT_LEAKY_ALPHA):
    """``A = Z where Z > 0 else alpha Z``."""
    return np.where(Z > 0, Z, Z * Z.dtype.type(alpha))


def leaky_relu_prime(Z, alpha=DEFAULT_LEAKY_ALPHA):
    """``g'(Z) = 1 where Z > 0 else alpha`` (``alpha`` at exactly 0, like ReLU's 0)."""
    return np.where(Z > 0, Z.dtype.type(1), Z.dtype.type(alpha))


def identity(Z):
    """``A = Z``."""
    return Z.copy()


def identity_prime(Z):
    """``g'(Z) = 1``."""
    return np.ones_like(Z)


def softmax(Z):
    """``A[:, k] = exp(Z[:, k]) / sum_i exp(Z[i, k])``, shifted by the column max for stability."""
    E = np.exp(Z - Z.max(axis=0, keepdims=True))
    return E / E.sum(axis=0, keepdims=True)


def softmax_backward(dA, Z):
    """``dZ = A * (dA - sum_i A dA)`` per column: the softmax Jacobian is not diagonal."""
    A = softmax(Z)
    return A * (dA - np.sum(A * dA, axis=0, keepdims=True))


_FORWARD = {"sigmoid": sigmoid, "relu": relu, "tanh": tanh, "identity": identity,
            "softmax": softmax}
_PRIME = {"sigmoid": sigmoid_prime, "relu": relu_prime, "tanh": tanh_prime,
          "identity": identity_prime}


def activation_forward(Z, activation):
    """``A = g(Z)`` for an activation spec (name or ``(name, alpha)``)."""
    name, alpha = parse_activation(activation)
    if name == "leaky_relu":
        return leaky_relu(Z, alpha)
    return _FORWARD[name](Z)


def activation_derivative(Z, activation):
    """``g'(Z)``, elementwise; undefined for softmax (use :func:`activation_backward`)."""
    name, alpha = parse_activation(activation)
    if name == "leaky_relu":
        return leaky_relu_prime(Z, alpha)
    if name == "softmax":
        raise ValueError("softmax has no elementwise derivative; use activation_backward")
    return _PRIME[name](Z)


def activation_backward(dA, Z, activation):
    """``dZ = dA * g'(Z)`` (for softmax, the Jacobian-vector product)."""
    name, _ = parse_activation(activation)
    if name == "softmax":
        return softmax_backward(dA, Z)
    return dA * activation_derivative(Z, activation)


# --------------------------------------------------------------------------- forward / backward
# A layer's forward and backward stand next to each other.

def linear_forward(A_prev, W, b):
    """``Z = W A_prev + b``. Returns ``(Z, linear_cache)`` with ``linear_cache = (A_prev, W, b)``."""
    Z = W @ A_prev + b
    return Z, (A_prev, W, b)


def linear_backward(dZ, linear_cache, convention="L", lambd=0.0, compute_dA_prev=True):
    """``dW = s dZ A_prev^T``, ``db = s sum_k dZ``, ``dA_prev = W^T dZ``; ``s = 1/m`` ("L") or 1 ("J").

    Returns ``(dA_prev, dW, db)`` with the shapes of ``A_prev, W, b``. With L2
    regularisation (``lambd > 0``) ``dW`` gains ``(lambd/m) W`` in both conventions, the
    derivative of the cost's ``(lambd/(2m)) ||W||^2``. ``compute_dA_prev=False`` skips
    the product ``W^T dZ`` (returned as ``None``): the input layer never needs it.
    """
    A_prev, W, b = linear_cache
    m = A_prev.shape[1]
    dW = dZ @ A_prev.T
    db = np.sum(dZ, axis=1, keepdims=True)
    if convention == "L":
        dW = dW / m
        db = db / m
    if lambd:
        dW = dW + (lambd / m) * W
    dA_prev = W.T @ dZ if compute_dA_prev else None
    return dA_prev, dW, db


def linear_activation_forward(A_prev, W, b, activation):
    """``Z = W A_prev + b; A = g(Z)``. Returns ``(A, cache)`` with ``cache = (linear_cache, Z)``."""
    Z, linear_cache = linear_forward(A_prev, W, b)
    A = activation_forward(Z, activation)
    return A, (linear_cache, Z)


def linear_activation_backward(dA, cache, activation, convention="L"):
    """``dZ = dA * g'(Z)`` then :func:`linear_backward`. Returns ``(dA_prev, dW, db)``."""
    linear_cache, Z = cache
    dZ = activation_backward(dA, Z, activation)
    return linear_backward(dZ, linear_cache, convention)


# --------------------------------------------------------------------------- batch normalization
# Forward, the two backwards (staged, compact), the eval-mode forward and the running averages
# stand together. Examples are columns; gamma, beta and every statistic are (n, 1).

BATCHNORM_EPSILON = 1e-5
#: the course's beta of the running averages: mu_hat <- beta mu_hat + (1 - beta) mu
#: (PyTorch's ``momentum`` is 1 - beta, Keras's ``momentum`` is beta)
BATCHNORM_BETA = 0.9

BatchNormCache = namedtuple("BatchNormCache", "Z Z_hat mu var s gamma beta eps")
BatchNormCache.__doc__ = """What :func:`batchnorm_forward` keeps for the backward: ``Z`` and
``Z_hat`` ``(n, m)``; ``mu``, ``var`` (the biased ``sigma^2``), ``s = sqrt(var + eps)``, ``gamma``
and ``beta`` ``(n, 1)``; ``eps``."""


def _check_batchnorm(Z_shape, gamma, beta, where="batchnorm_forward", training=True,
                     names=("gamma", "beta")):
    """Shapes ``Z (n, m)``, ``gamma, beta (n, 1)``; ``m >= 2`` in training."""
    if Z_shape is None or len(Z_shape) != 2:
        raise ShapeError(f"{where}: Z must be 2-D (n, m), units x examples; got shape {Z_shape}")
    n, m = Z_shape
    for name, value in zip(names, (gamma, beta)):
        shape = getattr(value, "shape", None)
        if shape != (n, 1):
            raise ShapeError(f"{where}: {name} must have shape ({n}, 1), one entry per unit of "
                             f"Z {Z_shape}; got {shape}")
    if training and m < 2:
        raise InputError(f"{where}: batch normalization in training needs a mini-batch of at "
                         f"least 2 examples; got m = {m} (Z {Z_shape}): with one example "
                         "sigma^2 = 0 and Z_hat = 0, whatever Z is")


def batchnorm_forward(Z, gamma, beta, eps=BATCHNORM_EPSILON):
    """Training mode: ``Z_tilde = gamma * (Z - mu) / sqrt(sigma^2 + eps) + beta`` over the batch.

    ``mu`` and the biased ``sigma^2`` are the mean and variance of each row of ``Z`` (n, m)
    over its m columns (examples); ``gamma``, ``beta`` are (n, 1). Returns ``(Z_tilde,
    cache)`` with ``cache`` a :class:`BatchNormCache`. Needs ``m >= 2``.
    """
    _check_batchnorm(getattr(Z, "shape", None), gamma, beta)
    mu = np.mean(Z, axis=1, keepdims=True)
    var = np.mean((Z - mu) ** 2, axis=1, keepdims=True)
    s = np.sqrt(var + eps)
    Z_hat = (Z - mu) / s
    Z_tilde = gamma * Z_hat + beta
    return Z_tilde, BatchNormCache(Z, Z_hat, mu, var, s, gamma, beta, eps)


def _check_convention(convention):
    if convention not in CONVENTIONS:
        raise InputError(f"convention must be 'L' or 'J', got {convention!r}")


def _check_dZ_tilde(dZ_tilde, cache, where):
    shape = getattr(dZ_tilde, "shape", None)
    if shape != cache.Z.shape:
        raise ShapeError(f"{where}: dZ_tilde must have the shape {cache.Z.shape} of Z_tilde "
                         f"(a gradient has the shape of what it differentiates); got {shape}")


def batchnorm_backward_staged(dZ_tilde, cache, convention="L"):
    """The backward one stage at a time, ``Z_tilde -> Z_hat -> s -> sigma^2 -> mu -> Z``.

    Each line differentiates one line of the forward (``D = Z - mu``)::

        dZ_hat = gamma * dZ_tilde
        dD     = dZ_hat / s                         (through Z_hat = D / s)
        ds     = -sum_k dZ_hat * D / s^2            (through Z_hat = D / s)
        dvar   = ds / (2 s)                         (s = sqrt(var + eps))
        dD    += (2/m) D * dvar                     (var = (1/m) sum_k D^2)
        dmu    = -sum_k dD                          (D = Z - mu)
        dZ     = dD + dmu / m                       (mu = (1/m) sum_k Z)

    Returns ``(dZ, dgamma, dbeta)``; ``dgamma``, ``dbeta`` carry ``1/m`` in convention "L".
    :func:`batchnorm_backward` is the same map written compactly.
    """
    _check_convention(convention)
    _check_dZ_tilde(dZ_tilde, cache, "batchnorm_backward_staged")
    Z, Z_hat, mu, var, s, gamma = cache.Z, cache.Z_hat, cache.mu, cache.var, cache.s, cache.gamma
    m = Z.shape[1]
    dbeta = np.sum(dZ_tilde, axis=1, keepdims=True)
    dgamma = np.sum(dZ_tilde * Z_hat, axis=1, keepdims=True)
    D = Z - mu
    dZ_hat = gamma * dZ_tilde
    dD = dZ_hat / s
    ds = -np.sum(dZ_hat * D, axis=1, keepdims=True) / s ** 2
    dvar = ds / (2 * s)
    dD = dD + (2 / m) * D * dvar
    dmu = -np.sum(dD, axis=1, keepdims=True)
    dZ = dD + dmu / m
    if convention == "L":
        dgamma, dbeta = dgamma / m, dbeta / m
    return dZ, dgamma, dbeta


def batchnorm_backward(dZ_tilde, cache, convention="L"):
    """``dZ = (gamma / (m s)) * (m dZ_tilde - sum_k dZ_tilde - Z_hat * sum_k dZ_tilde Z_hat)``.

    The compact form of :func:`batchnorm_backward_staged` (the one a compiled kernel
    computes). In convention "J" the two sums are ``dbeta`` and ``dgamma``. In "L" they carry
    the ``1/m`` of ``dW`` (``dbeta = (1/m) sum_k dZ_tilde``, ``dgamma = (1/m) sum_k dZ_tilde
    Z_hat``), so there ``dZ = (gamma / s) * (dZ_tilde - dbeta - Z_hat * dgamma)``: the same
    linear map of ``dZ_tilde`` in both conventions. Returns ``(dZ, dgamma, dbeta)`` with the
    shapes of ``Z``, ``gamma``, ``beta``.
    """
    _check_convention(convention)
    _check_dZ_tilde(dZ_tilde, cache, "batchnorm_backward")
    Z_hat, s, gamma = cache.Z_hat, cache.s, cache.gamma
    m = Z_hat.shape[1]
    dbeta = np.sum(dZ_tilde, axis=1, keepdims=True)
    dgamma = np.sum(dZ_tilde * Z_hat, axis=1, keepdims=True)
    dZ = (gamma / (m * s)) * (m * dZ_tilde - dbeta - Z_hat * dgamma)
    if convention == "L":
        dgamma, dbeta = dgamma / m, dbeta / m
    return dZ, dgamma, dbeta


def batchnorm_jacobian(cache, i):
    """The m x m block ``dZ_tilde[i, j] / dZ[i, k] = (gamma_i / s_i)(delta_jk - 1/m - Z_hat[i, j]
    Z_hat[i, k] / m)`` of unit ``i`` (row j, column k); the blocks between two units are zero."""
    Z_hat, s, gamma = cache.Z_hat, cache.s, cache.gamma
    m = Z_hat.shape[1]
    z = Z_hat[i]
    return (gamma[i, 0] / s[i, 0]) * (np.eye(m) - 1 / m - np.outer(z, z) / m)


def batchnorm_forward_eval(Z, gamma, beta, running_mean, running_var, eps=BATCHNORM_EPSILON):
    """Eval mode: ``Z_tilde = gamma * (Z - mu_hat) / sqrt(var_hat + eps) + beta`` with the
    running statistics (each example on its own: any m, 1 included)."""
    Z_shape = getattr(Z, "shape", None)
    _check_batchnorm(Z_shape, gamma, beta, "batchnorm_forward_eval", training=False)
    _check_batchnorm(Z_shape, running_mean, running_var, "batchnorm_forward_eval",
                     training=False, names=("running_mean", "running_var"))
    return gamma * (Z - running_mean) / np.sqrt(running_var + eps) + beta


def batchnorm_running_update(running_mean, running_var, cache, beta=BATCHNORM_BETA,
                             unbiased=True):
    """``mu_hat <- beta mu_hat + (1 - beta) mu``, ``var_hat <- beta var_hat + (1 - beta) v``.

    ``v`` is the batch's unbiased variance ``m/(m-1) sigma^2`` (the paper's inference rule,
    and PyTorch's), or ``sigma^2`` itself with ``unbiased=False``. ``beta`` is the course's
    (PyTorch's ``momentum = 1 - beta``). Returns the new ``(running_mean, running_var)``.
    """
    m = cache.Z.shape[1]
    var = cache.var * (m / (m - 1)) if unbiased else cache.var
    return (beta * running_mean + (1 - beta) * cache.mu,
            beta * running_var + (1 - beta) * var)


def linear_batchnorm_activation_forward(A_prev, W, gamma, beta, activation,
                                        eps=BATCHNORM_EPSILON, running=None):
    """``Z = W A_prev``; ``Z_tilde`` = batch norm of ``Z``; ``A = g(Z_tilde)`` (no ``b``: beta
    replaces it). Returns ``(A, cache)``, ``cache = ((A_prev, W, None), Z_tilde, bn_cache)``.

    ``running = (running_mean, running_var)`` gives the eval-mode forward (``bn_cache`` is
    then None: eval mode has no backward here).
    """
    Z = W @ A_prev
    if running is None:
        Z_tilde, bn_cache = batchnorm_forward(Z, gamma, beta, eps)
    else:
        Z_tilde, bn_cache = batchnorm_forward_eval(Z, gamma, beta, *running, eps), None
    A = activation_forward(Z_tilde, activation)
    return A, ((A_prev, W, None), Z_tilde, bn_cache)


def linear_batchnorm_activation_backward(dA, cache, activation, convention="L", lambd=0.0):
    """``dZ_tilde = dA * g'(Z_tilde)``, :func:`batchnorm_backward`, then :func:`linear_backward`.

    Returns ``(dA_prev, dW, dgamma, dbeta)``.
    """
    linear_cache, Z_tilde, bn_cache = cache
    dZ_tilde = activation_backward(dA, Z_tilde, activation)
    dZ, dgamma, dbeta = batchnorm_backward(dZ_tilde, bn_cache, convention)
    dA_prev, dW, _ = linear_backward(dZ, linear_cache, convention, lambd)
    return dA_prev, dW, dgamma, dbeta


def batch_norm_layers(parameters):
    """The layers ``l`` whose parameters hold ``gamma{l}`` (batch normalization), in order."""
    L = _n_layers(parameters)
    return [l for l in range(1, L + 1) if f"gamma{l}" in parameters]


def initialize_running_statistics(parameters):
    """``running_mean{l} = 0`` and ``running_var{l} = 1``, shape ``(n[l], 1)``, for every
    batch-norm layer (PyTorch's and Keras's start)."""
    running = {}
    for l in batch_norm_layers(parameters):
        gamma = parameters[f"gamma{l}"]
        running[f"running_mean{l}"] = np.zeros_like(gamma)
        running[f"running_var{l}"] = np.ones_like(gamma)
    return running


def update_running_statistics(running, caches, beta=BATCHNORM_BETA, unbiased=True):
    """:func:`batchnorm_running_update` for every batch-norm layer of a training-mode
    :func:`model_forward`'s ``caches``; returns a new dict (``running`` is left as it was)."""
    new = dict(running)
    for l, cache in enumerate(caches, start=1):
        if len(cache) == 3:
            if cache[2] is None:
                raise InputError(f"layer {l}: these caches come from an eval-mode forward "
                                 "(training=False); the running statistics are updated from "
                                 "a training-mode forward's batch statistics")
            new[f"running_mean{l}"], new[f"running_var{l}"] = batchnorm_running_update(
                running[f"running_mean{l}"], running[f"running_var{l}"], cache[2], beta,
                unbiased)
    return new


def _resolve_activations(activations, L):
    if activations is None:
        return ["relu"] * (L - 1) + ["sigmoid"]
    activations = list(activations)
    if len(activations) != L:
        raise ValueError(f"expected {L} activations (one per layer), got {len(activations)}")
    return activations


def _n_layers(parameters):
    """L, the number of ``W{l}`` (a batch-norm layer has ``W, gamma, beta`` and no ``b``)."""
    return sum(1 for key in parameters if key[:1] == "W" and key[1:].isdigit())


def _batchnorm_layer_check(parameters, l, A_prev, running):
    """A batch-norm layer's parameters (and running statistics) fit, named by layer."""
    W, gamma, beta = parameters[f"W{l}"], parameters[f"gamma{l}"], parameters[f"beta{l}"]
    Z_shape = (W.shape[0], A_prev.shape[1])
    if f"b{l}" in parameters:
        raise InputError(f"layer {l} has gamma{l} and b{l}: a batch-norm layer drops its b "
                         f"(beta{l} replaces it, and sum_k dZ = 0 would make db{l} = 0)")
    where = f"layer {l} (batch norm)"
    _check_batchnorm(Z_shape, gamma, beta, where, training=running is None,
                     names=(f"gamma{l}", f"beta{l}"))
    if running is not None:
        keys = (f"running_mean{l}", f"running_var{l}")
        missing = [k for k in keys if k not in running]
        if missing:
            raise InputError(f"{where}: the eval-mode forward needs the running statistics "
                             f"{', '.join(missing)}")
        _check_batchnorm(Z_shape, running[keys[0]], running[keys[1]], where,
                         training=False, names=keys)


def model_forward(X, parameters, activations=None, dropout_masks=None, training=True,
                  running=None, epsilon=BATCHNORM_EPSILON):
    """Forward pass over all layers. Returns ``(AL, caches)``, one cache per layer.

    ``activations`` has one entry per layer (default: ReLU hidden, sigmoid output, as
    the course's ``L_model_forward``). ``dropout_masks``, if given, maps a layer
    ``l`` to the *scaled* inverted-dropout mask ``D[l] / keep_prob[l]`` applied as
    ``A[l] = A[l] * (D[l] / keep_prob[l])`` after the activation.

    A layer with ``gamma{l}`` and ``beta{l}`` (and no ``b{l}``) is batch-normalized
    (linear, batch norm, activation, dropout; ``epsilon`` inside the square root). In
    training (default) it uses the batch's statistics, and its cache holds them
    (:func:`update_running_statistics` then updates the running averages). With
    ``training=False`` it uses ``running``'s ``running_mean{l}`` and ``running_var{l}``
    (:func:`initialize_running_statistics`) instead: the eval-mode forward, for predictions.
    """
    L = _n_layers(parameters)
    activations = _resolve_activations(activations, L)
    if not training and running is None and batch_norm_layers(parameters):
        raise InputError("the eval-mode forward (training=False) of a network with batch "
                         "norm needs running= (running_mean{l}, running_var{l})")
    caches = []
    A = X
    for l in range(1, L + 1):
        if f"gamma{l}" in parameters:
            _batchnorm_layer_check(parameters, l, A, None if training else running)
            stats = None if training else (running[f"running_mean{l}"],
                                           running[f"running_var{l}"])
            A, cache = linear_batchnorm_activation_forward(
                A, parameters[f"W{l}"], parameters[f"gamma{l}"], parameters[f"beta{l}"],
                activations[l - 1], epsilon, stats)
        else:
            A, cache = linear_activation_forward(A, parameters[f"W{l}"], parameters[f"b{l}"],
                                                 activations[l - 1])
        if dropout_masks is not None and dropout_masks.get(l) is not None:
            A = A * dropout_masks[l]
        caches.append(cache)
    return A, caches


def cost_derivative(AL, Y, loss):
    """``dAL``, the derivative of the per-example losses with respect to ``AL`` (convention "L").

    binary CE: ``-(Y/AL - (1-Y)/(1-AL))``; categorical CE: ``-Y/AL``; MSE: ``AL - Y``.
    """
    if loss == "binary_crossentropy":
        return -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    if loss == "categorical_crossentropy":
        return -np.divide(Y, AL)
    if loss == "mean_squared_error":
        return AL - Y
    raise ValueError(f"unknown loss {loss!r}")


def output_delta(AL, Y, ZL, activation, loss, convention="L", from_dAL=False):
    """``dZ[L]``: ``A[L] - Y`` for the fused pairs, else ``dAL * g'(Z[L])``; divided by m in "J"."""
    m = AL.shape[1]
    name, _ = parse_activation(activation)
    if not from_dAL and (name, loss) in FUSED_OUTPUT_LOSS:
        dZ = AL - Y
        return dZ / m if convention == "J" else dZ
    dAL = cost_derivative(AL, Y, loss)
    if convention == "J":
        dAL = dAL / m
    return activation_backward(dAL, ZL, activation)


def model_backward(AL, Y, caches, activations=None, loss="binary_crossentropy", convention="L",
                   from_dAL=False, dropout_masks=None, lambd=0.0):
    """Backward pass. Returns a dict with the course's keys ``dA0..dA{L-1}``, ``dZ1..dZL``,
    ``dW1..dWL``, ``db1..dbL``.

    By default ``dZ[L] = A[L] - Y`` for the fused pairs (sigmoid + binary CE, softmax +
    categorical CE, identity + MSE); with ``from_dAL=True`` (or for other pairs) the pass
    starts from ``dAL`` (:func:`cost_derivative`) and ``dZ[L] = dAL * g'(Z[L])``, as the
    course's ``L_model_backward``. In convention "J" the start is divided by ``m``.

    ``dropout_masks`` (the ones used forward) are applied to each ``dA[l]``;
    ``lambd`` adds the L2 term ``(lambd/m) W[l]`` to every ``dW[l]`` (never to gamma).

    A batch-norm layer (its cache a triple, from a training-mode :func:`model_forward`)
    gives ``dZ_tilde{l}`` (what reached batch norm), ``dZ{l}`` (what left it, for ``Z = W
    A_prev``), ``dgamma{l}`` and ``dbeta{l}`` instead of ``db{l}``.
    """
    L = len(caches)
    activations = _resolve_activations(activations, L)
    m = AL.shape[1]
    grads = {}
    dZ = output_delta(AL, Y, caches[-1][1], activations[-1], loss, convention, from_dAL)
    for l in range(L, 0, -1):
        linear_cache, Z = caches[l - 1][:2]
        if l < L:
            dA = grads[f"dA{l}"]
            if dropout_masks is not None and dropout_masks.get(l) is not None:
                dA = dA * dropout_masks[l]
                grads[f"dA{l}"] = dA
            dZ = activation_backward(dA, Z, activations[l - 1])
        if len(caches[l - 1]) == 3:  # batch norm: dZ above is dZ_tilde
            bn_cache = caches[l - 1][2]
            if bn_cache is None:
                raise InputError(f"layer {l}: these caches come from an eval-mode forward "
                                 "(training=False); the backward needs a training-mode "
                                 "forward's batch statistics")
            grads[f"dZ_tilde{l}"] = dZ
            dZ, grads[f"dgamma{l}"], grads[f"dbeta{l}"] = batchnorm_backward(dZ, bn_cache,
                                                                             convention)
        dA_prev, dW, db = linear_backward(dZ, linear_cache, convention, lambd)
        grads[f"dZ{l}"] = dZ
        grads[f"dA{l - 1}"] = dA_prev
        grads[f"dW{l}"] = dW
        if len(caches[l - 1]) == 2:  # a batch-norm layer has no b
            grads[f"db{l}"] = db
    return grads


# --------------------------------------------------------------------------- cost

def _clip_probability(A):
    eps = np.finfo(A.dtype).eps if np.issubdtype(A.dtype, np.floating) else np.finfo(float).eps
    return np.clip(A, eps, 1 - eps)


def compute_cost(AL, Y, loss="binary_crossentropy", sample_weight=None):
    """The cost ``J`` (a Python float) for ``AL, Y`` of shape ``(n[L], m)``; see the module docstring.

    With ``sample_weight`` ``w`` (shape ``(m,)``) the mean becomes the weighted mean
    ``J = (1 / sum_k w_k) sum_k w_k L(a_k, y_k)`` of :func:`example_losses`.
    """
    if sample_weight is not None:
        w = np.asarray(sample_weight)
        return float(np.dot(w, example_losses(AL, Y, loss)) / np.sum(w))
    m = Y.shape[1]
    if loss == "binary_crossentropy":
        A = _clip_probability(AL)
        cost = -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A)) / m
    elif loss == "categorical_crossentropy":
        A = _clip_probability(AL)
        cost = -np.sum(Y * np.log(A)) / m
    elif loss == "mean_squared_error":
        cost = np.sum((AL - Y) ** 2) / (2 * m)
    else:
        raise ValueError(f"unknown loss {loss!r}")
    return float(cost)


def example_losses(AL, Y, loss="binary_crossentropy"):
    """The per-example losses ``L(a_k, y_k)``, shape ``(m,)``: the terms whose mean is ``J``."""
    if loss == "binary_crossentropy":
        A = _clip_probability(AL)
        return -np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A), axis=0)
    if loss == "categorical_crossentropy":
        return -np.sum(Y * np.log(_clip_probability(AL)), axis=0)
    if loss == "mean_squared_error":
        return np.sum((AL - Y) ** 2, axis=0) / 2
    raise ValueError(f"unknown loss {loss!r}")


def l2_cost(parameters, lambd, m):
    """The L2 term of the cost, ``(lambd / (2m)) sum_l ||W[l]||_F^2``."""
    L = sum(1 for key in parameters if key.startswith("W"))  # the b's may be absent
    return float(lambd / (2 * m) * sum(np.sum(np.square(parameters[f"W{l}"]))
                                       for l in range(1, L + 1)))


# --------------------------------------------------------------------------- initialisation

def _init_scale(init, n_prev):
    if init == "random":
        return 0.01
    if init == "he":
        return np.sqrt(2.0 / n_prev)
    if init == "xavier":
        return np.sqrt(1.0 / n_prev)
    raise ValueError(f"unknown initializer {init!r}")


def initialize_parameters(layer_dims, init="he", rng=None, legacy_seed=None, dtype=np.float64,
                          batch_norm=False):
    """``W[l]`` of shape ``(n[l], n[l-1])`` and ``b[l] = 0`` of shape ``(n[l], 1)``.

    ``init``: ``"zeros"``; ``"random"`` (``randn * 0.01``); ``"he"`` (``randn * sqrt(2/n[l-1])``);
    ``"xavier"`` (``randn * sqrt(1/n[l-1])``); ``"glorot_uniform"``
    (``U(-r, r)`` with ``r = sqrt(6 / (n[l-1] + n[l]))``).

    Draws come from ``rng`` (a ``numpy.random.Generator``; default ``default_rng(0)``).
    With ``legacy_seed`` they come exactly as in the course instead:
    ``np.random.seed(legacy_seed)`` once, then ``np.random.randn(n[l], n[l-1]) * factor``
    layer by layer (this reseeds NumPy's global generator, as the course does).

    ``batch_norm``: ``True`` for every hidden layer, or one bool per hidden layer. A
    batch-norm layer gets ``gamma[l] = 1`` and ``beta[l] = 0`` of shape ``(n[l], 1)`` instead
    of ``b[l]``; the ``W`` draws are the same either way.
    """
    dtype = np.dtype(dtype)
    n_hidden = len(layer_dims) - 2
    if isinstance(batch_norm, (bool, np.bool_)):
        batch_norm = [bool(batch_norm)] * n_hidden
    batch_norm = list(batch_norm)
    if len(batch_norm) != n_hidden:
        raise InputError(f"batch_norm: one bool per hidden layer, {n_hidden} for layer_dims "
                         f"{list(layer_dims)}; got {len(batch_norm)}")
    batch_norm = batch_norm + [False]  # the output layer keeps its b
    if legacy_seed is not None:
        np.random.seed(legacy_seed)
        draw_normal = np.random.randn
        draw_uniform = lambda r, shape: np.random.uniform(-r, r, size=shape)  # noqa: E731
    else:
        rng = np.random.default_rng(0) if rng is None else rng
        draw_normal = lambda *shape: rng.standard_normal(shape)  # noqa: E731
        draw_uniform = lambda r, shape: rng.uniform(-r, r, size=shape)  # noqa: E731
    parameters = {}
    for l in range(1, len(layer_dims)):
        n, n_prev = layer_dims[l], layer_dims[l - 1]
        if init == "zeros":
            W = np.zeros((n, n_prev))
        elif init == "glorot_uniform":
            W = draw_uniform(np.sqrt(6.0 / (n_prev + n)), (n, n_prev))
        else:
            W = draw_normal(n, n_prev) * _init_scale(init, n_prev)
        parameters[f"W{l}"] = np.ascontiguousarray(W, dtype=dtype)
        if batch_norm[l - 1]:
            parameters[f"gamma{l}"] = np.ones((n, 1), dtype=dtype)
            parameters[f"beta{l}"] = np.zeros((n, 1), dtype=dtype)
        else:
            parameters[f"b{l}"] = np.zeros((n, 1), dtype=dtype)
    return parameters


def update_parameters_with_gd(parameters, grads, learning_rate):
    """``W[l] = W[l] - lr dW[l]``, ``b[l] = b[l] - lr db[l]`` (and ``gamma``, ``beta`` of a
    batch-norm layer likewise); returns a new dict."""
    return {key: value - learning_rate * grads[f"d{key}"] for key, value in parameters.items()}


# --------------------------------------------------------------------------- gradient check

def dictionary_to_vector(parameters):
    """Flatten ``W1, b1, W2, b2, ...`` into one column vector; returns ``(theta, keys, shapes)``.

    A batch-norm layer contributes ``W{l}, gamma{l}, beta{l}``."""
    L = _n_layers(parameters)
    keys = [k for l in range(1, L + 1) for k in (f"W{l}", f"b{l}", f"gamma{l}", f"beta{l}")
            if k in parameters]
    shapes = [parameters[k].shape for k in keys]
    theta = np.concatenate([parameters[k].reshape(-1) for k in keys]).reshape(-1, 1)
    return theta, keys, shapes


def vector_to_dictionary(theta, keys, shapes):
    """Inverse of :func:`dictionary_to_vector`."""
    out, i = {}, 0
    for k, shape in zip(keys, shapes):
        size = int(np.prod(shape))
        out[k] = theta[i:i + size].reshape(shape)
        i += size
    return out


def central_difference(F, theta, epsilon=1e-7):
    """``D[i] = (F(theta + eps e_i) - F(theta - eps e_i)) / (2 eps)`` for each entry i of theta.

    ``F`` maps an array shaped like ``theta`` to a scalar or an array; ``D`` has shape
    ``(theta.size,) + shape of F(theta)``, entries in ``theta``'s C order. For a scalar
    ``F`` this is the course's ``gradapprox``; for an array ``F``, ``D.T`` (after flattening
    F) is the Jacobian in numerator layout.
    """
    theta = np.asarray(theta)
    rows = []
    for i in range(theta.size):
        plus, minus = theta.copy(), theta.copy()
        plus.reshape(-1)[i] += epsilon
        minus.reshape(-1)[i] -= epsilon
        rows.append((np.asarray(F(plus)) - np.asarray(F(minus))) / (2 * epsilon))
    return np.array(rows)


def gradient_check(parameters, X, Y, activations=None, loss="binary_crossentropy",
                   epsilon=1e-7, lambd=0.0):
    """The course's two-sided gradient check over every parameter (batch-norm layers in
    training mode included: their ``gamma``, ``beta`` are checked too).

    ``gradapprox[i] = (J(theta + eps e_i) - J(theta - eps e_i)) / (2 eps)`` and
    ``difference = ||grad - gradapprox|| / (||grad|| + ||gradapprox||)``.
    Runs in float64 on an upcast copy. Returns ``(difference, report)`` where
    ``report[key]`` holds that parameter's own relative difference, the worst entry's
    index and its analytic and numeric values.
    """
    parameters = {k: np.asarray(v, dtype=np.float64) for k, v in parameters.items()}
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    m = X.shape[1]

    def J(params):
        AL, _ = model_forward(X, params, activations)
        cost = compute_cost(AL, Y, loss)
        return cost + (l2_cost(params, lambd, m) if lambd else 0.0)

    AL, caches = model_forward(X, parameters, activations)
    grads = model_backward(AL, Y, caches, activations, loss, convention="L", lambd=lambd)
    theta, keys, shapes = dictionary_to_vector(parameters)
    grad = np.concatenate([grads["d" + k].reshape(-1) for k in keys]).reshape(-1, 1)
    gradapprox = central_difference(lambda t: J(vector_to_dictionary(t, keys, shapes)), theta,
                                    epsilon).reshape(-1, 1)
    difference = relative_difference(grad, gradapprox)
    report, i = {}, 0
    for k, shape in zip(keys, shapes):
        size = int(np.prod(shape))
        g, ga = grad[i:i + size, 0], gradapprox[i:i + size, 0]
        worst = int(np.argmax(np.abs(g - ga)))
        report[k] = {
            "difference": relative_difference(g, ga),
            "worst_index": tuple(int(x) for x in np.unravel_index(worst, shape)),
            "analytic": float(g[worst]),
            "numeric": float(ga[worst]),
        }
        i += size
    return difference, report


def relative_difference(g, ga):
    """``||g - ga|| / (||g|| + ||ga||)`` (0 when both are zero), the course's ``difference``."""
    numerator = np.linalg.norm(g - ga)
    denominator = np.linalg.norm(g) + np.linalg.norm(ga)
    return float(numerator / denominator) if denominator else 0.0


# --------------------------------------------------------------------------- predictions

def predict(AL, activation):
    """The prediction of an output: ``A > 0.5`` (0/1, sigmoid), the class index ``argmax_i
    A[i, k]`` (softmax), or ``A`` itself (``spec.ACTIVATIONS[name].predicts``)."""
    rule = _spec.ACTIVATIONS[parse_activation(activation)[0]].predicts
    if rule == "threshold":
        return (AL > 0.5).astype(np.int64)
    if rule == "argmax":
        return np.argmax(AL, axis=0)
    return AL


def score(AL, Y, activation, predictions=None):
    """Accuracy of :func:`predict` for a 1-unit threshold or an argmax output (``Y`` 0/1 or
    one-hot); otherwise R² of ``predictions`` (default ``AL``) against ``Y``.
    ``predictions``: :func:`predict` of ``AL``, when the caller has it already."""
    rule = _spec.ACTIVATIONS[parse_activation(activation)[0]].predicts
    if rule == "threshold" and AL.shape[0] == 1:
        return float(np.mean((AL > 0.5) == Y))
    if rule == "argmax":
        labels = np.argmax(AL, axis=0) if predictions is None else predictions
        return float(np.mean(labels == np.argmax(Y, axis=0)))
    return r_squared(Y, AL if predictions is None else predictions)


def r_squared(Y, P):
    """``R² = 1 - Σ(Y - P)² / Σ(Y - mean(Y))²`` (0 when ``Y`` is constant)."""
    residual = np.sum((Y - P) ** 2)
    total = np.sum((Y - Y.mean(axis=1, keepdims=True)) ** 2)
    return float(1 - residual / total) if total else 0.0
