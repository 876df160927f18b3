"""Learner implementations from public repositories of the course's assignments.

Each function is transcribed in our own words from the file named in its comment
(repository and path): the structure, dictionary keys, cache handling and the exact
mistake are kept, the text is not copied. The ground truth in ``CORPUS`` (test file) was
established by running each against ``chainrule.reference`` on the course's inputs.
"""

# ruff: noqa: N802, N803, N806, E741

import numpy as np


# the course's own helpers (dnn_utils), which the learners' code calls
from chainrule.explain.course_style import relu_backward as _relu_backward  # noqa: E402
from chainrule.explain.course_style import relu_cached as _relu_cached  # noqa: E402
from chainrule.explain.course_style import sigmoid as _sig  # noqa: E402
from chainrule.explain.course_style import sigmoid_backward as _sigmoid_backward  # noqa: E402
from chainrule.explain.course_style import sigmoid_cached as _sig_cached  # noqa: E402


# sourabh-burnwal/ML : nn_backprop.py
def backward_propagation__sourabh(parameters, cache, X, Y):
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


# hvsbombay/SOC-2025-DEEP-LEARNING-2025 : Week3/Hidden_Layer_Neural_Network/Exercise6.py
def backward_propagation__hvsbombay(parameters, cache, X, Y):
    m = X.shape[1]
    W1, W2 = parameters["W1"], parameters["W2"]  # noqa: F841 (W1 read, unused, as there)
    A1, A2 = cache["A1"], cache["A2"]
    dZ2 = A2 - Y
    dW2 = (1 / m) * np.dot(dZ2, A1.T)
    db2 = (1 / m) * np.sum(dZ2, axis=1, keepdims=True)
    dZ1 = np.dot(W2.T, dZ2) * (1 - np.power(A1, 2))
    dW1 = (1 / m) * np.dot(dZ1, X.T)
    db1 = (1 / m) * np.sum(dZ1, axis=1, keepdims=True)
    return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}


# DeepakSridhar/Deep-Learning-Coursera : Course-2/Optimization/update_momentum.py
def update_parameters_with_momentum__deepak(parameters, grads, v, beta, learning_rate):
    L = len(parameters) // 2
    for l in range(L):
        k = str(l + 1)
        v["dW" + k] = beta * v["dW" + k] + (1 - beta) * grads["dW" + k]
        v["db" + k] = beta * v["db" + k] + (1 - beta) * grads["db" + k]
        parameters["W" + k] = parameters["W" + k] - learning_rate * v["dW" + k]
        parameters["b" + k] = parameters["b" + k] - learning_rate * v["db" + k]
    return parameters, v


