"""A third set of learner implementations, chosen for their mistakes (issue 25).

Transcribed in our own words as learners2.py's are (local names, layout and comments ours;
structure, helpers, keys and the mistake the learner's). The comment above each function names
its source as ``repository : path`` (``@ commit`` for an older version of the file). Three
files were found by the code index's exact-string search, which returns a file's text and an
id but not its repository: they are cited as ``index file <id> : <what the file is>`` and do
not count as repositories. The expected verdicts are in ``tests/test_explain_corpus3.py``,
written from running each function against ``chainrule.reference`` before the doctor ran.
"""

# ruff: noqa: N802, N803, N806, E741

import math

import numpy as np

from chainrule.explain.course_style import linear_activation_backward as _lab
from chainrule.explain.course_style import linear_backward as _course_linear_backward
from chainrule.explain.course_style import relu_backward as _relu_backward
from chainrule.explain.course_style import relu_cached as _relu
from chainrule.explain.course_style import sigmoid_backward as _sigmoid_backward
from chainrule.explain.course_style import sigmoid_cached as _sigmoid


# OmarTahoun/Deep-Learn : NN.py @ 93e6e7fe2f041c917cc8a5ad6d05376c663cbb26 (the return is
# inside the loop, which also stops one layer short: only layer 1 moves)
def parameters_update__omar_early_return(parameters, grads, learning_rate):
    n_layers = len(parameters) // 2
    for l in range(1, n_layers):
        parameters["W" + str(l)] = parameters["W" + str(l)] - learning_rate * grads["dW" + str(l)]
        parameters["b" + str(l)] = parameters["b" + str(l)] - learning_rate * grads["db" + str(l)]
        return parameters


# OmarTahoun/Deep-Learn : NN.py (the later version: the return moved out of the loop, the
# range still stops before the output layer)
def parameters_update__omar(parameters, grads, learning_rate):
    n_layers = len(parameters) // 2
    for l in range(1, n_layers):
        parameters["W" + str(l)] = parameters["W" + str(l)] - learning_rate * grads["dW" + str(l)]
        parameters["b" + str(l)] = parameters["b" + str(l)] - learning_rate * grads["db" + str(l)]
    return parameters


# OmarTahoun/Deep-Learn : NN.py (forward_linear / forward_activation with "relu" as the default)
def _forward_linear__omar(A, W, b):
    return W.dot(A) + b, (A, W, b)


def _forward_activation__omar(A_prev, W, b, activation="relu"):
    Z, lin = _forward_linear__omar(A_prev, W, b)
    A, act = _sigmoid(Z) if activation == "sigmoid" else _relu(Z)
    return A, (lin, act)


def forward_probagation__omar(X, parameters):
    caches = []
    A = X
    L = len(parameters) // 2
    for l in range(1, L):
        A, cache = _forward_activation__omar(A, parameters["W" + str(l)], parameters["b" + str(l)])
        caches.append(cache)
    A_final, cache = _forward_activation__omar(A, parameters["W" + str(L)],
                                               parameters["b" + str(L)], activation="sigmoid")
    caches.append(cache)
    return A_final, caches


# OmarTahoun/Deep-Learn : NN.py (backward_linear / backward_activation / backward_probagation)
def _backward_activation__omar(dA, cache, activation="relu"):
    lin, act = cache
    if activation == "sigmoid":
        return _course_linear_backward(_sigmoid_backward(dA, act), lin)
    return _course_linear_backward(_relu_backward(dA, act), lin)


