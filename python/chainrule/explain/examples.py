"""A catalogue of backward functions written as a learner would, one mistake each.

They are the doctor's test cases and its demonstration (``chainrule doctor --demo``).
``CATALOGUE`` maps a name to ``(function, kind, expected mistake codes)``; the ``correct_*``
functions are course-style code that must get a clean bill.

Written deliberately in the course's style (``np.dot``, ``cache`` unpacking, helper
functions), not with the reference's functions, so that the doctor is tested on code it
did not write.
"""

# ruff: noqa: N802, N803, N806  (the course's names: L_model_backward, dZ, A_prev, ...)

from __future__ import annotations

import numpy as np

from .course_style import relu_backward, sigmoid, sigmoid_backward, tanh_backward  # noqa: F401


# --------------------------------------------------------------------------- course helpers

def _backward_for(activation):
    return {"relu": relu_backward, "sigmoid": sigmoid_backward, "tanh": tanh_backward}[activation]


# --------------------------------------------------------------------------- linear_backward

def correct_linear_backward(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(dZ, A_prev.T)
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ)
    return dA_prev, dW, db


def linear_backward_missing_1_over_m(dZ, cache):
    A_prev, W, b = cache
    dW = np.dot(dZ, A_prev.T)
    db = np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ)
    return dA_prev, dW, db