# Srijan2001/Backpropagation-Algorithm : Momentum.py
def update_parameters_with_momentum__srijan(parameters, grads, v, beta, learning_rate):
    for l in range(len(parameters) // 2):
        v["dW" + str(l + 1)] = beta * v["dW" + str(l + 1)] + (1 - beta) * grads["dW" + str(l + 1)]
        v["db" + str(l + 1)] = beta * v["db" + str(l + 1)] + (1 - beta) * grads["db" + str(l + 1)]
        parameters["W" + str(l + 1)] = parameters["W" + str(l + 1)] - learning_rate * v["dW" + str(l + 1)]
        parameters["b" + str(l + 1)] = parameters["b" + str(l + 1)] - learning_rate * v["db" + str(l + 1)]
    return parameters, v


# SpiderNitt/web-wednesdays : PopulerOptimizers_AmarRokade/momentum.py
# (keys counted from 0, and only the parameters are returned)
def update_params_with_momentum__spidernitt(params, grads, v, beta, learning_rate):
    for l in range(len(params) // 2):
        v["dW" + str(l)] = beta * v["dW" + str(l)] + (1 - beta) * grads["dW" + str(l)]
        v["db" + str(l)] = beta * v["db" + str(l)] + (1 - beta) * grads["db" + str(l)]
        params["W" + str(l)] = params["W" + str(l)] - learning_rate * v["dW" + str(l)]
        params["b" + str(l)] = params["b" + str(l)] - learning_rate * v["db" + str(l)]
    return params


# ritviksingh9/ML-Models-Scratch : RecurrentNeuralNetwork/optimize.py
# (s corrected with beta2 ** 2 instead of ** t, and no square root)
def update_parameters_with_adam__ritvik(parameters, grads, v, s, t, learning_rate=0.01,
                                         beta1=0.9, beta2=0.999, epsilon=1e-8):
    L = len(parameters) // 2
    v_corr, s_corr = {}, {}
    for l in range(L):
        for p in ("W", "b"):
            key = "d" + p + str(l + 1)
            v[key] = beta1 * v[key] + (1 - beta1) * grads[key]
            v_corr[key] = v[key] / (1 - beta1 ** t)
            s[key] = beta2 * s[key] + (1 - beta2) * (grads[key] ** 2)
            s_corr[key] = s[key] / (1 - beta2 ** 2)
            parameters[p + str(l + 1)] = parameters[p + str(l + 1)] - learning_rate * v_corr[key] / (
                s_corr[key] + epsilon)
    return parameters, v, s


# sherwyn11/Skyplay-NN : playground/neural_net/nn_model/update_parameters_test.py
# (epsilon inside the square root)
def update_parameters_with_adam__sherwyn(parameters, grads, v, s, t, learning_rate=0.1,
                                          beta1=0.9, beta2=0.999, epsilon=1e-8):
    L = len(parameters) // 2
    vc, sc = {}, {}
    for l in range(L):
        for p in ("W", "b"):
            g = "d" + p + str(l + 1)
            v[g] = beta1 * v[g] + (1 - beta1) * grads[g]
            vc[g] = v[g] / (1 - np.power(beta1, t))
            s[g] = beta2 * s[g] + (1 - beta2) * np.power(grads[g], 2)
            sc[g] = s[g] / (1 - np.power(beta2, t))
            parameters[p + str(l + 1)] = parameters[p + str(l + 1)] - learning_rate * vc[g] / np.sqrt(
                sc[g] + epsilon)
    return parameters, v, s


# AkashSDas/Machine-Learning-From-Scratch : neural_networks/initialization/compute_cost.py
def compute_cost__akash(AL, Y):
    m = Y.shape[1]
    logprobs = np.multiply(-np.log(AL), Y) + np.multiply(-np.log(1 - AL), 1 - Y)
    return np.squeeze(1. / m * np.nansum(logprobs))


# nguyenlinhvn512/Deep-Neural-Network-for-Image-Classification : compute_cost.py
def compute_cost__nguyen(AL, Y):
    m = Y.shape[1]
    cost = -1 / m * (np.dot(Y, np.log(AL).T) + np.dot(1 - Y, np.log(1 - AL).T))
    cost = np.squeeze(cost)
    assert cost.shape == ()
    return cost


# aragorn5249/qwertry : code/cost_function.py
def compute_cost__aragorn(AL, Y):
    m = Y.shape[1]
    cost = -(1 / m) * np.sum(np.multiply(Y, np.log(AL)) + np.multiply(1 - Y, np.log(1 - AL)))
    return np.squeeze(cost)


# martinabader/deep-learning : python/compute_cost.py
def compute_cost__martina(AL, Y):
    m = Y.shape[1]
    return np.squeeze(-(1 / m) * np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)))


# rashedmamdouh/Fully-working-Neural-Network : helperfunction.py (model_backward with its
# own activation_backward helper, course caches)
def _activation_backward__rashed(dA, cache, activation):
    (A_prev, W, b), Z = cache
    dZ = _relu_backward(dA, Z) if activation == "relu" else _sigmoid_backward(dA, Z)
    m = A_prev.shape[1]
    return np.dot(W.T, dZ), np.dot(dZ, A_prev.T) / m, np.sum(dZ, axis=1, keepdims=True) / m


