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
``linear_cache = (A_prev, W, b)`` and ``activation_cache = Z``.
"""

from __future__ import annotations

import numpy as np

from . import spec as _spec

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


def _resolve_activations(activations, L):
    if activations is None:
        return ["relu"] * (L - 1) + ["sigmoid"]
    activations = list(activations)
    if len(activations) != L:
        raise ValueError(f"expected {L} activations (one per layer), got {len(activations)}")
    return activations


def model_forward(X, parameters, activations=None, dropout_masks=None):
    """Forward pass over all layers. Returns ``(AL, caches)``, one cache per layer.

    ``activations`` has one entry per layer (default: ReLU hidden, sigmoid output, as
    the course's ``L_model_forward``). ``dropout_masks``, if given, maps a layer
    ``l`` to the *scaled* inverted-dropout mask ``D[l] / keep_prob[l]`` applied as
    ``A[l] = A[l] * (D[l] / keep_prob[l])`` after the activation.
    """
    L = len(parameters) // 2
    activations = _resolve_activations(activations, L)
    caches = []
    A = X
    for l in range(1, L + 1):
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
    ``lambd`` adds the L2 term ``(lambd/m) W[l]`` to every ``dW[l]``.
    """
    L = len(caches)
    activations = _resolve_activations(activations, L)
    m = AL.shape[1]
    grads = {}
    dZ = output_delta(AL, Y, caches[-1][1], activations[-1], loss, convention, from_dAL)
    for l in range(L, 0, -1):
        linear_cache, Z = caches[l - 1]
        if l < L:
            dA = grads[f"dA{l}"]
            if dropout_masks is not None and dropout_masks.get(l) is not None:
                dA = dA * dropout_masks[l]
                grads[f"dA{l}"] = dA
            dZ = activation_backward(dA, Z, activations[l - 1])
        dA_prev, dW, db = linear_backward(dZ, linear_cache, convention, lambd)
        grads[f"dZ{l}"] = dZ
        grads[f"dA{l - 1}"] = dA_prev
        grads[f"dW{l}"] = dW
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


def initialize_parameters(layer_dims, init="he", rng=None, legacy_seed=None, dtype=np.float64):
    """``W[l]`` of shape ``(n[l], n[l-1])`` and ``b[l] = 0`` of shape ``(n[l], 1)``.

    ``init``: ``"zeros"``; ``"random"`` (``randn * 0.01``); ``"he"`` (``randn * sqrt(2/n[l-1])``);
    ``"xavier"`` (``randn * sqrt(1/n[l-1])``); ``"glorot_uniform"``
    (``U(-r, r)`` with ``r = sqrt(6 / (n[l-1] + n[l]))``).

    Draws come from ``rng`` (a ``numpy.random.Generator``; default ``default_rng(0)``).
    With ``legacy_seed`` they come exactly as in the course instead:
    ``np.random.seed(legacy_seed)`` once, then ``np.random.randn(n[l], n[l-1]) * factor``
    layer by layer (this reseeds NumPy's global generator, as the course does).
    """
    dtype = np.dtype(dtype)
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
        parameters[f"b{l}"] = np.zeros((n, 1), dtype=dtype)
    return parameters


def update_parameters_with_gd(parameters, grads, learning_rate):
    """``W[l] = W[l] - lr dW[l]``, ``b[l] = b[l] - lr db[l]``; returns a new dict."""
    L = len(parameters) // 2
    new = {}
    for l in range(1, L + 1):
        new[f"W{l}"] = parameters[f"W{l}"] - learning_rate * grads[f"dW{l}"]
        new[f"b{l}"] = parameters[f"b{l}"] - learning_rate * grads[f"db{l}"]
    return new


# --------------------------------------------------------------------------- gradient check

def dictionary_to_vector(parameters):
    """Flatten ``W1, b1, W2, b2, ...`` into one column vector; returns ``(theta, keys, shapes)``."""
    L = len(parameters) // 2
    keys = [k for l in range(1, L + 1) for k in (f"W{l}", f"b{l}")]
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
    """The course's two-sided gradient check over every parameter.

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
    one-hot); otherwise R² of ``predictions`` (default ``AL``) against ``Y``."""
    rule = _spec.ACTIVATIONS[parse_activation(activation)[0]].predicts
    if rule == "threshold" and AL.shape[0] == 1:
        return float(np.mean((AL > 0.5) == Y))
    if rule == "argmax":
        return float(np.mean(np.argmax(AL, axis=0) == np.argmax(Y, axis=0)))
    return r_squared(Y, AL if predictions is None else predictions)


def r_squared(Y, P):
    """``R² = 1 - Σ(Y - P)² / Σ(Y - mean(Y))²`` (0 when ``Y`` is constant)."""
    residual = np.sum((Y - P) ** 2)
    total = np.sum((Y - Y.mean(axis=1, keepdims=True)) ** 2)
    return float(1 - residual / total) if total else 0.0
