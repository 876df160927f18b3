"""The course's own helper functions, written the way its notebooks write them.

One copy of ``sigmoid``, ``relu``, ``relu_backward``, ``sigmoid_backward``, the linear and
activation steps, ``L_model_forward``, ``L_model_backward`` and ``update_parameters`` as the
Deep Learning Specialization's notebooks (``dnn_utils``, "Building your Deep Neural Network:
Step by Step") define them: caches as tuples, a ``grads`` dict, ``np.dot``. Deliberately not
:mod:`chainrule.reference`: this is the code a learner's function calls and the code the
doctor's examples (:mod:`.examples`), the stand-ins for missing course files
(:mod:`.course_helpers`), the benchmark peer "numpy course-style" (:mod:`chainrule.bench.peers`)
and the tests' corpus of learner code are written against.
"""

# ruff: noqa: N802, N803, N806  (the course's names)

from __future__ import annotations

import numpy as np


def sigmoid(Z):
    """The plain sigmoid (``planar_utils``, ``reg_utils``...)."""
    return 1 / (1 + np.exp(-Z))


def relu(Z):
    """The plain ReLU."""
    return np.maximum(0, Z)


def sigmoid_cached(Z):
    """``dnn_utils.sigmoid``: ``(A, cache)`` with ``cache = Z``."""
    return sigmoid(Z), Z


def relu_cached(Z):
    """``dnn_utils.relu``: ``(A, cache)`` with ``cache = Z``."""
    return relu(Z), Z


def tanh_cached(Z):
    return np.tanh(Z), Z


def softmax_cached(Z):
    E = np.exp(Z - np.max(Z, axis=0, keepdims=True))
    return E / np.sum(E, axis=0, keepdims=True), Z


def relu_backward(dA, cache):
    """``dnn_utils.relu_backward``: a copy of dA with the entries where Z <= 0 set to 0."""
    Z = cache
    dZ = np.array(dA, copy=True)
    dZ[Z <= 0] = 0
    return dZ


def sigmoid_backward(dA, cache):
    """``dnn_utils.sigmoid_backward``: dA * s * (1 - s) with s = sigmoid(Z)."""
    Z = cache
    s = 1 / (1 + np.exp(-Z))
    return dA * s * (1 - s)


def tanh_backward(dA, cache):
    Z = cache
    return dA * (1 - np.tanh(Z) ** 2)


FORWARD = {"sigmoid": sigmoid_cached, "relu": relu_cached, "tanh": tanh_cached,
           "softmax": softmax_cached}
BACKWARD = {"sigmoid": sigmoid_backward, "relu": relu_backward, "tanh": tanh_backward}


def linear_forward(A, W, b):
    Z = np.dot(W, A) + b
    cache = (A, W, b)
    return Z, cache


def linear_activation_forward(A_prev, W, b, activation):
    Z, linear_cache = linear_forward(A_prev, W, b)
    A, activation_cache = FORWARD[activation](Z)
    cache = (linear_cache, activation_cache)
    return A, cache


def L_model_forward(X, parameters, hidden="relu", output="sigmoid"):
    caches = []
    A = X
    L = len(parameters) // 2
    for l in range(1, L):
        A_prev = A
        A, cache = linear_activation_forward(A_prev, parameters["W" + str(l)],
                                             parameters["b" + str(l)], hidden)
        caches.append(cache)
    AL, cache = linear_activation_forward(A, parameters["W" + str(L)], parameters["b" + str(L)],
                                          output)
    caches.append(cache)
    return AL, caches


def linear_backward(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1 / m * np.dot(dZ, A_prev.T)
    db = 1 / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ)
    return dA_prev, dW, db


def linear_activation_backward(dA, cache, activation):
    linear_cache, activation_cache = cache
    dZ = BACKWARD[activation](dA, activation_cache)
    return linear_backward(dZ, linear_cache)


def L_model_backward(AL, Y, caches, hidden="relu", output="sigmoid"):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    current_cache = caches[L - 1]
    if output == "sigmoid":
        dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
        dA_prev_temp, dW_temp, db_temp = linear_activation_backward(dAL, current_cache, "sigmoid")
    else:  # softmax with cross-entropy: the course derives dZ[L] = A[L] - Y directly
        dA_prev_temp, dW_temp, db_temp = linear_backward(AL - Y, current_cache[0])
    grads["dA" + str(L - 1)] = dA_prev_temp
    grads["dW" + str(L)] = dW_temp
    grads["db" + str(L)] = db_temp
    for l in reversed(range(L - 1)):
        current_cache = caches[l]
        dA_prev_temp, dW_temp, db_temp = linear_activation_backward(grads["dA" + str(l + 1)],
                                                                    current_cache, hidden)
        grads["dA" + str(l)] = dA_prev_temp
        grads["dW" + str(l + 1)] = dW_temp
        grads["db" + str(l + 1)] = db_temp
    return grads


def update_parameters(params, grads, learning_rate):
    parameters = params.copy()
    L = len(parameters) // 2
    for l in range(L):
        parameters["W" + str(l + 1)] = (parameters["W" + str(l + 1)]
                                        - learning_rate * grads["dW" + str(l + 1)])
        parameters["b" + str(l + 1)] = (parameters["b" + str(l + 1)]
                                        - learning_rate * grads["db" + str(l + 1)])
    return parameters