def model_backward__rashed(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = \
        _activation_backward__rashed(dAL, caches[L - 1], "sigmoid")
    for l in reversed(range(L - 1)):
        dA_prev, dW, db = _activation_backward__rashed(grads["dA" + str(l + 1)], caches[l], "relu")
        grads["dA" + str(l)], grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = dA_prev, dW, db
    return grads


# rashedmamdouh/Fully-working-Neural-Network : helperfunction.py
def update_parameters__rashed(parameters, grads, learning_rate):
    for l in range(len(parameters) // 2):
        parameters["W" + str(l + 1)] = parameters["W" + str(l + 1)] - learning_rate * grads["dW" + str(l + 1)]
        parameters["b" + str(l + 1)] = parameters["b" + str(l + 1)] - learning_rate * grads["db" + str(l + 1)]
    return parameters


# Silva-6/deeplearning.AI-deep_learning :
# 0-neural_networks-nd-deep_learning/3-step_by_step-build_your_DNN/8-L_model_backward.py
# (the output layer through linear_backward(sigmoid_backward(...)); the loop as the template)
def _linear_backward(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    return np.dot(W.T, dZ), np.dot(dZ, A_prev.T) / m, np.sum(dZ, axis=1, keepdims=True) / m


def L_model_backward__silva(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    last = caches[-1]
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = _linear_backward(
        _sigmoid_backward(dAL, last[1]), last[0])
    for l in reversed(range(L - 1)):
        linear_cache, Z = caches[l]
        dA_prev, dW, db = _linear_backward(_relu_backward(grads["dA" + str(l + 1)], Z), linear_cache)
        grads["dA" + str(l)], grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = dA_prev, dW, db
    return grads


# Silva-6/deeplearning.AI-deep_learning :
# 0-neural_networks-nd-deep_learning/3-step_by_step-build_your_DNN/3-linear_activation_forward.py
def _linear_forward(A, W, b):
    return np.dot(W, A) + b, (A, W, b)


def linear_activation_forward__silva(A_prev, W, b, activation):
    if activation == "sigmoid":
        Z, linear_cache = _linear_forward(A_prev, W, b)
        A, activation_cache = _sig_cached(Z)
    elif activation == "relu":
        Z, linear_cache = _linear_forward(A_prev, W, b)
        A, activation_cache = _relu_cached(Z)
    return A, (linear_cache, activation_cache)


# RaymondLZhou/deep-neural-networks : src/forward.py
def linear_activation_forward__raymond(A_prev, W, b, activation):
    if activation == "sigmoid":
        Z, lin = _linear_forward(A_prev, W, b)
        A, act = _sig_cached(Z)
    elif activation == "relu":
        Z, lin = _linear_forward(A_prev, W, b)
        A, act = _relu_cached(Z)
    assert A.shape == (W.shape[0], A_prev.shape[1])
    return A, (lin, act)


# chenfeng123456/Deep-Learning : course1_week4/Forward_propagation_module/linear_forward.py
def linear_forward__chenfeng(A, W, b):
    Z = np.dot(W, A) + b
    assert Z.shape == (W.shape[0], A.shape[1])
    return Z, (A, W, b)


# Kolappan/Python : code/DeepLearningFundamentals/DeepLearning/linearforward.py
def linear_forward__kolappan(A, W, b):
    Z = np.dot(W, A) + b
    cache = (A, W, b)
    return Z, cache


# mofeiyu/dnn : dnn/train/layers/linear.py (LinearLayer.forward, a static method)
def forward__mofeiyu(A, W, b):
    return np.dot(W, A) + b, (A, W, b)


# mofeiyu/dnn : dnn/train/layers/linear.py (LinearLayer.backward, a static method)
def backward__mofeiyu(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = np.dot(dZ, A_prev.T) * 1 / m
    db = np.sum(dZ, axis=1, keepdims=True) * 1 / m
    return np.dot(W.T, dZ), dW, db


# Sarfaraz-Ali/Image_recognization : propagate.py
def propagate__sarfaraz(w, b, X, Y):
    m = X.shape[1]
    A = _sig(np.dot(w.T, X) + b)
    cost = -np.sum((Y * np.log(A)) + ((1 - Y) * np.log(1 - A))) / m
    dw = np.dot(X, (A - Y).T) / m
    db = np.sum((A - Y) / m)
    return {"dw": dw, "db": db}, np.squeeze(cost)


# sheviv/mirrors : dl_spec/nn_and_dl/first_second_w/optimize.py (a sigmoid defined inside)
def propagate__sheviv(w, b, X, Y):
    def sigmoid(xc):
        return 1 / (1 + np.exp(-xc))
    m = X.shape[1]
    A = sigmoid(np.dot(w.T, X) + b)
    cost = -1 / m * (np.dot(Y, np.log(A).T) + np.dot((1 - Y), np.log(1 - A).T))
    dw = 1 / m * (np.dot(X, (A - Y).T))
    db = 1 / m * (np.sum(A - Y))
    return {"dw": dw, "db": db}, np.squeeze(cost)


# babibo180918/BBBLearning : BBBLearning/lr/propagate.py (an extra parameter; cost and db
# kept as (1, 1) arrays)
def propagate__babibo(w, b, X, Y, cost_function):
    m = X.shape[1]
    A = _sig(np.dot(w.T, X) + b)
    if cost_function == "cross_entropy":
        cost = -1 / m * np.sum(Y * np.log(A) + (1 - Y) * np.log(1 - A), axis=1, keepdims=True)
    dw = 1 / m * np.dot(X, (A - Y).T)
    db = 1 / m * np.sum(A - Y, axis=1, keepdims=True)
    return {"dw": dw, "db": db}, cost


# iftrush/Deep-Learning-Notes : Regularization.md (lambd / 2 / m, with reg_utils' compute_cost)
def _reg_utils_cost(a3, Y):
    m = Y.shape[1]
    logprobs = np.multiply(-np.log(a3), Y) + np.multiply(-np.log(1 - a3), 1 - Y)
    return 1. / m * np.nansum(logprobs)


def compute_cost_with_regularization__iftrush(A3, Y, parameters, lambd):
    m = Y.shape[1]
    W1, W2, W3 = parameters["W1"], parameters["W2"], parameters["W3"]
    cross_entropy_cost = _reg_utils_cost(A3, Y)
    L2 = lambd / 2 / m * (np.sum(np.square(W1)) + np.sum(np.square(W2)) + np.sum(np.square(W3)))
    return cross_entropy_cost + L2


# Asaf-Harel/DL-5 : DL-5-11/3130/ex6.py (its own signature: backward_propagation(X, Y, A))
def backward_propagation__asaf(X, Y, A):
    m = X.shape[1]
    dz = (1 / m) * (A - Y)
    return np.dot(X, dz.T), np.sum(dz)


# boringPpl/hasbrain-helper-files : neural-network/final.py (examples as the rows of X:
# W1 · Xᵀ, and a print)
def forward_propagation__hasbrain(X, parameters):
    W1, b1, W2, b2 = parameters["W1"], parameters["b1"], parameters["W2"], parameters["b2"]
    Z1 = np.dot(W1, X.T) + b1
    print(Z1)
    A1 = np.tanh(Z1)
    Z2 = np.dot(W2, A1) + b2
    A2 = _sig(Z2)
    assert A2.shape == (1, X.shape[0])
    return A2, {"Z1": Z1, "A1": A1, "Z2": Z2, "A2": A2}


# Daniel-Shunom/deep_net : Propagations_and_costs/forward_propagation.py (W1 in the second
# layer, tanh at the output)
def forward_propagation__daniel(X, parameters):
    W1, b1, W2, b2 = parameters["W1"], parameters["b1"], parameters["W2"], parameters["b2"]  # noqa: F841
    Z1 = np.dot(W1, X) + b1
    A1 = np.tanh(Z1)
    Z2 = np.dot(W1, A1) + b2
    A2 = np.tanh(Z2)
    return A2, {"Z1": Z1, "A1": A1, "Z2": Z2, "A2": A2}


# peternortonuk/machinelearning : coursera/neural_networks/assignment02_sandpit.py
# (W1ᵀ and W2ᵀ, sigmoid in the hidden layer)
def forward_propagation__peter(X, parameters):
    W1, b1, W2, b2 = parameters["W1"], parameters["b1"], parameters["W2"], parameters["b2"]
    Z1 = np.dot(W1.T, X) + b1
    A1 = _sig(Z1)
    Z2 = np.dot(W2.T, A1) + b2
    A2 = _sig(Z2)
    assert A2.shape == (1, X.shape[1])
    return A2, {"Z1": Z1, "A1": A1, "Z2": Z2, "A2": A2}


# Hoanha2101/SmartBottleInspector : Khai_Hoan/MOOC1/W4A1/utils.py (the whole notebook's
# functions in one module, with the course's dnn_utils helpers)
def L_model_forward__hoanha(X, parameters):
    caches = []
    A = X
    L = len(parameters) // 2
    for l in range(1, L):
        A, cache = linear_activation_forward__silva(A, parameters["W" + str(l)],
                                                    parameters["b" + str(l)], "relu")
        caches.append(cache)
    AL, cache = linear_activation_forward__silva(A, parameters["W" + str(L)],
                                                 parameters["b" + str(L)], "sigmoid")
    caches.append(cache)
    assert AL.shape == (1, X.shape[1])
    return AL, caches


def linear_activation_backward__hoanha(dA, cache, activation):
    linear_cache, activation_cache = cache
    if activation == "relu":
        dZ = _relu_backward(dA, activation_cache)
    elif activation == "sigmoid":
        dZ = _sigmoid_backward(dA, activation_cache)
    return _linear_backward(dZ, linear_cache)


def L_model_backward__hoanha(AL, Y, caches):
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = \
        linear_activation_backward__hoanha(dAL, caches[L - 1], "sigmoid")
    for l in reversed(range(L - 1)):
        t = linear_activation_backward__hoanha(grads["dA" + str(l + 1)], caches[l], "relu")
        grads["dA" + str(l)], grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = t
    return grads


def update_parameters__hoanha(parameters, grads, learning_rate):
    for l in range(len(parameters) // 2):
        for p in ("W", "b"):
            parameters[p + str(l + 1)] = parameters[p + str(l + 1)] - learning_rate * grads[
                "d" + p + str(l + 1)]
    return parameters


# Hoanha2101/SmartBottleInspector : Khai_Hoan/MOOC2/W1A2/utils.py (lambd * ... / (2 * m))
def compute_cost_with_regularization__hoanha(A3, Y, parameters, lambd):
    m = Y.shape[1]
    W1, W2, W3 = parameters["W1"], parameters["W2"], parameters["W3"]
    l2 = lambd * (np.sum(np.square(W1)) + np.sum(np.square(W2)) + np.sum(np.square(W3))) / (2 * m)
    return _reg_utils_cost(A3, Y) + l2


# Hoanha2101/SmartBottleInspector : Khai_Hoan/MOOC2/W1A2/utils.py
def backward_propagation_with_regularization__hoanha(X, Y, cache, lambd):
    m = X.shape[1]
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y
    dW3 = 1. / m * np.dot(dZ3, A2.T) + (lambd * W3) / m
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = np.dot(W3.T, dZ3)
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1. / m * np.dot(dZ2, A1.T) + (lambd * W2) / m
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = np.dot(W2.T, dZ2)
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T) + (lambd * W1) / m
    db1 = 1. / m * np.sum(dZ1, axis=1, keepdims=True)
    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2,
            "db2": db2, "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


# Hoanha2101/SmartBottleInspector : Khai_Hoan/MOOC2/W1A2/utils.py (mask then rescale)
def backward_propagation_with_dropout__hoanha(X, Y, cache, keep_prob):
    m = X.shape[1]
    (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3) = cache
    dZ3 = A3 - Y
    dW3 = 1. / m * np.dot(dZ3, A2.T)
    db3 = 1. / m * np.sum(dZ3, axis=1, keepdims=True)
    dA2 = np.dot(W3.T, dZ3) * D2
    dA2 = dA2 / keep_prob
    dZ2 = np.multiply(dA2, np.int64(A2 > 0))
    dW2 = 1. / m * np.dot(dZ2, A1.T)
    db2 = 1. / m * np.sum(dZ2, axis=1, keepdims=True)
    dA1 = np.dot(W2.T, dZ2) * D1
    dA1 = dA1 / keep_prob
    dZ1 = np.multiply(dA1, np.int64(A1 > 0))
    dW1 = 1. / m * np.dot(dZ1, X.T)
    db1 = 1. / m * np.sum(dZ1, axis=1, keepdims=True)
    return {"dZ3": dZ3, "dW3": dW3, "db3": db3, "dA2": dA2, "dZ2": dZ2, "dW2": dW2,
            "db2": db2, "dA1": dA1, "dZ1": dZ1, "dW1": dW1, "db1": db1}


# sheviv/mirrors : dl_spec/nn_and_dl/third_w/backward_propagation.py (the planar notebook's
# update_parameters, written out for its two layers)
def update_parameters__sheviv(parameters, grads, learning_rate=1.2):
    W1, W2, b1, b2 = parameters["W1"], parameters["W2"], parameters["b1"], parameters["b2"]
    W1 = W1 - grads["dW1"] * learning_rate
    b1 = b1 - grads["db1"] * learning_rate
    W2 = W2 - grads["dW2"] * learning_rate
    b2 = b2 - grads["db2"] * learning_rate
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}


# Silva-6/deeplearning.AI-deep_learning : 0-neural_networks-nd-deep_learning/
# 3-step_by_step-build_your_DNN/9-update_parameters.py (the later notebook's params + deepcopy)
def update_parameters__silva(params, grads, learning_rate):
    import copy

    parameters = copy.deepcopy(params)
    for l in range(len(parameters) // 2):
        parameters["W" + str(l + 1)] = parameters["W" + str(l + 1)] - learning_rate * grads["dW" + str(l + 1)]
        parameters["b" + str(l + 1)] = parameters["b" + str(l + 1)] - learning_rate * grads["db" + str(l + 1)]
    return parameters


# sherwyn11/Skyplay-NN : nn_model/update_parameters.py
def update_parameters__sherwyn(parameters, grads, learning_rate):
    for l in range(len(parameters) // 2):
        parameters["W" + str(l + 1)] = parameters["W" + str(l + 1)] - learning_rate * grads["dW" + str(l + 1)]
        parameters["b" + str(l + 1)] = parameters["b" + str(l + 1)] - learning_rate * grads["db" + str(l + 1)]
    return parameters