def backward_probagation__omar(A_final, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(A_final.shape)
    dA_final = -(np.divide(Y, A_final) - np.divide(1 - Y, 1 - A_final))
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = \
        _backward_activation__omar(dA_final, caches[L - 1], activation="sigmoid")
    for l in reversed(range(L - 1)):
        dA_prev, dW, db = _backward_activation__omar(grads["dA" + str(l + 1)], caches[l])
        grads["dA" + str(l)], grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = dA_prev, dW, db
    return grads


# pavankodi/neural-networks : activation.py, one_layer_backward.py, backprop.py (its sigmoid
# returns (A, Z); the one-layer step multiplies by sigmoid(Z) as if it returned A; the output
# layer's gradients are stored under the keys of layer L-1)
def _sigmoid__pavankodi(Z):
    return 1 / (1 + np.exp(-Z)), Z


def _one_layer_backward__pavankodi(dA, cache):
    lin, Z = cache
    dZ = dA * _sigmoid__pavankodi(Z) * (1 - _sigmoid__pavankodi(Z))
    A_prev, W, b = lin
    m = A_prev.shape[1]
    return np.dot(W.T, dZ), (1 / m) * np.dot(dZ, A_prev.T), (1 / m) * np.sum(dZ, axis=1,
                                                                               keepdims=True)


def backprop__pavankodi(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    grads["dA" + str(L - 1)], grads["dW" + str(L - 1)], grads["db" + str(L - 1)] = \
        _one_layer_backward__pavankodi(dAL, caches[L - 1])
    for l in reversed(range(L - 1)):
        dA_prev, dW, db = _one_layer_backward__pavankodi(grads["dA" + str(l + 1)], caches[l])
        grads["dA" + str(l)], grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = dA_prev, dW, db
    return grads


# pavankodi/neural-networks : cost_func.py (the second log is a bare name, never imported; the
# result is a (1, 1) array)
def cost_function__pavankodi(A, Y):
    m = Y.shape[1]
    return (-1 / m) * (np.dot(np.log(A), Y.T) + np.dot(log(1 - A), 1 - Y.T))  # noqa: F821


# pavankodi/neural-networks : forward_prop.py (sigmoid in every layer, hidden ones included)
def forward_prop__pavankodi(X, params):
    A = X
    caches = []
    for l in range(1, len(params) // 2 + 1):
        W, b = params["W" + str(l)], params["b" + str(l)]
        Z = np.dot(W, A) + b
        lin = (A, W, b)
        A, act = _sigmoid__pavankodi(Z)
        caches.append((lin, act))
    return A, caches


# Ayush00700/PS1 : L_model_backward.py (a "tanh" branch that calls sigmoid_backward, used for the
# output layer; the loop passes the previous step's dA_prev along)
def _linear_activation_backward__ayush(dA, cache, activation):
    lin, act = cache
    if activation == "relu":
        dZ = _relu_backward(dA, act)
    else:  # "sigmoid" and "tanh" both through sigmoid_backward
        dZ = _sigmoid_backward(dA, act)
    return _course_linear_backward(dZ, lin)


def L_model_backward__ayush(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    dA_prev, dW, db = _linear_activation_backward__ayush(dAL, caches[L - 1], "tanh")
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = dA_prev, dW, db
    for l in reversed(range(L - 1)):
        dA_prev, dW, db = _linear_activation_backward__ayush(dA_prev, caches[l], "relu")
        grads["dA" + str(l)], grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = dA_prev, dW, db
    return grads


# index file 2254048045 : a course-1 week-4 module in lower-case names (dw as np.dot(a_prev, dzᵀ),
# the transpose of dW; da_prev as np.dot(w, dz), W not transposed; the notebook's asserts)
def linear_backward__file2254(dz, cache):
    a_prev, w, b = cache
    m = a_prev.shape[1]
    dw = np.dot(a_prev, dz.T) / m
    db = np.sum(dz, axis=1, keepdims=True) / m
    da_prev = np.dot(w, dz)
    assert da_prev.shape == a_prev.shape and dw.shape == w.shape and db.shape == b.shape
    return da_prev, dw, db


# index file 30705294408 : a course-1 week-4 module (compute_cost(Y, AL) with np.dot of two
# row vectors; W not transposed in dA_prev; the whole layer cache passed to linear_backward)
def compute_cost__file3070(Y, AL):
    m = Y.shape[1]
    cost = -np.sum(np.dot(Y, np.log(AL)) + np.dot(1 - Y, np.log(1 - AL))) / m
    cost = np.squeeze(cost)
    assert cost.shape == ()
    return cost


def linear_backward__file3070(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = np.dot(dZ, A_prev.T) / m
    db = np.sum(dZ, axis=1, keepdims=True) / m
    dA_prev = np.dot(W, dZ)
    assert dA_prev.shape == A_prev.shape and dW.shape == W.shape and db.shape == b.shape
    return dA_prev, dW, db


def _relu_backward__file3070(dA, activation_cache):
    return dA * (activation_cache > 0)


def _sigmoid_backward__file3070(dA, activation_cache):  # tanh's derivative, of Z
    return dA * (1 - activation_cache ** 2)


def linear_backward_activation__file3070(dA, cache, activation):
    linear_cache, activation_cache = cache
    if activation == "sigmoid":
        dZ = _sigmoid_backward__file3070(dA, activation_cache)
    else:
        dZ = _relu_backward__file3070(dA, activation_cache)
    return linear_backward__file3070(dZ, cache)


# index file 25751828887 : an MNIST 3-versus-8 network in the course's layout (linear_forward
# takes Wᵀ and is handed Wᵀ again; the cache is a list with the activation's name appended;
# dA_prev with W not transposed; a cost looped with math.log10 and no log on its second term)
def _linear_forward__file2575(A, W, b):
    return np.dot(W.T, A) + b, [A, W, b]


def linear_activation_forward__file2575(A_prev, W, B, activation):
    Z, linear_cache = _linear_forward__file2575(A_prev, W.T, B)
    if activation == "relu":
        A, activation_cache = np.maximum(Z, 0), Z.copy()
    else:
        A, activation_cache = 1 / (1 + np.exp(-Z)), Z.copy()
    linear_cache.append(activation)
    return A, (linear_cache, activation_cache)


def linear_backward__file2575(dZ, cache):
    A_prev, W = np.asarray(cache[0]), np.asarray(cache[1])
    m = A_prev.shape[1]
    dZ = np.asarray([dZ])[0]
    dW = 1.0 / m * np.dot(dZ, A_prev.T)
    db = 1.0 / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W, dZ)
    return dA_prev, dW, db


def _relu_backward__file2575(dA, activation_cache):
    dZ = np.array(dA, copy=True)
    dZ[np.asarray(activation_cache)[0] <= 0] = 0
    return dZ


def _sigmoid_backward__file2575(dA, activation_cache):  # s is relu(Z), not sigmoid(Z)
    s = np.maximum(np.asarray(activation_cache)[0], 0)
    return dA * s * (1 - s)


def linear_activation_backward__file2575(dA, localCache, activation):
    linear_cache, activation_cache = localCache[0], localCache[1:4]
    if activation == "relu":
        dZ = _relu_backward__file2575(dA, activation_cache)
    else:
        dZ = _sigmoid_backward__file2575(dA, activation_cache)
    return linear_backward__file2575(dZ, linear_cache)


def compute_cost__file2575(last_activation, real_labels):
    n = len(last_activation)
    total = 0
    for i in range(n):
        total += (real_labels[i] * math.log10(last_activation[i])
                  + (1 - real_labels[i]) * (1 - last_activation[i]))
    return -(total / n)


# index file 48061694801 : a planar-data network (tanh hidden layer, cache as a dict; both
# biases' gradients are np.sum without an axis: db1 sums every unit into one number)
def backward_propagation__file4806(parameters, cache, X, Y):
    m = X.shape[1]
    dZ2 = cache["A2"] - Y
    dW2 = (1 / m) * dZ2.dot(cache["A1"].T)
    db2 = (1 / m) * np.sum(dZ2)
    dZ1 = np.dot(parameters["W2"].T, dZ2) * (1 - np.tanh(cache["Z1"]) ** 2)
    dW1 = (1 / m) * np.dot(dZ1, X.T)
    db1 = (1 / m) * np.sum(dZ1)
    return {"dW1": dW1, "dW2": dW2, "db1": db1, "db2": db2}


# index file 2167033965 : a course-1 week-3 notebook exported to a script, Russian comments
# (the same two sums without an axis)
def backward_propagation__file2167(parameters, cache, X, Y):
    m = X.shape[1]
    W2 = parameters["W2"]
    A1, A2 = cache["A1"], cache["A2"]
    dZ2 = A2 - Y
    dW2 = 1 / m * np.dot(dZ2, A1.T)
    db2 = 1 / m * np.sum(dZ2)
    dZ1 = np.dot(W2.T, dZ2) * (1 - np.power(A1, 2))
    dW1 = 1 / m * np.dot(dZ1, X.T)
    db1 = 1 / m * np.sum(dZ1)
    return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}


# index file 7018085669 : the week-3 notebook's graded cell (dW1 written with np.sum's keyword
# arguments on np.dot)
def backward_propagation__file7018(parameters, cache, X, Y):
    m = X.shape[1]
    W2 = parameters["W2"]
    A1, A2 = cache["A1"], cache["A2"]
    dZ2 = A2 - Y
    dW2 = np.dot(dZ2, A1.T) / m
    db2 = np.sum(dZ2, axis=1, keepdims=True) / m
    dZ1 = np.dot(W2.T, dZ2) * (1 - np.power(A1, 2))
    dW1 = np.dot(dZ1, axis=1, keepdims=True) / m
    db1 = np.sum(dZ1, axis=1, keepdims=True) / m
    return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}


# index file 41294190073 : course-2 week-2 optimisers in one module (the layer count as
# parameters / 2, a dict divided by an int; the velocity averages v with itself)
def update_parameters_with_gd__file4129(parameters, grads, learning_rate):
    L = parameters / 2
    for l in range(L):
        parameters["W" + str(l + 1)] = parameters["W" + str(l + 1)] - learning_rate * grads["dW" + str(l + 1)]
        parameters["b" + str(l + 1)] = parameters["b" + str(l + 1)] - learning_rate * grads["db" + str(l + 1)]
    return parameters


def gd_with_momentum__file4129(parameters, grads, v, beta, learning_rate):
    L = parameters / 2
    for l in range(L):
        for p in ("W", "b"):
            key = "d" + p + str(l + 1)
            v[key] = beta * v[key] + (1 - beta) * v[key]
            parameters[p + str(l + 1)] = parameters[p + str(l + 1)] - learning_rate * v[key]
    return parameters, v


# index file 20159008742 : the week-2 optimisation notebook's graded Adam cell (ε added under
# the square root)
def update_parameters_with_adam__file2015(parameters, grads, v, s, t, learning_rate=0.01,
                                          beta1=0.9, beta2=0.999, epsilon=1e-8):
    v_corrected, s_corrected = {}, {}
    for l in range(len(parameters) // 2):
        for p in ("W", "b"):
            g = "d" + p + str(l + 1)
            v[g] = beta1 * v[g] + (1 - beta1) * grads[g]
            v_corrected[g] = v[g] / (1 - beta1 ** t)
            s[g] = beta2 * s[g] + (1 - beta2) * (grads[g] ** 2)
            s_corrected[g] = s[g] / (1 - beta2 ** t)
            parameters[p + str(l + 1)] = (parameters[p + str(l + 1)] - learning_rate * v_corrected[g]
                                          / (np.sqrt(s_corrected[g] + epsilon)))
    return parameters, v, s


# index file 13993407836 : the same notebook, Chinese comments (np.power for the corrections,
# np.square for the moment, an in-place -=, ε under the root)
def update_parameters_with_adam__file1399(parameters, grads, v, s, t, learning_rate=0.01,
                                          beta1=0.9, beta2=0.999, epsilon=1e-8):
    v_corrected, s_corrected = {}, {}
    for l in range(len(parameters) // 2):
        for p in ("W", "b"):
            g = "d" + p + str(l + 1)
            v[g] = beta1 * v[g] + (1 - beta1) * grads[g]
            v_corrected[g] = v[g] / (1 - np.power(beta1, t))
            s[g] = beta2 * s[g] + (1 - beta2) * np.square(grads[g])
            s_corrected[g] = s[g] / (1 - np.power(beta2, t))
            parameters[p + str(l + 1)] -= learning_rate * v_corrected[g] / np.sqrt(
                s_corrected[g] + epsilon)
    return parameters, v, s


# index file 34521383158 : course-2 week-1 regularisation, with the course's compute_cost
# (np.squre for the second and third weights: an AttributeError)
def _course_compute_cost(AL, Y):
    m = Y.shape[1]
    return np.squeeze(-np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)) / m)


def compute_cost_with_regularization__file3452(AL, Y, parameters, lambd):
    m = Y.shape[1]
    W1, W2, W3 = parameters["W1"], parameters["W2"], parameters["W3"]
    cross_entropy = _course_compute_cost(AL, Y)
    l2 = lambd / (2 * m) * (np.sum(np.square(W1)) + np.sum(np.squre(W2))
                            + np.sum(np.squre(W3)))
    return cross_entropy + l2


# index file 6676713664 : an L-layer module with dropout and L2 (λ/2·m for λ/(2m), and the
# cross-entropy asked of compute_cost(AL, L), the layer count in place of Y)
def _compute_cost__file6676(AL, Y):
    m = Y.shape[1]
    cost = (-1.0 / m) * np.sum((Y * np.log(AL)) + ((1 - Y) * np.log(1 - AL)))
    assert cost.shape == ()
    return cost


def compute_cost_regularization__file6676(AL, Y, parameters, lambd):
    m = Y.shape[1]
    L = len(parameters) // 2
    squares = 0.0
    for i in range(1, L + 1):
        squares += np.sum(np.square(parameters["W" + str(i)]))
    return _compute_cost__file6676(AL, L) + (lambd / 2 * m) * squares


# index file 21913746091 : the week-2 optimisation notebook as a script, Chinese comments
# (np.power for the corrections, np.square for the moment, ε under the root)
def update_parameters_with_adam__file2191(parameters, grads, v, s, t, learning_rate=0.01,
                                          beta1=0.9, beta2=0.999, epsilon=1e-8):
    v_corrected, s_corrected = {}, {}
    for l in range(len(parameters) // 2):
        for p in ("W", "b"):
            g = "d" + p + str(l + 1)
            v[g] = beta1 * v[g] + (1 - beta1) * grads[g]
            v_corrected[g] = v[g] / (1 - np.power(beta1, t))
            s[g] = beta2 * s[g] + (1 - beta2) * np.square(grads[g])
            s_corrected[g] = s[g] / (1 - np.power(beta2, t))
            parameters[p + str(l + 1)] = (parameters[p + str(l + 1)]
                                          - learning_rate * v_corrected[g]
                                          / np.sqrt(s_corrected[g] + epsilon))
    return (parameters, v, s)


# index file 2854684886 : a course-5 assignment file that starts with the course-2 Adam cell
# (the notebook's docstring and signature; ε under the root)
def update_parameters_with_adam__file2854(parameters, grads, v, s, t, learning_rate=0.01,
                                          beta1=0.9, beta2=0.999, epsilon=1e-8):
    v_corrected, s_corrected = {}, {}
    for l in range(len(parameters) // 2):
        for p in ("W", "b"):
            g = "d" + p + str(l + 1)
            v[g] = beta1 * v[g] + (1 - beta1) * grads[g]
            v_corrected[g] = v[g] / (1 - beta1 ** t)
            s[g] = beta2 * s[g] + (1 - beta2) * (grads[g] ** 2)
            s_corrected[g] = s[g] / (1 - beta2 ** t)
            parameters[p + str(l + 1)] = (parameters[p + str(l + 1)] - learning_rate
                                          * v_corrected[g] / np.sqrt(s_corrected[g] + epsilon))
    return parameters, v, s


# The gradient-checking notebook plants two bugs in backward_propagation_n (dW2 doubled, db1
# four times too large) for the learner to find with the check; these learners kept them.
# index file 38591227477 : the notebook re-typed under the learner's own names (fwd_prop_n,
# bwd_prop_n, grad_check_n)
def bwd_prop_n__file3859(X, Y, cache):
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y
    dW3 = 1.0 / m * np.dot(dZ3, A2.T)
    db3 = 1.0 / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1.0 / m * np.dot(dZ2, A1.T) * 2
    db2 = 1.0 / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1.0 / m * np.dot(dZ1, X.T)
    db1 = 4.0 / m * np.sum(dZ1, axis=1, keepdims=True)
    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2,
            "db2": db2, "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


# index file 3737617166 : a learner's course-2 week-1 script, Chinese comments (the three
# initialisations compared, then gradient checking with the planted bugs)
def backward_propagation_n__file3737(X, Y, cache):
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache
    grads = {}
    dZ3 = A3 - Y
    grads["dZ3"], grads["dW3"] = dZ3, np.dot(dZ3, A2.T) / m
    grads["db3"] = np.sum(dZ3, axis=1, keepdims=True) / m
    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    grads["dA2"], grads["dZ2"] = dA2, dZ2
    grads["dW2"] = np.dot(dZ2, A1.T) / m * 2
    grads["db2"] = np.sum(dZ2, axis=1, keepdims=True) / m
    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    grads["dA1"], grads["dZ1"] = dA1, dZ1
    grads["dW1"] = np.dot(dZ1, X.T) / m
    grads["db1"] = 4.0 * np.sum(dZ1, axis=1, keepdims=True) / m
    return grads


# index file 27403153783 : logistic regression from the week-2 notebook's outline (w times m
# in the activation, a Python loop for the cost, (A - Y) not transposed in dw)
def _sigmoid__file2740(z):
    return 1 / (1 + np.exp(-z))


def propagate__file2740(w, b, X, Y):
    m = X.shape[1]
    A = _sigmoid__file2740(w * m + b)
    cost = sum([y * np.log(a) + (1 - y) * np.log(1 - a) for a, y in zip(A, Y)])
    dw = np.dot(X, (A - Y)) / m
    db = [(a - y) / len(A) for a, y in zip(A, Y)]
    assert dw.shape == w.shape
    assert db.dtype == float
    cost = np.squeeze(cost)
    assert cost.shape == ()
    return {"dw": dw, "db": db}, cost


# index file 1604723885 : the gradient-checking notebook exported to a script, its prompts
# reworded by the learner ("for fraud detection"), the planted bugs kept
def backward_propagation_n__file1604(X, Y, cache):
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache
    out = {"dZ3": A3 - Y}
    out["dW3"] = np.dot(out["dZ3"], A2.T) / m
    out["db3"] = np.sum(out["dZ3"], axis=1, keepdims=True) / m
    out["dA2"] = np.dot(W3.T, out["dZ3"])
    out["dZ2"] = out["dA2"] * np.int64(A2 > 0)
    out["dW2"] = 2 * np.dot(out["dZ2"], A1.T) / m
    out["db2"] = np.sum(out["dZ2"], axis=1, keepdims=True) / m
    out["dA1"] = np.dot(W2.T, out["dZ2"])
    out["dZ1"] = out["dA1"] * np.int64(A1 > 0)
    out["dW1"] = np.dot(out["dZ1"], X.T) / m
    out["db1"] = 4 * np.sum(out["dZ1"], axis=1, keepdims=True) / m
    return out


# index file 48990583976 : a course-1 week-4 module in progress, with the course's dnn_utils
# (the output layer fed A_prev, the layer before last's input; np.multipy and np.lof; the
# loop's key 'dA' + l + 2 adds an int to a str; the update loops over len(parameters), twice
# the layer count)
def _linear_activation_forward__file4899(A_prev, W, b, activation):
    Z = np.dot(W, A_prev) + b
    A, act = _sigmoid(Z) if activation == "sigmoid" else _relu(Z)
    return A, ((A_prev, W, b), act)


def L_model_forward__file4899(X, parameters):
    caches = []
    A = X
    L = len(parameters) // 2
    for l in range(1, L):
        A_prev = A
        A, cache = _linear_activation_forward__file4899(A_prev, parameters["W" + str(l)],
                                                        parameters["b" + str(l)], "relu")
        caches.append(cache)
    AL, cache = _linear_activation_forward__file4899(A_prev, parameters["W" + str(L)],
                                                     parameters["b" + str(L)], "sigmoid")
    caches.append(cache)
    return AL, caches


def compute_cost__file4899(AL, Y):
    m = Y.shape[1]
    cost = (-1 / m) * np.sum(np.multipy(Y, np.log(AL)) + np.multiply(1 - Y, np.lof(1 - AL)))
    return np.squeeze(cost)


def L_model_backward__file4899(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    grads["dA" + str(L)], grads["dW" + str(L)], grads["db" + str(L)] = _lab(dAL, caches[-1],
                                                                            "sigmoid")
    for l in reversed(range(L - 1)):
        grads["dA" + str(l + 1)], grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = _lab(
            grads["dA" + l + 2], caches[l], "relu")
    return grads


def update_parameters__file4899(parameters, grads, learning_rate):
    for l in range(len(parameters)):
        parameters["W" + str(l + 1)] = parameters["W" + str(l + 1)] - learning_rate * grads["dW" + str(l + 1)]
        parameters["b" + str(l + 1)] = parameters["b" + str(l + 1)] - learning_rate * grads["db" + str(l + 1)]
    return parameters