def linear_backward_extra_1_over_m(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(dZ, A_prev.T)
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = 1 / m * np.dot(W.T, dZ)
    return dA_prev, dW, db


def linear_backward_double_1_over_m(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dZ = dZ / m  # "dZ should be averaged too"
    dW = 1 / m * np.dot(dZ, A_prev.T)
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ * m)
    return dA_prev, dW, db


def linear_backward_transposed_dW(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(A_prev, dZ.T)
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ)
    return dA_prev, dW, db


def linear_backward_missing_transpose(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(dZ, A_prev.T)
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W, dZ)
    return dA_prev, dW, db


def linear_backward_sum_wrong_axis(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(dZ, A_prev.T)
    db = 1 / m * np.sum(dZ, axis=0, keepdims=True)
    dA_prev = np.dot(W.T, dZ)
    return dA_prev, dW, db


def linear_backward_missing_keepdims(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(dZ, A_prev.T)
    db = 1 / m * np.sum(dZ, axis=1)
    dA_prev = np.dot(W.T, dZ)
    return dA_prev, dW, db


def linear_backward_wrong_m(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[0]  # the rows are the units, not the examples
    dW = 1 / m * np.dot(dZ, A_prev.T)
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ)
    return dA_prev, dW, db


def linear_backward_elementwise(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1 / m * dZ * A_prev.T  # * is not the matrix product
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ)
    return dA_prev, dW, db


def linear_backward_two_outputs(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(dZ, A_prev.T)
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    return dW, db


def linear_backward_raises(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(dZ, A_prev.T)
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dz)  # noqa: F821  (a typo: dz for dZ)
    return dA_prev, dW, db


# ----------------------------------------------------------------- linear_activation_backward

def correct_linear_activation_backward(dA, cache, activation):
    linear_cache, activation_cache = cache
    if activation == "relu":
        dZ = relu_backward(dA, activation_cache)
    elif activation == "sigmoid":
        dZ = sigmoid_backward(dA, activation_cache)
    elif activation == "tanh":
        dZ = tanh_backward(dA, activation_cache)
    dA_prev, dW, db = correct_linear_backward(dZ, linear_cache)
    return dA_prev, dW, db


def linear_activation_backward_g_prime_at_A(dA, cache, activation):
    linear_cache, Z = cache
    if activation == "relu":
        dZ = relu_backward(dA, Z)
    else:
        A = sigmoid(Z)
        dZ = sigmoid_backward(dA, A)  # the derivative evaluated at A
    return correct_linear_backward(dZ, linear_cache)


def linear_activation_backward_tanh_for_sigmoid(dA, cache, activation):
    linear_cache, Z = cache
    if activation == "relu":
        dZ = relu_backward(dA, Z)
    else:
        dZ = dA * (1 - np.tanh(Z) ** 2)
    return correct_linear_backward(dZ, linear_cache)


def linear_activation_backward_sigmoid_of_Z_formula(dA, cache, activation):
    linear_cache, Z = cache
    if activation == "relu":
        dZ = relu_backward(dA, Z)
    else:
        dZ = dA * Z * (1 - Z)  # "sigmoid'(z) = a(1 - a)", written with the cache's Z
    return correct_linear_backward(dZ, linear_cache)


def linear_activation_backward_relu_mask_on_dA(dA, cache, activation):
    linear_cache, Z = cache
    if activation == "relu":
        dZ = np.array(dA, copy=True)
        dZ[dA <= 0] = 0
    else:
        dZ = sigmoid_backward(dA, Z)
    return correct_linear_backward(dZ, linear_cache)


def linear_activation_backward_dA_for_dZ(dA, cache, activation):
    linear_cache, activation_cache = cache
    if activation == "relu":
        dZ = relu_backward(dA, activation_cache)  # noqa: F841  (computed, then not used)
    else:
        dZ = sigmoid_backward(dA, activation_cache)  # noqa: F841
    dA_prev, dW, db = correct_linear_backward(dA, linear_cache)  # dA where dZ belongs
    return dA_prev, dW, db


def linear_activation_backward_in_place(dA, cache, activation):
    linear_cache, Z = cache
    if activation == "relu":
        dZ = dA  # no copy: the mask writes into dA
        dZ[Z <= 0] = 0
    else:
        dZ = sigmoid_backward(dA, Z)
    return correct_linear_backward(dZ, linear_cache)


def linear_activation_backward_wrong_order(dA, cache, activation):
    dA_prev, dW, db = correct_linear_activation_backward(dA, cache, activation)
    return dW, db, dA_prev


# --------------------------------------------------------------------------- L_model_backward

def correct_L_model_backward(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    current_cache = caches[L - 1]
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = \
        correct_linear_activation_backward(dAL, current_cache, "sigmoid")
    for l in reversed(range(L - 1)):
        current_cache = caches[l]
        dA_prev_temp, dW_temp, db_temp = correct_linear_activation_backward(
            grads["dA" + str(l + 1)], current_cache, "relu")
        grads["dA" + str(l)] = dA_prev_temp
        grads["dW" + str(l + 1)] = dW_temp
        grads["db" + str(l + 1)] = db_temp
    return grads


def L_model_backward_wrong_cache(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    current_cache = caches[L - 1]
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = \
        correct_linear_activation_backward(dAL, current_cache, "sigmoid")
    for l in reversed(range(L - 1)):
        current_cache = caches[l + 1]  # layer l + 1 is caches[l]
        dA_prev_temp, dW_temp, db_temp = correct_linear_activation_backward(
            grads["dA" + str(l + 1)], current_cache, "relu")
        grads["dA" + str(l)] = dA_prev_temp
        grads["dW" + str(l + 1)] = dW_temp
        grads["db" + str(l + 1)] = db_temp
    return grads


def L_model_backward_A_minus_Y_as_dAL(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = AL - Y  # this is dZ[L], not dA[L]
    current_cache = caches[L - 1]
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = \
        correct_linear_activation_backward(dAL, current_cache, "sigmoid")
    for l in reversed(range(L - 1)):
        dA_prev_temp, dW_temp, db_temp = correct_linear_activation_backward(
            grads["dA" + str(l + 1)], caches[l], "relu")
        grads["dA" + str(l)] = dA_prev_temp
        grads["dW" + str(l + 1)] = dW_temp
        grads["db" + str(l + 1)] = db_temp
    return grads


def L_model_backward_double_1_over_m(AL, Y, caches):
    grads = {}
    L = len(caches)
    m = AL.shape[1]
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL)) / m  # J's 1/m, and L's in dW too
    current_cache = caches[L - 1]
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = \
        correct_linear_activation_backward(dAL, current_cache, "sigmoid")
    for l in reversed(range(L - 1)):
        dA_prev_temp, dW_temp, db_temp = correct_linear_activation_backward(
            grads["dA" + str(l + 1)], caches[l], "relu")
        grads["dA" + str(l)] = dA_prev_temp
        grads["dW" + str(l + 1)] = dW_temp
        grads["db" + str(l + 1)] = db_temp
    return grads


def L_model_backward_missing_1_over_m(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    for l in reversed(range(L)):
        linear_cache, Z = caches[l]
        dZ = sigmoid_backward(dAL, Z) if l == L - 1 else relu_backward(grads["dA" + str(l + 1)], Z)
        grads["dA" + str(l)], grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = \
            linear_backward_missing_1_over_m(dZ, linear_cache)
    return grads


def L_model_backward_sign_flipped(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = np.divide(Y, AL) - np.divide(1 - Y, 1 - AL)  # the leading minus is missing
    current_cache = caches[L - 1]
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = \
        correct_linear_activation_backward(dAL, current_cache, "sigmoid")
    for l in reversed(range(L - 1)):
        dA_prev_temp, dW_temp, db_temp = correct_linear_activation_backward(
            grads["dA" + str(l + 1)], caches[l], "relu")
        grads["dA" + str(l)] = dA_prev_temp
        grads["dW" + str(l + 1)] = dW_temp
        grads["db" + str(l + 1)] = db_temp
    return grads


def convention_J_L_model_backward(AL, Y, caches):
    grads = {}
    L = len(caches)
    m = AL.shape[1]
    dZ = (AL - Y) / m  # convention J: the 1/m is here, and only here
    for l in reversed(range(L)):
        (A_prev, W, b), Z = caches[l]
        if l < L - 1:
            dZ = relu_backward(grads["dA" + str(l + 1)], Z)
        grads["dW" + str(l + 1)] = np.dot(dZ, A_prev.T)
        grads["db" + str(l + 1)] = np.sum(dZ, axis=1, keepdims=True)
        grads["dA" + str(l)] = np.dot(W.T, dZ)
    return grads


def L_model_backward_returns_tuple(AL, Y, caches):
    grads = correct_L_model_backward(AL, Y, caches)
    L = len(caches)
    return [grads["dW" + str(l)] for l in range(1, L + 1)], [grads["db" + str(l)]
                                                              for l in range(1, L + 1)]


# --------------------------------------------------------------------------- L_model_backward, more

def L_model_backward_earlier_keys(AL, Y, caches):
    """Correct, in the earlier notebooks' key convention: grads["dA" + str(l)] holds dA[l-1]."""
    grads = {}
    L = len(caches)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    grads["dA" + str(L)], grads["dW" + str(L)], grads["db" + str(L)] = \
        correct_linear_activation_backward(dAL, caches[L - 1], "sigmoid")
    for l in reversed(range(L - 1)):
        dA_prev, dW, db = correct_linear_activation_backward(grads["dA" + str(l + 2)], caches[l],
                                                             "relu")
        grads["dA" + str(l + 1)], grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = \
            dA_prev, dW, db
    return grads


def L_model_backward_two_layers_two_mistakes(AL, Y, caches):
    """sigmoid' in layer L-1 only, and layer 1's db without its 1/m: each named in its layer."""
    grads = {}
    L = len(caches)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = \
        correct_linear_activation_backward(dAL, caches[L - 1], "sigmoid")
    for l in reversed(range(L - 1)):
        activation = "sigmoid" if l == L - 2 else "relu"
        dA_prev, dW, db = correct_linear_activation_backward(grads["dA" + str(l + 1)], caches[l],
                                                             activation)
        if l == 0:
            db = db * AL.shape[1]
        grads["dA" + str(l)], grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = dA_prev, dW, db
    return grads


def L_model_backward_caches_reversed(AL, Y, caches):
    """The hidden layers read caches in reverse order (layer l takes caches[L - 1 - l])."""
    grads = {}
    L = len(caches)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = \
        correct_linear_activation_backward(dAL, caches[L - 1], "sigmoid")
    for l in reversed(range(L - 1)):
        dA_prev, dW, db = correct_linear_activation_backward(grads["dA" + str(l + 1)],
                                                             caches[L - 2 - l], "relu")
        grads["dA" + str(l)], grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = dA_prev, dW, db
    return grads


# --------------------------------------------------------------------------- courses 1 and 2, more

def correct_backward_propagation(parameters, cache, X, Y):
    """The planar network (course 1 week 3): tanh hidden layer, sigmoid output."""
    m = X.shape[1]
    W2 = parameters["W2"]
    A1, A2 = cache["A1"], cache["A2"]
    dZ2 = A2 - Y
    dW2 = 1 / m * np.dot(dZ2, A1.T)
    db2 = 1 / m * np.sum(dZ2, axis=1, keepdims=True)
    dZ1 = np.dot(W2.T, dZ2) * (1 - np.power(A1, 2))
    dW1 = 1 / m * np.dot(dZ1, X.T)
    db1 = 1 / m * np.sum(dZ1, axis=1, keepdims=True)
    return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}


def backward_propagation_tanh_prime_at_A(parameters, cache, X, Y):
    m = X.shape[1]
    W2 = parameters["W2"]
    A1, A2 = cache["A1"], cache["A2"]
    dZ2 = A2 - Y
    dZ1 = np.dot(W2.T, dZ2) * (1 - np.tanh(A1) ** 2)  # tanh' taken at A1, not Z1
    return {"dW1": 1 / m * np.dot(dZ1, X.T), "db1": 1 / m * np.sum(dZ1, axis=1, keepdims=True),
            "dW2": 1 / m * np.dot(dZ2, A1.T), "db2": 1 / m * np.sum(dZ2, axis=1, keepdims=True)}


def _three_layer_grads(X, Y, Z, A, W, m, dA_hook=lambda l, dA: dA, dW_extra=lambda l: 0.0):
    grads = {}
    dZ = A[3] - Y
    for l in (3, 2, 1):
        grads["dZ" + str(l)] = dZ
        grads["dW" + str(l)] = 1. / m * np.dot(dZ, A[l - 1].T) + dW_extra(l)
        grads["db" + str(l)] = 1. / m * np.sum(dZ, axis=1, keepdims=True)
        if l > 1:
            dA = dA_hook(l - 1, np.dot(W[l].T, dZ))
            grads["dA" + str(l - 1)] = dA
            dZ = np.multiply(dA, np.int64(A[l - 1] > 0))
    return grads


def backward_propagation_n_as_provided(X, Y, cache):
    """The gradient-checking notebook's provided version, with its two planted bugs."""
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache
    grads = _three_layer_grads(X, Y, None, {0: X, 1: A1, 2: A2, 3: A3}, {2: W2, 3: W3},
                               X.shape[1])
    grads["dW2"] = grads["dW2"] * 2
    grads["db1"] = grads["db1"] * 4
    return grads


def backward_propagation_with_regularization_lambd_W(X, Y, cache, lambd):
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache
    Ws = {1: W1, 2: W2, 3: W3}
    return _three_layer_grads(X, Y, None, {0: X, 1: A1, 2: A2, 3: A3}, Ws, X.shape[1],
                              dW_extra=lambda l: lambd * Ws[l])  # the 1/m is missing


def backward_propagation_with_dropout_not_rescaled(X, Y, cache, keep_prob):
    (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3) = cache
    D = {1: D1, 2: D2}
    return _three_layer_grads(X, Y, None, {0: X, 1: A1, 2: A2, 3: A3}, {2: W2, 3: W3},
                              X.shape[1], dA_hook=lambda l, dA: dA * D[l])  # no / keep_prob


def compute_cost_not_squeezed(AL, Y):
    m = Y.shape[1]
    return -1 / m * (np.dot(Y, np.log(AL).T) + np.dot(1 - Y, np.log(1 - AL).T))  # shape (1, 1)


def compute_cost_with_regularization_precedence(A3, Y, parameters, lambd):
    m = Y.shape[1]
    cross_entropy = -1 / m * np.sum(Y * np.log(A3) + (1 - Y) * np.log(1 - A3))
    squares = sum(np.sum(np.square(parameters["W" + str(l)])) for l in (1, 2, 3))
    return cross_entropy + lambd / 2 * m * squares  # (lambd / 2) * m, not lambd / (2 m)


def update_parameters_plus(parameters, grads, learning_rate):
    for l in range(len(parameters) // 2):
        parameters["W" + str(l + 1)] = parameters["W" + str(l + 1)] + learning_rate * grads[
            "dW" + str(l + 1)]
        parameters["b" + str(l + 1)] = parameters["b" + str(l + 1)] + learning_rate * grads[
            "db" + str(l + 1)]
    return parameters


def update_parameters_with_momentum_uses_grads(parameters, grads, v, beta, learning_rate):
    for l in range(1, len(parameters) // 2 + 1):
        for p in ("W", "b"):
            key = "d" + p + str(l)
            v[key] = beta * v[key] + (1 - beta) * grads[key]
            parameters[p + str(l)] = parameters[p + str(l)] - learning_rate * grads[key]
    return parameters, v


def update_parameters_with_adam_no_correction(parameters, grads, v, s, t, learning_rate=0.01,
                                              beta1=0.9, beta2=0.999, epsilon=1e-8):
    for l in range(1, len(parameters) // 2 + 1):
        for p in ("W", "b"):
            key = "d" + p + str(l)
            v[key] = beta1 * v[key] + (1 - beta1) * grads[key]
            s[key] = beta2 * s[key] + (1 - beta2) * np.square(grads[key])
            parameters[p + str(l)] = parameters[p + str(l)] - learning_rate * v[key] / (
                np.sqrt(s[key]) + epsilon)  # v and s used without 1/(1 - beta^t)
    return parameters, v, s


def linear_forward_no_bias(A, W, b):
    Z = np.dot(W, A)
    return Z, (A, W, b)


#: name -> (function, kind, the mistake codes the doctor must name; empty for a clean bill)
CATALOGUE = {
    "correct_linear_backward":
        (correct_linear_backward, "linear_backward", set()),
    "linear_backward_missing_1_over_m":
        (linear_backward_missing_1_over_m, "linear_backward", {"missing_1_over_m"}),
    "linear_backward_extra_1_over_m":
        (linear_backward_extra_1_over_m, "linear_backward", {"extra_1_over_m"}),
    "linear_backward_double_1_over_m":
        (linear_backward_double_1_over_m, "linear_backward", {"double_1_over_m"}),
    "linear_backward_transposed_dW":
        (linear_backward_transposed_dW, "linear_backward", {"transposed_result"}),
    "linear_backward_missing_transpose":
        (linear_backward_missing_transpose, "linear_backward", {"missing_transpose"}),
    "linear_backward_sum_wrong_axis":
        (linear_backward_sum_wrong_axis, "linear_backward", {"sum_wrong_axis"}),
    "linear_backward_missing_keepdims":
        (linear_backward_missing_keepdims, "linear_backward", {"missing_keepdims"}),
    "linear_backward_wrong_m":
        (linear_backward_wrong_m, "linear_backward", {"wrong_m"}),
    "linear_backward_elementwise":
        (linear_backward_elementwise, "linear_backward", {"elementwise_product"}),
    "linear_backward_two_outputs":
        (linear_backward_two_outputs, "linear_backward", {"wrong_outputs"}),
    "linear_backward_raises":
        (linear_backward_raises, "linear_backward", {"raises"}),
    "correct_linear_activation_backward":
        (correct_linear_activation_backward, "linear_activation_backward", set()),
    "linear_activation_backward_g_prime_at_A":
        (linear_activation_backward_g_prime_at_A, "linear_activation_backward", {"g_prime_at_A"}),
    "linear_activation_backward_tanh_for_sigmoid":
        (linear_activation_backward_tanh_for_sigmoid, "linear_activation_backward",
         {"sigmoid_tanh_mixup"}),
    "linear_activation_backward_sigmoid_of_Z_formula":
        (linear_activation_backward_sigmoid_of_Z_formula, "linear_activation_backward",
         {"a_form_at_Z"}),
    "linear_activation_backward_relu_mask_on_dA":
        (linear_activation_backward_relu_mask_on_dA, "linear_activation_backward",
         {"relu_mask_wrong_array"}),
    "linear_activation_backward_dA_for_dZ":
        (linear_activation_backward_dA_for_dZ, "linear_activation_backward", {"dA_dZ_mixup"}),
    "linear_activation_backward_in_place":
        (linear_activation_backward_in_place, "linear_activation_backward", {"mutates_input"}),
    "linear_activation_backward_wrong_order":
        (linear_activation_backward_wrong_order, "linear_activation_backward",
         {"wrong_output_order"}),
    "correct_L_model_backward":
        (correct_L_model_backward, "L_model_backward", set()),
    "L_model_backward_wrong_cache":
        (L_model_backward_wrong_cache, "L_model_backward", {"wrong_cache"}),
    "L_model_backward_A_minus_Y_as_dAL":
        (L_model_backward_A_minus_Y_as_dAL, "L_model_backward", {"dA_dZ_mixup"}),
    "L_model_backward_double_1_over_m":
        (L_model_backward_double_1_over_m, "L_model_backward", {"double_1_over_m"}),
    "L_model_backward_missing_1_over_m":
        (L_model_backward_missing_1_over_m, "L_model_backward", {"missing_1_over_m"}),
    "L_model_backward_sign_flipped":
        (L_model_backward_sign_flipped, "L_model_backward", {"sign_flipped"}),
    "convention_J_L_model_backward":
        (convention_J_L_model_backward, "L_model_backward", set()),
    "L_model_backward_returns_tuple":
        (L_model_backward_returns_tuple, "L_model_backward", {"wrong_outputs"}),
    "L_model_backward_earlier_keys":
        (L_model_backward_earlier_keys, "L_model_backward", set()),
    "L_model_backward_two_layers_two_mistakes":
        (L_model_backward_two_layers_two_mistakes, "L_model_backward",
         {"wrong_activation", "missing_1_over_m"}),
    "L_model_backward_caches_reversed":
        (L_model_backward_caches_reversed, "L_model_backward", {"wrong_cache"}),
    "correct_backward_propagation":
        (correct_backward_propagation, "backward_propagation", set()),
    "backward_propagation_tanh_prime_at_A":
        (backward_propagation_tanh_prime_at_A, "backward_propagation", {"g_prime_at_A"}),
    "backward_propagation_n_as_provided":
        (backward_propagation_n_as_provided, "backward_propagation_n", {"wrong_factor"}),
    "backward_propagation_with_regularization_lambd_W":
        (backward_propagation_with_regularization_lambd_W,
         "backward_propagation_with_regularization", {"l2_gradient_wrong"}),
    "backward_propagation_with_dropout_not_rescaled":
        (backward_propagation_with_dropout_not_rescaled, "backward_propagation_with_dropout",
         {"dropout_not_rescaled"}),
    "compute_cost_not_squeezed":
        (compute_cost_not_squeezed, "compute_cost", {"cost_not_scalar"}),
    "compute_cost_with_regularization_precedence":
        (compute_cost_with_regularization_precedence, "compute_cost_with_regularization",
         {"l2_cost_wrong"}),
    "update_parameters_plus":
        (update_parameters_plus, "update_parameters", {"sign_flipped"}),
    "update_parameters_with_momentum_uses_grads":
        (update_parameters_with_momentum_uses_grads, "update_parameters_with_momentum",
         {"momentum_update_uses_grads"}),
    "update_parameters_with_adam_no_correction":
        (update_parameters_with_adam_no_correction, "update_parameters_with_adam",
         {"adam_bias_correction"}),
    "linear_forward_no_bias":
        (linear_forward_no_bias, "linear_forward", {"missing_bias"}),
}
